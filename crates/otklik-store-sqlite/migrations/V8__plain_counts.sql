-- Plain queue counts. `ticket_counters` kept a row per day for waiting work (pending, on hold),
-- so every count that included waiting work (all active work, a team's queue, urgent work)
-- summed a row per day of the last year: tens of thousands of rows at a million tickets.
-- `ticket_counts` now holds every unmerged ticket by (status, priority, assignee, team) alone,
-- a few hundred rows in all, and `ticket_counters` keeps only waiting work by day, read by views
-- that filter on idle days (as the plain count minus the last few days). Same logical schema as
-- the PostgreSQL migration of this name; SQLite has one writer and keeps shard 0.

CREATE TABLE ticket_counts (
    status        TEXT NOT NULL,
    priority      TEXT NOT NULL,
    assignee_key  BLOB NOT NULL,
    team_key      BLOB NOT NULL,
    shard         INTEGER NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (status, priority, assignee_key, team_key, shard)
);

-- Filled from the counters the data already has (maintained in the same transactions as the
-- tickets since V2), so existing installations count right at once.
INSERT INTO ticket_counts (status, priority, assignee_key, team_key, shard, n)
SELECT status, priority, assignee_key, team_key, 0, sum(n)
FROM ticket_counters
GROUP BY status, priority, assignee_key, team_key
HAVING sum(n) <> 0;

DELETE FROM ticket_counters WHERE day = 0 OR n = 0;

-- Idle-days counts read the most recent days of waiting work.
CREATE INDEX ticket_counters_by_day ON ticket_counters (status, day);
