//! `GET /events`: live changes for the open pages, as Server-Sent Events. The page's script
//! turns each into an htmx refresh of what is on screen (counters, the list, the timeline, who
//! else is on the ticket).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use otklik_domain::ids::TicketId;
use otklik_domain::permission::Principal;
use otklik_store::events::ChangeEvent;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::UiState;
use crate::error::UiError;
use crate::session::Staff;

/// A stream ends after this long; the browser reconnects at once, and the reconnection checks
/// the session again, so a signed-out or expired session stops receiving within this time.
const STREAM_LIFETIME: Duration = Duration::from_secs(10 * 60);

fn to_sse(event: &ChangeEvent) -> Event {
    let data = serde_json::json!({
        "kind": event.kind.as_str(),
        "ticket_id": event.ticket_id,
    });
    Event::default().event("change").data(data.to_string())
}

fn presence_sse(ticket_id: TicketId) -> Event {
    let data = serde_json::json!({ "ticket_id": ticket_id });
    Event::default().event("presence").data(data.to_string())
}

/// What the stream waits on: ticket changes from the store, presence changes from the hub.
struct Sources {
    changes: broadcast::Receiver<ChangeEvent>,
    presence: broadcast::Receiver<TicketId>,
    state: UiState,
    principal: Principal,
}

/// The change stream of the signed-in agent: only tickets they may see.
pub async fn events(
    State(state): State<UiState>,
    staff: Staff,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, UiError> {
    let sources = Sources {
        changes: state.app.subscribe_changes(&staff.principal)?,
        presence: state.presence.subscribe(),
        state,
        principal: staff.principal,
    };
    let stream = futures::stream::unfold(sources, |mut sources| async move {
        loop {
            tokio::select! {
                received = sources.changes.recv() => {
                    let event = match received {
                        Ok(event) => event,
                        // Fell behind: the missed events are gone, so the page refetches all.
                        Err(RecvError::Lagged(_)) => ChangeEvent::resync(),
                        Err(RecvError::Closed) => return None,
                    };
                    if sources.state.app.may_see_change(&sources.principal, &event).await {
                        return Some((Ok(to_sse(&event)), sources));
                    }
                }
                received = sources.presence.recv() => {
                    let ticket_id = match received {
                        Ok(ticket_id) => ticket_id,
                        // Presence is refreshed by every heartbeat anyway: skipping is safe.
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    };
                    let visible = sources
                        .state
                        .app
                        .get_ticket(&sources.principal, ticket_id)
                        .await
                        .is_ok();
                    if visible {
                        return Some((Ok(presence_sse(ticket_id)), sources));
                    }
                }
            }
        }
    })
    .take_until(tokio::time::sleep(STREAM_LIFETIME));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
