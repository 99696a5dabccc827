//! `GET /events`: live changes for the open pages, as Server-Sent Events. The page's script
//! turns each into an htmx refresh of what is on screen (counters, the list, the timeline).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use otklik_store::events::ChangeEvent;
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

/// The change stream of the signed-in agent: only tickets they may see.
pub async fn events(
    State(state): State<UiState>,
    staff: Staff,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, UiError> {
    let receiver = state.app.subscribe_changes(&staff.principal)?;
    let principal = staff.principal;
    let stream = futures::stream::unfold(
        (receiver, state, principal),
        |(mut receiver, state, principal)| async move {
            loop {
                let event = match receiver.recv().await {
                    Ok(event) => event,
                    // Fell behind: the missed events are gone, so the page refetches everything.
                    Err(RecvError::Lagged(_)) => ChangeEvent::resync(),
                    Err(RecvError::Closed) => return None,
                };
                if state.app.may_see_change(&principal, &event).await {
                    return Some((Ok(to_sse(&event)), (receiver, state, principal)));
                }
            }
        },
    )
    .take_until(tokio::time::sleep(STREAM_LIFETIME));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
