//! One raw e-mail in, durably handled: added to the right ticket, recorded as a duplicate,
//! quarantined, or deliberately ignored. Whatever the outcome, once this returns `Ok` the mail
//! is stored and the caller may acknowledge it (IMAP flag, SMTP 250, pipe exit 0); an `Err`
//! means nothing was acknowledged and the sender should retry.

use jiff::Timestamp;
use otklik_domain::DomainError;
use otklik_domain::attachment::{AttachmentMeta, safe_file_name};
use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::customer::{Customer, Identity, IdentityKind, IdentityValue, parse_person_name};
use otklik_domain::email::{
    AUTOMATIC_MAILS_PER_RECIPIENT_PER_HOUR, EmailDirection, EmailRecord, EmailStatus, Mailbox,
};
use otklik_domain::ids::{AttachmentId, CustomerId, EmailId, IdentityId, MessageId, TicketId};
use otklik_domain::message::{Author, MAX_BODY_CHARS, Message, MessageVisibility};
use otklik_domain::ticket::{Channel, NewTicket, Priority, Ticket, TicketStatus, diff};
use otklik_email::{InboundEmail, ParseLimits, ReplyTokenKey};
use otklik_store::{Mutation, StoreError, UnitOfWork};
use sha2::{Digest, Sha256};

use super::domain_of;
use super::outbox::{QueuedEmail, queued_email};
use crate::tickets::sniff_content_type;
use crate::{App, AppError, AppResult, MAX_ATTEMPTS};

/// What became of an ingested e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// Added to a ticket (a new one when `created`).
    Ticket {
        ticket_id: TicketId,
        number: i64,
        created: bool,
        email_id: EmailId,
    },
    /// The same e-mail was handled before; nothing changed.
    Duplicate { ticket_number: Option<i64> },
    /// It could not be parsed; kept for an admin with its raw bytes.
    Quarantined { email_id: EmailId, reason: String },
    /// Recorded but not added to a ticket: a bounce, our own mail come back.
    Ignored { email_id: EmailId, reason: String },
}

impl IngestOutcome {
    /// The line `otklik mail ingest` prints.
    pub fn summary(&self) -> String {
        match self {
            IngestOutcome::Ticket { number, .. } => number.to_string(),
            IngestOutcome::Duplicate { .. } => "duplicate".into(),
            IngestOutcome::Quarantined { reason, .. } => format!("quarantined: {reason}"),
            IngestOutcome::Ignored { reason, .. } => format!("ignored: {reason}"),
        }
    }
}

/// Where a reply belongs, and how we found out (kept in the audit record).
struct Thread {
    ticket: Ticket,
    found_by: &'static str,
}

fn raw_dedup_key(raw: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(raw)))
}

/// The largest e-mail accepted; beyond it the mail is quarantined (raw kept) unparsed.
pub const MAX_RAW_EMAIL_BYTES: usize = 50 * 1024 * 1024;

impl App {
    /// Ingests one raw e-mail that arrived for `mailbox` (see the module documentation).
    pub async fn ingest_email(&self, mailbox: &Mailbox, raw: Vec<u8>) -> AppResult<IngestOutcome> {
        let limits = ParseLimits::default();
        let parsed = if raw.len() > MAX_RAW_EMAIL_BYTES {
            Err(format!(
                "the message is {} bytes; the limit is {MAX_RAW_EMAIL_BYTES}",
                raw.len()
            ))
        } else {
            // Parsing is CPU work on untrusted input: keep it off the async workers.
            let bytes = raw.clone();
            tokio::task::spawn_blocking(move || otklik_email::parse_inbound(&bytes, &limits))
                .await
                .map_err(|panic| format!("the parser failed: {panic}"))
                .and_then(|result| result.map_err(|error| error.to_string()))
        };
        match parsed {
            Ok(email) => self.ingest_parsed(mailbox, raw, email, None).await,
            Err(reason) => self.quarantine(mailbox, raw, reason).await,
        }
    }

