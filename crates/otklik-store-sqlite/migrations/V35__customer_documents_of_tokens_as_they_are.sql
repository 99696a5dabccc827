-- PostgreSQL's migration of this number makes its customers' search documents of the tokens as
-- they are. SQLite's full-text index already takes them whole (`ascii` tokenizer, V14). Kept so
-- both backends carry the same versions.
SELECT 1;
