-- SQLite's migration of this number rebuilds its FTS5 index without token positions. The
-- PostgreSQL document keeps its tsvector as it is (positions there cost little: GIN indexes
-- lexemes only). Kept so both backends carry the same versions.
SELECT 1;
