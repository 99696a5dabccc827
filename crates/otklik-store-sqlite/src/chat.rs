//! Live chat's tables: chat sites, visitors and their tokens, chats, chat entries, and agents'
//! chat availability with the maintained count of active chats.

use otklik_domain::chat::{AgentChatStatus, Chat, ChatSite, PreChatForm, Visitor};
use otklik_domain::clock::to_micros;
use otklik_domain::ids::{
    AgentId, ChatSiteId, CustomerId, MailboxId, MessageId, TeamId, TicketId, VisitorId,
};
use otklik_store::{ChatEntry, ChatEntryKind, ChatQuery, StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params, params_from_iter};

use crate::rows::*;
use crate::write::{db, versioned_miss_by};

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

fn site_from_row(row: &Row<'_>) -> rusqlite::Result<ChatSite> {
    Ok(ChatSite {
        id: ChatSiteId(uuid_at(row, 0)?),
        name: row.get(1)?,
        allowed_origins: string_list_at(row, 2)?,
        greeting: row.get(3)?,
        accent_colour: row.get(4)?,
        working_hours: working_hours_at(row, 5)?,
        pre_chat: PreChatForm {
            name: parse_at(row, 6)?,
            email: parse_at(row, 7)?,
            order_number: parse_at(row, 8)?,
        },
        identity_secret: row.get(9)?,
        require_identity: row.get(10)?,
        team_id: opt_uuid_at(row, 11)?.map(TeamId),
        mailbox_id: opt_uuid_at(row, 12)?.map(MailboxId),
        active: row.get(13)?,
        created_at: time_at(row, 14)?,
        updated_at: time_at(row, 15)?,
        version: row.get(16)?,
    })
}

fn visitor_from_row(row: &Row<'_>) -> rusqlite::Result<Visitor> {
    Ok(Visitor {
        id: VisitorId(uuid_at(row, 0)?),
        site_id: ChatSiteId(uuid_at(row, 1)?),
        customer_id: CustomerId(uuid_at(row, 2)?),
        verified_external_id: row.get(3)?,
        created_at: time_at(row, 4)?,
    })
}

fn chat_from_row(row: &Row<'_>) -> rusqlite::Result<Chat> {
    Ok(Chat {
        ticket_id: TicketId(uuid_at(row, 0)?),
        site_id: ChatSiteId(uuid_at(row, 1)?),
        visitor_id: VisitorId(uuid_at(row, 2)?),
        state: parse_at(row, 3)?,
        agent_id: opt_uuid_at(row, 4)?.map(AgentId),
        team_id: opt_uuid_at(row, 5)?.map(TeamId),
        language: row.get(6)?,
        queued_at: time_at(row, 7)?,
        accepted_at: opt_time_at(row, 8)?,
        ended_at: opt_time_at(row, 9)?,
        first_visitor_message_at: opt_time_at(row, 10)?,
        first_agent_message_at: opt_time_at(row, 11)?,
        last_seq: row.get(12)?,
        visitor_read_seq: row.get(13)?,
        agent_read_seq: row.get(14)?,
        version: row.get(15)?,
    })
}

fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<ChatEntry> {
    let kind = match (opt_uuid_at(row, 2)?, row.get::<_, Option<String>>(3)?) {
        (Some(message_id), None) => ChatEntryKind::Message(MessageId(message_id)),
        (None, Some(code)) => ChatEntryKind::Event {
            code,
            agent_name: row.get(4)?,
        },
        _ => return Err(corrupt(2, "a chat entry is either a message or an event")),
    };
    Ok(ChatEntry {
        ticket_id: TicketId(uuid_at(row, 0)?),
        seq: row.get(1)?,
        kind,
        client_id: row.get(5)?,
        created_at: time_at(row, 6)?,
    })
}

