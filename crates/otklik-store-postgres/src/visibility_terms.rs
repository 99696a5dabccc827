//! Who may see a ticket, written into its search document as terms (V21), so the full-text
//! index alone finds the matches an agent may open.
//!
//! An agent sees tickets with no team, of their teams, or assigned to them. When most matches
//! of a word belong to other teams, a search that tests visibility per match must try many
//! documents to find a page's worth (an agent of Delivery and VIP searching «refunding» tried
//! ~120,000 documents of a million to keep 500). With these terms, the GIN index answers
//! `word & (team term | … | assignee term)` with only the visible matches.
//!
//! The ticket's status is written the same way (V25: `S` and the status in upper case), and so
//! are its priority (V26: `P` and the priority), its channel (V27: `C` and the channel) and its
//! tags (V27: `G` and the tag's id in upper-case hex): every filter but a date range, a customer
//! and «unassigned» is then terms the index can intersect with the words ([`filter_terms`]).
//! So is its era (V26: `E` and its number divided by [`ERA_TICKETS`]), which lets a search ask
//! the index for the newest matches alone ([`era_query`]).
//!
//! The terms begin with an upper-case letter, outside the token alphabet of
//! `otklik_search` (`[a-z0-9а-я]`): no text a customer writes can produce one, so no text can
//! make a ticket look visible. They never join the vocabulary used for prefixes.

use otklik_domain::ids::{AgentId, TagId, TeamId};
use otklik_domain::ticket::{Channel, Priority, TicketStatus};
use otklik_store::derived::{AccessKey, agent_access_keys, routing_keys};
use otklik_store::{AssigneeFilter, TeamFilter, TicketFilter};

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

/// How the documents spell a priority.
fn priority_term(priority: Priority) -> String {
    format!("P{}", priority.as_str().to_uppercase())
}

/// How the documents spell a channel.
fn channel_term(channel: Channel) -> String {
    format!("C{}", channel.as_str().to_uppercase())
}

/// How the documents spell a tag: by id, which a rename keeps.
fn tag_term(tag: TagId) -> String {
    format!("G{:X}", tag.0.simple())
}

/// Tickets per era: consecutive numbers, so in the order tickets are created, as their ids are
/// (UUIDv7). Small enough that the few newest eras hold a page of a word's matches without
/// fetching its older ones (an agent's «refunding» had 4,300 visible matches at a million
/// tickets, ~70 an era); large enough that a search names few eras.
pub(crate) const ERA_TICKETS: i64 = 16_384;

/// The era of the ticket numbered `number`.
pub(crate) fn era_of(number: i64) -> i64 {
    number.div_euclid(ERA_TICKETS)
}

/// How the documents spell an era.
fn era_term(era: i64) -> String {
    format!("E{era}")
}

/// The terms of the ticket row `t`, as a `text[]` expression: what [`term`] spells for its
/// team (or its lack of one) and its assignee, [`status_term`] for its status,
/// [`priority_term`] for its priority, [`era_term`] for its era, [`channel_term`] for its
/// channel and [`tag_term`] for each of its tags.
pub(crate) const TICKET_TERMS_SQL: &str = "array_remove(ARRAY[ \
     'T' || coalesce(upper(replace(t.team_id::text, '-', '')), 'NONE'), \
     'A' || upper(replace(t.assignee_id::text, '-', '')), \
     'S' || upper(t.status), \
     'P' || upper(t.priority), \
     'E' || (t.number / 16384), \
     'C' || upper(t.channel)], NULL) \
     || ARRAY(SELECT 'G' || upper(replace(tt.tag_id::text, '-', '')) \
              FROM ticket_tags tt WHERE tt.ticket_id = t.id)";

/// The `tsquery` (input syntax) that the document of a ticket in one of `statuses` matches.
pub(crate) fn status_query(statuses: &[TicketStatus]) -> String {
    any_of(statuses.iter().map(|status| status_term(*status)))
}

/// The `tsquery` (input syntax) that the document of a ticket of one of `priorities` matches.
pub(crate) fn priority_query(priorities: &[Priority]) -> String {
    any_of(priorities.iter().map(|priority| priority_term(*priority)))
}

/// The `tsquery` (input syntax) that the document of a ticket passing the filter's statuses,
/// priorities, channels, tag (`tag`: its id, looked up by name), team and assignee matches;
/// `None` when the filter has a part no term stands for (a date range, a customer, no
/// assignee), or none of these parts.
pub(crate) fn filter_terms(filter: &TicketFilter, tag: Option<TagId>) -> Option<String> {
    let TicketFilter {
        statuses,
        priorities,
        channels,
        assignee,
        team,
        tag: tag_name,
        customer_id,
        updated_since,
        updated_before,
        include_merged: _,
    } = filter;
    if customer_id.is_some()
        || updated_since.is_some()
        || updated_before.is_some()
        || *assignee == Some(AssigneeFilter::Unassigned)
        || tag_name.is_some() != tag.is_some()
    {
        return None;
    }
    let mut terms = routing_terms(*team, *assignee);
    if !statuses.is_empty() {
        terms.push(format!("({})", status_query(statuses)));
    }
    if !priorities.is_empty() {
        terms.push(format!("({})", priority_query(priorities)));
    }
    if !channels.is_empty() {
        terms.push(format!(
            "({})",
            any_of(channels.iter().map(|channel| channel_term(*channel)))
        ));
    }
    if let Some(tag) = tag {
        terms.push(format!("'{}'", tag_term(tag)));
    }
    (!terms.is_empty()).then(|| format!("({})", terms.join(" & ")))
}

