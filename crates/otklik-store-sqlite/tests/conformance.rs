//! The storage conformance suite on SQLite: a fresh database file per test.

use std::sync::Arc;

use otklik_store::conformance::TestStore;
use otklik_store_sqlite::SqliteStore;

async fn fresh_store() -> TestStore {
    let folder = tempfile::tempdir().expect("temp folder");
    let store = SqliteStore::open(&folder.path().join("otklik.db")).expect("open SQLite store");
    TestStore {
        store: Arc::new(store),
        guard: Box::new(folder),
    }
}

otklik_store::conformance_tests!(fresh_store);
