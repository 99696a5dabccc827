//! The write side: a unit of work becomes one transaction, each mutation a few statements.
//!
//! The transaction runs at PostgreSQL's default READ COMMITTED level. Correctness does not come
//! from isolation tricks but from the schema: unique constraints refuse duplicates (mapped to
//! `Conflict` in `error.rs`), versioned updates compare-and-set the `version` column, and
//! `UPDATE … WHERE used_at IS NULL` makes consuming a set-up token a single atomic step. Any
//! error returns before `COMMIT`; dropping the transaction rolls the whole unit back.
//!
//! The search index and the queue counters change in the same transaction: each arm records
//! what its mutation did to them in a [`Pending`], which the unit writes just before `COMMIT`
//! (`derived.rs` explains the order and the locks).

use std::collections::BTreeSet;

use otklik_domain::clock::to_micros;
use otklik_domain::ids::TagId;
use otklik_domain::ticket::Ticket;
use otklik_store::derived::KnownTokens;
use otklik_store::{CommitReceipt, Mutation, StoreError, StoreResult, UnitOfWork};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::Client;
use crate::chat;
use crate::derived::{self, Pending, StoredTicket};
use crate::email;
use crate::error::map_error;
use crate::rows::{author_columns, scopes_text};

type Transaction<'a> = deadpool_postgres::Transaction<'a>;

/// Applies every mutation of `unit`, in order, in one transaction.
pub(crate) async fn commit(
    client: &mut Client,
    unit: UnitOfWork,
    known_tokens: &std::sync::Mutex<KnownTokens>,
) -> StoreResult<CommitReceipt> {
    let mut receipt = CommitReceipt::default();
    if unit.mutations.is_empty() {
        return Ok(receipt);
    }
    let events = otklik_store::events::events_of(&unit);
    let transaction = client.transaction().await.map_err(map_error)?;
    let mut pending = Pending::default();
    match crate::import::NewRows::take(unit) {
        Ok(rows) => rows.write(&transaction, &mut receipt, &mut pending).await?,
        Err(unit) => {
            for mutation in unit.mutations {
                apply(&transaction, mutation, &mut receipt, &mut pending).await?;
            }
        }
    }
    let new_tokens = pending.new_vocabulary(
        &known_tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    );
    pending.flush(&transaction, &new_tokens).await?;
    // Delivered to every node's LISTEN connection if, and only if, this transaction commits.
    for chunk in events.chunks(crate::listen::EVENTS_PER_NOTIFICATION) {
        let payload = serde_json::to_string(chunk).map_err(StoreError::database)?;
        let statement = transaction
            .prepare_cached("SELECT pg_notify($1, $2)")
            .await
            .map_err(map_error)?;
        transaction
            .execute(&statement, &[&crate::listen::CHANNEL, &payload])
            .await
            .map_err(map_error)?;
    }
    transaction.commit().await.map_err(map_error)?;
    // Durable now: this node need not insert these tokens again.
    known_tokens
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .learn(new_tokens);
    Ok(receipt)
}

