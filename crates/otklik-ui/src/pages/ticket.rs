//! The ticket page: the conversation as a timeline, the reply box, the ticket's fields, quick
//! actions, the customer beside it; and attachment downloads.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use otklik_app::AppError;
use otklik_app::tickets::{AddMessageInput, AuthorKind};
use otklik_domain::DomainError;
use otklik_domain::agent::Agent;
use otklik_domain::customer::Customer;
use otklik_domain::ids::{AgentId, AttachmentId, TeamId, TicketId};
use otklik_domain::message::{Author, Message, MessageVisibility};
use otklik_domain::ticket::{Priority, Ticket, TicketPatch, TicketStatus};
use otklik_store::TicketFilter;
use serde::Deserialize;

use crate::UiState;
use crate::error::UiError;
use crate::i18n::Lang;
use crate::pages::auth::{FieldErrors, field_message};
use crate::pages::{DIRECTORY_PAGE, Frame, Names, TicketRow, When, html};
use crate::session::Staff;

/// How many of the customer's other tickets the sidebar lists.
const OTHER_TICKETS: u32 = 10;

/// A file attached to a message.
#[derive(Debug, Clone)]
pub struct AttachmentLink {
    pub id: String,
    pub name: String,
    pub size: String,
}

/// One entry of the timeline.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    /// `customer`, `agent`, `note` or `system`: how it is drawn and labelled.
    pub kind: &'static str,
    pub author: String,
    pub body: String,
    pub when: When,
    pub attachments: Vec<AttachmentLink>,
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
}

#[derive(Template)]
#[template(path = "_timeline.html")]
struct TimelineTemplate {
    page: Frame,
    id: String,
    entries: Vec<Entry>,
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

fn entries(messages: &[Message], names: &Names, lang: Lang) -> Vec<Entry> {
    messages
        .iter()
        .map(|message| {
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
            Entry {
                id: message.id.to_string(),
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
                    })
                    .collect(),
            }
        })
        .collect()
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
    agents: Vec<Agent>,
    teams: Vec<otklik_domain::agent::Team>,
    customer: Option<Customer>,
    other_tickets: Vec<Ticket>,
    names: Names,
}

async fn load(state: &UiState, staff: &Staff, id: TicketId) -> Result<Loaded, UiError> {
    let app = &state.app;
    let principal = &staff.principal;
    let ticket = app.get_ticket(principal, id).await?;
    let (messages, agents, teams, customer, others) = tokio::join!(
        app.list_messages(principal, id),
        app.list_agents(principal, None, DIRECTORY_PAGE),
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
    let agents = agents.unwrap_or_default();
    let customer = customer.ok();
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
        names.customers.insert(customer.id, customer.name.clone());
    }
    Ok(Loaded {
        ticket,
        messages,
        agents,
        teams: teams.unwrap_or_default(),
        customer,
        other_tickets,
        names,
    })
}

/// The forms' state to draw: as saved, or as typed with what was wrong.
#[derive(Default)]
struct FormState {
    fields: Option<FieldsForm>,
    field_errors: FieldErrors,
    reply: ReplyForm,
    reply_errors: FieldErrors,
    done: Option<String>,
    failure: Option<String>,
}

fn render(staff: &Staff, loaded: Loaded, forms: FormState) -> Result<Response, UiError> {
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
        name: customer.name.clone(),
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
    let template = TicketTemplate {
        id: ticket.id.to_string(),
        number: ticket.number,
        subject: ticket.subject.clone(),
        status: ticket.status.as_str(),
        priority: ticket.priority.as_str(),
        channel: ticket.channel.as_str(),
        reply_via: page.with("reply-via", &page.label("channel", ticket.channel.as_str())),
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
        frozen: ticket.merged_into.is_some() || ticket.status == TicketStatus::Closed,
        merged_into: ticket.merged_into.map(|id| id.to_string()),
        assigned_to_me: ticket.assignee_id == Some(staff.principal.agent_id),
        solved: ticket.status == TicketStatus::Solved,
        entries: entries(&loaded.messages, &loaded.names, lang),
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
        _ => None,
    }
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
        entries: entries(&loaded.messages, &loaded.names, staff.lang),
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

/// `POST /tickets/{id}/messages`: a public reply or an internal note, optionally moving the
/// ticket to another status.
pub async fn add_message(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<ReplyForm>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
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
            attachments: Vec::new(),
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
            Err(error) => match refusal(error, staff.lang, "status")? {
                Refusal::Field(field, message) => errors.add(field, message),
                Refusal::Page(message) => failure = Some(message),
            },
        }
    }
    let loaded = load(&state, &staff, id).await?;
    let response = render(
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
