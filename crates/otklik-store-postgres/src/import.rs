//! Units that only add new rows — customers, imported tickets, their messages and audit events,
//! as an import or the demo's archive writes them — go in table by table, one statement per table
//! (`unnest` of one array per column), instead of one round trip per row. The round trips, not
//! PostgreSQL's work, bounded such units: about ten per ticket.
//!
//! Only units whose messages all belong to tickets created in the same unit take this path: such
//! tickets are invisible to other transactions until the commit, so the row lock that
//! [`crate::write`] takes before adding a message to an existing ticket is not needed. Anything
//! else in a unit (an update, an attachment) sends it down the general path.

use std::collections::{BTreeSet, HashMap, HashSet};

use otklik_domain::audit::AuditEvent;
use otklik_domain::clock::to_micros;
use otklik_domain::customer::Customer;
use otklik_domain::message::Message;
use otklik_domain::ticket::Ticket;
use otklik_store::{CommitReceipt, Mutation, StoreError, StoreResult, UnitOfWork};
use uuid::Uuid;

use crate::derived::Pending;
use crate::rows::author_columns;
use crate::write::{execute, insert_missing_tags};

type Transaction<'a> = deadpool_postgres::Transaction<'a>;

/// The rows of a unit that only inserts, in the unit's order within each table.
#[derive(Debug, Default)]
pub(crate) struct NewRows {
    customers: Vec<Customer>,
    tickets: Vec<Ticket>,
    messages: Vec<Message>,
    audit_events: Vec<AuditEvent>,
}

impl NewRows {
    /// The unit's rows when it only imports (see [`only_inserts`]); otherwise the unit back, for
    /// the general path.
    pub(crate) fn take(unit: UnitOfWork) -> Result<NewRows, UnitOfWork> {
        if !only_inserts(&unit) {
            return Err(unit);
        }
        let mut rows = NewRows::default();
        for mutation in unit.mutations {
            match mutation {
                Mutation::InsertCustomer(customer) => rows.customers.push(customer),
                Mutation::ImportTicket(ticket) => rows.tickets.push(*ticket),
                Mutation::InsertMessage(message) => rows.messages.push(message),
                Mutation::Audit(event) => rows.audit_events.push(event),
                _ => unreachable!("only_inserts admits no other mutation"),
            }
        }
        Ok(rows)
    }

    /// Writes every row, numbers the tickets and records what the search index and the counters
    /// need, as the general path would.
    pub(crate) async fn write(
        self,
        transaction: &Transaction<'_>,
        receipt: &mut CommitReceipt,
        pending: &mut Pending,
    ) -> StoreResult<()> {
        // The sessions keep GIN's pending lists short for searches (see `connect`); an import
        // writes thousands of documents a unit, which a long list batches into the indexes.
        // (`synchronous_commit = off` was measured no faster: 100k demo 20.1–21.1 s either way,
        // bound by the processor.)
        transaction
            .batch_execute("SET LOCAL gin_pending_list_limit = '4MB'")
            .await
            .map_err(crate::error::map_error)?;
        insert_customers(transaction, &self.customers).await?;
        for customer in &self.customers {
            pending.customer_inserted(customer);
        }
        let numbers = insert_tickets(transaction, &self.tickets).await?;
        for mut ticket in self.tickets {
            ticket.number = *numbers.get(&ticket.id.0).ok_or_else(|| {
                StoreError::corrupt("an imported ticket came back without a number")
            })?;
            ticket.version = 1;
            receipt.ticket_numbers.push(ticket.number);
            pending.ticket_inserted(&ticket);
        }
        insert_messages(transaction, &self.messages).await?;
        for message in &self.messages {
            pending.message_added(message);
        }
        insert_audit_events(transaction, &self.audit_events).await
    }
}

/// Whether `unit` holds only new customers, imported tickets (one at least), messages without
/// attachments on tickets imported earlier in the unit, and audit events. A ticket created by a
/// use case (`InsertTicket`) keeps the general path: one ticket gains nothing here.
fn only_inserts(unit: &UnitOfWork) -> bool {
    let mut new_tickets = HashSet::new();
    unit.mutations.iter().all(|mutation| match mutation {
        Mutation::InsertCustomer(_) | Mutation::Audit(_) => true,
        Mutation::ImportTicket(ticket) => new_tickets.insert(ticket.id),
        Mutation::InsertMessage(message) => {
            message.attachments.is_empty() && new_tickets.contains(&message.ticket_id)
        }
        _ => false,
    }) && !new_tickets.is_empty()
}

