//! The query side: every read of the port, each on one pooled connection.
//!
//! Child rows (a ticket's tags, a customer's identities, an agent's teams, a message's
//! attachments) are loaded for a whole page with ONE extra query keyed by `= ANY($1)`, never one
//! query per parent row. Names are ordered with `COLLATE "C"` (byte order): that is SQLite's
//! default collation and Rust's `String` order, so both backends list the same names in the same
//! order whatever locale the PostgreSQL cluster was created with.

use std::collections::HashMap;

use otklik_domain::agent::{Agent, Tag, Team};
use otklik_domain::attachment::AttachmentMeta;
use otklik_domain::audit::StoredAuditEvent;
use otklik_domain::clock::to_micros;
use otklik_domain::customer::{Customer, CustomerMerge, IdentityValue};
use otklik_domain::ids::{
    AgentId, AttachmentId, CustomerId, CustomerMergeId, TagId, TeamId, TicketId, ViewId,
};
use otklik_domain::message::Message;
use otklik_domain::ticket::Ticket;
use otklik_domain::view::SavedView;
use otklik_store::count_cache::CountCache;
use otklik_store::derived::CountPlan;
use otklik_store::{
    ApiTokenRecord, AssigneeFilter, CustomerQuery, IdPage, IdempotencyRecord, MAX_PAGE_SIZE,
    PasswordResetRecord, RANKED_MATCHES, SessionRecord, SetupTokenRecord, SortedTicketCursor,
    SortedTicketQuery, StoreResult, TeamFilter, TicketCountQuery, TicketFilter, TicketQuery,
    TicketSort, TicketSortKey, Visibility,
};
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use crate::Client;
use crate::error::map_error;
use crate::rows::{self, get};

/// Runs a fixed query through the connection's statement cache (one round trip instead of a
/// prepare and an execute on every call).
pub(crate) async fn query(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<Vec<Row>> {
    let statement = client.prepare_cached(sql).await.map_err(map_error)?;
    client.query(&statement, params).await.map_err(map_error)
}

pub(crate) async fn query_opt(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> StoreResult<Option<Row>> {
    let statement = client.prepare_cached(sql).await.map_err(map_error)?;
    client
        .query_opt(&statement, params)
        .await
        .map_err(map_error)
}

/// Maps every row, stopping at the first that does not convert.
pub(crate) fn map_rows<T>(
    rows: &[Row],
    map: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    rows.iter().map(map).collect()
}

/// A page size the database may be asked for: at least one row, at most [`MAX_PAGE_SIZE`].
pub(crate) fn page_limit(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE_SIZE))
}

/// Numbered parameters for a query whose WHERE clause is built at run time. Values are only ever
/// bound, never written into the SQL text. Each value carries its PostgreSQL type, so a statement
/// built for one use can be sent with its values in one round trip ([`query_once`]).
#[derive(Default)]
pub(crate) struct Params {
    values: Vec<(Box<dyn ToSql + Sync + Send>, Type)>,
}

impl Params {
    /// Binds a value and returns its placeholder (`$1`, `$2`, …).
    pub(crate) fn bind<T: BindValue>(&mut self, value: T) -> String {
        self.values.push((Box::new(value), T::TYPE));
        format!("${}", self.values.len())
    }

    pub(crate) fn as_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|(value, _)| &**value as &(dyn ToSql + Sync))
            .collect()
    }

    fn typed(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.values
            .iter()
            .map(|(value, sql_type)| (&**value as &(dyn ToSql + Sync), sql_type.clone()))
            .collect()
    }
}

/// A value [`Params`] can bind, with the PostgreSQL type it is sent as.
pub(crate) trait BindValue: ToSql + Sync + Send + 'static {
    const TYPE: Type;
}

impl BindValue for Uuid {
    const TYPE: Type = Type::UUID;
}
impl BindValue for Vec<Uuid> {
    const TYPE: Type = Type::UUID_ARRAY;
}
impl BindValue for i32 {
    const TYPE: Type = Type::INT4;
}
impl BindValue for i64 {
    const TYPE: Type = Type::INT8;
}
impl BindValue for String {
    const TYPE: Type = Type::TEXT;
}
impl BindValue for Vec<&'static str> {
    const TYPE: Type = Type::TEXT_ARRAY;
}

/// Runs a statement built for this one call (its text varies with the filters, or its plan must
/// follow the values) in one round trip: parsed, planned with the values and run together,
/// instead of a prepare round trip before the run. Not through the statement cache, which would
/// grow with every combination of filters, and whose statements may switch to a generic plan.
pub(crate) async fn query_once(
    client: &Client,
    sql: &str,
    params: &Params,
) -> StoreResult<Vec<Row>> {
    client
        .query_typed(sql, &params.typed())
        .await
        .map_err(map_error)
}

