-- driftd's own state. Runs with search_path = driftd (see db::migrate).

-- One row per model: the poll watermark and the monitor snapshot, always written together
-- in the transaction that consumed the batch (that is what makes polling exactly-once).
CREATE TABLE driftd.monitor_state (
    model               text PRIMARY KEY,
    watermark_labeled_at timestamptz,
    watermark_id        bigint,
    rows_processed      bigint      NOT NULL DEFAULT 0,
    rows_rejected       bigint      NOT NULL DEFAULT 0,
    state               jsonb       NOT NULL,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Rows set aside, with why. The source row is untouched; this is a pointer to it.
CREATE TABLE driftd.rejected_rows (
    model       text        NOT NULL,
    source_id   bigint      NOT NULL,
    labeled_at  timestamptz,
    reason      text        NOT NULL,
    detail      text        NOT NULL DEFAULT '',
    rejected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, source_id)
);

CREATE TABLE driftd.drift_events (
    id          bigserial   PRIMARY KEY,
    model       text        NOT NULL,
    detector    text        NOT NULL,
    signal      text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('drift', 'warning')),
    row_id      bigint      NOT NULL,
    row_index   bigint      NOT NULL,
    labeled_at  timestamptz NOT NULL,
    estimate    double precision,
    detected_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model, detector, signal, kind, row_id)
);
CREATE INDEX drift_events_model_time ON driftd.drift_events (model, labeled_at);
