//! A workspace over a real SQLite store in a temporary folder, with an admin, a customer's
//! ticket, and a small browser (a cookie jar) that drives the router without a socket.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use otklik_app::App;
use otklik_app::auth::NewAgentInput;
use otklik_app::tickets::{CreateTicketInput, CustomerRef, NewAttachment};
use otklik_domain::agent::{Agent, Role};
use otklik_domain::clock::SystemClock;
use otklik_domain::customer::{IdentityKind, IdentityValue};
use otklik_domain::permission::Principal;
use otklik_domain::ticket::{Channel, Ticket};
use otklik_store::Store;
use otklik_store::blobs::LocalBlobStore;
use otklik_store_sqlite::SqliteStore;
use otklik_ui::{Lang, UiConfig};
use tower::ServiceExt;

pub const ADMIN_EMAIL: &str = "admin@shop.test";
pub const PASSWORD: &str = "correct horse battery";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// A fresh database on the server of `OTKLIK_TEST_PG_URL` (default: local, trust auth).
    Postgres,
}

/// A workspace and the objects the tests start from.
pub struct TestUi {
    pub app: App,
    pub router: Router,
    pub admin: Agent,
    /// The temporary folder and, on PostgreSQL, the database: dropped with the workspace.
    _guards: Vec<Box<dyn Any + Send>>,
}

/// A fresh SQLite store, the default views, and an admin who can sign in.
pub async fn test_ui() -> TestUi {
    test_ui_on(Backend::Sqlite).await
}

/// The same on either backend.
pub async fn test_ui_on(backend: Backend) -> TestUi {
    let (app, guards) = fresh_app_on(backend).await;
    let admin = app
        .create_admin_from_cli(ADMIN_EMAIL, "Анна Админова", PASSWORD.into())
        .await
        .expect("admin");
    TestUi {
        router: ui_router(app.clone()),
        app,
        admin,
        _guards: guards,
    }
}

/// An application on a fresh SQLite file, with its default views and nobody in it.
pub async fn fresh_app() -> (App, Vec<Box<dyn Any + Send>>) {
    fresh_app_on(Backend::Sqlite).await
}

async fn fresh_app_on(backend: Backend) -> (App, Vec<Box<dyn Any + Send>>) {
    let folder = tempfile::tempdir().expect("temp folder");
    let mut guards: Vec<Box<dyn Any + Send>> = Vec::new();
    let store: Arc<dyn Store> = match backend {
        Backend::Sqlite => {
            Arc::new(SqliteStore::open(&folder.path().join("otklik.db")).expect("open SQLite"))
        }
        Backend::Postgres => {
            let database = otklik_store_postgres::testkit::fresh_database().await;
            let store = database.store.clone();
            guards.push(Box::new(database));
            store
        }
    };
    let blobs = Arc::new(LocalBlobStore::new(folder.path().join("attachments")));
    guards.push(Box::new(folder));
    let app = App::new(store, blobs, Arc::new(SystemClock));
    app.ensure_default_views().await.expect("default views");
    (app, guards)
}

/// The router as tests use it: plain-HTTP cookies, Russian by default.
pub fn ui_router(app: App) -> Router {
    otklik_ui::router(
        app,
        UiConfig {
            secure_cookies: false,
            default_language: Lang::Ru,
            fallback_base_url: "http://otklik.test".into(),
        },
    )
}

impl TestUi {
    pub fn admin_principal(&self) -> Principal {
        App::principal_of(&self.admin, None, None)
    }

    /// A ticket from a customer, created through the use case as a channel would.
    pub async fn ticket(&self, subject: &str, body: &str, email: &str) -> Ticket {
        self.ticket_with(subject, body, email, None, Vec::new())
            .await
    }

    pub async fn ticket_with(
        &self,
        subject: &str,
        body: &str,
        email: &str,
        team_id: Option<otklik_domain::ids::TeamId>,
        attachments: Vec<NewAttachment>,
    ) -> Ticket {
        self.app
            .create_ticket(
                &self.admin_principal(),
                CreateTicketInput {
                    subject: subject.into(),
                    body: body.into(),
                    customer: CustomerRef::Identity {
                        identity: IdentityValue {
                            kind: IdentityKind::Email,
                            provider: String::new(),
                            value: email.into(),
                        },
                        name: Some("Иван Петров".into()),
                    },
                    channel: Channel::Email,
                    priority: None,
                    status: None,
                    assignee_id: None,
                    team_id,
                    tags: vec![],
                    attachments,
                },
                None,
            )
            .await
            .expect("ticket")
    }