/// Runs a statement of a few shapes whose plan does not follow its values through the
/// connection's statement cache, with its parameters' types as `params` binds them: parsed and
/// planned once per connection and shape instead of on every call.
pub(crate) async fn query_cached(
    client: &Client,
    sql: &str,
    params: &Params,
) -> StoreResult<Vec<Row>> {
    let types: Vec<Type> = params
        .values
        .iter()
        .map(|(_, sql_type)| sql_type.clone())
        .collect();
    let statement = client
        .prepare_typed_cached(sql, &types)
        .await
        .map_err(map_error)?;
    client
        .query(&statement, &params.as_refs())
        .await
        .map_err(map_error)
}

/// `WHERE a AND b …`, or nothing when there is no condition.
pub(crate) fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    }
}

// Tickets and messages.

/// Fills in the tags of a page of tickets with one query. For a page that costs the database less
/// than a tag subquery per ticket (measured); one ticket comes with its tags instead
/// ([`tagged_ticket_columns`]).
pub(crate) async fn load_tags(client: &Client, tickets: &mut [Ticket]) -> StoreResult<()> {
    if tickets.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = tickets.iter().map(|ticket| ticket.id.0).collect();
    let rows = query(
        client,
        r#"SELECT tt.ticket_id, g.name FROM ticket_tags tt JOIN tags g ON g.id = tt.tag_id
           WHERE tt.ticket_id = ANY($1) ORDER BY g.name COLLATE "C""#,
        &[&ids],
    )
    .await?;
    let mut by_ticket: HashMap<Uuid, Vec<String>> = HashMap::new();
    for row in &rows {
        by_ticket
            .entry(get(row, "ticket_id")?)
            .or_default()
            .push(get(row, "name")?);
    }
    for ticket in tickets {
        ticket.tags = by_ticket.remove(&ticket.id.0).unwrap_or_default();
    }
    Ok(())
}

/// A ticket's columns from `tickets t`, then its tag names in byte order as `tag_names`, so
/// one statement reads a ticket whole instead of a second round trip for its tags.
pub(crate) fn tagged_ticket_columns() -> String {
    format!(
        "{}, ARRAY(SELECT g.name FROM ticket_tags tt JOIN tags g ON g.id = tt.tag_id \
         WHERE tt.ticket_id = t.id ORDER BY g.name COLLATE \"C\") AS tag_names",
        ticket_columns()
    )
}

async fn find_ticket_where(
    client: &Client,
    column: &str,
    key: &(dyn ToSql + Sync),
) -> StoreResult<Option<Ticket>> {
    let sql = format!(
        "SELECT {} FROM tickets t WHERE t.{column} = $1",
        tagged_ticket_columns()
    );
    query_opt(client, &sql, &[key])
        .await?
        .as_ref()
        .map(rows::tagged_ticket)
        .transpose()
}

pub(crate) async fn find_ticket(client: &Client, id: TicketId) -> StoreResult<Option<Ticket>> {
    find_ticket_where(client, "id", &id.0).await
}

pub(crate) async fn find_ticket_by_number(
    client: &Client,
    number: i64,
) -> StoreResult<Option<Ticket>> {
    find_ticket_where(client, "number", &number).await
}

/// SQL conditions on tickets `t` for a filter and a visibility (shared by lists and searches),
/// with their values bound in `params`.
pub(crate) fn ticket_conditions(
    filter: &TicketFilter,
    visibility: &Visibility,
    params: &mut Params,
) -> Vec<String> {
    let mut conditions = Vec::new();
    // Visibility is part of the query, so a page never counts or returns a hidden ticket.
    if let Visibility::Agent { agent_id, team_ids } = visibility {
        let team_ids: Vec<Uuid> = team_ids.iter().map(|team_id| team_id.0).collect();
        conditions.push(format!(
            "(t.team_id IS NULL OR t.team_id = ANY({}) OR t.assignee_id = {})",
            params.bind(team_ids),
            params.bind(agent_id.0)
        ));
    }
    if !filter.statuses.is_empty() {
        let statuses: Vec<&'static str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        conditions.push(format!("t.status = ANY({})", params.bind(statuses)));
    }
    if !filter.priorities.is_empty() {
        let priorities: Vec<&'static str> = filter.priorities.iter().map(|p| p.as_str()).collect();
        conditions.push(format!("t.priority = ANY({})", params.bind(priorities)));
    }
    if !filter.channels.is_empty() {
        let channels: Vec<&'static str> = filter.channels.iter().map(|c| c.as_str()).collect();
        conditions.push(format!("t.channel = ANY({})", params.bind(channels)));
    }
    match filter.assignee {
        None => {}
        Some(AssigneeFilter::Unassigned) => conditions.push("t.assignee_id IS NULL".into()),
        Some(AssigneeFilter::Agent(agent_id)) => {
            conditions.push(format!("t.assignee_id = {}", params.bind(agent_id.0)));
        }
    }
    match filter.team {
        None => {}
        Some(TeamFilter::NoTeam) => conditions.push("t.team_id IS NULL".into()),
        Some(TeamFilter::Team(team_id)) => {
            conditions.push(format!("t.team_id = {}", params.bind(team_id.0)));
        }
    }
    if let Some(tag) = &filter.tag {
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM ticket_tags tt JOIN tags g ON g.id = tt.tag_id \
             WHERE tt.ticket_id = t.id AND g.name = {})",
            params.bind(tag.clone())
        ));
    }
    if let Some(customer_id) = filter.customer_id {
        conditions.push(format!("t.customer_id = {}", params.bind(customer_id.0)));
    }
    if let Some(since) = filter.updated_since {
        conditions.push(format!("t.updated_at >= {}", params.bind(to_micros(since))));
    }
    if let Some(before) = filter.updated_before {
        conditions.push(format!("t.updated_at < {}", params.bind(to_micros(before))));
    }
    if !filter.include_merged {
        conditions.push("t.merged_into IS NULL".into());
    }
    conditions
}

