//! Rules for the data both backends derive from tickets and customers in the same transaction:
//! the search terms (via `otklik-search`) and the queue-counter key of a ticket. Kept here, once,
//! so the two backends cannot drift apart.

use jiff::Timestamp;
use otklik_domain::customer::{Customer, Identity, IdentityValue};
use otklik_domain::ids::{AgentId, TeamId};
use otklik_domain::message::Message;
use otklik_domain::ticket::{Priority, TicketStatus};
use otklik_domain::view::day_number;

#[cfg(test)]
mod vocabulary_tests {
    use super::*;

    #[test]
    fn only_tokens_not_yet_known_are_inserted_sorted_and_once() {
        let mut known = KnownTokens::default();
        assert_eq!(
            known.unknown(["заказ доставк", "", "заказ 1042"]),
            vec!["1042", "доставк", "заказ"]
        );
        known.learn(["заказ".to_owned()]);
        assert_eq!(known.unknown(["заказ доставк"]), vec!["доставк"]);
    }

    #[test]
    fn an_agent_may_see_tickets_without_a_team_their_own_and_those_of_each_of_their_teams() {
        let agent = AgentId::new();
        let (delivery, vip) = (TeamId::new(), TeamId::new());
        assert_eq!(
            agent_access_keys(agent, &[delivery, vip]),
            vec![
                AccessKey::NoTeam,
                AccessKey::Assignee(agent),
                AccessKey::Team(delivery),
                AccessKey::Team(vip),
            ]
        );
    }

    #[test]
    fn a_prefix_bound_sorts_after_every_token_it_starts_and_before_the_next_prefix() {
        let bound = prefix_upper_bound("дост");
        assert!("дост" < bound.as_str());
        assert!("достяяяя" < bound.as_str());
        assert!("досу" > bound.as_str());
    }
}

/// What a search index records of who may see a ticket. Both backends write these into the
/// ticket's document as terms, each in a spelling no text can produce (PostgreSQL V21, SQLite
/// V22), so an agent's search asks the index for the visible matches only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKey {
    /// A ticket without a team: every agent sees it.
    NoTeam,
    Team(TeamId),
    Assignee(AgentId),
}

/// The keys of which a document carries at least one when its ticket is visible to the agent:
/// the rule of [`crate::Visibility::Agent`] (no team, one of the agent's teams, or assigned to
/// the agent), once for both backends.
pub fn agent_access_keys(agent_id: AgentId, team_ids: &[TeamId]) -> Vec<AccessKey> {
    let mut keys = vec![AccessKey::NoTeam, AccessKey::Assignee(agent_id)];
    keys.extend(team_ids.iter().map(|team| AccessKey::Team(*team)));
    keys
}

/// The keys every document of a ticket that passes a filter by `team` and `assignee` carries,
/// once for both backends: the team's (or no team's) and the agent's. «Unassigned» has no key.
pub fn routing_keys(
    team: Option<crate::TeamFilter>,
    assignee: Option<crate::AssigneeFilter>,
) -> Vec<AccessKey> {
    let team = team.map(|team| match team {
        crate::TeamFilter::NoTeam => AccessKey::NoTeam,
        crate::TeamFilter::Team(team) => AccessKey::Team(team),
    });
    let assignee = match assignee {
        Some(crate::AssigneeFilter::Agent(agent)) => Some(AccessKey::Assignee(agent)),
        Some(crate::AssigneeFilter::Unassigned) | None => None,
    };
    team.into_iter().chain(assignee).collect()
}

/// Index terms of a ticket's subject, led by its number so "#1042" finds ticket 1042.
pub fn subject_terms(number: i64, subject: &str) -> String {
    numbered_subject_terms(number, &otklik_search::index_terms(subject))
}

/// [`subject_terms`] of a subject already analysed into `terms` (`index_terms`), for a writer
/// that numbers tickets after their text was analysed.
pub fn numbered_subject_terms(number: i64, terms: &str) -> String {
    if terms.is_empty() {
        number.to_string()
    } else {
        format!("{number} {terms}")
    }
}

/// The search vocabulary: every token of the ticket index, kept in a table of its own so a
/// search-as-you-type prefix becomes a short list of exact tokens
/// ([`otklik_search::SearchQuery::expand_prefixes`]). It may hold tokens no document has any
/// more (edits, merges): looking them up costs nothing and matches nothing, so it only grows.
/// This is the writers' cache of tokens already in it, so a write inserts only new ones.
///
/// Filled only with tokens whose insert has committed: a rolled-back insert must not hide a
/// token from later writes. Bounded: when full it starts again empty (common words come back
/// at once; unique tokens such as order numbers would otherwise fill memory).
#[derive(Debug, Default)]
pub struct KnownTokens {
    tokens: std::collections::HashSet<String>,
}

impl KnownTokens {
    /// Tokens kept at most; about 60 bytes each.
    pub const CAPACITY: usize = 200_000;

