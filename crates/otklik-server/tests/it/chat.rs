//! Live chat end to end through real `otklik serve` processes: a visitor and agents on one
//! SQLite node, and a visitor and an agent on two nodes sharing one PostgreSQL database, one
//! of them killed mid-chat.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use otklik_domain::permission::Scope;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_otklik");
/// The shop's origin, allowed by every site here.
const ORIGIN: &str = "http://shop.test";
const ADMIN: &str = "owner@shop.test";
/// How long a test waits for an event before it fails.
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One installation: a data folder (and, on PostgreSQL, a database shared by its nodes) with
/// an admin and the admin's API token.
struct Installation {
    folder: tempfile::TempDir,
    database_url: Option<String>,
    token: String,
    _database: Option<otklik_store_postgres::testkit::DropDatabase>,
}

impl Installation {
    async fn new(postgres: bool) -> Installation {
        let (database_url, database) = if postgres {
            let (url, database) = otklik_store_postgres::testkit::create_database().await;
            (Some(url), Some(database))
        } else {
            (None, None)
        };
        let mut installation = Installation {
            folder: tempfile::tempdir().unwrap(),
            database_url,
            token: String::new(),
            _database: database,
        };
        let data = installation.data_dir("cli");
        let mut admin = installation
            .command(&data, "127.0.0.1:1")
            .args(["admin", "create", "--email", ADMIN, "--name", "Анна"])
            .arg("--password-stdin")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(
            &mut admin.stdin.take().unwrap(),
            b"a long enough password\n",
        )
        .unwrap();
        assert!(admin.wait().unwrap().success(), "admin create failed");
        let token = installation
            .command(&data, "127.0.0.1:1")
            .args(["token", "create", "--email", ADMIN])
            .output()
            .unwrap();
        assert!(
            token.status.success(),
            "{}",
            String::from_utf8_lossy(&token.stderr)
        );
        installation.token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
        assert!(installation.token.starts_with("otk_"), "no token printed");
        installation
    }

    /// The data folder of one node (the CLI shares the first node's on SQLite).
    fn data_dir(&self, node: &str) -> PathBuf {
        let name = if self.database_url.is_some() {
            node
        } else {
            "data"
        };
        self.folder.path().join(name)
    }

