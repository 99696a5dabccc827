//! `/search` and `/views`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use otklik_domain::ids::ViewId;
use otklik_domain::view::ViewFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::api::tickets::ListTicketsQuery;
use crate::dto::*;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiQuery, Auth, parse_id, parse_json};

/// A search with the ticket list's filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQueryParams {
    /// Words (Russian or English, any form), ticket or order numbers, e-mails, phones. The
    /// last word is matched as a prefix unless the query ends with a space.
    pub q: String,
    /// Comma-separated statuses.
    pub status: Option<String>,
    pub priority: Option<String>,
    pub channel: Option<String>,
    /// An agent id, `me`, or `none`.
    pub assignee: Option<String>,
    /// A team id, or `none`.
    pub team: Option<String>,
    pub tag: Option<String>,
    pub customer_id: Option<uuid::Uuid>,
    /// RFC 3339: updated at or after.
    pub updated_since: Option<String>,
    /// RFC 3339: updated before.
    pub updated_before: Option<String>,
    /// Also find tickets merged into others (hidden by default): a customer may quote the
    /// number of a ticket that was merged since.
    pub include_merged: Option<bool>,
    /// 1 to 200; default 20.
    pub limit: Option<u32>,
}

/// An excerpt with the matched words' byte ranges (render them highlighted; the text is plain,
/// never HTML).
#[derive(Debug, Serialize, ToSchema)]
pub struct SnippetDto {
    pub text: String,
    /// `[start, end)` byte offsets into `text`.
    pub highlights: Vec<[usize; 2]>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketHitDto {
    pub ticket: TicketDto,
    pub snippet: SnippetDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResultsDto {
    /// Best first.
    pub tickets: Vec<TicketHitDto>,
    /// Customers whose name or identities match (empty without the customers:read scope).
    pub customers: Vec<CustomerDto>,
}

/// Search tickets, their messages and customers.
#[utoipa::path(get, path = "/search", tag = "search", params(SearchQueryParams),
    responses((status = 200, body = SearchResultsDto), (status = 400, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(params): ApiQuery<SearchQueryParams>,
) -> ApiResult<Json<SearchResultsDto>> {
    let list = ListTicketsQuery {
        status: params.status,
        priority: params.priority,
        channel: params.channel,
        assignee: params.assignee,
        team: params.team,
        tag: params.tag,
        customer_id: params.customer_id,
        updated_since: params.updated_since,
        updated_before: params.updated_before,
        include_merged: params.include_merged,
        ..ListTicketsQuery::default()
    };
    let filter = list.filter(principal.agent_id)?;
    let results = state
        .app
        .search(&principal, &params.q, filter, params.limit.unwrap_or(20))
        .await?;
    Ok(Json(SearchResultsDto {
        tickets: results
            .tickets
            .into_iter()
            .map(|hit| TicketHitDto {
                ticket: hit.ticket.into(),
                snippet: SnippetDto {
                    highlights: hit
                        .snippet
                        .highlights
                        .iter()
                        .map(|range| [range.start, range.end])
                        .collect(),
                    text: hit.snippet.text,
                },
            })
            .collect(),
        customers: results
            .customers
            .into_iter()
            .map(CustomerDto::from)
            .collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewDto {
    pub id: uuid::Uuid,
    pub name: String,
    /// True for views everyone sees.
    pub shared: bool,
    /// How many tickets the view holds for the caller (maintained, not scanned).
    pub count: i64,
    #[schema(value_type = Object)]
    pub filter: ViewFilter,
}

impl From<otklik_app::views::CountedView> for ViewDto {
    fn from(counted: otklik_app::views::CountedView) -> Self {
        ViewDto {
            id: counted.view.id.0,
            name: counted.view.name,
            shared: counted.view.owner_agent_id.is_none(),
            count: counted.count,
            filter: counted.view.filter,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateViewDto {
    pub name: String,
    /// `{statuses, priorities, assignee: {kind: me|nobody|agent, id}, team: {kind: no_team|team, id}, idle_days}`.
    #[schema(value_type = Object)]
    pub filter: ViewFilter,
    /// Shared with everyone (supervisors and admins); personal otherwise.
    #[serde(default)]
    pub shared: bool,
}

/// The caller's views with live counts.
#[utoipa::path(get, path = "/views", tag = "search", responses((status = 200, body = Vec<ViewDto>)), security(("bearer" = [])))]
pub async fn list_views(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<Vec<ViewDto>>> {
    Ok(Json(
        state
            .app
            .list_views(&principal)
            .await?
            .into_iter()
            .map(ViewDto::from)
            .collect(),
    ))
}

/// Save a view.
#[utoipa::path(post, path = "/views", tag = "search", request_body = CreateViewDto,
    responses((status = 201, body = ViewDto), (status = 403, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_view(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ViewDto>)> {
    let dto: CreateViewDto = parse_json(&headers, &body)?;
    let view = state
        .app
        .create_view(&principal, &dto.name, dto.filter, dto.shared)
        .await?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

/// Delete a view (own; shared ones: supervisors and admins).
#[utoipa::path(delete, path = "/views/{id}", tag = "search", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete_view(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: ViewId = parse_id(&id)?;
    state.app.delete_view(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200; default 50.
    pub limit: Option<u32>,
}

/// The tickets of a view, newest update first.
#[utoipa::path(get, path = "/views/{id}/tickets", tag = "search", params(("id" = uuid::Uuid, Path), PageQuery),
    responses((status = 200, body = Page<TicketDto>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn view_tickets(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<TicketDto>>> {
    let id: ViewId = parse_id(&id)?;
    let after = query
        .cursor
        .as_deref()
        .map(decode_ticket_cursor)
        .transpose()?;
    let page = state
        .app
        .view_tickets(&principal, id, after, query.limit.unwrap_or(50))
        .await?;
    Ok(Json(Page {
        items: page.tickets.into_iter().map(TicketDto::from).collect(),
        next_cursor: page.next.map(encode_ticket_cursor),
    }))
}
