-- SQLite's migration of this number keeps each ticket's visibility in a narrow table under its
-- rowid, for its search; PostgreSQL's search reads `ticket_documents` (V19) or joins `tickets`.
-- Kept so both backends carry the same versions.
SELECT 1;