fn status_from_row(row: &Row<'_>) -> rusqlite::Result<AgentChatStatus> {
    Ok(AgentChatStatus {
        agent_id: AgentId(uuid_at(row, 0)?),
        availability: parse_at(row, 1)?,
        max_chats: row.get(2)?,
        active_chats: row.get(3)?,
        languages: string_list_at(row, 4)?,
        last_assigned_at: opt_time_at(row, 5)?,
        updated_at: time_at(row, 6)?,
    })
}

/// The values of a chat site row in [`SITE_COLUMNS`] order, the version last.
fn site_values(site: &ChatSite, version: i64) -> StoreResult<Vec<Value>> {
    Ok(vec![
        id_value(site.id.0),
        Value::Text(site.name.clone()),
        Value::Text(serde_json::to_string(&site.allowed_origins).map_err(StoreError::database)?),
        Value::Text(site.greeting.clone()),
        Value::Text(site.accent_colour.clone()),
        Value::Text(serde_json::to_string(&site.working_hours).map_err(StoreError::database)?),
        Value::Text(site.pre_chat.name.as_str().into()),
        Value::Text(site.pre_chat.email.as_str().into()),
        Value::Text(site.pre_chat.order_number.as_str().into()),
        Value::Text(site.identity_secret.clone()),
        Value::Integer(site.require_identity.into()),
        opt_id_value(site.team_id.map(|id| id.0)),
        opt_id_value(site.mailbox_id.map(|id| id.0)),
        Value::Integer(site.active.into()),
        time_value(site.created_at),
        time_value(site.updated_at),
        Value::Integer(version),
    ])
}

/// The values of a chat row in [`CHAT_COLUMNS`] order, the version last.
fn chat_values(chat: &Chat, version: i64) -> Vec<Value> {
    vec![
        id_value(chat.ticket_id.0),
        id_value(chat.site_id.0),
        id_value(chat.visitor_id.0),
        Value::Text(chat.state.as_str().into()),
        opt_id_value(chat.agent_id.map(|id| id.0)),
        opt_id_value(chat.team_id.map(|id| id.0)),
        chat.language.clone().map_or(Value::Null, Value::Text),
        time_value(chat.queued_at),
        opt_time_value(chat.accepted_at),
        opt_time_value(chat.ended_at),
        opt_time_value(chat.first_visitor_message_at),
        opt_time_value(chat.first_agent_message_at),
        Value::Integer(chat.last_seq),
        Value::Integer(chat.visitor_read_seq),
        Value::Integer(chat.agent_read_seq),
        Value::Integer(version),
    ]
}

// Writes.

pub(crate) fn insert_chat_site(transaction: &Transaction<'_>, site: &ChatSite) -> StoreResult<()> {
    let values = site_values(site, site.version)?;
    db(transaction
        .prepare_cached(&format!(
            "INSERT INTO chat_sites ({SITE_COLUMNS}) VALUES ({})",
            placeholders(17)
        ))
        .and_then(|mut s| s.execute(params_from_iter(values))))?;
    Ok(())
}

pub(crate) fn update_chat_site(
    transaction: &Transaction<'_>,
    site: &ChatSite,
    expected_version: i64,
) -> StoreResult<()> {
    let mut values = site_values(site, expected_version + 1)?;
    values.push(Value::Integer(expected_version));
    let n_rows = db(transaction
        .prepare_cached(
            "UPDATE chat_sites SET name = ?2, allowed_origins = ?3, greeting = ?4, \
             accent_colour = ?5, working_hours = ?6, pre_chat_name = ?7, pre_chat_email = ?8, \
             pre_chat_order_number = ?9, identity_secret = ?10, require_identity = ?11, \
             team_id = ?12, mailbox_id = ?13, active = ?14, created_at = ?15, updated_at = ?16, \
             version = ?17 WHERE id = ?1 AND version = ?18",
        )
        .and_then(|mut s| s.execute(params_from_iter(values))))?;
    if n_rows == 0 {
        return versioned_miss_by(transaction, "chat_sites", "id", site.id.0, "chat site");
    }
    Ok(())
}

