//! Behaviour specific to the PostgreSQL backend, beyond the shared conformance suite.

use otklik_store_postgres::testkit as test_database;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use otklik_domain::customer::{Customer, Identity, IdentityKind, IdentityValue};
use otklik_domain::ids::{CustomerId, IdentityId, TicketId};
use otklik_domain::ticket::{Channel, NewTicket, Priority, TicketStatus};
use otklik_store::{ColumnInfo, Mutation, Store, StoreError, UnitOfWork};
use otklik_store_postgres::PostgresStore;
use test_database::{create_database, fresh_database};

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).expect("valid test time")
}

fn customer(email: &str) -> Customer {
    let id = CustomerId::new();
    Customer {
        id,
        name: "Test".into(),
        language: None,
        identities: vec![Identity {
            id: IdentityId::new(),
            customer_id: id,
            value: IdentityValue::parse(IdentityKind::Email, None, email).expect("valid email"),
            created_at: at(0),
        }],
        merged_into: None,
        created_at: at(0),
        updated_at: at(0),
        version: 1,
    }
}

fn ticket(customer_id: CustomerId, tags: &[&str]) -> NewTicket {
    NewTicket {
        id: TicketId::new(),
        subject: "Subject".into(),
        status: TicketStatus::New,
        priority: Priority::Normal,
        channel: Channel::Email,
        customer_id,
        assignee_id: None,
        team_id: None,
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
        created_at: at(1),
    }
}

/// A customer with `email`, stored.
async fn insert_customer(store: &dyn Store, email: &str) -> Customer {
    let stored = customer(email);
    store
        .commit(UnitOfWork::new().with(Mutation::InsertCustomer(stored.clone())))
        .await
        .unwrap();
    stored
}

async fn insert_ticket(store: &dyn Store, draft: NewTicket) -> Result<i64, StoreError> {
    let receipt = store
        .commit(UnitOfWork::new().with(Mutation::InsertTicket(draft)))
        .await?;
    Ok(receipt.ticket_numbers[0])
}

/// The backend-neutral name of a SQLite column type.
fn logical_type(sql_type: &str, table: &str, column: &str) -> &'static str {
    match sql_type.trim_end_matches([',', ';']) {
        "INTEGER" => "int",
        "TEXT" => "text",
        "BLOB" => "bytes",
        "BOOLEAN" => "bool",
        "JSON" => "json",
        other => panic!("unexpected SQLite type {other} for {table}.{column}"),
    }
}

/// The SQLite migrations' logical schema, read from their SQL (plain, regular files: one column
/// per line inside `CREATE TABLE … ( … );`; a table rebuilt is dropped and another renamed to it). FTS5 virtual tables and the triggers that fill them
/// are the search index's internals on SQLite only (PostgreSQL keeps `tsvector` columns and the
/// `ticket_documents` table, which its logical schema leaves out): they are skipped.
fn sqlite_schema(sql: &str) -> (Vec<ColumnInfo>, BTreeSet<String>) {
    let mut columns: Vec<ColumnInfo> = Vec::new();
    let mut indexes = BTreeSet::new();
    let mut table: Option<String> = None;
    let mut in_trigger = false;
    for line in sql.lines().map(str::trim) {
        if line.starts_with("CREATE TRIGGER ") {
            in_trigger = true;
        } else if in_trigger {
            in_trigger = line != "END;";
        } else if line.starts_with("CREATE VIRTUAL TABLE ") {
            table = None;
        } else if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
            table = rest.split_whitespace().next().map(str::to_owned);
        } else if let Some(rest) = line.strip_prefix("DROP TABLE ") {
            // A table rebuilt under a new name and renamed back (V17) loses its old columns.
            let dropped = rest.trim_end_matches(';');
            columns.retain(|column| column.table != dropped);
        } else if let Some(rest) = line.strip_prefix("ALTER TABLE ") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.as_slice() {
                // `ALTER TABLE t ADD COLUMN c TYPE …`: a column appended to an existing table.
                [table, "ADD", "COLUMN", column, sql_type, ..] => columns.push(ColumnInfo {
                    table: (*table).to_owned(),
                    column: (*column).to_owned(),
                    logical_type: logical_type(sql_type, table, column).to_owned(),
                    nullable: !line.contains("NOT NULL"),
                }),
                [from, "RENAME", "TO", to] => {
                    let to = to.trim_end_matches(';');
                    for column in columns.iter_mut().filter(|column| column.table == *from) {
                        column.table = to.to_owned();
                    }
                }
                _ => {}
            }
        } else if let Some(rest) = line.strip_prefix("CREATE INDEX ") {
            indexes.extend(rest.split_whitespace().next().map(str::to_owned));
        } else if line.starts_with(')') {
            // `);` or `) WITHOUT ROWID;`
            table = None;
        } else if let Some(table) = &table {
            let mut words = line.split_whitespace();
            let (Some(column), Some(sql_type)) = (words.next(), words.next()) else {
                continue;
            };
            let is_column = !line.starts_with("--")
                && !["PRIMARY", "UNIQUE", "CONSTRAINT", "FOREIGN", "CHECK"].contains(&column);
            if !is_column {
                continue;
            }
            let logical_type = logical_type(sql_type, table, column);
            columns.push(ColumnInfo {
                table: table.clone(),
                column: column.to_owned(),
                logical_type: logical_type.to_owned(),
                nullable: !line.contains("NOT NULL") && !line.contains("PRIMARY KEY"),
            });
        }
    }
    // SQLite's bulk-import bookkeeping (V12): PostgreSQL keeps its indexes through an import;
    // its search's copy of a few ticket columns (V20), which PostgreSQL's search does not use;
    // and the terms of who may see a ticket for FTS5 (V22), which PostgreSQL keeps inside its
    // documents' `tsvector` (V21).
    let sqlite_only = |column: &ColumnInfo| {
        ["deferred_schema", "ticket_visibility"].contains(&column.table.as_str())
            || (column.table == "ticket_search" && column.column == "access_terms")
    };
    columns.retain(|column| !sqlite_only(column));
    columns.sort();
    (columns, indexes)
}

