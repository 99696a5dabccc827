-- PostgreSQL's migration of this number moves the search document into a narrow table of its
-- own; SQLite's FTS5 index already keeps its postings apart from the terms. Kept so both
-- backends carry the same versions.
SELECT 1;
