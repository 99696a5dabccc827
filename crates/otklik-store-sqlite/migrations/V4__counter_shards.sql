-- Counter shards (see the PostgreSQL migration of this name). SQLite has one writer, so hot
-- counter rows never make writers wait: every unit adds to shard 0 and the key stays as it was.
-- The column keeps the two logical schemas the same.

ALTER TABLE ticket_counters ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
