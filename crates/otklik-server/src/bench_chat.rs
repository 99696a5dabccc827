//! `otklik bench-chat`: live chat under load on one node. For each requested size N it starts
//! this very binary as a child `otklik serve` (fresh data folder, or a fresh PostgreSQL
//! database) with the widget's rate limits raised, then:
//!
//! 1. creates an admin and a token (CLI), a chat site, and sets the admin online for chats;
//! 2. creates N visitors, starts a chat for each, and opens N visitor event streams
//!    (`/widget/v1/events`, one connection each) that stay open to the end, plus one agent
//!    subscriber on `/api/v1/events`;
//! 3. sends visitor messages at a steady aggregate rate, spread round-robin over the chats with
//!    at most one outstanding message per chat, and times each from just before its `POST` to
//!    the agent stream's `message.added` for that ticket (customer → agent);
//! 4. has the agent answer a sample of its active chats through the API and times each reply
//!    to the visitor stream's `entry` (agent → visitor);
//! 5. reads the server's VmRSS and peak VmHWM with the N streams open, and its CPU time.
//!
//! The load generator runs in this process, so on a small machine it shares the cores with
//! the server. The child is killed on every way out; only loopback addresses are used.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot};

use crate::bench::{
    BenchBackend, Env, admin_token, create_database, drop_database, free_port, percentile,
    wait_until_healthy,
};

/// What to measure.
#[derive(Debug, Clone)]
pub struct ChatBenchOptions {
    pub backend: BenchBackend,
    /// Concurrent visitors (each with a chat and an open event stream), one run per size.
    pub visitors: Vec<usize>,
    /// Visitor messages per second, all chats together.
    pub rate: f64,
    /// How long visitor messages are sent.
    pub seconds: u64,
    /// Agent replies timed to the visitor's stream.
    pub agent_replies: usize,
    pub pg_url: String,
    pub keep_data: bool,
}

/// The origin the bench site allows and every widget request carries.
const ORIGIN: &str = "http://bench.invalid";
const ADMIN_EMAIL: &str = "chat-bench@otklik.test";
const ADMIN_PASSWORD: &str = "chat-bench-password-not-secret";
/// Concurrent requests while visitors, chats and streams are set up.
const SETUP_CONCURRENCY: usize = 32;
/// The most chats an agent may hold (the API's ceiling): the chats the agent answers.
const AGENT_MAX_CHATS: u16 = 20;
/// Agent replies per second in the agent → visitor sample.
const AGENT_REPLY_RATE: f64 = 20.0;
/// A message not seen by its subscriber within this time counts as lost.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// The agent stream counts as settled after this long without an event.
const QUIET: Duration = Duration::from_millis(1500);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
const SETUP_TIMEOUT: Duration = Duration::from_secs(900);
const TARGET_P99_MS: f64 = 100.0;
const TARGET_RSS_MB: f64 = 200.0;
const TARGET_CONNECTIONS: usize = 5_000;

// ---------------------------------------------------------------------------------------------
// The report

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
struct Latency {
    samples: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Latency {
    fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        let ms = |duration: Option<Duration>| duration.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        Latency {
            samples: samples.len(),
            p50_ms: ms(percentile(&samples, 50.0)),
            p99_ms: ms(percentile(&samples, 99.0)),
            max_ms: ms(samples.last().copied()),
        }
    }

    fn cells(&self) -> String {
        format!(
            "{:>7.1} {:>7.1} {:>7.1}",
            self.p50_ms, self.p99_ms, self.max_ms
        )
    }
}

/// Errors of one run, by kind.
#[derive(Debug, Clone, Default, Serialize)]
struct ErrorCounts {
    /// Visitor streams that ended or failed while the run was going on.
    streams_failed: usize,
    /// Message or reply `POST`s that failed (transport error or unexpected status).
    posts_failed: usize,
    /// Accepted messages whose own event did not reach the subscriber within the timeout
    /// (when a `resync` replaced it, a real client would refetch and see it late).
    lost: usize,
    /// Scheduled sends skipped because every chat still had a message outstanding.
    skipped: usize,
    /// `resync` events (the server says events may have been missed).
    resyncs: usize,
}

impl ErrorCounts {
    fn total(&self) -> usize {
        self.streams_failed + self.posts_failed + self.lost + self.skipped
    }
}

