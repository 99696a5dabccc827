//! Keeping the search index and the queue counters current, inside the writing transaction.

use otklik_domain::clock::from_micros;
use otklik_domain::customer::{Customer, IdentityValue};
use std::collections::HashMap;

use otklik_domain::ids::{AgentId, CustomerId, MessageId, TeamId, TicketId};
use otklik_domain::message::Message;
use otklik_domain::ticket::{Priority, Ticket, TicketStatus};
use otklik_store::derived::{
    CounterDeltas, CounterKey, KnownTokens, customer_terms, message_terms, message_text_terms,
    new_customer_terms, numbered_subject_terms, subject_terms,
};
use otklik_store::{Mutation, StoreResult, UnitOfWork};

use rusqlite::{OptionalExtension, Row, Transaction, params};

use crate::rows::{key_value, opt_uuid_at, parse_at};
use crate::write::db;

/// What the counters and the index need to know of a stored ticket.
#[derive(Debug, Clone)]
pub(crate) struct StoredTicket {
    pub number: i64,
    pub subject: String,
    pub status: TicketStatus,
    pub priority: Priority,
    pub assignee_id: Option<AgentId>,
    pub team_id: Option<TeamId>,
    pub updated_at: jiff::Timestamp,
    pub merged: bool,
}

impl StoredTicket {
    pub(crate) fn counter_key(&self) -> Option<CounterKey> {
        CounterKey::of(
            self.status,
            self.priority,
            self.assignee_id,
            self.team_id,
            self.updated_at,
            self.merged,
        )
    }
}

const STORED_COLUMNS: &str =
    "number, subject, status, priority, assignee_id, team_id, updated_at, merged_into IS NOT NULL";

fn stored_from_row(row: &Row<'_>) -> rusqlite::Result<StoredTicket> {
    Ok(StoredTicket {
        number: row.get(0)?,
        subject: row.get(1)?,
        status: parse_at(row, 2)?,
        priority: parse_at(row, 3)?,
        assignee_id: opt_uuid_at(row, 4)?.map(AgentId),
        team_id: opt_uuid_at(row, 5)?.map(TeamId),
        updated_at: from_micros(row.get(6)?),
        merged: row.get(7)?,
    })
}

/// The stored state of a ticket, read before a change.
pub(crate) fn stored_ticket(
    transaction: &Transaction<'_>,
    id: TicketId,
) -> StoreResult<Option<StoredTicket>> {
    let sql = format!("SELECT {STORED_COLUMNS} FROM tickets WHERE id = ?1");
    db(transaction.prepare_cached(&sql).and_then(|mut s| {
        s.query_row([&id.as_bytes()[..]], stored_from_row)
            .optional()
    }))
}

/// The index terms of what a unit inserts — messages, new tickets' subjects, new customers —
/// analysed before the unit reaches the writer, so the one writer thread spends its time
/// writing, not stemming (subjects and customers were ~6% of its time in a bulk import). What
/// is missing here is analysed by the writer.
#[derive(Debug, Default)]
pub(crate) struct AnalysedText {
    pub(crate) messages: HashMap<MessageId, String>,
    /// Subject terms without the ticket's number, which the writer gives.
    pub(crate) subjects: HashMap<TicketId, String>,
    pub(crate) customers: HashMap<CustomerId, String>,
}

impl AnalysedText {
    /// Message text above which analysing a unit takes milliseconds.
    const HEAVY_BYTES: usize = 256 * 1024;

    /// Whether analysing `unit` is long enough to belong on a blocking thread.
    pub(crate) fn is_heavy(unit: &UnitOfWork) -> bool {
        let mut bytes = 0;
        unit.mutations.iter().any(|mutation| {
            if let Mutation::InsertMessage(message) = mutation {
                bytes += message.body.len();
            }
            bytes > Self::HEAVY_BYTES
        })
    }

    pub(crate) fn of(unit: &UnitOfWork) -> Self {
        let mut analysed = AnalysedText::default();
        for mutation in &unit.mutations {
            match mutation {
                Mutation::InsertMessage(message) => {
                    analysed.messages.insert(message.id, message_terms(message));
                }
                Mutation::InsertTicket(draft) => {
                    analysed
                        .subjects
                        .insert(draft.id, otklik_search::index_terms(&draft.subject));
                }
                Mutation::ImportTicket(ticket) => {
                    analysed
                        .subjects
                        .insert(ticket.id, otklik_search::index_terms(&ticket.subject));
                }
                Mutation::InsertCustomer(customer) => {
                    analysed
                        .customers
                        .insert(customer.id, new_customer_terms(customer));
                }
                _ => {}
            }
        }
        analysed
    }
}

