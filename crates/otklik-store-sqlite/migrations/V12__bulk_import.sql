-- What a bulk import set aside: the secondary indexes of the big ticket tables and the search
-- index's triggers, each with the SQL that recreates it. The import's end runs them again and
-- rebuilds the full-text indexes; opening a database where this table is not empty (an import
-- that was interrupted) does the same before anything else.
CREATE TABLE deferred_schema (
    name  TEXT PRIMARY KEY NOT NULL,
    sql   TEXT NOT NULL
) WITHOUT ROWID;