/// The server's memory (MB) and CPU.
#[derive(Debug, Clone, Default, Serialize)]
struct ServerFigures {
    rss_idle_mb: f64,
    /// VmRSS once every stream is open, before messages.
    rss_streams_open_mb: f64,
    /// VmRSS after the message phases, streams still open.
    rss_after_messages_mb: f64,
    /// VmHWM: the peak resident size since the server started.
    peak_hwm_mb: f64,
    /// Open socket file descriptors of the server with the streams open.
    server_sockets: usize,
    /// Server CPU during the customer → agent phase, in cores (1.0 = one core busy).
    server_cores_busy: f64,
    /// This process's (the load generator's) CPU in the same phase.
    client_cores_busy: f64,
    /// The machine's 1-minute load average when the phase started and ended: above the core
    /// count, other work competed with the server for the CPU and the figures suffer.
    load_average_before: f64,
    load_average_after: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
struct SizeReport {
    visitors: usize,
    streams_open: usize,
    setup_seconds: f64,
    messages_sent: usize,
    messages_per_second: f64,
    customer_to_agent: Latency,
    /// How long the visitor's `POST` took to answer.
    visitor_post: Latency,
    agent_to_visitor: Latency,
    errors: ErrorCounts,
    server: ServerFigures,
}

#[derive(Debug, Clone, Default, Serialize)]
struct ChatBenchReport {
    bench: &'static str,
    backend: String,
    cores: usize,
    debug_build: bool,
    rate: f64,
    seconds: u64,
    sizes: Vec<SizeReport>,
    failures: Vec<String>,
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn format_report(report: &ChatBenchReport) -> String {
    let mut out = format!(
        "Live chat on one node: {} backend, {} cores shared by server and load generator{}; \
         visitor messages at {:.0}/s for {} s, one outstanding per chat\n\n",
        report.backend,
        report.cores,
        if report.debug_build {
            " (DEBUG BUILD: figures are not meaningful)"
        } else {
            ""
        },
        report.rate,
        report.seconds
    );
    out.push_str(
        "visitors  streams   msgs  msgs/s | customer→agent ms     | agent→visitor ms      | \
         POST p99 | errors | RSS idle  open    end   peak MB | CPU server client\n",
    );
    out.push_str(
        "                                 |   p50     p99     max |   p50     p99     max | \
         ms       |        |                                 | cores\n",
    );
    for size in &report.sizes {
        out.push_str(&format!(
            "{:>8} {:>8} {:>6} {:>7.0} | {} | {} | {:>8.1} | {:>6} | {:>6.0} {:>6.0} {:>6.0} {:>6.0}    | {:>6.2} {:>6.2}\n",
            size.visitors,
            size.streams_open,
            size.messages_sent,
            size.messages_per_second,
            size.customer_to_agent.cells(),
            size.agent_to_visitor.cells(),
            size.visitor_post.p99_ms,
            size.errors.total(),
            size.server.rss_idle_mb,
            size.server.rss_streams_open_mb,
            size.server.rss_after_messages_mb,
            size.server.peak_hwm_mb,
            size.server.server_cores_busy,
            size.server.client_cores_busy,
        ));
    }
    out.push('\n');
    for size in &report.sizes {
        let errors = &size.errors;
        out.push_str(&format!(
            "N={}: set-up {:.1} s; {} server sockets; errors: {} streams failed, {} posts failed, \
             {} lost, {} skipped; {} resyncs; {} customer→agent and {} agent→visitor samples\n",
            size.visitors,
            size.setup_seconds,
            size.server.server_sockets,
            errors.streams_failed,
            errors.posts_failed,
            errors.lost,
            errors.skipped,
            errors.resyncs,
            size.customer_to_agent.samples,
            size.agent_to_visitor.samples,
        ));
        if size
            .server
            .load_average_before
            .max(size.server.load_average_after)
            > report.cores as f64
        {
            out.push_str(&format!(
                "  warning: the machine was busy with other work (load average {:.1} → {:.1} on {} cores): latency figures may be pessimistic\n",
                size.server.load_average_before, size.server.load_average_after, report.cores
            ));
        }
        let mark = |ok: bool| if ok { "met" } else { "MISSED" };
        out.push_str(&format!(
            "  targets: p99 ≤ {TARGET_P99_MS:.0} ms {} ({:.1}); peak RSS ≤ {TARGET_RSS_MB:.0} MB {} ({:.0}); all {} streams open {}\n",
            mark(size.customer_to_agent.p99_ms <= TARGET_P99_MS),
            size.customer_to_agent.p99_ms,
            mark(size.server.peak_hwm_mb <= TARGET_RSS_MB),
            size.server.peak_hwm_mb,
            size.visitors,
            mark(size.streams_open == size.visitors),
        ));
        if size.visitors < TARGET_CONNECTIONS {
            out.push_str(&format!(
                "  (the issue's connection target is {TARGET_CONNECTIONS}; run --visitors {TARGET_CONNECTIONS})\n"
            ));
        }
    }
    for failure in &report.failures {
        out.push_str(&format!("FAILED: {failure}\n"));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Running it

pub async fn run(options: ChatBenchOptions) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the otklik binary")?;
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; run `cargo run --release -p otklik-server -- bench-chat` for real figures"
        );
    }
    let mut report = ChatBenchReport {
        bench: "chat",
        backend: options.backend.name().to_owned(),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        debug_build: cfg!(debug_assertions),
        rate: options.rate,
        seconds: options.seconds,
        ..ChatBenchReport::default()
    };
    for &visitors in &options.visitors {
        eprintln!("[{visitors} visitors] starting");
        match bench_size(&exe, visitors, &options).await {
            Ok(size) => report.sizes.push(size),
            Err(error) => {
                eprintln!("[{visitors} visitors] failed: {error:#}");
                report
                    .failures
                    .push(format!("{visitors} visitors: {error:#}"));
            }
        }
    }
    print!("{}", format_report(&report));
    println!("{}", serde_json::to_string(&report)?);
    if !report.failures.is_empty() {
        bail!("{}", report.failures.join("; "));
    }
    Ok(())
}

async fn bench_size(
    exe: &Path,
    visitors: usize,
    options: &ChatBenchOptions,
) -> anyhow::Result<SizeReport> {
    let data = tempfile::Builder::new()
        .prefix("otklik-bench-chat-")
        .tempdir()
        .context("cannot create a data folder")?;
    let mut env = Env::new(data.path());
    let database = match options.backend {
        BenchBackend::Sqlite => None,
        BenchBackend::Postgres => {
            let database = create_database(&options.pg_url).await?;
            env.vars
                .push(("OTKLIK_DATABASE_URL".into(), database.url.clone()));
            Some(database)
        }
    };
    let outcome = measure(exe, &env, data.path(), visitors, options).await;
    if outcome.is_err() {
        eprintln!(
            "last lines of the server log:\n{}",
            log_tail(&data.path().join("otklik.log"), 20)
        );
    }
    if let Some(database) = database {
        if options.keep_data {
            eprintln!("kept database {}", database.name);
        } else if let Err(error) = drop_database(&options.pg_url, &database.name).await {
            eprintln!("could not drop database {}: {error:#}", database.name);
        }
    }
    if options.keep_data {
        eprintln!("kept data folder {}", data.keep().display());
    }
    outcome
}

/// One chat of the load: its visitor's token and the ticket.
struct BenchChat {
    token: String,
    ticket_id: String,
}

/// What the stream readers and the senders share.
#[derive(Default)]
struct Shared {
    /// Customer → agent: the sender waiting for the agent stream's event, by ticket.
    agent_waiters: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
    /// Agent → visitor: the sender waiting for the visitor stream's entry, by ticket.
    visitor_waiters: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
    /// Visitor streams that said `hello` and have not ended.
    open_streams: AtomicUsize,
    streams_failed: AtomicUsize,
    resyncs: AtomicUsize,
    /// When the agent stream last had an event, in ms since `epoch`.
    agent_last_event_ms: AtomicU64,
    /// Set when the run is over: streams ending from then on are not failures.
    closing: AtomicBool,
    epoch: Option<Instant>,
}

impl Shared {
    fn since_epoch_ms(&self) -> u64 {
        self.epoch
            .map_or(0, |epoch| epoch.elapsed().as_millis() as u64)
    }
}

async fn measure(
    exe: &Path,
    env: &Env,
    data_dir: &Path,
    visitors: usize,
    options: &ChatBenchOptions,
) -> anyhow::Result<SizeReport> {
    let label = format!("[{visitors} visitors]");
    let mut report = SizeReport {
        visitors,
        ..SizeReport::default()
    };
    let token = admin_token(exe, env, (ADMIN_EMAIL, "Bench Agent", ADMIN_PASSWORD), true).await?;
    // Requests: a pooled client. Streams: their own client, one connection each, no timeout
    // (reqwest's timeout covers the whole body, and a stream's body never ends).
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(30))
        .build()?;
    let stream_client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let server = ChatServer::start(exe, env, data_dir, &client).await?;
    eprintln!("{label} server pid {} at {}", server.pid, server.base);
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.server.rss_idle_mb = mb(proc_status_kb(server.pid, "VmRSS:").unwrap_or(0));
    let base = server.base.clone();

