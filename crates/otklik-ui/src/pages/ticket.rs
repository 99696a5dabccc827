//! The ticket page: the conversation as a timeline, the reply box, the ticket's fields, quick
//! actions, the customer beside it; and attachment downloads.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::Timestamp;
use otklik_app::AppError;
use otklik_app::chat::ChatSummary;
use otklik_app::tickets::{AddMessageInput, AuthorKind, NewAttachment};
use otklik_domain::DomainError;
use otklik_domain::agent::{Agent, Team};
use otklik_domain::audit::StoredAuditEvent;
use otklik_domain::customer::Customer;
use otklik_domain::email::{EmailDirection, EmailRecord, EmailStatus};
use otklik_domain::ids::{AgentId, AttachmentId, MessageId, TeamId, TicketId};
use otklik_domain::message::{Author, Message, MessageVisibility};
use otklik_domain::ticket::{Channel, Priority, Ticket, TicketPatch, TicketStatus};
use otklik_store::TicketFilter;
use serde::Deserialize;

use crate::UiState;
use crate::error::UiError;
use crate::i18n::Lang;
use crate::pages::auth::{FieldErrors, field_message};
use crate::pages::chat::ChatBar;
use crate::pages::email::is_inert_image;
use crate::pages::{Frame, Names, TicketRow, When, all_agents, html};
use crate::session::Staff;

/// How many of the customer's other tickets the sidebar lists.
const OTHER_TICKETS: u32 = 10;

/// A file attached to a message.
#[derive(Debug, Clone)]
pub struct AttachmentLink {
    pub id: String,
    pub name: String,
    pub size: String,
    /// A picture of a type we sniffed as inert: previewed with `<img>`.
    pub image: bool,
}

/// What became of an outbound reply.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub email_id: String,
    /// `queued`, `sent` or `failed`.
    pub status: &'static str,
    pub reason: Option<String>,
    pub retry: bool,
}

/// The e-mail behind a message.
#[derive(Debug, Clone)]
pub struct EmailView {
    pub id: String,
    /// The customer's HTML is shown in a sandboxed frame.
    pub html: bool,
    /// Quoted history folded away from the message, shown on demand.
    pub folded: Option<String>,
    pub delivery: Option<Delivery>,
}

/// One entry of the timeline: a message, or a change from the ticket's history.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    /// `customer`, `agent`, `note`, `system` (messages) or `event` (history): how it is drawn.
    pub kind: &'static str,
    pub author: String,
    pub body: String,
    pub when: When,
    pub attachments: Vec<AttachmentLink>,
    pub email: Option<EmailView>,
    /// The e-mail whose HTML body is framed in place of the plain text.
    pub frame_id: Option<String>,
    /// A customer's message that may become a ticket of its own.
    pub can_split: bool,
    /// For events: one line per change ("Status: New → Open").
    pub changes: Vec<String>,
    /// For events: a related ticket (split into, split from).
    pub link: Option<(String, String)>,
    /// For sorting: messages before the history events of the same instant.
    at: Timestamp,
    order: u8,
}

/// A choice in a select.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The values of the ticket's fields form, as typed (kept when the form comes back).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FieldsForm {
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub priority: String,
    #[serde(default)]
    pub assignee: String,
    #[serde(default)]
    pub team: String,
    #[serde(default)]
    pub tags: String,
}

/// The reply box, as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub status: String,
}

/// The customer beside the conversation.
#[derive(Debug, Clone)]
pub struct CustomerCard {
    pub id: String,
    pub name: String,
    /// (label key, value)
    pub identities: Vec<(String, String)>,
    pub other_tickets: Vec<TicketRow>,
}

