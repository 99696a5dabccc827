//! The email channel's tables: mailboxes, IMAP cursors, e-mails (in and out), instance secrets.

use otklik_domain::clock::to_micros;
use otklik_domain::email::{EmailDirection, EmailRecord, Mailbox};
use otklik_domain::ids::{EmailId, MailboxId, MessageId, TicketId};
use otklik_store::{EmailQuery, ImapCursorRecord, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params, params_from_iter};

use crate::rows::*;
use crate::write::db;

const MAILBOX_COLUMNS: &str =
    "id, name, address, imap_url, smtp_url, auto_acknowledge, created_at, updated_at";

fn mailbox_from_row(row: &Row<'_>) -> rusqlite::Result<Mailbox> {
    Ok(Mailbox {
        id: MailboxId(uuid_at(row, 0)?),
        name: row.get(1)?,
        address: row.get(2)?,
        imap_url: row.get(3)?,
        smtp_url: row.get(4)?,
        auto_acknowledge: row.get(5)?,
        created_at: time_at(row, 6)?,
        updated_at: time_at(row, 7)?,
    })
}

const EMAIL_COLUMNS: &str = "id, mailbox_id, direction, status, status_reason, dedup_key, \
     message_id_header, ticket_id, message_id, raw_sha256, from_address, recipients, subject, \
     html_body, folded_text, automatic, attempts, next_attempt_at, created_at, updated_at";

fn email_from_row(row: &Row<'_>) -> rusqlite::Result<EmailRecord> {
    let recipients: String = row.get(11)?;
    Ok(EmailRecord {
        id: EmailId(uuid_at(row, 0)?),
        mailbox_id: MailboxId(uuid_at(row, 1)?),
        direction: parse_at(row, 2)?,
        status: parse_at(row, 3)?,
        status_reason: row.get(4)?,
        dedup_key: row.get(5)?,
        message_id_header: row.get(6)?,
        ticket_id: opt_uuid_at(row, 7)?.map(TicketId),
        message_id: opt_uuid_at(row, 8)?.map(MessageId),
        raw_sha256: row.get(9)?,
        from_address: row.get(10)?,
        recipients: serde_json::from_str(&recipients).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(
                11,
                rusqlite::types::Type::Text,
                Box::new(error),
            )
        })?,
        subject: row.get(12)?,
        html_body: row.get(13)?,
        folded_text: row.get(14)?,
        automatic: row.get(15)?,
        attempts: row.get(16)?,
        next_attempt_at: opt_time_at(row, 17)?,
        created_at: time_at(row, 18)?,
        updated_at: time_at(row, 19)?,
    })
}

// Writes.

pub(crate) fn insert_mailbox(transaction: &Transaction<'_>, mailbox: &Mailbox) -> StoreResult<()> {
    db(transaction
        .prepare_cached(&format!(
            "INSERT INTO mailboxes ({MAILBOX_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))
        .and_then(|mut s| {
            s.execute(params![
                &mailbox.id.as_bytes()[..],
                mailbox.name,
                mailbox.address,
                mailbox.imap_url,
                mailbox.smtp_url,
                mailbox.auto_acknowledge,
                to_micros(mailbox.created_at),
                to_micros(mailbox.updated_at)
            ])
        }))?;
    Ok(())
}

pub(crate) fn update_mailbox(transaction: &Transaction<'_>, mailbox: &Mailbox) -> StoreResult<()> {
    let n_rows = db(transaction
        .prepare_cached(
            "UPDATE mailboxes SET name = ?2, address = ?3, imap_url = ?4, smtp_url = ?5, \
             auto_acknowledge = ?6, updated_at = ?7 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                &mailbox.id.as_bytes()[..],
                mailbox.name,
                mailbox.address,
                mailbox.imap_url,
                mailbox.smtp_url,
                mailbox.auto_acknowledge,
                to_micros(mailbox.updated_at)
            ])
        }))?;
    if n_rows == 0 {
        return Err(StoreError::NotFound { what: "mailbox" });
    }
    Ok(())
}

pub(crate) fn save_imap_cursor(
    transaction: &Transaction<'_>,
    cursor: &ImapCursorRecord,
) -> StoreResult<()> {
    db(transaction
        .prepare_cached(
            "INSERT INTO imap_cursors (mailbox_id, uid_validity, last_uid, updated_at) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (mailbox_id) DO UPDATE SET \
             uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, \
             updated_at = excluded.updated_at",
        )
        .and_then(|mut s| {
            s.execute(params![
                &cursor.mailbox_id.as_bytes()[..],
                cursor.uid_validity,
                cursor.last_uid,
                to_micros(cursor.updated_at)
            ])
        }))?;
    Ok(())
}

