//! A customer's page: who they are, how to reach them, and their tickets.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use otklik_domain::ids::CustomerId;
use otklik_store::TicketFilter;

use crate::UiState;
use crate::error::UiError;
use crate::pages::inbox::PAGE_SIZE;
use crate::pages::{Frame, Names, TicketRow, When, html};
use crate::session::Staff;

#[derive(Template)]
#[template(path = "customer.html")]
struct CustomerTemplate {
    page: Frame,
    name: String,
    language: Option<String>,
    since: When,
    merged_into: Option<String>,
    /// (label, value)
    identities: Vec<(String, String)>,
    rows: Vec<TicketRow>,
}

/// `GET /customers/{id}`.
pub async fn customer_page(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id: CustomerId = id.parse().map_err(|_| UiError::NotFound)?;
    let app = &state.app;
    let customer = app.get_customer(&staff.principal, id).await?;
    let tickets = app
        .list_tickets(
            &staff.principal,
            TicketFilter {
                customer_id: Some(id),
                ..TicketFilter::default()
            },
            None,
            PAGE_SIZE,
        )
        .await?;
    let names = Names::load(app, &staff.principal, &tickets.tickets).await?;
    let page = Frame::of(&staff);
    html(&CustomerTemplate {
        name: customer.name.clone(),
        language: customer.language.clone(),
        since: When::of(customer.created_at),
        merged_into: customer.merged_into.map(|id| id.to_string()),
        identities: customer
            .identities
            .iter()
            .map(|identity| {
                let mut value = identity.value.value.clone();
                if !identity.value.provider.is_empty() {
                    value = format!("{} ({})", value, identity.value.provider);
                }
                (page.label("identity", identity.value.kind.as_str()), value)
            })
            .collect(),
        rows: tickets
            .tickets
            .iter()
            .map(|ticket| names.row(ticket))
            .collect(),
        page,
    })
}
