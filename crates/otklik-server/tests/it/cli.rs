//! The `otklik` binary as an operator uses it: first start, set-up from the CLI, tokens,
//! config, online backup, graceful shutdown.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

const BINARY: &str = env!("CARGO_BIN_EXE_otklik");

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn otklik(data_dir: &std::path::Path, bind: &str) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_remove("OTKLIK_DATABASE_URL")
        .env_remove("OTKLIK_CONFIG")
        .env("OTKLIK_DATA_DIR", data_dir)
        .env("OTKLIK_BIND", bind)
        .env("RUST_LOG", "warn");
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await
            && response.status() == StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become healthy at {base}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_starts_sets_up_backs_up_and_stops_otklik_from_the_command_line() {
    let folder = tempfile::tempdir().unwrap();
    let data = folder.path().join("data");
    let bind = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{bind}");
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let mut child = otklik(&data, &bind)
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut server = Server { child };
    wait_healthy(&client, &base).await;
    let printed: Vec<String> = BufReader::new(stdout)
        .lines()
        .take(5)
        .map(Result::unwrap)
        .collect();
    assert!(
        printed.iter().any(|line| line.contains("setup_token")),
        "first start prints a set-up token: {printed:?}"
    );

    let mut admin = otklik(&data, &bind)
        .args([
            "admin",
            "create",
            "--email",
            "owner@shop.test",
            "--name",
            "Owner",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    admin
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    assert!(admin.wait().unwrap().success());

    let token = otklik(&data, &bind)
        .args([
            "token",
            "create",
            "--email",
            "owner@shop.test",
            "--scope",
            "tickets:read,tickets:write",
        ])
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let token = String::from_utf8(token.stdout).unwrap();
    let token = token.trim();
    assert!(
        token.starts_with("otk_") && !token.contains(' '),
        "stdout holds only the token: {token:?}"
    );

    let created = client
        .post(format!("{base}/api/v1/tickets"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "subject": "CLI", "body": "b", "requester": { "kind": "email", "value": "c@example.com" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    let config = otklik(&data, &bind)
        .env("OTKLIK_DATABASE_URL", "postgres://u:hunter2@db/otklik")
        .arg("config")
        .output()
        .unwrap();
    let config = String::from_utf8(config.stdout).unwrap();
    assert!(
        config.contains("postgres://u:***@db/otklik") && !config.contains("hunter2"),
        "{config}"
    );

    // Rebuilding the index and counters while serving leaves search and views as they were.
    let before = client
        .get(format!("{base}/api/v1/search?q=cli%20"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let reindexed = otklik(&data, &bind).arg("reindex").output().unwrap();
    assert!(
        reindexed.status.success(),
        "{}",
        String::from_utf8_lossy(&reindexed.stderr)
    );
    let after = client
        .get(format!("{base}/api/v1/search?q=cli%20"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(before.contains("\"subject\":\"CLI\""), "{before}");
    assert_eq!(before, after);

    let backup = folder.path().join("backup.db");
    let backed_up = otklik(&data, &bind)
        .arg("backup")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        backed_up.status.success(),
        "{}",
        String::from_utf8_lossy(&backed_up.stderr)
    );
    let copy = rusqlite::Connection::open(&backup).unwrap();
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let n_tickets: i64 = copy
        .query_row("SELECT count(*) FROM tickets", [], |row| row.get(0))
        .unwrap();
    assert_eq!(n_tickets, 1);
    let again = otklik(&data, &bind)
        .arg("backup")
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "an existing backup file is never overwritten"
    );

    let terminated = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop within 10 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status.success(),
        "graceful shutdown exits cleanly: {status:?}"
    );
}

#[test]
fn a_bad_setting_stops_the_binary_with_a_message_naming_it() {
    let folder = tempfile::tempdir().unwrap();
    let output = otklik(folder.path(), "not-an-address")
        .arg("config")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("OTKLIK_BIND"));
}
