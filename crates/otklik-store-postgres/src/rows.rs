//! Row → domain mapping. Every column is read by name and checked: a value the domain cannot
//! represent (an unknown status, a malformed scope list) is reported as a corrupt row rather than
//! silently defaulted, because it means the database was written by something other than Otklik.

use std::collections::BTreeSet;
use std::str::FromStr;

use jiff::Timestamp;
use otklik_domain::agent::{Agent, Tag, Team};
use otklik_domain::attachment::AttachmentMeta;
use otklik_domain::audit::StoredAuditEvent;
use otklik_domain::clock::from_micros;
use otklik_domain::customer::{Customer, CustomerMerge, Identity, IdentityValue};
use otklik_domain::ids::{
    AgentId, AttachmentId, AuditEventId, CustomerId, CustomerMergeId, IdentityId, MessageId, TagId,
    TeamId, TicketId, TokenId, ViewId,
};
use otklik_domain::message::{Author, Message};
use otklik_domain::permission::Scope;
use otklik_domain::ticket::Ticket;
use otklik_domain::view::SavedView;
use otklik_store::{
    ApiTokenRecord, IdempotencyRecord, SessionRecord, SetupTokenRecord, StoreError, StoreResult,
};
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;
use uuid::Uuid;

/// The columns [`ticket`] reads, in `SELECT` order (tags come from a second query).
pub(crate) const TICKET_COLUMNS: &str = "id, number, subject, status, priority, channel, \
     customer_id, assignee_id, team_id, merged_into, created_at, updated_at, \
     first_agent_reply_at, solved_at, closed_at, version";
pub(crate) const CUSTOMER_COLUMNS: &str =
    "id, name, language, merged_into, created_at, updated_at, version";
pub(crate) const IDENTITY_COLUMNS: &str = "id, customer_id, kind, provider, value, created_at";
pub(crate) const MERGE_COLUMNS: &str = "id, source_id, target_id, moved_identity_ids, \
     moved_ticket_ids, merged_by, merged_at, undone_at";
pub(crate) const MESSAGE_COLUMNS: &str =
    "id, ticket_id, author_kind, author_id, visibility, channel, body, created_at";
pub(crate) const ATTACHMENT_COLUMNS: &str =
    "id, ticket_id, message_id, file_name, content_type, size_bytes, sha256";
/// An agent's columns with its team ids, read `FROM agents` (not aliased).
pub(crate) const AGENT_COLUMNS: &str = "id, email, name, role, active, created_at, updated_at, \
    version, locale, ARRAY(SELECT team_id FROM agent_teams WHERE agent_teams.agent_id = agents.id \
    ORDER BY team_id) AS team_ids";
pub(crate) const TOKEN_COLUMNS: &str =
    "id, agent_id, name, prefix, token_hash, scopes, created_at, expires_at, revoked_at";
pub(crate) const AUDIT_COLUMNS: &str =
    "id, at, actor_agent_id, action, object_kind, object_id, changes";
pub(crate) const VIEW_COLUMNS: &str = "id, name, owner_agent_id, definition, position, created_at";

/// A column, with the column's name in the error (the driver's own message lacks the table).
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, column: &str) -> StoreResult<T> {
    row.try_get(column).map_err(StoreError::database)
}

pub(crate) fn time(row: &Row, column: &str) -> StoreResult<Timestamp> {
    get::<i64>(row, column).map(from_micros)
}

pub(crate) fn opt_time(row: &Row, column: &str) -> StoreResult<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, column)?.map(from_micros))
}

pub(crate) fn parse<T>(row: &Row, column: &str) -> StoreResult<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    let text: &str = get(row, column)?;
    text.parse()
        .map_err(|error| StoreError::corrupt(format!("column {column} holds {text:?}: {error}")))
}

