//! Migrations and the logical schema.

use otklik_store::{ColumnInfo, StoreError, StoreResult};

use crate::Client;
use crate::error::map_error;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// refinery's bookkeeping table; not part of Otklik's schema.
const HISTORY_TABLE: &str = "refinery_schema_history";
/// Tables that exist only as the search index's internals, as FTS5's tables do on SQLite: the
/// logical schema leaves them out, as it leaves out `tsvector` columns.
const SEARCH_INDEX_TABLES: [&str; 4] = [
    "ticket_documents",
    "ticket_era_words",
    "team_search_codes",
    "ticket_update_eras",
];

/// An arbitrary constant ("otklik" in ASCII) naming the advisory lock held while migrating, so
/// two servers started at once against one empty database do not both try to create it.
const MIGRATION_LOCK: i64 = 0x6f74_6b6c_696b;

/// Brings the schema up to date. Runs on one connection, under a session advisory lock that is
/// released whether or not the migration succeeds (the connection goes back to the pool).
pub(crate) async fn migrate(client: &mut Client) -> StoreResult<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(map_error)?;
    let pg_client: &mut tokio_postgres::Client = client;
    let runner = embedded::migrations::runner();
    let newest_known = runner
        .get_migrations()
        .iter()
        .map(refinery::Migration::version)
        .max()
        .unwrap_or_default();
    let outcome = runner.run_async(pg_client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    // A database with a migration newer than any this build knows was upgraded by a newer
    // Otklik: said plainly, for the operator who rolled the binary back.
    let report = outcome.map_err(|error| match error.kind() {
        refinery::error::Kind::MissingVersion(migration) if migration.version() > newest_known => {
            StoreError::SchemaTooNew {
                migration: migration.to_string(),
            }
        }
        _ => StoreError::database(error),
    })?;
    unlocked.map_err(map_error)?;
    for migration in report.applied_migrations() {
        tracing::info!(
            version = migration.version(),
            name = migration.name(),
            "applied migration"
        );
    }
    Ok(())
}

/// The backend-neutral name of a PostgreSQL column type; an unexpected type is returned as is,
/// so a schema comparison shows it rather than failing to run.
fn logical_type(data_type: &str) -> String {
    match data_type {
        "bigint" | "integer" | "smallint" => "int",
        "text" | "character varying" => "text",
        "uuid" | "bytea" => "bytes",
        "boolean" => "bool",
        "jsonb" | "json" => "json",
        other => other,
    }
    .to_owned()
}

/// Every column of every table of the `public` schema, sorted. `tsvector` columns and the tables
/// of [`SEARCH_INDEX_TABLES`] are left out:
/// they are the search index's internals, which differ by backend by design (SQLite keeps FTS5
/// tables instead, which its schema leaves out likewise).
pub(crate) async fn logical_schema(client: &Client) -> StoreResult<Vec<ColumnInfo>> {
    // The casts turn information_schema's domain types (sql_identifier, character_data) into
    // plain text the driver decodes.
    let rows = client
        .query(
            "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name, \
                    c.data_type::text AS data_type, c.is_nullable::text AS is_nullable \
             FROM information_schema.columns c \
             JOIN information_schema.tables t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' \
               AND c.table_name <> $1 AND c.table_name <> ALL ($2) AND c.data_type <> 'tsvector'",
            &[&HISTORY_TABLE, &&SEARCH_INDEX_TABLES[..]],
        )
        .await
        .map_err(map_error)?;
    let mut columns = rows
        .iter()
        .map(|row| {
            let data_type: &str = crate::rows::get(row, "data_type")?;
            let nullable: &str = crate::rows::get(row, "is_nullable")?;
            Ok(ColumnInfo {
                table: crate::rows::get(row, "table_name")?,
                column: crate::rows::get(row, "column_name")?,
                logical_type: logical_type(data_type),
                nullable: nullable == "YES",
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    columns.sort();
    Ok(columns)
}
