//! Collision detection: who is viewing or replying to which ticket, so two agents do not answer
//! the same customer.
//!
//! Presence is short-lived and needs no durability, so it is not stored: each node keeps a
//! [`PresenceHub`] in memory. Pages send a heartbeat every few seconds; an entry that misses
//! its heartbeats expires after the hub's time to live, so a closed laptop does not claim a
//! ticket for long. Whenever who-is-where changes, the hub announces the ticket's id on
//! [`PresenceHub::subscribe`] (ids only, like the store's change events), and the pages fetch
//! the list again, checking visibility as for any read.
//!
//! Several nodes: the hub hands every local change to a [`PresenceTransport`] and takes the
//! other nodes' changes through [`PresenceHub::apply_remote`]. [`SignalTransport`] carries beats
//! as store signals (on PostgreSQL, `NOTIFY` on the signals channel) and [`relay_signals`] feeds
//! what arrives back into the hub; a node hears its own beats too, which change nothing.
//! Expiry makes a lost notification heal by itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};
use otklik_domain::ids::{AgentId, TicketId};
use tokio::sync::broadcast;

/// What an agent is doing on a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Activity {
    Viewing,
    /// Typing in the reply box: the stronger signal, shown first.
    Replying,
}

impl Activity {
    /// The stable name pages and transports use.
    pub fn as_str(self) -> &'static str {
        match self {
            Activity::Viewing => "viewing",
            Activity::Replying => "replying",
        }
    }

    /// Parses [`Activity::as_str`].
    pub fn parse(text: &str) -> Option<Activity> {
        match text {
            "viewing" => Some(Activity::Viewing),
            "replying" => Some(Activity::Replying),
            _ => None,
        }
    }
}

/// One agent's presence on one ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub agent_id: AgentId,
    /// The name to show; carried with the beat so no node needs a lookup to draw it.
    pub name: String,
    pub activity: Activity,
    pub expires_at: Timestamp,
}

/// A change of one agent's presence, as a node sends it to the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceBeat {
    pub ticket_id: TicketId,
    pub agent_id: AgentId,
    pub name: String,
    /// `None`: the agent left the ticket.
    pub activity: Option<Activity>,
    pub at: Timestamp,
}

/// Carries presence changes between nodes. Implementations must not block: publishing happens
/// while a request is being answered.
pub trait PresenceTransport: Send + Sync {
    /// Sends a local change to every other node.
    fn publish(&self, beat: &PresenceBeat);
}

/// How long an entry lives without a heartbeat (pages beat every 15 seconds).
pub const DEFAULT_PRESENCE_TTL: SignedDuration = SignedDuration::from_secs(40);

/// The presence of agents on tickets, as known to this node.
pub struct PresenceHub {
    ttl: SignedDuration,
    tickets: Mutex<HashMap<TicketId, HashMap<AgentId, Presence>>>,
    changes: broadcast::Sender<TicketId>,
    transport: Option<Arc<dyn PresenceTransport>>,
}

