//! Typed identifiers. Every object id is a UUIDv7 (time-ordered, so indexes stay local) wrapped
//! in its own type, so a ticket id can never be passed where an agent id is expected.

use std::fmt;
use std::str::FromStr;

macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
            /// The id's 16 bytes, as stored by the SQLite backend.
            pub fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
            /// Rebuilds an id from stored bytes.
            pub fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(uuid::Uuid::from_bytes(bytes))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(text).map(Self)
            }
        }
    )+};
}

typed_id!(
    /// A ticket (a conversation with a customer about one request).
    TicketId,
    /// One message of a ticket: a public reply or an internal note.
    MessageId,
    /// A customer (a person, possibly known under several identities).
    CustomerId,
    /// One identity of a customer (an e-mail, a phone, a messenger id…).
    IdentityId,
    /// A staff member: agent, supervisor or admin.
    AgentId,
    /// A team of agents.
    TeamId,
    /// A tag.
    TagId,
    /// A file attached to a message.
    AttachmentId,
    /// An API token.
    TokenId,
    /// A record in the audit history.
    AuditEventId,
    /// A customer merge, kept so it can be explained and undone.
    CustomerMergeId,
    /// A saved view.
    ViewId,
    /// A support mailbox (an address with its IMAP/SMTP settings).
    MailboxId,
    /// One e-mail received or sent, with its raw bytes kept.
    EmailId,
    /// A chat site: the shop's pages where the chat widget runs.
    ChatSiteId,
    /// A visitor of a chat site (one browser, or one verified shop customer).
    VisitorId,
);
