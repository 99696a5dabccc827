//! Fan-out of live changes to visitors' event streams on this node.
//!
//! One dispatcher task reads the store's change events and signals (which on PostgreSQL come
//! from every node) and marks, for each visitor stream concerned, which chats changed. Marks
//! coalesce: a stream that is slow to drain holds a set of ticket ids, never a growing queue,
//! and when it wakes it fetches what is new after the last sequence it sent — so a burst costs
//! one read, and nothing is lost however far behind a stream falls. If the dispatcher itself
//! falls behind the store's broadcast, each stream rechecks its visitor's chats on the server
//! (one read each) instead of telling every widget to refetch at once. Thousands of idle streams
//! cost nothing per event: only the streams of the chat's visitor are woken.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use otklik_app::App;
use otklik_app::chat::TYPING_TOPIC;
use otklik_domain::ids::{TicketId, VisitorId};
use otklik_store::events::{ChangeKind, Signal};
use tokio::sync::Notify;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

/// What a stream has to tell its visitor, gathered until it wakes.
#[derive(Debug, Default)]
pub struct Pending {
    /// Chats with new entries or a changed state.
    pub changed: HashSet<TicketId>,
    /// The latest typing state of an agent per chat: (typing, agent name).
    pub typing: HashMap<TicketId, (bool, String)>,
    /// Events may have been missed: every chat of the visitor must be looked at again.
    pub recheck: bool,
}

/// One visitor event stream.
#[derive(Debug, Default)]
pub struct Subscriber {
    pending: Mutex<Pending>,
    notify: Notify,
}

impl Subscriber {
    /// Waits until there is something to tell, and takes it.
    pub async fn next(&self) -> Pending {
        loop {
            let notified = self.notify.notified();
            {
                let mut pending = self.pending.lock().expect("hub lock");
                if !pending.changed.is_empty() || !pending.typing.is_empty() || pending.recheck {
                    return std::mem::take(&mut *pending);
                }
            }
            notified.await;
        }
    }

    fn mark(&self, mark: impl FnOnce(&mut Pending)) {
        mark(&mut self.pending.lock().expect("hub lock"));
        self.notify.notify_one();
    }
}

/// Tickets remembered as "not a chat" or "this visitor's chat" before the cache is cleared.
const OWNER_CACHE_LIMIT: usize = 100_000;

/// The visitor streams of this node, by visitor.
#[derive(Default)]
pub struct ChatHub {
    streams: Mutex<HashMap<VisitorId, Vec<Weak<Subscriber>>>>,
    /// Which visitor a ticket's chat belongs to (`None`: not a chat). A chat never changes
    /// visitor, so entries stay true.
    owners: Mutex<HashMap<TicketId, Option<VisitorId>>>,
    dispatcher: OnceLock<()>,
}

impl std::fmt::Debug for ChatHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatHub")
            .field(
                "visitors",
                &self.streams.lock().map(|s| s.len()).unwrap_or(0),
            )
            .finish_non_exhaustive()
    }
}

/// Removes a stream from the hub when it ends.
pub struct Subscription {
    hub: Arc<ChatHub>,
    visitor_id: VisitorId,
    pub subscriber: Arc<Subscriber>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut streams = self.hub.streams.lock().expect("hub lock");
        if let Some(list) = streams.get_mut(&self.visitor_id) {
            list.retain(|weak| {
                weak.strong_count() > 0
                    && !std::ptr::eq(weak.as_ptr(), Arc::as_ptr(&self.subscriber))
            });
            if list.is_empty() {
                streams.remove(&self.visitor_id);
            }
        }
    }
}

impl ChatHub {
    /// How many visitor streams are open on this node.
    pub fn stream_count(&self) -> usize {
        self.streams
            .lock()
            .expect("hub lock")
            .values()
            .map(Vec::len)
            .sum()
    }

    /// Opens a stream for a visitor (starting the dispatcher on first use).
    pub fn subscribe(self: &Arc<Self>, app: &App, visitor_id: VisitorId) -> Subscription {
        self.dispatcher.get_or_init(|| {
            tokio::spawn(dispatch(Arc::downgrade(self), app.clone()));
        });
        let subscriber = Arc::new(Subscriber::default());
        self.streams
            .lock()
            .expect("hub lock")
            .entry(visitor_id)
            .or_default()
            .push(Arc::downgrade(&subscriber));
        Subscription {
            hub: self.clone(),
            visitor_id,
            subscriber,
        }
    }

