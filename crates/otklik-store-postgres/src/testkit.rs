//! Test support (feature `testkit`): a brand-new PostgreSQL database per test, dropped when the test ends (passed or panicked).
//!
//! The admin URL comes from `OTKLIK_TEST_PG_URL` (default: the local trust-auth server). If
//! PostgreSQL is unreachable the test fails, naming the URL it tried: a skipped backend test
//! would let a broken backend pass CI.

use std::sync::Arc;

use crate::{PostgresStore, redacted_target};
use otklik_store::conformance::TestStore;
use tokio_postgres::NoTls;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Connections per test store: enough for the concurrency cases to overlap, few enough that
/// parallel tests stay far below the server's `max_connections`.
const TEST_POOL_SIZE: usize = 4;

pub fn admin_url() -> String {
    std::env::var("OTKLIK_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

async fn connect_admin(admin_url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(admin_url, NoTls).await.unwrap_or_else(|error| {
        panic!(
            "PostgreSQL is unreachable at {} (OTKLIK_TEST_PG_URL, default {DEFAULT_ADMIN_URL}): {}",
            redacted_target(admin_url),
            with_causes(&error)
        )
    });
    tokio::spawn(connection);
    client
}

/// An error with its chain of causes ("error connecting to server: Connection refused").
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// `url` with its database replaced by `database` (URL or key=value form).
pub fn with_database(url: &str, database: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // key=value form: a later key overrides an earlier one.
        return format!("{url} dbname={database}");
    };
    let (base, query) = match url.find('?') {
        Some(start) => url.split_at(start),
        None => (url, ""),
    };
    let authority_start = scheme_end + 3;
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |slash| authority_start + slash);
    format!("{}/{database}{query}", &base[..authority_end])
}

/// Drops the database when dropped, from a thread with its own runtime: `Drop` cannot await,
/// and the test's runtime may be shutting down (or unwinding from a panic).
pub struct DropDatabase {
    admin_url: String,
    pub name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let (client, connection) = tokio_postgres::connect(&admin_url, NoTls).await?;
                tokio::spawn(connection);
                client.batch_execute(&sql).await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        // Never panic here: a panic while a failed test unwinds would abort the whole run.
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop test database {}: {error}", self.name),
            Err(_) => eprintln!("dropping test database {} panicked", self.name),
        }
    }
}

/// Creates an empty database and returns its URL and the guard that drops it.
pub async fn create_database() -> (String, DropDatabase) {
    let admin_url = admin_url();
    let name = format!("otklik_test_{}", uuid::Uuid::now_v7().simple());
    let admin = connect_admin(&admin_url).await;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|error| panic!("cannot create test database {name}: {error}"));
    let url = with_database(&admin_url, &name);
    (url, DropDatabase { admin_url, name })
}

/// The store and its database. Fields drop in declaration order: the store's pool is closed
/// (in `drop`) and released before the database is dropped.
pub struct TestDatabase {
    pub store: Arc<PostgresStore>,
    /// Where the database is, for a second store (another node) on it.
    pub url: String,
    pub database: DropDatabase,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        self.store.close();
    }
}

/// Connects a store to `url`, panicking with the reason when it cannot.
async fn connect(url: &str) -> PostgresStore {
    PostgresStore::connect(url, TEST_POOL_SIZE)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "cannot connect to {}: {}",
                redacted_target(url),
                with_causes(&error)
            )
        })
}

/// A migrated store on a fresh database, with the guard that removes it.
pub async fn fresh_database() -> TestDatabase {
    let (url, database) = create_database().await;
    TestDatabase {
        store: Arc::new(connect(&url).await),
        url,
        database,
    }
}

/// The factory the conformance suite calls once per case. It returns once the store's LISTEN
/// connection is up, so cases that subscribe to change events or signals hear everything they
/// cause (NOTIFY reaches only connections already listening).
pub async fn fresh_store() -> TestStore {
    let database = fresh_database().await;
    assert!(
        database
            .store
            .wait_until_listening(std::time::Duration::from_secs(10))
            .await,
        "the store listens for notifications within ten seconds"
    );
    let another_node = Arc::new(connect(&database.url).await);
    TestStore {
        store: database.store.clone(),
        another_node: another_node.clone(),
        guard: Box::new((AnotherNode(another_node), database)),
    }
}

/// Closes the second store of a conformance case before its database is dropped (a tuple's
/// fields drop in order).
struct AnotherNode(Arc<PostgresStore>);

impl Drop for AnotherNode {
    fn drop(&mut self) {
        self.0.close();
    }
}