/// The ticket columns, qualified with the alias `t`.
pub(crate) fn ticket_columns() -> String {
    rows::TICKET_COLUMNS
        .split(", ")
        .map(|column| format!("t.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn list_tickets(client: &Client, query: &TicketQuery) -> StoreResult<Vec<Ticket>> {
    let sorted = SortedTicketQuery {
        filter: query.filter.clone(),
        visibility: query.visibility.clone(),
        sort: TicketSort::default(),
        after: query.after.map(|cursor| SortedTicketCursor {
            key: to_micros(cursor.updated_at),
            id: cursor.id,
        }),
        limit: query.limit,
    };
    list_tickets_sorted(client, &sorted).await
}

/// The urgency of `t.priority` as a number: the very expression the `tickets_by_priority`
/// indexes of migration V6 are built on, so PostgreSQL walks them instead of sorting.
const PRIORITY_RANK: &str = "(CASE t.priority WHEN 'low' THEN 0 WHEN 'normal' THEN 1 \
     WHEN 'high' THEN 2 WHEN 'urgent' THEN 3 ELSE 1 END)";

pub(crate) async fn list_tickets_sorted(
    client: &Client,
    query: &SortedTicketQuery,
) -> StoreResult<Vec<Ticket>> {
    let mut params = Params::default();
    let mut conditions = ticket_conditions(&query.filter, &query.visibility, &mut params);
    let key = match query.sort.key {
        TicketSortKey::Updated => "t.updated_at",
        TicketSortKey::Created => "t.created_at",
        TicketSortKey::Priority => PRIORITY_RANK,
        TicketSortKey::Number => "t.number",
    };
    let (direction, beyond) = if query.sort.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    // Numbers are unique: the number alone orders and pages; every other key is tied by id.
    // Keyset pagination: a row comparison matches the ORDER BY exactly, so a page starts right
    // after the cursor even when many tickets share one key value.
    let unique_key = query.sort.key == TicketSortKey::Number;
    if let Some(after) = query.after {
        if unique_key {
            conditions.push(format!("{key} {beyond} {}", params.bind(after.key)));
        } else {
            // The rank is an `integer` expression: its parameter must be an i32, not a bigint.
            let key_param = if query.sort.key == TicketSortKey::Priority {
                params.bind(i32::try_from(after.key).unwrap_or(i32::MAX))
            } else {
                params.bind(after.key)
            };
            conditions.push(format!(
                "({key}, t.id) {beyond} ({key_param}, {})",
                params.bind(after.id.0)
            ));
        }
    }
    let order = if unique_key {
        format!("{key} {direction}")
    } else {
        format!("{key} {direction}, t.id {direction}")
    };
    let sql = format!(
        "SELECT {} FROM tickets t {} ORDER BY {order} LIMIT {}",
        ticket_columns(),
        where_clause(&conditions),
        params.bind(page_limit(query.limit))
    );
    let rows = query_once(client, &sql, &params).await?;
    let mut tickets = map_rows(&rows, rows::ticket)?;
    load_tags(client, &mut tickets).await?;
    Ok(tickets)
}

/// Messages of several tickets, oldest first, without attachments (for search snippets).
pub(crate) async fn list_messages_of(
    client: &Client,
    ticket_ids: &[TicketId],
) -> StoreResult<Vec<Message>> {
    if ticket_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = ticket_ids.iter().map(|id| id.0).collect();
    let sql = format!(
        "SELECT {} FROM messages WHERE ticket_id = ANY($1) ORDER BY created_at, id",
        rows::MESSAGE_COLUMNS
    );
    let rows = query(client, &sql, &[&ids]).await?;
    map_rows(&rows, rows::message)
}

/// Counts through the node's `cache` (see [`otklik_store::count_cache`]): one small read of the
/// counters' version, and when any count is not kept for it, the missing counts summed in one
/// statement that reads the version in the same snapshot; when that version is not the one the
/// kept counts belong to, every count of the page is summed again, so a page of views is never a
/// mix of two moments. Requests for the same page that miss together sum it once.
pub(crate) async fn count_tickets_through(
    client: &Client,
    cache: &CountCache,
    queries: &[TicketCountQuery],
) -> StoreResult<Vec<i64>> {
    if queries.is_empty() {
        return Ok(Vec::new());
    }
    let kept = |version| {
        cache
            .get(version, queries)
            .into_iter()
            .collect::<Option<Vec<i64>>>()
    };
    let mut version = count_version(client).await?;
    if let Some(kept) = kept(version) {
        return Ok(kept);
    }
    // Requests for this page that missed together sum it once (see `CountCache::recount_turn`):
    // the one that had the turn before may have kept it at this very version; one that waited
    // also reads the version again, in a snapshot newer than its first.
    let turn = cache.recount_turn(queries).await;
    if let Some(kept) = kept(version) {
        return Ok(kept);
    }
    if turn.waited {
        version = count_version(client).await?;
        if let Some(kept) = kept(version) {
            return Ok(kept);
        }
    }
    // Only what is not kept is summed (other pages share most views), in a statement that reads
    // the version too: if the counters moved since, the whole page is summed again instead.
    let known = cache.get(version, queries);
    let missing: Vec<TicketCountQuery> = queries
        .iter()
        .zip(&known)
        .filter(|(_, kept)| kept.is_none())
        .map(|(query, _)| query.clone())
        .collect();
    if missing.len() < queries.len() {
        let (summed_at, summed) = count_tickets_many(client, &missing).await?;
        if summed_at == version {
            cache.put(version, missing.into_iter().zip(summed.iter().copied()));
            let mut summed = summed.into_iter();
            // One sum per missing count, in order: a count short is a broken statement, not 0.
            return known
                .into_iter()
                .map(|kept| {
                    kept.or_else(|| summed.next()).ok_or_else(|| {
                        otklik_store::StoreError::corrupt(
                            "a count statement returned too few counts",
                        )
                    })
                })
                .collect();
        }
    }
    let (version, counts) = count_tickets_many(client, queries).await?;
    cache.put(version, queries.iter().cloned().zip(counts.iter().copied()));
    Ok(counts)
}

/// The counters' version in a snapshot of its own.
async fn count_version(client: &Client) -> StoreResult<i64> {
    let rows = query(client, &format!("SELECT {COUNT_VERSION}"), &[]).await?;
    match rows.first() {
        Some(row) => row
            .try_get::<_, i64>(0)
            .map_err(otklik_store::StoreError::database),
        None => Err(otklik_store::StoreError::corrupt("no counters' version")),
    }
}

/// The counters' version: the sum of its shards (V13).
const COUNT_VERSION: &str = "(SELECT coalesce(sum(version), 0)::bigint FROM count_versions)";

/// The counters' version and the sum of the maintained counters matching each count query
/// (never a scan of tickets), in one statement and one round trip:
/// `SELECT version, (count 0) AS n0, (count 1) AS n1, …`. Plain counts come from
/// `ticket_counts`; idle-days counts are the plain count of waiting work minus its most recent
/// days in `ticket_counters` (see [`CountPlan`]).
async fn count_tickets_many(
    client: &Client,
    queries: &[TicketCountQuery],
) -> StoreResult<(i64, Vec<i64>)> {
    let mut params = Params::default();
    let mut columns = vec![format!("{COUNT_VERSION} AS version")];
    columns.extend(queries.iter().enumerate().map(|(index, query)| {
        let expression =
            count_expression(query, &mut params).unwrap_or_else(|| "0::bigint".to_owned());
        format!("{expression} AS n{index}")
    }));
    // Few shapes (one per combination of filters a page of views can have): cached.
    let sql = format!("SELECT {}", columns.join(", "));
    let rows = self::query(client, &sql, &params.as_refs()).await?;
    let row = rows
        .first()
        .ok_or_else(|| otklik_store::StoreError::corrupt("a count returned no row"))?;
    let value = |index: usize| {
        row.try_get::<_, i64>(index)
            .map_err(otklik_store::StoreError::database)
    };
    let version = value(0)?;
    let counts = (1..=queries.len())
        .map(value)
        .collect::<StoreResult<Vec<i64>>>()?;
    Ok((version, counts))
}

/// The SQL expression of one count, binding its values into `params`; `None` when the query
/// can count nothing (see [`CountPlan`]).
fn count_expression(query: &TicketCountQuery, params: &mut Params) -> Option<String> {
    let statuses = match CountPlan::of(query) {
        CountPlan::Zero => return None,
        CountPlan::Plain { statuses } | CountPlan::Idle { statuses, .. } => statuses,
    };
    let key = |id: Option<Uuid>| id.unwrap_or(Uuid::nil());
    let mut conditions = Vec::new();
    if !statuses.is_empty() {
        let statuses: Vec<&'static str> = statuses.iter().map(|s| s.as_str()).collect();
        conditions.push(format!("status = ANY({})", params.bind(statuses)));
    }
    if !query.priorities.is_empty() {
        let priorities: Vec<&'static str> = query.priorities.iter().map(|p| p.as_str()).collect();
        conditions.push(format!("priority = ANY({})", params.bind(priorities)));
    }
    match query.assignee {
        None => {}
        Some(AssigneeFilter::Unassigned) => {
            conditions.push(format!("assignee_key = {}", params.bind(key(None))));
        }
        Some(AssigneeFilter::Agent(agent_id)) => {
            conditions.push(format!("assignee_key = {}", params.bind(agent_id.0)));
        }
    }
    match query.team {
        None => {}
        Some(TeamFilter::NoTeam) => {
            conditions.push(format!("team_key = {}", params.bind(key(None))));
        }
        Some(TeamFilter::Team(team_id)) => {
            conditions.push(format!("team_key = {}", params.bind(team_id.0)));
        }
    }
    if let Some((agent_id, team_ids)) = &query.visible_to {
        let team_ids: Vec<Uuid> = team_ids.iter().map(|team_id| team_id.0).collect();
        conditions.push(format!(
            "(team_key = {} OR team_key = ANY({}) OR assignee_key = {})",
            params.bind(key(None)),
            params.bind(team_ids),
            params.bind(agent_id.0)
        ));
    }
    let plain = format!(
        "SELECT coalesce(sum(n), 0)::bigint FROM ticket_counts {}",
        where_clause(&conditions)
    );
    Some(match query.max_day {
        None => format!("({plain})"),
        Some(max_day) => {
            // The days after `max_day` are few rows, read through `ticket_counters_by_day`.
            conditions.push(format!("day > {}", params.bind(max_day)));
            format!(
                "(({plain}) - (SELECT coalesce(sum(n), 0)::bigint FROM ticket_counters {}))",
                where_clause(&conditions)
            )
        }
    })
}

pub(crate) async fn list_messages(
    client: &Client,
    ticket_id: TicketId,
) -> StoreResult<Vec<Message>> {
    let sql = format!(
        "SELECT {} FROM messages WHERE ticket_id = $1 ORDER BY created_at, id",
        rows::MESSAGE_COLUMNS
    );
    let rows = query(client, &sql, &[&ticket_id.0]).await?;
    let mut messages = map_rows(&rows, rows::message)?;
    if messages.is_empty() {
        return Ok(messages);
    }
    let ids: Vec<Uuid> = messages.iter().map(|message| message.id.0).collect();
    let sql = format!(
        "SELECT {} FROM attachments WHERE message_id = ANY($1) ORDER BY id",
        rows::ATTACHMENT_COLUMNS
    );
    let rows = query(client, &sql, &[&ids]).await?;
    let mut by_message: HashMap<Uuid, Vec<AttachmentMeta>> = HashMap::new();
    for row in &rows {
        let attachment = rows::attachment(row)?;
        by_message
            .entry(attachment.message_id.0)
            .or_default()
            .push(attachment);
    }
    for message in &mut messages {
        message.attachments = by_message.remove(&message.id.0).unwrap_or_default();
    }
    Ok(messages)
}

pub(crate) async fn find_attachment(
    client: &Client,
    id: AttachmentId,
) -> StoreResult<Option<AttachmentMeta>> {
    let sql = format!(
        "SELECT {} FROM attachments WHERE id = $1",
        rows::ATTACHMENT_COLUMNS
    );
    query_opt(client, &sql, &[&id.0])
        .await?
        .as_ref()
        .map(rows::attachment)
        .transpose()
}

// Customers.

/// Fills in the identities of a page of customers with one query.
async fn load_identities(client: &Client, customers: &mut [Customer]) -> StoreResult<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = customers.iter().map(|customer| customer.id.0).collect();
    let sql = format!(
        "SELECT {} FROM customer_identities WHERE customer_id = ANY($1) ORDER BY created_at, id",
        rows::IDENTITY_COLUMNS
    );
    let rows = query(client, &sql, &[&ids]).await?;
    let mut by_customer: HashMap<Uuid, Vec<_>> = HashMap::new();
    for row in &rows {
        let identity = rows::identity(row)?;
        by_customer
            .entry(identity.customer_id.0)
            .or_default()
            .push(identity);
    }
    for customer in customers {
        customer.identities = by_customer.remove(&customer.id.0).unwrap_or_default();
    }
    Ok(())
}

async fn one_customer(client: &Client, row: Option<Row>) -> StoreResult<Option<Customer>> {
    let Some(row) = row else {
        return Ok(None);
    };
    let mut customers = [rows::customer(&row)?];
    load_identities(client, &mut customers).await?;
    let [customer] = customers;
    Ok(Some(customer))
}

pub(crate) async fn find_customer(
    client: &Client,
    id: CustomerId,
) -> StoreResult<Option<Customer>> {
    let sql = format!(
        "SELECT {} FROM customers WHERE id = $1",
        rows::CUSTOMER_COLUMNS
    );
    let row = query_opt(client, &sql, &[&id.0]).await?;
    one_customer(client, row).await
}

/// Customers by id in one statement (an array parameter, so one cached plan for any count).
pub(crate) async fn find_customers(
    client: &Client,
    ids: &[CustomerId],
) -> StoreResult<Vec<Customer>> {
    let mut ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    ids.sort();
    ids.dedup();
    let sql = format!(
        "SELECT {} FROM customers WHERE id = ANY($1)",
        rows::CUSTOMER_COLUMNS
    );
    let rows = query(client, &sql, &[&ids]).await?;
    let mut customers = map_rows(&rows, rows::customer)?;
    load_identities(client, &mut customers).await?;
    Ok(customers)
}

pub(crate) async fn find_customer_by_identity(
    client: &Client,
    identity: &IdentityValue,
) -> StoreResult<Option<Customer>> {
    let sql = format!(
        "SELECT {} FROM customers WHERE id = (SELECT customer_id FROM customer_identities \
         WHERE kind = $1 AND provider = $2 AND value = $3)",
        rows::CUSTOMER_COLUMNS
    );
    let params: [&(dyn ToSql + Sync); 3] =
        [&identity.kind.as_str(), &identity.provider, &identity.value];
    let row = query_opt(client, &sql, &params).await?;
    one_customer(client, row).await
}

pub(crate) async fn list_customers(
    client: &Client,
    query: &CustomerQuery,
) -> StoreResult<Vec<Customer>> {
    let mut params = Params::default();
    let mut conditions = Vec::new();
    if !query.include_merged {
        conditions.push("merged_into IS NULL".to_owned());
    }
    if let Some(after) = query.after {
        conditions.push(format!("id < {}", params.bind(after.0)));
    }
    let sql = format!(
        "SELECT {} FROM customers {} ORDER BY id DESC LIMIT {}",
        rows::CUSTOMER_COLUMNS,
        where_clause(&conditions),
        params.bind(page_limit(query.limit))
    );
    // Four possible texts: small enough for the statement cache.
    let rows = self::query(client, &sql, &params.as_refs()).await?;
    let mut customers = map_rows(&rows, rows::customer)?;
    load_identities(client, &mut customers).await?;
    Ok(customers)
}

/// Unmerged customers whose name or identities match, best first (ranked within the newest
/// [`RANKED_MATCHES`] matches, newest by id: ids are time-ordered).
pub(crate) async fn search_customers(
    client: &Client,
    query: &otklik_search::SearchQuery,
    limit: u32,
) -> StoreResult<Vec<Customer>> {
    // The newest RANKED_MATCHES matching customers that were not merged away, ranked in Rust
    // (`SearchQuery::score_record`) exactly as on SQLite; then the best page is read whole.
    // Planned with the query's values (see `query_once`): the right plan depends on how common
    // the searched words are.
    let mut params = Params::default();
    let sql = format!(
        "SELECT c.id, s.terms FROM customer_search s \
         JOIN customers c ON c.id = s.customer_id \
         WHERE s.document @@ {}::tsquery AND c.merged_into IS NULL \
         ORDER BY c.id DESC LIMIT {}",
        params.bind(query.to_tsquery()),
        params.bind(RANKED_MATCHES)
    );
    let rows = query_once(client, &sql, &params).await?;
    let scorer = query.scorer();
    let mut ranked: Vec<(f64, Uuid)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let terms: &str = get(row, "terms")?;
        ranked.push((scorer.score_record(terms), get(row, "id")?));
    }
    ranked.sort_by(otklik_search::rank_order);
    ranked.truncate(usize::try_from(page_limit(limit)).unwrap_or(1));
    if ranked.is_empty() {
        return Ok(Vec::new());
    }
    let best: Vec<CustomerId> = ranked.iter().map(|(_, id)| CustomerId(*id)).collect();
    let mut found: HashMap<Uuid, Customer> = find_customers(client, &best)
        .await?
        .into_iter()
        .map(|customer| (customer.id.0, customer))
        .collect();
    Ok(best.iter().filter_map(|id| found.remove(&id.0)).collect())
}

