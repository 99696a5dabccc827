//! The one error type of domain rules.

use crate::ticket::TicketStatus;

/// A domain rule refused a change. Each variant maps to a stable API error code in the web layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The ticket status machine does not allow this step.
    #[error("a ticket cannot go from {from} to {to}")]
    InvalidTransition {
        from: TicketStatus,
        to: TicketStatus,
    },
    /// A value failed validation; `field` names the input, `reason` says why in plain words.
    #[error("{field}: {reason}")]
    Validation { field: &'static str, reason: String },
    /// The ticket was merged into another one and only the survivor takes changes.
    #[error("the ticket was merged into ticket #{survivor_number}")]
    TicketMerged { survivor_number: i64 },
    /// A closed ticket is final: a new request opens a new ticket.
    #[error("the ticket is closed")]
    TicketClosed,
    /// The operation would merge an object into itself or into an already merged one.
    #[error("{0}")]
    InvalidMerge(String),
}

impl DomainError {
    /// Shorthand for a validation failure.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::Validation {
            field,
            reason: reason.into(),
        }
    }
}
