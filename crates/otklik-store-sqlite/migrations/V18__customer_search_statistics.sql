-- PostgreSQL's migration of this number gives its planner finer statistics on the customers'
-- search document. SQLite's customer search needs none: FTS5 reads the matches and the query
-- fixes the join order (see `read::search_customers`). Kept so both backends carry the same
-- versions.
SELECT 1;