/// What a unit of work changes in the derived data, gathered while its mutations run and
/// written once at its end: a ticket created with three messages is indexed once, not four
/// times, and a batch of new tickets touches each counter row once.
#[derive(Debug)]
pub(crate) struct PendingDerived<'a> {
    analysed: AnalysedText,
    /// The writer's cache of vocabulary tokens (read only: learning waits for the commit).
    known: &'a KnownTokens,
    /// Tokens this unit added to the vocabulary, for the writer's cache once committed.
    learned: Vec<String>,
    docs: HashMap<TicketId, PendingDoc>,
    /// Customers inserted by this unit, with their index terms.
    new_customers: Vec<(CustomerId, String)>,
    /// Customers whose stored name or identities changed: re-indexed from the tables.
    customers: Vec<CustomerId>,
    counters: CounterDeltas,
}

#[derive(Debug, Default)]
struct PendingDoc {
    /// Set for a ticket created in this unit: its subject terms.
    inserted: Option<String>,
    /// A new subject for an existing ticket.
    subject: Option<String>,
    /// Terms of messages added in this unit.
    body: String,
}

impl<'a> PendingDerived<'a> {
    /// Nothing pending yet; `analysed` holds the terms of the unit's new messages.
    pub(crate) fn new(analysed: AnalysedText, known: &'a KnownTokens) -> Self {
        PendingDerived {
            analysed,
            known,
            learned: Vec::new(),
            docs: HashMap::new(),
            new_customers: Vec::new(),
            customers: Vec::new(),
            counters: CounterDeltas::default(),
        }
    }

    /// A new ticket: index its subject (and number) and count it.
    pub(crate) fn ticket_inserted(&mut self, ticket: &Ticket) {
        let terms = match self.analysed.subjects.remove(&ticket.id) {
            Some(terms) => numbered_subject_terms(ticket.number, &terms),
            None => subject_terms(ticket.number, &ticket.subject),
        };
        self.docs.entry(ticket.id).or_default().inserted = Some(terms);
        self.counters.moved(None, CounterKey::of_ticket(ticket));
    }

    /// A changed ticket: re-index a new subject and move its count.
    pub(crate) fn ticket_updated(&mut self, before: &StoredTicket, after: &Ticket) {
        if before.subject != after.subject {
            let doc = self.docs.entry(after.id).or_default();
            let terms = subject_terms(before.number, &after.subject);
            match &mut doc.inserted {
                Some(inserted) => *inserted = terms,
                None => doc.subject = Some(terms),
            }
        }
        self.counters
            .moved(before.counter_key(), CounterKey::of_ticket(after));
    }

    /// A new message: its words join the ticket's document.
    pub(crate) fn message_added(&mut self, message: &Message) {
        let terms = self
            .analysed
            .messages
            .remove(&message.id)
            .unwrap_or_else(|| message_terms(message));
        if terms.is_empty() {
            return;
        }
        let doc = self.docs.entry(message.ticket_id).or_default();
        if !doc.body.is_empty() {
            doc.body.push(' ');
        }
        doc.body.push_str(&terms);
    }

    /// The vocabulary tokens this unit inserted (see [`KnownTokens::learn`]).
    pub(crate) fn take_learned(&mut self) -> Vec<String> {
        std::mem::take(&mut self.learned)
    }

    /// A customer inserted by this unit: indexed from the values written, without reading them
    /// back (an import inserts hundreds of thousands).
    pub(crate) fn customer_inserted(&mut self, customer: &Customer) {
        let terms = self
            .analysed
            .customers
            .remove(&customer.id)
            .unwrap_or_else(|| new_customer_terms(customer));
        self.new_customers.push((customer.id, terms));
    }

    /// A customer whose name or identities changed.
    pub(crate) fn customer_changed(&mut self, customer_id: CustomerId) {
        if !self.customers.contains(&customer_id) {
            self.customers.push(customer_id);
        }
    }

