//! The REST API under `/api/v1`: one module per resource, each handler documented for OpenAPI.

pub mod chat;
pub mod customers;
pub mod events;
pub mod mail;
pub mod search;
pub mod staff;
pub mod tickets;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Otklik API",
        version = "1",
        description = "Tickets, customers and staff of an Otklik helpdesk. Authenticate with \
            `Authorization: Bearer otk_…` (create tokens with `otklik token create`). Errors are \
            RFC 9457 problem details with a stable `code`. POST endpoints accept an \
            `Idempotency-Key` header: a retried request with the same key creates nothing twice."
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::Problem))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Every API route with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(tickets::list, tickets::create))
        .routes(routes!(tickets::get, tickets::update))
        .routes(routes!(tickets::list_messages, tickets::create_message))
        .routes(routes!(tickets::merge))
        .routes(routes!(tickets::audit))
        .routes(routes!(tickets::download_attachment))
        .routes(routes!(customers::list, customers::create))
        .routes(routes!(customers::get, customers::update))
        .routes(routes!(customers::merge))
        .routes(routes!(customers::list_merges))
        .routes(routes!(customers::undo_merge))
        .routes(routes!(customers::audit))
        .routes(routes!(staff::list_agents, staff::create_agent))
        .routes(routes!(staff::me))
        .routes(routes!(staff::get_agent, staff::update_agent))
        .routes(routes!(staff::list_tokens, staff::create_token))
        .routes(routes!(staff::revoke_token))
        .routes(routes!(staff::list_teams, staff::create_team))
        .routes(routes!(
            staff::get_team,
            staff::rename_team,
            staff::delete_team
        ))
        .routes(routes!(staff::list_tags, staff::create_tag))
        .routes(routes!(staff::delete_tag))
        .routes(routes!(staff::list_roles))
        .routes(routes!(staff::object_audit))
        .routes(routes!(staff::setup))
        .routes(routes!(search::search))
        .routes(routes!(search::list_views, search::create_view))
        .routes(routes!(search::delete_view))
        .routes(routes!(search::view_tickets))
        .routes(routes!(events::events))
        .routes(routes!(mail::list_mailboxes, mail::create_mailbox))
        .routes(routes!(mail::test_mailbox))
        .routes(routes!(mail::list_emails))
        .routes(routes!(mail::get_email))
        .routes(routes!(mail::raw_email))
        .routes(routes!(mail::retry_email))
        .routes(routes!(mail::reprocess_email))
        .routes(routes!(mail::ticket_emails))
        .routes(routes!(chat::list_sites, chat::create_site))
        .routes(routes!(chat::get_site, chat::update_site))
        .routes(routes!(chat::rotate_secret))
        .routes(routes!(chat::get_availability, chat::set_availability))
        .routes(routes!(chat::queue))
        .routes(routes!(chat::get_chat))
        .routes(routes!(chat::accept))
        .routes(routes!(chat::transfer))
        .routes(routes!(chat::end))
        .routes(routes!(chat::typing))
        .routes(routes!(chat::read));
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", v1)
}
