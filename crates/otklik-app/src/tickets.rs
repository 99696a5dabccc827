//! Ticket use cases: open, read, list, change, reply, note, merge, audit, attachments.

use otklik_domain::DomainError;
use otklik_domain::agent::normalize_tag_list;
use otklik_domain::attachment::{AttachmentMeta, safe_file_name};
use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::customer::{Customer, Identity, IdentityValue, parse_person_name};
use otklik_domain::ids::*;
use otklik_domain::message::{Author, Message, MessageVisibility, parse_body};
use otklik_domain::permission::{Action, Principal};
use otklik_domain::ticket::{
    Channel, NewTicket, Priority, Ticket, TicketPatch, TicketStatus, diff, parse_subject,
};
use otklik_store::{
    MAX_PAGE_SIZE, Mutation, StoreError, TicketCursor, TicketFilter, TicketQuery, UnitOfWork,
    Visibility,
};

use crate::idempotency::{Committed, IdempotencyKey, commit_with_key, find_replay};
use crate::mail::EmailRoute;
use crate::{App, AppError, AppResult, MAX_ATTEMPTS};

/// Who a new ticket is for.
#[derive(Debug, Clone)]
pub enum CustomerRef {
    /// An existing customer (a merged one is followed to the survivor).
    Id(CustomerId),
    /// Whoever owns this identity; a new customer is created if nobody does.
    Identity {
        identity: IdentityValue,
        name: Option<String>,
    },
}

/// A file to attach, as received.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// The fields of a new ticket.
#[derive(Debug, Clone)]
pub struct CreateTicketInput {
    pub subject: String,
    /// The customer's first message.
    pub body: String,
    pub customer: CustomerRef,
    pub channel: Channel,
    pub priority: Option<Priority>,
    pub status: Option<TicketStatus>,
    pub assignee_id: Option<AgentId>,
    pub team_id: Option<TeamId>,
    pub tags: Vec<String>,
    pub attachments: Vec<NewAttachment>,
}

/// Who is recorded as the author of an added message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorKind {
    /// The calling agent.
    Agent,
    /// The ticket's customer (an integrator importing a message from another system).
    Customer,
}

/// A reply or note to add.
#[derive(Debug, Clone)]
pub struct AddMessageInput {
    pub body: String,
    pub visibility: MessageVisibility,
    pub author: AuthorKind,
    /// A status to move the ticket to in the same change ("reply and set pending").
    pub status: Option<TicketStatus>,
    pub attachments: Vec<NewAttachment>,
}

/// One page of tickets and the cursor of the next page.
#[derive(Debug, Clone)]
pub struct TicketPage {
    pub tickets: Vec<Ticket>,
    pub next: Option<TicketCursor>,
}

/// One page of tickets in a chosen order and the cursor of the next page (in that order).
#[derive(Debug, Clone)]
pub struct SortedTicketPage {
    pub tickets: Vec<Ticket>,
    pub next: Option<otklik_store::SortedTicketCursor>,
}

/// Guesses a file's type from its bytes, never from the sender's claim.
pub fn sniff_content_type(bytes: &[u8]) -> String {
    if let Some(kind) = infer::get(bytes) {
        return kind.mime_type().to_owned();
    }
    if std::str::from_utf8(bytes).is_ok_and(|text| !text.contains('\0')) {
        return "text/plain; charset=utf-8".into();
    }
    "application/octet-stream".into()
}

fn actor(principal: &Principal) -> Actor {
    Actor::Agent(principal.agent_id)
}

impl App {
    pub(crate) fn visibility(principal: &Principal) -> Visibility {
        if principal.sees_all_tickets() {
            Visibility::All
        } else {
            Visibility::Agent {
                agent_id: principal.agent_id,
                team_ids: principal.team_ids.clone(),
            }
        }
    }

    /// Loads a ticket the principal may see; anything else is "not found".
    async fn visible_ticket(&self, principal: &Principal, id: TicketId) -> AppResult<Ticket> {
        match self.store.find_ticket(id).await? {
            Some(ticket) if principal.can_view_ticket(&ticket) => Ok(ticket),
            _ => Err(AppError::NotFound { what: "ticket" }),
        }
    }

