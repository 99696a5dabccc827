//! Keeping the search index and the queue counters current, inside the writing transaction.
//!
//! The terms and counter keys come from `otklik_store::derived` (shared with SQLite); this module
//! only decides *when* and *how* they reach PostgreSQL.
//!
//! **Lock order.** Mutations only record what the derived tables need ([`Pending`]); the unit
//! writes it at its end, just before `COMMIT` ([`Pending::flush`]), always in the same order:
//! `ticket_search` rows (several rows are locked at once, by ticket id), then `customer_search`
//! rows (by customer id), then `ticket_counts` and `ticket_counters` rows (by key, one statement
//! per table), then `ticket_update_eras` rows (by era). A transaction that holds a derived row
//! therefore only ever waits for derived rows later in that order, and the counter and era rows,
//! which every ticket write shares, are locked last and held only for the moment before
//! `COMMIT`: two units can never deadlock over them. [`rebuild`] takes the tables in the same
//! order.
//!
//! **Stale reads.** Counter deltas need a ticket's state before a change. At READ COMMITTED a
//! plain `SELECT` may see a state that a concurrent transaction is about to change (a team
//! deletion clears `team_id` without touching `version`), so the state is read with
//! `FOR NO KEY UPDATE` ([`lock_tickets`]): the row lock an `UPDATE` takes anyway, taken a
//! statement earlier, which returns the latest committed state and keeps it until `COMMIT`.
//! A customer's document is recomputed after locking its `customer_search` row, so of two
//! concurrent changes to one customer the second recomputes from what the first committed.

use crate::visibility_terms;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use otklik_domain::attachment::AttachmentMeta;
use otklik_domain::clock::{from_micros, to_micros};
use otklik_domain::customer::{Customer, IdentityValue};
use otklik_domain::ids::{AgentId, AttachmentId, TeamId};
use otklik_domain::message::Message;
use otklik_domain::ticket::{Channel, Priority, Ticket, TicketStatus};
use otklik_store::derived::{
    CounterDeltas, CounterKey, KnownTokens, customer_terms, message_terms, new_customer_terms,
    subject_terms,
};
use otklik_store::{StoreError, StoreResult};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::error::map_error;
use crate::rows::{self, get};

type Transaction<'a> = deadpool_postgres::Transaction<'a>;

/// The most characters of message terms one ticket's document keeps (a term is never cut).
///
/// A `tsvector` may not exceed 1 MiB, and a document of short, all-different tokens takes up to
/// about 3.5 bytes per character of terms; past the limit PostgreSQL refuses the row, which
/// would make every later reply to a very long ticket fail. 200,000 characters (the longest
/// message body) stay well below it; words past it are not indexed on PostgreSQL.
pub(crate) const MAX_BODY_TERMS_CHARS: usize = 200_000;

/// The same bound for a customer's document (a name and a few identities; reached only by a
/// customer with thousands of identities).
const MAX_CUSTOMER_TERMS_CHARS: usize = 200_000;

/// `terms` cut to at most `max_chars` characters at a term boundary: exactly what the SQL of
/// [`APPEND_TERMS`] does (keep `max_chars + 1` characters, then drop the last, possibly partial,
/// term and the space before it).
pub(crate) fn capped(terms: &str, max_chars: usize) -> &str {
    let Some((cut, _)) = terms.char_indices().nth(max_chars) else {
        return terms;
    };
    let kept_with_next = match terms[cut..].chars().next() {
        Some(next) => &terms[..cut + next.len_utf8()],
        None => terms,
    };
    match kept_with_next.rfind(' ') {
        Some(space) => &kept_with_next[..space],
        None => "",
    }
}

/// Appends `src.addition` to a ticket's body terms (`$2` the ticket, `$3` the bound), cut at a
/// term boundary like [`capped`]; a full document is not rewritten at all. `{source}` yields the
/// one-row `addition`.
const APPEND_TERMS: &str = "UPDATE ticket_search s SET body_terms = CASE \
     WHEN s.body_terms = '' THEN src.addition \
     WHEN char_length(s.body_terms) + 1 + char_length(src.addition) <= $3::int \
         THEN s.body_terms || ' ' || src.addition \
     ELSE regexp_replace(left(s.body_terms || ' ' || src.addition, $3::int + 1), ' ?[^ ]*$', '') \
     END \
     FROM ({source}) src \
     WHERE s.ticket_id = $2 AND src.addition <> '' AND char_length(s.body_terms) < $3::int - 1";

/// Writes the search document of `tickets` from their `ticket_search` row (V16: the documents
/// live in a narrow table of their own). Called after the terms changed, in the same
/// transaction; a statement of its own, so every unit locks `ticket_search` before
/// `ticket_documents`, the order `rebuild` locks them in (one statement writing both locked
/// them in the order of its plan's range table: the documents first, and a unit and a rebuild
/// deadlocked).
///
/// The terms are already the analyser's tokens, separated by spaces, so the document is made
/// from them as they are (`array_to_tsvector`, which sorts and removes duplicates) rather than
/// by running them through the text parser again (`to_tsvector('simple', …)`, which gives the
/// same document at three times the cost: it was the biggest part of writing a ticket).
/// Queries name the tokens as they are too (`…::tsquery`, not `to_tsquery`: the parser would
/// split a token such as «1e5x» in two).
/// The terms of who may see the ticket (V21, [`visibility_terms`]) come from its row.
async fn write_documents(transaction: &Transaction<'_>, tickets: &[Uuid]) -> StoreResult<()> {
    if tickets.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO ticket_documents (ticket_id, document) \
         SELECT s.ticket_id, array_to_tsvector(array_remove( \
             string_to_array(s.subject_terms || ' ' || s.body_terms, ' '), '') \
             || {visibility}) \
         FROM ticket_search s JOIN tickets t ON t.id = s.ticket_id \
         WHERE s.ticket_id = ANY($1) \
         ON CONFLICT (ticket_id) DO UPDATE SET document = excluded.document",
        visibility = visibility_terms::TICKET_TERMS_SQL
    );
    execute(transaction, &sql, &[&tickets]).await?;
    Ok(())
}

