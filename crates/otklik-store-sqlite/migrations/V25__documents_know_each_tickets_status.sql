-- PostgreSQL's migration of this number writes each ticket's status into its search document;
-- SQLite did the same for its full-text index in V24. Kept so both backends carry the same
-- versions.
SELECT 1;