    async fn ensure_editable(&self, ticket: &Ticket) -> AppResult<()> {
        if let Some(survivor) = ticket.merged_into {
            let survivor_number = self
                .store
                .find_ticket(survivor)
                .await?
                .map_or(0, |ticket| ticket.number);
            return Err(DomainError::TicketMerged { survivor_number }.into());
        }
        ticket.ensure_editable(|| 0).map_err(AppError::from)
    }

    async fn check_assignee(&self, assignee_id: Option<AgentId>) -> AppResult<()> {
        if let Some(agent_id) = assignee_id {
            match self.store.find_agent(agent_id).await? {
                Some(agent) if agent.active => {}
                Some(_) => {
                    return Err(AppError::InvalidReference {
                        field: "assignee_id",
                        reason: "the agent is deactivated".into(),
                    });
                }
                None => {
                    return Err(AppError::InvalidReference {
                        field: "assignee_id",
                        reason: format!("no agent {agent_id}"),
                    });
                }
            }
        }
        Ok(())
    }

    async fn check_team(&self, team_id: Option<TeamId>) -> AppResult<()> {
        if let Some(team_id) = team_id
            && self.store.find_team(team_id).await?.is_none()
        {
            return Err(AppError::InvalidReference {
                field: "team_id",
                reason: format!("no team {team_id}"),
            });
        }
        Ok(())
    }

    /// Stores attachment bytes durably (before the message that refers to them is committed).
    async fn store_attachments(
        &self,
        ticket_id: TicketId,
        message_id: MessageId,
        attachments: Vec<NewAttachment>,
    ) -> AppResult<Vec<AttachmentMeta>> {
        if attachments.len() > self.limits.max_attachments_per_message {
            return Err(AppError::TooLarge(format!(
                "at most {} attachments per message",
                self.limits.max_attachments_per_message
            )));
        }
        let mut stored = Vec::with_capacity(attachments.len());
        for attachment in attachments {
            if attachment.bytes.len() > self.limits.max_attachment_bytes {
                return Err(AppError::TooLarge(format!(
                    "attachment {:?} is larger than {} bytes",
                    safe_file_name(&attachment.file_name),
                    self.limits.max_attachment_bytes
                )));
            }
            let content_type = sniff_content_type(&attachment.bytes);
            let size_bytes = i64::try_from(attachment.bytes.len()).unwrap_or(i64::MAX);
            let sha256 = self.blobs.put(attachment.bytes).await?;
            stored.push(AttachmentMeta {
                id: AttachmentId::new(),
                ticket_id,
                message_id,
                file_name: safe_file_name(&attachment.file_name),
                content_type,
                size_bytes,
                sha256,
            });
        }
        Ok(stored)
    }

    /// Finds the customer a new ticket belongs to, or prepares the insert of a new one.
    async fn resolve_customer(
        &self,
        customer: &CustomerRef,
        now: jiff::Timestamp,
    ) -> AppResult<(CustomerId, Option<Customer>)> {
        match customer {
            CustomerRef::Id(id) => {
                let mut customer =
                    self.store
                        .find_customer(*id)
                        .await?
                        .ok_or(AppError::InvalidReference {
                            field: "customer_id",
                            reason: format!("no customer {id}"),
                        })?;
                // Follow merges to the surviving customer (bounded: merges cannot form cycles,
                // but a corrupt chain must not hang a request).
                for _ in 0..8 {
                    let Some(survivor) = customer.merged_into else {
                        break;
                    };
                    customer = self
                        .store
                        .find_customer(survivor)
                        .await?
                        .ok_or(AppError::NotFound { what: "customer" })?;
                }
                Ok((customer.id, None))
            }
            CustomerRef::Identity { identity, name } => {
                if let Some(existing) = self.store.find_customer_by_identity(identity).await? {
                    return Ok((existing.id, None));
                }
                let name = match name {
                    Some(name) => parse_person_name(name)?,
                    None => identity.value.clone(),
                };
                let customer_id = CustomerId::new();
                let customer = Customer {
                    id: customer_id,
                    name,
                    language: None,
                    identities: vec![Identity {
                        id: IdentityId::new(),
                        customer_id,
                        value: identity.clone(),
                        created_at: now,
                    }],
                    merged_into: None,
                    created_at: now,
                    updated_at: now,
                    version: 1,
                };
                Ok((customer_id, Some(customer)))
            }
        }
    }

