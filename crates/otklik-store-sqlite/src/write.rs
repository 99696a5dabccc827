//! The write side: the writer thread with group commit, and one function per mutation.

use std::collections::HashMap;
use std::sync::mpsc;

use otklik_domain::agent::Agent;
use otklik_domain::clock::to_micros;
use otklik_domain::customer::{Customer, Identity};
use otklik_domain::ids::AuditEventId;

use otklik_domain::message::{Author, Message};
use otklik_domain::ticket::Ticket;
use otklik_store::derived::KnownTokens;
use otklik_store::events::{ChangeEvent, events_of};
use otklik_store::{CommitReceipt, Mutation, StoreError, StoreResult, UnitOfWork};
use rusqlite::types::Value;
use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior, params,
    params_from_iter,
};

use crate::WriteRequest;
use crate::bulk;
use crate::chat;
use crate::derived;
use crate::email;
use crate::rows::*;

/// Serves write requests until every sender is gone. Each round takes what is queued (up to
/// `max_batch`), applies each unit in its own savepoint, commits once and answers everyone.
pub(crate) fn run_writer(
    mut connection: Connection,
    requests: mpsc::Receiver<WriteRequest>,
    max_batch: usize,
    events: tokio::sync::broadcast::Sender<ChangeEvent>,
) {
    let mut known = KnownTokens::default();
    let mut checkpointer: Option<bulk::BackgroundCheckpointer> = None;
    // Set when the connection must be replaced before it writes again (see below).
    let mut replace_connection = false;
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        if replace_connection {
            match connection.path().map(crate::writer_connection) {
                Some(Ok(fresh)) => {
                    connection = fresh;
                    replace_connection = false;
                }
                Some(Err(error)) => {
                    tracing::error!(%error, "could not reopen the database after a bulk import");
                    for request in batch {
                        let _ = request.reply.send(Err(map_error(&error)));
                    }
                    continue;
                }
                // In memory: no import copies indexes there.
                None => replace_connection = false,
            }
        }
        let outcomes = commit_batch(&mut connection, &mut batch, &known);
        if batch
            .iter()
            .any(|request| bulk::starts_or_ends(&request.unit))
        {
            // Stopped first: the end of an import empties the log itself.
            drop(checkpointer.take());
            if bulk::configure_checkpoints(&connection) {
                checkpointer = bulk::BackgroundCheckpointer::start(&connection);
            } else {
                // The end of an import may have copied the full-text indexes' tables in under
                // FTS5, which keeps what it read of an index per connection and would write
                // over the copy from that: the next batch gets a fresh connection.
                replace_connection = true;
            }
        }
        for (request, outcome) in batch.into_iter().zip(outcomes) {
            let outcome = outcome.map(|applied| {
                // Durable now: its tokens are in the vocabulary for every later write.
                known.learn(applied.learned);
                // Announced only once durable; having no subscriber is not an error.
                for event in events_of(&request.unit) {
                    let _ = events.send(event);
                }
                applied.receipt
            });
            // A caller that gave up (timeout, shutdown) no longer listens; its unit still stands.
            let _ = request.reply.send(outcome);
        }
    }
}

/// A unit applied inside the open transaction.
struct Applied {
    receipt: CommitReceipt,
    /// Vocabulary tokens it inserted.
    learned: Vec<String>,
}

fn commit_batch(
    connection: &mut Connection,
    batch: &mut [WriteRequest],
    known: &KnownTokens,
) -> Vec<StoreResult<Applied>> {
    let transaction = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(transaction) => transaction,
        Err(error) => return batch.iter().map(|_| Err(map_error(&error))).collect(),
    };
    if let [only] = batch {
        // A unit alone in its transaction needs no savepoint: on failure the whole transaction
        // rolls back. Savepoints are not free: every statement journal written inside one is
        // walked again when it ends, so a big unit (a bulk load) would cost the square of its
        // size.
        let prepared = std::mem::take(&mut only.prepared);
        let outcome = apply_unit(&transaction, &only.unit, prepared, known, Sharing::Alone);
        if outcome.is_err() {
            drop(transaction);
            return vec![outcome];
        }
        return match transaction.commit() {
            Ok(()) => vec![outcome],
            Err(error) => {
                tracing::error!(%error, "SQLite commit failed");
                vec![Err(map_error(&error))]
            }
        };
    }
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch.iter_mut() {
        let prepared = std::mem::take(&mut request.prepared);
        outcomes.push(apply_in_savepoint(
            &transaction,
            &request.unit,
            prepared,
            known,
        ));
    }
    if let Err(error) = transaction.commit() {
        // Nothing of the batch is durable: every caller hears the failure.
        tracing::error!(%error, "SQLite group commit failed");
        return batch.iter().map(|_| Err(map_error(&error))).collect();
    }
    outcomes
}

fn apply_in_savepoint(
    transaction: &Transaction<'_>,
    unit: &UnitOfWork,
    prepared: Prepared,
    known: &KnownTokens,
) -> StoreResult<Applied> {
    transaction
        .execute_batch("SAVEPOINT unit")
        .map_err(|error| map_error(&error))?;
    match apply_unit(transaction, unit, prepared, known, Sharing::Shared) {
        Ok(applied) => {
            transaction
                .execute_batch("RELEASE unit")
                .map_err(|error| map_error(&error))?;
            Ok(applied)
        }
        Err(error) => {
            transaction
                .execute_batch("ROLLBACK TO unit; RELEASE unit")
                .map_err(|rollback_error| map_error(&rollback_error))?;
            Err(error)
        }
    }
}