/// Every `V<n>__*.sql` of a migration folder, in version order, joined.
fn migrations_in_order(folder: &Path) -> String {
    let mut files: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(folder)
        .expect("the migration folder is readable")
        .map(|entry| entry.expect("a readable entry").path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            let version = name.strip_prefix('V')?.split("__").next()?.parse().ok()?;
            name.ends_with(".sql").then_some((version, path))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "expected V1 and V2 in {}",
        folder.display()
    );
    files
        .iter()
        .map(|(_, path)| std::fs::read_to_string(path).expect("a readable migration"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs one catalog query in the named test database on a connection of its own.
async fn catalog_rows(database_name: &str, sql: &str) -> Vec<tokio_postgres::Row> {
    let url = test_database::with_database(&test_database::admin_url(), database_name);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let rows = client.query(sql, &[]).await.unwrap();
    drop(client);
    let _ = connection.await;
    rows
}

#[tokio::test]
async fn the_logical_schema_and_indexes_match_the_sqlite_migrations() {
    let folder = crate_dir().join("../otklik-store-sqlite/migrations");
    let sql = migrations_in_order(&folder);
    let (expected_columns, expected_indexes) = sqlite_schema(&sql);
    for table in [
        "ticket_search",
        "customer_search",
        "ticket_counters",
        "views",
    ] {
        assert!(
            expected_columns.iter().any(|column| column.table == table),
            "{table} parsed from V2"
        );
    }
    assert!(
        !expected_columns
            .iter()
            .any(|column| column.table.ends_with("_fts")),
        "FTS5 tables are skipped: {expected_columns:?}"
    );
    assert!(
        expected_columns.len() > 50,
        "parsed too few columns: {expected_columns:?}"
    );

    let database = fresh_database().await;
    let columns = database.store.logical_schema().await.unwrap();
    assert_eq!(columns, expected_columns);

    // Indexes created explicitly (not those behind PRIMARY KEY and UNIQUE constraints), except
    // the GIN indexes over `tsvector` columns: the search index's internals, FTS5 on SQLite.
    let rows = catalog_rows(
        &database.database.name,
        "SELECT indexname::text FROM pg_indexes i WHERE schemaname = 'public' AND NOT EXISTS \
             (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) AND NOT EXISTS \
             (SELECT 1 FROM pg_index x JOIN pg_attribute a \
                ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey) \
              WHERE x.indexrelid = format('%I.%I', i.schemaname, i.indexname)::regclass \
                AND a.atttypid = 'tsvector'::regtype)",
    )
    .await;
    let indexes: BTreeSet<String> = rows.iter().map(|row| row.get(0)).collect();
    assert_eq!(indexes, expected_indexes);
}

/// Without them the planner guesses a rare token (an e-mail, an order number) at a fraction of a
/// percent of the rows and walks the whole table newest first instead of reading its few
/// matches from the index: tens of milliseconds at a few hundred thousand rows. The era words
/// (V30) keep the default: they are asked only for a few eras' words, each rarer than any a
/// sample lists, so every estimate is small and the plan is the index's; finer statistics would
/// only make ANALYZE read a sample ten times larger.
#[tokio::test]
async fn every_search_document_keeps_fine_statistics_for_the_planner() {
    let database = fresh_database().await;
    let rows = catalog_rows(
        &database.database.name,
        "SELECT c.relname::text, a.attstattarget::int FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r' \
               AND a.atttypid = 'tsvector'::regtype AND NOT a.attisdropped \
             ORDER BY 1",
    )
    .await;
    let targets: Vec<(String, i32)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(
        targets,
        vec![
            ("customer_search".to_owned(), 1000),
            ("ticket_documents".to_owned(), 1000),
            ("ticket_era_words".to_owned(), -1),
        ]
    );
}

#[tokio::test]
async fn debug_output_never_shows_the_password() {
    let (url, _database) = create_database().await;
    // Trust authentication ignores the password, so the URL still connects.
    let with_password = url.replacen("://postgres@", "://postgres:hunter2-secret@", 1);
    assert_ne!(with_password, url, "the test URL names the postgres user");
    let store = PostgresStore::connect(&with_password, 1).await.unwrap();
    let debug = format!("{store:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("postgres@"), "{debug}");
    store.close();
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_not_a_hang() {
    // Port 1 on localhost refuses connections.
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        PostgresStore::connect("postgres://postgres:pw@127.0.0.1:1/nothing", 1),
    )
    .await
    .expect("connect gives up by itself");
    let error = outcome.expect_err("nothing listens on port 1");
    assert!(matches!(error, StoreError::Database(_)), "{error:?}");
    assert!(!error.to_string().contains("pw@"), "{error}");
}

/// Searches read the newest tickets' rows first, and those are the rows changed most: their old
/// versions must not wait for PostgreSQL's default (a fifth of the table dead) to be vacuumed.
#[tokio::test]
async fn the_tables_searches_read_are_vacuumed_after_a_few_thousand_dead_rows() {
    let (url, _database) = create_database().await;
    let store = PostgresStore::connect(&url, 1).await.unwrap();
    store.close();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    for table in [
        "tickets",
        "ticket_search",
        "ticket_documents",
        "ticket_era_words",
    ] {
        let options: Vec<String> = client
            .query_one(
                "SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = to_regclass($1)",
                &[&table],
            )
            .await
            .unwrap()
            .get(0);
        for expected in [
            "autovacuum_vacuum_scale_factor=0.002",
            "autovacuum_vacuum_threshold=1000",
        ] {
            assert!(
                options.iter().any(|option| option == expected),
                "{table} lacks {expected}: {options:?}"
            );
        }
    }
    drop(client);
    connection.await.unwrap().unwrap();
}

/// After an import the planner must know the tables' new sizes at once, not when autovacuum
/// next analyzes them (never, where it is off): it planned an agent's search at 100,000
/// tickets by the empty tables' statistics, at 98 ms instead of 9.
#[tokio::test]
async fn the_end_of_an_import_tells_the_planner_how_big_the_tables_now_are() {
    let (url, _database) = create_database().await;
    let store = PostgresStore::connect(&url, 1).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let estimated_customers = || async {
        client
            .query_one(
                "SELECT reltuples::float8 FROM pg_class WHERE oid = 'customers'::regclass",
                &[],
            )
            .await
            .unwrap()
            .get::<_, f64>(0)
    };
    let mut unit = UnitOfWork::new().with(Mutation::BeginBulkImport);
    for n in 0..40 {
        unit = unit.with(Mutation::InsertCustomer(customer(&format!(
            "buyer{n}@example.ru"
        ))));
    }
    store.commit(unit).await.unwrap();
    assert!(
        estimated_customers().await < 40.0,
        "nothing has analyzed the customers yet"
    );
    store
        .commit(UnitOfWork::new().with(Mutation::EndBulkImport))
        .await
        .unwrap();
    assert_eq!(estimated_customers().await, 40.0);
    store.close();
    drop(client);
    connection.await.unwrap().unwrap();
}

#[tokio::test]
async fn starting_twice_at_once_migrates_once_and_keeps_data() {
    let (url, _database) = create_database().await;
    let (first, second) = tokio::join!(
        PostgresStore::connect(&url, 2),
        PostgresStore::connect(&url, 2)
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let anna = customer("anna@example.com");
    first
        .commit(UnitOfWork::new().with(Mutation::InsertCustomer(anna.clone())))
        .await
        .unwrap();
    first.close();
    second.close();
    let again = PostgresStore::connect(&url, 1).await.unwrap();
    assert_eq!(
        again.find_customer(anna.id).await.unwrap().map(|c| c.id),
        Some(anna.id)
    );
    again.close();
}

/// An operator who rolls the binary back after an upgrade is told what happened and what to do;
/// the database is left as it is.
#[tokio::test]
async fn a_database_upgraded_by_a_newer_otklik_is_refused_with_what_to_do() {
    let (url, _database) = create_database().await;
    PostgresStore::connect(&url, 1).await.unwrap().close();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let (version, name) = otklik_store::conformance::MIGRATION_FROM_A_NEWER_OTKLIK;
    client
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
             VALUES ($1, $2, '2027-01-01T00:00:00Z', '1')",
            &[&version, &name],
        )
        .await
        .unwrap();
    let error = PostgresStore::connect(&url, 1)
        .await
        .expect_err("a schema newer than this build is refused");
    otklik_store::conformance::assert_refused_as_newer_schema(&error);
    let kept: i64 = client
        .query_one(
            "SELECT count(*) FROM refinery_schema_history WHERE version = $1",
            &[&version],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 1, "nothing was changed");
}

#[tokio::test]
async fn ping_answers_and_file_backup_is_refused() {
    let database = fresh_database().await;
    database.store.ping().await.unwrap();
    let error = database
        .store
        .backup_to(Path::new("/tmp/never-written"))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unsupported(_)), "{error:?}");
}

#[tokio::test]
async fn a_missing_referenced_row_is_not_found_and_rolls_back() {
    let database = fresh_database().await;
    let draft = ticket(CustomerId::new(), &["orphan"]);
    let error = insert_ticket(database.store.as_ref(), draft.clone())
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::NotFound { what: "customer" }),
        "{error:?}"
    );
    assert_eq!(database.store.find_ticket(draft.id).await.unwrap(), None);
    assert!(database.store.list_tags().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_rolled_back_insert_leaves_a_gap_but_numbers_keep_increasing() {
    let database = fresh_database().await;
    let store = database.store.as_ref();
    let anna = insert_customer(store, "anna@example.com").await;
    let first = insert_ticket(store, ticket(anna.id, &[])).await.unwrap();
    // Same customer inserted twice: the unit fails after the ticket took its number.
    let failing = UnitOfWork::new()
        .with(Mutation::InsertTicket(ticket(anna.id, &[])))
        .with(Mutation::InsertCustomer(anna.clone()));
    let error = store.commit(failing).await.unwrap_err();
    assert!(matches!(&error, StoreError::Conflict { constraint } if constraint == "customers.id"));
    let third = insert_ticket(store, ticket(anna.id, &[])).await.unwrap();
    assert!(third > first + 1, "{first} then {third}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_units_creating_the_same_tag_all_succeed_and_share_it() {
    let database = fresh_database().await;
    let store: Arc<dyn Store> = database.store.clone();
    let anna = insert_customer(store.as_ref(), "anna@example.com").await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            let draft = ticket(anna.id, &["brand-new", "shared"]);
            tokio::spawn(async move { insert_ticket(store.as_ref(), draft).await })
        })
        .collect();
    for task in tasks {
        task.await
            .unwrap()
            .expect("a tag created concurrently is reused, not a conflict");
    }
    let names: Vec<_> = store
        .list_tags()
        .await
        .unwrap()
        .into_iter()
        .map(|tag| tag.name)
        .collect();
    assert_eq!(names, vec!["brand-new", "shared"]);
}

#[tokio::test]
async fn updating_a_ticket_replaces_its_tag_set() {
    let database = fresh_database().await;
    let store = database.store.as_ref();
    let anna = insert_customer(store, "anna@example.com").await;
    let draft = ticket(anna.id, &["a", "b"]);
    let number = insert_ticket(store, draft.clone()).await.unwrap();
    let mut edited = draft.into_ticket(number);
    for (version, tags) in [(1, vec!["b", "c"]), (2, vec![]), (3, vec!["c", "c"])] {
        edited.tags = tags.iter().map(|tag| (*tag).to_owned()).collect();
        let update = Mutation::UpdateTicket {
            ticket: edited.clone(),
            expected_version: version,
        };
        store.commit(UnitOfWork::new().with(update)).await.unwrap();
        let mut expected: Vec<String> = edited.tags.clone();
        expected.dedup();
        assert_eq!(
            store.find_ticket(edited.id).await.unwrap().unwrap().tags,
            expected
        );
    }
    let names: Vec<_> = store
        .list_tags()
        .await
        .unwrap()
        .into_iter()
        .map(|tag| tag.name)
        .collect();
    assert_eq!(
        names,
        vec!["a", "b", "c"],
        "tags outlive the tickets that used them"
    );
}

/// V19 marks the documents of tickets merged before it ran: without the mark, a search by
/// someone who sees every ticket would find them (it no longer reads the tickets).
#[tokio::test]
async fn the_migration_that_marks_merged_documents_marks_those_merged_before_it() {
    let database = fresh_database().await;
    let store = database.store.as_ref();
    let anna = insert_customer(store, "anna@example.com").await;
    let survivor = ticket(anna.id, &[]);
    let survivor_number = insert_ticket(store, survivor.clone()).await.unwrap();
    let merged = ticket(anna.id, &[]);
    let merged_number = insert_ticket(store, merged.clone()).await.unwrap();
    let mut merged = merged.into_ticket(merged_number);
    merged.merged_into = Some(survivor.id);
    store
        .commit(UnitOfWork::new().with(Mutation::UpdateTicket {
            ticket: merged.clone(),
            expected_version: 1,
        }))
        .await
        .unwrap();
    // The documents as they stood before V19: none marked.
    catalog_rows(
        &database.database.name,
        "UPDATE ticket_documents SET merged = false",
    )
    .await;
    let v19 = std::fs::read_to_string(
        crate_dir().join("migrations/V19__documents_know_merged_tickets.sql"),
    )
    .expect("V19 is readable");
    let backfill: String = v19
        .lines()
        .filter(|line| !line.starts_with("--") && !line.starts_with("ALTER TABLE"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(backfill.contains("UPDATE ticket_documents"), "{backfill}");
    catalog_rows(&database.database.name, &backfill).await;

    let rows = catalog_rows(
        &database.database.name,
        "SELECT ticket_id, merged FROM ticket_documents ORDER BY ticket_id",
    )
    .await;
    let marks: Vec<(uuid::Uuid, bool)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(
        marks,
        vec![(survivor.id.0, false), (merged.id.0, true)],
        "survivor {survivor_number}, merged {merged_number}"
    );
}

/// How many of this database's sessions wait for a lock right now. Asked outside a transaction:
/// inside one, `pg_stat_activity` keeps showing what it showed first.
async fn sessions_waiting_for_a_lock(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .expect("reads the sessions")
        .get(0)
}

#[tokio::test]
async fn a_node_runs_no_more_searches_at_once_than_it_is_told_and_the_rest_wait_their_turn() {
    let (url, _database) = create_database().await;
    let store = Arc::new(
        PostgresStore::connect(&url, 4)
            .await
            .expect("connects")
            .with_searches_at_once(2),
    );
    let owner = insert_customer(store.as_ref(), "turns@example.com").await;
    let draft = ticket(owner.id, &[]);
    let ticket_id = draft.id;
    insert_ticket(store.as_ref(), draft).await.expect("stored");
    // Another session holds the documents, so every search that reaches the database waits
    // there for the lock, where `pg_stat_activity` shows it.
    let (locker, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    locker
        .batch_execute("BEGIN; LOCK TABLE ticket_documents IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("locks the documents");
    let (observer, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    let searches: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let search = otklik_store::TicketSearch {
                    query: otklik_search::parse_query("subject ").expect("query"),
                    filter: otklik_store::TicketFilter::default(),
                    visibility: otklik_store::Visibility::All,
                    limit: 10,
                };
                store.search_tickets(&search).await
            })
        })
        .collect();
    let mut waiting = 0;
    for _ in 0..200 {
        waiting = sessions_waiting_for_a_lock(&observer).await;
        if waiting >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(waiting, 2, "two searches reach the database");
    // The third waits its turn outside the database, holding no connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sessions_waiting_for_a_lock(&observer).await, 2);
    assert!(searches.iter().all(|search| !search.is_finished()));
    locker.batch_execute("ROLLBACK").await.expect("unlocks");
    for search in searches {
        let found = search.await.expect("the search ran").expect("it found");
        assert_eq!(
            found.iter().map(|ticket| ticket.id).collect::<Vec<_>>(),
            vec![ticket_id]
        );
    }
    store.close();
}

/// The crate's folder in the checkout being tested: cargo and nextest set the variable when they
/// run the test too. The path built in is the fallback only: a target folder shared between
/// checkouts may run a binary built in another, since removed.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
