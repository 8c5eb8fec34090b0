-- Cluster membership: each running replica keeps its row's heartbeat fresh. Replicas whose
-- heartbeat is recent count as live; each owns its share of the models (daemon/ownership.rs).
-- The advisory locks remain the guard against two owners; this table only balances.
CREATE TABLE driftd.replicas (
    id           text        PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    owned        integer     NOT NULL DEFAULT 0
);
