-- The counters' version. Every unit that changes `ticket_counts` or `ticket_counters` raises
-- its connection's shard of it in the same transaction, before writing the counters (the lock
-- order every unit and the rebuild keep), so the sum read in a snapshot names the counter rows
-- that snapshot sees and a node may serve counts it already summed until the sum moves
-- (`otklik_store::count_cache`). A snapshot sees every transaction an earlier snapshot saw, so
-- an equal sum means the same commits. One row per counter shard (V4, V8): concurrent writers do
-- not queue on one row.
CREATE TABLE count_versions (
    shard    INTEGER PRIMARY KEY,
    version  BIGINT NOT NULL
);
INSERT INTO count_versions (shard, version) SELECT shard, 0 FROM generate_series(0, 7) AS shard;