pub(crate) async fn list_customer_ticket_ids(
    client: &Client,
    customer_id: CustomerId,
) -> StoreResult<Vec<TicketId>> {
    let rows = query(
        client,
        "SELECT id FROM tickets WHERE customer_id = $1 ORDER BY id",
        &[&customer_id.0],
    )
    .await?;
    map_rows(&rows, |row| get(row, "id").map(TicketId))
}

pub(crate) async fn find_customer_merge(
    client: &Client,
    id: CustomerMergeId,
) -> StoreResult<Option<CustomerMerge>> {
    let sql = format!(
        "SELECT {} FROM customer_merges WHERE id = $1",
        rows::MERGE_COLUMNS
    );
    query_opt(client, &sql, &[&id.0])
        .await?
        .as_ref()
        .map(rows::customer_merge)
        .transpose()
}

pub(crate) async fn list_customer_merges(
    client: &Client,
    customer_id: CustomerId,
) -> StoreResult<Vec<CustomerMerge>> {
    let sql = format!(
        "SELECT {} FROM customer_merges WHERE source_id = $1 OR target_id = $1 \
         ORDER BY merged_at DESC, id DESC",
        rows::MERGE_COLUMNS
    );
    let rows = query(client, &sql, &[&customer_id.0]).await?;
    map_rows(&rows, rows::customer_merge)
}