    /// Opens a ticket with the customer's first message.
    pub async fn create_ticket(
        &self,
        principal: &Principal,
        input: CreateTicketInput,
        key: Option<&IdempotencyKey>,
    ) -> AppResult<Ticket> {
        principal.require(Action::WriteTickets)?;
        if let Some(resource_id) = find_replay(self.store.as_ref(), key).await? {
            return self.visible_ticket(principal, TicketId(resource_id)).await;
        }
        let subject = parse_subject(&input.subject)?;
        let body = parse_body(&input.body)?;
        let tags = normalize_tag_list(&input.tags)?;
        let status = input.status.unwrap_or(TicketStatus::New);
        if !status.is_active() {
            return Err(DomainError::invalid(
                "status",
                "a new ticket starts as new, open, pending or on_hold",
            )
            .into());
        }
        self.check_assignee(input.assignee_id).await?;
        self.check_team(input.team_id).await?;
        let ticket_id = TicketId::new();
        let message_id = MessageId::new();
        let attachments = self
            .store_attachments(ticket_id, message_id, input.attachments)
            .await?;

        for attempt in 1..=MAX_ATTEMPTS {
            let now = self.clock.now();
            let (customer_id, new_customer) = self.resolve_customer(&input.customer, now).await?;
            let draft = NewTicket {
                id: ticket_id,
                subject: subject.clone(),
                status,
                priority: input.priority.unwrap_or(Priority::Normal),
                channel: input.channel,
                customer_id,
                assignee_id: input.assignee_id,
                team_id: input.team_id,
                tags: tags.clone(),
                created_at: now,
            };
            let changes = draft.creation_changes();
            let mut unit = UnitOfWork::new();
            if let Some(customer) = &new_customer {
                unit.push(Mutation::InsertCustomer(customer.clone()));
                unit.push(Mutation::Audit(AuditEvent::new(
                    now,
                    actor(principal),
                    "customer.created",
                    "customer",
                    customer.id.0,
                    vec![set("name", &customer.name)],
                )));
            }
            unit.push(Mutation::InsertTicket(draft.clone()));
            unit.push(Mutation::InsertMessage(Message {
                id: message_id,
                ticket_id,
                author: Author::Customer(customer_id),
                visibility: MessageVisibility::Public,
                channel: input.channel,
                body: body.clone(),
                attachments: attachments.clone(),
                created_at: now,
            }));
            unit.push(Mutation::Audit(AuditEvent::new(
                now,
                actor(principal),
                "ticket.created",
                "ticket",
                ticket_id.0,
                changes,
            )));
            match commit_with_key(self.store.as_ref(), unit, key, "ticket", ticket_id.0, now).await
            {
                // The receipt carries the number: no need to read the ticket back.
                Ok(Committed::Fresh(receipt)) => {
                    let number = receipt.ticket_numbers.first().copied().ok_or_else(|| {
                        AppError::Store(StoreError::corrupt(
                            "the store gave the new ticket no number",
                        ))
                    })?;
                    return Ok(draft.into_ticket(number));
                }
                Ok(Committed::Replayed(resource_id)) => {
                    return self.visible_ticket(principal, TicketId(resource_id)).await;
                }
                // Someone created the same new customer a moment ago: retry, which finds them.
                Err(AppError::Store(StoreError::Conflict { constraint }))
                    if constraint == "customer_identities.value" && attempt < MAX_ATTEMPTS =>
                {
                    continue;
                }
                Err(error) => return Err(error),
            }
        }
        Err(AppError::Conflict {
            code: "concurrent_update",
            message: "could not create the ticket; retry".into(),
        })
    }

    /// Change events from now on, for a caller allowed to read tickets; filter each with
    /// [`App::may_see_change`] before passing it on.
    pub fn subscribe_changes(
        &self,
        principal: &Principal,
    ) -> AppResult<tokio::sync::broadcast::Receiver<otklik_store::events::ChangeEvent>> {
        principal.require(Action::ReadTickets)?;
        Ok(self.store.subscribe())
    }

    /// Whether an event concerns a ticket the caller may see now (a resync always passes).
    pub async fn may_see_change(
        &self,
        principal: &Principal,
        event: &otklik_store::events::ChangeEvent,
    ) -> bool {
        match event.ticket_id {
            None => true,
            Some(ticket_id) => self.visible_ticket(principal, ticket_id).await.is_ok(),
        }
    }

    /// A ticket the principal may see.
    pub async fn get_ticket(&self, principal: &Principal, id: TicketId) -> AppResult<Ticket> {
        principal.require(Action::ReadTickets)?;
        self.visible_ticket(principal, id).await
    }

