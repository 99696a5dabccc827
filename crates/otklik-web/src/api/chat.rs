//! Live chat for staff: `/chat-sites` (admins), `/chat/availability`, `/chat/queue`, and the
//! chat of a ticket (`/tickets/{id}/chat`: accept, transfer, end, typing, read). Agents answer
//! with the ordinary `POST /tickets/{id}/messages`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use jiff::Timestamp;
use otklik_app::chat::{ChatSiteInput, ChatSummary, SetAvailabilityInput, TransferTarget};
use otklik_domain::chat::{
    AgentChatStatus, Availability, ChatSite, DayHours, FieldMode, PreChatForm, WorkingHours,
};
use otklik_domain::ids::{AgentId, ChatSiteId, MailboxId, TeamId, TicketId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Auth, parse_id, parse_json};

/// Opening hours of one day, minutes since local midnight.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayHoursDto {
    pub from_minute: u16,
    pub to_minute: u16,
}

/// When chat is staffed; `days` Monday first, `null` for a day off; all null = always open.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkingHoursDto {
    /// IANA time zone, e.g. `Europe/Moscow`.
    pub time_zone: String,
    pub days: [Option<DayHoursDto>; 7],
}

impl From<WorkingHours> for WorkingHoursDto {
    fn from(hours: WorkingHours) -> Self {
        WorkingHoursDto {
            time_zone: hours.time_zone,
            days: hours.days.map(|day| {
                day.map(|day| DayHoursDto {
                    from_minute: day.from_minute,
                    to_minute: day.to_minute,
                })
            }),
        }
    }
}

impl From<WorkingHoursDto> for WorkingHours {
    fn from(hours: WorkingHoursDto) -> Self {
        WorkingHours {
            time_zone: hours.time_zone,
            days: hours.days.map(|day| {
                day.map(|day| DayHours {
                    from_minute: day.from_minute,
                    to_minute: day.to_minute,
                })
            }),
        }
    }
}

/// Pre-chat questions: `hidden`, `optional` or `required`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreChatDto {
    #[schema(value_type = String)]
    pub name: FieldMode,
    #[schema(value_type = String)]
    pub email: FieldMode,
    #[schema(value_type = String)]
    pub order_number: FieldMode,
}

/// A chat site: where the widget runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatSiteDto {
    pub id: Uuid,
    pub name: String,
    pub allowed_origins: Vec<String>,
    pub greeting: String,
    pub accent_colour: String,
    pub working_hours: WorkingHoursDto,
    pub pre_chat: PreChatDto,
    /// The key the shop's server signs customer ids with: hex(HMAC-SHA256(secret, id)).
    pub identity_secret: String,
    pub require_identity: bool,
    pub team_id: Option<Uuid>,
    pub mailbox_id: Option<Uuid>,
    pub active: bool,
    /// The tag to paste into the shop's pages (`HOST` is this server's public address).
    pub snippet: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<ChatSite> for ChatSiteDto {
    fn from(site: ChatSite) -> Self {
        ChatSiteDto {
            snippet: format!(
                "<script src=\"https://HOST/widget.js\" data-site=\"{}\" async></script>",
                site.id
            ),
            id: site.id.0,
            name: site.name,
            allowed_origins: site.allowed_origins,
            greeting: site.greeting,
            accent_colour: site.accent_colour,
            working_hours: site.working_hours.into(),
            pre_chat: PreChatDto {
                name: site.pre_chat.name,
                email: site.pre_chat.email,
                order_number: site.pre_chat.order_number,
            },
            identity_secret: site.identity_secret,
            require_identity: site.require_identity,
            team_id: site.team_id.map(|id| id.0),
            mailbox_id: site.mailbox_id.map(|id| id.0),
            active: site.active,
            created_at: site.created_at,
        }
    }
}

/// What an admin sets on a chat site.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatSiteInputDto {
    pub name: String,
    /// Origins like `https://shop.example` where the widget may run.
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub greeting: String,
    /// `#rrggbb`; default `#1f6feb`.
    pub accent_colour: Option<String>,
    /// Default: always open.
    pub working_hours: Option<WorkingHoursDto>,
    /// Default: name and e-mail optional, order number hidden.
    pub pre_chat: Option<PreChatDto>,
    #[serde(default)]
    pub require_identity: bool,
    pub team_id: Option<Uuid>,
    /// The mailbox offline messages and transcripts are answered from.
    pub mailbox_id: Option<Uuid>,
    /// Default true.
    pub active: Option<bool>,
}

