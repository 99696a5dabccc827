//! Working on many tickets at once: filters beyond the saved views (and saving one as a personal
//! view), and bulk actions on the rows ticked in a list (assign, status, priority, tag, merge).
//!
//! The store lists tickets newest-updated first only (its keyset index ends in that order), so
//! there is no other sorting to offer without a new index.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use otklik_app::AppError;
use otklik_domain::DomainError;
use otklik_domain::ids::{AgentId, TeamId, TicketId};
use otklik_domain::ticket::{Channel, Priority, Ticket, TicketPatch, TicketStatus};
use otklik_domain::view::{ViewAssignee, ViewFilter, ViewTeam};
use otklik_store::{AssigneeFilter, TeamFilter, TicketFilter};
use serde::Deserialize;

use crate::UiState;
use crate::error::UiError;
use crate::i18n::Lang;
use crate::pages::auth::FieldErrors;
use crate::pages::inbox::{InboxTemplate, PAGE_SIZE, RowsTemplate, view_links};
use crate::pages::ticket::Choice;
use crate::pages::{Frame, Names, Pairs, TicketRow, all_agents, html, url_encode};
use crate::session::{Staff, safe_next};

/// Most tickets one bulk action changes (a page and a half of a list).
pub const MAX_BULK: usize = 100;

/// The choices of the bulk bar under a list.
#[derive(Debug, Clone, Default)]
pub struct BulkChoices {
    pub agents: Vec<Choice>,
    pub statuses: Vec<Choice>,
    pub priorities: Vec<Choice>,
}

impl BulkChoices {
    pub async fn load(
        state: &UiState,
        staff: &Staff,
        page: &Frame,
    ) -> Result<BulkChoices, UiError> {
        let agents = all_agents(&state.app, &staff.principal).await?;
        Ok(BulkChoices {
            agents: agents
                .into_iter()
                .filter(|agent| agent.active)
                .map(|agent| Choice {
                    value: agent.id.to_string(),
                    label: agent.name,
                    selected: false,
                })
                .collect(),
            statuses: choices(
                page,
                "status",
                TicketStatus::ALL.iter().map(|s| s.as_str()),
                "",
            ),
            priorities: choices(
                page,
                "priority",
                Priority::ALL.iter().map(|p| p.as_str()),
                "",
            ),
        })
    }
}

fn choices<'a>(
    page: &Frame,
    kind: &str,
    codes: impl Iterator<Item = &'a str>,
    selected: &str,
) -> Vec<Choice> {
    codes
        .map(|code| Choice {
            value: code.to_owned(),
            label: page.label(kind, code),
            selected: code == selected,
        })
        .collect()
}

/// The message after a bulk action (`?done=bulk&ok=3&failed=1`).
pub fn done_message(lang: Lang, done: Option<&str>, ok: i64, failed: i64) -> Option<String> {
    match done? {
        "bulk" => {
            let mut text = lang.count("bulk-done", ok);
            if failed > 0 {
                text.push(' ');
                text.push_str(&lang.count("bulk-failed", failed));
            }
            Some(text)
        }
        "view" => Some(lang.t("view-created")),
        _ => None,
    }
}

// --- Filters --------------------------------------------------------------------------------

/// The filter form, as typed (and as carried in the URL).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FilterForm {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub priority: String,
    /// `""` any, `me`, `none`, or an agent id.
    #[serde(default)]
    pub assignee: String,
    /// `""` any, `none`, or a team id.
    #[serde(default)]
    pub team: String,
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub channel: String,
    /// A UTC day (`YYYY-MM-DD`, as a date input sends it): updated on it or later.
    #[serde(default)]
    pub updated_from: String,
    /// A UTC day: updated on it or earlier.
    #[serde(default)]
    pub updated_to: String,
    #[serde(default)]
    pub after: Option<String>,
    /// The sort code (`updated-desc`…); empty is the default.
    #[serde(default)]
    pub sort: String,
    /// The choices, filled in for drawing.
    #[serde(skip)]
    pub statuses: Vec<Choice>,
    #[serde(skip)]
    pub priorities: Vec<Choice>,
    #[serde(skip)]
    pub assignees: Vec<Choice>,
    #[serde(skip)]
    pub teams: Vec<Choice>,
    #[serde(skip)]
    pub channels: Vec<Choice>,
    #[serde(skip)]
    pub sorts: Vec<Choice>,
    #[serde(skip)]
    pub errors: FieldErrors,
    #[serde(skip)]
    pub view_name: String,
}