    /// A page of the tickets the principal may see, filtered.
    pub async fn list_tickets(
        &self,
        principal: &Principal,
        filter: TicketFilter,
        after: Option<TicketCursor>,
        limit: u32,
    ) -> AppResult<TicketPage> {
        principal.require(Action::ReadTickets)?;
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let query = TicketQuery {
            filter,
            visibility: Self::visibility(principal),
            after,
            limit,
        };
        let tickets = self.store.list_tickets(&query).await?;
        let next = match tickets.last() {
            Some(last) if tickets.len() == limit as usize => Some(TicketCursor {
                updated_at: last.updated_at,
                id: last.id,
            }),
            _ => None,
        };
        Ok(TicketPage { tickets, next })
    }

    /// A page of the tickets the principal may see, filtered, in the chosen order.
    pub async fn list_tickets_sorted(
        &self,
        principal: &Principal,
        filter: TicketFilter,
        sort: otklik_store::TicketSort,
        after: Option<otklik_store::SortedTicketCursor>,
        limit: u32,
    ) -> AppResult<SortedTicketPage> {
        principal.require(Action::ReadTickets)?;
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let query = otklik_store::SortedTicketQuery {
            filter,
            visibility: Self::visibility(principal),
            sort,
            after,
            limit,
        };
        let tickets = self.store.list_tickets_sorted(&query).await?;
        let next = match tickets.last() {
            Some(last) if tickets.len() == limit as usize => Some(sort.cursor_after(last)),
            _ => None,
        };
        Ok(SortedTicketPage { tickets, next })
    }

