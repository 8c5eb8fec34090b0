-- Accuracy before the labels: per model, the estimate's read position over the scored rows
-- (created_at, id: the scoring order) and its windows of expected correctness. Both change
-- together, in one statement, and only from the position they were read at, so each scored
-- row is estimated exactly once across restarts and takeovers.
CREATE TABLE driftd.estimates (
    model text PRIMARY KEY,
    scored_created_at timestamptz NOT NULL,
    scored_id bigint NOT NULL,
    rows_estimated bigint NOT NULL DEFAULT 0,
    state jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