/// What the counters and the index need to know of a stored ticket.
#[derive(Debug, Clone)]
pub(crate) struct StoredTicket {
    pub id: Uuid,
    pub number: i64,
    pub subject: String,
    pub status: TicketStatus,
    pub priority: Priority,
    pub channel: Channel,
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

const STORED_COLUMNS: &str = "id, number, subject, status, priority, channel, assignee_id, \
     team_id, updated_at, merged_into IS NOT NULL AS merged";

fn parse<T>(row: &Row, column: &str) -> StoreResult<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text: &str = get(row, column)?;
    text.parse()
        .map_err(|error| StoreError::corrupt(format!("column {column} holds {text:?}: {error}")))
}

fn stored_ticket(row: &Row) -> StoreResult<StoredTicket> {
    Ok(StoredTicket {
        id: get(row, "id")?,
        number: get(row, "number")?,
        subject: get(row, "subject")?,
        status: parse(row, "status")?,
        priority: parse(row, "priority")?,
        channel: parse(row, "channel")?,
        assignee_id: get::<Option<Uuid>>(row, "assignee_id")?.map(AgentId),
        team_id: get::<Option<Uuid>>(row, "team_id")?.map(TeamId),
        updated_at: from_micros(get(row, "updated_at")?),
        merged: get(row, "merged")?,
    })
}