impl FilterForm {
    /// The query string of the filter (without the cursor).
    pub fn query(&self) -> String {
        [
            ("status", &self.status),
            ("priority", &self.priority),
            ("assignee", &self.assignee),
            ("team", &self.team),
            ("tag", &self.tag),
            ("channel", &self.channel),
            ("updated_from", &self.updated_from),
            ("updated_to", &self.updated_to),
            ("sort", &self.sort),
        ]
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", url_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
    }

    /// Whether a saved view can hold this filter (views know status, priority, assignee and
    /// team: what the maintained counters count).
    pub fn saveable(&self) -> bool {
        self.tag.is_empty()
            && self.channel.is_empty()
            && self.updated_from.is_empty()
            && self.updated_to.is_empty()
    }

    /// Whether anything narrows the tickets (the sort and the page do not).
    pub fn narrows(&self) -> bool {
        [
            &self.status,
            &self.priority,
            &self.assignee,
            &self.team,
            &self.channel,
            &self.tag,
            &self.updated_from,
            &self.updated_to,
        ]
        .iter()
        .any(|value| !value.trim().is_empty())
    }

    pub(crate) fn to_filter(&self, staff: &Staff, errors: &mut FieldErrors) -> TicketFilter {
        let lang = staff.lang;
        let mut filter = TicketFilter::default();
        if !self.status.is_empty() {
            match self.status.parse::<TicketStatus>() {
                Ok(status) => filter.statuses = vec![status],
                Err(_) => errors.add("status", lang.t("form-error-invalid")),
            }
        }
        if !self.priority.is_empty() {
            match self.priority.parse::<Priority>() {
                Ok(priority) => filter.priorities = vec![priority],
                Err(_) => errors.add("priority", lang.t("form-error-invalid")),
            }
        }
        filter.assignee = match self.assignee.as_str() {
            "" => None,
            "me" => Some(AssigneeFilter::Agent(staff.principal.agent_id)),
            "none" => Some(AssigneeFilter::Unassigned),
            raw => match raw.parse::<AgentId>() {
                Ok(id) => Some(AssigneeFilter::Agent(id)),
                Err(_) => {
                    errors.add("assignee", lang.t("form-error-invalid"));
                    None
                }
            },
        };
        filter.team = match self.team.as_str() {
            "" => None,
            "none" => Some(TeamFilter::NoTeam),
            raw => match raw.parse::<TeamId>() {
                Ok(id) => Some(TeamFilter::Team(id)),
                Err(_) => {
                    errors.add("team", lang.t("form-error-invalid"));
                    None
                }
            },
        };
        if !self.channel.is_empty() {
            match self.channel.parse::<Channel>() {
                Ok(channel) => filter.channels = vec![channel],
                Err(_) => errors.add("channel", lang.t("form-error-invalid")),
            }
        }
        let tag = self.tag.trim().to_lowercase();
        if !tag.is_empty() {
            filter.tag = Some(tag);
        }
        let from = utc_day(&self.updated_from, "updated_from", lang, errors);
        let to = utc_day(&self.updated_to, "updated_to", lang, errors);
        if let (Some(from), Some(to)) = (from, to)
            && to < from
        {
            errors.add("updated_to", lang.t("filter-error-dates"));
        }
        filter.updated_since = from.map(|day| day.start);
        // The last day counts whole: before the start of the next one.
        filter.updated_before = to.map(|day| day.end);
        filter
    }

    fn to_view_filter(&self) -> Option<ViewFilter> {
        Some(ViewFilter {
            statuses: match self.status.as_str() {
                "" => Vec::new(),
                raw => vec![raw.parse().ok()?],
            },
            priorities: match self.priority.as_str() {
                "" => Vec::new(),
                raw => vec![raw.parse().ok()?],
            },
            assignee: match self.assignee.as_str() {
                "" => None,
                "me" => Some(ViewAssignee::Me),
                "none" => Some(ViewAssignee::Nobody),
                raw => Some(ViewAssignee::Agent(raw.parse().ok()?)),
            },
            team: match self.team.as_str() {
                "" => None,
                "none" => Some(ViewTeam::NoTeam),
                raw => Some(ViewTeam::Team(raw.parse().ok()?)),
            },
            idle_days: None,
        })
    }

