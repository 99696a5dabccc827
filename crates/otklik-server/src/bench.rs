//! `otklik bench`: drives a real Otklik server over HTTP and prints throughput, latency and
//! memory figures, next to what a bare SQLite insert loop reaches on the same machine.
//!
//! For each backend the benchmark starts this very binary as a child process (`otklik serve`)
//! on a free loopback port with a fresh data folder (and, for PostgreSQL, a brand-new database
//! it creates and drops), creates an admin and a token through the child's CLI, then:
//!
//! 1. creates tickets with `POST /api/v1/tickets` at the requested concurrency;
//! 2. stops the server, tops the database up to the list size with `otklik demo` (its batched
//!    path), starts the server again and measures `GET /api/v1/tickets` pages under a mix of
//!    filters and cursors;
//! 3. samples the server's resident memory (VmRSS) idle and every 100 ms under load;
//! 4. the scale phase: for each requested size (`--scale-tickets`, ascending) grows the same
//!    dataset with `otklik demo` (restarting the server, `VACUUM (ANALYZE)` and `CHECKPOINT` on
//!    PostgreSQL), plants a few tickets with a word found nowhere else, and measures search (rare, common and
//!    filtered words, a prefix, order numbers, e-mails; and one search as a demo agent, most of
//!    whose matches are in other teams' tickets), the view counters, list pages and a view's
//!    tickets, next to the issue's targets, plus the database size on disk.
//!
//! Every phase is bounded by a request count and a time cap; the child server is killed on
//! every way out (a guard's `Drop`). Only loopback addresses are used.
//!
//! `OTKLIK_BENCH_DATA_DIR=folder` runs in that folder and keeps it (and, for PostgreSQL, the
//! database it names); the next run with the same folder measures the dataset again instead of
//! generating it ([`REUSE_DATA_ENV`]).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use serde::Serialize;

/// The PostgreSQL admin URL used when none is given (the local trust-auth server).
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Every load phase stops after this long, whatever its request count.
const PHASE_TIME_CAP: Duration = Duration::from_secs(120);
/// How long a started server may take to answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping server may take to finish before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `otklik admin create` and `otklik token create` may take.
pub(crate) const CLI_TIMEOUT: Duration = Duration::from_secs(120);
/// How long seeding with `otklik demo` may take.
const SEED_TIMEOUT: Duration = Duration::from_secs(1800);
/// Quiet time before the idle memory is read.
const SETTLE: Duration = Duration::from_secs(1);
/// How often memory is sampled under load.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Concurrent clients of the list phase.
const LIST_CONCURRENCY: usize = 8;
/// Concurrent clients of the scale phase.
const SCALE_CONCURRENCY: usize = 8;
/// Unmeasured requests per scale probe before measuring (a running server is warm).
const SCALE_WARMUP: usize = 10;
/// Tickets planted with [`RARE_WORD`] before the scale phase.
const RARE_TICKETS: usize = 5;
/// A word the demo vocabulary never uses; searched in another form (plural) to exercise stemming.
const RARE_WORD: &str = "ксилофон";
const RARE_QUERY: &str = "ксилофоны";
/// The issue's targets at 1M tickets on 2 cores (p99, ms).
const TARGET_SEARCH_P99_MS: f64 = 50.0;
const TARGET_LIST_P99_MS: f64 = 20.0;
const TARGET_VIEWS_P99_MS: f64 = 5.0;
/// The agent-workspace issue's targets at 100k tickets: page server time and inbox weight.
const TARGET_UI_P99_MS: f64 = 30.0;
const TARGET_UI_INBOX_BYTES: u64 = 150 * 1024;
/// Pages followed through `next_cursor` by the cursor mix.
const CURSOR_PAGES: usize = 3;
/// Customers created before the creation phase, for requests that name a `customer_id`.
const KNOWN_CUSTOMERS: usize = 100;
/// How long each SQLite ceiling loop runs at most.
const CEILING_TIME_CAP: Duration = Duration::from_secs(3);
/// Rows per transaction of the grouped ceiling figure.
const CEILING_GROUP: usize = 32;
const BENCH_EMAIL: &str = "bench@otklik.test";
const BENCH_PASSWORD: &str = "bench-password-not-secret";

/// A database backend to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchBackend {
    Sqlite,
    Postgres,
}

impl BenchBackend {
    pub(crate) fn name(self) -> &'static str {
        match self {
            BenchBackend::Sqlite => "sqlite",
            BenchBackend::Postgres => "postgres",
        }
    }
}

/// What to measure, and how hard.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub backends: Vec<BenchBackend>,
    /// Concurrent clients while creating tickets.
    pub concurrency: usize,
    /// `POST /api/v1/tickets` requests to send.
    pub create_requests: usize,
    /// Tickets in the database while list pages are measured.
    pub list_tickets: usize,
    /// `GET /api/v1/tickets` requests to send.
    pub list_requests: usize,
    /// PostgreSQL admin URL; a fresh database is created under it and dropped afterwards.
    pub pg_url: String,
    /// Keep the data folders and the PostgreSQL database for inspection.
    pub keep_data: bool,
    /// Dataset sizes of the scale phase (grown in ascending order); empty skips it.
    pub scale_tickets: Vec<usize>,
    /// Measured requests per scale probe.
    pub scale_requests: usize,
    /// Measure the agent workspace's pages (inbox, views, ticket) after the list phase.
    pub ui: bool,
    /// Measured requests per workspace page kind.
    pub ui_requests: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            backends: vec![BenchBackend::Sqlite, BenchBackend::Postgres],
            concurrency: 32,
            create_requests: 20_000,
            list_tickets: 100_000,
            list_requests: 2_000,
            pg_url: DEFAULT_PG_URL.to_owned(),
            keep_data: false,
            scale_tickets: vec![100_000],
            scale_requests: 500,
            ui: false,
            ui_requests: 300,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The report

/// Latency figures of a set of requests, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct Latency {
    requests: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Latency {
    fn of(samples: &[Duration]) -> Latency {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let ms = |duration: Option<Duration>| duration.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        Latency {
            requests: sorted.len(),
            p50_ms: ms(percentile(&sorted, 50.0)),
            p99_ms: ms(percentile(&sorted, 99.0)),
            max_ms: ms(sorted.last().copied()),
        }
    }
}