#[derive(Template)]
#[template(path = "ticket.html")]
struct TicketTemplate {
    page: Frame,
    id: String,
    number: i64,
    subject: String,
    status: &'static str,
    priority: &'static str,
    channel: &'static str,
    /// "sent by e-mail": where a public reply goes.
    reply_via: String,
    assignee: Option<String>,
    tags: Vec<String>,
    created: When,
    /// The ticket takes no changes (closed, or merged into another).
    frozen: bool,
    merged_into: Option<String>,
    assigned_to_me: bool,
    solved: bool,
    entries: Vec<Entry>,
    fields: FieldsForm,
    field_errors: FieldErrors,
    statuses: Vec<Choice>,
    priorities: Vec<Choice>,
    assignees: Vec<Choice>,
    teams: Vec<Choice>,
    reply: ReplyForm,
    reply_errors: FieldErrors,
    reply_statuses: Vec<Choice>,
    /// What was just done (a message key), shown once after a redirect.
    done: Option<String>,
    /// Why the last change failed, for the whole page.
    failure: Option<String>,
    customer: Option<CustomerCard>,
    /// "Up to 10 files, 10 MB each, 25 MB together".
    upload_hint: String,
    /// Other agents on this ticket now: (name, activity key).
    others: Vec<(String, &'static str)>,
    /// The chat on top of a chat ticket.
    chat: Option<ChatBar>,
}

#[derive(Template)]
#[template(path = "_timeline.html")]
struct TimelineTemplate {
    page: Frame,
    id: String,
    entries: Vec<Entry>,
}

#[derive(Template)]
#[template(path = "_presence.html")]
pub(crate) struct PresenceTemplate {
    pub(crate) page: Frame,
    pub(crate) id: String,
    /// (name, activity key)
    pub(crate) others: Vec<(String, &'static str)>,
}

fn parse_ticket_id(raw: &str) -> Result<TicketId, UiError> {
    raw.parse().map_err(|_| UiError::NotFound)
}

fn human_size(bytes: i64, lang: Lang) -> String {
    const KB: i64 = 1024;
    if bytes < KB {
        lang.count("size-bytes", bytes)
    } else if bytes < KB * KB {
        lang.count("size-kb", (bytes + KB / 2) / KB)
    } else {
        lang.count("size-mb", (bytes + KB * KB / 2) / (KB * KB))
    }
}

fn message_entry(
    message: &Message,
    names: &Names,
    emails: &HashMap<MessageId, &EmailRecord>,
    lang: Lang,
    editable: bool,
) -> Entry {
    let (kind, author) = match message.author {
        Author::Customer(id) => (
            "customer",
            names
                .customers
                .get(&id)
                .cloned()
                .unwrap_or_else(|| lang.t("author-customer")),
        ),
        Author::Agent(id) => (
            if message.visibility == MessageVisibility::Internal {
                "note"
            } else {
                "agent"
            },
            names.agents.get(&id).cloned().unwrap_or_else(|| "—".into()),
        ),
        Author::System => ("system", lang.t("author-system")),
    };
    let email = emails.get(&message.id).map(|email| EmailView {
        id: email.id.to_string(),
        html: email.direction == EmailDirection::Inbound && email.html_body.is_some(),
        folded: email
            .folded_text
            .clone()
            .filter(|text| !text.trim().is_empty()),
        delivery: (email.direction == EmailDirection::Outbound).then(|| Delivery {
            email_id: email.id.to_string(),
            status: match email.status {
                EmailStatus::Sent => "sent",
                EmailStatus::Failed => "failed",
                _ => "queued",
            },
            reason: email.status_reason.clone(),
            retry: email.status == EmailStatus::Failed,
        }),
    });
    Entry {
        id: message.id.to_string(),
        frame_id: email
            .as_ref()
            .filter(|email| email.html)
            .map(|email| email.id.clone()),
        kind,
        author,
        body: message.body.clone(),
        when: When::of(message.created_at),
        attachments: message
            .attachments
            .iter()
            .map(|attachment| AttachmentLink {
                id: attachment.id.to_string(),
                name: attachment.file_name.clone(),
                size: human_size(attachment.size_bytes, lang),
                image: is_inert_image(&attachment.content_type),
            })
            .collect(),
        email,
        can_split: editable
            && kind == "customer"
            && message.visibility == MessageVisibility::Public,
        changes: Vec::new(),
        link: None,
        at: message.created_at,
        order: 0,
    }
}

/// The fields of the history worth a line in the conversation, with their labels.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("status", "field-status"),
    ("assignee_id", "field-assignee"),
    ("priority", "field-priority"),
    ("team_id", "field-team"),
    ("subject", "field-subject"),
    ("tags", "field-tags"),
];

fn event_value(
    field: &str,
    value: Option<&str>,
    names: &Names,
    teams: &[Team],
    lang: Lang,
) -> String {
    let Some(value) = value.filter(|value| !value.is_empty()) else {
        return match field {
            "assignee_id" => lang.t("nobody"),
            "team_id" => lang.t("no-team"),
            _ => "—".into(),
        };
    };
    match field {
        "status" => lang.t(&format!("status-{}", value.replace('_', "-"))),
        "priority" => lang.t(&format!("priority-{value}")),
        "assignee_id" => value
            .parse::<AgentId>()
            .ok()
            .and_then(|id| names.agents.get(&id).cloned())
            .unwrap_or_else(|| "—".into()),
        "team_id" => value
            .parse::<TeamId>()
            .ok()
            .and_then(|id| teams.iter().find(|team| team.id == id))
            .map_or_else(|| "—".into(), |team| team.name.clone()),
        "tags" => value.replace(',', ", "),
        _ => value.to_owned(),
    }
}

/// A line of the timeline for a history event, if it says something a person cares about
/// (messages speak for themselves; creation is the first message).
fn event_entry(
    event: &StoredAuditEvent,
    names: &Names,
    teams: &[Team],
    lang: Lang,
) -> Option<Entry> {
    let changes: Vec<(String, Option<String>, Option<String>)> = event
        .changes
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    let text = |key: &str| item[key].as_str().map(str::to_owned);
                    (
                        text("field").unwrap_or_default(),
                        text("before"),
                        text("after"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let after_of = |field: &str| {
        changes
            .iter()
            .find(|(name, _, _)| name == field)
            .and_then(|(_, _, after)| after.clone())
    };
    let mut lines = Vec::new();
    let mut link = None;
    match event.action.as_str() {
        "ticket.created" => {
            let source = after_of("split_from_ticket_id")?;
            lines.push(lang.t("event-split-from"));
            link = Some((format!("/tickets/{source}"), lang.t("event-open-original")));
        }
        "ticket.split" => {
            let target = after_of("new_ticket_id")?;
            lines.push(lang.t("event-split"));
            link = Some((format!("/tickets/{target}"), lang.t("event-open-new")));
        }
        "ticket.merged_in" => {
            let number = after_of("merged_ticket_number").unwrap_or_default();
            lines.push(lang.with("event-merged-in", &number));
        }
        "ticket.merged_away" => lines.push(lang.t("event-merged-away")),
        _ => {
            for (field, key) in EVENT_FIELDS {
                if let Some((_, before, after)) = changes.iter().find(|(name, _, _)| name == field)
                {
                    lines.push(format!(
                        "{}: {} → {}",
                        lang.t(key),
                        event_value(field, before.as_deref(), names, teams, lang),
                        event_value(field, after.as_deref(), names, teams, lang)
                    ));
                }
            }
        }
    }
    if lines.is_empty() {
        return None;
    }
    Some(Entry {
        id: event.id.to_string(),
        kind: "event",
        author: event
            .actor_agent_id
            .and_then(|id| names.agents.get(&id).cloned())
            .unwrap_or_else(|| lang.t("author-system")),
        body: String::new(),
        when: When::of(event.at),
        attachments: Vec::new(),
        email: None,
        frame_id: None,
        can_split: false,
        changes: lines,
        link,
        at: event.at,
        order: 1,
    })
}

/// The conversation: messages (with their e-mails) and the ticket's history, oldest first.
fn entries(loaded: &Loaded, lang: Lang) -> Vec<Entry> {
    let emails: HashMap<MessageId, &EmailRecord> = loaded
        .emails
        .iter()
        .filter_map(|email| email.message_id.map(|id| (id, email)))
        .collect();
    let editable = !is_frozen(&loaded.ticket);
    let mut entries: Vec<Entry> = loaded
        .messages
        .iter()
        .map(|message| message_entry(message, &loaded.names, &emails, lang, editable))
        .chain(
            loaded
                .history
                .iter()
                .filter_map(|event| event_entry(event, &loaded.names, &loaded.teams, lang)),
        )
        .collect();
    entries.sort_by_key(|entry| (entry.at, entry.order));
    entries
}

fn is_frozen(ticket: &Ticket) -> bool {
    ticket.merged_into.is_some() || ticket.status == TicketStatus::Closed
}

fn fields_of(ticket: &Ticket) -> FieldsForm {
    FieldsForm {
        subject: ticket.subject.clone(),
        status: ticket.status.as_str().into(),
        priority: ticket.priority.as_str().into(),
        assignee: ticket
            .assignee_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        team: ticket.team_id.map(|id| id.to_string()).unwrap_or_default(),
        tags: ticket.tags.join(", "),
    }
}

/// What a ticket page shows besides the forms' state.
struct Loaded {
    ticket: Ticket,
    messages: Vec<Message>,
    emails: Vec<EmailRecord>,
    history: Vec<StoredAuditEvent>,
    agents: Vec<Agent>,
    teams: Vec<Team>,
    customer: Option<Customer>,
    other_tickets: Vec<Ticket>,
    names: Names,
    /// The live chat of a chat ticket.
    chat: Option<ChatSummary>,
}

async fn load(state: &UiState, staff: &Staff, id: TicketId) -> Result<Loaded, UiError> {
    let app = &state.app;
    let principal = &staff.principal;
    let ticket = app.get_ticket(principal, id).await?;
    let (messages, emails, history, agents, teams, customer, others) = tokio::join!(
        app.list_messages(principal, id),
        app.ticket_emails(principal, id),
        app.ticket_audit(principal, id),
        all_agents(app, principal),
        app.list_teams(principal),
        app.get_customer(principal, ticket.customer_id),
        app.list_tickets(
            principal,
            TicketFilter {
                customer_id: Some(ticket.customer_id),
                ..TicketFilter::default()
            },
            None,
            OTHER_TICKETS + 1,
        ),
    );
    let messages = messages?;
    let emails = emails?;
    let history = history?;
    let agents = agents?;
    let customer = customer.ok();
    let chat = if ticket.channel == Channel::Chat {
        app.get_chat(principal, id).await.ok()
    } else {
        None
    };
    let other_tickets: Vec<Ticket> = others
        .map(|page| page.tickets)
        .unwrap_or_default()
        .into_iter()
        .filter(|other| other.id != ticket.id)
        .take(OTHER_TICKETS as usize)
        .collect();
    let mut names = Names {
        agents: agents
            .iter()
            .map(|agent| (agent.id, agent.name.clone()))
            .collect(),
        ..Names::default()
    };
    if let Some(customer) = &customer {
        // A chat visitor who gave no name is named by their visitor id: say "site visitor".
        let name = crate::pages::chat::customer_label(Some(&customer.name), staff.lang);
        names.customers.insert(customer.id, name);
    }
    Ok(Loaded {
        ticket,
        messages,
        emails,
        history,
        agents,
        teams: teams.unwrap_or_default(),
        customer,
        other_tickets,
        names,
        chat,
    })
}

/// The forms' state to draw: as saved, or as typed with what was wrong.
#[derive(Default)]
pub(crate) struct FormState {
    pub(crate) fields: Option<FieldsForm>,
    pub(crate) field_errors: FieldErrors,
    pub(crate) reply: ReplyForm,
    pub(crate) reply_errors: FieldErrors,
    pub(crate) done: Option<String>,
    pub(crate) failure: Option<String>,
    /// The chat bar's transfer choice as picked, and what was wrong with it.
    pub(crate) chat_target: String,
    pub(crate) chat_errors: FieldErrors,
}

/// The ticket page again after a refused change (422), with the forms as typed.
pub(crate) async fn show_again(
    state: &UiState,
    staff: &Staff,
    id: TicketId,
    forms: FormState,
) -> Result<Response, UiError> {
    let loaded = load(state, staff, id).await?;
    let response = render(state, staff, loaded, forms)?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
}

fn render(
    state: &UiState,
    staff: &Staff,
    loaded: Loaded,
    forms: FormState,
) -> Result<Response, UiError> {
    let page = Frame::of(staff);
    let lang = staff.lang;
    let ticket = &loaded.ticket;
    let fields = forms.fields.unwrap_or_else(|| fields_of(ticket));
    let statuses = TicketStatus::ALL
        .iter()
        .filter(|status| ticket.status.can_become(**status))
        .map(|status| Choice {
            value: status.as_str().into(),
            label: page.label("status", status.as_str()),
            selected: fields.status == status.as_str(),
        })
        .collect();
    let reply_statuses = TicketStatus::ALL
        .iter()
        .filter(|status| **status != ticket.status && ticket.status.can_become(**status))
        .filter(|status| **status != TicketStatus::Closed)
        .map(|status| Choice {
            value: status.as_str().into(),
            label: page.label("status", status.as_str()),
            selected: forms.reply.status == status.as_str(),
        })
        .collect();
    let priorities = Priority::ALL
        .iter()
        .map(|priority| Choice {
            value: priority.as_str().into(),
            label: page.label("priority", priority.as_str()),
            selected: fields.priority == priority.as_str(),
        })
        .collect();
    let assignees = loaded
        .agents
        .iter()
        .filter(|agent| agent.active || Some(agent.id) == ticket.assignee_id)
        .map(|agent| Choice {
            value: agent.id.to_string(),
            label: agent.name.clone(),
            selected: fields.assignee == agent.id.to_string(),
        })
        .collect();
    let teams = loaded
        .teams
        .iter()
        .map(|team| Choice {
            value: team.id.to_string(),
            label: team.name.clone(),
            selected: fields.team == team.id.to_string(),
        })
        .collect();
    let customer = loaded.customer.as_ref().map(|customer| CustomerCard {
        id: customer.id.to_string(),
        name: crate::pages::chat::customer_label(Some(&customer.name), lang),
        identities: customer
            .identities
            .iter()
            .map(|identity| {
                (
                    page.label("identity", identity.value.kind.as_str()),
                    identity.value.value.clone(),
                )
            })
            .collect(),
        other_tickets: loaded
            .other_tickets
            .iter()
            .map(|other| loaded.names.row(other))
            .collect(),
    });
    let chat = loaded.chat.as_ref().map(|summary| {
        ChatBar::of(
            summary,
            staff.principal.agent_id,
            &loaded.agents,
            &loaded.teams,
            &forms.chat_target,
            &forms.chat_errors,
            lang,
        )
    });
    // A live chat is answered in the chat; one that is over, by e-mail.
    let reply_via = match &chat {
        Some(bar) if bar.live => page.t("reply-via-chat"),
        Some(_) => page.t("reply-via-chat-over"),
        None => page.with("reply-via", page.label("channel", ticket.channel.as_str())),
    };
    let template = TicketTemplate {
        id: ticket.id.to_string(),
        number: ticket.number,
        subject: ticket.subject.clone(),
        status: ticket.status.as_str(),
        priority: ticket.priority.as_str(),
        channel: ticket.channel.as_str(),
        reply_via,
        chat,
        assignee: ticket.assignee_id.map(|id| {
            loaded
                .names
                .agents
                .get(&id)
                .cloned()
                .unwrap_or_else(|| "—".into())
        }),
        tags: ticket.tags.clone(),
        created: When::of(ticket.created_at),
        frozen: is_frozen(ticket),
        merged_into: ticket.merged_into.map(|id| id.to_string()),
        assigned_to_me: ticket.assignee_id == Some(staff.principal.agent_id),
        solved: ticket.status == TicketStatus::Solved,
        entries: entries(&loaded, lang),
        upload_hint: upload_hint(&state.app.limits, lang),
        others: crate::pages::presence::others_here(state, staff, ticket.id),
        fields,
        field_errors: forms.field_errors,
        statuses,
        priorities,
        assignees,
        teams,
        reply: forms.reply,
        reply_errors: forms.reply_errors,
        reply_statuses,
        done: forms.done,
        failure: forms.failure,
        customer,
        page,
    };
    html(&template)
}

#[derive(Debug, Deserialize)]
pub struct TicketQuery {
    done: Option<String>,
}

/// The message keys `?done=` may name (anything else is ignored, so the URL cannot inject text).
fn done_key(done: Option<&str>) -> Option<String> {
    match done? {
        "reply" => Some("done-reply".into()),
        "note" => Some("done-note".into()),
        "saved" => Some("done-saved".into()),
        "assigned" => Some("done-assigned".into()),
        "solved" => Some("done-solved".into()),
        "merged" => Some("done-merged".into()),
        "split" => Some("done-split".into()),
        "retried" => Some("done-retried".into()),
        "chat-accepted" => Some("done-chat-accepted".into()),
        "chat-transferred" => Some("done-chat-transferred".into()),
        "chat-ended" => Some("done-chat-ended".into()),
        _ => None,
    }
}

/// What the reply box accepts, in words.
fn upload_hint(limits: &otklik_app::Limits, lang: Lang) -> String {
    let each_mb = i64::try_from(limits.max_attachment_bytes / (1024 * 1024)).unwrap_or(i64::MAX);
    let files = i64::try_from(limits.max_attachments_per_message).unwrap_or(i64::MAX);
    format!(
        "{} {}",
        lang.count("upload-hint-files", files),
        lang.count("upload-hint-size", each_mb)
    )
}

/// `GET /tickets/{id}`.
pub async fn ticket_page(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(query): Query<TicketQuery>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let loaded = load(&state, &staff, id).await?;
    let done = done_key(query.done.as_deref()).map(|key| staff.lang.t(&key));
    render(
        &state,
        &staff,
        loaded,
        FormState {
            done,
            ..FormState::default()
        },
    )
}

/// `GET /tickets/{id}/timeline`: the conversation alone (htmx live refresh).
pub async fn timeline(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let loaded = load(&state, &staff, id).await?;
    html(&TimelineTemplate {
        page: Frame::of(&staff),
        id: id.to_string(),
        entries: entries(&loaded, staff.lang),
    })
}

fn back_to(id: TicketId, done: &str) -> Response {
    Redirect::to(&format!("/tickets/{id}?done={done}")).into_response()
}

/// A refused change, as the message for the whole page or for one field.
enum Refusal {
    Field(&'static str, String),
    Page(String),
}

fn refusal(error: AppError, lang: Lang, status_field: &'static str) -> Result<Refusal, UiError> {
    Ok(match error {
        AppError::Domain(DomainError::Validation { field, reason }) => {
            let field = match field {
                "assignee_id" => "assignee",
                "team_id" => "team",
                other => other,
            };
            Refusal::Field(field, field_message(lang, field, &reason))
        }
        AppError::Domain(DomainError::InvalidTransition { .. }) => {
            Refusal::Field(status_field, lang.t("form-error-transition"))
        }
        AppError::Domain(DomainError::TicketClosed) => Refusal::Page(lang.t("ticket-closed")),
        AppError::Domain(DomainError::TicketMerged { survivor_number }) => {
            Refusal::Page(lang.with("ticket-merged-into", &survivor_number.to_string()))
        }
        AppError::InvalidReference { field, .. } => {
            let field = if field == "team_id" {
                "team"
            } else {
                "assignee"
            };
            Refusal::Field(field, lang.t("form-error-invalid"))
        }
        AppError::Conflict { .. } => Refusal::Page(lang.t("error-conflict")),
        other => return Err(other.into()),
    })
}

/// Parses the fields form into a patch, marking what cannot be read.
fn patch_of(form: &FieldsForm, lang: Lang, errors: &mut FieldErrors) -> TicketPatch {
    let mut patch = TicketPatch {
        subject: Some(form.subject.clone()),
        tags: Some(
            form.tags
                .split(',')
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        ..TicketPatch::default()
    };
    match form.status.parse::<TicketStatus>() {
        Ok(status) => patch.status = Some(status),
        Err(_) => errors.add("status", lang.t("form-error-invalid")),
    }
    match form.priority.parse::<Priority>() {
        Ok(priority) => patch.priority = Some(priority),
        Err(_) => errors.add("priority", lang.t("form-error-invalid")),
    }
    match form.assignee.as_str() {
        "" => patch.assignee_id = Some(None),
        raw => match raw.parse::<AgentId>() {
            Ok(id) => patch.assignee_id = Some(Some(id)),
            Err(_) => errors.add("assignee", lang.t("form-error-invalid")),
        },
    }
    match form.team.as_str() {
        "" => patch.team_id = Some(None),
        raw => match raw.parse::<TeamId>() {
            Ok(id) => patch.team_id = Some(Some(id)),
            Err(_) => errors.add("team", lang.t("form-error-invalid")),
        },
    }
    patch
}

/// `POST /tickets/{id}`: saves the ticket's fields, or shows the form again as typed.
pub async fn update(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<FieldsForm>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let mut errors = FieldErrors::default();
    let patch = patch_of(&form, staff.lang, &mut errors);
    let mut failure = None;
    if errors.is_empty() {
        match state.app.update_ticket(&staff.principal, id, patch).await {
            Ok(_) => return Ok(back_to(id, "saved")),
            Err(error) => match refusal(error, staff.lang, "status")? {
                Refusal::Field(field, message) => errors.add(field, message),
                Refusal::Page(message) => failure = Some(message),
            },
        }
    }
    let loaded = load(&state, &staff, id).await?;
    let response = render(
        &state,
        &staff,
        loaded,
        FormState {
            fields: Some(form),
            field_errors: errors,
            failure,
            ..FormState::default()
        },
    )?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
}

/// The reply box as sent: a url-encoded form, or `multipart/form-data` when files are attached
/// (the CSRF guard has checked the token of either before this runs).
async fn read_reply(
    state: &UiState,
    request: Request,
) -> Result<(ReplyForm, Vec<NewAttachment>), UiError> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_multipart {
        let Form(form) = Form::<ReplyForm>::from_request(request, state)
            .await
            .map_err(|_| UiError::BadRequest)?;
        return Ok((form, Vec::new()));
    }
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|_| UiError::BadRequest)?;
    let mut form = ReplyForm::default();
    let mut files = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| UiError::BadRequest)?
    {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "files" => {
                let file_name = field.file_name().unwrap_or_default().to_owned();
                let bytes = field.bytes().await.map_err(|_| UiError::TooLarge)?;
                // A file input left empty still sends a part, with no name and no bytes.
                if !(file_name.is_empty() && bytes.is_empty()) {
                    files.push(NewAttachment {
                        file_name,
                        bytes: bytes.to_vec(),
                    });
                }
            }
            "body" | "kind" | "status" => {
                let text = field.text().await.map_err(|_| UiError::BadRequest)?;
                match name.as_str() {
                    "body" => form.body = text,
                    "kind" => form.kind = text,
                    _ => form.status = text,
                }
            }
            _ => {}
        }
    }
    Ok((form, files))
}

/// `POST /tickets/{id}/messages`: a public reply or an internal note, with files, optionally
/// moving the ticket to another status.
pub async fn add_message(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let (form, files) = read_reply(&state, request).await?;
    let mut errors = FieldErrors::default();
    let visibility = match form.kind.as_str() {
        "note" => MessageVisibility::Internal,
        "reply" | "" => MessageVisibility::Public,
        _ => {
            errors.add("kind", staff.lang.t("form-error-invalid"));
            MessageVisibility::Public
        }
    };
    let status = match form.status.as_str() {
        "" => None,
        raw => match raw.parse::<TicketStatus>() {
            Ok(status) => Some(status),
            Err(_) => {
                errors.add("status", staff.lang.t("form-error-invalid"));
                None
            }
        },
    };
    let mut failure = None;
    if errors.is_empty() {
        let input = AddMessageInput {
            body: form.body.clone(),
            visibility,
            author: AuthorKind::Agent,
            status,
            attachments: files,
        };
        match state
            .app
            .add_message(&staff.principal, id, input, None)
            .await
        {
            Ok((message, _)) => {
                let done = if visibility == MessageVisibility::Internal {
                    "note"
                } else {
                    "reply"
                };
                return Ok(Redirect::to(&format!(
                    "/tickets/{id}?done={done}#message-{}",
                    message.id
                ))
                .into_response());
            }
            // A reply takes a waiting chat, which needs the agent online with a free slot.
            Err(AppError::Conflict {
                code: "chat_capacity",
                ..
            }) => errors.add("body", staff.lang.t("chat-reply-capacity")),
            // The files are not kept by the browser: the message says to attach them again.
            Err(AppError::TooLarge(_)) => errors.add(
                "files",
                format!(
                    "{} {}",
                    staff.lang.t("form-error-files"),
                    upload_hint(&state.app.limits, staff.lang)
                ),
            ),
            Err(error) => match refusal(error, staff.lang, "status")? {
                Refusal::Field(field, message) => errors.add(field, message),
                Refusal::Page(message) => failure = Some(message),
            },
        }
    }
    let loaded = load(&state, &staff, id).await?;
    let response = render(
        &state,
        &staff,
        loaded,
        FormState {
            reply: form,
            reply_errors: errors,
            failure,
            ..FormState::default()
        },
    )?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
}

async fn quick_change(
    state: &UiState,
    staff: &Staff,
    id: TicketId,
    patch: TicketPatch,
    done: &str,
) -> Result<Response, UiError> {
    match state.app.update_ticket(&staff.principal, id, patch).await {
        Ok(_) => Ok(back_to(id, done)),
        Err(error) => {
            let message = match refusal(error, staff.lang, "status")? {
                Refusal::Field(_, message) | Refusal::Page(message) => message,
            };
            let loaded = load(state, staff, id).await?;
            let response = render(
                state,
                staff,
                loaded,
                FormState {
                    failure: Some(message),
                    ..FormState::default()
                },
            )?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
        }
    }
}

/// `POST /tickets/{id}/assign-to-me`.
pub async fn assign_to_me(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let patch = TicketPatch {
        assignee_id: Some(Some(staff.principal.agent_id)),
        ..TicketPatch::default()
    };
    quick_change(&state, &staff, id, patch, "assigned").await
}

/// `POST /tickets/{id}/solve`.
pub async fn solve(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let patch = TicketPatch {
        status: Some(TicketStatus::Solved),
        ..TicketPatch::default()
    };
    quick_change(&state, &staff, id, patch, "solved").await
}

// --- Merge and split -----------------------------------------------------------------------

/// The ticket another one would be merged into, and what would move.
#[derive(Debug, Clone)]
pub struct MergePreview {
    pub id: String,
    pub number: i64,
    pub subject: String,
    pub customer: String,
    pub same_customer: bool,
}

#[derive(Template)]
#[template(path = "merge.html")]
struct MergeTemplate {
    page: Frame,
    id: String,
    number: i64,
    subject: String,
    query: String,
    searched: bool,
    results: Vec<TicketRow>,
    target: Option<MergePreview>,
    /// What moves: messages and files of this ticket.
    messages: i64,
    files: i64,
    failure: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct MergeQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    target: String,
}

/// Results offered as merge targets.
const MERGE_RESULTS: u32 = 20;

async fn merge_page(
    state: &UiState,
    staff: &Staff,
    source_id: TicketId,
    query: MergeQuery,
    failure: Option<String>,
) -> Result<Response, UiError> {
    let app = &state.app;
    let principal = &staff.principal;
    let source = app.get_ticket(principal, source_id).await?;
    let messages = app.list_messages(principal, source_id).await?;
    let mut results = Vec::new();
    let searched = !query.q.trim().is_empty();
    if searched {
        let text = query.q.trim().trim_start_matches('#');
        match app
            .search(principal, text, TicketFilter::default(), MERGE_RESULTS)
            .await
        {
            Ok(found) => {
                let tickets: Vec<Ticket> = found
                    .tickets
                    .into_iter()
                    .map(|hit| hit.ticket)
                    .filter(|ticket| ticket.id != source.id && !is_frozen(ticket))
                    .collect();
                let names = Names::load(app, principal, &tickets).await?;
                results = tickets.iter().map(|ticket| names.row(ticket)).collect();
            }
            Err(AppError::Domain(DomainError::Validation { .. })) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let target = match query.target.parse::<TicketId>() {
        Ok(target_id) if target_id != source.id => {
            let target = app.get_ticket(principal, target_id).await?;
            let names = Names::load(app, principal, std::slice::from_ref(&target)).await?;
            Some(MergePreview {
                id: target.id.to_string(),
                number: target.number,
                subject: target.subject.clone(),
                customer: names.row(&target).customer,
                same_customer: target.customer_id == source.customer_id,
            })
        }
        _ => None,
    };
    let files: usize = messages
        .iter()
        .map(|message| message.attachments.len())
        .sum();
    let mut page = Frame::of(staff);
    page.search = String::new();
    html(&MergeTemplate {
        id: source.id.to_string(),
        number: source.number,
        subject: source.subject.clone(),
        query: query.q,
        searched,
        results,
        target,
        messages: i64::try_from(messages.len()).unwrap_or(i64::MAX),
        files: i64::try_from(files).unwrap_or(i64::MAX),
        failure: failure.or_else(|| is_frozen(&source).then(|| staff.lang.t("ticket-closed"))),
        page,
    })
}

/// `GET /tickets/{id}/merge?q=…&target=…`: pick the ticket to merge into, and see what moves.
pub async fn merge_form(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(query): Query<MergeQuery>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    merge_page(&state, &staff, id, query, None).await
}

#[derive(Debug, Deserialize)]
pub struct MergeForm {
    #[serde(default)]
    target: String,
}

/// `POST /tickets/{id}/merge`: merges this ticket into `target` and opens the survivor.
pub async fn merge(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<MergeForm>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let target: TicketId = form.target.parse().map_err(|_| UiError::BadRequest)?;
    let lang = staff.lang;
    let failure = match state.app.merge_tickets(&staff.principal, id, target).await {
        Ok(survivor) => {
            return Ok(
                Redirect::to(&format!("/tickets/{}?done=merged", survivor.id)).into_response(),
            );
        }
        Err(AppError::Domain(DomainError::InvalidMerge(_))) => lang.t("merge-refused"),
        Err(AppError::InvalidReference { .. }) => lang.t("merge-target-missing"),
        Err(error) => match refusal(error, lang, "status")? {
            Refusal::Field(_, message) | Refusal::Page(message) => message,
        },
    };
    let query = MergeQuery {
        q: String::new(),
        target: form.target,
    };
    let response = merge_page(&state, &staff, id, query, Some(failure)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
}

#[derive(Template)]
#[template(path = "split.html")]
struct SplitTemplate {
    page: Frame,
    id: String,
    number: i64,
    message_id: String,
    author: String,
    body: String,
    when: When,
    files: Vec<String>,
    subject: String,
    errors: FieldErrors,
    failure: Option<String>,
}

async fn split_page(
    state: &UiState,
    staff: &Staff,
    ticket_id: TicketId,
    message_id: MessageId,
    subject: Option<String>,
    errors: FieldErrors,
    failure: Option<String>,
) -> Result<Response, UiError> {
    let app = &state.app;
    let ticket = app.get_ticket(&staff.principal, ticket_id).await?;
    let message = app
        .list_messages(&staff.principal, ticket_id)
        .await?
        .into_iter()
        .find(|message| message.id == message_id)
        .ok_or(UiError::NotFound)?;
    let author = match message.author {
        Author::Customer(customer_id) => app
            .get_customer(&staff.principal, customer_id)
            .await
            .map_or_else(
                |_| staff.lang.t("author-customer"),
                |customer| customer.name,
            ),
        _ => return Err(UiError::NotFound),
    };
    html(&SplitTemplate {
        page: Frame::of(staff),
        id: ticket.id.to_string(),
        number: ticket.number,
        message_id: message.id.to_string(),
        author,
        body: message.body.clone(),
        when: When::of(message.created_at),
        files: message
            .attachments
            .iter()
            .map(|file| file.file_name.clone())
            .collect(),
        subject: subject.unwrap_or(ticket.subject),
        errors,
        failure,
    })
}

fn parse_message_id(raw: &str) -> Result<MessageId, UiError> {
    raw.parse().map_err(|_| UiError::NotFound)
}

/// `GET /tickets/{id}/split/{message}`: what the new ticket will hold, and its subject.
pub async fn split_form(
    State(state): State<UiState>,
    staff: Staff,
    Path((id, message)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let message = parse_message_id(&message)?;
    split_page(
        &state,
        &staff,
        id,
        message,
        None,
        FieldErrors::default(),
        None,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct SplitForm {
    #[serde(default)]
    subject: String,
}

/// `POST /tickets/{id}/split/{message}`: copies the message into a new ticket and opens it.
pub async fn split(
    State(state): State<UiState>,
    staff: Staff,
    Path((id, message)): Path<(String, String)>,
    Form(form): Form<SplitForm>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let message = parse_message_id(&message)?;
    let lang = staff.lang;
    let mut errors = FieldErrors::default();
    let mut failure = None;
    match state
        .app
        .split_message(&staff.principal, id, message, &form.subject)
        .await
    {
        Ok(ticket) => {
            return Ok(Redirect::to(&format!("/tickets/{}?done=split", ticket.id)).into_response());
        }
        Err(AppError::Domain(DomainError::Validation {
            field: "subject",
            reason,
        })) => {
            errors.add("subject", field_message(lang, "subject", &reason));
        }
        Err(AppError::Domain(DomainError::Validation { .. })) => {
            failure = Some(lang.t("split-refused"));
        }
        Err(error) => match refusal(error, lang, "status")? {
            Refusal::Field(_, message) | Refusal::Page(message) => failure = Some(message),
        },
    }
    let response = split_page(
        &state,
        &staff,
        id,
        message,
        Some(form.subject),
        errors,
        failure,
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266).
fn content_disposition(file_name: &str) -> HeaderValue {
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in file_name.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"._-".contains(byte) {
            encoded.push(char::from(*byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}

/// The type a download is sent with: the sniffed type when it is inert (pictures, PDF, plain
/// text, archives), otherwise `application/octet-stream`, so HTML, SVG or XML that can carry
/// script is never labelled as something a browser would render.
fn download_type(sniffed: &str) -> HeaderValue {
    let essence = sniffed.split(';').next().unwrap_or("").trim();
    let inert = matches!(
        essence,
        "image/png"
            | "image/jpeg"
            | "image/gif"
            | "image/webp"
            | "application/pdf"
            | "text/plain"
            | "application/zip"
    );
    if inert {
        HeaderValue::from_str(sniffed)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"))
    } else {
        HeaderValue::from_static("application/octet-stream")
    }
}

/// `GET /attachments/{id}`: always a download, typed from the bytes, in a sandbox, so a file
/// with script in it cannot run in our origin. (The API's download route takes only API
/// tokens, so the workspace serves its own with the session.)
pub async fn download(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id: AttachmentId = id.parse().map_err(|_| UiError::NotFound)?;
    let (meta, bytes) = state.app.get_attachment(&staff.principal, id).await?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, download_type(&meta.content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        content_disposition(&meta.file_name),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally_in_both_languages() {
        assert_eq!(human_size(512, Lang::En), "512 bytes");
        assert_eq!(human_size(2048, Lang::Ru), "2 КБ");
        assert_eq!(human_size(5 * 1024 * 1024, Lang::En), "5 MB");
    }

    #[test]
    fn a_download_name_is_quoted_safely() {
        let value = content_disposition("счёт \"1\".pdf");
        let text = value.to_str().unwrap();
        assert!(
            text.starts_with("attachment; filename=\"____ _1_.pdf\""),
            "{text}"
        );
        assert!(text.contains("filename*=UTF-8''%D1%81"), "{text}");
    }

    #[test]
    fn script_capable_types_are_downloaded_as_plain_bytes() {
        assert_eq!(download_type("text/html"), "application/octet-stream");
        assert_eq!(download_type("image/svg+xml"), "application/octet-stream");
        assert_eq!(download_type("image/png"), "image/png");
        assert_eq!(
            download_type("text/plain; charset=utf-8"),
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn only_known_done_messages_are_shown() {
        assert_eq!(done_key(Some("reply")).as_deref(), Some("done-reply"));
        assert_eq!(done_key(Some("<script>")), None);
        assert_eq!(done_key(None), None);
    }
}
