//! Authorization on every object: an agent of another role or team sees only what the role
//! allows, a token with a narrower scope cannot do more, and a foreign or unknown id answers 404
//! and changes nothing. One test walks every route of the OpenAPI document with every principal
//! over every principal's ids (and an unknown one), and compares the whole database before and
//! after each refused request.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use base64::Engine;
use otklik_domain::agent::Role;
use otklik_domain::permission::Scope;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TestApp, new_ticket, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    every_route_refuses_every_principal_the_objects_it_may_not_touch,
    an_agent_never_sees_another_teams_ticket_in_any_list_or_count,
    a_foreign_merge_target_is_refused_exactly_like_an_unknown_one,
    nobody_widens_their_own_role_teams_or_e_mail,
);

// ---------------------------------------------------------------------------------------------
// Who calls
// ---------------------------------------------------------------------------------------------

/// A principal of the walk.
struct Caller {
    name: &'static str,
    /// `None`: anonymous.
    token: Option<String>,
    /// The agent behind the token (empty for anonymous).
    agent_id: String,
    role: Role,
    team_ids: Vec<String>,
    /// Every scope; `false` means `tickets:read` only.
    all_scopes: bool,
}

impl Caller {
    fn has_scope(&self, scope: Scope) -> bool {
        self.all_scopes || scope == Scope::TicketsRead
    }
}

// ---------------------------------------------------------------------------------------------
// What they call it on
// ---------------------------------------------------------------------------------------------

/// What a `{param}` of a route names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ticket,
    Attachment,
    Customer,
    CustomerMerge,
    Agent,
    Token,
    Team,
    Tag,
    /// A saved view: shared, or personal to one agent.
    View,
    /// `/audit/{object_id}`: any id.
    AnyObject,
    /// A support mailbox (admins only).
    Mailbox,
    /// An e-mail, in or out, of a ticket or quarantined.
    Email,
    /// A failed outbound e-mail (what "retry" takes).
    FailedEmail,
    /// A quarantined inbound e-mail (what "reprocess" takes).
    QuarantinedEmail,
    /// A chat site (admins only).
    ChatSite,
    /// The chat of a ticket, waiting in the queue.
    Chat,
}

/// Who may reach an object (given a role and scope that allow the action at all).
#[derive(Debug, Clone)]
enum Reach {
    /// Any staff member: customers, merges, teams, tags, audit objects.
    Everyone,
    /// A ticket or an attachment of one: agents see tickets with no team, of their teams, or
    /// assigned to them; supervisors and admins see all.
    Ticket {
        team: Option<String>,
        assignee: Option<String>,
    },
    /// An agent itself, or one of its tokens: `OwnedBy(agent id)`.
    OwnedBy(String),
    /// A personal view: its owner's (agent id) alone; anyone else gets "not found", whatever
    /// their role.
    PersonalTo(String),
    /// Mail that belongs to no ticket (the quarantine): admins with the admin scope only.
    ChannelAdmins,
}

/// One id the walk sends.
#[derive(Debug, Clone)]
struct Target {
    label: String,
    id: String,
    exists: bool,
    reach: Reach,
}

impl Target {
    fn new(label: impl Into<String>, id: impl Into<String>, reach: Reach) -> Self {
        Target {
            label: label.into(),
            id: id.into(),
            exists: true,
            reach,
        }
    }

    fn unknown() -> Self {
        Target {
            label: "unknown".into(),
            id: uuid::Uuid::now_v7().to_string(),
            exists: false,
            reach: Reach::Everyone,
        }
    }

    fn visible_to(&self, caller: &Caller) -> bool {
        if !self.exists {
            return false;
        }
        match &self.reach {
            Reach::Everyone | Reach::OwnedBy(_) => true,
            Reach::PersonalTo(owner) => *owner == caller.agent_id,
            Reach::ChannelAdmins => caller.role == Role::Admin && caller.has_scope(Scope::Admin),
            Reach::Ticket { team, assignee } => {
                caller.role >= Role::Supervisor
                    || assignee.as_deref() == Some(caller.agent_id.as_str())
                    || team
                        .as_ref()
                        .is_none_or(|team| caller.team_ids.contains(team))
            }
        }
    }

    fn owned_by(&self, caller: &Caller) -> bool {
        self.exists
            && matches!(&self.reach, Reach::OwnedBy(owner) | Reach::PersonalTo(owner)
                if *owner == caller.agent_id)
    }
}

// ---------------------------------------------------------------------------------------------
// The route table
// ---------------------------------------------------------------------------------------------

/// How a route decides, written down from `otklik_domain::permission` and the use cases
/// (independently of them, so a change there that loosens a rule fails here).
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// The least role, then the token scope, then the id must exist and be visible.
    Needs(Role, Scope),
    /// `/agents/{id}/tokens`, `/tokens/{id}`: an agent's own tokens for the agent, anyone's for
    /// an admin, "not found" for everyone else; a write through a read-only token is refused
    /// for lack of scope.
    Tokens,
    /// `PATCH /agents/{id}`: one's own name and password for anyone (not through a read-only
    /// token); anyone for an admin.
    PatchAgent,
    /// `POST /setup` takes no caller; a wrong set-up token is 401.
    Setup,
    /// `DELETE /views/{id}`: anyone who reads tickets deletes their own personal view (even
    /// through a read-only token, as they may create one); a shared view needs a supervisor with
    /// the admin scope; someone else's personal view is "not found" even for an admin.
    DeleteView,
}

type BodyFn = fn(&Fixture, u32) -> Option<Value>;

struct Route {
    method: Method,
    template: &'static str,
    id: Option<Kind>,
    rule: Rule,
    /// The status of an allowed call.
    ok: u16,
    /// A valid body, so validation never masks authorization; `u32` makes names unique.
    body: BodyFn,
    /// A query string the route needs to be valid (`?q=…`), appended to the path.
    query: &'static str,
    /// Tells apart several rows of one route that exercise different rules (by their body).
    variant: &'static str,
}

impl Route {
    fn writes(&self) -> bool {
        self.method != Method::GET
    }

    fn key(&self) -> (String, String) {
        (self.method.as_str().to_owned(), self.template.to_owned())
    }

    /// The row's name: its route, and its variant if it has one.
    fn row(&self) -> String {
        match self.variant {
            "" => format!("{} {}", self.method, self.template),
            variant => format!("{} {} ({variant})", self.method, self.template),
        }
    }

    fn path(&self, id: Option<&str>) -> String {
        let path = match (self.template.find('{'), self.template.find('}'), id) {
            (Some(start), Some(end), Some(id)) => {
                format!(
                    "{}{id}{}",
                    &self.template[..start],
                    &self.template[end + 1..]
                )
            }
            _ => self.template.to_owned(),
        };
        format!("{path}{}", self.query)
    }
}

fn no_body(_: &Fixture, _: u32) -> Option<Value> {
    None
}

/// Percent-encodes a query parameter.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An attachment with unique bytes, so a refused request that stored a blob would show.
fn attachment(n: u32) -> Value {
    json!({
        "file_name": format!("walk-{n}.txt"),
        "content_base64": encode(format!("walk attachment {n}").as_bytes()),
    })
}

/// A new view; `{"statuses": ["open"]}` is a valid filter for anyone.
fn view_body(n: u32, shared: bool) -> Value {
    let name = if shared {
        "Walk shared view"
    } else {
        "Walk view"
    };
    let mut body = json!({ "name": format!("{name} {n}"), "filter": { "statuses": ["open"] } });
    if shared {
        body["shared"] = json!(true);
    }
    body
}

/// A new customer with one e-mail.
fn customer_body(name: &str, email: &str) -> Value {
    json!({ "name": name, "identities": [{ "kind": "email", "value": email }] })
}

