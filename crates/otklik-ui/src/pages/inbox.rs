//! The inbox: the views with their counters, a view's tickets (keyset pages), and search.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use otklik_app::AppError;
use otklik_app::views::CountedView;
use otklik_domain::DomainError;
use otklik_domain::ids::{TicketId, ViewId};
use otklik_store::{SortedTicketCursor, TicketSort, TicketSortKey};
use serde::Deserialize;
#[cfg(test)]
use {
    otklik_domain::clock::{from_micros, to_micros},
    otklik_store::TicketCursor,
};

use crate::UiState;
use crate::error::UiError;
use crate::pages::auth::field_message;
use crate::pages::{Frame, Names, TicketRow, html};
use crate::session::Staff;

/// Tickets per page of a list.
pub const PAGE_SIZE: u32 = 25;
/// Results per search.
pub const SEARCH_LIMIT: u32 = 50;

/// A view in the left column.
#[derive(Debug, Clone)]
pub struct ViewLink {
    pub id: String,
    pub name: String,
    pub count: i64,
    pub current: bool,
}

/// The catalogue key of a default view's name; the defaults are stored under their English
/// names, custom views are shown as their owners named them.
fn default_view_key(name: &str) -> Option<&'static str> {
    match name {
        "My open tickets" => Some("view-my-open"),
        "Unassigned" => Some("view-unassigned"),
        "All open" => Some("view-all-open"),
        "Urgent" => Some("view-urgent"),
        "Pending > 2 days" => Some("view-pending-idle"),
        "Solved" => Some("view-solved"),
        _ => None,
    }
}

pub(crate) fn view_links(
    page: &Frame,
    views: &[CountedView],
    current: Option<ViewId>,
) -> Vec<ViewLink> {
    views
        .iter()
        .map(|counted| ViewLink {
            id: counted.view.id.to_string(),
            name: default_view_key(&counted.view.name)
                .map_or_else(|| counted.view.name.clone(), |key| page.t(key)),
            count: counted.count,
            current: Some(counted.view.id) == current,
        })
        .collect()
}

/// `{micros}_{uuid}` of the last ticket of a page (the unsorted lists' cursor, which the
/// default sort's cursor reads the same as).
#[cfg(test)]
pub(crate) fn encode_cursor(cursor: &TicketCursor) -> String {
    format!("{}_{}", to_micros(cursor.updated_at), cursor.id)
}

#[cfg(test)]
pub(crate) fn decode_cursor(raw: &str) -> Result<TicketCursor, UiError> {
    let (micros, id) = raw.split_once('_').ok_or(UiError::BadRequest)?;
    Ok(TicketCursor {
        updated_at: from_micros(micros.parse().map_err(|_| UiError::BadRequest)?),
        id: id.parse::<TicketId>().map_err(|_| UiError::BadRequest)?,
    })
}

/// Every sort the lists offer, by the code kept in the URL (`?sort=`), default first.
const SORTS: &[(&str, TicketSortKey, bool)] = &[
    ("updated-desc", TicketSortKey::Updated, true),
    ("updated-asc", TicketSortKey::Updated, false),
    ("created-desc", TicketSortKey::Created, true),
    ("created-asc", TicketSortKey::Created, false),
    ("priority-desc", TicketSortKey::Priority, true),
    ("priority-asc", TicketSortKey::Priority, false),
    ("number-desc", TicketSortKey::Number, true),
    ("number-asc", TicketSortKey::Number, false),
];

/// The sort named in the URL; none means the default (last update, newest first).
pub(crate) fn parse_sort(raw: Option<&str>) -> Result<TicketSort, UiError> {
    match raw.unwrap_or("") {
        "" => Ok(TicketSort::default()),
        code => SORTS
            .iter()
            .find(|(name, _, _)| *name == code)
            .map(|(_, key, descending)| TicketSort {
                key: *key,
                descending: *descending,
            })
            .ok_or(UiError::BadRequest),
    }
}

/// The URL code of a sort.
pub(crate) fn sort_code(sort: TicketSort) -> &'static str {
    SORTS
        .iter()
        .find(|(_, key, descending)| *key == sort.key && *descending == sort.descending)
        .map_or("updated-desc", |(name, _, _)| name)
}

/// `&sort=…` to append to a list's URLs, or nothing for the default sort.
pub(crate) fn sort_param(sort: TicketSort) -> String {
    if sort == TicketSort::default() {
        String::new()
    } else {
        format!("&sort={}", sort_code(sort))
    }
}

