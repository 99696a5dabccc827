-- SQLite's migration of this number writes who may see each ticket into its full-text entries,
-- as V21 did here for the search documents. Kept so both backends carry the same versions.
SELECT 1;
