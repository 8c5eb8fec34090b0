-- Per-feature data drift: the reference sample (a bounded sample of the version's training
-- rows) lives with the model version; each check's statistics are recorded here.
ALTER TABLE driftd.model_versions ADD COLUMN reference_sample jsonb;

CREATE TABLE driftd.feature_drift (
    id           bigserial   PRIMARY KEY,
    model        text        NOT NULL,
    version      bigint      NOT NULL,
    checked_at   timestamptz NOT NULL DEFAULT now(),
    feature      text        NOT NULL,
    psi          double precision NOT NULL,
    ks           double precision NOT NULL,
    ks_pvalue    double precision NOT NULL,
    js           double precision NOT NULL,
    wasserstein  double precision NOT NULL,
    drifted      boolean     NOT NULL,
    n_reference  integer     NOT NULL,
    n_recent     integer     NOT NULL
);
CREATE INDEX feature_drift_model_time ON driftd.feature_drift (model, checked_at);