/// The `tsquery` (input syntax) that the document of a ticket of the eras `oldest..=newest`
/// matches.
pub(crate) fn era_query(oldest: i64, newest: i64) -> String {
    any_of((oldest..=newest).rev().map(era_term))
}

/// The code era words (V32) spell a ticket without a team with; teams' codes begin at 1.
pub(crate) const NO_TEAM_CODE: i64 = 0;

/// How era words spell a ticket whose team has no code (V33): never, as every team is given
/// one when it is created; spelled apart so that no agent's rounds take it for no team.
pub(crate) const UNKNOWN_TEAM_CODE: &str = "x";

/// Appends the `tsquery` (input syntax) that `token` (a search token: `a`–`z`, `0`–`9`, `а`–`я`)
/// matches in the era words (V30, V32) of a ticket of the eras `oldest..=newest` whose team has
/// one of the `team_codes` ([`NO_TEAM_CODE`] for none): `'refund~60~3'`, or for several eras or
/// teams `('refund~60~3' | 'refund~60~0' | 'refund~59~3' | …)`. A ticket has one team, so the
/// words of a query spelled this way each match only in documents of the same team.
pub(crate) fn push_era_word(
    out: &mut String,
    token: &str,
    oldest: i64,
    newest: i64,
    team_codes: &[String],
) {
    let spellings = (oldest..=newest)
        .rev()
        .flat_map(|era| team_codes.iter().map(move |code| (era, code)));
    let several = (newest - oldest + 1) * i64::try_from(team_codes.len()).unwrap_or(i64::MAX) > 1;
    if several {
        out.push('(');
    }
    for (i, (era, code)) in spellings.enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        out.push_str(&format!("'{token}~{era}~{code}'"));
    }
    if several {
        out.push(')');
    }
}

/// `'a' | 'b' | …`: the terms are letters, digits and `_`, nothing to escape inside the quotes.
fn any_of(terms: impl Iterator<Item = String>) -> String {
    terms
        .map(|term| format!("'{term}'"))
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
    any_of(agent_access_keys(agent_id, team_ids).into_iter().map(term))
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
        let priorities = Priority::ALL
            .iter()
            .map(|priority| priority_term(*priority));
        let eras = [0, 1, 61, i64::MAX / ERA_TICKETS].into_iter().map(era_term);
        let channels = Channel::ALL.iter().map(|channel| channel_term(*channel));
        let tags = [tag_term(TagId::new())].into_iter();
        for term in keys
            .chain(statuses)
            .chain(priorities)
            .chain(eras)
            .chain(channels)
            .chain(tags)
        {
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
    fn the_sql_spells_a_tickets_era_as_the_store_computes_it() {
        assert!(TICKET_TERMS_SQL.contains(&format!("'E' || (t.number / {ERA_TICKETS})")));
        assert_eq!(era_of(ERA_TICKETS - 1), 0);
        assert_eq!(era_of(ERA_TICKETS), 1);
        assert_eq!(era_query(3, 5), "'E5' | 'E4' | 'E3'");
        assert_eq!(
            priority_query(&[Priority::Urgent, Priority::High]),
            "'PURGENT' | 'PHIGH'"
        );
    }

    #[test]
    fn a_word_of_some_eras_is_spelled_once_for_each_era_and_team_newest_first() {
        let mut out = String::new();
        push_era_word(&mut out, "refund", 60, 60, &["3".to_owned()]);
        out.push_str(" & ");
        let codes = ["3".to_owned(), NO_TEAM_CODE.to_string()];
        push_era_word(&mut out, "возврат", 59, 60, &codes);
        assert_eq!(
            out,
            "'refund~60~3' & ('возврат~60~3' | 'возврат~60~0' | 'возврат~59~3' | 'возврат~59~0')"
        );
    }

    #[test]
    fn a_filter_is_all_terms_or_none() {
        let tag = TagId(uuid::Uuid::parse_str("01a20d82-f6a9-70e8-9abe-921b9740341e").unwrap());
        let filter = TicketFilter {
            statuses: vec![TicketStatus::Open],
            channels: vec![Channel::Phone, Channel::Email],
            tag: Some("доставка".into()),
            ..TicketFilter::default()
        };
        assert_eq!(
            filter_terms(&filter, Some(tag)).as_deref(),
            Some("(('SOPEN') & ('CPHONE' | 'CEMAIL') & 'G01A20D82F6A970E89ABE921B9740341E')")
        );
        // The tag's id was not found: the terms would not be the filter.
        assert_eq!(filter_terms(&filter, None), None);
        let unassigned = TicketFilter {
            assignee: Some(AssigneeFilter::Unassigned),
            ..filter.clone()
        };
        assert_eq!(filter_terms(&unassigned, Some(tag)), None);
        assert_eq!(filter_terms(&TicketFilter::default(), None), None);
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
