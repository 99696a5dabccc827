//! The durable outbox: an agent's public reply on an e-mail ticket becomes an outbound e-mail
//! in the same transaction as the message (its Message-ID fixed then), and workers on any node
//! deliver due e-mails, retrying temporary failures with backoff.

use jiff::{SignedDuration, Timestamp};
use otklik_domain::DomainError;
use otklik_domain::email::{EmailDirection, EmailRecord, EmailStatus, Mailbox, SendOutcome};
use otklik_domain::ids::{EmailId, MessageId, TicketId};
use otklik_domain::message::Message;
use otklik_domain::permission::{Action, Principal};
use otklik_domain::ticket::{Channel, Ticket};
use otklik_store::{Mutation, UnitOfWork};

use super::{EmailRoute, MailTransport, SendFailure, domain_of};
use crate::{App, AppError, AppResult};

/// How long a claimed e-mail is reserved for the worker that claimed it. A worker that dies
/// mid-send leaves it to be retried when the lease ends (at-least-once; the fixed Message-ID
/// lets the receiving side recognise a rare repeat).
const SEND_LEASE: SignedDuration = SignedDuration::from_mins(5);
/// E-mails claimed per round.
const CLAIM_BATCH: u32 = 20;

/// What an outbound e-mail is when it enters the outbox.
pub(crate) struct QueuedEmail<'a> {
    pub id: EmailId,
    pub mailbox: &'a Mailbox,
    pub ticket_id: TicketId,
    pub message_id: Option<MessageId>,
    pub message_id_header: String,
    pub raw_sha256: String,
    pub recipient: String,
    pub subject: String,
    pub automatic: bool,
    pub now: Timestamp,
}

/// The outbox row of an e-mail whose bytes (and so its Message-ID) are already fixed; due now.
pub(crate) fn queued_email(queued: QueuedEmail<'_>) -> EmailRecord {
    EmailRecord {
        id: queued.id,
        mailbox_id: queued.mailbox.id,
        direction: EmailDirection::Outbound,
        status: EmailStatus::Queued,
        status_reason: None,
        dedup_key: format!("mid:{}", queued.message_id_header),
        message_id_header: Some(queued.message_id_header),
        ticket_id: Some(queued.ticket_id),
        message_id: queued.message_id,
        raw_sha256: queued.raw_sha256,
        from_address: Some(queued.mailbox.address.clone()),
        recipients: vec![queued.recipient],
        subject: queued.subject,
        html_body: None,
        folded_text: None,
        automatic: queued.automatic,
        attempts: 0,
        next_attempt_at: Some(queued.now),
        created_at: queued.now,
        updated_at: queued.now,
    }
}

/// What one outbox round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

impl App {
    /// The outbound e-mail for an agent's public reply, if the ticket is answered by e-mail:
    /// it came in by e-mail (a mailbox and an address to answer are known) or was opened on the
    /// e-mail channel for a customer with an e-mail identity.
    pub(crate) async fn outbound_reply(
        &self,
        ticket: &Ticket,
        message: &Message,
    ) -> AppResult<Option<EmailRecord>> {
        self.outbound_reply_via(ticket, message, EmailRoute::IfEmailTicket)
            .await
    }

