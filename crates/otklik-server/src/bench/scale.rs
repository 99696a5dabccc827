//! The scale phase: the same dataset grown to each requested size, then search, view counters,
//! list pages and the database's size on disk, next to the targets.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::load::{Api, Errors, percent_encode};
use super::postgres::admin_client;
use super::report::{Latency, ProbeGroup, ProbeReport, ScaleReport, ViewCount, human_bytes};
use super::{
    KNOWN_CUSTOMERS, PHASE_TIME_CAP, RARE_QUERY, RARE_TICKETS, RARE_WORD, SCALE_CONCURRENCY,
    SCALE_WARMUP,
};

/// The sizes of the scale phase, ascending, without repeats or zeros.
pub(super) fn scale_sizes(requested: &[usize]) -> Vec<usize> {
    let mut sizes: Vec<usize> = requested.iter().copied().filter(|&size| size > 0).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// The "N tickets/s" figure in the summary `otklik demo` prints.
pub(super) fn reported_rate(summary: &str) -> Option<f64> {
    let before = &summary[..summary.find(" tickets/s")?];
    before
        .rsplit(|c: char| c.is_whitespace())
        .next()?
        .parse()
        .ok()
}

/// The database of one backend's run, for what HTTP does not tell: sizes and exact counts.
pub(super) enum Database {
    /// The main database file (its `-wal` sits beside it).
    Sqlite(PathBuf),
    /// The bench database's URL.
    Postgres(String),
}

impl Database {
    pub(super) async fn count(
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
    pub(super) async fn size(&self) -> anyhow::Result<(u64, String)> {
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
    pub(super) async fn hits(&self, query: &HitQuery) -> anyhow::Result<u64> {
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
pub(super) fn index_token(word: &str) -> Option<String> {
    otklik_store::derived::subject_terms(0, word)
        .split(' ')
        .nth(1)
        .map(str::to_owned)
}

/// The FTS5 `MATCH` and the `tsquery` expressions of one index token.
pub(super) fn hit_expressions(token: &str, prefix: bool) -> (String, String) {
    if prefix {
        (format!("\"{token}\"*"), format!("{token}:*"))
    } else {
        (format!("\"{token}\""), token.to_owned())
    }
}

/// How a word probe's matches are counted in the database.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HitQuery {
    pub(super) word: &'static str,
    pub(super) prefix: bool,
    pub(super) status: Option<&'static str>,
}

/// One kind of request of the scale phase.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Probe {
    pub(super) name: String,
    pub(super) group: ProbeGroup,
    /// Paths (after the base URL) sent in turn.
    pub(super) paths: Vec<String>,
    pub(super) count: Option<HitQuery>,
    /// Ticket changes per second made meanwhile by another client (0: none), as agents at work
    /// make them: each one moves a queue counter, so kept counts must be summed again.
    pub(super) changes_per_second: u32,
}

/// What earlier phases left in the database that probes can look for.
pub(super) struct Fixtures {
    /// Tickets created over HTTP: their order numbers are 400000 + index, and those with an
    /// index not ≡ 3 (mod 4) came from `buyer-<index>@load.otklik.test`.
    pub(super) created_tickets: usize,
}

/// Different values a probe cycles through (order numbers, e-mails).
pub(super) const PROBE_VARIANTS: usize = 50;

/// Ticket changes per second while view counts are measured under writes: a busy shop's peak
/// (thirty agents, each changing a ticket every second and a half).
pub(super) const CHANGES_PER_SECOND: u32 = 20;

/// How many of the newest tickets the changing client takes turns on.
pub(super) const CHANGED_TICKETS: usize = 20;

/// How long a probe with changes runs at least (its requests are quick; a few hundred would be
/// over before the first few changes).
pub(super) const CHANGING_PROBE_TIME: Duration = Duration::from_secs(10);

pub(super) fn search_path(query: &str, status: Option<&str>) -> String {
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
pub(super) fn agent_probes() -> Vec<Probe> {
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
pub(super) fn scale_probes(fixtures: &Fixtures, unassigned_view: Option<&str>) -> Vec<Probe> {
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
pub(super) async fn get_json(api: &Api, path: &str) -> Result<serde_json::Value, String> {
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
pub(super) fn answer_sizes(answer: &serde_json::Value) -> (usize, usize) {
    let length = |value: &serde_json::Value| value.as_array().map_or(0, Vec::len);
    match answer {
        serde_json::Value::Array(items) => (items.len(), 0),
        _ if answer.get("items").is_some() => (length(&answer["items"]), 0),
        _ => (length(&answer["tickets"]), length(&answer["customers"])),
    }
}

/// Creates the tickets carrying [`RARE_WORD`].
pub(super) async fn plant_rare_tickets(api: &Api) -> anyhow::Result<()> {
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
pub(super) async fn run_probe(api: &Api, probe: &Probe, total: usize) -> ProbeReport {
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
pub(super) const YARDSTICK_ITERATIONS: u64 = 20_000_000;
/// Runs of the work a yardstick takes the fastest of, so one preemption does not count.
pub(super) const YARDSTICK_RUNS: usize = 3;

/// How long the same single-threaded work takes now, between probes, while the server is idle:
/// how fast the machine is at that moment. Shared machines are not steady: on one of this
/// project's, the same loop took 731 ms, then 1,045, then 814, seconds apart, and two runs of
/// the bench on one dataset differed by half in the same probe. A probe's figures are read
/// beside the yardstick taken around it. `None` if the blocking thread failed.
pub(super) async fn cpu_yardstick() -> Option<Duration> {
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
pub(super) const CHASE_ENTRIES: usize = 8 << 20;
/// Steps each core takes along its cycle: about 30 ms where memory answers in 80 ns.
pub(super) const CHASE_STEPS: usize = 400_000;

/// How long the same memory-bound work takes on every core at once, between probes: what the
/// searches need of the machine, which [`cpu_yardstick`] does not see. On one of this
/// project's machines, the single-thread yardstick stayed at 32.7–33.4 ms while the same
/// agent search under load went from 234 to 175 requests a second, with the same binary and
/// data, and back. The slowest core's time, the fastest of [`YARDSTICK_RUNS`]. `None` if a
/// thread failed.
pub(super) async fn every_core_yardstick() -> Option<Duration> {
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
pub(super) fn chase_cycle(entries: usize, seed: u64) -> Vec<u32> {
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
pub(super) fn chase(cycle: &[u32], steps: usize) -> u32 {
    let mut at = 0_u32;
    for _ in 0..steps {
        at = cycle[at as usize];
    }
    at
}

/// A fixed amount of integer work (xorshift steps, each depending on the last, so neither the
/// compiler nor the processor can skip or overlap them); returns the final state.
pub(super) fn yardstick_work(iterations: u64) -> u64 {
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
pub(super) async fn change_tickets(
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
pub(super) async fn scale_phase(
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