    let setup_started = Instant::now();
    let site = post_json(
        &client,
        &format!("{base}/api/v1/chat-sites"),
        &token,
        None,
        json!({ "name": "Bench shop", "allowed_origins": [ORIGIN] }),
    )
    .await
    .context("creating the chat site")?;
    let site_id = site["id"].as_str().context("no site id")?.to_owned();
    let availability = client
        .put(format!("{base}/api/v1/chat/availability"))
        .bearer_auth(&token)
        .json(&json!({ "availability": "online", "max_chats": AGENT_MAX_CHATS }))
        .send()
        .await?;
    anyhow::ensure!(
        availability.status().is_success(),
        "setting the agent online answered {}",
        availability.status()
    );

    eprintln!("{label} creating visitors and starting their chats");
    let chats = setup_chats(&client, &base, &site_id, visitors).await?;
    let chats = Arc::new(chats);

    let shared = Arc::new(Shared {
        epoch: Some(Instant::now()),
        ..Shared::default()
    });
    let mut readers = tokio::task::JoinSet::new();
    {
        let response = stream_client
            .get(format!("{base}/api/v1/events"))
            .bearer_auth(&token)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == reqwest::StatusCode::OK,
            "the agent stream answered {}",
            response.status()
        );
        readers.spawn(read_agent_stream(response, shared.clone()));
    }
    eprintln!("{label} opening {visitors} visitor streams");
    open_visitor_streams(&stream_client, &base, &chats, &shared, &mut readers).await?;
    report.setup_seconds = setup_started.elapsed().as_secs_f64();
    report.streams_open = shared.open_streams.load(Ordering::Relaxed);
    eprintln!(
        "{label} {} streams open after {:.1} s; waiting for the agent stream to settle",
        report.streams_open, report.setup_seconds
    );
    wait_quiet(&shared).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    report.server.rss_streams_open_mb = mb(proc_status_kb(server.pid, "VmRSS:").unwrap_or(0));
    report.server.server_sockets = socket_count(server.pid);

    eprintln!(
        "{label} visitor messages: {:.0}/s for {} s",
        options.rate, options.seconds
    );
    report.server.load_average_before = load_average();
    let server_cpu = cpu_ticks(&format!("/proc/{}/stat", server.pid));
    let client_cpu = cpu_ticks("/proc/self/stat");
    let phase_started = Instant::now();
    let phase = customer_to_agent(&client, &base, &chats, &shared, options, visitors).await;
    let phase_seconds = phase_started.elapsed().as_secs_f64();
    let busy = |before: Option<u64>, path: &str| match (before, cpu_ticks(path)) {
        (Some(before), Some(after)) => {
            (after.saturating_sub(before)) as f64 / clock_ticks_per_second() / phase_seconds
        }
        _ => 0.0,
    };
    report.server.server_cores_busy = busy(server_cpu, &format!("/proc/{}/stat", server.pid));
    report.server.client_cores_busy = busy(client_cpu, "/proc/self/stat");
    report.server.load_average_after = load_average();
    report.messages_sent = phase.sent;
    report.messages_per_second = phase.sent as f64 / phase.sending_seconds.max(1e-9);
    report.customer_to_agent = Latency::of(phase.delivered);
    report.visitor_post = Latency::of(phase.answered);
    report.errors.posts_failed += phase.failed;
    report.errors.lost += phase.lost;
    report.errors.skipped += phase.skipped;

    eprintln!(
        "{label} agent replies: {} at {AGENT_REPLY_RATE:.0}/s",
        options.agent_replies
    );
    let replies = agent_to_visitor(&client, &base, &token, &shared, options.agent_replies).await?;
    report.agent_to_visitor = Latency::of(replies.delivered);
    report.errors.posts_failed += replies.failed;
    report.errors.lost += replies.lost;

    report.server.rss_after_messages_mb = mb(proc_status_kb(server.pid, "VmRSS:").unwrap_or(0));
    report.server.peak_hwm_mb = mb(proc_status_kb(server.pid, "VmHWM:").unwrap_or(0));
    report.streams_open = report
        .streams_open
        .min(shared.open_streams.load(Ordering::Relaxed));
    shared.closing.store(true, Ordering::Relaxed);
    report.errors.streams_failed = shared.streams_failed.load(Ordering::Relaxed);
    report.errors.resyncs = shared.resyncs.load(Ordering::Relaxed);
    readers.shutdown().await;
    server.stop().await?;
    Ok(report)
}

