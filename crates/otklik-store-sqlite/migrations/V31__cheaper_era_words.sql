-- PostgreSQL's migration of this number spells its era words (its V30) more cheaply. Kept so
-- both backends carry the same versions.
SELECT 1;
