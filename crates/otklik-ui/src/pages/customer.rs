//! Customers: the list with search, a customer's page (who they are, how to reach them, their
//! tickets, the merges they took part in), and merging and un-merging with what will move shown
//! before anything does.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use otklik_app::AppError;
use otklik_domain::DomainError;
use otklik_domain::customer::Customer;
use otklik_domain::ids::{CustomerId, CustomerMergeId};
use otklik_domain::permission::Action;
use otklik_store::{MAX_PAGE_SIZE, TicketFilter};
use serde::Deserialize;

use crate::UiState;
use crate::error::UiError;
use crate::i18n::Lang;
use crate::pages::inbox::PAGE_SIZE;
use crate::pages::{Frame, Names, TicketRow, When, html};
use crate::session::Staff;

/// A customer in a list: name and contacts.
#[derive(Debug, Clone)]
pub struct CustomerLine {
    pub id: String,
    pub name: String,
    pub identities: String,
    pub since: When,
}

fn line(customer: &Customer) -> CustomerLine {
    CustomerLine {
        id: customer.id.to_string(),
        name: customer.name.clone(),
        identities: customer
            .identities
            .iter()
            .map(|identity| identity.value.value.clone())
            .collect::<Vec<_>>()
            .join(", "),
        since: When::of(customer.created_at),
    }
}

fn identities_of(page: &Frame, customer: &Customer) -> Vec<(String, String)> {
    customer
        .identities
        .iter()
        .map(|identity| {
            let mut value = identity.value.value.clone();
            if !identity.value.provider.is_empty() {
                value = format!("{} ({})", value, identity.value.provider);
            }
            (page.label("identity", identity.value.kind.as_str()), value)
        })
        .collect()
}

#[derive(Template)]
#[template(path = "customers.html")]
struct CustomersTemplate {
    page: Frame,
    query: String,
    searched: bool,
    error: Option<String>,
    customers: Vec<CustomerLine>,
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    after: Option<String>,
}