/// What the writer needs of a unit besides its mutations, prepared before the unit is queued so
/// the one writer thread spends its time writing.
#[derive(Debug, Default)]
pub(crate) struct Prepared {
    /// Index terms of the unit's new text.
    pub(crate) terms: derived::AnalysedText,
    /// Each audit event's changes as JSON (~5% of the writer's work in a bulk import). An event
    /// missing here is serialised by the writer.
    pub(crate) audit_changes: HashMap<AuditEventId, String>,
}

impl Prepared {
    pub(crate) fn of(unit: &UnitOfWork) -> Self {
        Prepared {
            terms: derived::AnalysedText::of(unit),
            audit_changes: unit
                .mutations
                .iter()
                .filter_map(|mutation| match mutation {
                    Mutation::Audit(event) => Some((event.id, event.changes_json_text())),
                    _ => None,
                })
                .collect(),
        }
    }
}

/// Statements a unit runs once per row it inserts (see [`RowStatements`]).
const INSERT_TICKET: &str = "INSERT INTO tickets (id, number, subject, status, priority, channel, \
     customer_id, assignee_id, team_id, merged_into, created_at, updated_at, first_agent_reply_at, \
     solved_at, closed_at, version) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
/// One row at most, and IGNORE for a missing tag (a NULL id): such a statement needs no
/// statement journal, which an INSERT … SELECT writes a page image to on every insert.
const LINK_TAG: &str = "INSERT OR IGNORE INTO ticket_tags (ticket_id, tag_id) \
     VALUES (?1, (SELECT id FROM tags WHERE name = ?2))";
