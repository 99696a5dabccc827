//! Cross-node change events: one `LISTEN` connection per node turns PostgreSQL notifications
//! into the store's local broadcast.
//!
//! A writing transaction announces its events with `pg_notify` (see `write.rs`); PostgreSQL
//! delivers them to every listening connection only when that transaction commits, so no node
//! ever hears of uncommitted changes. NOTIFY is not durable: whenever the listening connection
//! is (re)established, subscribers get a `resync` because they may have missed events.

use std::time::Duration;

use futures::StreamExt;
use otklik_store::events::ChangeEvent;
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel name shared by every node.
pub(crate) const CHANNEL: &str = "otklik_changes";
/// Payloads stay well under PostgreSQL's 8,000-byte limit: this many events per notification.
pub(crate) const EVENTS_PER_NOTIFICATION: usize = 50;

/// Listens until the task is aborted (when the store closes), reconnecting with backoff.
pub(crate) async fn listen(
    config: tokio_postgres::Config,
    events: broadcast::Sender<ChangeEvent>,
    listening: tokio::sync::watch::Sender<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let outcome = listen_once(&config, &events, &listening).await;
        listening.send_replace(false);
        match outcome {
            Ok(()) => tracing::warn!("the PostgreSQL LISTEN connection closed; reconnecting"),
            Err(error) => {
                tracing::warn!(%error, "the PostgreSQL LISTEN connection failed; reconnecting")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

async fn listen_once(
    config: &tokio_postgres::Config,
    events: &broadcast::Sender<ChangeEvent>,
    listening: &tokio::sync::watch::Sender<bool>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let mut messages = futures::stream::poll_fn(move |context| connection.poll_message(context));
    let command = format!("LISTEN {CHANNEL}");
    {
        // The connection must be polled for the LISTEN command itself to complete.
        let listening = client.batch_execute(&command);
        tokio::pin!(listening);
        loop {
            tokio::select! {
                result = &mut listening => {
                    result?;
                    break;
                }
                message = messages.next() => match message {
                    Some(Ok(message)) => forward(message, events),
                    Some(Err(error)) => return Err(error),
                    None => return Ok(()),
                },
            }
        }
    }
    listening.send_replace(true);
    // Anything committed while we were not listening is unknown: tell subscribers.
    let _ = events.send(ChangeEvent::resync());
    // `client` stays alive while we read: dropping it would close the connection.
    while let Some(message) = messages.next().await {
        forward(message?, events);
    }
    drop(client);
    Ok(())
}

fn forward(message: AsyncMessage, events: &broadcast::Sender<ChangeEvent>) {
    if let AsyncMessage::Notification(notification) = message {
        match serde_json::from_str::<Vec<ChangeEvent>>(notification.payload()) {
            Ok(batch) => {
                for event in batch {
                    let _ = events.send(event);
                }
            }
            Err(error) => tracing::warn!(%error, "ignoring a malformed change notification"),
        }
    }
}
