//! The chat widget's public API, `/widget/v1/*`, and the script itself at `/widget.js`.
//!
//! Visitors are anonymous browsers on the shop's pages, so this surface differs from the
//! REST API: no cookies, a visitor token in `Authorization`, every request's `Origin` checked
//! against the site's allowed origins, rate limits per IP and per visitor, and live events
//! fanned out by [`hub::ChatHub`]. The contract is `docs/chat-widget-api.md`.

pub mod dto;
mod handlers;
pub mod hub;
mod limits;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use limits::WidgetLimits;

use crate::AppState;

/// What the widget API keeps per node: the live-event hub and the rate limiters.
#[derive(Debug)]
pub struct WidgetRuntime {
    pub hub: Arc<hub::ChatHub>,
    limiters: limits::Limiters,
}

impl WidgetRuntime {
    /// A runtime with these limits.
    pub fn new(limits: WidgetLimits) -> WidgetRuntime {
        WidgetRuntime {
            hub: Arc::default(),
            limiters: limits::Limiters::new(limits),
        }
    }
}

impl Default for WidgetRuntime {
    fn default() -> Self {
        WidgetRuntime::new(WidgetLimits::default())
    }
}

/// The widget routes.
pub fn routes() -> Router<AppState> {
    let api = Router::new()
        .route(
            "/widget/v1/sites/{site_id}",
            get(handlers::site).options(preflight),
        )
        .route(
            "/widget/v1/sites/{site_id}/visitors",
            post(handlers::create_visitor).options(preflight),
        )
        .route("/widget/v1/state", get(handlers::state).options(preflight))
        .route(
            "/widget/v1/events",
            get(handlers::events).options(preflight),
        )
        .route(
            "/widget/v1/chats",
            post(handlers::start_chat).options(preflight),
        )
        .route(
            "/widget/v1/chats/{ticket_id}/messages",
            post(handlers::post_message).options(preflight),
        )
        .route(
            "/widget/v1/chats/{ticket_id}/attachments",
            post(handlers::post_attachment).options(preflight),
        )
        .route(
            "/widget/v1/chats/{ticket_id}/attachments/{attachment_id}",
            get(handlers::download_attachment).options(preflight),
        )
        .route(
            "/widget/v1/chats/{ticket_id}/entries",
            get(handlers::entries).options(preflight),
        )
        .route(
            "/widget/v1/chats/{ticket_id}/typing",
            post(handlers::typing).options(preflight),
        )
        .route(
            "/widget/v1/chats/{ticket_id}/read",
            post(handlers::read).options(preflight),
        )
        .route(
            "/widget/v1/chats/{ticket_id}/end",
            post(handlers::end).options(preflight),
        )
        .route(
            "/widget/v1/chats/{ticket_id}/transcript",
            post(handlers::transcript).options(preflight),
        )
        .route(
            "/widget/v1/{*rest}",
            axum::routing::any(handlers::not_found),
        )
        .layer(middleware::from_fn(cors));
    Router::new().merge(api).route(
        "/widget.js",
        get(handlers::script).layer(tower_http::compression::CompressionLayer::new()),
    )
}

/// A preflight's answer (the [`cors`] layer adds the headers). Each widget route answers
/// `OPTIONS` itself: left to the method router's fallback, a preflight would get the API's
/// `method_not_allowed_fallback`, which `router_with_pages` sets after this layer is applied,
/// so it would answer 405 without CORS headers and the browser would block every call that
/// needs a preflight (JSON bodies, the `Authorization` header).
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Cross-origin headers. The widget sends no cookies, so reflecting the `Origin` exposes no
/// ambient authority; each handler refuses an origin its site does not allow before doing
/// anything. Preflights are answered for any origin and cached for ten minutes.
async fn cors(request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, last-event-id"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
