//! The visitor's side of a chat: start it, write, attach, read, type, end.

use otklik_domain::DomainError;
use otklik_domain::attachment::AttachmentMeta;
use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::chat::{Chat, ChatState, PreChatAnswers, parse_client_id};
use otklik_domain::customer::{Identity, IdentityKind, IdentityValue, parse_person_name};
use otklik_domain::ids::{AttachmentId, CustomerId, IdentityId, MessageId, TicketId};
use otklik_domain::message::{Author, Message, MessageVisibility, parse_body};
use otklik_domain::ticket::{Channel, NewTicket, Priority, TicketStatus, parse_subject};
use otklik_store::{ChatEntry, ChatQuery, Mutation, StoreError, UnitOfWork};

use super::{
    ChatSummary, ENTRIES_PAGE, EntryView, TYPING_TOPIC, VisitorSession, event_entry, message_entry,
};
use crate::tickets::NewAttachment;
use crate::{App, AppError, AppResult, MAX_ATTEMPTS};

/// The visitor's first message and pre-chat answers.
#[derive(Debug, Clone, Default)]
pub struct StartChatInput {
    pub client_id: String,
    pub body: String,
    pub answers: PreChatAnswers,
    /// The widget's language (`ru`, `en`).
    pub language: Option<String>,
}

/// A message from the visitor: text, or one file (with optional text).
#[derive(Debug, Clone, Default)]
pub struct VisitorMessageInput {
    pub client_id: String,
    pub body: String,
    pub attachment: Option<NewAttachment>,
}

/// Content types a visitor may send.
const VISITOR_FILE_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "application/pdf",
];

/// The subject of a chat ticket: the first line of the first message, shortened.
fn chat_subject(body: &str) -> String {
    let line = body
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("Chat");
    let mut subject: String = line.chars().take(80).collect();
    if line.chars().count() > 80 {
        subject.push('…');
    }
    subject
}

fn parse_language(language: Option<String>) -> Option<String> {
    let language = language?.trim().to_ascii_lowercase();
    let primary = language.split(['-', '_']).next().unwrap_or_default();
    matches!(primary, "ru" | "en").then(|| primary.to_owned())
}

impl App {
    /// The visitor's chat that is live (queued or active) or, failing that, their newest one.
    async fn visitor_chats(&self, session: &VisitorSession) -> AppResult<Vec<Chat>> {
        Ok(self
            .store
            .list_chats(&ChatQuery {
                visitor_id: Some(session.visitor.id),
                ..ChatQuery::default()
            })
            .await?)
    }

    /// A chat of this visitor; another visitor's chat is "not found".
    pub(crate) async fn visitor_chat(
        &self,
        session: &VisitorSession,
        ticket_id: TicketId,
    ) -> AppResult<Chat> {
        match self.store.find_chat(ticket_id).await? {
            Some(chat) if chat.visitor_id == session.visitor.id => Ok(chat),
            _ => Err(AppError::NotFound { what: "chat" }),
        }
    }

    /// The visitor's live chat, if any, and their earlier chats, newest first (at most 20).
    pub async fn visitor_state(
        &self,
        session: &VisitorSession,
    ) -> AppResult<(Option<ChatSummary>, Vec<ChatSummary>)> {
        let mut chats = self.visitor_chats(session).await?;
        chats.reverse();
        let mut live = None;
        let mut history = Vec::new();
        for chat in chats {
            if live.is_none() && chat.is_live() {
                live = Some(self.chat_summary(chat).await?);
            } else if history.len() < 20 {
                history.push(self.chat_summary(chat).await?);
            }
        }
        Ok((live, history))
    }

    /// The entries of a visitor's chat numbered above `after`.
    pub async fn visitor_entries(
        &self,
        session: &VisitorSession,
        ticket_id: TicketId,
        after: i64,
    ) -> AppResult<(ChatSummary, Vec<EntryView>)> {
        let chat = self.visitor_chat(session, ticket_id).await?;
        let entries = self
            .store
            .list_chat_entries(ticket_id, after.max(0), ENTRIES_PAGE)
            .await?;
        let views = self.entry_views(ticket_id, entries).await?;
        Ok((self.chat_summary(chat).await?, views))
    }