    pub(crate) async fn fill_choices(
        &mut self,
        state: &UiState,
        staff: &Staff,
        page: &Frame,
    ) -> Result<(), UiError> {
        let (agents, teams) = tokio::join!(
            all_agents(&state.app, &staff.principal),
            state.app.list_teams(&staff.principal)
        );
        self.statuses = choices(
            page,
            "status",
            TicketStatus::ALL.iter().map(|s| s.as_str()),
            &self.status,
        );
        self.priorities = choices(
            page,
            "priority",
            Priority::ALL.iter().map(|p| p.as_str()),
            &self.priority,
        );
        self.channels = choices(
            page,
            "channel",
            Channel::ALL.iter().map(|c| c.as_str()),
            &self.channel,
        );
        let sort = crate::pages::inbox::parse_sort(Some(&self.sort)).unwrap_or_default();
        self.sorts = crate::pages::inbox::sort_choices(page, sort);
        let mut assignees = vec![
            Choice {
                value: "me".into(),
                label: page.t("filter-me"),
                selected: self.assignee == "me",
            },
            Choice {
                value: "none".into(),
                label: page.t("nobody"),
                selected: self.assignee == "none",
            },
        ];
        assignees.extend(agents?.into_iter().map(|agent| Choice {
            selected: self.assignee == agent.id.to_string(),
            value: agent.id.to_string(),
            label: agent.name,
        }));
        self.assignees = assignees;
        let mut team_choices = vec![Choice {
            value: "none".into(),
            label: page.t("no-team"),
            selected: self.team == "none",
        }];
        team_choices.extend(teams?.into_iter().map(|team| Choice {
            selected: self.team == team.id.to_string(),
            value: team.id.to_string(),
            label: team.name,
        }));
        self.teams = team_choices;
        Ok(())
    }
}

/// A UTC day of a filter, as instants: its first, and the first of the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct UtcDay {
    start: jiff::Timestamp,
    end: jiff::Timestamp,
}

/// The day typed into `field` (`YYYY-MM-DD`), `None` when empty; a value that is not a day
/// adds an error for the field.
fn utc_day(raw: &str, field: &'static str, lang: Lang, errors: &mut FieldErrors) -> Option<UtcDay> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let day = raw.parse::<jiff::civil::Date>().ok().and_then(|date| {
        let start = date.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
        let end = date
            .tomorrow()
            .ok()?
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp();
        Some(UtcDay { start, end })
    });
    if day.is_none() {
        errors.add(field, lang.t("form-error-invalid"));
    }
    day
}

async fn filtered(
    state: &UiState,
    staff: &Staff,
    form: &FilterForm,
    errors: &mut FieldErrors,
) -> Result<(Vec<TicketRow>, Option<(String, String)>), UiError> {
    let filter = form.to_filter(staff, errors);
    if !errors.is_empty() {
        return Ok((Vec::new(), None));
    }
    let sort = match crate::pages::inbox::parse_sort(Some(&form.sort)) {
        Ok(sort) => sort,
        Err(_) => {
            errors.add("sort", staff.lang.t("form-error-invalid"));
            return Ok((Vec::new(), None));
        }
    };
    let after = form
        .after
        .as_deref()
        .map(crate::pages::inbox::decode_sorted_cursor)
        .transpose()?;
    let page = state
        .app
        .list_tickets_sorted(&staff.principal, filter, sort, after, PAGE_SIZE)
        .await?;
    let names = Names::load(&state.app, &staff.principal, &page.tickets).await?;
    let query = form.query();
    let more = page
        .next
        .as_ref()
        .map(crate::pages::inbox::encode_sorted_cursor)
        .map(|after| {
            let joiner = if query.is_empty() { "" } else { "&" };
            (
                format!("/tickets?{query}{joiner}after={after}"),
                format!("/tickets/rows?{query}{joiner}after={after}"),
            )
        });
    Ok((
        page.tickets
            .iter()
            .map(|ticket| names.row(ticket))
            .collect(),
        more,
    ))
}