    /// Runs a quarantined e-mail through ingestion again (after a parser fix, say).
    pub(crate) async fn reingest(
        &self,
        record: EmailRecord,
        mailbox: &Mailbox,
        raw: Vec<u8>,
    ) -> AppResult<IngestOutcome> {
        let limits = ParseLimits::default();
        let bytes = raw.clone();
        let parsed =
            tokio::task::spawn_blocking(move || otklik_email::parse_inbound(&bytes, &limits))
                .await
                .map_err(|panic| format!("the parser failed: {panic}"))
                .and_then(|result| result.map_err(|error| error.to_string()));
        match parsed {
            Ok(email) => self.ingest_parsed(mailbox, raw, email, Some(record)).await,
            Err(reason) => Ok(IngestOutcome::Quarantined {
                email_id: record.id,
                reason,
            }),
        }
    }

    async fn quarantine(
        &self,
        mailbox: &Mailbox,
        raw: Vec<u8>,
        reason: String,
    ) -> AppResult<IngestOutcome> {
        let dedup_key = raw_dedup_key(&raw);
        if let Some(existing) = self
            .store
            .find_email_by_dedup_key(EmailDirection::Inbound, &dedup_key)
            .await?
        {
            return self.duplicate(&existing).await;
        }
        let raw_sha256 = self.blobs.put(raw).await?;
        let now = self.clock.now();
        let record = EmailRecord {
            id: EmailId::new(),
            mailbox_id: mailbox.id,
            direction: EmailDirection::Inbound,
            status: EmailStatus::Quarantined,
            status_reason: Some(reason.clone()),
            dedup_key,
            message_id_header: None,
            ticket_id: None,
            message_id: None,
            raw_sha256,
            from_address: None,
            recipients: Vec::new(),
            subject: String::new(),
            html_body: None,
            folded_text: None,
            automatic: false,
            attempts: 0,
            next_attempt_at: None,
            created_at: now,
            updated_at: now,
        };
        tracing::warn!(mailbox = %mailbox.name, email_id = %record.id, %reason, "e-mail quarantined");
        self.record_alone(
            record,
            IngestOutcome::Quarantined {
                email_id: EmailId::new(),
                reason,
            },
        )
        .await
    }

