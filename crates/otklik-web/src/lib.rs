//! Otklik's HTTP layer. HTTP ends here: handlers turn requests into use-case calls on
//! [`otklik_app::App`] and results into JSON or RFC 9457 problem details.
//!
//! [`router`] builds the whole application (`/api/v1`, `/healthz`, `/readyz`, `/metrics`,
//! `/api/v1/openapi.json`) over an [`AppState`]; tests drive it directly or over TCP.
//! This crate must not depend on a store implementation or on SQL.

pub mod api;
pub mod dto;
pub mod error;
pub mod extract;
pub mod widget;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use otklik_app::App;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;

/// Request bodies larger than this are refused with 413 (attachments travel inline, base64).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// A request that takes longer than this is cut off with 408 rather than piling up.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub app: App,
    /// Renders `/metrics`; `None` when no recorder is installed (some tests).
    pub metrics: Option<PrometheusHandle>,
    /// False while starting and once shutdown begins: `/readyz` then answers 503 so a load
    /// balancer stops sending traffic before the node stops.
    pub ready: Arc<AtomicBool>,
    /// The chat widget's live-event hub and rate limits on this node.
    pub widget: Arc<widget::WidgetRuntime>,
}

impl AppState {
    /// A state that is ready at once.
    pub fn new(app: App, metrics: Option<PrometheusHandle>) -> Self {
        Self {
            app,
            metrics,
            ready: Arc::new(AtomicBool::new(true)),
            widget: Arc::default(),
        }
    }

    /// The same state with other widget rate limits (benchmarks raise them).
    pub fn with_widget_limits(mut self, limits: widget::WidgetLimits) -> Self {
        self.widget = Arc::new(widget::WidgetRuntime::new(limits));
        self
    }
}

/// The OpenAPI document of the whole API, as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api::router().split_for_parts().1
}

/// The API alone (what tests and API-only deployments serve).
pub fn router(state: AppState) -> Router {
    router_with_pages(state, None)
}

/// The API, and `pages` (the agent workspace) for every path the API does not own: `/api/*`,
/// `/healthz`, `/readyz` and `/metrics` always answer as the API, unknown `/api/*` paths with a
/// JSON problem; everything else goes to `pages` with its own error pages and headers.
pub fn router_with_pages(state: AppState, pages: Option<Router>) -> Router {
    let (api_routes, openapi) = api::router().split_for_parts();
    let openapi = Arc::new(openapi);
    let api = Router::new()
        .merge(api_routes)
        .merge(widget::routes())
        .route(
            "/api/v1/openapi.json",
            get(move || async move { Json(openapi.as_ref().clone()) }),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api", axum::routing::any(|| async { ApiError::NotFound }))
        .route(
            "/api/{*rest}",
            axum::routing::any(|| async { ApiError::NotFound }),
        )
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed });
    let api = api
        .layer(middleware::from_fn(record_metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state);
    match pages {
        Some(pages) => api.fallback_service(pages),
        None => api,
    }
}

/// Alive: the process answers.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check could not reach the database");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

/// Ready for traffic: started, not shutting down, database reachable.
async fn readyz(State(state): State<AppState>) -> Response {
    if !state.ready.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response();
    }
    healthz(State(state)).await
}

async fn metrics(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => {
            let mut response = handle.render().into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

/// Counts requests and measures latency per route template (never per raw path, which would
/// explode the label set with ids).
async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("otklik_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("otklik_http_request_duration_seconds", "method" => method, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// Layers below the router (body limit, timeout) answer with bare status codes; give those
/// the same problem-details shape as everything else.
async fn problem_for_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return response;
    }
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge.into_response(),
        StatusCode::REQUEST_TIMEOUT => ApiError::Timeout.into_response(),
        _ => response,
    }
}
