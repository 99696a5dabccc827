//! The boundary between the protocols and the ingest use case.

use async_trait::async_trait;

/// What the sink did with a message. Every variant means "durably handled": the transport
/// acknowledges the message to its source (IMAP `\Seen` + cursor, SMTP `250`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handled {
    /// Stored as a new message.
    Stored,
    /// Already stored before (same Message-ID or raw hash); nothing new was written.
    Duplicate,
    /// Kept, raw, for a person to look at (unparseable, suspicious, over a limit).
    Quarantined,
    /// Deliberately dropped by a rule (for example our own looped-back notification).
    Ignored,
}

/// Why the sink could not take a message now. The transport does NOT acknowledge it, so the
/// source keeps the message and it is offered again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Nothing was stored (database down, disk full, lock timeout…); retry later.
    #[error("temporary failure: {0}")]
    Temporary(String),
}

/// The SMTP envelope of a message received by the SMTP listener (IMAP has none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path of `MAIL FROM`; empty for the null sender `<>` (bounces, auto-replies).
    pub mail_from: String,
    /// Every accepted `RCPT TO` address, in the order given.
    pub rcpt_to: Vec<String>,
}

/// Where inbound raw messages go. Implemented by the ingest use case.
#[async_trait]
pub trait InboundSink: Send + Sync {
    /// Store (or deliberately skip) one raw message. Return `Ok` only once the outcome is durable:
    /// the caller acknowledges the message to its source right after.
    async fn deliver(
        &self,
        raw: Vec<u8>,
        envelope: Option<Envelope>,
    ) -> Result<Handled, DeliveryError>;
}
