//! The read side: one function per query of the port. Every list is one query for the page plus
//! at most one query per child collection (tags, identities, attachments, teams), never one per
//! row.

use std::collections::{BTreeSet, HashMap};

use otklik_domain::agent::{Agent, Tag, Team};
use otklik_domain::attachment::AttachmentMeta;
use otklik_domain::audit::StoredAuditEvent;
use otklik_domain::customer::{Customer, CustomerMerge, Identity, IdentityValue};
use otklik_domain::ids::*;
use otklik_domain::message::{Author, Message};
use otklik_domain::permission::Scope;
use otklik_domain::ticket::Ticket;
use otklik_store::count_cache::{CountCache, counts_through};
use otklik_store::derived::CountPlan;
use otklik_store::{
    ApiTokenRecord, AssigneeFilter, CustomerQuery, IdPage, IdempotencyRecord, MAX_PAGE_SIZE,
    PasswordResetRecord, RANKED_MATCHES, SessionRecord, SetupTokenRecord, SortedTicketCursor,
    SortedTicketQuery, TeamFilter, TicketCountQuery, TicketFilter, TicketQuery, TicketSearch,
    TicketSort, TicketSortKey, Visibility,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, ToSql, params_from_iter};

use crate::rows::*;

const TICKET_COLUMNS: &str = "t.id, t.number, t.subject, t.status, t.priority, t.channel, \
     t.customer_id, t.assignee_id, t.team_id, t.merged_into, t.created_at, t.updated_at, \
     t.first_agent_reply_at, t.solved_at, t.closed_at, t.version";

fn ticket_from_row(row: &Row<'_>) -> rusqlite::Result<Ticket> {
    Ok(Ticket {
        id: TicketId(uuid_at(row, 0)?),
        number: row.get(1)?,
        subject: row.get(2)?,
        status: parse_at(row, 3)?,
        priority: parse_at(row, 4)?,
        channel: parse_at(row, 5)?,
        customer_id: CustomerId(uuid_at(row, 6)?),
        assignee_id: opt_uuid_at(row, 7)?.map(AgentId),
        team_id: opt_uuid_at(row, 8)?.map(TeamId),
        tags: Vec::new(),
        merged_into: opt_uuid_at(row, 9)?.map(TicketId),
        created_at: time_at(row, 10)?,
        updated_at: time_at(row, 11)?,
        first_agent_reply_at: opt_time_at(row, 12)?,
        solved_at: opt_time_at(row, 13)?,
        closed_at: opt_time_at(row, 14)?,
        version: row.get(15)?,
    })
}

/// Fills in the tags of a page of tickets with one query.
fn attach_tags(connection: &Connection, tickets: &mut [Ticket]) -> rusqlite::Result<()> {
    if tickets.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT tt.ticket_id, g.name FROM ticket_tags tt JOIN tags g ON g.id = tt.tag_id \
         WHERE tt.ticket_id IN ({}) ORDER BY g.name",
        placeholders(tickets.len())
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let params = tickets.iter().map(|ticket| id_value(ticket.id.0));
    let mut by_ticket: HashMap<uuid::Uuid, Vec<String>> = HashMap::new();
    let mut rows = statement.query(params_from_iter(params))?;
    while let Some(row) = rows.next()? {
        by_ticket
            .entry(uuid_at(row, 0)?)
            .or_default()
            .push(row.get(1)?);
    }
    for ticket in tickets {
        ticket.tags = by_ticket.remove(&ticket.id.0).unwrap_or_default();
    }
    Ok(())
}

pub fn find_ticket(
    connection: &Connection,
    predicate: &str,
    key: &dyn ToSql,
) -> rusqlite::Result<Option<Ticket>> {
    let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE {predicate}");
    let ticket = connection
        .prepare_cached(&sql)?
        .query_row([key], ticket_from_row)
        .optional()?;
    let Some(ticket) = ticket else {
        return Ok(None);
    };
    let mut tickets = [ticket];
    attach_tags(connection, &mut tickets)?;
    let [ticket] = tickets;
    Ok(Some(ticket))
}

/// SQL conditions on tickets `t` for a filter and a visibility, with their bound values.
fn ticket_conditions(filter: &TicketFilter, visibility: &Visibility) -> (Vec<String>, Vec<Value>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    let mut any_of = |column: &str, values: Vec<Value>| {
        if !values.is_empty() {
            conditions.push(format!("{column} IN ({})", placeholders(values.len())));
            params.extend(values);
        }
    };
    any_of(
        "t.status",
        filter
            .statuses
            .iter()
            .map(|s| Value::Text(s.as_str().into()))
            .collect(),
    );
    any_of(
        "t.priority",
        filter
            .priorities
            .iter()
            .map(|p| Value::Text(p.as_str().into()))
            .collect(),
    );
    any_of(
        "t.channel",
        filter
            .channels
            .iter()
            .map(|c| Value::Text(c.as_str().into()))
            .collect(),
    );
    if !filter.include_merged {
        conditions.push("t.merged_into IS NULL".into());
    }
    match filter.assignee {
        Some(AssigneeFilter::Unassigned) => conditions.push("t.assignee_id IS NULL".into()),
        Some(AssigneeFilter::Agent(agent_id)) => {
            conditions.push("t.assignee_id = ?".into());
            params.push(id_value(agent_id.0));
        }
        None => {}
    }
    match filter.team {
        Some(TeamFilter::NoTeam) => conditions.push("t.team_id IS NULL".into()),
        Some(TeamFilter::Team(team_id)) => {
            conditions.push("t.team_id = ?".into());
            params.push(id_value(team_id.0));
        }
        None => {}
    }
    if let Some(tag) = &filter.tag {
        conditions.push(
            "EXISTS (SELECT 1 FROM ticket_tags tt JOIN tags g ON g.id = tt.tag_id \
             WHERE tt.ticket_id = t.id AND g.name = ?)"
                .into(),
        );
        params.push(Value::Text(tag.clone()));
    }
    if let Some(customer_id) = filter.customer_id {
        conditions.push("t.customer_id = ?".into());
        params.push(id_value(customer_id.0));
    }
    if let Some(since) = filter.updated_since {
        conditions.push("t.updated_at >= ?".into());
        params.push(time_value(since));
    }
    if let Some(before) = filter.updated_before {
        conditions.push("t.updated_at < ?".into());
        params.push(time_value(before));
    }
    if let Visibility::Agent { agent_id, team_ids } = visibility {
        let mut visible = vec![
            "t.team_id IS NULL".to_owned(),
            "t.assignee_id = ?".to_owned(),
        ];
        params.push(id_value(agent_id.0));
        if !team_ids.is_empty() {
            visible.push(format!("t.team_id IN ({})", placeholders(team_ids.len())));
            params.extend(team_ids.iter().map(|team_id| id_value(team_id.0)));
        }
        conditions.push(format!("({})", visible.join(" OR ")));
    }
    (conditions, params)
}

