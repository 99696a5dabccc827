//! Otklik's storage port.
//!
//! The rest of Otklik reads through the query methods of [`Store`] and writes through one
//! method, [`Store::commit`], which applies a [`UnitOfWork`] (a list of [`Mutation`]s) atomically:
//! every mutation of the unit is durable when `commit` returns, or none is. Use cases build the
//! unit from domain rules (the new state of a ticket, the audit event that records it, the
//! idempotency key that makes a retry safe) and the backend only persists it.
//!
//! Two backends implement the port (`otklik-store-sqlite`, `otklik-store-postgres`); both must
//! pass [`conformance`] (feature `testkit`). Backend-specific SQL never leaves those crates.
//!
//! This crate must not depend on a database driver, on HTTP, or on the app crate.

pub mod blobs;
#[cfg(feature = "testkit")]
pub mod conformance;
pub mod count_cache;
pub mod derived;
mod error;
pub mod events;
mod records;
mod unit_of_work;

use std::path::Path;

use async_trait::async_trait;
use otklik_domain::agent::{Agent, Tag, Team};
use otklik_domain::attachment::AttachmentMeta;
use otklik_domain::audit::StoredAuditEvent;
use otklik_domain::customer::{Customer, CustomerMerge, IdentityValue};
use otklik_domain::ids::{
    AgentId, AttachmentId, CustomerId, CustomerMergeId, TagId, TeamId, TicketId,
};
use otklik_domain::message::Message;
use otklik_domain::ticket::Ticket;

