//! The email channel's records and rules: mailboxes, the e-mails received and sent (each kept
//! with its raw bytes), the outbox's retry schedule and the cap on automatic mail.
//!
//! Parsing and building MIME lives in `otklik-email`; talking IMAP/SMTP in
//! `otklik-mail-transport`. Here are only the facts the store keeps and the decisions that do
//! not need a message in hand.

use jiff::{SignedDuration, Timestamp};

use crate::DomainError;
use crate::ids::{EmailId, MailboxId, MessageId, TicketId};
use crate::ticket::string_enum;

/// A support address and how Otklik reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: MailboxId,
    /// A short name for the CLI and the admin pages (`support`, `returns`).
    pub name: String,
    /// The address customers write to; replies go out from it.
    pub address: String,
    /// `imaps://user:password@host:993/INBOX`; `None` when mail arrives by pipe or SMTP only.
    pub imap_url: Option<String>,
    /// `smtps://user:password@host:465`; `None` means replies cannot be sent yet.
    pub smtp_url: Option<String>,
    /// Send an automatic acknowledgement when a customer opens a ticket by e-mail.
    pub auto_acknowledge: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Validates a mailbox name: 1–64 characters of letters, digits, `-`, `_` or `.`.
pub fn parse_mailbox_name(raw: &str) -> Result<String, DomainError> {
    let name = raw.trim();
    let valid = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(name.to_lowercase())
    } else {
        Err(DomainError::invalid(
            "name",
            "use 1-64 letters, digits, '-', '_' or '.'",
        ))
    }
}

string_enum!(
    /// Whether an e-mail came in or goes out.
    EmailDirection {
        Inbound = "inbound",
        Outbound = "outbound",
    }
);

string_enum!(
    /// Where an e-mail is in its life.
    EmailStatus {
        /// Received and added to a ticket.
        Processed = "processed",
        /// Received but could not be parsed; kept with its raw bytes for an admin.
        Quarantined = "quarantined",
        /// Received and deliberately not added to a ticket (a bounce, our own mail come back).
        Ignored = "ignored",
        /// Waiting in the outbox for its next attempt.
        Queued = "queued",
        /// Accepted by the SMTP server.
        Sent = "sent",
        /// Given up: a permanent refusal, a bounce, or too many temporary failures.
        Failed = "failed",
    }
);

/// One e-mail, in or out. Its raw bytes are a blob (`raw_sha256`); the message it became (or
/// came from) is `message_id` on `ticket_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRecord {
    pub id: EmailId,
    pub mailbox_id: MailboxId,
    pub direction: EmailDirection,
    pub status: EmailStatus,
    /// Why it was quarantined, ignored or failed, or the last temporary error, for a person.
    pub status_reason: Option<String>,
    /// Unique among e-mails of the same direction: `mid:<Message-ID>` or `sha256:<raw hash>`.
    pub dedup_key: String,
    /// The Message-ID header without angle brackets (fixed when queued, for outbound mail).
    pub message_id_header: Option<String>,
    pub ticket_id: Option<TicketId>,
    pub message_id: Option<MessageId>,
    pub raw_sha256: String,
    pub from_address: Option<String>,
    /// To and Cc addresses (outbound: every envelope recipient).
    pub recipients: Vec<String>,
    pub subject: String,
    /// Sanitised HTML body for display (inbound), `cid:` images pointing at attachments.
    pub html_body: Option<String>,
    /// Quoted history and signature folded away from the message body, for display on demand.
    pub folded_text: Option<String>,
    /// Sent by Otklik without a person (an acknowledgement): counts against the hourly cap.
    pub automatic: bool,
    pub attempts: i32,
    /// Outbound: when the next attempt is due (also the lease of a worker that claimed it).
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// How many automatic e-mails one recipient may get per hour: an auto-responder on the other
/// side can never turn Otklik into a mail storm.
pub const AUTOMATIC_MAILS_PER_RECIPIENT_PER_HOUR: i64 = 3;

/// Temporary failures tolerated before an outbound e-mail is marked failed.
pub const MAX_SEND_ATTEMPTS: i32 = 10;

/// When to retry after the `attempts`-th temporary failure: 1, 2, 5, 10, 30 minutes, then
/// hourly (RFC 5321 asks for patience; a customer waiting for a reply asks for speed first).
pub fn retry_delay(attempts: i32) -> SignedDuration {
    let minutes = match attempts {
        ..=1 => 1,
        2 => 2,
        3 => 5,
        4 => 10,
        5 => 30,
        _ => 60,
    };
    SignedDuration::from_mins(minutes)
}