pub fn list_tickets(connection: &Connection, query: &TicketQuery) -> rusqlite::Result<Vec<Ticket>> {
    list_tickets_sorted(
        connection,
        &SortedTicketQuery {
            filter: query.filter.clone(),
            visibility: query.visibility.clone(),
            sort: TicketSort::default(),
            after: query.after.map(|cursor| SortedTicketCursor {
                key: otklik_domain::clock::to_micros(cursor.updated_at),
                id: cursor.id,
            }),
            limit: query.limit,
        },
    )
}

/// The urgency of `t.priority` as a number: the very expression the `tickets_by_priority`
/// indexes of migration V6 are built on, so SQLite walks them instead of sorting.
const PRIORITY_RANK: &str = "(CASE t.priority WHEN 'low' THEN 0 WHEN 'normal' THEN 1 \
     WHEN 'high' THEN 2 WHEN 'urgent' THEN 3 ELSE 1 END)";

pub fn list_tickets_sorted(
    connection: &Connection,
    query: &SortedTicketQuery,
) -> rusqlite::Result<Vec<Ticket>> {
    let (mut conditions, mut params) = ticket_conditions(&query.filter, &query.visibility);
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
    let unique_key = query.sort.key == TicketSortKey::Number;
    if let Some(cursor) = query.after {
        if unique_key {
            conditions.push(format!("{key} {beyond} ?"));
            params.push(Value::Integer(cursor.key));
        } else {
            conditions.push(format!("({key}, t.id) {beyond} (?, ?)"));
            params.push(Value::Integer(cursor.key));
            params.push(id_value(cursor.id.0));
        }
    }
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    params.push(Value::Integer(i64::from(
        query.limit.clamp(1, MAX_PAGE_SIZE),
    )));
    let order = if unique_key {
        format!("{key} {direction}")
    } else {
        format!("{key} {direction}, t.id {direction}")
    };
    let sql =
        format!("SELECT {TICKET_COLUMNS} FROM tickets t {where_clause} ORDER BY {order} LIMIT ?");
    let mut statement = connection.prepare_cached(&sql)?;
    let mut tickets = statement
        .query_map(params_from_iter(params), ticket_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    attach_tags(connection, &mut tickets)?;
    Ok(tickets)
}

/// The shortest vocabulary tokens starting with `prefix`, at most
/// [`otklik_search::MAX_PREFIX_TOKENS`]: one short index range per token length.
fn prefix_tokens(connection: &Connection, prefix: &str) -> rusqlite::Result<Vec<String>> {
    let upper = otklik_store::derived::prefix_upper_bound(prefix);
    let mut statement = connection.prepare_cached(
        "SELECT term FROM search_terms WHERE chars = ?1 AND term >= ?2 AND term < ?3 \
         ORDER BY term LIMIT ?4",
    )?;
    let mut tokens = Vec::new();
    for chars in prefix.chars().count()..=otklik_search::MAX_TOKEN_CHARS {
        let room = otklik_search::MAX_PREFIX_TOKENS - tokens.len();
        if room == 0 {
            break;
        }
        let found = statement.query_map(rusqlite::params![chars, prefix, upper, room], |row| {
            row.get(0)
        })?;
        for token in found {
            tokens.push(token?);
        }
    }
    Ok(tokens)
}

/// The most tickets a filter may let through for a search to list them first
/// ([`few_passing_tickets`]).
const FEW_PASSING_TICKETS: i64 = 20_000;

/// The rowids of the tickets that pass the search's filters and visibility (`extra`: the
/// conditions on `tickets t`, bound after the words in `params`), when the filter has a part the
/// full-text index has no terms for but an index of `tickets` lists (a date range, a customer,
/// no assignee) and at most `few` ([`FEW_PASSING_TICKETS`]) pass. A common word
/// then costs a walk through its doclist, not a lookup in `tickets` for each of its matches:
/// a supervisor's «r» among the tickets updated in the last two days, 7,700 of a million,
/// tried all 155,000 matches there (130 ms). `None` otherwise: the matches are tested as they
/// come.
fn few_passing_tickets(
    connection: &Connection,
    filter: &TicketFilter,
    updated_since: Option<UpdatedSince>,
    updated_before: Option<UpdatedBefore>,
    few: i64,
    extra: &str,
    params: &[Value],
) -> rusqlite::Result<Option<std::collections::HashSet<i64>>> {
    // Only filters an index of `tickets` lists cheaply, and that often let few tickets through.
    // A priority, a channel or a tag usually holds tens of thousands: listing 20,000 of them
    // before giving up cost more than the walk it would spare («r» + urgent: 27 ms → 90 ms).
    // Nor a lower date bound that more tickets were updated since: an agent's listing of the
    // tickets they may see among the 93,000 of the last 30 days reached 20,001 in 29 ms, and
    // the walk, bounded by the oldest of them, does without.
    let few_updated_since = match updated_since {
        Some(UpdatedSince::From { tickets, .. }) => tickets <= few,
        Some(UpdatedSince::None | UpdatedSince::Many) | None => false,
    };
    let few_updated_before = match updated_before {
        Some(UpdatedBefore::UpTo {
            tickets: Some(tickets),
            ..
        }) => tickets <= few,
        Some(UpdatedBefore::None | UpdatedBefore::Many | UpdatedBefore::UpTo { .. }) | None => {
            false
        }
    };
    let listed_by_an_index = few_updated_since
        || few_updated_before
        || filter.customer_id.is_some()
        || filter.assignee == Some(AssigneeFilter::Unassigned);
    if !listed_by_an_index {
        return Ok(None);
    }
    // The filter's values follow the words in `params`, and the limit follows them.
    let values = &params[1..params.len() - 1];
    let sql = format!("SELECT t.rowid FROM tickets t WHERE 1{extra} LIMIT ?");
    let mut statement = connection.prepare_cached(&sql)?;
    let limit = Value::Integer(few + 1);
    let passing = statement
        .query_map(
            params_from_iter(values.iter().chain(std::iter::once(&limit))),
            |row| row.get::<_, i64>(0),
        )?
        .collect::<rusqlite::Result<std::collections::HashSet<i64>>>()?;
    Ok((passing.len() as i64 <= few).then_some(passing))
}

/// The most tickets updated since a search's lower date bound that it counts to bound its walk
/// ([`oldest_updated_since`]): about 12 ms of a covering index at most.
const MOST_TICKETS_TO_BOUND_A_WALK: i64 = 262_144;

/// Where the tickets updated at or after `since` begin, when a search filters by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdatedSince {
    /// None is.
    None,
    /// `tickets` are, the oldest at `oldest` (a rowid): no older ticket passes the filter.
    From { oldest: i64, tickets: i64 },
    /// More than [`MOST_TICKETS_TO_BOUND_A_WALK`] are: the walk is not bounded.
    Many,
}

