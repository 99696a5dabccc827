-- SQLite's migration of this number changes its full-text tokenizer. PostgreSQL indexes the
-- analyser's tokens as given (a tsvector of lexemes), so nothing changes here. Kept so both
-- backends carry the same versions.
SELECT 1;