    /// Commits an e-mail record that changes nothing else (quarantined, ignored).
    async fn record_alone(
        &self,
        record: EmailRecord,
        outcome: IngestOutcome,
    ) -> AppResult<IngestOutcome> {
        let outcome = match outcome {
            IngestOutcome::Quarantined { reason, .. } => IngestOutcome::Quarantined {
                email_id: record.id,
                reason,
            },
            IngestOutcome::Ignored { reason, .. } => IngestOutcome::Ignored {
                email_id: record.id,
                reason,
            },
            other => other,
        };
        match self
            .store
            .commit(UnitOfWork::new().with(Mutation::InsertEmail(record.clone())))
            .await
        {
            Ok(_) => Ok(outcome),
            Err(StoreError::Conflict { constraint }) if constraint == "emails.dedup_key" => {
                self.duplicate_of_key(&record.dedup_key).await
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn duplicate(&self, existing: &EmailRecord) -> AppResult<IngestOutcome> {
        let ticket_number = match existing.ticket_id {
            Some(ticket_id) => self.store.find_ticket(ticket_id).await?.map(|t| t.number),
            None => None,
        };
        Ok(IngestOutcome::Duplicate { ticket_number })
    }

    async fn duplicate_of_key(&self, dedup_key: &str) -> AppResult<IngestOutcome> {
        match self
            .store
            .find_email_by_dedup_key(EmailDirection::Inbound, dedup_key)
            .await?
        {
            Some(existing) => self.duplicate(&existing).await,
            None => Ok(IngestOutcome::Duplicate {
                ticket_number: None,
            }),
        }
    }

    async fn ingest_parsed(
        &self,
        mailbox: &Mailbox,
        raw: Vec<u8>,
        email: InboundEmail,
        quarantined: Option<EmailRecord>,
    ) -> AppResult<IngestOutcome> {
        if quarantined.is_none()
            && let Some(existing) = self
                .store
                .find_email_by_dedup_key(EmailDirection::Inbound, &email.dedup_key)
                .await?
        {
            return self.duplicate(&existing).await;
        }
        let raw_sha256 = match &quarantined {
            Some(record) => record.raw_sha256.clone(),
            None => self.blobs.put(raw).await?,
        };
        let now = self.clock.now();
        let mut record = match quarantined {
            Some(record) => record,
            None => EmailRecord {
                id: EmailId::new(),
                mailbox_id: mailbox.id,
                direction: EmailDirection::Inbound,
                status: EmailStatus::Processed,
                status_reason: None,
                dedup_key: email.dedup_key.clone(),
                message_id_header: email.message_id.clone(),
                ticket_id: None,
                message_id: None,
                raw_sha256,
                from_address: email.from.as_ref().map(|from| from.address.clone()),
                recipients: email
                    .to
                    .iter()
                    .chain(&email.cc)
                    .map(|mailbox| mailbox.address.clone())
                    .collect(),
                subject: email.subject.chars().take(500).collect(),
                html_body: None,
                folded_text: None,
                automatic: false,
                attempts: 0,
                next_attempt_at: None,
                created_at: now,
                updated_at: now,
            },
        };
        let is_new_record = record.status != EmailStatus::Quarantined;

        // Our own mail come back (a forwarding loop): never a ticket, never an answer.
        let domain = domain_of(&mailbox.address);
        let own_message_id = email
            .message_id
            .as_deref()
            .is_some_and(|id| otklik_email::is_own_message_id(id, domain));
        // Our loop header alone is not trusted (anyone can write it); with an automatic
        // sender it means one of our notifications bounced around a forwarding rule.
        let own_loop_header =
            email.otklik_loop.as_deref() == Some(domain) && email.automation.is_automatic();
        if own_message_id || own_loop_header {
            return self
                .ignore(record, is_new_record, "our own e-mail came back".into())
                .await;
        }
        // Delivery reports: mark the reply they are about, never open a ticket.
        if let Some(bounce) = &email.bounce {
            let reason = self.apply_bounce(bounce, now).await?;
            return self.ignore(record, is_new_record, reason).await;
        }
        if matches!(
            email.automation.kind,
            Some(otklik_email::AutoKind::DeliveryReport | otklik_email::AutoKind::MailerDaemon)
        ) {
            return self
                .ignore(
                    record,
                    is_new_record,
                    "a delivery report that names no e-mail of ours".into(),
                )
                .await;
        }
        let Some(sender) = email.from.clone() else {
            record.status = EmailStatus::Quarantined;
            record.status_reason = Some("the e-mail has no usable From address".into());
            return if is_new_record {
                self.record_alone(
                    record,
                    IngestOutcome::Quarantined {
                        email_id: EmailId::new(),
                        reason: "the e-mail has no usable From address".into(),
                    },
                )
                .await
            } else {
                Ok(IngestOutcome::Quarantined {
                    email_id: record.id,
                    reason: "the e-mail has no usable From address".into(),
                })
            };
        };
        let sender_identity = match IdentityValue::parse(IdentityKind::Email, None, &sender.address)
        {
            Ok(identity) => identity,
            Err(error) => {
                let reason = format!("the sender address is not usable: {error}");
                record.status = EmailStatus::Quarantined;
                record.status_reason = Some(reason.clone());
                return if is_new_record {
                    self.record_alone(
                        record,
                        IngestOutcome::Quarantined {
                            email_id: EmailId::new(),
                            reason,
                        },
                    )
                    .await
                } else {
                    Ok(IngestOutcome::Quarantined {
                        email_id: record.id,
                        reason,
                    })
                };
            }
        };

        let key = self.reply_token_key().await?;
        let message_id = MessageId::new();
        let mut ticket_id = TicketId::new();
        // The thread is looked up before attachments are stored so their ids can name it.
        let thread = self.find_thread(&email, &key, &sender_identity).await?;
        if let Some(thread) = &thread {
            ticket_id = thread.ticket.id;
        }
        let (attachments, skipped) = self
            .store_email_attachments(ticket_id, message_id, &email)
            .await?;
        let html_body = email.html.as_deref().map(|html| {
            let resolve = |content_id: &str| {
                email
                    .attachments
                    .iter()
                    .zip(&attachments)
                    .find(|(inbound, _)| inbound.content_id.as_deref() == Some(content_id))
                    .map(|(_, stored)| format!("/api/v1/attachments/{}", stored.id))
            };
            otklik_email::sanitize_html(html, &resolve)
        });
        let folded = otklik_email::fold_quotes(&email.text);
        let body = message_body(&folded.visible, &attachments);
        record.html_body = html_body;
        record.folded_text = folded.folded;
        if !skipped.is_empty() {
            record.status_reason = Some(format!("attachments not kept: {}", skipped.join("; ")));
        }
        record.status = EmailStatus::Processed;
        record.message_id = Some(message_id);
        record.updated_at = now;

        for attempt in 1..=MAX_ATTEMPTS {
            let now = self.clock.now();
            let (customer_id, new_customer) = self
                .email_customer(&sender_identity, sender.name.as_deref(), now)
                .await?;
            let mut unit = UnitOfWork::new();
            if let Some(customer) = &new_customer {
                unit.push(Mutation::InsertCustomer(customer.clone()));
                unit.push(Mutation::Audit(AuditEvent::new(
                    now,
                    Actor::System,
                    "customer.created",
                    "customer",
                    customer.id.0,
                    vec![set("name", &customer.name), set("channel", "email")],
                )));
            }
            let message = Message {
                id: message_id,
                ticket_id,
                author: Author::Customer(customer_id),
                visibility: MessageVisibility::Public,
                channel: Channel::Email,
                body: body.clone(),
                attachments: attachments.clone(),
                created_at: now,
            };
            record.ticket_id = Some(ticket_id);
            let (ticket_number_hint, created, draft) = match &thread {
                Some(thread) => {
                    let before = self
                        .store
                        .find_ticket(thread.ticket.id)
                        .await?
                        .ok_or(AppError::NotFound { what: "ticket" })?;
                    let mut after = before.clone();
                    if matches!(
                        after.status,
                        TicketStatus::Pending | TicketStatus::OnHold | TicketStatus::Solved
                    ) {
                        after.transition(TicketStatus::Open, now)?;
                    }
                    after.updated_at = now;
                    let mut changes = vec![
                        set("message_id", message_id),
                        set("visibility", MessageVisibility::Public),
                        set("threaded_by", thread.found_by),
                    ];
                    changes.extend(diff(&before, &after));
                    unit.push(Mutation::InsertMessage(message));
                    unit.push(Mutation::UpdateTicket {
                        ticket: after.clone(),
                        expected_version: before.version,
                    });
                    unit.push(Mutation::Audit(AuditEvent::new(
                        now,
                        Actor::System,
                        "ticket.message_added",
                        "ticket",
                        ticket_id.0,
                        changes,
                    )));
                    (Some(after.number), false, None)
                }
                None => {
                    let draft = NewTicket {
                        id: ticket_id,
                        subject: ticket_subject(&email.subject),
                        status: TicketStatus::New,
                        priority: Priority::Normal,
                        channel: Channel::Email,
                        customer_id,
                        assignee_id: None,
                        team_id: None,
                        tags: Vec::new(),
                        created_at: now,
                    };
                    let mut changes = draft.creation_changes();
                    changes.push(set("mailbox", &mailbox.name));
                    unit.push(Mutation::InsertTicket(draft.clone()));
                    unit.push(Mutation::InsertMessage(message));
                    unit.push(Mutation::Audit(AuditEvent::new(
                        now,
                        Actor::System,
                        "ticket.created",
                        "ticket",
                        ticket_id.0,
                        changes,
                    )));
                    (None, true, Some(draft))
                }
            };
            unit.push(if is_new_record {
                Mutation::InsertEmail(record.clone())
            } else {
                Mutation::UpdateEmail(record.clone())
            });
            match self.store.commit(unit).await {
                Ok(receipt) => {
                    let number = match (ticket_number_hint, receipt.ticket_numbers.first()) {
                        (Some(number), _) => number,
                        (None, Some(number)) => *number,
                        (None, None) => {
                            return Err(StoreError::corrupt(
                                "the store gave the new ticket no number",
                            )
                            .into());
                        }
                    };
                    drop(draft);
                    if created {
                        // Best effort, after the ticket is durable: it needs the number, and a
                        // lost acknowledgement loses no customer mail.
                        if let Err(error) = self
                            .acknowledge(mailbox, &email, &sender, ticket_id, number, &key)
                            .await
                        {
                            tracing::warn!(%error, ticket = number, "no acknowledgement queued");
                        }
                    }
                    return Ok(IngestOutcome::Ticket {
                        ticket_id,
                        number,
                        created,
                        email_id: record.id,
                    });
                }
                Err(StoreError::Conflict { constraint }) if constraint == "emails.dedup_key" => {
                    return self.duplicate_of_key(&record.dedup_key).await;
                }
                // A concurrent delivery created the same customer, or an agent changed the
                // ticket meanwhile: look again and retry.
                Err(StoreError::Conflict { constraint })
                    if constraint == "customer_identities.value" && attempt < MAX_ATTEMPTS => {}
                Err(StoreError::VersionConflict { .. }) if attempt < MAX_ATTEMPTS => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::VersionConflict { what: "ticket" }.into())
    }

    async fn ignore(
        &self,
        mut record: EmailRecord,
        is_new_record: bool,
        reason: String,
    ) -> AppResult<IngestOutcome> {
        record.status = EmailStatus::Ignored;
        record.status_reason = Some(reason.clone());
        if is_new_record {
            self.record_alone(
                record,
                IngestOutcome::Ignored {
                    email_id: EmailId::new(),
                    reason,
                },
            )
            .await
        } else {
            record.updated_at = self.clock.now();
            self.store
                .commit(UnitOfWork::new().with(Mutation::UpdateEmail(record.clone())))
                .await?;
            Ok(IngestOutcome::Ignored {
                email_id: record.id,
                reason,
            })
        }
    }

    /// Marks the outbound e-mail a delivery report is about as failed; returns the reason to
    /// record on the report itself.
    async fn apply_bounce(
        &self,
        bounce: &otklik_email::Bounce,
        now: Timestamp,
    ) -> AppResult<String> {
        let Some(original) = &bounce.original_message_id else {
            return Ok("a delivery report that names no e-mail".into());
        };
        let candidates = self
            .store
            .find_emails_by_message_ids(std::slice::from_ref(original))
            .await?;
        let Some(sent) = candidates
            .into_iter()
            .find(|email| email.direction == EmailDirection::Outbound)
        else {
            return Ok(format!("a delivery report about {original}, not ours"));
        };
        if !bounce.permanent {
            return Ok(format!("a delay notice about {original}"));
        }
        let reason = [
            bounce
                .recipient
                .as_deref()
                .map(|r| format!("recipient {r}")),
            bounce.status.as_deref().map(|s| format!("status {s}")),
            bounce.diagnostic.clone(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ");
        let mut failed = sent.clone();
        failed.status = EmailStatus::Failed;
        failed.status_reason = Some(format!("bounced: {reason}"));
        failed.next_attempt_at = None;
        failed.updated_at = now;
        self.store
            .commit(UnitOfWork::new().with(Mutation::UpdateEmail(failed)))
            .await?;
        Ok(format!("a bounce of {original}"))
    }

    /// The ticket a reply belongs to: by our stored Message-IDs, then by a signed reply token,
    /// then by the ticket number in the subject when the sender is that ticket's customer —
    /// never by the sender alone. Merged tickets lead to their survivor; closed ones start a
    /// new ticket.
    async fn find_thread(
        &self,
        email: &InboundEmail,
        key: &ReplyTokenKey,
        sender: &IdentityValue,
    ) -> AppResult<Option<Thread>> {
        let mut referenced: Vec<String> = email
            .in_reply_to
            .iter()
            .chain(email.references.iter().rev())
            .take(50)
            .cloned()
            .collect();
        referenced.dedup();
        for stored in self.store.find_emails_by_message_ids(&referenced).await? {
            if let Some(ticket_id) = stored.ticket_id
                && let Some(ticket) = self.open_thread(ticket_id).await?
            {
                return Ok(Some(Thread {
                    ticket,
                    found_by: "message_id",
                }));
            }
        }
        let tokens = referenced
            .iter()
            .filter_map(|id| otklik_email::ticket_of_message_id(id, key))
            .chain(
                email
                    .to
                    .iter()
                    .chain(&email.cc)
                    .map(|mailbox| mailbox.address.as_str())
                    .chain(email.delivered_to.iter().map(String::as_str))
                    .filter_map(|address| otklik_email::ticket_of_address(address, key)),
            );
        for ticket_uuid in tokens {
            if let Some(ticket) = self.open_thread(TicketId(ticket_uuid)).await? {
                return Ok(Some(Thread {
                    ticket,
                    found_by: "reply_token",
                }));
            }
        }
        if let Some(number) = otklik_email::subject_ticket_number(&email.subject)
            && let Some(ticket) = self.store.find_ticket_by_number(number).await?
            && let Some(customer) = self.store.find_customer_by_identity(sender).await?
            && customer.id == ticket.customer_id
            && let Some(ticket) = self.open_thread(ticket.id).await?
        {
            return Ok(Some(Thread {
                ticket,
                found_by: "subject_number",
            }));
        }
        Ok(None)
    }

    /// The ticket a reply to `ticket_id` goes to: the survivor of merges, unless closed.
    async fn open_thread(&self, ticket_id: TicketId) -> AppResult<Option<Ticket>> {
        let mut current = self.store.find_ticket(ticket_id).await?;
        for _ in 0..8 {
            match current {
                Some(ticket) if ticket.merged_into.is_some() => {
                    current = self
                        .store
                        .find_ticket(ticket.merged_into.unwrap_or(ticket.id))
                        .await?;
                }
                Some(ticket) if ticket.status == TicketStatus::Closed => return Ok(None),
                other => return Ok(other),
            }
        }
        Ok(None)
    }

    async fn email_customer(
        &self,
        identity: &IdentityValue,
        display_name: Option<&str>,
        now: Timestamp,
    ) -> AppResult<(CustomerId, Option<Customer>)> {
        if let Some(existing) = self.store.find_customer_by_identity(identity).await? {
            // Follow a merge to the surviving customer.
            let id = existing.merged_into.unwrap_or(existing.id);
            return Ok((id, None));
        }
        let name = display_name
            .and_then(|name| parse_person_name(name).ok())
            .unwrap_or_else(|| identity.value.clone());
        let customer_id = CustomerId::new();
        Ok((
            customer_id,
            Some(Customer {
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
            }),
        ))
    }

    /// Stores an e-mail's attachments within the limits; what does not fit is named in the
    /// second list (the raw message still has it).
    async fn store_email_attachments(
        &self,
        ticket_id: TicketId,
        message_id: MessageId,
        email: &InboundEmail,
    ) -> AppResult<(Vec<AttachmentMeta>, Vec<String>)> {
        let mut stored = Vec::new();
        let mut skipped = Vec::new();
        for attachment in &email.attachments {
            let name = safe_file_name(&attachment.file_name);
            if stored.len() >= self.limits.max_attachments_per_message {
                skipped.push(format!("{name} (too many attachments)"));
                continue;
            }
            if attachment.bytes.len() > self.limits.max_attachment_bytes {
                skipped.push(format!(
                    "{name} ({} bytes, too large)",
                    attachment.bytes.len()
                ));
                continue;
            }
            let sha256 = self.blobs.put(attachment.bytes.clone()).await?;
            stored.push(AttachmentMeta {
                id: AttachmentId::new(),
                ticket_id,
                message_id,
                file_name: name,
                content_type: sniff_content_type(&attachment.bytes),
                size_bytes: i64::try_from(attachment.bytes.len()).unwrap_or(i64::MAX),
                sha256,
            });
        }
        Ok((stored, skipped))
    }

    /// The automatic "we got your request" e-mail for a new ticket, when RFC 3834 and the
    /// hourly cap allow it. It names the ticket number but repeats nothing the sender wrote,
    /// so a forged sender cannot use us to relay their text.
    async fn acknowledge(
        &self,
        mailbox: &Mailbox,
        email: &InboundEmail,
        sender: &otklik_email::Mailbox,
        ticket_id: TicketId,
        number: i64,
        key: &ReplyTokenKey,
    ) -> AppResult<()> {
        let now = self.clock.now();
        if let Some(ack) = self
            .acknowledgement(mailbox, email, sender, ticket_id, number, key, now)
            .await?
        {
            self.store
                .commit(UnitOfWork::new().with(Mutation::InsertEmail(ack)))
                .await?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn acknowledgement(
        &self,
        mailbox: &Mailbox,
        email: &InboundEmail,
        sender: &otklik_email::Mailbox,
        ticket_id: TicketId,
        number: i64,
        key: &ReplyTokenKey,
        now: Timestamp,
    ) -> AppResult<Option<EmailRecord>> {
        if !mailbox.auto_acknowledge
            || !email.automation.may_auto_reply()
            || email.return_path.as_deref() == Some("")
        {
            return Ok(None);
        }
        let recipient = sender.address.to_lowercase();
        if recipient == mailbox.address.to_lowercase() {
            return Ok(None);
        }
        let hour_ago = now
            .checked_sub(jiff::SignedDuration::from_hours(1))
            .unwrap_or(now);
        let sent = self
            .store
            .count_automatic_emails_since(&recipient, hour_ago)
            .await?;
        if sent >= AUTOMATIC_MAILS_PER_RECIPIENT_PER_HOUR {
            tracing::info!(%recipient, sent, "automatic e-mail cap reached; no acknowledgement");
            return Ok(None);
        }
        let email_id = EmailId::new();
        let domain = domain_of(&mailbox.address);
        let message_id_header =
            otklik_email::outbound_message_id(email_id.0, ticket_id.0, key, domain);
        let helpdesk_name = self.instance_settings().await?.helpdesk_name;
        // The subject carries the ticket number and no text of the sender's.
        let outbound = otklik_email::OutboundEmail {
            from: otklik_email::Mailbox {
                address: mailbox.address.clone(),
                name: Some(helpdesk_name),
            },
            to: vec![otklik_email::Mailbox {
                address: recipient.clone(),
                name: None,
            }],
            cc: Vec::new(),
            reply_to: Some(otklik_email::Mailbox {
                address: otklik_email::plus_address(&mailbox.address, ticket_id.0, key),
                name: None,
            }),
            subject: format!(
                "Мы получили ваше обращение / We have received your request [#{number}]"
            ),
            message_id: message_id_header.clone(),
            in_reply_to: email.message_id.clone(),
            references: email.message_id.iter().cloned().collect(),
            date: now,
            text: ACKNOWLEDGEMENT_TEXT.into(),
            html: None,
            attachments: Vec::new(),
            automatic: true,
        };
        let raw = outbound
            .to_bytes()
            .map_err(|error| DomainError::invalid("email", error.to_string()))?;
        let raw_sha256 = self.blobs.put(raw).await?;
        Ok(Some(queued_email(QueuedEmail {
            id: email_id,
            mailbox,
            ticket_id,
            message_id: None,
            message_id_header,
            raw_sha256,
            recipient,
            subject: outbound.subject,
            automatic: true,
            now,
        })))
    }
}

const ACKNOWLEDGEMENT_TEXT: &str = "Здравствуйте!\n\nМы получили ваше обращение и ответим как можно скорее. \
Чтобы дополнить его, просто ответьте на это письмо.\n\n\
Hello,\n\nWe have received your request and will answer as soon as we can. \
To add to it, simply reply to this e-mail.\n";

/// A ticket subject from an e-mail subject: trimmed and bounded; "(no subject)" when empty.
fn ticket_subject(subject: &str) -> String {
    let trimmed: String = subject
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(250)
        .collect();
    if trimmed.is_empty() {
        "(без темы / no subject)".into()
    } else {
        trimmed
    }
}

/// The message body from the visible text: never empty, never beyond the domain's bound (the
/// raw message keeps everything).
fn message_body(visible: &str, attachments: &[AttachmentMeta]) -> String {
    let text = visible.trim();
    if text.is_empty() {
        return if attachments.is_empty() {
            "(пустое письмо / empty e-mail)".into()
        } else {
            "(вложения / attachments)".into()
        };
    }
    if text.chars().count() > MAX_BODY_CHARS {
        let mut cut: String = text.chars().take(MAX_BODY_CHARS - 100).collect();
        cut.push_str(
            "\n\n[… обрезано, полный текст в исходном письме / truncated, see the raw e-mail]",
        );
        return cut;
    }
    text.to_owned()
}
