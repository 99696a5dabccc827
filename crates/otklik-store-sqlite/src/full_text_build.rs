//! Builds the full-text indexes at the end of a bulk import on a thread and connection of their
//! own, into a scratch file, while the writer builds the B-tree indexes; the writer then copies
//! the finished indexes in.
//!
//! The end of an import is the writer's alone, one statement after another: at a million
//! tickets 14 s of B-tree indexes, then 11 s of FTS5 rebuild and 2 s of vocabulary, with the
//! second core idle. FTS5 builds an index as fast into a contentless table in another file, and
//! a transaction that only writes that file takes no lock on the database: the other core
//! builds it from the committed rows while the writer sorts. Copying the finished index (about
//! 100 MB of segments, a row of sizes per document) takes the writer about a second.
//!
//! The copy is FTS5's own tables, row for row: the scratch table is declared from the live
//! table's definition (only its content option differs, which the segments do not record) and
//! its shadow tables and settings are compared before anything is copied. Anything unexpected
//! and the caller rebuilds in place, as before: slower, never wrong.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, Transaction, params};

use crate::access_terms::NOT_AN_ACCESS_TERM;

/// A full-text index and the table whose rows it indexes (its external content).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FullTextIndex {
    pub(crate) name: &'static str,
    pub(crate) content: &'static str,
}

/// Every full-text index of the store.
pub(crate) const FULL_TEXT_INDEXES: [FullTextIndex; 2] = [
    FullTextIndex {
        name: "ticket_fts",
        content: "ticket_search",
    },
    FullTextIndex {
        name: "customer_fts",
        content: "customer_search",
    },
];

/// The index whose terms make the vocabulary of search-as-you-type (see `derived`).
const VOCABULARY_INDEX: &str = "ticket_fts";

/// FTS5's tables behind an index, by suffix, with the columns copied.
const SHADOW_TABLES: [(&str, &str); 3] = [
    ("data", "id, block"),
    ("idx", "segid, term, pgno"),
    ("docsize", "id, sz"),
];

/// Why a scratch build was not used (the caller then rebuilds in place).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ScratchBuildError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the definition of {index} does not name its content as expected: {sql}")]
    UnexpectedDefinition { index: &'static str, sql: String },
    #[error("the scratch copy of {index} differs from the live index in {what}")]
    Differs {
        index: &'static str,
        what: &'static str,
    },
    #[error("the full-text build thread panicked")]
    Panicked,
}

/// A build under way. Dropping it waits for the thread and removes the scratch file.
pub(crate) struct ScratchBuild {
    scratch: PathBuf,
    thread: Option<JoinHandle<Result<(), ScratchBuildError>>>,
}

impl ScratchBuild {
    /// Starts building every index from the rows committed in the database `transaction`
    /// writes. Call it while the transaction holds the write lock and has changed nothing the
    /// indexes cover: the committed rows are then exactly those the transaction sees. `None`
    /// (logged) for an in-memory database, or when the thread cannot start.
    pub(crate) fn start(transaction: &Transaction<'_>) -> Option<ScratchBuild> {
        let database = PathBuf::from(transaction.path().filter(|path| !path.is_empty())?);
        let scratch = scratch_path(&database);
        remove_scratch(&scratch);
        let thread = std::thread::Builder::new()
            .name("otklik-sqlite-fts".into())
            .spawn({
                let scratch = scratch.clone();
                move || build(&database, &scratch)
            });
        match thread {
            Ok(thread) => Some(ScratchBuild {
                scratch,
                thread: Some(thread),
            }),
            Err(error) => {
                tracing::warn!(%error, "no full-text build beside the writer");
                None
            }
        }
    }

    /// Waits for the build, then replaces every index and fills the vocabulary from it, in
    /// `transaction`. `false` when the build failed or does not match (logged): the indexes may
    /// then be empty or half-copied, and the caller rebuilds them in place.
    pub(crate) fn copy_into(mut self, transaction: &Transaction<'_>) -> bool {
        let started = std::time::Instant::now();
        let built = self
            .thread
            .take()
            .map_or(Err(ScratchBuildError::Panicked), |thread| {
                thread.join().unwrap_or(Err(ScratchBuildError::Panicked))
            });
        let waited = started.elapsed();
        let copied = built.and_then(|()| copy(&self.scratch, transaction));
        tracing::debug!(
            ?waited,
            copying = ?started.elapsed() - waited,
            "full-text indexes built beside the writer"
        );
        if let Err(error) = &copied {
            tracing::warn!(%error, "the full-text indexes are rebuilt in place instead");
        }
        copied.is_ok()
    }
}

impl Drop for ScratchBuild {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        remove_scratch(&self.scratch);
    }
}

fn scratch_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-fulltext-build");
    PathBuf::from(name)
}

fn remove_scratch(scratch: &Path) {
    match std::fs::remove_file(scratch) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            tracing::warn!(%error, path = %scratch.display(), "could not remove the scratch full-text build")
        }
    }
}

/// The live definition of `index`, as a contentless table in the scratch database: the same
/// columns, tokenizer and detail, so the same segments.
fn scratch_definition(index: FullTextIndex, live: &str) -> Result<String, ScratchBuildError> {
    let unexpected = || ScratchBuildError::UnexpectedDefinition {
        index: index.name,
        sql: live.to_owned(),
    };
    let content = format!("content = '{}', content_rowid = 'rowid'", index.content);
    let head = format!("CREATE VIRTUAL TABLE {} USING fts5", index.name);
    if live.matches(&content).count() != 1 || !live.starts_with(&head) {
        return Err(unexpected());
    }
    Ok(live.replacen(&content, "content = ''", 1).replacen(
        &head,
        &format!("CREATE VIRTUAL TABLE scratch.{} USING fts5", index.name),
        1,
    ))
}

