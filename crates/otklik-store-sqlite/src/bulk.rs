//! Bulk import: the ticket tables' secondary indexes and the search index's triggers are set
//! aside while millions of rows go in, then built once. A B-tree built from sorted rows at the
//! end costs a fraction of a million scattered inserts into it, and FTS5 indexes a whole table
//! in one pass (see [`otklik_store::Mutation::BeginBulkImport`]).
//!
//! What was set aside is recorded, with the SQL that recreates it, in `deferred_schema` in the
//! same transaction that drops it, so an interrupted import is finished by the next open
//! ([`finish_interrupted`]) and never leaves a database without its indexes.

use rusqlite::{Connection, Transaction, params};

use crate::full_text_build::{FULL_TEXT_INDEXES, ScratchBuild};
use crate::write::db;
use otklik_store::{Mutation, StoreResult, UnitOfWork};

/// WAL pages after which a commit copies the log back into the database: SQLite's default
/// normally, many more during an import. Each checkpoint writes every page changed since the
/// last one, and an import changes the same few pages (the tables' last leaves, the counters) in
/// every unit: fewer checkpoints write them fewer times. The log grows to about this size.
const CHECKPOINT_PAGES: i64 = 1_000;
const CHECKPOINT_PAGES_DURING_IMPORT: i64 = 50_000;
// An import's commits still wait for the disk (`synchronous = FULL`): letting units that only
// import go unsynced until the import's end was measured no faster (1M demo 61.3–62.9 s
// against 62.2–64.2 s, runs interleaved): a 100k demo makes 278 fsyncs of about a millisecond.

/// Tables whose non-unique indexes an import sets aside: those that get a row or more per
/// imported ticket. Unique indexes stay: they are rules, not speed-ups.
const INDEXED_TABLES: &str = "'tickets', 'messages', 'audit_events', 'ticket_tags'";
/// Tables whose triggers feed a full-text index, rebuilt whole at the end.
const SEARCH_CONTENT_TABLES: &str = "'ticket_search', 'customer_search'";

/// Where the end of an import may build the full-text indexes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FullTextSource {
    /// The transaction has changed no row yet: what is committed is what it sees, so a second
    /// connection can build the indexes beside the writer ([`ScratchBuild`]).
    Committed,
    /// The transaction has changed rows already: only it sees them, so it rebuilds in place.
    ThisTransaction,
}

/// How the end of an import built the full-text indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FullTextBuilt {
    /// Nothing was set aside: no import was under way.
    NothingToDo,
    /// Beside the writer, then copied in.
    Beside,
    /// By the writer, after the B-tree indexes.
    InPlace,
}

