//! Search over tickets and customers, with highlighted snippets, inside what the caller may see.

use otklik_domain::DomainError;
use otklik_domain::customer::Customer;
use otklik_domain::ids::TicketId;
use otklik_domain::permission::{Action, Principal};
use otklik_domain::ticket::Ticket;
use otklik_search::{QueryError, SearchQuery, Snippet};
use otklik_store::{MAX_PAGE_SIZE, TicketFilter, TicketSearch};

use crate::{App, AppResult};

/// Longest excerpt shown under a result, in characters.
pub const SNIPPET_CHARS: usize = 160;

/// One ticket found, with where the words were found.
#[derive(Debug, Clone)]
pub struct TicketHit {
    pub ticket: Ticket,
    /// An excerpt of the subject or of the best message, with the matched words marked.
    pub snippet: Snippet,
}

/// What a search found.
#[derive(Debug, Clone, Default)]
pub struct SearchResults {
    pub tickets: Vec<TicketHit>,
    /// Empty when the caller may not read customers.
    pub customers: Vec<Customer>,
}

impl From<QueryError> for crate::AppError {
    fn from(error: QueryError) -> Self {
        crate::AppError::Domain(DomainError::invalid("q", error.to_string()))
    }
}

impl App {
    /// Finds tickets (and customers, if the caller may read them) matching `raw_query` and
    /// `filter`. Visibility is applied inside the query, so a hidden ticket never shows up in
    /// results, snippets or counts.
    pub async fn search(
        &self,
        principal: &Principal,
        raw_query: &str,
        filter: TicketFilter,
        limit: u32,
    ) -> AppResult<SearchResults> {
        principal.require(Action::ReadTickets)?;
        let query = otklik_search::parse_query(raw_query)?;
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let search = TicketSearch {
            query: query.clone(),
            filter,
            visibility: Self::visibility(principal),
            limit,
        };
        let tickets = self.store.search_tickets(&search).await?;
        let snippets = self.snippets(&tickets, &query).await?;
        let customers = match principal.require(Action::ReadCustomers) {
            Ok(()) => self.store.search_customers(&query, limit.min(20)).await?,
            Err(_) => Vec::new(),
        };
        Ok(SearchResults {
            tickets: tickets
                .into_iter()
                .zip(snippets)
                .map(|(ticket, snippet)| TicketHit { ticket, snippet })
                .collect(),
            customers,
        })
    }

    /// For each ticket, the subject's excerpt if it matches, else the newest matching message's.
    async fn snippets(&self, tickets: &[Ticket], query: &SearchQuery) -> AppResult<Vec<Snippet>> {
        let ids: Vec<TicketId> = tickets.iter().map(|ticket| ticket.id).collect();
        let messages = self.store.list_messages_of(&ids).await?;
        Ok(tickets
            .iter()
            .map(|ticket| {
                let subject = otklik_search::snippet(&ticket.subject, query, SNIPPET_CHARS);
                if !subject.highlights.is_empty() {
                    return subject;
                }
                messages
                    .iter()
                    .rev()
                    .filter(|message| message.ticket_id == ticket.id)
                    .map(|message| otklik_search::snippet(&message.body, query, SNIPPET_CHARS))
                    .find(|snippet| !snippet.highlights.is_empty())
                    .unwrap_or(subject)
            })
            .collect())
    }
}
