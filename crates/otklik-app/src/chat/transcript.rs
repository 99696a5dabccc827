//! "E-mail me the transcript": the visitor's chat, as plain text, to their address.
//!
//! Anyone can open a chat and type any address, so this could relay text to strangers: it is
//! an automatic e-mail (marked `Auto-Submitted`), counted against the same hourly cap per
//! recipient as acknowledgements, and sent only for a chat that has ended.

use otklik_domain::DomainError;
use otklik_domain::chat::ChatState;
use otklik_domain::email::AUTOMATIC_MAILS_PER_RECIPIENT_PER_HOUR;
use otklik_domain::ids::{EmailId, TicketId};
use otklik_store::{Mutation, UnitOfWork};

use super::{EntryAuthor, VisitorSession};
use crate::mail::domain_of;
use crate::mail::outbox::{QueuedEmail, queued_email};
use crate::{App, AppError, AppResult};

impl App {
    /// Queues the transcript of a visitor's chat to `email` (or the address they gave).
    pub async fn email_transcript(
        &self,
        session: &VisitorSession,
        ticket_id: TicketId,
        email: Option<String>,
    ) -> AppResult<()> {
        let chat = self.visitor_chat(session, ticket_id).await?;
        if chat.is_live() {
            return Err(AppError::Conflict {
                code: "chat_live",
                message: "the transcript can be sent once the chat has ended".into(),
            });
        }
        let ticket = self
            .store
            .find_ticket(ticket_id)
            .await?
            .ok_or(AppError::NotFound { what: "chat" })?;
        let recipient = match email.filter(|email| !email.trim().is_empty()) {
            Some(email) => otklik_domain::customer::normalize_email(&email)?,
            None => self
                .customer_email(&ticket)
                .await?
                .ok_or_else(|| DomainError::invalid("email", "say where to send the transcript"))?,
        };
        let mailbox = match session.site.mailbox_id {
            Some(mailbox_id) => self.store.find_mailbox(mailbox_id).await?,
            None => self.store.list_mailboxes().await?.into_iter().next(),
        }
        .ok_or(AppError::Conflict {
            code: "email_not_configured",
            message: "this helpdesk sends no e-mail yet".into(),
        })?;
        let now = self.clock.now();
        let hour_ago = now
            .checked_sub(jiff::SignedDuration::from_hours(1))
            .unwrap_or(now);
        if self
            .store
            .count_automatic_emails_since(&recipient, hour_ago)
            .await?
            >= AUTOMATIC_MAILS_PER_RECIPIENT_PER_HOUR
        {
            return Err(AppError::RateLimited {
                message: "too many automatic e-mails to this address; try again later".into(),
                retry_after_seconds: 3600,
            });
        }
        let mut text = format!("{} — #{}\n\n", session.site.name, ticket.number);
        let mut after = 0;
        loop {
            let entries = self
                .store
                .list_chat_entries(ticket_id, after, super::ENTRIES_PAGE)
                .await?;
            let full = entries.len() == super::ENTRIES_PAGE as usize;
            if let Some(last) = entries.last() {
                after = last.seq;
            }
            for view in self.entry_views(ticket_id, entries).await? {
                let Some(body) = &view.body else { continue };
                let who = match &view.author {
                    EntryAuthor::Visitor => "Вы / You".to_owned(),
                    EntryAuthor::Agent { name } => name.clone(),
                    EntryAuthor::System => continue,
                };
                let at = view.entry.created_at.strftime("%Y-%m-%d %H:%M UTC");
                text.push_str(&format!("[{at}] {who}:\n{body}\n"));
                for attachment in &view.attachments {
                    text.push_str(&format!("  📎 {}\n", attachment.file_name));
                }
                text.push('\n');
            }
            if !full {
                break;
            }
        }
        let key = self.reply_token_key().await?;
        let email_id = EmailId::new();
        let message_id_header = otklik_email::outbound_message_id(
            email_id.0,
            ticket_id.0,
            &key,
            domain_of(&mailbox.address),
        );
        let subject = format!("Переписка в чате / Chat transcript [#{}]", ticket.number);
        let outbound = otklik_email::OutboundEmail {
            from: otklik_email::Mailbox {
                address: mailbox.address.clone(),
                name: Some(session.site.name.clone()),
            },
            to: vec![otklik_email::Mailbox {
                address: recipient.clone(),
                name: None,
            }],
            cc: Vec::new(),
            reply_to: Some(otklik_email::Mailbox {
                address: otklik_email::plus_address(&mailbox.address, ticket_id.0, &key),
                name: None,
            }),
            subject: subject.clone(),
            message_id: message_id_header.clone(),
            in_reply_to: None,
            references: Vec::new(),
            date: now,
            text,
            html: None,
            attachments: Vec::new(),
            automatic: true,
        };
        let raw = outbound
            .to_bytes()
            .map_err(|error| DomainError::invalid("email", error.to_string()))?;
        let raw_sha256 = self.blobs.put(raw).await?;
        let record = queued_email(QueuedEmail {
            id: email_id,
            mailbox: &mailbox,
            ticket_id,
            message_id: None,
            message_id_header,
            raw_sha256,
            recipient,
            subject,
            automatic: true,
            now,
        });
        debug_assert!(matches!(chat.state, ChatState::Ended | ChatState::Offline));
        self.store
            .commit(UnitOfWork::new().with(Mutation::InsertEmail(record)))
            .await?;
        Ok(())
    }
}