    /// The outbound e-mail for a reply, routed as `route` says.
    pub(crate) async fn outbound_reply_via(
        &self,
        ticket: &Ticket,
        message: &Message,
        route: EmailRoute,
    ) -> AppResult<Option<EmailRecord>> {
        let history = self.store.list_ticket_emails(ticket.id).await?;
        let last_inbound = history
            .iter()
            .rev()
            .find(|email| email.direction == EmailDirection::Inbound && email.ticket_id.is_some());
        let preferred = match route {
            EmailRoute::IfEmailTicket => {
                if last_inbound.is_none() && ticket.channel != Channel::Email {
                    return Ok(None);
                }
                None
            }
            EmailRoute::Via(mailbox_id) => mailbox_id,
        };
        let mailbox = match (last_inbound, preferred) {
            (Some(email), _) => self.store.find_mailbox(email.mailbox_id).await?,
            (None, Some(mailbox_id)) => self.store.find_mailbox(mailbox_id).await?,
            (None, None) => self.store.list_mailboxes().await?.into_iter().next(),
        };
        let Some(mailbox) = mailbox else {
            return Ok(None);
        };
        let recipient = match last_inbound.and_then(|email| email.from_address.clone()) {
            Some(address) => Some(address),
            None => self.customer_email(ticket).await?,
        };
        let Some(recipient) = recipient else {
            return Ok(None);
        };
        let key = self.reply_token_key().await?;
        let email_id = EmailId::new();
        let message_id_header = otklik_email::outbound_message_id(
            email_id.0,
            ticket.id.0,
            &key,
            domain_of(&mailbox.address),
        );
        let mut references: Vec<String> = history
            .iter()
            .filter_map(|email| email.message_id_header.clone())
            .collect();
        if references.len() > 20 {
            references.drain(..references.len() - 20);
        }
        let mut attachments = Vec::with_capacity(message.attachments.len());
        for attachment in &message.attachments {
            let bytes = self
                .blobs
                .get(&attachment.sha256)
                .await?
                .ok_or(AppError::NotFound { what: "attachment" })?;
            attachments.push(otklik_email::OutboundAttachment {
                file_name: attachment.file_name.clone(),
                content_type: attachment.content_type.clone(),
                bytes,
            });
        }
        let subject = otklik_email::reply_subject(&ticket.subject, ticket.number);
        // The helpdesk's name (Admin → Settings) is the display name customers see.
        let helpdesk_name = self.instance_settings().await?.helpdesk_name;
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
            reply_to: None,
            subject: subject.clone(),
            message_id: message_id_header.clone(),
            in_reply_to: last_inbound.and_then(|email| email.message_id_header.clone()),
            references,
            date: message.created_at,
            text: message.body.clone(),
            html: Some(otklik_email::text_to_html(&message.body)),
            attachments,
            automatic: false,
        };
        let raw = outbound
            .to_bytes()
            .map_err(|error| DomainError::invalid("email", error.to_string()))?;
        let raw_sha256 = self.blobs.put(raw).await?;
        Ok(Some(queued_email(QueuedEmail {
            id: email_id,
            mailbox: &mailbox,
            ticket_id: ticket.id,
            message_id: Some(message.id),
            message_id_header,
            raw_sha256,
            recipient,
            subject,
            automatic: false,
            now: message.created_at,
        })))
    }

    pub(crate) async fn customer_email(&self, ticket: &Ticket) -> AppResult<Option<String>> {
        let customer = self.store.find_customer(ticket.customer_id).await?;
        Ok(customer.and_then(|customer| {
            customer
                .identities
                .iter()
                .find(|identity| {
                    identity.value.kind == otklik_domain::customer::IdentityKind::Email
                })
                .map(|identity| identity.value.value.clone())
        }))
    }

    /// Sends every due outbound e-mail (one round of the outbox worker; also what tests drive).
    pub async fn deliver_due_emails(&self, sender: &dyn MailTransport) -> AppResult<OutboxReport> {
        let mut report = OutboxReport::default();
        loop {
            let now = self.clock.now();
            let lease_until = now.checked_add(SEND_LEASE).unwrap_or(now);
            let claimed = self
                .store
                .claim_due_emails(now, lease_until, CLAIM_BATCH)
                .await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            // The batch goes out concurrently (each send waits on a remote server), and its
            // outcomes are saved in one unit.
            let sends = claimed.into_iter().map(|email| async move {
                let outcome = self.send_one(sender, &email).await;
                (email, outcome)
            });
            let mut unit = UnitOfWork::new();
            for (email, outcome) in futures::future::join_all(sends).await {
                let after = email.after_attempt(outcome, self.clock.now());
                match after.status {
                    EmailStatus::Sent => report.sent += 1,
                    EmailStatus::Failed => report.failed += 1,
                    _ => report.retried += 1,
                }
                if after.status != EmailStatus::Sent {
                    tracing::warn!(
                        email_id = %after.id,
                        status = %after.status,
                        reason = after.status_reason.as_deref().unwrap_or_default(),
                        "e-mail not delivered"
                    );
                }
                unit.push(Mutation::UpdateEmail(after));
            }
            self.store.commit(unit).await?;
        }
    }

    async fn send_one(&self, sender: &dyn MailTransport, email: &EmailRecord) -> SendOutcome {
        let mailbox = match self.store.find_mailbox(email.mailbox_id).await {
            Ok(Some(mailbox)) => mailbox,
            Ok(None) => return SendOutcome::PermanentFailure("the mailbox was removed".into()),
            Err(error) => return SendOutcome::TemporaryFailure(error.to_string()),
        };
        let Some(smtp_url) = mailbox.smtp_url.as_deref() else {
            return SendOutcome::PermanentFailure(format!(
                "mailbox {} has no SMTP server configured",
                mailbox.name
            ));
        };
        let raw = match self.blobs.get(&email.raw_sha256).await {
            Ok(Some(raw)) => raw,
            Ok(None) => return SendOutcome::PermanentFailure("the message file is missing".into()),
            Err(error) => return SendOutcome::TemporaryFailure(error.to_string()),
        };
        match sender
            .send(smtp_url, &mailbox.address, &email.recipients, &raw)
            .await
        {
            Ok(()) => SendOutcome::Sent,
            Err(SendFailure::Temporary(reason)) => SendOutcome::TemporaryFailure(reason),
            Err(SendFailure::Permanent(reason)) => SendOutcome::PermanentFailure(reason),
        }
    }

    /// Queues a failed outbound e-mail again ("retry" in the UI and API).
    pub async fn retry_email(&self, principal: &Principal, id: EmailId) -> AppResult<EmailRecord> {
        principal.require(Action::WriteTickets)?;
        let email = self.visible_email(principal, id).await?;
        let now = self.clock.now();
        let queued = email.requeued(now)?;
        self.store
            .commit(UnitOfWork::new().with(Mutation::UpdateEmail(queued.clone())))
            .await?;
        Ok(queued)
    }

    /// An e-mail the principal may see: one of a visible ticket, or any e-mail for admins.
    pub(crate) async fn visible_email(
        &self,
        principal: &Principal,
        id: EmailId,
    ) -> AppResult<EmailRecord> {
        let email = self
            .store
            .find_email(id)
            .await?
            .ok_or(AppError::NotFound { what: "email" })?;
        let visible = match email.ticket_id {
            Some(ticket_id) => match self.store.find_ticket(ticket_id).await? {
                Some(ticket) => principal.can_view_ticket(&ticket),
                None => false,
            },
            None => principal.require(Action::ManageChannels).is_ok(),
        };
        if visible {
            Ok(email)
        } else {
            Err(AppError::NotFound { what: "email" })
        }
    }
}