    fn streams_of(&self, visitor_id: VisitorId) -> Vec<Arc<Subscriber>> {
        self.streams
            .lock()
            .expect("hub lock")
            .get(&visitor_id)
            .map(|list| list.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    }

    fn everyone(&self) -> Vec<Arc<Subscriber>> {
        self.streams
            .lock()
            .expect("hub lock")
            .values()
            .flatten()
            .filter_map(Weak::upgrade)
            .collect()
    }

    fn is_idle(&self) -> bool {
        self.streams.lock().expect("hub lock").is_empty()
    }

    async fn owner_of(&self, app: &App, ticket_id: TicketId) -> Option<VisitorId> {
        if let Some(owner) = self.owners.lock().expect("hub lock").get(&ticket_id) {
            return *owner;
        }
        let owner = match app.store.find_chat(ticket_id).await {
            Ok(chat) => chat.map(|chat| chat.visitor_id),
            Err(error) => {
                tracing::warn!(%error, "could not look up a chat for live events");
                return None;
            }
        };
        let mut owners = self.owners.lock().expect("hub lock");
        if owners.len() >= OWNER_CACHE_LIMIT {
            owners.clear();
        }
        owners.insert(ticket_id, owner);
        owner
    }

    async fn chat_changed(&self, app: &App, ticket_id: TicketId) {
        if self.is_idle() {
            return;
        }
        if let Some(visitor_id) = self.owner_of(app, ticket_id).await {
            for stream in self.streams_of(visitor_id) {
                stream.mark(|pending| {
                    pending.changed.insert(ticket_id);
                });
            }
        }
    }

    async fn typing(&self, app: &App, signal: &Signal) {
        let Some(ticket_id) = signal.ticket_id else {
            return;
        };
        // Visitors see agents typing, not themselves.
        if signal.data.get("by").and_then(|by| by.as_str()) != Some("agent") || self.is_idle() {
            return;
        }
        let typing = signal
            .data
            .get("typing")
            .and_then(|t| t.as_bool())
            .unwrap_or(false);
        let name = signal
            .data
            .get("agent_name")
            .and_then(|name| name.as_str())
            .unwrap_or_default()
            .to_owned();
        if let Some(visitor_id) = self.owner_of(app, ticket_id).await {
            for stream in self.streams_of(visitor_id) {
                let name = name.clone();
                stream.mark(|pending| {
                    pending.typing.insert(ticket_id, (typing, name));
                });
            }
        }
    }

    fn recheck_everyone(&self) {
        for stream in self.everyone() {
            stream.mark(|pending| pending.recheck = true);
        }
    }
}

/// Most change events read in one go: a burst (a message is three events of one ticket) costs
/// one lookup per ticket.
const EVENT_BATCH: usize = 256;

/// Reads changes and signals until the hub is gone.
async fn dispatch(hub: Weak<ChatHub>, app: App) {
    let mut changes = app.store.subscribe();
    let mut signals = app.store.subscribe_signals();
    loop {
        tokio::select! {
            change = changes.recv() => {
                let Some(hub) = hub.upgrade() else { return };
                let mut batch = vec![change];
                while batch.len() < EVENT_BATCH {
                    match changes.try_recv() {
                        Ok(event) => batch.push(Ok(event)),
                        Err(TryRecvError::Lagged(missed)) => batch.push(Err(RecvError::Lagged(missed))),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Closed) => batch.push(Err(RecvError::Closed)),
                    }
                }
                let mut tickets: Vec<TicketId> = Vec::new();
                for change in batch {
                    match change {
                        Ok(event) => match (event.kind, event.ticket_id) {
                            (ChangeKind::Resync, _) => hub.recheck_everyone(),
                            (
                                ChangeKind::ChatUpdated
                                | ChangeKind::MessageAdded
                                | ChangeKind::TicketUpdated,
                                Some(ticket_id),
                            ) if !tickets.contains(&ticket_id) => tickets.push(ticket_id),
                            _ => {}
                        },
                        // Fell behind: which chats changed is unknown, so every stream looks
                        // at its own chats again (server-side, one read each).
                        Err(RecvError::Lagged(_)) => hub.recheck_everyone(),
                        Err(RecvError::Closed) => return,
                    }
                }
                for ticket_id in tickets {
                    hub.chat_changed(&app, ticket_id).await;
                }
            }
            signal = signals.recv() => {
                let Some(hub) = hub.upgrade() else { return };
                match signal {
                    Ok(signal) if signal.topic == TYPING_TOPIC => hub.typing(&app, &signal).await,
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        }
    }
}