/// The scope list as stored: the scopes' stable names separated by spaces (same as SQLite).
pub(crate) fn scopes_text(scopes: &BTreeSet<Scope>) -> String {
    scopes
        .iter()
        .map(|scope| scope.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A JSON array of UUID strings (customer merges), the same text SQLite stores.
fn uuid_list(row: &Row, column: &str) -> StoreResult<Vec<Uuid>> {
    let value: serde_json::Value = get(row, column)?;
    serde_json::from_value(value).map_err(|error| {
        StoreError::corrupt(format!("column {column} is not a list of ids: {error}"))
    })
}

/// A ticket without its tags (loaded for a whole page by the caller, or see [`tagged_ticket`]).
pub(crate) fn ticket(row: &Row) -> StoreResult<Ticket> {
    Ok(Ticket {
        id: TicketId(get(row, "id")?),
        number: get(row, "number")?,
        subject: get(row, "subject")?,
        status: parse(row, "status")?,
        priority: parse(row, "priority")?,
        channel: parse(row, "channel")?,
        customer_id: CustomerId(get(row, "customer_id")?),
        assignee_id: get::<Option<Uuid>>(row, "assignee_id")?.map(AgentId),
        team_id: get::<Option<Uuid>>(row, "team_id")?.map(TeamId),
        tags: Vec::new(),
        merged_into: get::<Option<Uuid>>(row, "merged_into")?.map(TicketId),
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        first_agent_reply_at: opt_time(row, "first_agent_reply_at")?,
        solved_at: opt_time(row, "solved_at")?,
        closed_at: opt_time(row, "closed_at")?,
        version: get(row, "version")?,
    })
}

/// A ticket read with its tags (the `tag_names` column of `read::tagged_ticket_columns`).
pub(crate) fn tagged_ticket(row: &Row) -> StoreResult<Ticket> {
    let mut ticket = ticket(row)?;
    ticket.tags = get(row, "tag_names")?;
    Ok(ticket)
}

/// A customer without identities (loaded for a whole page by the caller).
pub(crate) fn customer(row: &Row) -> StoreResult<Customer> {
    Ok(Customer {
        id: CustomerId(get(row, "id")?),
        name: get(row, "name")?,
        language: get(row, "language")?,
        identities: Vec::new(),
        merged_into: get::<Option<Uuid>>(row, "merged_into")?.map(CustomerId),
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        version: get(row, "version")?,
    })
}

pub(crate) fn identity(row: &Row) -> StoreResult<Identity> {
    Ok(Identity {
        id: IdentityId(get(row, "id")?),
        customer_id: CustomerId(get(row, "customer_id")?),
        // Stored values were normalised on the way in; re-parsing them here would make a
        // tightened validation rule hide existing customers.
        value: IdentityValue {
            kind: parse(row, "kind")?,
            provider: get(row, "provider")?,
            value: get(row, "value")?,
        },
        created_at: time(row, "created_at")?,
    })
}

pub(crate) fn customer_merge(row: &Row) -> StoreResult<CustomerMerge> {
    Ok(CustomerMerge {
        id: CustomerMergeId(get(row, "id")?),
        source_id: CustomerId(get(row, "source_id")?),
        target_id: CustomerId(get(row, "target_id")?),
        moved_identity_ids: uuid_list(row, "moved_identity_ids")?
            .into_iter()
            .map(IdentityId)
            .collect(),
        moved_ticket_ids: uuid_list(row, "moved_ticket_ids")?
            .into_iter()
            .map(TicketId)
            .collect(),
        merged_by: get::<Option<Uuid>>(row, "merged_by")?.map(AgentId),
        merged_at: time(row, "merged_at")?,
        undone_at: opt_time(row, "undone_at")?,
    })
}

/// A message without attachments (loaded for all messages of a ticket by the caller).
pub(crate) fn message(row: &Row) -> StoreResult<Message> {
    let author_kind: &str = get(row, "author_kind")?;
    let author_id: Option<Uuid> = get(row, "author_id")?;
    let author = match (author_kind, author_id) {
        ("agent", Some(id)) => Author::Agent(AgentId(id)),
        ("customer", Some(id)) => Author::Customer(CustomerId(id)),
        ("system", None) => Author::System,
        (kind, id) => {
            return Err(StoreError::corrupt(format!(
                "message author {kind:?} with id {id:?}"
            )));
        }
    };
    Ok(Message {
        id: MessageId(get(row, "id")?),
        ticket_id: TicketId(get(row, "ticket_id")?),
        author,
        visibility: parse(row, "visibility")?,
        channel: parse(row, "channel")?,
        body: get(row, "body")?,
        attachments: Vec::new(),
        created_at: time(row, "created_at")?,
    })
}

/// How a message's author is stored: a kind and, except for the system, an id.
pub(crate) fn author_columns(author: Author) -> (&'static str, Option<Uuid>) {
    match author {
        Author::Agent(id) => ("agent", Some(id.0)),
        Author::Customer(id) => ("customer", Some(id.0)),
        Author::System => ("system", None),
    }
}

pub(crate) fn attachment(row: &Row) -> StoreResult<AttachmentMeta> {
    Ok(AttachmentMeta {
        id: AttachmentId(get(row, "id")?),
        ticket_id: TicketId(get(row, "ticket_id")?),
        message_id: MessageId(get(row, "message_id")?),
        file_name: get(row, "file_name")?,
        content_type: get(row, "content_type")?,
        size_bytes: get(row, "size_bytes")?,
        sha256: get(row, "sha256")?,
    })
}

/// An agent without team ids (loaded for a whole page by the caller).
/// An agent with its teams (read with [`AGENT_COLUMNS`]).
pub(crate) fn agent(row: &Row) -> StoreResult<Agent> {
    agent_named(row, "")
}

/// An agent whose columns are named `{prefix}id`, `{prefix}email`, … `{prefix}team_ids` (a
/// join that also reads another table's `id` and `name`).
pub(crate) fn agent_named(row: &Row, prefix: &str) -> StoreResult<Agent> {
    let column = |name: &str| format!("{prefix}{name}");
    let team_ids = get::<Vec<uuid::Uuid>>(row, &column("team_ids"))?
        .into_iter()
        .map(TeamId)
        .collect();
    Ok(Agent {
        id: AgentId(get(row, &column("id"))?),
        email: get(row, &column("email"))?,
        name: get(row, &column("name"))?,
        role: parse(row, &column("role"))?,
        team_ids,
        active: get(row, &column("active"))?,
        created_at: time(row, &column("created_at"))?,
        updated_at: time(row, &column("updated_at"))?,
        version: get(row, &column("version"))?,
        locale: get(row, &column("locale"))?,
    })
}

pub(crate) fn team(row: &Row) -> StoreResult<Team> {
    Ok(Team {
        id: TeamId(get(row, "id")?),
        name: get(row, "name")?,
        created_at: time(row, "created_at")?,
    })
}

pub(crate) fn tag(row: &Row) -> StoreResult<Tag> {
    Ok(Tag {
        id: TagId(get(row, "id")?),
        name: get(row, "name")?,
        created_at: time(row, "created_at")?,
    })
}

pub(crate) fn token(row: &Row) -> StoreResult<ApiTokenRecord> {
    let scopes_text: &str = get(row, "scopes")?;
    let scopes = scopes_text
        .split(' ')
        .filter(|scope| !scope.is_empty())
        .map(Scope::from_str)
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|error| StoreError::corrupt(format!("api_tokens.scopes: {error}")))?;
    Ok(ApiTokenRecord {
        id: TokenId(get(row, "id")?),
        agent_id: AgentId(get(row, "agent_id")?),
        name: get(row, "name")?,
        prefix: get(row, "prefix")?,
        token_hash: get(row, "token_hash")?,
        scopes,
        created_at: time(row, "created_at")?,
        expires_at: opt_time(row, "expires_at")?,
        revoked_at: opt_time(row, "revoked_at")?,
    })
}

pub(crate) fn session(row: &Row) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id_hash: get(row, "id_hash")?,
        agent_id: AgentId(get(row, "agent_id")?),
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
    })
}

