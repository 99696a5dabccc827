//! Staff and set-up: `/agents`, `/teams`, `/tags`, `/roles`, tokens, `/audit`, `/setup`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use otklik_app::auth::NewAgentInput;
use otklik_app::staff::AgentPatch;
use otklik_domain::agent::Role;
use otklik_domain::ids::{AgentId, TagId, TeamId, TokenId};
use otklik_domain::permission::Action;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::dto::*;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiQuery, Auth, parse_id, parse_json};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListAgentsQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<uuid::Uuid>,
    /// 1 to 200; default 100.
    pub limit: Option<u32>,
}

/// List staff.
#[utoipa::path(get, path = "/agents", tag = "staff", params(ListAgentsQuery),
    responses((status = 200, body = Page<AgentDto>)), security(("bearer" = [])))]
pub async fn list_agents(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<ListAgentsQuery>,
) -> ApiResult<Json<Page<AgentDto>>> {
    let limit = query.limit.unwrap_or(100).clamp(1, 200);
    let agents = state
        .app
        .list_agents(&principal, query.cursor.map(AgentId), limit)
        .await?;
    let next_cursor = (agents.len() == limit as usize)
        .then(|| agents.last().map(|agent| agent.id.to_string()))
        .flatten();
    Ok(Json(Page {
        items: agents.into_iter().map(AgentDto::from).collect(),
        next_cursor,
    }))
}

/// Create a staff member (admins).
#[utoipa::path(post, path = "/agents", tag = "staff", request_body = CreateAgentDto,
    responses((status = 201, body = AgentDto), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_agent(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<AgentDto>)> {
    let dto: CreateAgentDto = parse_json(&headers, &body)?;
    let input = NewAgentInput {
        email: dto.email,
        name: dto.name,
        role: dto.role,
        team_ids: dto.team_ids.into_iter().map(TeamId).collect(),
        password: dto.password,
    };
    let agent = state.app.create_agent(&principal, input).await?;
    Ok((StatusCode::CREATED, Json(agent.into())))
}

/// The caller.
#[utoipa::path(get, path = "/agents/me", tag = "staff", responses((status = 200, body = AgentDto), (status = 401, body = Problem)), security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, Auth(principal): Auth) -> ApiResult<Json<AgentDto>> {
    Ok(Json(
        state
            .app
            .get_agent(&principal, principal.agent_id)
            .await?
            .into(),
    ))
}

/// One staff member.
#[utoipa::path(get, path = "/agents/{id}", tag = "staff", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = AgentDto), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_agent(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<AgentDto>> {
    Ok(Json(
        state
            .app
            .get_agent(&principal, parse_id(&id)?)
            .await?
            .into(),
    ))
}