/// POSTs JSON (with the widget's `Origin` when `origin` is set) and returns the 2xx body.
async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    origin: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut request = client.post(url).json(&body);
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    if let Some(origin) = origin {
        request = request.header(reqwest::header::ORIGIN, origin);
    }
    let response = request.send().await?;
    let status = response.status();
    let bytes = response.bytes().await?;
    if !status.is_success() {
        bail!(
            "POST {url} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// Creates `count` visitors and starts a chat for each.
async fn setup_chats(
    client: &reqwest::Client,
    base: &str,
    site_id: &str,
    count: usize,
) -> anyhow::Result<Vec<BenchChat>> {
    let semaphore = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..count {
        let (client, base, site_id) = (client.clone(), base.to_owned(), site_id.to_owned());
        let semaphore = semaphore.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await?;
            let visitor = post_json(
                &client,
                &format!("{base}/widget/v1/sites/{site_id}/visitors"),
                "",
                Some(ORIGIN),
                json!({}),
            )
            .await?;
            let token = visitor["token"]
                .as_str()
                .context("no visitor token")?
                .to_owned();
            let started = post_json(
                &client,
                &format!("{base}/widget/v1/chats"),
                &token,
                Some(ORIGIN),
                json!({
                    "client_id": format!("start-{index}"),
                    "body": format!("Здравствуйте, где мой заказ {index}?"),
                    "name": format!("Покупатель {index}"),
                }),
            )
            .await?;
            let ticket_id = started["chat"]["ticket_id"]
                .as_str()
                .context("no ticket id")?
                .to_owned();
            anyhow::Ok((index, BenchChat { token, ticket_id }))
        });
    }
    let mut chats: Vec<Option<BenchChat>> = (0..count).map(|_| None).collect();
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    let mut done = 0;
    while let Some(joined) = tokio::time::timeout_at(deadline, tasks.join_next())
        .await
        .context("setting up the chats took too long")?
    {
        let (index, chat) = joined.context("a set-up task panicked")??;
        chats[index] = Some(chat);
        done += 1;
        if done % 1000 == 0 {
            eprintln!("  {done} chats started");
        }
    }
    Ok(chats.into_iter().flatten().collect())
}