const INSERT_MESSAGE: &str = "INSERT INTO messages (id, ticket_id, author_kind, author_id, \
     visibility, channel, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const INSERT_CUSTOMER: &str = "INSERT INTO customers (id, name, language, merged_into, \
     created_at, updated_at, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const INSERT_IDENTITY: &str = "INSERT INTO customer_identities (id, customer_id, kind, provider, \
     value, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const INSERT_AUDIT_EVENT: &str = "INSERT INTO audit_events (id, at, actor_agent_id, action, \
     object_kind, object_id, changes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// The per-row statements a unit runs (the constants above), each prepared once per unit.
///
/// rusqlite's statement cache copies and hashes a statement's SQL text every time it hands the
/// statement out and takes it back: ~7% of the writer thread's instructions in a bulk import,
/// whose units insert thousands of rows with the same few statements. A unit keeps those
/// statements for its whole length instead and gives them back to the cache once, at its end.
struct RowStatements<'c> {
    connection: &'c Connection,
    /// A handful: a linear search by address beats hashing the text.
    prepared: Vec<(&'static str, rusqlite::CachedStatement<'c>)>,
}

impl<'c> RowStatements<'c> {
    fn new(connection: &'c Connection) -> Self {
        RowStatements {
            connection,
            prepared: Vec::new(),
        }
    }

    /// The statement for `sql`, prepared (through the cache) the first time the unit needs it.
    fn get(&mut self, sql: &'static str) -> StoreResult<&mut rusqlite::CachedStatement<'c>> {
        let index = match self
            .prepared
            .iter()
            .position(|(known, _)| std::ptr::eq(*known, sql))
        {
            Some(index) => index,
            None => {
                let statement = db(self.connection.prepare_cached(sql))?;
                self.prepared.push((sql, statement));
                self.prepared.len() - 1
            }
        };
        Ok(&mut self.prepared[index].1)
    }
}

/// Whether a unit has its transaction to itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sharing {
    Alone,
    Shared,
}

/// Applies every mutation of `unit`, then writes the derived data it changed.
fn apply_unit(
    transaction: &Transaction<'_>,
    unit: &UnitOfWork,
    prepared: Prepared,
    known: &KnownTokens,
    sharing: Sharing,
) -> StoreResult<Applied> {
    // Rows the transaction had changed when the unit began, if it has the transaction alone:
    // the end of an import can then tell whether the committed data is what it sees.
    let changes_before = (sharing == Sharing::Alone).then(|| transaction.total_changes());
    let Prepared {
        terms,
        mut audit_changes,
    } = prepared;
    let mut receipt = CommitReceipt::default();
    let mut pending = derived::PendingDerived::new(terms, known);
    let mut numbers = TicketNumbers::for_unit(unit);
    let mut statements = RowStatements::new(transaction);
    unit.mutations
        .iter()
        .enumerate()
        .try_for_each(|(position, mutation)| match mutation {
            // Last in its unit, or FTS5 would write what follows over the copied indexes.
            Mutation::EndBulkImport => end_bulk_import(
                transaction,
                &mut pending,
                changes_before.filter(|_| position + 1 == unit.mutations.len()),
            )
            .map(|_| ()),
            mutation => apply(
                transaction,
                mutation,
                &mut receipt,
                &mut pending,
                &mut numbers,
                &mut statements,
                &mut audit_changes,
            ),
        })
        .and_then(|()| pending.flush(transaction))?;
    Ok(Applied {
        receipt,
        learned: pending.take_learned(),
    })
}

/// Ends a bulk import. The unit's own documents go in first, so the indexes see them. The
/// full-text indexes are built from the committed data beside the writer only when the
/// transaction has changed nothing since `changes_before` (its row count at the unit's start,
/// `None` when the unit shares the transaction).
fn end_bulk_import(
    transaction: &Transaction<'_>,
    pending: &mut derived::PendingDerived<'_>,
    changes_before: Option<u64>,
) -> StoreResult<bulk::FullTextBuilt> {
    pending.flush(transaction)?;
    let source = if changes_before == Some(transaction.total_changes()) {
        bulk::FullTextSource::Committed
    } else {
        bulk::FullTextSource::ThisTransaction
    };
    bulk::end(transaction, source)
}

/// The stable name of the unique rule a SQLite message names ("UNIQUE constraint failed: t.c").
fn constraint_name(message: &str) -> String {
    let columns = message.rsplit(": ").next().unwrap_or(message);
    let first = columns.split(", ").next().unwrap_or(columns);
    let table = first.split('.').next().unwrap_or(first);
    match table {
        "customer_identities" => "customer_identities.value".into(),
        "idempotency_keys" => "idempotency_keys".into(),
        "emails" => "emails.dedup_key".into(),
        "visitors" if columns.contains("verified_external_id") => "visitors.external_id".into(),
        // Two unique rules on one table: the second column tells them apart.
        "chat_entries" if columns.contains("client_id") => "chat_entries.client_id".into(),
        "chat_entries" => "chat_entries.seq".into(),
        _ if columns.contains(", ") => table.into(),
        _ => first.into(),
    }
}

/// The one place where SQLite errors become port errors.
pub(crate) fn map_error(error: &rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = error {
        let is_unique = failure.code == ErrorCode::ConstraintViolation
            && matches!(failure.extended_code, 2067 | 1555); // SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY
        if is_unique {
            return StoreError::Conflict {
                constraint: constraint_name(message.as_deref().unwrap_or_default()),
            };
        }
        // SQLITE_CONSTRAINT_FOREIGNKEY: a mutation named a row that does not exist (SQLite does
        // not say which).
        if failure.code == ErrorCode::ConstraintViolation && failure.extended_code == 787 {
            return StoreError::NotFound {
                what: "referenced row",
            };
        }
    }
    StoreError::corrupt(error.to_string())
}

type Outcome = StoreResult<()>;

pub(crate) fn db<T>(result: rusqlite::Result<T>) -> StoreResult<T> {
    result.map_err(|error| map_error(&error))
}

fn expect_one(n_rows: usize, what: &'static str) -> Outcome {
    if n_rows == 0 {
        Err(StoreError::NotFound { what })
    } else {
        Ok(())
    }
}

/// A versioned update touched no row: tell a stale version from a missing row.
fn versioned_miss(
    transaction: &Transaction<'_>,
    table: &'static str,
    id: uuid::Uuid,
    what: &'static str,
) -> Outcome {
    versioned_miss_by(transaction, table, "id", id, what)
}

/// [`versioned_miss`] for a table whose key column is not `id` (chats are keyed by ticket).
pub(crate) fn versioned_miss_by(
    transaction: &Transaction<'_>,
    table: &'static str,
    key_column: &'static str,
    id: uuid::Uuid,
    what: &'static str,
) -> Outcome {
    let sql = format!("SELECT 1 FROM {table} WHERE {key_column} = ?1");
    let exists = db(transaction
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row([&id.as_bytes()[..]], |_| Ok(())).optional()))?;
    Err(match exists {
        Some(()) => StoreError::VersionConflict { what },
        None => StoreError::NotFound { what },
    })
}

