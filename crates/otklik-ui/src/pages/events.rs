//! `GET /events`: live changes for the open pages, as Server-Sent Events. The page's script
//! turns each into an htmx refresh of what is on screen (counters, the list, the timeline, who
//! else is on the ticket, the chat queue, the availability control), and shows who is typing in
//! a chat (`typing` events: the visitor, or another agent, on a ticket this agent may see).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use otklik_app::chat::TYPING_TOPIC;
use otklik_domain::ids::TicketId;
use otklik_domain::permission::Principal;
use otklik_store::events::{ChangeEvent, Signal};
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

/// What a `typing` event says: only who (visitor or an agent's name) and whether, never text.
fn typing_sse(ticket_id: TicketId, signal: &Signal) -> Event {
    let by_agent = signal.data["by"].as_str() == Some("agent");
    let data = serde_json::json!({
        "ticket_id": ticket_id,
        "by": if by_agent { "agent" } else { "visitor" },
        "name": if by_agent { signal.data["agent_name"].as_str().unwrap_or("") } else { "" },
        "typing": signal.data["typing"].as_bool().unwrap_or(false),
    });
    Event::default().event("typing").data(data.to_string())
}

/// The ticket of a typing signal worth forwarding to `principal`: not their own typing.
fn typing_ticket(signal: &Signal, principal: &Principal) -> Option<TicketId> {
    if signal.topic != TYPING_TOPIC {
        return None;
    }
    let own = signal.data["agent_id"]
        .as_str()
        .and_then(|id| id.parse::<otklik_domain::ids::AgentId>().ok())
        == Some(principal.agent_id);
    if own { None } else { signal.ticket_id }
}

/// What the stream waits on: ticket changes from the store, presence changes from the hub,
/// typing signals (from any node) from the store.
struct Sources {
    changes: broadcast::Receiver<ChangeEvent>,
    presence: broadcast::Receiver<TicketId>,
    signals: broadcast::Receiver<Signal>,
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
        signals: state.app.store.subscribe_signals(),
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
                received = sources.signals.recv() => {
                    let signal = match received {
                        Ok(signal) => signal,
                        // Typing is momentary and repeated while it lasts: skipping is safe.
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    };
                    let Some(ticket_id) = typing_ticket(&signal, &sources.principal) else {
                        continue;
                    };
                    let visible = sources
                        .state
                        .app
                        .get_ticket(&sources.principal, ticket_id)
                        .await
                        .is_ok();
                    if visible {
                        return Some((Ok(typing_sse(ticket_id, &signal)), sources));
                    }
                }
            }
        }
    })
    .take_until(tokio::time::sleep(STREAM_LIFETIME));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