fn automatic_recipient(email: &EmailRecord) -> Option<&str> {
    email
        .automatic
        .then(|| email.recipients.first().map(String::as_str))
        .flatten()
}

pub(crate) fn insert_email(transaction: &Transaction<'_>, email: &EmailRecord) -> StoreResult<()> {
    db(transaction
        .prepare_cached(&format!(
            "INSERT INTO emails ({EMAIL_COLUMNS}, automatic_recipient) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)"
        ))
        .and_then(|mut s| {
            s.execute(params![
                &email.id.as_bytes()[..],
                &email.mailbox_id.as_bytes()[..],
                email.direction.as_str(),
                email.status.as_str(),
                email.status_reason,
                email.dedup_key,
                email.message_id_header,
                opt_id_value(email.ticket_id.map(|id| id.0)),
                opt_id_value(email.message_id.map(|id| id.0)),
                email.raw_sha256,
                email.from_address,
                serde_json::to_string(&email.recipients).unwrap_or_else(|_| "[]".into()),
                email.subject,
                email.html_body,
                email.folded_text,
                email.automatic,
                email.attempts,
                opt_time_value(email.next_attempt_at),
                to_micros(email.created_at),
                to_micros(email.updated_at),
                automatic_recipient(email)
            ])
        }))?;
    Ok(())
}

pub(crate) fn update_email(transaction: &Transaction<'_>, email: &EmailRecord) -> StoreResult<()> {
    let n_rows = db(transaction
        .prepare_cached(
            "UPDATE emails SET status = ?2, status_reason = ?3, ticket_id = ?4, message_id = ?5, \
             attempts = ?6, next_attempt_at = ?7, updated_at = ?8 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                &email.id.as_bytes()[..],
                email.status.as_str(),
                email.status_reason,
                opt_id_value(email.ticket_id.map(|id| id.0)),
                opt_id_value(email.message_id.map(|id| id.0)),
                email.attempts,
                opt_time_value(email.next_attempt_at),
                to_micros(email.updated_at)
            ])
        }))?;
    if n_rows == 0 {
        return Err(StoreError::NotFound { what: "email" });
    }
    Ok(())
}

/// Leases due e-mails. The single writer thread makes select-then-update atomic here.
pub(crate) fn claim_due_emails(
    transaction: &Transaction<'_>,
    now: jiff::Timestamp,
    lease_until: jiff::Timestamp,
    limit: u32,
) -> StoreResult<Vec<EmailRecord>> {
    let due: Vec<EmailRecord> = db(transaction
        .prepare_cached(&format!(
            "SELECT {EMAIL_COLUMNS} FROM emails WHERE status = 'queued' AND next_attempt_at <= ?1 \
             ORDER BY next_attempt_at, id LIMIT ?2"
        ))
        .and_then(|mut s| {
            s.query_map(params![to_micros(now), limit], email_from_row)?
                .collect()
        }))?;
    let mut claimed = Vec::with_capacity(due.len());
    for mut email in due {
        db(transaction
            .prepare_cached("UPDATE emails SET next_attempt_at = ?2 WHERE id = ?1")
            .and_then(|mut s| {
                s.execute(params![&email.id.as_bytes()[..], to_micros(lease_until)])
            }))?;
        email.next_attempt_at = Some(lease_until);
        claimed.push(email);
    }
    Ok(claimed)
}

pub(crate) fn insert_instance_secret(
    transaction: &Transaction<'_>,
    name: &str,
    secret: &[u8],
) -> StoreResult<()> {
    db(transaction
        .prepare_cached("INSERT INTO instance_secrets (name, secret) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![name, secret])))?;
    Ok(())
}

pub(crate) fn acquire_lease(
    transaction: &Transaction<'_>,
    name: &str,
    holder: &str,
    now: jiff::Timestamp,
    until: jiff::Timestamp,
) -> StoreResult<()> {
    let n_rows = db(transaction
        .prepare_cached(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4",
        )
        .and_then(|mut s| s.execute(params![name, holder, to_micros(until), to_micros(now)])))?;
    if n_rows == 0 {
        return Err(StoreError::Conflict {
            constraint: "leases.held".into(),
        });
    }
    Ok(())
}

pub(crate) fn release_lease(
    transaction: &Transaction<'_>,
    name: &str,
    holder: &str,
) -> StoreResult<()> {
    db(transaction
        .prepare_cached("DELETE FROM leases WHERE name = ?1 AND holder = ?2")
        .and_then(|mut s| s.execute(params![name, holder])))?;
    Ok(())
}

// Reads.

pub fn find_mailbox(connection: &Connection, id: MailboxId) -> rusqlite::Result<Option<Mailbox>> {
    connection
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = ?1"
        ))?
        .query_row([&id.as_bytes()[..]], mailbox_from_row)
        .optional()
}

