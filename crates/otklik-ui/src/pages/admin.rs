//! The admin pages: agents (invite, role, teams, deactivate), teams, tags, the admin's own API
//! tokens, mailboxes ("test connection"), mail that went wrong (the quarantine, failed
//! replies), settings, and chat sites ([`chat_sites`]). Every page and action is for admins
//! only; anyone else gets the 403 page, and the use cases check the same rights again.

pub mod chat_sites;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use otklik_app::AppError;
use otklik_app::auth::NewAgentInput;
use otklik_app::mail::{IngestOutcome, MailboxCheck, MailboxInput, redact_url};
use otklik_app::staff::AgentPatch;
use otklik_domain::DomainError;
use otklik_domain::agent::{Agent, Role, Team};
use otklik_domain::email::EmailStatus;
use otklik_domain::ids::{AgentId, EmailId, MailboxId, TagId, TeamId, TokenId};
use otklik_domain::permission::{Action, Scope};
use serde::Deserialize;

use crate::UiState;
use crate::error::UiError;
use crate::i18n::Lang;
use crate::pages::auth::{FieldErrors, field_message};
use crate::pages::ticket::Choice;
use crate::pages::{Frame, Pairs, When, all_agents, html};
use crate::session::{Staff, random_secret};

/// The tabs of the admin pages.
const TABS: &[(&str, &str)] = &[
    ("agents", "admin-agents"),
    ("teams", "admin-teams"),
    ("tags", "admin-tags"),
    ("tokens", "admin-tokens"),
    ("mailboxes", "admin-mailboxes"),
    ("mail", "admin-mail"),
    ("chat-sites", "admin-chat-sites"),
    ("settings", "admin-settings"),
];

/// A tab link: (path segment, label, current).
#[derive(Debug, Clone)]
pub struct Tab {
    pub slug: &'static str,
    pub label: String,
    pub current: bool,
}

pub(crate) fn tabs(page: &Frame, current: &str) -> Vec<Tab> {
    TABS.iter()
        .map(|(slug, key)| Tab {
            slug,
            label: page.t(key),
            current: *slug == current,
        })
        .collect()
}

/// Admins only: the role, and for API-style narrowing nothing (sessions carry no scopes).
fn require_admin(staff: &Staff) -> Result<(), UiError> {
    staff
        .principal
        .require(Action::ManageAgents)
        .map_err(|_| UiError::Forbidden)
}

/// `?done=` keys the admin pages may show after a redirect.
pub(crate) fn done_message(lang: Lang, done: Option<&str>) -> Option<String> {
    let key = match done? {
        "saved" => "admin-done-saved",
        "created" => "admin-done-created",
        "deleted" => "admin-done-deleted",
        "revoked" => "admin-done-revoked",
        "retried" => "admin-done-retried",
        "rotated" => "admin-done-rotated",
        _ => return None,
    };
    Some(lang.t(key))
}

#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    pub(crate) done: Option<String>,
}

pub(crate) fn back(path: &str, done: &str) -> Response {
    Redirect::to(&format!("{path}?done={done}")).into_response()
}

pub(crate) fn unprocessable(response: Response) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, response).into_response()
}

