//! Live chat in the workspace: the availability control in every page's header, the chats page
//! (the waiting queue and the agent's own chats), the chat bar of a chat ticket (accept,
//! transfer, end), and the small posts the ticket page makes while its agent types and reads.
//!
//! Everything here calls the chat use cases of [`otklik_app::App`]; the queue, the bar and the
//! header refresh themselves through `/events` (`chat.updated`, `chat.availability`, ticket
//! changes), and typing arrives there as `typing` events.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::{SignedDuration, Timestamp};
use otklik_app::AppError;
use otklik_app::chat::{ChatSummary, SetAvailabilityInput, TransferTarget};
use otklik_domain::DomainError;
use otklik_domain::agent::{Agent, Team};
use otklik_domain::chat::{AgentChatStatus, Availability, ChatState, MAX_CONCURRENT_CHATS};
use otklik_domain::ids::{AgentId, TeamId, TicketId};
use otklik_domain::message::{Author, MessageVisibility};
use otklik_domain::permission::Principal;
use serde::Deserialize;

use crate::UiState;
use crate::error::UiError;
use crate::i18n::Lang;
use crate::pages::auth::FieldErrors;
use crate::pages::ticket::{Choice, FormState, show_again};
use crate::pages::{Frame, Pairs, all_agents, html};
use crate::session::{Staff, safe_next};

// --- Availability ---------------------------------------------------------------------------

