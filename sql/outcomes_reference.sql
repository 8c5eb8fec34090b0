-- A reference outcomes table for users who have none (`driftd migrate --create-outcomes-table`).
-- The model service inserts a row per prediction; the label and labeled_at arrive later.
CREATE TABLE IF NOT EXISTS public.outcomes (
    id            bigserial   PRIMARY KEY,
    model         text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    features      real[]      NOT NULL,
    prediction    real,
    model_version bigint,
    label         real,
    labeled_at    timestamptz,
    -- Categorical features, after the numbers of `features` (`categorical_features`).
    categories    text[]
);
-- Tables made before categorical features keep working; they gain the (nullable) column.
ALTER TABLE public.outcomes ADD COLUMN IF NOT EXISTS categories text[];

-- Serves the poll query: WHERE model = $1 AND (labeled_at, id) > ($2, $3) ORDER BY labeled_at, id.
CREATE INDEX IF NOT EXISTS outcomes_poll ON public.outcomes (model, labeled_at, id)
    WHERE labeled_at IS NOT NULL;
-- Serves the estimate (accuracy before the labels): scored rows in scoring order.
CREATE INDEX IF NOT EXISTS outcomes_scoring ON public.outcomes (model, created_at, id);
-- Serves the scorer: rows still waiting for a prediction.
CREATE INDEX IF NOT EXISTS outcomes_unscored ON public.outcomes (model, id)
    WHERE prediction IS NULL;

-- Wakes driftd as soon as a label is written (the poll interval is only the fallback).
-- The payload is the model name; NOTIFY is delivered at commit, and duplicates within one
-- transaction are folded by PostgreSQL, so a bulk update sends one message per model.
CREATE OR REPLACE FUNCTION public.driftd_outcomes_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.label IS NOT NULL AND NEW.labeled_at IS NOT NULL THEN
        PERFORM pg_notify('driftd_outcomes', NEW.model);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS outcomes_label_notify ON public.outcomes;
CREATE TRIGGER outcomes_label_notify
    AFTER INSERT OR UPDATE OF label, labeled_at ON public.outcomes
    FOR EACH ROW EXECUTE FUNCTION public.driftd_outcomes_notify();
