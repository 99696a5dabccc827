//! Unit tests of the SQLite store's internals; the behaviour every backend shares is tested by
//! the conformance suite (`otklik_store::conformance`).

use std::time::Duration;

use super::*;

/// The build options of `.cargo/config.toml` reached the bundled SQLite: a page cache per
/// connection (a shared one serialised the readers on its mutex), no global memory
/// statistics (a mutex on every allocation).
#[test]
fn the_bundled_sqlite_gives_each_connection_its_own_page_cache() {
    let connection = Connection::open_in_memory().unwrap();
    let options: Vec<String> = connection
        .prepare("PRAGMA compile_options")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
        "{options:?}"
    );
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
}

/// The moment test records are dated.
fn test_time() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_700_000_000).unwrap()
}

/// A customer without identities.
fn test_customer() -> otklik_domain::customer::Customer {
    otklik_domain::customer::Customer {
        id: otklik_domain::ids::CustomerId::new(),
        name: "Вера".into(),
        language: None,
        identities: vec![],
        merged_into: None,
        created_at: test_time(),
        updated_at: test_time(),
        version: 1,
    }
}

/// A new, unassigned e-mail ticket of `customer_id`.
fn test_ticket(
    id: otklik_domain::ids::TicketId,
    customer_id: otklik_domain::ids::CustomerId,
    subject: &str,
    status: otklik_domain::ticket::TicketStatus,
) -> otklik_domain::ticket::NewTicket {
    otklik_domain::ticket::NewTicket {
        id,
        subject: subject.into(),
        status,
        priority: otklik_domain::ticket::Priority::Normal,
        channel: otklik_domain::ticket::Channel::Email,
        customer_id,
        assignee_id: None,
        team_id: None,
        tags: vec![],
        created_at: test_time(),
    }
}

/// The customer's e-mail on `ticket_id`.
fn test_message(
    ticket_id: otklik_domain::ids::TicketId,
    customer_id: otklik_domain::ids::CustomerId,
    body: String,
) -> otklik_domain::message::Message {
    otklik_domain::message::Message {
        id: otklik_domain::ids::MessageId::new(),
        ticket_id,
        author: otklik_domain::message::Author::Customer(customer_id),
        visibility: otklik_domain::message::MessageVisibility::Public,
        channel: otklik_domain::ticket::Channel::Email,
        body,
        attachments: vec![],
        created_at: test_time(),
    }
}

/// A unit creating a new ticket of `customer_id` with one long message: heavy to analyse.
fn heavy_ticket_unit(
    ticket_id: otklik_domain::ids::TicketId,
    customer_id: otklik_domain::ids::CustomerId,
    body: String,
) -> UnitOfWork {
    use otklik_store::Mutation;
    let unit = UnitOfWork::new()
        .with(Mutation::InsertTicket(test_ticket(
            ticket_id,
            customer_id,
            "Большое письмо",
            otklik_domain::ticket::TicketStatus::New,
        )))
        .with(Mutation::InsertMessage(test_message(
            ticket_id,
            customer_id,
            body,
        )));
    assert!(derived::AnalysedText::is_heavy(&unit));
    unit
}

/// An operator who rolls the binary back after an upgrade is told what happened and what to
/// do.
#[test]
fn a_database_upgraded_by_a_newer_otklik_is_refused_with_what_to_do() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("otklik.db");
    drop(SqliteStore::open(&path).unwrap());
    let (version, name) = otklik_store::conformance::MIGRATION_FROM_A_NEWER_OTKLIK;
    Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
                 VALUES (?1, ?2, '2027-01-01T00:00:00Z', '1')",
            rusqlite::params![version, name],
        )
        .unwrap();
    let Err(error) = SqliteStore::open(&path) else {
        panic!("a schema newer than this build is refused");
    };
    otklik_store::conformance::assert_refused_as_newer_schema(&error);
}

/// A database at `path` migrated only up to `version`, as an older Otklik left it.
fn database_at_version(path: &Path, version: i32) -> Connection {
    let mut connection = Connection::open(path).unwrap();
    configure(&connection).unwrap();
    migrations::migrations::runner()
        .set_target(refinery::Target::Version(version))
        .run(&mut connection)
        .unwrap();
    connection
}

/// A read that keeps its connection busy for a while.
fn slow_read(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) \
             SELECT count(*) FROM n",
        [],
        |row| row.get(0),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_cancelled_mid_query_give_their_connections_back() {
    let folder = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&folder.path().join("otklik.db")).unwrap());
    // Callers that give up while their query runs (a browser cancelling a request).
    for _ in 0..READ_CONNECTIONS * 2 {
        let _ = tokio::time::timeout(Duration::from_millis(1), store.read(slow_read)).await;
    }
    // The abandoned queries finish on their own and hand their connections back.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while store.readers.lock().unwrap().len() < READ_CONNECTIONS {
        assert!(
            std::time::Instant::now() < deadline,
            "read connections were lost: {} of {READ_CONNECTIONS} came back",
            store.readers.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every connection is usable: more reads at once than the pool holds all succeed.
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..READ_CONNECTIONS * 2 {
        let store = store.clone();
        reads.spawn(async move {
            store
                .read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
                .await
        });
    }
    while let Some(result) = reads.join_next().await {
        assert_eq!(result.unwrap().unwrap(), 1);
    }
    assert_eq!(store.readers.lock().unwrap().len(), READ_CONNECTIONS);
}

#[tokio::test]
async fn heavy_units_reach_the_writer_in_the_order_their_commits_began() {
    use std::future::Future;

    use otklik_domain::ids::TicketId;
    use otklik_store::Mutation;

    let folder = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&folder.path().join("otklik.db")).unwrap());
    let customer = test_customer();
    store
        .commit(UnitOfWork::new().with(Mutation::InsertCustomer(customer.clone())))
        .await
        .unwrap();
    // A ticket whose text takes a while to analyse, then one that takes much less.
    let heavy_unit = |words: usize| {
        heavy_ticket_unit(
            TicketId::new(),
            customer.id,
            "доставка заказа ".repeat(words),
        )
    };
    let mut commits = Vec::new();
    for unit in [heavy_unit(200_000), heavy_unit(20_000)] {
        // Begun in this order, as the demo begins its units: one poll each.
        let store = store.clone();
        let mut commit = Box::pin(async move { store.commit(unit).await });
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(commit.as_mut().poll(&mut context).is_pending());
        commits.push(tokio::spawn(commit));
    }
    let mut numbers = Vec::new();
    for commit in commits {
        numbers.extend(commit.await.unwrap().unwrap().ticket_numbers);
    }
    assert_eq!(
        numbers,
        vec![1, 2],
        "the first unit begun got the first number"
    );
}