fn routes() -> Vec<Route> {
    use Kind as K;
    use Role::{Admin, Agent, Supervisor};
    use Rule::{DeleteView, Needs, PatchAgent, Setup, Tokens};
    use Scope::{Admin as AdminScope, CustomersRead, CustomersWrite, TicketsRead, TicketsWrite};
    let route = |method: Method,
                 template: &'static str,
                 id: Option<Kind>,
                 rule: Rule,
                 ok: u16,
                 body: BodyFn| Route {
        method,
        template,
        id,
        rule,
        ok,
        body,
        query: "",
        variant: "",
    };
    let (get, post, patch, delete) = (Method::GET, Method::POST, Method::PATCH, Method::DELETE);
    vec![
        // Tickets.
        route(
            get.clone(),
            "/api/v1/tickets",
            None,
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/tickets",
            None,
            Needs(Agent, TicketsWrite),
            201,
            |_, n| {
                let mut body =
                    new_ticket(&format!("Walk ticket {n}"), &format!("walk{n}@example.com"));
                body["attachments"] = json!([attachment(n)]);
                Some(body)
            },
        ),
        route(
            get.clone(),
            "/api/v1/tickets/{id}",
            Some(K::Ticket),
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            patch.clone(),
            "/api/v1/tickets/{id}",
            Some(K::Ticket),
            Needs(Agent, TicketsWrite),
            200,
            |_, n| Some(json!({ "priority": "urgent", "subject": format!("Changed by walk {n}") })),
        ),
        route(
            get.clone(),
            "/api/v1/tickets/{id}/messages",
            Some(K::Ticket),
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/tickets/{id}/messages",
            Some(K::Ticket),
            Needs(Agent, TicketsWrite),
            201,
            |_, n| {
                Some(json!({ "body": format!("Walk reply {n}"), "attachments": [attachment(n)] }))
            },
        ),
        route(
            post.clone(),
            "/api/v1/tickets/{id}/merge",
            Some(K::Ticket),
            Needs(Agent, TicketsWrite),
            200,
            |fixture, _| Some(json!({ "into_ticket_id": fixture.sink_ticket })),
        ),
        route(
            get.clone(),
            "/api/v1/tickets/{id}/audit",
            Some(K::Ticket),
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/attachments/{id}",
            Some(K::Attachment),
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        // Customers.
        route(
            get.clone(),
            "/api/v1/customers",
            None,
            Needs(Agent, CustomersRead),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/customers",
            None,
            Needs(Agent, CustomersWrite),
            201,
            |_, n| {
                Some(customer_body(
                    &format!("Walk Customer {n}"),
                    &format!("walk.customer{n}@example.com"),
                ))
            },
        ),
        route(
            get.clone(),
            "/api/v1/customers/{id}",
            Some(K::Customer),
            Needs(Agent, CustomersRead),
            200,
            no_body,
        ),
        route(
            patch.clone(),
            "/api/v1/customers/{id}",
            Some(K::Customer),
            Needs(Agent, CustomersWrite),
            200,
            |_, n| Some(json!({ "name": format!("Renamed by walk {n}") })),
        ),
        route(
            post.clone(),
            "/api/v1/customers/{id}/merge",
            Some(K::Customer),
            Needs(Supervisor, CustomersWrite),
            201,
            |fixture, _| Some(json!({ "into_customer_id": fixture.sink_customer })),
        ),
        route(
            get.clone(),
            "/api/v1/customers/{id}/merges",
            Some(K::Customer),
            Needs(Agent, CustomersRead),
            200,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/customers/{id}/audit",
            Some(K::Customer),
            Needs(Agent, CustomersRead),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/customer-merges/{id}/undo",
            Some(K::CustomerMerge),
            Needs(Supervisor, CustomersWrite),
            200,
            no_body,
        ),
        // Staff.
        route(
            get.clone(),
            "/api/v1/agents",
            None,
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/agents",
            None,
            Needs(Admin, AdminScope),
            201,
            |_, n| {
                Some(json!({
                    "email": format!("walk.agent{n}@shop.test"),
                    "name": format!("Walk Agent {n}"),
                    "role": "agent",
                    "team_ids": [],
                }))
            },
        ),
        route(
            get.clone(),
            "/api/v1/agents/me",
            None,
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/agents/{id}",
            Some(K::Agent),
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            patch.clone(),
            "/api/v1/agents/{id}",
            Some(K::Agent),
            PatchAgent,
            200,
            |_, n| Some(json!({ "name": format!("Walked {n}") })),
        ),
        route(
            get.clone(),
            "/api/v1/agents/{id}/tokens",
            Some(K::Agent),
            Tokens,
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/agents/{id}/tokens",
            Some(K::Agent),
            Tokens,
            201,
            |_, n| {
                Some(json!({
                    "name": format!("walk {n}"),
                    "scopes": ["tickets:read", "tickets:write"],
                }))
            },
        ),
        route(
            delete.clone(),
            "/api/v1/tokens/{id}",
            Some(K::Token),
            Tokens,
            204,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/teams",
            None,
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/teams",
            None,
            Needs(Supervisor, AdminScope),
            201,
            |_, n| Some(json!({ "name": format!("Walk team {n}") })),
        ),
        route(
            get.clone(),
            "/api/v1/teams/{id}",
            Some(K::Team),
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            patch.clone(),
            "/api/v1/teams/{id}",
            Some(K::Team),
            Needs(Supervisor, AdminScope),
            200,
            |_, n| Some(json!({ "name": format!("Renamed team {n}") })),
        ),
        route(
            delete.clone(),
            "/api/v1/teams/{id}",
            Some(K::Team),
            Needs(Supervisor, AdminScope),
            204,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/tags",
            None,
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/tags",
            None,
            Needs(Supervisor, AdminScope),
            201,
            |_, n| Some(json!({ "name": format!("walk-tag-{n}") })),
        ),
        route(
            delete.clone(),
            "/api/v1/tags/{id}",
            Some(K::Tag),
            Needs(Supervisor, AdminScope),
            204,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/roles",
            None,
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/audit/{object_id}",
            Some(K::AnyObject),
            Needs(Admin, AdminScope),
            200,
            no_body,
        ),
        // Search and views.
        Route {
            // Words of the Red and the older Blue ticket, so some of the hits are hidden ones.
            query: "?q=order",
            ..route(
                get.clone(),
                "/api/v1/search",
                None,
                Needs(Agent, TicketsRead),
                200,
                no_body,
            )
        },
        route(
            get.clone(),
            "/api/v1/events",
            None,
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/views",
            None,
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/views",
            None,
            Needs(Agent, TicketsRead),
            201,
            |_, n| Some(view_body(n, false)),
        ),
        Route {
            variant: "shared",
            ..route(
                post.clone(),
                "/api/v1/views",
                None,
                Needs(Supervisor, AdminScope),
                201,
                |_, n| Some(view_body(n, true)),
            )
        },
        route(
            delete.clone(),
            "/api/v1/views/{id}",
            Some(K::View),
            DeleteView,
            204,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/views/{id}/tickets",
            Some(K::View),
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        // Email.
        route(
            get.clone(),
            "/api/v1/mailboxes",
            None,
            Needs(Admin, AdminScope),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/mailboxes",
            None,
            Needs(Admin, AdminScope),
            201,
            |_, n| {
                Some(json!({ "name": format!("walk{n}"), "address": format!("walk{n}@shop.test") }))
            },
        ),
        route(
            post.clone(),
            "/api/v1/mailboxes/{id}/test",
            Some(K::Mailbox),
            Needs(Admin, AdminScope),
            200,
            no_body,
        ),
        Route {
            query: "?status=quarantined",
            ..route(
                get.clone(),
                "/api/v1/emails",
                None,
                Needs(Admin, AdminScope),
                200,
                no_body,
            )
        },
        route(
            get.clone(),
            "/api/v1/emails/{id}",
            Some(K::Email),
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/emails/{id}/raw",
            Some(K::Email),
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/emails/{id}/retry",
            Some(K::FailedEmail),
            Needs(Agent, TicketsWrite),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/emails/{id}/reprocess",
            Some(K::QuarantinedEmail),
            Needs(Admin, AdminScope),
            200,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/tickets/{id}/emails",
            Some(K::Ticket),
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        // Live chat.
        route(
            get.clone(),
            "/api/v1/chat-sites",
            None,
            Needs(Admin, AdminScope),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/chat-sites",
            None,
            Needs(Admin, AdminScope),
            201,
            |_, n| Some(chat_site_body(n)),
        ),
        route(
            get.clone(),
            "/api/v1/chat-sites/{id}",
            Some(K::ChatSite),
            Needs(Admin, AdminScope),
            200,
            no_body,
        ),
        route(
            Method::PUT,
            "/api/v1/chat-sites/{id}",
            Some(K::ChatSite),
            Needs(Admin, AdminScope),
            200,
            |_, n| Some(chat_site_body(n)),
        ),
        route(
            post.clone(),
            "/api/v1/chat-sites/{id}/rotate-secret",
            Some(K::ChatSite),
            Needs(Admin, AdminScope),
            200,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/chat/availability",
            None,
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            Method::PUT,
            "/api/v1/chat/availability",
            None,
            Needs(Agent, TicketsWrite),
            200,
            // Away: takes no chats, so the walk's queue stays as it is.
            |_, _| Some(json!({ "availability": "away", "max_chats": 2 })),
        ),
        route(
            get.clone(),
            "/api/v1/chat/queue",
            None,
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        route(
            get.clone(),
            "/api/v1/tickets/{id}/chat",
            Some(K::Chat),
            Needs(Agent, TicketsRead),
            200,
            no_body,
        ),
        // Every caller of the walk is offline, so an allowed accept reaches the capacity rule
        // (409 chat_capacity) and changes nothing; a refused one never gets that far.
        route(
            post.clone(),
            "/api/v1/tickets/{id}/chat/accept",
            Some(K::Chat),
            Needs(Agent, TicketsWrite),
            409,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/tickets/{id}/chat/transfer",
            Some(K::Chat),
            Needs(Agent, TicketsWrite),
            200,
            |fixture, _| Some(json!({ "team_id": fixture.red_team })),
        ),
        route(
            post.clone(),
            "/api/v1/tickets/{id}/chat/end",
            Some(K::Chat),
            Needs(Agent, TicketsWrite),
            200,
            no_body,
        ),
        route(
            post.clone(),
            "/api/v1/tickets/{id}/chat/typing",
            Some(K::Chat),
            Needs(Agent, TicketsWrite),
            204,
            |_, _| Some(json!({ "typing": true })),
        ),
        route(
            post.clone(),
            "/api/v1/tickets/{id}/chat/read",
            Some(K::Chat),
            Needs(Agent, TicketsWrite),
            204,
            |_, _| Some(json!({ "seq": 1 })),
        ),
        route(post.clone(), "/api/v1/setup", None, Setup, 201, |_, n| {
            Some(json!({
                "setup_token": format!("not-the-setup-token-{n}"),
                "email": format!("intruder{n}@shop.test"),
                "name": "Intruder",
                "password": "long enough password",
            }))
        }),
    ]
}

// ---------------------------------------------------------------------------------------------
// What each call must answer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allowed,
    Refused(u16, &'static str),
}

const UNAUTHENTICATED: Expect = Expect::Refused(401, "unauthenticated");
const FORBIDDEN: Expect = Expect::Refused(403, "forbidden");
const NO_SCOPE: Expect = Expect::Refused(403, "insufficient_scope");
const NOT_FOUND: Expect = Expect::Refused(404, "not_found");

fn expected(route: &Route, caller: &Caller, target: Option<&Target>) -> Expect {
    if caller.token.is_none() {
        return UNAUTHENTICATED;
    }
    match route.rule {
        Rule::Setup => UNAUTHENTICATED,
        Rule::Needs(role, scope) => {
            if caller.role < role {
                FORBIDDEN
            } else if !caller.has_scope(scope) {
                NO_SCOPE
            } else if target.is_some_and(|target| !target.visible_to(caller)) {
                NOT_FOUND
            } else {
                Expect::Allowed
            }
        }
        Rule::DeleteView => {
            let target = target.expect("DELETE /views/{id} names an id");
            if !target.visible_to(caller) {
                NOT_FOUND
            } else if target.owned_by(caller) {
                Expect::Allowed
            } else if caller.role < Role::Supervisor {
                FORBIDDEN
            } else if !caller.has_scope(Scope::Admin) {
                NO_SCOPE
            } else {
                Expect::Allowed
            }
        }
        Rule::Tokens => {
            let target = target.expect("token routes name an id");
            // Issuing or revoking tokens needs the admin scope whatever the id: a narrow token
            // can neither mint a wider one nor revoke its owner's.
            if route.writes() && !caller.has_scope(Scope::Admin) {
                NO_SCOPE
            } else if target.owned_by(caller)
                || (caller.role == Role::Admin && caller.all_scopes && target.exists)
            {
                Expect::Allowed
            } else {
                NOT_FOUND
            }
        }
        Rule::PatchAgent => {
            let target = target.expect("PATCH /agents/{id} names an id");
            if target.owned_by(caller) {
                if caller.all_scopes {
                    Expect::Allowed
                } else {
                    NO_SCOPE
                }
            } else if caller.role < Role::Admin {
                FORBIDDEN
            } else if !caller.has_scope(Scope::Admin) {
                NO_SCOPE
            } else if !target.exists {
                NOT_FOUND
            } else {
                Expect::Allowed
            }
        }
    }
}

/// Why a reply breaks the rule, if it does.
fn judge(route: &Route, expect: Expect, reply: &Reply) -> Option<String> {
    let status = reply.status.as_u16();
    let as_ruled = match expect {
        Expect::Allowed => status == route.ok,
        Expect::Refused(want, code) => status == want && reply.code() == code,
    };
    (!as_ruled).then(|| format!("expected {expect:?}, got {status} {}", reply.code()))
}

// ---------------------------------------------------------------------------------------------
// The fixture
// ---------------------------------------------------------------------------------------------

struct TicketInfo {
    id: String,
    subject: String,
    customer_id: String,
    email: String,
    attachment_id: String,
    team: Option<String>,
    assignee: Option<String>,
}

struct Fixture {
    callers: Vec<Caller>,
    red_agent: String,
    red_team: String,
    blue_team: String,
    red: TicketInfo,
    blue: TicketInfo,
    blue_for_red: TicketInfo,
    unrouted: TicketInfo,
    /// A Blue ticket whose customer was merged into the Blue ticket's customer.
    blue_old: TicketInfo,
    sink_ticket: String,
    sink_customer: String,
    /// The e-mail tickets the Red agent may see (Red's, the one assigned to Red, the unrouted).
    email_tickets_of_red: Vec<String>,
    /// The chat tickets the Red agent may see (without a team, or Red's).
    chat_tickets_of_red: Vec<String>,
    targets: BTreeMap<Kind, Vec<Target>>,
}

impl Fixture {
    fn caller(&self, name: &str) -> &Caller {
        self.callers
            .iter()
            .find(|caller| caller.name == name)
            .expect("a caller of the fixture")
    }

    /// The full token of an agent of the fixture.
    fn token_of(&self, agent_id: &str) -> &str {
        self.callers
            .iter()
            .find(|caller| caller.agent_id == agent_id && caller.all_scopes)
            .and_then(|caller| caller.token.as_deref())
            .expect("an agent of the fixture")
    }
}

async fn created(test: &TestApp, path: &str, body: Value) -> Reply {
    created_by(test, &test.admin_token, path, body).await
}

async fn created_by(test: &TestApp, token: &str, path: &str, body: Value) -> Reply {
    let reply = test.post(path, token, body).await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "POST {path}: {}",
        reply.body
    );
    reply
}

async fn open_ticket(
    test: &TestApp,
    subject: &str,
    email: &str,
    team: Option<&str>,
    assignee: Option<&str>,
    tag: &str,
) -> TicketInfo {
    let mut body = new_ticket(subject, email);
    body["team_id"] = json!(team);
    body["assignee_id"] = json!(assignee);
    body["tags"] = json!([tag]);
    let receipt = encode(format!("receipt of {subject}").as_bytes());
    body["attachments"] = json!([{ "file_name": "receipt.txt", "content_base64": receipt }]);
    let ticket = test.ticket(&test.admin_token, body).await;
    let id = ticket.str("id");
    let messages = test
        .get(&format!("/api/v1/tickets/{id}/messages"), &test.admin_token)
        .await;
    TicketInfo {
        attachment_id: messages.body[0]["attachments"][0]["id"]
            .as_str()
            .expect("an attachment")
            .to_owned(),
        id,
        subject: subject.to_owned(),
        customer_id: ticket.str("customer_id"),
        email: email.to_owned(),
        team: team.map(str::to_owned),
        assignee: assignee.map(str::to_owned),
    }
}

/// The ids of an agent's tokens, by token name.
async fn token_ids(test: &TestApp, agent_id: &str) -> BTreeMap<String, String> {
    let reply = test
        .get(
            &format!("/api/v1/agents/{agent_id}/tokens"),
            &test.admin_token,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply
        .body
        .as_array()
        .expect("a token list")
        .iter()
        .map(|token| {
            (
                token["name"].as_str().unwrap().to_owned(),
                token["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Admin, a supervisor, an agent of team Red, one of team Blue, a read-only token of the Red
/// agent and anonymous; tickets of Red, Blue, Blue-but-assigned-to-Red and no team, each with an
/// attachment; their customers, a customer merge, tags, teams, everyone's tokens, the default
/// shared views, one more shared view and a personal view of each agent.
async fn fixture(test: &TestApp) -> Fixture {
    // What `otklik serve` does at start (a no-op if the instance already has them).
    test.app
        .ensure_default_views()
        .await
        .expect("the default views");
    let admin = test.admin.id.to_string();
    let red_team_id = test.create_team("Red").await;
    let blue_team_id = test.create_team("Blue").await;
    let (red_team, blue_team) = (red_team_id.to_string(), blue_team_id.to_string());
    let (supervisor, supervisor_token) = test
        .staff("lead@shop.test", Role::Supervisor, &[], &[])
        .await;
    let (red_agent, red_token) = test
        .staff("red@shop.test", Role::Agent, &[red_team_id], &[])
        .await;
    let (blue_agent, blue_token) = test
        .staff("blue@shop.test", Role::Agent, &[blue_team_id], &[])
        .await;
    let read_only = created(
        test,
        &format!("/api/v1/agents/{red_agent}/tokens"),
        json!({ "name": "read-only", "scopes": ["tickets:read"] }),
    )
    .await;

    let red = open_ticket(
        test,
        "Red: refund for order 1001",
        "red.customer@example.com",
        Some(&red_team),
        None,
        "red-tag",
    )
    .await;
    let blue = open_ticket(
        test,
        "Blue: chargeback dispute 2002",
        "blue.customer@example.com",
        Some(&blue_team),
        None,
        "blue-tag",
    )
    .await;
    let blue_for_red = open_ticket(
        test,
        "Blue queue, Red's desk 3003",
        "handover@example.com",
        Some(&blue_team),
        Some(&red_agent),
        "handover",
    )
    .await;
    let unrouted = open_ticket(
        test,
        "Nobody's queue 4004",
        "unrouted@example.com",
        None,
        None,
        "triage",
    )
    .await;
    let blue_old = open_ticket(
        test,
        "Blue: older order 5005",
        "blue.old@example.com",
        Some(&blue_team),
        None,
        "blue-tag",
    )
    .await;
    let sink_ticket = test
        .ticket(
            &test.admin_token,
            new_ticket("Merge sink", "sink.ticket@example.com"),
        )
        .await
        .str("id");
    let merge = test
        .post(
            &format!("/api/v1/customers/{}/merge", blue_old.customer_id),
            &supervisor_token,
            json!({ "into_customer_id": blue.customer_id }),
        )
        .await;
    assert_eq!(merge.status, StatusCode::CREATED, "{}", merge.body);
    let merge_id = merge.str("id");
    let sink_customer = created(
        test,
        "/api/v1/customers",
        customer_body("Merge Sink", "sink@example.com"),
    )
    .await
    .str("id");
    let tags = test.get("/api/v1/tags", &test.admin_token).await;
    let tag_id = |name: &str| {
        tags.body
            .as_array()
            .unwrap()
            .iter()
            .find(|tag| tag["name"] == name)
            .map(|tag| tag["id"].as_str().unwrap().to_owned())
            .expect("tag")
    };

    let default_views = test.get("/api/v1/views", &test.admin_token).await;
    let unassigned_view = default_views
        .body
        .as_array()
        .expect("views")
        .iter()
        .find(|view| view["name"] == "Unassigned" && view["shared"] == true)
        .map(|view| view["id"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no default view Unassigned in {}", default_views.body));
    let shared_view = created_by(
        test,
        &supervisor_token,
        "/api/v1/views",
        json!({ "name": "Fixture shared", "filter": { "statuses": ["new", "open"] }, "shared": true }),
    )
    .await;
    assert_eq!(shared_view.body["shared"], true, "{}", shared_view.body);
    let mut views = vec![
        Target::new("view:shared", shared_view.str("id"), Reach::Everyone),
        Target::new("view:default", unassigned_view, Reach::Everyone),
    ];
    for (name, agent_id, token) in [
        ("admin", &admin, &test.admin_token),
        ("supervisor", &supervisor, &supervisor_token),
        ("agent_red", &red_agent, &red_token),
        ("agent_blue", &blue_agent, &blue_token),
    ] {
        let view = created_by(
            test,
            token,
            "/api/v1/views",
            json!({ "name": format!("Own view of {name}"), "filter": { "statuses": ["new"] } }),
        )
        .await;
        assert_eq!(view.body["shared"], false, "{}", view.body);
        views.push(Target::new(
            format!("view:{name}/personal"),
            view.str("id"),
            Reach::PersonalTo(agent_id.clone()),
        ));
    }

    let caller =
        |name, token: &str, agent_id: &str, role, team_ids: Vec<String>, all_scopes| Caller {
            name,
            token: Some(token.to_owned()),
            agent_id: agent_id.to_owned(),
            role,
            team_ids,
            all_scopes,
        };
    let callers = vec![
        caller(
            "admin",
            &test.admin_token,
            &admin,
            Role::Admin,
            vec![],
            true,
        ),
        caller(
            "supervisor",
            &supervisor_token,
            &supervisor,
            Role::Supervisor,
            vec![],
            true,
        ),
        caller(
            "agent_red",
            &red_token,
            &red_agent,
            Role::Agent,
            vec![red_team.clone()],
            true,
        ),
        caller(
            "agent_blue",
            &blue_token,
            &blue_agent,
            Role::Agent,
            vec![blue_team.clone()],
            true,
        ),
        caller(
            "agent_red_read_only",
            &read_only.str("token"),
            &red_agent,
            Role::Agent,
            vec![red_team.clone()],
            false,
        ),
        Caller {
            name: "anonymous",
            token: None,
            agent_id: String::new(),
            role: Role::Agent,
            team_ids: vec![],
            all_scopes: false,
        },
    ];

    let tickets = [
        ("red", &red),
        ("blue", &blue),
        ("blue_for_red", &blue_for_red),
        ("unrouted", &unrouted),
    ];
    let ticket_reach = |ticket: &TicketInfo| Reach::Ticket {
        team: ticket.team.clone(),
        assignee: ticket.assignee.clone(),
    };
    let agents = [
        ("admin", &admin),
        ("supervisor", &supervisor),
        ("agent_red", &red_agent),
        ("agent_blue", &blue_agent),
    ];
    let mut tokens = Vec::new();
    for (name, agent_id) in agents {
        for (token_name, token_id) in token_ids(test, agent_id).await {
            let kind = if token_name == "read-only" {
                "read-only"
            } else {
                "full"
            };
            tokens.push(Target::new(
                format!("token:{name}/{kind}"),
                token_id,
                Reach::OwnedBy(agent_id.clone()),
            ));
        }
    }
    let mailbox = test
        .app
        .create_mailbox_from_cli(otklik_app::mail::MailboxInput {
            name: "walk".into(),
            address: "walk@shop.test".into(),
            imap_url: None,
            smtp_url: None,
            auto_acknowledge: false,
        })
        .await
        .expect("a mailbox");
    let mut emails = Vec::new();
    let mut failed_emails = Vec::new();
    let mut email_tickets_of_red = Vec::new();
    for (name, team, assignee) in [
        ("red", Some(red_team.clone()), None),
        ("blue", Some(blue_team.clone()), None),
        (
            "blue_for_red",
            Some(blue_team.clone()),
            Some(red_agent.clone()),
        ),
        ("unrouted", None, None),
    ] {
        let mail = email_ticket(test, &mailbox, team.as_deref(), assignee.as_deref(), name).await;
        if name != "blue" {
            email_tickets_of_red.push(mail.ticket.clone());
        }
        let reach = Reach::Ticket { team, assignee };
        emails.push(Target::new(
            format!("email:{name}/inbound"),
            &mail.inbound,
            reach.clone(),
        ));
        emails.push(Target::new(
            format!("email:{name}/outbound"),
            &mail.failed,
            reach.clone(),
        ));
        failed_emails.push(Target::new(
            format!("email:{name}/failed"),
            &mail.failed,
            reach,
        ));
    }
    let quarantined = quarantined_email(test, &mailbox, 0).await;
    emails.push(Target::new(
        "email:quarantined",
        &quarantined,
        Reach::ChannelAdmins,
    ));
    let quarantined_emails = vec![Target::new(
        "email:quarantined",
        &quarantined,
        Reach::ChannelAdmins,
    )];
    let (chat_sites, chats, chat_tickets_of_red) =
        walk_chats(test, &red_team_id, &blue_team_id).await;
    let with_unknown = |mut targets: Vec<Target>| {
        targets.push(Target::unknown());
        targets
    };
    let targets = BTreeMap::from([
        (
            Kind::Ticket,
            with_unknown(
                tickets
                    .iter()
                    .map(|(name, t)| Target::new(format!("ticket:{name}"), &t.id, ticket_reach(t)))
                    .collect(),
            ),
        ),
        (
            Kind::Attachment,
            with_unknown(
                tickets
                    .iter()
                    .map(|(name, t)| {
                        Target::new(
                            format!("attachment:{name}"),
                            &t.attachment_id,
                            ticket_reach(t),
                        )
                    })
                    .collect(),
            ),
        ),
        (
            Kind::Customer,
            with_unknown(vec![
                Target::new("customer:red", &red.customer_id, Reach::Everyone),
                Target::new("customer:blue", &blue.customer_id, Reach::Everyone),
            ]),
        ),
        (
            Kind::CustomerMerge,
            with_unknown(vec![Target::new(
                "merge:blue_old",
                &merge_id,
                Reach::Everyone,
            )]),
        ),
        (
            Kind::Agent,
            with_unknown(
                agents
                    .iter()
                    .map(|(name, id)| {
                        Target::new(format!("agent:{name}"), *id, Reach::OwnedBy((*id).clone()))
                    })
                    .collect(),
            ),
        ),
        (Kind::Token, with_unknown(tokens)),
        (
            Kind::Team,
            with_unknown(vec![
                Target::new("team:red", &red_team, Reach::Everyone),
                Target::new("team:blue", &blue_team, Reach::Everyone),
            ]),
        ),
        (
            Kind::Tag,
            with_unknown(vec![
                Target::new("tag:red-tag", tag_id("red-tag"), Reach::Everyone),
                Target::new("tag:blue-tag", tag_id("blue-tag"), Reach::Everyone),
            ]),
        ),
        (Kind::View, with_unknown(views)),
        (
            Kind::AnyObject,
            with_unknown(vec![
                Target::new("object:team_blue", &blue_team, Reach::Everyone),
                Target::new("object:agent_blue", &blue_agent, Reach::Everyone),
                Target::new("object:ticket_blue", &blue.id, Reach::Everyone),
            ]),
        ),
        (
            Kind::Mailbox,
            with_unknown(vec![Target::new(
                "mailbox:walk",
                mailbox.id.to_string(),
                Reach::Everyone,
            )]),
        ),
        (Kind::Email, with_unknown(emails)),
        (Kind::FailedEmail, with_unknown(failed_emails)),
        (Kind::QuarantinedEmail, with_unknown(quarantined_emails)),
        (
            Kind::ChatSite,
            with_unknown(
                chat_sites
                    .iter()
                    .map(|(team, site)| {
                        Target::new(
                            format!("chat_site:{}", team.as_deref().unwrap_or("none")),
                            site.to_string(),
                            Reach::ChannelAdmins,
                        )
                    })
                    .collect(),
            ),
        ),
        (Kind::Chat, with_unknown(chats)),
    ]);
    Fixture {
        callers,
        red_agent,
        red_team,
        blue_team,
        red,
        blue,
        blue_for_red,
        unrouted,
        blue_old,
        sink_ticket,
        sink_customer,
        email_tickets_of_red,
        chat_tickets_of_red,
        targets,
    }
}

/// The e-mails of a ticket that came in by e-mail.
struct EmailTicket {
    ticket: String,
    inbound: String,
    /// The agent's reply, which failed (the mailbox has no SMTP server).
    failed: String,
}

/// A customer e-mail ingested into a new ticket (routed to `team`/`assignee`), answered by the
/// admin; the answer fails in the outbox because the mailbox cannot send.
async fn email_ticket(
    test: &TestApp,
    mailbox: &otklik_domain::email::Mailbox,
    team: Option<&str>,
    assignee: Option<&str>,
    label: &str,
) -> EmailTicket {
    let raw = format!(
        "From: Mail {label} <mail.{label}@example.com>\r\nTo: {}\r\nSubject: Mail {label}\r\n\
         Message-ID: <walk-{label}@example.com>\r\nContent-Type: text/plain\r\n\r\nWhere is order {label}?\r\n",
        mailbox.address
    );
    let outcome = test
        .app
        .ingest_email(mailbox, raw.into_bytes())
        .await
        .expect("ingested");
    let otklik_app::mail::IngestOutcome::Ticket {
        ticket_id,
        email_id,
        ..
    } = outcome
    else {
        panic!("the mail became a ticket: {outcome:?}");
    };
    let patch = test
        .patch(
            &format!("/api/v1/tickets/{ticket_id}"),
            &test.admin_token,
            json!({ "team_id": team, "assignee_id": assignee }),
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK, "{}", patch.body);
    let reply = test
        .post(
            &format!("/api/v1/tickets/{ticket_id}/messages"),
            &test.admin_token,
            json!({ "body": format!("Answer to {label}") }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let report = test
        .app
        .deliver_due_emails(&NoMailServer)
        .await
        .expect("an outbox round");
    assert!(report.failed >= 1, "{report:?}");
    let emails = test
        .app
        .store
        .list_ticket_emails(ticket_id)
        .await
        .expect("the ticket's e-mails");
    let failed = emails
        .iter()
        .find(|email| email.status == otklik_domain::email::EmailStatus::Failed)
        .expect("the failed reply");
    EmailTicket {
        ticket: ticket_id.to_string(),
        inbound: email_id.to_string(),
        failed: failed.id.to_string(),
    }
}

/// Bytes no parser takes for an e-mail, quarantined; returns the e-mail's id.
async fn quarantined_email(
    test: &TestApp,
    mailbox: &otklik_domain::email::Mailbox,
    n: u32,
) -> String {
    let garbage = format!("\u{0}\u{1} quarantine me {n}").into_bytes();
    match test
        .app
        .ingest_email(mailbox, garbage)
        .await
        .expect("ingested")
    {
        otklik_app::mail::IngestOutcome::Quarantined { email_id, .. } => email_id.to_string(),
        other => panic!("expected quarantine, got {other:?}"),
    }
}

/// The walk's mailbox has no SMTP server, so the outbox fails without calling this.
struct NoMailServer;

#[async_trait::async_trait]
impl otklik_app::mail::MailTransport for NoMailServer {
    async fn send(
        &self,
        _smtp_url: &str,
        _mail_from: &str,
        _recipients: &[String],
        _raw: &[u8],
    ) -> Result<(), otklik_app::mail::SendFailure> {
        panic!("the walk's mailbox has no SMTP server to send to")
    }
    async fn check_imap(&self, _imap_url: &str) -> Result<(), String> {
        panic!("the walk's mailbox has no IMAP server")
    }
    async fn check_smtp(&self, _smtp_url: &str) -> Result<(), String> {
        panic!("the walk's mailbox has no SMTP server")
    }
}

/// A fresh object like `target` (same team, assignee or owner), for an allowed write that must
/// not disturb the shared fixture.
async fn throwaway(
    test: &TestApp,
    fixture: &Fixture,
    kind: Kind,
    target: &Target,
    n: u32,
) -> Target {
    let fresh_customer = |n: u32| async move {
        let body = customer_body(
            &format!("Throwaway {n}"),
            &format!("throwaway{n}@example.com"),
        );
        created(test, "/api/v1/customers", body).await.str("id")
    };
    let id = match (kind, &target.reach) {
        (Kind::Ticket, Reach::Ticket { team, assignee }) => {
            let mut body = new_ticket(
                &format!("Throwaway {n}"),
                &format!("throwaway.ticket{n}@example.com"),
            );
            body["team_id"] = json!(team);
            body["assignee_id"] = json!(assignee);
            test.ticket(&test.admin_token, body).await.str("id")
        }
        (Kind::Customer, _) => fresh_customer(n).await,
        (Kind::CustomerMerge, _) => {
            let source = fresh_customer(n).await;
            let into = fresh_customer(n + 1_000_000).await;
            created(
                test,
                &format!("/api/v1/customers/{source}/merge"),
                json!({ "into_customer_id": into }),
            )
            .await
            .str("id")
        }
        (Kind::Team, _) => created(
            test,
            "/api/v1/teams",
            json!({ "name": format!("Throwaway team {n}") }),
        )
        .await
        .str("id"),
        (Kind::Tag, _) => created(
            test,
            "/api/v1/tags",
            json!({ "name": format!("throwaway-{n}") }),
        )
        .await
        .str("id"),
        (Kind::Token, Reach::OwnedBy(owner)) => created(
            test,
            &format!("/api/v1/agents/{owner}/tokens"),
            json!({ "name": format!("throwaway {n}"), "scopes": ["tickets:read"] }),
        )
        .await
        .str("id"),
        (Kind::View, Reach::PersonalTo(owner)) => created_by(
            test,
            fixture.token_of(owner),
            "/api/v1/views",
            view_body(n, false),
        )
        .await
        .str("id"),
        (Kind::View, _) => created(test, "/api/v1/views", view_body(n, true))
            .await
            .str("id"),
        (Kind::FailedEmail, Reach::Ticket { team, assignee }) => {
            let mailbox = test
                .app
                .mailbox_named("walk")
                .await
                .expect("mailboxes")
                .expect("the walk's mailbox");
            let label = format!("throwaway{n}");
            email_ticket(test, &mailbox, team.as_deref(), assignee.as_deref(), &label)
                .await
                .failed
        }
        (Kind::Chat, Reach::Ticket { team, .. }) => {
            let site = walk_chat_site(test, team.as_deref()).await;
            walk_chat(test, site, n).await
        }
        (Kind::ChatSite, _) => test
            .app
            .create_chat_site(&admin_principal(test).await, chat_site_input(None, n))
            .await
            .expect("a chat site")
            .id
            .to_string(),
        (Kind::QuarantinedEmail, _) => {
            let mailbox = test
                .app
                .mailbox_named("walk")
                .await
                .expect("mailboxes")
                .expect("the walk's mailbox");
            quarantined_email(test, &mailbox, n).await
        }
        // Agents are not thrown away: the allowed writes on them (a name, a token) are harmless.
        _ => target.id.clone(),
    };
    Target {
        id,
        ..target.clone()
    }
}

// ---------------------------------------------------------------------------------------------
// "Nothing changed": the whole database, before and after
// ---------------------------------------------------------------------------------------------

/// Every table's row count and a hash of its rows, and (SQLite) the stored attachment files.
type Snapshot = BTreeMap<String, (i64, String)>;

enum Snapshotter {
    /// The SQLite file opened read-only; rows hashed in rowid order.
    Sqlite {
        connection: rusqlite::Connection,
        blobs: PathBuf,
    },
    /// The test's PostgreSQL database; rows hashed in the order of their text form. The blob
    /// folder is not reachable from here on PostgreSQL (only through `TestApp`'s private guard),
    /// so stored attachment files are compared on SQLite only.
    Postgres {
        client: tokio_postgres::Client,
        tables: Vec<String>,
    },
}

impl Snapshotter {
    async fn open(test: &TestApp) -> Snapshotter {
        match test.backend {
            Backend::Sqlite => {
                let path = test.sqlite_path.clone().expect("a SQLite file");
                let connection = rusqlite::Connection::open_with_flags(
                    &path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .expect("open the SQLite file read-only");
                Snapshotter::Sqlite {
                    connection,
                    blobs: path.parent().expect("a folder").join("attachments"),
                }
            }
            Backend::Postgres => {
                let client = own_postgres_database(&test.admin_token).await;
                let rows = client
                    .query(
                        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
                         AND table_type = 'BASE TABLE' AND table_name NOT LIKE 'refinery%' ORDER BY 1",
                        &[],
                    )
                    .await
                    .expect("list tables");
                let tables: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
                assert!(tables.len() > 10, "found the schema's tables: {tables:?}");
                Snapshotter::Postgres { client, tables }
            }
        }
    }

    async fn take(&self) -> Snapshot {
        match self {
            Snapshotter::Sqlite { connection, blobs } => {
                tokio::task::block_in_place(|| sqlite_snapshot(connection, blobs))
            }
            Snapshotter::Postgres { client, tables } => {
                let parts: Vec<String> = tables
                    .iter()
                    .map(|table| {
                        format!(
                            "SELECT '{table}', count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM \"{table}\" t"
                        )
                    })
                    .collect();
                let rows = client
                    .query(&parts.join(" UNION ALL "), &[])
                    .await
                    .expect("snapshot PostgreSQL");
                rows.iter()
                    .map(|row| {
                        (
                            row.get::<_, String>(0),
                            (row.get::<_, i64>(1), row.get::<_, String>(2)),
                        )
                    })
                    .collect()
            }
        }
    }
}

fn sqlite_snapshot(connection: &rusqlite::Connection, blobs: &std::path::Path) -> Snapshot {
    use rusqlite::types::ValueRef;
    // Ordinary tables and the full-text indexes' shadow tables (whose rows are what a virtual
    // table shows); those `WITHOUT ROWID` are read in primary-key order.
    let mut statement = connection
        .prepare(
            "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' \
             AND type IN ('table', 'shadow') AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE 'refinery%' ORDER BY name",
        )
        .expect("list tables");
    let tables: Vec<(String, bool)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("tables")
        .map(Result::unwrap)
        .collect();
    assert!(tables.len() > 10, "found the schema's tables: {tables:?}");
    let mut snapshot = Snapshot::new();
    for (table, without_rowid) in tables {
        let order = if without_rowid {
            let mut statement = connection
                .prepare("SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk")
                .expect("list key columns");
            let key: Vec<String> = statement
                .query_map([&table], |row| row.get::<_, String>(0))
                .expect("key columns")
                .map(|name| format!("\"{}\"", name.unwrap()))
                .collect();
            key.join(", ")
        } else {
            "rowid".to_owned()
        };
        let mut statement = connection
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY {order}"))
            .expect("select a table");
        let n_columns = statement.column_count();
        let mut rows = statement.query([]).expect("rows");
        let mut hasher = DefaultHasher::new();
        let mut n_rows = 0;
        while let Some(row) = rows.next().expect("a row") {
            n_rows += 1;
            for column in 0..n_columns {
                match row.get_ref(column).expect("a value") {
                    ValueRef::Null => 0u8.hash(&mut hasher),
                    ValueRef::Integer(value) => (1u8, value).hash(&mut hasher),
                    ValueRef::Real(value) => (2u8, value.to_bits()).hash(&mut hasher),
                    ValueRef::Text(bytes) => (3u8, bytes).hash(&mut hasher),
                    ValueRef::Blob(bytes) => (4u8, bytes).hash(&mut hasher),
                }
            }
        }
        snapshot.insert(table, (n_rows, format!("{:016x}", hasher.finish())));
    }
    let mut files = BTreeSet::new();
    let mut folders = vec![blobs.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                folders.push(entry.path());
            } else {
                files.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let mut hasher = DefaultHasher::new();
    files.hash(&mut hasher);
    snapshot.insert(
        "(attachment files)".into(),
        (files.len() as i64, format!("{:016x}", hasher.finish())),
    );
    snapshot
}

/// `spawn_app` keeps the test's PostgreSQL database private; find it among the test databases
/// by the admin token's hash, which only this test's database holds.
async fn own_postgres_database(admin_token: &str) -> tokio_postgres::Client {
    use otklik_store_postgres::testkit::{admin_url, with_database};
    let admin_url = admin_url();
    let (admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    let names = admin
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'otklik_test_%'",
            &[],
        )
        .await
        .expect("list databases");
    let hash = otklik_app::auth::secret_hash(admin_token);
    for row in names {
        let name: String = row.get(0);
        // Other tests' databases come and go meanwhile: one that cannot be read is not ours.
        let Ok((client, connection)) =
            tokio_postgres::connect(&with_database(&admin_url, &name), tokio_postgres::NoTls).await
        else {
            continue;
        };
        tokio::spawn(connection);
        if let Ok(Some(_)) = client
            .query_opt("SELECT 1 FROM api_tokens WHERE token_hash = $1", &[&hash])
            .await
        {
            return client;
        }
    }
    panic!("no test database holds this test's admin token");
}

fn changes(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    after
        .iter()
        .filter(|(table, state)| before.get(*table) != Some(*state))
        .map(|(table, (n_rows, _))| {
            format!(
                "{table} ({} → {n_rows} rows)",
                before.get(table).map_or(0, |(n, _)| *n)
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The walk
// ---------------------------------------------------------------------------------------------

async fn send(
    test: &TestApp,
    route: &Route,
    caller: &Caller,
    id: Option<&str>,
    body: Option<Value>,
) -> Reply {
    if route.template == "/api/v1/events" {
        // An accepted event stream never ends: judge it by its status and close it.
        return test
            .open_stream(&route.path(id), caller.token.as_deref())
            .await;
    }
    test.call(
        route.method.clone(),
        &route.path(id),
        caller.token.as_deref(),
        body,
    )
    .await
}

async fn every_route_refuses_every_principal_the_objects_it_may_not_touch(backend: Backend) {
    let test = spawn_app(backend).await;
    let fixture = fixture(&test).await;
    let routes = routes();

    // Every route of the API has a row here, and every row is a route: a new route fails the
    // walk until someone decides who may call it.
    let document = serde_json::to_value(otklik_web::openapi()).expect("the OpenAPI document");
    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .as_object()
                .expect("methods")
                .keys()
                .map(|method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let tabled: BTreeSet<(String, String)> = routes.iter().map(Route::key).collect();
    let rows: BTreeSet<String> = routes.iter().map(Route::row).collect();
    assert_eq!(rows.len(), routes.len(), "one row per route and variant");
    assert_eq!(
        documented.difference(&tabled).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "routes without a row in the authorization table: add one"
    );
    assert_eq!(
        tabled.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "rows for routes that do not exist"
    );

    let snapshotter = Snapshotter::open(&test).await;
    let mut baseline = snapshotter.take().await;
    let mut violations: Vec<String> = Vec::new();
    let mut allowed_ok: BTreeMap<String, usize> = BTreeMap::new();
    let mut deferred: Vec<(usize, usize, Option<Target>)> = Vec::new();
    let mut n_checked = 0usize;
    let mut n = 0u32;
    let started = std::time::Instant::now();

    // Refusals and allowed reads first, each followed by a comparison of the whole database.
    for (route_index, route) in routes.iter().enumerate() {
        let targets: Vec<Option<Target>> = match route.id {
            Some(kind) => fixture.targets[&kind].iter().cloned().map(Some).collect(),
            None => vec![None],
        };
        for (caller_index, caller) in fixture.callers.iter().enumerate() {
            for target in &targets {
                let expect = expected(route, caller, target.as_ref());
                if route.writes() && expect == Expect::Allowed {
                    deferred.push((route_index, caller_index, target.clone()));
                    continue;
                }
                n += 1;
                n_checked += 1;
                let reply = send(
                    &test,
                    route,
                    caller,
                    target.as_ref().map(|t| t.id.as_str()),
                    (route.body)(&fixture, n),
                )
                .await;
                let what = format!(
                    "{} as {} on {}",
                    route.row(),
                    caller.name,
                    target.as_ref().map_or("-", |t| &t.label)
                );
                if let Some(problem) = judge(route, expect, &reply) {
                    violations.push(format!("{what}: {problem} ({})", reply.body));
                } else if expect == Expect::Allowed {
                    *allowed_ok.entry(route.row()).or_default() += 1;
                }
                let after = snapshotter.take().await;
                if after != baseline {
                    violations.push(format!(
                        "{what}: answered {} but changed {:?}",
                        reply.status,
                        changes(&baseline, &after)
                    ));
                    baseline = after;
                }
            }
        }
    }
    let refusals_took = started.elapsed();

    // Then the allowed writes, each on a fresh object like
    // its target, so none of them disturbed a refusal above.
    let n_writes = deferred.len();
    for (route_index, caller_index, target) in deferred {
        let (route, caller) = (&routes[route_index], &fixture.callers[caller_index]);
        n += 1;
        n_checked += 1;
        let target = match (&target, route.id) {
            (Some(target), Some(kind)) => Some(throwaway(&test, &fixture, kind, target, n).await),
            _ => None,
        };
        let expect = expected(route, caller, target.as_ref());
        let reply = send(
            &test,
            route,
            caller,
            target.as_ref().map(|t| t.id.as_str()),
            (route.body)(&fixture, n),
        )
        .await;
        let what = format!(
            "{} as {} on {}",
            route.row(),
            caller.name,
            target.as_ref().map_or("-", |t| &t.label)
        );
        match judge(route, expect, &reply) {
            Some(problem) => violations.push(format!("{what}: {problem} ({})", reply.body)),
            None => *allowed_ok.entry(route.row()).or_default() += 1,
        }
    }

    // Every route was also seen to work for someone, so the table is known to be exercised.
    for route in &routes {
        if !matches!(route.rule, Rule::Setup) && !allowed_ok.contains_key(&route.row()) {
            violations.push(format!("{}: no principal was ever allowed", route.row()));
        }
    }
    eprintln!(
        "authorization walk on {backend:?}: {n_checked} (route, principal, id) combinations \
         ({n_writes} allowed writes on throwaway objects); \
         refusals and reads in {refusals_took:?}, all in {:?}",
        started.elapsed()
    );
    assert!(
        violations.is_empty(),
        "{} authorization violations:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Lists, counts and histories
// ---------------------------------------------------------------------------------------------

async fn an_agent_never_sees_another_teams_ticket_in_any_list_or_count(backend: Backend) {
    let test = spawn_app(backend).await;
    let fixture = fixture(&test).await;
    let agent_red = fixture.caller("agent_red");
    let token = agent_red.token.as_deref().expect("a token");
    let hidden = [&fixture.blue, &fixture.blue_old];
    let secrets: Vec<&str> = hidden
        .iter()
        .flat_map(|t| {
            [
                t.id.as_str(),
                t.subject.as_str(),
                t.email.as_str(),
                t.attachment_id.as_str(),
            ]
        })
        .collect();
    let leaks = |reply: &Reply| -> Vec<String> {
        let text = String::from_utf8_lossy(&reply.bytes);
        secrets
            .iter()
            .filter(|secret| text.contains(**secret))
            .map(|secret| (*secret).to_owned())
            .collect()
    };

    let (blue_team, red_team) = (&fixture.blue_team, &fixture.red_team);
    let blue_agent = &fixture.caller("agent_blue").agent_id;
    let filters = [
        String::new(),
        format!("team={blue_team}"),
        format!("team={red_team}"),
        "team=none".into(),
        format!("customer_id={}", fixture.blue.customer_id),
        format!("customer_id={}", fixture.blue_old.customer_id),
        "tag=blue-tag".into(),
        format!("assignee={blue_agent}"),
        "assignee=none".into(),
        "assignee=me".into(),
        "status=new,open,pending,on_hold,solved,closed".into(),
        "priority=low,normal,high,urgent".into(),
        "channel=api,email".into(),
        "include_merged=true".into(),
        "updated_since=2000-01-01T00:00:00Z".into(),
        format!("team={blue_team}&tag=blue-tag&include_merged=true&limit=200"),
    ];
    for filter in &filters {
        let reply = test.get(&format!("/api/v1/tickets?{filter}"), token).await;
        assert_eq!(reply.status, StatusCode::OK, "?{filter}: {}", reply.body);
        assert_eq!(
            leaks(&reply),
            Vec::<String>::new(),
            "GET /tickets?{filter} shows a Blue ticket: {}",
            reply.body
        );
    }

    // The count: page one ticket at a time; the pages hold exactly the tickets Red may see.
    let mut seen = BTreeSet::new();
    let mut cursor = String::new();
    for _ in 0..50 {
        let reply = test
            .get(&format!("/api/v1/tickets?limit=1{cursor}"), token)
            .await;
        assert_eq!(leaks(&reply), Vec::<String>::new(), "{}", reply.body);
        seen.extend(
            reply.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|ticket| ticket["id"].as_str().unwrap().to_owned()),
        );
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let visible: BTreeSet<String> = [
        &fixture.red.id,
        &fixture.blue_for_red.id,
        &fixture.unrouted.id,
        &fixture.sink_ticket,
    ]
    .into_iter()
    .chain(&fixture.email_tickets_of_red)
    .chain(&fixture.chat_tickets_of_red)
    .cloned()
    .collect();
    assert_eq!(
        seen, visible,
        "agent_red counts exactly the Red, assigned and unrouted tickets"
    );

    // Histories and messages of the tickets Red may see.
    for ticket in [&fixture.red, &fixture.blue_for_red, &fixture.unrouted] {
        for part in ["", "/audit", "/messages"] {
            let path = format!("/api/v1/tickets/{}{part}", ticket.id);
            let reply = test.get(&path, token).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
            assert_eq!(
                leaks(&reply),
                Vec::<String>::new(),
                "{path} shows a Blue ticket: {}",
                reply.body
            );
        }
        let attachment = test
            .get(
                &format!("/api/v1/attachments/{}", ticket.attachment_id),
                token,
            )
            .await;
        assert_eq!(attachment.status, StatusCode::OK);
    }

    // Customers are not team-scoped (their e-mails are the role's to see), but what they show
    // of tickets must follow the ticket rule.
    let hidden_ids: Vec<&str> = hidden.iter().map(|t| t.id.as_str()).collect();
    let list = "/api/v1/customers?include_merged=true".to_owned();
    let mut paths = vec![(list.clone(), list)];
    for (name, customer) in [
        ("red", &fixture.red.customer_id),
        ("blue", &fixture.blue.customer_id),
        ("blue_old", &fixture.blue_old.customer_id),
    ] {
        for part in ["", "/audit", "/merges"] {
            paths.push((
                format!("/api/v1/customers/{{{name}}}{part}"),
                format!("/api/v1/customers/{customer}{part}"),
            ));
        }
    }
    for (label, path) in &paths {
        let reply = test.get(path, token).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        let text = String::from_utf8_lossy(&reply.bytes);
        let leaked = hidden_ids.iter().any(|id| text.contains(id));
        assert!(
            !leaked,
            "{label} shows a hidden ticket id to agent_red: {}",
            reply.body
        );
    }

    // Search: the hidden tickets' words, numbers and e-mails find nothing of them, whatever the
    // filter; what it finds is what Red may see. Customers are not team-scoped, but what they
    // show must not name a hidden ticket.
    let admin = test.admin_token.as_str();
    let number_of = |reply: Reply| reply.body["number"].as_i64().expect("a ticket number");
    let blue_number = number_of(
        test.get(&format!("/api/v1/tickets/{}", fixture.blue.id), admin)
            .await,
    );
    let blue_old_number = number_of(
        test.get(&format!("/api/v1/tickets/{}", fixture.blue_old.id), admin)
            .await,
    );
    // (query, the hidden ticket the admin finds with it, if the query is that specific).
    let queries: Vec<(String, Option<&str>)> = vec![
        ("chargeback ".into(), Some(fixture.blue.id.as_str())),
        ("dispute".into(), Some(fixture.blue.id.as_str())),
        (
            "chargeback dispute 2002".into(),
            Some(fixture.blue.id.as_str()),
        ),
        ("2002".into(), Some(fixture.blue.id.as_str())),
        (format!("#{blue_number} "), Some(fixture.blue.id.as_str())),
        (format!("{blue_number}"), None),
        ("Blue".into(), None),
        ("details ".into(), None),
        ("blue.customer@example.com".into(), None),
        (
            "older order 5005".into(),
            Some(fixture.blue_old.id.as_str()),
        ),
        ("5005".into(), Some(fixture.blue_old.id.as_str())),
        (
            format!("#{blue_old_number} "),
            Some(fixture.blue_old.id.as_str()),
        ),
        ("blue.old@example.com".into(), None),
        ("order".into(), None),
    ];
    let search_filters = [
        String::new(),
        format!("&team={blue_team}"),
        format!("&customer_id={}", fixture.blue.customer_id),
        "&status=new,open,pending,on_hold,solved,closed".into(),
        "&assignee=none".into(),
        "&limit=200".into(),
    ];
    for (query, admin_finds) in &queries {
        for filter in &search_filters {
            let path = format!("/api/v1/search?q={}{filter}", urlencode(query));
            let reply = test.get(&path, token).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
            let tickets = reply.body["tickets"].to_string();
            let leaked: Vec<&&str> = secrets
                .iter()
                .filter(|secret| tickets.contains(**secret))
                .collect();
            assert!(
                leaked.is_empty(),
                "GET {path} shows agent_red a Blue ticket ({leaked:?}): {}",
                reply.body
            );
            for hit in reply.body["tickets"].as_array().expect("hits") {
                let id = hit["ticket"]["id"].as_str().expect("an id");
                assert!(visible.contains(id), "GET {path} finds {id} for agent_red");
            }
            let customers = reply.body["customers"].to_string();
            assert!(
                !hidden_ids.iter().any(|id| customers.contains(id)),
                "GET {path} names a hidden ticket among customers: {}",
                reply.body
            );
        }
        // The query does reach the hidden ticket for someone who may see it.
        if let Some(hidden_id) = admin_finds {
            let path = format!("/api/v1/search?q={}", urlencode(query));
            let reply = test.get(&path, admin).await;
            assert!(
                reply.body["tickets"]
                    .as_array()
                    .expect("hits")
                    .iter()
                    .any(|hit| hit["ticket"]["id"] == **hidden_id),
                "the admin finds the hidden ticket with {path}: {}",
                reply.body
            );
        }
    }
    // Customers in results only with customers:read: the read-only token finds tickets alone.
    let read_only = fixture
        .caller("agent_red_read_only")
        .token
        .as_deref()
        .expect("a token");
    let by_email = format!("/api/v1/search?q={}", urlencode(&fixture.red.email));
    let full = test.get(&by_email, token).await;
    assert_ne!(
        full.body["customers"].as_array().map(Vec::len),
        Some(0),
        "agent_red finds the Red customer: {}",
        full.body
    );
    for path in [by_email, "/api/v1/search?q=refund%20".to_owned()] {
        let narrow = test.get(&path, read_only).await;
        assert_eq!(narrow.status, StatusCode::OK, "{path}: {}", narrow.body);
        assert_eq!(
            narrow.body["customers"],
            json!([]),
            "{path} shows customers to a token without customers:read"
        );
    }
    let refund = test.get("/api/v1/search?q=refund%20", read_only).await;
    assert!(
        refund.body["tickets"]
            .as_array()
            .expect("hits")
            .iter()
            .any(|hit| hit["ticket"]["id"] == *fixture.red.id),
        "the read-only token still finds tickets: {}",
        refund.body
    );

    // Views: every view Red has, shared or own, counts exactly the tickets it lists to Red, and
    // neither holds a hidden ticket. Red's own views include ones whose filters name Blue.
    let everything = "Red: everything";
    let blue_queue = "Red: the Blue queue";
    for (name, filter) in [
        (everything, json!({})),
        (
            blue_queue,
            json!({ "team": { "kind": "team", "id": blue_team } }),
        ),
        ("Red: new", json!({ "statuses": ["new"] })),
        (
            "Red: unassigned normal",
            json!({ "assignee": { "kind": "nobody" }, "priorities": ["normal"] }),
        ),
        (
            "Red: Blue's desk",
            json!({ "assignee": { "kind": "agent", "id": blue_agent } }),
        ),
    ] {
        created_by(
            &test,
            token,
            "/api/v1/views",
            json!({ "name": name, "filter": filter }),
        )
        .await;
    }
    let views = test.get("/api/v1/views", token).await;
    assert_eq!(views.status, StatusCode::OK, "{}", views.body);
    let views = views.body.as_array().expect("views").clone();
    let foreign_views: Vec<&str> = fixture.targets[&Kind::View]
        .iter()
        .filter(
            |view| matches!(&view.reach, Reach::PersonalTo(owner) if *owner != agent_red.agent_id),
        )
        .map(|view| view.id.as_str())
        .collect();
    let mut counts = BTreeMap::new();
    for view in &views {
        let (id, name) = (view["id"].as_str().unwrap(), view["name"].as_str().unwrap());
        assert!(
            !foreign_views.contains(&id),
            "GET /views lists another agent's personal view {name} to agent_red"
        );
        let path = format!("/api/v1/views/{id}/tickets?limit=200");
        let listed = test.get(&path, token).await;
        assert_eq!(listed.status, StatusCode::OK, "{name}: {}", listed.body);
        assert_eq!(
            leaks(&listed),
            Vec::<String>::new(),
            "{name}: {}",
            listed.body
        );
        let items = listed.body["items"].as_array().expect("items");
        for ticket in items {
            let ticket_id = ticket["id"].as_str().unwrap();
            assert!(
                visible.contains(ticket_id),
                "view {name} lists {ticket_id} to agent_red"
            );
        }
        assert_eq!(
            view["count"].as_i64(),
            Some(items.len() as i64),
            "view {name}: agent_red's count is not the number of tickets it lists to agent_red"
        );
        counts.insert(name.to_owned(), items.len());
    }
    assert_eq!(
        counts.get(everything),
        Some(&visible.len()),
        "Red's unfiltered view counts what Red sees"
    );
    assert_eq!(
        counts.get(blue_queue),
        Some(&2),
        "of the Blue queue, Red counts only the two tickets assigned to Red (one by e-mail)"
    );
    // The shared views do hold the hidden tickets for the admin, so the counts above left them
    // out rather than never having had them.
    let admin_views = test.get("/api/v1/views", admin).await.body;
    let all_open = admin_views
        .as_array()
        .expect("views")
        .iter()
        .find(|view| view["name"] == "All open")
        .expect("the default view All open");
    let admin_list = test
        .get(
            &format!(
                "/api/v1/views/{}/tickets?limit=200",
                all_open["id"].as_str().unwrap()
            ),
            admin,
        )
        .await;
    assert!(
        !leaks(&admin_list).is_empty(),
        "All open holds the Blue tickets for the admin: {}",
        admin_list.body
    );
    assert!(
        all_open["count"].as_i64() > counts.get("All open").map(|n| *n as i64),
        "All open counts more for the admin ({}) than for agent_red ({counts:?})",
        all_open["count"]
    );

    // And the mirror image: Blue never sees the Red ticket.
    let agent_blue = fixture
        .caller("agent_blue")
        .token
        .as_deref()
        .expect("a token");
    for filter in [
        String::new(),
        format!("team={red_team}"),
        format!("customer_id={}", fixture.red.customer_id),
        "tag=red-tag".into(),
    ] {
        let reply = test
            .get(&format!("/api/v1/tickets?{filter}"), agent_blue)
            .await;
        let text = String::from_utf8_lossy(&reply.bytes);
        assert!(
            !text.contains(&fixture.red.id) && !text.contains(&fixture.red.subject),
            "agent_blue sees the Red ticket with ?{filter}"
        );
    }
    let own = test
        .get(
            &format!("/api/v1/tickets?assignee={}", fixture.red_agent),
            agent_blue,
        )
        .await;
    assert_eq!(
        own.body["items"].as_array().unwrap().len(),
        2,
        "Blue sees the two Blue tickets assigned to Red (one by e-mail): {}",
        own.body
    );
}

async fn a_foreign_merge_target_is_refused_exactly_like_an_unknown_one(backend: Backend) {
    let test = spawn_app(backend).await;
    let fixture = fixture(&test).await;
    let snapshotter = Snapshotter::open(&test).await;
    let before = snapshotter.take().await;
    let token = fixture.caller("agent_red").token.clone().expect("a token");
    let path = format!("/api/v1/tickets/{}/merge", fixture.red.id);
    let foreign = test
        .post(&path, &token, json!({ "into_ticket_id": fixture.blue.id }))
        .await;
    let unknown = test
        .post(
            &path,
            &token,
            json!({ "into_ticket_id": uuid::Uuid::now_v7() }),
        )
        .await;
    assert_eq!(
        (foreign.status, foreign.code()),
        (unknown.status, unknown.code()),
        "{} vs {}",
        foreign.body,
        unknown.body
    );
    assert_eq!(foreign.body["field"], unknown.body["field"]);
    assert!(foreign.status.is_client_error());
    // Moving a visible ticket out of sight by merging a hidden one into it is refused too.
    let hidden_source = test
        .post(
            &format!("/api/v1/tickets/{}/merge", fixture.blue.id),
            &token,
            json!({ "into_ticket_id": fixture.red.id }),
        )
        .await;
    assert_eq!(
        (hidden_source.status, hidden_source.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    // A reply to, or a change of, the hidden ticket through any of Red's tokens.
    let read_only = fixture
        .caller("agent_red_read_only")
        .token
        .clone()
        .expect("a token");
    let reply = test
        .post(
            &format!("/api/v1/tickets/{}/messages", fixture.blue.id),
            &token,
            json!({ "body": "hi" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let change = test
        .patch(
            &format!("/api/v1/tickets/{}", fixture.red.id),
            &read_only,
            json!({ "team_id": fixture.blue_team }),
        )
        .await;
    assert_eq!(
        (change.status, change.code()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    assert_eq!(
        changes(&before, &snapshotter.take().await),
        Vec::<String>::new(),
        "refused merges and changes leave everything as it was"
    );
}

async fn nobody_widens_their_own_role_teams_or_e_mail(backend: Backend) {
    let test = spawn_app(backend).await;
    let fixture = fixture(&test).await;
    let snapshotter = Snapshotter::open(&test).await;
    let before = snapshotter.take().await;
    let red = fixture.caller("agent_red");
    let supervisor = fixture.caller("supervisor");
    let attempts = [
        (
            red,
            json!({ "team_ids": [fixture.red_team, fixture.blue_team] }),
        ),
        (red, json!({ "role": "supervisor" })),
        (red, json!({ "email": "someone.else@shop.test" })),
        (red, json!({ "active": true })),
        (red, json!({ "name": "Red", "role": "admin" })),
        (supervisor, json!({ "role": "admin" })),
    ];
    for (caller, body) in attempts {
        let path = format!("/api/v1/agents/{}", caller.agent_id);
        let reply = test
            .patch(
                &path,
                caller.token.as_deref().expect("a token"),
                body.clone(),
            )
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{} {body}: {}",
            caller.name,
            reply.body
        );
    }
    assert_eq!(
        changes(&before, &snapshotter.take().await),
        Vec::<String>::new(),
        "refused self-promotions change nothing"
    );
    let blue = test
        .get(
            &format!("/api/v1/tickets/{}", fixture.blue.id),
            red.token.as_deref().expect("a token"),
        )
        .await;
    assert_eq!(
        blue.status,
        StatusCode::NOT_FOUND,
        "Red still does not see Blue"
    );
}

// ---------------------------------------------------------------------------------------------
// Chats
// ---------------------------------------------------------------------------------------------

fn chat_site_body(n: u32) -> Value {
    json!({ "name": format!("Walk site {n}"), "allowed_origins": ["https://walk.example"] })
}

fn chat_site_input(
    team_id: Option<otklik_domain::ids::TeamId>,
    n: u32,
) -> otklik_app::chat::ChatSiteInput {
    otklik_app::chat::ChatSiteInput {
        name: format!("Walk site {n}"),
        allowed_origins: vec!["https://walk.example".into()],
        greeting: String::new(),
        accent_colour: "#1f6feb".into(),
        working_hours: otklik_domain::chat::WorkingHours::around_the_clock(),
        pre_chat: otklik_domain::chat::PreChatForm::default(),
        require_identity: false,
        team_id,
        mailbox_id: None,
        active: true,
    }
}

async fn admin_principal(test: &TestApp) -> otklik_domain::permission::Principal {
    test.app
        .authenticate_token(&test.admin_token)
        .await
        .expect("the admin's token")
}

/// The walk's chat site for a team (`None`: the site without a team).
async fn walk_chat_site(test: &TestApp, team: Option<&str>) -> otklik_domain::ids::ChatSiteId {
    let name = format!("Walk site for {}", team.unwrap_or("everyone"));
    let sites = test
        .app
        .list_chat_sites(&admin_principal(test).await)
        .await
        .expect("chat sites");
    sites
        .into_iter()
        .find(|site| site.name == name)
        .expect("the walk created its sites")
        .id
}

/// A chat waiting in the queue of `site`, started by a new visitor.
async fn walk_chat(test: &TestApp, site: otklik_domain::ids::ChatSiteId, n: u32) -> String {
    let (_, session) = test
        .app
        .create_visitor(site, None)
        .await
        .expect("a visitor");
    let (chat, _, _) = test
        .app
        .start_chat(
            &session,
            otklik_app::chat::StartChatInput {
                client_id: format!("walk-{n}"),
                body: format!("Walk chat {n}"),
                ..Default::default()
            },
        )
        .await
        .expect("a chat");
    assert_eq!(
        chat.chat.state,
        otklik_domain::chat::ChatState::Queued,
        "walk chats wait in the queue"
    );
    chat.chat.ticket_id.to_string()
}

/// Chat sites for no team, Red and Blue, and a waiting chat on each. Chats wait (rather than
/// being offline) because one agent of both teams is online, and stay waiting because that
/// agent is already at their maximum.
async fn walk_chats(
    test: &TestApp,
    red_team: &otklik_domain::ids::TeamId,
    blue_team: &otklik_domain::ids::TeamId,
) -> (
    Vec<(Option<String>, otklik_domain::ids::ChatSiteId)>,
    Vec<Target>,
    Vec<String>,
) {
    let admin = admin_principal(test).await;
    let mut sites = Vec::new();
    for (label, team) in [
        ("everyone", None),
        ("red", Some(*red_team)),
        ("blue", Some(*blue_team)),
    ] {
        let mut input = chat_site_input(team, 0);
        input.name = format!(
            "Walk site for {}",
            team.map_or("everyone".into(), |t| t.to_string())
        );
        let site = test
            .app
            .create_chat_site(&admin, input)
            .await
            .expect("a chat site");
        sites.push((label, team.map(|t| t.to_string()), site.id));
    }
    let busy = test
        .app
        .create_agent(
            &admin,
            otklik_app::auth::NewAgentInput {
                email: "busy@shop.test".into(),
                name: "Busy".into(),
                role: Role::Agent,
                team_ids: vec![*red_team, *blue_team],
                password: None,
            },
        )
        .await
        .expect("the busy agent");
    let busy = otklik_app::App::principal_of(&busy, None, None);
    test.app
        .set_chat_availability(
            &busy,
            otklik_app::chat::SetAvailabilityInput {
                availability: otklik_domain::chat::Availability::Online,
                max_chats: 1,
                languages: Vec::new(),
            },
        )
        .await
        .expect("online");
    // The chat that keeps them busy (no team: visible to every agent).
    let (_, session) = test
        .app
        .create_visitor(sites[0].2, None)
        .await
        .expect("a visitor");
    let (busy_chat, _, _) = test
        .app
        .start_chat(
            &session,
            otklik_app::chat::StartChatInput {
                client_id: "keeps-busy".into(),
                body: "Busy".into(),
                ..Default::default()
            },
        )
        .await
        .expect("the busy agent's chat");
    let mut of_red = vec![busy_chat.chat.ticket_id.to_string()];
    let mut chats = Vec::new();
    for (index, (label, team, site)) in sites.iter().enumerate() {
        let id = walk_chat(test, *site, index as u32).await;
        if *label != "blue" {
            of_red.push(id.clone());
        }
        chats.push(Target::new(
            format!("chat:{label}"),
            id,
            Reach::Ticket {
                team: team.clone(),
                assignee: None,
            },
        ));
    }
    (
        sites
            .into_iter()
            .map(|(_, team, site)| (team, site))
            .collect(),
        chats,
        of_red,
    )
}