fn apply(
    transaction: &Transaction<'_>,
    mutation: &Mutation,
    receipt: &mut CommitReceipt,
    pending: &mut derived::PendingDerived<'_>,
    numbers: &mut TicketNumbers,
    statements: &mut RowStatements<'_>,
    audit_changes: &mut HashMap<AuditEventId, String>,
) -> Outcome {
    match mutation {
        Mutation::InsertTicket(draft) => insert_ticket(
            transaction,
            receipt,
            pending,
            numbers,
            statements,
            |number| draft.clone().into_ticket(number),
        ),
        Mutation::ImportTicket(ticket) => insert_ticket(
            transaction,
            receipt,
            pending,
            numbers,
            statements,
            |number| Ticket {
                number,
                version: 1,
                ..(**ticket).clone()
            },
        ),
        Mutation::UpdateTicket {
            ticket,
            expected_version,
        } => {
            let before = derived::stored_ticket(transaction, ticket.id)?;
            let mut values = ticket_values(ticket, false);
            values.push(Value::Integer(expected_version + 1));
            values.push(id_value(ticket.id.0));
            values.push(Value::Integer(*expected_version));
            let n_rows = db(transaction.prepare_cached(
                "UPDATE tickets SET subject = ?1, status = ?2, priority = ?3, channel = ?4, customer_id = ?5, \
                 assignee_id = ?6, team_id = ?7, merged_into = ?8, created_at = ?9, updated_at = ?10, \
                 first_agent_reply_at = ?11, solved_at = ?12, closed_at = ?13, version = ?14 \
                 WHERE id = ?15 AND version = ?16",
            )
            .and_then(|mut statement| statement.execute(params_from_iter(values))))?;
            if n_rows == 0 {
                return versioned_miss(transaction, "tickets", ticket.id.0, "ticket");
            }
            if let Some(before) = &before {
                pending.ticket_updated(before, ticket);
            }
            write_ticket_tags(transaction, statements, ticket, true)?;
            // The tags are access terms too (V29); a trigger keeps the rest of them. Rewritten
            // only when they differ, so a save that kept the tags leaves the full-text entry be.
            db(statements
                .get(REWRITE_ACCESS_TERMS.as_str())?
                .execute([&ticket.id.as_bytes()[..]]))?;
            Ok(())
        }
        Mutation::InsertMessage(message) => {
            insert_message(transaction, statements, message)?;
            pending.message_added(message);
            Ok(())
        }
        Mutation::MoveMessages { from, to } => {
            // The move reads the documents: write what this unit gathered first.
            pending.flush(transaction)?;
            derived::messages_moved(transaction, *from, *to)?;
            let (from, to) = (&from.as_bytes()[..], &to.as_bytes()[..]);
            db(transaction
                .prepare_cached("UPDATE messages SET ticket_id = ?1 WHERE ticket_id = ?2")
                .and_then(|mut s| s.execute(params![to, from])))?;
            db(transaction
                .prepare_cached("UPDATE attachments SET ticket_id = ?1 WHERE ticket_id = ?2")
                .and_then(|mut s| s.execute(params![to, from])))?;
            Ok(())
        }
        Mutation::InsertCustomer(customer) => {
            db(statements
                .get(INSERT_CUSTOMER)?
                .execute(params_from_iter(customer_values(customer))))?;
            customer
                .identities
                .iter()
                .try_for_each(|identity| insert_identity(statements, identity))?;
            pending.customer_inserted(customer);
            Ok(())
        }
        Mutation::UpdateCustomer {
            customer,
            expected_version,
        } => {
            let n_rows = db(transaction.prepare_cached(
                "UPDATE customers SET name = ?1, language = ?2, merged_into = ?3, updated_at = ?4, version = ?5 \
                 WHERE id = ?6 AND version = ?7",
            )
            .and_then(|mut s| {
                s.execute(params![
                    customer.name,
                    customer.language,
                    opt_id_value(customer.merged_into.map(|id| id.0)),
                    to_micros(customer.updated_at),
                    expected_version + 1,
                    &customer.id.as_bytes()[..],
                    expected_version
                ])
            }))?;
            if n_rows == 0 {
                return versioned_miss(transaction, "customers", customer.id.0, "customer");
            }
            pending.customer_changed(customer.id);
            Ok(())
        }
        Mutation::InsertIdentity(identity) => {
            insert_identity(statements, identity)?;
            pending.customer_changed(identity.customer_id);
            Ok(())
        }
        Mutation::DeleteIdentity(id) => {
            let owner = derived::identity_owner(transaction, &id.as_bytes()[..])?;
            let n_rows = db(transaction
                .prepare_cached("DELETE FROM customer_identities WHERE id = ?1")
                .and_then(|mut s| s.execute([&id.as_bytes()[..]])))?;
            expect_one(n_rows, "identity")?;
            if let Some(owner) = owner {
                pending.customer_changed(owner);
            }
            Ok(())
        }
        Mutation::MoveIdentities { identity_ids, to } => {
            let mut owners = vec![*to];
            for id in identity_ids {
                if let Some(owner) = derived::identity_owner(transaction, &id.as_bytes()[..])?
                    && !owners.contains(&owner)
                {
                    owners.push(owner);
                }
                db(transaction
                    .prepare_cached("UPDATE customer_identities SET customer_id = ?1 WHERE id = ?2")
                    .and_then(|mut s| s.execute(params![&to.as_bytes()[..], &id.as_bytes()[..]])))?;
            }
            owners
                .into_iter()
                .for_each(|owner| pending.customer_changed(owner));
            Ok(())
        }
        Mutation::MoveTickets { ticket_ids, to, at } => {
            for id in ticket_ids {
                let before = derived::stored_ticket(transaction, *id)?;
                db(transaction
                    .prepare_cached("UPDATE tickets SET customer_id = ?1, updated_at = ?2, version = version + 1 WHERE id = ?3")
                    .and_then(|mut s| s.execute(params![&to.as_bytes()[..], to_micros(*at), &id.as_bytes()[..]])))?;
                if let Some(before) = before {
                    let after = derived::StoredTicket {
                        updated_at: *at,
                        ..before.clone()
                    };
                    pending
                        .counters()
                        .moved(before.counter_key(), after.counter_key());
                }
            }
            Ok(())
        }
        Mutation::InsertCustomerMerge(merge) => {
            let identity_ids: Vec<uuid::Uuid> =
                merge.moved_identity_ids.iter().map(|id| id.0).collect();
            let ticket_ids: Vec<uuid::Uuid> =
                merge.moved_ticket_ids.iter().map(|id| id.0).collect();
            db(transaction.prepare_cached(
                "INSERT INTO customer_merges (id, source_id, target_id, moved_identity_ids, moved_ticket_ids, \
                 merged_by, merged_at, undone_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    &merge.id.as_bytes()[..],
                    &merge.source_id.as_bytes()[..],
                    &merge.target_id.as_bytes()[..],
                    serde_json::to_string(&identity_ids).unwrap_or_default(),
                    serde_json::to_string(&ticket_ids).unwrap_or_default(),
                    opt_id_value(merge.merged_by.map(|id| id.0)),
                    to_micros(merge.merged_at),
                    opt_time_value(merge.undone_at),
                ])
            }))?;
            Ok(())
        }
        Mutation::MarkCustomerMergeUndone { id, at } => {
            let n_rows = db(transaction
                .prepare_cached("UPDATE customer_merges SET undone_at = ?1 WHERE id = ?2")
                .and_then(|mut s| s.execute(params![to_micros(*at), &id.as_bytes()[..]])))?;
            expect_one(n_rows, "customer merge")
        }
        Mutation::InsertAgent {
            agent,
            password_hash,
        } => {
            db(transaction.prepare_cached(
                "INSERT INTO agents (id, email, name, role, active, password_hash, created_at, updated_at, version, locale) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    &agent.id.as_bytes()[..],
                    agent.email,
                    agent.name,
                    agent.role.as_str(),
                    agent.active,
                    password_hash,
                    to_micros(agent.created_at),
                    to_micros(agent.updated_at),
                    agent.version,
                    agent.locale
                ])
            }))?;
            write_agent_teams(transaction, agent, false)
        }
        Mutation::UpdateAgent {
            agent,
            expected_version,
        } => {
            let n_rows = db(transaction.prepare_cached(
                "UPDATE agents SET email = ?1, name = ?2, role = ?3, active = ?4, updated_at = ?5, version = ?6 \
                 WHERE id = ?7 AND version = ?8",
            )
            .and_then(|mut s| {
                s.execute(params![
                    agent.email,
                    agent.name,
                    agent.role.as_str(),
                    agent.active,
                    to_micros(agent.updated_at),
                    expected_version + 1,
                    &agent.id.as_bytes()[..],
                    expected_version
                ])
            }))?;
            if n_rows == 0 {
                return versioned_miss(transaction, "agents", agent.id.0, "agent");
            }
            write_agent_teams(transaction, agent, true)
        }
        Mutation::SetPasswordHash {
            agent_id,
            password_hash,
        } => {
            let n_rows = db(transaction
                .prepare_cached("UPDATE agents SET password_hash = ?1 WHERE id = ?2")
                .and_then(|mut s| s.execute(params![password_hash, &agent_id.as_bytes()[..]])))?;
            expect_one(n_rows, "agent")
        }
        Mutation::InsertTeam(team) => {
            db(transaction
                .prepare_cached("INSERT INTO teams (id, name, created_at) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| {
                    s.execute(params![
                        &team.id.as_bytes()[..],
                        team.name,
                        to_micros(team.created_at)
                    ])
                }))?;
            Ok(())
        }
        Mutation::UpdateTeam(team) => {
            let n_rows = db(transaction
                .prepare_cached("UPDATE teams SET name = ?1 WHERE id = ?2")
                .and_then(|mut s| s.execute(params![team.name, &team.id.as_bytes()[..]])))?;
            expect_one(n_rows, "team")
        }
        Mutation::DeleteTeam(id) => {
            let unrouted = derived::team_tickets(transaction, *id)?;
            let n_rows = db(transaction
                .prepare_cached("DELETE FROM teams WHERE id = ?1")
                .and_then(|mut s| s.execute([&id.as_bytes()[..]])))?;
            expect_one(n_rows, "team")?;
            for before in unrouted {
                let after = derived::StoredTicket {
                    team_id: None,
                    ..before.clone()
                };
                pending
                    .counters()
                    .moved(before.counter_key(), after.counter_key());
            }
            Ok(())
        }
        Mutation::InsertTag(tag) => {
            db(transaction
                .prepare_cached("INSERT INTO tags (id, name, created_at) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| {
                    s.execute(params![
                        &tag.id.as_bytes()[..],
                        tag.name,
                        to_micros(tag.created_at)
                    ])
                }))?;
            Ok(())
        }
        Mutation::DeleteTag(id) => {
            let n_rows = db(transaction
                .prepare_cached("DELETE FROM tags WHERE id = ?1")
                .and_then(|mut s| s.execute([&id.as_bytes()[..]])))?;
            expect_one(n_rows, "tag")
        }
        Mutation::InsertToken(token) => {
            let scopes: Vec<&str> = token.scopes.iter().map(|scope| scope.as_str()).collect();
            db(transaction.prepare_cached(
                "INSERT INTO api_tokens (id, agent_id, name, prefix, token_hash, scopes, created_at, expires_at, revoked_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    &token.id.as_bytes()[..],
                    &token.agent_id.as_bytes()[..],
                    token.name,
                    token.prefix,
                    token.token_hash,
                    scopes.join(" "),
                    to_micros(token.created_at),
                    opt_time_value(token.expires_at),
                    opt_time_value(token.revoked_at)
                ])
            }))?;
            Ok(())
        }
        Mutation::RevokeToken { id, at } => {
            let n_rows = db(transaction
                .prepare_cached(
                    "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?1) WHERE id = ?2",
                )
                .and_then(|mut s| s.execute(params![to_micros(*at), &id.as_bytes()[..]])))?;
            expect_one(n_rows, "token")
        }
        Mutation::InsertSession(session) => {
            db(transaction
                .prepare_cached("INSERT INTO sessions (id_hash, agent_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)")
                .and_then(|mut s| {
                    s.execute(params![
                        session.id_hash,
                        &session.agent_id.as_bytes()[..],
                        to_micros(session.created_at),
                        to_micros(session.expires_at)
                    ])
                }))?;
            Ok(())
        }
        Mutation::DeleteSession { id_hash } => {
            db(transaction
                .prepare_cached("DELETE FROM sessions WHERE id_hash = ?1")
                .and_then(|mut s| s.execute([id_hash])))?;
            Ok(())
        }
        Mutation::DeleteAgentSessions { agent_id } => {
            db(transaction
                .prepare_cached("DELETE FROM sessions WHERE agent_id = ?1")
                .and_then(|mut s| s.execute([&agent_id.as_bytes()[..]])))?;
            Ok(())
        }
        Mutation::InsertSetupToken(setup) => {
            db(transaction
                .prepare_cached("INSERT INTO setup_tokens (token_hash, created_at, expires_at, used_at) VALUES (?1, ?2, ?3, ?4)")
                .and_then(|mut s| {
                    s.execute(params![
                        setup.token_hash,
                        to_micros(setup.created_at),
                        to_micros(setup.expires_at),
                        opt_time_value(setup.used_at)
                    ])
                }))?;
            Ok(())
        }
        Mutation::ConsumeSetupToken { token_hash, at } => {
            let n_rows = db(transaction
                .prepare_cached("UPDATE setup_tokens SET used_at = ?1 WHERE token_hash = ?2 AND used_at IS NULL")
                .and_then(|mut s| s.execute(params![to_micros(*at), token_hash])))?;
            if n_rows == 0 {
                return Err(StoreError::Conflict {
                    constraint: "setup_tokens.used".into(),
                });
            }
            Ok(())
        }
        Mutation::ClaimIdempotencyKey(record) => {
            db(transaction.prepare_cached(
                "INSERT INTO idempotency_keys (principal, key, fingerprint, resource_kind, resource_id, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    record.principal,
                    record.key,
                    record.fingerprint,
                    record.resource_kind,
                    &record.resource_id.as_bytes()[..],
                    to_micros(record.created_at)
                ])
            }))?;
            Ok(())
        }
        Mutation::InsertView(view) => {
            db(transaction
                .prepare_cached(
                    "INSERT INTO views (id, name, owner_agent_id, definition, position, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        &view.id.as_bytes()[..],
                        view.name,
                        opt_id_value(view.owner_agent_id.map(|id| id.0)),
                        serde_json::to_string(&view.filter).unwrap_or_default(),
                        view.position,
                        to_micros(view.created_at)
                    ])
                }))?;
            Ok(())
        }
        Mutation::DeleteView(id) => {
            let n_rows = db(transaction
                .prepare_cached("DELETE FROM views WHERE id = ?1")
                .and_then(|mut s| s.execute([&id.as_bytes()[..]])))?;
            expect_one(n_rows, "view")
        }
        Mutation::RebuildDerivedData => {
            pending.flush(transaction)?;
            derived::rebuild(transaction)
        }
        Mutation::BeginBulkImport => bulk::begin(transaction),
        // `apply_unit` ends an import itself: it knows what the transaction has changed.
        Mutation::EndBulkImport => end_bulk_import(transaction, pending, None).map(|_| ()),
        Mutation::InsertMailbox(mailbox) => email::insert_mailbox(transaction, mailbox),
        Mutation::UpdateMailbox(mailbox) => email::update_mailbox(transaction, mailbox),
        Mutation::SaveImapCursor(cursor) => email::save_imap_cursor(transaction, cursor),
        Mutation::InsertEmail(record) => email::insert_email(transaction, record),
        Mutation::UpdateEmail(record) => email::update_email(transaction, record),
        Mutation::ClaimDueEmails {
            now,
            lease_until,
            limit,
        } => {
            let claimed = email::claim_due_emails(transaction, *now, *lease_until, *limit)?;
            receipt.claimed_emails.extend(claimed);
            Ok(())
        }
        Mutation::InsertInstanceSecret { name, secret } => {
            email::insert_instance_secret(transaction, name, secret)
        }
        Mutation::AcquireLease {
            name,
            holder,
            now,
            until,
        } => email::acquire_lease(transaction, name, holder, *now, *until),
        Mutation::ReleaseLease { name, holder } => email::release_lease(transaction, name, holder),
        Mutation::InsertChatSite(site) => chat::insert_chat_site(transaction, site),
        Mutation::UpdateChatSite {
            site,
            expected_version,
        } => chat::update_chat_site(transaction, site, *expected_version),
        Mutation::InsertVisitor(visitor) => chat::insert_visitor(transaction, visitor),
        Mutation::InsertVisitorToken {
            token_hash,
            visitor_id,
            created_at,
        } => chat::insert_visitor_token(transaction, token_hash, *visitor_id, *created_at),
        Mutation::InsertChat(record) => chat::insert_chat(transaction, record),
        Mutation::UpdateChat {
            chat: record,
            expected_version,
        } => chat::update_chat(transaction, record, *expected_version),
        Mutation::InsertChatEntry(entry) => chat::insert_chat_entry(transaction, entry),
        Mutation::SetAgentChatStatus(status) => chat::set_agent_chat_status(transaction, status),
        Mutation::ReserveChatSlot { agent_id, at } => {
            chat::reserve_chat_slot(transaction, *agent_id, *at)
        }
        Mutation::ReleaseChatSlot { agent_id } => chat::release_chat_slot(transaction, *agent_id),
        Mutation::Audit(event) => {
            db(statements.get(INSERT_AUDIT_EVENT)?.execute(params![
                &event.id.as_bytes()[..],
                to_micros(event.at),
                opt_id_value(event.actor.agent_id().map(|id| id.0)),
                event.action,
                event.object_kind,
                &event.object_id.as_bytes()[..],
                audit_changes
                    .remove(&event.id)
                    .unwrap_or_else(|| event.changes_json_text())
            ]))?;
            Ok(())
        }
        Mutation::SetAgentLocale { agent_id, locale } => {
            let n_rows = db(transaction
                .prepare_cached("UPDATE agents SET locale = ?1 WHERE id = ?2")
                .and_then(|mut s| s.execute(params![locale, &agent_id.as_bytes()[..]])))?;
            expect_one(n_rows, "agent")
        }
        Mutation::InsertPasswordResetToken(reset) => {
            db(transaction
                .prepare_cached(
                    "UPDATE password_reset_tokens SET used_at = ?1 \
                     WHERE agent_id = ?2 AND used_at IS NULL",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        to_micros(reset.created_at),
                        &reset.agent_id.as_bytes()[..]
                    ])
                }))?;
            db(transaction
                .prepare_cached(
                    "INSERT INTO password_reset_tokens \
                     (token_hash, agent_id, created_at, expires_at, used_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        reset.token_hash,
                        &reset.agent_id.as_bytes()[..],
                        to_micros(reset.created_at),
                        to_micros(reset.expires_at),
                        opt_time_value(reset.used_at)
                    ])
                }))?;
            Ok(())
        }
        Mutation::ConsumePasswordResetToken { token_hash, at } => {
            let n_rows = db(transaction
                .prepare_cached(
                    "UPDATE password_reset_tokens SET used_at = ?1 \
                     WHERE token_hash = ?2 AND used_at IS NULL AND expires_at > ?1",
                )
                .and_then(|mut s| s.execute(params![to_micros(*at), token_hash])))?;
            if n_rows == 0 {
                return Err(StoreError::Conflict {
                    constraint: "password_reset_tokens.used".into(),
                });
            }
            Ok(())
        }
        Mutation::SaveSetting { name, value, at } => {
            match value {
                Some(value) => db(transaction
                    .prepare_cached(
                        "INSERT INTO settings (name, value, updated_at) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value, \
                         updated_at = excluded.updated_at",
                    )
                    .and_then(|mut s| s.execute(params![name, value, to_micros(*at)])))?,
                None => db(transaction
                    .prepare_cached("DELETE FROM settings WHERE name = ?1")
                    .and_then(|mut s| s.execute([name])))?,
            };
            Ok(())
        }
    }
}

