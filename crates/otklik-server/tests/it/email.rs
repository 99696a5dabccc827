//! The email channel end to end, against real mail servers: dovecot (IMAP) holds the support
//! mailbox, aiosmtpd stands in for the customers' mail servers, and `otklik serve` runs as a
//! separate process (so it can be killed) on SQLite or PostgreSQL.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use otklik_mail_transport::testkit::{Dovecot, SmtpSink};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::Backend;
use crate::on_both_backends;

on_both_backends!(
    an_emailed_request_becomes_a_ticket_and_the_reply_threads_back_through_imap_and_smtp,
    every_message_is_stored_exactly_once_when_the_server_is_killed_during_ingestion,
    the_smtp_listener_stores_before_it_answers_and_refuses_to_relay,
    an_auto_responder_never_gets_more_automatic_mail_than_the_hourly_cap,
    a_forgotten_password_is_reset_by_an_e_mailed_one_time_link,
);

const BINARY: &str = env!("CARGO_BIN_EXE_otklik");
const SUPPORT: &str = "support@shop.test";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One Otklik installation (a data folder or a PostgreSQL database) and, while running, its
/// `otklik serve` process.
struct Installation {
    data_dir: PathBuf,
    database_url: Option<String>,
    bind: String,
    smtp_port: u16,
    token: String,
    child: Option<Child>,
    client: reqwest::Client,
    _folder: tempfile::TempDir,
    _database: Option<otklik_store_postgres::testkit::TestDatabase>,
}

