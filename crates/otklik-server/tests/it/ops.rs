//! Operations: health, readiness, metrics, the OpenAPI document, set-up, schema parity.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use otklik_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, new_ticket, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    health_and_readiness_answer_once_the_database_is_reachable,
    the_setup_token_creates_the_first_admin_once,
    both_backends_reach_the_same_logical_schema_with_identically_named_migrations,
);

async fn health_and_readiness_answer_once_the_database_is_reachable(backend: Backend) {
    let test = spawn_app(backend).await;
    for path in ["/healthz", "/readyz"] {
        let reply = test.call(Method::GET, path, None, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
}

async fn the_setup_token_creates_the_first_admin_once(backend: Backend) {
    let folder = tempfile::tempdir().unwrap();
    let mut guard: Option<otklik_store_postgres::testkit::TestDatabase> = None;
    // A fresh instance: no agents yet, so a set-up token is issued.
    let store: Arc<dyn Store> = match backend {
        Backend::Sqlite => Arc::new(
            otklik_store_sqlite::SqliteStore::open(&folder.path().join("fresh.db")).unwrap(),
        ),
        Backend::Postgres => {
            let database = otklik_store_postgres::testkit::fresh_database().await;
            let store = database.store.clone();
            // Kept to the end of the test, then the database is dropped.
            guard = Some(database);
            store
        }
    };
    let app = otklik_app::App::new(
        store,
        Arc::new(otklik_store::blobs::LocalBlobStore::new(
            folder.path().join("blobs"),
        )),
        Arc::new(otklik_domain::clock::SystemClock),
    );
    let token = app
        .issue_setup_token_if_needed()
        .await
        .unwrap()
        .expect("a fresh instance issues a token");
    let router = otklik_web::router(otklik_web::AppState::new(app.clone(), None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let setup = |setup_token: String, email: &'static str| {
        client.post(format!("{base}/api/v1/setup")).json(&json!({
            "setup_token": setup_token, "email": email, "name": "Owner", "password": "long enough password",
        })).send()
    };
    let wrong = setup("wrong".into(), "owner@shop.test").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let short_password = client
        .post(format!("{base}/api/v1/setup"))
        .json(&json!({ "setup_token": token, "email": "owner@shop.test", "name": "Owner", "password": "short" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        short_password.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the token survives a refused attempt"
    );
    let first = setup(token.clone(), "owner@shop.test").await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let admin: serde_json::Value = first.json().await.unwrap();
    assert_eq!(admin["role"], "admin");
    let second = setup(token, "intruder@shop.test").await.unwrap();
    assert_eq!(
        second.status(),
        StatusCode::UNAUTHORIZED,
        "the token works once"
    );
    assert_eq!(
        app.issue_setup_token_if_needed().await.unwrap(),
        None,
        "no new token once an admin exists"
    );
    let (session, _) = app
        .sign_in("owner@shop.test", "long enough password".into())
        .await
        .unwrap();
    assert!(app.authenticate_session(&session).await.is_ok());
    assert!(
        app.sign_in("owner@shop.test", "wrong password!".into())
            .await
            .is_err()
    );
    app.sign_out(&session).await.unwrap();
    assert!(app.authenticate_session(&session).await.is_err());
    drop(app);
    drop(guard);
}

async fn both_backends_reach_the_same_logical_schema_with_identically_named_migrations(
    backend: Backend,
) {
    // Runs once per backend, comparing that backend with the other.
    let test = spawn_app(backend).await;
    let other = spawn_app(match backend {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    })
    .await;
    let mine = test.app.store.logical_schema().await.unwrap();
    let theirs = other.app.store.logical_schema().await.unwrap();
    assert!(!mine.is_empty());
    assert_eq!(mine, theirs);

    let names = |backend: &str| {
        let folder = crate_dir()
            .join("..")
            .join(format!("otklik-store-{backend}"))
            .join("migrations");
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("sqlite"), names("postgres"));
}

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("one recorder per test process")
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_template_not_by_raw_path() {
    let test = spawn_app(Backend::Sqlite).await;
    let router = otklik_web::router(otklik_web::AppState::new(
        test.app.clone(),
        Some(metrics_handle()),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let ticket: serde_json::Value = client
        .post(format!("{base}/api/v1/tickets"))
        .bearer_auth(&test.admin_token)
        .json(&new_ticket("Metrics", "m@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    client
        .get(format!(
            "{base}/api/v1/tickets/{}",
            ticket["id"].as_str().unwrap()
        ))
        .bearer_auth(&test.admin_token)
        .send()
        .await
        .unwrap();
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(r#"route="/api/v1/tickets/{id}""#), "{text}");
    assert!(
        !text.contains(ticket["id"].as_str().unwrap()),
        "ids never become labels"
    );
    assert!(text.contains("otklik_http_request_duration_seconds"));
}

#[test]
fn the_committed_openapi_document_is_current() {
    let generated = serde_json::to_string_pretty(&otklik_web::openapi()).unwrap() + "\n";
    let path = crate_dir().join("../../docs/openapi.json");
    if std::env::var_os("OTKLIK_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: run `OTKLIK_UPDATE_OPENAPI=1 cargo nextest run -E 'test(the_committed_openapi_document_is_current)'` and commit it"
    );
}

#[test]
fn the_openapi_document_is_version_3_1_and_describes_every_route_with_bearer_auth() {
    let document = serde_json::to_value(otklik_web::openapi()).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/v1/tickets",
        "/api/v1/tickets/{id}/messages",
        "/api/v1/customers/{id}/merge",
        "/api/v1/customer-merges/{id}/undo",
        "/api/v1/agents/{id}/tokens",
        "/api/v1/setup",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
}

/// The crate's folder in the checkout being tested: cargo and nextest set the variable when they
/// run the test too. The path built in is the fallback only: a target folder shared between
/// checkouts may run a binary built in another, since removed.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
