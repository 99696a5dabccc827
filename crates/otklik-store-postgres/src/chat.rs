//! Live chat's tables: chat sites, visitors and their tokens, chats, chat entries, and agents'
//! chat availability with the maintained count of active chats.
//!
//! The count of active chats is the one place where concurrent nodes compete: a reservation is
//! a single conditional `UPDATE`. At READ COMMITTED a second reservation of the same agent waits
//! for the first one's row lock and then re-evaluates its `WHERE` on the row as the first left
//! it, so two nodes applying routing plans at once can never push an agent past the maximum.

use otklik_domain::chat::{AgentChatStatus, Chat, ChatSite, PreChatForm, Visitor, WorkingHours};
use otklik_domain::clock::to_micros;
use otklik_domain::ids::{
    AgentId, ChatSiteId, CustomerId, MailboxId, MessageId, TeamId, TicketId, VisitorId,
};
use otklik_store::{ChatEntry, ChatEntryKind, ChatQuery, StoreError, StoreResult};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::Client;
use crate::error::map_error;
use crate::read::{Params, query, query_opt, where_clause};
use crate::rows::{get, opt_time, parse, time};
use crate::write::{execute, versioned_by};

type Transaction<'a> = deadpool_postgres::Transaction<'a>;

/// How many chats or entries a list returns when the caller asks for 0.
const DEFAULT_LIMIT: u32 = 500;

const SITE_COLUMNS: &str = "id, name, allowed_origins, greeting, accent_colour, working_hours, \
     pre_chat_name, pre_chat_email, pre_chat_order_number, identity_secret, require_identity, \
     team_id, mailbox_id, active, created_at, updated_at, version";

const VISITOR_COLUMNS: &str = "id, site_id, customer_id, verified_external_id, created_at";

const CHAT_COLUMNS: &str = "ticket_id, site_id, visitor_id, state, agent_id, team_id, language, \
     queued_at, accepted_at, ended_at, first_visitor_message_at, first_agent_message_at, \
     last_seq, visitor_read_seq, agent_read_seq, version";

const ENTRY_COLUMNS: &str =
    "ticket_id, seq, message_id, event_code, event_agent_name, client_id, created_at";

const STATUS_COLUMNS: &str = "agent_id, availability, max_chats, active_chats, languages, \
     last_assigned_at, updated_at";

/// A JSONB array of strings (a chat site's origins, an agent's languages).
fn string_list(row: &Row, column: &str) -> StoreResult<Vec<String>> {
    let value: serde_json::Value = get(row, column)?;
    serde_json::from_value(value).map_err(|error| {
        StoreError::corrupt(format!("column {column} is not a list of strings: {error}"))
    })
}

/// A chat count column, which the domain keeps as `u16`.
fn count(row: &Row, column: &str) -> StoreResult<u16> {
    let value: i64 = get(row, column)?;
    u16::try_from(value).map_err(|_| StoreError::corrupt(format!("column {column} holds {value}")))
}

fn site(row: &Row) -> StoreResult<ChatSite> {
    let working_hours: serde_json::Value = get(row, "working_hours")?;
    Ok(ChatSite {
        id: ChatSiteId(get(row, "id")?),
        name: get(row, "name")?,
        allowed_origins: string_list(row, "allowed_origins")?,
        greeting: get(row, "greeting")?,
        accent_colour: get(row, "accent_colour")?,
        working_hours: serde_json::from_value::<WorkingHours>(working_hours)
            .map_err(|error| StoreError::corrupt(format!("chat_sites.working_hours: {error}")))?,
        pre_chat: PreChatForm {
            name: parse(row, "pre_chat_name")?,
            email: parse(row, "pre_chat_email")?,
            order_number: parse(row, "pre_chat_order_number")?,
        },
        identity_secret: get(row, "identity_secret")?,
        require_identity: get(row, "require_identity")?,
        team_id: get::<Option<Uuid>>(row, "team_id")?.map(TeamId),
        mailbox_id: get::<Option<Uuid>>(row, "mailbox_id")?.map(MailboxId),
        active: get(row, "active")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        version: get(row, "version")?,
    })
}

fn visitor(row: &Row) -> StoreResult<Visitor> {
    Ok(Visitor {
        id: VisitorId(get(row, "id")?),
        site_id: ChatSiteId(get(row, "site_id")?),
        customer_id: CustomerId(get(row, "customer_id")?),
        verified_external_id: get(row, "verified_external_id")?,
        created_at: time(row, "created_at")?,
    })
}

