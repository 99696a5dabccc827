-- PostgreSQL's migration of this number writes who may see each ticket into its search
-- document. SQLite's search tests each match against `ticket_visibility` (V20), a narrow table
-- under the full-text index's rowids. Kept so both backends carry the same versions.
SELECT 1;
