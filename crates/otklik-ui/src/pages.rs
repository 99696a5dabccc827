//! The pages, and what they share: the frame every page is drawn in ([`Frame`]), ticket rows,
//! labels, time and URL helpers.

pub mod admin;
pub mod auth;
pub mod bulk;
pub mod chat;
pub mod customer;
pub mod email;
pub mod events;
pub mod inbox;
pub mod presence;
pub mod ticket;

use std::collections::HashMap;

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use jiff::Timestamp;
use otklik_app::App;
use otklik_domain::agent::Agent;
use otklik_domain::ids::{AgentId, CustomerId};
use otklik_domain::permission::{Action, Principal};
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
    /// Whether the top bar links to the admin pages.
    pub is_admin: bool,
    /// The helpdesk's name, in the header and the title.
    pub brand: String,
    /// The agent's chat availability control in the header.
    pub chat: Option<chat::AvailabilityView>,
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
            is_admin: staff.principal.require(Action::ManageAgents).is_ok(),
            brand: staff.helpdesk_name.clone(),
            chat: staff
                .chat
                .as_ref()
                .map(|status| chat::AvailabilityView::of(status, staff.lang)),
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
            is_admin: false,
            brand: otklik_domain::settings::DEFAULT_HELPDESK_NAME.to_owned(),
            chat: None,
        }
    }

    /// The same frame under the helpdesk's own name.
    pub fn branded(mut self, name: &str) -> Frame {
        name.clone_into(&mut self.brand);
        self
    }

    /// A message of the catalogue.
    pub fn t(&self, key: &str) -> String {
        self.lang.t(key)
    }

    /// A message with a count (plural forms). Templates pass numbers by value or through
    /// any number of references.
    pub fn count(&self, key: &str, count: impl AsCount) -> String {
        self.lang.count(key, count.as_count())
    }

    /// A message with one text argument (templates pass `&str`, `String` or references).
    pub fn with(&self, key: &str, value: impl AsRef<str>) -> String {
        self.lang.with(key, value.as_ref())
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

/// A number a template hands to [`Frame::count`], however deeply referenced.
pub trait AsCount {
    fn as_count(&self) -> i64;
}

impl AsCount for i64 {
    fn as_count(&self) -> i64 {
        *self
    }
}

impl AsCount for usize {
    fn as_count(&self) -> i64 {
        i64::try_from(*self).unwrap_or(i64::MAX)
    }
}

impl<T: AsCount + ?Sized> AsCount for &T {
    fn as_count(&self) -> i64 {
        (**self).as_count()
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

/// Agents are read in pages of this many (the store's largest page).
pub const DIRECTORY_PAGE: u32 = otklik_store::MAX_PAGE_SIZE;

/// Every agent, page by page: a shop has tens of agents, but an assignee select or a name in a
/// list must not silently miss the 201st.
pub async fn all_agents(app: &App, principal: &Principal) -> Result<Vec<Agent>, UiError> {
    let mut agents: Vec<Agent> = Vec::new();
    loop {
        let after = agents.last().map(|agent| agent.id);
        let page = app.list_agents(principal, after, DIRECTORY_PAGE).await?;
        let full = page.len() == DIRECTORY_PAGE as usize;
        agents.extend(page);
        if !full {
            return Ok(agents);
        }
    }
}

impl Names {
    /// Loads the names of every agent and of the customers of `tickets` (one batch read).
    pub async fn load(
        app: &App,
        principal: &Principal,
        tickets: &[Ticket],
    ) -> Result<Names, UiError> {
        let customer_ids: Vec<CustomerId> =
            tickets.iter().map(|ticket| ticket.customer_id).collect();
        let (agents, customers) = tokio::join!(
            all_agents(app, principal),
            app.customer_names(principal, &customer_ids)
        );
        Ok(Names {
            agents: agents?
                .into_iter()
                .map(|agent| (agent.id, agent.name))
                .collect(),
            customers: customers?,
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

/// A url-encoded form whose fields may repeat (checkbox lists: `team=…&team=…`), which the
/// `Form` extractor cannot read into a struct.
#[derive(Debug, Default, Clone)]
pub struct Pairs(pub Vec<(String, String)>);

impl Pairs {
    pub fn parse(bytes: &[u8]) -> Pairs {
        Pairs(crate::guard::form_urlencoded_pairs(bytes).collect())
    }

    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
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
