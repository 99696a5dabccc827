//! The pages, and what they share: the frame every page is drawn in ([`Frame`]), ticket rows,
//! labels, time and URL helpers.

pub mod auth;
pub mod customer;
pub mod events;
pub mod inbox;
pub mod ticket;

use std::collections::HashMap;

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use jiff::Timestamp;
use otklik_app::App;
use otklik_domain::ids::{AgentId, CustomerId};
use otklik_domain::permission::Principal;
use otklik_domain::ticket::Ticket;

use crate::error::UiError;
use crate::i18n::Lang;
use crate::session::Staff;

/// What every page shows around its content: language, the signed-in agent, the CSRF token
/// for forms and htmx (in a meta tag), the search box.
#[derive(Debug, Clone)]
pub struct Frame {
    pub lang: Lang,
    pub csrf: String,
    /// The signed-in agent's name; `None` on the sign-in, set-up and error pages.
    pub me: Option<String>,
    /// Where the language switcher returns to.
    pub path: String,
    /// The search box's current text.
    pub search: String,
}

impl Frame {
    /// The frame of a signed-in page.
    pub fn of(staff: &Staff) -> Frame {
        Frame {
            lang: staff.lang,
            csrf: staff.csrf.clone(),
            me: Some(staff.agent.name.clone()),
            path: staff.path.clone(),
            search: String::new(),
        }
    }

    /// The frame of a page shown before signing in.
    pub fn anonymous(lang: Lang, csrf: String, path: String) -> Frame {
        Frame {
            lang,
            csrf,
            me: None,
            path,
            search: String::new(),
        }
    }

    /// A message of the catalogue.
    pub fn t(&self, key: &str) -> String {
        self.lang.t(key)
    }

    /// A message with a count (plural forms). Templates pass numbers by reference or value.
    pub fn count(&self, key: &str, count: impl std::borrow::Borrow<i64>) -> String {
        self.lang.count(key, *count.borrow())
    }

    /// A message with one text argument.
    pub fn with(&self, key: &str, value: &str) -> String {
        self.lang.with(key, value)
    }

    /// The label of a ticket status, priority, channel or similar code: `{kind}-{code}`.
    pub fn label(&self, kind: &str, code: &str) -> String {
        self.lang.t(&format!("{kind}-{}", code.replace('_', "-")))
    }

    /// The URL of an embedded asset.
    pub fn asset(&self, name: &str) -> String {
        crate::assets::url(name)
    }

    /// The languages the switcher offers (all but the current one).
    pub fn other_langs(&self) -> Vec<Lang> {
        Lang::ALL
            .iter()
            .copied()
            .filter(|lang| *lang != self.lang)
            .collect()
    }
}

/// Renders a template as an HTML response.
pub fn html<T: Template>(template: &T) -> Result<Response, UiError> {
    Ok(Html(template.render()?).into_response())
}

/// A moment, as a machine-readable value (for `<time datetime>`, which `app.js` shows in the
/// browser's time zone) and as text in UTC for browsers without script.
#[derive(Debug, Clone)]
pub struct When {
    pub iso: String,
    pub text: String,
}

impl When {
    pub fn of(at: Timestamp) -> When {
        When {
            iso: at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            text: at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

/// One line of a ticket list.
#[derive(Debug, Clone)]
pub struct TicketRow {
    pub id: String,
    pub number: i64,
    pub subject: String,
    pub customer: String,
    pub customer_id: String,
    pub status: &'static str,
    pub priority: &'static str,
    pub assignee: Option<String>,
    pub updated: When,
}

/// Names of the agents and customers a page mentions.
#[derive(Debug, Default)]
pub struct Names {
    pub agents: HashMap<AgentId, String>,
    pub customers: HashMap<CustomerId, String>,
}

/// Most staff lists fit in one page of this many agents.
pub const DIRECTORY_PAGE: u32 = 200;

impl Names {
    /// Loads the names of every agent (one query) and of the customers of `tickets`. The store
    /// has no batch read of customers yet, so each distinct customer is one point query, run
    /// concurrently.
    pub async fn load(
        app: &App,
        principal: &Principal,
        tickets: &[Ticket],
    ) -> Result<Names, UiError> {
        let agents = app
            .list_agents(principal, None, DIRECTORY_PAGE)
            .await
            .unwrap_or_default();
        let mut customer_ids: Vec<CustomerId> =
            tickets.iter().map(|ticket| ticket.customer_id).collect();
        customer_ids.sort();
        customer_ids.dedup();
        let customers = futures::future::join_all(
            customer_ids
                .iter()
                .map(|id| app.get_customer(principal, *id)),
        )
        .await;
        Ok(Names {
            agents: agents
                .into_iter()
                .map(|agent| (agent.id, agent.name))
                .collect(),
            customers: customers
                .into_iter()
                .filter_map(Result::ok)
                .map(|customer| (customer.id, customer.name))
                .collect(),
        })
    }

    /// The row of a ticket.
    pub fn row(&self, ticket: &Ticket) -> TicketRow {
        TicketRow {
            id: ticket.id.to_string(),
            number: ticket.number,
            subject: ticket.subject.clone(),
            customer: self
                .customers
                .get(&ticket.customer_id)
                .cloned()
                .unwrap_or_else(|| "—".into()),
            customer_id: ticket.customer_id.to_string(),
            status: ticket.status.as_str(),
            priority: ticket.priority.as_str(),
            assignee: ticket
                .assignee_id
                .map(|id| self.agents.get(&id).cloned().unwrap_or_else(|| "—".into())),
            updated: When::of(ticket.updated_at),
        }
    }
}

/// Percent-encodes a query-string value.
pub fn url_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                encoded.push(char::from(byte));
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
pub fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' if index + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        decoded.push(byte);
                        index += 2;
                    }
                    Err(_) => decoded.push(b'%'),
                }
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_components_round_trip() {
        for text in ["/tickets/1?a=b&c", "привет мир", "100%", "a+b", ""] {
            assert_eq!(url_decode(&url_encode(text)), text);
        }
        assert_eq!(url_decode("a+b%20c%2"), "a b c%2");
        assert_eq!(url_decode("%zz"), "%zz");
    }
}
