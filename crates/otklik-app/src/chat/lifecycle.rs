//! One step of a chat's life (taken, transferred, queued again, ended), applied the same way
//! whoever takes it: one unit with the chat, its ticket, the event the visitor sees, the audit
//! event and the agents' chat slots.
//!
//! A slot belongs to whoever has the chat while it is active. When a step changes that holder,
//! the old holder's slot is released and the new holder's reserved in the same unit; the
//! store refuses the reservation when the new holder is not online with room, so capacity
//! holds however steps race.

use otklik_domain::audit::{Actor, AuditEvent, FieldChange};
use otklik_domain::chat::{Chat, ChatState};
use otklik_domain::ids::{AgentId, TicketId};
use otklik_domain::ticket::{Ticket, diff};
use otklik_store::{Mutation, StoreError, UnitOfWork};

use super::event_entry;
use crate::{App, AppError, AppResult, MAX_ATTEMPTS};

/// What a step did, as the step function reports it.
pub(super) struct Step {
    /// The event entry the visitor sees: `agent_joined`, `transferred`, `queued`, `ended`.
    pub event: &'static str,
    /// The agent the event names (and who could not take the chat, if the store refuses).
    pub agent_name: Option<String>,
    /// Audit changes beyond the ticket's own.
    pub extra_changes: Vec<FieldChange>,
}

/// Who holds a slot for this chat.
fn holder(chat: &Chat) -> Option<AgentId> {
    match chat.state {
        ChatState::Active => chat.agent_id,
        ChatState::Queued | ChatState::Ended | ChatState::Offline => None,
    }
}

impl App {
    /// Applies `step` to the freshly loaded chat and ticket of `ticket_id` and commits it,
    /// retrying when someone changed either meanwhile. Returns the agent whose slot was freed.
    pub(super) async fn step_chat(
        &self,
        ticket_id: TicketId,
        actor: Actor,
        action: &'static str,
        step: impl Fn(&mut Chat, &mut Ticket, jiff::Timestamp) -> AppResult<Step>,
    ) -> AppResult<Option<AgentId>> {
        for _ in 0..MAX_ATTEMPTS {
            let mut chat = self.existing_chat(ticket_id).await?;
            let mut ticket = self
                .store
                .find_ticket(ticket_id)
                .await?
                .ok_or(AppError::NotFound { what: "ticket" })?;
            let (expected_chat, before) = (chat.version, ticket.clone());
            let previous = holder(&chat);
            let now = self.clock.now();
            let done = step(&mut chat, &mut ticket, now)?;
            ticket.updated_at = now;
            let next = holder(&chat);
            let mut unit = UnitOfWork::new();
            let released = if previous == next { None } else { previous };
            if let Some(agent_id) = released {
                unit.push(Mutation::ReleaseChatSlot { agent_id });
            }
            if let Some(agent_id) = next.filter(|next| previous != Some(*next)) {
                unit.push(Mutation::ReserveChatSlot { agent_id, at: now });
            }
            let entry = event_entry(&mut chat, done.event, done.agent_name.clone(), now);
            let mut changes = diff(&before, &ticket);
            changes.extend(done.extra_changes);
            unit.push(Mutation::UpdateChat {
                chat,
                expected_version: expected_chat,
            });
            unit.push(Mutation::UpdateTicket {
                ticket,
                expected_version: before.version,
            });
            unit.push(Mutation::InsertChatEntry(entry));
            unit.push(Mutation::Audit(AuditEvent::new(
                now,
                actor,
                action,
                "ticket",
                ticket_id.0,
                changes,
            )));
            match self.store.commit(unit).await {
                Ok(_) => return Ok(released),
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(StoreError::Conflict { constraint })
                    if constraint == "agent_chat_status.capacity" =>
                {
                    return Err(AppError::Conflict {
                        code: "chat_capacity",
                        message: format!(
                            "{} is not online or already has the most chats they take",
                            done.agent_name.as_deref().unwrap_or("the agent")
                        ),
                    });
                }
                // Two entries raced for one number: the chat's version moved too; reload.
                Err(StoreError::Conflict { constraint }) if constraint == "chat_entries.seq" => {
                    continue;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(AppError::Conflict {
            code: "concurrent_update",
            message: "the chat is busy; retry".into(),
        })
    }
}
