-- An imported version not (yet) promoted is `imported`, not `rejected`; a run that had nothing
-- to do (no rows the champion has not seen) is `skipped`, not `failed`.
ALTER TABLE driftd.model_versions DROP CONSTRAINT model_versions_status_check;
ALTER TABLE driftd.model_versions ADD CONSTRAINT model_versions_status_check
    CHECK (status IN ('champion', 'retired', 'rejected', 'imported'));
ALTER TABLE driftd.training_runs DROP CONSTRAINT training_runs_status_check;
ALTER TABLE driftd.training_runs ADD CONSTRAINT training_runs_status_check
    CHECK (status IN ('requested', 'running', 'promoted', 'kept', 'failed', 'cancelled', 'coalesced', 'skipped'));