/// Change a staff member: role, teams, active (admins); own name and password (anyone).
#[utoipa::path(patch, path = "/agents/{id}", tag = "staff", params(("id" = uuid::Uuid, Path)), request_body = UpdateAgentDto,
    responses((status = 200, body = AgentDto), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_agent(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<AgentDto>> {
    let id: AgentId = parse_id(&id)?;
    let dto: UpdateAgentDto = parse_json(&headers, &body)?;
    let patch = AgentPatch {
        email: dto.email,
        name: dto.name,
        role: dto.role,
        team_ids: dto
            .team_ids
            .map(|ids| ids.into_iter().map(TeamId).collect()),
        active: dto.active,
        password: dto.password,
    };
    Ok(Json(
        state.app.update_agent(&principal, id, patch).await?.into(),
    ))
}

/// The API tokens of an agent (own; admins: anyone's). Secrets are never shown again.
#[utoipa::path(get, path = "/agents/{id}/tokens", tag = "staff", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<TokenDto>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TokenDto>>> {
    let tokens = state.app.list_tokens(&principal, parse_id(&id)?).await?;
    Ok(Json(tokens.into_iter().map(TokenDto::from).collect()))
}

/// Create an API token; the secret is in the response and nowhere else.
#[utoipa::path(post, path = "/agents/{id}/tokens", tag = "staff", params(("id" = uuid::Uuid, Path)), request_body = CreateTokenDto,
    responses((status = 201, body = IssuedTokenDto), (status = 404, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_token(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<IssuedTokenDto>)> {
    let agent_id: AgentId = parse_id(&id)?;
    let dto: CreateTokenDto = parse_json(&headers, &body)?;
    let scopes = otklik_domain::permission::parse_scopes(&dto.scopes.join(","))?;
    let issued = state
        .app
        .issue_token(&principal, agent_id, &dto.name, scopes, dto.expires_at)
        .await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

/// Revoke a token (own; admins: anyone's).
#[utoipa::path(delete, path = "/tokens/{id}", tag = "staff", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: TokenId = parse_id(&id)?;
    state.app.revoke_token(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every team.
#[utoipa::path(get, path = "/teams", tag = "staff", responses((status = 200, body = Vec<TeamDto>)), security(("bearer" = [])))]
pub async fn list_teams(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<Vec<TeamDto>>> {
    Ok(Json(
        state
            .app
            .list_teams(&principal)
            .await?
            .into_iter()
            .map(TeamDto::from)
            .collect(),
    ))
}

/// Create a team (supervisors, admins).
#[utoipa::path(post, path = "/teams", tag = "staff", request_body = NameDto,
    responses((status = 201, body = TeamDto), (status = 403, body = Problem), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn create_team(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<TeamDto>)> {
    let dto: NameDto = parse_json(&headers, &body)?;
    Ok((
        StatusCode::CREATED,
        Json(state.app.create_team(&principal, &dto.name).await?.into()),
    ))
}

/// One team.
#[utoipa::path(get, path = "/teams/{id}", tag = "staff", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = TeamDto), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_team(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<TeamDto>> {
    Ok(Json(
        state.app.get_team(&principal, parse_id(&id)?).await?.into(),
    ))
}

/// Rename a team.
#[utoipa::path(patch, path = "/teams/{id}", tag = "staff", params(("id" = uuid::Uuid, Path)), request_body = NameDto,
    responses((status = 200, body = TeamDto), (status = 404, body = Problem), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn rename_team(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<TeamDto>> {
    let id: TeamId = parse_id(&id)?;
    let dto: NameDto = parse_json(&headers, &body)?;
    Ok(Json(
        state
            .app
            .rename_team(&principal, id, &dto.name)
            .await?
            .into(),
    ))
}

/// Delete a team: its tickets lose the team, its members the membership.
#[utoipa::path(delete, path = "/teams/{id}", tag = "staff", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete_team(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: TeamId = parse_id(&id)?;
    state.app.delete_team(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every tag.
#[utoipa::path(get, path = "/tags", tag = "staff", responses((status = 200, body = Vec<TagDto>)), security(("bearer" = [])))]
pub async fn list_tags(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<Vec<TagDto>>> {
    Ok(Json(
        state
            .app
            .list_tags(&principal)
            .await?
            .into_iter()
            .map(TagDto::from)
            .collect(),
    ))
}

/// Create a tag ahead of use (supervisors, admins).
#[utoipa::path(post, path = "/tags", tag = "staff", request_body = NameDto,
    responses((status = 201, body = TagDto), (status = 403, body = Problem), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn create_tag(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<TagDto>)> {
    let dto: NameDto = parse_json(&headers, &body)?;
    Ok((
        StatusCode::CREATED,
        Json(state.app.create_tag(&principal, &dto.name).await?.into()),
    ))
}

/// Delete a tag and take it off every ticket.
#[utoipa::path(delete, path = "/tags/{id}", tag = "staff", params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete_tag(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: TagId = parse_id(&id)?;
    state.app.delete_tag(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The roles and what each may do.
#[utoipa::path(get, path = "/roles", tag = "staff", responses((status = 200, body = Vec<RoleDto>)), security(("bearer" = [])))]
pub async fn list_roles(Auth(principal): Auth) -> ApiResult<Json<Vec<RoleDto>>> {
    principal
        .require(Action::ReadDirectory)
        .map_err(otklik_app::AppError::from)?;
    let actions = [
        (
            Action::ReadTickets,
            "read tickets (agents: own teams, unrouted, assigned to them)",
        ),
        (
            Action::WriteTickets,
            "create, change, reply to and merge tickets",
        ),
        (Action::ReadCustomers, "read customers"),
        (Action::WriteCustomers, "create and change customers"),
        (Action::MergeCustomers, "merge and un-merge customers"),
        (Action::ReadDirectory, "see agents, teams and tags"),
        (Action::ManageTags, "create and delete tags"),
        (Action::ManageTeams, "create, rename and delete teams"),
        (
            Action::ManageAgents,
            "create and change staff, see any token and audit",
        ),
    ];
    let roles = Role::ALL
        .iter()
        .map(|&role| RoleDto {
            name: role.as_str().to_owned(),
            permissions: actions
                .iter()
                .filter(|(action, _)| role >= action.min_role())
                .map(|(_, text)| (*text).to_owned())
                .collect(),
        })
        .collect();
    Ok(Json(roles))
}

/// The audit history of any object by id: agents, teams, tags, tokens (admins).
#[utoipa::path(get, path = "/audit/{object_id}", tag = "staff", params(("object_id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<AuditEventDto>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn object_audit(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(object_id): Path<String>,
) -> ApiResult<Json<Vec<AuditEventDto>>> {
    let object_id: uuid::Uuid = parse_id(&object_id)?;
    let events = state.app.object_audit(&principal, object_id).await?;
    Ok(Json(events.into_iter().map(AuditEventDto::from).collect()))
}

/// First-run set-up: spend the one-time token printed by the server to create the first admin.
#[utoipa::path(post, path = "/setup", tag = "setup", request_body = SetupDto,
    responses((status = 201, body = AgentDto), (status = 401, body = Problem, description = "Unknown, used or expired token, or already set up")))]
pub async fn setup(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<AgentDto>)> {
    let dto: SetupDto = parse_json(&headers, &body)?;
    let agent = state
        .app
        .complete_setup(&dto.setup_token, &dto.email, &dto.name, dto.password)
        .await?;
    Ok((StatusCode::CREATED, Json(agent.into())))
}