pub(crate) fn insert_visitor(transaction: &Transaction<'_>, visitor: &Visitor) -> StoreResult<()> {
    db(transaction
        .prepare_cached(&format!(
            "INSERT INTO visitors ({VISITOR_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"
        ))
        .and_then(|mut s| {
            s.execute(params![
                &visitor.id.as_bytes()[..],
                &visitor.site_id.as_bytes()[..],
                &visitor.customer_id.as_bytes()[..],
                visitor.verified_external_id,
                to_micros(visitor.created_at)
            ])
        }))?;
    Ok(())
}

pub(crate) fn insert_visitor_token(
    transaction: &Transaction<'_>,
    token_hash: &[u8],
    visitor_id: VisitorId,
    created_at: jiff::Timestamp,
) -> StoreResult<()> {
    db(transaction
        .prepare_cached(
            "INSERT INTO visitor_tokens (token_hash, visitor_id, created_at) VALUES (?1, ?2, ?3)",
        )
        .and_then(|mut s| {
            s.execute(params![
                token_hash,
                &visitor_id.as_bytes()[..],
                to_micros(created_at)
            ])
        }))?;
    Ok(())
}

pub(crate) fn insert_chat(transaction: &Transaction<'_>, chat: &Chat) -> StoreResult<()> {
    db(transaction
        .prepare_cached(&format!(
            "INSERT INTO chats ({CHAT_COLUMNS}) VALUES ({})",
            placeholders(16)
        ))
        .and_then(|mut s| s.execute(params_from_iter(chat_values(chat, chat.version)))))?;
    Ok(())
}

pub(crate) fn update_chat(
    transaction: &Transaction<'_>,
    chat: &Chat,
    expected_version: i64,
) -> StoreResult<()> {
    let mut values = chat_values(chat, expected_version + 1);
    values.push(Value::Integer(expected_version));
    let n_rows = db(transaction
        .prepare_cached(
            "UPDATE chats SET site_id = ?2, visitor_id = ?3, state = ?4, agent_id = ?5, \
             team_id = ?6, language = ?7, queued_at = ?8, accepted_at = ?9, ended_at = ?10, \
             first_visitor_message_at = ?11, first_agent_message_at = ?12, last_seq = ?13, \
             visitor_read_seq = ?14, agent_read_seq = ?15, version = ?16 \
             WHERE ticket_id = ?1 AND version = ?17",
        )
        .and_then(|mut s| s.execute(params_from_iter(values))))?;
    if n_rows == 0 {
        return versioned_miss_by(transaction, "chats", "ticket_id", chat.ticket_id.0, "chat");
    }
    Ok(())
}

