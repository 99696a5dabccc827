//! Request extractors: who is calling, the JSON body, the query string, ids in paths.

use std::str::FromStr;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use otklik_app::AppError;
use otklik_app::idempotency::IdempotencyKey;
use otklik_domain::permission::Principal;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// The authenticated caller, from an `Authorization: Bearer otk_…` API token.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        let Some(token) = header.and_then(|value| value.strip_prefix("Bearer ")) else {
            return Err(AppError::Unauthenticated.into());
        };
        let principal = state.app.authenticate_token(token.trim()).await?;
        Ok(Auth(principal))
    }
}

/// A query string parsed into `T`; a wrong or unknown parameter is a 400 with the reason.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::InvalidQuery(rejection.body_text()))
    }
}

/// Parses a JSON body: wrong media type → 415, broken JSON → 400, JSON that does not fit the
/// schema (unknown fields included) → 422. Nothing is changed on any of these.
pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> ApiResult<T> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(body).map_err(|error| match error.classify() {
        serde_json::error::Category::Syntax
        | serde_json::error::Category::Eof
        | serde_json::error::Category::Io => ApiError::MalformedJson(error.to_string()),
        serde_json::error::Category::Data => ApiError::InvalidBody(error.to_string()),
    })
}

/// An id from a path segment. A malformed id cannot name anything, so it is "not found".
pub fn parse_id<T: FromStr>(raw: &str) -> ApiResult<T> {
    raw.parse::<T>().map_err(|_| ApiError::NotFound)
}

/// The `Idempotency-Key` of a POST, bound to the caller and the exact request.
pub fn idempotency_key(
    headers: &HeaderMap,
    principal: &Principal,
    method: &Method,
    path: &str,
    body: &[u8],
) -> ApiResult<Option<IdempotencyKey>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::InvalidQuery("Idempotency-Key must be visible ASCII".into()))?;
    // Keys are scoped to the agent, so a retry through another of their tokens still replays.
    let owner = format!("agent:{}", principal.agent_id);
    Ok(Some(IdempotencyKey::new(
        owner,
        key,
        method.as_str(),
        path,
        body,
    )?))
}
