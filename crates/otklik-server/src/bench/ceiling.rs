//! The SQLite ceiling: what a bare insert loop reaches on the same machine, for comparison.

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::report::{CeilingFigure, CeilingReport};
use super::{CEILING_GROUP, CEILING_TIME_CAP};

/// What SQLite itself reaches on this disk with the server's durability settings.
pub(super) fn sqlite_ceiling(max_tickets: usize) -> anyhow::Result<CeilingReport> {
    let folder = tempfile::Builder::new()
        .prefix("otklik-ceiling-")
        .tempdir()?;
    Ok(CeilingReport {
        description: "bare rusqlite insert loop, WAL, synchronous=FULL; per ticket one tickets row, one messages row and \
                      one audit_events row with the server's main indexes"
            .into(),
        one_per_transaction: insert_loop(&folder.path().join("single.db"), max_tickets, 1)?,
        grouped: insert_loop(&folder.path().join("grouped.db"), max_tickets, CEILING_GROUP)?,
    })
}

pub(super) fn insert_loop(
    path: &Path,
    max_tickets: usize,
    per_transaction: usize,
) -> anyhow::Result<CeilingFigure> {
    let mut connection = rusqlite::Connection::open(path)?;
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         CREATE TABLE tickets (
             id BLOB PRIMARY KEY NOT NULL, number INTEGER NOT NULL UNIQUE, subject TEXT NOT NULL,
             status TEXT NOT NULL, priority TEXT NOT NULL, channel TEXT NOT NULL, customer_id BLOB NOT NULL,
             created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, version INTEGER NOT NULL);
         CREATE INDEX tickets_by_update ON tickets (updated_at, id);
         CREATE INDEX tickets_by_status ON tickets (status, updated_at, id);
         CREATE INDEX tickets_by_customer ON tickets (customer_id, updated_at, id);
         CREATE TABLE messages (
             id BLOB PRIMARY KEY NOT NULL, ticket_id BLOB NOT NULL, author_kind TEXT NOT NULL, author_id BLOB,
             visibility TEXT NOT NULL, channel TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL);
         CREATE INDEX messages_by_ticket ON messages (ticket_id, created_at, id);
         CREATE TABLE audit_events (
             id BLOB PRIMARY KEY NOT NULL, at INTEGER NOT NULL, actor_agent_id BLOB, action TEXT NOT NULL,
             object_kind TEXT NOT NULL, object_id BLOB NOT NULL, changes TEXT NOT NULL);
         CREATE INDEX audit_events_by_object ON audit_events (object_id, at, id);",
    )?;
    let body = "Здравствуйте! Оформил заказ №448812 неделю назад, трек-номер 80085412345678 не отслеживается. \
                Подскажите, пожалуйста, когда ждать доставку? Сумма заказа 12 990 ₽.";
    let changes = r#"[{"field":"subject","before":null,"after":"Где мой заказ №448812?"},{"field":"status","before":null,"after":"new"},{"field":"priority","before":null,"after":"normal"},{"field":"channel","before":null,"after":"api"}]"#;
    let actor = uuid::Uuid::now_v7();
    let started = Instant::now();
    let mut written = 0usize;
    while written < max_tickets && started.elapsed() < CEILING_TIME_CAP {
        let transaction = connection.transaction()?;
        for _ in 0..per_transaction.min(max_tickets - written) {
            let micros = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros())
                .unwrap_or(i64::MAX);
            let (ticket, message, audit, customer) = (
                uuid::Uuid::now_v7(),
                uuid::Uuid::now_v7(),
                uuid::Uuid::now_v7(),
                uuid::Uuid::now_v7(),
            );
            let number = i64::try_from(written + 1)?;
            transaction
                .prepare_cached(
                    "INSERT INTO tickets (id, number, subject, status, priority, channel, customer_id, created_at, updated_at, version) \
                     VALUES (?1, ?2, ?3, 'new', 'normal', 'api', ?4, ?5, ?5, 1)",
                )?
                .execute(rusqlite::params![&ticket.as_bytes()[..], number, "Где мой заказ №448812?", &customer.as_bytes()[..], micros])?;
            transaction
                .prepare_cached(
                    "INSERT INTO messages (id, ticket_id, author_kind, author_id, visibility, channel, body, created_at) \
                     VALUES (?1, ?2, 'customer', ?3, 'public', 'api', ?4, ?5)",
                )?
                .execute(rusqlite::params![&message.as_bytes()[..], &ticket.as_bytes()[..], &customer.as_bytes()[..], body, micros])?;
            transaction
                .prepare_cached(
                    "INSERT INTO audit_events (id, at, actor_agent_id, action, object_kind, object_id, changes) \
                     VALUES (?1, ?2, ?3, 'ticket.created', 'ticket', ?4, ?5)",
                )?
                .execute(rusqlite::params![&audit.as_bytes()[..], micros, &actor.as_bytes()[..], &ticket.as_bytes()[..], changes])?;
            written += 1;
        }
        transaction.commit()?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(CeilingFigure {
        tickets_per_transaction: per_transaction,
        tickets: written,
        seconds,
        tickets_per_second: if seconds > 0.0 {
            written as f64 / seconds
        } else {
            0.0
        },
    })
}
