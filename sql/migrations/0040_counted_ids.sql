-- The ledger of counted rows, compact (replaces 0030's one row per counted outcome, which
-- cost an index insert per row and about 50 bytes per row forever). For each model and each
-- 2^20 source ids (chunk = source_id >> 20), the ids the monitor has counted, as a Roaring
-- bitmap of the low 20 bits (the portable Roaring format: about 1 bit per id where ids are
-- dense, 2 bytes per id where they are sparse). A batch rewrites the chunks it touched, in
-- the same transaction as the watermark.
CREATE TABLE driftd.counted_ids (
    model text NOT NULL,
    chunk bigint NOT NULL,
    ids bytea NOT NULL,
    PRIMARY KEY (model, chunk)
);

-- The rows whose label was corrected after they were counted: one row each, however many
-- times it was corrected.
CREATE TABLE driftd.label_corrections (
    model text NOT NULL,
    source_id bigint NOT NULL,
    corrections integer NOT NULL,
    last_labeled_at timestamptz NOT NULL,
    PRIMARY KEY (model, source_id)
);

-- driftd.label_ledger (0030) stays until its rows are folded into the tables above: the
-- daemon does that for each model as it loads it (in Rust: SQL cannot write the bitmaps),
-- deleting the model's old rows in the same transaction.
