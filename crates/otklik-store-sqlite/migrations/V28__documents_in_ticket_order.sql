-- PostgreSQL's migration of this number rewrites its table of search documents in ticket order
-- after the rewrites of V25–V27. SQLite's full-text index has no such table. Kept so both
-- backends carry the same versions.
SELECT 1;
