//! Otklik's agent workspace: server-rendered pages (askama templates, auto-escaped) made lively
//! with htmx, in Russian and English (Fluent), over the use cases of [`otklik_app::App`].
//!
//! [`router`] serves the pages at `/`, `/login`, `/forgot-password`, `/reset-password`, `/inbox`, `/views/{id}`, `/tickets`,
//! `/tickets/{id}` (with its chat bar, `/tickets/{id}/chat/*`), `/chats`, `/chat/availability`,
//! `/customers`, `/customers/{id}`, `/search`, `/admin/*`, … and the embedded
//! assets at `/assets/*`; the server mounts it next to the JSON API, which owns `/api/*`. Every
//! state-changing request passes the CSRF guard, and every response carries a
//! Content-Security-Policy that allows only our own script files (customer HTML is served on
//! its own, sandboxed, script-free route). Answers are gzip-compressed when the browser asks.
//! This crate must not depend on a store implementation, SQL, or the API crate.
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
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use otklik_app::App;
use otklik_app::presence::PresenceHub;
use tower_http::compression::CompressionLayer;

pub use i18n::Lang;

/// How the workspace is served.
#[derive(Debug, Clone)]
pub struct UiConfig {
    /// Mark cookies `Secure` (and use `__Host-` names): on whenever the site is served over
    /// HTTPS, which should be always outside a developer's machine.
    pub secure_cookies: bool,
    /// The language for browsers whose `Accept-Language` names neither Russian nor English,
    /// unless an admin chose one in the settings.
    pub default_language: Lang,
    /// Where links in e-mails (password resets) point when the settings name no public base
    /// URL: the address the server listens on. Never taken from the request's `Host`, which
    /// the requester controls.
    pub fallback_base_url: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            secure_cookies: true,
            default_language: Lang::Ru,
            fallback_base_url: "http://127.0.0.1:8080".into(),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct UiState {
    pub app: App,
    pub config: Arc<UiConfig>,
    /// Who is viewing or replying to which ticket (this node's view; see the hub's docs for
    /// several nodes).
    pub presence: Arc<PresenceHub>,
}

/// The agent workspace.
pub fn router(app: App, config: UiConfig) -> Router {
    router_with_presence(app, config, Arc::new(PresenceHub::default()))
}

/// The agent workspace sharing a presence hub (one per node; a hub with a cross-node transport
/// when several nodes serve the same database).
pub fn router_with_presence(app: App, config: UiConfig, presence: Arc<PresenceHub>) -> Router {
    use pages::admin::chat_sites;
    use pages::{
        admin, auth, bulk, chat, customer, email, events, inbox, presence as here, ticket,
    };
    let state = UiState {
        app,
        config: Arc::new(config),
        presence,
    };
    Router::new()
        .route("/", get(auth::root))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/setup", get(auth::setup_page).post(auth::setup))
        .route("/lang", post(auth::switch_language))
        .route(
            "/forgot-password",
            get(auth::forgot_page).post(auth::forgot),
        )
        .route("/reset-password", get(auth::reset_page).post(auth::reset))
        .route("/inbox", get(inbox::inbox))
        .route("/inbox/nav", get(inbox::views_nav))
        .route("/views/{id}", get(inbox::view_page))
        .route("/views/{id}/rows", get(inbox::view_rows))
        .route("/views/{id}/count", get(inbox::view_count))
        .route("/views", post(bulk::create_view))
        .route("/search", get(inbox::search))
        .route("/tickets", get(bulk::filter))
        .route("/tickets/rows", get(bulk::filter_rows))
        .route("/tickets/bulk", post(bulk::bulk))
        .route("/tickets/bulk-merge", post(bulk::bulk_merge))
        .route(
            "/tickets/{id}",
            get(ticket::ticket_page).post(ticket::update),
        )
        .route("/tickets/{id}/timeline", get(ticket::timeline))
        .route(
            "/tickets/{id}/messages",
            post(ticket::add_message).layer(DefaultBodyLimit::max(guard::MAX_UPLOAD_BYTES)),
        )
        .route("/tickets/{id}/assign-to-me", post(ticket::assign_to_me))
        .route("/tickets/{id}/solve", post(ticket::solve))
        .route(
            "/tickets/{id}/merge",
            get(ticket::merge_form).post(ticket::merge),
        )
        .route(
            "/tickets/{id}/split/{message}",
            get(ticket::split_form).post(ticket::split),
        )
        .route("/tickets/{id}/presence", get(here::others).post(here::beat))
        .route("/tickets/{id}/chat", get(chat::chat_bar))
        .route("/tickets/{id}/chat/accept", post(chat::accept))
        .route("/tickets/{id}/chat/transfer", post(chat::transfer))
        .route("/tickets/{id}/chat/end", post(chat::end))
        .route("/tickets/{id}/chat/typing", post(chat::typing))
        .route("/tickets/{id}/chat/read", post(chat::read))
        .route("/chats", get(chat::chats))
        .route("/chats/lists", get(chat::chat_lists_fragment))
        .route(
            "/chat/availability",
            get(chat::availability).post(chat::set_availability),
        )
        .route("/customers", get(customer::customers))
        .route("/customers/{id}", get(customer::customer_page))
        .route(
            "/customers/{id}/merge",
            get(customer::merge_form).post(customer::merge),
        )
        .route("/customers/merges/{id}/undo", post(customer::unmerge))
        .route("/attachments/{id}", get(ticket::download))
        .route("/emails/{id}/html", get(email::html_body))
        .route("/emails/{id}/raw", get(email::raw))
        .route("/emails/{id}/retry", post(email::retry))
        .route("/admin", get(admin::admin_home))
        .route("/admin/agents", get(admin::agents).post(admin::invite))
        .route("/admin/agents/{id}", post(admin::update_agent))
        .route("/admin/agents/{id}/active", post(admin::set_active))
        .route("/admin/teams", get(admin::teams).post(admin::create_team))
        .route("/admin/teams/{id}", post(admin::rename_team))
        .route("/admin/teams/{id}/delete", post(admin::delete_team))
        .route("/admin/tags", get(admin::tags).post(admin::create_tag))
        .route("/admin/tags/{id}/delete", post(admin::delete_tag))
        .route(
            "/admin/tokens",
            get(admin::tokens).post(admin::create_token),
        )
        .route("/admin/tokens/{id}/revoke", post(admin::revoke_token))
        .route(
            "/admin/mailboxes",
            get(admin::mailboxes).post(admin::create_mailbox),
        )
        .route("/admin/mailboxes/{id}/check", post(admin::check_mailbox))
        .route("/admin/mail", get(admin::mail))
        .route("/admin/emails/{id}/reprocess", post(admin::reprocess))
        .route(
            "/admin/settings",
            get(admin::settings).post(admin::save_settings),
        )
        .route(
            "/admin/chat-sites",
            get(chat_sites::list).post(chat_sites::create),
        )
        .route("/admin/chat-sites/new", get(chat_sites::new_form))
        .route(
            "/admin/chat-sites/{id}",
            get(chat_sites::edit_form).post(chat_sites::update),
        )
        .route(
            "/admin/chat-sites/{id}/rotate-secret",
            post(chat_sites::rotate_secret),
        )
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
        // Outermost, so error pages are compressed too; the SSE stream is left alone by the
        // layer's default predicate.
        .layer(CompressionLayer::new())
        .with_state(state)
}
