-- The counters' version. Every unit that changes `ticket_counts` or `ticket_counters` raises it
-- in the same transaction, so a version read in a snapshot names the counter rows that snapshot
-- sees, and a node may serve counts it already summed until the version moves
-- (`otklik_store::count_cache`). SQLite has one writer: one row. PostgreSQL keeps a row per
-- counter shard so concurrent writers do not queue on it.
CREATE TABLE count_versions (
    shard    INTEGER PRIMARY KEY NOT NULL,
    version  INTEGER NOT NULL
);
INSERT INTO count_versions (shard, version) VALUES (0, 0);