pub(crate) fn setup_token(row: &Row) -> StoreResult<SetupTokenRecord> {
    Ok(SetupTokenRecord {
        token_hash: get(row, "token_hash")?,
        created_at: time(row, "created_at")?,
        expires_at: time(row, "expires_at")?,
        used_at: opt_time(row, "used_at")?,
    })
}

pub(crate) fn idempotency_record(row: &Row) -> StoreResult<IdempotencyRecord> {
    Ok(IdempotencyRecord {
        principal: get(row, "principal")?,
        key: get(row, "key")?,
        fingerprint: get(row, "fingerprint")?,
        resource_kind: get(row, "resource_kind")?,
        resource_id: get(row, "resource_id")?,
        created_at: time(row, "created_at")?,
    })
}

pub(crate) fn audit_event(row: &Row) -> StoreResult<StoredAuditEvent> {
    Ok(StoredAuditEvent {
        id: AuditEventId(get(row, "id")?),
        at: time(row, "at")?,
        actor_agent_id: get::<Option<Uuid>>(row, "actor_agent_id")?.map(AgentId),
        action: get(row, "action")?,
        object_kind: get(row, "object_kind")?,
        object_id: get(row, "object_id")?,
        changes: get(row, "changes")?,
    })
}

pub(crate) fn view(row: &Row) -> StoreResult<SavedView> {
    let definition: serde_json::Value = get(row, "definition")?;
    Ok(SavedView {
        id: ViewId(get(row, "id")?),
        name: get(row, "name")?,
        owner_agent_id: get::<Option<Uuid>>(row, "owner_agent_id")?.map(AgentId),
        filter: serde_json::from_value(definition).map_err(|error| {
            StoreError::corrupt(format!("views.definition is not a view filter: {error}"))
        })?,
        position: get(row, "position")?,
        created_at: time(row, "created_at")?,
    })
}
