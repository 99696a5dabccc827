-- PostgreSQL's migration of this number spells its era words with each ticket's team. Kept so
-- both backends carry the same versions.
SELECT 1;