/// `GET /customers?q=…`: the newest customers, or those matching a name, e-mail or phone.
pub async fn customers(
    State(state): State<UiState>,
    staff: Staff,
    Query(query): Query<ListQuery>,
) -> Result<Response, UiError> {
    let app = &state.app;
    let page = Frame::of(&staff);
    let mut template = CustomersTemplate {
        page,
        query: query.q.clone(),
        searched: false,
        error: None,
        customers: Vec::new(),
        next: None,
    };
    if query.q.trim().is_empty() {
        let after = query
            .after
            .as_deref()
            .map(|raw| raw.parse::<CustomerId>().map_err(|_| UiError::BadRequest))
            .transpose()?;
        let listed = app
            .list_customers(&staff.principal, after, PAGE_SIZE, false)
            .await?;
        template.customers = listed.customers.iter().map(line).collect();
        template.next = listed.next.map(|id| id.to_string());
        return html(&template);
    }
    template.searched = true;
    // The search returns at most 20 customers (and tickets the list does not show).
    match app
        .search(&staff.principal, &query.q, TicketFilter::default(), 20)
        .await
    {
        Ok(results) => {
            template.customers = results.customers.iter().map(line).collect();
            html(&template)
        }
        Err(AppError::Domain(DomainError::Validation { field, reason })) => {
            template.error = Some(crate::pages::auth::field_message(
                staff.lang, field, &reason,
            ));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, html(&template)?).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// A merge the customer took part in.
#[derive(Debug, Clone)]
pub struct MergeLine {
    pub id: String,
    /// This customer was merged away (`true`) or took the other in.
    pub away: bool,
    pub other_id: String,
    pub other_name: String,
    pub identities: i64,
    pub tickets: i64,
    pub when: When,
    pub undone: Option<When>,
}

#[derive(Template)]
#[template(path = "customer.html")]
struct CustomerTemplate {
    page: Frame,
    id: String,
    name: String,
    merges: Vec<MergeLine>,
    can_merge: bool,
    done: Option<String>,
    failure: Option<String>,
    language: Option<String>,
    since: When,
    merged_into: Option<String>,
    /// (label, value)
    identities: Vec<(String, String)>,
    rows: Vec<TicketRow>,
}

#[derive(Debug, Deserialize)]
pub struct CustomerQuery {
    done: Option<String>,
}

fn customer_done(lang: Lang, done: Option<&str>) -> Option<String> {
    match done? {
        "merged" => Some(lang.t("customer-done-merged")),
        "unmerged" => Some(lang.t("customer-done-unmerged")),
        _ => None,
    }
}

/// `GET /customers/{id}`.
pub async fn customer_page(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(query): Query<CustomerQuery>,
) -> Result<Response, UiError> {
    let done = customer_done(staff.lang, query.done.as_deref());
    customer_view(&state, &staff, &id, done, None).await
}

async fn customer_view(
    state: &UiState,
    staff: &Staff,
    id: &str,
    done: Option<String>,
    failure: Option<String>,
) -> Result<Response, UiError> {
    let id: CustomerId = id.parse().map_err(|_| UiError::NotFound)?;
    let app = &state.app;
    let customer = app.get_customer(&staff.principal, id).await?;
    let merges = app.list_customer_merges(&staff.principal, id).await?;
    let others: Vec<CustomerId> = merges
        .iter()
        .map(|merge| {
            if merge.source_id == id {
                merge.target_id
            } else {
                merge.source_id
            }
        })
        .collect();
    let other_names = app.customer_names(&staff.principal, &others).await?;
    let tickets = app
        .list_tickets(
            &staff.principal,
            TicketFilter {
                customer_id: Some(id),
                ..TicketFilter::default()
            },
            None,
            PAGE_SIZE,
        )
        .await?;
    let names = Names::load(app, &staff.principal, &tickets.tickets).await?;
    let page = Frame::of(staff);
    html(&CustomerTemplate {
        id: customer.id.to_string(),
        merges: merges
            .iter()
            .zip(others)
            .map(|(merge, other)| MergeLine {
                id: merge.id.to_string(),
                away: merge.source_id == id,
                other_id: other.to_string(),
                other_name: other_names
                    .get(&other)
                    .cloned()
                    .unwrap_or_else(|| "—".into()),
                identities: i64::try_from(merge.moved_identity_ids.len()).unwrap_or(i64::MAX),
                tickets: i64::try_from(merge.moved_ticket_ids.len()).unwrap_or(i64::MAX),
                when: When::of(merge.merged_at),
                undone: merge.undone_at.map(When::of),
            })
            .collect(),
        can_merge: staff.principal.require(Action::MergeCustomers).is_ok(),
        done,
        failure,
        name: customer.name.clone(),
        language: customer.language.clone(),
        since: When::of(customer.created_at),
        merged_into: customer.merged_into.map(|id| id.to_string()),
        identities: identities_of(&page, &customer),
        rows: tickets
            .tickets
            .iter()
            .map(|ticket| names.row(ticket))
            .collect(),
        page,
    })
}

// --- Merge and un-merge ---------------------------------------------------------------------

/// The customer that would absorb this one, and what would move.
#[derive(Debug, Clone)]
pub struct CustomerMergePreview {
    pub id: String,
    pub name: String,
    pub identities: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "customer_merge.html")]
struct CustomerMergeTemplate {
    page: Frame,
    id: String,
    name: String,
    /// What moves: this customer's contacts and tickets.
    identities: Vec<(String, String)>,
    tickets: Vec<TicketRow>,
    /// More tickets than listed move too.
    more_tickets: bool,
    query: String,
    searched: bool,
    results: Vec<CustomerLine>,
    target: Option<CustomerMergePreview>,
    failure: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct MergeQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    target: String,
}

async fn merge_page(
    state: &UiState,
    staff: &Staff,
    id: CustomerId,
    query: MergeQuery,
    failure: Option<String>,
) -> Result<Response, UiError> {
    staff
        .principal
        .require(Action::MergeCustomers)
        .map_err(|_| UiError::Forbidden)?;
    let app = &state.app;
    let source = app.get_customer(&staff.principal, id).await?;
    let page = Frame::of(staff);
    let tickets = app
        .list_tickets(
            &staff.principal,
            TicketFilter {
                customer_id: Some(id),
                include_merged: true,
                ..TicketFilter::default()
            },
            None,
            MAX_PAGE_SIZE,
        )
        .await?;
    let names = Names::load(app, &staff.principal, &tickets.tickets).await?;
    let searched = !query.q.trim().is_empty();
    let mut results = Vec::new();
    if searched {
        match app
            .search(&staff.principal, &query.q, TicketFilter::default(), 20)
            .await
        {
            Ok(found) => {
                results = found
                    .customers
                    .iter()
                    .filter(|customer| customer.id != id)
                    .map(line)
                    .collect();
            }
            Err(AppError::Domain(DomainError::Validation { .. })) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let target = match query.target.parse::<CustomerId>() {
        Ok(target_id) if target_id != id => {
            let target = app.get_customer(&staff.principal, target_id).await?;
            Some(CustomerMergePreview {
                id: target.id.to_string(),
                name: target.name.clone(),
                identities: identities_of(&page, &target),
            })
        }
        _ => None,
    };
    html(&CustomerMergeTemplate {
        id: source.id.to_string(),
        name: source.name.clone(),
        identities: identities_of(&page, &source),
        more_tickets: tickets.next.is_some(),
        tickets: tickets
            .tickets
            .iter()
            .map(|ticket| names.row(ticket))
            .collect(),
        query: query.q,
        searched,
        results,
        target,
        failure: failure.or_else(|| {
            source
                .merged_into
                .is_some()
                .then(|| staff.lang.t("customer-already-merged"))
        }),
        page,
    })
}

/// `GET /customers/{id}/merge?q=…&target=…`: pick the customer to merge into; see what moves.
pub async fn merge_form(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(query): Query<MergeQuery>,
) -> Result<Response, UiError> {
    let id: CustomerId = id.parse().map_err(|_| UiError::NotFound)?;
    merge_page(&state, &staff, id, query, None).await
}

#[derive(Debug, Deserialize)]
pub struct MergeForm {
    #[serde(default)]
    target: String,
}

/// `POST /customers/{id}/merge`: merges this customer into `target` and opens the survivor.
pub async fn merge(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<MergeForm>,
) -> Result<Response, UiError> {
    let id: CustomerId = id.parse().map_err(|_| UiError::NotFound)?;
    let target: CustomerId = form.target.parse().map_err(|_| UiError::BadRequest)?;
    let failure = match state
        .app
        .merge_customers(&staff.principal, id, target)
        .await
    {
        Ok(merge) => {
            return Ok(
                Redirect::to(&format!("/customers/{}?done=merged", merge.target_id))
                    .into_response(),
            );
        }
        Err(AppError::Domain(DomainError::InvalidMerge(_))) => {
            staff.lang.t("customer-merge-refused")
        }
        Err(AppError::InvalidReference { .. }) => staff.lang.t("merge-target-missing"),
        Err(error) => return Err(error.into()),
    };
    let query = MergeQuery {
        q: String::new(),
        target: form.target,
    };
    let response = merge_page(&state, &staff, id, query, Some(failure)).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
}

/// `POST /customers/merges/{id}/undo`: gives back what a merge moved.
pub async fn unmerge(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    Form(form): Form<MergeForm>,
) -> Result<Response, UiError> {
    let merge_id: CustomerMergeId = id.parse().map_err(|_| UiError::NotFound)?;
    match state
        .app
        .unmerge_customers(&staff.principal, merge_id)
        .await
    {
        Ok(merge) => Ok(
            Redirect::to(&format!("/customers/{}?done=unmerged", merge.source_id)).into_response(),
        ),
        Err(AppError::Domain(DomainError::InvalidMerge(_))) => {
            // `target` names the page the button was on, to show why there.
            let failure = Some(staff.lang.t("customer-unmerge-refused"));
            let response = customer_view(&state, &staff, &form.target, None, failure).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
        }
        Err(error) => Err(error.into()),
    }
}
