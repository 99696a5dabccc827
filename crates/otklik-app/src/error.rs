//! The errors of use cases. The web layer maps each variant to one HTTP status and a stable code.

use otklik_domain::DomainError;
use otklik_domain::permission::Denied;
use otklik_store::StoreError;

/// Why a use case refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No credentials, or credentials that do not identify an active agent.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller may not perform this kind of action at all.
    #[error("{0}")]
    Forbidden(Denied),
    /// The object does not exist *or the caller may not see it*: the two are indistinguishable on
    /// purpose, so ids of hidden objects are never confirmed.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A domain rule refused the change.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A referenced object (assignee, team, customer) does not exist or is unusable.
    #[error("{field}: {reason}")]
    InvalidReference { field: &'static str, reason: String },
    /// A unique rule was broken ("an agent with this e-mail exists").
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The same idempotency key was sent with a different request.
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    /// Input larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// The caller is refused for a reason of their own making that is not a role (a wrong
    /// identity signature, an identity the site requires); `code` is stable for clients.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// The caller sent too much too fast; try again after `retry_after_seconds`.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_seconds: u64,
    },
    /// Storage failed; details are logged, not shown.
    #[error("storage failure")]
    Store(#[source] StoreError),
}

impl From<Denied> for AppError {
    fn from(denied: Denied) -> Self {
        AppError::Forbidden(denied)
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { what } => AppError::NotFound { what },
            StoreError::VersionConflict { what } => AppError::Conflict {
                code: "concurrent_update",
                message: format!(
                    "the {what} was changed by someone else at the same moment; retry"
                ),
            },
            StoreError::Conflict { constraint } if constraint == "agent_chat_status.capacity" => {
                AppError::Conflict {
                    code: "chat_capacity",
                    message: "set yourself online with a free chat slot to take this chat".into(),
                }
            }
            other => AppError::Store(other),
        }
    }
}

/// The result of every use case.
pub type AppResult<T> = Result<T, AppError>;
