//! Who may see a ticket, written into its full-text entry as terms (V22), so FTS5 alone finds
//! the matches an agent may open.
//!
//! An agent sees tickets with no team, of their teams, or assigned to them. When most matches
//! of a word belong to other teams, a search that tests visibility per match tries many of them
//! to keep a page's worth. With these terms the full-text query itself is
//! `(words) AND ("_tnone" OR "_a<agent>" OR "_t<team>" …)`, and FTS5 steps through the doclists
//! together. `ticket_visibility` stays the authority: every match is still tested there.
//!
//! The terms begin with `_`, a token character of the index (V22) but outside the analyser's
//! token alphabet (`[a-z0-9а-я]`): no text can produce one. They never join the vocabulary.

use uuid::Uuid;

/// The term of a ticket without a team (every agent sees it).
const NO_TEAM_TERM: &str = "_tnone";

/// The terms of the ticket row `t` as an SQL text expression (the same as V22's trigger):
/// [`NO_TEAM_TERM`] or its team's term, then its assignee's term.
pub(crate) const TICKET_ACCESS_TERMS_SQL: &str = "(CASE WHEN t.team_id IS NULL THEN '_tnone' \
     ELSE '_t' || lower(hex(t.team_id)) END \
     || CASE WHEN t.assignee_id IS NULL THEN '' ELSE ' _a' || lower(hex(t.assignee_id)) END)";

/// A vocabulary condition on `term` that leaves these terms out (GLOB: `_` is literal).
pub(crate) const NOT_AN_ACCESS_TERM: &str = "term NOT GLOB '_*'";

fn team_term(team: Uuid) -> String {
    format!("_t{}", team.simple())
}

fn assignee_term(agent: Uuid) -> String {
    format!("_a{}", agent.simple())
}

/// The FTS5 query that the entry of a ticket the agent may see matches: no team, one of
/// `team_ids`, or assigned to `agent_id`.
pub(crate) fn agent_query(agent_id: Uuid, team_ids: &[Uuid]) -> String {
    let mut terms = vec![NO_TEAM_TERM.to_owned(), assignee_term(agent_id)];
    terms.extend(team_ids.iter().map(|team| team_term(*team)));
    // Letters, digits and `_`: nothing to escape inside the quotes.
    let terms: Vec<String> = terms.iter().map(|term| format!("\"{term}\"")).collect();
    format!("({})", terms.join(" OR "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_term_is_a_token_the_analyser_can_produce() {
        let id = Uuid::now_v7();
        for term in [NO_TEAM_TERM.to_owned(), team_term(id), assignee_term(id)] {
            assert!(!otklik_search::is_token(&term), "{term}");
            assert!(term.starts_with('_'), "{term}");
        }
    }

    #[test]
    fn an_agents_query_lists_no_team_their_assignments_and_each_of_their_teams() {
        let agent = Uuid::parse_str("01a20d82-f718-7436-9331-2bb5bee86ee0").unwrap();
        let team = Uuid::parse_str("01a20d82-f6a9-70e8-9abe-921b9740341e").unwrap();
        assert_eq!(
            agent_query(agent, &[team]),
            "(\"_tnone\" OR \"_a01a20d82f718743693312bb5bee86ee0\" \
             OR \"_t01a20d82f6a970e89abe921b9740341e\")"
        );
    }

    #[test]
    fn the_sql_terms_of_a_ticket_are_the_terms_an_agent_asks_for() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        let team = Uuid::now_v7();
        let agent = Uuid::now_v7();
        let terms = |team: Option<Uuid>, agent: Option<Uuid>| -> String {
            connection
                .query_row(
                    &format!(
                        "SELECT {TICKET_ACCESS_TERMS_SQL} FROM (SELECT ?1 AS team_id, \
                         ?2 AS assignee_id) t"
                    ),
                    rusqlite::params![
                        team.map(|id| id.as_bytes().to_vec()),
                        agent.map(|id| id.as_bytes().to_vec())
                    ],
                    |row| row.get(0),
                )
                .unwrap()
        };
        assert_eq!(terms(None, None), NO_TEAM_TERM);
        assert_eq!(
            terms(Some(team), Some(agent)),
            format!("{} {}", team_term(team), assignee_term(agent))
        );
        assert_eq!(
            terms(None, Some(agent)),
            format!("{NO_TEAM_TERM} {}", assignee_term(agent))
        );
    }
}
