//! Messages of a ticket: public replies (seen by the customer) and internal notes (staff only).

use jiff::Timestamp;

use crate::DomainError;
use crate::attachment::AttachmentMeta;
use crate::ids::{AgentId, CustomerId, MessageId, TicketId};
use crate::ticket::{Channel, string_enum};

string_enum!(
    /// Whether the customer sees a message.
    MessageVisibility {
        /// Sent to the customer on the ticket's channel.
        Public = "public",
        /// Staff only.
        Internal = "internal",
    }
);

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Author {
    Agent(AgentId),
    Customer(CustomerId),
    System,
}

/// Message bodies are plain text here; this bound keeps one message under a megabyte.
pub const MAX_BODY_CHARS: usize = 200_000;

/// A validated message body: not blank, at most [`MAX_BODY_CHARS`] characters.
pub fn parse_body(raw: &str) -> Result<String, DomainError> {
    if raw.trim().is_empty() {
        return Err(DomainError::invalid("body", "must not be empty"));
    }
    if raw.chars().count() > MAX_BODY_CHARS {
        return Err(DomainError::invalid(
            "body",
            format!("must be at most {MAX_BODY_CHARS} characters"),
        ));
    }
    Ok(raw.replace("\r\n", "\n"))
}

/// One message of a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub ticket_id: TicketId,
    pub author: Author,
    pub visibility: MessageVisibility,
    pub channel: Channel,
    pub body: String,
    pub attachments: Vec<AttachmentMeta>,
    pub created_at: Timestamp,
}
