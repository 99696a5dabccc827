-- PostgreSQL's migration of this number writes each ticket's priority and era into its search
-- document. SQLite's full-text index already walks its matches newest first, and a priority
-- filter costs it tens of milliseconds at a million tickets. Kept so both backends carry the
-- same versions.
SELECT 1;
