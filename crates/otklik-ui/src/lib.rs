//! Otklik's agent workspace: server-rendered pages (askama templates, auto-escaped) made lively
//! with htmx, in Russian and English (Fluent), over the use cases of [`otklik_app::App`].
//!
//! [`router`] serves the pages at `/`, `/login`, `/inbox`, `/views/{id}`, `/tickets/{id}`,
//! `/customers/{id}`, `/search`, … and the embedded assets at `/assets/*`; the server mounts it
//! next to the JSON API, which owns `/api/*`. Every state-changing request passes the CSRF
//! guard, and every response carries a Content-Security-Policy that allows only our own
//! script files. This crate must not depend on a store implementation, SQL, or the API crate.
//!
//! Building needs the front-end packages of `package-lock.json` (htmx): run
//! `npm ci --prefix crates/otklik-ui` once; `build.rs` embeds them with our own `assets/`.

pub mod assets;
pub mod error;
pub mod guard;
pub mod i18n;
pub mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post};
use otklik_app::App;

pub use i18n::Lang;

/// How the workspace is served.
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// Mark cookies `Secure` (and use `__Host-` names): on whenever the site is served over
    /// HTTPS, which should be always outside a developer's machine.
    pub secure_cookies: bool,
    /// The language for browsers whose `Accept-Language` names neither Russian nor English.
    pub default_language: Lang,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            secure_cookies: true,
            default_language: Lang::Ru,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct UiState {
    pub app: App,
    pub config: Arc<UiConfig>,
}

/// The agent workspace.
pub fn router(app: App, config: UiConfig) -> Router {
    use pages::{auth, customer, events, inbox, ticket};
    let state = UiState {
        app,
        config: Arc::new(config),
    };
    Router::new()
        .route("/", get(auth::root))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/setup", get(auth::setup_page).post(auth::setup))
        .route("/lang", post(auth::switch_language))
        .route("/inbox", get(inbox::inbox))
        .route("/inbox/nav", get(inbox::views_nav))
        .route("/views/{id}", get(inbox::view_page))
        .route("/views/{id}/rows", get(inbox::view_rows))
        .route("/views/{id}/count", get(inbox::view_count))
        .route("/search", get(inbox::search))
        .route(
            "/tickets/{id}",
            get(ticket::ticket_page).post(ticket::update),
        )
        .route("/tickets/{id}/timeline", get(ticket::timeline))
        .route("/tickets/{id}/messages", post(ticket::add_message))
        .route("/tickets/{id}/assign-to-me", post(ticket::assign_to_me))
        .route("/tickets/{id}/solve", post(ticket::solve))
        .route("/customers/{id}", get(customer::customer_page))
        .route("/attachments/{id}", get(ticket::download))
        .route("/events", get(events::events))
        .route("/assets/{name}", get(assets::serve))
        .fallback(|| async { error::UiError::NotFound })
        .method_not_allowed_fallback(|| async { error::UiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::csrf_guard,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            error::render_errors,
        ))
        .layer(middleware::from_fn(guard::security_headers))
        .with_state(state)
}