impl From<ChatSiteInputDto> for ChatSiteInput {
    fn from(input: ChatSiteInputDto) -> Self {
        ChatSiteInput {
            name: input.name,
            allowed_origins: input.allowed_origins,
            greeting: input.greeting,
            accent_colour: input.accent_colour.unwrap_or_else(|| "#1f6feb".into()),
            working_hours: input
                .working_hours
                .map_or_else(WorkingHours::around_the_clock, Into::into),
            pre_chat: input
                .pre_chat
                .map_or_else(PreChatForm::default, |form| PreChatForm {
                    name: form.name,
                    email: form.email,
                    order_number: form.order_number,
                }),
            require_identity: input.require_identity,
            team_id: input.team_id.map(TeamId),
            mailbox_id: input.mailbox_id.map(MailboxId),
            active: input.active.unwrap_or(true),
        }
    }
}

#[utoipa::path(get, path = "/chat-sites", tag = "chat",
    responses((status = 200, body = [ChatSiteDto]), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_sites(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<Vec<ChatSiteDto>>> {
    let sites = state.app.list_chat_sites(&principal).await?;
    Ok(Json(sites.into_iter().map(Into::into).collect()))
}

#[utoipa::path(post, path = "/chat-sites", tag = "chat", request_body = ChatSiteInputDto,
    responses((status = 201, body = ChatSiteDto), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_site(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ChatSiteDto>)> {
    let input: ChatSiteInputDto = parse_json(&headers, &body)?;
    let site = state.app.create_chat_site(&principal, input.into()).await?;
    Ok((StatusCode::CREATED, Json(site.into())))
}

#[utoipa::path(get, path = "/chat-sites/{id}", tag = "chat",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ChatSiteDto), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_site(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ChatSiteDto>> {
    let id: ChatSiteId = parse_id(&id)?;
    Ok(Json(state.app.get_chat_site(&principal, id).await?.into()))
}

#[utoipa::path(put, path = "/chat-sites/{id}", tag = "chat", request_body = ChatSiteInputDto,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ChatSiteDto), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_site(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ChatSiteDto>> {
    let id: ChatSiteId = parse_id(&id)?;
    let input: ChatSiteInputDto = parse_json(&headers, &body)?;
    let site = state
        .app
        .update_chat_site(&principal, id, input.into())
        .await?;
    Ok(Json(site.into()))
}

#[utoipa::path(post, path = "/chat-sites/{id}/rotate-secret", tag = "chat",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ChatSiteDto), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ChatSiteDto>> {
    let id: ChatSiteId = parse_id(&id)?;
    let site = state.app.rotate_chat_site_secret(&principal, id).await?;
    Ok(Json(site.into()))
}

/// An agent's chat availability.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityDto {
    /// `online`, `away` or `offline`.
    #[schema(value_type = String)]
    pub availability: Availability,
    pub max_chats: u16,
    pub active_chats: u16,
    pub languages: Vec<String>,
}