#[tokio::test]
async fn a_long_message_is_analysed_off_the_async_workers_and_found() {
    use otklik_domain::ids::TicketId;
    use otklik_store::Mutation;

    let folder = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&folder.path().join("otklik.db")).unwrap();
    let customer = test_customer();
    let ticket_id = TicketId::new();
    let body = format!("{} ксилофон", "длинное письмо ".repeat(30_000));
    store
        .commit(UnitOfWork::new().with(Mutation::InsertCustomer(customer.clone())))
        .await
        .unwrap();
    store
        .commit(heavy_ticket_unit(ticket_id, customer.id, body))
        .await
        .unwrap();
    assert_eq!(found_ids(&store, "ксилофон ").await, vec![ticket_id]);
}

/// Tickets whose search row is missing or not under the ticket's rowid (V17's invariant).
async fn misplaced_search_rows(store: &SqliteStore) -> i64 {
    store
        .read(|c| {
            c.query_row(
                "SELECT count(*) FROM tickets t LEFT JOIN ticket_search s ON s.ticket_id = t.id \
                     WHERE s.rowid IS NOT t.rowid",
                [],
                |row| row.get(0),
            )
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_search_row_takes_its_ticket_rowid_whatever_order_its_unit_wrote_tickets_in() {
    use otklik_domain::ids::TicketId;
    use otklik_domain::ticket::TicketStatus;
    use otklik_store::Mutation;

    let folder = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&folder.path().join("otklik.db")).unwrap();
    let customer = test_customer();
    let ticket = |id: TicketId, subject: &str, status: TicketStatus| {
        Mutation::InsertTicket(test_ticket(id, customer.id, subject, status))
    };
    let (older, newer, newest) = (TicketId::new(), TicketId::new(), TicketId::new());
    // Written against the order of their ids: the search rows' own order (by id) is not
    // the tickets'.
    store
        .commit(
            UnitOfWork::new()
                .with(Mutation::InsertCustomer(customer.clone()))
                .with(ticket(newest, "Ксилофон открыт", TicketStatus::Open))
                .with(ticket(newer, "Ксилофон решён", TicketStatus::Solved))
                .with(ticket(older, "Ксилофон открыт давно", TicketStatus::Open)),
        )
        .await
        .unwrap();
    assert_eq!(misplaced_search_rows(&store).await, 0);
    assert_eq!(
        found_in_status(&store, "ксилофон ", TicketStatus::Open).await,
        vec![older, newest]
    );

    store
        .commit(UnitOfWork::new().with(Mutation::RebuildDerivedData))
        .await
        .unwrap();
    assert_eq!(misplaced_search_rows(&store).await, 0);
    assert_eq!(
        found_in_status(&store, "ксилофон ", TicketStatus::Open).await,
        vec![older, newest]
    );
}

#[tokio::test]
async fn text_prepared_before_the_writer_is_what_it_would_have_written_itself() {
    use otklik_domain::customer::{Identity, IdentityKind, IdentityValue};
    use otklik_domain::ids::{IdentityId, TicketId};
    use otklik_domain::ticket::TicketStatus;
    use otklik_store::Mutation;

    let folder = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&folder.path().join("otklik.db")).unwrap();
    let mut customer = test_customer();
    let identity = |value: &str, second: i64| Identity {
        id: IdentityId::new(),
        customer_id: customer.id,
        value: IdentityValue::parse(IdentityKind::Email, None, value).unwrap(),
        created_at: jiff::Timestamp::from_second(second).unwrap(),
    };
    // Listed against the order a rebuild reads them in (oldest first).
    customer.identities = vec![
        identity("vera.late@example.ru", 1_700_000_200),
        identity("vera.early@example.ru", 1_700_000_100),
    ];
    let ticket_id = TicketId::new();
    let event = otklik_domain::audit::AuditEvent::new(
        test_time(),
        otklik_domain::audit::Actor::System,
        "ticket.created",
        "ticket",
        ticket_id.0,
        vec![otklik_domain::audit::set("subject", "Возврат «заказов»")],
    );
    let unit = UnitOfWork::new()
        .with(Mutation::Audit(event.clone()))
        .with(Mutation::InsertCustomer(customer.clone()))
        .with(Mutation::InsertTicket(test_ticket(
            ticket_id,
            customer.id,
            "Возврат заказов",
            TicketStatus::New,
        )))
        .with(Mutation::InsertMessage(test_message(
            ticket_id,
            customer.id,
            "Верните деньги за доставку".into(),
        )));
    let prepared = write::Prepared::of(&unit);
    assert_eq!(
        prepared.audit_changes.len(),
        1,
        "the audit changes are written ahead"
    );
    let analysed = prepared.terms;
    assert_eq!(analysed.subjects.len(), 1, "the subject is analysed ahead");
    assert_eq!(
        analysed.customers.len(),
        1,
        "the customer is analysed ahead"
    );
    store.commit(unit).await.unwrap();

    let terms = || {
        store.read(move |c| {
            c.query_row(
                "SELECT s.subject_terms, s.body_terms, c.terms \
                     FROM ticket_search s, customer_search c WHERE s.ticket_id = ?1",
                [&ticket_id.as_bytes()[..]],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )
        })
    };
    let event_id = event.id;
    let stored_changes: String = store
        .read(move |c| {
            c.query_row(
                "SELECT changes FROM audit_events WHERE id = ?1",
                [&event_id.as_bytes()[..]],
                |row| row.get(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(stored_changes, event.changes_json_text());
    let written = terms().await.unwrap();
    assert!(
        written.0.starts_with("1 "),
        "led by the number: {}",
        written.0
    );
    assert!(
        written.2.find("earl").unwrap() < written.2.find("late").unwrap(),
        "identities in stored order (oldest first): {}",
        written.2
    );
    store
        .commit(UnitOfWork::new().with(Mutation::RebuildDerivedData))
        .await
        .unwrap();
    assert_eq!(terms().await.unwrap(), written);
}

#[tokio::test]
async fn search_rows_of_an_existing_database_move_under_their_tickets_rowids() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("otklik.db");
    let ticket_ids: Vec<[u8; 16]> = (0..3)
        .map(|_| *otklik_domain::ids::TicketId::new().as_bytes())
        .collect();
    {
        // A database as V16 left it: search rows numbered apart from their tickets.
        let connection = database_at_version(&path, 16);
        connection
            .execute(
                "INSERT INTO customers (id, name, created_at, updated_at, version) \
                     VALUES (zeroblob(16), 'Вера', 0, 0, 1)",
                [],
            )
            .unwrap();
        for (n, (id, status)) in ticket_ids
            .iter()
            .zip(["open", "solved", "open"])
            .enumerate()
        {
            let n = i64::try_from(n).unwrap();
            connection
                    .execute(
                        "INSERT INTO tickets (id, number, subject, status, priority, channel, \
                         customer_id, created_at, updated_at, version) \
                         VALUES (?1, ?2, 'Ксилофон', ?3, 'normal', 'email', zeroblob(16), ?2, ?2, 1)",
                        rusqlite::params![&id[..], n + 1, status],
                    )
                    .unwrap();
            connection
                .execute(
                    "INSERT INTO ticket_search (rowid, ticket_id, subject_terms, body_terms) \
                         VALUES (?1, ?2, ?3, '')",
                    rusqlite::params![100 - n, &id[..], format!("{} ксилофон", n + 1)],
                )
                .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(misplaced_search_rows(&store).await, 0);
    let open = TicketSearch {
        query: otklik_search::parse_query("ксилофон ").unwrap(),
        filter: otklik_store::TicketFilter {
            statuses: vec![otklik_domain::ticket::TicketStatus::Open],
            ..otklik_store::TicketFilter::default()
        },
        visibility: otklik_store::Visibility::All,
        limit: 10,
    };
    let found: Vec<[u8; 16]> = store
        .search_tickets(&open)
        .await
        .unwrap()
        .iter()
        .map(|ticket| *ticket.id.as_bytes())
        .collect();
    assert_eq!(
        found,
        vec![ticket_ids[2], ticket_ids[0]],
        "the open ones, newest first"
    );
}

/// The ids of the tickets a search for `query` finds, best first.
async fn found_ids(store: &SqliteStore, query: &str) -> Vec<otklik_domain::ids::TicketId> {
    let search = TicketSearch {
        query: otklik_search::parse_query(query).unwrap(),
        filter: otklik_store::TicketFilter::default(),
        visibility: otklik_store::Visibility::All,
        limit: 10,
    };
    let found = store.search_tickets(&search).await.unwrap();
    found.iter().map(|ticket| ticket.id).collect()
}

/// The names of the database's indexes and triggers.
async fn schema_objects(store: &SqliteStore) -> Vec<String> {
    store
        .read(|c| {
            c.prepare(
                "SELECT name FROM sqlite_schema WHERE type IN ('index', 'trigger') \
                     AND sql IS NOT NULL ORDER BY name",
            )?
            .query_map([], |row| row.get(0))?
            .collect()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn the_end_of_a_bulk_import_empties_the_write_ahead_log_into_the_database() {
    use otklik_store::Mutation;

    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("otklik.db");
    let wal = folder.path().join("otklik.db-wal");
    let store = SqliteStore::open(&path).unwrap();
    store
        .commit(UnitOfWork::new().with(Mutation::BeginBulkImport))
        .await
        .unwrap();
    store
        .commit(UnitOfWork::new().with(Mutation::EndBulkImport))
        .await
        .unwrap();
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    // Written again after: the log is in use, not gone.
    store
        .commit(UnitOfWork::new().with(Mutation::SaveSetting {
            name: "probe".into(),
            value: Some("1".into()),
            at: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        }))
        .await
        .unwrap();
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
}

#[tokio::test]
async fn an_import_interrupted_under_an_older_schema_is_finished_before_migrating() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("otklik.db");
    {
        // V16's schema, killed in the middle of an import: its triggers and indexes set aside.
        let mut connection = database_at_version(&path, 16);
        let transaction = connection.transaction().unwrap();
        bulk::begin(&transaction).unwrap();
        transaction.commit().unwrap();
    }
    // V17 drops and recreates the search triggers: it needs them back first.
    let store = SqliteStore::open(&path).expect("opened, finished and migrated");
    let objects = schema_objects(&store).await;
    for expected in [
        "ticket_search_inserted",
        "tickets_by_status",
        "tickets_unassigned",
    ] {
        assert!(objects.iter().any(|name| name == expected), "{expected}");
    }
    let deferred: i64 = store
        .read(|c| c.query_row("SELECT count(*) FROM deferred_schema", [], |row| row.get(0)))
        .await
        .unwrap();
    assert_eq!(deferred, 0);
}

#[tokio::test]
async fn a_bulk_import_sets_indexes_aside_and_an_interrupted_one_is_finished_on_open() {
    use otklik_domain::ids::TicketId;
    use otklik_domain::ticket::TicketStatus;
    use otklik_store::Mutation;

    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("otklik.db");
    let store = SqliteStore::open(&path).unwrap();
    let every_object = schema_objects(&store).await;
    for expected in [
        "tickets_by_status",
        "messages_by_ticket",
        "ticket_search_inserted",
    ] {
        assert!(
            every_object.iter().any(|name| name == expected),
            "{expected}"
        );
    }
    store
        .commit(UnitOfWork::new().with(Mutation::BeginBulkImport))
        .await
        .unwrap();
    let during = schema_objects(&store).await;
    for set_aside in [
        "tickets_by_status",
        "messages_by_ticket",
        "ticket_search_inserted",
    ] {
        assert!(!during.iter().any(|name| name == set_aside), "{set_aside}");
    }
    // Rules stay: the unique number and the lookups the writer itself needs.
    assert!(
        during
            .iter()
            .any(|name| name == "customer_identities_by_customer")
    );
    let customer = test_customer();
    let ticket_id = TicketId::new();
    store
        .commit(
            UnitOfWork::new()
                .with(Mutation::InsertCustomer(customer.clone()))
                .with(Mutation::InsertTicket(test_ticket(
                    ticket_id,
                    customer.id,
                    "Ксилофон не пришёл",
                    TicketStatus::New,
                ))),
        )
        .await
        .unwrap();
    // The process dies before the import ends.
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(schema_objects(&store).await, every_object);
    let deferred: i64 = store
        .read(|c| c.query_row("SELECT count(*) FROM deferred_schema", [], |row| row.get(0)))
        .await
        .unwrap();
    assert_eq!(deferred, 0);
    assert_eq!(found_ids(&store, "ксилофон").await, vec![ticket_id]);
}

/// Begins an import in `store` and writes, with the indexes set aside, customers, tickets
/// of several teams and their messages. Returns the ids of the tickets whose messages say
/// «ксилофоны».
async fn import_under_way(store: &SqliteStore) -> Vec<otklik_domain::ids::TicketId> {
    use otklik_domain::ticket::TicketStatus;
    use otklik_store::Mutation;

    store
        .commit(UnitOfWork::new().with(Mutation::BeginBulkImport))
        .await
        .unwrap();
    let teams: Vec<otklik_domain::agent::Team> = ["Доставка", "Возвраты"]
        .into_iter()
        .map(|name| otklik_domain::agent::Team {
            id: otklik_domain::ids::TeamId::new(),
            name: name.into(),
            created_at: test_time(),
        })
        .collect();
    let mut unit = UnitOfWork::new();
    for team in &teams {
        unit.push(Mutation::InsertTeam(team.clone()));
    }
    let words = [
        "доставка курьером",
        "возврат платья",
        "оплата картой",
        "size exchange",
    ];
    let mut xylophones = Vec::new();
    for n in 0..30 {
        let mut customer = test_customer();
        customer.name = format!("Покупатель {n} {}", words[n % words.len()]);
        let ticket_id = otklik_domain::ids::TicketId::new();
        let mut ticket = test_ticket(
            ticket_id,
            customer.id,
            &format!("{} № {n}", words[(n + 1) % words.len()]),
            TicketStatus::Open,
        );
        ticket.team_id = (n % 3 < 2).then(|| teams[n % 3].id);
        let body = if n % 4 == 0 {
            xylophones.push(ticket_id);
            format!("Где мои ксилофоны? Заказ {}", 448_800 + n)
        } else {
            format!("{} refunding order {n}", words[n % words.len()])
        };
        unit.push(Mutation::InsertCustomer(customer.clone()));
        unit.push(Mutation::InsertTicket(ticket));
        unit.push(Mutation::InsertMessage(test_message(
            ticket_id,
            customer.id,
            body,
        )));
    }
    store.commit(unit).await.unwrap();
    xylophones
}

/// Commits a new ticket whose subject is `subject` and returns its id.
async fn commit_ticket(store: &SqliteStore, subject: &str) -> otklik_domain::ids::TicketId {
    use otklik_store::Mutation;
    let customer = test_customer();
    let ticket_id = otklik_domain::ids::TicketId::new();
    store
        .commit(
            UnitOfWork::new()
                .with(Mutation::InsertCustomer(customer.clone()))
                .with(Mutation::InsertTicket(test_ticket(
                    ticket_id,
                    customer.id,
                    subject,
                    otklik_domain::ticket::TicketStatus::New,
                ))),
        )
        .await
        .unwrap();
    ticket_id
}

/// Every row `sql` returns, as text.
fn rows_of(connection: &Connection, sql: &str) -> Vec<String> {
    connection
        .prepare(sql)
        .unwrap()
        .query_map([], |row| {
            (0..row.as_ref().column_count())
                .map(|column| row.get::<_, rusqlite::types::Value>(column))
                .collect::<rusqlite::Result<Vec<_>>>()
                .map(|values| format!("{values:?}"))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[tokio::test]
async fn the_end_of_an_import_builds_the_full_text_indexes_beside_the_writer_as_a_rebuild_in_place_would()
 {
    use bulk::{FullTextBuilt, FullTextSource};

    let folder = tempfile::tempdir().unwrap();
    let beside = folder.path().join("beside.db");
    let store = SqliteStore::open(&beside).unwrap();
    let xylophones = import_under_way(&store).await;
    drop(store);
    // Everything in the database file, so that it can be copied.
    Connection::open(&beside)
        .unwrap()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let in_place = folder.path().join("in-place.db");
    std::fs::copy(&beside, &in_place).unwrap();
    for (path, source, expected) in [
        (&beside, FullTextSource::Committed, FullTextBuilt::Beside),
        (
            &in_place,
            FullTextSource::ThisTransaction,
            FullTextBuilt::InPlace,
        ),
    ] {
        let mut connection = Connection::open(path).unwrap();
        configure(&connection).unwrap();
        let transaction = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        assert_eq!(bulk::end(&transaction, source).unwrap(), expected);
        transaction.commit().unwrap();
    }
    assert!(
        !folder.path().join("beside.db-fulltext-build").exists(),
        "the scratch file is removed"
    );

    let built_beside = Connection::open(&beside).unwrap();
    full_text_build::check_integrity(&built_beside).expect("FTS5 finds the copied indexes sound");
    let rebuilt = Connection::open(&in_place).unwrap();
    for connection in [&built_beside, &rebuilt] {
        connection
                .execute_batch(
                    "CREATE VIRTUAL TABLE temp.customer_terms USING fts5vocab (main, customer_fts, 'row')",
                )
                .unwrap();
    }
    for sql in [
        "SELECT term, doc, cnt FROM ticket_fts_terms ORDER BY term",
        "SELECT term, doc, cnt FROM temp.customer_terms ORDER BY term",
        "SELECT id, sz FROM ticket_fts_docsize ORDER BY id",
        "SELECT id, sz FROM customer_fts_docsize ORDER BY id",
        "SELECT chars, term FROM search_terms ORDER BY chars, term",
    ] {
        let expected = rows_of(&rebuilt, sql);
        assert!(!expected.is_empty(), "{sql}");
        assert_eq!(rows_of(&built_beside, sql), expected, "{sql}");
    }

    let store = SqliteStore::open(&beside).unwrap();
    let mut found = found_ids(&store, "ксилофон").await;
    found.sort_unstable();
    let mut expected = xylophones;
    expected.sort_unstable();
    assert_eq!(found, expected);
    assert_eq!(
        found_ids(&store, "ксилоф").await.len(),
        expected.len(),
        "by prefix, through the vocabulary"
    );
}

/// Segments of the ticket index: FTS5 keys each segment's pages by the segment's id in the
/// high bits of the rowid of `_data` (`FTS5_SEGMENT_ROWID`: above 37 bits of height, page
/// and doclist-index flag); rowids up to 10 hold the averages and the structure.
fn ticket_index_segments(connection: &Connection) -> i64 {
    connection
        .query_row(
            "SELECT count(DISTINCT id >> 37) FROM ticket_fts_data WHERE id > 10",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn a_full_text_index_rebuilt_at_the_end_of_an_import_is_one_segment() {
    use bulk::{FullTextBuilt, FullTextSource};

    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("otklik.db");
    let store = SqliteStore::open(&path).unwrap();
    import_under_way(&store).await;
    drop(store);
    let mut connection = Connection::open(&path).unwrap();
    configure(&connection).unwrap();
    // A rebuild writes a segment each time this much of the index is buffered: with a
    // small buffer, this import's index comes in many.
    connection
        .execute_batch("INSERT INTO ticket_fts (ticket_fts, rank) VALUES ('hashsize', 512)")
        .unwrap();
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    assert_eq!(
        bulk::end(&transaction, FullTextSource::ThisTransaction).unwrap(),
        FullTextBuilt::InPlace
    );
    transaction.commit().unwrap();
    assert_eq!(ticket_index_segments(&connection), 1);
    full_text_build::check_integrity(&connection).expect("FTS5 finds the index sound");
}

#[tokio::test]
async fn after_an_import_ends_beside_the_writer_the_store_writes_and_finds_new_tickets() {
    use otklik_store::Mutation;

    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("otklik.db");
    let store = SqliteStore::open(&path).unwrap();
    let xylophones = import_under_way(&store).await;
    store
        .commit(UnitOfWork::new().with(Mutation::EndBulkImport))
        .await
        .unwrap();
    // FTS5 keeps what it read of an index per connection: the writer's must not write
    // over the copied index from what it read before.
    let first = commit_ticket(&store, "Балалайка треснула").await;
    let second = commit_ticket(&store, "Балалайка расстроена").await;
    let mut found = found_ids(&store, "балалайка").await;
    found.sort_unstable();
    assert_eq!(found, [first, second]);
    assert_eq!(found_ids(&store, "ксилофон").await.len(), xylophones.len());
    full_text_build::check_integrity(&Connection::open(&path).unwrap()).unwrap();
}

#[tokio::test]
async fn an_import_ended_by_a_unit_that_also_writes_indexes_what_that_unit_wrote() {
    use otklik_domain::ids::TicketId;
    use otklik_domain::ticket::TicketStatus;
    use otklik_store::Mutation;

    // The unit's ticket before the end, then after it.
    for ends_first in [false, true] {
        let folder = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&folder.path().join("otklik.db")).unwrap();
        import_under_way(&store).await;
        let customer = test_customer();
        let ticket_id = TicketId::new();
        let mut mutations = vec![
            Mutation::InsertCustomer(customer.clone()),
            Mutation::InsertTicket(test_ticket(
                ticket_id,
                customer.id,
                "Балалайка треснула",
                TicketStatus::New,
            )),
        ];
        if ends_first {
            mutations.insert(0, Mutation::EndBulkImport);
        } else {
            mutations.push(Mutation::EndBulkImport);
        }
        let mut unit = UnitOfWork::new();
        for mutation in mutations {
            unit.push(mutation);
        }
        store.commit(unit).await.unwrap();
        assert_eq!(
            found_ids(&store, "балалайка").await,
            vec![ticket_id],
            "ends first: {ends_first}"
        );
        assert_eq!(
            found_ids(&store, "балал").await,
            vec![ticket_id],
            "by prefix; ends first: {ends_first}"
        );
        let later = commit_ticket(&store, "Балалайка расстроена").await;
        let mut found = found_ids(&store, "балалайка").await;
        found.sort_unstable();
        let mut expected = vec![ticket_id, later];
        expected.sort_unstable();
        assert_eq!(found, expected, "ends first: {ends_first}");
    }
}

/// The ids of the tickets in `status` that a search for `query` finds, sorted.
async fn found_in_status(
    store: &SqliteStore,
    query: &str,
    status: otklik_domain::ticket::TicketStatus,
) -> Vec<otklik_domain::ids::TicketId> {
    let filter = otklik_store::TicketFilter {
        statuses: vec![status],
        ..otklik_store::TicketFilter::default()
    };
    found_with(store, query, filter).await
}

/// The ids of the tickets passing `filter` that a search for `query` finds, sorted.
async fn found_with(
    store: &SqliteStore,
    query: &str,
    filter: otklik_store::TicketFilter,
) -> Vec<otklik_domain::ids::TicketId> {
    let search = TicketSearch {
        query: otklik_search::parse_query(query).unwrap(),
        filter,
        visibility: otklik_store::Visibility::All,
        limit: 50,
    };
    let mut found: Vec<_> = store
        .search_tickets(&search)
        .await
        .unwrap()
        .iter()
        .map(|ticket| ticket.id)
        .collect();
    found.sort_unstable();
    found
}

/// A store in a new folder with `count` tickets about a xylophone, each shaped by its position
/// (`shape`), inserted one unit each.
async fn store_with_xylophones(
    count: usize,
    shape: impl Fn(usize, &mut otklik_domain::ticket::NewTicket),
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    SqliteStore,
    Vec<otklik_domain::ticket::Ticket>,
) {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("otklik.db");
    let store = SqliteStore::open(&path).unwrap();
    let customer = test_customer();
    store
        .commit(UnitOfWork::new().with(otklik_store::Mutation::InsertCustomer(customer.clone())))
        .await
        .unwrap();
    let mut tickets = Vec::new();
    for n in 0..count {
        let id = otklik_domain::ids::TicketId::new();
        let mut draft = test_ticket(
            id,
            customer.id,
            &format!("Ксилофон {n}"),
            otklik_domain::ticket::TicketStatus::Open,
        );
        shape(n, &mut draft);
        let receipt = store
            .commit(UnitOfWork::new().with(otklik_store::Mutation::InsertTicket(draft.clone())))
            .await
            .unwrap();
        tickets.push(draft.into_ticket(receipt.ticket_numbers[0]));
    }
    (folder, path, store, tickets)
}

/// Commits `tickets` as they are now, each in a unit of its own.
async fn update_tickets(
    store: &SqliteStore,
    tickets: impl IntoIterator<Item = otklik_domain::ticket::Ticket>,
) {
    for ticket in tickets {
        store
            .commit(
                UnitOfWork::new().with(otklik_store::Mutation::UpdateTicket {
                    expected_version: ticket.version,
                    ticket,
                }),
            )
            .await
            .unwrap();
    }
}

/// Eight xylophones, updated in creation order; then those at `moved` are updated again, an
/// hour after the last: the store, its tickets as first written, and that hour.
async fn xylophones_some_updated_later(
    moved: &[usize],
) -> (
    tempfile::TempDir,
    Connection,
    Vec<otklik_domain::ticket::Ticket>,
    jiff::Timestamp,
) {
    let (folder, path, store, tickets) = store_with_xylophones(8, |_, _| {}).await;
    let later = tickets[7].updated_at + jiff::SignedDuration::from_hours(1);
    let updated = moved.iter().map(|&index| {
        let mut ticket = tickets[index].clone();
        ticket.updated_at = later;
        ticket
    });
    update_tickets(&store, updated).await;
    (folder, Connection::open(&path).unwrap(), tickets, later)
}

fn rowid_of(connection: &Connection, ticket: &otklik_domain::ticket::Ticket) -> i64 {
    connection
        .query_row(
            "SELECT rowid FROM tickets WHERE id = ?1",
            [&ticket.id.0.as_bytes()[..]],
            |row| row.get(0),
        )
        .unwrap()
}

/// The xylophones a search for «ксилофон» with `filter` finds, listing the passing tickets
/// first when at most `few` pass, sorted by id.
fn xylophones_found(
    connection: &Connection,
    filter: otklik_store::TicketFilter,
    few: i64,
) -> Vec<otklik_domain::ids::TicketId> {
    let search = TicketSearch {
        query: otklik_search::parse_query("ксилофон").unwrap(),
        filter,
        visibility: otklik_store::Visibility::All,
        limit: 50,
    };
    let mut found: Vec<_> = read::search_tickets_listing_at_most(connection, &search, few)
        .unwrap()
        .into_iter()
        .map(|ticket| ticket.id)
        .collect();
    found.sort_unstable();
    found
}

#[tokio::test]
async fn a_search_since_a_date_walks_back_to_the_oldest_ticket_updated_since_and_finds_it() {
    use read::UpdatedSince;

    // The second and the sixth are updated later than the rest.
    let (_folder, connection, tickets, since) = xylophones_some_updated_later(&[1, 5]).await;
    assert_eq!(
        read::oldest_updated_since(&connection, since).unwrap(),
        UpdatedSince::From {
            oldest: rowid_of(&connection, &tickets[1]),
            tickets: 2
        }
    );
    let later = since + jiff::SignedDuration::from_secs(1);
    assert_eq!(
        read::oldest_updated_since(&connection, later).unwrap(),
        UpdatedSince::None
    );

    // Listing the two first, or walking the matches down to the oldest of them.
    let since_filter = |since: jiff::Timestamp| otklik_store::TicketFilter {
        updated_since: Some(since),
        ..otklik_store::TicketFilter::default()
    };
    let mut expected = vec![tickets[1].id, tickets[5].id];
    expected.sort_unstable();
    for few in [otklik_store::RANKED_MATCHES, 0] {
        assert_eq!(
            xylophones_found(&connection, since_filter(since), few),
            expected,
            "listing at most {few}"
        );
        assert!(xylophones_found(&connection, since_filter(later), few).is_empty());
    }
}

#[tokio::test]
async fn a_search_before_a_date_starts_its_walk_at_the_newest_ticket_updated_before_it() {
    use read::UpdatedBefore;

    // The bound comes from the two tickets left before the date (second and sixth), or,
    // when more than five are, from the two moved past it (fourth and eighth, the newest).
    for (moved, expected_newest, counted, limits) in [
        (vec![0, 2, 3, 4, 6, 7], 5, Some(2), (100, 100)),
        (vec![3, 7], 6, None, (5, 100)),
    ] {
        let (_folder, connection, tickets, before) = xylophones_some_updated_later(&moved).await;
        assert_eq!(
            read::newest_updated_before(&connection, before, limits).unwrap(),
            UpdatedBefore::UpTo {
                newest: rowid_of(&connection, &tickets[expected_newest]),
                tickets: counted
            },
            "{moved:?} moved past the date"
        );
        assert_eq!(
            read::newest_updated_before(&connection, before, (1, 1)).unwrap(),
            UpdatedBefore::Many,
            "more than one on each side"
        );
        let first = tickets[0].updated_at;
        assert_eq!(
            read::newest_updated_before(&connection, first, (100, 100)).unwrap(),
            UpdatedBefore::None
        );

        // Listing the tickets first, or walking down from the bound, finds every ticket
        // left before the date.
        let before_filter = |before: jiff::Timestamp| otklik_store::TicketFilter {
            updated_before: Some(before),
            ..otklik_store::TicketFilter::default()
        };
        let mut expected: Vec<_> = (0..8)
            .filter(|index| !moved.contains(index))
            .map(|index| tickets[index].id)
            .collect();
        expected.sort_unstable();
        for few in [otklik_store::RANKED_MATCHES, 0] {
            assert_eq!(
                xylophones_found(&connection, before_filter(before), few),
                expected,
                "{moved:?} moved, listing at most {few}"
            );
            assert!(xylophones_found(&connection, before_filter(first), few).is_empty());
        }
    }
}

#[tokio::test]
async fn a_search_for_a_rare_status_asks_the_index_for_it_and_follows_status_changes() {
    use otklik_domain::ticket::TicketStatus;

    // One open ticket among sixteen: open is rare; solved is not.
    let (_folder, path, store, tickets) = store_with_xylophones(16, |n, draft| {
        if n != 3 {
            draft.status = TicketStatus::Solved;
        }
    })
    .await;
    let open = tickets[3].id;
    assert_eq!(
        found_in_status(&store, "ксилофон", TicketStatus::Open).await,
        [open]
    );
    assert_eq!(
        found_in_status(&store, "ксилофон", TicketStatus::Solved)
            .await
            .len(),
        15
    );

    // Another ticket opens and the first is solved: their terms follow.
    let mut reopened = tickets[9].clone();
    reopened.status = TicketStatus::Open;
    let mut solved = tickets[3].clone();
    solved.status = TicketStatus::Solved;
    update_tickets(&store, [reopened.clone(), solved]).await;
    assert_eq!(
        found_in_status(&store, "ксилофон", TicketStatus::Open).await,
        [reopened.id]
    );

    // The status's term is what finds it: without the term, the rare status's search misses
    // the ticket that the common status's search, which tests the status in SQL, finds.
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE ticket_search SET access_terms = '_tnone' WHERE ticket_id = ?1",
            [&reopened.id.0.as_bytes()[..]],
        )
        .unwrap();
    assert!(
        found_in_status(&store, "ксилофон", TicketStatus::Open)
            .await
            .is_empty()
    );
    let mut solved_ids: Vec<_> = tickets
        .iter()
        .map(|ticket| ticket.id)
        .filter(|id| *id != reopened.id)
        .collect();
    solved_ids.sort_unstable();
    assert_eq!(
        found_in_status(&store, "ксилофон", TicketStatus::Solved).await,
        solved_ids
    );
}

#[tokio::test]
async fn a_search_for_a_tag_asks_the_index_for_it_and_follows_tag_changes() {
    use otklik_store::{Mutation, TicketFilter};

    let (_folder, path, store, tickets) = store_with_xylophones(6, |n, draft| {
        draft.tags = if n == 2 {
            vec!["хрупкое".into(), "срочно".into()]
        } else {
            vec!["срочно".into()]
        };
    })
    .await;
    let tagged = |tag: &'static str| {
        found_with(
            &store,
            "ксилофон",
            TicketFilter {
                tag: Some(tag.into()),
                ..TicketFilter::default()
            },
        )
    };
    assert_eq!(tagged("хрупкое").await, [tickets[2].id]);
    assert!(tagged("нет-такого").await.is_empty());

    // The tag moves to another ticket: the terms follow the tag set.
    let mut retagged = tickets[4].clone();
    retagged.tags = vec!["хрупкое".into()];
    let mut untagged = tickets[2].clone();
    untagged.tags = vec!["срочно".into()];
    for ticket in [retagged.clone(), untagged] {
        store
            .commit(UnitOfWork::new().with(Mutation::UpdateTicket {
                expected_version: ticket.version,
                ticket,
            }))
            .await
            .unwrap();
    }
    assert_eq!(tagged("хрупкое").await, [retagged.id]);

    // The tag's term is what finds it: without it, the search misses the ticket.
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE ticket_search SET access_terms = '_tnone _sopen' WHERE ticket_id = ?1",
            [&retagged.id.0.as_bytes()[..]],
        )
        .unwrap();
    assert!(tagged("хрупкое").await.is_empty());
}

#[tokio::test]
async fn the_search_vocabulary_is_filled_from_the_index_of_an_existing_database() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("otklik.db");
    {
        // A database as V8 left it: an index row (its ticket does not matter here).
        let connection = database_at_version(&path, 8);
        connection
            .execute_batch(
                "PRAGMA foreign_keys = OFF; \
                     INSERT INTO ticket_search (ticket_id, subject_terms, body_terms) \
                     VALUES (x'01', '17 ксилофон', 'доставк ксилофон 448812');",
            )
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let vocabulary: Vec<(i64, String)> = store
        .read(|c| {
            c.prepare("SELECT chars, term FROM search_terms ORDER BY chars, term")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .await
        .unwrap();
    assert_eq!(
        vocabulary,
        [
            (2, "17".to_owned()),
            (6, "448812".to_owned()),
            (7, "доставк".to_owned()),
            (8, "ксилофон".to_owned()),
        ]
    );
}

#[tokio::test]
async fn plain_counts_are_filled_from_the_counters_of_an_existing_database() {
    use otklik_domain::ticket::TicketStatus;
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("otklik.db");
    {
        // A database as V7 left it, with counters maintained since V2.
        let connection = database_at_version(&path, 7);
        let none = [0_u8; 16].to_vec();
        let agent = [7_u8; 16].to_vec();
        let rows: [(&str, &str, &Vec<u8>, i64, i64); 6] = [
            ("open", "normal", &none, 0, 3),
            ("open", "urgent", &agent, 0, 2),
            ("pending", "normal", &none, 100, 2),
            ("pending", "normal", &none, 105, 1),
            ("pending", "urgent", &agent, 100, 1),
            ("on_hold", "low", &none, 90, 0),
        ];
        for (status, priority, assignee, day, n) in rows {
            connection
                    .execute(
                        "INSERT INTO ticket_counters (status, priority, assignee_key, team_key, day, n) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        rusqlite::params![status, priority, assignee, none, day, n],
                    )
                    .unwrap();
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    let count = |query: TicketCountQuery| {
        let query = query.clone();
        store.read(move |c| read::count_tickets(c, &query))
    };
    assert_eq!(count(TicketCountQuery::default()).await.unwrap(), 9);
    assert_eq!(
        count(TicketCountQuery {
            statuses: vec![TicketStatus::Pending],
            ..Default::default()
        })
        .await
        .unwrap(),
        4
    );
    assert_eq!(
        count(TicketCountQuery {
            max_day: Some(102),
            ..Default::default()
        })
        .await
        .unwrap(),
        3
    );
    assert_eq!(
        count(TicketCountQuery {
            max_day: Some(99),
            ..Default::default()
        })
        .await
        .unwrap(),
        0
    );
    let (plain_rows, daily_rows, day_zero): (i64, i64, i64) = store
            .read(|c| {
                c.query_row(
                    "SELECT (SELECT count(*) FROM ticket_counts), (SELECT count(*) FROM ticket_counters), \
                     (SELECT count(*) FROM ticket_counters WHERE day = 0)",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
            })
            .await
            .unwrap();
    assert_eq!((plain_rows, daily_rows, day_zero), (4, 3, 0));
}

/// Rows of `ticket_visibility` that differ from their ticket's columns, or tickets without
/// one (each side: rowid, id, team, assignee, merged into, status).
async fn stale_visibility_rows(store: &SqliteStore) -> i64 {
    store
        .read(|c| {
            c.query_row(
                "SELECT (SELECT count(*) FROM ( \
                       SELECT rowid, id, team_id, assignee_id, merged_into, status FROM tickets \
                       EXCEPT SELECT ticket_rowid, id, team_id, assignee_id, merged_into, status \
                       FROM ticket_visibility)) \
                     + (SELECT count(*) FROM ( \
                       SELECT ticket_rowid, id, team_id, assignee_id, merged_into, status \
                       FROM ticket_visibility \
                       EXCEPT SELECT rowid, id, team_id, assignee_id, merged_into, status \
                       FROM tickets))",
                [],
                |row| row.get(0),
            )
        })
        .await
        .unwrap()
}

/// Search rows whose access terms (V22, V24) differ from their ticket's, or that the
/// full-text index does not find by them.
async fn stale_access_terms(store: &SqliteStore) -> i64 {
    store
        .read(|c| {
            let differing: i64 = c.query_row(
                &format!(
                    "SELECT count(*) FROM ticket_search s LEFT JOIN tickets t \
                         ON t.id = s.ticket_id \
                         WHERE s.access_terms IS NOT {}",
                    access_terms::TICKET_ACCESS_TERMS_SQL
                ),
                [],
                |row| row.get(0),
            )?;
            let entries: Vec<(i64, String)> = c
                .prepare("SELECT rowid, access_terms FROM ticket_search")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut unfound = 0;
            for (rowid, terms) in entries {
                let query = terms
                    .split(' ')
                    .map(|term| format!("\"{term}\""))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                let found: i64 = c.query_row(
                    "SELECT count(*) FROM ticket_fts WHERE ticket_fts MATCH ?1 AND rowid = ?2",
                    rusqlite::params![query, rowid],
                    |row| row.get(0),
                )?;
                unfound += 1 - found;
            }
            Ok(differing + unfound)
        })
        .await
        .unwrap()
}

/// Vocabulary entries that are access terms (V22), which must never become prefixes' tokens.
async fn access_terms_in_vocabulary(store: &SqliteStore) -> i64 {
    store
        .read(|c| {
            c.query_row(
                "SELECT count(*) FROM search_terms WHERE term GLOB '_*'",
                [],
                |row| row.get(0),
            )
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn the_search_copy_of_who_may_see_a_ticket_follows_every_change_to_it() {
    use otklik_store::Mutation;
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("otklik.db");
    let older = otklik_domain::ids::TicketId::new();
    {
        // Tickets from before V20, which must be copied by it.
        let connection = database_at_version(&path, 19);
        connection
            .execute(
                "INSERT INTO customers (id, name, created_at, updated_at, version) \
                     VALUES (zeroblob(16), 'Вера', 0, 0, 1)",
                [],
            )
            .unwrap();
        connection
                .execute(
                    "INSERT INTO tickets (id, number, subject, status, priority, channel, \
                     customer_id, created_at, updated_at, version) \
                     VALUES (?1, 999999, 'Старый', 'open', 'normal', 'email', zeroblob(16), 1, 1, 1)",
                    [&older.0.as_bytes()[..]],
                )
                .unwrap();
        connection
            .execute(
                "INSERT INTO ticket_search (rowid, ticket_id, subject_terms, body_terms) \
                     SELECT rowid, id, '999999 стар', '' FROM tickets",
                [],
            )
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(stale_visibility_rows(&store).await, 0, "V20 copies them");
    assert_eq!(
        stale_access_terms(&store).await,
        0,
        "V22, V24 and V29 write them"
    );
    let older_terms: String = store
        .read(|c| {
            c.query_row("SELECT access_terms FROM ticket_search", [], |row| {
                row.get(0)
            })
        })
        .await
        .unwrap();
    assert_eq!(older_terms, "_tnone _sopen _pnormal _cemail");

    let customer = test_customer();
    let team = otklik_domain::agent::Team {
        id: otklik_domain::ids::TeamId::new(),
        name: "Доставка".into(),
        created_at: test_time(),
    };
    let mut ticket = test_ticket(
        otklik_domain::ids::TicketId::new(),
        customer.id,
        "Куртка",
        otklik_domain::ticket::TicketStatus::Open,
    );
    ticket.team_id = Some(team.id);
    let receipt = store
        .commit(
            UnitOfWork::new()
                .with(Mutation::InsertCustomer(customer.clone()))
                .with(Mutation::InsertTeam(team.clone()))
                .with(Mutation::InsertTicket(ticket.clone())),
        )
        .await
        .unwrap();
    let mut stored = ticket.into_ticket(receipt.ticket_numbers[0]);
    assert_eq!(stale_visibility_rows(&store).await, 0, "inserted");
    assert_eq!(stale_access_terms(&store).await, 0, "inserted");

    stored.merged_into = Some(older);
    store
        .commit(UnitOfWork::new().with(Mutation::UpdateTicket {
            ticket: stored.clone(),
            expected_version: 1,
        }))
        .await
        .unwrap();
    assert_eq!(stale_visibility_rows(&store).await, 0, "merged");
    assert_eq!(stale_access_terms(&store).await, 0, "merged");

    stored.status = otklik_domain::ticket::TicketStatus::Solved;
    store
        .commit(UnitOfWork::new().with(Mutation::UpdateTicket {
            ticket: stored.clone(),
            expected_version: 2,
        }))
        .await
        .unwrap();
    assert_eq!(stale_visibility_rows(&store).await, 0, "solved");
    assert_eq!(stale_access_terms(&store).await, 0, "solved");

    stored.tags = vec!["хрупкое".into(), "срочно".into()];
    store
        .commit(UnitOfWork::new().with(Mutation::UpdateTicket {
            ticket: stored.clone(),
            expected_version: 3,
        }))
        .await
        .unwrap();
    assert_eq!(stale_access_terms(&store).await, 0, "tagged");
    stored.tags = vec!["срочно".into()];
    stored.priority = otklik_domain::ticket::Priority::Urgent;
    stored.channel = otklik_domain::ticket::Channel::Phone;
    store
        .commit(UnitOfWork::new().with(Mutation::UpdateTicket {
            ticket: stored.clone(),
            expected_version: 4,
        }))
        .await
        .unwrap();
    assert_eq!(
        stale_access_terms(&store).await,
        0,
        "untagged, raised and moved to the phone"
    );
    let merged_terms: String = store
        .read(move |c| {
            c.query_row(
                "SELECT s.access_terms FROM ticket_search s JOIN tickets t \
                     ON t.id = s.ticket_id WHERE t.merged_into IS NOT NULL",
                [],
                |row| row.get(0),
            )
        })
        .await
        .unwrap();
    assert!(
        merged_terms.contains(" _purgent _cphone _g") && merged_terms.matches(" _g").count() == 1,
        "{merged_terms}"
    );

    // Deleting the team sets the merged ticket's team to NULL by its foreign key.
    store
        .commit(UnitOfWork::new().with(Mutation::DeleteTeam(team.id)))
        .await
        .unwrap();
    let unrouted: Option<Vec<u8>> = store
        .read(|c| {
            c.query_row(
                "SELECT v.team_id FROM ticket_visibility v JOIN tickets t \
                     ON t.rowid = v.ticket_rowid WHERE t.merged_into IS NOT NULL",
                [],
                |row| row.get(0),
            )
        })
        .await
        .unwrap();
    assert_eq!(unrouted, None);
    assert_eq!(stale_visibility_rows(&store).await, 0, "team deleted");
    assert_eq!(stale_access_terms(&store).await, 0, "team deleted");

    // A bulk import keeps the tickets' triggers.
    let imported = test_ticket(
        otklik_domain::ids::TicketId::new(),
        customer.id,
        "Импорт",
        otklik_domain::ticket::TicketStatus::New,
    );
    for unit in [
        UnitOfWork::new().with(Mutation::BeginBulkImport),
        UnitOfWork::new().with(Mutation::InsertTicket(imported)),
        UnitOfWork::new().with(Mutation::EndBulkImport),
    ] {
        store.commit(unit).await.unwrap();
    }
    assert_eq!(stale_visibility_rows(&store).await, 0, "imported");
    assert_eq!(stale_access_terms(&store).await, 0, "imported");
    assert_eq!(access_terms_in_vocabulary(&store).await, 0, "imported");

    Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM ticket_visibility", [])
        .unwrap();
    assert_eq!(stale_visibility_rows(&store).await, 3, "emptied by hand");
    store.rebuild_derived_data().await.unwrap();
    assert_eq!(stale_visibility_rows(&store).await, 0, "rebuilt");
    assert_eq!(stale_access_terms(&store).await, 0, "rebuilt");
    assert_eq!(access_terms_in_vocabulary(&store).await, 0, "rebuilt");
}