fn chat(row: &Row) -> StoreResult<Chat> {
    Ok(Chat {
        ticket_id: TicketId(get(row, "ticket_id")?),
        site_id: ChatSiteId(get(row, "site_id")?),
        visitor_id: VisitorId(get(row, "visitor_id")?),
        state: parse(row, "state")?,
        agent_id: get::<Option<Uuid>>(row, "agent_id")?.map(AgentId),
        team_id: get::<Option<Uuid>>(row, "team_id")?.map(TeamId),
        language: get(row, "language")?,
        queued_at: time(row, "queued_at")?,
        accepted_at: opt_time(row, "accepted_at")?,
        ended_at: opt_time(row, "ended_at")?,
        first_visitor_message_at: opt_time(row, "first_visitor_message_at")?,
        first_agent_message_at: opt_time(row, "first_agent_message_at")?,
        last_seq: get(row, "last_seq")?,
        visitor_read_seq: get(row, "visitor_read_seq")?,
        agent_read_seq: get(row, "agent_read_seq")?,
        version: get(row, "version")?,
    })
}

fn entry(row: &Row) -> StoreResult<ChatEntry> {
    let message_id: Option<Uuid> = get(row, "message_id")?;
    let event_code: Option<String> = get(row, "event_code")?;
    let kind = match (message_id, event_code) {
        (Some(message_id), None) => ChatEntryKind::Message(MessageId(message_id)),
        (None, Some(code)) => ChatEntryKind::Event {
            code,
            agent_name: get(row, "event_agent_name")?,
        },
        _ => {
            return Err(StoreError::corrupt(
                "a chat entry is either a message or an event",
            ));
        }
    };
    Ok(ChatEntry {
        ticket_id: TicketId(get(row, "ticket_id")?),
        seq: get(row, "seq")?,
        kind,
        client_id: get(row, "client_id")?,
        created_at: time(row, "created_at")?,
    })
}