async fn filter_page(
    state: &UiState,
    staff: &Staff,
    mut form: FilterForm,
    done: Option<String>,
) -> Result<Response, UiError> {
    let page = Frame::of(staff);
    let mut errors = FieldErrors::default();
    let (rows, more) = filtered(state, staff, &form, &mut errors).await?;
    errors.merge(std::mem::take(&mut form.errors));
    let (views, bulk) = tokio::join!(
        state.app.list_views(&staff.principal),
        BulkChoices::load(state, staff, &page)
    );
    form.fill_choices(state, staff, &page).await?;
    form.errors = errors;
    let query = form.query();
    let status = if form.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let response = html(&InboxTemplate {
        title: page.t("filter-title"),
        views: view_links(&page, &views?, None),
        current_id: String::new(),
        count: None,
        count_url: String::new(),
        rows_url: format!("/tickets/rows?{query}"),
        rows,
        more,
        filter: Some(form),
        bulk: bulk?,
        done,
        sort: None,
        page,
    })?;
    Ok((status, response).into_response())
}

#[derive(Debug, Deserialize)]
pub struct FilterQuery {
    #[serde(flatten)]
    form: FilterForm,
    done: Option<String>,
    ok: Option<i64>,
    failed: Option<i64>,
}

/// `GET /tickets?status=…&priority=…&assignee=…&team=…&tag=…&channel=…`: any combination of
/// the filters the store supports, newest-updated first, by keyset pages.
pub async fn filter(
    State(state): State<UiState>,
    staff: Staff,
    Query(query): Query<FilterQuery>,
) -> Result<Response, UiError> {
    let done = done_message(
        staff.lang,
        query.done.as_deref(),
        query.ok.unwrap_or(0),
        query.failed.unwrap_or(0),
    );
    filter_page(&state, &staff, query.form, done).await
}

/// `GET /tickets/rows?…`: the rows alone (the next page and live refresh).
pub async fn filter_rows(
    State(state): State<UiState>,
    staff: Staff,
    Query(form): Query<FilterForm>,
) -> Result<Response, UiError> {
    let mut errors = FieldErrors::default();
    let (rows, more) = filtered(&state, &staff, &form, &mut errors).await?;
    if !errors.is_empty() {
        return Err(UiError::BadRequest);
    }
    html(&RowsTemplate {
        page: Frame::of(&staff),
        rows,
        more,
    })
}

/// `POST /views`: saves the current filter as a personal view and opens it.
pub async fn create_view(
    State(state): State<UiState>,
    staff: Staff,
    body: Bytes,
) -> Result<Response, UiError> {
    let pairs = Pairs::parse(&body);
    let mut form = FilterForm {
        status: pairs.get("status").to_owned(),
        priority: pairs.get("priority").to_owned(),
        assignee: pairs.get("assignee").to_owned(),
        team: pairs.get("team").to_owned(),
        tag: pairs.get("tag").to_owned(),
        channel: pairs.get("channel").to_owned(),
        view_name: pairs.get("name").to_owned(),
        ..FilterForm::default()
    };
    let lang = staff.lang;
    let Some(view_filter) = form.to_view_filter().filter(|_| form.saveable()) else {
        form.errors.add("name", lang.t("view-not-saveable"));
        return filter_page(&state, &staff, form, None).await;
    };
    match state
        .app
        .create_view(&staff.principal, &form.view_name, view_filter, false)
        .await
    {
        Ok(view) => Ok(Redirect::to(&format!("/views/{}?done=view", view.view.id)).into_response()),
        Err(AppError::Domain(DomainError::Validation { field, reason })) => {
            let message = if field == "name" && reason.contains("at most 100 views") {
                lang.t("view-too-many")
            } else {
                lang.t("view-name-invalid")
            };
            form.errors.add("name", message);
            filter_page(&state, &staff, form, None).await
        }
        Err(error) => Err(error.into()),
    }
}

// --- Bulk actions ---------------------------------------------------------------------------