// Staff.

/// Fills in the team ids of a page of agents with one query.
async fn find_agent_where(
    client: &Client,
    column: &str,
    key: &(dyn ToSql + Sync),
) -> StoreResult<Option<Agent>> {
    let sql = format!(
        "SELECT {} FROM agents WHERE {column} = $1",
        rows::AGENT_COLUMNS
    );
    query_opt(client, &sql, &[key])
        .await?
        .as_ref()
        .map(rows::agent)
        .transpose()
}

pub(crate) async fn find_agent(client: &Client, id: AgentId) -> StoreResult<Option<Agent>> {
    find_agent_where(client, "id", &id.0).await
}

pub(crate) async fn find_agent_by_email(
    client: &Client,
    email: &str,
) -> StoreResult<Option<Agent>> {
    find_agent_where(client, "email", &email).await
}

pub(crate) async fn list_agents(client: &Client, page: &IdPage) -> StoreResult<Vec<Agent>> {
    let mut params = Params::default();
    let condition = match page.after {
        Some(after) => format!("WHERE id > {}", params.bind(after)),
        None => String::new(),
    };
    let sql = format!(
        "SELECT {} FROM agents {condition} ORDER BY id LIMIT {}",
        rows::AGENT_COLUMNS,
        params.bind(page_limit(page.limit))
    );
    let rows = query(client, &sql, &params.as_refs()).await?;
    map_rows(&rows, rows::agent)
}

