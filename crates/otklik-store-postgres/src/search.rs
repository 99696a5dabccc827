//! Ticket search: which of a word's matches a searcher may see, newest first, found without
//! reading every match of a common word.
//!
//! A search walks the newest documents first (a window), then asks the index era by era
//! (rounds of era words or of whole eras), and leaves what is left to one query (the rest).
//! A filter the documents have terms for is asked of the index as terms; a date, a customer or
//! «unassigned» is tested in SQL, or, when it lets few tickets through, lists them first. The
//! store's other reads live in `read`.

use std::collections::HashMap;

use otklik_domain::clock::to_micros;
use otklik_domain::ids::TagId;
use otklik_domain::ticket::Ticket;
use otklik_store::{AssigneeFilter, StoreResult, TicketFilter, TicketSearch, Visibility};
use uuid::Uuid;

use crate::Client;
use crate::error::map_error;
use crate::read::{
    Params, load_tags, map_rows, page_limit, query, query_cached, query_once, ticket_conditions,
    where_clause,
};
use crate::rows::{self, get};
use crate::visibility_terms;

mod plan;

use plan::{
    ERAS_PER_ROUND, EraRound, EraRounds, MOST_SPELLINGS_A_ROUND, MOST_WORD_POSTINGS_IN_ROUNDS,
    RoundCosts, RoundsStart, WindowCounts,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use otklik_domain::agent::Team;

    use super::plan::tests::{costs, full};

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
}
