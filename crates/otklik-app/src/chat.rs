//! Live chat use cases: chat sites (admin), visitors and their conversations (the widget),
//! agents' availability, the queue, routing, transfers, typing and read marks.
//!
//! A chat is a ticket of channel `chat` plus a `Chat` row that carries the live state and a
//! gap-free sequence of the entries the visitor sees. Every change of a chat is one unit of
//! work with the ticket change, the entry and the audit event, so the widget, the workspace and
//! the API never disagree. Visitors are not principals: they act through a [`VisitorSession`]
//! obtained from their token, and reach only their own chats.

mod agents;
mod conversation;
mod lifecycle;
mod routing;
mod sites;
mod transcript;
mod visitors;

use std::collections::HashMap;

use otklik_domain::attachment::AttachmentMeta;
use otklik_domain::chat::{Chat, ChatSite, ChatState, QueuePosition, Visitor, WaitingChat};
use otklik_domain::ids::{AgentId, MessageId, TicketId};
use otklik_domain::message::Author;
use otklik_store::{ChatEntry, ChatEntryKind, ChatQuery};

pub use agents::{ChatQueue, SetAvailabilityInput, TransferTarget};
pub use conversation::{StartChatInput, VisitorMessageInput};
pub use sites::ChatSiteInput;
pub use visitors::{IdentityClaim, identity_signature_is_valid, sign_identity};

use crate::{App, AppError, AppResult};

/// The signal topic of typing indicators.
pub const TYPING_TOPIC: &str = "typing";

/// A visitor, authenticated by their token, and their site.
#[derive(Debug, Clone)]
pub struct VisitorSession {
    pub visitor: Visitor,
    pub site: ChatSite,
}

/// A chat as the widget and the workspace show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSummary {
    pub chat: Chat,
    /// The ticket number.
    pub number: i64,
    pub agent_name: Option<String>,
    /// Where it waits, while queued.
    pub queue: Option<QueuePosition>,
}

/// Who wrote an entry, as the visitor may know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryAuthor {
    Visitor,
    Agent { name: String },
    System,
}

/// One entry of a chat with what it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView {
    pub entry: ChatEntry,
    pub author: EntryAuthor,
    pub body: Option<String>,
    pub attachments: Vec<AttachmentMeta>,
}

/// Entries returned per page of `entries?after=`.
pub const ENTRIES_PAGE: u32 = 200;

impl App {
    /// The chat of a ticket together with its display data.
    pub(crate) async fn chat_summary(&self, chat: Chat) -> AppResult<ChatSummary> {
        let number = self
            .store
            .find_ticket(chat.ticket_id)
            .await?
            .map_or(0, |ticket| ticket.number);
        let agent_name = match chat.agent_id {
            Some(agent_id) => self.store.find_agent(agent_id).await?.map(|a| a.name),
            None => None,
        };
        let queue = if chat.state == ChatState::Queued {
            // Counted by the database, so a long queue costs one indexed count per chat.
            let ahead = self.store.count_queued_chats_before(&chat).await?;
            Some(QueuePosition {
                position: usize::try_from(ahead).unwrap_or(0) + 1,
                waiting: self
                    .clock
                    .now()
                    .duration_since(chat.queued_at)
                    .max(jiff::SignedDuration::ZERO),
            })
        } else {
            None
        };
        Ok(ChatSummary {
            chat,
            number,
            agent_name,
            queue,
        })
    }

    /// Every queued chat, as routing sees them.
    pub(crate) async fn waiting_chats(&self) -> AppResult<Vec<WaitingChat>> {
        let queued = self
            .store
            .list_chats(&ChatQuery {
                states: vec![ChatState::Queued],
                ..ChatQuery::default()
            })
            .await?;
        Ok(queued
            .into_iter()
            .map(|chat| WaitingChat {
                ticket_id: chat.ticket_id,
                team_id: chat.team_id,
                language: chat.language,
                queued_at: chat.queued_at,
            })
            .collect())
    }