/// Sets the indexes and triggers aside, remembering how to recreate them.
pub(crate) fn begin(transaction: &Transaction<'_>) -> StoreResult<()> {
    let objects: Vec<(String, String, String)> = db(transaction
        .prepare(&format!(
            "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL AND ( \
               (type = 'index' AND tbl_name IN ({INDEXED_TABLES}) AND sql NOT LIKE 'CREATE UNIQUE%') \
               OR (type = 'trigger' AND tbl_name IN ({SEARCH_CONTENT_TABLES})))"
        ))
        .and_then(|mut s| {
            s.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect()
        }))?;
    for (kind, name, sql) in objects {
        db(transaction
            .prepare_cached("INSERT INTO deferred_schema (name, sql) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![name, sql])))?;
        let kind = if kind == "index" { "INDEX" } else { "TRIGGER" };
        db(transaction.execute_batch(&format!("DROP {kind} \"{name}\"")))?;
    }
    Ok(())
}

/// Recreates what [`begin`] set aside and builds the full-text indexes and the vocabulary
/// anew: beside the writer while it builds the B-tree indexes when `source` allows, else in
/// place after them. Does nothing when nothing is set aside.
pub(crate) fn end(
    transaction: &Transaction<'_>,
    source: FullTextSource,
) -> StoreResult<FullTextBuilt> {
    let objects: Vec<(String, String)> = db(transaction
        .prepare("SELECT name, sql FROM deferred_schema ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        }))?;
    if objects.is_empty() {
        return Ok(FullTextBuilt::NothingToDo);
    }
    let beside = match source {
        FullTextSource::Committed => ScratchBuild::start(transaction),
        FullTextSource::ThisTransaction => None,
    };
    // At a million tickets the B-trees take 13.8 s, a quarter of it `ticket_tags_by_tag`: 2.5M
    // rows of 22 tags in ticket order, sorted by tag (3.6–4.5 s; by ticket, already in order,
    // 1.0 s). `PRAGMA threads` and a smaller or larger cache did not shorten the sorts.
    for (name, sql) in &objects {
        tracing::debug!(%name, "building what the bulk import set aside");
        db(transaction.execute_batch(sql))?;
    }
    let built = if beside.is_some_and(|build| build.copy_into(transaction)) {
        FullTextBuilt::Beside
    } else {
        rebuild_full_text_indexes(transaction)?;
        // The vocabulary was not written during the import (see `derived`): the rebuilt index
        // lists every token, in order.
        db(transaction.execute_batch(&format!(
            "INSERT OR IGNORE INTO search_terms (chars, term) \
             SELECT length(term), term FROM ticket_fts_terms WHERE {}",
            crate::access_terms::NOT_AN_ACCESS_TERM
        )))?;
        FullTextBuilt::InPlace
    };
    db(transaction.execute_batch("DELETE FROM deferred_schema"))?;
    Ok(built)
}

/// Runs `fill`, which rewrites the full-text indexes' tables, with the triggers that feed the
/// indexes set aside, then rebuilds both indexes from their tables in one pass. A rebuild
/// rewrites every search row: through the triggers each row would be tokenised twice (out of
/// the index, then into it) and the index merged as it grows. All in the caller's transaction,
/// so a failure leaves the triggers and indexes as they were.
pub(crate) fn with_full_text_rebuilt<T>(
    transaction: &Transaction<'_>,
    fill: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
) -> StoreResult<T> {
    let triggers: Vec<(String, String)> = db(transaction
        .prepare(&format!(
            "SELECT name, sql FROM sqlite_schema \
             WHERE type = 'trigger' AND tbl_name IN ({SEARCH_CONTENT_TABLES}) ORDER BY name"
        ))
        .and_then(|mut s| {
            s.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        }))?;
    for (name, _) in &triggers {
        db(transaction.execute_batch(&format!("DROP TRIGGER \"{name}\"")))?;
    }
    let filled = fill(transaction)?;
    for (_, sql) in &triggers {
        db(transaction.execute_batch(sql))?;
    }
    rebuild_full_text_indexes(transaction)?;
    Ok(filled)
}

/// Rebuilds both full-text indexes from their tables, each merged into one segment. A rebuild
/// writes a segment each time its buffer fills (23 for the tickets at a million), and a search
/// steps through every segment of each word: merged, an agent's «refunding» took 4.0 ms instead
/// of 4.6, + solved 6.3 instead of 7.0; merging took 3.2 s. New entries then come in small
/// segments that FTS5 merges as they accumulate.
pub(crate) fn rebuild_full_text_indexes(transaction: &Transaction<'_>) -> StoreResult<()> {
    for index in FULL_TEXT_INDEXES {
        db(transaction.execute_batch(&format!(
            "INSERT INTO {name} ({name}) VALUES ('rebuild'); \
             INSERT INTO {name} ({name}) VALUES ('optimize');",
            name = index.name
        )))?;
    }
    Ok(())
}

/// Whether a bulk import is under way (in this transaction's view).
pub(crate) fn under_way(transaction: &Transaction<'_>) -> StoreResult<bool> {
    db(transaction
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM deferred_schema)")
        .and_then(|mut s| s.query_row([], |row| row.get(0))))
}

/// Whether `unit` begins or ends an import (the writer then sets its checkpoints anew).
pub(crate) fn starts_or_ends(unit: &UnitOfWork) -> bool {
    unit.mutations.iter().any(|mutation| {
        matches!(
            mutation,
            Mutation::BeginBulkImport | Mutation::EndBulkImport
        )
    })
}

/// Sets the writer's automatic checkpoints for an import under way or none, and after an import
/// copies the whole log into the database and empties it: the log of a million-ticket import
/// holds every rebuilt index (about a gigabyte) and would otherwise keep that size on disk.
/// Outside a transaction (SQLite applies the settings to the connection). A failure only costs
/// speed or disk space: it is logged. Returns whether an import is under way.
pub(crate) fn configure_checkpoints(connection: &Connection) -> bool {
    let pages = connection
        .query_row("SELECT EXISTS (SELECT 1 FROM deferred_schema)", [], |row| {
            row.get::<_, bool>(0)
        })
        .map(|importing| {
            if importing {
                CHECKPOINT_PAGES_DURING_IMPORT
            } else {
                CHECKPOINT_PAGES
            }
        });
    let importing = matches!(pages, Ok(CHECKPOINT_PAGES_DURING_IMPORT));
    let set = pages.and_then(|pages| {
        connection.query_row(&format!("PRAGMA wal_autocheckpoint = {pages}"), [], |_| {
            Ok(())
        })?;
        if pages == CHECKPOINT_PAGES {
            // Readers still on old pages make it wait (the busy handler), then copy what it can.
            connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    });
    if let Err(error) = set {
        tracing::warn!(%error, "could not set the WAL checkpoints after a bulk import's start or end");
    }
    importing
}

/// How often the background checkpointer copies the log during an import.
const BACKGROUND_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Copies the write-ahead log into the database on a thread and connection of its own while an
/// import is under way, so the single writer does not: SQLite lets a checkpoint run beside the
/// writer (`PASSIVE`: it copies what is committed and waits for no one). When the writer's own
/// automatic checkpoint comes due, most frames are already copied and it only finishes the rest
/// and starts the log over. Copying was ~7% of the writer's work in an import, on the writer's
/// core; the other core has room while the writer is the bottleneck. Stops (and joins) when
/// dropped.
pub(crate) struct BackgroundCheckpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Passes that found frames to copy.
    copying_passes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl BackgroundCheckpointer {
    /// Starts one on the database file `connection` writes; `None` (logged) for an in-memory
    /// database or when the file cannot be opened again: the writer then checkpoints alone.
    pub(crate) fn start(connection: &Connection) -> Option<BackgroundCheckpointer> {
        let path = connection.path().filter(|path| !path.is_empty())?;
        let checkpointing = match Connection::open(path) {
            Ok(checkpointing) => checkpointing,
            Err(error) => {
                tracing::warn!(%error, "no background checkpoints during the bulk import");
                return None;
            }
        };
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let copying_passes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let passes = copying_passes.clone();
        let thread = std::thread::Builder::new()
            .name("otklik-sqlite-ckpt".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(BACKGROUND_CHECKPOINT_INTERVAL)
                {
                    // (busy, frames in the log, frames copied so far); busy when the writer's
                    // own checkpoint holds the lock: it copies them then.
                    let copied =
                        checkpointing.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                        });
                    match copied {
                        Ok((frames, copied)) if frames > 0 && copied > 0 => {
                            passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(error) => tracing::debug!(%error, "background checkpoint skipped"),
                    }
                }
            });
        match thread {
            Ok(thread) => Some(BackgroundCheckpointer {
                stop: Some(stop),
                thread: Some(thread),
                copying_passes,
            }),
            Err(error) => {
                tracing::warn!(%error, "no background checkpoints during the bulk import");
                None
            }
        }
    }

    /// Passes so far that copied frames.
    #[cfg(test)]
    pub(crate) fn copying_passes(&self) -> u64 {
        self.copying_passes
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for BackgroundCheckpointer {
    fn drop(&mut self) {
        // Closing the channel wakes the thread, which then ends.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        tracing::debug!(
            passes = self
                .copying_passes
                .load(std::sync::atomic::Ordering::Relaxed),
            "background checkpoints of the bulk import stopped"
        );
    }
}

/// Ends an import that a crash or a kill interrupted, before the store serves anything (and
/// before it migrates: nothing to do on a database older than bulk imports, V12).
pub(crate) fn finish_interrupted(connection: &mut Connection) -> StoreResult<()> {
    let tracked: bool = db(connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'deferred_schema')",
        [],
        |row| row.get(0),
    ))?;
    if !tracked {
        return Ok(());
    }
    let pending: i64 =
        db(connection.query_row("SELECT count(*) FROM deferred_schema", [], |row| row.get(0)))?;
    if pending == 0 {
        return Ok(());
    }
    tracing::warn!(
        objects = pending,
        "a bulk import was interrupted: building the indexes it set aside"
    );
    // Immediate: the write lock is held before anything is read, so what is committed stays
    // what this transaction sees (the full-text build beside it reads that).
    let transaction =
        db(connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate))?;
    end(&transaction, FullTextSource::Committed)?;
    db(transaction.commit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint_pages(connection: &Connection) -> i64 {
        connection
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn checkpoints_are_rarer_while_an_import_is_under_way_and_back_to_normal_after() {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch("CREATE TABLE deferred_schema (name TEXT PRIMARY KEY, sql TEXT)")
            .unwrap();
        connection
            .execute_batch("INSERT INTO deferred_schema VALUES ('some_index', 'CREATE INDEX …')")
            .unwrap();
        assert!(configure_checkpoints(&connection), "an import is under way");
        assert_eq!(
            checkpoint_pages(&connection),
            CHECKPOINT_PAGES_DURING_IMPORT
        );
        connection
            .execute_batch("DELETE FROM deferred_schema")
            .unwrap();
        assert!(!configure_checkpoints(&connection));
        assert_eq!(checkpoint_pages(&connection), CHECKPOINT_PAGES);
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // a plain thread test: sleeping blocks no async worker
    fn a_background_checkpointer_copies_the_log_while_the_writer_writes_and_stops_when_dropped() {
        let folder = tempfile::tempdir().unwrap();
        let mut writer = Connection::open(folder.path().join("otklik.db")).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 CREATE TABLE t (x TEXT)",
            )
            .unwrap();
        assert!(
            BackgroundCheckpointer::start(&Connection::open_in_memory().unwrap()).is_none(),
            "nothing to copy for an in-memory database"
        );
        let checkpointer = BackgroundCheckpointer::start(&writer).expect("started");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while checkpointer.copying_passes() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was never copied in the background"
            );
            let transaction = writer.transaction().unwrap();
            for _ in 0..100 {
                transaction
                    .execute("INSERT INTO t VALUES (?1)", ["x".repeat(1000)])
                    .unwrap();
            }
            transaction.commit().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Dropping it joins its thread: this returns, and the writer goes on alone.
        drop(checkpointer);
        writer
            .execute("INSERT INTO t VALUES ('after')", [])
            .unwrap();
    }
}
