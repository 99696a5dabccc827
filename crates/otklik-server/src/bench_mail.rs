//! `otklik bench-mail`: e-mail ingestion throughput end to end (parse, thread, store, index)
//! through the SMTP listener and through the pipe (`otklik mail ingest`), on SQLite and
//! PostgreSQL, with a mix of plain, HTML and attachment mails, a third of them replies to
//! earlier ones (so threading does real lookups).
//!
//! Like `otklik bench`, it starts this very binary as a child `otklik serve` on free loopback
//! ports with a fresh data folder (and, for PostgreSQL, a database it creates and drops).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{
    BenchBackend, CLI_TIMEOUT, Env, Server, create_database, drop_database, free_port, percentile,
    run_cli,
};

/// What to measure.
#[derive(Debug, Clone)]
pub struct MailBenchOptions {
    pub backends: Vec<BenchBackend>,
    /// Messages sent through the SMTP listener.
    pub smtp_messages: usize,
    /// Messages fed through `otklik mail ingest` (one process each).
    pub pipe_messages: usize,
    /// Concurrent SMTP clients and concurrent pipe processes.
    pub concurrency: usize,
    pub pg_url: String,
}

const SUPPORT: &str = "support@shop.test";

/// How far back a reply's parent is: far enough that the parent is stored before its reply
/// is sent, whatever the concurrency of the run (a reply racing its own parent is not what a
/// shop's mail looks like).
const REPLY_DISTANCE: usize = 300;

/// The sender of message `index`: its own customer, or its parent's for a reply.
fn sender_of(index: usize) -> usize {
    match parent_of(index) {
        Some(parent) => sender_of(parent),
        None => index,
    }
}

/// Every third message from the `REPLY_DISTANCE`-th on answers an earlier one.
fn parent_of(index: usize) -> Option<usize> {
    (index % 3 == 2 && index >= REPLY_DISTANCE).then(|| index - REPLY_DISTANCE)
}

/// One message of the mix.
fn message(index: usize) -> Vec<u8> {
    let message_id = format!("bench-{index}@customer.test");
    let thread = match parent_of(index) {
        Some(parent) => {
            let parent = format!("bench-{parent}@customer.test");
            format!("In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n")
        }
        None => String::new(),
    };
    let head = format!(
        "From: Покупатель {index} <buyer{}@customer.test>\r\nTo: {SUPPORT}\r\n\
         Subject: =?utf-8?B?{}?=\r\nMessage-ID: <{message_id}>\r\n{thread}\
         Date: Mon, 23 Nov 2026 10:00:00 +0300\r\nMIME-Version: 1.0\r\n",
        sender_of(index),
        base64_utf8(&format!("Где мой заказ {index}? Доставка задерживается")),
    );
    let text = format!(
        "Здравствуйте! Заказ {index} оплачен картой, но доставка всё ещё не пришла.\r\n\
         Please check the delivery and the refund options for order {index}.\r\n"
    );
    let body = match index % 3 {
        0 => format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}"
        ),
        1 => format!(
            "Content-Type: multipart/alternative; boundary=\"alt{index}\"\r\n\r\n\
             --alt{index}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n\
             --alt{index}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
             <html><body><p>Здравствуйте!</p><p><b>Заказ {index}</b> оплачен, но <i>доставка</i> не пришла.</p>\
             <img src=\"https://tracker.example/pixel.gif\"><script>alert(1)</script></body></html>\r\n\
             --alt{index}--\r\n"
        ),
        _ => format!(
            "Content-Type: multipart/mixed; boundary=\"mix{index}\"\r\n\r\n\
             --mix{index}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n\
             --mix{index}\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=\"photo-{index}.png\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--mix{index}--\r\n",
            png_base64(index)
        ),
    };
    format!("{head}{body}").into_bytes()
}

fn base64_utf8(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// A small PNG-looking attachment (about 6 KB) that differs per message.
fn png_base64(index: usize) -> String {
    use base64::Engine;
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..6000).map(|i| ((i * 31 + index * 7) % 251) as u8));
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    encoded
        .as_bytes()
        .chunks(76)
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect::<Vec<_>>()
        .join("\r\n")
}

struct PhaseReport {
    messages: usize,
    failures: usize,
    elapsed: Duration,
    p50: Option<Duration>,
    p99: Option<Duration>,
}

impl PhaseReport {
    fn rate(&self) -> f64 {
        (self.messages - self.failures) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn line(&self, name: &str) -> String {
        let ms =
            |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e3));
        format!(
            "{name:<28} {:>6} msgs  {:>8.0} msgs/s  p50 {:>7} ms  p99 {:>7} ms  failures {}",
            self.messages,
            self.rate(),
            ms(self.p50),
            ms(self.p99),
            self.failures
        )
    }
}

/// Runs `work(index)` for every index with `concurrency` tasks; times each.
async fn drive<F, Fut>(count: usize, concurrency: usize, work: F) -> PhaseReport
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (work, next, failures) = (work.clone(), next.clone(), failures.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    return latencies;
                }
                let sent = Instant::now();
                match work(index).await {
                    Ok(()) => latencies.push(sent.elapsed()),
                    Err(error) => {
                        if failures.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("  message {index} failed: {error:#}");
                        }
                    }
                }
            }
        });
    }
    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        latencies.extend(joined.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    PhaseReport {
        messages: count,
        failures: failures.load(Ordering::Relaxed),
        elapsed,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
    }
}