async fn insert_customers(
    transaction: &Transaction<'_>,
    customers: &[Customer],
) -> StoreResult<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = customers.iter().map(|c| c.id.0).collect();
    let names: Vec<&str> = customers.iter().map(|c| c.name.as_str()).collect();
    let languages: Vec<Option<&str>> = customers.iter().map(|c| c.language.as_deref()).collect();
    let merged_into: Vec<Option<Uuid>> = customers
        .iter()
        .map(|c| c.merged_into.map(|id| id.0))
        .collect();
    let created_at: Vec<i64> = customers.iter().map(|c| to_micros(c.created_at)).collect();
    let updated_at: Vec<i64> = customers.iter().map(|c| to_micros(c.updated_at)).collect();
    let versions: Vec<i64> = customers.iter().map(|c| c.version).collect();
    execute(
        transaction,
        "INSERT INTO customers (id, name, language, merged_into, created_at, updated_at, version) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::bigint[], \
         $6::bigint[], $7::bigint[])",
        &[
            &ids,
            &names,
            &languages,
            &merged_into,
            &created_at,
            &updated_at,
            &versions,
        ],
    )
    .await?;
    let identities: Vec<_> = customers.iter().flat_map(|c| &c.identities).collect();
    if identities.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = identities.iter().map(|i| i.id.0).collect();
    let owners: Vec<Uuid> = identities.iter().map(|i| i.customer_id.0).collect();
    let kinds: Vec<&str> = identities.iter().map(|i| i.value.kind.as_str()).collect();
    let providers: Vec<&str> = identities
        .iter()
        .map(|i| i.value.provider.as_str())
        .collect();
    let values: Vec<&str> = identities.iter().map(|i| i.value.value.as_str()).collect();
    let created_at: Vec<i64> = identities.iter().map(|i| to_micros(i.created_at)).collect();
    execute(
        transaction,
        "INSERT INTO customer_identities (id, customer_id, kind, provider, value, created_at) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
         $6::bigint[])",
        &[&ids, &owners, &kinds, &providers, &values, &created_at],
    )
    .await?;
    Ok(())
}

/// Inserts the tickets in the given order (their numbers follow it) with their tags; returns
/// each ticket's number by id.
async fn insert_tickets(
    transaction: &Transaction<'_>,
    tickets: &[Ticket],
) -> StoreResult<HashMap<Uuid, i64>> {
    let ids: Vec<Uuid> = tickets.iter().map(|t| t.id.0).collect();
    let subjects: Vec<&str> = tickets.iter().map(|t| t.subject.as_str()).collect();
    let statuses: Vec<&str> = tickets.iter().map(|t| t.status.as_str()).collect();
    let priorities: Vec<&str> = tickets.iter().map(|t| t.priority.as_str()).collect();
    let channels: Vec<&str> = tickets.iter().map(|t| t.channel.as_str()).collect();
    let customers: Vec<Uuid> = tickets.iter().map(|t| t.customer_id.0).collect();
    let assignees: Vec<Option<Uuid>> = tickets
        .iter()
        .map(|t| t.assignee_id.map(|id| id.0))
        .collect();
    let teams: Vec<Option<Uuid>> = tickets.iter().map(|t| t.team_id.map(|id| id.0)).collect();
    let merged_into: Vec<Option<Uuid>> = tickets
        .iter()
        .map(|t| t.merged_into.map(|id| id.0))
        .collect();
    let created_at: Vec<i64> = tickets.iter().map(|t| to_micros(t.created_at)).collect();
    let updated_at: Vec<i64> = tickets.iter().map(|t| to_micros(t.updated_at)).collect();
    let replied_at: Vec<Option<i64>> = tickets
        .iter()
        .map(|t| t.first_agent_reply_at.map(to_micros))
        .collect();
    let solved_at: Vec<Option<i64>> = tickets.iter().map(|t| t.solved_at.map(to_micros)).collect();
    let closed_at: Vec<Option<i64>> = tickets.iter().map(|t| t.closed_at.map(to_micros)).collect();
    // The rows go in in the arrays' order, so `nextval` numbers them in the unit's order.
    let statement = transaction
        .prepare_cached(
            "INSERT INTO tickets (id, subject, status, priority, channel, customer_id, \
             assignee_id, team_id, merged_into, created_at, updated_at, first_agent_reply_at, \
             solved_at, closed_at, version) \
             SELECT id, subject, status, priority, channel, customer_id, assignee_id, team_id, \
             merged_into, created_at, updated_at, first_agent_reply_at, solved_at, closed_at, 1 \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::uuid[], \
             $7::uuid[], $8::uuid[], $9::uuid[], $10::bigint[], $11::bigint[], $12::bigint[], \
             $13::bigint[], $14::bigint[]) WITH ORDINALITY AS new_tickets (id, subject, status, \
             priority, channel, customer_id, assignee_id, team_id, merged_into, created_at, \
             updated_at, first_agent_reply_at, solved_at, closed_at, position) \
             ORDER BY position \
             RETURNING id, number",
        )
        .await
        .map_err(crate::error::map_error)?;
    let rows = transaction
        .query(
            &statement,
            &[
                &ids,
                &subjects,
                &statuses,
                &priorities,
                &channels,
                &customers,
                &assignees,
                &teams,
                &merged_into,
                &created_at,
                &updated_at,
                &replied_at,
                &solved_at,
                &closed_at,
            ],
        )
        .await
        .map_err(crate::error::map_error)?;
    let mut numbers = HashMap::with_capacity(rows.len());
    for row in rows {
        let id: Uuid = row.try_get("id").map_err(StoreError::database)?;
        let number: i64 = row.try_get("number").map_err(StoreError::database)?;
        numbers.insert(id, number);
    }
    insert_ticket_tags(transaction, tickets).await?;
    Ok(numbers)
}

