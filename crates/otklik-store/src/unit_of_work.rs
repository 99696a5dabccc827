//! The write side of the port: a unit of work is a list of mutations applied atomically.

use jiff::Timestamp;
use otklik_domain::agent::{Agent, Tag, Team};
use otklik_domain::audit::AuditEvent;
use otklik_domain::customer::{Customer, CustomerMerge, Identity};
use otklik_domain::ids::{
    AgentId, CustomerId, CustomerMergeId, IdentityId, TagId, TeamId, TicketId, TokenId,
};
use otklik_domain::message::Message;
use otklik_domain::ticket::{NewTicket, Ticket};

use crate::records::{
    ApiTokenRecord, ChatEntry, IdempotencyRecord, ImapCursorRecord, PasswordResetRecord,
    SessionRecord, SetupTokenRecord,
};

/// One change to persist. Each maps to a few SQL statements in each backend.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Inserts a ticket and its tags (creating missing tags); the store assigns the number and
    /// reports it in [`CommitReceipt::ticket_numbers`].
    InsertTicket(NewTicket),
    /// Inserts a ticket as it stands after a history that happened elsewhere (an import, the
    /// demo): every field as given, timestamps and tags included, in one write instead of an
    /// insert followed by an update. The store assigns the number (the given one is ignored)
    /// and reports it like [`Mutation::InsertTicket`]; the version starts at 1.
    ImportTicket(Box<Ticket>),
    /// Saves every mutable field of a ticket (tags included) if its version is still
    /// `expected_version`; the stored version becomes `expected_version + 1`.
    UpdateTicket {
        ticket: Ticket,
        expected_version: i64,
    },
    /// Inserts a message and its attachments' metadata.
    InsertMessage(Message),
    /// Moves every message (and attachment) of `from` to `to` (ticket merge).
    MoveMessages {
        from: TicketId,
        to: TicketId,
    },
    /// Inserts a customer with its identities.
    InsertCustomer(Customer),
    /// Saves name, language and `merged_into` if the version is still `expected_version`.
    UpdateCustomer {
        customer: Customer,
        expected_version: i64,
    },
    /// Adds an identity to a customer.
    InsertIdentity(Identity),
    /// Removes an identity.
    DeleteIdentity(IdentityId),
    /// Gives identities to another customer (merge and un-merge).
    MoveIdentities {
        identity_ids: Vec<IdentityId>,
        to: CustomerId,
    },
    /// Gives tickets to another customer (merge and un-merge); bumps their versions.
    MoveTickets {
        ticket_ids: Vec<TicketId>,
        to: CustomerId,
        at: Timestamp,
    },
    /// Records a customer merge.
    InsertCustomerMerge(CustomerMerge),
    /// Marks a customer merge as undone.
    MarkCustomerMergeUndone {
        id: CustomerMergeId,
        at: Timestamp,
    },
    /// Inserts an agent with team memberships and an optional password hash.
    InsertAgent {
        agent: Agent,
        password_hash: Option<String>,
    },
    /// Saves an agent's e-mail, name, role, active flag and teams if the version matches.
    UpdateAgent {
        agent: Agent,
        expected_version: i64,
    },
    /// Replaces an agent's password hash.
    SetPasswordHash {
        agent_id: AgentId,
        password_hash: String,
    },
    InsertTeam(Team),
    UpdateTeam(Team),
    /// Deletes a team; its tickets lose the team and its members the membership.
    DeleteTeam(TeamId),
    InsertTag(Tag),
    /// Deletes a tag and removes it from every ticket.
    DeleteTag(TagId),
    InsertToken(ApiTokenRecord),
    RevokeToken {
        id: TokenId,
        at: Timestamp,
    },
    InsertSession(SessionRecord),
    DeleteSession {
        id_hash: Vec<u8>,
    },
    /// Deletes every session of an agent (password change, deactivation).
    DeleteAgentSessions {
        agent_id: AgentId,
    },
    InsertSetupToken(SetupTokenRecord),
    /// Marks a set-up token used; fails with `Conflict { constraint: "setup_tokens.used" }` if it
    /// was already used, so two racing set-ups cannot both succeed.
    ConsumeSetupToken {
        token_hash: Vec<u8>,
        at: Timestamp,
    },
    /// Records an idempotency key; fails with `Conflict { constraint: "idempotency_keys" }`
    /// when the key exists, which rolls back the whole unit.
    ClaimIdempotencyKey(IdempotencyRecord),
    /// Appends to the audit history.
    Audit(AuditEvent),
    /// Saves a view.
    InsertView(otklik_domain::view::SavedView),
    /// Deletes a view.
    DeleteView(otklik_domain::ids::ViewId),
    /// Recomputes the search index and the queue counters from the tables.
    RebuildDerivedData,
    /// Starts a bulk import (a big demo, a migration from another helpdesk): until
    /// [`Mutation::EndBulkImport`], a backend may stop maintaining the secondary indexes of the
    /// ticket tables and the full-text index row by row, and build them once at the end, which
    /// is several times faster for millions of rows. Meanwhile lists and searches may be slow or
    /// miss what was written; every count, constraint and row is kept as usual. A backend that
    /// gains nothing ignores it (PostgreSQL). Beginning twice is the same as once.
    BeginBulkImport,
    /// Ends a bulk import: every deferred index is built and the search index covers every row.
    /// Without a bulk import under way it does nothing on SQLite. On PostgreSQL, which defers
    /// nothing, it refreshes the planner's statistics of the tables an import fills, whether or
    /// not one began. A SQLite database whose import was interrupted ends it when next opened.
    EndBulkImport,
    /// Adds a mailbox; fails with `Conflict { constraint: "mailboxes.name" }` or
    /// `"mailboxes.address"` when either is taken.
    InsertMailbox(otklik_domain::email::Mailbox),
    /// Saves every field of a mailbox.
    UpdateMailbox(otklik_domain::email::Mailbox),
    /// Remembers how far a mailbox's IMAP folder has been fetched.
    SaveImapCursor(ImapCursorRecord),
    /// Records an e-mail; fails with `Conflict { constraint: "emails.dedup_key" }` when an
    /// e-mail of the same direction and dedup key exists (the same mail delivered twice).
    InsertEmail(otklik_domain::email::EmailRecord),
    /// Saves an e-mail's status, reason, attempts, schedule, ticket and message.
    UpdateEmail(otklik_domain::email::EmailRecord),
    /// Leases up to `limit` queued outbound e-mails due at `now` until `lease_until` (so no
    /// other worker or node takes them meanwhile) and reports them in
    /// [`CommitReceipt::claimed_emails`], oldest due first.
    ClaimDueEmails {
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    },
    /// Takes or renews the lease `name` for `holder` until `until`: succeeds when nobody holds
    /// it, when `holder` already does, or when the other holder's lease ended by `now`; fails
    /// with `Conflict { constraint: "leases.held" }` otherwise.
    AcquireLease {
        name: String,
        holder: String,
        now: Timestamp,
        until: Timestamp,
    },
    /// Gives the lease up if `holder` holds it (a no-op otherwise).
    ReleaseLease {
        name: String,
        holder: String,
    },
    /// Stores a named instance secret once; fails with `Conflict { constraint:
    /// "instance_secrets.name" }` when another node stored it first.
    InsertInstanceSecret {
        name: String,
        secret: Vec<u8>,
    },

    // Live chat.
    /// Adds a chat site.
    InsertChatSite(otklik_domain::chat::ChatSite),
    /// Saves every field of a chat site if its version is still `expected_version`.
    UpdateChatSite {
        site: otklik_domain::chat::ChatSite,
        expected_version: i64,
    },
    /// Adds a visitor; fails with `Conflict { constraint: "visitors.external_id" }` when the
    /// site already has a visitor with the same verified external id.
    InsertVisitor(otklik_domain::chat::Visitor),
    /// Adds a sign-in token of a visitor (only its SHA-256 is stored; a verified visitor has
    /// one per browser).
    InsertVisitorToken {
        token_hash: Vec<u8>,
        visitor_id: otklik_domain::ids::VisitorId,
        created_at: Timestamp,
    },
    /// Adds the chat of a ticket (the ticket is inserted in the same unit).
    InsertChat(otklik_domain::chat::Chat),
    /// Saves every field of a chat if its version is still `expected_version`; the stored
    /// version becomes `expected_version + 1`.
    UpdateChat {
        chat: otklik_domain::chat::Chat,
        expected_version: i64,
    },
    /// Adds a numbered entry to a chat; fails with `Conflict { constraint:
    /// "chat_entries.client_id" }` when the chat has an entry with the same client id (a
    /// resent message) and with `"chat_entries.seq"` when the number is taken.
    InsertChatEntry(ChatEntry),
    /// Saves an agent's availability, maximum and languages (creating the row), leaving the
    /// maintained count of active chats alone.
    SetAgentChatStatus(otklik_domain::chat::AgentChatStatus),
    /// Counts one more active chat for the agent and records `at` as their last assignment,
    /// only if they are online below their maximum; fails with `Conflict { constraint:
    /// "agent_chat_status.capacity" }` otherwise. Concurrent reservations are serialised, so
    /// no agent ever exceeds the maximum.
    ReserveChatSlot {
        agent_id: AgentId,
        at: Timestamp,
    },
    /// Counts one active chat fewer for the agent (never below zero).
    ReleaseChatSlot {
        agent_id: AgentId,
    },
    /// Saves an agent's interface language (`None` forgets it); fails with `NotFound` for an
    /// unknown agent. Leaves the agent's version alone: a language switch must not make a
    /// concurrent admin edit fail.
    SetAgentLocale {
        agent_id: AgentId,
        locale: Option<String>,
    },
    /// Stores a password-reset token and voids the agent's earlier unused ones (their
    /// `used_at` becomes the new token's `created_at`), so only the newest link works.
    InsertPasswordResetToken(PasswordResetRecord),
    /// Spends a password-reset token if it is unused and not expired at `at`; fails with
    /// `Conflict { constraint: "password_reset_tokens.used" }` otherwise (unknown, used, void or
    /// expired), so two racing uses cannot both succeed.
    ConsumePasswordResetToken {
        token_hash: Vec<u8>,
        at: Timestamp,
    },
    /// Sets an instance setting (`Some`) or removes it (`None`).
    SaveSetting {
        name: String,
        value: Option<String>,
        at: Timestamp,
    },
}

/// An ordered list of mutations that succeed or fail together.
#[derive(Debug, Clone, Default)]
pub struct UnitOfWork {
    pub mutations: Vec<Mutation>,
}

impl UnitOfWork {
    /// An empty unit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a mutation.
    pub fn push(&mut self, mutation: Mutation) -> &mut Self {
        self.mutations.push(mutation);
        self
    }

    /// Appends a mutation, builder style.
    pub fn with(mut self, mutation: Mutation) -> Self {
        self.mutations.push(mutation);
        self
    }
}

/// What the store decided while committing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReceipt {
    /// The numbers given to inserted tickets, in the order of their `InsertTicket` and
    /// `ImportTicket` mutations.
    pub ticket_numbers: Vec<i64>,
    /// The e-mails leased by `ClaimDueEmails`, as they are after the lease.
    pub claimed_emails: Vec<otklik_domain::email::EmailRecord>,
}
