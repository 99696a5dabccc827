//! The agent's side of chats: availability and capacity, the queue, accepting, transferring,
//! ending, typing and read marks, and what an agent's reply does to a chat.

use otklik_domain::DomainError;
use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::chat::{AgentChatStatus, Availability, Chat, ChatState};
use otklik_domain::ids::{AgentId, TeamId, TicketId};
use otklik_domain::message::Message;
use otklik_domain::permission::{Action, Principal};
use otklik_domain::ticket::{Ticket, TicketStatus};
use otklik_store::{ChatQuery, Mutation, UnitOfWork};

use super::lifecycle::Step;
use super::{ChatSummary, TYPING_TOPIC, event_entry, message_entry};
use crate::{App, AppError, AppResult};

/// What an agent sets about taking chats.
#[derive(Debug, Clone)]
pub struct SetAvailabilityInput {
    pub availability: Availability,
    pub max_chats: u16,
    /// `ru`, `en`; empty for any.
    pub languages: Vec<String>,
}

/// Where a chat is handed over to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferTarget {
    Agent(AgentId),
    /// Back to the queue, for this team's agents.
    Team(TeamId),
}

/// The chats an agent works with: the queue they may take from and their own.
#[derive(Debug, Clone)]
pub struct ChatQueue {
    pub status: AgentChatStatus,
    pub waiting: Vec<ChatSummary>,
    pub mine: Vec<ChatSummary>,
}

/// What an agent's public reply changes in a chat, added to the reply's unit.
pub(crate) struct ChatReply {
    pub mutations: Vec<Mutation>,
    /// The chat is over: the reply goes to the customer by e-mail, from this site's mailbox
    /// (or any, when the site names none).
    pub by_email_via: Option<Option<otklik_domain::ids::MailboxId>>,
}

impl App {
    /// The caller's chat availability (offline with the default maximum if never set).
    pub async fn chat_status(&self, principal: &Principal) -> AppResult<AgentChatStatus> {
        principal.require(Action::ReadTickets)?;
        Ok(self
            .store
            .find_agent_chat_status(principal.agent_id)
            .await?
            .unwrap_or_else(|| AgentChatStatus::offline(principal.agent_id, self.clock.now())))
    }

