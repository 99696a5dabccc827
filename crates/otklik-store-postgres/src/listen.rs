//! Cross-node change events and signals: one `LISTEN` connection per node turns PostgreSQL
//! notifications into the store's local broadcasts.
//!
//! A writing transaction announces its events with `pg_notify` (see `write.rs`); PostgreSQL
//! delivers them to every listening connection only when that transaction commits, so no node
//! ever hears of uncommitted changes. NOTIFY is not durable: whenever the listening connection
//! is (re)established, subscribers get a `resync` because they may have missed events.
//!
//! Signals (typing, presence) come on their own channel, sent outside any transaction by
//! `publish_signal` on whichever node has one; this node hears its own signals here too, so
//! every node's subscribers get each signal once. A lost signal is not worth a resync: signals
//! heal by being sent again.

use std::time::Duration;

use futures::StreamExt;
use otklik_store::events::{ChangeEvent, Signal};
use tokio::sync::broadcast;
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel name shared by every node.
pub(crate) const CHANNEL: &str = "otklik_changes";
/// The channel of signals between nodes (see [`Signal`]).
pub(crate) const SIGNAL_CHANNEL: &str = "otklik_signals";
/// Payloads stay well under PostgreSQL's 8,000-byte limit: this many events per notification.
pub(crate) const EVENTS_PER_NOTIFICATION: usize = 50;

/// Listens until the task is aborted (when the store closes), reconnecting with backoff.
pub(crate) async fn listen(
    config: tokio_postgres::Config,
    broadcasts: Broadcasts,
    listening: tokio::sync::watch::Sender<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let outcome = listen_once(&config, &broadcasts, &listening).await;
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

/// Where notifications go on this node.
#[derive(Clone)]
pub(crate) struct Broadcasts {
    pub(crate) events: broadcast::Sender<ChangeEvent>,
    pub(crate) signals: broadcast::Sender<Signal>,
}

async fn listen_once(
    config: &tokio_postgres::Config,
    broadcasts: &Broadcasts,
    listening: &tokio::sync::watch::Sender<bool>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let mut messages = futures::stream::poll_fn(move |context| connection.poll_message(context));
    let command = format!("LISTEN {CHANNEL}; LISTEN {SIGNAL_CHANNEL}");
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
                    Some(Ok(message)) => forward(message, broadcasts),
                    Some(Err(error)) => return Err(error),
                    None => return Ok(()),
                },
            }
        }
    }
    listening.send_replace(true);
    // Anything committed while we were not listening is unknown: tell subscribers.
    let _ = broadcasts.events.send(ChangeEvent::resync());
    // `client` stays alive while we read: dropping it would close the connection.
    while let Some(message) = messages.next().await {
        forward(message?, broadcasts);
    }
    drop(client);
    Ok(())
}

fn forward(message: AsyncMessage, broadcasts: &Broadcasts) {
    let AsyncMessage::Notification(notification) = message else {
        return;
    };
    if notification.channel() == SIGNAL_CHANNEL {
        // Any node may publish; a payload this version cannot read is dropped, not fatal.
        match serde_json::from_str::<Signal>(notification.payload()) {
            Ok(signal) => {
                let _ = broadcasts.signals.send(signal);
            }
            Err(error) => tracing::warn!(%error, "ignoring a malformed signal notification"),
        }
        return;
    }
    match serde_json::from_str::<Vec<ChangeEvent>>(notification.payload()) {
        Ok(batch) => {
            for event in batch {
                let _ = broadcasts.events.send(event);
            }
        }
        Err(error) => tracing::warn!(%error, "ignoring a malformed change notification"),
    }
}