impl Drop for Installation {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Installation {
    async fn new(backend: Backend) -> Installation {
        let folder = tempfile::tempdir().unwrap();
        let (database_url, database) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let database = otklik_store_postgres::testkit::fresh_database().await;
                let url = otklik_store_postgres::testkit::with_database(
                    &otklik_store_postgres::testkit::admin_url(),
                    &database.database.name,
                );
                (Some(url), Some(database))
            }
        };
        let mut installation = Installation {
            data_dir: folder.path().join("data"),
            database_url,
            bind: format!("127.0.0.1:{}", free_port()),
            smtp_port: free_port(),
            token: String::new(),
            child: None,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            _folder: folder,
            _database: database,
        };
        let mut admin = installation
            .command()
            .args([
                "admin",
                "create",
                "--email",
                "owner@shop.test",
                "--name",
                "Owner",
            ])
            .arg("--password-stdin")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        admin
            .stdin
            .take()
            .unwrap()
            .write_all(b"a long enough password\n")
            .unwrap();
        assert!(admin.wait().unwrap().success(), "admin create failed");
        let token = installation
            .command()
            .args(["token", "create", "--email", "owner@shop.test"])
            .output()
            .unwrap();
        assert!(
            token.status.success(),
            "{}",
            String::from_utf8_lossy(&token.stderr)
        );
        installation.token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
        installation
    }

    fn command(&self) -> Command {
        let mut command = Command::new(BINARY);
        command
            .env_remove("OTKLIK_CONFIG")
            .env("OTKLIK_DATA_DIR", &self.data_dir)
            .env("OTKLIK_BIND", &self.bind)
            .env(
                "OTKLIK_SMTP_LISTEN",
                format!("127.0.0.1:{}", self.smtp_port),
            )
            .env("OTKLIK_SMTP_DOMAINS", "shop.test")
            .env("OTKLIK_MAIL_POLL_SECONDS", "1")
            .env("OTKLIK_OUTBOX_INTERVAL_MS", "100")
            .env("RUST_LOG", "warn");
        match &self.database_url {
            Some(url) => command.env("OTKLIK_DATABASE_URL", url),
            None => command.env_remove("OTKLIK_DATABASE_URL"),
        };
        command
    }

    fn base(&self) -> String {
        format!("http://{}", self.bind)
    }

    async fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = self
            .command()
            .arg("serve")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(response) = self
                .client
                .get(format!("{}/readyz", self.base()))
                .send()
                .await
                && response.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("otklik serve did not become ready at {}", self.base());
    }

    /// SIGKILL: no graceful anything.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base()))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    async fn add_mailbox(&self, imap_url: Option<String>, smtp_url: Option<String>) -> Value {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/mailboxes",
                Some(json!({ "name": "support", "address": SUPPORT, "imap_url": imap_url, "smtp_url": smtp_url })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// Every e-mail ticket, however many pages.
    async fn email_tickets(&self) -> Vec<Value> {
        let mut tickets = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/api/v1/tickets?channel=email&limit=200&cursor={cursor}"),
                None => "/api/v1/tickets?channel=email&limit=200".to_owned(),
            };
            let page = self.get(&path).await;
            tickets.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return tickets,
            }
        }
    }

    async fn wait_for_tickets(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let tickets = self.email_tickets().await;
            if tickets.len() >= n || Instant::now() > deadline {
                return tickets;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn customer_mail(
    message_id: &str,
    from: &str,
    subject: &str,
    body: &str,
    in_reply_to: Option<&str>,
) -> Vec<u8> {
    let mut mail = format!(
        "From: {from}\r\nTo: Support <{SUPPORT}>\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0300\r\nMIME-Version: 1.0\r\n"
    );
    if let Some(parent) = in_reply_to {
        mail.push_str(&format!(
            "In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n"
        ));
    }
    mail.push_str(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    );
    mail.push_str(body);
    mail.push_str("\r\n");
    mail.into_bytes()
}

fn parse(raw: &[u8]) -> otklik_email::InboundEmail {
    otklik_email::parse_inbound(raw, &otklik_email::ParseLimits::default())
        .expect("a parseable e-mail")
}

/// A header's value in a raw message (first occurrence, unfolded).
fn header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .replace("\r\n ", " ")
        .replace("\r\n\t", " ");
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

async fn an_emailed_request_becomes_a_ticket_and_the_reply_threads_back_through_imap_and_smtp(
    backend: Backend,
) {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start();
    let mut otklik = Installation::new(backend).await;
    otklik.start().await;
    let mailbox = otklik
        .add_mailbox(Some(dovecot.imap_url(SUPPORT)), Some(sink.url()))
        .await;
    assert!(
        mailbox["imap_url"].as_str().unwrap().contains(":***@"),
        "the API never shows the password: {mailbox}"
    );
    let (status, check) = otklik
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/mailboxes/{}/test", mailbox["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["imap"]["ok"], true, "{check}");
    assert_eq!(check["smtp"]["ok"], true, "{check}");

    dovecot.append(
        SUPPORT,
        &customer_mail(
            "first@customer.test",
            "Анна Петрова <anna@customer.test>",
            "Где мой заказ 4417?",
            "Здравствуйте! Заказ 4417 не пришёл.",
            None,
        ),
    );
    let tickets = otklik.wait_for_tickets(1, Duration::from_secs(30)).await;
    assert_eq!(
        tickets.len(),
        1,
        "the e-mail became one ticket: {tickets:?}"
    );
    let ticket = &tickets[0];
    assert_eq!(ticket["subject"], "Где мой заказ 4417?");
    let number = ticket["number"].as_i64().unwrap();
    let ticket_id = ticket["id"].as_str().unwrap().to_owned();
    let customer = otklik
        .get(&format!(
            "/api/v1/customers/{}",
            ticket["customer_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(customer["name"], "Анна Петрова", "the display name is kept");

    // The acknowledgement: automatic, threaded, carrying the number and nothing the sender wrote.
    let received = sink.wait_for(1, Duration::from_secs(30));
    assert_eq!(received.len(), 1);
    let ack = &received[0];
    assert_eq!(
        header(ack, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    let parsed_ack = parse(ack);
    assert_eq!(
        parsed_ack.in_reply_to,
        vec!["first@customer.test".to_owned()]
    );
    assert!(
        parsed_ack.subject.contains(&format!("[#{number}]")),
        "{}",
        parsed_ack.subject
    );
    assert!(
        !String::from_utf8_lossy(ack).contains("4417"),
        "the ack repeats no sender text"
    );

    // The agent answers; the customer's mail server gets a threaded reply.
    let (status, body) = otklik
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/tickets/{ticket_id}/messages"),
            Some(json!({ "body": "Анна, заказ 4417 передан курьеру, он будет завтра." })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let received = sink.wait_for(2, Duration::from_secs(30));
    let reply = received
        .iter()
        .find(|mail| header(mail, "Auto-Submitted").is_none())
        .expect("the agent's reply arrived");
    let parsed_reply = parse(reply);
    assert_eq!(
        parsed_reply.in_reply_to,
        vec!["first@customer.test".to_owned()]
    );
    assert!(
        parsed_reply
            .references
            .contains(&"first@customer.test".to_owned())
    );
    assert_eq!(
        parsed_reply.subject,
        format!("Re: Где мой заказ 4417? [#{number}]")
    );
    assert!(parsed_reply.text.contains("передан курьеру"));
    let our_id = parsed_reply.message_id.clone().expect("a Message-ID");
    assert!(our_id.ends_with("@shop.test"), "{our_id}");
    // The outbox records "sent" right after the SMTP server accepted the mail, which may be a
    // moment after the sink has it.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let emails = otklik
            .get(&format!("/api/v1/tickets/{ticket_id}/emails"))
            .await;
        let sent = emails.as_array().unwrap().iter().any(|email| {
            email["direction"] == "outbound"
                && email["status"] == "sent"
                && email["message_id_header"] == our_id.as_str()
        });
        if sent {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reply is recorded as sent: {emails}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The customer answers the reply, with a changed subject: it threads by In-Reply-To.
    dovecot.append(
        SUPPORT,
        &customer_mail(
            "second@customer.test",
            "Анна Петрова <anna@customer.test>",
            "Спасибо",
            "Спасибо, жду!\r\n\r\n> Анна, заказ 4417 передан курьеру",
            Some(&our_id),
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let messages = loop {
        let messages = otklik
            .get(&format!("/api/v1/tickets/{ticket_id}/messages"))
            .await;
        if messages.as_array().unwrap().len() >= 3 || Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let bodies: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert_eq!(
        bodies[2], "Спасибо, жду!",
        "the quoted history is folded away"
    );
    assert_eq!(otklik.email_tickets().await.len(), 1, "no second ticket");
    assert_eq!(
        dovecot.unseen_count(SUPPORT),
        0,
        "stored mail is flagged \\Seen"
    );
}

async fn every_message_is_stored_exactly_once_when_the_server_is_killed_during_ingestion(
    backend: Backend,
) {
    const MESSAGES: usize = 1000;
    let dovecot = Dovecot::start();
    let mut otklik = Installation::new(backend).await;
    otklik.start().await;
    otklik
        .add_mailbox(Some(dovecot.imap_url(SUPPORT)), None)
        .await;
    otklik.kill();
    let mails: Vec<Vec<u8>> = (0..MESSAGES)
        .map(|n| {
            customer_mail(
                &format!("kill-{n}@customer.test"),
                &format!("Buyer {n} <buyer{n}@customer.test>"),
                &format!("Order {n}"),
                &format!("Message number {n}"),
                None,
            )
        })
        .collect();
    dovecot.append_all(SUPPORT, &mails);

    for round in 0..4 {
        otklik.start().await;
        tokio::time::sleep(Duration::from_millis(700 + 300 * round)).await;
        otklik.kill();
    }
    otklik.start().await;
    let tickets = otklik
        .wait_for_tickets(MESSAGES, Duration::from_secs(120))
        .await;
    let mut subjects: Vec<String> = tickets
        .iter()
        .map(|ticket| ticket["subject"].as_str().unwrap().to_owned())
        .collect();
    subjects.sort();
    let before = subjects.len();
    subjects.dedup();
    assert_eq!(before, subjects.len(), "no message was stored twice");
    assert_eq!(subjects.len(), MESSAGES, "every message was stored");
    assert_eq!(dovecot.unseen_count(SUPPORT), 0);
}

async fn the_smtp_listener_stores_before_it_answers_and_refuses_to_relay(backend: Backend) {
    let mut otklik = Installation::new(backend).await;
    otklik.start().await;
    otklik.add_mailbox(None, None).await;
    let listener = otklik_mail_transport::SmtpSettings::from_url(&format!(
        "smtp://127.0.0.1:{}?tls=none",
        otklik.smtp_port
    ))
    .unwrap();
    let mail = customer_mail(
        "smtp-1@customer.test",
        "Boris <boris@customer.test>",
        "Returns",
        "I want to return the boots.",
        None,
    );
    otklik_mail_transport::send_raw(&listener, "boris@customer.test", &[SUPPORT.into()], &mail)
        .await
        .expect("250 for a stored message");
    // 250 came after the commit: the ticket is there without waiting.
    let tickets = otklik.email_tickets().await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0]["subject"], "Returns");
    // The same message again: accepted, still one ticket.
    otklik_mail_transport::send_raw(&listener, "boris@customer.test", &[SUPPORT.into()], &mail)
        .await
        .unwrap();
    assert_eq!(otklik.email_tickets().await.len(), 1);
    let relay = otklik_mail_transport::send_raw(
        &listener,
        "boris@customer.test",
        &["victim@elsewhere.test".into()],
        &mail,
    )
    .await;
    assert!(
        matches!(relay, Err(otklik_mail_transport::SendError::Permanent(_))),
        "{relay:?}"
    );
}

async fn an_auto_responder_never_gets_more_automatic_mail_than_the_hourly_cap(backend: Backend) {
    let sink = SmtpSink::start();
    let mut otklik = Installation::new(backend).await;
    otklik.start().await;
    otklik.add_mailbox(None, Some(sink.url())).await;
    let listener = otklik_mail_transport::SmtpSettings::from_url(&format!(
        "smtp://127.0.0.1:{}?tls=none",
        otklik.smtp_port
    ))
    .unwrap();
    // The peer answers everything it gets, each time with another kind of marker, and one
    // naive responder that marks nothing and never threads.
    let markers: [&str; 6] = [
        "",
        "Auto-Submitted: auto-replied\r\n",
        "Precedence: bulk\r\n",
        "X-Autoreply: yes\r\n",
        "List-Id: <peer.list.test>\r\n",
        "X-Auto-Response-Suppress: All\r\n",
    ];
    let peer = "responder@peer.test";
    let mut sent = 0;
    for round in 0..12 {
        let marker = markers[round % markers.len()];
        let mail = format!(
            "From: Peer <{peer}>\r\nTo: {SUPPORT}\r\nSubject: Out of office {round}\r\n\
             Message-ID: <ooo-{round}@peer.test>\r\n{marker}Content-Type: text/plain\r\n\r\nI am away.\r\n"
        );
        otklik_mail_transport::send_raw(&listener, peer, &[SUPPORT.into()], mail.as_bytes())
            .await
            .unwrap();
        sent += 1;
    }
    // Let the outbox drain, then count what reached the peer.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = sink.wait_for(usize::MAX, Duration::from_secs(2));
    let automatic = received
        .iter()
        .filter(|mail| header(mail, "To").is_some_and(|to| to.contains(peer)))
        .count();
    assert!(
        automatic as i64 <= otklik_domain::email::AUTOMATIC_MAILS_PER_RECIPIENT_PER_HOUR,
        "{automatic} automatic mails to the peer after {sent} of its mails"
    );
    assert!(
        automatic >= 1,
        "the naive responder's first mail was acknowledged once"
    );
    for mail in &received {
        assert_eq!(
            header(mail, "Auto-Submitted").as_deref(),
            Some("auto-replied")
        );
    }
}

#[test]
fn mail_ingest_prints_the_ticket_number_and_exits_75_when_it_cannot_store() {
    let folder = tempfile::tempdir().unwrap();
    let ingest = |data: &Path, database_url: Option<&str>, raw: &[u8]| {
        let mut command = Command::new(BINARY);
        command
            .env_remove("OTKLIK_CONFIG")
            .env("OTKLIK_DATA_DIR", data)
            .env("RUST_LOG", "error")
            .args(["mail", "ingest"]);
        match database_url {
            Some(url) => command.env("OTKLIK_DATABASE_URL", url),
            None => command.env_remove("OTKLIK_DATABASE_URL"),
        };
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(raw).unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            String::from_utf8_lossy(&output.stderr).to_string(),
        )
    };
    let data = folder.path().join("data");
    let mail = customer_mail(
        "pipe-1@customer.test",
        "Vera <vera@customer.test>",
        "Size",
        "Which size?",
        None,
    );
    let (code, printed, stderr) = ingest(&data, None, &mail);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        printed.parse::<i64>().is_ok(),
        "prints the ticket number: {printed:?}"
    );
    let (code, printed, _) = ingest(&data, None, &mail);
    assert_eq!((code, printed.as_str()), (Some(0), "duplicate"));
    let (code, printed, _) = ingest(&data, None, b"\x00\x01 not an e-mail at all");
    assert_eq!(code, Some(0));
    assert!(printed.starts_with("quarantined"), "{printed}");
    let (code, _, stderr) = ingest(&data, Some("postgres://nobody@127.0.0.1:1/none"), &mail);
    assert_eq!(
        code,
        Some(75),
        "a database that cannot be reached is a temporary failure: {stderr}"
    );
}

/// A browser for the workspace pages: cookies kept by hand, redirects not followed.
struct PageBrowser {
    client: reqwest::Client,
    base: String,
    cookies: std::collections::BTreeMap<String, String>,
}

/// A page as received: status, `Location`, body.
struct Page {
    status: StatusCode,
    location: String,
    body: String,
}

impl Page {
    /// The CSRF token in the page's meta tag.
    fn csrf(&self) -> String {
        let marker = "<meta name=\"csrf-token\" content=\"";
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no csrf meta tag ({}): {}", self.status, self.body))
            + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }
}

impl PageBrowser {
    fn new(base: &str) -> PageBrowser {
        PageBrowser {
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookies: Default::default(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let response = request
            .header("cookie", cookies.join("; "))
            .header("accept-language", "en")
            .send()
            .await
            .unwrap();
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let (name, value) = text.split(';').next().unwrap().split_once('=').unwrap();
            if text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.text().await.unwrap();
        Page {
            status,
            location,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .form(fields);
        self.send(request).await
    }

    /// Signs in through the sign-in form; the status of the answer (303 on success).
    async fn sign_in(&mut self, email: &str, password: &str) -> StatusCode {
        let csrf = self.get("/login").await.csrf();
        self.post(
            "/login",
            &[("_csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
        .status
    }
}

impl Installation {
    /// Makes every unspent password-reset link of the database expire, as an hour would.
    async fn expire_reset_links(&self) {
        let sql = "UPDATE password_reset_tokens SET expires_at = 0 WHERE used_at IS NULL";
        match &self.database_url {
            Some(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                client.execute(sql, &[]).await.unwrap();
            }
            None => {
                let connection =
                    rusqlite::Connection::open(self.data_dir.join("otklik.db")).unwrap();
                connection.busy_timeout(Duration::from_secs(5)).unwrap();
                connection.execute(sql, []).unwrap();
            }
        }
    }
}

/// The reset link of a mail the sink received.
fn link_in(raw: &[u8]) -> String {
    parse(raw)
        .text
        .split_whitespace()
        .find(|word| word.contains("/reset-password?token="))
        .unwrap_or_else(|| panic!("no reset link in {}", String::from_utf8_lossy(raw)))
        .to_owned()
}

async fn a_forgotten_password_is_reset_by_an_e_mailed_one_time_link(backend: Backend) {
    let sink = SmtpSink::start();
    let mut otklik = Installation::new(backend).await;
    otklik.start().await;
    let base = otklik.base();
    let mut browser = PageBrowser::new(&base);

    // Without a mailbox the page says so and names the CLI, which does reset a password.
    let page = browser.get("/forgot-password").await;
    assert!(
        page.body.contains("id=\"forgot-not-configured\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("otklik admin reset-password"));
    let mut reset = otklik
        .command()
        .args([
            "admin",
            "reset-password",
            "--email",
            "owner@shop.test",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    reset
        .stdin
        .take()
        .unwrap()
        .write_all(b"a password set by the cli\n")
        .unwrap();
    assert!(
        reset.wait().unwrap().success(),
        "admin reset-password failed"
    );
    assert_eq!(
        browser
            .sign_in("owner@shop.test", "a password set by the cli")
            .await,
        StatusCode::SEE_OTHER
    );
    let mut old_session = browser;
    assert_eq!(old_session.get("/search").await.status, StatusCode::OK);

    otklik.add_mailbox(None, Some(sink.url())).await;
    let mut browser = PageBrowser::new(&base);
    let page = browser.get("/forgot-password").await;
    let csrf = page.csrf();
    let unknown = browser
        .post(
            "/forgot-password",
            &[("_csrf", &csrf), ("email", "stranger@shop.test")],
        )
        .await;
    let known = browser
        .post(
            "/forgot-password",
            &[("_csrf", &csrf), ("email", "owner@shop.test")],
        )
        .await;
    assert_eq!(
        (unknown.status, known.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert!(known.body.contains("id=\"forgot-sent\""));
    assert_eq!(
        unknown
            .body
            .replace("stranger@shop.test", "owner@shop.test"),
        known.body
    );

    let mails = sink.wait_for_mails(1, Duration::from_secs(30));
    assert_eq!(mails.len(), 1, "one mail, to the account that exists");
    assert_eq!(mails[0].rcpt_to, vec!["owner@shop.test".to_owned()]);
    let link = link_in(&mails[0].raw);
    let prefix = format!("{base}/reset-password?token=");
    assert!(link.starts_with(&prefix), "the listen address: {link}");
    let path = link.trim_start_matches(&base).to_owned();
    let token = link.trim_start_matches(&prefix).to_owned();

    let form = browser.get(&path).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.csrf();
    let new_password = "a new password from the link";
    let fields = [
        ("_csrf", csrf.as_str()),
        ("token", token.as_str()),
        ("password", new_password),
        ("password_again", new_password),
    ];
    let done = browser.post("/reset-password", &fields).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location, "/login?reset=1");
    let ended = old_session.get("/search").await;
    assert_eq!(
        ended.status,
        StatusCode::SEE_OTHER,
        "the old session is gone"
    );
    assert!(ended.location.starts_with("/login"));
    let mut fresh = PageBrowser::new(&base);
    assert_eq!(
        fresh
            .sign_in("owner@shop.test", "a password set by the cli")
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        fresh.sign_in("owner@shop.test", new_password).await,
        StatusCode::SEE_OTHER
    );
    let reused = browser.post("/reset-password", &fields).await;
    assert_eq!(reused.status, StatusCode::NOT_FOUND, "a link works once");
    assert!(reused.body.contains("id=\"reset-invalid\""));

    // A link left unused past its hour is refused too.
    let csrf = browser.get("/forgot-password").await.csrf();
    browser
        .post(
            "/forgot-password",
            &[("_csrf", &csrf), ("email", "owner@shop.test")],
        )
        .await;
    let mails = sink.wait_for_mails(2, Duration::from_secs(30));
    assert_eq!(mails.len(), 2);
    let late = link_in(&mails[1].raw);
    otklik.expire_reset_links().await;
    let expired = browser.get(late.trim_start_matches(&base)).await;
    assert_eq!(expired.status, StatusCode::NOT_FOUND);
    let late_token = late.trim_start_matches(&prefix).to_owned();
    let csrf = expired.csrf();
    let refused = browser
        .post(
            "/reset-password",
            &[
                ("_csrf", &csrf),
                ("token", &late_token),
                ("password", "too late a password"),
                ("password_again", "too late a password"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(
        PageBrowser::new(&base)
            .sign_in("owner@shop.test", new_password)
            .await,
        StatusCode::SEE_OTHER,
        "the password is unchanged"
    );
}