/// The values of a ticket row: with `with_key`, in INSERT order (id, number first); without, in
/// the UPDATE's SET order.
/// Inserts the ticket `with_number` makes of the next ticket number, with its tags.
fn insert_ticket(
    transaction: &Transaction<'_>,
    receipt: &mut CommitReceipt,
    pending: &mut derived::PendingDerived<'_>,
    numbers: &mut TicketNumbers,
    statements: &mut RowStatements<'_>,
    with_number: impl FnOnce(i64) -> Ticket,
) -> Outcome {
    let number = numbers.next(transaction)?;
    let ticket = with_number(number);
    db(statements
        .get(INSERT_TICKET)?
        .execute(params_from_iter(ticket_values(&ticket, true))))?;
    write_ticket_tags(transaction, statements, &ticket, false)?;
    pending.ticket_inserted(&ticket);
    receipt.ticket_numbers.push(number);
    Ok(())
}

/// The ticket numbers of one unit, taken from the `ticket_number` counter in one step for all
/// the tickets it creates (an import unit creates hundreds). The counter is part of the unit's
/// transaction: a unit that fails gives its numbers back.
struct TicketNumbers {
    /// Tickets the unit creates that have no number yet.
    wanted: i64,
    /// The next reserved number and the last one.
    next: i64,
    last: i64,
}