/// Creates the tags no ticket had before and links every ticket to its tags.
async fn insert_ticket_tags(transaction: &Transaction<'_>, tickets: &[Ticket]) -> StoreResult<()> {
    let mut links: BTreeSet<(Uuid, &str)> = BTreeSet::new();
    for ticket in tickets {
        links.extend(ticket.tags.iter().map(|name| (ticket.id.0, name.as_str())));
    }
    if links.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = links
        .iter()
        .map(|(_, name)| *name)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let at = tickets
        .iter()
        .map(|t| to_micros(t.updated_at))
        .max()
        .unwrap_or(0);
    // As on the general path, the link statement's fresh snapshot sees a tag another
    // transaction created meanwhile.
    insert_missing_tags(transaction, &names, at).await?;
    let ticket_ids: Vec<Uuid> = links.iter().map(|(ticket, _)| *ticket).collect();
    let tag_names: Vec<&str> = links.iter().map(|(_, name)| *name).collect();
    execute(
        transaction,
        "INSERT INTO ticket_tags (ticket_id, tag_id) \
         SELECT l.ticket_id, g.id FROM unnest($1::uuid[], $2::text[]) AS l (ticket_id, name) \
         JOIN tags g ON g.name = l.name",
        &[&ticket_ids, &tag_names],
    )
    .await?;
    Ok(())
}

async fn insert_messages(transaction: &Transaction<'_>, messages: &[Message]) -> StoreResult<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = messages.iter().map(|m| m.id.0).collect();
    let tickets: Vec<Uuid> = messages.iter().map(|m| m.ticket_id.0).collect();
    let (author_kinds, author_ids): (Vec<&str>, Vec<Option<Uuid>>) =
        messages.iter().map(|m| author_columns(m.author)).unzip();
    let visibilities: Vec<&str> = messages.iter().map(|m| m.visibility.as_str()).collect();
    let channels: Vec<&str> = messages.iter().map(|m| m.channel.as_str()).collect();
    let bodies: Vec<&str> = messages.iter().map(|m| m.body.as_str()).collect();
    let created_at: Vec<i64> = messages.iter().map(|m| to_micros(m.created_at)).collect();
    execute(
        transaction,
        "INSERT INTO messages (id, ticket_id, author_kind, author_id, visibility, channel, body, \
         created_at) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], \
         $6::text[], $7::text[], $8::bigint[])",
        &[
            &ids,
            &tickets,
            &author_kinds,
            &author_ids,
            &visibilities,
            &channels,
            &bodies,
            &created_at,
        ],
    )
    .await?;
    Ok(())
}

async fn insert_audit_events(
    transaction: &Transaction<'_>,
    events: &[AuditEvent],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = events.iter().map(|e| e.id.0).collect();
    let at: Vec<i64> = events.iter().map(|e| to_micros(e.at)).collect();
    let actors: Vec<Option<Uuid>> = events
        .iter()
        .map(|e| e.actor.agent_id().map(|id| id.0))
        .collect();
    let actions: Vec<&str> = events.iter().map(|e| e.action).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.object_kind).collect();
    let objects: Vec<Uuid> = events.iter().map(|e| e.object_id).collect();
    let changes: Vec<serde_json::Value> = events.iter().map(AuditEvent::changes_json).collect();
    execute(
        transaction,
        "INSERT INTO audit_events (id, at, actor_agent_id, action, object_kind, object_id, \
         changes) \
         SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], \
         $6::uuid[], $7::jsonb[])",
        &[&ids, &at, &actors, &actions, &kinds, &objects, &changes],
    )
    .await?;
    Ok(())
}