    /// Changes a ticket's fields; returns it as saved. An empty change is not an error.
    pub async fn update_ticket(
        &self,
        principal: &Principal,
        id: TicketId,
        patch: TicketPatch,
    ) -> AppResult<Ticket> {
        principal.require(Action::WriteTickets)?;
        if let Some(Some(assignee_id)) = patch.assignee_id {
            self.check_assignee(Some(assignee_id)).await?;
        }
        if let Some(Some(team_id)) = patch.team_id {
            self.check_team(Some(team_id)).await?;
        }
        for _ in 0..MAX_ATTEMPTS {
            let mut ticket = self.visible_ticket(principal, id).await?;
            self.ensure_editable(&ticket).await?;
            let expected_version = ticket.version;
            let now = self.clock.now();
            let changes = ticket.apply_patch(patch.clone(), now)?;
            if changes.is_empty() {
                return Ok(ticket);
            }
            let unit = UnitOfWork::new()
                .with(Mutation::UpdateTicket {
                    ticket: ticket.clone(),
                    expected_version,
                })
                .with(Mutation::Audit(AuditEvent::new(
                    now,
                    actor(principal),
                    "ticket.updated",
                    "ticket",
                    id.0,
                    changes,
                )));
            match self.store.commit(unit).await {
                Ok(_) => return self.visible_ticket_or_saved(principal, ticket).await,
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::VersionConflict { what: "ticket" }.into())
    }

    /// After a change that may move a ticket out of the caller's sight (another team), the
    /// caller still gets the state they just saved.
    async fn visible_ticket_or_saved(
        &self,
        _principal: &Principal,
        saved: Ticket,
    ) -> AppResult<Ticket> {
        Ok(self.store.find_ticket(saved.id).await?.unwrap_or(saved))
    }

    /// Adds a public reply or an internal note; returns the message and the ticket after it.
    pub async fn add_message(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
        input: AddMessageInput,
        key: Option<&IdempotencyKey>,
    ) -> AppResult<(Message, Ticket)> {
        principal.require(Action::WriteTickets)?;
        let body = parse_body(&input.body)?;
        if input.author == AuthorKind::Customer && input.visibility == MessageVisibility::Internal {
            return Err(DomainError::invalid(
                "visibility",
                "a customer's message is always public",
            )
            .into());
        }
        let ticket = self.visible_ticket(principal, ticket_id).await?;
        if let Some(resource_id) = find_replay(self.store.as_ref(), key).await? {
            return self
                .replayed_message(ticket.id, MessageId(resource_id))
                .await;
        }
        self.ensure_editable(&ticket).await?;
        let message_id = MessageId::new();
        let attachments = self
            .store_attachments(ticket_id, message_id, input.attachments)
            .await?;
        for _ in 0..MAX_ATTEMPTS {
            let mut ticket = self.visible_ticket(principal, ticket_id).await?;
            self.ensure_editable(&ticket).await?;
            let before = ticket.clone();
            let now = self.clock.now();
            let author = match input.author {
                AuthorKind::Agent => Author::Agent(principal.agent_id),
                AuthorKind::Customer => Author::Customer(ticket.customer_id),
            };
            match (input.author, input.visibility) {
                (AuthorKind::Agent, MessageVisibility::Public) => {
                    ticket.first_agent_reply_at.get_or_insert(now);
                    if ticket.status == TicketStatus::New && input.status.is_none() {
                        ticket.transition(TicketStatus::Open, now)?;
                    }
                }
                (AuthorKind::Customer, _) => {
                    if matches!(
                        ticket.status,
                        TicketStatus::Pending | TicketStatus::OnHold | TicketStatus::Solved
                    ) {
                        ticket.transition(TicketStatus::Open, now)?;
                    }
                }
                (AuthorKind::Agent, MessageVisibility::Internal) => {}
            }
            if let Some(status) = input.status {
                ticket.transition(status, now)?;
            }
            ticket.updated_at = now;
            let message = Message {
                id: message_id,
                ticket_id,
                author,
                visibility: input.visibility,
                channel: ticket.channel,
                body: body.clone(),
                attachments: attachments.clone(),
                created_at: now,
            };
            let agent_reply =
                input.author == AuthorKind::Agent && input.visibility == MessageVisibility::Public;
            // A reply in a chat is the next entry the visitor sees (see `chat::agents`).
            let chat = if agent_reply && ticket.channel == Channel::Chat {
                self.store.find_chat(ticket_id).await?
            } else {
                None
            };
            let chat_reply = self
                .chat_reply(principal, chat, &mut ticket, &message)
                .await?;
            let mut changes = vec![
                set("message_id", message_id),
                set("visibility", input.visibility),
            ];
            changes.extend(diff(&before, &ticket));
            // A public reply on an e-mail ticket goes out through the outbox, queued in the
            // same transaction as the message so neither exists without the other. A live
            // chat is answered in the chat; a chat that is over, by e-mail.
            let outbound = match (&chat_reply, agent_reply) {
                (Some(reply), _) => match reply.by_email_via {
                    Some(mailbox) => {
                        self.outbound_reply_via(&ticket, &message, EmailRoute::Via(mailbox))
                            .await?
                    }
                    None => None,
                },
                (None, true) => self.outbound_reply(&ticket, &message).await?,
                (None, false) => None,
            };
            if let Some(email) = &outbound {
                changes.push(set("email_id", email.id));
            }
            let mut unit = UnitOfWork::new()
                .with(Mutation::InsertMessage(message.clone()))
                .with(Mutation::UpdateTicket {
                    ticket: ticket.clone(),
                    expected_version: before.version,
                })
                .with(Mutation::Audit(AuditEvent::new(
                    now,
                    actor(principal),
                    "ticket.message_added",
                    "ticket",
                    ticket_id.0,
                    changes,
                )));
            if let Some(email) = outbound {
                unit.push(Mutation::InsertEmail(email));
            }
            if let Some(reply) = chat_reply {
                for mutation in reply.mutations {
                    unit.push(mutation);
                }
            }
            match commit_with_key(self.store.as_ref(), unit, key, "message", message_id.0, now)
                .await
            {
                Ok(Committed::Fresh(_)) => {
                    let saved = self.store.find_ticket(ticket_id).await?.unwrap_or(ticket);
                    return Ok((message, saved));
                }
                Ok(Committed::Replayed(resource_id)) => {
                    return self
                        .replayed_message(ticket_id, MessageId(resource_id))
                        .await;
                }
                Err(AppError::Conflict {
                    code: "concurrent_update",
                    ..
                }) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::VersionConflict { what: "ticket" }.into())
    }

    async fn replayed_message(
        &self,
        ticket_id: TicketId,
        message_id: MessageId,
    ) -> AppResult<(Message, Ticket)> {
        let ticket = self
            .store
            .find_ticket(ticket_id)
            .await?
            .ok_or(AppError::NotFound { what: "ticket" })?;
        // The message may have moved with a merge: look on the survivor too.
        let home = ticket.merged_into.unwrap_or(ticket.id);
        let messages = self.store.list_messages(home).await?;
        let message = messages
            .into_iter()
            .find(|message| message.id == message_id)
            .ok_or(AppError::NotFound { what: "message" })?;
        Ok((message, ticket))
    }

    /// Every message of a ticket the principal may see, oldest first.
    pub async fn list_messages(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
    ) -> AppResult<Vec<Message>> {
        principal.require(Action::ReadTickets)?;
        let ticket = self.visible_ticket(principal, ticket_id).await?;
        Ok(self.store.list_messages(ticket.id).await?)
    }

    /// Merges `source` into `target`: the messages move, the source closes and points to the
    /// survivor, and both histories record it.
    pub async fn merge_tickets(
        &self,
        principal: &Principal,
        source_id: TicketId,
        target_id: TicketId,
    ) -> AppResult<Ticket> {
        principal.require(Action::WriteTickets)?;
        if source_id == target_id {
            return Err(
                DomainError::InvalidMerge("a ticket cannot be merged into itself".into()).into(),
            );
        }
        for _ in 0..MAX_ATTEMPTS {
            let mut source = self.visible_ticket(principal, source_id).await?;
            let mut target = self
                .visible_ticket(principal, target_id)
                .await
                .map_err(|_| AppError::InvalidReference {
                    field: "target_ticket_id",
                    reason: format!("no ticket {target_id}"),
                })?;
            if source.merged_into.is_some() {
                return Err(
                    DomainError::InvalidMerge("the ticket was already merged".into()).into(),
                );
            }
            self.ensure_editable(&target).await?;
            let now = self.clock.now();
            let (source_version, target_version) = (source.version, target.version);
            let source_before = source.clone();
            source.merged_into = Some(target.id);
            if source.status != TicketStatus::Closed {
                source.status = TicketStatus::Closed;
                source.closed_at = Some(now);
            }
            source.updated_at = now;
            target.updated_at = now;
            let note = Message {
                id: MessageId::new(),
                ticket_id: target.id,
                author: Author::Agent(principal.agent_id),
                visibility: MessageVisibility::Internal,
                channel: target.channel,
                body: format!("Ticket #{} was merged into this ticket.", source.number),
                attachments: vec![],
                created_at: now,
            };
            let unit = UnitOfWork::new()
                .with(Mutation::MoveMessages {
                    from: source.id,
                    to: target.id,
                })
                .with(Mutation::UpdateTicket {
                    ticket: source.clone(),
                    expected_version: source_version,
                })
                .with(Mutation::UpdateTicket {
                    ticket: target.clone(),
                    expected_version: target_version,
                })
                .with(Mutation::InsertMessage(note))
                .with(Mutation::Audit(AuditEvent::new(
                    now,
                    actor(principal),
                    "ticket.merged_away",
                    "ticket",
                    source.id.0,
                    diff(&source_before, &source),
                )))
                .with(Mutation::Audit(AuditEvent::new(
                    now,
                    actor(principal),
                    "ticket.merged_in",
                    "ticket",
                    target.id.0,
                    vec![
                        set("merged_ticket_id", source.id),
                        set("merged_ticket_number", source.number),
                    ],
                )));
            match self.store.commit(unit).await {
                Ok(_) => return self.get_ticket(principal, target.id).await,
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::VersionConflict { what: "ticket" }.into())
    }

    /// The audit history of a ticket the principal may see.
    pub async fn ticket_audit(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
    ) -> AppResult<Vec<otklik_domain::audit::StoredAuditEvent>> {
        principal.require(Action::ReadTickets)?;
        let ticket = self.visible_ticket(principal, ticket_id).await?;
        Ok(self.store.list_audit_events(ticket.id.0).await?)
    }

    /// An attachment's metadata and bytes, if its ticket is visible to the principal.
    pub async fn get_attachment(
        &self,
        principal: &Principal,
        id: AttachmentId,
    ) -> AppResult<(AttachmentMeta, Vec<u8>)> {
        principal.require(Action::ReadTickets)?;
        let meta = self
            .store
            .find_attachment(id)
            .await?
            .ok_or(AppError::NotFound { what: "attachment" })?;
        self.visible_ticket(principal, meta.ticket_id)
            .await
            .map_err(|_| AppError::NotFound { what: "attachment" })?;
        let bytes = self
            .blobs
            .get(&meta.sha256)
            .await?
            .ok_or(AppError::NotFound { what: "attachment" })?;
        Ok((meta, bytes))
    }
}
