-- The unassigned queue, newest first, as an index of its own. With `assignee_id IS NULL` the
-- planner cannot walk `tickets_by_assignee` in `updated_at` order (IS NULL is not an equality to
-- it), so it chose between walking every ticket by `updated_at` and intersecting bitmaps; once a
-- table had been vacuumed it intersected 63k active-status entries with the 3k unassigned ones and
-- sorted them (11 ms at a million tickets, 35 ms p50 under load) where reading the 50 newest
-- unassigned tickets needs 0.05 ms. Unassigned tickets are a small share of all, so the index is
-- small and cheap to keep.
CREATE INDEX tickets_unassigned ON tickets (updated_at, id) WHERE assignee_id IS NULL;

-- SQLite's migration of this number also renumbers its search rows by their tickets' rowids;
-- PostgreSQL's documents are keyed by ticket id and walked in that order already.