/// The sort select's options.
pub(crate) fn sort_choices(page: &Frame, current: TicketSort) -> Vec<crate::pages::ticket::Choice> {
    SORTS
        .iter()
        .map(|(name, _, _)| crate::pages::ticket::Choice {
            value: (*name).to_owned(),
            label: page.t(&format!("sort-{name}")),
            selected: *name == sort_code(current),
        })
        .collect()
}

/// `{key}_{uuid}` of the last ticket of a sorted page (for the default sort, the same text as
/// [`encode_cursor`]).
pub(crate) fn encode_sorted_cursor(cursor: &SortedTicketCursor) -> String {
    format!("{}_{}", cursor.key, cursor.id)
}

pub(crate) fn decode_sorted_cursor(raw: &str) -> Result<SortedTicketCursor, UiError> {
    let (key, id) = raw.split_once('_').ok_or(UiError::BadRequest)?;
    Ok(SortedTicketCursor {
        key: key.parse().map_err(|_| UiError::BadRequest)?,
        id: id.parse::<TicketId>().map_err(|_| UiError::BadRequest)?,
    })
}

/// The sort control of a view page: a GET form back to the view.
#[derive(Debug, Clone)]
pub struct SortControl {
    pub action: String,
    pub choices: Vec<crate::pages::ticket::Choice>,
}

fn parse_view_id(raw: &str) -> Result<ViewId, UiError> {
    raw.parse().map_err(|_| UiError::NotFound)
}

#[derive(Template)]
#[template(path = "inbox.html")]
pub(crate) struct InboxTemplate {
    pub(crate) page: Frame,
    pub(crate) views: Vec<ViewLink>,
    pub(crate) current_id: String,
    pub(crate) title: String,
    /// The list's count, when the counters know it (views); `None` for ad-hoc filters.
    pub(crate) count: Option<i64>,
    pub(crate) count_url: String,
    /// Where the live refresh reloads the first page of rows from.
    pub(crate) rows_url: String,
    pub(crate) rows: Vec<TicketRow>,
    /// The next page: (page URL, rows URL for htmx).
    pub(crate) more: Option<(String, String)>,
    pub(crate) filter: Option<crate::pages::bulk::FilterForm>,
    pub(crate) bulk: crate::pages::bulk::BulkChoices,
    pub(crate) done: Option<String>,
    /// The sort select of a view (filters carry theirs in the filter form).
    pub(crate) sort: Option<SortControl>,
}

#[derive(Template)]
#[template(path = "_rows.html")]
pub(crate) struct RowsTemplate {
    pub(crate) page: Frame,
    pub(crate) rows: Vec<TicketRow>,
    pub(crate) more: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "_views.html")]
struct ViewsTemplate {
    page: Frame,
    views: Vec<ViewLink>,
    current_id: String,
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    after: Option<String>,
    sort: Option<String>,
    done: Option<String>,
    ok: Option<i64>,
    failed: Option<i64>,
}

fn view_more(
    view_id: ViewId,
    sort: TicketSort,
    next: Option<&SortedTicketCursor>,
) -> Option<(String, String)> {
    let sort = sort_param(sort);
    next.map(encode_sorted_cursor).map(|after| {
        (
            format!("/views/{view_id}?after={after}{sort}"),
            format!("/views/{view_id}/rows?after={after}{sort}"),
        )
    })
}

#[derive(Debug, Deserialize)]
pub struct NavQuery {
    current: Option<String>,
}

/// `GET /inbox`: the first view.
pub async fn inbox(State(state): State<UiState>, staff: Staff) -> Result<Response, UiError> {
    let views = state.app.list_views(&staff.principal).await?;
    match views.first() {
        Some(first) => Ok(Redirect::to(&format!("/views/{}", first.view.id)).into_response()),
        None => {
            let page = Frame::of(&staff);
            let bulk = crate::pages::bulk::BulkChoices::load(&state, &staff, &page).await?;
            html(&InboxTemplate {
                title: page.t("inbox-title"),
                page,
                views: Vec::new(),
                current_id: String::new(),
                count: Some(0),
                count_url: String::new(),
                rows_url: String::new(),
                rows: Vec::new(),
                more: None,
                filter: None,
                bulk,
                done: None,
                sort: None,
            })
        }
    }
}

