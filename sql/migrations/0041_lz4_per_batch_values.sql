-- The values rewritten with every batch (the monitor snapshot and the counted-id bitmaps) are
-- compressed with lz4 instead of PostgreSQL's default pglz: in the ingest benchmark,
-- pglz_compress under the snapshot's UPDATE was the largest single function of PostgreSQL's
-- profile (5 % of all CPU samples of a run). Only values written from now on
-- change; reads need nothing. A server built without lz4 keeps pglz (a notice, not an error).
DO $$
BEGIN
    ALTER TABLE driftd.monitor_state ALTER COLUMN state SET COMPRESSION lz4;
    ALTER TABLE driftd.counted_ids ALTER COLUMN ids SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no lz4: the per-batch values stay pglz-compressed';
END
$$;