pub fn find_mailbox_by_name(
    connection: &Connection,
    name: &str,
) -> rusqlite::Result<Option<Mailbox>> {
    connection
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE name = ?1"
        ))?
        .query_row([name], mailbox_from_row)
        .optional()
}

pub fn list_mailboxes(connection: &Connection) -> rusqlite::Result<Vec<Mailbox>> {
    connection
        .prepare_cached(&format!(
            "SELECT {MAILBOX_COLUMNS} FROM mailboxes ORDER BY name"
        ))?
        .query_map([], mailbox_from_row)?
        .collect()
}

pub fn find_imap_cursor(
    connection: &Connection,
    mailbox_id: MailboxId,
) -> rusqlite::Result<Option<ImapCursorRecord>> {
    connection
        .prepare_cached(
            "SELECT mailbox_id, uid_validity, last_uid, updated_at FROM imap_cursors \
             WHERE mailbox_id = ?1",
        )?
        .query_row([&mailbox_id.as_bytes()[..]], |row| {
            Ok(ImapCursorRecord {
                mailbox_id: MailboxId(uuid_at(row, 0)?),
                uid_validity: row.get(1)?,
                last_uid: row.get(2)?,
                updated_at: time_at(row, 3)?,
            })
        })
        .optional()
}

pub fn find_email(connection: &Connection, id: EmailId) -> rusqlite::Result<Option<EmailRecord>> {
    connection
        .prepare_cached(&format!("SELECT {EMAIL_COLUMNS} FROM emails WHERE id = ?1"))?
        .query_row([&id.as_bytes()[..]], email_from_row)
        .optional()
}

pub fn find_email_by_dedup_key(
    connection: &Connection,
    direction: EmailDirection,
    dedup_key: &str,
) -> rusqlite::Result<Option<EmailRecord>> {
    connection
        .prepare_cached(&format!(
            "SELECT {EMAIL_COLUMNS} FROM emails WHERE direction = ?1 AND dedup_key = ?2"
        ))?
        .query_row(params![direction.as_str(), dedup_key], email_from_row)
        .optional()
}

pub fn find_emails_by_message_ids(
    connection: &Connection,
    message_ids: &[String],
) -> rusqlite::Result<Vec<EmailRecord>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {EMAIL_COLUMNS} FROM emails WHERE message_id_header IN ({}) \
         ORDER BY created_at DESC, id DESC LIMIT 100",
        placeholders(message_ids.len())
    );
    connection
        .prepare(&sql)?
        .query_map(params_from_iter(message_ids.iter()), email_from_row)?
        .collect()
}

pub fn list_ticket_emails(
    connection: &Connection,
    ticket_id: TicketId,
) -> rusqlite::Result<Vec<EmailRecord>> {
    connection
        .prepare_cached(&format!(
            "SELECT {EMAIL_COLUMNS} FROM emails WHERE ticket_id = ?1 ORDER BY created_at, id"
        ))?
        .query_map([&ticket_id.as_bytes()[..]], email_from_row)?
        .collect()
}

pub fn list_emails(
    connection: &Connection,
    query: &EmailQuery,
) -> rusqlite::Result<Vec<EmailRecord>> {
    let before = query.before.map(|id| id.as_bytes().to_vec());
    connection
        .prepare_cached(&format!(
            "SELECT {EMAIL_COLUMNS} FROM emails WHERE status = ?1 AND (?2 IS NULL OR id < ?2) \
             ORDER BY id DESC LIMIT ?3"
        ))?
        .query_map(
            params![query.status.as_str(), before, query.limit],
            email_from_row,
        )?
        .collect()
}

pub fn count_automatic_emails_since(
    connection: &Connection,
    recipient: &str,
    since: jiff::Timestamp,
) -> rusqlite::Result<i64> {
    connection
        .prepare_cached(
            "SELECT count(*) FROM emails WHERE automatic_recipient = ?1 AND created_at >= ?2",
        )?
        .query_row(params![recipient, to_micros(since)], |row| row.get(0))
}

pub fn find_instance_secret(
    connection: &Connection,
    name: &str,
) -> rusqlite::Result<Option<Vec<u8>>> {
    connection
        .prepare_cached("SELECT secret FROM instance_secrets WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()
}