    /// The distinct tokens of `terms` (space-separated index terms) not known yet, sorted (the
    /// order PostgreSQL inserts them in, so two writers never wait for each other in a cycle).
    pub fn unknown<'a>(&self, terms: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut unknown: Vec<String> = terms
            .into_iter()
            .flat_map(|terms| terms.split(' '))
            .filter(|token| !token.is_empty() && !self.tokens.contains(*token))
            .map(str::to_owned)
            .collect();
        unknown.sort_unstable();
        unknown.dedup();
        unknown
    }

    /// Remembers tokens whose insert has committed.
    pub fn learn(&mut self, tokens: impl IntoIterator<Item = String>) {
        for token in tokens {
            if self.tokens.len() >= Self::CAPACITY {
                self.tokens.clear();
            }
            self.tokens.insert(token);
        }
    }
}

/// Where a prefix's tokens end in code-point (byte) order: every token starting with `prefix`
/// sorts at or after `prefix` and before this.
pub fn prefix_upper_bound(prefix: &str) -> String {
    let mut bound = String::with_capacity(prefix.len() + 4);
    bound.push_str(prefix);
    bound.push(char::MAX);
    bound
}

/// Index terms of a message: its body and the names of its attachments.
pub fn message_terms(message: &Message) -> String {
    message_text_terms(
        &message.body,
        message
            .attachments
            .iter()
            .map(|attachment| attachment.file_name.as_str()),
    )
}

/// Index terms of a message body and its attachments' names (for rebuilds that read them
/// from the tables).
pub fn message_text_terms<'a>(body: &str, file_names: impl IntoIterator<Item = &'a str>) -> String {
    let mut text = body.to_owned();
    for file_name in file_names {
        text.push('\n');
        text.push_str(file_name);
    }
    otklik_search::index_terms(&text)
}

/// Index terms of a customer as written with its identities, in the order a re-index reads
/// them back (`created_at`, then id), so a new customer's document equals a rebuilt one.
pub fn new_customer_terms(customer: &Customer) -> String {
    let mut identities: Vec<&Identity> = customer.identities.iter().collect();
    identities.sort_by_key(|identity| (identity.created_at, identity.id.0));
    customer_terms(
        &customer.name,
        identities.iter().map(|identity| &identity.value),
    )
}

/// Index terms of a customer: the name and every identity value.
pub fn customer_terms<'a>(
    name: &str,
    identities: impl IntoIterator<Item = &'a IdentityValue>,
) -> String {
    let mut text = name.to_owned();
    for identity in identities {
        text.push('\n');
        text.push_str(&identity.value);
    }
    otklik_search::index_terms(&text)
}

/// How a backend answers a [`crate::TicketCountQuery`] from the two counter tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountPlan {
    /// Nothing can match (an idle-days count of statuses that never wait).
    Zero,
    /// A sum over `ticket_counts` (empty `statuses`: any status).
    Plain { statuses: Vec<TicketStatus> },
    /// Waiting work idle since `max_day` or earlier: the sum over `ticket_counts` of these
    /// (waiting) statuses, minus the `ticket_counters` rows of the days after `max_day`. The
    /// recent days are a few rows, however many days of old waiting work there are.
    Idle {
        statuses: Vec<TicketStatus>,
        max_day: i64,
    },
}

impl CountPlan {
    /// The plan of a count query.
    pub fn of(query: &crate::TicketCountQuery) -> CountPlan {
        let Some(max_day) = query.max_day else {
            return CountPlan::Plain {
                statuses: query.statuses.clone(),
            };
        };
        let statuses: Vec<TicketStatus> = if query.statuses.is_empty() {
            TicketStatus::ALL
                .iter()
                .copied()
                .filter(|status| status.is_waiting())
                .collect()
        } else {
            query
                .statuses
                .iter()
                .copied()
                .filter(|status| status.is_waiting())
                .collect()
        };
        if statuses.is_empty() {
            CountPlan::Zero
        } else {
            CountPlan::Idle { statuses, max_day }
        }
    }
}

/// The cell of the queue counters a ticket is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CounterKey {
    pub status: TicketStatus,
    pub priority: Priority,
    pub assignee_id: Option<AgentId>,
    pub team_id: Option<TeamId>,
    /// The UTC day of the last update for waiting work (pending, on hold); 0 otherwise, so the
    /// busy queues (new, open) stay a handful of rows that any count sums in microseconds.
    pub day: i64,
}

impl CounterKey {
    /// Where a ticket with these fields is counted; `None` for a merged ticket, which is
    /// counted nowhere.
    pub fn of(
        status: TicketStatus,
        priority: Priority,
        assignee_id: Option<AgentId>,
        team_id: Option<TeamId>,
        updated_at: Timestamp,
        merged: bool,
    ) -> Option<CounterKey> {
        if merged {
            return None;
        }
        let day = if status.is_waiting() {
            day_number(updated_at).max(1)
        } else {
            0
        };
        Some(CounterKey {
            status,
            priority,
            assignee_id,
            team_id,
            day,
        })
    }

    /// The key of a ticket as the domain holds it.
    pub fn of_ticket(ticket: &otklik_domain::ticket::Ticket) -> Option<CounterKey> {
        Self::of(
            ticket.status,
            ticket.priority,
            ticket.assignee_id,
            ticket.team_id,
            ticket.updated_at,
            ticket.merged_into.is_some(),
        )
    }
}

