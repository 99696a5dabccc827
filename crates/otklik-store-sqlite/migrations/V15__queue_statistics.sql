-- PostgreSQL's migration of this number adds joint planner statistics on tickets; SQLite's
-- planner picks the queue indexes without them. Kept so both backends carry the same versions.
SELECT 1;