    /// Starts a chat with the visitor's first message, or adds the message to their live chat.
    /// When nobody can answer (outside working hours, nobody online) the chat is left as an
    /// offline message, answered by e-mail, and the e-mail address is required.
    pub async fn start_chat(
        &self,
        session: &VisitorSession,
        input: StartChatInput,
    ) -> AppResult<(ChatSummary, EntryView, bool)> {
        let client_id = parse_client_id(&input.client_id)?;
        let body = parse_body(&input.body)?;
        // A resend of a message that did start a chat (the answer was lost) finds it.
        let chats = self.visitor_chats(session).await?;
        for chat in chats.iter().rev() {
            if let Some(entry) = self
                .store
                .find_chat_entry_by_client_id(chat.ticket_id, &client_id)
                .await?
            {
                let view = self.single_entry_view(chat.ticket_id, entry).await?;
                return Ok((self.chat_summary(chat.clone()).await?, view, false));
            }
        }
        if let Some(live) = chats.iter().rev().find(|chat| chat.is_live()) {
            let (view, created) = self
                .post_visitor_message(
                    session,
                    live.ticket_id,
                    VisitorMessageInput {
                        client_id,
                        body,
                        attachment: None,
                    },
                )
                .await?;
            let summary = self
                .chat_summary(self.existing_chat(live.ticket_id).await?)
                .await?;
            return Ok((summary, view, created));
        }
        let site = &session.site;
        let answers = site.pre_chat.check(input.answers)?;
        let now = self.clock.now();
        let staffed =
            site.working_hours.is_open(now) && self.agents_online_for(site.team_id).await?;
        if !staffed && answers.email.is_none() {
            return Err(DomainError::invalid(
                "email",
                "leave an e-mail address: nobody can answer in the chat right now",
            )
            .into());
        }
        let subject = parse_subject(&chat_subject(&body))?;
        let ticket_id = TicketId::new();
        let message_id = MessageId::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let now = self.clock.now();
            let mut unit = UnitOfWork::new();
            let customer_id = self
                .chat_customer(&mut unit, session, &answers, now)
                .await?;
            let draft = NewTicket {
                id: ticket_id,
                subject: subject.clone(),
                status: TicketStatus::New,
                priority: Priority::Normal,
                channel: Channel::Chat,
                customer_id,
                assignee_id: None,
                team_id: site.team_id,
                tags: Vec::new(),
                created_at: now,
            };
            let mut chat = Chat {
                ticket_id,
                site_id: site.id,
                visitor_id: session.visitor.id,
                state: if staffed {
                    ChatState::Queued
                } else {
                    ChatState::Offline
                },
                agent_id: None,
                team_id: site.team_id,
                language: parse_language(input.language.clone()),
                queued_at: now,
                accepted_at: None,
                ended_at: None,
                first_visitor_message_at: Some(now),
                first_agent_message_at: None,
                last_seq: 0,
                visitor_read_seq: 0,
                agent_read_seq: 0,
                version: 1,
            };
            let entry = message_entry(&mut chat, message_id, Some(client_id.clone()), now);
            let mut entries = vec![entry.clone()];
            if !staffed {
                entries.push(event_entry(&mut chat, "offline", None, now));
            }
            let changes = draft.creation_changes();
            unit.push(Mutation::InsertTicket(draft));
            unit.push(Mutation::InsertMessage(Message {
                id: message_id,
                ticket_id,
                author: Author::Customer(customer_id),
                visibility: MessageVisibility::Public,
                channel: Channel::Chat,
                body: body.clone(),
                attachments: Vec::new(),
                created_at: now,
            }));
            if let Some(order_number) = &answers.order_number {
                // Where agents look first, and found by search as an exact token.
                unit.push(Mutation::InsertMessage(Message {
                    id: MessageId::new(),
                    ticket_id,
                    author: Author::System,
                    visibility: MessageVisibility::Internal,
                    channel: Channel::Chat,
                    body: format!("Номер заказа / Order number: {order_number}"),
                    attachments: Vec::new(),
                    created_at: now,
                }));
            }
            unit.push(Mutation::InsertChat(chat.clone()));
            for entry in entries {
                unit.push(Mutation::InsertChatEntry(entry));
            }
            unit.push(Mutation::Audit(AuditEvent::new(
                now,
                Actor::System,
                "ticket.created",
                "ticket",
                ticket_id.0,
                changes,
            )));
            unit.push(Mutation::Audit(AuditEvent::new(
                now,
                Actor::System,
                "chat.started",
                "ticket",
                ticket_id.0,
                vec![
                    set("state", chat.state),
                    set("visitor_id", session.visitor.id),
                    set("site_id", site.id),
                ],
            )));
            match self.store.commit(unit).await {
                Ok(_) => {
                    if staffed && let Err(error) = self.route_chats().await {
                        tracing::warn!(%error, "routing after a new chat failed; the tick retries");
                    }
                    let chat = self.existing_chat(ticket_id).await?;
                    let view = self.single_entry_view(ticket_id, entry).await?;
                    return Ok((self.chat_summary(chat).await?, view, true));
                }
                Err(StoreError::Conflict { constraint })
                    if constraint == "customer_identities.value" && attempt < MAX_ATTEMPTS =>
                {
                    continue;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(AppError::Conflict {
            code: "concurrent_update",
            message: "could not start the chat; retry".into(),
        })
    }

    /// The customer a new chat belongs to. An e-mail given in the pre-chat form attaches the
    /// chat to whoever has that address (as an e-mail from it would), so agents see one
    /// history; the visitor still sees only their own chats.
    async fn chat_customer(
        &self,
        unit: &mut UnitOfWork,
        session: &VisitorSession,
        answers: &PreChatAnswers,
        now: jiff::Timestamp,
    ) -> AppResult<CustomerId> {
        let mut customer = self
            .store
            .find_customer(session.visitor.customer_id)
            .await?
            .ok_or(AppError::NotFound { what: "customer" })?;
        if let Some(email) = &answers.email {
            let identity = IdentityValue::parse(IdentityKind::Email, None, email)?;
            match self.store.find_customer_by_identity(&identity).await? {
                Some(owner) => return Ok(owner.merged_into.unwrap_or(owner.id)),
                None => unit.push(Mutation::InsertIdentity(Identity {
                    id: IdentityId::new(),
                    customer_id: customer.id,
                    value: identity,
                    created_at: now,
                })),
            };
        }
        let placeholder = customer.name == session.visitor.id.to_string();
        if let Some(name) = &answers.name
            && placeholder
        {
            let expected_version = customer.version;
            customer.name = parse_person_name(name)?;
            customer.updated_at = now;
            unit.push(Mutation::UpdateCustomer {
                customer: customer.clone(),
                expected_version,
            });
        }
        Ok(customer.merged_into.unwrap_or(customer.id))
    }

    async fn single_entry_view(
        &self,
        ticket_id: TicketId,
        entry: ChatEntry,
    ) -> AppResult<EntryView> {
        self.entry_views(ticket_id, vec![entry])
            .await?
            .pop()
            .ok_or(AppError::NotFound { what: "chat entry" })
    }

    /// Adds a visitor's message to their chat. Idempotent by client id: a resend answers the
    /// stored entry and `false`.
    pub async fn post_visitor_message(
        &self,
        session: &VisitorSession,
        ticket_id: TicketId,
        input: VisitorMessageInput,
    ) -> AppResult<(EntryView, bool)> {
        let client_id = parse_client_id(&input.client_id)?;
        let chat = self.visitor_chat(session, ticket_id).await?;
        if let Some(entry) = self
            .store
            .find_chat_entry_by_client_id(ticket_id, &client_id)
            .await?
        {
            return Ok((self.single_entry_view(ticket_id, entry).await?, false));
        }
        if chat.state == ChatState::Ended {
            return Err(AppError::Conflict {
                code: "chat_ended",
                message: "the chat has ended; start a new one".into(),
            });
        }
        let body = if input.attachment.is_some() && input.body.trim().is_empty() {
            String::new()
        } else {
            parse_body(&input.body)?
        };
        let message_id = MessageId::new();
        let attachments = match input.attachment {
            Some(file) => vec![self.store_visitor_file(ticket_id, message_id, file).await?],
            None => Vec::new(),
        };
        for _ in 0..MAX_ATTEMPTS {
            let mut ticket = self
                .store
                .find_ticket(ticket_id)
                .await?
                .ok_or(AppError::NotFound { what: "chat" })?;
            if ticket.merged_into.is_some() || ticket.status == TicketStatus::Closed {
                return Err(AppError::Conflict {
                    code: "chat_ended",
                    message: "the chat has ended; start a new one".into(),
                });
            }
            let mut chat = self.visitor_chat(session, ticket_id).await?;
            let before = ticket.clone();
            let expected_chat = chat.version;
            let now = self.clock.now();
            if matches!(
                ticket.status,
                TicketStatus::Pending | TicketStatus::OnHold | TicketStatus::Solved
            ) {
                ticket.transition(TicketStatus::Open, now)?;
            }
            ticket.updated_at = now;
            chat.first_visitor_message_at.get_or_insert(now);
            let entry = message_entry(&mut chat, message_id, Some(client_id.clone()), now);
            chat.version += 1;
            let unit = UnitOfWork::new()
                .with(Mutation::InsertMessage(Message {
                    id: message_id,
                    ticket_id,
                    author: Author::Customer(ticket.customer_id),
                    visibility: MessageVisibility::Public,
                    channel: Channel::Chat,
                    body: body.clone(),
                    attachments: attachments.clone(),
                    created_at: now,
                }))
                .with(Mutation::UpdateTicket {
                    ticket: ticket.clone(),
                    expected_version: before.version,
                })
                .with(Mutation::UpdateChat {
                    chat,
                    expected_version: expected_chat,
                })
                .with(Mutation::InsertChatEntry(entry.clone()))
                .with(Mutation::Audit(AuditEvent::new(
                    now,
                    Actor::System,
                    "ticket.message_added",
                    "ticket",
                    ticket_id.0,
                    vec![set("message_id", message_id), set("author", "chat_visitor")],
                )));
            match self.store.commit(unit).await {
                Ok(_) => return Ok((self.single_entry_view(ticket_id, entry).await?, true)),
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(StoreError::Conflict { constraint })
                    if constraint == "chat_entries.client_id" =>
                {
                    let entry = self
                        .store
                        .find_chat_entry_by_client_id(ticket_id, &client_id)
                        .await?
                        .ok_or(AppError::NotFound { what: "chat entry" })?;
                    return Ok((self.single_entry_view(ticket_id, entry).await?, false));
                }
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

    async fn store_visitor_file(
        &self,
        ticket_id: TicketId,
        message_id: MessageId,
        file: NewAttachment,
    ) -> AppResult<AttachmentMeta> {
        if file.bytes.len() > self.limits.max_attachment_bytes {
            return Err(AppError::TooLarge(format!(
                "the file is larger than {} bytes",
                self.limits.max_attachment_bytes
            )));
        }
        let content_type = crate::tickets::sniff_content_type(&file.bytes);
        if !VISITOR_FILE_TYPES.contains(&content_type.as_str()) {
            return Err(AppError::Refused {
                code: "unsupported_type",
                message: "only images (JPEG, PNG, GIF, WebP) and PDF files can be sent".into(),
            });
        }
        let size_bytes = i64::try_from(file.bytes.len()).unwrap_or(i64::MAX);
        let sha256 = self.blobs.put(file.bytes).await?;
        Ok(AttachmentMeta {
            id: AttachmentId::new(),
            ticket_id,
            message_id,
            file_name: otklik_domain::attachment::safe_file_name(&file.file_name),
            content_type,
            size_bytes,
            sha256,
        })
    }

    /// A file of the visitor's chat, with its bytes.
    pub async fn visitor_attachment(
        &self,
        session: &VisitorSession,
        ticket_id: TicketId,
        attachment_id: AttachmentId,
    ) -> AppResult<(AttachmentMeta, Vec<u8>)> {
        self.visitor_chat(session, ticket_id).await?;
        let meta = self
            .store
            .find_attachment(attachment_id)
            .await?
            .filter(|meta| meta.ticket_id == ticket_id)
            .ok_or(AppError::NotFound { what: "attachment" })?;
        // Only files of messages the visitor can see (not of internal notes).
        let messages = self.store.list_messages(ticket_id).await?;
        let public = messages.iter().any(|message| {
            message.id == meta.message_id && message.visibility == MessageVisibility::Public
        });
        if !public {
            return Err(AppError::NotFound { what: "attachment" });
        }
        let bytes = self
            .blobs
            .get(&meta.sha256)
            .await?
            .ok_or(AppError::NotFound { what: "attachment" })?;
        Ok((meta, bytes))
    }

    /// The visitor is (or stopped) typing: agents watching the chat see it live.
    pub async fn visitor_typing(
        &self,
        session: &VisitorSession,
        ticket_id: TicketId,
        typing: bool,
    ) -> AppResult<()> {
        let chat = self.visitor_chat(session, ticket_id).await?;
        if !chat.is_live() {
            return Ok(());
        }
        self.store
            .publish_signal(otklik_store::events::Signal {
                topic: TYPING_TOPIC.into(),
                ticket_id: Some(ticket_id),
                data: serde_json::json!({ "by": "visitor", "typing": typing }),
            })
            .await?;
        Ok(())
    }

    /// The visitor has seen entries up to `seq`.
    pub async fn visitor_read(
        &self,
        session: &VisitorSession,
        ticket_id: TicketId,
        seq: i64,
    ) -> AppResult<()> {
        self.visitor_chat(session, ticket_id).await?;
        self.save_read_mark(ticket_id, seq, |chat| &mut chat.visitor_read_seq)
            .await
    }

    /// The visitor ends their chat.
    pub async fn visitor_end_chat(
        &self,
        session: &VisitorSession,
        ticket_id: TicketId,
    ) -> AppResult<ChatSummary> {
        self.visitor_chat(session, ticket_id).await?;
        self.finish_chat(ticket_id, Actor::System, "visitor")
            .await?;
        self.chat_summary(self.existing_chat(ticket_id).await?)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_subject_is_the_first_non_empty_line_shortened() {
        assert_eq!(chat_subject("\n  \nГде мой заказ?\nещё"), "Где мой заказ?");
        let long = "д".repeat(100);
        assert_eq!(chat_subject(&long).chars().count(), 81);
    }

    #[test]
    fn only_known_languages_route() {
        assert_eq!(parse_language(Some("ru-RU".into())).as_deref(), Some("ru"));
        assert_eq!(parse_language(Some("EN".into())).as_deref(), Some("en"));
        assert_eq!(parse_language(Some("de".into())), None);
        assert_eq!(parse_language(None), None);
    }
}