/// The change a unit makes to the counters: +1/−1 per key, summed, zero entries dropped.
#[derive(Debug, Default)]
pub struct CounterDeltas {
    deltas: std::collections::HashMap<CounterKey, i64>,
}

impl CounterDeltas {
    /// Records that a ticket moved from `before` to `after` (either may be "not counted").
    pub fn moved(&mut self, before: Option<CounterKey>, after: Option<CounterKey>) {
        if before == after {
            return;
        }
        if let Some(key) = before {
            self.add(key, -1);
        }
        if let Some(key) = after {
            self.add(key, 1);
        }
    }

    fn add(&mut self, key: CounterKey, delta: i64) {
        *self.deltas.entry(key).or_default() += delta;
    }

    /// The non-zero changes.
    pub fn into_changes(self) -> impl Iterator<Item = (CounterKey, i64)> {
        self.deltas.into_iter().filter(|(_, n)| *n != 0)
    }

    /// The non-zero changes to each counter table: `ticket_counts` (every counted ticket, no
    /// day) and `ticket_counters` (waiting work by day).
    pub fn into_tables(self) -> CounterChanges {
        let mut plain: std::collections::HashMap<CounterKey, i64> =
            std::collections::HashMap::new();
        let mut daily = Vec::new();
        for (key, delta) in self.into_changes() {
            *plain.entry(CounterKey { day: 0, ..key }).or_default() += delta;
            if key.day != 0 {
                daily.push((key, delta));
            }
        }
        CounterChanges {
            plain: plain.into_iter().filter(|(_, n)| *n != 0).collect(),
            daily,
        }
    }
}

/// What a unit changes in the two counter tables (V8).
///
/// - `ticket_counts` holds, per (status, priority, assignee, team), how many unmerged tickets
///   sit there: a handful of rows that every plain count (a status, a queue, a team) sums.
/// - `ticket_counters` holds only waiting work (pending, on hold) per day of its last update,
///   for views that ask how long work has been idle. Such a count is the plain count of waiting
///   work minus the daily rows of the last few days, so it never sums a year of days.
#[derive(Debug, Default)]
pub struct CounterChanges {
    /// Changes to `ticket_counts`; every key's `day` is 0.
    pub plain: Vec<(CounterKey, i64)>,
    /// Changes to `ticket_counters`; every key's `day` is at least 1.
    pub daily: Vec<(CounterKey, i64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merged_ticket_is_counted_nowhere_and_only_waiting_work_has_a_day() {
        let now = Timestamp::from_second(10 * 86_400).unwrap();
        assert_eq!(
            CounterKey::of(TicketStatus::Open, Priority::Low, None, None, now, true),
            None
        );
        let solved =
            CounterKey::of(TicketStatus::Solved, Priority::Low, None, None, now, false).unwrap();
        assert_eq!(solved.day, 0);
        let open =
            CounterKey::of(TicketStatus::Open, Priority::Low, None, None, now, false).unwrap();
        assert_eq!(open.day, 0);
        let pending =
            CounterKey::of(TicketStatus::Pending, Priority::Low, None, None, now, false).unwrap();
        assert_eq!(pending.day, 10);
    }

    #[test]
    fn opposite_moves_cancel_out() {
        let now = Timestamp::from_second(86_400).unwrap();
        let a = CounterKey::of(TicketStatus::New, Priority::Low, None, None, now, false);
        let b = CounterKey::of(TicketStatus::Open, Priority::Low, None, None, now, false);
        let mut deltas = CounterDeltas::default();
        deltas.moved(a, b);
        deltas.moved(b, a);
        assert_eq!(deltas.into_changes().count(), 0);
    }

    #[test]
    fn plain_counts_drop_the_day_and_only_waiting_work_is_counted_by_day() {
        let day = |d: i64| Timestamp::from_second(d * 86_400).unwrap();
        let pending = |d| {
            CounterKey::of(
                TicketStatus::Pending,
                Priority::Low,
                None,
                None,
                day(d),
                false,
            )
        };
        let open = CounterKey::of(TicketStatus::Open, Priority::Low, None, None, day(3), false);
        let mut deltas = CounterDeltas::default();
        // Pending work touched again a day later: the same plain cell, another day.
        deltas.moved(pending(3), pending(4));
        // New open work, and pending work that was reopened.
        deltas.moved(None, open);
        deltas.moved(pending(2), open);
        let mut tables = deltas.into_tables();
        tables.plain.sort_by_key(|(key, _)| key.status.as_str());
        tables.daily.sort_by_key(|(key, _)| key.day);
        let plain: Vec<_> = tables
            .plain
            .iter()
            .map(|(k, n)| (k.status, k.day, *n))
            .collect();
        assert_eq!(
            plain,
            vec![(TicketStatus::Open, 0, 2), (TicketStatus::Pending, 0, -1)]
        );
        let daily: Vec<_> = tables.daily.iter().map(|(k, n)| (k.day, *n)).collect();
        assert_eq!(daily, vec![(2, -1), (3, -1), (4, 1)]);
    }
}
