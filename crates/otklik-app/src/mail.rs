//! The email channel's use cases: mailboxes, ingesting a raw e-mail into the right ticket,
//! queueing replies in the durable outbox, delivering it, and what admins do with mail that
//! went wrong (quarantine, failed replies).
//!
//! Protocols are not here: IMAP, the SMTP listener and the pipe hand raw bytes to
//! [`App::ingest_email`], and the outbox sends through the [`MailSender`] port, which the server
//! implements with `otklik-mail-transport`. MIME parsing and building is `otklik-email`.

mod admin;
mod ingest;
pub(crate) mod outbox;

use async_trait::async_trait;
use otklik_email::ReplyTokenKey;
use otklik_store::{Mutation, StoreError, UnitOfWork};
use rand::RngCore;

use crate::{App, AppResult};

pub use admin::{DEFAULT_MAILBOX, MailboxInput, redact_url};
pub use ingest::{IngestOutcome, MAX_RAW_EMAIL_BYTES};
pub use outbox::OutboxReport;

/// Why an SMTP server did not take a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendFailure {
    /// Worth retrying: 4xx replies, connection problems, timeouts.
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Retrying will not help: 5xx replies, refused recipients.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Mail protocols as the use cases need them; the server implements this with
/// `otklik-mail-transport`, tests with real servers or a recording fake.
#[async_trait]
pub trait MailTransport: Send + Sync {
    /// Hands `raw` to the SMTP server of `smtp_url` for `recipients`.
    async fn send(
        &self,
        smtp_url: &str,
        mail_from: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Result<(), SendFailure>;
    /// Connects, logs in and selects the folder of `imap_url`; the error says what failed.
    async fn check_imap(&self, imap_url: &str) -> Result<(), String>;
    /// Connects and greets (and logs in) on the SMTP server of `smtp_url`.
    async fn check_smtp(&self, smtp_url: &str) -> Result<(), String>;
}

/// What "test connection" found for each configured server of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxCheck {
    /// `None` when the mailbox has no IMAP settings; `Some(Err(reason))` when it failed.
    pub imap: Option<Result<(), String>>,
    pub smtp: Option<Result<(), String>>,
}

/// The name of the instance secret that signs reply tokens.
const REPLY_TOKEN_SECRET: &str = "email.reply_token";

impl App {
    /// The key that signs reply tokens, created once per installation and shared by all nodes.
    pub(crate) async fn reply_token_key(&self) -> AppResult<ReplyTokenKey> {
        let key = self
            .reply_token_key
            .get_or_try_init(|| self.load_or_create_reply_token_key())
            .await?;
        Ok(key.clone())
    }

    async fn load_or_create_reply_token_key(&self) -> AppResult<ReplyTokenKey> {
        if let Some(secret) = self.store.find_instance_secret(REPLY_TOKEN_SECRET).await? {
            return Ok(ReplyTokenKey::new(&secret));
        }
        let mut secret = vec![0_u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let unit = UnitOfWork::new().with(Mutation::InsertInstanceSecret {
            name: REPLY_TOKEN_SECRET.into(),
            secret: secret.clone(),
        });
        match self.store.commit(unit).await {
            Ok(_) => Ok(ReplyTokenKey::new(&secret)),
            // Another node created it first: use theirs.
            Err(StoreError::Conflict { .. }) => {
                let secret = self
                    .store
                    .find_instance_secret(REPLY_TOKEN_SECRET)
                    .await?
                    .ok_or_else(|| StoreError::corrupt("the reply-token secret vanished"))?;
                Ok(ReplyTokenKey::new(&secret))
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// The domain part of an address (`shop.test` of `support@shop.test`), for our Message-IDs.
pub(crate) fn domain_of(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map_or("otklik.invalid", |(_, domain)| domain)
}

/// How a reply finds its way to e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EmailRoute {
    /// Only when the ticket is an e-mail conversation (came in by e-mail or opened on the
    /// e-mail channel).
    IfEmailTicket,
    /// Whatever the channel (a chat that continues by e-mail), from this mailbox, or from the
    /// ticket's last inbound mailbox or the first mailbox when `None`.
    Via(Option<otklik_domain::ids::MailboxId>),
}