fn ticket_ids(pairs: &Pairs) -> Result<Vec<TicketId>, UiError> {
    let mut ids = Vec::new();
    for raw in pairs.all("ids") {
        let id: TicketId = raw.parse().map_err(|_| UiError::BadRequest)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > MAX_BULK {
        return Err(UiError::TooLarge);
    }
    Ok(ids)
}

fn back_with(back: &str, ok: usize, failed: usize) -> Response {
    let back = safe_next(Some(back));
    let path = back.split('?').next().unwrap_or("/inbox");
    // Keep the filter of a filtered list; drop an old message and the page cursor.
    let kept: Vec<&str> = back
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or("")
        .split('&')
        .filter(|pair| {
            !pair.is_empty()
                && !["done=", "ok=", "failed=", "after="]
                    .iter()
                    .any(|prefix| pair.starts_with(prefix))
        })
        .collect();
    let mut target = format!("{path}?");
    for pair in kept {
        target.push_str(pair);
        target.push('&');
    }
    target.push_str(&format!("done=bulk&ok={ok}&failed={failed}"));
    Redirect::to(&target).into_response()
}

/// `POST /tickets/bulk`: applies one action to the ticked tickets (`ids`), then goes back to
/// the list. `merge` does not change anything yet: it shows what would be merged where.
pub async fn bulk(
    State(state): State<UiState>,
    staff: Staff,
    body: Bytes,
) -> Result<Response, UiError> {
    let pairs = Pairs::parse(&body);
    let ids = ticket_ids(&pairs)?;
    let back = pairs.get("back").to_owned();
    let action = pairs.get("action");
    if ids.is_empty() {
        return Ok(back_with(&back, 0, 0));
    }
    let patch = match action {
        "assign" => TicketPatch {
            assignee_id: Some(match pairs.get("assignee") {
                "" => None,
                "me" => Some(staff.principal.agent_id),
                raw => Some(raw.parse::<AgentId>().map_err(|_| UiError::BadRequest)?),
            }),
            ..TicketPatch::default()
        },
        "status" => TicketPatch {
            status: Some(
                pairs
                    .get("status")
                    .parse()
                    .map_err(|_| UiError::BadRequest)?,
            ),
            ..TicketPatch::default()
        },
        "priority" => TicketPatch {
            priority: Some(
                pairs
                    .get("priority")
                    .parse()
                    .map_err(|_| UiError::BadRequest)?,
            ),
            ..TicketPatch::default()
        },
        "tag" => {
            let tag = pairs.get("tag").trim().to_owned();
            if tag.is_empty() {
                return Ok(back_with(&back, 0, 0));
            }
            return add_tag(&state, &staff, &ids, &tag, &back).await;
        }
        "merge" => return merge_preview(&state, &staff, &ids, &back, None).await,
        _ => return Err(UiError::BadRequest),
    };
    let mut ok = 0;
    let mut failed = 0;
    for id in ids {
        match state
            .app
            .update_ticket(&staff.principal, id, patch.clone())
            .await
        {
            Ok(_) => ok += 1,
            // One refused ticket (closed, a status it cannot take) does not stop the others.
            Err(AppError::Store(error)) => return Err(AppError::Store(error).into()),
            Err(_) => failed += 1,
        }
    }
    Ok(back_with(&back, ok, failed))
}

async fn add_tag(
    state: &UiState,
    staff: &Staff,
    ids: &[TicketId],
    tag: &str,
    back: &str,
) -> Result<Response, UiError> {
    let mut ok = 0;
    let mut failed = 0;
    for id in ids {
        let outcome = async {
            let ticket = state.app.get_ticket(&staff.principal, *id).await?;
            let mut tags = ticket.tags.clone();
            tags.push(tag.to_owned());
            let patch = TicketPatch {
                tags: Some(tags),
                ..TicketPatch::default()
            };
            state.app.update_ticket(&staff.principal, *id, patch).await
        }
        .await;
        match outcome {
            Ok(_) => ok += 1,
            Err(AppError::Store(error)) => return Err(AppError::Store(error).into()),
            Err(_) => failed += 1,
        }
    }
    Ok(back_with(back, ok, failed))
}

#[derive(Template)]
#[template(path = "bulk_merge.html")]
struct BulkMergeTemplate {
    page: Frame,
    /// The selected tickets, oldest first; the first is the suggested survivor.
    tickets: Vec<TicketRow>,
    messages: Vec<i64>,
    target: String,
    back: String,
    failure: Option<String>,
}

async fn merge_preview(
    state: &UiState,
    staff: &Staff,
    ids: &[TicketId],
    back: &str,
    failure: Option<String>,
) -> Result<Response, UiError> {
    let mut tickets: Vec<Ticket> = Vec::new();
    for id in ids {
        tickets.push(state.app.get_ticket(&staff.principal, *id).await?);
    }
    tickets.sort_by_key(|ticket| ticket.number);
    let mut messages = Vec::new();
    for ticket in &tickets {
        let count = state
            .app
            .list_messages(&staff.principal, ticket.id)
            .await?
            .len();
        messages.push(i64::try_from(count).unwrap_or(i64::MAX));
    }
    let names = Names::load(&state.app, &staff.principal, &tickets).await?;
    let failure =
        failure.or_else(|| (tickets.len() < 2).then(|| staff.lang.t("bulk-merge-needs-two")));
    let response = html(&BulkMergeTemplate {
        page: Frame::of(staff),
        target: tickets
            .first()
            .map(|t| t.id.to_string())
            .unwrap_or_default(),
        tickets: tickets.iter().map(|ticket| names.row(ticket)).collect(),
        messages,
        back: safe_next(Some(back)),
        failure: failure.clone(),
    })?;
    let status = if failure.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, response).into_response())
}

