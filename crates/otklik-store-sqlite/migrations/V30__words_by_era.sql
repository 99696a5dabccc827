-- PostgreSQL's migration of this number keeps each ticket's search words spelled with its era,
-- for GIN to find the newest matches of a word era by era. FTS5 reads a word's matches newest
-- first already. Kept so both backends carry the same versions.
SELECT 1;