/// [`UpdatedSince`] of `since`, from the index of tickets by update (`count` keeps it to the
/// covering index: `min(rowid)` alone walked the table in rowid order, 90 ms).
///
/// Why: a search walks the matches of its words newest first until it has a page to rank, and
/// when fewer than that pass the filter it walks to the oldest ticket. A date range is no term
/// of the full-text index, so an agent's «refunding» among the tickets updated in the last 30
/// days (93,000 of a million, and few refunds among them) tested every refund they may see
/// since the first ticket (56 ms). Every ticket updated since the date is at or above the
/// oldest of them, so the walk stops there.
pub(crate) fn oldest_updated_since(
    connection: &Connection,
    since: jiff::Timestamp,
) -> rusqlite::Result<UpdatedSince> {
    let (tickets, oldest): (i64, Option<i64>) = connection
        .prepare_cached(
            "SELECT count(*), min(r) FROM ( \
                 SELECT rowid AS r FROM tickets WHERE updated_at >= ?1 LIMIT ?2)",
        )?
        .query_row(
            (time_value(since), MOST_TICKETS_TO_BOUND_A_WALK + 1),
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
    Ok(match oldest {
        None => UpdatedSince::None,
        Some(_) if tickets > MOST_TICKETS_TO_BOUND_A_WALK => UpdatedSince::Many,
        Some(oldest) => UpdatedSince::From { oldest, tickets },
    })
}

/// Where the tickets updated before a search's upper date bound end, when it filters by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdatedBefore {
    /// None was.
    None,
    /// None above the rowid `newest` was: the walk starts there. `tickets` is how many were,
    /// when they were counted.
    UpTo { newest: i64, tickets: Option<i64> },
    /// More than the limits on both sides of the date: the walk is not bounded.
    Many,
}

/// The most tickets updated before a search's upper date bound that it counts to bound its
/// walk ([`newest_updated_before`]): about 6 ms of a covering index at most.
const MOST_EARLIER_TICKETS_TO_COUNT: i64 = 131_072;
/// The most tickets updated since that bound that it lists instead: about 2 ms at most.
const MOST_LATER_TICKETS_TO_LIST: i64 = 32_768;