    /// Resolves entries to what they show: message bodies, attachments, authors' names.
    pub(crate) async fn entry_views(
        &self,
        ticket_id: TicketId,
        entries: Vec<ChatEntry>,
    ) -> AppResult<Vec<EntryView>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<MessageId> = entries
            .iter()
            .filter_map(|entry| match entry.kind {
                ChatEntryKind::Message(message_id) => Some(message_id),
                ChatEntryKind::Event { .. } => None,
            })
            .collect();
        let mut messages = HashMap::new();
        if !wanted.is_empty() {
            for message in self.store.list_messages(ticket_id).await? {
                if wanted.contains(&message.id) {
                    messages.insert(message.id, message);
                }
            }
        }
        let mut names: HashMap<AgentId, String> = HashMap::new();
        let mut views = Vec::with_capacity(entries.len());
        for entry in entries {
            let view = match &entry.kind {
                ChatEntryKind::Message(message_id) => match messages.get(message_id) {
                    Some(message) => {
                        let author = match message.author {
                            Author::Customer(_) => EntryAuthor::Visitor,
                            Author::System => EntryAuthor::System,
                            Author::Agent(agent_id) => EntryAuthor::Agent {
                                name: self.agent_name(&mut names, agent_id).await?,
                            },
                        };
                        EntryView {
                            author,
                            body: Some(message.body.clone()),
                            attachments: message.attachments.clone(),
                            entry,
                        }
                    }
                    // The message moved away with a ticket merge: keep the numbering intact.
                    None => EntryView {
                        author: EntryAuthor::System,
                        body: None,
                        attachments: Vec::new(),
                        entry,
                    },
                },
                ChatEntryKind::Event { .. } => EntryView {
                    author: EntryAuthor::System,
                    body: None,
                    attachments: Vec::new(),
                    entry,
                },
            };
            views.push(view);
        }
        Ok(views)
    }

    async fn agent_name(
        &self,
        names: &mut HashMap<AgentId, String>,
        agent_id: AgentId,
    ) -> AppResult<String> {
        if let Some(name) = names.get(&agent_id) {
            return Ok(name.clone());
        }
        let name = self
            .store
            .find_agent(agent_id)
            .await?
            .map_or_else(String::new, |agent| agent.name);
        names.insert(agent_id, name.clone());
        Ok(name)
    }

    /// Moves one side's read mark forward to `seq` (never back, never past the last entry).
    pub(crate) async fn save_read_mark(
        &self,
        ticket_id: TicketId,
        seq: i64,
        mark: fn(&mut Chat) -> &mut i64,
    ) -> AppResult<()> {
        for _ in 0..crate::MAX_ATTEMPTS {
            let mut chat = self.existing_chat(ticket_id).await?;
            let seq = seq.min(chat.last_seq);
            if seq <= *mark(&mut chat) {
                return Ok(());
            }
            let expected_version = chat.version;
            *mark(&mut chat) = seq;
            match self
                .store
                .commit(
                    otklik_store::UnitOfWork::new().with(otklik_store::Mutation::UpdateChat {
                        chat,
                        expected_version,
                    }),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(otklik_store::StoreError::VersionConflict { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        // Read marks only move forward: losing this race to a later mark loses nothing.
        Ok(())
    }

    /// The chat of a ticket, or "not found".
    pub(crate) async fn existing_chat(&self, ticket_id: TicketId) -> AppResult<Chat> {
        self.store
            .find_chat(ticket_id)
            .await?
            .ok_or(AppError::NotFound { what: "chat" })
    }
}

/// An event entry (the visitor's widget shows it in their language).
pub(crate) fn event_entry(
    chat: &mut Chat,
    code: &str,
    agent_name: Option<String>,
    at: jiff::Timestamp,
) -> ChatEntry {
    ChatEntry {
        ticket_id: chat.ticket_id,
        seq: chat.next_seq(),
        kind: ChatEntryKind::Event {
            code: code.to_owned(),
            agent_name,
        },
        client_id: None,
        created_at: at,
    }
}

/// A message entry.
pub(crate) fn message_entry(
    chat: &mut Chat,
    message_id: MessageId,
    client_id: Option<String>,
    at: jiff::Timestamp,
) -> ChatEntry {
    ChatEntry {
        ticket_id: chat.ticket_id,
        seq: chat.next_seq(),
        kind: ChatEntryKind::Message(message_id),
        client_id,
        created_at: at,
    }
}