    /// An agent (not an admin) in the given teams.
    pub async fn agent(&self, email: &str, team_ids: Vec<otklik_domain::ids::TeamId>) -> Agent {
        self.app
            .create_agent(
                &self.admin_principal(),
                NewAgentInput {
                    email: email.into(),
                    name: "Пётр Агентов".into(),
                    role: Role::Agent,
                    team_ids,
                    password: Some(PASSWORD.into()),
                },
            )
            .await
            .expect("agent")
    }

    /// A mailbox (no servers: mail arrives through the use case, as from the pipe).
    pub async fn mailbox(&self) -> otklik_domain::email::Mailbox {
        self.app
            .create_mailbox_from_cli(otklik_app::mail::MailboxInput {
                name: "support".into(),
                address: "support@shop.test".into(),
                imap_url: None,
                smtp_url: Some("smtp://127.0.0.1:9?tls=none".into()),
                auto_acknowledge: false,
            })
            .await
            .expect("mailbox")
    }

    /// Receives a raw e-mail into `mailbox` and returns the ticket it went to.
    pub async fn receive(&self, mailbox: &otklik_domain::email::Mailbox, raw: &str) -> Ticket {
        match self
            .app
            .ingest_email(mailbox, raw.as_bytes().to_vec())
            .await
            .expect("ingest")
        {
            otklik_app::mail::IngestOutcome::Ticket { ticket_id, .. } => self
                .app
                .get_ticket(&self.admin_principal(), ticket_id)
                .await
                .expect("the ticket"),
            other => panic!("the e-mail did not become a ticket: {other:?}"),
        }
    }

    pub fn browser(&self) -> Browser {
        Browser {
            router: self.router.clone(),
            jar: BTreeMap::new(),
            headers: Vec::new(),
        }
    }

    /// A browser signed in as `email`.
    pub async fn signed_in(&self, email: &str) -> Browser {
        let mut browser = self.browser();
        let page = browser.get("/login").await;
        let csrf = page.csrf();
        let reply = browser
            .post_form(
                "/login",
                &[("_csrf", &csrf), ("email", email), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
        browser
    }
}

/// A page as the browser received it.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The CSRF token of the page (its meta tag).
    pub fn csrf(&self) -> String {
        let marker = "<meta name=\"csrf-token\" content=\"";
        let start = self.body.find(marker).expect("a csrf meta tag") + marker.len();
        let end = self.body[start..].find('"').expect("closing quote") + start;
        self.body[start..end].to_owned()
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

/// A cookie jar in front of the router.
#[derive(Clone)]
pub struct Browser {
    router: Router,
    pub jar: BTreeMap<String, String>,
    /// Extra headers on every request (a language, a forged origin…).
    pub headers: Vec<(String, String)>,
}

impl Browser {
    /// A browser with no cookies in front of `router`.
    pub fn for_router(router: Router) -> Browser {
        Browser {
            router,
            jar: BTreeMap::new(),
            headers: Vec::new(),
        }
    }

    pub async fn send(&mut self, request: Request<Body>) -> Page {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().expect("ascii cookie");
            let pair = text.split(';').next().unwrap_or("");
            let (name, value) = pair.split_once('=').expect("name=value");
            if text.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), 16 * 1024 * 1024)
            .await
            .expect("body");
        Page {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    fn request(&self, method: Method, path: &str) -> axum::http::request::Builder {
        let mut builder = Request::builder().method(method).uri(path);
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self
                .jar
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            builder = builder.header(header::COOKIE, cookies.join("; "));
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self
            .request(Method::GET, path)
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }

    pub async fn method(&mut self, method: Method, path: &str) -> Page {
        let request = self
            .request(method, path)
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect();
        let request = self
            .request(Method::POST, path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.join("&")))
            .expect("request");
        self.send(request).await
    }

    /// A `multipart/form-data` post: text fields, then files as (field, file name, bytes).
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> Page {
        let boundary = "otklik-test-boundary-7f3a";
        let mut body: Vec<u8> = Vec::new();
        for (name, value) in fields {
            body.extend(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        for (name, file_name, bytes) in files {
            body.extend(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{boundary}--\r\n").as_bytes());
        let request = self
            .request(Method::POST, path)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .expect("request");
        self.send(request).await
    }

    /// Reads the CSRF token from a page of the signed-in browser.
    pub async fn csrf(&mut self) -> String {
        self.get("/search").await.csrf()
    }
}

fn encode(text: &str) -> String {
    let mut encoded = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(char::from(byte));
            }
            b' ' => encoded.push('+'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// A file to attach.
pub fn attachment(name: &str, bytes: &[u8]) -> NewAttachment {
    NewAttachment {
        file_name: name.into(),
        bytes: bytes.to_vec(),
    }
}