/// [`UpdatedBefore`] of `before`, from the index of tickets by update: the tickets updated
/// before it when at most `most_earlier` were, else those updated since when at most
/// `most_later` were, else [`UpdatedBefore::Many`].
///
/// Why: a search walks the matches of its words newest first, and an upper date bound is no
/// term of the full-text index, so every match updated since the date was tested and dropped
/// first: a supervisor's «to» among solved tickets updated before January, the oldest 9% of a
/// million, walked past the other 91% (142 ms); an agent's «refunding» updated before two days
/// ago (49 ms). Every ticket updated before the date is at or below the newest of them in
/// creation order, so the walk may start there: the largest rowid among them, or the largest
/// rowid that is not one of the tickets updated since (a rowid no ticket has any more bounds
/// the walk as well). Counting costs about 45 ns an entry and a tested match a microsecond or
/// two, so each side is read only up to where it would cost more than most walks it spares;
/// between the two (a date a few months back at a million tickets) the walk is not bounded,
/// and the two reads cost about 8 ms more.
pub(crate) fn newest_updated_before(
    connection: &Connection,
    before: jiff::Timestamp,
    (most_earlier, most_later): (i64, i64),
) -> rusqlite::Result<UpdatedBefore> {
    let bound = time_value(before);
    // `count` keeps it to the covering index, as in `oldest_updated_since`.
    let (earlier, newest_earlier): (i64, Option<i64>) = connection
        .prepare_cached(
            "SELECT count(*), max(r) FROM ( \
                 SELECT rowid AS r FROM tickets WHERE updated_at < ?1 LIMIT ?2)",
        )?
        .query_row((&bound, most_earlier + 1), |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    match newest_earlier {
        None => return Ok(UpdatedBefore::None),
        Some(newest) if earlier <= most_earlier => {
            return Ok(UpdatedBefore::UpTo {
                newest,
                tickets: Some(earlier),
            });
        }
        Some(_) => {}
    }
    let later = connection
        .prepare_cached("SELECT rowid FROM tickets WHERE updated_at >= ?1 LIMIT ?2")?
        .query_map((&bound, most_later + 1), |row| row.get::<_, i64>(0))?
        .collect::<rusqlite::Result<std::collections::HashSet<i64>>>()?;
    if i64::try_from(later.len()).unwrap_or(i64::MAX) > most_later {
        return Ok(UpdatedBefore::Many);
    }
    // Tickets were updated before the date, so the largest rowid is not below the newest of
    // them, and going down from there ends at it or above it. (Each statement reads the
    // database as it is then: none if the tickets were gone meanwhile.)
    let largest: Option<i64> = connection
        .prepare_cached("SELECT max(rowid) FROM tickets")?
        .query_row([], |row| row.get(0))?;
    let Some(mut newest) = largest else {
        return Ok(UpdatedBefore::Many);
    };
    while later.contains(&newest) {
        newest -= 1;
    }
    Ok(UpdatedBefore::UpTo {
        newest,
        tickets: None,
    })
}

/// The rowids of the newest [`RANKED_MATCHES`] matches of `words` (an FTS5 query) among
/// `passing`, newest first: the words' doclists walked backwards, rowids only.
fn newest_matches_among(
    connection: &Connection,
    words: &Value,
    passing: &std::collections::HashSet<i64>,
) -> rusqlite::Result<Vec<i64>> {
    let mut statement = connection.prepare_cached(
        "SELECT rowid FROM ticket_fts WHERE ticket_fts MATCH ?1 ORDER BY rowid DESC",
    )?;
    let mut rows = statement.query([words])?;
    let mut newest = Vec::new();
    while let Some(row) = rows.next()? {
        let rowid: i64 = row.get(0)?;
        if passing.contains(&rowid) {
            newest.push(rowid);
            if newest.len() as i64 >= RANKED_MATCHES {
                break;
            }
        }
    }
    Ok(newest)
}

/// The largest share of all tickets that a filter by status, team or assignee may let through
/// and still be searched through their terms ([`rare_filter_terms`]): one in eight.
const RARE_FILTER_DIVISOR: i64 = 8;

/// The terms of the filter's statuses (V24), team and assignee (V22) that a match must carry
/// too, when the tickets passing those filters together are at most one [`RARE_FILTER_DIVISOR`]th
/// of all, by the plain counts (V8), which are kept as tickets change and read in a few rows.
/// FTS5 then steps through their short doclists with the words' instead of handing SQL every
/// match of a common word to test (a supervisor's «r» among open tickets: 75 ms → 2 ms). A
/// common filter would only add a long doclist to step through: `None`, and SQL tests it.
fn rare_filter_terms(
    connection: &Connection,
    filter: &TicketFilter,
) -> rusqlite::Result<Option<String>> {
    let mut terms = crate::access_terms::routing_query(filter.team, filter.assignee);
    if !filter.statuses.is_empty() {
        terms.push(crate::access_terms::status_query(&filter.statuses));
    }
    if terms.is_empty() {
        return Ok(None);
    }
    let mut conditions: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    if !filter.statuses.is_empty() {
        conditions.push(format!(
            "status IN ({})",
            placeholders(filter.statuses.len())
        ));
        params.extend(
            filter
                .statuses
                .iter()
                .map(|status| Value::Text(status.as_str().into())),
        );
    }
    if let Some(team) = filter.team {
        conditions.push("team_key = ?".into());
        params.push(key_value(match team {
            TeamFilter::NoTeam => None,
            TeamFilter::Team(team) => Some(team.0),
        }));
    }
    if let Some(assignee) = filter.assignee {
        conditions.push("assignee_key = ?".into());
        params.push(key_value(match assignee {
            AssigneeFilter::Unassigned => None,
            AssigneeFilter::Agent(agent) => Some(agent.0),
        }));
    }
    let sql = format!(
        "SELECT coalesce(sum(n) FILTER (WHERE {}), 0), coalesce(sum(n), 0) FROM ticket_counts",
        conditions.join(" AND ")
    );
    let (passing, all): (i64, i64) = connection
        .prepare_cached(&sql)?
        .query_row(params_from_iter(params), |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    Ok((passing.saturating_mul(RARE_FILTER_DIVISOR) <= all).then(|| terms.join(" AND ")))
}

/// Whether every condition [`ticket_conditions`] makes of `filter` is on a column that
/// `ticket_visibility` keeps (with the same name): status, team, assignee, merged.
fn visibility_columns_suffice(filter: &TicketFilter) -> bool {
    let TicketFilter {
        statuses: _,
        priorities,
        channels,
        assignee: _,
        team: _,
        tag,
        customer_id,
        updated_since,
        updated_before,
        include_merged: _,
    } = filter;
    priorities.is_empty()
        && channels.is_empty()
        && tag.is_none()
        && customer_id.is_none()
        && updated_since.is_none()
        && updated_before.is_none()
}

pub fn search_tickets(
    connection: &Connection,
    search: &TicketSearch,
) -> rusqlite::Result<Vec<Ticket>> {
    search_tickets_listing_at_most(connection, search, FEW_PASSING_TICKETS)
}

/// [`search_tickets`], listing the tickets that pass its filter first when at most `few` do
/// ([`few_passing_tickets`]): tests take the other paths on a few tickets.
pub(crate) fn search_tickets_listing_at_most(
    connection: &Connection,
    search: &TicketSearch,
    few: i64,
) -> rusqlite::Result<Vec<Ticket>> {
    let query = search
        .query
        .expand_prefixes(|prefix| prefix_tokens(connection, prefix))?;
    if query.matches_nothing() {
        return Ok(Vec::new());
    }
    let (conditions, filter_params) = ticket_conditions(&search.filter, &search.visibility);
    // An agent's full-text query also asks for the access terms of the tickets the agent may
    // see (V22), so FTS5 skips the others; the conditions below still decide.
    let words = match &search.visibility {
        Visibility::All => query.to_fts5(),
        Visibility::Agent { agent_id, team_ids } => format!(
            "({}) AND {}",
            query.to_fts5(),
            crate::access_terms::agent_query(*agent_id, team_ids)
        ),
    };
    // A rare status joins the full-text query too (V24): FTS5 then steps through its short
    // doclist with the words' instead of handing SQL every match of a common word to test. A
    // common one would only add a long doclist to step through.
    let words = match rare_filter_terms(connection, &search.filter)? {
        Some(terms) => format!("({words}) AND {terms}"),
        None => words,
    };
    // Priorities, channels and a tag join it always (V29): when they are common the words'
    // doclists drive, and when they are rare theirs do; tested in SQL instead, «r» among the
    // tickets tagged «доставка» tried all 155,000 matches of «r» and kept none (215 ms).
    let tag = match &search.filter.tag {
        Some(name) => {
            let id: Option<Vec<u8>> = connection
                .prepare_cached("SELECT id FROM tags WHERE name = ?1")?
                .query_row([name], |row| row.get(0))
                .optional()?;
            match id.and_then(|id| uuid::Uuid::from_slice(&id).ok()) {
                Some(id) => Some(otklik_domain::ids::TagId(id)),
                // No such tag: no ticket carries it.
                None => return Ok(Vec::new()),
            }
        }
        None => None,
    };
    let filter = &search.filter;
    let words = match crate::access_terms::filter_query(&filter.priorities, &filter.channels, tag) {
        Some(terms) => format!("({words}) AND {terms}"),
        None => words,
    };
    let updated_since = match filter.updated_since {
        Some(since) => Some(oldest_updated_since(connection, since)?),
        None => None,
    };
    if updated_since == Some(UpdatedSince::None) {
        return Ok(Vec::new());
    }
    let updated_before = match filter.updated_before {
        Some(before) => Some(newest_updated_before(
            connection,
            before,
            (MOST_EARLIER_TICKETS_TO_COUNT, MOST_LATER_TICKETS_TO_LIST),
        )?),
        None => None,
    };
    if updated_before == Some(UpdatedBefore::None) {
        return Ok(Vec::new());
    }
    let mut params = vec![Value::Text(words)];
    params.extend(filter_params);
    params.push(Value::Integer(RANKED_MATCHES));
    let extra = conditions
        .iter()
        .map(|condition| format!(" AND {condition}"))
        .collect::<String>();
    // The query walks matches newest first (FTS5 reads its doclists backwards for
    // ORDER BY rowid DESC), keeps those passing the filters and the caller's visibility, and
    // stops at RANKED_MATCHES, so a common word costs what a rarer one does. CROSS JOIN fixes
    // the join order: the index drives and tickets are looked up by key. Left to itself the
    // planner may start from a filter's index (status = open) and then evaluate the MATCH once
    // per ticket, which costs seconds on a common word. The candidates are ranked in Rust
    // (`SearchQuery::score`, the same on both backends) rather than with bm25(), whose
    // document frequencies read every match of every word. A ticket's search row has its
    // ticket's rowid (V17), so each match is tested against its ticket by rowid and only those
    // that pass read their terms; the ids are compared all the same, so a search row that ever
    // lost its ticket's rowid would drop out of results rather than stand for another ticket.
    //
    // Visibility, merges and a filter by status, team or assignee are tested in
    // `ticket_visibility` (V20, V23), which holds just those columns under the same rowid, in a
    // table a fifth the size of `tickets`; other filters in `tickets`.
    let tested = if visibility_columns_suffice(&search.filter) {
        "ticket_visibility t ON t.ticket_rowid"
    } else {
        "tickets t ON t.rowid"
    };
    let scorer = query.scorer();
    let mut ranked: Vec<(f64, uuid::Uuid)> = Vec::new();
    // Borrowed from the row, not copied: 500 documents' terms are read for every search.
    let mut score_rows = |mut rows: rusqlite::Rows<'_>| -> rusqlite::Result<()> {
        while let Some(row) = rows.next()? {
            let subject = row.get_ref(1)?.as_str()?;
            let body = row.get_ref(2)?.as_str()?;
            ranked.push((scorer.score(subject, body), uuid_at(row, 0)?));
        }
        Ok(())
    };
    let listed = few_passing_tickets(
        connection,
        filter,
        updated_since,
        updated_before,
        few,
        &extra,
        &params,
    )?;
    if let Some(passing) = listed {
        let newest = newest_matches_among(connection, &params[0], &passing)?;
        if !newest.is_empty() {
            let sql = format!(
                "SELECT t.id, s.subject_terms, s.body_terms FROM tickets t \
                 CROSS JOIN ticket_search s ON s.rowid = t.rowid \
                 WHERE t.rowid IN ({}) AND s.ticket_id = t.id",
                placeholders(newest.len())
            );
            let mut statement = connection.prepare_cached(&sql)?;
            score_rows(statement.query(params_from_iter(newest))?)?;
        }
    } else {
        // On the index's own rowid, which FTS5 seeks to, not on the ticket's.
        let mut bounded = String::new();
        if let Some(UpdatedSince::From { oldest, .. }) = updated_since {
            params.insert(params.len() - 1, Value::Integer(oldest));
            bounded.push_str(" AND ticket_fts.rowid >= ?");
        }
        if let Some(UpdatedBefore::UpTo { newest, .. }) = updated_before {
            params.insert(params.len() - 1, Value::Integer(newest));
            bounded.push_str(" AND ticket_fts.rowid <= ?");
        }
        let sql = format!(
            "SELECT t.id, s.subject_terms, s.body_terms \
             FROM ticket_fts CROSS JOIN {tested} = ticket_fts.rowid \
             CROSS JOIN ticket_search s ON s.rowid = ticket_fts.rowid \
             WHERE ticket_fts MATCH ?{extra}{bounded} AND s.ticket_id = t.id \
             ORDER BY ticket_fts.rowid DESC LIMIT ?"
        );
        let mut statement = connection.prepare_cached(&sql)?;
        score_rows(statement.query(params_from_iter(params))?)?;
    }
    ranked.sort_by(otklik_search::rank_order);
    ranked.truncate(search.limit.clamp(1, MAX_PAGE_SIZE) as usize);
    if ranked.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.id IN ({})",
        placeholders(ranked.len())
    );
    let mut found: HashMap<uuid::Uuid, Ticket> = connection
        .prepare_cached(&sql)?
        .query_map(
            params_from_iter(ranked.iter().map(|(_, id)| id_value(*id))),
            ticket_from_row,
        )?
        .map(|ticket| ticket.map(|ticket| (ticket.id.0, ticket)))
        .collect::<rusqlite::Result<_>>()?;
    let mut tickets: Vec<Ticket> = ranked
        .iter()
        .filter_map(|(_, id)| found.remove(id))
        .collect();
    attach_tags(connection, &mut tickets)?;
    Ok(tickets)
}

