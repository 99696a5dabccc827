//! The storage conformance suite on SQLite: a fresh database file per test.

use std::sync::Arc;

use otklik_store::conformance::TestStore;
use otklik_store_sqlite::SqliteStore;

async fn fresh_store() -> TestStore {
    let folder = tempfile::tempdir().expect("temp folder");
    let path = folder.path().join("otklik.db");
    let store = SqliteStore::open(&path).expect("open SQLite store");
    let another_process = SqliteStore::open(&path).expect("open the file a second time");
    TestStore {
        store: Arc::new(store),
        another_node: Arc::new(another_process),
        guard: Box::new(folder),
    }
}

otklik_store::conformance_tests!(fresh_store);
