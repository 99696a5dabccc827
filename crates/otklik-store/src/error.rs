//! The errors of the storage port.

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A mutation named a row that does not exist.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// An update expected a version that is no longer current; reload and retry.
    #[error("{what} was changed concurrently")]
    VersionConflict { what: &'static str },
    /// A unique rule was broken; `constraint` is a stable name such as `agents.email`.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// This backend cannot do that (for example an online file backup on PostgreSQL).
    #[error("not supported by this backend: {0}")]
    Unsupported(&'static str),
    /// The database's schema is newer than this build: a newer version of Otklik upgraded it
    /// (an operator rolled the binary back). Nothing is changed; the message says what to do.
    #[error(
        "the database was upgraded by a newer version of Otklik: it has migration {migration}, \
         which this version does not know. Run that newer version, or restore the backup taken \
         before the upgrade"
    )]
    SchemaTooNew { migration: String },
    /// The database is unreachable, failed, or returned something unexpected.
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps any driver error.
    pub fn database(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Database(Box::new(error))
    }

    /// Wraps a message as a database error (for corrupt rows and the like).
    pub fn corrupt(message: impl Into<String>) -> Self {
        StoreError::Database(message.into().into())
    }
}

/// The result of every store call.
pub type StoreResult<T> = Result<T, StoreError>;
