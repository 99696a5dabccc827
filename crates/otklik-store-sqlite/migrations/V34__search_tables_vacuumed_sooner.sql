-- PostgreSQL's migration of this number has its search tables vacuumed sooner than its default.
-- SQLite reuses a changed row's space in the same transaction and keeps no old versions. Kept so
-- both backends carry the same versions.
SELECT 1;