/// Opens one event stream per chat's visitor and waits until each has said `hello`.
async fn open_visitor_streams(
    stream_client: &reqwest::Client,
    base: &str,
    chats: &Arc<Vec<BenchChat>>,
    shared: &Arc<Shared>,
    readers: &mut tokio::task::JoinSet<()>,
) -> anyhow::Result<()> {
    let semaphore = Arc::new(Semaphore::new(SETUP_CONCURRENCY * 2));
    let refused = Arc::new(AtomicUsize::new(0));
    for index in 0..chats.len() {
        let permit = semaphore.clone().acquire_owned().await?;
        let (client, chats, shared) = (stream_client.clone(), chats.clone(), shared.clone());
        let url = format!("{base}/widget/v1/events");
        let refused = refused.clone();
        readers.spawn(async move {
            let chat = &chats[index];
            let response = client
                .get(url)
                .bearer_auth(&chat.token)
                .header(reqwest::header::ORIGIN, ORIGIN)
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .send()
                .await;
            let response = match response {
                Ok(response) if response.status() == reqwest::StatusCode::OK => response,
                Ok(response) => {
                    if refused.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("  a visitor stream answered {}", response.status());
                    }
                    return;
                }
                Err(error) => {
                    if refused.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("  a visitor stream failed to open: {error}");
                    }
                    return;
                }
            };
            read_visitor_stream(response, shared, Some(permit)).await;
        });
    }
    // Every permit back means every stream said hello (or failed).
    let all = u32::try_from(SETUP_CONCURRENCY * 2).unwrap_or(u32::MAX);
    tokio::time::timeout(SETUP_TIMEOUT, semaphore.acquire_many(all))
        .await
        .context("the visitor streams took too long to open")??
        .forget();
    let refused = refused.load(Ordering::Relaxed);
    if refused > 0 {
        eprintln!("  {refused} visitor streams could not be opened");
    }
    shared.streams_failed.fetch_add(refused, Ordering::Relaxed);
    Ok(())
}