    fn command(&self, data_dir: &Path, bind: &str) -> Command {
        let mut command = Command::new(BINARY);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OTKLIK_") {
                command.env_remove(name);
            }
        }
        command
            .env("OTKLIK_DATA_DIR", data_dir)
            .env("OTKLIK_BIND", bind)
            .env("RUST_LOG", "warn");
        if let Some(url) = &self.database_url {
            command.env("OTKLIK_DATABASE_URL", url);
        }
        command
    }

    /// Starts `otklik serve` as node `name` and waits until it is ready.
    async fn start(&self, name: &str, client: &reqwest::Client) -> Node {
        let bind = format!("127.0.0.1:{}", free_port());
        let child = self
            .command(&self.data_dir(name), &bind)
            .arg("serve")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let node = Node {
            child: Some(child),
            base: format!("http://{bind}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(response) = client.get(format!("{}/readyz", node.base)).send().await
                && response.status() == StatusCode::OK
            {
                return node;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("otklik serve did not become ready at {}", node.base);
    }
}

/// A running `otklik serve`.
struct Node {
    child: Option<Child>,
    base: String,
}

impl Node {
    /// SIGKILL: no graceful anything.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A reply: status and JSON body.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
    allow_origin: Option<String>,
}

impl Reply {
    fn str(&self, pointer: &str) -> String {
        self.body
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no string at {pointer} in {}", self.body))
            .to_owned()
    }
}

/// Sends a request as staff (`origin: None`) or as the widget (with an `Origin`).
async fn call(
    client: &reqwest::Client,
    method: Method,
    url: String,
    token: Option<&str>,
    origin: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(origin) = origin {
        request = request.header(reqwest::header::ORIGIN, origin);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let allow_origin = response
        .headers()
        .get(reqwest::header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await.expect("body");
    Reply {
        status,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        allow_origin,
    }
}

/// The staff API of one node as one agent.
#[derive(Clone)]
struct Staff {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Staff {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        call(
            &self.client,
            method,
            format!("{}/api/v1{path}", self.base),
            Some(&self.token),
            None,
            body,
        )
        .await
    }

    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let reply = self.call(method.clone(), path, body).await;
        assert!(
            reply.status.is_success(),
            "{method} {path}: {} {}",
            reply.status,
            reply.body
        );
        reply
    }

    async fn events(&self) -> Events {
        Events::open(
            &self.client,
            format!("{}/api/v1/events", self.base),
            &self.token,
            None,
        )
        .await
    }

    async fn set_availability(&self, availability: &str, max_chats: u16) {
        self.ok(
            Method::PUT,
            "/chat/availability",
            Some(json!({ "availability": availability, "max_chats": max_chats })),
        )
        .await;
    }

    async fn reply(&self, ticket_id: &str, body: &str) {
        self.ok(
            Method::POST,
            &format!("/tickets/{ticket_id}/messages"),
            Some(json!({ "body": body })),
        )
        .await;
    }
}

/// A visitor of a site, through one node's widget API.
#[derive(Clone)]
struct Visitor {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Visitor {
    async fn create(client: &reqwest::Client, base: &str, site_id: &str) -> Visitor {
        let reply = call(
            client,
            Method::POST,
            format!("{base}/widget/v1/sites/{site_id}/visitors"),
            None,
            Some(ORIGIN),
            Some(json!({})),
        )
        .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(reply.allow_origin.as_deref(), Some(ORIGIN));
        Visitor {
            client: client.clone(),
            base: base.to_owned(),
            token: reply.str("/token"),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        call(
            &self.client,
            method,
            format!("{}/widget/v1{path}", self.base),
            Some(&self.token),
            Some(ORIGIN),
            body,
        )
        .await
    }

    async fn start_chat(&self, body: Value) -> Reply {
        self.call(Method::POST, "/chats", Some(body)).await
    }

    async fn send(&self, ticket_id: &str, client_id: &str, body: &str) -> Reply {
        self.call(
            Method::POST,
            &format!("/chats/{ticket_id}/messages"),
            Some(json!({ "client_id": client_id, "body": body })),
        )
        .await
    }

    async fn entries(&self, ticket_id: &str) -> Vec<Value> {
        let reply = self
            .call(
                Method::GET,
                &format!("/chats/{ticket_id}/entries?after=0"),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        reply.body["entries"].as_array().unwrap().clone()
    }

    async fn events(&self) -> Events {
        let mut events = Events::open(
            &self.client,
            format!("{}/widget/v1/events", self.base),
            &self.token,
            Some(ORIGIN),
        )
        .await;
        events.wait_for("hello", |name, _| name == "hello").await;
        events
    }
}

/// An event stream being read: every event seen, and how far the test has looked.
struct Events {
    response: reqwest::Response,
    buffer: Vec<u8>,
    seen: Vec<(String, Value)>,
    looked: usize,
}

impl Events {
    async fn open(
        client: &reqwest::Client,
        url: String,
        token: &str,
        origin: Option<&str>,
    ) -> Events {
        let mut request = client
            .get(&url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(origin) = origin {
            request = request.header(reqwest::header::ORIGIN, origin);
        }
        let response = request.send().await.expect("stream request sent");
        assert_eq!(response.status(), StatusCode::OK, "GET {url}");
        Events {
            response,
            buffer: Vec::new(),
            seen: Vec::new(),
            looked: 0,
        }
    }

    /// Reads until an event not looked at yet matches, within `timeout`.
    async fn next_matching(
        &mut self,
        timeout: Duration,
        matches: impl Fn(&str, &Value) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while self.looked < self.seen.len() {
                let (name, data) = &self.seen[self.looked];
                self.looked += 1;
                if matches(name, data) {
                    return Some(data.clone());
                }
            }
            let chunk = match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None) | Err(_)) | Err(_) => return None,
            };
            self.buffer.extend_from_slice(&chunk);
            while let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&block);
                let mut name = String::new();
                let mut data = String::new();
                for line in text.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if !name.is_empty() {
                    self.seen
                        .push((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
                }
            }
        }
    }

    async fn wait_for(&mut self, what: &str, matches: impl Fn(&str, &Value) -> bool) -> Value {
        match self.next_matching(EVENT_TIMEOUT, matches).await {
            Some(data) => data,
            None => panic!(
                "no {what} within {EVENT_TIMEOUT:?}; events seen: {:?}",
                self.seen
            ),
        }
    }

    /// Every `entry` event seen so far.
    fn entries(&self) -> Vec<&Value> {
        self.seen
            .iter()
            .filter(|(name, _)| name == "entry")
            .map(|(_, data)| data)
            .collect()
    }
}

fn about(ticket_id: &str) -> impl Fn(&str, &Value) -> bool + '_ {
    move |_, data| data["ticket_id"] == ticket_id
}

async fn create_site(staff: &Staff) -> String {
    staff
        .ok(
            Method::POST,
            "/chat-sites",
            Some(json!({ "name": "Shop", "allowed_origins": [ORIGIN] })),
        )
        .await
        .str("/id")
}

/// Waits until a change made through `from` reaches `to`'s subscriber: a new node's LISTEN
/// connection may still be starting, and what is announced before it listens is not heard.
async fn until_nodes_hear_each_other(from: &Staff, to: &mut Events) {
    for attempt in 0..20 {
        let ticket = from
            .ok(
                Method::POST,
                "/tickets",
                Some(json!({
                    "subject": format!("Probe {attempt}"), "body": "probe",
                    "requester": { "kind": "email", "value": "probe@example.com" },
                })),
            )
            .await
            .str("/id");
        if to
            .next_matching(Duration::from_secs(1), about(&ticket))
            .await
            .is_some()
        {
            return;
        }
    }
    panic!("the nodes never heard each other's changes");
}

/// The chat's entries are numbered 1..n without gaps, and each client id appears once.
fn assert_contiguous_and_unique(entries: &[Value]) -> Vec<String> {
    let seqs: Vec<i64> = entries
        .iter()
        .map(|entry| entry["seq"].as_i64().unwrap())
        .collect();
    let expected: Vec<i64> = (1..=entries.len() as i64).collect();
    assert_eq!(seqs, expected, "entries are not contiguous from 1");
    let client_ids: Vec<String> = entries
        .iter()
        .filter_map(|entry| entry["client_id"].as_str().map(str::to_owned))
        .collect();
    let unique: HashSet<&String> = client_ids.iter().collect();
    assert_eq!(unique.len(), client_ids.len(), "a client id appears twice");
    client_ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_across_two_nodes_loses_and_doubles_nothing_when_the_agents_node_is_killed() {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let installation = Installation::new(true).await;
    let node_a = installation.start("a", &client).await;
    let mut node_b = installation.start("b", &client).await;
    let agent_a = Staff {
        client: client.clone(),
        base: node_a.base.clone(),
        token: installation.token.clone(),
    };
    let agent_b = Staff {
        base: node_b.base.clone(),
        ..agent_a.clone()
    };
    let mut agent_events_b = agent_b.events().await;
    until_nodes_hear_each_other(&agent_a, &mut agent_events_b).await;
    let mut agent_events_a = agent_a.events().await;
    until_nodes_hear_each_other(&agent_b, &mut agent_events_a).await;
    drop(agent_events_a);

    let site_id = create_site(&agent_a).await;
    agent_b.set_availability("online", 5).await;
    let visitor = Visitor::create(&client, &node_a.base, &site_id).await;
    let mut visitor_events = visitor.events().await;
    let started = visitor
        .start_chat(json!({ "client_id": "m-0", "body": "Где мой заказ?" }))
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let ticket_id = started.str("/chat/ticket_id");
    visitor_events
        .wait_for("the agent joining", |name, data| {
            name == "entry" && data["event"] == "agent_joined"
        })
        .await;

    // Visitor on A → agent on B.
    let sent = visitor
        .send(&ticket_id, "m-1", "Заказ 1042, оплачен картой")
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    agent_events_b
        .wait_for("the visitor's message on node B", |name, data| {
            name == "message.added" && data["ticket_id"] == ticket_id.as_str()
        })
        .await;

    // Agent on B → visitor on A: a reply, then typing.
    agent_b.reply(&ticket_id, "Сейчас проверю").await;
    let reply = visitor_events
        .wait_for("the agent's reply on node A", |name, data| {
            name == "entry" && data["author"] == "agent"
        })
        .await;
    assert_eq!(reply["body"], "Сейчас проверю");
    agent_b
        .ok(
            Method::POST,
            &format!("/tickets/{ticket_id}/chat/typing"),
            Some(json!({ "typing": true })),
        )
        .await;
    let typing = visitor_events
        .wait_for("the agent typing on node A", |name, _| name == "typing")
        .await;
    assert_eq!(typing["typing"], true);
    assert_eq!(typing["ticket_id"], ticket_id.as_str());

    // Node B dies mid-chat while the visitor keeps writing through A.
    let sending = {
        let (visitor, ticket_id) = (visitor.clone(), ticket_id.clone());
        tokio::spawn(async move {
            for index in 2..=21 {
                let client_id = format!("m-{index}");
                let sent = visitor
                    .send(&ticket_id, &client_id, &format!("Сообщение {index}"))
                    .await;
                assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    node_b.kill();
    sending.await.unwrap();
    // A resend (the answer was lost on a flaky connection) stores nothing new.
    let resent = visitor.send(&ticket_id, "m-7", "Сообщение 7").await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.body);

    let entries = visitor.entries(&ticket_id).await;
    let client_ids = assert_contiguous_and_unique(&entries);
    let expected: HashSet<String> = (0..=21).map(|index| format!("m-{index}")).collect();
    assert_eq!(
        client_ids.iter().cloned().collect::<HashSet<_>>(),
        expected,
        "every message once"
    );
    assert_eq!(resent.body["entry"]["seq"], {
        let seven = entries.iter().find(|entry| entry["client_id"] == "m-7");
        seven.unwrap()["seq"].clone()
    });
    // The visitor's stream on A carried each of them once, in order.
    let last_seq = entries.last().unwrap()["seq"].as_i64().unwrap();
    visitor_events
        .wait_for("the last entry on the visitor's stream", |name, data| {
            name == "entry" && data["seq"].as_i64() == Some(last_seq)
        })
        .await;
    let streamed: Vec<i64> = visitor_events
        .entries()
        .iter()
        .map(|entry| entry["seq"].as_i64().unwrap())
        .collect();
    assert!(
        streamed.windows(2).all(|pair| pair[0] < pair[1]),
        "the stream repeated or reordered entries: {streamed:?}"
    );

    // The agent reconnects to A: the history is complete, and new messages arrive live.
    let mut agent_events = agent_a.events().await;
    let messages = agent_a
        .ok(Method::GET, &format!("/tickets/{ticket_id}/messages"), None)
        .await
        .body;
    let from_customer: Vec<&str> = messages
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| message["author_kind"] == "customer")
        .map(|message| message["body"].as_str().unwrap())
        .collect();
    assert_eq!(from_customer.len(), 22, "{from_customer:?}");
    let bodies: HashSet<&str> = from_customer.iter().copied().collect();
    assert_eq!(bodies.len(), 22, "a message was stored twice");
    let sent = visitor.send(&ticket_id, "m-22", "Вы здесь?").await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    agent_events
        .wait_for("the next message on node A", |name, data| {
            name == "message.added" && data["ticket_id"] == ticket_id.as_str()
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_chats_with_an_agent_end_to_end_on_one_sqlite_node() {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let installation = Installation::new(false).await;
    let node = installation.start("data", &client).await;
    let admin = Staff {
        client: client.clone(),
        base: node.base.clone(),
        token: installation.token.clone(),
    };
    let site_id = create_site(&admin).await;

    // A page on another origin may not use the site's chat.
    for (method, path) in [
        (Method::GET, format!("/widget/v1/sites/{site_id}")),
        (Method::POST, format!("/widget/v1/sites/{site_id}/visitors")),
    ] {
        let refused = call(
            &client,
            method,
            format!("{}{path}", node.base),
            None,
            Some("http://evil.test"),
            Some(json!({})),
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            refused.body["code"], "origin_not_allowed",
            "{}",
            refused.body
        );
    }

    // Nobody online: the message is taken only with an e-mail address, as an offline chat.
    let offline = Visitor::create(&client, &node.base, &site_id).await;
    let refused = offline
        .start_chat(json!({ "client_id": "o-1", "body": "Есть кто?" }))
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.body["field"], "email", "{}", refused.body);
    let left = offline
        .start_chat(json!({ "client_id": "o-1", "body": "Есть кто?", "email": "olga@example.ru" }))
        .await;
    assert_eq!(left.status, StatusCode::CREATED, "{}", left.body);
    assert_eq!(left.body["chat"]["state"], "offline");

    // The admin takes one chat at a time and has one: the next chat waits in the queue.
    admin.set_availability("online", 1).await;
    let first = Visitor::create(&client, &node.base, &site_id).await;
    let first_chat = first
        .start_chat(json!({ "client_id": "f-1", "body": "Первый" }))
        .await;
    assert_eq!(
        first_chat.status,
        StatusCode::CREATED,
        "{}",
        first_chat.body
    );
    assert_eq!(
        first_chat.body["chat"]["state"], "active",
        "{}",
        first_chat.body
    );
    let visitor = Visitor::create(&client, &node.base, &site_id).await;
    let mut events = visitor.events().await;
    let started = visitor
        .start_chat(json!({ "client_id": "v-1", "body": "Где мой заказ 1042?", "name": "Ольга" }))
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    assert_eq!(started.body["chat"]["state"], "queued", "{}", started.body);
    assert_eq!(started.body["chat"]["queue"]["position"], 1);
    let ticket_id = started.str("/chat/ticket_id");

    // A second agent comes online: routing gives them the waiting chat.
    let agent = admin
        .ok(
            Method::POST,
            "/agents",
            Some(json!({ "email": "boris@shop.test", "name": "Борис", "role": "agent", "team_ids": [] })),
        )
        .await
        .str("/id");
    let scopes: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
    let boris = Staff {
        client: client.clone(),
        base: node.base.clone(),
        token: admin
            .ok(
                Method::POST,
                &format!("/agents/{agent}/tokens"),
                Some(json!({ "name": "t", "scopes": scopes })),
            )
            .await
            .str("/token"),
    };
    boris.set_availability("online", 3).await;
    // The server routes at once after an availability change, and every 2 s at the latest.
    let active = events
        .wait_for("the chat becoming active", |name, data| {
            name == "chat" && data["state"] == "active"
        })
        .await;
    assert_eq!(active["agent"]["name"], "Борис", "{active}");
    let chat = boris
        .ok(Method::GET, &format!("/tickets/{ticket_id}/chat"), None)
        .await;
    assert_eq!(chat.body["agent_id"], agent.as_str());

    boris
        .reply(&ticket_id, "Здравствуйте, Ольга! Проверяю.")
        .await;
    let reply = events
        .wait_for("the agent's reply", |name, data| {
            name == "entry" && data["author"] == "agent"
        })
        .await;
    assert_eq!(reply["body"], "Здравствуйте, Ольга! Проверяю.");
    assert_eq!(reply["agent_name"], "Борис");

    // Another visitor can neither read nor write this chat.
    let stranger = first
        .call(
            Method::GET,
            &format!("/chats/{ticket_id}/entries?after=0"),
            None,
        )
        .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND, "{}", stranger.body);
    let stranger = first.send(&ticket_id, "s-1", "чужой чат").await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND, "{}", stranger.body);

    // A resend with the same client id answers the stored entry and adds nothing.
    let sent = visitor.send(&ticket_id, "v-2", "Спасибо").await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    let resent = visitor.send(&ticket_id, "v-2", "Спасибо").await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.body);
    assert_eq!(resent.body["entry"]["seq"], sent.body["entry"]["seq"]);
    let entries = visitor.entries(&ticket_id).await;
    let client_ids = assert_contiguous_and_unique(&entries);
    assert_eq!(client_ids, ["v-1", "v-2"]);
}
