-- Counter shards. Every ticket write adds to a few shared `ticket_counters` rows (the "new"
-- queue, the "email" channel…), and on PostgreSQL the row lock of such an upsert is held until
-- COMMIT: concurrent writers queued behind one another on the same hot rows. Each connection
-- now adds to its own shard of a key (`pg_backend_pid() % 8`), and a count sums the shards, so
-- up to eight writers update one queue at once. Same logical schema as the SQLite migration of
-- this name.

ALTER TABLE ticket_counters ADD COLUMN shard BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ticket_counters DROP CONSTRAINT ticket_counters_pkey;
ALTER TABLE ticket_counters
    ADD CONSTRAINT ticket_counters_pkey PRIMARY KEY (status, priority, assignee_key, team_key, day, shard);
