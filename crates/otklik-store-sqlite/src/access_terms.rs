//! Who may see a ticket, written into its full-text entry as terms (V22), so FTS5 alone finds
//! the matches an agent may open.
//!
//! An agent sees tickets with no team, of their teams, or assigned to them. When most matches
//! of a word belong to other teams, a search that tests visibility per match tries many of them
//! to keep a page's worth. With these terms the full-text query itself is
//! `(words) AND ("_tnone" OR "_a<agent>" OR "_t<team>" …)`, and FTS5 steps through the doclists
//! together. `ticket_visibility` stays the authority: every match is still tested there.
//!
//! The ticket's status is written the same way (V24, `_s<status>`), for searches filtered by a
//! rare status ([`status_query`]); so are its priority, its channel and its tags (V29,
//! `_p<priority>`, `_c<channel>`, `_g<tag id>`), which a filter by them always asks FTS5 for
//! ([`filter_query`]): tested in SQL match by match, «r» among the tickets tagged «доставка»
//! (none: «r» is an English token) tried all 155,000 matches of «r» (215 ms).
//!
//! The terms begin with `_`, a token character of the index (V22) but outside the analyser's
//! token alphabet (`[a-z0-9а-я]`): no text can produce one. They never join the vocabulary.

use otklik_domain::ids::{AgentId, TagId, TeamId};
use otklik_domain::ticket::{Channel, Priority, TicketStatus};
use otklik_store::derived::{AccessKey, agent_access_keys, routing_keys};
use otklik_store::{AssigneeFilter, TeamFilter};

/// The terms of the ticket row `t` as an SQL text expression (the same as V29's trigger): what
/// [`term`] spells for its team (or its lack of one), then for its assignee, then
/// [`status_term`] for its status, [`priority_term`] for its priority, [`channel_term`] for its
/// channel and [`tag_term`] for each of its tags.
pub(crate) const TICKET_ACCESS_TERMS_SQL: &str = "(CASE WHEN t.team_id IS NULL THEN '_tnone' \
     ELSE '_t' || lower(hex(t.team_id)) END \
     || CASE WHEN t.assignee_id IS NULL THEN '' ELSE ' _a' || lower(hex(t.assignee_id)) END \
     || ' _s' || t.status || ' _p' || t.priority || ' _c' || t.channel \
     || coalesce((SELECT group_concat(' _g' || lower(hex(tt.tag_id)), '') \
                  FROM ticket_tags tt WHERE tt.ticket_id = t.id), ''))";

/// A vocabulary condition on `term` that leaves these terms out (GLOB: `_` is literal).
pub(crate) const NOT_AN_ACCESS_TERM: &str = "term NOT GLOB '_*'";

/// How the full-text index spells a key.
fn term(key: AccessKey) -> String {
    match key {
        AccessKey::NoTeam => "_tnone".to_owned(),
        AccessKey::Team(team) => format!("_t{}", team.0.simple()),
        AccessKey::Assignee(agent) => format!("_a{}", agent.0.simple()),
    }
}

/// How the full-text index spells a status (its stored name: letters and `_`).
fn status_term(status: TicketStatus) -> String {
    format!("_s{}", status.as_str())
}

/// How the full-text index spells a priority.
fn priority_term(priority: Priority) -> String {
    format!("_p{}", priority.as_str())
}

/// How the full-text index spells a channel (its stored name: letters and `_`).
fn channel_term(channel: Channel) -> String {
    format!("_c{}", channel.as_str())
}

/// How the full-text index spells a tag: by id, which a rename keeps.
fn tag_term(tag: TagId) -> String {
    format!("_g{}", tag.0.simple())
}

/// The FTS5 query that the entry of a ticket of one of `priorities`, of one of `channels` and
/// carrying `tag` matches (V29), or `None` when none is given.
pub(crate) fn filter_query(
    priorities: &[Priority],
    channels: &[Channel],
    tag: Option<TagId>,
) -> Option<String> {
    let any_of = |terms: Vec<String>| {
        let quoted: Vec<String> = terms.iter().map(|term| format!("\"{term}\"")).collect();
        format!("({})", quoted.join(" OR "))
    };
    let mut parts = Vec::new();
    if !priorities.is_empty() {
        parts.push(any_of(
            priorities.iter().map(|p| priority_term(*p)).collect(),
        ));
    }
    if !channels.is_empty() {
        parts.push(any_of(channels.iter().map(|c| channel_term(*c)).collect()));
    }
    if let Some(tag) = tag {
        parts.push(any_of(vec![tag_term(tag)]));
    }
    (!parts.is_empty()).then(|| parts.join(" AND "))
}

/// The FTS5 query that the entry of a ticket in one of `statuses` matches.
pub(crate) fn status_query(statuses: &[TicketStatus]) -> String {
    let terms: Vec<String> = statuses
        .iter()
        .map(|status| format!("\"{}\"", status_term(*status)))
        .collect();
    format!("({})", terms.join(" OR "))
}

