//! The email channel's tables: mailboxes, IMAP cursors, e-mails (in and out), instance secrets.

use otklik_domain::clock::to_micros;
use otklik_domain::email::{EmailDirection, EmailRecord, Mailbox};
use otklik_domain::ids::{EmailId, MailboxId, MessageId, TicketId};
use otklik_store::{EmailQuery, ImapCursorRecord, StoreError, StoreResult};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::Client;
use crate::error::map_error;
use crate::read::{query, query_opt};
use crate::rows::{get, opt_time, parse, time};
use crate::write::execute;

type Transaction<'a> = deadpool_postgres::Transaction<'a>;

const MAILBOX_COLUMNS: &str =
    "id, name, address, imap_url, smtp_url, auto_acknowledge, created_at, updated_at";

fn mailbox(row: &Row) -> StoreResult<Mailbox> {
    Ok(Mailbox {
        id: MailboxId(get(row, "id")?),
        name: get(row, "name")?,
        address: get(row, "address")?,
        imap_url: get(row, "imap_url")?,
        smtp_url: get(row, "smtp_url")?,
        auto_acknowledge: get(row, "auto_acknowledge")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

const EMAIL_COLUMNS: &str = "id, mailbox_id, direction, status, status_reason, dedup_key, \
     message_id_header, ticket_id, message_id, raw_sha256, from_address, recipients, subject, \
     html_body, folded_text, automatic, attempts, next_attempt_at, created_at, updated_at";

fn email(row: &Row) -> StoreResult<EmailRecord> {
    let recipients: serde_json::Value = get(row, "recipients")?;
    let attempts: i64 = get(row, "attempts")?;
    Ok(EmailRecord {
        id: EmailId(get(row, "id")?),
        mailbox_id: MailboxId(get(row, "mailbox_id")?),
        direction: parse(row, "direction")?,
        status: parse(row, "status")?,
        status_reason: get(row, "status_reason")?,
        dedup_key: get(row, "dedup_key")?,
        message_id_header: get(row, "message_id_header")?,
        ticket_id: get::<Option<Uuid>>(row, "ticket_id")?.map(TicketId),
        message_id: get::<Option<Uuid>>(row, "message_id")?.map(MessageId),
        raw_sha256: get(row, "raw_sha256")?,
        from_address: get(row, "from_address")?,
        recipients: serde_json::from_value(recipients).map_err(|error| {
            StoreError::corrupt(format!(
                "column recipients is not a list of addresses: {error}"
            ))
        })?,
        subject: get(row, "subject")?,
        html_body: get(row, "html_body")?,
        folded_text: get(row, "folded_text")?,
        automatic: get(row, "automatic")?,
        attempts: i32::try_from(attempts)
            .map_err(|_| StoreError::corrupt(format!("attempts out of range: {attempts}")))?,
        next_attempt_at: opt_time(row, "next_attempt_at")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
    })
}

// Writes.

pub(crate) async fn insert_mailbox(
    transaction: &Transaction<'_>,
    mailbox: &Mailbox,
) -> StoreResult<()> {
    execute(
        transaction,
        &format!(
            "INSERT INTO mailboxes ({MAILBOX_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ),
        &[
            &mailbox.id.0,
            &mailbox.name,
            &mailbox.address,
            &mailbox.imap_url,
            &mailbox.smtp_url,
            &mailbox.auto_acknowledge,
            &to_micros(mailbox.created_at),
            &to_micros(mailbox.updated_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn update_mailbox(
    transaction: &Transaction<'_>,
    mailbox: &Mailbox,
) -> StoreResult<()> {
    let touched = execute(
        transaction,
        "UPDATE mailboxes SET name = $2, address = $3, imap_url = $4, smtp_url = $5, \
         auto_acknowledge = $6, updated_at = $7 WHERE id = $1",
        &[
            &mailbox.id.0,
            &mailbox.name,
            &mailbox.address,
            &mailbox.imap_url,
            &mailbox.smtp_url,
            &mailbox.auto_acknowledge,
            &to_micros(mailbox.updated_at),
        ],
    )
    .await?;
    if touched == 0 {
        return Err(StoreError::NotFound { what: "mailbox" });
    }
    Ok(())
}

pub(crate) async fn save_imap_cursor(
    transaction: &Transaction<'_>,
    cursor: &ImapCursorRecord,
) -> StoreResult<()> {
    execute(
        transaction,
        "INSERT INTO imap_cursors (mailbox_id, uid_validity, last_uid, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (mailbox_id) DO UPDATE SET \
         uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, \
         updated_at = excluded.updated_at",
        &[
            &cursor.mailbox_id.0,
            &i64::from(cursor.uid_validity),
            &i64::from(cursor.last_uid),
            &to_micros(cursor.updated_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn insert_email(
    transaction: &Transaction<'_>,
    email: &EmailRecord,
) -> StoreResult<()> {
    let recipients = serde_json::to_value(&email.recipients).map_err(StoreError::database)?;
    let automatic_recipient = email
        .automatic
        .then(|| email.recipients.first().cloned())
        .flatten();
    execute(
        transaction,
        &format!(
            "INSERT INTO emails ({EMAIL_COLUMNS}, automatic_recipient) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        ),
        &[
            &email.id.0,
            &email.mailbox_id.0,
            &email.direction.as_str(),
            &email.status.as_str(),
            &email.status_reason,
            &email.dedup_key,
            &email.message_id_header,
            &email.ticket_id.map(|id| id.0),
            &email.message_id.map(|id| id.0),
            &email.raw_sha256,
            &email.from_address,
            &recipients,
            &email.subject,
            &email.html_body,
            &email.folded_text,
            &email.automatic,
            &i64::from(email.attempts),
            &email.next_attempt_at.map(to_micros),
            &to_micros(email.created_at),
            &to_micros(email.updated_at),
            &automatic_recipient,
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn update_email(
    transaction: &Transaction<'_>,
    email: &EmailRecord,
) -> StoreResult<()> {
    let touched = execute(
        transaction,
        "UPDATE emails SET status = $2, status_reason = $3, ticket_id = $4, message_id = $5, \
         attempts = $6, next_attempt_at = $7, updated_at = $8 WHERE id = $1",
        &[
            &email.id.0,
            &email.status.as_str(),
            &email.status_reason,
            &email.ticket_id.map(|id| id.0),
            &email.message_id.map(|id| id.0),
            &i64::from(email.attempts),
            &email.next_attempt_at.map(to_micros),
            &to_micros(email.updated_at),
        ],
    )
    .await?;
    if touched == 0 {
        return Err(StoreError::NotFound { what: "email" });
    }
    Ok(())
}

/// Leases due e-mails; `SKIP LOCKED` lets several nodes' workers claim disjoint sets at once.
pub(crate) async fn claim_due_emails(
    transaction: &Transaction<'_>,
    now: jiff::Timestamp,
    lease_until: jiff::Timestamp,
    limit: u32,
) -> StoreResult<Vec<EmailRecord>> {
    let sql = format!(
        "UPDATE emails SET next_attempt_at = $2 WHERE id IN ( \
             SELECT id FROM emails WHERE status = 'queued' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING {EMAIL_COLUMNS}"
    );
    let statement = transaction.prepare_cached(&sql).await.map_err(map_error)?;
    let rows = transaction
        .query(
            &statement,
            &[&to_micros(now), &to_micros(lease_until), &i64::from(limit)],
        )
        .await
        .map_err(map_error)?;
    let mut claimed = rows.iter().map(email).collect::<StoreResult<Vec<_>>>()?;
    claimed.sort_by_key(|email| email.id);
    Ok(claimed)
}

pub(crate) async fn insert_instance_secret(
    transaction: &Transaction<'_>,
    name: &str,
    secret: &[u8],
) -> StoreResult<()> {
    execute(
        transaction,
        "INSERT INTO instance_secrets (name, secret) VALUES ($1, $2)",
        &[&name, &secret],
    )
    .await?;
    Ok(())
}

pub(crate) async fn acquire_lease(
    transaction: &Transaction<'_>,
    name: &str,
    holder: &str,
    now: jiff::Timestamp,
    until: jiff::Timestamp,
) -> StoreResult<()> {
    let touched = execute(
        transaction,
        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE leases.holder = excluded.holder OR leases.expires_at <= $4",
        &[&name, &holder, &to_micros(until), &to_micros(now)],
    )
    .await?;
    if touched == 0 {
        return Err(StoreError::Conflict {
            constraint: "leases.held".into(),
        });
    }
    Ok(())
}

pub(crate) async fn release_lease(
    transaction: &Transaction<'_>,
    name: &str,
    holder: &str,
) -> StoreResult<()> {
    execute(
        transaction,
        "DELETE FROM leases WHERE name = $1 AND holder = $2",
        &[&name, &holder],
    )
    .await?;
    Ok(())
}

// Reads.

pub(crate) async fn find_mailbox(client: &Client, id: MailboxId) -> StoreResult<Option<Mailbox>> {
    let sql = format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = $1");
    query_opt(client, &sql, &[&id.0])
        .await?
        .as_ref()
        .map(mailbox)
        .transpose()
}

pub(crate) async fn find_mailbox_by_name(
    client: &Client,
    name: &str,
) -> StoreResult<Option<Mailbox>> {
    let sql = format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE name = $1");
    query_opt(client, &sql, &[&name])
        .await?
        .as_ref()
        .map(mailbox)
        .transpose()
}

pub(crate) async fn list_mailboxes(client: &Client) -> StoreResult<Vec<Mailbox>> {
    let sql = format!(r#"SELECT {MAILBOX_COLUMNS} FROM mailboxes ORDER BY name COLLATE "C""#);
    query(client, &sql, &[])
        .await?
        .iter()
        .map(mailbox)
        .collect()
}

pub(crate) async fn find_imap_cursor(
    client: &Client,
    mailbox_id: MailboxId,
) -> StoreResult<Option<ImapCursorRecord>> {
    let row = query_opt(
        client,
        "SELECT mailbox_id, uid_validity, last_uid, updated_at FROM imap_cursors WHERE mailbox_id = $1",
        &[&mailbox_id.0],
    )
    .await?;
    row.map(|row| {
        let uid = |column: &str| -> StoreResult<u32> {
            let value: i64 = get(&row, column)?;
            u32::try_from(value)
                .map_err(|_| StoreError::corrupt(format!("{column} out of range: {value}")))
        };
        Ok(ImapCursorRecord {
            mailbox_id: MailboxId(get(&row, "mailbox_id")?),
            uid_validity: uid("uid_validity")?,
            last_uid: uid("last_uid")?,
            updated_at: time(&row, "updated_at")?,
        })
    })
    .transpose()
}

pub(crate) async fn find_email(client: &Client, id: EmailId) -> StoreResult<Option<EmailRecord>> {
    let sql = format!("SELECT {EMAIL_COLUMNS} FROM emails WHERE id = $1");
    query_opt(client, &sql, &[&id.0])
        .await?
        .as_ref()
        .map(email)
        .transpose()
}

pub(crate) async fn find_email_by_dedup_key(
    client: &Client,
    direction: EmailDirection,
    dedup_key: &str,
) -> StoreResult<Option<EmailRecord>> {
    let sql = format!("SELECT {EMAIL_COLUMNS} FROM emails WHERE direction = $1 AND dedup_key = $2");
    query_opt(client, &sql, &[&direction.as_str(), &dedup_key])
        .await?
        .as_ref()
        .map(email)
        .transpose()
}

pub(crate) async fn find_emails_by_message_ids(
    client: &Client,
    message_ids: &[String],
) -> StoreResult<Vec<EmailRecord>> {
    if message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {EMAIL_COLUMNS} FROM emails WHERE message_id_header = ANY($1) \
         ORDER BY created_at DESC, id DESC LIMIT 100"
    );
    query(client, &sql, &[&message_ids])
        .await?
        .iter()
        .map(email)
        .collect()
}

pub(crate) async fn list_ticket_emails(
    client: &Client,
    ticket_id: TicketId,
) -> StoreResult<Vec<EmailRecord>> {
    let sql =
        format!("SELECT {EMAIL_COLUMNS} FROM emails WHERE ticket_id = $1 ORDER BY created_at, id");
    query(client, &sql, &[&ticket_id.0])
        .await?
        .iter()
        .map(email)
        .collect()
}

pub(crate) async fn list_emails(
    client: &Client,
    email_query: &EmailQuery,
) -> StoreResult<Vec<EmailRecord>> {
    let sql = format!(
        "SELECT {EMAIL_COLUMNS} FROM emails WHERE status = $1 AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3"
    );
    query(
        client,
        &sql,
        &[
            &email_query.status.as_str(),
            &email_query.before.map(|id| id.0),
            &i64::from(email_query.limit),
        ],
    )
    .await?
    .iter()
    .map(email)
    .collect()
}

pub(crate) async fn count_automatic_emails_since(
    client: &Client,
    recipient: &str,
    since: jiff::Timestamp,
) -> StoreResult<i64> {
    let row = query_opt(
        client,
        "SELECT count(*) AS n FROM emails WHERE automatic_recipient = $1 AND created_at >= $2",
        &[&recipient, &to_micros(since)],
    )
    .await?;
    row.map_or(Ok(0), |row| get(&row, "n"))
}

pub(crate) async fn find_instance_secret(
    client: &Client,
    name: &str,
) -> StoreResult<Option<Vec<u8>>> {
    let row = query_opt(
        client,
        "SELECT secret FROM instance_secrets WHERE name = $1",
        &[&name],
    )
    .await?;
    row.map(|row| get(&row, "secret")).transpose()
}
