-- SQLite's migration of this number writes each ticket's priority, channel and tags into its
-- full-text entry; PostgreSQL's documents carry them since V26 and V27. Kept so both backends
-- carry the same versions.
SELECT 1;