async fn query(
    transaction: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<Vec<Row>> {
    let statement = transaction.prepare_cached(sql).await.map_err(map_error)?;
    transaction
        .query(&statement, params)
        .await
        .map_err(map_error)
}

async fn execute(
    transaction: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<u64> {
    let statement = transaction.prepare_cached(sql).await.map_err(map_error)?;
    transaction
        .execute(&statement, params)
        .await
        .map_err(map_error)
}

/// Locks tickets (in id order, so two units locking the same tickets cannot deadlock) and returns
/// their latest committed state. Missing ids are left out.
pub(crate) async fn lock_tickets(
    transaction: &Transaction<'_>,
    ids: &[Uuid],
) -> StoreResult<Vec<StoredTicket>> {
    let sql = format!(
        "SELECT {STORED_COLUMNS} FROM tickets WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE"
    );
    let rows = query(transaction, &sql, &[&ids]).await?;
    rows.iter().map(stored_ticket).collect()
}

/// Clears the team of its tickets (before the team is deleted) and returns the cleared tickets'
/// previous state. The rows are updated here rather than by the foreign key's `SET NULL`, so the
/// states the counters move from are exactly the rows this statement changed.
pub(crate) async fn unroute_team(
    transaction: &Transaction<'_>,
    team_id: Uuid,
) -> StoreResult<Vec<StoredTicket>> {
    // RETURNING shows the new row; only `team_id` changed, and it was `$1`. The rows are locked
    // in id order first, as `lock_tickets` locks them: updated in the order the scan met them,
    // a unit locking two of them by id (a merge) could hold one while waiting for the other,
    // and the deletion the reverse (a deadlock, seen once in 15 runs of the test of concurrent
    // units).
    let sql = format!(
        "UPDATE tickets SET team_id = NULL WHERE id IN ( \
             SELECT id FROM tickets WHERE team_id = $1 AND merged_into IS NULL \
             ORDER BY id FOR NO KEY UPDATE) \
         AND team_id = $1 AND merged_into IS NULL \
         RETURNING {STORED_COLUMNS}"
    );
    let rows = query(transaction, &sql, &[&team_id]).await?;
    rows.iter()
        .map(|row| {
            let mut before = stored_ticket(row)?;
            before.team_id = Some(TeamId(team_id));
            Ok(before)
        })
        .collect()
}

/// The tickets of `team_id` (after [`unroute_team`]: the merged ones).
pub(crate) async fn tickets_of_team(
    transaction: &Transaction<'_>,
    team_id: Uuid,
) -> StoreResult<Vec<Uuid>> {
    let rows = query(
        transaction,
        "SELECT id FROM tickets WHERE team_id = $1",
        &[&team_id],
    )
    .await?;
    rows.iter().map(|row| get(row, "id")).collect()
}

/// A change to one existing `ticket_search` row, applied in unit order.
#[derive(Debug)]
enum IndexChange {
    Subject { ticket: Uuid, terms: String },
    Append { ticket: Uuid, terms: String },
    Move { from: Uuid, to: Uuid },
}

impl IndexChange {
    fn tickets(&self) -> [Uuid; 2] {
        match self {
            IndexChange::Subject { ticket, .. } | IndexChange::Append { ticket, .. } => {
                [*ticket, *ticket]
            }
            IndexChange::Move { from, to } => [*from, *to],
        }
    }
}

/// The index row of a ticket inserted by this unit, built in memory and inserted at the end.
#[derive(Debug, Default)]
struct NewDocument {
    subject_terms: String,
    body_terms: String,
}

/// What a unit's mutations did to the derived data, written by [`Pending::flush`].
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Documents of tickets this unit inserts, by id.
    new_documents: BTreeMap<Uuid, NewDocument>,
    /// Tickets a merge of this unit moved messages from or to: their later changes go through
    /// SQL, after the move.
    moved: HashSet<Uuid>,
    changes: Vec<IndexChange>,
    /// Tickets merged into another or unmerged by this unit, or inserted merged: their
    /// documents' `merged` follows (V19).
    merges: BTreeSet<Uuid>,
    /// Existing tickets whose team or assignee this unit changed: their documents are written
    /// again with the new terms of who may see them (V21).
    visibility: BTreeSet<Uuid>,
    /// Documents of customers this unit inserts, computed from the inserted value.
    new_customers: BTreeMap<Uuid, String>,
    /// Customers whose name or identities changed otherwise: recomputed from the tables.
    changed_customers: BTreeSet<Uuid>,
    counters: CounterDeltas,
    /// By era of ticket numbers: the earliest update time and the newest id of the tickets
    /// this unit creates, or whose update time it moves back (V36).
    update_eras: BTreeMap<i64, (jiff::Timestamp, Uuid)>,
}

impl Pending {
    /// Forgets what was recorded (a rebuild in the same unit recomputed it all).
    pub(crate) fn clear(&mut self) {
        *self = Pending::default();
    }

    fn folds(&self, ticket: Uuid) -> bool {
        self.new_documents.contains_key(&ticket) && !self.moved.contains(&ticket)
    }

    /// A new ticket: index its number and subject, count it.
    pub(crate) fn ticket_inserted(&mut self, ticket: &Ticket) {
        self.new_documents.insert(
            ticket.id.0,
            NewDocument {
                subject_terms: subject_terms(ticket.number, &ticket.subject),
                body_terms: String::new(),
            },
        );
        if ticket.merged_into.is_some() {
            self.merges.insert(ticket.id.0);
        }
        self.counters.moved(None, CounterKey::of_ticket(ticket));
        self.record_update(ticket.number, ticket.id.0, ticket.updated_at);
    }

    /// The ticket `id`, numbered `number`, was updated `at` (V36): kept when it is the era's
    /// earliest update or newest id this unit has seen.
    fn record_update(&mut self, number: i64, id: Uuid, at: jiff::Timestamp) {
        let era = self
            .update_eras
            .entry(visibility_terms::era_of(number))
            .or_insert((at, id));
        era.0 = era.0.min(at);
        era.1 = era.1.max(id);
    }

    /// A stored ticket's update time moved from `before` to `after`: an era's earliest update
    /// only needs to follow when it moved back (a node whose clock is behind), as it was kept
    /// when the ticket was created or last moved back.
    fn update_moved(
        &mut self,
        number: i64,
        id: Uuid,
        before: jiff::Timestamp,
        after: jiff::Timestamp,
    ) {
        if after < before {
            self.record_update(number, id, after);
        }
    }

    /// A saved ticket: re-index a new subject, move its count.
    pub(crate) fn ticket_updated(&mut self, before: &StoredTicket, after: &Ticket) {
        if before.subject != after.subject {
            let terms = subject_terms(before.number, &after.subject);
            match self.new_documents.get_mut(&after.id.0) {
                Some(document) if !self.moved.contains(&after.id.0) => {
                    document.subject_terms = terms;
                }
                _ => self.changes.push(IndexChange::Subject {
                    ticket: after.id.0,
                    terms,
                }),
            }
        }
        if before.merged != after.merged_into.is_some() {
            self.merges.insert(after.id.0);
        }
        if before.team_id != after.team_id
            || before.assignee_id != after.assignee_id
            || before.status != after.status
            || before.priority != after.priority
            || before.channel != after.channel
        {
            self.visibility_changed(after.id.0);
        }
        self.counters
            .moved(before.counter_key(), CounterKey::of_ticket(after));
        self.update_moved(
            before.number,
            after.id.0,
            before.updated_at,
            after.updated_at,
        );
    }

    /// A ticket changed without a `Ticket` value (customer move, team deletion).
    pub(crate) fn ticket_moved(&mut self, before: &StoredTicket, after: &StoredTicket) {
        if before.team_id != after.team_id || before.assignee_id != after.assignee_id {
            self.visibility_changed(after.id);
        }
        self.counters
            .moved(before.counter_key(), after.counter_key());
        self.update_moved(before.number, after.id, before.updated_at, after.updated_at);
    }

    /// Who may see `ticket` changed (its team or assignee), or its status, priority, channel or
    /// tags: its document, which carries them as terms (V21, V25, V26, V27), is written again.
    /// A ticket this unit inserts gets its terms when its document is first written.
    pub(crate) fn visibility_changed(&mut self, ticket: Uuid) {
        if !self.new_documents.contains_key(&ticket) {
            self.visibility.insert(ticket);
        }
    }

    /// A new message: its terms join the ticket's document.
    pub(crate) fn message_added(&mut self, message: &Message) {
        let terms = message_terms(message);
        let terms = capped(&terms, MAX_BODY_TERMS_CHARS);
        if terms.is_empty() {
            return;
        }
        let ticket = message.ticket_id.0;
        if self.folds(ticket)
            && let Some(document) = self.new_documents.get_mut(&ticket)
        {
            if document.body_terms.is_empty() {
                document.body_terms = terms.to_owned();
            } else {
                let joined = format!("{} {terms}", document.body_terms);
                document.body_terms = capped(&joined, MAX_BODY_TERMS_CHARS).to_owned();
            }
            return;
        }
        self.changes.push(IndexChange::Append {
            ticket,
            terms: terms.to_owned(),
        });
    }

    /// Messages moved by a merge: their terms move to the survivor's document.
    pub(crate) fn messages_moved(&mut self, from: Uuid, to: Uuid) {
        if from == to {
            return;
        }
        self.moved.insert(from);
        self.moved.insert(to);
        self.changes.push(IndexChange::Move { from, to });
    }

    /// A customer inserted by this unit.
    pub(crate) fn customer_inserted(&mut self, customer: &Customer) {
        let terms = new_customer_terms(customer);
        self.new_customers.insert(
            customer.id.0,
            capped(&terms, MAX_CUSTOMER_TERMS_CHARS).to_owned(),
        );
    }

    /// A customer's name or identities changed: recompute its document from the tables.
    pub(crate) fn customer_changed(&mut self, customer_id: Uuid) {
        self.changed_customers.insert(customer_id);
    }

    /// The tokens of the documents this unit writes that `known` does not hold yet, sorted.
    pub(crate) fn new_vocabulary(&self, known: &KnownTokens) -> Vec<String> {
        let documents = self
            .new_documents
            .values()
            .flat_map(|document| [document.subject_terms.as_str(), &document.body_terms]);
        let changes = self.changes.iter().filter_map(|change| match change {
            IndexChange::Subject { terms, .. } | IndexChange::Append { terms, .. } => {
                Some(terms.as_str())
            }
            IndexChange::Move { .. } => None,
        });
        known.unknown(documents.chain(changes))
    }

    /// Writes everything recorded, in the module's lock order; `new_tokens` (sorted, see
    /// [`Pending::new_vocabulary`]) join the vocabulary last, so a unit waiting for another's
    /// uncommitted token holds no lock that one could need.
    pub(crate) async fn flush(
        self,
        transaction: &Transaction<'_>,
        new_tokens: &[String],
    ) -> StoreResult<()> {
        write_new_documents(transaction, &self.new_documents).await?;
        let mut rewritten =
            write_index_changes(transaction, &self.changes, &self.new_documents).await?;
        // Documents already written again above carry the new terms of who may see them.
        rewritten.extend(self.visibility);
        write_documents(transaction, &rewritten.into_iter().collect::<Vec<_>>()).await?;
        mark_merged_documents(transaction, &self.merges).await?;
        write_new_customers(transaction, &self.new_customers, &self.changed_customers).await?;
        for customer_id in &self.changed_customers {
            reindex_customer(transaction, *customer_id).await?;
        }
        write_counters(transaction, self.counters).await?;
        write_update_eras(transaction, &self.update_eras).await?;
        if !new_tokens.is_empty() {
            execute(
                transaction,
                "INSERT INTO search_terms (chars, term) \
                 SELECT char_length(token), token FROM unnest($1::text[]) AS token \
                 ON CONFLICT DO NOTHING",
                &[&new_tokens],
            )
            .await?;
        }
        Ok(())
    }
}

/// Lowers the eras' earliest updates and raises their newest ids to `eras` (V36), era by era in
/// order.
async fn write_update_eras(
    transaction: &Transaction<'_>,
    eras: &BTreeMap<i64, (jiff::Timestamp, Uuid)>,
) -> StoreResult<()> {
    if eras.is_empty() {
        return Ok(());
    }
    let numbers: Vec<i64> = eras.keys().copied().collect();
    let earliest: Vec<i64> = eras.values().map(|(at, _)| to_micros(*at)).collect();
    let newest: Vec<Uuid> = eras.values().map(|(_, id)| *id).collect();
    execute(
        transaction,
        "INSERT INTO ticket_update_eras AS e (era, earliest_update, newest_id) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::uuid[]) \
         ON CONFLICT (era) DO UPDATE SET \
             earliest_update = least(e.earliest_update, EXCLUDED.earliest_update), \
             newest_id = greatest(e.newest_id, EXCLUDED.newest_id)",
        &[&numbers, &earliest, &newest],
    )
    .await?;
    Ok(())
}

async fn write_new_documents(
    transaction: &Transaction<'_>,
    documents: &BTreeMap<Uuid, NewDocument>,
) -> StoreResult<()> {
    if documents.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = documents.keys().copied().collect();
    let subjects: Vec<&str> = documents
        .values()
        .map(|d| d.subject_terms.as_str())
        .collect();
    let bodies: Vec<&str> = documents.values().map(|d| d.body_terms.as_str()).collect();
    insert_documents(transaction, &ids, &subjects, &bodies).await
}

async fn insert_documents(
    transaction: &Transaction<'_>,
    ids: &[Uuid],
    subjects: &[&str],
    bodies: &[&str],
) -> StoreResult<()> {
    execute(
        transaction,
        "INSERT INTO ticket_search (ticket_id, subject_terms, body_terms) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])",
        &[&ids, &subjects, &bodies],
    )
    .await?;
    write_documents(transaction, ids).await
}

/// Applies `changes` to the existing `ticket_search` rows and returns the tickets whose terms did
/// change: their documents are to be written again.
async fn write_index_changes(
    transaction: &Transaction<'_>,
    changes: &[IndexChange],
    new_documents: &BTreeMap<Uuid, NewDocument>,
) -> StoreResult<BTreeSet<Uuid>> {
    let existing: BTreeSet<Uuid> = changes
        .iter()
        .flat_map(IndexChange::tickets)
        .filter(|ticket| !new_documents.contains_key(ticket))
        .collect();
    if existing.len() > 1 {
        // Several existing rows: lock them all first, in id order, so the order the unit's
        // mutations came in cannot make two units wait for each other.
        let ids: Vec<Uuid> = existing.into_iter().collect();
        query(
            transaction,
            "SELECT ticket_id FROM ticket_search WHERE ticket_id = ANY($1) \
             ORDER BY ticket_id FOR UPDATE",
            &[&ids],
        )
        .await?;
    }
    let bound = i32::try_from(MAX_BODY_TERMS_CHARS).unwrap_or(i32::MAX);
    // Only rows whose terms did change get their document written again: a reply to a ticket
    // whose terms are full changes nothing, and re-analysing its 200,000 characters would.
    let mut changed = BTreeSet::new();
    for change in changes {
        match change {
            IndexChange::Subject { ticket, terms } => {
                let touched = execute(
                    transaction,
                    "UPDATE ticket_search SET subject_terms = $2 WHERE ticket_id = $1",
                    &[ticket, terms],
                )
                .await?;
                if touched > 0 {
                    changed.insert(*ticket);
                }
            }
            IndexChange::Append { ticket, terms } => {
                let sql = APPEND_TERMS.replace("{source}", "SELECT $1::text AS addition");
                if execute(transaction, &sql, &[terms, ticket, &bound]).await? > 0 {
                    changed.insert(*ticket);
                }
            }
            IndexChange::Move { from, to } => {
                let sql = APPEND_TERMS.replace(
                    "{source}",
                    "SELECT body_terms AS addition FROM ticket_search WHERE ticket_id = $1",
                );
                if execute(transaction, &sql, &[from, to, &bound]).await? > 0 {
                    changed.insert(*to);
                }
                let cleared = execute(
                    transaction,
                    "UPDATE ticket_search SET body_terms = '' \
                     WHERE ticket_id = $1 AND body_terms <> ''",
                    &[from],
                )
                .await?;
                if cleared > 0 {
                    changed.insert(*from);
                }
            }
        }
    }
    Ok(changed)
}

/// Sets the `merged` of `tickets`' documents from their tickets, after the documents are written.
async fn mark_merged_documents(
    transaction: &Transaction<'_>,
    tickets: &BTreeSet<Uuid>,
) -> StoreResult<()> {
    if tickets.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = tickets.iter().copied().collect();
    execute(
        transaction,
        "UPDATE ticket_documents d SET merged = (t.merged_into IS NOT NULL) FROM tickets t \
         WHERE t.id = d.ticket_id AND d.ticket_id = ANY($1) \
         AND d.merged <> (t.merged_into IS NOT NULL)",
        &[&ids],
    )
    .await?;
    Ok(())
}

async fn write_new_customers(
    transaction: &Transaction<'_>,
    new_customers: &BTreeMap<Uuid, String>,
    changed: &BTreeSet<Uuid>,
) -> StoreResult<()> {
    // A customer both inserted and changed later in the unit is recomputed from the tables.
    let (ids, terms): (Vec<Uuid>, Vec<&str>) = new_customers
        .iter()
        .filter(|(id, _)| !changed.contains(id))
        .map(|(id, terms)| (*id, terms.as_str()))
        .unzip();
    if ids.is_empty() {
        return Ok(());
    }
    execute(
        transaction,
        "INSERT INTO customer_search (customer_id, terms) \
         SELECT * FROM unnest($1::uuid[], $2::text[])",
        &[&ids, &terms],
    )
    .await?;
    Ok(())
}

fn identity_value(row: &Row) -> StoreResult<IdentityValue> {
    Ok(IdentityValue {
        kind: parse(row, "kind")?,
        provider: get(row, "provider")?,
        value: get(row, "value")?,
    })
}

/// Recomputes a customer's document from its stored name and identities.
async fn reindex_customer(transaction: &Transaction<'_>, customer_id: Uuid) -> StoreResult<()> {
    // Lock first, read after: the read's snapshot then includes whatever the previous holder of
    // the lock committed.
    let locked = query(
        transaction,
        "SELECT terms FROM customer_search WHERE customer_id = $1 FOR UPDATE",
        &[&customer_id],
    )
    .await?;
    let rows = query(
        transaction,
        "SELECT c.name, i.kind, i.provider, i.value FROM customers c \
         LEFT JOIN customer_identities i ON i.customer_id = c.id \
         WHERE c.id = $1 ORDER BY i.created_at, i.id",
        &[&customer_id],
    )
    .await?;
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let name: String = get(first, "name")?;
    let mut identities = Vec::with_capacity(rows.len());
    for row in &rows {
        if get::<Option<&str>>(row, "kind")?.is_some() {
            identities.push(identity_value(row)?);
        }
    }
    let terms = customer_terms(&name, &identities);
    let terms = capped(&terms, MAX_CUSTOMER_TERMS_CHARS);
    match locked.first() {
        Some(row) if get::<&str>(row, "terms")? == terms => {}
        Some(_) => {
            execute(
                transaction,
                "UPDATE customer_search SET terms = $2 WHERE customer_id = $1",
                &[&customer_id, &terms],
            )
            .await?;
        }
        None => {
            execute(
                transaction,
                "INSERT INTO customer_search (customer_id, terms) VALUES ($1, $2) \
                 ON CONFLICT (customer_id) DO UPDATE SET terms = EXCLUDED.terms",
                &[&customer_id, &terms],
            )
            .await?;
        }
    }
    Ok(())
}

/// The counter changes as parallel arrays, sorted by key: every unit locks counter rows in this
/// one order.
#[derive(Default)]
struct CounterColumns {
    statuses: Vec<&'static str>,
    priorities: Vec<&'static str>,
    assignees: Vec<Uuid>,
    teams: Vec<Uuid>,
    days: Vec<i64>,
    deltas: Vec<i64>,
}

fn counter_columns(changes: impl IntoIterator<Item = (CounterKey, i64)>) -> CounterColumns {
    let mut sorted: Vec<_> = changes
        .into_iter()
        .map(|(key, delta)| {
            (
                (
                    key.status.as_str(),
                    key.priority.as_str(),
                    key.assignee_id.map_or(Uuid::nil(), |id| id.0),
                    key.team_id.map_or(Uuid::nil(), |id| id.0),
                    key.day,
                ),
                delta,
            )
        })
        .collect();
    sorted.sort_unstable();
    let mut columns = CounterColumns::default();
    for ((status, priority, assignee, team, day), delta) in sorted {
        columns.statuses.push(status);
        columns.priorities.push(priority);
        columns.assignees.push(assignee);
        columns.teams.push(team);
        columns.days.push(day);
        columns.deltas.push(delta);
    }
    columns
}

/// Adds the deltas to the counter rows, one statement per table, each in key order: the plain
/// counts first, then the daily ones (the same order in every unit and in [`rebuild`]).
async fn write_counters(transaction: &Transaction<'_>, deltas: CounterDeltas) -> StoreResult<()> {
    let tables = deltas.into_tables();
    if tables.plain.is_empty() && tables.daily.is_empty() {
        return Ok(());
    }
    raise_count_version(transaction).await?;
    let plain = counter_columns(tables.plain);
    if !plain.deltas.is_empty() {
        upsert_counters(transaction, CounterTable::Plain, &plain).await?;
    }
    let daily = counter_columns(tables.daily);
    if !daily.deltas.is_empty() {
        upsert_counters(transaction, CounterTable::Daily, &daily).await?;
    }
    Ok(())
}

/// Tells every node that the counters changed (see `otklik_store::count_cache`): the
/// connection's shard of the version, locked before any counter row, in every unit and in
/// [`rebuild`] alike.
async fn raise_count_version(transaction: &Transaction<'_>) -> StoreResult<()> {
    execute(
        transaction,
        "UPDATE count_versions SET version = version + 1 WHERE shard = pg_backend_pid() % 8",
        &[],
    )
    .await?;
    Ok(())
}

/// The two counter tables (V8): plain counts, and waiting work by day.
#[derive(Clone, Copy)]
enum CounterTable {
    Plain,
    Daily,
}

async fn upsert_counters(
    transaction: &Transaction<'_>,
    table: CounterTable,
    columns: &CounterColumns,
) -> StoreResult<()> {
    // WITH ORDINALITY … ORDER BY keeps the sorted order of the arrays, so rows are inserted or
    // locked one after another in key order. Each connection writes its own shard of a key
    // (V4__counter_shards.sql, V8__plain_counts.sql): the hot queues no longer make concurrent
    // writers wait in line, and a unit's rows all share one shard, so the key order still rules
    // out deadlocks.
    let sql = match table {
        CounterTable::Plain => {
            "INSERT INTO ticket_counts (status, priority, assignee_key, team_key, shard, n) \
             SELECT status, priority, assignee_key, team_key, pg_backend_pid() % 8, n \
             FROM unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[], $5::bigint[], $6::bigint[]) \
                  WITH ORDINALITY AS d (status, priority, assignee_key, team_key, day, n, position) \
             ORDER BY position \
             ON CONFLICT (status, priority, assignee_key, team_key, shard) \
             DO UPDATE SET n = ticket_counts.n + EXCLUDED.n"
        }
        CounterTable::Daily => {
            "INSERT INTO ticket_counters (status, priority, assignee_key, team_key, day, shard, n) \
             SELECT status, priority, assignee_key, team_key, day, pg_backend_pid() % 8, n \
             FROM unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[], $5::bigint[], $6::bigint[]) \
                  WITH ORDINALITY AS d (status, priority, assignee_key, team_key, day, n, position) \
             ORDER BY position \
             ON CONFLICT (status, priority, assignee_key, team_key, day, shard) \
             DO UPDATE SET n = ticket_counters.n + EXCLUDED.n"
        }
    };
    execute(
        transaction,
        sql,
        &[
            &columns.statuses,
            &columns.priorities,
            &columns.assignees,
            &columns.teams,
            &columns.days,
            &columns.deltas,
        ],
    )
    .await?;
    Ok(())
}

/// Rows fetched per round trip while rebuilding, and rows written per statement.
const REBUILD_BATCH: i32 = 1_000;

/// Recomputes the search tables and the counters from the data.
///
/// The derived tables are locked `EXCLUSIVE` (in the order units write them, so a unit
/// half-way through its derived writes finishes first): searches and counts keep reading the
/// old rows until the rebuild commits, while units that change derived data wait and then apply
/// their change on top of the rebuilt rows, which did not include it. The data is read through
/// portals, a batch at a time, so memory stays flat however many tickets there are.
pub(crate) async fn rebuild(transaction: &Transaction<'_>) -> StoreResult<()> {
    transaction
        .batch_execute(
            "LOCK TABLE ticket_search, ticket_documents, ticket_era_words, customer_search, \
             count_versions, ticket_counts, ticket_counters, ticket_update_eras \
             IN EXCLUSIVE MODE; \
             DELETE FROM ticket_era_words; DELETE FROM ticket_documents; \
             DELETE FROM ticket_search; DELETE FROM customer_search; \
             DELETE FROM ticket_counts; \
             DELETE FROM ticket_counters; \
             DELETE FROM ticket_update_eras; \
             UPDATE count_versions SET version = version + 1 WHERE shard = 0;",
        )
        .await
        .map_err(map_error)?;
    rebuild_ticket_documents(transaction).await?;
    transaction
        .batch_execute(
            "UPDATE ticket_documents d SET merged = true \
             FROM tickets t WHERE t.id = d.ticket_id AND t.merged_into IS NOT NULL",
        )
        .await
        .map_err(map_error)?;
    // Every token of the rebuilt index joins the vocabulary, but for the terms of who may see a
    // ticket (upper-case, see `visibility_terms`). Nothing is deleted: the nodes' caches
    // (`KnownTokens`) may still name any token ever inserted.
    transaction
        .batch_execute(
            "INSERT INTO search_terms (chars, term) \
             SELECT DISTINCT char_length(lexeme), lexeme FROM ticket_documents, unnest(document) \
             WHERE lexeme !~ '^[A-Z]' \
             ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(map_error)?;
    rebuild_customer_documents(transaction).await?;
    rebuild_counters(transaction).await?;
    // What each era's tickets hold now: their earlier update times are gone, and not needed.
    transaction
        .batch_execute(&format!(
            "INSERT INTO ticket_update_eras (era, earliest_update, newest_id) \
             SELECT number / {era}, min(updated_at), (array_agg(id ORDER BY id DESC))[1] \
             FROM tickets GROUP BY number / {era}",
            era = visibility_terms::ERA_TICKETS
        ))
        .await
        .map_err(map_error)
}

/// A ticket's document being rebuilt from its rows.
struct Rebuilt {
    id: Uuid,
    subject_terms: String,
    body_terms: String,
    /// `body_terms.chars().count()`, kept so a long ticket is not counted again per message.
    body_chars: usize,
}

impl Rebuilt {
    /// Appends one message's terms, as [`APPEND_TERMS`] would.
    fn append(&mut self, terms: &str) {
        if terms.is_empty() || self.body_chars + 1 >= MAX_BODY_TERMS_CHARS {
            return;
        }
        if !self.body_terms.is_empty() {
            self.body_terms.push(' ');
            self.body_chars += 1;
        }
        self.body_terms.push_str(terms);
        self.body_chars += terms.chars().count();
        if self.body_chars > MAX_BODY_TERMS_CHARS {
            let kept = capped(&self.body_terms, MAX_BODY_TERMS_CHARS).len();
            self.body_terms.truncate(kept);
            self.body_chars = self.body_terms.chars().count();
        }
    }
}

async fn rebuild_ticket_documents(transaction: &Transaction<'_>) -> StoreResult<()> {
    // One row per message (or one for a ticket without any), in the order messages were added;
    // the attachment names ride along, so each message's terms are `message_terms` of it.
    let sql = format!(
        "SELECT t.id AS document_id, t.number, t.subject, {message}, \
                a.attachment_ids, a.file_names \
         FROM tickets t \
         LEFT JOIN messages m ON m.ticket_id = t.id \
         LEFT JOIN LATERAL ( \
             SELECT array_agg(x.id ORDER BY x.id) AS attachment_ids, \
                    array_agg(x.file_name ORDER BY x.id) AS file_names \
             FROM attachments x WHERE x.message_id = m.id) a ON true \
         ORDER BY t.id, m.created_at, m.id",
        message = rows::MESSAGE_COLUMNS
            .split(", ")
            .map(|column| format!("m.{column}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let portal = transaction.bind(&sql, &[]).await.map_err(map_error)?;
    let mut current: Option<Rebuilt> = None;
    let mut batch: Vec<Rebuilt> = Vec::new();
    loop {
        let rows = transaction
            .query_portal(&portal, REBUILD_BATCH)
            .await
            .map_err(map_error)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let id: Uuid = get(row, "document_id")?;
            if current.as_ref().is_none_or(|document| document.id != id) {
                batch.extend(current.take());
                current = Some(Rebuilt {
                    id,
                    subject_terms: subject_terms(get(row, "number")?, get(row, "subject")?),
                    body_terms: String::new(),
                    body_chars: 0,
                });
            }
            let Some(document) = current.as_mut() else {
                continue;
            };
            if get::<Option<Uuid>>(row, "id")?.is_none() {
                continue;
            }
            document.append(&message_terms(&rebuilt_message(row)?));
        }
        if batch.len() >= REBUILD_BATCH as usize {
            flush_rebuilt(transaction, std::mem::take(&mut batch)).await?;
        }
    }
    batch.extend(current);
    flush_rebuilt(transaction, batch).await
}

/// A message row of the rebuild query with its attachments' names (the only attachment field
/// the terms use; the rest is left empty).
fn rebuilt_message(row: &Row) -> StoreResult<Message> {
    let mut message = rows::message(row)?;
    let ids: Option<Vec<Uuid>> = get(row, "attachment_ids")?;
    let names: Option<Vec<String>> = get(row, "file_names")?;
    message.attachments = ids
        .unwrap_or_default()
        .into_iter()
        .zip(names.unwrap_or_default())
        .map(|(id, file_name)| AttachmentMeta {
            id: AttachmentId(id),
            ticket_id: message.ticket_id,
            message_id: message.id,
            file_name,
            content_type: String::new(),
            size_bytes: 0,
            sha256: String::new(),
        })
        .collect();
    Ok(message)
}

async fn flush_rebuilt(transaction: &Transaction<'_>, batch: Vec<Rebuilt>) -> StoreResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = batch.iter().map(|d| d.id).collect();
    let subjects: Vec<&str> = batch.iter().map(|d| d.subject_terms.as_str()).collect();
    let bodies: Vec<&str> = batch.iter().map(|d| d.body_terms.as_str()).collect();
    insert_documents(transaction, &ids, &subjects, &bodies).await
}

async fn rebuild_customer_documents(transaction: &Transaction<'_>) -> StoreResult<()> {
    let portal = transaction
        .bind(
            "SELECT c.id AS customer_id, c.name, i.kind, i.provider, i.value FROM customers c \
             LEFT JOIN customer_identities i ON i.customer_id = c.id \
             ORDER BY c.id, i.created_at, i.id",
            &[],
        )
        .await
        .map_err(map_error)?;
    let mut current: Option<(Uuid, String, Vec<IdentityValue>)> = None;
    let mut batch: BTreeMap<Uuid, String> = BTreeMap::new();
    let finish = |batch: &mut BTreeMap<Uuid, String>, done: (Uuid, String, Vec<IdentityValue>)| {
        let (id, name, identities) = done;
        let terms = customer_terms(&name, &identities);
        batch.insert(id, capped(&terms, MAX_CUSTOMER_TERMS_CHARS).to_owned());
    };
    loop {
        let rows = transaction
            .query_portal(&portal, REBUILD_BATCH)
            .await
            .map_err(map_error)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let id: Uuid = get(row, "customer_id")?;
            if current
                .as_ref()
                .is_none_or(|(current_id, ..)| *current_id != id)
            {
                if let Some(done) = current.take() {
                    finish(&mut batch, done);
                }
                current = Some((id, get(row, "name")?, Vec::new()));
            }
            if let Some((_, _, identities)) = current.as_mut()
                && get::<Option<&str>>(row, "kind")?.is_some()
            {
                identities.push(identity_value(row)?);
            }
        }
        if batch.len() >= REBUILD_BATCH as usize {
            write_new_customers(transaction, &std::mem::take(&mut batch), &BTreeSet::new()).await?;
        }
    }
    if let Some(done) = current.take() {
        finish(&mut batch, done);
    }
    write_new_customers(transaction, &batch, &BTreeSet::new()).await
}

async fn rebuild_counters(transaction: &Transaction<'_>) -> StoreResult<()> {
    let sql = format!("SELECT {STORED_COLUMNS} FROM tickets WHERE merged_into IS NULL");
    let portal = transaction.bind(&sql, &[]).await.map_err(map_error)?;
    let mut deltas = CounterDeltas::default();
    loop {
        let rows = transaction
            .query_portal(&portal, REBUILD_BATCH)
            .await
            .map_err(map_error)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            deltas.moved(None, stored_ticket(row)?.counter_key());
        }
    }
    let tables = deltas.into_tables();
    for (table, changes) in [
        (CounterTable::Plain, tables.plain),
        (CounterTable::Daily, tables.daily),
    ] {
        let columns = counter_columns(changes);
        let chunk = REBUILD_BATCH as usize;
        for start in (0..columns.deltas.len()).step_by(chunk) {
            let end = (start + chunk).min(columns.deltas.len());
            let part = CounterColumns {
                statuses: columns.statuses[start..end].to_vec(),
                priorities: columns.priorities[start..end].to_vec(),
                assignees: columns.assignees[start..end].to_vec(),
                teams: columns.teams[start..end].to_vec(),
                days: columns.days[start..end].to_vec(),
                deltas: columns.deltas[start..end].to_vec(),
            };
            upsert_counters(transaction, table, &part).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capping_keeps_whole_terms_only() {
        assert_eq!(capped("abc def", 10), "abc def");
        assert_eq!(capped("abc def", 7), "abc def");
        assert_eq!(capped("abc def", 6), "abc");
        assert_eq!(capped("abc def", 3), "abc");
        assert_eq!(capped("abc def", 2), "");
        assert_eq!(capped("абв где", 5), "абв");
        assert_eq!(capped("абв где", 4), "абв");
    }
}
