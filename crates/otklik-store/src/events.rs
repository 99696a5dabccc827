//! Change events: after a unit of work commits, the store announces which tickets changed so
//! live views (agents' screens, API subscribers) refetch them. Events carry ids only — never
//! content — so announcing them can leak nothing, and subscribers check visibility themselves.
//!
//! On SQLite (one node) the writer thread announces after its group commit. On PostgreSQL the
//! announcement is a `pg_notify` inside the writing transaction, delivered to every node's
//! `LISTEN` connection only if the transaction commits. Announcements are not durable: a
//! subscriber that falls behind or reconnects receives [`ChangeKind::Resync`] and refetches.

use otklik_domain::ids::TicketId;
use serde::{Deserialize, Serialize};

use crate::{Mutation, UnitOfWork};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    TicketCreated,
    TicketUpdated,
    MessageAdded,
    /// A chat changed: state, agent, a new entry, read marks.
    ChatUpdated,
    /// An agent's chat availability changed (no ticket): routing may have work.
    AvailabilityChanged,
    /// Events may have been missed: refetch whatever is on screen.
    Resync,
}

impl ChangeKind {
    /// The SSE event name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::TicketCreated => "ticket.created",
            ChangeKind::TicketUpdated => "ticket.updated",
            ChangeKind::MessageAdded => "message.added",
            ChangeKind::ChatUpdated => "chat.updated",
            ChangeKind::AvailabilityChanged => "chat.availability",
            ChangeKind::Resync => "resync",
        }
    }
}

/// One change, announced after commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeEvent {
    pub kind: ChangeKind,
    /// The ticket concerned; absent for `resync`.
    pub ticket_id: Option<TicketId>,
}

impl ChangeEvent {
    /// The event that tells subscribers to refetch everything.
    pub fn resync() -> Self {
        ChangeEvent {
            kind: ChangeKind::Resync,
            ticket_id: None,
        }
    }
}

/// How many events a slow subscriber may fall behind before it gets a resync.
pub const EVENT_BUFFER: usize = 4096;

/// The events a committed unit announces, in order, without repeats.
pub fn events_of(unit: &UnitOfWork) -> Vec<ChangeEvent> {
    let mut events: Vec<ChangeEvent> = Vec::new();
    // A set, not `events.contains`: an imported batch holds thousands of tickets.
    let mut seen = std::collections::HashSet::new();
    let mut availability_changed = false;
    let mut push = |kind: ChangeKind, ticket_id: TicketId| {
        let event = ChangeEvent {
            kind,
            ticket_id: Some(ticket_id),
        };
        if seen.insert(event) {
            events.push(event);
        }
    };
    for mutation in &unit.mutations {
        match mutation {
            Mutation::InsertTicket(ticket) => push(ChangeKind::TicketCreated, ticket.id),
            Mutation::ImportTicket(ticket) => push(ChangeKind::TicketCreated, ticket.id),
            Mutation::UpdateTicket { ticket, .. } => push(ChangeKind::TicketUpdated, ticket.id),
            Mutation::InsertMessage(message) => push(ChangeKind::MessageAdded, message.ticket_id),
            Mutation::MoveMessages { from, to } => {
                push(ChangeKind::TicketUpdated, *from);
                push(ChangeKind::TicketUpdated, *to);
            }
            Mutation::MoveTickets { ticket_ids, .. } => {
                for ticket_id in ticket_ids {
                    push(ChangeKind::TicketUpdated, *ticket_id);
                }
            }
            Mutation::InsertChat(chat) => push(ChangeKind::ChatUpdated, chat.ticket_id),
            Mutation::UpdateChat { chat, .. } => push(ChangeKind::ChatUpdated, chat.ticket_id),
            Mutation::InsertChatEntry(entry) => push(ChangeKind::ChatUpdated, entry.ticket_id),
            Mutation::SetAgentChatStatus(_)
            | Mutation::ReserveChatSlot { .. }
            | Mutation::ReleaseChatSlot { .. } => availability_changed = true,
            // Delivery status of a reply changed (sent, failed, retried).
            Mutation::UpdateEmail(email) => {
                if let Some(ticket_id) = email.ticket_id {
                    push(ChangeKind::TicketUpdated, ticket_id);
                }
            }
            _ => {}
        }
    }
    if availability_changed {
        events.push(ChangeEvent {
            kind: ChangeKind::AvailabilityChanged,
            ticket_id: None,
        });
    }
    events
}

/// The largest serialised signal: PostgreSQL refuses notifications of 8,000 bytes or more.
pub const MAX_SIGNAL_BYTES: usize = 7_000;

/// A short-lived signal between nodes: someone is typing, an agent is viewing a ticket. Unlike
/// change events it may carry small data (a name, a flag), never customer content, and it is
/// neither stored nor transactional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// What the signal is about, for subscribers to pick theirs: `typing`, `presence`.
    pub topic: String,
    pub ticket_id: Option<TicketId>,
    pub data: serde_json::Value,
}

/// The JSON a signal travels as, refused when it is larger than [`MAX_SIGNAL_BYTES`]. Every
/// backend applies this rule, so a signal that is published on one is published on all.
pub fn signal_payload(signal: &Signal) -> crate::StoreResult<String> {
    let payload = serde_json::to_string(signal).map_err(crate::StoreError::database)?;
    if payload.len() > MAX_SIGNAL_BYTES {
        return Err(crate::StoreError::corrupt(format!(
            "a {}-byte signal on topic {:?} is larger than the {MAX_SIGNAL_BYTES} bytes allowed",
            payload.len(),
            signal.topic
        )));
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_round_trips_through_json_with_stable_names() {
        let event = ChangeEvent {
            kind: ChangeKind::MessageAdded,
            ticket_id: Some(TicketId::new()),
        };
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains("\"message_added\""), "{json}");
        assert_eq!(serde_json::from_str::<ChangeEvent>(&json).unwrap(), event);
    }

    #[test]
    fn a_signal_travels_as_json_up_to_the_size_postgresql_allows() {
        let signal = Signal {
            topic: "typing".into(),
            ticket_id: Some(TicketId::new()),
            data: serde_json::json!({ "name": "Анна" }),
        };
        let payload = signal_payload(&signal).unwrap();
        assert_eq!(serde_json::from_str::<Signal>(&payload).unwrap(), signal);
        let oversized = Signal {
            data: serde_json::Value::String("x".repeat(MAX_SIGNAL_BYTES)),
            ..signal
        };
        assert!(signal_payload(&oversized).is_err());
    }
}