pub(crate) async fn count_agents(client: &Client) -> StoreResult<i64> {
    let rows = query(client, "SELECT count(*) AS n FROM agents", &[]).await?;
    rows.first().map_or(Ok(0), |row| get(row, "n"))
}

pub(crate) async fn find_password_hash(
    client: &Client,
    agent_id: AgentId,
) -> StoreResult<Option<String>> {
    let row = query_opt(
        client,
        "SELECT password_hash FROM agents WHERE id = $1",
        &[&agent_id.0],
    )
    .await?;
    Ok(row
        .as_ref()
        .map(|row| get::<Option<String>>(row, "password_hash"))
        .transpose()?
        .flatten())
}

pub(crate) async fn find_team(client: &Client, id: TeamId) -> StoreResult<Option<Team>> {
    let row = query_opt(
        client,
        "SELECT id, name, created_at FROM teams WHERE id = $1",
        &[&id.0],
    )
    .await?;
    row.as_ref().map(rows::team).transpose()
}

pub(crate) async fn list_teams(client: &Client) -> StoreResult<Vec<Team>> {
    let rows = query(
        client,
        r#"SELECT id, name, created_at FROM teams ORDER BY name COLLATE "C""#,
        &[],
    )
    .await?;
    map_rows(&rows, rows::team)
}

