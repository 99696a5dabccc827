-- PostgreSQL's migration of this number gives its planner finer statistics on the search
-- document. SQLite's search needs none: FTS5 walks its index newest first and the query fixes
-- the join order (see `read::search_tickets`). Kept so both backends carry the same versions.
SELECT 1;
