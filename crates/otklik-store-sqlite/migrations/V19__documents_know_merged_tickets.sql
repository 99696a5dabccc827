-- PostgreSQL's migration of this number marks the search documents of merged tickets, so its
-- search need not read each candidate's ticket. SQLite's search reads each candidate's ticket by
-- rowid, a single B-tree descent (V17). Kept so both backends carry the same versions.
SELECT 1;
