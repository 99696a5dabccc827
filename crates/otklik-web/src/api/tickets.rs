//! `/tickets`, their messages, merges, audit, and attachment downloads.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use otklik_app::tickets::{AddMessageInput, AuthorKind, CreateTicketInput, CustomerRef};
use otklik_domain::agent::normalize_tag;
use otklik_domain::customer::IdentityValue;
use otklik_domain::ids::{AgentId, AttachmentId, CustomerId, TeamId, TicketId};
use otklik_domain::message::MessageVisibility;
use otklik_domain::ticket::{Channel, TicketPatch};
use otklik_store::{AssigneeFilter, TeamFilter, TicketFilter};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::dto::*;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiQuery, Auth, idempotency_key, parse_id, parse_json};

/// Filters and paging of the ticket list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListTicketsQuery {
    /// Comma-separated statuses (`new,open`).
    pub status: Option<String>,
    /// Comma-separated priorities.
    pub priority: Option<String>,
    /// Comma-separated channels.
    pub channel: Option<String>,
    /// An agent id, `me`, or `none` for unassigned.
    pub assignee: Option<String>,
    /// A team id, or `none` for tickets without a team.
    pub team: Option<String>,
    pub tag: Option<String>,
    pub customer_id: Option<uuid::Uuid>,
    /// RFC 3339 instant: only tickets updated at or after it.
    pub updated_since: Option<String>,
    /// RFC 3339 instant: only tickets updated before it.
    pub updated_before: Option<String>,
    /// Include tickets merged into others.
    pub include_merged: Option<bool>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200; default 50.
    pub limit: Option<u32>,
}

fn parse_list<T: std::str::FromStr<Err = otklik_domain::DomainError>>(
    raw: &Option<String>,
) -> ApiResult<Vec<T>> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| part.trim().parse::<T>().map_err(ApiError::from))
        .collect()
}

fn invalid_query(name: &str, reason: &str) -> ApiError {
    ApiError::InvalidQuery(format!("{name}: {reason}"))
}

fn parse_instant(name: &str, text: Option<&str>) -> ApiResult<Option<jiff::Timestamp>> {
    text.map(|text| {
        text.parse::<jiff::Timestamp>()
            .map_err(|_| invalid_query(name, "an RFC 3339 instant such as 2026-11-01T00:00:00Z"))
    })
    .transpose()
}

impl ListTicketsQuery {
    pub(crate) fn filter(&self, me: AgentId) -> ApiResult<TicketFilter> {
        let assignee = match self.assignee.as_deref() {
            None => None,
            Some("none") => Some(AssigneeFilter::Unassigned),
            Some("me") => Some(AssigneeFilter::Agent(me)),
            Some(id) => Some(AssigneeFilter::Agent(
                id.parse::<AgentId>()
                    .map_err(|_| invalid_query("assignee", "an agent id, me or none"))?,
            )),
        };
        let team = match self.team.as_deref() {
            None => None,
            Some("none") => Some(TeamFilter::NoTeam),
            Some(id) => Some(TeamFilter::Team(
                id.parse::<TeamId>()
                    .map_err(|_| invalid_query("team", "a team id or none"))?,
            )),
        };
        let updated_since = self
            .updated_since
            .as_deref()
            .map(|text| {
                text.parse::<jiff::Timestamp>().map_err(|_| {
                    invalid_query(
                        "updated_since",
                        "an RFC 3339 instant such as 2026-11-01T00:00:00Z",
                    )
                })
            })
            .transpose()?;
        let tag = self.tag.as_deref().map(normalize_tag).transpose()?;
        Ok(TicketFilter {
            statuses: parse_list(&self.status)?,
            priorities: parse_list(&self.priority)?,
            channels: parse_list(&self.channel)?,
            assignee,
            team,
            tag,
            customer_id: self.customer_id.map(CustomerId),
            updated_since,
            updated_before: parse_instant("updated_before", self.updated_before.as_deref())?,
            include_merged: self.include_merged.unwrap_or(false),
        })
    }
}

/// List tickets the caller may see, newest update first.
#[utoipa::path(get, path = "/tickets", tag = "tickets", params(ListTicketsQuery),
    responses((status = 200, body = Page<TicketDto>), (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<ListTicketsQuery>,
) -> ApiResult<Json<Page<TicketDto>>> {
    let filter = query.filter(principal.agent_id)?;
    let after = query
        .cursor
        .as_deref()
        .map(decode_ticket_cursor)
        .transpose()?;
    let page = state
        .app
        .list_tickets(&principal, filter, after, query.limit.unwrap_or(50))
        .await?;
    Ok(Json(Page {
        items: page.tickets.into_iter().map(TicketDto::from).collect(),
        next_cursor: page.next.map(encode_ticket_cursor),
    }))
}

/// Open a ticket with the customer's first message.
#[utoipa::path(post, path = "/tickets", tag = "tickets", request_body = CreateTicketDto,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 201, body = TicketDto), (status = 422, body = Problem), (status = 400, body = Problem), (status = 413, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<TicketDto>)> {
    let dto: CreateTicketDto = parse_json(&headers, &body)?;
    let key = idempotency_key(&headers, &principal, &method, "/api/v1/tickets", &body)?;
    let customer = match (dto.customer_id, dto.requester) {
        (Some(id), None) => CustomerRef::Id(CustomerId(id)),
        (None, Some(requester)) => CustomerRef::Identity {
            identity: IdentityValue::parse(
                requester.kind,
                requester.provider.as_deref(),
                &requester.value,
            )?,
            name: requester.name,
        },
        _ => {
            return Err(ApiError::InvalidBody(
                "give exactly one of customer_id and requester".into(),
            ));
        }
    };
    let attachments = dto
        .attachments
        .into_iter()
        .map(NewAttachmentDto::decode)
        .collect::<ApiResult<Vec<_>>>()?;
    let input = CreateTicketInput {
        subject: dto.subject,
        body: dto.body,
        customer,
        channel: dto.channel.unwrap_or(Channel::Api),
        priority: dto.priority,
        status: dto.status,
        assignee_id: dto.assignee_id.map(AgentId),
        team_id: dto.team_id.map(TeamId),
        tags: dto.tags,
        attachments,
    };
    let ticket = state
        .app
        .create_ticket(&principal, input, key.as_ref())
        .await?;
    Ok((StatusCode::CREATED, Json(ticket.into())))
}

