//! `/events`: live change notifications as Server-Sent Events.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use otklik_store::events::ChangeEvent;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::error::{ApiResult, Problem};
use crate::extract::Auth;

fn to_sse(event: &ChangeEvent) -> Event {
    let data = serde_json::json!({ "ticket_id": event.ticket_id });
    Event::default()
        .event(event.kind.as_str())
        .data(data.to_string())
}

/// Live changes of the tickets the caller may see, as Server-Sent Events: `ticket.created`,
/// `ticket.updated`, `message.added` with `{"ticket_id": …}` (refetch the ticket), and `resync`
/// when events may have been missed (refetch what is on screen). Works across nodes on
/// PostgreSQL.
#[utoipa::path(get, path = "/events", tag = "tickets",
    responses((status = 200, description = "An endless `text/event-stream`", content_type = "text/event-stream"), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let receiver = state.app.subscribe_changes(&principal)?;
    let stream = futures::stream::unfold(
        (receiver, state, principal),
        |(mut receiver, state, principal)| async move {
            loop {
                let event = match receiver.recv().await {
                    Ok(event) => event,
                    // Fell behind: the missed events are gone, so the client must refetch.
                    Err(RecvError::Lagged(_)) => ChangeEvent::resync(),
                    Err(RecvError::Closed) => return None,
                };
                // Visibility is checked per event, so a ticket moved to another team stops showing.
                if state.app.may_see_change(&principal, &event).await {
                    return Some((Ok(to_sse(&event)), (receiver, state, principal)));
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
