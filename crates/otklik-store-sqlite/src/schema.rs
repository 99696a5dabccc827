//! The logical schema of the SQLite database, for the cross-backend schema check.

use otklik_store::ColumnInfo;
use rusqlite::Connection;

/// Every column of every Otklik table, with SQLite's declared types mapped to logical names.
pub fn logical_schema(connection: &Connection) -> rusqlite::Result<Vec<ColumnInfo>> {
    let tables: Vec<String> = connection
        .prepare(
            // FTS5 virtual tables and their shadow tables are the search index's internals,
            // which differ by backend by design (PostgreSQL keeps a tsvector column instead);
            // `deferred_schema` is SQLite's bulk-import bookkeeping (PostgreSQL keeps indexes);
            // `ticket_visibility` is its search's copy of a few ticket columns (V20).
            "SELECT name FROM sqlite_schema AS t WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'refinery_%' \
             AND name <> 'deferred_schema' AND name <> 'ticket_visibility' \
             AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' \
             AND NOT EXISTS (SELECT 1 FROM sqlite_schema AS v WHERE v.type = 'table' \
                 AND v.sql LIKE 'CREATE VIRTUAL TABLE%' AND t.name LIKE v.name || '\\_%' ESCAPE '\\') \
             ORDER BY name",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut columns = Vec::new();
    for table in tables {
        let mut statement =
            connection.prepare("SELECT name, type, \"notnull\" FROM pragma_table_info(?1)")?;
        let rows = statement.query_map([&table], |row| {
            let declared: String = row.get(1)?;
            let logical_type = match declared.to_uppercase().as_str() {
                "INTEGER" => "int",
                "TEXT" => "text",
                "BLOB" => "bytes",
                "BOOLEAN" => "bool",
                "JSON" => "json",
                _ => "unknown",
            };
            Ok(ColumnInfo {
                table: table.clone(),
                column: row.get(0)?,
                logical_type: logical_type.to_owned(),
                nullable: !row.get::<_, bool>(2)?,
            })
        })?;
        for column in rows {
            let column = column?;
            // Who may see the ticket, as terms for FTS5 (V22); PostgreSQL writes them into its
            // search document's `tsvector` (V21), another index internal.
            if column.table == "ticket_search" && column.column == "access_terms" {
                continue;
            }
            columns.push(column);
        }
    }
    columns.sort();
    Ok(columns)
}