/// On the build thread: every index, and the vocabulary, from one snapshot of the database.
fn build(database: &Path, scratch: &Path) -> Result<(), ScratchBuildError> {
    // The flags apply to the scratch file too, which this creates.
    let connection = Connection::open_with_flags(
        database,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.execute("ATTACH DATABASE ?1 AS scratch", [scratch.to_string_lossy()])?;
    // A scratch file: nothing to recover if the process dies (the import is then finished
    // in place on the next open).
    connection.execute_batch(
        "PRAGMA scratch.journal_mode = OFF; PRAGMA scratch.synchronous = OFF; BEGIN;",
    )?;
    for index in FULL_TEXT_INDEXES {
        let live: String = connection.query_row(
            "SELECT sql FROM main.sqlite_schema WHERE name = ?1",
            [index.name],
            |row| row.get(0),
        )?;
        connection.execute_batch(&scratch_definition(index, &live)?)?;
        let columns = connection
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{}')",
                index.name
            ))?
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?
            .join(", ");
        connection.execute_batch(&format!(
            "INSERT INTO scratch.{name} (rowid, {columns}) \
             SELECT rowid, {columns} FROM main.{content}; \
             INSERT INTO scratch.{name} ({name}) VALUES ('optimize');",
            name = index.name,
            content = index.content,
        ))?;
    }
    connection.execute_batch(&format!(
        "CREATE VIRTUAL TABLE scratch.terms USING fts5vocab ({VOCABULARY_INDEX}, 'row'); \
         CREATE TABLE scratch.vocabulary AS \
         SELECT length(term) AS chars, term FROM scratch.terms WHERE {NOT_AN_ACCESS_TERM} \
         ORDER BY chars, term; \
         COMMIT;"
    ))?;
    Ok(())
}

/// On the writer: checks the scratch indexes against the live ones, then copies them in.
fn copy(scratch: &Path, transaction: &Transaction<'_>) -> Result<(), ScratchBuildError> {
    let source = Connection::open_with_flags(
        scratch,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    for index in FULL_TEXT_INDEXES {
        for suffix in ["data", "idx", "docsize", "config"] {
            let table = format!("{}_{suffix}", index.name);
            if shadow_definition(&source, &table)? != shadow_definition(transaction, &table)? {
                return Err(ScratchBuildError::Differs {
                    index: index.name,
                    what: "its tables",
                });
            }
        }
        let settings = format!("SELECT k, v FROM {}_config ORDER BY k", index.name);
        if rows_as_text(&source, &settings)? != rows_as_text(transaction, &settings)? {
            return Err(ScratchBuildError::Differs {
                index: index.name,
                what: "its settings",
            });
        }
    }
    for index in FULL_TEXT_INDEXES {
        // Through FTS5 first, so this connection forgets the index's structure it may hold in
        // memory; then its tables are emptied of what that wrote and filled from the scratch.
        transaction.execute_batch(&format!(
            "INSERT INTO {name} ({name}) VALUES ('delete-all')",
            name = index.name
        ))?;
        for (suffix, columns) in SHADOW_TABLES {
            let table = format!("{}_{suffix}", index.name);
            transaction.execute_batch(&format!("DELETE FROM {table}"))?;
            copy_rows(&source, transaction, &table, columns)?;
        }
    }
    copy_rows(&source, transaction, "vocabulary", "chars, term")?;
    Ok(())
}

/// Copies `columns` of every row of `table` in `source` into the transaction's table of the
/// same name (`vocabulary` goes into `search_terms`).
fn copy_rows(
    source: &Connection,
    transaction: &Transaction<'_>,
    table: &str,
    columns: &str,
) -> Result<(), ScratchBuildError> {
    let count = columns.split(',').count();
    let placeholders = (1..=count)
        .map(|n| format!("?{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let target = if table == "vocabulary" {
        "INSERT OR IGNORE INTO search_terms (chars, term)".to_owned()
    } else {
        format!("INSERT INTO {table} ({columns})")
    };
    let mut insert = transaction.prepare(&format!("{target} VALUES ({placeholders})"))?;
    let mut select = source.prepare(&format!("SELECT {columns} FROM {table}"))?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let values = (0..count)
            .map(|column| {
                row.get_ref(column)
                    .map(rusqlite::types::ToSqlOutput::Borrowed)
            })
            .collect::<Result<Vec<_>, _>>()?;
        insert.execute(rusqlite::params_from_iter(values))?;
    }
    Ok(())
}

fn shadow_definition(connection: &Connection, table: &str) -> rusqlite::Result<Option<String>> {
    connection
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = ?1",
            params![table],
            |row| row.get(0),
        )
        .map(Some)
        .or_else(|error| match error {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            error => Err(error),
        })
}

fn rows_as_text(connection: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    connection
        .prepare(sql)?
        .query_map([], |row| {
            Ok(format!(
                "{:?}={:?}",
                row.get_ref(0)?.as_str().ok(),
                row.get::<_, rusqlite::types::Value>(1)?
            ))
        })?
        .collect()
}

/// Whether every full-text index agrees with its content table (FTS5's own check).
#[cfg(test)]
pub(crate) fn check_integrity(connection: &Connection) -> rusqlite::Result<()> {
    for index in FULL_TEXT_INDEXES {
        connection.execute_batch(&format!(
            "INSERT INTO {name} ({name}, rank) VALUES ('integrity-check', 1)",
            name = index.name
        ))?;
    }
    Ok(())
}