impl TicketNumbers {
    fn for_unit(unit: &UnitOfWork) -> Self {
        let wanted = unit
            .mutations
            .iter()
            .filter(|mutation| {
                matches!(
                    mutation,
                    Mutation::InsertTicket(_) | Mutation::ImportTicket(_)
                )
            })
            .count();
        TicketNumbers {
            wanted: i64::try_from(wanted).unwrap_or(i64::MAX),
            next: 1,
            last: 0,
        }
    }

    fn next(&mut self, transaction: &Transaction<'_>) -> StoreResult<i64> {
        if self.next > self.last {
            let take = self.wanted.max(1);
            self.last = db(transaction
                .prepare_cached(
                    "UPDATE counters SET value = value + ?1 WHERE name = 'ticket_number' RETURNING value",
                )
                .and_then(|mut statement| statement.query_row([take], |row| row.get(0))))?;
            self.next = self.last - take + 1;
        }
        self.wanted -= 1;
        let number = self.next;
        self.next += 1;
        Ok(number)
    }
}

fn ticket_values(ticket: &Ticket, with_key: bool) -> Vec<Value> {
    let mut values = Vec::with_capacity(17);
    if with_key {
        values.push(id_value(ticket.id.0));
        values.push(Value::Integer(ticket.number));
    }
    values.extend([
        Value::Text(ticket.subject.clone()),
        Value::Text(ticket.status.as_str().into()),
        Value::Text(ticket.priority.as_str().into()),
        Value::Text(ticket.channel.as_str().into()),
        id_value(ticket.customer_id.0),
        opt_id_value(ticket.assignee_id.map(|id| id.0)),
        opt_id_value(ticket.team_id.map(|id| id.0)),
        opt_id_value(ticket.merged_into.map(|id| id.0)),
        time_value(ticket.created_at),
        time_value(ticket.updated_at),
        opt_time_value(ticket.first_agent_reply_at),
        opt_time_value(ticket.solved_at),
        opt_time_value(ticket.closed_at),
    ]);
    if with_key {
        values.push(Value::Integer(ticket.version));
    }
    values
}