    /// A counter move computed by the caller (ticket moves, team deletion).
    pub(crate) fn counters(&mut self) -> &mut CounterDeltas {
        &mut self.counters
    }

    /// Writes everything gathered so far (at the end of the unit, or before a mutation that
    /// reads the derived tables).
    pub(crate) fn flush(&mut self, transaction: &Transaction<'_>) -> StoreResult<()> {
        let docs = std::mem::take(&mut self.docs);
        // During a bulk import the vocabulary is filled once at its end, from the rebuilt index:
        // millions of one-off tokens (order numbers, e-mails) inserted one by one into a
        // vocabulary bigger than the page cache would be random writes.
        let new_tokens = if crate::bulk::under_way(transaction)? {
            Vec::new()
        } else {
            self.known.unknown(docs.values().flat_map(|doc| {
                [
                    doc.inserted.as_deref(),
                    doc.subject.as_deref(),
                    Some(doc.body.as_str()),
                ]
                .into_iter()
                .flatten()
            }))
        };
        for token in &new_tokens {
            db(transaction
                .prepare_cached("INSERT OR IGNORE INTO search_terms (chars, term) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![token.chars().count(), token])))?;
        }
        self.learned.extend(new_tokens);
        // New documents go in by ticket id (each takes its ticket's rowid: see
        // `INSERT_TICKET_TERMS`).
        let mut docs: Vec<(TicketId, PendingDoc)> = docs.into_iter().collect();
        docs.sort_unstable_by_key(|(ticket_id, _)| *ticket_id);
        for (ticket_id, doc) in docs {
            let id = &ticket_id.as_bytes()[..];
            if let Some(subject) = doc.inserted {
                db(transaction
                    .prepare_cached(&INSERT_TICKET_TERMS)
                    .and_then(|mut s| s.execute(params![id, subject, doc.body])))?;
            } else if doc.subject.is_some() || !doc.body.is_empty() {
                db(transaction
                    .prepare_cached(
                        "UPDATE ticket_search SET subject_terms = coalesce(?1, subject_terms), \
                         body_terms = CASE WHEN ?2 = '' THEN body_terms WHEN body_terms = '' THEN ?2 \
                         ELSE body_terms || ' ' || ?2 END WHERE ticket_id = ?3",
                    )
                    .and_then(|mut s| s.execute(params![doc.subject, doc.body, id])))?;
            }
        }
        let changed = std::mem::take(&mut self.customers);
        for (customer_id, terms) in std::mem::take(&mut self.new_customers) {
            // Changed again later in the unit: the re-index below reads the final state.
            if !changed.contains(&customer_id) {
                write_customer_terms(transaction, customer_id, &terms)?;
            }
        }
        for customer_id in changed {
            reindex_customer(transaction, customer_id)?;
        }
        apply_counters(transaction, std::mem::take(&mut self.counters))
    }
}

/// Adds the deltas to the counter rows: every change to the plain counts, and waiting work's
/// changes to the daily ones (see [`otklik_store::derived::CounterChanges`]).
fn apply_counters(transaction: &Transaction<'_>, deltas: CounterDeltas) -> StoreResult<()> {
    let tables = deltas.into_tables();
    if tables.plain.is_empty() && tables.daily.is_empty() {
        return Ok(());
    }
    raise_count_version(transaction)?;
    for (key, delta) in tables.plain {
        db(transaction
            .prepare_cached(
                "INSERT INTO ticket_counts (status, priority, assignee_key, team_key, shard, n) \
                 VALUES (?1, ?2, ?3, ?4, 0, ?5) \
                 ON CONFLICT (status, priority, assignee_key, team_key, shard) DO UPDATE SET n = n + excluded.n",
            )
            .and_then(|mut s| {
                s.execute(params![
                    key.status.as_str(),
                    key.priority.as_str(),
                    key_value(key.assignee_id.map(|id| id.0)),
                    key_value(key.team_id.map(|id| id.0)),
                    delta
                ])
            }))?;
    }
    for (key, delta) in tables.daily {
        db(transaction
            .prepare_cached(
                "INSERT INTO ticket_counters (status, priority, assignee_key, team_key, day, n) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (status, priority, assignee_key, team_key, day) DO UPDATE SET n = n + excluded.n",
            )
            .and_then(|mut s| {
                s.execute(params![
                    key.status.as_str(),
                    key.priority.as_str(),
                    key_value(key.assignee_id.map(|id| id.0)),
                    key_value(key.team_id.map(|id| id.0)),
                    key.day,
                    delta
                ])
            }))?;
    }
    Ok(())
}

/// Tells every reader that the counters changed (see `otklik_store::count_cache`).
fn raise_count_version(transaction: &Transaction<'_>) -> StoreResult<()> {
    db(transaction
        .prepare_cached("UPDATE count_versions SET version = version + 1")
        .and_then(|mut s| s.execute([])))?;
    Ok(())
}

/// Messages moved with a merge: their words move to the survivor's document.
pub(crate) fn messages_moved(
    transaction: &Transaction<'_>,
    from: TicketId,
    to: TicketId,
) -> StoreResult<()> {
    db(transaction
        .prepare_cached(
            "UPDATE ticket_search SET body_terms = trim(body_terms || ' ' || \
             (SELECT body_terms FROM ticket_search WHERE ticket_id = ?1)) WHERE ticket_id = ?2",
        )
        .and_then(|mut s| s.execute(params![&from.as_bytes()[..], &to.as_bytes()[..]])))?;
    db(transaction
        .prepare_cached("UPDATE ticket_search SET body_terms = '' WHERE ticket_id = ?1")
        .and_then(|mut s| s.execute([&from.as_bytes()[..]])))?;
    Ok(())
}

/// Re-indexes a customer from the stored name and identities.
fn reindex_customer(transaction: &Transaction<'_>, customer_id: CustomerId) -> StoreResult<()> {
    let name: Option<String> = db(transaction
        .prepare_cached("SELECT name FROM customers WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([&customer_id.as_bytes()[..]], |row| row.get(0))
                .optional()
        }))?;
    let Some(name) = name else { return Ok(()) };
    let identities: Vec<IdentityValue> = db(transaction
        .prepare_cached("SELECT kind, provider, value FROM customer_identities WHERE customer_id = ?1 ORDER BY created_at, id")
        .and_then(|mut s| {
            s.query_map([&customer_id.as_bytes()[..]], |row| {
                Ok(IdentityValue { kind: parse_at(row, 0)?, provider: row.get(1)?, value: row.get(2)? })
            })?
            .collect()
        }))?;
    write_customer_terms(
        transaction,
        customer_id,
        &customer_terms(&name, &identities),
    )
}

fn write_customer_terms(
    transaction: &Transaction<'_>,
    customer_id: CustomerId,
    terms: &str,
) -> StoreResult<()> {
    db(transaction
        .prepare_cached(
            "INSERT INTO customer_search (customer_id, terms) VALUES (?1, ?2) \
             ON CONFLICT (customer_id) DO UPDATE SET terms = excluded.terms",
        )
        .and_then(|mut s| s.execute(params![&customer_id.as_bytes()[..], terms])))?;
    Ok(())
}

/// The owner of an identity, read before it moves or goes.
pub(crate) fn identity_owner(
    transaction: &Transaction<'_>,
    identity_id: &[u8],
) -> StoreResult<Option<CustomerId>> {
    let owner: Option<[u8; 16]> = db(transaction
        .prepare_cached("SELECT customer_id FROM customer_identities WHERE id = ?1")
        .and_then(|mut s| s.query_row([identity_id], |row| row.get(0)).optional()))?;
    Ok(owner.map(CustomerId::from_bytes))
}

/// The stored state of every unmerged ticket of a team (before the team is deleted).
pub(crate) fn team_tickets(
    transaction: &Transaction<'_>,
    team_id: TeamId,
) -> StoreResult<Vec<StoredTicket>> {
    let sql =
        format!("SELECT {STORED_COLUMNS} FROM tickets WHERE team_id = ?1 AND merged_into IS NULL");
    db(transaction.prepare_cached(&sql).and_then(|mut s| {
        s.query_map([&team_id.as_bytes()[..]], stored_from_row)?
            .collect()
    }))
}

/// Writes a ticket's search row under its ticket's rowid (V17): a search joins each full-text
/// match to its ticket by rowid, and the index's order (which a search walks newest first) is the
/// tickets' order, creation order, as PostgreSQL's walk by ticket id is. The ticket's access
/// terms (V22) are read from it here; a trigger rewrites them when its team or assignee changes.
static INSERT_TICKET_TERMS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO ticket_search (rowid, ticket_id, subject_terms, body_terms, access_terms) \
         SELECT t.rowid, t.id, ?2, ?3, {} FROM tickets t WHERE t.id = ?1",
        crate::access_terms::TICKET_ACCESS_TERMS_SQL
    )
});