impl From<AgentChatStatus> for AvailabilityDto {
    fn from(status: AgentChatStatus) -> Self {
        AvailabilityDto {
            availability: status.availability,
            max_chats: status.max_chats,
            active_chats: status.active_chats,
            languages: status.languages,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAvailabilityDto {
    #[schema(value_type = String)]
    pub availability: Availability,
    /// 1–20; default 3.
    pub max_chats: Option<u16>,
    /// `ru`, `en`; empty for any.
    #[serde(default)]
    pub languages: Vec<String>,
}

#[utoipa::path(get, path = "/chat/availability", tag = "chat",
    responses((status = 200, body = AvailabilityDto)),
    security(("bearer" = [])))]
pub async fn get_availability(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<AvailabilityDto>> {
    Ok(Json(state.app.chat_status(&principal).await?.into()))
}

#[utoipa::path(put, path = "/chat/availability", tag = "chat", request_body = SetAvailabilityDto,
    responses((status = 200, body = AvailabilityDto), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn set_availability(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<AvailabilityDto>> {
    let input: SetAvailabilityDto = parse_json(&headers, &body)?;
    let status = state
        .app
        .set_chat_availability(
            &principal,
            SetAvailabilityInput {
                availability: input.availability,
                max_chats: input.max_chats.unwrap_or(3),
                languages: input.languages,
            },
        )
        .await?;
    Ok(Json(status.into()))
}

/// A chat as staff see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatDto {
    pub ticket_id: Uuid,
    pub number: i64,
    /// `queued`, `active`, `ended` or `offline`.
    #[schema(value_type = String)]
    pub state: otklik_domain::chat::ChatState,
    pub agent_id: Option<Uuid>,
    pub agent_name: Option<String>,
    pub team_id: Option<Uuid>,
    pub language: Option<String>,
    /// Position in the queue (1 = next) while queued.
    pub queue_position: Option<usize>,
    #[schema(value_type = String, format = DateTime)]
    pub queued_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub accepted_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    /// For chat SLA: the visitor's first message and the first agent answer.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_visitor_message_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_agent_message_at: Option<Timestamp>,
    pub last_seq: i64,
    pub visitor_read_seq: i64,
    pub agent_read_seq: i64,
}

impl From<ChatSummary> for ChatDto {
    fn from(summary: ChatSummary) -> Self {
        let chat = summary.chat;
        ChatDto {
            ticket_id: chat.ticket_id.0,
            number: summary.number,
            state: chat.state,
            agent_id: chat.agent_id.map(|id| id.0),
            agent_name: summary.agent_name,
            team_id: chat.team_id.map(|id| id.0),
            language: chat.language,
            queue_position: summary.queue.map(|queue| queue.position),
            queued_at: chat.queued_at,
            accepted_at: chat.accepted_at,
            ended_at: chat.ended_at,
            first_visitor_message_at: chat.first_visitor_message_at,
            first_agent_message_at: chat.first_agent_message_at,
            last_seq: chat.last_seq,
            visitor_read_seq: chat.visitor_read_seq,
            agent_read_seq: chat.agent_read_seq,
        }
    }
}

/// The caller's chat work.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatQueueDto {
    pub availability: AvailabilityDto,
    /// Waiting chats the caller may take, first in line first.
    pub waiting: Vec<ChatDto>,
    /// The caller's active chats.
    pub mine: Vec<ChatDto>,
}

#[utoipa::path(get, path = "/chat/queue", tag = "chat",
    responses((status = 200, body = ChatQueueDto)),
    security(("bearer" = [])))]
pub async fn queue(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<ChatQueueDto>> {
    let queue = state.app.chat_queue(&principal).await?;
    Ok(Json(ChatQueueDto {
        availability: queue.status.into(),
        waiting: queue.waiting.into_iter().map(Into::into).collect(),
        mine: queue.mine.into_iter().map(Into::into).collect(),
    }))
}

fn ticket(raw: &str) -> ApiResult<TicketId> {
    parse_id(raw)
}

#[utoipa::path(get, path = "/tickets/{id}/chat", tag = "chat",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ChatDto), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_chat(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ChatDto>> {
    Ok(Json(
        state.app.get_chat(&principal, ticket(&id)?).await?.into(),
    ))
}

#[utoipa::path(post, path = "/tickets/{id}/chat/accept", tag = "chat",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ChatDto), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn accept(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ChatDto>> {
    Ok(Json(
        state
            .app
            .accept_chat(&principal, ticket(&id)?)
            .await?
            .into(),
    ))
}

/// Exactly one of `agent_id` and `team_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferDto {
    pub agent_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
}

#[utoipa::path(post, path = "/tickets/{id}/chat/transfer", tag = "chat", request_body = TransferDto,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ChatDto), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn transfer(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ChatDto>> {
    let input: TransferDto = parse_json(&headers, &body)?;
    let target = match (input.agent_id, input.team_id) {
        (Some(agent_id), None) => TransferTarget::Agent(AgentId(agent_id)),
        (None, Some(team_id)) => TransferTarget::Team(TeamId(team_id)),
        _ => {
            return Err(ApiError::InvalidBody(
                "give exactly one of agent_id and team_id".into(),
            ));
        }
    };
    Ok(Json(
        state
            .app
            .transfer_chat(&principal, ticket(&id)?, target)
            .await?
            .into(),
    ))
}

#[utoipa::path(post, path = "/tickets/{id}/chat/end", tag = "chat",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ChatDto), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn end(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ChatDto>> {
    Ok(Json(
        state.app.end_chat(&principal, ticket(&id)?).await?.into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TypingDto {
    pub typing: bool,
}

#[utoipa::path(post, path = "/tickets/{id}/chat/typing", tag = "chat", request_body = TypingDto,
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn typing(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let input: TypingDto = parse_json(&headers, &body)?;
    state
        .app
        .agent_chat_typing(&principal, ticket(&id)?, input.typing)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadDto {
    pub seq: i64,
}

#[utoipa::path(post, path = "/tickets/{id}/chat/read", tag = "chat", request_body = ReadDto,
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let input: ReadDto = parse_json(&headers, &body)?;
    state
        .app
        .agent_chat_read(&principal, ticket(&id)?, input.seq)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
