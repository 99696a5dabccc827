//! Who may see a ticket, written into its search document as terms (V21), so the full-text
//! index alone finds the matches an agent may open.
//!
//! An agent sees tickets with no team, of their teams, or assigned to them. When most matches
//! of a word belong to other teams, a search that tests visibility per match must try many
//! documents to find a page's worth (an agent of Delivery and VIP searching «refunding» tried
//! ~120,000 documents of a million to keep 500). With these terms, the GIN index answers
//! `word & (team term | … | assignee term)` with only the visible matches.
//!
//! The ticket's status is written the same way (V25, `S` + the status in upper case), for
//! searches filtered by a rare status ([`status_query`]).
//!
//! The terms begin with an upper-case letter, outside the token alphabet of
//! `otklik_search` (`[a-z0-9а-я]`): no text a customer writes can produce one, so no text can
//! make a ticket look visible. They never join the vocabulary used for prefixes.

use otklik_domain::ids::{AgentId, TeamId};
use otklik_domain::ticket::TicketStatus;
use otklik_store::derived::{AccessKey, agent_access_keys, routing_keys};
use otklik_store::{AssigneeFilter, TeamFilter};

/// How the documents spell a key.
fn term(key: AccessKey) -> String {
    match key {
        AccessKey::NoTeam => "TNONE".to_owned(),
        AccessKey::Team(team) => format!("T{:X}", team.0.simple()),
        AccessKey::Assignee(agent) => format!("A{:X}", agent.0.simple()),
    }
}

/// How the documents spell a status.
fn status_term(status: TicketStatus) -> String {
    format!("S{}", status.as_str().to_uppercase())
}

/// The terms of the ticket row `t`, as a `text[]` expression: what [`term`] spells for its
/// team (or its lack of one) and its assignee, and [`status_term`] for its status.
pub(crate) const TICKET_TERMS_SQL: &str = "array_remove(ARRAY[ \
     'T' || coalesce(upper(replace(t.team_id::text, '-', '')), 'NONE'), \
     'A' || upper(replace(t.assignee_id::text, '-', '')), \
     'S' || upper(t.status)], NULL)";

/// The `tsquery` (input syntax) that the document of a ticket in one of `statuses` matches.
pub(crate) fn status_query(statuses: &[TicketStatus]) -> String {
    statuses
        .iter()
        .map(|status| format!("'{}'", status_term(*status)))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The `tsquery` terms (input syntax) of the filter's team (or none) and assignee, when it
/// names them ([`routing_keys`]).
pub(crate) fn routing_terms(
    team: Option<TeamFilter>,
    assignee: Option<AssigneeFilter>,
) -> Vec<String> {
    routing_keys(team, assignee)
        .into_iter()
        .map(|key| format!("'{}'", term(key)))
        .collect()
}

/// The `tsquery` (input syntax, not parsed as text) that the document of a ticket the agent
/// may see matches.
pub(crate) fn agent_query(agent_id: AgentId, team_ids: &[TeamId]) -> String {
    // The terms are letters and hex digits: nothing to escape inside the quotes.
    agent_access_keys(agent_id, team_ids)
        .into_iter()
        .map(|key| format!("'{}'", term(key)))
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_term_lies_outside_the_token_alphabet() {
        let keys = [
            AccessKey::NoTeam,
            AccessKey::Team(TeamId::new()),
            AccessKey::Assignee(AgentId::new()),
        ]
        .into_iter()
        .map(term);
        let statuses = TicketStatus::ALL.iter().map(|status| status_term(*status));
        for term in keys.chain(statuses) {
            assert!(!otklik_search::is_token(&term), "{term}");
            assert!(term.starts_with(|c: char| c.is_ascii_uppercase()), "{term}");
        }
    }

    #[test]
    fn a_status_query_lists_each_status_as_its_documents_spell_it() {
        assert_eq!(
            status_query(&[TicketStatus::Open, TicketStatus::OnHold]),
            "'SOPEN' | 'SON_HOLD'"
        );
    }

    #[test]
    fn an_agents_query_lists_no_team_their_assignments_and_each_of_their_teams() {
        let agent = AgentId(uuid::Uuid::parse_str("01a20d82-f718-7436-9331-2bb5bee86ee0").unwrap());
        let team = TeamId(uuid::Uuid::parse_str("01a20d82-f6a9-70e8-9abe-921b9740341e").unwrap());
        assert_eq!(
            agent_query(agent, &[team]),
            "'TNONE' | 'A01A20D82F718743693312BB5BEE86EE0' | 'T01A20D82F6A970E89ABE921B9740341E'"
        );
    }
}