pub(crate) fn insert_chat_entry(
    transaction: &Transaction<'_>,
    entry: &ChatEntry,
) -> StoreResult<()> {
    let (message_id, event_code, event_agent_name) = match &entry.kind {
        ChatEntryKind::Message(message_id) => (Some(message_id.0), None, None),
        ChatEntryKind::Event { code, agent_name } => (None, Some(code), agent_name.as_ref()),
    };
    db(transaction
        .prepare_cached(&format!(
            "INSERT INTO chat_entries ({ENTRY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        ))
        .and_then(|mut s| {
            s.execute(params![
                &entry.ticket_id.as_bytes()[..],
                entry.seq,
                opt_id_value(message_id),
                event_code,
                event_agent_name,
                entry.client_id,
                to_micros(entry.created_at)
            ])
        }))?;
    Ok(())
}

/// Creates the row with no active chats, or saves what the agent sets on the existing one;
/// the maintained count and the last assignment are never overwritten.
pub(crate) fn set_agent_chat_status(
    transaction: &Transaction<'_>,
    status: &AgentChatStatus,
) -> StoreResult<()> {
    let languages = serde_json::to_string(&status.languages).map_err(StoreError::database)?;
    db(transaction
        .prepare_cached(
            "INSERT INTO agent_chat_status (agent_id, availability, max_chats, active_chats, \
             languages, last_assigned_at, updated_at) VALUES (?1, ?2, ?3, 0, ?4, NULL, ?5) \
             ON CONFLICT (agent_id) DO UPDATE SET availability = excluded.availability, \
             max_chats = excluded.max_chats, languages = excluded.languages, \
             updated_at = excluded.updated_at",
        )
        .and_then(|mut s| {
            s.execute(params![
                &status.agent_id.as_bytes()[..],
                status.availability.as_str(),
                status.max_chats,
                languages,
                to_micros(status.updated_at)
            ])
        }))?;
    Ok(())
}

/// One conditional update: the single writer makes it atomic, and it refuses an agent who is
/// not online, is at their maximum, or never set a status.
pub(crate) fn reserve_chat_slot(
    transaction: &Transaction<'_>,
    agent_id: AgentId,
    at: jiff::Timestamp,
) -> StoreResult<()> {
    let n_rows = db(transaction
        .prepare_cached(
            "UPDATE agent_chat_status SET active_chats = active_chats + 1, last_assigned_at = ?2 \
             WHERE agent_id = ?1 AND availability = 'online' AND active_chats < max_chats",
        )
        .and_then(|mut s| s.execute(params![&agent_id.as_bytes()[..], to_micros(at)])))?;
    if n_rows == 0 {
        return Err(StoreError::Conflict {
            constraint: "agent_chat_status.capacity".into(),
        });
    }
    Ok(())
}

/// Never below zero; an agent without a status row has nothing to release.
pub(crate) fn release_chat_slot(
    transaction: &Transaction<'_>,
    agent_id: AgentId,
) -> StoreResult<()> {
    db(transaction
        .prepare_cached(
            "UPDATE agent_chat_status SET active_chats = active_chats - 1 \
             WHERE agent_id = ?1 AND active_chats > 0",
        )
        .and_then(|mut s| s.execute([&agent_id.as_bytes()[..]])))?;
    Ok(())
}

// Reads.

pub fn find_chat_site(
    connection: &Connection,
    id: ChatSiteId,
) -> rusqlite::Result<Option<ChatSite>> {
    connection
        .prepare_cached(&format!(
            "SELECT {SITE_COLUMNS} FROM chat_sites WHERE id = ?1"
        ))?
        .query_row([&id.as_bytes()[..]], site_from_row)
        .optional()
}

pub fn list_chat_sites(connection: &Connection) -> rusqlite::Result<Vec<ChatSite>> {
    connection
        .prepare_cached(&format!(
            "SELECT {SITE_COLUMNS} FROM chat_sites ORDER BY name, id"
        ))?
        .query_map([], site_from_row)?
        .collect()
}

pub fn find_visitor(connection: &Connection, id: VisitorId) -> rusqlite::Result<Option<Visitor>> {
    connection
        .prepare_cached(&format!(
            "SELECT {VISITOR_COLUMNS} FROM visitors WHERE id = ?1"
        ))?
        .query_row([&id.as_bytes()[..]], visitor_from_row)
        .optional()
}

pub fn find_visitor_by_token(
    connection: &Connection,
    token_hash: &[u8],
) -> rusqlite::Result<Option<Visitor>> {
    connection
        .prepare_cached(
            "SELECT v.id, v.site_id, v.customer_id, v.verified_external_id, v.created_at \
             FROM visitor_tokens t JOIN visitors v ON v.id = t.visitor_id WHERE t.token_hash = ?1",
        )?
        .query_row([token_hash], visitor_from_row)
        .optional()
}

pub fn find_visitor_by_external_id(
    connection: &Connection,
    site_id: ChatSiteId,
    external_id: &str,
) -> rusqlite::Result<Option<Visitor>> {
    connection
        .prepare_cached(&format!(
            "SELECT {VISITOR_COLUMNS} FROM visitors WHERE site_id = ?1 AND verified_external_id = ?2"
        ))?
        .query_row(params![&site_id.as_bytes()[..], external_id], visitor_from_row)
        .optional()
}

pub fn find_chat(connection: &Connection, ticket_id: TicketId) -> rusqlite::Result<Option<Chat>> {
    connection
        .prepare_cached(&format!(
            "SELECT {CHAT_COLUMNS} FROM chats WHERE ticket_id = ?1"
        ))?
        .query_row([&ticket_id.as_bytes()[..]], chat_from_row)
        .optional()
}

pub fn list_chats(connection: &Connection, query: &ChatQuery) -> rusqlite::Result<Vec<Chat>> {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if !query.states.is_empty() {
        conditions.push(format!("state IN ({})", placeholders(query.states.len())));
        values.extend(
            query
                .states
                .iter()
                .map(|state| Value::Text(state.as_str().into())),
        );
    }
    for (column, id) in [
        ("agent_id", query.agent_id.map(|id| id.0)),
        ("visitor_id", query.visitor_id.map(|id| id.0)),
        ("site_id", query.site_id.map(|id| id.0)),
    ] {
        if let Some(id) = id {
            conditions.push(format!("{column} = ?"));
            values.push(id_value(id));
        }
    }
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let limit = if query.limit == 0 {
        DEFAULT_LIMIT
    } else {
        query.limit
    };
    values.push(Value::Integer(limit.into()));
    connection
        .prepare_cached(&format!(
            "SELECT {CHAT_COLUMNS} FROM chats {where_clause} ORDER BY queued_at, ticket_id LIMIT ?"
        ))?
        .query_map(params_from_iter(values), chat_from_row)?
        .collect()
}

pub fn count_queued_chats_before(connection: &Connection, chat: &Chat) -> rusqlite::Result<i64> {
    connection
        .prepare_cached(
            "SELECT count(*) FROM chats WHERE state = 'queued' AND team_id IS ?1 \
             AND (queued_at < ?2 OR (queued_at = ?2 AND ticket_id < ?3))",
        )?
        .query_row(
            params![
                chat.team_id.map(|team| id_value(team.0)),
                time_value(chat.queued_at),
                id_value(chat.ticket_id.0)
            ],
            |row| row.get(0),
        )
}

pub fn list_chat_entries(
    connection: &Connection,
    ticket_id: TicketId,
    after_seq: i64,
    limit: u32,
) -> rusqlite::Result<Vec<ChatEntry>> {
    let limit = if limit == 0 { DEFAULT_LIMIT } else { limit };
    connection
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM chat_entries WHERE ticket_id = ?1 AND seq > ?2 \
             ORDER BY seq LIMIT ?3"
        ))?
        .query_map(
            params![&ticket_id.as_bytes()[..], after_seq, limit],
            entry_from_row,
        )?
        .collect()
}

pub fn find_chat_entry_by_client_id(
    connection: &Connection,
    ticket_id: TicketId,
    client_id: &str,
) -> rusqlite::Result<Option<ChatEntry>> {
    connection
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM chat_entries WHERE ticket_id = ?1 AND client_id = ?2"
        ))?
        .query_row(
            params![&ticket_id.as_bytes()[..], client_id],
            entry_from_row,
        )
        .optional()
}

pub fn find_agent_chat_status(
    connection: &Connection,
    agent_id: AgentId,
) -> rusqlite::Result<Option<AgentChatStatus>> {
    connection
        .prepare_cached(&format!(
            "SELECT {STATUS_COLUMNS} FROM agent_chat_status WHERE agent_id = ?1"
        ))?
        .query_row([&agent_id.as_bytes()[..]], status_from_row)
        .optional()
}

pub fn list_agent_chat_statuses(connection: &Connection) -> rusqlite::Result<Vec<AgentChatStatus>> {
    connection
        .prepare_cached(&format!(
            "SELECT {STATUS_COLUMNS} FROM agent_chat_status ORDER BY agent_id"
        ))?
        .query_map([], status_from_row)?
        .collect()
}
