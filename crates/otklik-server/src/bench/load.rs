//! The load phases: tickets created at a concurrency, list pages under a mix of filters and
//! cursors.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::report::{CreateReport, Latency, ListMixReport, ListReport};
use super::{CURSOR_PAGES, LIST_CONCURRENCY, PHASE_TIME_CAP};

/// The API of one running server, as the bench admin.
#[derive(Clone)]
pub(super) struct Api {
    pub(super) client: reqwest::Client,
    pub(super) base_url: String,
    pub(super) token: Arc<str>,
}

/// Errors of a phase: how many, and the first one's description.
#[derive(Default)]
pub(super) struct Errors {
    pub(super) count: usize,
    pub(super) first: Option<String>,
}

impl Errors {
    pub(super) fn record(errors: &Mutex<Errors>, description: String) {
        let mut errors = errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        errors.count += 1;
        if errors.first.is_none() {
            errors.first = Some(description.chars().take(500).collect());
        }
    }
}

pub(super) async fn create_customers(api: &Api, count: usize) -> anyhow::Result<Vec<String>> {
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

pub(super) const CREATE_SUBJECTS: &[(&str, &[&str])] = &[
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
pub(super) fn create_body(index: usize, customers: &[String]) -> serde_json::Value {
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

pub(super) async fn create_phase(
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
pub(super) fn percent_encode(value: &str) -> String {
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
pub(super) fn list_mixes() -> Vec<(String, String)> {
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

pub(super) async fn list_phase(api: &Api, total: usize) -> ListReport {
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
