-- SQLite's migration of this number writes each ticket's status into its full-text entry, for
-- searches filtered by a rare status; PostgreSQL's filtered searches are planned from its
-- statistics (`filtered_matches`). Kept so both backends carry the same versions.
SELECT 1;