fn status(row: &Row) -> StoreResult<AgentChatStatus> {
    Ok(AgentChatStatus {
        agent_id: AgentId(get(row, "agent_id")?),
        availability: parse(row, "availability")?,
        max_chats: count(row, "max_chats")?,
        active_chats: count(row, "active_chats")?,
        languages: string_list(row, "languages")?,
        last_assigned_at: opt_time(row, "last_assigned_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

fn limit_of(limit: u32) -> i64 {
    i64::from(if limit == 0 { DEFAULT_LIMIT } else { limit })
}

// Writes.

/// Writes every column of a chat site: an insert (`expected_version` is `None`) stores the
/// site's own version, an update stores `expected_version + 1` if the row still has it.
async fn write_site(
    transaction: &Transaction<'_>,
    site: &ChatSite,
    expected_version: Option<i64>,
) -> StoreResult<u64> {
    let allowed_origins =
        serde_json::to_value(&site.allowed_origins).map_err(StoreError::database)?;
    let working_hours = serde_json::to_value(&site.working_hours).map_err(StoreError::database)?;
    let sql = if expected_version.is_some() {
        "UPDATE chat_sites SET name = $2, allowed_origins = $3, greeting = $4, \
         accent_colour = $5, working_hours = $6, pre_chat_name = $7, pre_chat_email = $8, \
         pre_chat_order_number = $9, identity_secret = $10, require_identity = $11, \
         team_id = $12, mailbox_id = $13, active = $14, created_at = $15, updated_at = $16, \
         version = $17 WHERE id = $1 AND version = $18"
    } else {
        "INSERT INTO chat_sites (id, name, allowed_origins, greeting, accent_colour, \
         working_hours, pre_chat_name, pre_chat_email, pre_chat_order_number, identity_secret, \
         require_identity, team_id, mailbox_id, active, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
    };
    let version = expected_version.map_or(site.version, |expected| expected + 1);
    let (pre_chat_name, pre_chat_email, pre_chat_order_number) = (
        site.pre_chat.name.as_str(),
        site.pre_chat.email.as_str(),
        site.pre_chat.order_number.as_str(),
    );
    let (team_id, mailbox_id) = (site.team_id.map(|id| id.0), site.mailbox_id.map(|id| id.0));
    let (created_at, updated_at) = (to_micros(site.created_at), to_micros(site.updated_at));
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &site.id.0,
        &site.name,
        &allowed_origins,
        &site.greeting,
        &site.accent_colour,
        &working_hours,
        &pre_chat_name,
        &pre_chat_email,
        &pre_chat_order_number,
        &site.identity_secret,
        &site.require_identity,
        &team_id,
        &mailbox_id,
        &site.active,
        &created_at,
        &updated_at,
        &version,
    ];
    if let Some(expected) = &expected_version {
        params.push(expected);
    }
    execute(transaction, sql, &params).await
}

pub(crate) async fn insert_chat_site(
    transaction: &Transaction<'_>,
    site: &ChatSite,
) -> StoreResult<()> {
    write_site(transaction, site, None).await?;
    Ok(())
}

pub(crate) async fn update_chat_site(
    transaction: &Transaction<'_>,
    site: &ChatSite,
    expected_version: i64,
) -> StoreResult<()> {
    let touched = write_site(transaction, site, Some(expected_version)).await?;
    versioned_by(
        transaction,
        touched,
        "chat_sites",
        "id",
        site.id.0,
        "chat site",
    )
    .await
}

pub(crate) async fn insert_visitor(
    transaction: &Transaction<'_>,
    visitor: &Visitor,
) -> StoreResult<()> {
    execute(
        transaction,
        "INSERT INTO visitors (id, site_id, customer_id, verified_external_id, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &visitor.id.0,
            &visitor.site_id.0,
            &visitor.customer_id.0,
            &visitor.verified_external_id,
            &to_micros(visitor.created_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn insert_visitor_token(
    transaction: &Transaction<'_>,
    token_hash: &[u8],
    visitor_id: VisitorId,
    created_at: jiff::Timestamp,
) -> StoreResult<()> {
    execute(
        transaction,
        "INSERT INTO visitor_tokens (token_hash, visitor_id, created_at) VALUES ($1, $2, $3)",
        &[&token_hash, &visitor_id.0, &to_micros(created_at)],
    )
    .await?;
    Ok(())
}

/// Writes every column of a chat: an insert (`expected_version` is `None`) stores the chat's
/// own version, an update stores `expected_version + 1` if the row still has it.
async fn write_chat(
    transaction: &Transaction<'_>,
    chat: &Chat,
    expected_version: Option<i64>,
) -> StoreResult<u64> {
    let sql = if expected_version.is_some() {
        "UPDATE chats SET site_id = $2, visitor_id = $3, state = $4, agent_id = $5, \
         team_id = $6, language = $7, queued_at = $8, accepted_at = $9, ended_at = $10, \
         first_visitor_message_at = $11, first_agent_message_at = $12, last_seq = $13, \
         visitor_read_seq = $14, agent_read_seq = $15, version = $16 \
         WHERE ticket_id = $1 AND version = $17"
    } else {
        "INSERT INTO chats (ticket_id, site_id, visitor_id, state, agent_id, team_id, language, \
         queued_at, accepted_at, ended_at, first_visitor_message_at, first_agent_message_at, \
         last_seq, visitor_read_seq, agent_read_seq, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    };
    let version = expected_version.map_or(chat.version, |expected| expected + 1);
    let (agent_id, team_id) = (chat.agent_id.map(|id| id.0), chat.team_id.map(|id| id.0));
    let times = [
        chat.accepted_at,
        chat.ended_at,
        chat.first_visitor_message_at,
        chat.first_agent_message_at,
    ]
    .map(|at| at.map(to_micros));
    let queued_at = to_micros(chat.queued_at);
    let state = chat.state.as_str();
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &chat.ticket_id.0,
        &chat.site_id.0,
        &chat.visitor_id.0,
        &state,
        &agent_id,
        &team_id,
        &chat.language,
        &queued_at,
        &times[0],
        &times[1],
        &times[2],
        &times[3],
        &chat.last_seq,
        &chat.visitor_read_seq,
        &chat.agent_read_seq,
        &version,
    ];
    if let Some(expected) = &expected_version {
        params.push(expected);
    }
    execute(transaction, sql, &params).await
}

pub(crate) async fn insert_chat(transaction: &Transaction<'_>, chat: &Chat) -> StoreResult<()> {
    write_chat(transaction, chat, None).await?;
    Ok(())
}

pub(crate) async fn update_chat(
    transaction: &Transaction<'_>,
    chat: &Chat,
    expected_version: i64,
) -> StoreResult<()> {
    let touched = write_chat(transaction, chat, Some(expected_version)).await?;
    versioned_by(
        transaction,
        touched,
        "chats",
        "ticket_id",
        chat.ticket_id.0,
        "chat",
    )
    .await
}

pub(crate) async fn insert_chat_entry(
    transaction: &Transaction<'_>,
    entry: &ChatEntry,
) -> StoreResult<()> {
    let (message_id, event_code, event_agent_name) = match &entry.kind {
        ChatEntryKind::Message(message_id) => (Some(message_id.0), None, None),
        ChatEntryKind::Event { code, agent_name } => (None, Some(code), agent_name.as_ref()),
    };
    execute(
        transaction,
        "INSERT INTO chat_entries (ticket_id, seq, message_id, event_code, event_agent_name, \
         client_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &entry.ticket_id.0,
            &entry.seq,
            &message_id,
            &event_code,
            &event_agent_name,
            &entry.client_id,
            &to_micros(entry.created_at),
        ],
    )
    .await?;
    Ok(())
}

/// Creates the row with no active chats, or saves what the agent sets on the existing one;
/// the maintained count and the last assignment are never overwritten.
pub(crate) async fn set_agent_chat_status(
    transaction: &Transaction<'_>,
    status: &AgentChatStatus,
) -> StoreResult<()> {
    let languages = serde_json::to_value(&status.languages).map_err(StoreError::database)?;
    execute(
        transaction,
        "INSERT INTO agent_chat_status (agent_id, availability, max_chats, active_chats, \
         languages, last_assigned_at, updated_at) VALUES ($1, $2, $3, 0, $4, NULL, $5) \
         ON CONFLICT (agent_id) DO UPDATE SET availability = excluded.availability, \
         max_chats = excluded.max_chats, languages = excluded.languages, \
         updated_at = excluded.updated_at",
        &[
            &status.agent_id.0,
            &status.availability.as_str(),
            &i64::from(status.max_chats),
            &languages,
            &to_micros(status.updated_at),
        ],
    )
    .await?;
    Ok(())
}

/// One conditional UPDATE (see the module documentation for why it is race-free); refuses an
/// agent who is not online, is at their maximum, or never set a status.
pub(crate) async fn reserve_chat_slot(
    transaction: &Transaction<'_>,
    agent_id: AgentId,
    at: jiff::Timestamp,
) -> StoreResult<()> {
    let touched = execute(
        transaction,
        "UPDATE agent_chat_status SET active_chats = active_chats + 1, last_assigned_at = $2 \
         WHERE agent_id = $1 AND availability = 'online' AND active_chats < max_chats",
        &[&agent_id.0, &to_micros(at)],
    )
    .await?;
    if touched == 0 {
        return Err(StoreError::Conflict {
            constraint: "agent_chat_status.capacity".into(),
        });
    }
    Ok(())
}

/// Never below zero; an agent without a status row has nothing to release.
pub(crate) async fn release_chat_slot(
    transaction: &Transaction<'_>,
    agent_id: AgentId,
) -> StoreResult<()> {
    execute(
        transaction,
        "UPDATE agent_chat_status SET active_chats = active_chats - 1 \
         WHERE agent_id = $1 AND active_chats > 0",
        &[&agent_id.0],
    )
    .await?;
    Ok(())
}

// Reads.

pub(crate) async fn find_chat_site(
    client: &Client,
    id: ChatSiteId,
) -> StoreResult<Option<ChatSite>> {
    let sql = format!("SELECT {SITE_COLUMNS} FROM chat_sites WHERE id = $1");
    query_opt(client, &sql, &[&id.0])
        .await?
        .as_ref()
        .map(site)
        .transpose()
}

pub(crate) async fn list_chat_sites(client: &Client) -> StoreResult<Vec<ChatSite>> {
    // Byte order, as SQLite sorts (see read.rs).
    let sql = format!(r#"SELECT {SITE_COLUMNS} FROM chat_sites ORDER BY name COLLATE "C", id"#);
    query(client, &sql, &[]).await?.iter().map(site).collect()
}

pub(crate) async fn find_visitor(client: &Client, id: VisitorId) -> StoreResult<Option<Visitor>> {
    let sql = format!("SELECT {VISITOR_COLUMNS} FROM visitors WHERE id = $1");
    query_opt(client, &sql, &[&id.0])
        .await?
        .as_ref()
        .map(visitor)
        .transpose()
}

pub(crate) async fn find_visitor_by_token(
    client: &Client,
    token_hash: &[u8],
) -> StoreResult<Option<Visitor>> {
    query_opt(
        client,
        "SELECT v.id, v.site_id, v.customer_id, v.verified_external_id, v.created_at \
         FROM visitor_tokens t JOIN visitors v ON v.id = t.visitor_id WHERE t.token_hash = $1",
        &[&token_hash],
    )
    .await?
    .as_ref()
    .map(visitor)
    .transpose()
}

pub(crate) async fn find_visitor_by_external_id(
    client: &Client,
    site_id: ChatSiteId,
    external_id: &str,
) -> StoreResult<Option<Visitor>> {
    let sql = format!(
        "SELECT {VISITOR_COLUMNS} FROM visitors WHERE site_id = $1 AND verified_external_id = $2"
    );
    query_opt(client, &sql, &[&site_id.0, &external_id])
        .await?
        .as_ref()
        .map(visitor)
        .transpose()
}

pub(crate) async fn find_chat(client: &Client, ticket_id: TicketId) -> StoreResult<Option<Chat>> {
    let sql = format!("SELECT {CHAT_COLUMNS} FROM chats WHERE ticket_id = $1");
    query_opt(client, &sql, &[&ticket_id.0])
        .await?
        .as_ref()
        .map(chat)
        .transpose()
}

pub(crate) async fn list_chats(client: &Client, chat_query: &ChatQuery) -> StoreResult<Vec<Chat>> {
    let mut params = Params::default();
    let mut conditions: Vec<String> = Vec::new();
    if !chat_query.states.is_empty() {
        let states: Vec<&'static str> = chat_query
            .states
            .iter()
            .map(|state| state.as_str())
            .collect();
        conditions.push(format!("state = ANY({}::text[])", params.bind(states)));
    }
    for (column, id) in [
        ("agent_id", chat_query.agent_id.map(|id| id.0)),
        ("visitor_id", chat_query.visitor_id.map(|id| id.0)),
        ("site_id", chat_query.site_id.map(|id| id.0)),
    ] {
        if let Some(id) = id {
            conditions.push(format!("{column} = {}", params.bind(id)));
        }
    }
    let sql = format!(
        "SELECT {CHAT_COLUMNS} FROM chats {} ORDER BY queued_at, ticket_id LIMIT {}",
        where_clause(&conditions),
        params.bind(limit_of(chat_query.limit))
    );
    // At most 2^4 shapes of the text, so the statement cache stays small.
    query(client, &sql, &params.as_refs())
        .await?
        .iter()
        .map(chat)
        .collect()
}

pub(crate) async fn count_queued_chats_before(client: &Client, chat: &Chat) -> StoreResult<i64> {
    let row = query_opt(
        client,
        "SELECT count(*) FROM chats WHERE state = 'queued' AND team_id IS NOT DISTINCT FROM $1 \
         AND (queued_at, ticket_id) < ($2, $3)",
        &[
            &chat.team_id.map(|team| team.0),
            &to_micros(chat.queued_at),
            &chat.ticket_id.0,
        ],
    )
    .await?;
    Ok(row.map_or(0, |row| row.get::<_, i64>(0)))
}

pub(crate) async fn list_chat_entries(
    client: &Client,
    ticket_id: TicketId,
    after_seq: i64,
    limit: u32,
) -> StoreResult<Vec<ChatEntry>> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM chat_entries WHERE ticket_id = $1 AND seq > $2 \
         ORDER BY seq LIMIT $3"
    );
    query(client, &sql, &[&ticket_id.0, &after_seq, &limit_of(limit)])
        .await?
        .iter()
        .map(entry)
        .collect()
}

pub(crate) async fn find_chat_entry_by_client_id(
    client: &Client,
    ticket_id: TicketId,
    client_id: &str,
) -> StoreResult<Option<ChatEntry>> {
    let sql =
        format!("SELECT {ENTRY_COLUMNS} FROM chat_entries WHERE ticket_id = $1 AND client_id = $2");
    query_opt(client, &sql, &[&ticket_id.0, &client_id])
        .await?
        .as_ref()
        .map(entry)
        .transpose()
}

pub(crate) async fn find_agent_chat_status(
    client: &Client,
    agent_id: AgentId,
) -> StoreResult<Option<AgentChatStatus>> {
    let sql = format!("SELECT {STATUS_COLUMNS} FROM agent_chat_status WHERE agent_id = $1");
    query_opt(client, &sql, &[&agent_id.0])
        .await?
        .as_ref()
        .map(status)
        .transpose()
}

pub(crate) async fn list_agent_chat_statuses(client: &Client) -> StoreResult<Vec<AgentChatStatus>> {
    let sql = format!("SELECT {STATUS_COLUMNS} FROM agent_chat_status ORDER BY agent_id");
    query(client, &sql, &[]).await?.iter().map(status).collect()
}

/// Sends a signal to every node's LISTEN connection (this node's included) on a pooled
/// connection, outside any transaction, so it goes out at once.
pub(crate) async fn publish_signal(client: &Client, payload: &str) -> StoreResult<()> {
    let statement = client
        .prepare_cached("SELECT pg_notify($1, $2)")
        .await
        .map_err(map_error)?;
    client
        .execute(&statement, &[&crate::listen::SIGNAL_CHANNEL, &payload])
        .await
        .map_err(map_error)?;
    Ok(())
}