pub fn search_customers(
    connection: &Connection,
    query: &otklik_search::SearchQuery,
    limit: u32,
) -> rusqlite::Result<Vec<Customer>> {
    // The newest RANKED_MATCHES matching customers that were not merged away, ranked in Rust
    // (`SearchQuery::score_record`) exactly as on PostgreSQL; then the best page is read whole.
    let mut statement = connection.prepare_cached(
        "SELECT c.id, s.terms FROM customer_fts \
         CROSS JOIN customer_search s ON s.rowid = customer_fts.rowid \
         CROSS JOIN customers c ON c.id = s.customer_id \
         WHERE customer_fts MATCH ?1 AND c.merged_into IS NULL \
         ORDER BY customer_fts.rowid DESC LIMIT ?2",
    )?;
    let mut rows = statement.query((query.to_fts5(), RANKED_MATCHES))?;
    let scorer = query.scorer();
    let mut ranked: Vec<(f64, uuid::Uuid)> = Vec::new();
    while let Some(row) = rows.next()? {
        let terms = row.get_ref(1)?.as_str()?;
        ranked.push((scorer.score_record(terms), uuid_at(row, 0)?));
    }
    ranked.sort_by(otklik_search::rank_order);
    ranked.truncate(limit.clamp(1, MAX_PAGE_SIZE) as usize);
    let best: Vec<CustomerId> = ranked.iter().map(|(_, id)| CustomerId(*id)).collect();
    let mut found: HashMap<uuid::Uuid, Customer> = find_customers(connection, &best)?
        .into_iter()
        .map(|customer| (customer.id.0, customer))
        .collect();
    Ok(best.iter().filter_map(|id| found.remove(&id.0)).collect())
}

pub fn list_messages_of(
    connection: &Connection,
    ticket_ids: &[TicketId],
) -> rusqlite::Result<Vec<Message>> {
    if ticket_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, ticket_id, author_kind, author_id, visibility, channel, body, created_at \
         FROM messages WHERE ticket_id IN ({}) ORDER BY created_at, id",
        placeholders(ticket_ids.len())
    );
    connection
        .prepare_cached(&sql)?
        .query_map(
            params_from_iter(ticket_ids.iter().map(|id| id_value(id.0))),
            message_from_row,
        )?
        .collect()
}

/// Counts through the node's `cache`: the counters' version and every count not kept for it
/// are read in one snapshot, so a kept count is served only while the counters are unchanged
/// (see [`otklik_store::count_cache`]).
pub fn count_tickets_through(
    connection: &Connection,
    cache: &CountCache,
    queries: &[TicketCountQuery],
) -> rusqlite::Result<Vec<i64>> {
    let snapshot = connection.unchecked_transaction()?;
    let version: i64 = snapshot
        .prepare_cached("SELECT version FROM count_versions WHERE shard = 0")?
        .query_row([], |row| row.get(0))?;
    let counts = counts_through(cache, version, queries, |query| {
        count_tickets(&snapshot, query)
    })?;
    snapshot.commit()?;
    Ok(counts)
}

/// The sum of the maintained counters matching a count query: plain counts from
/// `ticket_counts`; idle-days counts as the plain count of waiting work minus its most recent
/// days in `ticket_counters` (see [`CountPlan`]).
pub fn count_tickets(connection: &Connection, query: &TicketCountQuery) -> rusqlite::Result<i64> {
    let statuses = match CountPlan::of(query) {
        CountPlan::Zero => return Ok(0),
        CountPlan::Plain { statuses } | CountPlan::Idle { statuses, .. } => statuses,
    };
    let mut conditions: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    if !statuses.is_empty() {
        conditions.push(format!("status IN ({})", placeholders(statuses.len())));
        params.extend(statuses.iter().map(|s| Value::Text(s.as_str().into())));
    }
    if !query.priorities.is_empty() {
        conditions.push(format!(
            "priority IN ({})",
            placeholders(query.priorities.len())
        ));
        params.extend(
            query
                .priorities
                .iter()
                .map(|p| Value::Text(p.as_str().into())),
        );
    }
    match query.assignee {
        Some(AssigneeFilter::Unassigned) => {
            conditions.push("assignee_key = ?".into());
            params.push(key_value(None));
        }
        Some(AssigneeFilter::Agent(agent_id)) => {
            conditions.push("assignee_key = ?".into());
            params.push(key_value(Some(agent_id.0)));
        }
        None => {}
    }
    match query.team {
        Some(TeamFilter::NoTeam) => {
            conditions.push("team_key = ?".into());
            params.push(key_value(None));
        }
        Some(TeamFilter::Team(team_id)) => {
            conditions.push("team_key = ?".into());
            params.push(key_value(Some(team_id.0)));
        }
        None => {}
    }
    if let Some((agent_id, team_ids)) = &query.visible_to {
        let mut visible = vec!["team_key = ?".to_owned(), "assignee_key = ?".to_owned()];
        params.push(key_value(None));
        params.push(key_value(Some(agent_id.0)));
        if !team_ids.is_empty() {
            visible.push(format!("team_key IN ({})", placeholders(team_ids.len())));
            params.extend(team_ids.iter().map(|team_id| key_value(Some(team_id.0))));
        }
        conditions.push(format!("({})", visible.join(" OR ")));
    }
    let plain_where = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let plain = format!("SELECT coalesce(sum(n), 0) FROM ticket_counts {plain_where}");
    let Some(max_day) = query.max_day else {
        return connection
            .prepare_cached(&plain)?
            .query_row(params_from_iter(params), |row| row.get(0));
    };
    // The days after `max_day` are few rows, read through `ticket_counters_by_day`.
    conditions.push("day > ?".into());
    let recent = format!(
        "SELECT coalesce(sum(n), 0) FROM ticket_counters WHERE {}",
        conditions.join(" AND ")
    );
    let mut all_params = params.clone();
    all_params.extend(params);
    all_params.push(Value::Integer(max_day));
    connection
        .prepare_cached(&format!("SELECT ({plain}) - ({recent})"))?
        .query_row(params_from_iter(all_params), |row| row.get(0))
}