/// `POST /tickets/bulk-merge`: merges every ticked ticket into the chosen `target`.
pub async fn bulk_merge(
    State(state): State<UiState>,
    staff: Staff,
    body: Bytes,
) -> Result<Response, UiError> {
    let pairs = Pairs::parse(&body);
    let ids = ticket_ids(&pairs)?;
    let back = pairs.get("back").to_owned();
    let target: TicketId = pairs
        .get("target")
        .parse()
        .map_err(|_| UiError::BadRequest)?;
    if !ids.contains(&target) || ids.len() < 2 {
        return merge_preview(&state, &staff, &ids, &back, None).await;
    }
    let mut ok = 0;
    let mut failed = 0;
    for id in ids.iter().filter(|id| **id != target) {
        match state.app.merge_tickets(&staff.principal, *id, target).await {
            Ok(_) => ok += 1,
            Err(AppError::Store(error)) => return Err(AppError::Store(error).into()),
            Err(_) => failed += 1,
        }
    }
    Ok(Redirect::to(&format!(
        "/tickets/{target}?done=merged&ok={ok}&failed={failed}"
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_round_trips_through_its_query_string() {
        let form = FilterForm {
            status: "open".into(),
            tag: "доставка срочно".into(),
            ..FilterForm::default()
        };
        assert_eq!(
            form.query(),
            "status=open&tag=%D0%B4%D0%BE%D1%81%D1%82%D0%B0%D0%B2%D0%BA%D0%B0%20%D1%81%D1%80%D0%BE%D1%87%D0%BD%D0%BE"
        );
        assert!(!form.saveable(), "views cannot hold a tag");
        let saveable = FilterForm {
            status: "pending".into(),
            assignee: "me".into(),
            team: "none".into(),
            ..FilterForm::default()
        };
        let view = saveable.to_view_filter().unwrap();
        assert_eq!(view.statuses, vec![TicketStatus::Pending]);
        assert_eq!(view.assignee, Some(ViewAssignee::Me));
        assert_eq!(view.team, Some(ViewTeam::NoTeam));
        let broken = FilterForm {
            assignee: "not-an-id".into(),
            ..FilterForm::default()
        };
        assert!(broken.to_view_filter().is_none());
    }

    #[test]
    fn going_back_keeps_the_filter_and_replaces_the_old_message() {
        let response = back_with("/tickets?status=open&done=bulk&ok=1&after=5_x", 3, 1);
        let location = response.headers()["location"].to_str().unwrap();
        assert_eq!(location, "/tickets?status=open&done=bulk&ok=3&failed=1");
        let response = back_with("https://evil.test/", 0, 0);
        assert!(
            response.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/inbox?")
        );
    }
}
