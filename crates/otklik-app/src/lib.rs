//! Otklik's use cases.
//!
//! Each public method of [`App`] is one thing a person or an integrator can do: it checks the
//! caller's permission, loads what it needs, lets the domain decide the new state, and commits
//! one [`UnitOfWork`](otklik_store::UnitOfWork) holding the change, its audit event and (for
//! retried POSTs) its idempotency key. Nothing here knows about HTTP or SQL: the web crate
//! calls these methods, the store crates persist the units.

pub mod auth;
pub mod chat;
pub mod customers;
mod error;
pub mod idempotency;
pub mod leases;
pub mod mail;
pub mod password_reset;
pub mod presence;
pub mod search;
pub mod settings;
pub mod split;
pub mod staff;
pub mod tickets;
pub mod ui_queries;
pub mod views;

use std::sync::Arc;

use otklik_domain::clock::Clock;
use otklik_store::Store;
use otklik_store::blobs::BlobStore;

pub use error::{AppError, AppResult};

/// Limits that protect the service from oversized input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single attachment, in bytes.
    pub max_attachment_bytes: usize,
    /// Most attachments on one message.
    pub max_attachments_per_message: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attachment_bytes: 10 * 1024 * 1024,
            max_attachments_per_message: 10,
        }
    }
}

/// The application: every use case, sharing one store, blob store and clock.
#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub clock: Arc<dyn Clock>,
    pub limits: Limits,
    /// Mail protocols, when this process talks to mail servers ("test connection").
    pub mail_transport: Option<Arc<dyn mail::MailTransport>>,
    /// The reply-token key, read from the database once per process.
    reply_token_key: Arc<tokio::sync::OnceCell<otklik_email::ReplyTokenKey>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl App {
    /// An application over the given store, blob store and clock.
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            blobs,
            clock,
            limits: Limits::default(),
            mail_transport: None,
            reply_token_key: Arc::default(),
        }
    }

    /// The same application on another clock (the demo generator moves time itself).
    pub fn with_clock(&self, clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            ..self.clone()
        }
    }

    /// The same application, talking to mail servers through `transport`.
    pub fn with_mail_transport(mut self, transport: Arc<dyn mail::MailTransport>) -> Self {
        self.mail_transport = Some(transport);
        self
    }
}

/// How many times a use case reloads and reapplies a change that lost an optimistic-concurrency
/// race before giving up with a conflict.
pub(crate) const MAX_ATTEMPTS: usize = 5;