const VIEW_COLUMNS: &str = "id, name, owner_agent_id, definition, position, created_at";

fn view_from_row(row: &Row<'_>) -> rusqlite::Result<otklik_domain::view::SavedView> {
    let definition: String = row.get(3)?;
    Ok(otklik_domain::view::SavedView {
        id: ViewId(uuid_at(row, 0)?),
        name: row.get(1)?,
        owner_agent_id: opt_uuid_at(row, 2)?.map(AgentId),
        filter: serde_json::from_str(&definition)
            .map_err(|_| corrupt(3, "a view definition is not a view filter"))?,
        position: row.get(4)?,
        created_at: time_at(row, 5)?,
    })
}

pub fn list_views(
    connection: &Connection,
    agent_id: AgentId,
) -> rusqlite::Result<Vec<otklik_domain::view::SavedView>> {
    let sql = format!(
        "SELECT {VIEW_COLUMNS} FROM views WHERE owner_agent_id IS NULL OR owner_agent_id = ?1 \
         ORDER BY position, created_at, id"
    );
    connection
        .prepare_cached(&sql)?
        .query_map([&agent_id.as_bytes()[..]], view_from_row)?
        .collect()
}

pub fn find_view(
    connection: &Connection,
    id: ViewId,
) -> rusqlite::Result<Option<otklik_domain::view::SavedView>> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM views WHERE id = ?1");
    connection
        .prepare_cached(&sql)?
        .query_row([&id.as_bytes()[..]], view_from_row)
        .optional()
}

const ATTACHMENT_COLUMNS: &str =
    "id, ticket_id, message_id, file_name, content_type, size_bytes, sha256";

fn attachment_from_row(row: &Row<'_>) -> rusqlite::Result<AttachmentMeta> {
    Ok(AttachmentMeta {
        id: AttachmentId(uuid_at(row, 0)?),
        ticket_id: TicketId(uuid_at(row, 1)?),
        message_id: MessageId(uuid_at(row, 2)?),
        file_name: row.get(3)?,
        content_type: row.get(4)?,
        size_bytes: row.get(5)?,
        sha256: row.get(6)?,
    })
}

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    let author_kind: String = row.get(2)?;
    let author_id = opt_uuid_at(row, 3)?;
    let author = match (author_kind.as_str(), author_id) {
        ("agent", Some(id)) => Author::Agent(AgentId(id)),
        ("customer", Some(id)) => Author::Customer(CustomerId(id)),
        ("system", None) => Author::System,
        _ => return Err(corrupt(2, "unknown message author")),
    };
    Ok(Message {
        id: MessageId(uuid_at(row, 0)?),
        ticket_id: TicketId(uuid_at(row, 1)?),
        author,
        visibility: parse_at(row, 4)?,
        channel: parse_at(row, 5)?,
        body: row.get(6)?,
        attachments: Vec::new(),
        created_at: time_at(row, 7)?,
    })
}

