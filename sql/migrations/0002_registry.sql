-- The model registry and the record of every training run. Only driftd's registry module
-- writes here; weights are safetensors bytes, readable from PyTorch after `driftd models export`.

CREATE TABLE driftd.model_versions (
    model             text        NOT NULL,
    version           bigint      NOT NULL,
    parent_version    bigint,
    strategy          text        NOT NULL,
    trigger           text        NOT NULL,
    status            text        NOT NULL CHECK (status IN ('champion', 'retired', 'rejected')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    promoted_at       timestamptz,
    n_train_rows      bigint      NOT NULL,
    n_holdout_rows    bigint      NOT NULL,
    -- The newest row (in poll order) the version was trained on: "new data" starts after it.
    cutoff_labeled_at timestamptz,
    cutoff_id         bigint,
    holdout_metrics   jsonb       NOT NULL DEFAULT '{}',
    -- Architecture, scalers and ensemble layout (the export's JSON sidecar).
    sidecar           jsonb       NOT NULL,
    weights           bytea       NOT NULL,
    PRIMARY KEY (model, version)
);
-- Exactly one champion per model, enforced by the database.
CREATE UNIQUE INDEX model_versions_one_champion ON driftd.model_versions (model)
    WHERE status = 'champion';

CREATE TABLE driftd.training_runs (
    id               bigserial   PRIMARY KEY,
    model            text        NOT NULL,
    trigger          text        NOT NULL,
    reason           text        NOT NULL DEFAULT '',
    strategy         text        NOT NULL,
    status           text        NOT NULL CHECK (status IN
                         ('requested', 'running', 'promoted', 'kept', 'failed', 'cancelled', 'coalesced')),
    requested_at     timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    champion_version bigint,
    new_version      bigint,
    -- Per candidate: strategy, holdout accuracy and log-loss, rows, seconds, error.
    candidates       jsonb       NOT NULL DEFAULT '[]',
    error            text
);
CREATE INDEX training_runs_model ON driftd.training_runs (model, id);
-- Manual requests (`driftd retrain`, POST /v1/models/{model}/retrain) are rows in state
-- 'requested' that the owning replica picks up.
CREATE INDEX training_runs_requested ON driftd.training_runs (model) WHERE status = 'requested';