/// `GET /views/{id}`: the views, and a page of this view's tickets.
pub async fn view_page(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, UiError> {
    let view_id = parse_view_id(&id)?;
    let sort = parse_sort(query.sort.as_deref())?;
    let after = query
        .after
        .as_deref()
        .map(decode_sorted_cursor)
        .transpose()?;
    let app = &state.app;
    let views = app.list_views(&staff.principal).await?;
    let current = views
        .iter()
        .find(|counted| counted.view.id == view_id)
        .ok_or(UiError::NotFound)?;
    let ticket_page = app
        .view_tickets_sorted(&staff.principal, view_id, sort, after, PAGE_SIZE)
        .await?;
    let page = Frame::of(&staff);
    let (names, bulk) = tokio::join!(
        Names::load(app, &staff.principal, &ticket_page.tickets),
        crate::pages::bulk::BulkChoices::load(&state, &staff, &page)
    );
    let (names, bulk) = (names?, bulk?);
    let links = view_links(&page, &views, Some(view_id));
    let title = links
        .iter()
        .find(|link| link.current)
        .map(|link| link.name.clone())
        .unwrap_or_default();
    let done = crate::pages::bulk::done_message(
        staff.lang,
        query.done.as_deref(),
        query.ok.unwrap_or(0),
        query.failed.unwrap_or(0),
    );
    html(&InboxTemplate {
        title,
        count: Some(current.count),
        count_url: format!("/views/{view_id}/count"),
        rows_url: format!("/views/{view_id}/rows?sort={}", sort_code(sort)),
        views: links,
        current_id: view_id.to_string(),
        rows: ticket_page
            .tickets
            .iter()
            .map(|ticket| names.row(ticket))
            .collect(),
        more: view_more(view_id, sort, ticket_page.next.as_ref()),
        filter: None,
        bulk,
        done,
        sort: Some(SortControl {
            action: format!("/views/{view_id}"),
            choices: sort_choices(&page, sort),
        }),
        page,
    })
}

/// `GET /views/{id}/rows`: the rows of one page (htmx: "next page" and live refresh).
pub async fn view_rows(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, UiError> {
    let view_id = parse_view_id(&id)?;
    let sort = parse_sort(query.sort.as_deref())?;
    let after = query
        .after
        .as_deref()
        .map(decode_sorted_cursor)
        .transpose()?;
    let ticket_page = state
        .app
        .view_tickets_sorted(&staff.principal, view_id, sort, after, PAGE_SIZE)
        .await?;
    let names = Names::load(&state.app, &staff.principal, &ticket_page.tickets).await?;
    html(&RowsTemplate {
        page: Frame::of(&staff),
        rows: ticket_page
            .tickets
            .iter()
            .map(|ticket| names.row(ticket))
            .collect(),
        more: view_more(view_id, sort, ticket_page.next.as_ref()),
    })
}

/// `GET /views/{id}/count`: "12 тикетов" (htmx live refresh of the list's title).
pub async fn view_count(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let view_id = parse_view_id(&id)?;
    let views = state.app.list_views(&staff.principal).await?;
    let count = views
        .iter()
        .find(|counted| counted.view.id == view_id)
        .ok_or(UiError::NotFound)?
        .count;
    Ok(staff.lang.count("tickets-count", count).into_response())
}

/// `GET /inbox/nav`: the views with fresh counters (htmx live refresh).
pub async fn views_nav(
    State(state): State<UiState>,
    staff: Staff,
    Query(query): Query<NavQuery>,
) -> Result<Response, UiError> {
    let current = query.current.as_deref().and_then(|raw| raw.parse().ok());
    let views = state.app.list_views(&staff.principal).await?;
    let page = Frame::of(&staff);
    html(&ViewsTemplate {
        views: view_links(&page, &views, current),
        current_id: current.map(|id: ViewId| id.to_string()).unwrap_or_default(),
        page,
    })
}

/// A ticket found, with its excerpt split into plain and highlighted pieces.
#[derive(Debug, Clone)]
pub struct Hit {
    pub row: TicketRow,
    pub snippet: Vec<(String, bool)>,
}

/// A customer found.
#[derive(Debug, Clone)]
pub struct CustomerHit {
    pub id: String,
    pub name: String,
    pub identities: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchTemplate {
    page: Frame,
    query: String,
    /// Whether a search ran (a query was given and was valid).
    searched: bool,
    error: Option<String>,
    hits: Vec<Hit>,
    customers: Vec<CustomerHit>,
    /// The ticket filters combined with the words (the inbox filter's fields).
    filter: crate::pages::bulk::FilterForm,
}

impl SearchTemplate {
    /// Whether any filter is set: the filters then show unfolded.
    fn filtered(&self) -> bool {
        self.filter.narrows() || !self.filter.errors.is_empty()
    }
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(flatten)]
    filter: crate::pages::bulk::FilterForm,
}

fn split_snippet(text: &str, highlights: &[std::ops::Range<usize>]) -> Vec<(String, bool)> {
    let mut pieces = Vec::new();
    let mut position = 0;
    for range in highlights {
        let (Some(before), Some(marked)) =
            (text.get(position..range.start), text.get(range.clone()))
        else {
            continue;
        };
        if !before.is_empty() {
            pieces.push((before.to_owned(), false));
        }
        pieces.push((marked.to_owned(), true));
        position = range.end;
    }
    if let Some(rest) = text.get(position..)
        && !rest.is_empty()
    {
        pieces.push((rest.to_owned(), false));
    }
    pieces
}

/// `GET /search?q=…[&status=…&priority=…&assignee=…&team=…&channel=…&tag=…]`: tickets (with
/// the words found) that pass the filters, and customers.
pub async fn search(
    State(state): State<UiState>,
    staff: Staff,
    Query(query): Query<SearchQuery>,
) -> Result<Response, UiError> {
    let mut page = Frame::of(&staff);
    page.search = query.q.clone();
    let mut errors = crate::pages::auth::FieldErrors::default();
    let filter = query.filter.to_filter(&staff, &mut errors);
    let mut form = query.filter;
    form.fill_choices(&state, &staff, &page).await?;
    form.errors = errors;
    let mut template = SearchTemplate {
        page,
        query: query.q.clone(),
        searched: false,
        error: None,
        hits: Vec::new(),
        customers: Vec::new(),
        filter: form,
    };
    if !template.filter.errors.is_empty() {
        let response = html(&template)?;
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, response).into_response());
    }
    if query.q.trim().is_empty() {
        return html(&template);
    }
    match state
        .app
        .search(&staff.principal, &query.q, filter, SEARCH_LIMIT)
        .await
    {
        Ok(results) => {
            let tickets: Vec<_> = results
                .tickets
                .iter()
                .map(|hit| hit.ticket.clone())
                .collect();
            let names = Names::load(&state.app, &staff.principal, &tickets).await?;
            template.searched = true;
            template.hits = results
                .tickets
                .iter()
                .map(|hit| Hit {
                    row: names.row(&hit.ticket),
                    snippet: split_snippet(&hit.snippet.text, &hit.snippet.highlights),
                })
                .collect();
            template.customers = results
                .customers
                .iter()
                .map(|customer| CustomerHit {
                    id: customer.id.to_string(),
                    name: customer.name.clone(),
                    identities: customer
                        .identities
                        .iter()
                        .map(|identity| identity.value.value.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect();
            html(&template)
        }
        Err(AppError::Domain(DomainError::Validation { field, reason })) => {
            template.error = Some(field_message(staff.lang, field, &reason));
            let response = html(&template)?;
            Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_the_round_trip_through_the_url() {
        let cursor = TicketCursor {
            updated_at: from_micros(1_700_000_000_123_456),
            id: TicketId::new(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&cursor)).unwrap(), cursor);
        assert!(decode_cursor("garbage").is_err());
        assert!(decode_cursor("12_not-a-uuid").is_err());
        let sorted = SortedTicketCursor {
            key: -3,
            id: cursor.id,
        };
        assert_eq!(
            decode_sorted_cursor(&encode_sorted_cursor(&sorted)).unwrap(),
            sorted
        );
        // The default sort's cursor reads the same as the unsorted one.
        assert_eq!(
            encode_sorted_cursor(&SortedTicketCursor {
                key: to_micros(cursor.updated_at),
                id: cursor.id
            }),
            encode_cursor(&cursor)
        );
    }

    #[test]
    fn every_sort_round_trips_through_its_url_code() {
        for (code, _, _) in SORTS {
            assert_eq!(sort_code(parse_sort(Some(code)).unwrap()), *code);
        }
        assert_eq!(parse_sort(None).unwrap(), TicketSort::default());
        assert!(parse_sort(Some("subject")).is_err());
    }

    #[test]
    fn a_snippet_splits_into_plain_and_marked_pieces() {
        let pieces = split_snippet("где моя доставка?", std::slice::from_ref(&(14..30)));
        assert_eq!(
            pieces,
            vec![
                ("где моя ".to_owned(), false),
                ("доставка".to_owned(), true),
                ("?".to_owned(), false)
            ]
        );
        // A range off a character boundary is skipped rather than panicking.
        assert_eq!(
            split_snippet("ёж", std::slice::from_ref(&(1..2))),
            vec![("ёж".to_owned(), false)]
        );
    }
}