/// Writes every ticket's search row again from its subject, number and messages in order
/// (with their attachments' names), by ticket id.
fn rewrite_ticket_terms(transaction: &Transaction<'_>) -> StoreResult<()> {
    let tickets: Vec<(Vec<u8>, i64, String)> = db(transaction
        .prepare("SELECT id, number, subject FROM tickets ORDER BY id")
        .and_then(|mut s| {
            s.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect()
        }))?;
    for (id, number, subject) in tickets {
        // A ticket's messages in order, each with its attachments' names in order, in one
        // statement: a million tickets have several million messages.
        let rows: Vec<(Vec<u8>, String, Option<String>)> = db(transaction
            .prepare_cached(
                "SELECT m.id, m.body, a.file_name FROM messages m \
                 LEFT JOIN attachments a ON a.message_id = m.id \
                 WHERE m.ticket_id = ?1 ORDER BY m.created_at, m.id, a.id",
            )
            .and_then(|mut s| {
                s.query_map([&id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                    .collect()
            }))?;
        let mut body_terms = String::new();
        let mut rows = rows.into_iter().peekable();
        while let Some((message_id, body, first_name)) = rows.next() {
            let mut names: Vec<String> = first_name.into_iter().collect();
            while let Some((_, _, name)) = rows.next_if(|(next, _, _)| *next == message_id) {
                names.extend(name);
            }
            let terms = message_text_terms(&body, names.iter().map(String::as_str));
            if !terms.is_empty() {
                if !body_terms.is_empty() {
                    body_terms.push(' ');
                }
                body_terms.push_str(&terms);
            }
        }
        db(transaction
            .prepare_cached(&INSERT_TICKET_TERMS)
            .and_then(|mut s| {
                s.execute(params![id, subject_terms(number, &subject), body_terms])
            }))?;
    }
    Ok(())
}

/// Recomputes the search tables and the counters from the data.
pub(crate) fn rebuild(transaction: &Transaction<'_>) -> StoreResult<()> {
    db(transaction.execute_batch(
        "DELETE FROM ticket_counts; DELETE FROM ticket_counters; DELETE FROM ticket_visibility; \
         INSERT INTO ticket_visibility (ticket_rowid, id, team_id, assignee_id, merged_into, status) \
         SELECT rowid, id, team_id, assignee_id, merged_into, status FROM tickets;",
    ))?;
    raise_count_version(transaction)?;
    crate::bulk::with_full_text_rebuilt(transaction, |transaction| {
        db(transaction.execute_batch("DELETE FROM ticket_search; DELETE FROM customer_search;"))?;
        rewrite_ticket_terms(transaction)?;
        let customers: Vec<[u8; 16]> = db(transaction
            .prepare("SELECT id FROM customers ORDER BY rowid")
            .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect()))?;
        for customer in customers {
            reindex_customer(transaction, CustomerId::from_bytes(customer))?;
        }
        Ok(())
    })?;
    // Every token of the rebuilt index joins the vocabulary (FTS5 lists its terms). Nothing is
    // deleted: writers' caches (`KnownTokens`) may still name any token ever inserted.
    db(transaction.execute_batch(&format!(
        "INSERT OR IGNORE INTO search_terms (chars, term) \
             SELECT length(term), term FROM ticket_fts_terms WHERE {};",
        crate::access_terms::NOT_AN_ACCESS_TERM
    )))?;
    let stored: Vec<StoredTicket> = db(transaction
        .prepare(&format!(
            "SELECT {STORED_COLUMNS} FROM tickets WHERE merged_into IS NULL"
        ))
        .and_then(|mut s| s.query_map([], stored_from_row)?.collect()))?;
    let mut deltas = CounterDeltas::default();
    for ticket in &stored {
        deltas.moved(None, ticket.counter_key());
    }
    apply_counters(transaction, deltas)
}