fn customer_values(customer: &Customer) -> Vec<Value> {
    vec![
        id_value(customer.id.0),
        Value::Text(customer.name.clone()),
        customer.language.clone().map_or(Value::Null, Value::Text),
        opt_id_value(customer.merged_into.map(|id| id.0)),
        time_value(customer.created_at),
        time_value(customer.updated_at),
        Value::Integer(customer.version),
    ]
}

/// Writes the access terms (V22, V24, V29) of the ticket `?1` again when they differ from what
/// its row and its tags give.
static REWRITE_ACCESS_TERMS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE ticket_search SET access_terms = terms.now \
         FROM (SELECT {} AS now FROM tickets t WHERE t.id = ?1) terms \
         WHERE ticket_search.ticket_id = ?1 AND ticket_search.access_terms IS NOT terms.now",
        crate::access_terms::TICKET_ACCESS_TERMS_SQL
    )
});

fn write_ticket_tags(
    transaction: &Transaction<'_>,
    statements: &mut RowStatements<'_>,
    ticket: &Ticket,
    replace: bool,
) -> Outcome {
    let ticket_id = &ticket.id.as_bytes()[..];
    if replace {
        db(transaction
            .prepare_cached("DELETE FROM ticket_tags WHERE ticket_id = ?1")
            .and_then(|mut s| s.execute([ticket_id])))?;
    }
    let mut link = |name: &str| db(statements.get(LINK_TAG)?.execute(params![ticket_id, name]));
    for name in &ticket.tags {
        // Tags almost always exist already: one statement links them; a new one is created first.
        if link(name)? == 0 {
            let new_id = otklik_domain::ids::TagId::new();
            db(transaction
                .prepare_cached("INSERT INTO tags (id, name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING")
                .and_then(|mut s| s.execute(params![&new_id.as_bytes()[..], name, to_micros(ticket.updated_at)])))?;
            link(name)?;
        }
    }
    Ok(())
}