/// The FTS5 terms that the entry of a ticket routed to the filter's team (or to none) and
/// assigned to its agent carries, when the filter names them ([`routing_keys`]).
pub(crate) fn routing_query(
    team: Option<TeamFilter>,
    assignee: Option<AssigneeFilter>,
) -> Vec<String> {
    routing_keys(team, assignee)
        .into_iter()
        .map(|key| format!("\"{}\"", term(key)))
        .collect()
}

/// The FTS5 query that the entry of a ticket the agent may see matches.
pub(crate) fn agent_query(agent_id: AgentId, team_ids: &[TeamId]) -> String {
    // Letters, digits and `_`: nothing to escape inside the quotes.
    let terms: Vec<String> = agent_access_keys(agent_id, team_ids)
        .into_iter()
        .map(|key| format!("\"{}\"", term(key)))
        .collect();
    format!("({})", terms.join(" OR "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_term_is_a_token_the_analyser_can_produce() {
        let keys = [
            AccessKey::NoTeam,
            AccessKey::Team(TeamId::new()),
            AccessKey::Assignee(AgentId::new()),
        ]
        .into_iter()
        .map(term);
        let statuses = TicketStatus::ALL.iter().map(|status| status_term(*status));
        let priorities = Priority::ALL
            .iter()
            .map(|priority| priority_term(*priority));
        let channels = Channel::ALL.iter().map(|channel| channel_term(*channel));
        let tags = [tag_term(TagId::new())].into_iter();
        for term in keys
            .chain(statuses)
            .chain(priorities)
            .chain(channels)
            .chain(tags)
        {
            assert!(!otklik_search::is_token(&term), "{term}");
            assert!(term.starts_with('_'), "{term}");
            assert!(
                term.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()),
                "one token of the index: {term}"
            );
        }
    }

    #[test]
    fn an_agents_query_lists_no_team_their_assignments_and_each_of_their_teams() {
        let agent = AgentId(uuid::Uuid::parse_str("01a20d82-f718-7436-9331-2bb5bee86ee0").unwrap());
        let team = TeamId(uuid::Uuid::parse_str("01a20d82-f6a9-70e8-9abe-921b9740341e").unwrap());
        assert_eq!(
            agent_query(agent, &[team]),
            "(\"_tnone\" OR \"_a01a20d82f718743693312bb5bee86ee0\" \
             OR \"_t01a20d82f6a970e89abe921b9740341e\")"
        );
    }

    #[test]
    fn the_sql_terms_of_a_ticket_are_the_terms_an_agent_asks_for() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        let tag = TagId::new();
        connection
            .execute_batch("CREATE TABLE ticket_tags (ticket_id BLOB, tag_id BLOB)")
            .unwrap();
        connection
            .execute(
                "INSERT INTO ticket_tags VALUES (x'01', ?1)",
                [tag.0.as_bytes().to_vec()],
            )
            .unwrap();
        let team = TeamId::new();
        let agent = AgentId::new();
        let terms = |team: Option<TeamId>, agent: Option<AgentId>, status: TicketStatus| {
            connection
                .query_row(
                    &format!(
                        "SELECT {TICKET_ACCESS_TERMS_SQL} FROM (SELECT ?1 AS team_id, \
                         ?2 AS assignee_id, ?3 AS status, 'high' AS priority, \
                         'phone' AS channel, x'01' AS id) t"
                    ),
                    rusqlite::params![
                        team.map(|id| id.0.as_bytes().to_vec()),
                        agent.map(|id| id.0.as_bytes().to_vec()),
                        status.as_str()
                    ],
                    |row| row.get::<_, String>(0),
                )
                .unwrap()
        };
        let no_team = term(AccessKey::NoTeam);
        let (team_term, agent_term) = (
            term(AccessKey::Team(team)),
            term(AccessKey::Assignee(agent)),
        );
        let (open, on_hold) = (
            status_term(TicketStatus::Open),
            status_term(TicketStatus::OnHold),
        );
        let rest = format!(
            "{} {} {}",
            priority_term(Priority::High),
            channel_term(Channel::Phone),
            tag_term(tag)
        );
        assert_eq!(
            terms(None, None, TicketStatus::Open),
            format!("{no_team} {open} {rest}")
        );
        assert_eq!(
            terms(Some(team), Some(agent), TicketStatus::OnHold),
            format!("{team_term} {agent_term} {on_hold} {rest}")
        );
        assert_eq!(
            terms(None, Some(agent), TicketStatus::Open),
            format!("{no_team} {agent_term} {open} {rest}")
        );
        assert_eq!(
            filter_query(
                &[Priority::High],
                &[Channel::Phone, Channel::Email],
                Some(tag)
            ),
            Some(format!(
                "(\"{}\") AND (\"{}\" OR \"{}\") AND (\"{}\")",
                priority_term(Priority::High),
                channel_term(Channel::Phone),
                channel_term(Channel::Email),
                tag_term(tag)
            ))
        );
        assert_eq!(filter_query(&[], &[], None), None);
        assert_eq!(
            status_query(&[TicketStatus::Open, TicketStatus::OnHold]),
            format!("(\"{open}\" OR \"{on_hold}\")")
        );
    }
}