impl std::fmt::Debug for PresenceHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceHub")
            .field("ttl", &self.ttl)
            .field("cross_node", &self.transport.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for PresenceHub {
    fn default() -> Self {
        PresenceHub::new(DEFAULT_PRESENCE_TTL)
    }
}

impl PresenceHub {
    /// A node-local hub whose entries expire `ttl` after their last heartbeat.
    pub fn new(ttl: SignedDuration) -> PresenceHub {
        let (changes, _) = broadcast::channel(256);
        PresenceHub {
            ttl,
            tickets: Mutex::new(HashMap::new()),
            changes,
            transport: None,
        }
    }

    /// The same hub, sharing its changes with other nodes through `transport`.
    pub fn with_transport(mut self, transport: Arc<dyn PresenceTransport>) -> PresenceHub {
        self.transport = Some(transport);
        self
    }

    /// The ids of tickets whose presence changed, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<TicketId> {
        self.changes.subscribe()
    }

    /// Records a heartbeat (or a departure) of an agent of this node and tells the other
    /// nodes. Returns whether what others see changed.
    pub fn beat(&self, beat: PresenceBeat) -> bool {
        let changed = self.apply(&beat);
        if let Some(transport) = &self.transport {
            // Heartbeats that change nothing still travel: they keep remote entries alive.
            transport.publish(&beat);
        }
        changed
    }

    /// Applies a change received from another node.
    pub fn apply_remote(&self, beat: &PresenceBeat) -> bool {
        self.apply(beat)
    }

    fn apply(&self, beat: &PresenceBeat) -> bool {
        let changed = {
            let mut tickets = self
                .tickets
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let agents = tickets.entry(beat.ticket_id).or_default();
            Self::prune(agents, beat.at);
            let changed = match beat.activity {
                Some(activity) => {
                    let entry = Presence {
                        agent_id: beat.agent_id,
                        name: beat.name.clone(),
                        activity,
                        expires_at: beat.at.saturating_add(self.ttl).unwrap_or(beat.at),
                    };
                    agents.insert(beat.agent_id, entry).is_none_or(|before| {
                        before.activity != activity || before.name != beat.name
                    })
                }
                None => agents.remove(&beat.agent_id).is_some(),
            };
            if agents.is_empty() {
                tickets.remove(&beat.ticket_id);
            }
            changed
        };
        if changed {
            // Nobody listening is fine: pages also poll with their heartbeat.
            let _ = self.changes.send(beat.ticket_id);
        }
        changed
    }

    fn prune(agents: &mut HashMap<AgentId, Presence>, now: Timestamp) {
        agents.retain(|_, presence| presence.expires_at > now);
    }

    /// Who is on a ticket at `now`, replying first, then by name.
    pub fn present(&self, ticket_id: TicketId, now: Timestamp) -> Vec<Presence> {
        let mut tickets = self
            .tickets
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let Some(agents) = tickets.get_mut(&ticket_id) else {
            return Vec::new();
        };
        Self::prune(agents, now);
        let mut present: Vec<Presence> = agents.values().cloned().collect();
        if agents.is_empty() {
            tickets.remove(&ticket_id);
        }
        present.sort_by(|a, b| {
            b.activity
                .cmp(&a.activity)
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.agent_id.cmp(&b.agent_id))
        });
        present
    }

    /// Drops every expired entry and announces the tickets that lost someone, so open pages
    /// stop showing an agent whose browser went away without saying so.
    pub fn sweep(&self, now: Timestamp) -> Vec<TicketId> {
        let mut changed = Vec::new();
        {
            let mut tickets = self
                .tickets
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            tickets.retain(|ticket_id, agents| {
                let before = agents.len();
                Self::prune(agents, now);
                if agents.len() != before {
                    changed.push(*ticket_id);
                }
                !agents.is_empty()
            });
        }
        for ticket_id in &changed {
            let _ = self.changes.send(*ticket_id);
        }
        changed
    }
}

/// The signal topic of presence beats.
pub const PRESENCE_TOPIC: &str = "presence";

fn beat_to_json(beat: &PresenceBeat) -> serde_json::Value {
    serde_json::json!({
        "agent_id": beat.agent_id,
        "name": beat.name,
        "activity": beat.activity.map(Activity::as_str),
        "at": beat.at.to_string(),
    })
}

fn beat_from_signal(signal: &otklik_store::events::Signal) -> Option<PresenceBeat> {
    let data = &signal.data;
    Some(PresenceBeat {
        ticket_id: signal.ticket_id?,
        agent_id: serde_json::from_value(data.get("agent_id")?.clone()).ok()?,
        name: data.get("name")?.as_str()?.to_owned(),
        activity: match data.get("activity")? {
            serde_json::Value::Null => None,
            value => Some(Activity::parse(value.as_str()?)?),
        },
        at: data.get("at")?.as_str()?.parse().ok()?,
    })
}

/// Sends presence beats to every node as store signals.
pub struct SignalTransport {
    store: Arc<dyn otklik_store::Store>,
}

impl SignalTransport {
    /// A transport over the store's signals.
    pub fn new(store: Arc<dyn otklik_store::Store>) -> SignalTransport {
        SignalTransport { store }
    }
}

impl PresenceTransport for SignalTransport {
    fn publish(&self, beat: &PresenceBeat) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.store.clone();
        let signal = otklik_store::events::Signal {
            topic: PRESENCE_TOPIC.into(),
            ticket_id: Some(beat.ticket_id),
            data: beat_to_json(beat),
        };
        // Never block the page that beat: the send happens beside it.
        runtime.spawn(async move {
            if let Err(error) = store.publish_signal(signal).await {
                tracing::debug!(%error, "a presence beat did not reach the other nodes");
            }
        });
    }
}