/// What the outbox does after a send attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    TemporaryFailure(String),
    PermanentFailure(String),
}

impl EmailRecord {
    /// The record after a send attempt at `now`: sent, retried later, or failed for good.
    pub fn after_attempt(&self, outcome: SendOutcome, now: Timestamp) -> EmailRecord {
        let mut next = self.clone();
        next.attempts += 1;
        next.updated_at = now;
        match outcome {
            SendOutcome::Sent => {
                next.status = EmailStatus::Sent;
                next.status_reason = None;
                next.next_attempt_at = None;
            }
            SendOutcome::TemporaryFailure(reason) if next.attempts < MAX_SEND_ATTEMPTS => {
                next.status = EmailStatus::Queued;
                next.status_reason = Some(reason);
                next.next_attempt_at = Some(
                    now.saturating_add(retry_delay(next.attempts))
                        .unwrap_or(now),
                );
            }
            SendOutcome::TemporaryFailure(reason) => {
                next.status = EmailStatus::Failed;
                next.status_reason = Some(format!(
                    "gave up after {} attempts; last error: {reason}",
                    next.attempts
                ));
                next.next_attempt_at = None;
            }
            SendOutcome::PermanentFailure(reason) => {
                next.status = EmailStatus::Failed;
                next.status_reason = Some(reason);
                next.next_attempt_at = None;
            }
        }
        next
    }

    /// The record queued again by a person ("retry" on a failed message).
    pub fn requeued(&self, now: Timestamp) -> Result<EmailRecord, DomainError> {
        if self.direction != EmailDirection::Outbound || self.status != EmailStatus::Failed {
            return Err(DomainError::invalid(
                "status",
                "only a failed outbound e-mail can be retried",
            ));
        }
        let mut next = self.clone();
        next.status = EmailStatus::Queued;
        next.attempts = 0;
        next.next_attempt_at = Some(now);
        next.updated_at = now;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(now: Timestamp) -> EmailRecord {
        EmailRecord {
            id: EmailId::new(),
            mailbox_id: MailboxId::new(),
            direction: EmailDirection::Outbound,
            status: EmailStatus::Queued,
            status_reason: None,
            dedup_key: "mid:x@y".into(),
            message_id_header: Some("x@y".into()),
            ticket_id: None,
            message_id: None,
            raw_sha256: "00".into(),
            from_address: None,
            recipients: vec!["c@example.com".into()],
            subject: "s".into(),
            html_body: None,
            folded_text: None,
            automatic: false,
            attempts: 0,
            next_attempt_at: Some(now),
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_temporary_failure_is_retried_later_with_growing_delays() {
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let once = queued(now).after_attempt(SendOutcome::TemporaryFailure("451".into()), now);
        assert_eq!(once.status, EmailStatus::Queued);
        assert_eq!(
            once.next_attempt_at,
            Some(now + SignedDuration::from_mins(1))
        );
        let twice = once.after_attempt(SendOutcome::TemporaryFailure("451".into()), now);
        assert_eq!(
            twice.next_attempt_at,
            Some(now + SignedDuration::from_mins(2))
        );
        assert_eq!(twice.status_reason.as_deref(), Some("451"));
    }

    #[test]
    fn too_many_temporary_failures_end_in_failed_with_the_last_reason() {
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let mut record = queued(now);
        for _ in 0..MAX_SEND_ATTEMPTS {
            record = record.after_attempt(SendOutcome::TemporaryFailure("timeout".into()), now);
        }
        assert_eq!(record.status, EmailStatus::Failed);
        assert!(record.status_reason.unwrap().contains("timeout"));
        assert_eq!(record.next_attempt_at, None);
    }

    #[test]
    fn a_permanent_failure_fails_at_once_and_can_be_requeued_by_a_person() {
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        let failed = queued(now).after_attempt(
            SendOutcome::PermanentFailure("550 no such user".into()),
            now,
        );
        assert_eq!(failed.status, EmailStatus::Failed);
        let again = failed.requeued(now).unwrap();
        assert_eq!((again.status, again.attempts), (EmailStatus::Queued, 0));
        assert!(
            again.requeued(now).is_err(),
            "a queued e-mail is not retried twice"
        );
    }

    #[test]
    fn mailbox_names_are_short_words() {
        assert_eq!(parse_mailbox_name(" Support ").unwrap(), "support");
        assert!(parse_mailbox_name("").is_err());
        assert!(parse_mailbox_name("a b").is_err());
        assert!(parse_mailbox_name(&"x".repeat(65)).is_err());
    }
}
