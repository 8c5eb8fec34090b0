-- The labelled rows each model's monitor has counted, so that a corrected label is known for
-- what it is. A correction rewrites a row's label and moves its labeled_at forward, which puts
-- the row past the watermark again; without this ledger the poll would count it a second time.
-- Written in the same transaction as the watermark (exactly once across kill -9). One row per
-- counted outcome: about 50 bytes with its index.
CREATE TABLE driftd.label_ledger (
    model text NOT NULL,
    source_id bigint NOT NULL,
    -- How often the row came back with a new labeled_at after it was counted.
    corrections integer NOT NULL DEFAULT 0,
    last_labeled_at timestamptz NOT NULL,
    PRIMARY KEY (model, source_id)
);
