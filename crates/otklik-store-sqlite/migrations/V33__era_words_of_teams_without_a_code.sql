-- PostgreSQL's migration of this number spells the era words of a team without a code apart.
-- Kept so both backends carry the same versions.
SELECT 1;