/// The header's availability control: the three states as buttons (one click saves), the
/// maximum of concurrent chats, and the load ("2/3 chats").
#[derive(Debug, Clone)]
pub struct AvailabilityView {
    pub availability: &'static str,
    pub max_chats: u16,
    /// "2/3 чата".
    pub load: String,
    /// (value, label, current)
    pub choices: Vec<(&'static str, String, bool)>,
    /// (maximum, current)
    pub max_choices: Vec<(u16, bool)>,
    /// Why the last change was refused.
    pub error: Option<String>,
}

impl AvailabilityView {
    pub fn of(status: &AgentChatStatus, lang: Lang) -> AvailabilityView {
        AvailabilityView {
            availability: status.availability.as_str(),
            max_chats: status.max_chats,
            load: format!(
                "{}/{}",
                status.active_chats,
                lang.count("chats-count", i64::from(status.max_chats))
            ),
            choices: Availability::ALL
                .iter()
                .map(|availability| {
                    (
                        availability.as_str(),
                        lang.t(&format!("availability-{}", availability.as_str())),
                        *availability == status.availability,
                    )
                })
                .collect(),
            max_choices: (1..=MAX_CONCURRENT_CHATS)
                .map(|max| (max, max == status.max_chats))
                .collect(),
            error: None,
        }
    }
}

#[derive(Template)]
#[template(path = "_availability.html")]
struct AvailabilityTemplate {
    page: Frame,
}

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// `GET /chat/availability`: the header control alone (htmx refresh after `chat.availability`).
pub async fn availability(staff: Staff) -> Result<Response, UiError> {
    html(&AvailabilityTemplate {
        page: Frame::of(&staff),
    })
}

/// `POST /chat/availability`: saves the state and the maximum. htmx gets the control back;
/// a plain form goes back where it came from (or, refused, to the chats page with the choice
/// kept and marked).
pub async fn set_availability(
    State(state): State<UiState>,
    staff: Staff,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    let form = Pairs::parse(&body);
    let lang = staff.lang;
    let current = staff.chat.clone().ok_or(UiError::Forbidden)?;
    let availability = match form.get("availability") {
        "" => Ok(current.availability),
        raw => raw.parse::<Availability>().map_err(|_| ()),
    };
    let max_chats = form
        .get("max_chats")
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|max| (1..=MAX_CONCURRENT_CHATS).contains(max));
    let error = match (availability, max_chats) {
        (Ok(availability), Some(max_chats)) => {
            let input = SetAvailabilityInput {
                availability,
                max_chats,
                languages: current.languages.clone(),
            };
            match state
                .app
                .set_chat_availability(&staff.principal, input)
                .await
            {
                Ok(status) => {
                    if !is_htmx(&headers) {
                        return Ok(Redirect::to(&return_path(form.get("next"))).into_response());
                    }
                    let mut page = Frame::of(&staff);
                    page.chat = Some(AvailabilityView::of(&status, lang));
                    return html(&AvailabilityTemplate { page });
                }
                Err(AppError::Domain(DomainError::Validation { .. })) => lang.t("chat-max-invalid"),
                Err(error) => return Err(error.into()),
            }
        }
        (Err(()), _) => lang.t("form-error-invalid"),
        (_, None) => lang.t("chat-max-invalid"),
    };
    // The control as the agent left it, marked.
    let mut typed = current.clone();
    if let Ok(availability) = availability {
        typed.availability = availability;
    }
    let mut view = AvailabilityView::of(&typed, lang);
    view.error = Some(error);
    let mut page = Frame::of(&staff);
    page.chat = Some(view);
    let response = if is_htmx(&headers) {
        html(&AvailabilityTemplate { page })?
    } else {
        render_chats(&state, &staff, page, None).await?
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
}

/// Where a plain availability form returns: the page it was on (never the fragment itself).
fn return_path(next: &str) -> String {
    let next = safe_next(Some(next).filter(|next| !next.is_empty()));
    if next.starts_with("/chat/availability") {
        "/chats".to_owned()
    } else {
        next
    }
}

// --- The chats page -------------------------------------------------------------------------

/// A waiting chat in the queue.
#[derive(Debug, Clone)]
pub struct QueueRow {
    pub ticket_id: String,
    pub number: i64,
    pub position: usize,
    /// When it started waiting (the browser ticks the time since).
    pub since: String,
    /// The waiting time when the page was drawn, `m:ss`.
    pub waited: String,
    pub site: String,
    pub customer: String,
    pub snippet: String,
    pub team: Option<String>,
    pub language: Option<String>,
}

/// One of the agent's own chats.
#[derive(Debug, Clone)]
pub struct MyChatRow {
    pub ticket_id: String,
    pub number: i64,
    pub site: String,
    pub customer: String,
    pub snippet: String,
    /// Entries the agents have not seen yet.
    pub unread: i64,
}

/// The queue and the agent's chats as drawn.
#[derive(Debug, Clone, Default)]
pub struct ChatLists {
    pub waiting: Vec<QueueRow>,
    pub mine: Vec<MyChatRow>,
}

#[derive(Template)]
#[template(path = "chats.html")]
struct ChatsTemplate {
    page: Frame,
    lists: ChatLists,
    done: Option<String>,
    failure: Option<String>,
}

#[derive(Template)]
#[template(path = "_chat_lists.html")]
struct ChatListsTemplate {
    page: Frame,
    lists: ChatLists,
}

/// `m:ss`, or `h:mm:ss` past an hour.
pub fn waited(duration: SignedDuration) -> String {
    let seconds = duration.as_secs().max(0);
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

fn iso(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The first words of the customer's first message.
const SNIPPET_CHARS: usize = 120;

fn snippet_of(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut snippet: String = line.chars().take(SNIPPET_CHARS).collect();
    if line.chars().count() > SNIPPET_CHARS {
        snippet.push('…');
    }
    snippet
}

/// A visitor who gave no name is named by their visitor id: show them as "a visitor".
pub(crate) fn customer_label(name: Option<&String>, lang: Lang) -> String {
    match name {
        Some(name) if name.parse::<uuid::Uuid>().is_err() => name.clone(),
        _ => lang.t("chat-visitor"),
    }
}

async fn first_words(state: &UiState, principal: &Principal, ticket_id: TicketId) -> String {
    let messages = state
        .app
        .list_messages(principal, ticket_id)
        .await
        .unwrap_or_default();
    messages
        .iter()
        .find(|message| {
            matches!(message.author, Author::Customer(_))
                && message.visibility == MessageVisibility::Public
        })
        .map(|message| snippet_of(&message.body))
        .unwrap_or_default()
}

async fn chat_lists(state: &UiState, staff: &Staff) -> Result<ChatLists, UiError> {
    let app = &state.app;
    let principal = &staff.principal;
    let lang = staff.lang;
    let queue = app.chat_queue(principal).await?;
    let ticket_ids: Vec<TicketId> = queue
        .waiting
        .iter()
        .chain(&queue.mine)
        .map(|summary| summary.chat.ticket_id)
        .collect();
    let (sites, teams) = tokio::join!(app.chat_site_names(principal), app.list_teams(principal));
    let sites = sites?;
    let teams: HashMap<TeamId, String> = teams
        .unwrap_or_default()
        .into_iter()
        .map(|team| (team.id, team.name))
        .collect();
    let mut tickets = HashMap::new();
    for ticket_id in &ticket_ids {
        if let Ok(ticket) = app.get_ticket(principal, *ticket_id).await {
            tickets.insert(*ticket_id, ticket);
        }
    }
    let customer_ids: Vec<_> = tickets.values().map(|ticket| ticket.customer_id).collect();
    let customers = app.customer_names(principal, &customer_ids).await?;
    let customer_of = |ticket_id: TicketId| {
        customer_label(
            tickets
                .get(&ticket_id)
                .and_then(|ticket| customers.get(&ticket.customer_id)),
            lang,
        )
    };
    let site_of = |summary: &ChatSummary| {
        sites
            .get(&summary.chat.site_id)
            .cloned()
            .unwrap_or_else(|| "—".into())
    };
    let now = app.clock.now();
    let mut lists = ChatLists::default();
    for summary in &queue.waiting {
        let chat = &summary.chat;
        let (position, waiting) = summary
            .queue
            .map_or((0, now.duration_since(chat.queued_at)), |queue| {
                (queue.position, queue.waiting)
            });
        lists.waiting.push(QueueRow {
            ticket_id: chat.ticket_id.to_string(),
            number: summary.number,
            position,
            since: iso(chat.queued_at),
            waited: waited(waiting),
            site: site_of(summary),
            customer: customer_of(chat.ticket_id),
            snippet: first_words(state, principal, chat.ticket_id).await,
            team: chat.team_id.and_then(|id| teams.get(&id).cloned()),
            language: chat
                .language
                .as_deref()
                .and_then(Lang::from_code)
                .map(|language| language.native_name().to_owned()),
        });
    }
    for summary in &queue.mine {
        let chat = &summary.chat;
        lists.mine.push(MyChatRow {
            ticket_id: chat.ticket_id.to_string(),
            number: summary.number,
            site: site_of(summary),
            customer: customer_of(chat.ticket_id),
            snippet: tickets
                .get(&chat.ticket_id)
                .map(|ticket| ticket.subject.clone())
                .unwrap_or_default(),
            unread: (chat.last_seq - chat.agent_read_seq).max(0),
        });
    }
    Ok(lists)
}

async fn render_chats(
    state: &UiState,
    staff: &Staff,
    page: Frame,
    failure: Option<String>,
) -> Result<Response, UiError> {
    let lists = chat_lists(state, staff).await?;
    html(&ChatsTemplate {
        page,
        lists,
        done: None,
        failure,
    })
}

#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// `GET /chats`: the queue and the agent's own chats, live.
pub async fn chats(
    State(state): State<UiState>,
    staff: Staff,
    Query(query): Query<DoneQuery>,
) -> Result<Response, UiError> {
    let lists = chat_lists(&state, &staff).await?;
    let done = match query.done.as_deref() {
        Some("transferred") => Some(staff.lang.t("done-chat-transferred")),
        _ => None,
    };
    html(&ChatsTemplate {
        page: Frame::of(&staff),
        lists,
        done,
        failure: None,
    })
}

/// `GET /chats/lists`: the two lists alone (htmx live refresh).
pub async fn chat_lists_fragment(
    State(state): State<UiState>,
    staff: Staff,
) -> Result<Response, UiError> {
    let lists = chat_lists(&state, &staff).await?;
    html(&ChatListsTemplate {
        page: Frame::of(&staff),
        lists,
    })
}

// --- The chat bar of a ticket ---------------------------------------------------------------

/// The chat bar of a chat ticket: where the chat stands and what the agent can do with it.
#[derive(Debug, Clone)]
pub struct ChatBar {
    /// `queued`, `active`, `ended`, `offline`.
    pub state: &'static str,
    pub label: String,
    /// "#2 in the queue", "with Anna", "answered by e-mail".
    pub detail: String,
    /// While queued: since when (the browser ticks), and the waiting time when drawn.
    pub since: Option<(String, String)>,
    pub live: bool,
    pub can_accept: bool,
    pub can_end: bool,
    /// Transfer targets: agents, then teams; the values are `agent:{id}` / `team:{id}`.
    pub agents: Vec<Choice>,
    pub teams: Vec<Choice>,
    pub target_error: Option<String>,
    pub last_seq: i64,
    pub read_seq: i64,
}

impl ChatBar {
    /// The bar of `summary` for the agent `me`, with the transfer choice `target` kept.
    pub fn of(
        summary: &ChatSummary,
        me: AgentId,
        agents: &[Agent],
        teams: &[Team],
        target: &str,
        errors: &FieldErrors,
        lang: Lang,
    ) -> ChatBar {
        let chat = &summary.chat;
        let state = chat.state.as_str();
        let detail = match chat.state {
            ChatState::Queued => summary.queue.map_or_else(
                || lang.t("chat-queued"),
                |queue| lang.with("chat-queue-position", &queue.position.to_string()),
            ),
            ChatState::Active => match (chat.agent_id, &summary.agent_name) {
                (Some(agent_id), _) if agent_id == me => lang.t("chat-with-me"),
                (_, Some(name)) => lang.with("chat-with-agent", name),
                _ => String::new(),
            },
            ChatState::Ended => lang.t("chat-ended-detail"),
            ChatState::Offline => lang.t("chat-offline-detail"),
        };
        let since = (chat.state == ChatState::Queued).then(|| {
            let waiting = summary
                .queue
                .map_or(SignedDuration::ZERO, |queue| queue.waiting);
            (iso(chat.queued_at), waited(waiting))
        });
        let agents = agents
            .iter()
            .filter(|agent| agent.active && Some(agent.id) != chat.agent_id)
            .map(|agent| {
                let value = format!("agent:{}", agent.id);
                Choice {
                    selected: value == target,
                    value,
                    label: agent.name.clone(),
                }
            })
            .collect();
        let teams = teams
            .iter()
            .map(|team| {
                let value = format!("team:{}", team.id);
                Choice {
                    selected: value == target,
                    value,
                    label: team.name.clone(),
                }
            })
            .collect();
        ChatBar {
            state,
            label: lang.t(&format!("chat-state-{state}")),
            detail,
            since,
            live: chat.is_live(),
            can_accept: chat.state == ChatState::Queued,
            can_end: chat.is_live(),
            agents,
            teams,
            target_error: errors.get("target").map(str::to_owned),
            last_seq: chat.last_seq,
            read_seq: chat.agent_read_seq,
        }
    }
}

#[derive(Template)]
#[template(path = "_chat_bar.html")]
struct ChatBarTemplate {
    page: Frame,
    id: String,
    bar: ChatBar,
}

fn parse_ticket_id(raw: &str) -> Result<TicketId, UiError> {
    raw.parse().map_err(|_| UiError::NotFound)
}

/// `GET /tickets/{id}/chat`: the chat bar alone (htmx live refresh).
pub async fn chat_bar(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let app = &state.app;
    let principal = &staff.principal;
    let summary = app.get_chat(principal, id).await?;
    let (agents, teams) = tokio::join!(all_agents(app, principal), app.list_teams(principal));
    let bar = ChatBar::of(
        &summary,
        principal.agent_id,
        &agents?,
        &teams.unwrap_or_default(),
        "",
        &FieldErrors::default(),
        staff.lang,
    );
    html(&ChatBarTemplate {
        page: Frame::of(&staff),
        id: id.to_string(),
        bar,
    })
}

/// A refused chat action, in words.
fn chat_refusal(error: AppError, lang: Lang) -> Result<String, UiError> {
    Ok(match error {
        AppError::Conflict {
            code: "chat_capacity",
            ..
        } => lang.t("chat-capacity"),
        AppError::Conflict {
            code: "chat_not_waiting",
            ..
        } => lang.t("chat-not-waiting"),
        AppError::Conflict { .. } => lang.t("error-conflict"),
        AppError::Domain(DomainError::Validation { field: "chat", .. }) => lang.t("chat-over"),
        AppError::Domain(DomainError::Validation { .. }) => lang.t("form-error-invalid"),
        other => return Err(other.into()),
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    from: String,
}

/// `POST /tickets/{id}/chat/accept`: the agent takes a waiting chat and goes to it. Refused
/// (not online, no free slot, taken meanwhile), the page the button was on says why.
pub async fn accept(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<AcceptForm>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let message = match state.app.accept_chat(&staff.principal, id).await {
        Ok(_) => {
            return Ok(Redirect::to(&format!("/tickets/{id}?done=chat-accepted")).into_response());
        }
        Err(error) => chat_refusal(error, staff.lang)?,
    };
    if form.from == "chats" {
        let response = render_chats(&state, &staff, Frame::of(&staff), Some(message)).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response());
    }
    show_again(
        &state,
        &staff,
        id,
        FormState {
            failure: Some(message),
            ..FormState::default()
        },
    )
    .await
}

#[derive(Debug, Default, Deserialize)]
pub struct TransferForm {
    #[serde(default)]
    target: String,
}

fn parse_target(raw: &str) -> Option<TransferTarget> {
    let (kind, id) = raw.split_once(':')?;
    match kind {
        "agent" => id.parse().ok().map(TransferTarget::Agent),
        "team" => id.parse().ok().map(TransferTarget::Team),
        _ => None,
    }
}

/// `POST /tickets/{id}/chat/transfer`: to an agent (online with a free slot) or back to a
/// team's queue. The agent who handed it over may no longer see the ticket: then they go to
/// their chats.
pub async fn transfer(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<TransferForm>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let lang = staff.lang;
    let mut errors = FieldErrors::default();
    let mut failure = None;
    match parse_target(&form.target) {
        None => errors.add("target", lang.t("chat-transfer-pick")),
        Some(target) => match state.app.transfer_chat(&staff.principal, id, target).await {
            Ok(_) => {
                let still_visible = state.app.get_ticket(&staff.principal, id).await.is_ok();
                let to = if still_visible {
                    format!("/tickets/{id}?done=chat-transferred")
                } else {
                    "/chats?done=transferred".to_owned()
                };
                return Ok(Redirect::to(&to).into_response());
            }
            Err(AppError::InvalidReference { .. }) => {
                errors.add("target", lang.t("form-error-invalid"));
            }
            Err(AppError::Conflict {
                code: "chat_capacity",
                ..
            }) => errors.add("target", lang.t("chat-transfer-capacity")),
            Err(AppError::Domain(DomainError::Validation {
                field: "agent_id", ..
            })) => errors.add("target", lang.t("chat-transfer-same")),
            Err(error) => failure = Some(chat_refusal(error, lang)?),
        },
    }
    show_again(
        &state,
        &staff,
        id,
        FormState {
            chat_target: form.target,
            chat_errors: errors,
            failure,
            ..FormState::default()
        },
    )
    .await
}

/// `POST /tickets/{id}/chat/end`.
pub async fn end(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let message = match state.app.end_chat(&staff.principal, id).await {
        Ok(_) => return Ok(Redirect::to(&format!("/tickets/{id}?done=chat-ended")).into_response()),
        Err(error) => chat_refusal(error, staff.lang)?,
    };
    show_again(
        &state,
        &staff,
        id,
        FormState {
            failure: Some(message),
            ..FormState::default()
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct TypingForm {
    typing: String,
}

/// `POST /tickets/{id}/chat/typing`: the agent is typing a public reply (`typing=1`) or
/// stopped (`typing=0`); the visitor's widget shows it. The page throttles these.
pub async fn typing(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<TypingForm>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let typing = match form.typing.as_str() {
        "1" | "true" => true,
        "0" | "false" => false,
        _ => return Err(UiError::BadRequest),
    };
    state
        .app
        .agent_chat_typing(&staff.principal, id, typing)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
pub struct ReadForm {
    seq: String,
}

/// `POST /tickets/{id}/chat/read`: the page showed the chat up to entry `seq`.
pub async fn read(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<ReadForm>,
) -> Result<Response, UiError> {
    let id = parse_ticket_id(&id)?;
    let seq: i64 = form.seq.trim().parse().map_err(|_| UiError::BadRequest)?;
    state.app.agent_chat_read(&staff.principal, id, seq).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_times_read_as_minutes_and_seconds() {
        assert_eq!(waited(SignedDuration::from_secs(0)), "0:00");
        assert_eq!(waited(SignedDuration::from_secs(65)), "1:05");
        assert_eq!(waited(SignedDuration::from_secs(3_725)), "1:02:05");
        assert_eq!(waited(SignedDuration::from_secs(-5)), "0:00");
    }

    #[test]
    fn only_local_pages_are_returned_to_after_saving_availability() {
        assert_eq!(return_path("/tickets/1"), "/tickets/1");
        assert_eq!(return_path("https://evil.test/"), "/inbox");
        assert_eq!(return_path(""), "/inbox");
        assert_eq!(return_path("/chat/availability"), "/chats");
    }

    #[test]
    fn transfer_targets_name_an_agent_or_a_team() {
        let id = uuid::Uuid::from_u128(7);
        assert!(matches!(
            parse_target(&format!("agent:{id}")),
            Some(TransferTarget::Agent(_))
        ));
        assert!(matches!(
            parse_target(&format!("team:{id}")),
            Some(TransferTarget::Team(_))
        ));
        assert!(parse_target("team:").is_none());
        assert!(parse_target(&format!("queue:{id}")).is_none());
        assert!(parse_target("").is_none());
    }
}
