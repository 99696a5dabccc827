-- SQLite's migration of this number adds the status to its narrow copy of what a search tests of
-- each ticket (V20), which PostgreSQL does not keep. Kept so both backends carry the same
-- versions.
SELECT 1;