pub use error::{StoreError, StoreResult};
pub use records::*;
pub use unit_of_work::{CommitReceipt, Mutation, UnitOfWork};

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The storage port. Object-safe: the server holds an `Arc<dyn Store>` and nothing above this
/// crate names a backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend behind this store.
    fn backend(&self) -> Backend;

    /// Change events of every unit committed from now on, by any node (see [`events`]).
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<events::ChangeEvent>;

    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;

    /// Applies every mutation of `unit` in one transaction, durably, or none of them.
    ///
    /// Fails with [`StoreError::VersionConflict`] when an update's expected version is stale (the
    /// caller reloads and retries), with [`StoreError::Conflict`] when a unique rule is broken
    /// (its `constraint` names which), and with [`StoreError::NotFound`] when a mutation names a
    /// row that does not exist.
    async fn commit(&self, unit: UnitOfWork) -> StoreResult<CommitReceipt>;

    // Tickets and messages.

    /// The ticket with this id, merged or not.
    async fn find_ticket(&self, id: TicketId) -> StoreResult<Option<Ticket>>;
    /// The ticket with this human number.
    async fn find_ticket_by_number(&self, number: i64) -> StoreResult<Option<Ticket>>;
    /// One page of tickets matching the query, newest update first.
    async fn list_tickets(&self, query: &TicketQuery) -> StoreResult<Vec<Ticket>>;
    /// Every message of a ticket, oldest first, with attachment metadata.
    async fn list_messages(&self, ticket_id: TicketId) -> StoreResult<Vec<Message>>;
    /// An attachment's metadata.
    async fn find_attachment(&self, id: AttachmentId) -> StoreResult<Option<AttachmentMeta>>;

    // Customers.

    /// The customer with this id, with identities.
    async fn find_customer(&self, id: CustomerId) -> StoreResult<Option<Customer>>;
    /// The customers with these ids, with identities, in one read (names for a page of
    /// tickets). Unknown ids are left out; repeated ids give one customer; no order is promised.
    async fn find_customers(&self, ids: &[CustomerId]) -> StoreResult<Vec<Customer>>;
    /// The customer that owns this identity.
    async fn find_customer_by_identity(
        &self,
        identity: &IdentityValue,
    ) -> StoreResult<Option<Customer>>;
    /// One page of customers, newest first.
    async fn list_customers(&self, query: &CustomerQuery) -> StoreResult<Vec<Customer>>;
    /// Ids of every ticket of a customer (used to move them on merge).
    async fn list_customer_ticket_ids(&self, customer_id: CustomerId)
    -> StoreResult<Vec<TicketId>>;
    /// A merge record.
    async fn find_customer_merge(&self, id: CustomerMergeId) -> StoreResult<Option<CustomerMerge>>;
    /// Merges in which the customer was source or target, newest first.
    async fn list_customer_merges(
        &self,
        customer_id: CustomerId,
    ) -> StoreResult<Vec<CustomerMerge>>;

    // Staff.

    /// The agent with this id, with team ids.
    async fn find_agent(&self, id: AgentId) -> StoreResult<Option<Agent>>;
    /// The agent with this (normalised) e-mail.
    async fn find_agent_by_email(&self, email: &str) -> StoreResult<Option<Agent>>;
    /// One page of agents ordered by id.
    async fn list_agents(&self, page: &IdPage) -> StoreResult<Vec<Agent>>;
    /// How many agents exist (0 means the instance still needs its first admin).
    async fn count_agents(&self) -> StoreResult<i64>;
    /// The argon2id PHC string of an agent's password, if one is set.
    async fn find_password_hash(&self, agent_id: AgentId) -> StoreResult<Option<String>>;
    /// A team.
    async fn find_team(&self, id: TeamId) -> StoreResult<Option<Team>>;
    /// Every team, by name.
    async fn list_teams(&self) -> StoreResult<Vec<Team>>;
    /// A tag.
    async fn find_tag(&self, id: TagId) -> StoreResult<Option<Tag>>;
    /// Every tag, by name.
    async fn list_tags(&self) -> StoreResult<Vec<Tag>>;

    // Credentials.

    /// The token whose SHA-256 is `token_hash`.
    async fn find_token_by_hash(&self, token_hash: &[u8]) -> StoreResult<Option<ApiTokenRecord>>;
    /// The token whose SHA-256 is `token_hash` with its agent, as every API request needs
    /// them; backends may read both in one round trip.
    async fn find_token_with_agent(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<(ApiTokenRecord, Agent)>> {
        let Some(token) = self.find_token_by_hash(token_hash).await? else {
            return Ok(None);
        };
        Ok(self
            .find_agent(token.agent_id)
            .await?
            .map(|agent| (token, agent)))
    }
    /// An agent's tokens, newest first.
    async fn list_tokens(&self, agent_id: AgentId) -> StoreResult<Vec<ApiTokenRecord>>;
    /// The session whose SHA-256 is `id_hash`.
    async fn find_session(&self, id_hash: &[u8]) -> StoreResult<Option<SessionRecord>>;
    /// The set-up token whose SHA-256 is `token_hash`.
    async fn find_setup_token(&self, token_hash: &[u8]) -> StoreResult<Option<SetupTokenRecord>>;
    /// The result recorded for an idempotency key of a principal.
    async fn find_idempotency_key(
        &self,
        principal: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>>;

    // Search, counters and views.

    /// Tickets matching a full-text query, filters and visibility, best first.
    async fn search_tickets(&self, search: &TicketSearch) -> StoreResult<Vec<Ticket>>;
    /// Customers whose name or identities match a query, best first.
    async fn search_customers(
        &self,
        query: &otklik_search::SearchQuery,
        limit: u32,
    ) -> StoreResult<Vec<Customer>>;
    /// The messages of several tickets (without attachments), oldest first: for search snippets.
    async fn list_messages_of(&self, ticket_ids: &[TicketId]) -> StoreResult<Vec<Message>>;
    /// How many unmerged tickets match, from the maintained counters.
    async fn count_tickets(&self, query: &TicketCountQuery) -> StoreResult<i64>;
    /// Several counts at once (a page of views), in order; backends may answer them in one
    /// round trip.
    async fn count_tickets_many(&self, queries: &[TicketCountQuery]) -> StoreResult<Vec<i64>> {
        let mut counts = Vec::with_capacity(queries.len());
        for query in queries {
            counts.push(self.count_tickets(query).await?);
        }
        Ok(counts)
    }
    /// Shared views and the agent's own, by position.
    async fn list_views(
        &self,
        agent_id: AgentId,
    ) -> StoreResult<Vec<otklik_domain::view::SavedView>>;
    /// A view.
    async fn find_view(
        &self,
        id: otklik_domain::ids::ViewId,
    ) -> StoreResult<Option<otklik_domain::view::SavedView>>;
    /// Recomputes the search index and the counters from the tables (after a restore, or if
    /// ever in doubt); normal writes keep both current in their own transaction.
    async fn rebuild_derived_data(&self) -> StoreResult<()>;

    // Email.

    /// A mailbox.
    async fn find_mailbox(
        &self,
        id: otklik_domain::ids::MailboxId,
    ) -> StoreResult<Option<otklik_domain::email::Mailbox>>;
    /// The mailbox with this (normalised) name.
    async fn find_mailbox_by_name(
        &self,
        name: &str,
    ) -> StoreResult<Option<otklik_domain::email::Mailbox>>;
    /// Every mailbox, by name.
    async fn list_mailboxes(&self) -> StoreResult<Vec<otklik_domain::email::Mailbox>>;
    /// How far a mailbox's IMAP folder has been fetched.
    async fn find_imap_cursor(
        &self,
        mailbox_id: otklik_domain::ids::MailboxId,
    ) -> StoreResult<Option<ImapCursorRecord>>;
    /// An e-mail.
    async fn find_email(
        &self,
        id: otklik_domain::ids::EmailId,
    ) -> StoreResult<Option<otklik_domain::email::EmailRecord>>;
    /// The e-mail of this direction with this dedup key.
    async fn find_email_by_dedup_key(
        &self,
        direction: otklik_domain::email::EmailDirection,
        dedup_key: &str,
    ) -> StoreResult<Option<otklik_domain::email::EmailRecord>>;
    /// E-mails (either direction) whose Message-ID header is one of `message_ids`, newest
    /// first: how a reply finds its thread.
    async fn find_emails_by_message_ids(
        &self,
        message_ids: &[String],
    ) -> StoreResult<Vec<otklik_domain::email::EmailRecord>>;
    /// Every e-mail of a ticket, oldest first.
    async fn list_ticket_emails(
        &self,
        ticket_id: TicketId,
    ) -> StoreResult<Vec<otklik_domain::email::EmailRecord>>;
    /// A page of e-mails with a status, newest first.
    async fn list_emails(
        &self,
        query: &EmailQuery,
    ) -> StoreResult<Vec<otklik_domain::email::EmailRecord>>;
    /// How many automatic e-mails went (or wait to go) to `recipient` since `since`.
    async fn count_automatic_emails_since(
        &self,
        recipient: &str,
        since: jiff::Timestamp,
    ) -> StoreResult<i64>;
    /// Leases due outbound e-mails (see [`Mutation::ClaimDueEmails`]).
    async fn claim_due_emails(
        &self,
        now: jiff::Timestamp,
        lease_until: jiff::Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<otklik_domain::email::EmailRecord>> {
        let receipt = self
            .commit(UnitOfWork::new().with(Mutation::ClaimDueEmails {
                now,
                lease_until,
                limit,
            }))
            .await?;
        Ok(receipt.claimed_emails)
    }
    /// A named instance secret (the key that signs reply tokens).
    async fn find_instance_secret(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;

    // Live chat.

    /// A chat site.
    async fn find_chat_site(
        &self,
        id: otklik_domain::ids::ChatSiteId,
    ) -> StoreResult<Option<otklik_domain::chat::ChatSite>>;
    /// Every chat site, by name.
    async fn list_chat_sites(&self) -> StoreResult<Vec<otklik_domain::chat::ChatSite>>;
    /// A visitor.
    async fn find_visitor(
        &self,
        id: otklik_domain::ids::VisitorId,
    ) -> StoreResult<Option<otklik_domain::chat::Visitor>>;
    /// The visitor holding the token with this SHA-256.
    async fn find_visitor_by_token(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<otklik_domain::chat::Visitor>>;
    /// The visitor of a site with this verified external id.
    async fn find_visitor_by_external_id(
        &self,
        site_id: otklik_domain::ids::ChatSiteId,
        external_id: &str,
    ) -> StoreResult<Option<otklik_domain::chat::Visitor>>;
    /// The chat of a ticket.
    async fn find_chat(
        &self,
        ticket_id: TicketId,
    ) -> StoreResult<Option<otklik_domain::chat::Chat>>;
    /// Chats matching the query, oldest queued first (ties by ticket id).
    async fn list_chats(&self, query: &ChatQuery) -> StoreResult<Vec<otklik_domain::chat::Chat>>;
    /// How many queued chats of the same team (or of no team, like `chat`) wait before `chat`
    /// in queue order: its position in the queue, less one.
    async fn count_queued_chats_before(&self, chat: &otklik_domain::chat::Chat)
    -> StoreResult<i64>;
    /// Entries of a chat numbered above `after_seq`, in order, at most `limit`.
    async fn list_chat_entries(
        &self,
        ticket_id: TicketId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChatEntry>>;
    /// The entry of a chat with this client id.
    async fn find_chat_entry_by_client_id(
        &self,
        ticket_id: TicketId,
        client_id: &str,
    ) -> StoreResult<Option<ChatEntry>>;
    /// An agent's chat availability and load.
    async fn find_agent_chat_status(
        &self,
        agent_id: AgentId,
    ) -> StoreResult<Option<otklik_domain::chat::AgentChatStatus>>;
    /// Every agent's chat status that was ever set.
    async fn list_agent_chat_statuses(
        &self,
    ) -> StoreResult<Vec<otklik_domain::chat::AgentChatStatus>>;

    // Signals between nodes.

    /// Sends a short-lived signal (typing, presence) to every node's subscribers, this one
    /// included. Not durable and not transactional: a lost signal must heal by itself.
    async fn publish_signal(&self, signal: events::Signal) -> StoreResult<()>;
    /// Signals from every node, from now on.
    fn subscribe_signals(&self) -> tokio::sync::broadcast::Receiver<events::Signal>;

    // Audit.

    /// The audit history of one object, oldest first.
    async fn list_audit_events(&self, object_id: uuid::Uuid) -> StoreResult<Vec<StoredAuditEvent>>;

    // Operations.

    /// Writes a consistent copy of the whole database to `path` while the store keeps serving.
    async fn backup_to(&self, path: &Path) -> StoreResult<()>;
    /// Every table's columns with backend-neutral types, to prove both backends reach the same
    /// logical schema.
    async fn logical_schema(&self) -> StoreResult<Vec<ColumnInfo>>;

    // Password resets, settings, sorted lists.

    /// The password-reset token whose SHA-256 is `token_hash`.
    async fn find_password_reset_token(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<PasswordResetRecord>>;
    /// How many password-reset tokens were issued for an agent since `since` (the rate limit,
    /// counted in the database so it holds across nodes).
    async fn count_password_reset_tokens_since(
        &self,
        agent_id: AgentId,
        since: jiff::Timestamp,
    ) -> StoreResult<i64>;
    /// Every stored instance setting as (name, value), by name.
    async fn list_settings(&self) -> StoreResult<Vec<(String, String)>>;
    /// One page of tickets matching the query in its chosen order (keyset pagination on
    /// `(sort key, id)`).
    async fn list_tickets_sorted(&self, query: &SortedTicketQuery) -> StoreResult<Vec<Ticket>>;
}