/// One server-sent event.
#[derive(Debug, PartialEq)]
struct SseEvent {
    name: String,
    data: String,
}

/// Splits a byte stream into server-sent events (comments and unnamed events are skipped).
#[derive(Default)]
struct SseParser {
    buffer: Vec<u8>,
}

impl SseParser {
    fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.windows(2).position(|pair| pair == b"\n\n") {
            let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&block);
            let mut name = String::new();
            let mut data = String::new();
            for line in text.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim_start().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value.strip_prefix(' ').unwrap_or(value));
                }
            }
            if !name.is_empty() {
                events.push(SseEvent { name, data });
            }
        }
        events
    }
}

fn ticket_of(data: &str) -> Option<String> {
    let value: Value = serde_json::from_str(data).ok()?;
    value["ticket_id"].as_str().map(str::to_owned)
}

async fn read_agent_stream(mut response: reqwest::Response, shared: Arc<Shared>) {
    let mut parser = SseParser::default();
    while let Ok(Some(chunk)) = response.chunk().await {
        let now = Instant::now();
        shared
            .agent_last_event_ms
            .store(shared.since_epoch_ms(), Ordering::Relaxed);
        for event in parser.push(&chunk) {
            match event.name.as_str() {
                "message.added" => {
                    if let Some(ticket_id) = ticket_of(&event.data) {
                        let waiter = shared
                            .agent_waiters
                            .lock()
                            .expect("waiters")
                            .remove(&ticket_id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(now);
                        }
                    }
                }
                "resync" => {
                    shared.resyncs.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    }
    if !shared.closing.load(Ordering::Relaxed) {
        eprintln!("  the agent stream ended");
        shared.streams_failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads a visitor stream; gives `opened` back at `hello`.
async fn read_visitor_stream(
    mut response: reqwest::Response,
    shared: Arc<Shared>,
    mut opened: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let mut parser = SseParser::default();
    let mut said_hello = false;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) | Err(_) => break,
        };
        let now = Instant::now();
        for event in parser.push(&chunk) {
            match event.name.as_str() {
                "hello" if !said_hello => {
                    said_hello = true;
                    shared.open_streams.fetch_add(1, Ordering::Relaxed);
                    opened.take();
                }
                "entry" => {
                    let Ok(entry) = serde_json::from_str::<Value>(&event.data) else {
                        continue;
                    };
                    if entry["author"] == "agent"
                        && let Some(ticket_id) = entry["ticket_id"].as_str()
                    {
                        let waiter = shared
                            .visitor_waiters
                            .lock()
                            .expect("waiters")
                            .remove(ticket_id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(now);
                        }
                    }
                }
                "resync" => {
                    shared.resyncs.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    }
    if said_hello {
        shared.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
    if !shared.closing.load(Ordering::Relaxed) {
        shared.streams_failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Waits until the agent stream has been quiet for a while (the set-up's events are through).
async fn wait_quiet(shared: &Shared) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let last = shared.agent_last_event_ms.load(Ordering::Relaxed);
        if shared.since_epoch_ms().saturating_sub(last) >= QUIET.as_millis() as u64 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Default)]
struct PhaseOutcome {
    sent: usize,
    sending_seconds: f64,
    delivered: Vec<Duration>,
    answered: Vec<Duration>,
    failed: usize,
    lost: usize,
    skipped: usize,
}

/// Where a sent message or reply ended up.
enum Delivery {
    Delivered {
        answered: Duration,
        delivered: Duration,
    },
    Failed,
    Lost,
}

/// Waits for a subscriber to see what `send` posted, timing both from just before the post.
async fn timed_delivery<F>(
    waiters: &Mutex<HashMap<String, oneshot::Sender<Instant>>>,
    ticket_id: &str,
    send: F,
) -> Delivery
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let (sender, receiver) = oneshot::channel();
    waiters
        .lock()
        .expect("waiters")
        .insert(ticket_id.to_owned(), sender);
    let started = Instant::now();
    let sent = send.await;
    let answered = started.elapsed();
    if let Err(error) = sent {
        waiters.lock().expect("waiters").remove(ticket_id);
        eprintln!("  a post failed: {error:#}");
        return Delivery::Failed;
    }
    match tokio::time::timeout(DELIVERY_TIMEOUT, receiver).await {
        Ok(Ok(at)) => Delivery::Delivered {
            answered,
            delivered: at.saturating_duration_since(started),
        },
        _ => {
            waiters.lock().expect("waiters").remove(ticket_id);
            Delivery::Lost
        }
    }
}

/// Visitor messages at a steady aggregate rate, round-robin over the chats, one outstanding
/// per chat (until the agent stream has seen it).
async fn customer_to_agent(
    client: &reqwest::Client,
    base: &str,
    chats: &Arc<Vec<BenchChat>>,
    shared: &Arc<Shared>,
    options: &ChatBenchOptions,
    visitors: usize,
) -> PhaseOutcome {
    let total = (options.rate * options.seconds as f64).round() as usize;
    let busy: Arc<Vec<AtomicBool>> =
        Arc::new((0..chats.len()).map(|_| AtomicBool::new(false)).collect());
    let (results, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
    let mut outcome = PhaseOutcome::default();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / options.rate.max(0.1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut cursor = 0;
    let started = Instant::now();
    for sequence in 0..total {
        ticks.tick().await;
        let Some(index) = (0..chats.len())
            .map(|step| (cursor + step) % chats.len())
            .find(|&index| !busy[index].swap(true, Ordering::AcqRel))
        else {
            outcome.skipped += 1;
            continue;
        };
        cursor = index + 1;
        outcome.sent += 1;
        let (client, chats, shared, busy, results) = (
            client.clone(),
            chats.clone(),
            shared.clone(),
            busy.clone(),
            results.clone(),
        );
        let url = format!("{base}/widget/v1/chats/{}/messages", chats[index].ticket_id);
        tokio::spawn(async move {
            let chat = &chats[index];
            let body = json!({
                "client_id": format!("bench-{visitors}-{sequence}"),
                "body": format!("Сообщение {sequence}: когда приедет заказ?"),
            });
            let send = async {
                let response = client
                    .post(&url)
                    .bearer_auth(&chat.token)
                    .header(reqwest::header::ORIGIN, ORIGIN)
                    .json(&body)
                    .send()
                    .await?;
                let status = response.status();
                let bytes = response.bytes().await?;
                anyhow::ensure!(
                    status == reqwest::StatusCode::CREATED,
                    "a visitor message answered {status}: {}",
                    String::from_utf8_lossy(&bytes)
                );
                Ok(())
            };
            let delivery = timed_delivery(&shared.agent_waiters, &chat.ticket_id, send).await;
            busy[index].store(false, Ordering::Release);
            let _ = results.send(delivery);
        });
    }
    outcome.sending_seconds = started.elapsed().as_secs_f64();
    drop(results);
    while let Some(delivery) = outcomes.recv().await {
        match delivery {
            Delivery::Delivered {
                answered,
                delivered,
            } => {
                outcome.answered.push(answered);
                outcome.delivered.push(delivered);
            }
            Delivery::Failed => outcome.failed += 1,
            Delivery::Lost => outcome.lost += 1,
        }
    }
    outcome
}

/// Agent replies through the API to the chats the agent holds, timed to the visitor's stream.
async fn agent_to_visitor(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    shared: &Arc<Shared>,
    replies: usize,
) -> anyhow::Result<PhaseOutcome> {
    let mut outcome = PhaseOutcome::default();
    if replies == 0 {
        return Ok(outcome);
    }
    let queue: Value = client
        .get(format!("{base}/api/v1/chat/queue"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mine: Vec<String> = queue["mine"]
        .as_array()
        .map(|chats| {
            chats
                .iter()
                .filter_map(|chat| chat["ticket_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    anyhow::ensure!(!mine.is_empty(), "the agent holds no chat to answer");
    let mine = Arc::new(mine);
    let busy: Arc<Vec<AtomicBool>> =
        Arc::new((0..mine.len()).map(|_| AtomicBool::new(false)).collect());
    let (results, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / AGENT_REPLY_RATE));
    let mut cursor = 0;
    for sequence in 0..replies {
        ticks.tick().await;
        let Some(index) = (0..mine.len())
            .map(|step| (cursor + step) % mine.len())
            .find(|&index| !busy[index].swap(true, Ordering::AcqRel))
        else {
            outcome.skipped += 1;
            continue;
        };
        cursor = index + 1;
        outcome.sent += 1;
        let (client, mine, shared, busy, results) = (
            client.clone(),
            mine.clone(),
            shared.clone(),
            busy.clone(),
            results.clone(),
        );
        let url = format!("{base}/api/v1/tickets/{}/messages", mine[index]);
        let token = token.to_owned();
        tokio::spawn(async move {
            let send = async {
                post_json(
                    &client,
                    &url,
                    &token,
                    None,
                    json!({ "body": format!("Ответ {sequence}: заказ уже в пути.") }),
                )
                .await
                .map(|_| ())
            };
            let delivery = timed_delivery(&shared.visitor_waiters, &mine[index], send).await;
            busy[index].store(false, Ordering::Release);
            let _ = results.send(delivery);
        });
    }
    drop(results);
    while let Some(delivery) = outcomes.recv().await {
        match delivery {
            Delivery::Delivered { delivered, .. } => outcome.delivered.push(delivered),
            Delivery::Failed => outcome.failed += 1,
            Delivery::Lost => outcome.lost += 1,
        }
    }
    Ok(outcome)
}

// ---------------------------------------------------------------------------------------------
// The server process and /proc

/// A running `otklik serve`, killed if still running when dropped.
struct ChatServer {
    child: Child,
    pid: u32,
    base: String,
}

impl Drop for ChatServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl ChatServer {
    async fn start(
        exe: &Path,
        env: &Env,
        data_dir: &Path,
        client: &reqwest::Client,
    ) -> anyhow::Result<ChatServer> {
        let port = free_port()?;
        let log_path = data_dir.join("otklik.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let mut command = Command::new(exe);
        command.arg("serve");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OTKLIK_") {
                command.env_remove(name);
            }
        }
        command
            .envs(env.vars.iter().map(|(name, value)| (name, value)))
            .env("OTKLIK_BIND", format!("127.0.0.1:{port}"))
            .env("OTKLIK_WIDGET_VISITORS_PER_IP_PER_MINUTE", "10000000")
            .env("OTKLIK_WIDGET_ACTIONS_PER_VISITOR_PER_MINUTE", "10000000")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {} serve", exe.display()))?;
        let mut server = ChatServer {
            pid: child.id(),
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        wait_until_healthy(&mut server.child, &server.base, client, &log_path).await?;
        Ok(server)
    }

    /// SIGTERM, then SIGKILL if it takes too long.
    async fn stop(mut self) -> anyhow::Result<()> {
        let asked = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !asked.is_ok_and(|status| status.success()) {
            let _ = self.child.kill();
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!("the server did not stop within {STOP_TIMEOUT:?} of SIGTERM and was killed")
    }
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`).
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kb(&status, field)
}

fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User plus system CPU time of a process, in clock ticks, from its `stat` file.
fn cpu_ticks(path: &str) -> Option<u64> {
    parse_cpu_ticks(&std::fs::read_to_string(path).ok()?)
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (field 3) … utime (14), stime (15).
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// The machine's 1-minute load average.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux this runs on.
fn clock_ticks_per_second() -> f64 {
    100.0
}

/// How many sockets the process holds open.
fn socket_count(pid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| {
            std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// The last `lines` lines of a log file (empty if it cannot be read).
fn log_tail(path: &PathBuf, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_sent_events_are_split_across_chunks_and_comments_are_skipped() {
        let mut parser = SseParser::default();
        assert!(
            parser
                .push(b"event: hello\ndata: {\"visitor_id\"")
                .is_empty()
        );
        let events =
            parser.push(b":\"v\"}\n\n: ping\n\nevent: entry\ndata: {\"seq\":1}\n\nevent: ty");
        assert_eq!(
            events,
            vec![
                SseEvent {
                    name: "hello".into(),
                    data: "{\"visitor_id\":\"v\"}".into()
                },
                SseEvent {
                    name: "entry".into(),
                    data: "{\"seq\":1}".into()
                },
            ]
        );
        let events = parser.push("ping\ndata: {}\n\n".as_bytes());
        assert_eq!(events[0].name, "typing");
    }

    #[test]
    fn proc_figures_parse() {
        let status = "Name:\totklik\nVmHWM:\t  151000 kB\nVmRSS:\t  120000 kB\n";
        assert_eq!(parse_status_kb(status, "VmRSS:"), Some(120_000));
        assert_eq!(parse_status_kb(status, "VmHWM:"), Some(151_000));
        let stat = "42 (tokio (rt)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn latency_uses_nearest_rank_percentiles() {
        let samples = (1..=100).map(Duration::from_millis).collect();
        let latency = Latency::of(samples);
        assert_eq!(latency.samples, 100);
        assert!((latency.p50_ms - 50.0).abs() < 1e-9);
        assert!((latency.p99_ms - 99.0).abs() < 1e-9);
        assert!((latency.max_ms - 100.0).abs() < 1e-9);
    }
}
