//! Otklik's mail protocol adapters: IMAP fetching, the inbound SMTP listener and SMTP sending.
//!
//! This crate knows nothing of tickets or databases. Inbound mail is handed, as raw bytes, to an
//! [`InboundSink`]; the source is acknowledged (IMAP cursor advanced, SMTP `250`) only after the
//! sink answered that the message is durably handled. A temporary sink failure leaves the message
//! with its source (IMAP keeps it, the SMTP client gets `451` and retries), so nothing is lost.

mod imap;
mod settings;
mod sink;
mod smtp_listener;
mod smtp_send;
mod stop;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use imap::{
    CursorStore, Deferred, FetchReport, ImapCursor, ImapError, ImapSettings, ImapWatchOptions,
    fetch_new, test_imap, watch_imap,
};
pub use settings::SettingsError;
pub use sink::{DeliveryError, Envelope, Handled, InboundSink};
pub use smtp_listener::{
    SmtpListenerConfig, SmtpSessionLimits, serve_smtp, serve_smtp_with_limits,
};
pub use smtp_send::{SendError, SmtpCredentials, SmtpSecurity, SmtpSettings, send_raw, test_smtp};
