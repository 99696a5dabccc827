//! "X is viewing / X is replying" on the ticket page: the page beats every few seconds with
//! what its agent is doing, gets back who else is there, and hears of changes over `/events`.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use otklik_app::presence::{Activity, PresenceBeat};
use otklik_domain::ids::TicketId;
use serde::Deserialize;

use crate::UiState;
use crate::error::UiError;
use crate::pages::ticket::PresenceTemplate;
use crate::pages::{Frame, html};
use crate::session::Staff;

/// The other agents on a ticket now, with the message key of what they do.
pub(crate) fn others_here(
    state: &UiState,
    staff: &Staff,
    ticket_id: TicketId,
) -> Vec<(String, &'static str)> {
    state
        .presence
        .present(ticket_id, state.app.clock.now())
        .into_iter()
        .filter(|presence| presence.agent_id != staff.principal.agent_id)
        .map(|presence| {
            let key = match presence.activity {
                Activity::Viewing => "presence-viewing",
                Activity::Replying => "presence-replying",
            };
            (presence.name, key)
        })
        .collect()
}

fn fragment(state: &UiState, staff: &Staff, ticket_id: TicketId) -> Result<Response, UiError> {
    html(&PresenceTemplate {
        page: Frame::of(staff),
        id: ticket_id.to_string(),
        others: others_here(state, staff, ticket_id),
    })
}

async fn visible_ticket(state: &UiState, staff: &Staff, raw: &str) -> Result<TicketId, UiError> {
    let id: TicketId = raw.parse().map_err(|_| UiError::NotFound)?;
    // Presence is shown only to those who may open the ticket, and only they may claim it.
    state.app.get_ticket(&staff.principal, id).await?;
    Ok(id)
}

/// `GET /tickets/{id}/presence`: who else is on the ticket (htmx refresh after an event).
pub async fn others(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = visible_ticket(&state, &staff, &id).await?;
    fragment(&state, &staff, id)
}

#[derive(Debug, Deserialize)]
pub struct BeatForm {
    #[serde(default)]
    activity: String,
}

/// `POST /tickets/{id}/presence`: the page's heartbeat (`viewing`, `replying`, or `left`),
/// answered with who else is there.
pub async fn beat(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<BeatForm>,
) -> Result<Response, UiError> {
    let id = visible_ticket(&state, &staff, &id).await?;
    let activity = match form.activity.as_str() {
        "left" => None,
        other => Some(Activity::parse(other).ok_or(UiError::BadRequest)?),
    };
    let now = state.app.clock.now();
    // Beats are frequent, so they also clear out agents whose pages went away silently.
    state.presence.sweep(now);
    state.presence.beat(PresenceBeat {
        ticket_id: id,
        agent_id: staff.principal.agent_id,
        name: staff.agent.name.clone(),
        activity,
        at: now,
    });
    fragment(&state, &staff, id)
}
