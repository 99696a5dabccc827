//! An aiosmtpd SMTP peer that keeps every message it receives.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::install::ensure_aiosmtpd;
use super::{kill_process_group, pause};

const SCRIPT: &str = include_str!("../../testkit/smtp_sink.py");

/// One message as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// `MAIL FROM` (empty for `<>`).
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The bytes after DATA, dot-unstuffed, up to and including the last line's CRLF.
    pub raw: Vec<u8>,
}

/// An SMTP server on a free loopback port (aiosmtpd in a venv), killed on drop.
///
/// Every message is stored with its envelope. Recipients named `temp-fail@…` get `451` and
/// `perm-fail@…` get `550` at RCPT, for retry and permanent-failure tests.
pub struct SmtpSink {
    port: u16,
    child: Child,
    dir: TempDir,
}

impl SmtpSink {
    /// Installs aiosmtpd if missing and starts the sink. Panics if it cannot.
    pub fn start() -> Self {
        let python = ensure_aiosmtpd();
        let dir = tempfile::Builder::new()
            .prefix("otklik-smtp-sink-")
            .tempdir()
            .unwrap_or_else(|error| panic!("testkit: cannot create a temp dir: {error}"));
        let script = dir.path().join("smtp_sink.py");
        std::fs::write(&script, SCRIPT).expect("testkit: write smtp_sink.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .arg(dir.path().join("maildir"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|error| panic!("testkit: cannot start {}: {error}", python.display()));
        // The sink picks its own port and prints it; read that line without blocking forever.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = line_tx.send(line);
        });
        let first_line = line_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_default();
        let port = first_line
            .strip_prefix("READY ")
            .and_then(|port| port.trim().parse().ok());
        match port {
            Some(port) => Self { port, child, dir },
            None => {
                kill_process_group(child.id());
                let _ = child.wait();
                panic!("testkit: the aiosmtpd sink did not start (first line {first_line:?})");
            }
        }
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:port?tls=none`, for [`crate::SmtpSettings::from_url`].
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Waits until `n` messages arrived or `timeout` passed, then returns the raw bytes of all
    /// messages received so far, in arrival order (so `wait_for(usize::MAX, t)` collects
    /// everything that arrives within `t`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        self.wait_for_mails(n, timeout)
            .into_iter()
            .map(|mail| mail.raw)
            .collect()
    }

    /// Like [`SmtpSink::wait_for`], with envelopes.
    pub fn wait_for_mails(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= n || Instant::now() >= deadline {
                return received;
            }
            pause(Duration::from_millis(25));
        }
    }

    /// Everything received so far, in arrival order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        let new = self.dir.path().join("maildir/new");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&new)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.iter().map(|path| read_mail(path)).collect()
    }
}

fn read_mail(eml: &Path) -> ReceivedMail {
    let raw = std::fs::read(eml)
        .unwrap_or_else(|error| panic!("testkit: read {}: {error}", eml.display()));
    let meta = std::fs::read(eml.with_extension("json"))
        .unwrap_or_else(|error| panic!("testkit: read the envelope of {}: {error}", eml.display()));
    let meta: serde_json::Value = serde_json::from_slice(&meta).expect("testkit: envelope JSON");
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    ReceivedMail {
        mail_from: text(&meta["mail_from"]),
        rcpt_to: meta["rcpt_to"]
            .as_array()
            .map(|list| list.iter().map(text).collect())
            .unwrap_or_default(),
        raw,
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        kill_process_group(self.child.id());
        let _ = self.child.wait();
    }
}