/// Applies the presence beats of every node to `hub` until the store closes.
pub async fn relay_signals(hub: Arc<PresenceHub>, store: Arc<dyn otklik_store::Store>) {
    let mut signals = store.subscribe_signals();
    loop {
        match signals.recv().await {
            Ok(signal) if signal.topic == PRESENCE_TOPIC => {
                if let Some(beat) = beat_from_signal(&signal) {
                    hub.apply_remote(&beat);
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_survives_the_trip_through_a_signal() {
        for activity in [Some(Activity::Replying), None] {
            let beat = PresenceBeat {
                ticket_id: TicketId::new(),
                agent_id: AgentId::new(),
                name: "Анна".into(),
                activity,
                at: "2026-11-23T10:00:00Z".parse().unwrap(),
            };
            let signal = otklik_store::events::Signal {
                topic: PRESENCE_TOPIC.into(),
                ticket_id: Some(beat.ticket_id),
                data: beat_to_json(&beat),
            };
            assert_eq!(beat_from_signal(&signal), Some(beat));
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn beat(
        ticket_id: TicketId,
        agent_id: AgentId,
        activity: Option<Activity>,
        second: i64,
    ) -> PresenceBeat {
        PresenceBeat {
            ticket_id,
            agent_id,
            name: format!("agent {}", &agent_id.to_string()[..4]),
            activity,
            at: at(second),
        }
    }

    #[test]
    fn an_agent_is_present_until_the_time_to_live_passes_without_a_heartbeat() {
        let hub = PresenceHub::new(SignedDuration::from_secs(40));
        let (ticket, anna) = (TicketId::new(), AgentId::new());
        assert!(hub.beat(beat(ticket, anna, Some(Activity::Viewing), 0)));
        assert_eq!(hub.present(ticket, at(39)).len(), 1);
        assert!(hub.present(ticket, at(40)).is_empty(), "expired");
        assert!(hub.present(TicketId::new(), at(0)).is_empty());
    }

    #[test]
    fn only_real_changes_are_announced_and_a_refresh_is_silent() {
        let hub = PresenceHub::default();
        let mut changes = hub.subscribe();
        let (ticket, anna) = (TicketId::new(), AgentId::new());
        assert!(hub.beat(beat(ticket, anna, Some(Activity::Viewing), 0)));
        assert!(
            !hub.beat(beat(ticket, anna, Some(Activity::Viewing), 10)),
            "a refresh"
        );
        assert!(hub.beat(beat(ticket, anna, Some(Activity::Replying), 11)));
        assert!(hub.beat(beat(ticket, anna, None, 12)), "left");
        assert!(
            !hub.beat(beat(ticket, anna, None, 13)),
            "leaving twice changes nothing"
        );
        let mut announced = Vec::new();
        while let Ok(id) = changes.try_recv() {
            announced.push(id);
        }
        assert_eq!(announced, vec![ticket; 3]);
        assert!(hub.present(ticket, at(13)).is_empty());
    }

    #[test]
    fn repliers_are_listed_before_viewers() {
        let hub = PresenceHub::default();
        let ticket = TicketId::new();
        let (anna, boris) = (AgentId::new(), AgentId::new());
        hub.beat(beat(ticket, anna, Some(Activity::Viewing), 0));
        hub.beat(beat(ticket, boris, Some(Activity::Replying), 1));
        let present = hub.present(ticket, at(2));
        assert_eq!(
            present
                .iter()
                .map(|p| (p.agent_id, p.activity))
                .collect::<Vec<_>>(),
            vec![(boris, Activity::Replying), (anna, Activity::Viewing)]
        );
    }

    #[test]
    fn a_sweep_drops_expired_entries_and_announces_their_tickets() {
        let hub = PresenceHub::new(SignedDuration::from_secs(10));
        let (quiet, busy) = (TicketId::new(), TicketId::new());
        hub.beat(beat(quiet, AgentId::new(), Some(Activity::Viewing), 0));
        hub.beat(beat(busy, AgentId::new(), Some(Activity::Viewing), 8));
        let mut changes = hub.subscribe();
        assert_eq!(hub.sweep(at(12)), vec![quiet]);
        assert_eq!(changes.try_recv().ok(), Some(quiet));
        assert!(changes.try_recv().is_err());
        assert_eq!(hub.present(busy, at(12)).len(), 1);
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<PresenceBeat>>);

    impl PresenceTransport for Recorder {
        fn publish(&self, beat: &PresenceBeat) {
            self.0.lock().unwrap().push(beat.clone());
        }
    }

    #[test]
    fn local_beats_go_to_the_transport_and_remote_ones_are_applied_without_echo() {
        let transport = Arc::new(Recorder::default());
        let node_a = PresenceHub::default().with_transport(transport.clone());
        let node_b = PresenceHub::default();
        let (ticket, anna) = (TicketId::new(), AgentId::new());
        node_a.beat(beat(ticket, anna, Some(Activity::Replying), 0));
        node_a.beat(beat(ticket, anna, Some(Activity::Replying), 5));
        let sent = transport.0.lock().unwrap().clone();
        assert_eq!(
            sent.len(),
            2,
            "refreshes travel too, keeping remote entries alive"
        );
        for beat in &sent {
            node_b.apply_remote(beat);
        }
        assert_eq!(
            node_b.present(ticket, at(6))[0].activity,
            Activity::Replying
        );
        assert_eq!(
            transport.0.lock().unwrap().len(),
            2,
            "applying does not publish again"
        );
    }
}