pub fn list_messages(
    connection: &Connection,
    ticket_id: TicketId,
) -> rusqlite::Result<Vec<Message>> {
    let mut statement = connection.prepare_cached(
        "SELECT id, ticket_id, author_kind, author_id, visibility, channel, body, created_at \
         FROM messages WHERE ticket_id = ?1 ORDER BY created_at, id",
    )?;
    let mut messages = statement
        .query_map([&ticket_id.as_bytes()[..]], message_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let sql =
        format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE ticket_id = ?1 ORDER BY id");
    let attachments = connection
        .prepare_cached(&sql)?
        .query_map([&ticket_id.as_bytes()[..]], attachment_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for attachment in attachments {
        if let Some(message) = messages
            .iter_mut()
            .find(|message| message.id == attachment.message_id)
        {
            message.attachments.push(attachment);
        }
    }
    Ok(messages)
}

pub fn find_attachment(
    connection: &Connection,
    id: AttachmentId,
) -> rusqlite::Result<Option<AttachmentMeta>> {
    let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE id = ?1");
    connection
        .prepare_cached(&sql)?
        .query_row([&id.as_bytes()[..]], attachment_from_row)
        .optional()
}

const CUSTOMER_COLUMNS: &str =
    "c.id, c.name, c.language, c.merged_into, c.created_at, c.updated_at, c.version";

fn customer_from_row(row: &Row<'_>) -> rusqlite::Result<Customer> {
    Ok(Customer {
        id: CustomerId(uuid_at(row, 0)?),
        name: row.get(1)?,
        language: row.get(2)?,
        identities: Vec::new(),
        merged_into: opt_uuid_at(row, 3)?.map(CustomerId),
        created_at: time_at(row, 4)?,
        updated_at: time_at(row, 5)?,
        version: row.get(6)?,
    })
}

fn attach_identities(connection: &Connection, customers: &mut [Customer]) -> rusqlite::Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT id, customer_id, kind, provider, value, created_at FROM customer_identities \
         WHERE customer_id IN ({}) ORDER BY created_at, id",
        placeholders(customers.len())
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let params = customers.iter().map(|customer| id_value(customer.id.0));
    let identities = statement
        .query_map(params_from_iter(params), |row| {
            Ok(Identity {
                id: IdentityId(uuid_at(row, 0)?),
                customer_id: CustomerId(uuid_at(row, 1)?),
                value: IdentityValue {
                    kind: parse_at(row, 2)?,
                    provider: row.get(3)?,
                    value: row.get(4)?,
                },
                created_at: time_at(row, 5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for identity in identities {
        if let Some(customer) = customers
            .iter_mut()
            .find(|customer| customer.id == identity.customer_id)
        {
            customer.identities.push(identity);
        }
    }
    Ok(())
}

pub fn find_customer(
    connection: &Connection,
    id: CustomerId,
) -> rusqlite::Result<Option<Customer>> {
    let sql = format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.id = ?1");
    let Some(customer) = connection
        .prepare_cached(&sql)?
        .query_row([&id.as_bytes()[..]], customer_from_row)
        .optional()?
    else {
        return Ok(None);
    };
    let mut customers = [customer];
    attach_identities(connection, &mut customers)?;
    let [customer] = customers;
    Ok(Some(customer))
}

/// Customers by id, a chunk of ids per statement (well under SQLite's variable limit).
pub fn find_customers(
    connection: &Connection,
    ids: &[CustomerId],
) -> rusqlite::Result<Vec<Customer>> {
    let mut customers = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_PAGE_SIZE as usize) {
        let sql = format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.id IN ({})",
            placeholders(chunk.len())
        );
        let mut found = connection
            .prepare_cached(&sql)?
            .query_map(
                params_from_iter(chunk.iter().map(|id| id_value(id.0))),
                customer_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        attach_identities(connection, &mut found)?;
        customers.extend(found);
    }
    Ok(customers)
}

pub fn find_customer_by_identity(
    connection: &Connection,
    identity: &IdentityValue,
) -> rusqlite::Result<Option<Customer>> {
    let owner: Option<[u8; 16]> = connection
        .prepare_cached("SELECT customer_id FROM customer_identities WHERE kind = ?1 AND provider = ?2 AND value = ?3")?
        .query_row((identity.kind.as_str(), &identity.provider, &identity.value), |row| row.get(0))
        .optional()?;
    match owner {
        Some(bytes) => find_customer(connection, CustomerId::from_bytes(bytes)),
        None => Ok(None),
    }
}

pub fn list_customers(
    connection: &Connection,
    query: &CustomerQuery,
) -> rusqlite::Result<Vec<Customer>> {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    if !query.include_merged {
        conditions.push("c.merged_into IS NULL");
    }
    if let Some(after) = query.after {
        conditions.push("c.id < ?");
        params.push(id_value(after.0));
    }
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    params.push(Value::Integer(i64::from(
        query.limit.clamp(1, MAX_PAGE_SIZE),
    )));
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers c {where_clause} ORDER BY c.id DESC LIMIT ?"
    );
    let mut customers = connection
        .prepare_cached(&sql)?
        .query_map(params_from_iter(params), customer_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    attach_identities(connection, &mut customers)?;
    Ok(customers)
}

pub fn list_customer_ticket_ids(
    connection: &Connection,
    customer_id: CustomerId,
) -> rusqlite::Result<Vec<TicketId>> {
    connection
        .prepare_cached("SELECT id FROM tickets WHERE customer_id = ?1 ORDER BY id")?
        .query_map([&customer_id.as_bytes()[..]], |row| {
            Ok(TicketId(uuid_at(row, 0)?))
        })?
        .collect()
}

const MERGE_COLUMNS: &str = "id, source_id, target_id, moved_identity_ids, moved_ticket_ids, merged_by, merged_at, undone_at";

fn merge_from_row(row: &Row<'_>) -> rusqlite::Result<CustomerMerge> {
    Ok(CustomerMerge {
        id: CustomerMergeId(uuid_at(row, 0)?),
        source_id: CustomerId(uuid_at(row, 1)?),
        target_id: CustomerId(uuid_at(row, 2)?),
        moved_identity_ids: uuid_list_at(row, 3)?.into_iter().map(IdentityId).collect(),
        moved_ticket_ids: uuid_list_at(row, 4)?.into_iter().map(TicketId).collect(),
        merged_by: opt_uuid_at(row, 5)?.map(AgentId),
        merged_at: time_at(row, 6)?,
        undone_at: opt_time_at(row, 7)?,
    })
}

pub fn find_customer_merge(
    connection: &Connection,
    id: CustomerMergeId,
) -> rusqlite::Result<Option<CustomerMerge>> {
    let sql = format!("SELECT {MERGE_COLUMNS} FROM customer_merges WHERE id = ?1");
    connection
        .prepare_cached(&sql)?
        .query_row([&id.as_bytes()[..]], merge_from_row)
        .optional()
}

pub fn list_customer_merges(
    connection: &Connection,
    customer_id: CustomerId,
) -> rusqlite::Result<Vec<CustomerMerge>> {
    let sql = format!(
        "SELECT {MERGE_COLUMNS} FROM customer_merges WHERE source_id = ?1 OR target_id = ?1 \
         ORDER BY merged_at DESC, id DESC"
    );
    connection
        .prepare_cached(&sql)?
        .query_map([&customer_id.as_bytes()[..]], merge_from_row)?
        .collect()
}

const AGENT_COLUMNS: &str =
    "a.id, a.email, a.name, a.role, a.active, a.created_at, a.updated_at, a.version, a.locale";

fn agent_from_row(row: &Row<'_>) -> rusqlite::Result<Agent> {
    Ok(Agent {
        id: AgentId(uuid_at(row, 0)?),
        email: row.get(1)?,
        name: row.get(2)?,
        role: parse_at(row, 3)?,
        team_ids: Vec::new(),
        active: row.get(4)?,
        created_at: time_at(row, 5)?,
        updated_at: time_at(row, 6)?,
        version: row.get(7)?,
        locale: row.get(8)?,
    })
}

fn attach_teams(connection: &Connection, agents: &mut [Agent]) -> rusqlite::Result<()> {
    if agents.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT agent_id, team_id FROM agent_teams WHERE agent_id IN ({}) ORDER BY team_id",
        placeholders(agents.len())
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let memberships = statement
        .query_map(
            params_from_iter(agents.iter().map(|agent| id_value(agent.id.0))),
            |row| Ok((AgentId(uuid_at(row, 0)?), TeamId(uuid_at(row, 1)?))),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (agent_id, team_id) in memberships {
        if let Some(agent) = agents.iter_mut().find(|agent| agent.id == agent_id) {
            agent.team_ids.push(team_id);
        }
    }
    Ok(())
}

pub fn find_agent(
    connection: &Connection,
    predicate: &str,
    key: &dyn ToSql,
) -> rusqlite::Result<Option<Agent>> {
    let sql = format!("SELECT {AGENT_COLUMNS} FROM agents a WHERE {predicate}");
    let Some(agent) = connection
        .prepare_cached(&sql)?
        .query_row([key], agent_from_row)
        .optional()?
    else {
        return Ok(None);
    };
    let mut agents = [agent];
    attach_teams(connection, &mut agents)?;
    let [agent] = agents;
    Ok(Some(agent))
}

pub fn list_agents(connection: &Connection, page: IdPage) -> rusqlite::Result<Vec<Agent>> {
    let after = page.after.map_or(Value::Blob(Vec::new()), id_value);
    let limit = i64::from(page.limit.clamp(1, MAX_PAGE_SIZE));
    let sql =
        format!("SELECT {AGENT_COLUMNS} FROM agents a WHERE a.id > ?1 ORDER BY a.id LIMIT ?2");
    let mut agents = connection
        .prepare_cached(&sql)?
        .query_map((after, limit), agent_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    attach_teams(connection, &mut agents)?;
    Ok(agents)
}

pub fn find_password_hash(
    connection: &Connection,
    agent_id: AgentId,
) -> rusqlite::Result<Option<String>> {
    let hash: Option<Option<String>> = connection
        .prepare_cached("SELECT password_hash FROM agents WHERE id = ?1")?
        .query_row([&agent_id.as_bytes()[..]], |row| row.get(0))
        .optional()?;
    Ok(hash.flatten())
}

fn team_from_row(row: &Row<'_>) -> rusqlite::Result<Team> {
    Ok(Team {
        id: TeamId(uuid_at(row, 0)?),
        name: row.get(1)?,
        created_at: time_at(row, 2)?,
    })
}

pub fn find_team(connection: &Connection, id: TeamId) -> rusqlite::Result<Option<Team>> {
    connection
        .prepare_cached("SELECT id, name, created_at FROM teams WHERE id = ?1")?
        .query_row([&id.as_bytes()[..]], team_from_row)
        .optional()
}

pub fn list_teams(connection: &Connection) -> rusqlite::Result<Vec<Team>> {
    connection
        .prepare_cached("SELECT id, name, created_at FROM teams ORDER BY name")?
        .query_map([], team_from_row)?
        .collect()
}

fn tag_from_row(row: &Row<'_>) -> rusqlite::Result<Tag> {
    Ok(Tag {
        id: TagId(uuid_at(row, 0)?),
        name: row.get(1)?,
        created_at: time_at(row, 2)?,
    })
}

pub fn find_tag(connection: &Connection, id: TagId) -> rusqlite::Result<Option<Tag>> {
    connection
        .prepare_cached("SELECT id, name, created_at FROM tags WHERE id = ?1")?
        .query_row([&id.as_bytes()[..]], tag_from_row)
        .optional()
}

pub fn list_tags(connection: &Connection) -> rusqlite::Result<Vec<Tag>> {
    connection
        .prepare_cached("SELECT id, name, created_at FROM tags ORDER BY name")?
        .query_map([], tag_from_row)?
        .collect()
}

const TOKEN_COLUMNS: &str =
    "id, agent_id, name, prefix, token_hash, scopes, created_at, expires_at, revoked_at";

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<ApiTokenRecord> {
    let scopes_text: String = row.get(5)?;
    let scopes = scopes_text
        .split(' ')
        .filter(|scope| !scope.is_empty())
        .map(|scope| scope.parse::<Scope>())
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|_| corrupt(5, "unknown scope"))?;
    Ok(ApiTokenRecord {
        id: TokenId(uuid_at(row, 0)?),
        agent_id: AgentId(uuid_at(row, 1)?),
        name: row.get(2)?,
        prefix: row.get(3)?,
        token_hash: row.get(4)?,
        scopes,
        created_at: time_at(row, 6)?,
        expires_at: opt_time_at(row, 7)?,
        revoked_at: opt_time_at(row, 8)?,
    })
}

pub fn find_token(
    connection: &Connection,
    predicate: &str,
    key: &dyn ToSql,
) -> rusqlite::Result<Option<ApiTokenRecord>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE {predicate}");
    connection
        .prepare_cached(&sql)?
        .query_row([key], token_from_row)
        .optional()
}

pub fn list_tokens(
    connection: &Connection,
    agent_id: AgentId,
) -> rusqlite::Result<Vec<ApiTokenRecord>> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE agent_id = ?1 ORDER BY created_at DESC, id DESC"
    );
    connection
        .prepare_cached(&sql)?
        .query_map([&agent_id.as_bytes()[..]], token_from_row)?
        .collect()
}

pub fn find_session(
    connection: &Connection,
    id_hash: &[u8],
) -> rusqlite::Result<Option<SessionRecord>> {
    connection
        .prepare_cached(
            "SELECT id_hash, agent_id, created_at, expires_at FROM sessions WHERE id_hash = ?1",
        )?
        .query_row([id_hash], |row| {
            Ok(SessionRecord {
                id_hash: row.get(0)?,
                agent_id: AgentId(uuid_at(row, 1)?),
                created_at: time_at(row, 2)?,
                expires_at: time_at(row, 3)?,
            })
        })
        .optional()
}

pub fn find_setup_token(
    connection: &Connection,
    token_hash: &[u8],
) -> rusqlite::Result<Option<SetupTokenRecord>> {
    connection
        .prepare_cached("SELECT token_hash, created_at, expires_at, used_at FROM setup_tokens WHERE token_hash = ?1")?
        .query_row([token_hash], |row| {
            Ok(SetupTokenRecord {
                token_hash: row.get(0)?,
                created_at: time_at(row, 1)?,
                expires_at: time_at(row, 2)?,
                used_at: opt_time_at(row, 3)?,
            })
        })
        .optional()
}

pub fn find_idempotency_key(
    connection: &Connection,
    principal: &str,
    key: &str,
) -> rusqlite::Result<Option<IdempotencyRecord>> {
    connection
        .prepare_cached(
            "SELECT principal, key, fingerprint, resource_kind, resource_id, created_at \
             FROM idempotency_keys WHERE principal = ?1 AND key = ?2",
        )?
        .query_row([principal, key], |row| {
            Ok(IdempotencyRecord {
                principal: row.get(0)?,
                key: row.get(1)?,
                fingerprint: row.get(2)?,
                resource_kind: row.get(3)?,
                resource_id: uuid_at(row, 4)?,
                created_at: time_at(row, 5)?,
            })
        })
        .optional()
}

pub fn list_audit_events(
    connection: &Connection,
    object_id: uuid::Uuid,
) -> rusqlite::Result<Vec<StoredAuditEvent>> {
    connection
        .prepare_cached(
            "SELECT id, at, actor_agent_id, action, object_kind, object_id, changes \
             FROM audit_events WHERE object_id = ?1 ORDER BY at, id",
        )?
        .query_map([&object_id.as_bytes()[..]], |row| {
            let changes: String = row.get(6)?;
            Ok(StoredAuditEvent {
                id: AuditEventId(uuid_at(row, 0)?),
                at: time_at(row, 1)?,
                actor_agent_id: opt_uuid_at(row, 2)?.map(AgentId),
                action: row.get(3)?,
                object_kind: row.get(4)?,
                object_id: uuid_at(row, 5)?,
                changes: serde_json::from_str(&changes)
                    .map_err(|_| corrupt(6, "audit changes are not JSON"))?,
            })
        })?
        .collect()
}

pub fn find_password_reset_token(
    connection: &Connection,
    token_hash: &[u8],
) -> rusqlite::Result<Option<PasswordResetRecord>> {
    connection
        .prepare_cached(
            "SELECT token_hash, agent_id, created_at, expires_at, used_at \
             FROM password_reset_tokens WHERE token_hash = ?1",
        )?
        .query_row([token_hash], |row| {
            Ok(PasswordResetRecord {
                token_hash: row.get(0)?,
                agent_id: AgentId(uuid_at(row, 1)?),
                created_at: time_at(row, 2)?,
                expires_at: time_at(row, 3)?,
                used_at: opt_time_at(row, 4)?,
            })
        })
        .optional()
}

pub fn count_password_reset_tokens_since(
    connection: &Connection,
    agent_id: AgentId,
    since: jiff::Timestamp,
) -> rusqlite::Result<i64> {
    connection
        .prepare_cached(
            "SELECT count(*) FROM password_reset_tokens WHERE agent_id = ?1 AND created_at >= ?2",
        )?
        .query_row(
            (
                &agent_id.as_bytes()[..],
                otklik_domain::clock::to_micros(since),
            ),
            |row| row.get(0),
        )
}

pub fn list_settings(connection: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    connection
        .prepare_cached("SELECT name, value FROM settings ORDER BY name")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect()
}
