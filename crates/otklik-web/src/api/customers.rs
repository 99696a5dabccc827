//! `/customers`: profiles, identities, merge and un-merge.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use bytes::Bytes;
use otklik_app::customers::{CreateCustomerInput, CustomerPatch};
use otklik_domain::customer::{IdentityKind, IdentityValue};
use otklik_domain::ids::{CustomerId, CustomerMergeId, IdentityId};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::dto::*;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{ApiQuery, Auth, idempotency_key, parse_id, parse_json};

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListCustomersQuery {
    /// Find the customer with this e-mail (exact, case-insensitive).
    pub email: Option<String>,
    /// Find the customer with this phone (any common notation).
    pub phone: Option<String>,
    pub include_merged: Option<bool>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<uuid::Uuid>,
    /// 1 to 200; default 50.
    pub limit: Option<u32>,
}

/// List customers (newest first), or look one up by e-mail or phone.
#[utoipa::path(get, path = "/customers", tag = "customers", params(ListCustomersQuery),
    responses((status = 200, body = Page<CustomerDto>), (status = 400, body = Problem)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<ListCustomersQuery>,
) -> ApiResult<Json<Page<CustomerDto>>> {
    let lookup = match (&query.email, &query.phone) {
        (Some(email), None) => Some(IdentityValue::parse(IdentityKind::Email, None, email)),
        (None, Some(phone)) => Some(IdentityValue::parse(IdentityKind::Phone, None, phone)),
        (None, None) => None,
        _ => {
            return Err(ApiError::InvalidQuery(
                "give email or phone, not both".into(),
            ));
        }
    };
    if let Some(identity) = lookup {
        let identity = identity.map_err(|error| ApiError::InvalidQuery(error.to_string()))?;
        let found = state
            .app
            .find_customer_by_identity(&principal, &identity)
            .await?;
        return Ok(Json(Page {
            items: found.into_iter().map(CustomerDto::from).collect(),
            next_cursor: None,
        }));
    }
    let page = state
        .app
        .list_customers(
            &principal,
            query.cursor.map(CustomerId),
            query.limit.unwrap_or(50),
            query.include_merged.unwrap_or(false),
        )
        .await?;
    Ok(Json(Page {
        items: page.customers.into_iter().map(CustomerDto::from).collect(),
        next_cursor: page.next.map(|id| id.to_string()),
    }))
}

/// Create a customer with identities.
#[utoipa::path(post, path = "/customers", tag = "customers", request_body = CreateCustomerDto,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    responses((status = 201, body = CustomerDto), (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<CustomerDto>)> {
    let dto: CreateCustomerDto = parse_json(&headers, &body)?;
    let key = idempotency_key(&headers, &principal, &method, "/api/v1/customers", &body)?;
    let identities = dto
        .identities
        .iter()
        .map(IdentityInputDto::parse)
        .collect::<ApiResult<Vec<_>>>()?;
    let input = CreateCustomerInput {
        name: dto.name,
        language: dto.language,
        identities,
    };
    let customer = state
        .app
        .create_customer(&principal, input, key.as_ref())
        .await?;
    Ok((StatusCode::CREATED, Json(customer.into())))
}

/// One customer with every identity.
#[utoipa::path(get, path = "/customers/{id}", tag = "customers", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = CustomerDto), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerDto>> {
    Ok(Json(
        state
            .app
            .get_customer(&principal, parse_id(&id)?)
            .await?
            .into(),
    ))
}

/// Change name or language, add or remove identities.
#[utoipa::path(patch, path = "/customers/{id}", tag = "customers", params(("id" = uuid::Uuid, Path)), request_body = UpdateCustomerDto,
    responses((status = 200, body = CustomerDto), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<CustomerDto>> {
    let id: CustomerId = parse_id(&id)?;
    let dto: UpdateCustomerDto = parse_json(&headers, &body)?;
    let patch = CustomerPatch {
        name: dto.name,
        language: dto.language,
        add_identities: dto
            .add_identities
            .iter()
            .map(IdentityInputDto::parse)
            .collect::<ApiResult<Vec<_>>>()?,
        remove_identity_ids: dto
            .remove_identity_ids
            .into_iter()
            .map(IdentityId)
            .collect(),
    };
    Ok(Json(
        state
            .app
            .update_customer(&principal, id, patch)
            .await?
            .into(),
    ))
}

/// Merge this customer into another: identities and tickets move; the merge can be undone.
#[utoipa::path(post, path = "/customers/{id}/merge", tag = "customers", params(("id" = uuid::Uuid, Path)), request_body = MergeCustomerDto,
    responses((status = 201, body = CustomerMergeDto), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn merge(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<CustomerMergeDto>)> {
    let source: CustomerId = parse_id(&id)?;
    let dto: MergeCustomerDto = parse_json(&headers, &body)?;
    let merge = state
        .app
        .merge_customers(&principal, source, CustomerId(dto.into_customer_id))
        .await?;
    Ok((StatusCode::CREATED, Json(merge.into())))
}

/// Merges this customer took part in, newest first: what moved, when, by whom.
#[utoipa::path(get, path = "/customers/{id}/merges", tag = "customers", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<CustomerMergeDto>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_merges(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<CustomerMergeDto>>> {
    let merges = state
        .app
        .list_customer_merges(&principal, parse_id(&id)?)
        .await?;
    Ok(Json(
        merges.into_iter().map(CustomerMergeDto::from).collect(),
    ))
}

/// Undo a merge: what moved goes back.
#[utoipa::path(post, path = "/customer-merges/{id}/undo", tag = "customers", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = CustomerMergeDto), (status = 404, body = Problem), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn undo_merge(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerMergeDto>> {
    let id: CustomerMergeId = parse_id(&id)?;
    Ok(Json(
        state.app.unmerge_customers(&principal, id).await?.into(),
    ))
}

/// The audit history of a customer, oldest first.
#[utoipa::path(get, path = "/customers/{id}/audit", tag = "customers", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<AuditEventDto>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn audit(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<AuditEventDto>>> {
    let events = state.app.customer_audit(&principal, parse_id(&id)?).await?;
    Ok(Json(events.into_iter().map(AuditEventDto::from).collect()))
}
