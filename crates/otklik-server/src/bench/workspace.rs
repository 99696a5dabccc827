//! The agent workspace's pages (inbox, views, a ticket): the server's time and the bytes sent.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::load::{Errors, percent_encode};
use super::report::{Latency, UiReport};
use super::{BENCH_EMAIL, BENCH_PASSWORD, SCALE_WARMUP};

/// A browser as far as the benchmark needs one: cookies by name, no redirects followed.
pub(super) struct UiBrowser {
    pub(super) client: reqwest::Client,
    pub(super) base_url: String,
    pub(super) cookies: Vec<(String, String)>,
}

/// The `name=value` of a `Set-Cookie` header, and whether it deletes the cookie.
pub(super) fn parse_set_cookie(header: &str) -> Option<(String, String, bool)> {
    let pair = header.split(';').next()?;
    let (name, value) = pair.split_once('=')?;
    let deletes = header
        .split(';')
        .any(|attribute| attribute.trim().eq_ignore_ascii_case("max-age=0"));
    Some((name.trim().to_owned(), value.trim().to_owned(), deletes))
}

/// The CSRF token of a page (its `<meta name="csrf-token">`).
pub(super) fn csrf_of(html: &str) -> Option<String> {
    let marker = "<meta name=\"csrf-token\" content=\"";
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// Every distinct `prefix{uuid}` link target in a page, in order.
pub(super) fn linked_ids(html: &str, prefix: &str) -> Vec<String> {
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

pub(super) struct Fetched {
    pub(super) status: u16,
    pub(super) location: String,
    pub(super) body: Vec<u8>,
    pub(super) elapsed: Duration,
}

impl UiBrowser {
    pub(super) async fn request(
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

    pub(super) async fn get(&mut self, path: &str, gzip: bool) -> anyhow::Result<Fetched> {
        self.request(reqwest::Method::GET, path, None, gzip).await
    }

    /// The page at `path`, which must answer 200.
    pub(super) async fn page(&mut self, path: &str) -> anyhow::Result<String> {
        let fetched = self.get(path, false).await?;
        anyhow::ensure!(fetched.status == 200, "{path} answered {}", fetched.status);
        Ok(String::from_utf8_lossy(&fetched.body).into_owned())
    }
}

/// Signs in through the login form, finds views and tickets from the pages themselves, then
/// times the pages one request at a time (so the figure is the server's time, not a queue's)
/// and weighs what a browser downloads, gzip-compressed as browsers ask for it.
pub(super) async fn ui_phase(base_url: &str, requests: usize) -> anyhow::Result<UiReport> {
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
