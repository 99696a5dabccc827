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
    PasswordResetRecord, SessionRecord, SetupTokenRecord, SortedTicketCursor, SortedTicketQuery,
    StoreResult, TeamFilter, TicketCountQuery, TicketFilter, TicketQuery, TicketSearch, TicketSort,
    TicketSortKey, Visibility,
};
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use crate::Client;
use crate::error::map_error;
use crate::rows::{self, get};
use crate::visibility_terms;

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
fn map_rows<T>(rows: &[Row], map: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(map).collect()
}

/// A page size the database may be asked for: at least one row, at most [`MAX_PAGE_SIZE`].
fn page_limit(limit: u32) -> i64 {
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
async fn query_once(client: &Client, sql: &str, params: &Params) -> StoreResult<Vec<Row>> {
    client
        .query_typed(sql, &params.typed())
        .await
        .map_err(map_error)
}

/// Runs a statement of a few shapes whose plan does not follow its values through the
/// connection's statement cache, with its parameters' types as `params` binds them: parsed and
/// planned once per connection and shape instead of on every call.
async fn query_cached(client: &Client, sql: &str, params: &Params) -> StoreResult<Vec<Row>> {
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
async fn load_tags(client: &Client, tickets: &mut [Ticket]) -> StoreResult<()> {
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
fn tagged_ticket_columns() -> String {
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
fn ticket_conditions(
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
fn ticket_columns() -> String {
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

/// How many of the newest matches a search ranks. Ranking every match of a common word in a
/// million tickets means reading and scoring every matching document; agents look for recent
/// conversations, so the best of the newest matches is what they want (an older one is
/// found with a more specific query or a filter). The same bound as SQLite's.
pub(crate) use otklik_store::RANKED_MATCHES;

/// The shortest vocabulary tokens starting with `prefix`, at most
/// [`otklik_search::MAX_PREFIX_TOKENS`]: one short index range per token length.
async fn prefix_tokens(client: &Client, prefix: &str) -> StoreResult<Vec<String>> {
    let statement = client
        .prepare_cached(
            "SELECT x.term FROM generate_series($2::int, $3::int) AS c (chars) \
             CROSS JOIN LATERAL ( \
                 SELECT term FROM search_terms \
                 WHERE chars = c.chars AND term >= $1 AND term < $4 \
                 ORDER BY term LIMIT $5) x \
             ORDER BY c.chars, x.term LIMIT $5",
        )
        .await
        .map_err(map_error)?;
    let limit = i64::try_from(otklik_search::MAX_PREFIX_TOKENS).unwrap_or(i64::MAX);
    let shortest = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
    let longest = i32::try_from(otklik_search::MAX_TOKEN_CHARS).unwrap_or(i32::MAX);
    let upper = otklik_store::derived::prefix_upper_bound(prefix);
    let rows = client
        .query(&statement, &[&prefix, &shortest, &longest, &upper, &limit])
        .await
        .map_err(map_error)?;
    rows.iter().map(|row| get(row, "term")).collect()
}

/// The parts of `filter` the documents have no terms for: a customer, dates, «unassigned», and
/// whether merged tickets are kept. The rest are [`termed_parts`].
fn termless_parts(filter: &TicketFilter) -> TicketFilter {
    TicketFilter {
        customer_id: filter.customer_id,
        updated_since: filter.updated_since,
        updated_before: filter.updated_before,
        assignee: filter
            .assignee
            .filter(|assignee| *assignee == AssigneeFilter::Unassigned),
        include_merged: filter.include_merged,
        ..TicketFilter::default()
    }
}

/// The parts of `filter` the documents have terms for (V21, V25–V27): statuses, priorities,
/// channels, a team, an assignee, a tag.
fn termed_parts(filter: &TicketFilter) -> TicketFilter {
    TicketFilter {
        customer_id: None,
        updated_since: None,
        updated_before: None,
        assignee: filter
            .assignee
            .filter(|assignee| *assignee != AssigneeFilter::Unassigned),
        ..filter.clone()
    }
}

/// The most tickets a filter may let through for a search to list them first
/// ([`few_passing_tickets`]), as on SQLite.
pub(crate) const FEW_PASSING_TICKETS: i64 = 20_000;

/// The ids of the tickets that pass the search's filters and visibility, when the filter has a
/// part the documents have no terms for but an index of `tickets` lists (a date range, a
/// customer, no assignee), that part alone lets about `few` ([`FEW_PASSING_TICKETS`]) through
/// at most, by the planner's estimate, and at most `few` pass the whole. The words are then
/// tested on those tickets' documents only ([`newest_matches_among`]), not on every match of a
/// common word: a supervisor's «r» among the tickets updated in the last two days, 7,700 of a
/// million, took 210 ms. `None` otherwise.
async fn few_passing_tickets(
    client: &Client,
    search: &TicketSearch,
    few: i64,
) -> StoreResult<Option<Vec<Uuid>>> {
    let filter = &search.filter;
    let listed_by_an_index = filter.updated_since.is_some()
        || filter.updated_before.is_some()
        || filter.customer_id.is_some()
        || filter.assignee == Some(AssigneeFilter::Unassigned);
    if !listed_by_an_index {
        return Ok(None);
    }
    // Listing 20,001 tickets to find there are more took 20 ms (an agent's last three weeks,
    // 31,000 tickets); the planner's estimate of a date range, a customer or «unassigned» is
    // close enough (34,500 there) to skip that when it is a quarter over. Those parts alone:
    // the rest may let few tickets through, but no index lists them, and the planner read
    // every ticket to list the 11,781 of a tag and a channel updated before a date (145 ms).
    let mut params = Params::default();
    let conditions = ticket_conditions(&termless_parts(filter), &Visibility::All, &mut params);
    let listed_sql = format!("SELECT t.id FROM tickets t {}", where_clause(&conditions));
    if planned_rows(client, &listed_sql, &params).await? > (few * 5 / 4) as f64 {
        return Ok(None);
    }
    let mut params = Params::default();
    let conditions = ticket_conditions(filter, &search.visibility, &mut params);
    let sql = format!(
        "SELECT t.id FROM tickets t {} LIMIT {}",
        where_clause(&conditions),
        params.bind(few + 1)
    );
    at_most(client, &sql, &params, few).await
}

/// The ids `sql` lists (it ends in `LIMIT few + 1`), when there are at most `few`.
async fn at_most(
    client: &Client,
    sql: &str,
    params: &Params,
    few: i64,
) -> StoreResult<Option<Vec<Uuid>>> {
    let listed = query_once(client, sql, params)
        .await?
        .iter()
        .map(|row| get(row, "id"))
        .collect::<StoreResult<Vec<Uuid>>>()?;
    Ok((listed.len() as i64 <= few).then_some(listed))
}

/// The tickets older than `below` that pass the search's filters and visibility, when its
/// filter has a lower date bound and at most `few` of them do; `None` otherwise.
///
/// Why: when fewer than a page of matches pass a date range, the rounds end by asking for
/// every older match of the words at once, to test each against the range: an agent's
/// «refunding» among the tickets updated in the last 30 days fetched the visible refunds of
/// a million tickets (29 ms of a 48 ms search). Listed by update instead, the index of tickets
/// by update (`updated_at`, `id`) tests `id` in its own entries, so the tickets updated since
/// the date but newer than those found cost no row: 5–15 ms for 93,000.
async fn few_passing_below(
    client: &Client,
    search: &TicketSearch,
    below: Uuid,
    few: i64,
) -> StoreResult<Option<Vec<Uuid>>> {
    if search.filter.updated_since.is_none() {
        return Ok(None);
    }
    let mut params = Params::default();
    let mut conditions = ticket_conditions(&search.filter, &search.visibility, &mut params);
    conditions.push(format!("t.id < {}", params.bind(below)));
    // Ordered by update, so that index drives whatever the planner expects of the rest.
    let sql = format!(
        "SELECT t.id FROM tickets t {} ORDER BY t.updated_at LIMIT {}",
        where_clause(&conditions),
        params.bind(few + 1)
    );
    at_most(client, &sql, &params, few).await
}

/// Where the tickets updated before a search's upper date bound end, when it filters by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdatedBefore {
    /// None was.
    None,
    /// None newer than the ticket `newest` (by id: creation order) was: the search starts there.
    UpTo { newest: Uuid },
}

/// Tickets [`newest_updated_before`] reads, going down from the newest id of the eras, for
/// the newest one updated before the date: about an era's worth, 2 ms at most.
pub(crate) const TICKETS_TO_BOUND_A_SEARCH: i64 = visibility_terms::ERA_TICKETS;

/// [`UpdatedBefore`] of `before`: the newest id of the eras of ticket numbers holding a
/// ticket updated before it (V36), then the newest ticket updated before it among the `walk`
/// tickets from there down, when one is.
///
/// Why: a search finds the matches of its words newest first, and an upper date bound is no
/// term of the documents, so it tried and dropped every match updated since the date first,
/// and its window of the newest documents told it nothing of those it wanted: the 18 slowest
/// of random filtered searches at a million tickets (120–400 ms) all had a date bound, 16 of
/// them an upper one. Every ticket updated before the date is at or below the newest of them
/// in creation order, so the search may start there. Read from the tickets' own entries, that
/// cost about 100 ns a ticket on the smaller side of the date: up to 70 ms for a date in the
/// middle of a year of a million tickets.
pub(crate) async fn newest_updated_before(
    client: &Client,
    before: jiff::Timestamp,
    walk: i64,
) -> StoreResult<UpdatedBefore> {
    let bound = to_micros(before);
    let rows = query(
        client,
        "SELECT newest_id FROM ticket_update_eras WHERE earliest_update < $1 \
         ORDER BY newest_id DESC LIMIT 1",
        &[&bound],
    )
    .await?;
    let Some(row) = rows.first() else {
        return Ok(UpdatedBefore::None);
    };
    let newest_of_eras: Uuid = get(row, "newest_id")?;
    // The era's tickets created after the date were updated after it too: going down the
    // primary key finds the newest ticket updated before it, past those.
    let rows = query(
        client,
        "SELECT id FROM ( \
             SELECT id, updated_at FROM tickets WHERE id <= $2 ORDER BY id DESC LIMIT $3) t \
         WHERE updated_at < $1 ORDER BY id DESC LIMIT 1",
        &[&bound, &newest_of_eras, &walk],
    )
    .await?;
    let newest = match rows.first() {
        Some(row) => get(row, "id")?,
        None => newest_of_eras,
    };
    Ok(UpdatedBefore::UpTo { newest })
}

/// The id just above `id`, for a bound that keeps `id` (`< just_above(id)`), or `None` above the
/// largest id there can be.
fn just_above(id: Uuid) -> Option<Uuid> {
    // PostgreSQL orders `uuid` by its bytes, big-endian as `as_u128` reads them.
    id.as_u128().checked_add(1).map(Uuid::from_u128)
}

/// The newest [`RANKED_MATCHES`] of `passing` whose documents match the words and carry the
/// `visible` terms, newest first.
async fn newest_matches_among(
    client: &Client,
    words: &SearchWords,
    visible: Option<&str>,
    search: &TicketSearch,
    passing: &[Uuid],
) -> StoreResult<Vec<Uuid>> {
    let mut params = Params::default();
    let ids = params.bind(passing.to_vec());
    let word = params.bind(words.walked.clone());
    let matches = words_and_terms(&mut params, word, visible);
    let sql = format!(
        "SELECT d.ticket_id FROM ticket_documents d \
         WHERE d.ticket_id = ANY({ids}) AND {merged}d.document @@ {matches} \
         ORDER BY d.ticket_id DESC LIMIT {ranked}",
        merged = unmerged_condition(search.filter.include_merged),
        ranked = params.bind(RANKED_MATCHES),
    );
    query_once(client, &sql, &params)
        .await?
        .iter()
        .map(|row| get(row, "ticket_id"))
        .collect()
}

/// The tickets that match `search`, best first. A search tries the newest `window` documents
/// first ([`SEARCH_WINDOW`]) and lists the tickets passing its filter first when at most
/// `listing` do ([`FEW_PASSING_TICKETS`]).
pub(crate) async fn search_tickets(
    client: &Client,
    search: &TicketSearch,
    window: i64,
    listing: i64,
) -> StoreResult<Vec<Ticket>> {
    let mut found = HashMap::new();
    for prefix in search.query.prefixes() {
        found.insert(prefix.to_owned(), prefix_tokens(client, prefix).await?);
    }
    let expanded = search.query.expand_prefixes(|prefix| {
        Ok::<_, std::convert::Infallible>(found.remove(prefix).unwrap_or_default())
    });
    let Ok(expanded) = expanded;
    if expanded.matches_nothing() {
        return Ok(Vec::new());
    }
    // The terms a match must carry, as the documents spell them: who may see it (V21), nothing
    // for a caller who sees every ticket; and the filter's, so the window counts and the index
    // return only matches that pass it. `visible` below means both.
    let who = match &search.visibility {
        Visibility::Agent { agent_id, team_ids } => {
            Some(visibility_terms::agent_query(*agent_id, team_ids))
        }
        Visibility::All => None,
    };
    let tag = match &search.filter.tag {
        Some(name) => match tag_id(client, name).await? {
            Some(id) => Some(id),
            // No such tag: no ticket carries it.
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    let words = SearchWords {
        walked: expanded.to_tsquery(),
        indexed: expanded.to_tsquery_of_tokens(),
        query: expanded.clone(),
        teams: EraTeams::of(&search.visibility, search.filter.include_merged),
    };
    // Dates are no terms of the documents, so an upper date bound is kept as the newest ticket
    // that may pass it.
    let newest = match search.filter.updated_before {
        Some(before) => {
            match newest_updated_before(client, before, TICKETS_TO_BOUND_A_SEARCH).await? {
                UpdatedBefore::None => return Ok(Vec::new()),
                UpdatedBefore::UpTo { newest } => Some(newest),
            }
        }
        None => None,
    };
    let hits = match visibility_terms::filter_terms(&search.filter, tag) {
        // Every part of the filter is a term of the documents (V21, V25–V27): the search is
        // one for the words and those terms, however common, whose window counts only what
        // passes the filter, and whose index step probes the terms' postings at each match of
        // the words, where SQL would fetch every match to test it. Tested in SQL match by
        // match, a filter the window could not see cost 1.5 s for «r» among the tickets tagged
        // «доставка», none of which has «r».
        Some(terms) => {
            let visible = match who {
                Some(who) => format!("({who}) & {terms}"),
                None => terms,
            };
            newest_matches(
                client,
                &words,
                Some(&visible),
                search.filter.include_merged,
                window,
            )
            .await?
        }
        None => {
            filtered_or_newest_matches(client, &words, who, search, newest, tag, window, listing)
                .await?
        }
    };
    let rows = query(
        client,
        "SELECT ticket_id, subject_terms, body_terms FROM ticket_search WHERE ticket_id = ANY($1)",
        &[&hits],
    )
    .await?;
    let scorer = expanded.scorer();
    let mut ranked: Vec<(f64, Uuid)> = Vec::with_capacity(rows.len());
    for row in &rows {
        let subject: &str = get(row, "subject_terms")?;
        let body: &str = get(row, "body_terms")?;
        ranked.push((scorer.score(subject, body), get(row, "ticket_id")?));
    }
    ranked.sort_by(otklik_search::rank_order);
    ranked.truncate(usize::try_from(page_limit(search.limit)).unwrap_or(1));
    if ranked.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = ranked.iter().map(|(_, id)| *id).collect();
    let sql = format!(
        "SELECT {} FROM tickets WHERE id = ANY($1)",
        rows::TICKET_COLUMNS
    );
    let rows = query(client, &sql, &[&ids]).await?;
    let mut found: HashMap<Uuid, Ticket> = map_rows(&rows, rows::ticket)?
        .into_iter()
        .map(|ticket| (ticket.id.0, ticket))
        .collect();
    let mut tickets: Vec<Ticket> = ids.iter().filter_map(|id| found.remove(id)).collect();
    load_tags(client, &mut tickets).await?;
    Ok(tickets)
}

/// The id of the tag named `name`, if there is one.
async fn tag_id(client: &Client, name: &str) -> StoreResult<Option<TagId>> {
    let rows = query(client, "SELECT id FROM tags WHERE name = $1", &[&name]).await?;
    rows.first()
        .map(|row| get::<Uuid>(row, "id").map(TagId))
        .transpose()
}

/// The matches of a search whose filter has a part the documents have no term for (a date
/// range, a customer, «unassigned»), or no filter: `None` when the planner should find them
/// ([`planned_matches`]). The terms of the filter's other parts (statuses, priorities,
/// channels, a team, an assignee, a tag; `tag` is its id) join `who` may see a match, however
/// common, as when every part has terms: tested in SQL instead, a tag and a channel that let
/// few tickets through made a search test every match of its words updated before a date
/// («r» + a tag + a channel: 200 ms; 10–20 ms as terms). No match is newer than the ticket
/// `newest`, when given ([`newest_updated_before`]).
#[allow(clippy::too_many_arguments)]
async fn filtered_or_newest_matches(
    client: &Client,
    words: &SearchWords,
    who: Option<String>,
    search: &TicketSearch,
    newest: Option<Uuid>,
    tag: Option<TagId>,
    window: i64,
    listing: i64,
) -> StoreResult<Vec<Uuid>> {
    let termed = termed_parts(&search.filter);
    let visible = match (who, visibility_terms::filter_terms(&termed, tag)) {
        (Some(who), Some(filtered)) => Some(format!("({who}) & {filtered}")),
        (who, filtered) => who.or(filtered),
    };
    let visible = visible.as_deref();
    if let Some(passing) = few_passing_tickets(client, search, listing).await? {
        return newest_matches_among(client, words, visible, search, &passing).await;
    }
    if search.filter.narrows() {
        let found =
            filtered_matches(client, words, visible, search, newest, window, listing).await?;
        return match found {
            Some(found) => Ok(found),
            None => planned_matches(client, words, visible, search, newest).await,
        };
    }
    newest_matches(client, words, visible, search.filter.include_merged, window).await
}

/// The ids of the newest [`RANKED_MATCHES`] tickets that match `words` and `visible` (the terms
/// of who may see a ticket and of the filter's other parts) and pass the filter's parts
/// without terms ([`termless_parts`]), planned by PostgreSQL: for filtered searches whose words
/// are common among the caller's tickets ([`filtered_matches`]), where the planner knows how
/// selective those parts are. None is newer than the ticket `newest`, when given
/// ([`newest_updated_before`]).
///
/// Newest by ticket id (UUIDv7: creation time), as SQLite's index rowids are ordered. The
/// other parts are the documents' terms, not tested again in SQL: there the planner took a tag
/// for a third as common as it is, joined every ticket below the bound with the tag's 347,000
/// tickets, and tested each's document (415 ms for «курьер» + a tag before March).
async fn planned_matches(
    client: &Client,
    words: &SearchWords,
    visible: Option<&str>,
    search: &TicketSearch,
    newest: Option<Uuid>,
) -> StoreResult<Vec<Uuid>> {
    let mut params = Params::default();
    let word = params.bind(words.walked.clone());
    let termless = termless_parts(&search.filter);
    let mut conditions = ticket_conditions(&termless, &Visibility::All, &mut params);
    if let Some(newest) = newest {
        // On both sides of the join: PostgreSQL carries equalities across it, not ranges, and
        // merged the documents with every ticket from the newest down (130 ms; 18 from the
        // bound).
        let newest = params.bind(newest);
        conditions.push(format!("d.ticket_id <= {newest}"));
        conditions.push(format!("t.id <= {newest}"));
    }
    conditions.push(format!(
        "d.document @@ {}",
        words_and_terms(&mut params, word, visible)
    ));
    let sql = format!(
        "SELECT d.ticket_id FROM ticket_documents d JOIN tickets t ON t.id = d.ticket_id \
         {where_clause} ORDER BY d.ticket_id DESC LIMIT {ranked}",
        where_clause = where_clause(&conditions),
        ranked = params.bind(RANKED_MATCHES),
    );
    // Planned with the query's values (see `query_once`): the right plan depends on how common
    // the searched words are.
    query_once(client, &sql, &params)
        .await?
        .iter()
        .map(|row| get(row, "ticket_id"))
        .collect()
}

/// `NOT d.merged AND ` unless merged tickets are asked for.
fn unmerged_condition(include_merged: bool) -> &'static str {
    if include_merged {
        ""
    } else {
        "NOT d.merged AND "
    }
}

/// Documents a search tries, newest first, before it judges how to find the rest: enough to
/// answer a word common among the caller's tickets at once and to tell a rare one, about a
/// millisecond of work. 4096 made the bench's agent search 10% slower, for nothing.
pub(crate) const SEARCH_WINDOW: i64 = 1024;

/// A search's words as `tsquery` input, the same matches both. Read as `…::tsquery`, never
/// through `to_tsquery`: documents hold the analyser's tokens as they are
/// ([`crate::derived`]), and PostgreSQL's text parser would split some of them again («1e5x»
/// is the number «1e5» and the word «x» to it).
struct SearchWords {
    /// For testing documents one by one: a prefix as `tok:*`, cheaper to test than the `OR` of
    /// its tokens («заказ» as a prefix: 6 ms of search instead of 11).
    walked: String,
    /// For the index: a prefix as the `OR` of its tokens
    /// ([`otklik_search::SearchQuery::to_tsquery_of_tokens`]).
    indexed: String,
    /// The query, for the words of a few eras ([`round_matches`]).
    query: otklik_search::SearchQuery,
    /// The teams whose era words (V32) the rounds read.
    teams: EraTeams,
}

/// The teams whose tickets a search's rounds of era words read: era words spell each word with
/// its ticket's team (V32, `refund~60~3`), so an agent's rounds step through the postings of
/// the word in the tickets of the teams the agent may see, not of every team. For an agent of
/// Delivery and VIP searching «refunding» at a million tickets, 18 eras held 21,500 postings
/// of «refund» of which 534 were visible and solved: GIN stepped through them all (10–14 ms).
///
/// An agent's teams are their own, no team, and every team in which a ticket is assigned to
/// them (from the plain counts, which hold every unmerged ticket); with merged tickets, every
/// team. When those are only their own and no team, the spelling says all that the agent's
/// terms of who may see a ticket say, and the rounds leave those terms out
/// ([`EraTeams::visible_in_rounds`]): GIN no longer decodes the long postings of the team terms
/// at each match. A document whose team has no code is spelled `~x` (V33), which no agent's
/// rounds name.
struct EraTeams {
    of: TeamsOf,
    /// Loaded once, when the first round of era words is planned.
    codes: tokio::sync::OnceCell<TeamCodes>,
}

/// Whose teams [`EraTeams`] are.
enum TeamsOf {
    Every,
    Agent {
        agent_id: otklik_domain::ids::AgentId,
        team_ids: Vec<Uuid>,
        /// The agent's terms of who may see a ticket, as the search asks for them.
        who: String,
    },
}

/// The spellings of the teams' codes in era words, and whether they imply who may see a ticket.
#[derive(Debug, Clone, PartialEq)]
struct TeamCodes {
    spellings: Vec<String>,
    implies_who: bool,
    /// Whether the codes leave some team out ([`RoundCosts::fewer_teams`]).
    fewer_teams: bool,
    /// The share of the unmerged tickets that are in the teams the codes name, no team
    /// included, by the plain counts: what share of a word's postings the era words of those
    /// teams hold, when the word is as common in every team ([`RoundCosts::postings_per_era`]).
    share_of_tickets: f64,
}

impl EraTeams {
    fn of(visibility: &Visibility, include_merged: bool) -> Self {
        let of = match visibility {
            Visibility::Agent { agent_id, team_ids } if !include_merged => TeamsOf::Agent {
                agent_id: *agent_id,
                team_ids: team_ids.iter().map(|team| team.0).collect(),
                who: visibility_terms::agent_query(*agent_id, team_ids),
            },
            _ => TeamsOf::Every,
        };
        EraTeams {
            of,
            codes: tokio::sync::OnceCell::new(),
        }
    }

    /// The spellings of the teams' codes, no team's first.
    async fn codes(&self, client: &Client) -> StoreResult<&TeamCodes> {
        self.codes
            .get_or_try_init(|| async {
                let mut spellings = vec![visibility_terms::NO_TEAM_CODE.to_string()];
                let mut fewer_teams = false;
                let mut share_of_tickets = 1.0;
                let implies_who = match &self.of {
                    TeamsOf::Every => {
                        let rows = query(
                            client,
                            "SELECT code FROM team_search_codes ORDER BY code",
                            &[],
                        )
                        .await?;
                        for row in &rows {
                            spellings.push(get::<i64>(row, "code")?.to_string());
                        }
                        spellings.push(visibility_terms::UNKNOWN_TEAM_CODE.to_owned());
                        false
                    }
                    TeamsOf::Agent {
                        agent_id, team_ids, ..
                    } => {
                        // One row, whatever the teams: aggregates without GROUP BY. No team is
                        // the nil key of the plain counts.
                        let rows = query(
                            client,
                            "WITH s AS ( \
                                 SELECT s.code, s.team_id, s.team_id = ANY($1) AS theirs, \
                                        s.team_id = ANY($1) OR s.team_id IN ( \
                                            SELECT c.team_key FROM ticket_counts c \
                                            WHERE c.assignee_key = $2 \
                                            GROUP BY c.team_key HAVING sum(c.n) > 0) AS read \
                                 FROM team_search_codes s) \
                             SELECT count(*) AS teams, \
                                 coalesce(array_agg(s.code ORDER BY s.code) FILTER (WHERE s.read), \
                                          '{}') AS codes, \
                                 coalesce(bool_and(s.theirs) FILTER (WHERE s.read), true) AS theirs, \
                                 (SELECT coalesce(sum(c.n) FILTER ( \
                                             WHERE c.team_key = $3 \
                                                OR c.team_key IN (SELECT team_id FROM s WHERE read)), \
                                          0)::float8 \
                                         / greatest(coalesce(sum(c.n), 0), 1)::float8 \
                                  FROM ticket_counts c) AS share \
                             FROM s",
                            &[team_ids, &agent_id.0, &Uuid::nil()],
                        )
                        .await?;
                        let row = rows.first().ok_or_else(|| {
                            otklik_store::StoreError::corrupt("an aggregate returned no row")
                        })?;
                        let codes: Vec<i64> = get(row, "codes")?;
                        let teams: i64 = get(row, "teams")?;
                        fewer_teams = i64::try_from(codes.len()).unwrap_or(i64::MAX) < teams;
                        // No tickets yet: as if the word were in every team's.
                        let share: f64 = get(row, "share")?;
                        share_of_tickets = if share > 0.0 { share.min(1.0) } else { 1.0 };
                        spellings.extend(codes.iter().map(i64::to_string));
                        get::<bool>(row, "theirs")?
                    }
                };
                Ok::<_, otklik_store::StoreError>(TeamCodes {
                    spellings,
                    implies_who,
                    fewer_teams,
                    share_of_tickets,
                })
            })
            .await
    }

    /// The spellings of the codes, once loaded ([`EraTeams::codes`]).
    fn loaded(&self) -> Option<&[String]> {
        self.codes.get().map(|codes| codes.spellings.as_slice())
    }

    /// What a round of era words asks for besides the words, of `visible` (the terms a match
    /// must carry): without the agent's terms of who may see a ticket when the codes imply
    /// them ([`TeamCodes::implies_who`]).
    fn visible_in_rounds<'v>(&self, visible: Option<&'v str>) -> Option<&'v str> {
        let (Some(codes), TeamsOf::Agent { who, .. }, Some(visible)) =
            (self.codes.get(), &self.of, visible)
        else {
            return visible;
        };
        if !codes.implies_who {
            return Some(visible);
        }
        if visible == who {
            return None;
        }
        // How the search joins who may see a ticket with a filter's terms.
        match visible
            .strip_prefix('(')
            .and_then(|rest| rest.strip_prefix(who.as_str()))
            .and_then(|rest| rest.strip_prefix(") & "))
        {
            Some(filter) => Some(filter),
            None => Some(visible),
        }
    }
}

impl SearchWords {
    /// The rounds that find the newest `wanted` matches from `start` down, expecting
    /// `per_era` an era: of era words (V30) when the words can be spelled by era, else of the
    /// documents' era terms.
    ///
    /// `costs` tell the rounds of era words how many postings they read and may read
    /// ([`SearchWords::round_costs`]).
    fn rounds(
        &self,
        start: RoundsStart,
        per_era: f64,
        wanted: i64,
        costs: RoundCosts,
    ) -> EraRounds {
        match self.most_eras_a_word_round() {
            Some(most_eras) => EraRounds::of_words(start, per_era, wanted, costs, most_eras),
            None => EraRounds::new(start, per_era, wanted),
        }
    }

    /// The most eras a round of era words may name for these words ([`MOST_SPELLINGS_A_ROUND`]
    /// over their tokens); `None` when the words are not asked of the era words: they cannot
    /// be spelled by era, or a prefix of many tokens would name each in every era (127 tokens
    /// of «дост» in 4 eras took 150 ms of GIN).
    fn most_eras_a_word_round(&self) -> Option<i64> {
        let codes = i64::try_from(self.teams.loaded()?.len()).unwrap_or(i64::MAX);
        let spellings_an_era = self.spellings_an_era(codes)?;
        (spellings_an_era.saturating_mul(ERAS_PER_ROUND) <= MOST_SPELLINGS_A_ROUND)
            .then(|| (MOST_SPELLINGS_A_ROUND / spellings_an_era).max(1))
    }

    /// How many words one era's spelling of these words names for `codes` teams; `None`
    /// when they cannot be spelled by era, or too many for a round of two eras.
    fn spellings_an_era(&self, codes: i64) -> Option<i64> {
        let mut tokens = 0_i64;
        self.query.to_tsquery_spelled(|_, _| tokens += 1)?;
        let spellings = tokens.saturating_mul(codes).max(1);
        (spellings.saturating_mul(ERAS_PER_ROUND) <= MOST_SPELLINGS_A_ROUND).then_some(spellings)
    }

    /// [`SearchWords::rounds`], asking the planner for their costs
    /// ([`SearchWords::round_costs`]) only when they are rounds of era words.
    /// `estimate_of_words_and_visible` is the planner's estimate the caller already has of the
    /// matches of the words and `visible`, if any: with nothing else visible, it is the
    /// estimate of the words alone.
    #[allow(clippy::too_many_arguments)]
    async fn era_rounds(
        &self,
        client: &Client,
        visible: Option<&str>,
        counts: &WindowCounts,
        start: RoundsStart,
        per_era: f64,
        wanted: i64,
        include_merged: bool,
        estimate_of_words_and_visible: Option<f64>,
    ) -> StoreResult<EraRounds> {
        let known = estimate_of_words_and_visible.filter(|_| visible.is_none());
        let costs = async {
            // Words of too many tokens for one team are never spelled (none of this is asked).
            if self.spellings_an_era(1).is_none() {
                return Ok(None);
            }
            self.round_costs(client, visible, counts, start.eras(), include_merged, known)
                .await
                .map(Some)
        };
        // One round trip for the three statements: tokio-postgres sends requests polled
        // together back to back on the connection.
        let (codes, costs) = futures::join!(self.teams.codes(client), costs);
        let codes = codes?;
        match (costs?, self.most_eras_a_word_round()) {
            (Some(costs), Some(_)) => Ok(self.rounds(
                start,
                per_era,
                wanted,
                costs.of_teams(codes.fewer_teams, codes.share_of_tickets),
            )),
            _ => Ok(EraRounds::new(start, per_era, wanted)),
        }
    }

    /// What rounds of era words would read and may read ([`RoundCosts`]).
    ///
    /// An era holds as many matches of the words as the window `counts` saw, or the planner's
    /// estimate of all of them spread over the `eras`, whichever is more: the newest tickets
    /// are not like the rest (they have fewer messages, and «1» matched few of them, where it
    /// is in 40% of all). The rounds may read as many postings as the documents' index would
    /// step through for the rest at once, by the planner's estimate of the tickets that carry
    /// the other terms, `visible`, and at most [`MOST_WORD_POSTINGS_IN_ROUNDS`]: an agent's
    /// «refunding» among open tickets read 65,000 postings of «refund» in rounds (53 ms),
    /// where the rest stepped through the 12,700 open tickets (7 ms).
    async fn round_costs(
        &self,
        client: &Client,
        visible: Option<&str>,
        counts: &WindowCounts,
        eras: f64,
        include_merged: bool,
        estimate_of_words: Option<f64>,
    ) -> StoreResult<RoundCosts> {
        // Eras are full but for the newest: documents over eras, unless tickets were deleted
        // or numbers skipped.
        let eras = eras.max(1.0);
        let era_documents = (counts.documents / eras).min(visibility_terms::ERA_TICKETS as f64);
        let in_window = counts.word_matches as f64 / counts.tried.max(1) as f64 * era_documents;
        let planned = async {
            match estimate_of_words {
                Some(estimate) => Ok(estimate),
                None => estimated_index_matches(client, self, None, include_merged).await,
            }
        };
        let postings_budget = async {
            match visible {
                Some(terms) => {
                    let mut params = Params::default();
                    let sql = format!(
                        "SELECT d.ticket_id FROM ticket_documents d WHERE d.document @@ {}::tsquery",
                        params.bind(terms.to_owned())
                    );
                    Ok(planned_rows(client, &sql, &params)
                        .await?
                        .min(MOST_WORD_POSTINGS_IN_ROUNDS))
                }
                None => Ok(MOST_WORD_POSTINGS_IN_ROUNDS),
            }
        };
        let (planned, postings_budget) = futures::join!(planned, postings_budget);
        let (planned, postings_budget): (f64, f64) = (planned?, postings_budget?);
        Ok(RoundCosts {
            postings_per_era: in_window.max(planned / eras),
            postings_budget,
            // Set once the teams are known (`era_rounds`).
            fewer_teams: false,
        })
    }
}

/// The `SELECT` of the ids of the documents that match `words` and `visible` in one round of
/// [`EraRounds`]. A range of eras is asked of the era words (V30), in which GIN steps through
/// the postings of the words in those eras, not of every ticket of the eras: an agent's
/// «refunding», two eras at a time, took 1–3 ms a round there and 4–13 ms as `E…` terms of the
/// documents. A prefix whose tokens were not all listed cannot be spelled by era, and the rest
/// has no era: those ask the documents.
fn round_matches(
    params: &mut Params,
    words: &SearchWords,
    round: &EraRound,
    visible: Option<&str>,
    include_merged: bool,
) -> String {
    let merged = unmerged_condition(include_merged);
    if let EraRound::Range {
        oldest,
        newest,
        of_words: true,
    } = *round
        && let Some(codes) = words.teams.loaded()
        && let Some(spelled) = words.query.to_tsquery_spelled(|out, token| {
            visibility_terms::push_era_word(out, token, oldest, newest, codes);
        })
    {
        let spelled = params.bind(spelled);
        let matches = match words.teams.visible_in_rounds(visible) {
            Some(terms) => format!(
                "({spelled}::tsquery && {}::tsquery)",
                params.bind(terms.to_owned())
            ),
            None => format!("{spelled}::tsquery"),
        };
        return format!(
            "SELECT d.ticket_id FROM ticket_era_words d WHERE {merged}d.words @@ {matches}"
        );
    }
    let word = params.bind(words.indexed.clone());
    let terms = round.with(visible);
    format!(
        "SELECT d.ticket_id FROM ticket_documents d WHERE {merged}d.document @@ {}",
        words_and_terms(params, word, terms.as_deref())
    )
}

/// The `tsquery` of the words (bound as `word`) and, for an agent, of who may see a ticket.
fn words_and_terms(params: &mut Params, word: String, visible: Option<&str>) -> String {
    match visible {
        Some(terms) => format!(
            "({word}::tsquery && {}::tsquery)",
            params.bind(terms.to_owned())
        ),
        None => format!("{word}::tsquery"),
    }
}

/// The ids of the newest [`RANKED_MATCHES`] documents that match `words` and `visible` (an
/// agent's terms of who may see a ticket, V21; `None` for a caller who sees every ticket),
/// newest first.
///
/// The planner cannot choose well here: it takes the words, and the words and the visibility,
/// as independent, and they are not. A word about refunds lives in the Payments and Returns
/// teams' tickets; «заказ» and «or» are each in many tickets but together in none, and the
/// planner walked a million documents looking for their 500 newest (400 ms). So the search
/// first tries the newest [`SEARCH_WINDOW`] documents, which answers a word common among
/// the caller's tickets, and counts what it saw; from those counts
/// ([`WindowCounts::keep_walking`]) it either walks on, or asks the GIN index for the matches
/// (`words & (terms)`, a few eras at a time: [`EraRounds`]), whose cost follows how many there
/// are rather than how many documents lie between them.
async fn newest_matches(
    client: &Client,
    words: &SearchWords,
    visible: Option<&str>,
    include_merged: bool,
    window: i64,
) -> StoreResult<Vec<Uuid>> {
    let merged = unmerged_condition(include_merged);
    let WindowProbe {
        mut hits,
        counts,
        oldest,
    } = probe_window(client, words, visible, include_merged, None, window).await?;
    let wanted = RANKED_MATCHES - counts.visible_matches;
    let (Some(oldest), true, true) = (oldest, wanted > 0, counts.tried >= window) else {
        // Enough matches, or the window held every document.
        hits.truncate(usize::try_from(RANKED_MATCHES).unwrap_or(usize::MAX));
        return Ok(hits);
    };
    let mut keep_walking = counts.keep_walking();
    let (mut oldest, mut wanted) = (oldest, wanted);
    // Without a match in the window, how many matches an era holds is the planner's estimate
    // spread over the eras: a filter by a status that old tickets have (solved) matches none
    // of the newest, and asking for all 29,000 matches of «refunding» among solved tickets at
    // once took 120 ms.
    let mut per_era = counts.visible_per_era();
    let mut estimate = if keep_walking {
        0.0
    } else {
        estimated_index_matches(client, words, visible, include_merged).await?
    };
    if !keep_walking
        && estimate > counts.documents * INDEX_MATCHES_SHARE
        && !counts.borne_out(estimate)
    {
        // Many matches, but few among the newest documents (words of a solved ticket's last
        // messages, which recent tickets have not reached): a stretch of walking finds them
        // before the index step would read them all. When the window holds its share of them,
        // the rounds read only the eras that hold a page.
        let stretch_length = window.saturating_mul(WALK_STRETCH_WINDOWS);
        let stretch = probe_window(
            client,
            words,
            visible,
            include_merged,
            Some(oldest),
            stretch_length,
        )
        .await?;
        hits.extend(stretch.hits);
        wanted = RANKED_MATCHES - i64::try_from(hits.len()).unwrap_or(i64::MAX);
        match stretch.oldest {
            Some(stretch_oldest) if wanted > 0 && stretch.counts.tried >= stretch_length => {
                oldest = stretch_oldest;
                // Many matches in the stretch bear the planner out: older documents hold more
                // of them than the newest did («1», as an agent: the index step read 75,000
                // matches in 76 ms), so the walk goes on. A few, and the walk would go on for
                // most of the table (a supervisor's «1» among low-priority tickets walked it
                // all: 930 ms); none, and the planner multiplied the shares of words that
                // seldom meet. The index finds those, era by era at the stretch's rate.
                keep_walking = stretch.counts.visible_matches > 0 && stretch.counts.keep_walking();
                // The stretch's count replaces the estimate it bore out or disproved.
                per_era = stretch.counts.visible_per_era();
                estimate = 0.0;
            }
            _ => {
                hits.truncate(usize::try_from(RANKED_MATCHES).unwrap_or(usize::MAX));
                return Ok(hits);
            }
        }
    }
    if keep_walking {
        let mut params = Params::default();
        let word = params.bind(words.walked.clone());
        let matches = format!(
            "{merged}d.document @@ {}",
            words_and_terms(&mut params, word, visible)
        );
        // The fence (OFFSET 0) keeps the walk a walk: the planner would weigh it against the
        // index with the same independence assumption.
        let sql = format!(
            "SELECT d.ticket_id FROM ( \
                 SELECT ticket_id, merged, document FROM ticket_documents \
                 WHERE ticket_id < {oldest} ORDER BY ticket_id DESC OFFSET 0) d \
             WHERE {matches} ORDER BY d.ticket_id DESC LIMIT {wanted}",
            oldest = params.bind(oldest),
            wanted = params.bind(wanted),
        );
        for row in &query_once(client, &sql, &params).await? {
            hits.push(get(row, "ticket_id")?);
        }
        return Ok(hits);
    }
    let start = rounds_start(client, Some(oldest)).await?;
    if per_era == 0.0 {
        per_era = estimate / start.eras();
    }
    // The estimate is 0 after a stretch of walking, which replaced it.
    let mut rounds = words
        .era_rounds(
            client,
            visible,
            &counts,
            start,
            per_era,
            wanted,
            include_merged,
            (estimate > 0.0).then_some(estimate),
        )
        .await?;
    let wanted = usize::try_from(RANKED_MATCHES).unwrap_or(usize::MAX);
    // Each round keeps below the oldest match found, so the last one finds none twice.
    let mut below = oldest;
    while let Some(eras) = rounds.next_round() {
        let mut params = Params::default();
        let matches = round_matches(&mut params, words, &eras, visible, include_merged);
        // Materialised, so the matches come from the index whatever the planner guesses of
        // their order.
        let sql = format!(
            "WITH m AS MATERIALIZED ({matches}) \
             SELECT ticket_id FROM m WHERE ticket_id < {below} \
             ORDER BY ticket_id DESC LIMIT {still_wanted}",
            below = params.bind(below),
            still_wanted = params.bind(i64::try_from(wanted - hits.len()).unwrap_or(i64::MAX)),
        );
        let rows = query_once(client, &sql, &params).await?;
        for row in &rows {
            let hit: Uuid = get(row, "ticket_id")?;
            below = below.min(hit);
            hits.push(hit);
        }
        if hits.len() >= wanted {
            break;
        }
        rounds.found(rows.len());
    }
    Ok(hits)
}

/// Where rounds begin ([`RoundsStart`]): at the ticket `id`, or at the newest ticket when
/// `None`; at era 0 without tickets.
async fn rounds_start(client: &Client, id: Option<Uuid>) -> StoreResult<RoundsStart> {
    let rows = match id {
        Some(id) => query(client, "SELECT number FROM tickets WHERE id = $1", &[&id]).await?,
        None => query(client, "SELECT max(number) AS number FROM tickets", &[]).await?,
    };
    let mut number = None;
    for row in &rows {
        number = get::<Option<i64>>(row, "number")?;
    }
    Ok(RoundsStart::at_number(number.unwrap_or(0)))
}

/// The era (V26) the rounds of a search begin with, and the share of that era's tickets they
/// may find there: the newest era is still filling up, and the window read the newest part of
/// it. Counted as a whole era, a first round of one era at 100,000 tickets read the last 677
/// tickets of era 6, found a tenth of what it expected, and the next round fetched 6,300
/// matches of six eras for 388 wanted (8.3 ms).
#[derive(Debug, Clone, Copy, PartialEq)]
struct RoundsStart {
    era: i64,
    /// Of the era's tickets, the share numbered up to the ticket the rounds begin at.
    share: f64,
}

impl RoundsStart {
    fn at_number(number: i64) -> Self {
        let era_tickets = visibility_terms::ERA_TICKETS;
        RoundsStart {
            era: visibility_terms::era_of(number),
            share: (number.rem_euclid(era_tickets) + 1) as f64 / era_tickets as f64,
        }
    }

    /// The eras the rounds may read, the first counted by its share.
    fn eras(&self) -> f64 {
        self.era as f64 + self.share
    }
}

/// The most eras one round of [`EraRounds`] names. GIN steps through the postings of every era
/// a query names at once, at a cost that grows with the eras named, not only with their
/// tickets: for an agent's «refunding» at a million tickets, 2 eras took 1.1 ms, 4 took 3.7, 8
/// took 9.7 and 32 took 72, where the whole word took 14.
const ERAS_PER_ROUND: i64 = 2;

/// The most spellings (a token in an era) one round of era words names. GIN looks each up and
/// tests every posting it steps through against all of them.
const MOST_SPELLINGS_A_ROUND: i64 = 64;

/// The postings of the words the rounds of era words may read, by the window's share of
/// matching documents, before the rest is asked of the documents, where GIN steps through the
/// postings of the query's rarest term. For an agent's «refunding» + solved the rounds read
/// ~25,000 (10 ms) where the rest read all 72,891 (27 ms); for «1» among open tickets, 53 eras
/// of «1» were 350,000 postings (114 ms), where the rest stepped through the 12,700 open
/// tickets (4 ms).
const MOST_WORD_POSTINGS_IN_ROUNDS: f64 = 65_536.0;

/// The most eras the first round of era words names ([`EraRounds::of_words`]).
const MOST_ERAS_A_FIRST_WORD_ROUND: i64 = 4;

/// The most eras the rounds of a search cover before it asks for all the older matches at once;
/// also what the matches wanted must fit in, by the window's count, for the rounds to begin.
const MOST_ERAS_IN_ROUNDS: i64 = 16;

/// The rounds in which a search asks the index for the matches of a few eras (V26) at a time,
/// newest first, instead of all the matches of its words at once: the index returns matches in
/// the order of their rows, so to keep the newest it fetched every one and sorted them, and it
/// stepped through every posting of the words. The rounds begin only when the window's count
/// says a page of matches should lie within [`MOST_ERAS_IN_ROUNDS`] eras and within half of
/// those there are (rounds that read every era cost more than asking for all the matches at
/// once: an agent's «refunding» at 100,000 tickets took 4 rounds of 2 ms, where all at once
/// took 2.2); each names
/// [`ERAS_PER_ROUND`] eras, older and older, and once they cover that many without a page, or
/// two rounds in a row find nothing ([`EraRounds::found`]), one last round asks for every
/// match older than those found ([`EraRound::Rest`]).
///
/// Eras follow ticket numbers and the search orders by ticket id. Both follow creation, but a
/// number is drawn when the ticket is written, after its id: two tickets created at the same
/// moment on two nodes may stand in one order by id and the other by number, and at the border
/// of two eras the older by id can be in the newer era. The search then ranks one match in
/// place of one barely newer, as if it had come a moment earlier.
///
/// Rounds of era words (V30, [`EraRounds::of_words`]) cost what the words' postings in those
/// eras cost, so they may cover every era: each round names as many eras as the rate found so
/// far says the matches still wanted need, and twice as many as the last after a round that
/// found none. They read no more postings than the rest at once would step through; past that
/// the rounds of era terms and their rules take over, and two empty rounds end them too.
#[derive(Debug, Clone, PartialEq)]
struct EraRounds {
    /// The newest era of the next round, `None` when only the rest is left.
    newest: Option<i64>,
    /// Eras the rounds may still cover.
    budget: i64,
    /// Eras the next round names.
    per_round: i64,
    /// For rounds of era words: what they may still read.
    of_words: Option<WordRounds>,
    /// Whether the rounds are over.
    done: bool,
    /// Rounds in a row that found no match.
    empty_rounds: u32,
    /// Matches wanted, found so far, and eras covered so far (the first by its share).
    wanted: i64,
    found: i64,
    covered: f64,
    /// The share of the first era's tickets the first round may find ([`RoundsStart`]), until
    /// that round is named.
    first_share: Option<f64>,
}

/// What the rounds of era words (V30) of a search would read, and may.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RoundCosts {
    /// Postings of the words an era holds.
    postings_per_era: f64,
    /// Postings of the words the rounds may read in all.
    postings_budget: f64,
    /// Whether the era words name fewer teams than there are (V32: an agent's), so that they
    /// hold fewer postings of the words than the documents.
    fewer_teams: bool,
}

impl RoundCosts {
    /// These costs for era words that name only some teams (`fewer_teams`, V32), of
    /// `share_of_tickets` of the tickets: a round steps through the postings of the words in
    /// those teams' tickets only. An agent of Delivery and VIP (41% of the tickets) searching
    /// «1» among normal-priority tickets: counted for every team, the rounds could afford 10
    /// of the 16 eras the matches lay in and left them to the documents' index, which stepped
    /// through all 183,845 postings of «1» (41 ms).
    fn of_teams(self, fewer_teams: bool, share_of_tickets: f64) -> Self {
        let share = if fewer_teams {
            share_of_tickets.clamp(0.0, 1.0)
        } else {
            1.0
        };
        RoundCosts {
            postings_per_era: self.postings_per_era * share,
            fewer_teams,
            ..self
        }
    }
}

/// What rounds of era words (V30) may read.
#[derive(Debug, Clone, PartialEq)]
struct WordRounds {
    /// Postings of the words an era holds, by the window.
    postings_per_era: f64,
    /// Postings the rounds may still read ([`RoundCosts::postings_budget`]).
    postings_left: f64,
    /// The most eras a round names ([`MOST_SPELLINGS_A_ROUND`] over the words' tokens).
    most_eras: i64,
}

impl WordRounds {
    /// The most eras the postings left can pay for.
    fn affordable_eras(&self) -> i64 {
        (self.postings_left / self.postings_per_era.max(1.0)).floor() as i64
    }
}

/// The eras of one round.
#[derive(Debug, Clone, PartialEq)]
enum EraRound {
    /// The eras `oldest..=newest`, asked of the era words (V30) when `of_words`, else of the
    /// documents' era terms (V26).
    Range {
        oldest: i64,
        newest: i64,
        of_words: bool,
    },
    /// Every match older than those found: the caller bounds it by ticket id.
    Rest,
}

impl EraRound {
    /// The round's `tsquery` (input syntax) with the other terms a match must carry, `visible`.
    fn with(&self, visible: Option<&str>) -> Option<String> {
        let EraRound::Range { oldest, newest, .. } = self else {
            return visible.map(str::to_owned);
        };
        let eras = format!("({})", visibility_terms::era_query(*oldest, *newest));
        Some(match visible {
            Some(visible) => format!("({visible}) & {eras}"),
            None => eras,
        })
    }
}

impl EraRounds {
    /// Rounds from `start` down, expecting `per_era` matches an era (0: unknown), to find
    /// `wanted` of them.
    fn new(start: RoundsStart, per_era: f64, wanted: i64) -> Self {
        let eras_needed = wanted as f64 / per_era;
        let fits = per_era > 0.0
            && eras_needed <= MOST_ERAS_IN_ROUNDS as f64
            && eras_needed <= start.eras() / 2.0;
        EraRounds {
            newest: fits.then_some(start.era),
            budget: MOST_ERAS_IN_ROUNDS,
            per_round: ERAS_PER_ROUND,
            of_words: None,
            done: false,
            empty_rounds: 0,
            wanted,
            found: 0,
            covered: 0.0,
            first_share: Some(start.share),
        }
    }

    /// Rounds of era words (V30) from `start` down to era 0, expecting `per_era` matches
    /// an era (0: unknown), to find `wanted` of them. The first names as many eras as the
    /// expectation says (or [`ERAS_PER_ROUND`] without one), up to
    /// [`MOST_ERAS_A_FIRST_WORD_ROUND`]:
    /// the newest era is the window's, and mostly read already. Not more: an expectation from
    /// the two matches an agent saw in the window asked 16 eras at once, and fetched twice the
    /// matches wanted (7.8 ms, where rounds of 2 eras took 4–5).
    ///
    /// The rounds read `costs.postings_per_era` postings of the words an era and at most
    /// `costs.postings_budget` in all, `most_eras` eras a round, and leave the rest to one
    /// query of the documents when the rate found says the matches still wanted lie past what
    /// they may read.
    fn of_words(
        start: RoundsStart,
        per_era: f64,
        wanted: i64,
        costs: RoundCosts,
        most_eras: i64,
    ) -> Self {
        // A quarter more than the expectation, as later rounds ask; one era when it holds that
        // many (a supervisor's «refunding»: two eras fetched 2,400 matches for 425 wanted),
        // counting the first era by its share.
        let needed = if per_era > 0.0 {
            let past_first = wanted as f64 * 1.25 / per_era - start.share;
            1 + past_first.max(0.0).ceil() as i64
        } else {
            ERAS_PER_ROUND
        };
        let words = WordRounds {
            postings_per_era: costs.postings_per_era,
            postings_left: costs.postings_budget,
            most_eras: most_eras.max(1),
        };
        let first = needed
            .clamp(1, MOST_ERAS_A_FIRST_WORD_ROUND)
            .min(words.most_eras)
            .min(words.affordable_eras());
        // Fewer matches expected in all eras than a page: one query for all of them. Of the
        // era words when they hold fewer postings than the documents (an agent's teams, V32)
        // and name every era in one round: an agent's «refunding» at 100,000 tickets, 7 eras of
        // 3 teams, where the documents' index stepped through every posting of «refund»
        // (2.6 ms). Else the documents' rules decide.
        let few = per_era > 0.0 && wanted as f64 / per_era > start.eras();
        let every_era = start.era.saturating_add(1);
        let per_round = if few && costs.fewer_teams && every_era <= words.most_eras {
            every_era
        } else if first == 0 || few {
            // No postings to read, or few matches but of every team.
            return EraRounds::new(start, per_era, wanted);
        } else {
            first
        };
        EraRounds {
            newest: Some(start.era),
            budget: every_era,
            per_round,
            of_words: Some(words),
            done: false,
            empty_rounds: 0,
            wanted,
            found: 0,
            covered: 0.0,
            first_share: Some(start.share),
        }
    }

    /// The last round found `matches`. The next round is the rest when two rounds in a row
    /// found none (the expectation was wrong: the planner's, from words that seldom meet), or
    /// when, at the rate found so far, the matches still wanted lie past the eras the rounds
    /// may still cover (solved tickets are few among the newest: an agent's «refunding» among
    /// them took 8 rounds, then the rest, 90 ms).
    fn found(&mut self, matches: usize) {
        let matches = i64::try_from(matches).unwrap_or(i64::MAX);
        self.found = self.found.saturating_add(matches);
        self.empty_rounds = if matches == 0 {
            self.empty_rounds + 1
        } else {
            0
        };
        let still_wanted = (self.wanted - self.found).max(0) as f64;
        let rate = self.found as f64 / self.covered.max(f64::MIN_POSITIVE);
        // Two rounds in a row without a match: the words and the other terms seldom meet, and
        // the documents' index steps through the rarest of them for all the matches at once
        // (a supervisor's «refunding» among tickets tagged «доставка», none of which has it:
        // rounds of era words doubling to 30 eras read 26 ms before the rest took 7).
        if self.empty_rounds >= 2 {
            self.newest = None;
            return;
        }
        if let Some(words) = &self.of_words {
            let affordable = words.affordable_eras();
            // A quarter more than the rate says, so one more round is seldom needed.
            let needed = if rate > 0.0 {
                (still_wanted / rate * 1.25).ceil() as i64
            } else {
                self.per_round.saturating_mul(2)
            };
            let within_reach = rate == 0.0 || (still_wanted / rate).ceil() as i64 <= affordable;
            if within_reach && affordable > 0 {
                self.per_round = needed.clamp(1, words.most_eras).min(affordable);
                return;
            }
            // The rules of the documents' rounds decide from here, with the rate found; after
            // rounds that found nothing, the rest at once (an agent's «refunding» among
            // low-priority tickets: 4 rounds of era words and 2 of the documents found nothing
            // in 33 ms before the rest found the few there are).
            self.leave_words();
            self.empty_rounds = 0;
            if self.found == 0 {
                self.newest = None;
                return;
            }
        }
        let out_of_reach = self.found > 0 && still_wanted / rate > self.budget as f64;
        if out_of_reach {
            self.newest = None;
        }
    }

    fn next_round(&mut self) -> Option<EraRound> {
        if self.done {
            return None;
        }
        let Some(newest) = self.newest.filter(|_| self.budget > 0) else {
            self.done = true;
            return Some(EraRound::Rest);
        };
        let eras = self.per_round.min(self.budget);
        let oldest = newest.saturating_sub(eras - 1).max(0);
        self.budget -= eras;
        let covered = (newest - oldest) as f64 + self.first_share.take().unwrap_or(1.0);
        if let Some(words) = &mut self.of_words {
            words.postings_left -= covered * words.postings_per_era;
        }
        self.covered += covered;
        self.newest = (oldest > 0).then(|| oldest - 1);
        // Past era 0 there is nothing older.
        self.done = oldest == 0;
        Some(EraRound::Range {
            oldest,
            newest,
            of_words: self.of_words.is_some(),
        })
    }

    /// Leaves the era words for the documents' era terms, whose rounds cost what their eras'
    /// documents cost, whatever the words: the rounds of era words may read no more postings,
    /// and asking the documents for the rest at once would fetch every match of a common word
    /// and a common filter («заказ» among tickets of no team: 90 ms, where rounds of two eras
    /// took 25).
    fn leave_words(&mut self) {
        self.of_words = None;
        self.per_round = ERAS_PER_ROUND;
        self.budget = self.budget.min(MOST_ERAS_IN_ROUNDS);
    }
}

/// The share of the documents the index step may read (the planner's estimate), above which a
/// search walks a stretch of documents first: materialising the 155,000 matches of «r» in a
/// million tickets and sorting them took 330 ms, where the walk finds 500 of them in a few
/// milliseconds. The planner's estimate of one word is close (its statistics list the words);
/// of several it multiplies their shares and may be far over, which costs only the stretch.
const INDEX_MATCHES_SHARE: f64 = 0.05;

/// Documents walked before the index step when the planner expects many matches, in windows.
const WALK_STRETCH_WINDOWS: i64 = 16;

/// How many documents the planner expects to match the words and `visible`.
async fn estimated_index_matches(
    client: &Client,
    words: &SearchWords,
    visible: Option<&str>,
    include_merged: bool,
) -> StoreResult<f64> {
    let mut params = Params::default();
    let word = params.bind(words.indexed.clone());
    let sql = format!(
        "SELECT d.ticket_id FROM ticket_documents d WHERE {merged}d.document @@ {matches}",
        merged = unmerged_condition(include_merged),
        matches = words_and_terms(&mut params, word, visible),
    );
    planned_rows(client, &sql, &params).await
}

/// How many rows the planner expects `sql` to return (its `EXPLAIN`, about 0.1 ms).
async fn planned_rows(client: &Client, sql: &str, params: &Params) -> StoreResult<f64> {
    let rows = query_once(client, &format!("EXPLAIN (FORMAT JSON) {sql}"), params).await?;
    let plan: serde_json::Value = match rows.first() {
        Some(row) => row.try_get(0).map_err(map_error)?,
        None => return Ok(0.0),
    };
    Ok(plan[0]["Plan"]["Plan Rows"].as_f64().unwrap_or(0.0))
}

/// The newest documents an agent's search tried first, and what it found among them.
struct WindowProbe {
    /// The ids of the documents that match the words and that the agent may see, newest first.
    hits: Vec<Uuid>,
    counts: WindowCounts,
    /// The oldest document tried (`None` when there is none).
    oldest: Option<Uuid>,
}

/// Tries the newest `window` documents (older than `below`, when given) against the words and
/// the agent's terms (`visible`; `None`: every document is visible).
async fn probe_window(
    client: &Client,
    words: &SearchWords,
    visible: Option<&str>,
    include_merged: bool,
    below: Option<Uuid>,
    window: i64,
) -> StoreResult<WindowProbe> {
    let merged = unmerged_condition(include_merged);
    let mut params = Params::default();
    let older = match below {
        Some(below) => format!("WHERE d.ticket_id < {}", params.bind(below)),
        None => String::new(),
    };
    let word = params.bind(words.walked.clone());
    let visible = match visible {
        Some(terms) => format!(
            "d.document @@ (SELECT {}::tsquery)",
            params.bind(terms.to_owned())
        ),
        None => "true".to_owned(),
    };
    // Its plan never changes, but PostgreSQL keeps a cached statement's plan only when the
    // generic plan costs no more than the custom ones; otherwise it plans the statement again
    // on every call (0.12–0.17 ms, of the 0.9 it runs). So the window's length, an integer of
    // the store's, is written into the text (a bound `LIMIT` is costed as a tenth of the table;
    // a search uses two lengths, two texts), and each `tsquery` is read once, by a sub-select
    // (a bound text cast for each row costs the generic plan more).
    let sql = format!(
        // `uuid` has no `min` (PostgreSQL 15); its text sorts the same.
        "SELECT count(*) AS tried, count(*) FILTER (WHERE w.word) AS word_matches, \
                coalesce(array_agg(w.ticket_id ORDER BY w.ticket_id DESC) \
                    FILTER (WHERE w.word AND w.visible), '{{}}') AS visible, \
                min(w.ticket_id::text)::uuid AS oldest, \
                (SELECT greatest(reltuples, 0)::float8 FROM pg_class \
                 WHERE oid = 'ticket_documents'::regclass) AS documents \
         FROM (SELECT d.ticket_id, {merged}d.document @@ (SELECT {word}::tsquery) AS word, \
                      {visible} AS visible \
               FROM ticket_documents d {older} ORDER BY d.ticket_id DESC LIMIT {window}) w",
    );
    let rows = query_cached(client, &sql, &params).await?;
    // An aggregate without GROUP BY returns one row, even over no documents.
    let Some(row) = rows.first() else {
        return Ok(WindowProbe {
            hits: Vec::new(),
            counts: WindowCounts {
                tried: 0,
                word_matches: 0,
                visible_matches: 0,
                documents: 0.0,
            },
            oldest: None,
        });
    };
    let hits: Vec<Uuid> = get(row, "visible")?;
    Ok(WindowProbe {
        counts: WindowCounts {
            tried: get(row, "tried")?,
            word_matches: get(row, "word_matches")?,
            visible_matches: i64::try_from(hits.len()).unwrap_or(i64::MAX),
            documents: get(row, "documents")?,
        },
        hits,
        oldest: get(row, "oldest")?,
    })
}

/// The ids of the newest [`RANKED_MATCHES`] tickets that match the words, the filters and
/// `visible` (as for [`newest_matches`]), newest first; `None` when the planner should find
/// them ([`planned_matches`]).
///
/// The planner takes the words, the agent's teams and the filters as independent. When the
/// words are common among the tickets the caller may see, that is near enough, and the planner
/// knows how selective the filters are. When they are rare there (a word about refunds, for an
/// agent of Delivery), it walks hundreds of thousands of documents and tickets backwards
/// looking for matches that are not there (340 ms for «refunding» + solved at 1M tickets).
/// The window of the newest documents tells the two apart, as for an unfiltered search
/// ([`WindowCounts::keep_walking`]); a rare word's visible matches are few, so they come from
/// the GIN index, a few eras at a time ([`EraRounds`]), and only their tickets are tested
/// against the parts of the filter that have no terms.
///
/// The window, the rounds and the planner begin at the ticket `newest`, when given
/// ([`newest_updated_before`]).
#[allow(clippy::too_many_arguments)]
async fn filtered_matches(
    client: &Client,
    words: &SearchWords,
    visible: Option<&str>,
    search: &TicketSearch,
    newest: Option<Uuid>,
    window: i64,
    listing: i64,
) -> StoreResult<Option<Vec<Uuid>>> {
    let include_merged = search.filter.include_merged;
    let below = newest.and_then(just_above);
    let probe = probe_window(client, words, visible, include_merged, below, window).await?;
    if probe.counts.tried < window || probe.counts.keep_walking() {
        return Ok(None);
    }
    let estimate = estimated_index_matches(client, words, visible, include_merged).await?;
    // Many matches: the planner walks to the newest that pass, unless the window saw far fewer
    // of them than the estimate says. The planner takes the words and who may see a ticket as
    // independent: an agent's «r» (an English token, mostly in other teams' tickets, and in
    // none of the newest 1,024) among the tickets updated in the last 30 days walked 73,000
    // documents to keep 500 (43–52 ms), where rounds find them in a few eras.
    if estimate > probe.counts.documents * INDEX_MATCHES_SHARE && probe.counts.borne_out(estimate) {
        return Ok(None);
    }
    let start = rounds_start(client, newest).await?;
    // None of the window's documents matched: the planner's estimate is all there is to go by
    // (a supervisor's «1» among urgent tickets: 112 ms for all 15,000 matches at once).
    let per_era = if probe.counts.visible_matches > 0 {
        probe.counts.visible_per_era()
    } else {
        estimate / start.eras()
    };
    let mut rounds = words
        .era_rounds(
            client,
            visible,
            &probe.counts,
            start,
            per_era,
            RANKED_MATCHES,
            include_merged,
            Some(estimate),
        )
        .await?;
    let wanted = usize::try_from(RANKED_MATCHES).unwrap_or(usize::MAX);
    let mut hits: Vec<Uuid> = Vec::new();
    while let Some(eras) = rounds.next_round() {
        // Before asking for every older match at once, the few tickets older than those found
        // that were updated since the filter's date, when they are few.
        if eras == EraRound::Rest
            && let Some(&oldest) = hits.last()
            && let Some(passing) = few_passing_below(client, search, oldest, listing).await?
        {
            let older = newest_matches_among(client, words, visible, search, &passing).await?;
            hits.extend(older.into_iter().take(wanted - hits.len()));
            break;
        }
        let mut params = Params::default();
        // The other parts, and who may see a ticket, are terms every round asks of the index.
        let termless = termless_parts(&search.filter);
        let mut conditions = ticket_conditions(&termless, &Visibility::All, &mut params);
        conditions.push("t.id = m.ticket_id".into());
        // Each round keeps below the oldest match found, so the last one finds none twice.
        let below = match hits.last().copied().or(below) {
            Some(oldest) => format!("WHERE ticket_id < {}", params.bind(oldest)),
            None => String::new(),
        };
        let matches = round_matches(&mut params, words, &eras, visible, include_merged);
        // Materialised, so the matches come from the index whatever the planner guesses of
        // them; then each is looked up in `tickets`, newest first, until enough pass the
        // filters. Joined plainly, the planner expects seven times the matches there are and
        // walks `tickets` backwards to merge them in order (56 ms against 25 for «refunding» +
        // solved).
        let sql = format!(
            "WITH m AS MATERIALIZED ({matches}) \
             SELECT m.ticket_id FROM (SELECT ticket_id FROM m {below} ORDER BY ticket_id DESC) m \
             CROSS JOIN LATERAL (SELECT 1 FROM tickets t {where_clause} OFFSET 0) t \
             ORDER BY m.ticket_id DESC LIMIT {still_wanted}",
            where_clause = where_clause(&conditions),
            still_wanted = params.bind(i64::try_from(wanted - hits.len()).unwrap_or(i64::MAX)),
        );
        let rows = query_once(client, &sql, &params).await?;
        for row in &rows {
            hits.push(get(row, "ticket_id")?);
        }
        if hits.len() >= wanted {
            break;
        }
        rounds.found(rows.len());
    }
    Ok(Some(hits))
}

/// What an agent's search saw in its window of the newest documents.
#[derive(Debug, Clone, Copy, PartialEq)]
struct WindowCounts {
    /// Documents tried.
    tried: i64,
    /// Of which matched the words.
    word_matches: i64,
    /// Of which the agent may also see.
    visible_matches: i64,
    /// About how many documents there are in all (the planner's statistics).
    documents: f64,
}

impl WindowCounts {
    /// About how many matches the agent may see an era holds, if the older documents are like
    /// the window's.
    fn visible_per_era(&self) -> f64 {
        self.visible_matches as f64 / self.tried.max(1) as f64
            * visibility_terms::ERA_TICKETS as f64
    }

    /// Relative costs, in documents walked, of what the index does per match it returns, as
    /// measured on a million tickets: reading a posting of the word (a fifth of a document
    /// tried, counted as a third to allow for the terms of who may see it) and fetching a
    /// visible match's row (one and a half).
    const POSTING_COST: f64 = 0.3;
    const FETCH_COST: f64 = 1.5;

    /// Whether walking on past the window should cost less than asking the index for the
    /// older visible matches, if the older documents are like the window's.
    ///
    /// The index reads whole eras ([`EraRounds`]): those the walk would cross when they are few
    /// enough for the rounds, else every older document's postings at once. Weighed against
    /// every older posting, as before the eras, a supervisor's «refunding» (one document in
    /// fourteen) walked 7,300 documents in 6.7 ms where one era of the index took 3.
    fn keep_walking(&self) -> bool {
        if self.visible_matches == 0 {
            return false;
        }
        let tried = self.tried.max(1) as f64;
        let rest = (self.documents - tried).max(0.0);
        let visible_density = self.visible_matches as f64 / tried;
        // No walk goes past the oldest document.
        let walk =
            ((RANKED_MATCHES - self.visible_matches).max(0) as f64 / visible_density).min(rest);
        let era = visibility_terms::ERA_TICKETS as f64;
        let eras_read = (walk / era).ceil().max(1.0);
        let read = if eras_read <= MOST_ERAS_IN_ROUNDS as f64 {
            (eras_read * era).min(rest)
        } else {
            rest
        };
        let index = read
            * (self.word_matches as f64 / tried * Self::POSTING_COST
                + visible_density * Self::FETCH_COST);
        walk <= index
    }

    /// Whether the planner's `estimate` of all the matches agrees with the window's count, as
    /// far as the window can tell: at most twice as many an era. More, and the older documents
    /// are unlike the newest.
    fn borne_out(&self, estimate: f64) -> bool {
        let per_era = self.visible_per_era();
        let eras = (self.documents / visibility_terms::ERA_TICKETS as f64).max(1.0);
        per_era > 0.0 && estimate / eras <= 2.0 * per_era
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rounds(mut rounds: EraRounds) -> Vec<EraRound> {
        std::iter::from_fn(|| rounds.next_round()).collect()
    }

    /// The costs of rounds of era words with `postings_per_era`, that may read as much as
    /// the most.
    fn costs(postings_per_era: f64) -> RoundCosts {
        RoundCosts {
            postings_per_era,
            postings_budget: MOST_WORD_POSTINGS_IN_ROUNDS,
            fewer_teams: false,
        }
    }

    #[test]
    fn few_matches_of_fewer_teams_than_there_are_are_asked_of_the_era_words_at_once() {
        // An agent's «refunding» at 100,000 tickets: 70 visible matches an era, 480 wanted,
        // and the window read the newest tenth of era 6.
        let start = RoundsStart { era: 6, share: 0.1 };
        let agents = RoundCosts {
            fewer_teams: true,
            ..costs(1200.0)
        };
        let mut rounds = EraRounds::of_words(start, 70.0, 480, agents, 21);
        assert_eq!(rounds.next_round(), Some(words(0, 6)));
        rounds.found(300);
        assert_eq!(rounds.next_round(), None, "nothing is older than era 0");
        // Seven eras but at most five a round: the documents' rules.
        let mut rounds = EraRounds::of_words(start, 70.0, 480, agents, 5);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        // Every team's words: as many postings as the documents hold, in more terms.
        let mut rounds = EraRounds::of_words(start, 70.0, 480, costs(1200.0), 21);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
    }

    /// Rounds that begin with the whole of `era`.
    fn full(era: i64) -> RoundsStart {
        RoundsStart { era, share: 1.0 }
    }

    fn range(oldest: i64, newest: i64) -> EraRound {
        EraRound::Range {
            oldest,
            newest,
            of_words: false,
        }
    }

    fn words(oldest: i64, newest: i64) -> EraRound {
        EraRound::Range {
            oldest,
            newest,
            of_words: true,
        }
    }

    #[test]
    fn era_rounds_name_every_era_once_newest_first_then_the_rest() {
        // 40 matches an era: a page should lie within 13 eras, so the rounds begin; after 16
        // eras without a page, the rest.
        let mut expected: Vec<EraRound> = (0..8)
            .map(|round| range(199 - 2 * round, 200 - 2 * round))
            .collect();
        expected.push(EraRound::Rest);
        assert_eq!(rounds(EraRounds::new(full(200), 40.0, 500)), expected);
    }

    #[test]
    fn a_page_the_window_says_lies_past_the_rounds_is_asked_for_at_once() {
        assert_eq!(
            rounds(EraRounds::new(full(200), 1.0, 500)),
            vec![EraRound::Rest]
        );
        // No match in the window: nothing to go by.
        assert_eq!(
            rounds(EraRounds::new(full(200), 0.0, 500)),
            vec![EraRound::Rest]
        );
    }

    #[test]
    fn two_rounds_in_a_row_that_find_nothing_leave_the_rest_to_one_query() {
        let mut rounds = EraRounds::new(full(200), 100.0, 500);
        assert_eq!(rounds.next_round(), Some(range(199, 200)));
        rounds.found(0);
        assert_eq!(rounds.next_round(), Some(range(197, 198)));
        rounds.found(300);
        assert_eq!(rounds.next_round(), Some(range(195, 196)));
        rounds.found(0);
        assert_eq!(rounds.next_round(), Some(range(193, 194)));
        rounds.found(0);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        assert_eq!(rounds.next_round(), None);
    }

    #[test]
    fn rounds_that_find_too_few_to_reach_a_page_in_time_leave_the_rest_to_one_query() {
        let mut rounds = EraRounds::new(full(200), 100.0, 500);
        assert_eq!(rounds.next_round(), Some(range(199, 200)));
        // 30 an era: 470 more need 16 eras, 14 are left.
        rounds.found(60);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        let mut rounds = EraRounds::new(full(200), 100.0, 500);
        assert_eq!(rounds.next_round(), Some(range(199, 200)));
        // 40 an era: 420 more need 11 eras.
        rounds.found(80);
        assert_eq!(rounds.next_round(), Some(range(197, 198)));
    }

    #[test]
    fn word_rounds_are_sized_by_the_rate_found() {
        // An agent's «refunding» + solved: 1,200 postings of «refund» an era. The window saw
        // as many visible matches an era as a page needs, and a quarter more: one era.
        let mut rounds = EraRounds::of_words(full(60), 1200.0, 425, costs(1200.0), 64);
        assert_eq!(rounds.next_round(), Some(words(60, 60)));
        rounds.found(47);
        // 378 still wanted at 47 an era: 9 eras, and a quarter more.
        assert_eq!(rounds.next_round(), Some(words(49, 59)));
        rounds.found(0);
        // At 2 an era the rest lies past the postings the rounds may still read, and past
        // the 16 eras rounds of the documents may cover.
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        assert_eq!(rounds.next_round(), None);
    }

    #[test]
    fn word_rounds_double_after_a_round_that_finds_nothing_and_start_with_what_a_page_needs() {
        let mut rounds = EraRounds::of_words(full(200), 0.0, 500, costs(100.0), 64);
        assert_eq!(rounds.next_round(), Some(words(199, 200)));
        rounds.found(0);
        assert_eq!(rounds.next_round(), Some(words(195, 198)));
        rounds.found(30);
        // 470 more at 5 an era: 94 eras, and a quarter more, 64 at most.
        assert_eq!(rounds.next_round(), Some(words(131, 194)));
        rounds.found(0);
        rounds.found(0);
        assert_eq!(
            rounds.next_round(),
            Some(EraRound::Rest),
            "two empty rounds"
        );
        // Ten matches an era expected: a page of 500 needs 50 eras, but the first round names
        // 4 of them, and the next as many as the rate found says, 64 at most.
        let mut rounds = EraRounds::of_words(full(200), 10.0, 500, costs(100.0), 64);
        assert_eq!(rounds.next_round(), Some(words(197, 200)));
        rounds.found(4);
        assert_eq!(rounds.next_round(), Some(words(133, 196)));
        // A prefix of 8 tokens: 8 eras at most.
        let mut rounds = EraRounds::of_words(full(200), 10.0, 500, costs(100.0), 8);
        assert_eq!(rounds.next_round(), Some(words(197, 200)));
        rounds.found(4);
        assert_eq!(rounds.next_round(), Some(words(189, 196)));
    }

    #[test]
    fn a_common_word_with_a_rare_filter_leaves_the_rest_to_the_documents() {
        // «1» among open tickets: 6,500 postings of «1» an era, open tickets mostly new.
        let mut rounds = EraRounds::of_words(full(60), 200.0, 500, costs(6500.0), 64);
        assert_eq!(rounds.next_round(), Some(words(57, 60)));
        rounds.found(43);
        // 457 more at 11 an era is 43 eras, 277,000 postings, and past 16 eras: the
        // documents' index steps through the open tickets for the rest.
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        // A word in every document: the first round still reads 4 eras at most.
        let mut rounds = EraRounds::of_words(full(60), 100.0, 500, costs(16_384.0), 64);
        assert_eq!(rounds.next_round(), Some(words(57, 60)));
    }

    #[test]
    fn word_rounds_read_no_more_postings_than_the_rest_would_step_through() {
        // An agent's «refunding» among open tickets: the planner expects 4,500 of them the
        // agent may see, fewer than four eras' postings of «refund».
        let open = RoundCosts {
            postings_per_era: 1200.0,
            postings_budget: 4500.0,
            fewer_teams: false,
        };
        let mut rounds = EraRounds::of_words(full(60), 100.0, 500, open, 64);
        assert_eq!(rounds.next_round(), Some(words(58, 60)));
        rounds.found(10);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        assert_eq!(rounds.next_round(), None);
    }

    #[test]
    fn word_rounds_that_find_nothing_they_may_pay_for_leave_the_rest_to_one_query() {
        let mut rounds = EraRounds::of_words(full(60), 0.0, 500, costs(20_000.0), 64);
        assert_eq!(rounds.next_round(), Some(words(59, 60)));
        rounds.found(0);
        // 65,536 postings paid for 3 eras; 25,536 are left, for one more: the rounds found
        // nothing to tell a rate by, so the rest at once.
        assert_eq!(rounds.next_round(), Some(words(58, 58)));
        rounds.found(0);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
        // Fewer matches expected in all 61 eras than a page: the rest at once.
        let mut rounds = EraRounds::of_words(full(60), 5.0, 500, costs(1_000.0), 64);
        assert_eq!(rounds.next_round(), Some(EraRound::Rest));
    }

    #[test]
    fn an_agents_word_rounds_afford_the_eras_their_teams_share_of_the_postings_pays_for() {
        // «1» among normal-priority tickets, as an agent whose teams hold 41% of the tickets:
        // 6,000 postings of «1» an era in all teams, the window read half of era 60.
        let start = RoundsStart {
            era: 60,
            share: 0.5,
        };
        let every_team = costs(6_000.0);
        let agents = every_team.of_teams(true, 0.41);
        assert!((agents.postings_per_era - 2_460.0).abs() < 1e-9);
        assert!(agents.fewer_teams);
        assert_eq!(every_team.of_teams(false, 0.41), every_team);

        let mut rounds = EraRounds::of_words(start, 0.0, 484, agents, 21);
        assert_eq!(rounds.next_round(), Some(words(59, 60)));
        // 32 an era: 436 more lie within 14 eras, and 25 are paid for.
        rounds.found(48);
        assert_eq!(rounds.next_round(), Some(words(41, 58)));

        // Counted for every team, 9 are paid for: the documents' rounds of two eras.
        let mut rounds = EraRounds::of_words(start, 0.0, 484, every_team, 21);
        assert_eq!(rounds.next_round(), Some(words(59, 60)));
        rounds.found(48);
        assert_eq!(rounds.next_round(), Some(range(57, 58)));
    }

    #[test]
    fn word_rounds_that_may_read_no_more_leave_the_eras_to_the_documents_rounds() {
        // «заказ» among tickets of no team: 12,000 postings an era, 25 matches an era.
        let mut rounds = EraRounds::of_words(full(60), 50.0, 495, costs(12_000.0), 64);
        assert_eq!(rounds.next_round(), Some(words(57, 60)));
        rounds.found(100);
        // 395 more at 25 an era lie within 16 eras: rounds of the documents, two eras each.
        assert_eq!(rounds.next_round(), Some(range(55, 56)));
        rounds.found(50);
        assert_eq!(rounds.next_round(), Some(range(53, 54)));
    }

    /// A store in a database of its own (dropped with the guard) with one customer.
    async fn store_with_a_customer() -> (
        crate::PostgresStore,
        otklik_domain::customer::Customer,
        crate::testkit::DropDatabase,
    ) {
        use otklik_store::conformance::new_customer;
        use otklik_store::{Mutation, Store, UnitOfWork};

        let (url, database) = crate::testkit::create_database().await;
        let store = crate::PostgresStore::connect(&url, 2)
            .await
            .expect("connects");
        let customer = new_customer("Dated", "dated-customer@example.com");
        store
            .commit(UnitOfWork::new().with(Mutation::InsertCustomer(customer.clone())))
            .await
            .expect("a customer");
        (store, customer, database)
    }

    #[tokio::test]
    async fn the_tickets_older_than_a_search_has_found_are_listed_when_few_were_updated_since() {
        use otklik_store::conformance::new_ticket;
        use otklik_store::{Mutation, Store, TicketFilter, UnitOfWork};

        let (store, customer, _database) = store_with_a_customer().await;
        // Ten tickets, oldest first; the second, the fifth and the ninth were updated lately.
        let since = jiff::Timestamp::from_second(1_900_000_000).expect("a time");
        let mut ids = Vec::new();
        for index in 0..10 {
            let mut ticket = new_ticket(customer.id, &format!("Dated {index}"), index);
            if [1, 4, 8].contains(&index) {
                ticket.created_at = since;
            }
            ids.push(ticket.id.0);
            store
                .commit(UnitOfWork::new().with(Mutation::InsertTicket(ticket)))
                .await
                .expect("a ticket");
        }
        let client = store.client().await.expect("a connection");
        let search = |updated_since| TicketSearch {
            query: otklik_search::parse_query("dated ").expect("a query"),
            filter: TicketFilter {
                updated_since,
                ..TicketFilter::default()
            },
            visibility: Visibility::All,
            limit: 10,
        };
        let dated = search(Some(since));
        let sorted = |mut ids: Vec<Uuid>| {
            ids.sort();
            ids
        };
        // Below the eighth: the second and the fifth, never the ninth.
        let below_eighth = few_passing_below(&client, &dated, ids[7], 2)
            .await
            .expect("lists");
        assert_eq!(below_eighth.map(sorted), Some(sorted(vec![ids[1], ids[4]])));
        // More than `few`, or no date: not listed.
        assert_eq!(
            few_passing_below(&client, &dated, ids[7], 1)
                .await
                .expect("lists"),
            None
        );
        assert_eq!(
            few_passing_below(&client, &search(None), ids[7], 100)
                .await
                .expect("lists"),
            None
        );
        // Below the second: none, and that is listed.
        assert_eq!(
            few_passing_below(&client, &dated, ids[1], 2)
                .await
                .expect("lists"),
            Some(Vec::new())
        );
        drop(client);
        store.close();
    }

    #[tokio::test]
    async fn a_search_before_a_date_starts_at_the_newest_ticket_updated_before_it() {
        use otklik_store::conformance::new_ticket;
        use otklik_store::{Mutation, Store, TicketFilter, UnitOfWork};

        let (store, customer, _database) = store_with_a_customer().await;
        // Ten tickets, the `i`th created at 1,800,000,000 + `i` seconds (`new_ticket`): the first
        // five in era 0, in one unit, oldest first; the next five in era 1, in one unit, newest
        // first; and one more in era 1, in a unit of its own.
        let client = store.client().await.expect("a connection");
        let new_tickets: Vec<_> = (0..11)
            .map(|index| new_ticket(customer.id, &format!("Dated {index}"), index))
            .collect();
        let mut era_0 = UnitOfWork::new();
        for ticket in &new_tickets[..5] {
            era_0 = era_0.with(Mutation::InsertTicket(ticket.clone()));
        }
        store.commit(era_0).await.expect("tickets");
        client
            .batch_execute(&format!(
                "SELECT setval('ticket_number_seq', {})",
                visibility_terms::ERA_TICKETS
            ))
            .await
            .expect("numbers the next tickets in era 1");
        let mut era_1 = UnitOfWork::new();
        for ticket in new_tickets[5..10].iter().rev() {
            era_1 = era_1.with(Mutation::InsertTicket(ticket.clone()));
        }
        store.commit(era_1).await.expect("tickets");
        let last = UnitOfWork::new().with(Mutation::InsertTicket(new_tickets[10].clone()));
        store.commit(last).await.expect("a ticket");
        let mut tickets = Vec::new();
        for ticket in &new_tickets {
            let stored = store.find_ticket(ticket.id).await.expect("reads");
            tickets.push(stored.expect("the ticket"));
        }
        let ids: Vec<Uuid> = tickets.iter().map(|ticket| ticket.id.0).collect();
        assert_eq!(visibility_terms::era_of(tickets[5].number), 1);
        let second = |second| jiff::Timestamp::from_second(second).expect("a time");
        let before_fourth = second(1_800_000_003);
        let bound = |before, walk| newest_updated_before(&client, before, walk);
        let up_to = |index: usize| UpdatedBefore::UpTo { newest: ids[index] };
        // Era 0 holds the first three; going down from its newest ticket finds the third.
        assert_eq!(bound(before_fourth, 16).await.expect("reads"), up_to(2));
        // Not that far down: the era's newest ticket, which no ticket updated before is above.
        assert_eq!(bound(before_fourth, 1).await.expect("reads"), up_to(4));
        // Era 1's earliest update is its oldest ticket's, whatever the order they came in.
        assert_eq!(
            bound(second(1_800_000_006), 16).await.expect("reads"),
            up_to(5)
        );
        assert_eq!(
            bound(second(0), 16).await.expect("reads"),
            UpdatedBefore::None
        );
        assert_eq!(
            bound(second(2_000_000_000), 16).await.expect("reads"),
            up_to(10)
        );
        // A node whose clock is behind updates the eighth (era 1) before the fourth was
        // created: era 1 now holds a ticket updated before that too.
        let mut moved_back = tickets[7].clone();
        moved_back.updated_at = second(1_800_000_001);
        store
            .commit(UnitOfWork::new().with(Mutation::UpdateTicket {
                ticket: moved_back,
                expected_version: tickets[7].version,
            }))
            .await
            .expect("an update");
        assert_eq!(bound(before_fourth, 16).await.expect("reads"), up_to(7));
        // And era 1's newest ticket is still its newest.
        assert_eq!(
            bound(second(2_000_000_000), 16).await.expect("reads"),
            up_to(10)
        );
        // The search finds those four, from a window of two documents or of all of them, by
        // walking or by listing; and none before the first.
        let search = |updated_before| TicketSearch {
            query: otklik_search::parse_query("dated ").expect("a query"),
            filter: TicketFilter {
                updated_before: Some(updated_before),
                ..TicketFilter::default()
            },
            visibility: Visibility::All,
            limit: 20,
        };
        let found = |tickets: Vec<Ticket>| {
            let mut found: Vec<Uuid> = tickets.iter().map(|ticket| ticket.id.0).collect();
            found.sort();
            found
        };
        let mut expected: Vec<Uuid> = [0, 1, 2, 7].iter().map(|&i| ids[i]).collect();
        expected.sort();
        for (window, listing) in [(2, 0), (1024, 0), (2, 100)] {
            let found_tickets = search_tickets(&client, &search(before_fourth), window, listing)
                .await
                .expect("searches");
            assert_eq!(
                found(found_tickets),
                expected,
                "window {window}, listing {listing}"
            );
        }
        let none = search_tickets(&client, &search(second(0)), 2, 0)
            .await
            .expect("searches");
        assert_eq!(found(none), Vec::<Uuid>::new());
        // A rebuild keeps each era's bounds as its tickets hold them now.
        store.rebuild_derived_data().await.expect("rebuilds");
        assert_eq!(bound(before_fourth, 16).await.expect("reads"), up_to(7));
        // The id just above a ticket's keeps it and no later ticket, in PostgreSQL's order;
        // carried across bytes; none above the largest.
        let carried = Uuid::from_u128(0xff);
        assert_eq!(just_above(carried), Some(Uuid::from_u128(0x100)));
        assert_eq!(just_above(Uuid::max()), None);
        for (id, next) in [(ids[7], ids[8]), (carried, Uuid::from_u128(0x100))] {
            let above = just_above(id).expect("an id above");
            let row = client
                .query_one(
                    "SELECT $1::uuid < $2::uuid AND $2::uuid <= $3::uuid AS between",
                    &[&id, &above, &next],
                )
                .await
                .expect("compares");
            assert!(row.get::<_, bool>("between"), "{id} < {above} <= {next}");
        }
        drop(client);
        store.close();
    }

    #[tokio::test]
    async fn an_agents_era_teams_are_their_own_no_team_and_those_where_tickets_are_assigned_to_them()
     {
        use otklik_store::conformance::{new_agent, new_customer, new_ticket};
        use otklik_store::{Mutation, Store, UnitOfWork};

        let (url, _database) = crate::testkit::create_database().await;
        // Two connections: the test holds one while the store commits on the other.
        let store = crate::PostgresStore::connect(&url, 2)
            .await
            .expect("connects");
        let team = |name: &str| Team {
            id: otklik_domain::ids::TeamId::new(),
            name: name.into(),
            created_at: jiff::Timestamp::UNIX_EPOCH,
        };
        let (mine, other, third) = (team("Mine"), team("Other"), team("Third"));
        let agent = new_agent(
            "codes@example.com",
            otklik_domain::agent::Role::Agent,
            vec![mine.id],
        );
        let customer = new_customer("Codes", "codes-customer@example.com");
        let mut unit = UnitOfWork::new();
        for team in [&mine, &other, &third] {
            unit = unit.with(Mutation::InsertTeam(team.clone()));
        }
        store
            .commit(
                unit.with(Mutation::InsertAgent {
                    agent: agent.clone(),
                    password_hash: None,
                })
                .with(Mutation::InsertCustomer(customer.clone())),
            )
            .await
            .expect("teams, agent and customer");
        let client = store.client().await.expect("a connection");
        let code_of = |team: &Team| {
            let client = &client;
            let id = team.id.0;
            async move {
                let rows = query(
                    client,
                    "SELECT code FROM team_search_codes WHERE team_id = $1",
                    &[&id],
                )
                .await
                .expect("a code");
                get::<i64>(&rows[0], "code").expect("a code").to_string()
            }
        };
        let (mine_code, other_code) = (code_of(&mine).await, code_of(&other).await);
        let visibility = Visibility::Agent {
            agent_id: agent.id,
            team_ids: vec![mine.id],
        };
        // The teams' codes as a search of the agent reads them now.
        let codes_now = |include_merged: bool| {
            let (client, visibility) = (&client, &visibility);
            async move {
                EraTeams::of(visibility, include_merged)
                    .codes(client)
                    .await
                    .expect("codes")
                    .clone()
            }
        };

        let codes = codes_now(false).await;
        assert_eq!(codes.spellings, vec!["0".to_owned(), mine_code.clone()]);
        assert!(codes.implies_who && codes.fewer_teams);
        assert_eq!(
            codes.share_of_tickets, 1.0,
            "no tickets: as if in every team"
        );

        // A ticket in their team, one without a team, one in the third team: they read two.
        let mut unit = UnitOfWork::new();
        for (subject, team) in [
            ("Mine", Some(mine.id)),
            ("None", None),
            ("Third", Some(third.id)),
        ] {
            let mut ticket = new_ticket(customer.id, subject, 0);
            ticket.team_id = team;
            unit = unit.with(Mutation::InsertTicket(ticket));
        }
        store.commit(unit).await.expect("tickets");
        let codes = codes_now(false).await;
        assert_eq!(codes.spellings, vec!["0".to_owned(), mine_code.clone()]);
        assert!(
            (codes.share_of_tickets - 2.0 / 3.0).abs() < 1e-9,
            "{codes:?}"
        );

        let mut assigned = new_ticket(customer.id, "Assigned elsewhere", 0);
        assigned.team_id = Some(other.id);
        assigned.assignee_id = Some(agent.id);
        store
            .commit(UnitOfWork::new().with(Mutation::InsertTicket(assigned)))
            .await
            .expect("a ticket");
        let codes = codes_now(false).await;
        let mut expected = vec!["0".to_owned(), mine_code, other_code];
        expected[1..].sort_by_key(|code| code.parse::<i64>().expect("a number"));
        assert_eq!(codes.spellings, expected);
        assert!(
            !codes.implies_who,
            "the other team's other tickets are not theirs"
        );
        assert!(codes.fewer_teams, "the third team is left out");
        assert!(
            (codes.share_of_tickets - 3.0 / 4.0).abs() < 1e-9,
            "{codes:?}"
        );

        // With merged tickets, and for a supervisor: every team, and a team without a code.
        let every = codes_now(true).await;
        assert_eq!(every.spellings.len(), 1 + 3 + 1);
        assert_eq!(every.spellings.last().map(String::as_str), Some("x"));
        assert!(!every.implies_who && !every.fewer_teams);
        drop(client);
        store.close();
    }

    #[test]
    fn rounds_leave_out_who_may_see_a_ticket_only_when_the_teams_spelled_imply_it() {
        let agent_id = otklik_domain::ids::AgentId::new();
        let team_ids = vec![otklik_domain::ids::TeamId::new()];
        let visibility = Visibility::Agent {
            agent_id,
            team_ids: team_ids.clone(),
        };
        let who = visibility_terms::agent_query(agent_id, &team_ids);
        let with_filter = format!("({who}) & (('SSOLVED'))");
        let teams = |implies_who: bool| {
            let teams = EraTeams::of(&visibility, false);
            teams
                .codes
                .set(TeamCodes {
                    spellings: vec!["0".into(), "3".into()],
                    implies_who,
                    fewer_teams: true,
                    share_of_tickets: 1.0,
                })
                .expect("not loaded yet");
            teams
        };
        let implied = teams(true);
        assert_eq!(implied.visible_in_rounds(Some(&who)), None);
        assert_eq!(
            implied.visible_in_rounds(Some(&with_filter)),
            Some("(('SSOLVED'))")
        );
        assert_eq!(implied.visible_in_rounds(None), None);
        // A ticket assigned to the agent in another team is spelled with that team's code,
        // whose other tickets the agent may not see: the terms stay.
        let assigned_elsewhere = teams(false);
        assert_eq!(
            assigned_elsewhere.visible_in_rounds(Some(&with_filter)),
            Some(with_filter.as_str())
        );
        // Not loaded, or a supervisor's: as it is.
        let unloaded = EraTeams::of(&visibility, false);
        assert_eq!(unloaded.visible_in_rounds(Some(&who)), Some(who.as_str()));
        let every = EraTeams::of(&Visibility::All, false);
        every
            .codes
            .set(TeamCodes {
                spellings: vec!["0".into()],
                implies_who: false,
                fewer_teams: false,
                share_of_tickets: 1.0,
            })
            .expect("not loaded yet");
        assert_eq!(
            every.visible_in_rounds(Some("(('SSOLVED'))")),
            Some("(('SSOLVED'))")
        );
        // With merged tickets, every team's words are read and the terms stay.
        assert!(matches!(EraTeams::of(&visibility, true).of, TeamsOf::Every));
    }

    #[test]
    fn only_words_of_few_tokens_are_asked_of_the_era_words() {
        let words = |tokens: usize, codes: Vec<i64>| SearchWords {
            walked: String::new(),
            indexed: String::new(),
            query: otklik_search::parse_query("дост")
                .expect("a query")
                .expand_prefixes(|_| {
                    Ok::<_, ()>((0..tokens).map(|n| format!("дост{n:02}")).collect())
                })
                .expect("expands"),
            teams: EraTeams {
                of: TeamsOf::Every,
                codes: tokio::sync::OnceCell::new_with(Some(TeamCodes {
                    spellings: codes.iter().map(i64::to_string).collect(),
                    implies_who: false,
                    fewer_teams: false,
                    share_of_tickets: 1.0,
                })),
            },
        };
        let no_team = visibility_terms::NO_TEAM_CODE;
        let eight = words(8, vec![no_team]).rounds(full(60), 100.0, 500, costs(1600.0));
        assert_eq!(eight.of_words.map(|rounds| rounds.most_eras), Some(8));
        // Each word is spelled for each team (V32): half the eras for two.
        let two_teams = words(8, vec![no_team, 1]).rounds(full(60), 100.0, 500, costs(1600.0));
        assert_eq!(two_teams.of_words.map(|rounds| rounds.most_eras), Some(4));
        assert_eq!(
            words(40, vec![no_team])
                .rounds(full(60), 100.0, 500, costs(1600.0))
                .of_words,
            None
        );
        // Nothing is spelled before the codes are known.
        let unknown = SearchWords {
            teams: EraTeams::of(&Visibility::All, false),
            ..words(8, vec![])
        };
        assert_eq!(
            unknown.rounds(full(60), 100.0, 500, costs(1600.0)).of_words,
            None
        );
    }

    #[test]
    fn era_rounds_stop_at_the_first_era() {
        assert_eq!(
            rounds(EraRounds::new(full(5), 1000.0, 500)),
            vec![range(4, 5), range(2, 3), range(0, 1)]
        );
        assert_eq!(
            rounds(EraRounds::new(full(2), 1000.0, 500)),
            vec![range(1, 2), range(0, 0)]
        );
    }

    #[test]
    fn rounds_that_would_read_most_eras_leave_them_to_one_query() {
        // An agent's «refunding» at 100,000 tickets: 50 matches an era, 500 wanted, and the
        // window's era 6 is a twenty-fifth read.
        let start = RoundsStart {
            era: 6,
            share: 0.04,
        };
        assert_eq!(
            rounds(EraRounds::new(start, 50.0, 500)),
            vec![EraRound::Rest]
        );
        // Half the eras or fewer: rounds.
        assert_eq!(
            EraRounds::new(start, 200.0, 500).next_round(),
            Some(range(5, 6))
        );
    }

    #[test]
    fn the_first_round_counts_the_newest_era_by_the_share_of_it_left() {
        let start = RoundsStart::at_number(100_005);
        assert_eq!(start.era, 6);
        assert_eq!(start.share, 1_702.0 / 16_384.0);
        // A supervisor's «refunding»: 1,120 matches an era, 388 wanted. A whole era would
        // hold them and a quarter more; a tenth of one does not, so the first round reads two.
        let mut rounds = EraRounds::of_words(start, 1120.0, 388, costs(1120.0), 64);
        assert_eq!(rounds.next_round(), Some(words(5, 6)));
        let mut whole = EraRounds::of_words(full(6), 1120.0, 388, costs(1120.0), 64);
        assert_eq!(whole.next_round(), Some(words(6, 6)));
        // 120 found in 1.1 eras: the rate is 108 an era, not 60, and the 268 still wanted
        // need 2.5 eras, 3.1 with a quarter more: 4.
        rounds.found(120);
        assert_eq!(rounds.next_round(), Some(words(1, 4)));
    }

    #[test]
    fn an_era_rounds_query_keeps_the_other_terms() {
        assert_eq!(
            range(3, 4).with(Some("'TNONE' | 'T1'")).as_deref(),
            Some("('TNONE' | 'T1') & ('E4' | 'E3')")
        );
        assert_eq!(range(3, 4).with(None).as_deref(), Some("('E4' | 'E3')"));
        assert_eq!(
            EraRound::Rest.with(Some("'SOPEN'")).as_deref(),
            Some("'SOPEN'")
        );
        assert_eq!(EraRound::Rest.with(None), None);
    }

    fn window(word_matches: i64, visible_matches: i64, documents: f64) -> WindowCounts {
        WindowCounts {
            tried: 4096,
            word_matches,
            visible_matches,
            documents,
        }
    }

    #[test]
    fn a_word_the_agent_mostly_may_not_see_is_asked_of_the_index() {
        // Delivery and VIP searching «refunding» among a million tickets: 7% of the documents
        // match, 0.4% are theirs.
        assert!(!window(300, 17, 1_000_000.0).keep_walking());
        assert!(
            !window(300, 0, 1_000_000.0).keep_walking(),
            "nothing visible seen"
        );
    }

    #[test]
    fn a_word_common_among_the_agents_tickets_is_walked_on() {
        // Nearly enough matches in the window: a few more documents finish the page.
        assert!(window(3000, 480, 1_000_000.0).keep_walking());
        // One in ten documents visible: the walk reads about 1,000 more for the last 100; the
        // index would fetch about 100,000 matches.
        assert!(window(1600, 400, 1_000_000.0).keep_walking());
    }

    #[test]
    fn a_word_in_one_document_of_fourteen_is_asked_of_the_index_an_era_at_a_time() {
        let first_window = |matches| WindowCounts {
            tried: 1024,
            word_matches: matches,
            visible_matches: matches,
            documents: 1_000_000.0,
        };
        // A supervisor's «refunding» among a million tickets: the walk would try about 6,000
        // more documents for the page; one era of the index reads ~1,200 postings and fetches
        // as many matches, worth about 2,100 documents tried.
        assert!(!first_window(73).keep_walking());
        // One document in seven: the walk tries about 2,500 more, the era is worth 4,200.
        assert!(first_window(146).keep_walking());
    }

    #[test]
    fn the_window_bears_out_an_estimate_of_its_share_of_matches_an_era() {
        // 290 matches in 4,096 documents: about 1,160 an era, 71,000 in 61 eras.
        let refunding = window(290, 290, 1_000_000.0);
        assert!(refunding.borne_out(72_891.0));
        // The planner expects five times as many: the older documents are unlike the window.
        assert!(!refunding.borne_out(360_000.0));
        assert!(!window(0, 0, 1_000_000.0).borne_out(50_000.0));
    }

    #[test]
    fn a_walk_is_never_counted_past_the_oldest_document() {
        // 36 documents left, all matching the word: walking them all costs 36; asking the index
        // costs 37.8 when half are visible and 24.3 when a quarter are.
        let small = |visible| WindowCounts {
            tried: 4,
            word_matches: 4,
            visible_matches: visible,
            documents: 40.0,
        };
        assert!(small(2).keep_walking());
        assert!(!small(1).keep_walking());
    }
}