pub async fn run(options: MailBenchOptions) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the otklik binary")?;
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; run `cargo run --release -- bench-mail` for real figures"
        );
    }
    let mut lines = vec![format!(
        "E-mail ingestion, {} cores, {} concurrent senders; mix: 1/3 plain, 1/3 HTML, 1/3 with a 6 KB attachment; 1/3 are replies to earlier mail",
        std::thread::available_parallelism().map_or(1, usize::from),
        options.concurrency
    )];
    let mut failed = Vec::new();
    for &backend in &options.backends {
        match bench_backend(&exe, backend, &options).await {
            Ok(mut report) => lines.append(&mut report),
            Err(error) => {
                eprintln!("[{}] failed: {error:#}", backend.name());
                failed.push(format!("{}: {error:#}", backend.name()));
            }
        }
    }
    println!("{}", lines.join("\n"));
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}

async fn bench_backend(
    exe: &Path,
    backend: BenchBackend,
    options: &MailBenchOptions,
) -> anyhow::Result<Vec<String>> {
    let data = tempfile::Builder::new()
        .prefix("otklik-bench-mail-")
        .tempdir()
        .context("cannot create a data folder")?;
    let mut env = Env::new(data.path());
    let smtp_port = free_port()?;
    env.vars.push((
        "OTKLIK_SMTP_LISTEN".into(),
        format!("127.0.0.1:{smtp_port}"),
    ));
    env.vars
        .push(("OTKLIK_SMTP_DOMAINS".into(), "shop.test".into()));
    let database = match backend {
        BenchBackend::Sqlite => None,
        BenchBackend::Postgres => {
            let database = create_database(&options.pg_url).await?;
            env.vars
                .push(("OTKLIK_DATABASE_URL".into(), database.url.clone()));
            Some(database)
        }
    };
    let outcome = measure(exe, backend, &env, options).await;
    if let Some(database) = database
        && let Err(error) = drop_database(&options.pg_url, &database.name).await
    {
        eprintln!("could not drop database {}: {error:#}", database.name);
    }
    outcome
}

async fn measure(
    exe: &Path,
    backend: BenchBackend,
    env: &Env,
    options: &MailBenchOptions,
) -> anyhow::Result<Vec<String>> {
    let name = backend.name();
    eprintln!("[{name}] mailbox and server");
    run_cli(
        exe,
        env,
        &[
            "mailbox",
            "add",
            "--name",
            "support",
            "--address",
            SUPPORT,
            "--no-auto-acknowledge",
        ],
        None,
        CLI_TIMEOUT,
    )
    .await?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let server = Server::start(exe, env, &client).await?;
    let smtp_port = env
        .vars
        .iter()
        .find(|(key, _)| key == "OTKLIK_SMTP_LISTEN")
        .and_then(|(_, value)| value.rsplit_once(':'))
        .and_then(|(_, port)| port.parse::<u16>().ok())
        .context("no SMTP port")?;
    let listener = Arc::new(otklik_mail_transport::SmtpSettings::from_url(&format!(
        "smtp://127.0.0.1:{smtp_port}?tls=none"
    ))?);
    let mut lines = Vec::new();

    eprintln!(
        "[{name}] {} messages through the SMTP listener",
        options.smtp_messages
    );
    let smtp = drive(options.smtp_messages, options.concurrency, move |index| {
        let listener = listener.clone();
        async move {
            let raw = message(index);
            otklik_mail_transport::send_raw(
                &listener,
                &format!("buyer{}@customer.test", sender_of(index)),
                &[SUPPORT.to_owned()],
                &raw,
            )
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))
        }
    })
    .await;
    lines.push(smtp.line(&format!("{name}: SMTP listener")));
    server.stop().await?;

    eprintln!(
        "[{name}] {} messages through `otklik mail ingest`",
        options.pipe_messages
    );
    let offset = options.smtp_messages;
    let exe_owned = exe.to_path_buf();
    let vars = env.vars.clone();
    let pipe = drive(options.pipe_messages, options.concurrency, move |index| {
        let exe = exe_owned.clone();
        let vars = vars.clone();
        async move {
            let raw = message(offset + index);
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                use std::io::Write;
                let mut command = std::process::Command::new(&exe);
                for (name, _) in std::env::vars_os() {
                    if name.to_string_lossy().starts_with("OTKLIK_") {
                        command.env_remove(name);
                    }
                }
                let mut child = command
                    .envs(vars.iter().map(|(k, v)| (k, v)))
                    .env("RUST_LOG", "error")
                    .args(["mail", "ingest", "--mailbox", "support"])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()?;
                child.stdin.take().context("no stdin")?.write_all(&raw)?;
                let status = child.wait()?;
                anyhow::ensure!(status.success(), "otklik mail ingest exited {status}");
                Ok(())
            })
            .await?
        }
    })
    .await;
    lines.push(pipe.line(&format!("{name}: pipe (process per mail)")));
    if smtp.failures + pipe.failures > 0 {
        bail!("{} messages were not stored", smtp.failures + pipe.failures);
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_mix_parses_into_plain_html_and_attachment_mails_with_replies() {
        let limits = otklik_email::ParseLimits::default();
        let plain = otklik_email::parse_inbound(&message(0), &limits).unwrap();
        assert!(plain.html.is_none() && plain.attachments.is_empty());
        let html = otklik_email::parse_inbound(&message(1), &limits).unwrap();
        assert!(html.html.is_some());
        let attached = otklik_email::parse_inbound(&message(2), &limits).unwrap();
        assert_eq!(attached.attachments.len(), 1);
        assert!(
            attached.in_reply_to.is_empty(),
            "no parent before the reply distance"
        );
        assert!(attached.subject.contains("Доставка"));
        let reply = otklik_email::parse_inbound(&message(REPLY_DISTANCE + 2), &limits).unwrap();
        assert_eq!(reply.in_reply_to, vec!["bench-2@customer.test".to_owned()]);
        assert_eq!(reply.from.unwrap().address, "buyer2@customer.test");
    }
}
