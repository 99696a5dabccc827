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
//!
//! Here: the options and the run of each backend. The phases are in `load`, `scale` and
//! `workspace`, the child processes in `processes`, the databases in `postgres`, the bare insert
//! loop in `ceiling`, and what is printed in `report`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

mod ceiling;
mod load;
mod postgres;
mod processes;
mod report;
mod scale;
mod workspace;

use ceiling::sqlite_ceiling;
use load::{Api, create_customers, create_phase, list_phase};
use postgres::{kept_database, vacuum_analyze};
use processes::{RssSampler, issue_token, log_tail, rss_kb};
use report::{BackendReport, BenchReport, ListReport, ScaleReport, format_report, mb, report_path};
use scale::{Database, Fixtures, plant_rare_tickets, reported_rate, scale_phase, scale_sizes};
use workspace::ui_phase;

// What the chat and mail benches share with this one.
pub(crate) use postgres::{create_database, drop_database};
pub(crate) use processes::{Server, admin_token, free_port, run_cli, wait_until_healthy};
pub(crate) use report::percentile;

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

#[cfg(test)]
mod tests {
    use super::ceiling::insert_loop;
    use super::load::{create_body, list_mixes, percent_encode};
    use super::postgres::{ensure_loopback, with_database};
    use super::processes::parse_vm_rss_kb;
    use super::report::{
        CeilingFigure, CeilingReport, CreateReport, Latency, ListMixReport, MemoryReport,
        ProbeGroup, ProbeReport, UiReport, ViewCount, human_bytes,
    };
    use super::scale::{
        CHANGES_PER_SECOND, HitQuery, PROBE_VARIANTS, Probe, answer_sizes, chase, chase_cycle,
        cpu_yardstick, every_core_yardstick, hit_expressions, index_token, scale_probes,
        yardstick_work,
    };
    use super::workspace::{csrf_of, linked_ids, parse_set_cookie};
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
