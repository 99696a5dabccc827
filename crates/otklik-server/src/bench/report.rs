//! What a bench run reports: latency figures, each phase's results next to the issue's
//! targets, printed as tables and written as JSON.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::{
    BenchBackend, TARGET_LIST_P99_MS, TARGET_SEARCH_P99_MS, TARGET_UI_INBOX_BYTES,
    TARGET_UI_P99_MS, TARGET_VIEWS_P99_MS,
};

/// Latency figures of a set of requests, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct Latency {
    pub(super) requests: usize,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) max_ms: f64,
}

impl Latency {
    pub(super) fn of(samples: &[Duration]) -> Latency {
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
pub(super) struct CreateReport {
    pub(super) concurrency: usize,
    pub(super) requests: usize,
    pub(super) created: usize,
    pub(super) errors: usize,
    pub(super) seconds: f64,
    pub(super) requests_per_second: f64,
    pub(super) latency: Latency,
    pub(super) first_error: Option<String>,
    pub(super) stopped_by_time_cap: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct ListMixReport {
    pub(super) name: String,
    pub(super) latency: Latency,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct ListReport {
    /// Tickets in the database while listing.
    pub(super) dataset_tickets: usize,
    /// Of which `otklik demo` wrote this many.
    pub(super) seeded_tickets: usize,
    pub(super) seed_seconds: f64,
    /// The writing rate `otklik demo` reported.
    pub(super) seed_tickets_per_second: Option<f64>,
    /// PostgreSQL only: the database was vacuumed and analysed after seeding, as autovacuum
    /// would do on a live server (a bulk load leaves no statistics, and some plans go bad).
    pub(super) vacuumed_after_seeding: bool,
    pub(super) concurrency: usize,
    pub(super) errors: usize,
    pub(super) first_error: Option<String>,
    pub(super) mixes: Vec<ListMixReport>,
    pub(super) overall: Latency,
    pub(super) stopped_by_time_cap: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct MemoryReport {
    pub(super) idle_mb: f64,
    pub(super) peak_creating_mb: f64,
    pub(super) idle_after_seeding_mb: f64,
    pub(super) peak_listing_mb: f64,
}

/// What a scale probe measures, and the target for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ProbeGroup {
    #[default]
    Search,
    ViewCounters,
    ListPage,
}

impl ProbeGroup {
    pub(super) fn target_p99_ms(self) -> f64 {
        match self {
            ProbeGroup::Search => TARGET_SEARCH_P99_MS,
            ProbeGroup::ViewCounters => TARGET_VIEWS_P99_MS,
            ProbeGroup::ListPage => TARGET_LIST_P99_MS,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct ProbeReport {
    pub(super) name: String,
    pub(super) group: ProbeGroup,
    /// The first request (others of the probe differ only in the number or address searched).
    pub(super) example: String,
    /// Word queries: every matching ticket (with the probe's status filter), counted in the
    /// database with the same index tokens the search uses.
    pub(super) hits: Option<u64>,
    /// Mean tickets per answer (search results, page items, or views for the view list).
    pub(super) mean_items: f64,
    /// Searches: mean customers per answer.
    pub(super) mean_customers: f64,
    pub(super) latency: Latency,
    pub(super) target_p99_ms: f64,
    pub(super) errors: usize,
    pub(super) first_error: Option<String>,
    pub(super) stopped_by_time_cap: bool,
    /// Tickets changed by another client while this probe ran.
    pub(super) tickets_changed: usize,
    /// The CPU yardstick around this probe, in ms: the mean of the one taken before and the one
    /// after ([`cpu_yardstick`]).
    pub(super) yardstick_ms: Option<f64>,
    /// The every-core memory yardstick around this probe, in ms, likewise
    /// ([`every_core_yardstick`]).
    pub(super) every_core_yardstick_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct ViewCount {
    pub(super) name: String,
    pub(super) count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct ScaleReport {
    /// The size asked for with `--scale-tickets`.
    pub(super) requested_tickets: usize,
    /// Counted in the database while measuring.
    pub(super) dataset_tickets: u64,
    pub(super) dataset_messages: u64,
    /// Tickets `otklik demo` added for this size, how long it took (process start included)
    /// and the writing rate it reported.
    pub(super) seeded_tickets: usize,
    pub(super) seed_seconds: f64,
    pub(super) seed_tickets_per_second: Option<f64>,
    pub(super) vacuumed_after_seeding: bool,
    /// A kept dataset measured again was vacuumed first (see [`vacuum_analyze`]).
    pub(super) vacuumed_kept_dataset: bool,
    pub(super) database_bytes: u64,
    /// What `database_bytes` is made of.
    pub(super) database_size: String,
    pub(super) concurrency: usize,
    pub(super) warmup_requests_per_probe: usize,
    pub(super) probes: Vec<ProbeReport>,
    /// The admin's views and their maintained counts, as `GET /api/v1/views` gave them.
    pub(super) view_counts: Vec<ViewCount>,
    pub(super) peak_rss_mb: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct BackendReport {
    pub(super) backend: String,
    pub(super) create: CreateReport,
    pub(super) list: ListReport,
    pub(super) rss: MemoryReport,
    pub(super) scale: Vec<ScaleReport>,
    pub(super) ui: Option<UiReport>,
}

/// The agent workspace: server time of its pages and what a browser downloads.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct UiReport {
    pub(super) dataset_tickets: usize,
    /// `GET /views/{id}` of the view with the most rows on its first page.
    pub(super) inbox: Latency,
    pub(super) inbox_rows: usize,
    /// `GET /views/{id}` over every view.
    pub(super) views: Latency,
    /// `GET /tickets/{id}` over tickets found in the views and filters.
    pub(super) tickets: Latency,
    pub(super) distinct_tickets: usize,
    pub(super) inbox_html_bytes: u64,
    pub(super) inbox_html_gzip_bytes: u64,
    pub(super) ticket_html_bytes: u64,
    pub(super) ticket_html_gzip_bytes: u64,
    /// CSS, scripts and icon of a first visit (cached for a year afterwards).
    pub(super) assets_bytes: u64,
    pub(super) assets_gzip_bytes: u64,
    pub(super) errors: usize,
    pub(super) first_error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct CeilingFigure {
    pub(super) tickets_per_transaction: usize,
    pub(super) tickets: usize,
    pub(super) seconds: f64,
    pub(super) tickets_per_second: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct CeilingReport {
    pub(super) description: String,
    pub(super) one_per_transaction: CeilingFigure,
    pub(super) grouped: CeilingFigure,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(super) struct BenchReport {
    pub(super) cores: usize,
    pub(super) debug_build: bool,
    pub(super) backends: Vec<BackendReport>,
    pub(super) failures: Vec<String>,
    pub(super) sqlite_ceiling: Option<CeilingReport>,
}

pub(super) fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// The plain-text report.
pub(super) fn format_report(report: &BenchReport) -> String {
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

pub(super) fn format_ui(out: &mut String, backend: &str, ui: &UiReport) {
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

pub(super) fn format_scale(out: &mut String, scale: &ScaleReport) {
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
pub(super) fn human_bytes(bytes: u64) -> String {
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
pub(super) fn report_path() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("bench-report.json")
}