pub(crate) async fn find_tag(client: &Client, id: TagId) -> StoreResult<Option<Tag>> {
    let row = query_opt(
        client,
        "SELECT id, name, created_at FROM tags WHERE id = $1",
        &[&id.0],
    )
    .await?;
    row.as_ref().map(rows::tag).transpose()
}

pub(crate) async fn list_tags(client: &Client) -> StoreResult<Vec<Tag>> {
    let rows = query(
        client,
        r#"SELECT id, name, created_at FROM tags ORDER BY name COLLATE "C""#,
        &[],
    )
    .await?;
    map_rows(&rows, rows::tag)
}

// Credentials.

pub(crate) async fn find_token_by_hash(
    client: &Client,
    token_hash: &[u8],
) -> StoreResult<Option<ApiTokenRecord>> {
    let sql = format!(
        "SELECT {} FROM api_tokens WHERE token_hash = $1",
        rows::TOKEN_COLUMNS
    );
    query_opt(client, &sql, &[&token_hash])
        .await?
        .as_ref()
        .map(rows::token)
        .transpose()
}

pub(crate) async fn find_token_with_agent(
    client: &Client,
    token_hash: &[u8],
) -> StoreResult<Option<(ApiTokenRecord, Agent)>> {
    // One round trip for what every API request reads first. The agent's columns are renamed
    // `agent_…` (the token has its own id, name and created_at); its id is the token's agent_id.
    let sql = "SELECT t.id, t.agent_id, t.name, t.prefix, t.token_hash, t.scopes, t.created_at, \
         t.expires_at, t.revoked_at, agents.email AS agent_email, agents.name AS agent_name, \
         agents.role AS agent_role, agents.active AS agent_active, \
         agents.created_at AS agent_created_at, agents.updated_at AS agent_updated_at, \
         agents.version AS agent_version, agents.locale AS agent_locale, \
         ARRAY(SELECT team_id FROM agent_teams WHERE agent_teams.agent_id = agents.id \
         ORDER BY team_id) AS agent_team_ids \
         FROM api_tokens t JOIN agents ON agents.id = t.agent_id WHERE t.token_hash = $1";
    let Some(row) = query_opt(client, sql, &[&token_hash]).await? else {
        return Ok(None);
    };
    Ok(Some((
        rows::token(&row)?,
        rows::agent_named(&row, "agent_")?,
    )))
}

