//! `spawn_app`: a real Otklik server on a random loopback port, on a fresh SQLite file or a
//! fresh PostgreSQL database, with an admin and their API token ready.

use std::any::Any;
use std::sync::Arc;

use otklik_app::App;
use otklik_domain::agent::{Agent, Role};
use otklik_domain::clock::SystemClock;
use otklik_domain::ids::TeamId;
use otklik_domain::permission::Scope;
use otklik_store::Store;
use otklik_store::blobs::LocalBlobStore;
use otklik_store_sqlite::SqliteStore;
use otklik_web::AppState;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per backend, as two named tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            )+
        }
    };
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub app: App,
    pub admin: Agent,
    pub admin_token: String,
    pub backend: Backend,
    /// The SQLite file, for tests that inspect the database directly.
    pub sqlite_path: Option<std::path::PathBuf>,
    /// The PostgreSQL database, for tests that start a second node on it.
    pub postgres_url: Option<String>,
    _guards: Vec<Box<dyn Any + Send>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let folder = tempfile::tempdir().expect("temp folder");
    let mut guards: Vec<Box<dyn Any + Send>> = Vec::new();
    let mut sqlite_path = None;
    let mut postgres_url = None;
    let store: Arc<dyn Store> = match backend {
        Backend::Sqlite => {
            let path = folder.path().join("otklik.db");
            sqlite_path = Some(path.clone());
            Arc::new(SqliteStore::open(&path).expect("open SQLite"))
        }
        Backend::Postgres => {
            let database = otklik_store_postgres::testkit::fresh_database().await;
            let store = database.store.clone();
            postgres_url = Some(otklik_store_postgres::testkit::with_database(
                &otklik_store_postgres::testkit::admin_url(),
                &database.database.name,
            ));
            guards.push(Box::new(database));
            store
        }
    };
    let blobs = Arc::new(LocalBlobStore::new(folder.path().join("attachments")));
    let app = App::new(store, blobs, Arc::new(SystemClock));
    let router = otklik_web::router(AppState::new(app.clone(), None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("server runs");
    });
    // As `otklik serve` does on start.
    app.ensure_default_views().await.expect("default views");
    let admin = app
        .create_admin_from_cli("admin@shop.test", "Admin", "correct horse battery".into())
        .await
        .expect("admin");
    let admin_token = app
        .create_token_from_cli(
            "admin@shop.test",
            Scope::ALL.iter().copied().collect(),
            "tests",
        )
        .await
        .expect("admin token")
        .secret;
    guards.push(Box::new(folder));
    TestApp {
        base_url: format!("http://{address}"),
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        app,
        admin,
        admin_token,
        backend,
        sqlite_path,
        postgres_url,
        _guards: guards,
    }
}

/// A response with its body read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
}

impl Reply {
    async fn read(response: Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body").to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            bytes,
        }
    }

    /// The problem code of an error reply.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// A string field of the JSON body.
    pub fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string {field} in {}", self.body))
            .to_owned()
    }
}

impl TestApp {
    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::read(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    /// Opens a long-lived response (an event stream): an accepted one is judged by its status
    /// and headers and closed; a refusal is read as usual.
    pub async fn open_stream(&self, path: &str, token: Option<&str>) -> Reply {
        let mut request = self.client.get(format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        if response.status() == StatusCode::OK {
            return Reply {
                status: response.status(),
                headers: response.headers().clone(),
                body: Value::Null,
                bytes: Vec::new(),
            };
        }
        Reply::read(response).await
    }

    /// Sends raw bytes with a chosen content type (for malformed-input tests).
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body);
        Reply::read(request.send().await.expect("request sent")).await
    }

    /// Announces a body of `length` bytes without sending it, as a client uploading a huge file
    /// would, and returns the status line and body of the server's early answer.
    pub async fn post_announcing_length(
        &self,
        path: &str,
        token: &str,
        length: usize,
    ) -> (u16, serde_json::Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.base_url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("send head");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await;
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        // The body may be chunked: take the JSON object inside it.
        let body = match (text.find('{'), text.rfind('}')) {
            (Some(start), Some(end)) if start < end => &text[start..=end],
            _ => "",
        };
        (
            status,
            serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Creates a team as the admin.
    pub async fn create_team(&self, name: &str) -> TeamId {
        let reply = self
            .post("/api/v1/teams", &self.admin_token, json!({ "name": name }))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply.str("id").parse().expect("team id")
    }

    /// Creates a staff member with a role and teams, and a token with `scopes` (all if empty).
    pub async fn staff(
        &self,
        email: &str,
        role: Role,
        team_ids: &[TeamId],
        scopes: &[&str],
    ) -> (String, String) {
        let reply = self
            .post(
                "/api/v1/agents",
                &self.admin_token,
                json!({
                    "email": email, "name": email, "role": role.as_str(),
                    "team_ids": team_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let agent_id = reply.str("id");
        let scopes: Vec<&str> = if scopes.is_empty() {
            Scope::ALL.iter().map(|scope| scope.as_str()).collect()
        } else {
            scopes.to_vec()
        };
        let token = self
            .post(
                &format!("/api/v1/agents/{agent_id}/tokens"),
                &self.admin_token,
                json!({ "name": "t", "scopes": scopes }),
            )
            .await;
        assert_eq!(token.status, StatusCode::CREATED, "{}", token.body);
        (agent_id, token.str("token"))
    }

    /// Opens a ticket for a requester e-mail as `token`'s owner.
    pub async fn ticket(&self, token: &str, body: Value) -> Reply {
        let reply = self.post("/api/v1/tickets", token, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reply
    }
}

/// A minimal new-ticket body.
pub fn new_ticket(subject: &str, email: &str) -> Value {
    json!({ "subject": subject, "body": format!("{subject}: details"), "requester": { "kind": "email", "value": email } })
}