fn insert_message(
    transaction: &Transaction<'_>,
    statements: &mut RowStatements<'_>,
    message: &Message,
) -> Outcome {
    let (author_kind, author_id) = match message.author {
        Author::Agent(id) => ("agent", Some(id.0)),
        Author::Customer(id) => ("customer", Some(id.0)),
        Author::System => ("system", None),
    };
    db(statements.get(INSERT_MESSAGE)?.execute(params![
        &message.id.as_bytes()[..],
        &message.ticket_id.as_bytes()[..],
        author_kind,
        opt_id_value(author_id),
        message.visibility.as_str(),
        message.channel.as_str(),
        message.body,
        to_micros(message.created_at)
    ]))?;
    for attachment in &message.attachments {
        db(transaction.prepare_cached(
            "INSERT INTO attachments (id, ticket_id, message_id, file_name, content_type, size_bytes, sha256) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut s| {
            s.execute(params![
                &attachment.id.as_bytes()[..],
                &attachment.ticket_id.as_bytes()[..],
                &attachment.message_id.as_bytes()[..],
                attachment.file_name,
                attachment.content_type,
                attachment.size_bytes,
                attachment.sha256
            ])
        }))?;
    }
    Ok(())
}

fn insert_identity(statements: &mut RowStatements<'_>, identity: &Identity) -> Outcome {
    db(statements.get(INSERT_IDENTITY)?.execute(params![
        &identity.id.as_bytes()[..],
        &identity.customer_id.as_bytes()[..],
        identity.value.kind.as_str(),
        identity.value.provider,
        identity.value.value,
        to_micros(identity.created_at)
    ]))?;
    Ok(())
}

fn write_agent_teams(transaction: &Transaction<'_>, agent: &Agent, replace: bool) -> Outcome {
    let agent_id = &agent.id.as_bytes()[..];
    if replace {
        db(transaction
            .prepare_cached("DELETE FROM agent_teams WHERE agent_id = ?1")
            .and_then(|mut s| s.execute([agent_id])))?;
    }
    for team_id in &agent.team_ids {
        let n_rows = db(transaction
            .prepare_cached("INSERT INTO agent_teams (agent_id, team_id) SELECT ?1, id FROM teams WHERE id = ?2")
            .and_then(|mut s| s.execute(params![agent_id, &team_id.as_bytes()[..]])))?;
        expect_one(n_rows, "team")?;
    }
    Ok(())
}
