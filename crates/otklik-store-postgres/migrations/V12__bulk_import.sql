-- SQLite's migration of this number adds the table where a bulk import keeps the indexes it
-- set aside. PostgreSQL maintains its indexes during an import (see `Mutation::BeginBulkImport`).
-- Kept so both backends carry the same versions.
SELECT 1;
