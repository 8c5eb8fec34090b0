-- What each training run read, by row id (first, last) in the outcomes table: its old and new
-- data and, the newest of the new rows, its holdout; and the seed it trained with. This is the
-- decision core's plan as carried out, comparable with a backtest's report.
ALTER TABLE driftd.training_runs
    ADD COLUMN old_first_id     bigint,
    ADD COLUMN old_last_id      bigint,
    ADD COLUMN new_first_id     bigint,
    ADD COLUMN new_last_id      bigint,
    ADD COLUMN holdout_first_id bigint,
    ADD COLUMN holdout_last_id  bigint,
    ADD COLUMN seed             bigint;