/// How a refusal of a use case's field maps onto a form: (the use case's field name, the
/// form's field, the message key; `""` for the general message of [`field_message`]).
pub(crate) type FieldMap = [(&'static str, &'static str, &'static str)];

/// What admin form posts share. The form's own checks come first (`errors`); when they found
/// nothing, `save` runs, and a refusal that concerns a field (a validation, an unknown team or
/// mailbox) becomes a marked field in the form's language — so the caller answers either
/// "saved" or "the form again, as typed, with the fields marked". Anything else is an error
/// page.
pub(crate) async fn submit<T>(
    lang: Lang,
    mut errors: FieldErrors,
    fields: &FieldMap,
    save: impl std::future::Future<Output = Result<T, AppError>>,
) -> Result<Result<T, FieldErrors>, UiError> {
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let (field, reason) = match save.await {
        Ok(saved) => return Ok(Ok(saved)),
        Err(AppError::Domain(DomainError::Validation { field, reason })) => (field, reason),
        Err(AppError::InvalidReference { field, reason }) => (field, reason),
        Err(error) => return Err(error.into()),
    };
    let (form_field, key) = fields
        .iter()
        .find(|(name, _, _)| *name == field)
        .map_or((field, ""), |(_, form_field, key)| (*form_field, *key));
    let message = if key.is_empty() {
        field_message(lang, form_field, &reason)
    } else {
        lang.t(key)
    };
    errors.add(form_field, message);
    Ok(Err(errors))
}

/// `GET /admin`.
pub async fn admin_home(staff: Staff) -> Result<Response, UiError> {
    require_admin(&staff)?;
    Ok(Redirect::to("/admin/agents").into_response())
}

// --- Agents ---------------------------------------------------------------------------------

/// One agent in the list, with the choices of its edit form.
#[derive(Debug, Clone)]
pub struct AgentLine {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub active: bool,
    pub is_me: bool,
    pub roles: Vec<Choice>,
    pub teams: Vec<Choice>,
    pub team_names: String,
}

/// The invite form, as typed.
#[derive(Debug, Clone, Default)]
pub struct InviteForm {
    pub email: String,
    pub name: String,
    pub role: String,
    pub teams: Vec<String>,
}

/// A password made for a new agent, shown once.
#[derive(Debug, Clone)]
pub struct Issued {
    pub who: String,
    pub secret: String,
}

#[derive(Template)]
#[template(path = "admin_agents.html")]
struct AgentsTemplate {
    page: Frame,
    tabs: Vec<Tab>,
    agents: Vec<AgentLine>,
    invite: InviteForm,
    invite_roles: Vec<Choice>,
    invite_teams: Vec<Choice>,
    errors: FieldErrors,
    done: Option<String>,
    failure: Option<String>,
    issued: Option<Issued>,
}

fn role_choices(page: &Frame, selected: &str) -> Vec<Choice> {
    Role::ALL
        .iter()
        .map(|role| Choice {
            value: role.as_str().into(),
            label: page.label("role", role.as_str()),
            selected: role.as_str() == selected,
        })
        .collect()
}

fn team_choices(teams: &[Team], selected: &[String]) -> Vec<Choice> {
    teams
        .iter()
        .map(|team| Choice {
            value: team.id.to_string(),
            label: team.name.clone(),
            selected: selected.contains(&team.id.to_string()),
        })
        .collect()
}

struct AgentsState {
    invite: InviteForm,
    errors: FieldErrors,
    done: Option<String>,
    failure: Option<String>,
    issued: Option<Issued>,
}

async fn agents_page(
    state: &UiState,
    staff: &Staff,
    forms: AgentsState,
) -> Result<Response, UiError> {
    let app = &state.app;
    let (agents, teams) = tokio::join!(
        all_agents(app, &staff.principal),
        app.list_teams(&staff.principal)
    );
    let (agents, teams) = (agents?, teams?);
    let page = Frame::of(staff);
    let lines = agents
        .iter()
        .map(|agent: &Agent| {
            let selected: Vec<String> = agent.team_ids.iter().map(ToString::to_string).collect();
            AgentLine {
                id: agent.id.to_string(),
                name: agent.name.clone(),
                email: agent.email.clone(),
                role: agent.role.as_str(),
                active: agent.active,
                is_me: agent.id == staff.principal.agent_id,
                roles: role_choices(&page, agent.role.as_str()),
                teams: team_choices(&teams, &selected),
                team_names: teams
                    .iter()
                    .filter(|team| agent.team_ids.contains(&team.id))
                    .map(|team| team.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
        .collect();
    let invite_role = if forms.invite.role.is_empty() {
        Role::Agent.as_str().to_owned()
    } else {
        forms.invite.role.clone()
    };
    html(&AgentsTemplate {
        tabs: tabs(&page, "agents"),
        agents: lines,
        invite_roles: role_choices(&page, &invite_role),
        invite_teams: team_choices(&teams, &forms.invite.teams),
        invite: forms.invite,
        errors: forms.errors,
        done: forms.done,
        failure: forms.failure,
        issued: forms.issued,
        page,
    })
}

/// `GET /admin/agents`.
pub async fn agents(
    State(state): State<UiState>,
    staff: Staff,
    axum::extract::Query(query): axum::extract::Query<DoneQuery>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let done = done_message(staff.lang, query.done.as_deref());
    agents_page(
        &state,
        &staff,
        AgentsState {
            invite: InviteForm::default(),
            errors: FieldErrors::default(),
            done,
            failure: None,
            issued: None,
        },
    )
    .await
}

fn parse_team_ids(values: &[&str], errors: &mut FieldErrors, lang: Lang) -> Vec<TeamId> {
    let mut ids = Vec::new();
    for value in values {
        match value.parse::<TeamId>() {
            Ok(id) => ids.push(id),
            Err(_) => errors.add("teams", lang.t("form-error-invalid")),
        }
    }
    ids
}

/// A refused staff change, as the field it concerns.
fn staff_refusal(error: AppError, lang: Lang, errors: &mut FieldErrors) -> Result<(), UiError> {
    match error {
        AppError::Domain(DomainError::Validation { field, reason }) => {
            let field = if field == "team_ids" { "teams" } else { field };
            errors.add(field, field_message(lang, field, &reason));
        }
        AppError::Conflict {
            code: "email_taken",
            ..
        } => errors.add("email", lang.t("form-error-email-taken")),
        AppError::Conflict { .. } => errors.add("name", lang.t("form-error-name-taken")),
        AppError::InvalidReference { .. } => errors.add("teams", lang.t("form-error-invalid")),
        other => return Err(other.into()),
    }
    Ok(())
}

/// `POST /admin/agents`: invites an agent with the password the admin typed, or a generated one
/// shown once on the answer.
pub async fn invite(
    State(state): State<UiState>,
    staff: Staff,
    body: Bytes,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let form = Pairs::parse(&body);
    let lang = staff.lang;
    let invite = InviteForm {
        email: form.get("email").trim().to_owned(),
        name: form.get("name").trim().to_owned(),
        role: form.get("role").to_owned(),
        teams: form.all("teams").into_iter().map(str::to_owned).collect(),
    };
    let mut errors = FieldErrors::default();
    let role = invite.role.parse::<Role>().unwrap_or_else(|_| {
        errors.add("role", lang.t("form-error-invalid"));
        Role::Agent
    });
    let team_ids = parse_team_ids(&form.all("teams"), &mut errors, lang);
    let typed = form.get("password");
    let (password, generated) = if typed.is_empty() {
        (random_secret()[..20].to_owned(), true)
    } else {
        (typed.to_owned(), false)
    };
    if errors.is_empty() {
        let input = NewAgentInput {
            email: invite.email.clone(),
            name: invite.name.clone(),
            role,
            team_ids,
            password: Some(password.clone()),
        };
        match state.app.create_agent(&staff.principal, input).await {
            Ok(agent) => {
                return agents_page(
                    &state,
                    &staff,
                    AgentsState {
                        invite: InviteForm::default(),
                        errors: FieldErrors::default(),
                        done: Some(lang.with("admin-agent-invited", &agent.name)),
                        failure: None,
                        issued: generated.then(|| Issued {
                            who: agent.email.clone(),
                            secret: password,
                        }),
                    },
                )
                .await;
            }
            Err(error) => staff_refusal(error, lang, &mut errors)?,
        }
    }
    let response = agents_page(
        &state,
        &staff,
        AgentsState {
            invite,
            errors,
            done: None,
            failure: None,
            issued: None,
        },
    )
    .await?;
    Ok(unprocessable(response))
}

fn parse_agent_id(raw: &str) -> Result<AgentId, UiError> {
    raw.parse().map_err(|_| UiError::NotFound)
}

/// `POST /admin/agents/{id}`: the role and teams.
pub async fn update_agent(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let id = parse_agent_id(&id)?;
    let form = Pairs::parse(&body);
    let lang = staff.lang;
    let mut errors = FieldErrors::default();
    let role = form.get("role").parse::<Role>().ok();
    if role.is_none() {
        errors.add("role", lang.t("form-error-invalid"));
    }
    let team_ids = parse_team_ids(&form.all("teams"), &mut errors, lang);
    if errors.is_empty() {
        let patch = AgentPatch {
            role,
            team_ids: Some(team_ids),
            ..AgentPatch::default()
        };
        match state.app.update_agent(&staff.principal, id, patch).await {
            Ok(_) => return Ok(back("/admin/agents", "saved")),
            Err(error) => staff_refusal(error, lang, &mut errors)?,
        }
    }
    let failure = Some(lang.t("admin-agent-not-saved"));
    let response = agents_page(
        &state,
        &staff,
        AgentsState {
            invite: InviteForm::default(),
            errors,
            done: None,
            failure,
            issued: None,
        },
    )
    .await?;
    Ok(unprocessable(response))
}

/// `POST /admin/agents/{id}/active`: deactivates (`active=0`) or reactivates (`active=1`).
pub async fn set_active(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let id = parse_agent_id(&id)?;
    let active = match Pairs::parse(&body).get("active") {
        "1" => true,
        "0" => false,
        _ => return Err(UiError::BadRequest),
    };
    let patch = AgentPatch {
        active: Some(active),
        ..AgentPatch::default()
    };
    match state.app.update_agent(&staff.principal, id, patch).await {
        Ok(_) => Ok(back("/admin/agents", "saved")),
        Err(AppError::Domain(DomainError::Validation { .. })) => {
            let response = agents_page(
                &state,
                &staff,
                AgentsState {
                    invite: InviteForm::default(),
                    errors: FieldErrors::default(),
                    done: None,
                    failure: Some(staff.lang.t("admin-cannot-deactivate-self")),
                    issued: None,
                },
            )
            .await?;
            Ok(unprocessable(response))
        }
        Err(error) => Err(error.into()),
    }
}

// --- Teams and tags -------------------------------------------------------------------------

/// A team or tag in a list.
#[derive(Debug, Clone)]
pub struct Named {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "admin_teams.html")]
struct TeamsTemplate {
    page: Frame,
    tabs: Vec<Tab>,
    teams: Vec<Named>,
    /// The new team's name as typed, and the id of a team whose rename failed.
    name: String,
    rename_id: String,
    errors: FieldErrors,
    done: Option<String>,
}

async fn teams_page(
    state: &UiState,
    staff: &Staff,
    name: String,
    rename_id: String,
    errors: FieldErrors,
    done: Option<String>,
) -> Result<Response, UiError> {
    let teams = state.app.list_teams(&staff.principal).await?;
    let page = Frame::of(staff);
    html(&TeamsTemplate {
        tabs: tabs(&page, "teams"),
        teams: teams
            .into_iter()
            .map(|team| Named {
                id: team.id.to_string(),
                name: team.name,
            })
            .collect(),
        name,
        rename_id,
        errors,
        done,
        page,
    })
}

/// `GET /admin/teams`.
pub async fn teams(
    State(state): State<UiState>,
    staff: Staff,
    axum::extract::Query(query): axum::extract::Query<DoneQuery>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let done = done_message(staff.lang, query.done.as_deref());
    teams_page(
        &state,
        &staff,
        String::new(),
        String::new(),
        FieldErrors::default(),
        done,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct NameForm {
    #[serde(default)]
    name: String,
}

fn name_refusal(error: AppError, lang: Lang) -> Result<FieldErrors, UiError> {
    let mut errors = FieldErrors::default();
    match error {
        AppError::Domain(DomainError::Validation { reason, .. }) => {
            errors.add("name", field_message(lang, "name", &reason));
        }
        AppError::Conflict { .. } => errors.add("name", lang.t("form-error-name-taken")),
        other => return Err(other.into()),
    }
    Ok(errors)
}

/// `POST /admin/teams`.
pub async fn create_team(
    State(state): State<UiState>,
    staff: Staff,
    axum::Form(form): axum::Form<NameForm>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    match state.app.create_team(&staff.principal, &form.name).await {
        Ok(_) => Ok(back("/admin/teams", "created")),
        Err(error) => {
            let errors = name_refusal(error, staff.lang)?;
            let response =
                teams_page(&state, &staff, form.name, String::new(), errors, None).await?;
            Ok(unprocessable(response))
        }
    }
}

/// `POST /admin/teams/{id}`: renames.
pub async fn rename_team(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<NameForm>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let team_id: TeamId = id.parse().map_err(|_| UiError::NotFound)?;
    match state
        .app
        .rename_team(&staff.principal, team_id, &form.name)
        .await
    {
        Ok(_) => Ok(back("/admin/teams", "saved")),
        Err(AppError::NotFound { .. }) => Err(UiError::NotFound),
        Err(error) => {
            // The message goes next to the rename field of that team, not the "new team" one.
            let refused = name_refusal(error, staff.lang)?;
            let mut errors = FieldErrors::default();
            errors.add("rename", refused.get("name").unwrap_or_default().to_owned());
            let response = teams_page(&state, &staff, String::new(), id, errors, None).await?;
            Ok(unprocessable(response))
        }
    }
}

/// `POST /admin/teams/{id}/delete`.
pub async fn delete_team(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let team_id: TeamId = id.parse().map_err(|_| UiError::NotFound)?;
    state.app.delete_team(&staff.principal, team_id).await?;
    Ok(back("/admin/teams", "deleted"))
}

#[derive(Template)]
#[template(path = "admin_tags.html")]
struct TagsTemplate {
    page: Frame,
    tabs: Vec<Tab>,
    tags: Vec<Named>,
    name: String,
    errors: FieldErrors,
    done: Option<String>,
}

async fn tags_page(
    state: &UiState,
    staff: &Staff,
    name: String,
    errors: FieldErrors,
    done: Option<String>,
) -> Result<Response, UiError> {
    let tags = state.app.list_tags(&staff.principal).await?;
    let page = Frame::of(staff);
    html(&TagsTemplate {
        tabs: tabs(&page, "tags"),
        tags: tags
            .into_iter()
            .map(|tag| Named {
                id: tag.id.to_string(),
                name: tag.name,
            })
            .collect(),
        name,
        errors,
        done,
        page,
    })
}

/// `GET /admin/tags`.
pub async fn tags(
    State(state): State<UiState>,
    staff: Staff,
    axum::extract::Query(query): axum::extract::Query<DoneQuery>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let done = done_message(staff.lang, query.done.as_deref());
    tags_page(&state, &staff, String::new(), FieldErrors::default(), done).await
}

/// `POST /admin/tags`.
pub async fn create_tag(
    State(state): State<UiState>,
    staff: Staff,
    axum::Form(form): axum::Form<NameForm>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    match state.app.create_tag(&staff.principal, &form.name).await {
        Ok(_) => Ok(back("/admin/tags", "created")),
        Err(error) => {
            let errors = name_refusal(error, staff.lang)?;
            let response = tags_page(&state, &staff, form.name, errors, None).await?;
            Ok(unprocessable(response))
        }
    }
}

/// `POST /admin/tags/{id}/delete`.
pub async fn delete_tag(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let tag_id: TagId = id.parse().map_err(|_| UiError::NotFound)?;
    state.app.delete_tag(&staff.principal, tag_id).await?;
    Ok(back("/admin/tags", "deleted"))
}

// --- API tokens -----------------------------------------------------------------------------

/// One of the admin's tokens.
#[derive(Debug, Clone)]
pub struct TokenLine {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created: When,
    pub expires: Option<When>,
    pub revoked: Option<When>,
}

/// The new-token form, as typed.
#[derive(Debug, Clone, Default)]
pub struct TokenForm {
    pub name: String,
    pub scopes: Vec<String>,
    pub days: String,
}

#[derive(Template)]
#[template(path = "admin_tokens.html")]
struct TokensTemplate {
    page: Frame,
    tabs: Vec<Tab>,
    tokens: Vec<TokenLine>,
    form: TokenForm,
    scopes: Vec<Choice>,
    errors: FieldErrors,
    done: Option<String>,
    /// The secret of the token just created: shown once, never stored.
    issued: Option<Issued>,
}

async fn tokens_page(
    state: &UiState,
    staff: &Staff,
    form: TokenForm,
    errors: FieldErrors,
    done: Option<String>,
    issued: Option<Issued>,
) -> Result<Response, UiError> {
    let mut records = state
        .app
        .list_tokens(&staff.principal, staff.principal.agent_id)
        .await?;
    records.sort_by_key(|token| std::cmp::Reverse(token.created_at));
    let page = Frame::of(staff);
    let checked: Vec<String> = if form.scopes.is_empty() && errors.is_empty() {
        vec![Scope::TicketsRead.as_str().to_owned()]
    } else {
        form.scopes.clone()
    };
    html(&TokensTemplate {
        tabs: tabs(&page, "tokens"),
        tokens: records
            .into_iter()
            .map(|token| TokenLine {
                id: token.id.to_string(),
                name: token.name,
                prefix: token.prefix,
                scopes: token
                    .scopes
                    .iter()
                    .map(|scope| scope.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                created: When::of(token.created_at),
                expires: token.expires_at.map(When::of),
                revoked: token.revoked_at.map(When::of),
            })
            .collect(),
        scopes: Scope::ALL
            .iter()
            .map(|scope| Choice {
                value: scope.as_str().into(),
                label: page.t(&format!("scope-{}", scope.as_str().replace(':', "-"))),
                selected: checked.iter().any(|name| name == scope.as_str()),
            })
            .collect(),
        form,
        errors,
        done,
        issued,
        page,
    })
}

/// `GET /admin/tokens`: the admin's own tokens.
pub async fn tokens(
    State(state): State<UiState>,
    staff: Staff,
    axum::extract::Query(query): axum::extract::Query<DoneQuery>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let done = done_message(staff.lang, query.done.as_deref());
    tokens_page(
        &state,
        &staff,
        TokenForm::default(),
        FieldErrors::default(),
        done,
        None,
    )
    .await
}

/// `POST /admin/tokens`: creates a token and shows its secret once.
pub async fn create_token(
    State(state): State<UiState>,
    staff: Staff,
    body: Bytes,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let pairs = Pairs::parse(&body);
    let lang = staff.lang;
    let form = TokenForm {
        name: pairs.get("name").to_owned(),
        scopes: pairs.all("scopes").into_iter().map(str::to_owned).collect(),
        days: pairs.get("days").trim().to_owned(),
    };
    let mut errors = FieldErrors::default();
    let mut scopes = std::collections::BTreeSet::new();
    for name in &form.scopes {
        match name.parse::<Scope>() {
            Ok(scope) => {
                scopes.insert(scope);
            }
            Err(_) => errors.add("scopes", lang.t("form-error-invalid")),
        }
    }
    if scopes.is_empty() && errors.get("scopes").is_none() {
        errors.add("scopes", lang.t("admin-token-scopes-required"));
    }
    let expires_at = match form.days.as_str() {
        "" => None,
        raw => match raw.parse::<i64>() {
            Ok(days) if (1..=3650).contains(&days) => state
                .app
                .clock
                .now()
                .checked_add(jiff::SignedDuration::from_hours(days * 24))
                .ok(),
            _ => {
                errors.add("days", lang.t("admin-token-days-invalid"));
                None
            }
        },
    };
    if errors.is_empty() {
        match state
            .app
            .issue_token(
                &staff.principal,
                staff.principal.agent_id,
                &form.name,
                scopes,
                expires_at,
            )
            .await
        {
            Ok(issued) => {
                return tokens_page(
                    &state,
                    &staff,
                    TokenForm::default(),
                    FieldErrors::default(),
                    Some(lang.t("admin-token-created")),
                    Some(Issued {
                        who: issued.record.name,
                        secret: issued.secret,
                    }),
                )
                .await;
            }
            Err(AppError::Domain(DomainError::Validation { field, reason })) => {
                let field = if field == "expires_at" { "days" } else { field };
                errors.add(field, field_message(lang, field, &reason));
            }
            Err(error) => return Err(error.into()),
        }
    }
    let response = tokens_page(&state, &staff, form, errors, None, None).await?;
    Ok(unprocessable(response))
}

/// `POST /admin/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let token_id: TokenId = id.parse().map_err(|_| UiError::NotFound)?;
    // Only the admin's own tokens are listed here; another agent's id is not found.
    let own = state
        .app
        .list_tokens(&staff.principal, staff.principal.agent_id)
        .await?;
    if !own.iter().any(|token| token.id == token_id) {
        return Err(UiError::NotFound);
    }
    state.app.revoke_token(&staff.principal, token_id).await?;
    Ok(back("/admin/tokens", "revoked"))
}

// --- Mailboxes ------------------------------------------------------------------------------

/// A mailbox with its secrets hidden.
#[derive(Debug, Clone)]
pub struct MailboxLine {
    pub id: String,
    pub name: String,
    pub address: String,
    pub imap: Option<String>,
    pub smtp: Option<String>,
    pub auto_acknowledge: bool,
    /// What "test connection" found, if it was just run: (server, ok, detail).
    pub check: Vec<(&'static str, bool, String)>,
}

/// The new-mailbox form, as typed.
#[derive(Debug, Clone, Default)]
pub struct MailboxForm {
    pub name: String,
    pub address: String,
    pub imap_url: String,
    pub smtp_url: String,
    pub auto_acknowledge: bool,
}

#[derive(Template)]
#[template(path = "admin_mailboxes.html")]
struct MailboxesTemplate {
    page: Frame,
    tabs: Vec<Tab>,
    mailboxes: Vec<MailboxLine>,
    form: MailboxForm,
    errors: FieldErrors,
    done: Option<String>,
    failure: Option<String>,
}

async fn mailboxes_page(
    state: &UiState,
    staff: &Staff,
    form: MailboxForm,
    errors: FieldErrors,
    done: Option<String>,
    checked: Option<(MailboxId, MailboxCheck)>,
    failure: Option<String>,
) -> Result<Response, UiError> {
    let mailboxes = state.app.list_mailboxes(&staff.principal).await?;
    let page = Frame::of(staff);
    let lang = staff.lang;
    let lines = mailboxes
        .into_iter()
        .map(|mailbox| {
            let mut check = Vec::new();
            if let Some((id, result)) = &checked
                && *id == mailbox.id
            {
                for (server, outcome) in [("IMAP", &result.imap), ("SMTP", &result.smtp)] {
                    match outcome {
                        Some(Ok(())) => check.push((server, true, lang.t("admin-check-ok"))),
                        Some(Err(reason)) => check.push((server, false, reason.clone())),
                        None => check.push((server, true, lang.t("admin-check-none"))),
                    }
                }
            }
            MailboxLine {
                id: mailbox.id.to_string(),
                name: mailbox.name,
                address: mailbox.address,
                imap: mailbox.imap_url.as_deref().map(redact_url),
                smtp: mailbox.smtp_url.as_deref().map(redact_url),
                auto_acknowledge: mailbox.auto_acknowledge,
                check,
            }
        })
        .collect();
    html(&MailboxesTemplate {
        tabs: tabs(&page, "mailboxes"),
        mailboxes: lines,
        form,
        errors,
        done,
        failure,
        page,
    })
}

/// `GET /admin/mailboxes`.
pub async fn mailboxes(
    State(state): State<UiState>,
    staff: Staff,
    axum::extract::Query(query): axum::extract::Query<DoneQuery>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let done = done_message(staff.lang, query.done.as_deref());
    mailboxes_page(
        &state,
        &staff,
        MailboxForm::default(),
        FieldErrors::default(),
        done,
        None,
        None,
    )
    .await
}

/// `POST /admin/mailboxes`.
pub async fn create_mailbox(
    State(state): State<UiState>,
    staff: Staff,
    body: Bytes,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let pairs = Pairs::parse(&body);
    let form = MailboxForm {
        name: pairs.get("name").to_owned(),
        address: pairs.get("address").to_owned(),
        imap_url: pairs.get("imap_url").to_owned(),
        smtp_url: pairs.get("smtp_url").to_owned(),
        auto_acknowledge: pairs.get("auto_acknowledge") == "1",
    };
    let input = MailboxInput {
        name: form.name.clone(),
        address: form.address.clone(),
        imap_url: Some(form.imap_url.clone()),
        smtp_url: Some(form.smtp_url.clone()),
        auto_acknowledge: form.auto_acknowledge,
    };
    let lang = staff.lang;
    let mut errors = FieldErrors::default();
    match state.app.create_mailbox(&staff.principal, input).await {
        Ok(_) => return Ok(back("/admin/mailboxes", "created")),
        Err(AppError::Domain(DomainError::Validation { field, .. })) => {
            let key = match field {
                "imap_url" | "smtp_url" => "admin-mailbox-url-invalid",
                "address" => "form-error-email",
                "name" => "admin-mailbox-name-invalid",
                _ => "form-error-invalid",
            };
            errors.add(field, lang.t(key));
        }
        Err(AppError::Conflict { code, .. }) => {
            if code == "mailbox_address_taken" {
                errors.add("address", lang.t("admin-mailbox-address-taken"));
            } else {
                errors.add("name", lang.t("form-error-name-taken"));
            }
        }
        Err(error) => return Err(error.into()),
    }
    let response = mailboxes_page(&state, &staff, form, errors, None, None, None).await?;
    Ok(unprocessable(response))
}

/// `POST /admin/mailboxes/{id}/check`: "test connection" (a POST: it talks to the servers and
/// may log in, which is not something a link should do).
pub async fn check_mailbox(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let mailbox_id: MailboxId = id.parse().map_err(|_| UiError::NotFound)?;
    let (checked, failure) = match state.app.check_mailbox(&staff.principal, mailbox_id).await {
        Ok(result) => (Some((mailbox_id, result)), None),
        Err(AppError::Conflict {
            code: "mail_transport_unavailable",
            ..
        }) => (None, Some(staff.lang.t("admin-check-unavailable"))),
        Err(error) => return Err(error.into()),
    };
    mailboxes_page(
        &state,
        &staff,
        MailboxForm::default(),
        FieldErrors::default(),
        None,
        checked,
        failure,
    )
    .await
}

// --- Mail that went wrong ---------------------------------------------------------------

/// An e-mail in the quarantine or a failed reply.
#[derive(Debug, Clone)]
pub struct MailLine {
    pub id: String,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub reason: String,
    pub when: When,
    pub ticket_id: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_mail.html")]
struct MailTemplate {
    page: Frame,
    tabs: Vec<Tab>,
    quarantined: Vec<MailLine>,
    failed: Vec<MailLine>,
    done: Option<String>,
    failure: Option<String>,
}

/// How many e-mails of each list the page shows (the newest).
const MAIL_PAGE: u32 = 100;

async fn mail_page(
    state: &UiState,
    staff: &Staff,
    done: Option<String>,
    failure: Option<String>,
) -> Result<Response, UiError> {
    let app = &state.app;
    let (quarantined, failed) = tokio::join!(
        app.list_emails_with_status(&staff.principal, EmailStatus::Quarantined, None, MAIL_PAGE),
        app.list_emails_with_status(&staff.principal, EmailStatus::Failed, None, MAIL_PAGE),
    );
    let line = |email: otklik_domain::email::EmailRecord| MailLine {
        id: email.id.to_string(),
        subject: email.subject,
        from: email.from_address.unwrap_or_default(),
        to: email.recipients.join(", "),
        reason: email.status_reason.unwrap_or_default(),
        when: When::of(email.created_at),
        ticket_id: email.ticket_id.map(|id| id.to_string()),
    };
    let page = Frame::of(staff);
    html(&MailTemplate {
        tabs: tabs(&page, "mail"),
        quarantined: quarantined?.into_iter().map(line).collect(),
        failed: failed?.into_iter().map(line).collect(),
        done,
        failure,
        page,
    })
}

/// `GET /admin/mail`: the quarantine and failed replies.
pub async fn mail(
    State(state): State<UiState>,
    staff: Staff,
    axum::extract::Query(query): axum::extract::Query<DoneQuery>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let done = done_message(staff.lang, query.done.as_deref());
    mail_page(&state, &staff, done, None).await
}

/// `POST /admin/emails/{id}/reprocess`: runs a quarantined e-mail through ingestion again and
/// says what became of it.
pub async fn reprocess(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let email_id: EmailId = id.parse().map_err(|_| UiError::NotFound)?;
    let lang = staff.lang;
    let (done, failure) = match state.app.reprocess_email(&staff.principal, email_id).await {
        Ok(IngestOutcome::Ticket { number, .. }) => (
            Some(lang.with("admin-reprocessed-ticket", &number.to_string())),
            None,
        ),
        Ok(IngestOutcome::Duplicate { .. }) => (Some(lang.t("admin-reprocessed-duplicate")), None),
        Ok(IngestOutcome::Quarantined { reason, .. }) => (
            None,
            Some(lang.with("admin-reprocessed-quarantined", &reason)),
        ),
        Ok(IngestOutcome::Ignored { reason, .. }) => {
            (Some(lang.with("admin-reprocessed-ignored", &reason)), None)
        }
        Err(AppError::Domain(DomainError::Validation { .. })) => {
            (None, Some(lang.t("admin-reprocess-not-quarantined")))
        }
        Err(error) => return Err(error.into()),
    };
    mail_page(&state, &staff, done, failure).await
}

// --- Settings -------------------------------------------------------------------------------

/// The settings form, as shown or as typed.
#[derive(Debug, Clone, Default)]
pub struct SettingsForm {
    pub helpdesk_name: String,
    pub default_language: String,
    pub public_base_url: String,
    pub system_mailbox_id: String,
}

#[derive(Template)]
#[template(path = "admin_settings.html")]
struct SettingsTemplate {
    page: Frame,
    tabs: Vec<Tab>,
    form: SettingsForm,
    languages: Vec<Choice>,
    mailboxes: Vec<Choice>,
    errors: FieldErrors,
    done: Option<String>,
}

async fn settings_page(
    state: &UiState,
    staff: &Staff,
    form: Option<SettingsForm>,
    errors: FieldErrors,
    done: Option<String>,
) -> Result<Response, UiError> {
    let (settings, mailboxes) = state.app.settings_page(&staff.principal).await?;
    let mut page = Frame::of(staff);
    // A just-saved name shows at once (the staff frame was read before the save).
    page.brand.clone_from(&settings.helpdesk_name);
    let form = form.unwrap_or_else(|| SettingsForm {
        helpdesk_name: settings.helpdesk_name.clone(),
        default_language: settings.default_language.clone().unwrap_or_default(),
        public_base_url: settings.public_base_url.clone().unwrap_or_default(),
        system_mailbox_id: settings
            .system_mailbox_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
    });
    let languages = std::iter::once((String::new(), page.t("admin-settings-language-browser")))
        .chain(
            Lang::ALL
                .iter()
                .map(|lang| (lang.code().to_owned(), lang.native_name().to_owned())),
        )
        .map(|(value, label)| Choice {
            selected: value == form.default_language,
            value,
            label,
        })
        .collect();
    let mailboxes = std::iter::once((String::new(), page.t("admin-settings-mailbox-first")))
        .chain(mailboxes.into_iter().map(|mailbox| {
            (
                mailbox.id.to_string(),
                format!("{} <{}>", mailbox.name, mailbox.address),
            )
        }))
        .map(|(value, label)| Choice {
            selected: value == form.system_mailbox_id,
            value,
            label,
        })
        .collect();
    html(&SettingsTemplate {
        tabs: tabs(&page, "settings"),
        form,
        languages,
        mailboxes,
        errors,
        done,
        page,
    })
}

/// `GET /admin/settings`.
pub async fn settings(
    State(state): State<UiState>,
    staff: Staff,
    axum::extract::Query(query): axum::extract::Query<DoneQuery>,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let done = done_message(staff.lang, query.done.as_deref());
    settings_page(&state, &staff, None, FieldErrors::default(), done).await
}

/// `POST /admin/settings`: saves, or shows the form again with the input kept and the bad
/// field marked.
pub async fn save_settings(
    State(state): State<UiState>,
    staff: Staff,
    body: Bytes,
) -> Result<Response, UiError> {
    require_admin(&staff)?;
    let pairs = Pairs::parse(&body);
    let form = SettingsForm {
        helpdesk_name: pairs.get("helpdesk_name").to_owned(),
        default_language: pairs.get("default_language").to_owned(),
        public_base_url: pairs.get("public_base_url").to_owned(),
        system_mailbox_id: pairs.get("system_mailbox_id").to_owned(),
    };
    let input = otklik_app::settings::SettingsInput {
        helpdesk_name: form.helpdesk_name.clone(),
        default_language: form.default_language.clone(),
        public_base_url: form.public_base_url.clone(),
        system_mailbox_id: form.system_mailbox_id.clone(),
    };
    let lang = staff.lang;
    let mut errors = FieldErrors::default();
    match state.app.update_settings(&staff.principal, &input).await {
        Ok(_) => return Ok(back("/admin/settings", "saved")),
        Err(AppError::Domain(DomainError::Validation { field, reason })) => {
            let message = match field {
                "public_base_url" => lang.t("admin-settings-url-invalid"),
                _ => field_message(lang, field, &reason),
            };
            errors.add(field, message);
        }
        Err(AppError::InvalidReference { field, .. }) => {
            errors.add(field, lang.t("admin-settings-mailbox-unknown"));
        }
        Err(error) => return Err(error.into()),
    }
    let response = settings_page(&state, &staff, Some(form), errors, None).await?;
    Ok(unprocessable(response))
}