    /// Sets the caller's availability. Going offline hands the caller's live chats back to the
    /// queue (keeping their place), so no visitor waits on someone who left.
    pub async fn set_chat_availability(
        &self,
        principal: &Principal,
        input: SetAvailabilityInput,
    ) -> AppResult<AgentChatStatus> {
        principal.require(Action::WriteTickets)?;
        let mut status = self.chat_status(principal).await?;
        status.max_chats = AgentChatStatus::parse_max_chats(input.max_chats)?;
        let mut languages = Vec::new();
        for language in input.languages {
            let language = language.trim().to_ascii_lowercase();
            if !matches!(language.as_str(), "ru" | "en") {
                return Err(DomainError::invalid("languages", "use ru and/or en").into());
            }
            if !languages.contains(&language) {
                languages.push(language);
            }
        }
        status.languages = languages;
        status.availability = input.availability;
        let now = self.clock.now();
        status.updated_at = now;
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::SetAgentChatStatus(status.clone()))
                    .with(Mutation::Audit(AuditEvent::new(
                        now,
                        Actor::Agent(principal.agent_id),
                        "agent.chat_availability",
                        "agent",
                        principal.agent_id.0,
                        vec![
                            set("availability", status.availability),
                            set("max_chats", i64::from(status.max_chats)),
                        ],
                    ))),
            )
            .await?;
        if status.availability == Availability::Offline {
            let live = self
                .store
                .list_chats(&ChatQuery {
                    states: vec![ChatState::Active],
                    agent_id: Some(principal.agent_id),
                    ..ChatQuery::default()
                })
                .await?;
            for chat in live {
                if let Err(error) = self
                    .requeue_chat(chat.ticket_id, None, Actor::Agent(principal.agent_id))
                    .await
                {
                    tracing::warn!(%error, ticket_id = %chat.ticket_id, "could not requeue a chat");
                }
            }
        }
        if let Err(error) = self.route_chats().await {
            tracing::warn!(%error, "routing after an availability change failed");
        }
        self.chat_status(principal).await
    }

    /// The queue the caller may take from (chats of tickets they may see) and their own chats.
    pub async fn chat_queue(&self, principal: &Principal) -> AppResult<ChatQueue> {
        principal.require(Action::ReadTickets)?;
        let status = self.chat_status(principal).await?;
        let queued = self
            .store
            .list_chats(&ChatQuery {
                states: vec![ChatState::Queued],
                ..ChatQuery::default()
            })
            .await?;
        let mut waiting = Vec::new();
        for chat in queued {
            if let Some(ticket) = self.store.find_ticket(chat.ticket_id).await?
                && principal.can_view_ticket(&ticket)
            {
                waiting.push(self.chat_summary(chat).await?);
            }
        }
        let own = self
            .store
            .list_chats(&ChatQuery {
                states: vec![ChatState::Active],
                agent_id: Some(principal.agent_id),
                ..ChatQuery::default()
            })
            .await?;
        let mut mine = Vec::new();
        for chat in own {
            mine.push(self.chat_summary(chat).await?);
        }
        Ok(ChatQueue {
            status,
            waiting,
            mine,
        })
    }

    /// The chat of a ticket the caller may see.
    pub async fn get_chat(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
    ) -> AppResult<ChatSummary> {
        principal.require(Action::ReadTickets)?;
        self.visible_chat_ticket(principal, ticket_id).await?;
        let chat = self.existing_chat(ticket_id).await?;
        self.chat_summary(chat).await
    }

    async fn visible_chat_ticket(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
    ) -> AppResult<Ticket> {
        match self.store.find_ticket(ticket_id).await? {
            Some(ticket) if principal.can_view_ticket(&ticket) => Ok(ticket),
            _ => Err(AppError::NotFound { what: "chat" }),
        }
    }

    /// The caller takes a waiting chat.
    pub async fn accept_chat(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
    ) -> AppResult<ChatSummary> {
        principal.require(Action::WriteTickets)?;
        self.visible_chat_ticket(principal, ticket_id).await?;
        self.assign_chat(
            ticket_id,
            principal.agent_id,
            Actor::Agent(principal.agent_id),
        )
        .await?;
        self.get_chat(principal, ticket_id).await
    }

    /// Hands a live chat to another agent (who must be online with free capacity) or back to
    /// the queue of a team.
    pub async fn transfer_chat(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
        target: TransferTarget,
    ) -> AppResult<ChatSummary> {
        principal.require(Action::WriteTickets)?;
        self.visible_chat_ticket(principal, ticket_id).await?;
        let actor = Actor::Agent(principal.agent_id);
        match target {
            TransferTarget::Team(team_id) => {
                if self.store.find_team(team_id).await?.is_none() {
                    return Err(AppError::InvalidReference {
                        field: "team_id",
                        reason: format!("no team {team_id}"),
                    });
                }
                self.requeue_chat(ticket_id, Some(team_id), actor).await?;
                if let Err(error) = self.route_chats().await {
                    tracing::warn!(%error, "routing after a transfer failed");
                }
            }
            TransferTarget::Agent(agent_id) => {
                self.transfer_to_agent(ticket_id, agent_id, actor).await?;
            }
        }
        // The caller saw the chat when handing it over; they may no longer see its ticket now.
        self.chat_summary(self.existing_chat(ticket_id).await?)
            .await
    }

    async fn transfer_to_agent(
        &self,
        ticket_id: TicketId,
        agent_id: AgentId,
        actor: Actor,
    ) -> AppResult<()> {
        let agent = self
            .store
            .find_agent(agent_id)
            .await?
            .filter(|agent| agent.active)
            .ok_or(AppError::InvalidReference {
                field: "agent_id",
                reason: format!("no active agent {agent_id}"),
            })?;
        self.step_chat(ticket_id, actor, "chat.transferred", |chat, ticket, now| {
            chat.transfer_to_agent(agent_id)?;
            chat.accepted_at.get_or_insert(now);
            ticket.assignee_id = Some(agent_id);
            if ticket.status == TicketStatus::New {
                ticket.transition(TicketStatus::Open, now)?;
            }
            Ok(Step {
                event: "transferred",
                agent_name: Some(agent.name.clone()),
                extra_changes: Vec::new(),
            })
        })
        .await?;
        Ok(())
    }

    /// Puts a live chat back in the queue (of `team_id` when given), releasing its agent.
    async fn requeue_chat(
        &self,
        ticket_id: TicketId,
        team_id: Option<TeamId>,
        actor: Actor,
    ) -> AppResult<()> {
        self.step_chat(ticket_id, actor, "chat.requeued", |chat, ticket, _| {
            let team_id = match team_id.or(chat.team_id) {
                Some(team_id) => {
                    chat.transfer_to_team(team_id)?;
                    Some(team_id)
                }
                None => {
                    chat.requeue()?;
                    None
                }
            };
            ticket.team_id = team_id.or(ticket.team_id);
            ticket.assignee_id = None;
            Ok(Step {
                event: "queued",
                agent_name: None,
                extra_changes: Vec::new(),
            })
        })
        .await?;
        Ok(())
    }

    /// The caller ends a chat.
    pub async fn end_chat(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
    ) -> AppResult<ChatSummary> {
        principal.require(Action::WriteTickets)?;
        self.visible_chat_ticket(principal, ticket_id).await?;
        self.finish_chat(ticket_id, Actor::Agent(principal.agent_id), "agent")
            .await?;
        self.get_chat(principal, ticket_id).await
    }

    /// Ends a chat: its agent is released, the ticket solved, the visitor told.
    pub(crate) async fn finish_chat(
        &self,
        ticket_id: TicketId,
        actor: Actor,
        by: &'static str,
    ) -> AppResult<()> {
        let released = self
            .step_chat(ticket_id, actor, "chat.ended", |chat, ticket, now| {
                chat.end(now)?;
                if matches!(
                    ticket.status,
                    TicketStatus::New
                        | TicketStatus::Open
                        | TicketStatus::Pending
                        | TicketStatus::OnHold
                ) {
                    ticket.transition(TicketStatus::Solved, now)?;
                }
                Ok(Step {
                    event: "ended",
                    agent_name: None,
                    extra_changes: vec![set("ended_by", by)],
                })
            })
            .await?;
        // A freed slot may take the next waiting chat.
        if released.is_some()
            && let Err(error) = self.route_chats().await
        {
            tracing::warn!(%error, "routing after an ended chat failed");
        }
        Ok(())
    }

    /// The caller is (or stopped) typing in a chat: the visitor sees it live.
    pub async fn agent_chat_typing(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
        typing: bool,
    ) -> AppResult<()> {
        principal.require(Action::WriteTickets)?;
        self.visible_chat_ticket(principal, ticket_id).await?;
        let name = self
            .store
            .find_agent(principal.agent_id)
            .await?
            .map(|agent| agent.name)
            .unwrap_or_default();
        self.store
            .publish_signal(otklik_store::events::Signal {
                topic: TYPING_TOPIC.into(),
                ticket_id: Some(ticket_id),
                data: serde_json::json!({
                    "by": "agent",
                    "agent_id": principal.agent_id,
                    "agent_name": name,
                    "typing": typing,
                }),
            })
            .await?;
        Ok(())
    }

    /// The agents have seen the chat up to `seq` (the visitor's widget shows "read").
    pub async fn agent_chat_read(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
        seq: i64,
    ) -> AppResult<()> {
        principal.require(Action::WriteTickets)?;
        self.visible_chat_ticket(principal, ticket_id).await?;
        self.save_read_mark(ticket_id, seq, |chat| &mut chat.agent_read_seq)
            .await
    }

    /// What an agent's public reply on a chat ticket adds to its unit: the reply becomes the
    /// next entry the visitor sees (a queued chat is taken by the replying agent, within their
    /// capacity); a chat that is over is answered by e-mail.
    pub(crate) async fn chat_reply(
        &self,
        principal: &Principal,
        chat: Option<Chat>,
        ticket: &mut Ticket,
        message: &Message,
    ) -> AppResult<Option<ChatReply>> {
        let Some(mut chat) = chat else {
            return Ok(None);
        };
        let expected_version = chat.version;
        let now = message.created_at;
        let mut mutations = Vec::new();
        if chat.state == ChatState::Queued {
            let name = self
                .store
                .find_agent(principal.agent_id)
                .await?
                .map(|agent| agent.name);
            chat.accept(principal.agent_id, now)?;
            ticket.assignee_id = Some(principal.agent_id);
            mutations.push(Mutation::ReserveChatSlot {
                agent_id: principal.agent_id,
                at: now,
            });
            mutations.push(Mutation::InsertChatEntry(event_entry(
                &mut chat,
                "agent_joined",
                name,
                now,
            )));
        }
        chat.first_agent_message_at.get_or_insert(now);
        let entry = message_entry(&mut chat, message.id, None, now);
        // The agent answered everything before their reply.
        chat.agent_read_seq = chat.last_seq;
        let by_email_via = match chat.state {
            ChatState::Ended | ChatState::Offline => {
                let site = self.store.find_chat_site(chat.site_id).await?;
                Some(site.and_then(|site| site.mailbox_id))
            }
            ChatState::Queued | ChatState::Active => None,
        };
        mutations.push(Mutation::UpdateChat {
            chat,
            expected_version,
        });
        mutations.push(Mutation::InsertChatEntry(entry));
        Ok(Some(ChatReply {
            mutations,
            by_email_via,
        }))
    }
}
