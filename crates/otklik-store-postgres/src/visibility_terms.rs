//! Who may see a ticket, written into its search document as terms (V21), so the full-text
//! index alone finds the matches an agent may open.
//!
//! An agent sees tickets with no team, of their teams, or assigned to them. When most matches
//! of a word belong to other teams, a search that tests visibility per match must try many
//! documents to find a page's worth (an agent of Delivery and VIP searching «refunding» tried
//! ~120,000 documents of a million to keep 500). With these terms, the GIN index answers
//! `word & (team term | … | assignee term)` with only the visible matches.
//!
//! The terms begin with an upper-case letter, outside the token alphabet of
//! `otklik_search` (`[a-z0-9а-я]`): no text a customer writes can produce one, so no text can
//! make a ticket look visible. They never join the vocabulary used for prefixes.

use uuid::Uuid;

/// The term of a ticket without a team (every agent sees it).
pub(crate) const NO_TEAM_TERM: &str = "TNONE";

/// The term of a ticket of `team`.
pub(crate) fn team_term(team: Uuid) -> String {
    format!("T{:X}", team.simple())
}

/// The term of a ticket assigned to `agent`.
pub(crate) fn assignee_term(agent: Uuid) -> String {
    format!("A{:X}", agent.simple())
}

/// The terms of the ticket row `t`, as a `text[]` expression: what [`NO_TEAM_TERM`],
/// [`team_term`] and [`assignee_term`] give for its team and assignee.
pub(crate) const TICKET_TERMS_SQL: &str = "array_remove(ARRAY[ \
     'T' || coalesce(upper(replace(t.team_id::text, '-', '')), 'NONE'), \
     'A' || upper(replace(t.assignee_id::text, '-', ''))], NULL)";

/// The `tsquery` (input syntax, not parsed as text) that a document of a ticket the agent may
/// see matches: no team, one of `team_ids`, or assigned to `agent_id`.
pub(crate) fn agent_query(agent_id: Uuid, team_ids: &[Uuid]) -> String {
    let mut terms = vec![NO_TEAM_TERM.to_owned(), assignee_term(agent_id)];
    terms.extend(team_ids.iter().map(|team| team_term(*team)));
    // The terms are letters and hex digits: nothing to escape inside the quotes.
    terms
        .iter()
        .map(|term| format!("'{term}'"))
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_term_lies_outside_the_token_alphabet() {
        let id = Uuid::now_v7();
        for term in [NO_TEAM_TERM.to_owned(), team_term(id), assignee_term(id)] {
            assert!(!otklik_search::is_token(&term), "{term}");
            assert!(term.starts_with(|c: char| c.is_ascii_uppercase()), "{term}");
        }
    }

    #[test]
    fn an_agents_query_lists_no_team_their_assignments_and_each_of_their_teams() {
        let agent = Uuid::parse_str("01a20d82-f718-7436-9331-2bb5bee86ee0").unwrap();
        let team = Uuid::parse_str("01a20d82-f6a9-70e8-9abe-921b9740341e").unwrap();
        assert_eq!(
            agent_query(agent, &[team]),
            "'TNONE' | 'A01A20D82F718743693312BB5BEE86EE0' | 'T01A20D82F6A970E89ABE921B9740341E'"
        );
    }
}