/// One ticket.
#[utoipa::path(get, path = "/tickets/{id}", tag = "tickets", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = TicketDto), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<TicketDto>> {
    let ticket = state.app.get_ticket(&principal, parse_id(&id)?).await?;
    Ok(Json(ticket.into()))
}

/// Change status, priority, assignee, team, tags or subject.
#[utoipa::path(patch, path = "/tickets/{id}", tag = "tickets", params(("id" = uuid::Uuid, Path)), request_body = UpdateTicketDto,
    responses((status = 200, body = TicketDto), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<TicketDto>> {
    let id: TicketId = parse_id(&id)?;
    let dto: UpdateTicketDto = parse_json(&headers, &body)?;
    let patch = TicketPatch {
        subject: dto.subject,
        status: dto.status,
        priority: dto.priority,
        assignee_id: dto.assignee_id.map(|assignee| assignee.map(AgentId)),
        team_id: dto.team_id.map(|team| team.map(TeamId)),
        tags: dto.tags,
    };
    let ticket = state.app.update_ticket(&principal, id, patch).await?;
    Ok(Json(ticket.into()))
}

/// Every message of a ticket, oldest first.
#[utoipa::path(get, path = "/tickets/{id}/messages", tag = "tickets", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<MessageDto>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_messages(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<MessageDto>>> {
    let messages = state.app.list_messages(&principal, parse_id(&id)?).await?;
    Ok(Json(messages.into_iter().map(MessageDto::from).collect()))
}

/// Add a public reply or an internal note, with attachments.
#[utoipa::path(post, path = "/tickets/{id}/messages", tag = "tickets", params(("id" = uuid::Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = CreateMessageDto,
    responses((status = 201, body = MessageCreatedDto), (status = 404, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_message(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<MessageCreatedDto>)> {
    let ticket_id: TicketId = parse_id(&id)?;
    let dto: CreateMessageDto = parse_json(&headers, &body)?;
    let key = idempotency_key(
        &headers,
        &principal,
        &method,
        &format!("/api/v1/tickets/{ticket_id}/messages"),
        &body,
    )?;
    let attachments = dto
        .attachments
        .into_iter()
        .map(NewAttachmentDto::decode)
        .collect::<ApiResult<Vec<_>>>()?;
    let input = AddMessageInput {
        body: dto.body,
        visibility: dto.visibility.unwrap_or(MessageVisibility::Public),
        author: match dto.author.unwrap_or(AuthorKindDto::Agent) {
            AuthorKindDto::Agent => AuthorKind::Agent,
            AuthorKindDto::Customer => AuthorKind::Customer,
        },
        status: dto.status,
        attachments,
    };
    let (message, ticket) = state
        .app
        .add_message(&principal, ticket_id, input, key.as_ref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(MessageCreatedDto {
            message: message.into(),
            ticket: ticket.into(),
        }),
    ))
}

/// Merge this ticket into another: its messages move there and it closes, pointing to the survivor.
#[utoipa::path(post, path = "/tickets/{id}/merge", tag = "tickets", params(("id" = uuid::Uuid, Path)), request_body = MergeTicketDto,
    responses((status = 200, body = TicketDto, description = "The surviving ticket"), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn merge(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<TicketDto>> {
    let source: TicketId = parse_id(&id)?;
    let dto: MergeTicketDto = parse_json(&headers, &body)?;
    let survivor = state
        .app
        .merge_tickets(&principal, source, TicketId(dto.into_ticket_id))
        .await?;
    Ok(Json(survivor.into()))
}

/// The audit history of a ticket, oldest first.
#[utoipa::path(get, path = "/tickets/{id}/audit", tag = "tickets", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<AuditEventDto>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<AuditEventDto>>> {
    let events = state.app.ticket_audit(&principal, parse_id(&id)?).await?;
    Ok(Json(events.into_iter().map(AuditEventDto::from).collect()))
}

/// Download an attachment. Always served as a download, typed from its bytes.
#[utoipa::path(get, path = "/attachments/{id}", tag = "tickets", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "The file"), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn download_attachment(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id: AttachmentId = parse_id(&id)?;
    let (meta, bytes) = state.app.get_attachment(&principal, id).await?;
    let content_type = HeaderValue::from_str(&meta.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    Ok(download(bytes, content_type, &meta.file_name))
}

/// Bytes a person downloads and a browser never renders in our origin: `attachment`, our own
/// content type (never the sender's claim), no sniffing, a sandbox CSP, no caching.
pub(crate) fn download(bytes: Vec<u8>, content_type: HeaderValue, file_name: &str) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_DISPOSITION, content_disposition(file_name));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
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
