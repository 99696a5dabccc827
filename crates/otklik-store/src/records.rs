//! Query parameters and records that only the storage port needs (credentials, keys, pages).

use std::collections::BTreeSet;

use jiff::Timestamp;
use otklik_domain::ids::{AgentId, CustomerId, TeamId, TicketId, TokenId};
use otklik_domain::permission::Scope;
use otklik_domain::ticket::{Channel, Priority, TicketStatus};

/// Lists never return more than this many rows per page.
pub const MAX_PAGE_SIZE: u32 = 200;

/// Which tickets a caller may see; the store applies it inside the query, so counts and pages
/// never include a hidden ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Supervisors and admins.
    All,
    /// An agent: tickets with no team, of one of `team_ids`, or assigned to `agent_id`.
    Agent {
        agent_id: AgentId,
        team_ids: Vec<TeamId>,
    },
}

/// Filter on the assignee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssigneeFilter {
    Unassigned,
    Agent(AgentId),
}

/// Filter on the team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TeamFilter {
    NoTeam,
    Team(TeamId),
}

/// Conditions a listed ticket must meet; empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    pub statuses: Vec<TicketStatus>,
    pub priorities: Vec<Priority>,
    pub channels: Vec<Channel>,
    pub assignee: Option<AssigneeFilter>,
    pub team: Option<TeamFilter>,
    /// A normalised tag name.
    pub tag: Option<String>,
    pub customer_id: Option<CustomerId>,
    /// Only tickets updated at or after this instant.
    pub updated_since: Option<Timestamp>,
    /// Only tickets updated before this instant.
    pub updated_before: Option<Timestamp>,
    /// Merged tickets are hidden unless asked for.
    pub include_merged: bool,
}

impl TicketFilter {
    /// Whether it asks for anything but merged tickets shown or hidden: such a filter may pick
    /// few tickets, so a store may plan its reads from the tickets rather than from an index of
    /// something else.
    pub fn narrows(&self) -> bool {
        let TicketFilter {
            statuses,
            priorities,
            channels,
            assignee,
            team,
            tag,
            customer_id,
            updated_since,
            updated_before,
            include_merged: _,
        } = self;
        !statuses.is_empty()
            || !priorities.is_empty()
            || !channels.is_empty()
            || assignee.is_some()
            || team.is_some()
            || tag.is_some()
            || customer_id.is_some()
            || updated_since.is_some()
            || updated_before.is_some()
    }
}

/// The position after the last ticket of the previous page (keyset pagination).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketCursor {
    pub updated_at: Timestamp,
    pub id: TicketId,
}

/// A page of tickets ordered by `(updated_at, id)` descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketQuery {
    pub filter: TicketFilter,
    pub visibility: Visibility,
    pub after: Option<TicketCursor>,
    /// 1..=[`MAX_PAGE_SIZE`].
    pub limit: u32,
}

/// A page of customers ordered by id descending (newest first, ids are time-ordered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerQuery {
    /// Merged customers are hidden unless asked for.
    pub include_merged: bool,
    pub after: Option<CustomerId>,
    pub limit: u32,
}

/// A page ordered by id ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdPage {
    pub after: Option<uuid::Uuid>,
    pub limit: u32,
}

/// An API token as stored: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub id: TokenId,
    pub agent_id: AgentId,
    pub name: String,
    /// The first characters of the token, shown so a user can tell tokens apart.
    pub prefix: String,
    pub token_hash: Vec<u8>,
    pub scopes: BTreeSet<Scope>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// A signed-in browser session; the cookie holds the secret, the database its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id_hash: Vec<u8>,
    pub agent_id: AgentId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The one-time token printed on first start to create the first admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupTokenRecord {
    pub token_hash: Vec<u8>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

/// What a POST with an `Idempotency-Key` produced, so a retry returns it instead of acting again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Who sent the key (keys are scoped per principal).
    pub principal: String,
    pub key: String,
    /// A hash of the method, path and body: the same key with another request is refused.
    pub fingerprint: String,
    pub resource_kind: String,
    pub resource_id: uuid::Uuid,
    pub created_at: Timestamp,
}

/// One column of the logical schema, with the type named the same way on every backend.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ColumnInfo {
    pub table: String,
    pub column: String,
    /// One of `int`, `text`, `bytes`, `bool`, `json`.
    pub logical_type: String,
    pub nullable: bool,
}

/// A full-text search over tickets: the parsed query plus the same filters and visibility as a
/// list. Results are best first; the store ranks within the most recent matches (see each
/// backend for the bound) so a common word stays fast at a million tickets.
#[derive(Debug, Clone)]
pub struct TicketSearch {
    pub query: otklik_search::SearchQuery,
    pub filter: TicketFilter,
    pub visibility: Visibility,
    /// 1..=[`MAX_PAGE_SIZE`].
    pub limit: u32,
}

/// A count of unmerged tickets from the maintained counters (never a scan of tickets).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TicketCountQuery {
    pub statuses: Vec<TicketStatus>,
    pub priorities: Vec<Priority>,
    pub assignee: Option<AssigneeFilter>,
    pub team: Option<TeamFilter>,
    /// Only waiting work (pending, on hold) whose last update fell on this UTC day number or
    /// earlier.
    pub max_day: Option<i64>,
    /// `None` counts everything (supervisors and admins).
    pub visible_to: Option<(AgentId, Vec<TeamId>)>,
}