/// The nearest-rank percentile of `sorted` (ascending): the smallest sample that at least `p`
/// percent of the samples are less than or equal to.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct CreateReport {
    concurrency: usize,
    requests: usize,
    created: usize,
    errors: usize,
    seconds: f64,
    requests_per_second: f64,
    latency: Latency,
    first_error: Option<String>,
    stopped_by_time_cap: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct ListMixReport {
    name: String,
    latency: Latency,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct ListReport {
    /// Tickets in the database while listing.
    dataset_tickets: usize,
    /// Of which `otklik demo` wrote this many.
    seeded_tickets: usize,
    seed_seconds: f64,
    /// The writing rate `otklik demo` reported.
    seed_tickets_per_second: Option<f64>,
    /// PostgreSQL only: the database was vacuumed and analysed after seeding, as autovacuum
    /// would do on a live server (a bulk load leaves no statistics, and some plans go bad).
    vacuumed_after_seeding: bool,
    concurrency: usize,
    errors: usize,
    first_error: Option<String>,
    mixes: Vec<ListMixReport>,
    overall: Latency,
    stopped_by_time_cap: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct MemoryReport {
    idle_mb: f64,
    peak_creating_mb: f64,
    idle_after_seeding_mb: f64,
    peak_listing_mb: f64,
}

/// What a scale probe measures, and the issue's target for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum ProbeGroup {
    #[default]
    Search,
    ViewCounters,
    ListPage,
}

impl ProbeGroup {
    fn target_p99_ms(self) -> f64 {
        match self {
            ProbeGroup::Search => TARGET_SEARCH_P99_MS,
            ProbeGroup::ViewCounters => TARGET_VIEWS_P99_MS,
            ProbeGroup::ListPage => TARGET_LIST_P99_MS,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct ProbeReport {
    name: String,
    group: ProbeGroup,
    /// The first request (others of the probe differ only in the number or address searched).
    example: String,
    /// Word queries: every matching ticket (with the probe's status filter), counted in the
    /// database with the same index tokens the search uses.
    hits: Option<u64>,
    /// Mean tickets per answer (search results, page items, or views for the view list).
    mean_items: f64,
    /// Searches: mean customers per answer.
    mean_customers: f64,
    latency: Latency,
    target_p99_ms: f64,
    errors: usize,
    first_error: Option<String>,
    stopped_by_time_cap: bool,
    /// Tickets changed by another client while this probe ran.
    tickets_changed: usize,
    /// The CPU yardstick around this probe, in ms: the mean of the one taken before and the one
    /// after ([`cpu_yardstick`]).
    yardstick_ms: Option<f64>,
    /// The every-core memory yardstick around this probe, in ms, likewise
    /// ([`every_core_yardstick`]).
    every_core_yardstick_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct ViewCount {
    name: String,
    count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct ScaleReport {
    /// The size asked for with `--scale-tickets`.
    requested_tickets: usize,
    /// Counted in the database while measuring.
    dataset_tickets: u64,
    dataset_messages: u64,
    /// Tickets `otklik demo` added for this size, how long it took (process start included)
    /// and the writing rate it reported.
    seeded_tickets: usize,
    seed_seconds: f64,
    seed_tickets_per_second: Option<f64>,
    vacuumed_after_seeding: bool,
    /// A kept dataset measured again was vacuumed first (see [`vacuum_analyze`]).
    vacuumed_kept_dataset: bool,
    database_bytes: u64,
    /// What `database_bytes` is made of.
    database_size: String,
    concurrency: usize,
    warmup_requests_per_probe: usize,
    probes: Vec<ProbeReport>,
    /// The admin's views and their maintained counts, as `GET /api/v1/views` gave them.
    view_counts: Vec<ViewCount>,
    peak_rss_mb: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct BackendReport {
    backend: String,
    create: CreateReport,
    list: ListReport,
    rss: MemoryReport,
    scale: Vec<ScaleReport>,
    ui: Option<UiReport>,
}

/// The agent workspace: server time of its pages and what a browser downloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct UiReport {
    dataset_tickets: usize,
    /// `GET /views/{id}` of the view with the most rows on its first page.
    inbox: Latency,
    inbox_rows: usize,
    /// `GET /views/{id}` over every view.
    views: Latency,
    /// `GET /tickets/{id}` over tickets found in the views and filters.
    tickets: Latency,
    distinct_tickets: usize,
    inbox_html_bytes: u64,
    inbox_html_gzip_bytes: u64,
    ticket_html_bytes: u64,
    ticket_html_gzip_bytes: u64,
    /// CSS, scripts and icon of a first visit (cached for a year afterwards).
    assets_bytes: u64,
    assets_gzip_bytes: u64,
    errors: usize,
    first_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct CeilingFigure {
    tickets_per_transaction: usize,
    tickets: usize,
    seconds: f64,
    tickets_per_second: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct CeilingReport {
    description: String,
    one_per_transaction: CeilingFigure,
    grouped: CeilingFigure,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct BenchReport {
    cores: usize,
    debug_build: bool,
    backends: Vec<BackendReport>,
    failures: Vec<String>,
    sqlite_ceiling: Option<CeilingReport>,
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The plain-text report.
fn format_report(report: &BenchReport) -> String {
    let mut out = String::new();
    let build = if report.debug_build {
        "debug build (figures are not representative; use --release)"
    } else {
        "release build"
    };
    let _ = writeln!(
        out,
        "\nOtklik load benchmark: {} cores, {build}",
        report.cores
    );
    for backend in &report.backends {
        let (create, list, rss) = (&backend.create, &backend.list, &backend.rss);
        let _ = writeln!(out, "\nBackend: {}", backend.backend);
        let _ = writeln!(
            out,
            "  Ticket creation: {} × POST /api/v1/tickets at concurrency {} in {:.1} s{}",
            create.requests,
            create.concurrency,
            create.seconds,
            if create.stopped_by_time_cap {
                " (stopped by the time cap)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "    throughput {:.0} req/s, {} created, {} errors",
            create.requests_per_second, create.created, create.errors
        );
        let _ = writeln!(
            out,
            "    latency    p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            create.latency.p50_ms, create.latency.p99_ms, create.latency.max_ms
        );
        if let Some(error) = &create.first_error {
            let _ = writeln!(out, "    first error: {error}");
        }
        let _ = writeln!(
            out,
            "  Ticket list: GET /api/v1/tickets?limit=50 on {} tickets ({} seeded by `otklik demo` in {:.1} s{}{}), concurrency {}{}",
            list.dataset_tickets,
            list.seeded_tickets,
            list.seed_seconds,
            list.seed_tickets_per_second
                .map(|rate| format!(", {rate:.0} tickets/s written"))
                .unwrap_or_default(),
            if list.vacuumed_after_seeding {
                ", then VACUUM (ANALYZE) and CHECKPOINT"
            } else {
                ""
            },
            list.concurrency,
            if list.stopped_by_time_cap {
                " (stopped by the time cap)"
            } else {
                ""
            }
        );
        for mix in list.mixes.iter().chain(std::iter::once(&ListMixReport {
            name: "overall".into(),
            latency: list.overall.clone(),
        })) {
            let _ = writeln!(
                out,
                "    {:<24} p50 {:>6.1} ms, p99 {:>6.1} ms, max {:>6.1} ms ({} requests)",
                mix.name,
                mix.latency.p50_ms,
                mix.latency.p99_ms,
                mix.latency.max_ms,
                mix.latency.requests
            );
        }
        if list.errors > 0 {
            let _ = writeln!(
                out,
                "    {} errors; first: {}",
                list.errors,
                list.first_error.as_deref().unwrap_or("?")
            );
        }
        let _ = writeln!(
            out,
            "  Memory (VmRSS of the otklik process): idle {:.1} MB, peak while creating {:.1} MB; idle after seeding {:.1} MB, peak while listing {:.1} MB",
            rss.idle_mb, rss.peak_creating_mb, rss.idle_after_seeding_mb, rss.peak_listing_mb
        );
        for scale in &backend.scale {
            format_scale(&mut out, scale);
        }
    }
    if let Some(ceiling) = &report.sqlite_ceiling {
        let _ = writeln!(
            out,
            "\nSQLite ceiling on this machine: {}",
            ceiling.description
        );
        for (figure, note) in [
            (
                &ceiling.one_per_transaction,
                "each commit waits for its own fsync",
            ),
            (&ceiling.grouped, "what group commit can reach"),
        ] {
            let per = figure.tickets_per_transaction;
            let _ = writeln!(
                out,
                "  {:>7.0} tickets/s with {per} ticket{} per transaction: {note} ({} tickets in {:.2} s)",
                figure.tickets_per_second,
                if per == 1 { "" } else { "s" },
                figure.tickets,
                figure.seconds
            );
        }
        if let Some(sqlite) = report
            .backends
            .iter()
            .find(|backend| backend.backend == BenchBackend::Sqlite.name())
            && ceiling.one_per_transaction.tickets_per_second > 0.0
        {
            let _ = writeln!(
                out,
                "  The server created tickets over HTTP at {:.0}% of the one-per-transaction ceiling.",
                100.0 * sqlite.create.requests_per_second
                    / ceiling.one_per_transaction.tickets_per_second
            );
        }
    }
    for backend in &report.backends {
        if let Some(ui) = &backend.ui {
            format_ui(&mut out, &backend.backend, ui);
        }
    }
    for failure in &report.failures {
        let _ = writeln!(out, "\nFAILED: {failure}");
    }
    out
}

fn format_ui(out: &mut String, backend: &str, ui: &UiReport) {
    let _ = writeln!(
        out,
        "\nWorkspace pages on {backend} at {} tickets (one client, signed in through the login form; targets: p99 ≤ {TARGET_UI_P99_MS} ms, inbox ≤ {} KB with assets cached):",
        ui.dataset_tickets,
        TARGET_UI_INBOX_BYTES / 1024
    );
    for (label, latency) in [
        ("inbox, fullest view (GET /views/{id})", &ui.inbox),
        ("every view (GET /views/{id})", &ui.views),
        ("ticket page (GET /tickets/{id})", &ui.tickets),
    ] {
        let verdict = if latency.p99_ms <= TARGET_UI_P99_MS {
            "meets"
        } else {
            "MISSES"
        };
        let _ = writeln!(
            out,
            "    {label:38} {:>5} req  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  ({verdict} the target)",
            latency.requests, latency.p50_ms, latency.p99_ms, latency.max_ms
        );
    }
    let _ = writeln!(
        out,
        "    rows on the inbox page: {}; ticket pages visited: {} distinct",
        ui.inbox_rows, ui.distinct_tickets
    );
    let _ = writeln!(
        out,
        "    inbox HTML {} (gzip {}); ticket HTML {} (gzip {}); first-visit assets {} (gzip {})",
        human_bytes(ui.inbox_html_bytes),
        human_bytes(ui.inbox_html_gzip_bytes),
        human_bytes(ui.ticket_html_bytes),
        human_bytes(ui.ticket_html_gzip_bytes),
        human_bytes(ui.assets_bytes),
        human_bytes(ui.assets_gzip_bytes)
    );
    let verdict = if ui.inbox_html_gzip_bytes <= TARGET_UI_INBOX_BYTES {
        "meets"
    } else {
        "MISSES"
    };
    let _ = writeln!(
        out,
        "    sent for the inbox with assets cached: {} ({verdict} the target); on a first visit: {}",
        human_bytes(ui.inbox_html_gzip_bytes),
        human_bytes(ui.inbox_html_gzip_bytes + ui.assets_gzip_bytes)
    );
    if ui.errors > 0 {
        let _ = writeln!(
            out,
            "    {} requests failed; first: {}",
            ui.errors,
            ui.first_error.as_deref().unwrap_or("?")
        );
    }
}

fn format_scale(out: &mut String, scale: &ScaleReport) {
    let _ = writeln!(
        out,
        "  Scale: {} tickets, {} messages ({:.2} per ticket), database {} ({})",
        scale.dataset_tickets,
        scale.dataset_messages,
        scale.dataset_messages as f64 / scale.dataset_tickets.max(1) as f64,
        human_bytes(scale.database_bytes),
        scale.database_size
    );
    if scale.seeded_tickets > 0 {
        let _ = writeln!(
            out,
            "    seeded {} tickets with `otklik demo` in {:.1} s{}{}",
            scale.seeded_tickets,
            scale.seed_seconds,
            scale
                .seed_tickets_per_second
                .map(|rate| format!(" (it reported {rate:.0} tickets/s written)"))
                .unwrap_or_default(),
            if scale.vacuumed_after_seeding {
                ", then VACUUM (ANALYZE) and CHECKPOINT"
            } else {
                ""
            }
        );
    } else if scale.vacuumed_kept_dataset {
        let _ = writeln!(
            out,
            "    the kept dataset, after VACUUM (ANALYZE) and CHECKPOINT: the last run's changes left dead row versions"
        );
    }
    let _ = writeln!(
        out,
        "    concurrency {}, {} unmeasured warm-up requests per probe; targets are the issue's p99 at 1M tickets",
        scale.concurrency, scale.warmup_requests_per_probe
    );
    // The fastest and the slowest of a yardstick around the probes.
    let span = |yardstick: fn(&ProbeReport) -> Option<f64>| {
        let times = || scale.probes.iter().filter_map(yardstick);
        let fastest = times().min_by(f64::total_cmp)?;
        Some((fastest, times().fold(fastest, f64::max)))
    };
    let one_core_span = span(|probe| probe.yardstick_ms);
    let every_core_span = span(|probe| probe.every_core_yardstick_ms);
    let fastest_yardstick = one_core_span.map(|(fastest, _)| fastest);
    let fastest_every_core = every_core_span.map(|(fastest, _)| fastest);
    for probe in &scale.probes {
        let mut found = String::new();
        if let Some(hits) = probe.hits {
            let _ = write!(found, "{hits} hits");
        } else if probe.group == ProbeGroup::Search {
            let _ = write!(
                found,
                "{:.1} tickets + {:.1} customers per answer",
                probe.mean_items, probe.mean_customers
            );
        } else {
            let _ = write!(found, "{:.1} items per answer", probe.mean_items);
        }
        if probe.tickets_changed > 0 {
            let _ = write!(
                found,
                "; {} tickets changed meanwhile",
                probe.tickets_changed
            );
        }
        let verdict = if probe.latency.requests == 0 {
            "no figure"
        } else if probe.latency.p99_ms <= probe.target_p99_ms {
            "within"
        } else {
            "OVER"
        };
        let mut machine = match (probe.yardstick_ms, fastest_yardstick) {
            (Some(yardstick), Some(fastest)) if fastest > 0.0 => {
                format!(", machine ×{:.2}", yardstick / fastest)
            }
            _ => String::new(),
        };
        if let (Some(yardstick), Some(fastest)) =
            (probe.every_core_yardstick_ms, fastest_every_core)
            && fastest > 0.0
        {
            let _ = write!(machine, ", every core ×{:.2}", yardstick / fastest);
        }
        let _ = writeln!(
            out,
            "    {:<40} p50 {:>7.1} ms, p99 {:>7.1} ms, max {:>7.1} ms ({} requests; {found}) target p99 ≤ {:.0} ms: {verdict}{}{machine}",
            probe.name,
            probe.latency.p50_ms,
            probe.latency.p99_ms,
            probe.latency.max_ms,
            probe.latency.requests,
            probe.target_p99_ms,
            if probe.stopped_by_time_cap {
                " (stopped by the time cap)"
            } else {
                ""
            }
        );
        if probe.errors > 0 {
            let _ = writeln!(
                out,
                "      {} errors; first: {}",
                probe.errors,
                probe.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    if let Some((fastest, slowest)) = one_core_span {
        let _ = writeln!(
            out,
            "    machine speed: the same single-thread work took {fastest:.1}–{slowest:.1} ms around the probes; \
             «machine ×1.30» means it was 30% slower around that probe than around the fastest"
        );
    }
    if let Some((fastest, slowest)) = every_core_span {
        let _ = writeln!(
            out,
            "    every core: the same memory-bound work on every core at once took {fastest:.1}–{slowest:.1} ms \
             around the probes (compare it across runs too: a shared machine's cores slow down together)"
        );
    }
    if !scale.view_counts.is_empty() {
        let counts: Vec<String> = scale
            .view_counts
            .iter()
            .map(|view| format!("{} {}", view.name, view.count))
            .collect();
        let _ = writeln!(out, "    view counts: {}", counts.join(", "));
    }
    let _ = writeln!(
        out,
        "    peak memory while measuring {:.1} MB",
        scale.peak_rss_mb
    );
}

/// Bytes for people: `512 B`, `3.4 MiB`, `1.25 GiB`.
fn human_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let value = bytes as f64;
    if value < KIB {
        format!("{bytes} B")
    } else if value < KIB * KIB {
        format!("{:.1} KiB", value / KIB)
    } else if value < KIB * KIB * KIB {
        format!("{:.1} MiB", value / (KIB * KIB))
    } else {
        format!("{:.2} GiB", value / (KIB * KIB * KIB))
    }
}

/// Where the JSON report goes: `<target dir>/bench-report.json`.
fn report_path() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("bench-report.json")
}

// ---------------------------------------------------------------------------------------------
// Running it

/// Runs every requested backend, then the SQLite ceiling; prints the report and writes it as
/// JSON to `target/bench-report.json`. Fails (after reporting) if any backend failed.
pub async fn run(options: BenchOptions) -> anyhow::Result<()> {
    let exe =
        std::env::current_exe().context("cannot find the otklik binary to start as a server")?;
    let mut report = BenchReport {
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        debug_build: cfg!(debug_assertions),
        ..BenchReport::default()
    };
    if report.debug_build {
        eprintln!(
            "warning: this is a debug build; run `cargo run --release -- bench` for real figures"
        );
    }
    for &backend in &options.backends {
        eprintln!("[{}] starting", backend.name());
        match bench_backend(&exe, backend, &options).await {
            Ok(figures) => report.backends.push(figures),
            Err(error) => {
                eprintln!("[{}] failed: {error:#}", backend.name());
                report
                    .failures
                    .push(format!("{}: {error:#}", backend.name()));
            }
        }
    }
    eprintln!("[ceiling] bare SQLite insert loops");
    let rows = options.create_requests.max(1000);
    match tokio::task::spawn_blocking(move || sqlite_ceiling(rows))
        .await
        .context("the ceiling loop panicked")?
    {
        Ok(ceiling) => report.sqlite_ceiling = Some(ceiling),
        Err(error) => report.failures.push(format!("sqlite ceiling: {error:#}")),
    }
    print!("{}", format_report(&report));
    let path = report_path();
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("\nThe same figures as JSON: {}", path.display());
    if !report.failures.is_empty() {
        bail!("{} of the benchmark failed", report.failures.join("; "));
    }
    Ok(())
}

async fn bench_backend(
    exe: &Path,
    backend: BenchBackend,
    options: &BenchOptions,
) -> anyhow::Result<BackendReport> {
    // PostgreSQL keeps its marker files in a folder of its own beside the SQLite database.
    let reuse = std::env::var_os(REUSE_DATA_ENV)
        .filter(|folder| !folder.is_empty())
        .map(|folder| match backend {
            BenchBackend::Sqlite => PathBuf::from(folder),
            BenchBackend::Postgres => PathBuf::from(folder).join("postgres"),
        });
    let data = match &reuse {
        Some(folder) => {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
            DataFolder::Kept(folder.clone())
        }
        None => DataFolder::Temporary(
            tempfile::Builder::new()
                .prefix("otklik-bench-")
                .tempdir()
                .context("cannot create a data folder")?,
        ),
    };
    let mut env = Env::new(data.path());
    let database = match backend {
        BenchBackend::Sqlite => None,
        BenchBackend::Postgres => {
            let database = match &reuse {
                Some(folder) => kept_database(&options.pg_url, folder).await?,
                None => create_database(&options.pg_url).await?,
            };
            env.vars
                .push(("OTKLIK_DATABASE_URL".into(), database.url.clone()));
            Some(database)
        }
    };
    let database_url = database.as_ref().map(|database| database.url.as_str());
    let outcome = measure(exe, backend, &env, database_url, options, reuse.is_some()).await;
    if outcome.is_err() {
        eprintln!(
            "[{}] last lines of the server log:\n{}",
            backend.name(),
            log_tail(&env.log, 30)
        );
    }
    if let Some(database) = database {
        if reuse.is_some() {
            eprintln!(
                "[{}] database {} kept for reuse",
                backend.name(),
                database.name
            );
        } else if options.keep_data {
            eprintln!("[{}] kept database {}", backend.name(), database.name);
        } else if let Err(error) = drop_database(&options.pg_url, &database.name).await {
            eprintln!(
                "[{}] could not drop database {}: {error:#}",
                backend.name(),
                database.name
            );
        }
    }
    match data {
        DataFolder::Kept(folder) => {
            eprintln!(
                "[{}] data folder {} kept for reuse",
                backend.name(),
                folder.display()
            );
        }
        DataFolder::Temporary(data) if options.keep_data => {
            eprintln!(
                "[{}] kept data folder {}",
                backend.name(),
                data.keep().display()
            );
        }
        DataFolder::Temporary(_) => {}
    }
    outcome
}

/// Names a folder that the run uses and keeps instead of a temporary one (PostgreSQL: its
/// `postgres` subfolder names a database that is kept too). A
/// dataset an earlier run left there (see [`ReusedDataset`]) is measured again: ticket creation,
/// the list phase's seeding and the planted tickets are skipped, and the scale phase tops the
/// dataset up only when it is smaller than asked. Generating a million tickets takes many
/// minutes, so this is how search and counter changes are measured at 1M in turn. Schema
/// migrations of a newer build run on the kept database when its server starts.
pub const REUSE_DATA_ENV: &str = "OTKLIK_BENCH_DATA_DIR";

/// Where one backend's run keeps its files.
enum DataFolder {
    Temporary(tempfile::TempDir),
    Kept(PathBuf),
}

impl DataFolder {
    fn path(&self) -> &Path {
        match self {
            DataFolder::Temporary(folder) => folder.path(),
            DataFolder::Kept(folder) => folder,
        }
    }
}

/// What a run left in a kept data folder for the next one (`bench-dataset.json`).
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
struct ReusedDataset {
    /// Tickets created over HTTP (their order numbers and e-mails are probed).
    created_tickets: usize,
    /// Whether the rare-word tickets are in it.
    planted: bool,
}

impl ReusedDataset {
    const FILE: &'static str = "bench-dataset.json";

    fn read(folder: &Path) -> Option<ReusedDataset> {
        let text = std::fs::read_to_string(folder.join(Self::FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn write(self, folder: &Path) -> anyhow::Result<()> {
        let path = folder.join(Self::FILE);
        std::fs::write(&path, serde_json::to_string_pretty(&self)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The environment of every child process of one backend's run.
pub(crate) struct Env {
    pub(crate) vars: Vec<(String, String)>,
    /// Where the children's logs go.
    log: PathBuf,
    /// The data folder (the SQLite database lives there).
    data_dir: PathBuf,
}

impl Env {
    pub(crate) fn new(data_dir: &Path) -> Env {
        Env {
            vars: vec![
                ("OTKLIK_DATA_DIR".into(), data_dir.display().to_string()),
                ("OTKLIK_LOG_FORMAT".into(), "text".into()),
            ],
            log: data_dir.join("otklik.log"),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// `exe args…` with this environment; inherited `OTKLIK_*` settings are removed so the run
    /// does not depend on the caller's shell.
    fn command(&self, exe: &Path, args: &[&str]) -> anyhow::Result<Command> {
        let mut command = Command::new(exe);
        command.args(args);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OTKLIK_") {
                command.env_remove(name);
            }
        }
        command.envs(self.vars.iter().map(|(name, value)| (name, value)));
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("cannot open {}", self.log.display()))?;
        command.stderr(log);
        Ok(command)
    }
}

async fn measure(
    exe: &Path,
    backend: BenchBackend,
    env: &Env,
    database_url: Option<&str>,
    options: &BenchOptions,
    keep_folder: bool,
) -> anyhow::Result<BackendReport> {
    let name = backend.name();
    let database = match database_url {
        Some(url) => Database::Postgres(url.to_owned()),
        None => Database::Sqlite(env.data_dir.join("otklik.db")),
    };
    let holds_data =
        match &database {
            Database::Sqlite(path) => path.exists(),
            Database::Postgres(_) => database
                .count(
                    "",
                    "SELECT count(*) FROM information_schema.tables WHERE table_name = 'tickets'",
                    vec![],
                )
                .await?
                > 0,
        };
    let reused = if keep_folder && holds_data {
        ReusedDataset::read(&env.data_dir)
    } else {
        None
    };
    if keep_folder && reused.is_none() && holds_data {
        bail!(
            "{} holds a database but no {}: empty the folder (and drop the database) or write that file",
            env.data_dir.display(),
            ReusedDataset::FILE
        );
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(options.concurrency.max(LIST_CONCURRENCY))
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let mut report = BackendReport {
        backend: name.to_owned(),
        ..BackendReport::default()
    };

    let server = Server::start(exe, env, &client).await?;
    eprintln!("[{name}] server pid {} at {}", server.pid, server.base_url);
    let token = admin_token(
        exe,
        env,
        (BENCH_EMAIL, "Bench", BENCH_PASSWORD),
        reused.is_none(),
    )
    .await?;
    tokio::time::sleep(SETTLE).await;
    report.rss.idle_mb = rss_kb(server.pid).map_or(0.0, mb);

    let api = Api {
        client: client.clone(),
        base_url: server.base_url.clone(),
        token: Arc::from(token.as_str()),
    };
    let mut existing = 0;
    if reused.is_some() {
        existing = database
            .count(
                "SELECT count(*) FROM tickets",
                "SELECT count(*) FROM tickets",
                vec![],
            )
            .await?;
        eprintln!(
            "[{name}] reusing {existing} tickets in {}: no creation phase, no list seeding",
            env.data_dir.display()
        );
    } else {
        eprintln!(
            "[{name}] creating {KNOWN_CUSTOMERS} customers, then {} tickets at concurrency {}",
            options.create_requests, options.concurrency
        );
        let customers = Arc::new(create_customers(&api, KNOWN_CUSTOMERS).await?);
        let sampler = RssSampler::start(server.pid);
        report.create = create_phase(
            &api,
            customers,
            options.create_requests,
            options.concurrency,
        )
        .await;
        report.rss.peak_creating_mb = mb(sampler.finish().await);
    }

    let seeded = if reused.is_some() {
        0
    } else {
        options.list_tickets.saturating_sub(report.create.created)
    };
    server.stop().await?;
    let seed_started = Instant::now();
    if seeded > 0 {
        report.list.seed_tickets_per_second = seed(exe, env, name, seeded).await?;
    }
    report.list.seed_seconds = seed_started.elapsed().as_secs_f64();
    let vacuumed = match database_url {
        Some(url) if seeded > 0 => {
            vacuum_analyze(url).await?;
            true
        }
        _ => false,
    };
    report.list.seeded_tickets = seeded;
    report.list.dataset_tickets =
        report.create.created + seeded + usize::try_from(existing).unwrap_or(usize::MAX);

    let server = Server::start(exe, env, &client).await?;
    tokio::time::sleep(SETTLE).await;
    report.rss.idle_after_seeding_mb = rss_kb(server.pid).map_or(0.0, mb);
    let api = Api {
        base_url: server.base_url.clone(),
        ..api
    };
    eprintln!(
        "[{name}] {} list requests on {} tickets",
        options.list_requests, report.list.dataset_tickets
    );
    let sampler = RssSampler::start(server.pid);
    let list = list_phase(&api, options.list_requests).await;
    report.rss.peak_listing_mb = mb(sampler.finish().await);
    report.list = ListReport {
        dataset_tickets: report.list.dataset_tickets,
        seeded_tickets: seeded,
        seed_seconds: report.list.seed_seconds,
        seed_tickets_per_second: report.list.seed_tickets_per_second,
        vacuumed_after_seeding: vacuumed,
        ..list
    };
    if options.ui {
        eprintln!(
            "[{name}] workspace pages: {} requests per page kind on {} tickets",
            options.ui_requests, report.list.dataset_tickets
        );
        let mut ui = ui_phase(&server.base_url, options.ui_requests).await?;
        ui.dataset_tickets = report.list.dataset_tickets;
        report.ui = Some(ui);
    }

    let fixtures = Fixtures {
        created_tickets: reused.map_or(report.create.created, |dataset| dataset.created_tickets),
    };
    let mut server = server;
    let mut api = api;
    let mut dataset = report.list.dataset_tickets;
    let mut planted = reused.is_some_and(|dataset| dataset.planted);
    // A kept dataset holds the dead row versions of the last run's ticket changes (the newest
    // tickets', which every search reads first) until a vacuum: where autovacuum is off, each
    // run would start from more of them than the one before.
    let mut vacuum_kept = reused.is_some();
    // The demo's agents exist once it has seeded the dataset.
    let mut agent_token: Option<String> = None;
    for size in scale_sizes(&options.scale_tickets) {
        let mut scale = ScaleReport {
            requested_tickets: size,
            concurrency: SCALE_CONCURRENCY,
            warmup_requests_per_probe: SCALE_WARMUP,
            ..ScaleReport::default()
        };
        let more = size.saturating_sub(dataset);
        if more > 0 {
            server.stop().await?;
            let started = Instant::now();
            scale.seed_tickets_per_second = seed(exe, env, name, more).await?;
            scale.seed_seconds = started.elapsed().as_secs_f64();
            scale.seeded_tickets = more;
            dataset += more;
            if let Some(url) = database_url {
                vacuum_analyze(url).await?;
                scale.vacuumed_after_seeding = true;
            }
            vacuum_kept = false;
            server = Server::start(exe, env, &client).await?;
            tokio::time::sleep(SETTLE).await;
            api = Api {
                base_url: server.base_url.clone(),
                ..api
            };
        }
        if let Some(url) = database_url.filter(|_| vacuum_kept) {
            vacuum_analyze(url).await?;
            scale.vacuumed_kept_dataset = true;
            vacuum_kept = false;
        }
        if !planted {
            plant_rare_tickets(&api).await?;
            planted = true;
        }
        eprintln!("[{name}] scale phase at {dataset} tickets");
        if agent_token.is_none() {
            let agent = crate::demo::DEMO_AGENT_OF_OTHER_TEAMS;
            agent_token = Some(issue_token(exe, env, agent, "bench agent").await?);
        }
        let agent = agent_token.as_deref().map(|token| Api {
            token: Arc::from(token),
            ..api.clone()
        });
        let sampler = RssSampler::start(server.pid);
        scale_phase(
            &api,
            agent.as_ref(),
            &database,
            &fixtures,
            options.scale_requests,
            &mut scale,
        )
        .await?;
        scale.peak_rss_mb = mb(sampler.finish().await);
        report.scale.push(scale);
    }
    server.stop().await?;
    if keep_folder {
        ReusedDataset {
            created_tickets: fixtures.created_tickets,
            planted,
        }
        .write(&env.data_dir)?;
    }
    Ok(report)
}

/// Tops the dataset up by `tickets` with `otklik demo`; returns the writing rate it reported.
async fn seed(exe: &Path, env: &Env, name: &str, tickets: usize) -> anyhow::Result<Option<f64>> {
    eprintln!("[{name}] seeding {tickets} tickets with `otklik demo`");
    let summary = run_cli(
        exe,
        env,
        &["demo", "--tickets", &tickets.to_string()],
        None,
        SEED_TIMEOUT,
    )
    .await?;
    eprintln!("[{name}] {}", summary.trim());
    Ok(reported_rate(&summary))
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A child process that is killed if it is still running when the guard goes away.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl ChildGuard {
    /// Waits for the child to exit, for at most `timeout`.
    async fn wait_for(&mut self, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A running `otklik serve`.
pub(crate) struct Server {
    child: ChildGuard,
    pid: u32,
    base_url: String,
}

impl Server {
    pub(crate) async fn start(
        exe: &Path,
        env: &Env,
        client: &reqwest::Client,
    ) -> anyhow::Result<Server> {
        let port = free_port()?;
        let mut command = env.command(exe, &["serve"])?;
        command
            .env("OTKLIK_BIND", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {} serve", exe.display()))?;
        let pid = child.id();
        let mut server = Server {
            child: ChildGuard(child),
            pid,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = server.child.0.try_wait()? {
                bail!(
                    "the server exited during start-up ({status}); see {}",
                    env.log.display()
                );
            }
            let health = client
                .get(format!("{}/healthz", server.base_url))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if health.is_ok_and(|response| response.status() == reqwest::StatusCode::OK) {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                bail!(
                    "the server did not answer /healthz within {} s",
                    START_TIMEOUT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks the server to shut down gracefully (SIGTERM), killing it if it takes too long.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let asked = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !asked.is_ok_and(|status| status.success()) {
            let _ = self.child.0.kill();
        }
        match self.child.wait_for(STOP_TIMEOUT).await? {
            Some(_) => Ok(()),
            None => {
                let _ = self.child.0.kill();
                self.child.0.wait()?;
                bail!(
                    "the server did not stop within {} s of SIGTERM and was killed",
                    STOP_TIMEOUT.as_secs()
                )
            }
        }
    }
}

/// A free loopback port (there is a small window in which another process could take it).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Creates the benchmark's admin (unless the dataset already has them) through the CLI, as an
/// operator would, and issues an API token for them.
pub(crate) async fn admin_token(
    exe: &Path,
    env: &Env,
    (email, name, password): (&str, &str, &str),
    create_admin: bool,
) -> anyhow::Result<String> {
    if create_admin {
        run_cli(
            exe,
            env,
            &[
                "admin",
                "create",
                "--email",
                email,
                "--name",
                name,
                "--password-stdin",
            ],
            Some(format!("{password}\n")),
            CLI_TIMEOUT,
        )
        .await?;
    }
    issue_token(exe, env, email, "bench").await
}

/// An API token named `token_name` for the agent with `email`, issued through the child's CLI.
async fn issue_token(
    exe: &Path,
    env: &Env,
    email: &str,
    token_name: &str,
) -> anyhow::Result<String> {
    let args = ["token", "create", "--email", email, "--name", token_name];
    let token = run_cli(exe, env, &args, None, CLI_TIMEOUT)
        .await?
        .trim()
        .to_owned();
    anyhow::ensure!(
        token.starts_with("otk_"),
        "`otklik token create` printed no token for {email}"
    );
    Ok(token)
}

/// Runs `otklik args…` to completion (at most `timeout`) and returns its standard output.
pub(crate) async fn run_cli(
    exe: &Path,
    env: &Env,
    args: &[&str],
    input: Option<String>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let shown = format!("otklik {}", args.join(" "));
    let mut command = env.command(exe, args)?;
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped());
    let mut child = ChildGuard(
        command
            .spawn()
            .with_context(|| format!("cannot run {shown}"))?,
    );
    if let (Some(input), Some(mut stdin)) = (input, child.0.stdin.take()) {
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("cannot write to {shown}"))?;
    }
    let mut stdout = child.0.stdout.take().context("no standard output")?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let read = stdout.read_to_string(&mut text).map(|_| text);
        let _ = sender.send(read);
    });
    let status = child.wait_for(timeout).await?;
    let Some(status) = status else {
        bail!("{shown} did not finish within {} s", timeout.as_secs());
    };
    if !status.success() {
        bail!("{shown} failed ({status}):\n{}", log_tail(&env.log, 10));
    }
    let output = receiver
        .await
        .context("the output reader stopped")?
        .with_context(|| format!("cannot read the output of {shown}"))?;
    Ok(output)
}

/// The last `lines` lines of a log file (empty if it cannot be read).
fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let length = file.metadata().map_or(0, |metadata| metadata.len());
    let _ = file.seek(SeekFrom::Start(length.saturating_sub(16 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Memory

/// `VmRSS` in kB from the text of `/proc/<pid>/status`.
fn parse_vm_rss_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.trim_start_matches("VmRSS:")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn rss_kb(pid: u32) -> Option<u64> {
    parse_vm_rss_kb(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Samples a process's resident memory in the background and keeps the peak.
struct RssSampler {
    peak_kb: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let peak_kb = Arc::new(AtomicU64::new(rss_kb(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (peak_kb, stop) = (peak_kb.clone(), stop.clone());
            async move {
                let mut ticks = tokio::time::interval(RSS_SAMPLE_EVERY);
                // Bounded like every loop here: stopped by `finish`, or after the longest phase.
                let deadline = Instant::now() + PHASE_TIME_CAP + SEED_TIMEOUT;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    ticks.tick().await;
                    if let Some(kb) = rss_kb(pid) {
                        peak_kb.fetch_max(kb, Ordering::Relaxed);
                    }
                }
            }
        });
        RssSampler {
            peak_kb,
            stop,
            task,
        }
    }

    /// Stops sampling; returns the peak in kB.
    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak_kb.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------
// Load

/// The API of one running server, as the bench admin.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base_url: String,
    token: Arc<str>,
}

/// Errors of a phase: how many, and the first one's description.
#[derive(Default)]
struct Errors {
    count: usize,
    first: Option<String>,
}

impl Errors {
    fn record(errors: &Mutex<Errors>, description: String) {
        let mut errors = errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        errors.count += 1;
        if errors.first.is_none() {
            errors.first = Some(description.chars().take(500).collect());
        }
    }
}

async fn create_customers(api: &Api, count: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(count);
    for index in 0..count {
        let body = serde_json::json!({
            "name": format!("Постоянный покупатель {index}"),
            "language": "ru",
            "identities": [{"kind": "email", "value": format!("regular-{index}@load.otklik.test")}],
        });
        let response = api
            .client
            .post(format!("{}/api/v1/customers", api.base_url))
            .bearer_auth(&api.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(
            status == reqwest::StatusCode::CREATED,
            "creating a customer answered {status}: {text}"
        );
        let created: serde_json::Value = serde_json::from_str(&text)?;
        ids.push(
            created["id"]
                .as_str()
                .context("a created customer has no id")?
                .to_owned(),
        );
    }
    Ok(ids)
}

const CREATE_SUBJECTS: &[(&str, &[&str])] = &[
    ("Где мой заказ №{n}?", &["доставка"]),
    ("Не подошёл размер, заказ №{n}", &["возврат", "размер"]),
    ("Деньги списались дважды, заказ №{n}", &["оплата"]),
    ("Where is my order #{n}?", &["доставка", "international"]),
    (
        "Брак: наушники не заряжаются, заказ №{n}",
        &["брак", "гарантия"],
    ),
];

/// The body of creation request `index`: a new requester by e-mail, or (one in four) a known
/// customer; a few tags; every fifth starts open.
fn create_body(index: usize, customers: &[String]) -> serde_json::Value {
    let (subject, tags) = CREATE_SUBJECTS[index % CREATE_SUBJECTS.len()];
    let order = 400_000 + index;
    let channel = ["email", "chat", "web_form", "api"][index % 4];
    let mut body = serde_json::json!({
        "subject": subject.replace("{n}", &order.to_string()),
        "body": format!(
            "Здравствуйте! Оформил заказ №{order} неделю назад, трек-номер 80{index:012} не отслеживается. \
             Подскажите, пожалуйста, когда ждать доставку? Сумма заказа 12 990 ₽."
        ),
        "channel": channel,
        "priority": if index.is_multiple_of(10) { "high" } else { "normal" },
        "tags": tags,
    });
    if index.is_multiple_of(5) {
        body["status"] = "open".into();
    }
    if index % 4 == 3 && !customers.is_empty() {
        body["customer_id"] = customers[index % customers.len()].clone().into();
    } else {
        body["requester"] = serde_json::json!({
            "kind": "email",
            "value": format!("buyer-{index}@load.otklik.test"),
            "name": format!("Покупатель {index}"),
        });
    }
    body
}

async fn create_phase(
    api: &Api,
    customers: Arc<Vec<String>>,
    total: usize,
    concurrency: usize,
) -> CreateReport {
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Errors::default()));
    let started = Instant::now();
    let deadline = started + PHASE_TIME_CAP;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (api, customers, next, errors) =
            (api.clone(), customers.clone(), next.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let url = format!("{}/api/v1/tickets", api.base_url);
            let mut latencies = Vec::new();
            let mut created = 0usize;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total || Instant::now() >= deadline {
                    break;
                }
                let body = create_body(index, &customers);
                let sent = Instant::now();
                let outcome = match api
                    .client
                    .post(&url)
                    .bearer_auth(&api.token)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        if status == reqwest::StatusCode::CREATED {
                            Ok(())
                        } else {
                            Err(format!("{status}: {text}"))
                        }
                    }
                    Err(error) => Err(format!("request failed: {error}")),
                };
                latencies.push(sent.elapsed());
                match outcome {
                    Ok(()) => created += 1,
                    Err(description) => Errors::record(&errors, description),
                }
            }
            (latencies, created)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut created = 0;
    for worker in workers {
        match worker.await {
            Ok((samples, count)) => {
                latencies.extend(samples);
                created += count;
            }
            Err(error) => Errors::record(&errors, format!("a client task failed: {error}")),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let errors = std::mem::take(
        &mut *errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    CreateReport {
        concurrency,
        requests: latencies.len(),
        created,
        errors: errors.count,
        seconds,
        requests_per_second: if seconds > 0.0 {
            latencies.len() as f64 / seconds
        } else {
            0.0
        },
        latency: Latency::of(&latencies),
        first_error: errors.first,
        stopped_by_time_cap: latencies.len() < total,
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// The list mixes: a name and the query after `limit=50`. The last one follows `next_cursor`.
fn list_mixes() -> Vec<(String, String)> {
    vec![
        ("no filter".into(), String::new()),
        ("status=open".into(), "&status=open".into()),
        ("assignee=none".into(), "&assignee=none".into()),
        (
            "tag=доставка".into(),
            format!("&tag={}", percent_encode("доставка")),
        ),
        (format!("next_cursor, {CURSOR_PAGES} pages"), String::new()),
    ]
}

async fn list_phase(api: &Api, total: usize) -> ListReport {
    let mixes = Arc::new(list_mixes());
    let cursor_mix = mixes.len() - 1;
    let operations = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Errors::default()));
    let deadline = Instant::now() + PHASE_TIME_CAP;
    let mut workers = Vec::with_capacity(LIST_CONCURRENCY);
    for _ in 0..LIST_CONCURRENCY {
        let (api, mixes, operations, sent, errors) = (
            api.clone(),
            mixes.clone(),
            operations.clone(),
            sent.clone(),
            errors.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); mixes.len()];
            loop {
                let mix = operations.fetch_add(1, Ordering::Relaxed) % mixes.len();
                let pages = if mix == cursor_mix { CURSOR_PAGES } else { 1 };
                if sent.fetch_add(pages, Ordering::Relaxed) >= total || Instant::now() >= deadline {
                    break;
                }
                let mut cursor: Option<String> = None;
                for page in 0..pages {
                    let mut url =
                        format!("{}/api/v1/tickets?limit=50{}", api.base_url, mixes[mix].1);
                    if let Some(cursor) = &cursor {
                        let _ = write!(url, "&cursor={}", percent_encode(cursor));
                    }
                    let started = Instant::now();
                    let outcome = match api.client.get(&url).bearer_auth(&api.token).send().await {
                        Ok(response) => {
                            let status = response.status();
                            let text = response.text().await.unwrap_or_default();
                            if status == reqwest::StatusCode::OK {
                                Ok(text)
                            } else {
                                Err(format!("{status}: {text}"))
                            }
                        }
                        Err(error) => Err(format!("request failed: {error}")),
                    };
                    latencies[mix].push(started.elapsed());
                    match outcome.and_then(|text| {
                        serde_json::from_str::<serde_json::Value>(&text)
                            .map_err(|error| format!("not a page: {error}"))
                    }) {
                        Ok(page_json) => {
                            cursor = page_json["next_cursor"].as_str().map(str::to_owned)
                        }
                        Err(description) => {
                            Errors::record(&errors, format!("GET {url}: {description}"));
                            break;
                        }
                    }
                    if cursor.is_none() && page + 1 < pages {
                        break;
                    }
                }
            }
            latencies
        }));
    }
    let mut per_mix: Vec<Vec<Duration>> = vec![Vec::new(); mixes.len()];
    for worker in workers {
        match worker.await {
            Ok(samples) => {
                for (all, some) in per_mix.iter_mut().zip(samples) {
                    all.extend(some);
                }
            }
            Err(error) => Errors::record(&errors, format!("a client task failed: {error}")),
        }
    }
    let overall: Vec<Duration> = per_mix.iter().flatten().copied().collect();
    let errors = std::mem::take(
        &mut *errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    ListReport {
        concurrency: LIST_CONCURRENCY,
        errors: errors.count,
        first_error: errors.first,
        mixes: mixes
            .iter()
            .zip(&per_mix)
            .map(|((name, _), samples)| ListMixReport {
                name: name.clone(),
                latency: Latency::of(samples),
            })
            .collect(),
        stopped_by_time_cap: overall.len() < total && Instant::now() >= deadline,
        overall: Latency::of(&overall),
        ..ListReport::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Scale

/// The sizes of the scale phase, ascending, without repeats or zeros.
fn scale_sizes(requested: &[usize]) -> Vec<usize> {
    let mut sizes: Vec<usize> = requested.iter().copied().filter(|&size| size > 0).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// The "N tickets/s" figure in the summary `otklik demo` prints.
fn reported_rate(summary: &str) -> Option<f64> {
    let before = &summary[..summary.find(" tickets/s")?];
    before
        .rsplit(|c: char| c.is_whitespace())
        .next()?
        .parse()
        .ok()
}

/// The database of one backend's run, for what HTTP does not tell: sizes and exact counts.
enum Database {
    /// The main database file (its `-wal` sits beside it).
    Sqlite(PathBuf),
    /// The bench database's URL.
    Postgres(String),
}

impl Database {
    async fn count(
        &self,
        sqlite_sql: &str,
        postgres_sql: &str,
        params: Vec<String>,
    ) -> anyhow::Result<u64> {
        match self {
            Database::Sqlite(path) => {
                let (path, sql) = (path.clone(), sqlite_sql.to_owned());
                tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
                    let connection = rusqlite::Connection::open_with_flags(
                        &path,
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                    )
                    .with_context(|| format!("cannot open {}", path.display()))?;
                    let count: i64 = connection
                        .query_row(&sql, rusqlite::params_from_iter(params), |row| row.get(0))
                        .with_context(|| format!("{sql} failed"))?;
                    Ok(u64::try_from(count).unwrap_or(0))
                })
                .await
                .context("a count query panicked")?
            }
            Database::Postgres(url) => {
                let client = admin_client(url).await?;
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|param| param as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let row = client
                    .query_one(postgres_sql, &params)
                    .await
                    .with_context(|| format!("{postgres_sql} failed"))?;
                Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
            }
        }
    }

    /// The size on disk and what it is made of.
    async fn size(&self) -> anyhow::Result<(u64, String)> {
        match self {
            Database::Sqlite(path) => {
                let mut total = 0;
                let mut parts = Vec::new();
                for suffix in ["", "-wal"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let file = PathBuf::from(file);
                    if let Ok(metadata) = std::fs::metadata(&file) {
                        total += metadata.len();
                        parts.push(format!(
                            "{} {}",
                            file.file_name().map_or_else(String::new, |name| name
                                .to_string_lossy()
                                .into_owned()),
                            human_bytes(metadata.len())
                        ));
                    }
                }
                Ok((total, parts.join(" + ")))
            }
            Database::Postgres(url) => {
                let client = admin_client(url).await?;
                let row = client
                    .query_one("SELECT pg_database_size(current_database())", &[])
                    .await
                    .context("pg_database_size failed")?;
                Ok((
                    u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
                    "pg_database_size(current_database())".into(),
                ))
            }
        }
    }

    /// Every unmerged ticket whose index matches `query`.
    async fn hits(&self, query: &HitQuery) -> anyhow::Result<u64> {
        let token = index_token(query.word)
            .with_context(|| format!("{:?} has no index token", query.word))?;
        let (fts5, tsquery) = hit_expressions(&token, query.prefix);
        let status = query.status.unwrap_or_default().to_owned();
        let with_status = query.status.is_some();
        let sqlite = format!(
            "SELECT count(*) FROM tickets t WHERE t.merged_into IS NULL{} AND t.id IN \
             (SELECT s.ticket_id FROM ticket_search s WHERE s.rowid IN \
             (SELECT rowid FROM ticket_fts WHERE ticket_fts MATCH ?1))",
            if with_status {
                " AND t.status = ?2"
            } else {
                ""
            }
        );
        let postgres = format!(
            "SELECT count(*) FROM tickets t JOIN ticket_documents d ON d.ticket_id = t.id \
             WHERE t.merged_into IS NULL{} AND d.document @@ $1::text::tsquery",
            if with_status {
                " AND t.status = $2"
            } else {
                ""
            }
        );
        let mut sqlite_params = vec![fts5];
        let mut postgres_params = vec![tsquery];
        if with_status {
            sqlite_params.push(status.clone());
            postgres_params.push(status);
        }
        match self {
            Database::Sqlite(_) => self.count(&sqlite, "", sqlite_params).await,
            Database::Postgres(_) => self.count("", &postgres, postgres_params).await,
        }
    }
}

/// The index token of one word, as the product makes it (the count then uses the very tokens
/// the search does).
fn index_token(word: &str) -> Option<String> {
    otklik_store::derived::subject_terms(0, word)
        .split(' ')
        .nth(1)
        .map(str::to_owned)
}

/// The FTS5 `MATCH` and the `tsquery` expressions of one index token.
fn hit_expressions(token: &str, prefix: bool) -> (String, String) {
    if prefix {
        (format!("\"{token}\"*"), format!("{token}:*"))
    } else {
        (format!("\"{token}\""), token.to_owned())
    }
}

/// How a word probe's matches are counted in the database.
#[derive(Debug, Clone, PartialEq)]
struct HitQuery {
    word: &'static str,
    prefix: bool,
    status: Option<&'static str>,
}

/// One kind of request of the scale phase.
#[derive(Debug, Clone, PartialEq)]
struct Probe {
    name: String,
    group: ProbeGroup,
    /// Paths (after the base URL) sent in turn.
    paths: Vec<String>,
    count: Option<HitQuery>,
    /// Ticket changes per second made meanwhile by another client (0: none), as agents at work
    /// make them: each one moves a queue counter, so kept counts must be summed again.
    changes_per_second: u32,
}

/// What earlier phases left in the database that probes can look for.
struct Fixtures {
    /// Tickets created over HTTP: their order numbers are 400000 + index, and those with an
    /// index not ≡ 3 (mod 4) came from `buyer-<index>@load.otklik.test`.
    created_tickets: usize,
}

/// Different values a probe cycles through (order numbers, e-mails).
const PROBE_VARIANTS: usize = 50;

/// Ticket changes per second while view counts are measured under writes: a busy shop's peak
/// (thirty agents, each changing a ticket every second and a half).
const CHANGES_PER_SECOND: u32 = 20;

/// How many of the newest tickets the changing client takes turns on.
const CHANGED_TICKETS: usize = 20;

/// How long a probe with changes runs at least (its requests are quick; a few hundred would be
/// over before the first few changes).
const CHANGING_PROBE_TIME: Duration = Duration::from_secs(10);

fn search_path(query: &str, status: Option<&str>) -> String {
    let mut path = format!("/api/v1/search?q={}&limit=20", percent_encode(query));
    if let Some(status) = status {
        let _ = write!(path, "&status={status}");
    }
    path
}

/// The search probes run as [`crate::demo::DEMO_AGENT_OF_OTHER_TEAMS`]: a word of 7% of the
/// tickets, most of them in teams this agent may not see, so the search tries many matches to
/// keep a few; then the same with a filter, which the database cannot weigh apart from the word
/// and the teams. Their hits are not counted (the count would have to apply the agent's
/// visibility).
fn agent_probes() -> Vec<Probe> {
    let probe = |name: &str, status: Option<&str>| Probe {
        name: name.into(),
        group: ProbeGroup::Search,
        paths: vec![search_path("refunding ", status)],
        count: None,
        changes_per_second: 0,
    };
    vec![
        probe("search «refunding» as an agent of other teams", None),
        probe("… the same agent, + status=solved", Some("solved")),
    ]
}

/// The probes of the scale phase. A trailing space makes the last word whole (without it the
/// search treats it as a prefix, as in search-as-you-type).
fn scale_probes(fixtures: &Fixtures, unassigned_view: Option<&str>) -> Vec<Probe> {
    let word = |name: &str, query: &str, count: HitQuery| Probe {
        name: name.to_owned(),
        group: ProbeGroup::Search,
        paths: vec![search_path(query, count.status)],
        count: Some(count),
        changes_per_second: 0,
    };
    let orders: Vec<String> = (0..PROBE_VARIANTS)
        .map(|index| {
            let order = 400_000 + index * fixtures.created_tickets.max(1) / PROBE_VARIANTS;
            search_path(&format!("№{order}"), None)
        })
        .collect();
    let emails: Vec<String> = (0..PROBE_VARIANTS)
        .map(|index| {
            let buyer = (index * fixtures.created_tickets / PROBE_VARIANTS) & !3;
            let email = if fixtures.created_tickets > 4 {
                format!("buyer-{buyer}@load.otklik.test")
            } else {
                format!("regular-{}@load.otklik.test", index % KNOWN_CUSTOMERS)
            };
            search_path(&email, None)
        })
        .collect();
    let mut probes = vec![
        word(
            &format!("search rare «{RARE_QUERY}»"),
            &format!("{RARE_QUERY} "),
            HitQuery {
                word: RARE_QUERY,
                prefix: false,
                status: None,
            },
        ),
        word(
            "search common «заказ»",
            "заказ ",
            HitQuery {
                word: "заказ",
                prefix: false,
                status: None,
            },
        ),
        word(
            "search «заказ» + status=open",
            "заказ ",
            HitQuery {
                word: "заказ",
                prefix: false,
                status: Some("open"),
            },
        ),
        word(
            "search English «refunding»",
            "refunding ",
            HitQuery {
                word: "refunding",
                prefix: false,
                status: None,
            },
        ),
        word(
            "search prefix «дост»",
            "дост",
            HitQuery {
                word: "дост",
                prefix: true,
                status: None,
            },
        ),
        Probe {
            name: "search order number «№4…»".into(),
            group: ProbeGroup::Search,
            paths: orders,
            count: None,
            changes_per_second: 0,
        },
        Probe {
            name: "search e-mail".into(),
            group: ProbeGroup::Search,
            paths: emails,
            count: None,
            changes_per_second: 0,
        },
        Probe {
            name: "GET /views (every view's count)".into(),
            group: ProbeGroup::ViewCounters,
            paths: vec!["/api/v1/views".into()],
            count: None,
            changes_per_second: 0,
        },
        Probe {
            name: format!("GET /views, {CHANGES_PER_SECOND} ticket changes/s"),
            group: ProbeGroup::ViewCounters,
            paths: vec!["/api/v1/views".into()],
            count: None,
            changes_per_second: CHANGES_PER_SECOND,
        },
        Probe {
            name: "GET /tickets?limit=50".into(),
            group: ProbeGroup::ListPage,
            paths: vec!["/api/v1/tickets?limit=50".into()],
            count: None,
            changes_per_second: 0,
        },
    ];
    if let Some(id) = unassigned_view {
        probes.push(Probe {
            name: "GET /views/{Unassigned}/tickets".into(),
            group: ProbeGroup::ListPage,
            paths: vec![format!("/api/v1/views/{id}/tickets?limit=50")],
            count: None,
            changes_per_second: 0,
        });
    }
    probes
}

/// Sends `GET path` and returns the parsed answer.
async fn get_json(api: &Api, path: &str) -> Result<serde_json::Value, String> {
    let url = format!("{}{path}", api.base_url);
    match api.client.get(&url).bearer_auth(&api.token).send().await {
        Ok(response) => {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if status != reqwest::StatusCode::OK {
                return Err(format!("GET {path}: {status}: {text}"));
            }
            serde_json::from_str(&text).map_err(|error| format!("GET {path}: not JSON: {error}"))
        }
        Err(error) => Err(format!("GET {path}: request failed: {error}")),
    }
}

/// How many tickets (or views) and customers an answer holds.
fn answer_sizes(answer: &serde_json::Value) -> (usize, usize) {
    let length = |value: &serde_json::Value| value.as_array().map_or(0, Vec::len);
    match answer {
        serde_json::Value::Array(items) => (items.len(), 0),
        _ if answer.get("items").is_some() => (length(&answer["items"]), 0),
        _ => (length(&answer["tickets"]), length(&answer["customers"])),
    }
}

/// Creates the tickets carrying [`RARE_WORD`].
async fn plant_rare_tickets(api: &Api) -> anyhow::Result<()> {
    for index in 0..RARE_TICKETS {
        let order = 600_000 + index;
        let body = serde_json::json!({
            "subject": format!("В заказе №{order} вместо наушников {RARE_WORD}"),
            "body": format!(
                "Здравствуйте! Открыла посылку по заказу №{order}, а там вместо наушников детский {RARE_WORD}. \
                 Верните, пожалуйста, деньги или пришлите мой товар."
            ),
            "channel": "email",
            "tags": ["пересорт"],
            "requester": {
                "kind": "email",
                "value": format!("rare-{index}@load.otklik.test"),
                "name": format!("Покупательница {index}"),
            },
        });
        let response = api
            .client
            .post(format!("{}/api/v1/tickets", api.base_url))
            .bearer_auth(&api.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        anyhow::ensure!(
            status == reqwest::StatusCode::CREATED,
            "planting a ticket answered {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// Sends `total` requests of `probe` at [`SCALE_CONCURRENCY`] (after [`SCALE_WARMUP`]
/// unmeasured ones) and measures them.
async fn run_probe(api: &Api, probe: &Probe, total: usize) -> ProbeReport {
    let yardstick_before = cpu_yardstick().await;
    let every_core_before = every_core_yardstick().await;
    let errors = Arc::new(Mutex::new(Errors::default()));
    for index in 0..SCALE_WARMUP {
        if let Err(description) = get_json(api, &probe.paths[index % probe.paths.len()]).await {
            Errors::record(&errors, description);
        }
    }
    let paths = Arc::new(probe.paths.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + PHASE_TIME_CAP;
    let run_until = if probe.changes_per_second > 0 {
        started + CHANGING_PROBE_TIME
    } else {
        started
    };
    let measuring = Arc::new(AtomicBool::new(true));
    let changer = (probe.changes_per_second > 0).then(|| {
        tokio::spawn(change_tickets(
            api.clone(),
            probe.changes_per_second,
            measuring.clone(),
            errors.clone(),
        ))
    });
    let mut workers = Vec::with_capacity(SCALE_CONCURRENCY);
    for _ in 0..SCALE_CONCURRENCY {
        let (api, paths, next, errors) = (api.clone(), paths.clone(), next.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut items, mut customers) = (0usize, 0usize);
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let now = Instant::now();
                if (index >= total && now >= run_until) || now >= deadline {
                    break;
                }
                let started = Instant::now();
                let answer = get_json(&api, &paths[index % paths.len()]).await;
                latencies.push(started.elapsed());
                match answer {
                    Ok(answer) => {
                        let (n_items, n_customers) = answer_sizes(&answer);
                        items += n_items;
                        customers += n_customers;
                    }
                    Err(description) => Errors::record(&errors, description),
                }
            }
            (latencies, items, customers)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let (mut items, mut customers) = (0usize, 0usize);
    for worker in workers {
        match worker.await {
            Ok((samples, n_items, n_customers)) => {
                latencies.extend(samples);
                items += n_items;
                customers += n_customers;
            }
            Err(error) => Errors::record(&errors, format!("a client task failed: {error}")),
        }
    }
    measuring.store(false, Ordering::Relaxed);
    let tickets_changed = match changer {
        Some(changer) => changer.await.unwrap_or_else(|error| {
            Errors::record(&errors, format!("the changing client failed: {error}"));
            0
        }),
        None => 0,
    };
    let errors = std::mem::take(
        &mut *errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    let answers = latencies.len().max(1) as f64;
    let yardstick_after = cpu_yardstick().await;
    let every_core_after = every_core_yardstick().await;
    let around = |before: Option<Duration>, after: Option<Duration>| {
        before
            .zip(after)
            .map(|(before, after)| (before + after).as_secs_f64() * 1000.0 / 2.0)
    };
    ProbeReport {
        name: probe.name.clone(),
        group: probe.group,
        example: probe.paths[0].clone(),
        hits: None,
        mean_items: items as f64 / answers,
        mean_customers: customers as f64 / answers,
        stopped_by_time_cap: latencies.len() < total,
        latency: Latency::of(&latencies),
        target_p99_ms: probe.group.target_p99_ms(),
        errors: errors.count,
        first_error: errors.first,
        tickets_changed,
        yardstick_ms: around(yardstick_before, yardstick_after),
        every_core_yardstick_ms: around(every_core_before, every_core_after),
    }
}

/// Iterations of [`yardstick_work`]: about 33 ms on the 2-core machine it was written on.
const YARDSTICK_ITERATIONS: u64 = 20_000_000;
/// Runs of the work a yardstick takes the fastest of, so one preemption does not count.
const YARDSTICK_RUNS: usize = 3;

/// How long the same single-threaded work takes now, between probes, while the server is idle:
/// how fast the machine is at that moment. Shared machines are not steady: on one of this
/// project's, the same loop took 731 ms, then 1,045, then 814, seconds apart, and two runs of
/// the bench on one dataset differed by half in the same probe. A probe's figures are read
/// beside the yardstick taken around it. `None` if the blocking thread failed.
async fn cpu_yardstick() -> Option<Duration> {
    tokio::task::spawn_blocking(|| {
        (0..YARDSTICK_RUNS)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(yardstick_work(std::hint::black_box(YARDSTICK_ITERATIONS)));
                started.elapsed()
            })
            .min()
    })
    .await
    .ok()
    .flatten()
}

/// Entries of each core's cycle in [`every_core_yardstick`]: 32 MB of `u32`, more than a
/// processor's last-level cache, so each step waits on memory.
const CHASE_ENTRIES: usize = 8 << 20;
/// Steps each core takes along its cycle: about 30 ms where memory answers in 80 ns.
const CHASE_STEPS: usize = 400_000;

/// How long the same memory-bound work takes on every core at once, between probes: what the
/// searches need of the machine, which [`cpu_yardstick`] does not see. On one of this
/// project's machines, the single-thread yardstick stayed at 32.7–33.4 ms while the same
/// agent search under load went from 234 to 175 requests a second, with the same binary and
/// data, and back. The slowest core's time, the fastest of [`YARDSTICK_RUNS`]. `None` if a
/// thread failed.
async fn every_core_yardstick() -> Option<Duration> {
    static CYCLES: std::sync::OnceLock<Vec<Vec<u32>>> = std::sync::OnceLock::new();
    tokio::task::spawn_blocking(|| {
        let cycles = CYCLES.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
            (0..cores)
                .map(|core| chase_cycle(CHASE_ENTRIES, core as u64 + 1))
                .collect()
        });
        (0..YARDSTICK_RUNS)
            .map(|_| {
                std::thread::scope(|scope| {
                    let cores: Vec<_> = cycles
                        .iter()
                        .map(|cycle| {
                            scope.spawn(move || {
                                let started = Instant::now();
                                std::hint::black_box(chase(
                                    std::hint::black_box(cycle),
                                    CHASE_STEPS,
                                ));
                                started.elapsed()
                            })
                        })
                        .collect();
                    cores
                        .into_iter()
                        .map(|core| core.join().ok())
                        .collect::<Option<Vec<_>>>()?
                        .into_iter()
                        .max()
                })
            })
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .min()
    })
    .await
    .ok()
    .flatten()
}

/// One cycle through `entries` entries in a random order (Sattolo's shuffle, seeded): from any
/// entry, following the values visits every entry once and comes back.
fn chase_cycle(entries: usize, seed: u64) -> Vec<u32> {
    let mut cycle: Vec<u32> = (0..entries)
        .map(|entry| u32::try_from(entry).unwrap_or(u32::MAX))
        .collect();
    let mut state = seed.max(1);
    for last in (1..entries).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let other = usize::try_from(state % last as u64).unwrap_or(0);
        cycle.swap(last, other);
    }
    cycle
}

/// Follows `steps` values of `cycle` from entry 0, each load waiting on the last; returns
/// where it stopped.
fn chase(cycle: &[u32], steps: usize) -> u32 {
    let mut at = 0_u32;
    for _ in 0..steps {
        at = cycle[at as usize];
    }
    at
}

/// A fixed amount of integer work (xorshift steps, each depending on the last, so neither the
/// compiler nor the processor can skip or overlap them); returns the final state.
fn yardstick_work(iterations: u64) -> u64 {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..iterations {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
    }
    state
}

/// Changes the priority of the newest tickets, `per_second` times a second, while `measuring`
/// holds, then gives every ticket its priority back (the kept dataset stays as it was, but for
/// the tickets' update times and audit). Returns how many changes were made.
async fn change_tickets(
    api: Api,
    per_second: u32,
    measuring: Arc<AtomicBool>,
    errors: Arc<Mutex<Errors>>,
) -> usize {
    let page = match get_json(&api, &format!("/api/v1/tickets?limit={CHANGED_TICKETS}")).await {
        Ok(page) => page,
        Err(description) => {
            Errors::record(&errors, description);
            return 0;
        }
    };
    let originals: Vec<(String, String)> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|ticket| {
            Some((
                ticket["id"].as_str()?.to_owned(),
                ticket["priority"].as_str()?.to_owned(),
            ))
        })
        .collect();
    if originals.is_empty() {
        Errors::record(&errors, "no ticket to change".to_owned());
        return 0;
    }
    let set_priority = |id: &str, priority: &str| {
        let request = api
            .client
            .patch(format!("{}/api/v1/tickets/{id}", api.base_url))
            .bearer_auth(&api.token)
            .json(&serde_json::json!({ "priority": priority }));
        async move {
            match request.send().await {
                Ok(answer) if answer.status().is_success() => Ok(()),
                Ok(answer) => Err(format!("PATCH a ticket's priority: {}", answer.status())),
                Err(error) => Err(format!("PATCH a ticket's priority: {error}")),
            }
        }
    };
    let mut interval = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changes = 0;
    while measuring.load(Ordering::Relaxed) {
        interval.tick().await;
        let (id, original) = &originals[changes % originals.len()];
        // The first round over the tickets moves each away from its priority, the next one
        // back, and so on.
        let away = (changes / originals.len()).is_multiple_of(2);
        let priority = match (away, original.as_str()) {
            (false, original) => original,
            (true, "high") => "normal",
            (true, _) => "high",
        };
        match set_priority(id, priority).await {
            Ok(()) => changes += 1,
            Err(description) => {
                Errors::record(&errors, description);
                break;
            }
        }
    }
    for (id, original) in &originals {
        if let Err(description) = set_priority(id, original).await {
            Errors::record(&errors, description);
        }
    }
    changes
}

/// Measures every probe on the running server and reads the dataset's figures.
async fn scale_phase(
    api: &Api,
    agent: Option<&Api>,
    database: &Database,
    fixtures: &Fixtures,
    requests: usize,
    scale: &mut ScaleReport,
) -> anyhow::Result<()> {
    let views = get_json(api, "/api/v1/views")
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    let views = views.as_array().cloned().unwrap_or_default();
    let unassigned = views
        .iter()
        .find(|view| view["name"] == "Unassigned")
        .and_then(|view| view["id"].as_str());
    for probe in scale_probes(fixtures, unassigned) {
        let mut report = run_probe(api, &probe, requests).await;
        if let Some(query) = &probe.count {
            match database.hits(query).await {
                Ok(hits) => report.hits = Some(hits),
                Err(error) => {
                    report.errors += 1;
                    report
                        .first_error
                        .get_or_insert_with(|| format!("counting the hits failed: {error:#}"));
                }
            }
        }
        scale.probes.push(report);
    }
    if let Some(agent) = agent {
        for probe in agent_probes() {
            scale.probes.push(run_probe(agent, &probe, requests).await);
        }
    }
    let views = get_json(api, "/api/v1/views")
        .await
        .map_err(|error| anyhow::anyhow!(error))?;
    scale.view_counts = views
        .as_array()
        .map(|views| {
            views
                .iter()
                .map(|view| ViewCount {
                    name: view["name"].as_str().unwrap_or("?").to_owned(),
                    count: view["count"].as_i64().unwrap_or(-1),
                })
                .collect()
        })
        .unwrap_or_default();
    scale.dataset_tickets = database
        .count(
            "SELECT count(*) FROM tickets",
            "SELECT count(*) FROM tickets",
            vec![],
        )
        .await?;
    scale.dataset_messages = database
        .count(
            "SELECT count(*) FROM messages",
            "SELECT count(*) FROM messages",
            vec![],
        )
        .await?;
    (scale.database_bytes, scale.database_size) = database.size().await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The agent workspace

/// A browser as far as the benchmark needs one: cookies by name, no redirects followed.
struct UiBrowser {
    client: reqwest::Client,
    base_url: String,
    cookies: Vec<(String, String)>,
}

/// The `name=value` of a `Set-Cookie` header, and whether it deletes the cookie.
fn parse_set_cookie(header: &str) -> Option<(String, String, bool)> {
    let pair = header.split(';').next()?;
    let (name, value) = pair.split_once('=')?;
    let deletes = header
        .split(';')
        .any(|attribute| attribute.trim().eq_ignore_ascii_case("max-age=0"));
    Some((name.trim().to_owned(), value.trim().to_owned(), deletes))
}

/// The CSRF token of a page (its `<meta name="csrf-token">`).
fn csrf_of(html: &str) -> Option<String> {
    let marker = "<meta name=\"csrf-token\" content=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Every distinct `prefix{uuid}` link target in a page, in order.
fn linked_ids(html: &str, prefix: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for (index, _) in html.match_indices(prefix) {
        let rest = &html[index + prefix.len()..];
        let id: String = rest.chars().take(36).collect();
        if id.len() == 36
            && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }
    ids
}

struct Fetched {
    status: u16,
    location: String,
    body: Vec<u8>,
    elapsed: Duration,
}

impl UiBrowser {
    async fn request(
        &mut self,
        method: reqwest::Method,
        path: &str,
        form: Option<&[(&str, &str)]>,
        gzip: bool,
    ) -> anyhow::Result<Fetched> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if !self.cookies.is_empty() {
            let header: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            request = request.header(reqwest::header::COOKIE, header.join("; "));
        }
        if gzip {
            request = request.header(reqwest::header::ACCEPT_ENCODING, "gzip");
        }
        if let Some(fields) = form {
            let body: Vec<String> = fields
                .iter()
                .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
                .collect();
            request = request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.join("&"));
        }
        let started = Instant::now();
        let response = request
            .send()
            .await
            .with_context(|| format!("{path}: no answer"))?;
        let status = response.status().as_u16();
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Some((name, value, deletes)) = value.to_str().ok().and_then(parse_set_cookie) {
                self.cookies.retain(|(known, _)| *known != name);
                if !deletes {
                    self.cookies.push((name, value));
                }
            }
        }
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("{path}: the body broke off"))?
            .to_vec();
        Ok(Fetched {
            status,
            location,
            body,
            elapsed: started.elapsed(),
        })
    }

    async fn get(&mut self, path: &str, gzip: bool) -> anyhow::Result<Fetched> {
        self.request(reqwest::Method::GET, path, None, gzip).await
    }

    /// The page at `path`, which must answer 200.
    async fn page(&mut self, path: &str) -> anyhow::Result<String> {
        let fetched = self.get(path, false).await?;
        anyhow::ensure!(fetched.status == 200, "{path} answered {}", fetched.status);
        Ok(String::from_utf8_lossy(&fetched.body).into_owned())
    }
}

/// Signs in through the login form, finds views and tickets from the pages themselves, then
/// times the pages one request at a time (so the figure is the server's time, not a queue's)
/// and weighs what a browser downloads, gzip-compressed as browsers ask for it.
async fn ui_phase(base_url: &str, requests: usize) -> anyhow::Result<UiReport> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let mut browser = UiBrowser {
        client,
        base_url: base_url.to_owned(),
        cookies: Vec::new(),
    };
    let login = browser.page("/login").await?;
    let csrf = csrf_of(&login).context("the login page has no CSRF token")?;
    let signed_in = browser
        .request(
            reqwest::Method::POST,
            "/login",
            Some(&[
                ("_csrf", csrf.as_str()),
                ("email", BENCH_EMAIL),
                ("password", BENCH_PASSWORD),
                ("next", "/inbox"),
            ]),
            false,
        )
        .await?;
    anyhow::ensure!(
        signed_in.status == 303,
        "signing in answered {}",
        signed_in.status
    );
    let inbox = browser.get("/inbox", false).await?;
    anyhow::ensure!(
        inbox.status == 303 && inbox.location.starts_with("/views/"),
        "/inbox answered {} to {:?}",
        inbox.status,
        inbox.location
    );
    let first_view = inbox.location;
    let first_page = browser.page(&first_view).await?;
    let views: Vec<String> = linked_ids(&first_page, "href=\"/views/")
        .into_iter()
        .map(|id| format!("/views/{id}"))
        .collect();
    anyhow::ensure!(!views.is_empty(), "the inbox lists no views");
    // The inbox is measured on its fullest view: the first one (the agent's own open tickets)
    // may be empty for the bench admin, and an empty page flatters both time and weight.
    let mut fullest = (0, first_view.clone());
    let mut tickets: Vec<String> = Vec::new();
    let filters = [
        "/tickets?status=open",
        "/tickets?status=pending",
        "/tickets?status=solved",
        "/tickets?priority=high",
        "/tickets?assignee=none",
        "/tickets",
    ];
    for path in views.iter().map(String::as_str).chain(filters) {
        let html = browser.page(path).await?;
        let rows = html.matches("data-row").count();
        if path.starts_with("/views/") && rows > fullest.0 {
            fullest = (rows, path.to_owned());
        }
        for id in linked_ids(&html, "href=\"/tickets/") {
            if !tickets.contains(&id) {
                tickets.push(id);
            }
        }
    }
    anyhow::ensure!(!tickets.is_empty(), "the lists show no tickets");

    let mut report = UiReport {
        distinct_tickets: tickets.len().min(requests),
        ..UiReport::default()
    };
    let errors = Mutex::new(Errors::default());
    let timed =
        |fetched: anyhow::Result<Fetched>, path: &str, samples: &mut Vec<Duration>| match fetched {
            Ok(fetched) if fetched.status == 200 => samples.push(fetched.elapsed),
            Ok(fetched) => Errors::record(&errors, format!("{path}: {}", fetched.status)),
            Err(error) => Errors::record(&errors, format!("{error:#}")),
        };
    // Warm up, as a running server is.
    for path in views.iter().take(SCALE_WARMUP) {
        let _ = browser.get(path, true).await;
    }
    let inbox_view = fullest.1;
    report.inbox_rows = fullest.0;
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let fetched = browser.get(&inbox_view, true).await;
        timed(fetched, &inbox_view, &mut samples);
    }
    report.inbox = Latency::of(&samples);
    let mut samples = Vec::with_capacity(requests);
    for index in 0..requests {
        let path = &views[index % views.len()];
        let fetched = browser.get(path, true).await;
        timed(fetched, path, &mut samples);
    }
    report.views = Latency::of(&samples);
    let mut samples = Vec::with_capacity(requests);
    for index in 0..requests {
        let path = format!("/tickets/{}", tickets[index % tickets.len()]);
        let fetched = browser.get(&path, true).await;
        timed(fetched, &path, &mut samples);
    }
    report.tickets = Latency::of(&samples);

    let plain = browser.get(&inbox_view, false).await?;
    let packed = browser.get(&inbox_view, true).await?;
    report.inbox_html_bytes = plain.body.len() as u64;
    report.inbox_html_gzip_bytes = packed.body.len() as u64;
    let ticket_path = format!("/tickets/{}", tickets[0]);
    report.ticket_html_bytes = browser.get(&ticket_path, false).await?.body.len() as u64;
    report.ticket_html_gzip_bytes = browser.get(&ticket_path, true).await?.body.len() as u64;
    let html = String::from_utf8_lossy(&plain.body).into_owned();
    for (index, _) in html.match_indices("/assets/") {
        let rest = &html[index..];
        let Some(end) = rest.find('"') else { continue };
        let asset = &rest[..end];
        report.assets_bytes += browser.get(asset, false).await?.body.len() as u64;
        report.assets_gzip_bytes += browser.get(asset, true).await?.body.len() as u64;
    }
    let errors = errors
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    report.errors = errors.count;
    report.first_error = errors.first;
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

#[derive(Debug)]
pub(crate) struct BenchDatabase {
    pub(crate) name: String,
    pub(crate) url: String,
}

/// Refuses an admin URL that points anywhere but this machine.
fn ensure_loopback(config: &tokio_postgres::Config) -> anyhow::Result<()> {
    for host in config.get_hosts() {
        if let tokio_postgres::config::Host::Tcp(name) = host {
            let loopback = name == "localhost"
                || name
                    .parse::<IpAddr>()
                    .is_ok_and(|address| address.is_loopback());
            anyhow::ensure!(
                loopback,
                "the benchmark only talks to this machine; {name} is not a loopback address"
            );
        }
    }
    for address in config.get_hostaddrs() {
        anyhow::ensure!(
            address.is_loopback(),
            "the benchmark only talks to this machine; {address} is not a loopback address"
        );
    }
    Ok(())
}

async fn admin_client(admin_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let config: tokio_postgres::Config = admin_url
        .parse()
        .context("the PostgreSQL admin URL does not parse")?;
    ensure_loopback(&config)?;
    let target = otklik_store_postgres::redacted_target(admin_url);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .with_context(|| format!("PostgreSQL is unreachable at {target} (set --pg-url)"))?;
    tokio::spawn(connection);
    Ok(client)
}

pub(crate) async fn create_database(admin_url: &str) -> anyhow::Result<BenchDatabase> {
    let name = format!("otklik_bench_{}", uuid::Uuid::now_v7().simple());
    let client = admin_client(admin_url).await?;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .with_context(|| format!("cannot create database {name}"))?;
    Ok(BenchDatabase {
        url: with_database(admin_url, &name),
        name,
    })
}

/// The database a kept PostgreSQL run uses: the one named in `folder` by an earlier run, or a
/// new one whose name is written there.
async fn kept_database(admin_url: &str, folder: &Path) -> anyhow::Result<BenchDatabase> {
    let file = folder.join("bench-database");
    match std::fs::read_to_string(&file) {
        Ok(name) => {
            let name = name.trim().to_owned();
            anyhow::ensure!(
                name.starts_with("otklik_bench_")
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{} does not name a bench database",
                file.display()
            );
            Ok(BenchDatabase {
                url: with_database(admin_url, &name),
                name,
            })
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let database = create_database(admin_url).await?;
            std::fs::write(&file, &database.name)
                .with_context(|| format!("cannot write {}", file.display()))?;
            Ok(database)
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// Does for the bench database what autovacuum does on a live server after a bulk load (it is
/// off on some installations, this machine's among them): planner statistics, and the visibility
/// map and hint bits a load leaves unset. Without them the first reads of every page write them
/// back inside the measurement, and the plans chosen are not those of a settled database.
/// Then a checkpoint writes out what the load and the vacuum left dirty: otherwise the one the
/// load's log started goes on writing, paced over minutes, during the probes (seen still running
/// four minutes after a million-ticket load).
async fn vacuum_analyze(database_url: &str) -> anyhow::Result<()> {
    let client = admin_client(database_url).await?;
    client
        .batch_execute("VACUUM (ANALYZE)")
        .await
        .context("VACUUM (ANALYZE) of the bench database failed")?;
    if let Err(error) = client.batch_execute("CHECKPOINT").await {
        // Only superusers and pg_checkpoint members may: the probes then share the disk with it.
        eprintln!("[postgres] no CHECKPOINT after VACUUM ({error}); measuring anyway");
    }
    Ok(())
}

pub(crate) async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let client = admin_client(admin_url).await?;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    Ok(())
}

/// `url` with its database replaced by `database` (URL or key=value form).
fn with_database(url: &str, database: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return format!("{url} dbname={database}");
    };
    let (base, query) = url.split_at(url.find('?').unwrap_or(url.len()));
    let authority_start = scheme_end + 3;
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |slash| authority_start + slash);
    format!("{}/{database}{query}", &base[..authority_end])
}

// ---------------------------------------------------------------------------------------------
// The SQLite ceiling

/// What SQLite itself reaches on this disk with the server's durability settings.
fn sqlite_ceiling(max_tickets: usize) -> anyhow::Result<CeilingReport> {
    let folder = tempfile::Builder::new()
        .prefix("otklik-ceiling-")
        .tempdir()?;
    Ok(CeilingReport {
        description: "bare rusqlite insert loop, WAL, synchronous=FULL; per ticket one tickets row, one messages row and \
                      one audit_events row with the server's main indexes"
            .into(),
        one_per_transaction: insert_loop(&folder.path().join("single.db"), max_tickets, 1)?,
        grouped: insert_loop(&folder.path().join("grouped.db"), max_tickets, CEILING_GROUP)?,
    })
}

fn insert_loop(
    path: &Path,
    max_tickets: usize,
    per_transaction: usize,
) -> anyhow::Result<CeilingFigure> {
    let mut connection = rusqlite::Connection::open(path)?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         CREATE TABLE tickets (
             id BLOB PRIMARY KEY NOT NULL, number INTEGER NOT NULL UNIQUE, subject TEXT NOT NULL,
             status TEXT NOT NULL, priority TEXT NOT NULL, channel TEXT NOT NULL, customer_id BLOB NOT NULL,
             created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, version INTEGER NOT NULL);
         CREATE INDEX tickets_by_update ON tickets (updated_at, id);
         CREATE INDEX tickets_by_status ON tickets (status, updated_at, id);
         CREATE INDEX tickets_by_customer ON tickets (customer_id, updated_at, id);
         CREATE TABLE messages (
             id BLOB PRIMARY KEY NOT NULL, ticket_id BLOB NOT NULL, author_kind TEXT NOT NULL, author_id BLOB,
             visibility TEXT NOT NULL, channel TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL);
         CREATE INDEX messages_by_ticket ON messages (ticket_id, created_at, id);
         CREATE TABLE audit_events (
             id BLOB PRIMARY KEY NOT NULL, at INTEGER NOT NULL, actor_agent_id BLOB, action TEXT NOT NULL,
             object_kind TEXT NOT NULL, object_id BLOB NOT NULL, changes TEXT NOT NULL);
         CREATE INDEX audit_events_by_object ON audit_events (object_id, at, id);",
    )?;
    let body = "Здравствуйте! Оформил заказ №448812 неделю назад, трек-номер 80085412345678 не отслеживается. \
                Подскажите, пожалуйста, когда ждать доставку? Сумма заказа 12 990 ₽.";
    let changes = r#"[{"field":"subject","before":null,"after":"Где мой заказ №448812?"},{"field":"status","before":null,"after":"new"},{"field":"priority","before":null,"after":"normal"},{"field":"channel","before":null,"after":"api"}]"#;
    let actor = uuid::Uuid::now_v7();
    let started = Instant::now();
    let mut written = 0usize;
    while written < max_tickets && started.elapsed() < CEILING_TIME_CAP {
        let transaction = connection.transaction()?;
        for _ in 0..per_transaction.min(max_tickets - written) {
            let micros = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros())
                .unwrap_or(i64::MAX);
            let (ticket, message, audit, customer) = (
                uuid::Uuid::now_v7(),
                uuid::Uuid::now_v7(),
                uuid::Uuid::now_v7(),
                uuid::Uuid::now_v7(),
            );
            let number = i64::try_from(written + 1)?;
            transaction
                .prepare_cached(
                    "INSERT INTO tickets (id, number, subject, status, priority, channel, customer_id, created_at, updated_at, version) \
                     VALUES (?1, ?2, ?3, 'new', 'normal', 'api', ?4, ?5, ?5, 1)",
                )?
                .execute(rusqlite::params![&ticket.as_bytes()[..], number, "Где мой заказ №448812?", &customer.as_bytes()[..], micros])?;
            transaction
                .prepare_cached(
                    "INSERT INTO messages (id, ticket_id, author_kind, author_id, visibility, channel, body, created_at) \
                     VALUES (?1, ?2, 'customer', ?3, 'public', 'api', ?4, ?5)",
                )?
                .execute(rusqlite::params![&message.as_bytes()[..], &ticket.as_bytes()[..], &customer.as_bytes()[..], body, micros])?;
            transaction
                .prepare_cached(
                    "INSERT INTO audit_events (id, at, actor_agent_id, action, object_kind, object_id, changes) \
                     VALUES (?1, ?2, ?3, 'ticket.created', 'ticket', ?4, ?5)",
                )?
                .execute(rusqlite::params![&audit.as_bytes()[..], micros, &actor.as_bytes()[..], &ticket.as_bytes()[..], changes])?;
            written += 1;
        }
        transaction.commit()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(CeilingFigure {
        tickets_per_transaction: per_transaction,
        tickets: written,
        seconds,
        tickets_per_second: if seconds > 0.0 {
            written as f64 / seconds
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values
            .iter()
            .map(|&value| Duration::from_millis(value))
            .collect()
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&sorted, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&sorted, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&sorted, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&ms(&[7]), 99.0), Some(Duration::from_millis(7)));
        assert_eq!(
            percentile(&ms(&[1, 2]), 50.0),
            Some(Duration::from_millis(1))
        );
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn latency_figures_do_not_depend_on_the_order_of_samples() {
        let latency = Latency::of(&ms(&[30, 10, 20, 40]));
        assert_eq!(
            latency,
            Latency {
                requests: 4,
                p50_ms: 20.0,
                p99_ms: 40.0,
                max_ms: 40.0
            }
        );
        assert_eq!(Latency::of(&[]), Latency::default());
    }

    #[test]
    fn resident_memory_is_read_from_proc_status() {
        let status = "Name:\totklik\nVmPeak:\t  900000 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss_kb(status), Some(51_234));
        assert_eq!(parse_vm_rss_kb("Name:\tzombie\n"), None);
        assert!(rss_kb(std::process::id()).is_some_and(|kb| kb > 0));
    }

    #[test]
    fn a_cyrillic_tag_is_percent_encoded_for_the_query() {
        assert_eq!(
            percent_encode("доставка"),
            "%D0%B4%D0%BE%D1%81%D1%82%D0%B0%D0%B2%D0%BA%D0%B0"
        );
        assert_eq!(percent_encode("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }

    #[test]
    fn the_bench_database_replaces_the_one_in_the_admin_url() {
        assert_eq!(
            with_database(DEFAULT_PG_URL, "otklik_bench_x"),
            "postgres://postgres@127.0.0.1:5432/otklik_bench_x"
        );
        assert_eq!(
            with_database("postgres://u:p@localhost/test?sslmode=disable", "b"),
            "postgres://u:p@localhost/b?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://localhost", "b"),
            "postgres://localhost/b"
        );
        assert_eq!(
            with_database("host=localhost user=postgres", "b"),
            "host=localhost user=postgres dbname=b"
        );
    }

    #[tokio::test]
    async fn a_kept_bench_database_is_named_by_its_folder_and_a_foreign_name_is_refused() {
        let folder = tempfile::tempdir().unwrap();
        let admin = "postgres://postgres@127.0.0.1:5432/test";
        std::fs::write(
            folder.path().join("bench-database"),
            "otklik_bench_0123abc\n",
        )
        .unwrap();
        let kept = kept_database(admin, folder.path()).await.unwrap();
        assert_eq!(kept.name, "otklik_bench_0123abc");
        assert_eq!(kept.url, with_database(admin, "otklik_bench_0123abc"));
        std::fs::write(
            folder.path().join("bench-database"),
            "test; DROP DATABASE x",
        )
        .unwrap();
        let refused = kept_database(admin, folder.path()).await.unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("does not name a bench database"),
            "{refused:#}"
        );
    }

    #[test]
    fn only_loopback_postgres_urls_are_accepted() {
        let parse = |url: &str| url.parse::<tokio_postgres::Config>().unwrap();
        assert!(ensure_loopback(&parse(DEFAULT_PG_URL)).is_ok());
        assert!(ensure_loopback(&parse("postgres://postgres@localhost/test")).is_ok());
        assert!(ensure_loopback(&parse("postgres://postgres@[::1]:5432/test")).is_ok());
        assert!(ensure_loopback(&parse("postgres://postgres@db.example.com/test")).is_err());
    }

    #[test]
    fn creation_requests_name_either_a_requester_or_a_known_customer() {
        let customers = vec!["0192f1c2-0000-7000-8000-000000000000".to_owned()];
        for index in 0..8 {
            let body = create_body(index, &customers);
            assert!(
                body["subject"]
                    .as_str()
                    .is_some_and(|subject| !subject.contains("{n}"))
            );
            assert_ne!(
                body.get("customer_id").is_some(),
                body.get("requester").is_some(),
                "{body}"
            );
        }
        assert_eq!(
            create_body(3, &customers)["customer_id"],
            customers[0].as_str()
        );
        assert_eq!(create_body(3, &[])["requester"]["kind"], "email");
    }

    fn sample_report() -> BenchReport {
        let latency = Latency {
            requests: 400,
            p50_ms: 1.25,
            p99_ms: 4.5,
            max_ms: 9.0,
        };
        BenchReport {
            cores: 2,
            debug_build: false,
            backends: vec![BackendReport {
                backend: "sqlite".into(),
                create: CreateReport {
                    concurrency: 32,
                    requests: 20_000,
                    created: 20_000,
                    errors: 0,
                    seconds: 8.0,
                    requests_per_second: 2500.0,
                    latency: Latency {
                        requests: 20_000,
                        p50_ms: 12.0,
                        p99_ms: 40.0,
                        max_ms: 80.0,
                    },
                    first_error: None,
                    stopped_by_time_cap: false,
                },
                list: ListReport {
                    dataset_tickets: 100_000,
                    seeded_tickets: 80_000,
                    seed_seconds: 4.0,
                    seed_tickets_per_second: Some(21_000.0),
                    vacuumed_after_seeding: false,
                    concurrency: 8,
                    errors: 0,
                    first_error: None,
                    mixes: list_mixes()
                        .into_iter()
                        .map(|(name, _)| ListMixReport {
                            name,
                            latency: latency.clone(),
                        })
                        .collect(),
                    overall: Latency {
                        requests: 2000,
                        ..latency.clone()
                    },
                    stopped_by_time_cap: false,
                },
                rss: MemoryReport {
                    idle_mb: 12.0,
                    peak_creating_mb: 40.5,
                    idle_after_seeding_mb: 20.0,
                    peak_listing_mb: 30.0,
                },
                scale: vec![sample_scale()],
                ui: Some(UiReport {
                    dataset_tickets: 100_000,
                    inbox: latency.clone(),
                    inbox_rows: 25,
                    views: latency.clone(),
                    tickets: latency.clone(),
                    distinct_tickets: 150,
                    inbox_html_bytes: 40_000,
                    inbox_html_gzip_bytes: 6_000,
                    ticket_html_bytes: 30_000,
                    ticket_html_gzip_bytes: 5_000,
                    assets_bytes: 70_000,
                    assets_gzip_bytes: 25_000,
                    errors: 0,
                    first_error: None,
                }),
            }],
            failures: vec![],
            sqlite_ceiling: Some(CeilingReport {
                description: "bare loop".into(),
                one_per_transaction: CeilingFigure {
                    tickets_per_transaction: 1,
                    tickets: 10_000,
                    seconds: 2.0,
                    tickets_per_second: 5000.0,
                },
                grouped: CeilingFigure {
                    tickets_per_transaction: 32,
                    tickets: 20_000,
                    seconds: 0.5,
                    tickets_per_second: 40_000.0,
                },
            }),
        }
    }

    fn sample_scale() -> ScaleReport {
        let probes = scale_probes(
            &Fixtures {
                created_tickets: 20_000,
            },
            Some("v-1"),
        )
        .into_iter()
        .enumerate()
        .map(|(index, probe)| ProbeReport {
            name: probe.name,
            group: probe.group,
            example: probe.paths[0].clone(),
            hits: probe.count.map(|_| 1000 + index as u64),
            mean_items: 20.0,
            mean_customers: 1.0,
            latency: Latency {
                requests: 500,
                p50_ms: 2.0,
                p99_ms: 8.0 * (index as f64 + 1.0),
                max_ms: 90.0,
            },
            target_p99_ms: probe.group.target_p99_ms(),
            tickets_changed: if probe.changes_per_second > 0 { 400 } else { 0 },
            yardstick_ms: Some(if index == 0 { 20.0 } else { 26.0 }),
            every_core_yardstick_ms: Some(if index == 0 { 30.0 } else { 45.0 }),
            ..ProbeReport::default()
        })
        .collect();
        ScaleReport {
            requested_tickets: 1_000_000,
            dataset_tickets: 1_000_005,
            dataset_messages: 3_500_000,
            seeded_tickets: 900_000,
            seed_seconds: 300.0,
            seed_tickets_per_second: Some(3_100.0),
            vacuumed_after_seeding: false,
            vacuumed_kept_dataset: false,
            database_bytes: 5 * 1024 * 1024 * 1024,
            database_size: "otklik.db 5.00 GiB".into(),
            concurrency: 8,
            warmup_requests_per_probe: 10,
            probes,
            view_counts: vec![ViewCount {
                name: "Unassigned".into(),
                count: 1234,
            }],
            peak_rss_mb: 80.0,
        }
    }

    #[test]
    fn the_report_names_every_figure_per_backend_and_the_ceiling() {
        let text = format_report(&sample_report());
        for expected in [
            "2 cores, release build",
            "Backend: sqlite",
            "20000 × POST /api/v1/tickets at concurrency 32 in 8.0 s",
            "throughput 2500 req/s, 20000 created, 0 errors",
            "p50 12.0 ms, p99 40.0 ms, max 80.0 ms",
            "on 100000 tickets (80000 seeded",
            "tag=доставка",
            "next_cursor, 3 pages",
            "overall",
            "idle 12.0 MB, peak while creating 40.5 MB",
            "5000 tickets/s with 1 ticket per transaction: each commit waits for its own fsync",
            "40000 tickets/s with 32 tickets per transaction: what group commit can reach",
            "at 50% of the one-per-transaction ceiling",
            "21000 tickets/s written",
            "Scale: 1000005 tickets, 3500000 messages (3.50 per ticket), database 5.00 GiB",
            "seeded 900000 tickets with `otklik demo` in 300.0 s (it reported 3100 tickets/s written)",
            "search rare «ксилофоны»",
            "1000 hits",
            "p99     8.0 ms",
            "target p99 ≤ 50 ms: within",
            "search e-mail",
            "20.0 tickets + 1.0 customers per answer",
            "GET /views (every view's count)",
            "target p99 ≤ 5 ms: OVER",
            "GET /views, 20 ticket changes/s",
            "20.0 items per answer; 400 tickets changed meanwhile",
            "GET /views/{Unassigned}/tickets",
            "target p99 ≤ 20 ms: OVER",
            "view counts: Unassigned 1234",
            "Workspace pages on sqlite at 100000 tickets",
            "ticket page (GET /tickets/{id})",
            "sent for the inbox with assets cached: 5.9 KiB",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert!(!text.contains("FAILED"));
    }

    #[test]
    fn a_kept_dataset_measured_again_is_reported_vacuumed_first() {
        let mut report = sample_report();
        scale_of(&mut report).seeded_tickets = 0;
        scale_of(&mut report).vacuumed_kept_dataset = true;
        let text = format_report(&report);
        assert!(
            text.contains("the kept dataset, after VACUUM (ANALYZE) and CHECKPOINT"),
            "{text}"
        );
        assert!(!text.contains("seeded 900000 tickets"), "{text}");
        scale_of(&mut report).vacuumed_kept_dataset = false;
        assert!(!format_report(&report).contains("the kept dataset, after VACUUM"));
    }

    #[test]
    fn each_probe_is_reported_with_how_fast_the_machine_was_around_it() {
        let mut report = sample_report();
        let text = format_report(&report);
        let line_of = |text: &str, probe: &str| {
            text.lines()
                .find(|line| line.contains(probe))
                .unwrap_or_else(|| panic!("no line for {probe} in:\n{text}"))
                .to_owned()
        };
        assert!(
            line_of(&text, "search rare «ксилофоны»").ends_with("machine ×1.00, every core ×1.00"),
            "{text}"
        );
        assert!(
            line_of(&text, "search e-mail").ends_with("machine ×1.30, every core ×1.50"),
            "{text}"
        );
        assert!(
            text.contains("the same single-thread work took 20.0–26.0 ms around the probes"),
            "{text}"
        );
        assert!(
            text.contains(
                "the same memory-bound work on every core at once took 30.0–45.0 ms around the probes"
            ),
            "{text}"
        );
        for probe in &mut scale_of(&mut report).probes {
            probe.yardstick_ms = None;
            probe.every_core_yardstick_ms = None;
        }
        let text = format_report(&report);
        assert!(!text.contains("machine ×"), "{text}");
        assert!(!text.contains("every core ×"), "{text}");
        assert!(!text.contains("machine speed"), "{text}");
        assert!(!text.contains("every core:"), "{text}");
    }

    #[test]
    fn a_chase_cycle_visits_every_entry_once_and_comes_back() {
        let entries = 1_000;
        let cycle = chase_cycle(entries, 7);
        let mut seen = vec![false; entries];
        let mut at = 0_u32;
        for _ in 0..entries {
            assert!(!seen[at as usize], "entry {at} visited twice");
            seen[at as usize] = true;
            at = cycle[at as usize];
        }
        assert_eq!(at, 0, "the cycle comes back to where it began");
        assert!(seen.iter().all(|&visited| visited));
        assert_eq!(chase(&cycle, entries), 0);
        assert_ne!(chase(&cycle, 1), 1, "the order is shuffled");
        assert_ne!(
            cycle,
            chase_cycle(entries, 8),
            "another seed, another order"
        );
    }

    #[tokio::test]
    async fn the_every_core_yardstick_times_its_work() {
        assert!(
            every_core_yardstick()
                .await
                .is_some_and(|took| took > Duration::ZERO)
        );
    }

    #[test]
    fn the_yardstick_does_the_same_work_each_time_and_more_for_more_iterations() {
        assert_eq!(yardstick_work(1_000), yardstick_work(1_000));
        assert_ne!(yardstick_work(1_000), yardstick_work(1_001));
        assert_ne!(yardstick_work(0), yardstick_work(1));
    }

    #[tokio::test]
    async fn the_yardstick_times_its_work() {
        assert!(
            cpu_yardstick()
                .await
                .is_some_and(|took| took > Duration::ZERO)
        );
    }

    fn scale_of(report: &mut BenchReport) -> &mut ScaleReport {
        &mut report.backends[0].scale[0]
    }

    #[test]
    fn the_json_report_has_the_same_figures() {
        let json = serde_json::to_value(sample_report()).unwrap();
        assert_eq!(json["backends"][0]["create"]["requests_per_second"], 2500.0);
        assert_eq!(
            json["backends"][0]["list"]["mixes"][3]["name"],
            "tag=доставка"
        );
        assert_eq!(
            json["sqlite_ceiling"]["grouped"]["tickets_per_transaction"],
            32
        );
        assert_eq!(json["backends"][0]["rss"]["peak_creating_mb"], 40.5);
        let scale = &json["backends"][0]["scale"][0];
        assert_eq!(scale["dataset_messages"], 3_500_000);
        assert_eq!(scale["probes"][0]["group"], "search");
        assert_eq!(scale["probes"][0]["target_p99_ms"], 50.0);
        assert_eq!(scale["probes"][7]["group"], "view_counters");
        assert_eq!(scale["probes"][7]["target_p99_ms"], 5.0);
        assert_eq!(scale["probes"][8]["group"], "view_counters");
        assert_eq!(scale["probes"][8]["tickets_changed"], 400);
        assert_eq!(scale["probes"][9]["target_p99_ms"], 20.0);
    }

    #[test]
    fn scale_sizes_are_grown_in_ascending_order_without_repeats_or_zeros() {
        assert_eq!(
            scale_sizes(&[1_000_000, 100_000, 0, 100_000]),
            vec![100_000, 1_000_000]
        );
        assert_eq!(scale_sizes(&[0]), Vec::<usize>::new());
    }

    #[test]
    fn the_writing_rate_is_read_from_the_demo_summary() {
        let summary = "Demo shop loaded in 40.2 s: 100000 tickets with 351234 messages from 35139 \
                       customers, handled by 9 agents in 4 teams (Доставка). Writing took 38.0 s in \
                       big batches: 2632 tickets/s, 9243 messages/s, 3.51 messages per ticket.";
        assert_eq!(reported_rate(summary), Some(2632.0));
        assert_eq!(reported_rate("no rate here"), None);
    }

    #[test]
    fn hit_counts_use_the_index_tokens_of_the_search() {
        assert_eq!(index_token("заказы"), index_token("заказ"));
        assert_eq!(index_token(RARE_QUERY), index_token(RARE_WORD));
        assert_eq!(index_token("refunding"), index_token("refund"));
        assert_eq!(index_token("Ёлка"), index_token("елка"));
        assert_eq!(index_token(""), None);
        assert_eq!(
            hit_expressions("дост", true),
            ("\"дост\"*".to_owned(), "дост:*".to_owned())
        );
        assert_eq!(
            hit_expressions("заказ", false),
            ("\"заказ\"".to_owned(), "заказ".to_owned())
        );
    }

    #[test]
    fn the_scale_probes_cover_search_view_counters_and_list_pages() {
        let probes = scale_probes(
            &Fixtures {
                created_tickets: 20_000,
            },
            Some("v-1"),
        );
        let searches: Vec<&Probe> = probes
            .iter()
            .filter(|probe| probe.group == ProbeGroup::Search)
            .collect();
        assert_eq!(searches.len(), 7);
        assert!(
            probes
                .iter()
                .all(|probe| probe.paths.iter().all(|path| path.starts_with("/api/v1/")))
        );
        // A whole word ends in an encoded space; a prefix does not.
        assert!(searches[1].paths[0].contains("q=%D0%B7%D0%B0%D0%BA%D0%B0%D0%B7%20&limit=20"));
        assert!(searches[2].paths[0].ends_with("&status=open"));
        assert_eq!(searches[2].count.as_ref().unwrap().status, Some("open"));
        assert!(searches[4].count.as_ref().unwrap().prefix);
        assert!(!searches[4].paths[0].contains("%20"));
        // Order numbers and e-mails are ones the creation phase made, in turn.
        assert_eq!(searches[5].paths.len(), PROBE_VARIANTS);
        assert!(searches[5].paths[1].contains(&percent_encode("№400400")));
        assert!(searches[6].paths[1].contains(&percent_encode("buyer-400@load.otklik.test")));
        assert!(
            searches[6]
                .paths
                .iter()
                .all(|path| !path.contains("buyer-3%40") && !path.contains("buyer-7%40"))
        );
        assert!(
            probes
                .iter()
                .any(|probe| probe.paths[0] == "/api/v1/views/v-1/tickets?limit=50")
        );
        assert_eq!(
            scale_probes(
                &Fixtures {
                    created_tickets: 20_000
                },
                None
            )
            .len(),
            probes.len() - 1
        );
        let without = scale_probes(&Fixtures { created_tickets: 0 }, None);
        assert!(without[6].paths[0].contains("regular-0"));
        // View counts are measured twice: between changes, and while tickets change.
        let counters: Vec<&Probe> = probes
            .iter()
            .filter(|probe| probe.group == ProbeGroup::ViewCounters)
            .collect();
        assert_eq!(
            counters
                .iter()
                .map(|probe| probe.changes_per_second)
                .collect::<Vec<_>>(),
            vec![0, CHANGES_PER_SECOND]
        );
        assert!(
            probes
                .iter()
                .filter(|probe| probe.group != ProbeGroup::ViewCounters)
                .all(|probe| probe.changes_per_second == 0)
        );
    }

    #[test]
    fn answers_are_sized_by_their_items_tickets_and_customers() {
        let search = serde_json::json!({"tickets": [1, 2, 3], "customers": [1]});
        assert_eq!(answer_sizes(&search), (3, 1));
        assert_eq!(
            answer_sizes(&serde_json::json!({"items": [1, 2], "next_cursor": null})),
            (2, 0)
        );
        assert_eq!(
            answer_sizes(&serde_json::json!([{"name": "Unassigned"}])),
            (1, 0)
        );
    }

    #[test]
    fn the_workspace_phase_reads_cookies_tokens_and_links_from_pages() {
        assert_eq!(
            parse_set_cookie("otklik_pre=abc; Path=/; Max-Age=86400; HttpOnly"),
            Some(("otklik_pre".into(), "abc".into(), false))
        );
        assert_eq!(
            parse_set_cookie("otklik_session=; Path=/; Max-Age=0; HttpOnly"),
            Some(("otklik_session".into(), String::new(), true))
        );
        let page = "<meta name=\"csrf-token\" content=\"tok-1\">\
            <a href=\"/tickets/01a20000-0000-7000-8000-000000000001\">#1</a>\
            <a href=\"/tickets/01a20000-0000-7000-8000-000000000001\">again</a>\
            <a href=\"/tickets/bulk\">not a ticket</a>";
        assert_eq!(csrf_of(page).as_deref(), Some("tok-1"));
        assert_eq!(
            linked_ids(page, "href=\"/tickets/"),
            vec!["01a20000-0000-7000-8000-000000000001".to_owned()]
        );
    }

    #[test]
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 400 * 1024), "3.4 MiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 * 1024 / 4), "1.25 GiB");
    }

    #[tokio::test]
    async fn sqlite_hit_counts_agree_with_the_search_and_sizes_are_read_from_the_files() {
        use otklik_store::TicketFilter;
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("otklik.db");
        let store = otklik_store_sqlite::SqliteStore::open(&path).unwrap();
        let app = otklik_app::App::new(
            Arc::new(store),
            Arc::new(otklik_store::blobs::LocalBlobStore::new(
                folder.path().join("blobs"),
            )),
            Arc::new(otklik_domain::clock::SystemClock),
        );
        let admin = app
            .create_admin_from_cli("admin@otklik.test", "Admin", "correct horse battery".into())
            .await
            .unwrap();
        let admin = otklik_app::App::principal_of(&admin, None, None);
        crate::demo::load_demo(&app, &admin, &crate::demo::DemoOptions { tickets: 30 })
            .await
            .unwrap();
        let database = Database::Sqlite(path);
        for (query, count) in [
            (
                "заказ ",
                HitQuery {
                    word: "заказ",
                    prefix: false,
                    status: None,
                },
            ),
            (
                "заказ ",
                HitQuery {
                    word: "заказ",
                    prefix: false,
                    status: Some("open"),
                },
            ),
            (
                "дост",
                HitQuery {
                    word: "дост",
                    prefix: true,
                    status: None,
                },
            ),
            (
                "refunding ",
                HitQuery {
                    word: "refunding",
                    prefix: false,
                    status: None,
                },
            ),
        ] {
            let filter = TicketFilter {
                statuses: count
                    .status
                    .map(|status| vec![status.parse().unwrap()])
                    .unwrap_or_default(),
                ..TicketFilter::default()
            };
            let found = app.search(&admin, query, filter, 200).await.unwrap();
            let hits = database.hits(&count).await.unwrap();
            assert_eq!(hits, found.tickets.len() as u64, "{query:?} {count:?}");
            if count.status.is_none() && count.word != "refunding" {
                assert!(hits > 0, "{query:?}");
            }
        }
        let tickets = database
            .count("SELECT count(*) FROM tickets", "", vec![])
            .await
            .unwrap();
        assert_eq!(tickets, 30);
        let (bytes, parts) = database.size().await.unwrap();
        assert!(
            bytes > 0 && parts.starts_with("otklik.db "),
            "{bytes} {parts}"
        );
    }

    #[test]
    fn a_failed_backend_is_reported() {
        let report = BenchReport {
            failures: vec!["postgres: unreachable".into()],
            ..sample_report()
        };
        assert!(format_report(&report).contains("FAILED: postgres: unreachable"));
    }

    #[test]
    fn the_ceiling_loop_writes_rows_in_the_requested_transactions() {
        let folder = tempfile::tempdir().unwrap();
        let figure = insert_loop(&folder.path().join("ceiling.db"), 70, 32).unwrap();
        assert_eq!((figure.tickets, figure.tickets_per_transaction), (70, 32));
        let connection = rusqlite::Connection::open(folder.path().join("ceiling.db")).unwrap();
        let count = |table: &str| {
            connection
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                    row.get::<_, i64>(0)
                })
                .unwrap()
        };
        assert_eq!(
            (count("tickets"), count("messages"), count("audit_events")),
            (70, 70, 70)
        );
    }
}