/// Runs one statement through the connection's statement cache and returns the rows it touched.
pub(crate) async fn execute(
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

/// The tables an import fills, whose statistics [`analyze_imported_tables`] refreshes.
const IMPORTED_TABLES: &str = "tickets, messages, audit_events, ticket_tags, ticket_search, \
     ticket_documents, ticket_era_words, ticket_counts, customers, customer_identities, \
     customer_search";

/// Refreshes the planner's statistics of the tables an import fills, in the unit's transaction
/// (ANALYZE, unlike VACUUM, may run in one; it blocks neither readers nor writers). Until then
/// the planner plans by the tables as they were: empty, after a demo into a new database, and
/// it then chose plans that made an agent's search at 100,000 tickets take 98 ms instead of 9.
/// Autovacuum would analyze them in time, where it is on; an import should not wait for it.
async fn analyze_imported_tables(transaction: &Transaction<'_>) -> StoreResult<()> {
    transaction
        .batch_execute(&format!("ANALYZE {IMPORTED_TABLES}"))
        .await
        .map_err(map_error)
}

/// Fails with `NotFound` when a statement that names one row touched none.
fn expect_row(touched: u64, what: &'static str) -> StoreResult<()> {
    if touched == 0 {
        Err(StoreError::NotFound { what })
    } else {
        Ok(())
    }
}

/// After a versioned update touched no row: the row moved on (`VersionConflict`) or never was
/// (`NotFound`). Checked after the fact because the common case, a fresh version, needs no
/// second query.
async fn versioned(
    transaction: &Transaction<'_>,
    touched: u64,
    table: &str,
    id: Uuid,
    what: &'static str,
) -> StoreResult<()> {
    versioned_by(transaction, touched, table, "id", id, what).await
}

/// [`versioned`] for a table whose key column is not `id` (chats are keyed by ticket).
pub(crate) async fn versioned_by(
    transaction: &Transaction<'_>,
    touched: u64,
    table: &str,
    key_column: &str,
    id: Uuid,
    what: &'static str,
) -> StoreResult<()> {
    if touched > 0 {
        return Ok(());
    }
    let sql = format!("SELECT 1 FROM {table} WHERE {key_column} = $1");
    let statement = transaction.prepare_cached(&sql).await.map_err(map_error)?;
    let exists = transaction
        .query_opt(&statement, &[&id])
        .await
        .map_err(map_error)?
        .is_some();
    Err(if exists {
        StoreError::VersionConflict { what }
    } else {
        StoreError::NotFound { what }
    })
}

/// Gives a ticket exactly these tags, creating tags that do not exist yet. With `replace`, the
/// ticket's other tags are removed first; tags it keeps are left untouched, so saving a ticket
/// whose tags did not change writes no `ticket_tags` rows. Returns whether any link was removed
/// or added: the ticket's search document carries its tags (V27).
async fn set_ticket_tags(
    transaction: &Transaction<'_>,
    ticket_id: Uuid,
    tags: &[String],
    at: i64,
    replace: bool,
) -> StoreResult<bool> {
    let names: Vec<&str> = tags
        .iter()
        .map(String::as_str)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut removed = 0;
    if replace {
        removed = execute(
            transaction,
            "DELETE FROM ticket_tags tt USING tags g \
             WHERE tt.ticket_id = $1 AND g.id = tt.tag_id AND NOT (g.name = ANY($2::text[]))",
            &[&ticket_id, &names],
        )
        .await?;
    }
    if names.is_empty() {
        return Ok(removed > 0);
    }
    insert_missing_tags(transaction, &names, at).await?;
    // A separate statement on purpose: at READ COMMITTED it takes a fresh snapshot, so it sees a
    // tag that a concurrent transaction committed while the insert above waited for it. DO
    // NOTHING keeps the links the ticket already had.
    let added = execute(
        transaction,
        "INSERT INTO ticket_tags (ticket_id, tag_id) \
         SELECT $1::uuid, id FROM tags WHERE name = ANY($2::text[]) \
         ON CONFLICT DO NOTHING",
        &[&ticket_id, &names],
    )
    .await?;
    Ok(removed + added > 0)
}

/// Creates the tags of `names` that do not exist yet. DO NOTHING on the name: a tag created
/// meanwhile by another transaction is waited for and then reused rather than failing this unit.
pub(crate) async fn insert_missing_tags(
    transaction: &Transaction<'_>,
    names: &[&str],
    at: i64,
) -> StoreResult<()> {
    let new_ids: Vec<Uuid> = names.iter().map(|_| TagId::new().0).collect();
    execute(
        transaction,
        "INSERT INTO tags (id, name, created_at) \
         SELECT id, name, $3::bigint FROM unnest($1::uuid[], $2::text[]) AS new_tags (id, name) \
         ON CONFLICT (name) DO NOTHING",
        &[&new_ids, &names, &at],
    )
    .await?;
    Ok(())
}

/// Gives an agent exactly these team memberships.
async fn set_agent_teams(
    transaction: &Transaction<'_>,
    agent_id: Uuid,
    team_ids: &[Uuid],
    replace: bool,
) -> StoreResult<()> {
    if replace {
        execute(
            transaction,
            "DELETE FROM agent_teams WHERE agent_id = $1",
            &[&agent_id],
        )
        .await?;
    }
    if team_ids.is_empty() {
        return Ok(());
    }
    // DO NOTHING absorbs a team listed twice; an unknown team still fails (foreign key →
    // NotFound).
    execute(
        transaction,
        "INSERT INTO agent_teams (agent_id, team_id) SELECT $1::uuid, unnest($2::uuid[]) \
         ON CONFLICT DO NOTHING",
        &[&agent_id, &team_ids],
    )
    .await?;
    Ok(())
}

fn uuids<T>(ids: &[T], uuid: impl Fn(&T) -> Uuid) -> Vec<Uuid> {
    ids.iter().map(uuid).collect()
}

/// The JSON stored for a merge's moved ids: an array of UUID strings, as on SQLite.
fn uuid_json(ids: Vec<Uuid>) -> serde_json::Value {
    serde_json::Value::Array(ids.into_iter().map(|id| id.to_string().into()).collect())
}

async fn update_ticket(
    transaction: &Transaction<'_>,
    ticket: &Ticket,
    expected_version: i64,
    pending: &mut Pending,
) -> StoreResult<()> {
    // The state the counters move from, locked so it stays the stored state until COMMIT.
    let before = derived::lock_tickets(transaction, &[ticket.id.0])
        .await?
        .pop()
        .ok_or(StoreError::NotFound { what: "ticket" })?;
    let touched = execute(
        transaction,
        "UPDATE tickets SET subject = $3, status = $4, priority = $5, channel = $6, \
         customer_id = $7, assignee_id = $8, team_id = $9, merged_into = $10, updated_at = $11, \
         first_agent_reply_at = $12, solved_at = $13, closed_at = $14, version = $2::bigint + 1 \
         WHERE id = $1 AND version = $2::bigint",
        &[
            &ticket.id.0,
            &expected_version,
            &ticket.subject,
            &ticket.status.as_str(),
            &ticket.priority.as_str(),
            &ticket.channel.as_str(),
            &ticket.customer_id.0,
            &ticket.assignee_id.map(|id| id.0),
            &ticket.team_id.map(|id| id.0),
            &ticket.merged_into.map(|id| id.0),
            &to_micros(ticket.updated_at),
            &ticket.first_agent_reply_at.map(to_micros),
            &ticket.solved_at.map(to_micros),
            &ticket.closed_at.map(to_micros),
        ],
    )
    .await?;
    if touched == 0 {
        // The row exists (it is locked above), so its version moved on.
        return Err(StoreError::VersionConflict { what: "ticket" });
    }
    pending.ticket_updated(&before, ticket);
    let retagged = set_ticket_tags(
        transaction,
        ticket.id.0,
        &ticket.tags,
        to_micros(ticket.updated_at),
        true,
    )
    .await?;
    if retagged {
        pending.visibility_changed(ticket.id.0);
    }
    Ok(())
}

/// Inserts `ticket` (its number and version are the store's: the next number, version 1) with
/// its tags, and records it for the index and the counters.
async fn insert_ticket(
    transaction: &Transaction<'_>,
    mut ticket: Ticket,
    receipt: &mut CommitReceipt,
    pending: &mut Pending,
) -> StoreResult<()> {
    let statement = transaction
        .prepare_cached(
            "INSERT INTO tickets (id, subject, status, priority, channel, customer_id, \
             assignee_id, team_id, merged_into, created_at, updated_at, \
             first_agent_reply_at, solved_at, closed_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1) \
             RETURNING number",
        )
        .await
        .map_err(map_error)?;
    // The number comes from the column's default, `nextval('ticket_number_seq')`.
    let row = transaction
        .query_one(
            &statement,
            &[
                &ticket.id.0,
                &ticket.subject,
                &ticket.status.as_str(),
                &ticket.priority.as_str(),
                &ticket.channel.as_str(),
                &ticket.customer_id.0,
                &ticket.assignee_id.map(|id| id.0),
                &ticket.team_id.map(|id| id.0),
                &ticket.merged_into.map(|id| id.0),
                &to_micros(ticket.created_at),
                &to_micros(ticket.updated_at),
                &ticket.first_agent_reply_at.map(to_micros),
                &ticket.solved_at.map(to_micros),
                &ticket.closed_at.map(to_micros),
            ],
        )
        .await
        .map_err(map_error)?;
    ticket.number = row.try_get("number").map_err(StoreError::database)?;
    ticket.version = 1;
    receipt.ticket_numbers.push(ticket.number);
    // Its document is written at the unit's end, tags and all.
    set_ticket_tags(
        transaction,
        ticket.id.0,
        &ticket.tags,
        to_micros(ticket.updated_at),
        false,
    )
    .await?;
    pending.ticket_inserted(&ticket);
    Ok(())
}

/// One mutation. Each arm is the whole SQL story of that mutation.
async fn apply(
    transaction: &Transaction<'_>,
    mutation: Mutation,
    receipt: &mut CommitReceipt,
    pending: &mut Pending,
) -> StoreResult<()> {
    match mutation {
        Mutation::InsertTicket(draft) => {
            insert_ticket(transaction, draft.into_ticket(0), receipt, pending).await?;
        }
        Mutation::ImportTicket(ticket) => {
            insert_ticket(transaction, *ticket, receipt, pending).await?;
        }
        Mutation::UpdateTicket {
            ticket,
            expected_version,
        } => {
            update_ticket(transaction, &ticket, expected_version, pending).await?;
        }
        Mutation::InsertMessage(message) => {
            let (author_kind, author_id) = author_columns(message.author);
            // The ticket row is locked (the lock its update in the same unit takes anyway), so a
            // merge moving this ticket's messages waits for the message and its terms, or this
            // message waits for the merge: messages and their terms always move together.
            let inserted = execute(
                transaction,
                "INSERT INTO messages (id, ticket_id, author_kind, author_id, visibility, channel, \
                 body, created_at) \
                 SELECT $1, t.id, $3, $4, $5, $6, $7, $8 FROM tickets t WHERE t.id = $2 \
                 FOR NO KEY UPDATE",
                &[
                    &message.id.0,
                    &message.ticket_id.0,
                    &author_kind,
                    &author_id,
                    &message.visibility.as_str(),
                    &message.channel.as_str(),
                    &message.body,
                    &to_micros(message.created_at),
                ],
            )
            .await?;
            expect_row(inserted, "ticket")?;
            for attachment in &message.attachments {
                execute(
                    transaction,
                    "INSERT INTO attachments (id, ticket_id, message_id, file_name, content_type, \
                     size_bytes, sha256) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &attachment.id.0,
                        &attachment.ticket_id.0,
                        &attachment.message_id.0,
                        &attachment.file_name,
                        &attachment.content_type,
                        &attachment.size_bytes,
                        &attachment.sha256,
                    ],
                )
                .await?;
            }
            pending.message_added(&message);
        }
        Mutation::MoveMessages { from, to } => {
            // Both tickets locked first (in id order): units adding messages to either have
            // committed, with their terms, or wait until this merge has.
            derived::lock_tickets(transaction, &[from.0, to.0]).await?;
            pending.messages_moved(from.0, to.0);
            let params: [&(dyn ToSql + Sync); 2] = [&from.0, &to.0];
            execute(
                transaction,
                "UPDATE messages SET ticket_id = $2 WHERE ticket_id = $1",
                &params,
            )
            .await?;
            execute(
                transaction,
                "UPDATE attachments SET ticket_id = $2 WHERE ticket_id = $1",
                &params,
            )
            .await?;
        }
        Mutation::InsertCustomer(customer) => {
            execute(
                transaction,
                "INSERT INTO customers (id, name, language, merged_into, created_at, updated_at, \
                 version) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &customer.id.0,
                    &customer.name,
                    &customer.language,
                    &customer.merged_into.map(|id| id.0),
                    &to_micros(customer.created_at),
                    &to_micros(customer.updated_at),
                    &customer.version,
                ],
            )
            .await?;
            for identity in &customer.identities {
                insert_identity(transaction, identity).await?;
            }
            pending.customer_inserted(&customer);
        }
        Mutation::UpdateCustomer {
            customer,
            expected_version,
        } => {
            let touched = execute(
                transaction,
                "UPDATE customers SET name = $3, language = $4, merged_into = $5, updated_at = $6, \
                 version = $2::bigint + 1 WHERE id = $1 AND version = $2::bigint",
                &[
                    &customer.id.0,
                    &expected_version,
                    &customer.name,
                    &customer.language,
                    &customer.merged_into.map(|id| id.0),
                    &to_micros(customer.updated_at),
                ],
            )
            .await?;
            versioned(transaction, touched, "customers", customer.id.0, "customer").await?;
            pending.customer_changed(customer.id.0);
        }
        Mutation::InsertIdentity(identity) => {
            insert_identity(transaction, &identity).await?;
            pending.customer_changed(identity.customer_id.0);
        }
        Mutation::DeleteIdentity(id) => {
            let statement = transaction
                .prepare_cached(
                    "DELETE FROM customer_identities WHERE id = $1 RETURNING customer_id",
                )
                .await
                .map_err(map_error)?;
            let owner = transaction
                .query_opt(&statement, &[&id.0])
                .await
                .map_err(map_error)?
                .ok_or(StoreError::NotFound { what: "identity" })?;
            pending.customer_changed(owner.try_get("customer_id").map_err(StoreError::database)?);
        }
        Mutation::MoveIdentities { identity_ids, to } => {
            let ids = uuids(&identity_ids, |id| id.0);
            // The previous owners lose these identities from their documents; locked first so
            // an identity moved concurrently is seen with its latest owner.
            let statement = transaction
                .prepare_cached(
                    "SELECT customer_id FROM customer_identities WHERE id = ANY($1) \
                     ORDER BY id FOR NO KEY UPDATE",
                )
                .await
                .map_err(map_error)?;
            for row in transaction
                .query(&statement, &[&ids])
                .await
                .map_err(map_error)?
            {
                pending.customer_changed(row.try_get("customer_id").map_err(StoreError::database)?);
            }
            execute(
                transaction,
                "UPDATE customer_identities SET customer_id = $2 WHERE id = ANY($1)",
                &[&ids, &to.0],
            )
            .await?;
            pending.customer_changed(to.0);
        }
        Mutation::MoveTickets { ticket_ids, to, at } => {
            let ids = uuids(&ticket_ids, |id| id.0);
            // Only the update time matters to the counters (its day); locked so the state the
            // count moves from is the stored one.
            for before in derived::lock_tickets(transaction, &ids).await? {
                let after = StoredTicket {
                    updated_at: at,
                    ..before.clone()
                };
                pending.ticket_moved(&before, &after);
            }
            // Moving changes the ticket, so its version moves on too: an agent editing it
            // concurrently gets a VersionConflict instead of silently moving it back.
            execute(
                transaction,
                "UPDATE tickets SET customer_id = $2, updated_at = $3, version = version + 1 \
                 WHERE id = ANY($1)",
                &[&ids, &to.0, &to_micros(at)],
            )
            .await?;
        }
        Mutation::InsertCustomerMerge(merge) => {
            execute(
                transaction,
                "INSERT INTO customer_merges (id, source_id, target_id, moved_identity_ids, \
                 moved_ticket_ids, merged_by, merged_at, undone_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &merge.id.0,
                    &merge.source_id.0,
                    &merge.target_id.0,
                    &uuid_json(uuids(&merge.moved_identity_ids, |id| id.0)),
                    &uuid_json(uuids(&merge.moved_ticket_ids, |id| id.0)),
                    &merge.merged_by.map(|id| id.0),
                    &to_micros(merge.merged_at),
                    &merge.undone_at.map(to_micros),
                ],
            )
            .await?;
        }
        Mutation::MarkCustomerMergeUndone { id, at } => {
            let touched = execute(
                transaction,
                "UPDATE customer_merges SET undone_at = $2 WHERE id = $1",
                &[&id.0, &to_micros(at)],
            )
            .await?;
            expect_row(touched, "customer merge")?;
        }
        Mutation::InsertAgent {
            agent,
            password_hash,
        } => {
            execute(
                transaction,
                "INSERT INTO agents (id, email, name, role, active, password_hash, created_at, \
                 updated_at, version, locale) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &agent.id.0,
                    &agent.email,
                    &agent.name,
                    &agent.role.as_str(),
                    &agent.active,
                    &password_hash,
                    &to_micros(agent.created_at),
                    &to_micros(agent.updated_at),
                    &agent.version,
                    &agent.locale,
                ],
            )
            .await?;
            set_agent_teams(
                transaction,
                agent.id.0,
                &uuids(&agent.team_ids, |id| id.0),
                false,
            )
            .await?;
        }
        Mutation::UpdateAgent {
            agent,
            expected_version,
        } => {
            // The e-mail is saved too (as on SQLite), so a changed address is kept and a taken one
            // is a Conflict on `agents.email`.
            let touched = execute(
                transaction,
                "UPDATE agents SET name = $3, role = $4, active = $5, updated_at = $6, \
                 email = $7, version = $2::bigint + 1 WHERE id = $1 AND version = $2::bigint",
                &[
                    &agent.id.0,
                    &expected_version,
                    &agent.name,
                    &agent.role.as_str(),
                    &agent.active,
                    &to_micros(agent.updated_at),
                    &agent.email,
                ],
            )
            .await?;
            versioned(transaction, touched, "agents", agent.id.0, "agent").await?;
            set_agent_teams(
                transaction,
                agent.id.0,
                &uuids(&agent.team_ids, |id| id.0),
                true,
            )
            .await?;
        }
        Mutation::SetPasswordHash {
            agent_id,
            password_hash,
        } => {
            let touched = execute(
                transaction,
                "UPDATE agents SET password_hash = $2 WHERE id = $1",
                &[&agent_id.0, &password_hash],
            )
            .await?;
            expect_row(touched, "agent")?;
        }
        Mutation::InsertTeam(team) => {
            execute(
                transaction,
                "INSERT INTO teams (id, name, created_at) VALUES ($1, $2, $3)",
                &[&team.id.0, &team.name, &to_micros(team.created_at)],
            )
            .await?;
        }
        Mutation::UpdateTeam(team) => {
            let touched = execute(
                transaction,
                "UPDATE teams SET name = $2 WHERE id = $1",
                &[&team.id.0, &team.name],
            )
            .await?;
            expect_row(touched, "team")?;
        }
        Mutation::DeleteTeam(id) => {
            // Lock the team first: a unit routing a ticket to it concurrently (its foreign-key
            // check) either committed before, and its ticket is unrouted below, or waits and then
            // finds the team gone.
            let locked = execute(
                transaction,
                "SELECT 1 FROM teams WHERE id = $1 FOR UPDATE",
                &[&id.0],
            )
            .await?;
            expect_row(locked, "team")?;
            for before in derived::unroute_team(transaction, id.0).await? {
                let after = StoredTicket {
                    team_id: None,
                    ..before.clone()
                };
                pending.ticket_moved(&before, &after);
            }
            // The schema does the rest: merged tickets' team_id is SET NULL, agent_teams rows
            // CASCADE. Their search documents are written again at the end of the unit, with no
            // team among who may see them.
            for merged in derived::tickets_of_team(transaction, id.0).await? {
                pending.visibility_changed(merged);
            }
            let touched = execute(transaction, "DELETE FROM teams WHERE id = $1", &[&id.0]).await?;
            expect_row(touched, "team")?;
        }
        Mutation::InsertTag(tag) => {
            execute(
                transaction,
                "INSERT INTO tags (id, name, created_at) VALUES ($1, $2, $3)",
                &[&tag.id.0, &tag.name, &to_micros(tag.created_at)],
            )
            .await?;
        }
        Mutation::DeleteTag(id) => {
            // ticket_tags rows go with it (ON DELETE CASCADE).
            let touched = execute(transaction, "DELETE FROM tags WHERE id = $1", &[&id.0]).await?;
            expect_row(touched, "tag")?;
        }
        Mutation::InsertToken(token) => {
            execute(
                transaction,
                "INSERT INTO api_tokens (id, agent_id, name, prefix, token_hash, scopes, \
                 created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                &[
                    &token.id.0,
                    &token.agent_id.0,
                    &token.name,
                    &token.prefix,
                    &token.token_hash,
                    &scopes_text(&token.scopes),
                    &to_micros(token.created_at),
                    &token.expires_at.map(to_micros),
                    &token.revoked_at.map(to_micros),
                ],
            )
            .await?;
        }
        Mutation::RevokeToken { id, at } => {
            // Revoking twice keeps the first time: that is when the token stopped working.
            let touched = execute(
                transaction,
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                &[&id.0, &to_micros(at)],
            )
            .await?;
            expect_row(touched, "token")?;
        }
        Mutation::InsertSession(session) => {
            execute(
                transaction,
                "INSERT INTO sessions (id_hash, agent_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
                &[
                    &session.id_hash,
                    &session.agent_id.0,
                    &to_micros(session.created_at),
                    &to_micros(session.expires_at),
                ],
            )
            .await?;
        }
        Mutation::DeleteSession { id_hash } => {
            // Signing out twice is not an error.
            execute(
                transaction,
                "DELETE FROM sessions WHERE id_hash = $1",
                &[&id_hash],
            )
            .await?;
        }
        Mutation::DeleteAgentSessions { agent_id } => {
            execute(
                transaction,
                "DELETE FROM sessions WHERE agent_id = $1",
                &[&agent_id.0],
            )
            .await?;
        }
        Mutation::InsertSetupToken(setup) => {
            execute(
                transaction,
                "INSERT INTO setup_tokens (token_hash, created_at, expires_at, used_at) \
                 VALUES ($1, $2, $3, $4)",
                &[
                    &setup.token_hash,
                    &to_micros(setup.created_at),
                    &to_micros(setup.expires_at),
                    &setup.used_at.map(to_micros),
                ],
            )
            .await?;
        }
        Mutation::ConsumeSetupToken { token_hash, at } => {
            // One statement tests and sets: of two racing set-ups, the second waits for the
            // first's row lock, then re-checks `used_at IS NULL` and touches nothing.
            let touched = execute(
                transaction,
                "UPDATE setup_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
                &[&token_hash, &to_micros(at)],
            )
            .await?;
            if touched == 0 {
                return Err(StoreError::Conflict {
                    constraint: "setup_tokens.used".into(),
                });
            }
        }
        Mutation::ClaimIdempotencyKey(record) => {
            execute(
                transaction,
                "INSERT INTO idempotency_keys (principal, key, fingerprint, resource_kind, \
                 resource_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &record.principal,
                    &record.key,
                    &record.fingerprint,
                    &record.resource_kind,
                    &record.resource_id,
                    &to_micros(record.created_at),
                ],
            )
            .await?;
        }
        Mutation::InsertMailbox(mailbox) => email::insert_mailbox(transaction, &mailbox).await?,
        Mutation::UpdateMailbox(mailbox) => email::update_mailbox(transaction, &mailbox).await?,
        Mutation::SaveImapCursor(cursor) => email::save_imap_cursor(transaction, &cursor).await?,
        Mutation::InsertEmail(record) => email::insert_email(transaction, &record).await?,
        Mutation::UpdateEmail(record) => email::update_email(transaction, &record).await?,
        Mutation::ClaimDueEmails {
            now,
            lease_until,
            limit,
        } => {
            let claimed = email::claim_due_emails(transaction, now, lease_until, limit).await?;
            receipt.claimed_emails.extend(claimed);
        }
        Mutation::InsertInstanceSecret { name, secret } => {
            email::insert_instance_secret(transaction, &name, &secret).await?;
        }
        Mutation::AcquireLease {
            name,
            holder,
            now,
            until,
        } => email::acquire_lease(transaction, &name, &holder, now, until).await?,
        Mutation::ReleaseLease { name, holder } => {
            email::release_lease(transaction, &name, &holder).await?;
        }
        Mutation::InsertChatSite(site) => chat::insert_chat_site(transaction, &site).await?,
        Mutation::UpdateChatSite {
            site,
            expected_version,
        } => chat::update_chat_site(transaction, &site, expected_version).await?,
        Mutation::InsertVisitor(visitor) => chat::insert_visitor(transaction, &visitor).await?,
        Mutation::InsertVisitorToken {
            token_hash,
            visitor_id,
            created_at,
        } => chat::insert_visitor_token(transaction, &token_hash, visitor_id, created_at).await?,
        Mutation::InsertChat(record) => chat::insert_chat(transaction, &record).await?,
        Mutation::UpdateChat {
            chat: record,
            expected_version,
        } => chat::update_chat(transaction, &record, expected_version).await?,
        Mutation::InsertChatEntry(entry) => chat::insert_chat_entry(transaction, &entry).await?,
        Mutation::SetAgentChatStatus(status) => {
            chat::set_agent_chat_status(transaction, &status).await?;
        }
        Mutation::ReserveChatSlot { agent_id, at } => {
            chat::reserve_chat_slot(transaction, agent_id, at).await?;
        }
        Mutation::ReleaseChatSlot { agent_id } => {
            chat::release_chat_slot(transaction, agent_id).await?;
        }
        Mutation::InsertView(view) => {
            let definition = serde_json::to_value(&view.filter).map_err(StoreError::database)?;
            execute(
                transaction,
                "INSERT INTO views (id, name, owner_agent_id, definition, position, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &view.id.0,
                    &view.name,
                    &view.owner_agent_id.map(|id| id.0),
                    &definition,
                    &view.position,
                    &to_micros(view.created_at),
                ],
            )
            .await?;
        }
        Mutation::DeleteView(id) => {
            let touched = execute(transaction, "DELETE FROM views WHERE id = $1", &[&id.0]).await?;
            expect_row(touched, "view")?;
        }
        // PostgreSQL keeps its indexes through an import: other nodes may be serving from the
        // same database, and dropping an index takes a lock that would stall them. Nor would it
        // be faster: the demo's 100,000 tickets took 26.7 s with every index, and 16.5 s without
        // the secondary ones plus 11.2 s to build them after (the two full-text GIN indexes
        // alone 8.2 s, `maintenance_work_mem` 512 MB).
        Mutation::BeginBulkImport => {}
        Mutation::EndBulkImport => analyze_imported_tables(transaction).await?,
        Mutation::RebuildDerivedData => {
            derived::rebuild(transaction).await?;
            // What earlier mutations of this unit recorded is in the tables the rebuild read.
            pending.clear();
        }
        Mutation::Audit(event) => {
            execute(
                transaction,
                "INSERT INTO audit_events (id, at, actor_agent_id, action, object_kind, \
                 object_id, changes) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &event.id.0,
                    &to_micros(event.at),
                    &event.actor.agent_id().map(|id| id.0),
                    &event.action,
                    &event.object_kind,
                    &event.object_id,
                    &event.changes_json(),
                ],
            )
            .await?;
        }
        Mutation::SetAgentLocale { agent_id, locale } => {
            let touched = execute(
                transaction,
                "UPDATE agents SET locale = $2 WHERE id = $1",
                &[&agent_id.0, &locale],
            )
            .await?;
            expect_row(touched, "agent")?;
        }
        Mutation::InsertPasswordResetToken(reset) => {
            execute(
                transaction,
                "UPDATE password_reset_tokens SET used_at = $2 \
                 WHERE agent_id = $1 AND used_at IS NULL",
                &[&reset.agent_id.0, &to_micros(reset.created_at)],
            )
            .await?;
            execute(
                transaction,
                "INSERT INTO password_reset_tokens (token_hash, agent_id, created_at, expires_at, \
                 used_at) VALUES ($1, $2, $3, $4, $5)",
                &[
                    &reset.token_hash,
                    &reset.agent_id.0,
                    &to_micros(reset.created_at),
                    &to_micros(reset.expires_at),
                    &reset.used_at.map(to_micros),
                ],
            )
            .await?;
        }
        Mutation::ConsumePasswordResetToken { token_hash, at } => {
            // One statement tests and sets: of two racing uses, the second waits for the first's
            // row lock, then re-checks `used_at IS NULL` and touches nothing.
            let touched = execute(
                transaction,
                "UPDATE password_reset_tokens SET used_at = $2 \
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
                &[&token_hash, &to_micros(at)],
            )
            .await?;
            if touched == 0 {
                return Err(StoreError::Conflict {
                    constraint: "password_reset_tokens.used".into(),
                });
            }
        }
        Mutation::SaveSetting { name, value, at } => match value {
            Some(value) => {
                execute(
                    transaction,
                    "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, \
                     updated_at = EXCLUDED.updated_at",
                    &[&name, &value, &to_micros(at)],
                )
                .await?;
            }
            None => {
                execute(
                    transaction,
                    "DELETE FROM settings WHERE name = $1",
                    &[&name],
                )
                .await?;
            }
        },
    }
    Ok(())
}

async fn insert_identity(
    transaction: &Transaction<'_>,
    identity: &otklik_domain::customer::Identity,
) -> StoreResult<()> {
    execute(
        transaction,
        "INSERT INTO customer_identities (id, customer_id, kind, provider, value, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &identity.id.0,
            &identity.customer_id.0,
            &identity.value.kind.as_str(),
            &identity.value.provider,
            &identity.value.value,
            &to_micros(identity.created_at),
        ],
    )
    .await?;
    Ok(())
}