/// How many of the newest matches a search ranks, on every backend. Ranking every match of a
/// common word among a million tickets would cost hundreds of milliseconds; agents look for
/// recent conversations, so the best of the newest matches is what they want, and an older one
/// is reached with a more specific query or a filter. Newest means most recently created: by
/// ticket id (UUIDv7) on PostgreSQL, by index order on SQLite, which writes new documents in
/// ticket id order.
pub const RANKED_MATCHES: i64 = 500;

/// How far a mailbox's IMAP folder has been fetched: every message with a smaller or equal UID
/// under this UIDVALIDITY is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImapCursorRecord {
    pub mailbox_id: otklik_domain::ids::MailboxId,
    pub uid_validity: u32,
    pub last_uid: u32,
    pub updated_at: jiff::Timestamp,
}

/// A page of e-mails with a given status (quarantine, failed replies), newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailQuery {
    pub status: otklik_domain::email::EmailStatus,
    /// Only e-mails older than this one (keyset cursor).
    pub before: Option<otklik_domain::ids::EmailId>,
    pub limit: u32,
}

/// What a chat entry is: a message the visitor sees, or an event of the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEntryKind {
    /// A public message of the ticket (the visitor's, an agent's).
    Message(otklik_domain::ids::MessageId),
    /// Something that happened in the chat, shown to the visitor in their language:
    /// `agent_joined`, `transferred`, `ended`, `offline`. `agent_name` names the agent
    /// concerned, when there is one.
    Event {
        code: String,
        agent_name: Option<String>,
    },
}

/// One numbered entry of a chat: what the visitor's widget shows, in order. The sequence lets a
/// reconnecting widget ask for exactly what it missed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    pub ticket_id: otklik_domain::ids::TicketId,
    /// 1, 2, 3… within the chat, without gaps.
    pub seq: i64,
    pub kind: ChatEntryKind,
    /// The widget's id for a visitor message, so a resent message is stored once.
    pub client_id: Option<String>,
    pub created_at: jiff::Timestamp,
}

/// Which chats to list, oldest queued first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatQuery {
    /// Any of these states; empty means every state.
    pub states: Vec<otklik_domain::chat::ChatState>,
    pub agent_id: Option<otklik_domain::ids::AgentId>,
    pub visitor_id: Option<otklik_domain::ids::VisitorId>,
    pub site_id: Option<otklik_domain::ids::ChatSiteId>,
    /// At most this many (the newest ones are dropped first when listing a visitor's history,
    /// so callers ask generously); 0 means 500.
    pub limit: u32,
}

/// A password-reset token as stored: only its SHA-256; the link in the e-mail holds the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordResetRecord {
    pub token_hash: Vec<u8>,
    pub agent_id: AgentId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// When the token was spent, or made void by a newer request.
    pub used_at: Option<Timestamp>,
}

/// What a ticket list is ordered by. Each key has an index that ends in `(key, id)` on both
/// backends, so every page is a range scan whichever way it is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TicketSortKey {
    /// Last update (the default).
    #[default]
    Updated,
    Created,
    /// Urgency ([`Priority::rank`](otklik_domain::ticket::Priority::rank)), then id (newest first when descending).
    Priority,
    /// The human number (unique).
    Number,
}

/// A sort key and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketSort {
    pub key: TicketSortKey,
    pub descending: bool,
}

impl Default for TicketSort {
    fn default() -> Self {
        Self {
            key: TicketSortKey::Updated,
            descending: true,
        }
    }
}

impl TicketSort {
    /// The value a ticket sorts by under this key (microseconds for times, the rank for
    /// priority, the number for numbers).
    pub fn key_of(&self, ticket: &otklik_domain::ticket::Ticket) -> i64 {
        match self.key {
            TicketSortKey::Updated => otklik_domain::clock::to_micros(ticket.updated_at),
            TicketSortKey::Created => otklik_domain::clock::to_micros(ticket.created_at),
            TicketSortKey::Priority => ticket.priority.rank(),
            TicketSortKey::Number => ticket.number,
        }
    }

    /// The cursor after `ticket` in this order.
    pub fn cursor_after(&self, ticket: &otklik_domain::ticket::Ticket) -> SortedTicketCursor {
        SortedTicketCursor {
            key: self.key_of(ticket),
            id: ticket.id,
        }
    }
}

/// The position after the last ticket of the previous page in a sorted list: its sort key
/// value ([`TicketSort::key_of`]) and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortedTicketCursor {
    pub key: i64,
    pub id: TicketId,
}

/// A page of tickets in a chosen order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedTicketQuery {
    pub filter: TicketFilter,
    pub visibility: Visibility,
    pub sort: TicketSort,
    /// Must come from a page of the same sort.
    pub after: Option<SortedTicketCursor>,
    /// 1..=[`MAX_PAGE_SIZE`].
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_filter_that_asks_for_something_besides_merged_tickets_narrows() {
        assert!(!TicketFilter::default().narrows());
        let merged_too = TicketFilter {
            include_merged: true,
            ..Default::default()
        };
        assert!(!merged_too.narrows());
        let narrowing = [
            TicketFilter {
                statuses: vec![TicketStatus::Open],
                ..Default::default()
            },
            TicketFilter {
                assignee: Some(AssigneeFilter::Unassigned),
                ..Default::default()
            },
            TicketFilter {
                team: Some(TeamFilter::NoTeam),
                ..Default::default()
            },
            TicketFilter {
                tag: Some("доставка".into()),
                ..Default::default()
            },
            TicketFilter {
                updated_before: Some(Timestamp::UNIX_EPOCH),
                ..Default::default()
            },
        ];
        for filter in narrowing {
            assert!(filter.narrows(), "{filter:?}");
        }
    }
}