pub(crate) async fn list_tokens(
    client: &Client,
    agent_id: AgentId,
) -> StoreResult<Vec<ApiTokenRecord>> {
    let sql = format!(
        "SELECT {} FROM api_tokens WHERE agent_id = $1 ORDER BY created_at DESC, id DESC",
        rows::TOKEN_COLUMNS
    );
    let rows = query(client, &sql, &[&agent_id.0]).await?;
    map_rows(&rows, rows::token)
}

pub(crate) async fn find_session(
    client: &Client,
    id_hash: &[u8],
) -> StoreResult<Option<SessionRecord>> {
    let row = query_opt(
        client,
        "SELECT id_hash, agent_id, created_at, expires_at FROM sessions WHERE id_hash = $1",
        &[&id_hash],
    )
    .await?;
    row.as_ref().map(rows::session).transpose()
}

pub(crate) async fn find_setup_token(
    client: &Client,
    token_hash: &[u8],
) -> StoreResult<Option<SetupTokenRecord>> {
    let row = query_opt(
        client,
        "SELECT token_hash, created_at, expires_at, used_at FROM setup_tokens \
         WHERE token_hash = $1",
        &[&token_hash],
    )
    .await?;
    row.as_ref().map(rows::setup_token).transpose()
}

pub(crate) async fn find_idempotency_key(
    client: &Client,
    principal: &str,
    key: &str,
) -> StoreResult<Option<IdempotencyRecord>> {
    let row = query_opt(
        client,
        "SELECT principal, key, fingerprint, resource_kind, resource_id, created_at \
         FROM idempotency_keys WHERE principal = $1 AND key = $2",
        &[&principal, &key],
    )
    .await?;
    row.as_ref().map(rows::idempotency_record).transpose()
}

// Views.

pub(crate) async fn list_views(client: &Client, agent_id: AgentId) -> StoreResult<Vec<SavedView>> {
    let sql = format!(
        "SELECT {} FROM views WHERE owner_agent_id IS NULL OR owner_agent_id = $1 \
         ORDER BY position, created_at, id",
        rows::VIEW_COLUMNS
    );
    let rows = query(client, &sql, &[&agent_id.0]).await?;
    map_rows(&rows, rows::view)
}

pub(crate) async fn find_view(client: &Client, id: ViewId) -> StoreResult<Option<SavedView>> {
    let sql = format!("SELECT {} FROM views WHERE id = $1", rows::VIEW_COLUMNS);
    query_opt(client, &sql, &[&id.0])
        .await?
        .as_ref()
        .map(rows::view)
        .transpose()
}

// Audit.

pub(crate) async fn list_audit_events(
    client: &Client,
    object_id: Uuid,
) -> StoreResult<Vec<StoredAuditEvent>> {
    let sql = format!(
        "SELECT {} FROM audit_events WHERE object_id = $1 ORDER BY at, id",
        rows::AUDIT_COLUMNS
    );
    let rows = query(client, &sql, &[&object_id]).await?;
    map_rows(&rows, rows::audit_event)
}

pub(crate) async fn find_password_reset_token(
    client: &Client,
    token_hash: &[u8],
) -> StoreResult<Option<PasswordResetRecord>> {
    let row = query_opt(
        client,
        "SELECT token_hash, agent_id, created_at, expires_at, used_at \
         FROM password_reset_tokens WHERE token_hash = $1",
        &[&token_hash],
    )
    .await?;
    row.as_ref()
        .map(|row| {
            Ok(PasswordResetRecord {
                token_hash: get(row, "token_hash")?,
                agent_id: AgentId(get(row, "agent_id")?),
                created_at: rows::time(row, "created_at")?,
                expires_at: rows::time(row, "expires_at")?,
                used_at: rows::opt_time(row, "used_at")?,
            })
        })
        .transpose()
}

pub(crate) async fn count_password_reset_tokens_since(
    client: &Client,
    agent_id: AgentId,
    since: jiff::Timestamp,
) -> StoreResult<i64> {
    let rows = query(
        client,
        "SELECT count(*) AS n FROM password_reset_tokens \
         WHERE agent_id = $1 AND created_at >= $2",
        &[&agent_id.0, &to_micros(since)],
    )
    .await?;
    match rows.first() {
        Some(row) => get(row, "n"),
        None => Ok(0),
    }
}

pub(crate) async fn list_settings(client: &Client) -> StoreResult<Vec<(String, String)>> {
    let rows = query(
        client,
        "SELECT name, value FROM settings ORDER BY name COLLATE \"C\"",
        &[],
    )
    .await?;
    rows.iter()
        .map(|row| Ok((get(row, "name")?, get(row, "value")?)))
        .collect()
}
