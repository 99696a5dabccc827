//! Wiring: the one place that knows every crate. It picks the store from the settings and
//! builds the application over it.

use std::sync::Arc;

use anyhow::Context;
use otklik_app::App;
use otklik_domain::clock::SystemClock;
use otklik_store::Store;
use otklik_store::blobs::LocalBlobStore;
use otklik_store_postgres::PostgresStore;
use otklik_store_sqlite::SqliteStore;

use crate::config::{Settings, redact_url};

/// Opens the configured database (running pending migrations) and returns the store.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    if settings.uses_postgres() {
        let mut store = PostgresStore::connect(&settings.database_url, settings.pg_max_connections)
            .await
            .with_context(|| {
                format!(
                    "cannot open PostgreSQL at {}",
                    redact_url(&settings.database_url)
                )
            })?;
        if let Some(searches) = settings.pg_searches_at_once {
            store = store.with_searches_at_once(searches);
        }
        Ok(Arc::new(store))
    } else {
        let path = settings.sqlite_path()?;
        let store = tokio::task::spawn_blocking(move || {
            SqliteStore::open(&path)
                .with_context(|| format!("cannot open SQLite database {}", path.display()))
        })
        .await??;
        Ok(Arc::new(store))
    }
}

/// The application over the configured store, attachment folder and the system clock.
pub async fn build_app(settings: &Settings) -> anyhow::Result<App> {
    let store = open_store(settings).await?;
    let blobs = Arc::new(LocalBlobStore::new(settings.attachments_dir()));
    Ok(App::new(store, blobs, Arc::new(SystemClock)))
}
