//! One API error type. Every failure leaves as RFC 9457 problem details with a stable `code`;
//! the table in [`ApiError::status_and_code`] is the single place that decides status codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use otklik_app::AppError;
use otklik_domain::DomainError;
use otklik_domain::permission::Denied;
use serde::Serialize;
use utoipa::ToSchema;

/// An error on its way to the client.
#[derive(Debug)]
pub enum ApiError {
    /// A use case refused or failed.
    App(AppError),
    /// The request body is not valid JSON.
    MalformedJson(String),
    /// The JSON is well-formed but does not fit the schema (unknown or missing field, bad type).
    InvalidBody(String),
    /// A query-string parameter is wrong.
    InvalidQuery(String),
    /// The body is not JSON (wrong Content-Type).
    UnsupportedMediaType,
    /// The body is larger than the route accepts.
    PayloadTooLarge,
    /// No route or no such object.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The request took longer than the server allows.
    Timeout,
}

/// RFC 9457 problem details, as every error is sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URN naming the problem type: `urn:otklik:problem:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the problem type.
    pub title: String,
    pub status: u16,
    /// What went wrong with this request, in plain words.
    pub detail: String,
    /// The stable machine-readable code (same as the end of `type`).
    pub code: String,
    /// The input field at fault, for validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        ApiError::App(error)
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        ApiError::App(AppError::Domain(error))
    }
}

impl ApiError {
    /// The status, stable code and title of each error.
    fn status_and_code(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            ApiError::MalformedJson(_) => (S::BAD_REQUEST, "malformed_json", "Malformed JSON"),
            ApiError::InvalidBody(_) => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "Invalid request body",
            ),
            ApiError::InvalidQuery(_) => {
                (S::BAD_REQUEST, "invalid_query", "Invalid query parameter")
            }
            ApiError::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            ApiError::PayloadTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            ApiError::NotFound => (S::NOT_FOUND, "not_found", "Not found"),
            ApiError::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            ApiError::Timeout => (S::REQUEST_TIMEOUT, "timeout", "Request timeout"),
            ApiError::App(error) => match error {
                AppError::Unauthenticated => (
                    S::UNAUTHORIZED,
                    "unauthenticated",
                    "Authentication required",
                ),
                AppError::Forbidden(Denied::Role) => (S::FORBIDDEN, "forbidden", "Forbidden"),
                AppError::Forbidden(Denied::Scope(_)) => (
                    S::FORBIDDEN,
                    "insufficient_scope",
                    "Insufficient token scope",
                ),
                AppError::NotFound { .. } => (S::NOT_FOUND, "not_found", "Not found"),
                AppError::Domain(DomainError::Validation { .. }) => (
                    S::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    "Validation failed",
                ),
                AppError::Domain(DomainError::InvalidTransition { .. }) => (
                    S::CONFLICT,
                    "invalid_transition",
                    "Invalid status transition",
                ),
                AppError::Domain(DomainError::TicketMerged { .. }) => {
                    (S::CONFLICT, "ticket_merged", "Ticket was merged")
                }
                AppError::Domain(DomainError::TicketClosed) => {
                    (S::CONFLICT, "ticket_closed", "Ticket is closed")
                }
                AppError::Domain(DomainError::InvalidMerge(_)) => {
                    (S::CONFLICT, "invalid_merge", "Invalid merge")
                }
                AppError::InvalidReference { .. } => (
                    S::UNPROCESSABLE_ENTITY,
                    "invalid_reference",
                    "Invalid reference",
                ),
                AppError::Conflict { code, .. } => (S::CONFLICT, code, "Conflict"),
                AppError::IdempotencyKeyReused => (
                    S::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "Idempotency key reused",
                ),
                AppError::TooLarge(_) => (
                    S::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "Payload too large",
                ),
                AppError::Refused { code, .. } if *code == "unsupported_type" => {
                    (S::UNSUPPORTED_MEDIA_TYPE, code, "Unsupported file type")
                }
                AppError::Refused { code, .. } => (S::FORBIDDEN, code, "Refused"),
                AppError::RateLimited { .. } => {
                    (S::TOO_MANY_REQUESTS, "rate_limited", "Too many requests")
                }
                AppError::Store(_) => {
                    (S::INTERNAL_SERVER_ERROR, "internal_error", "Internal error")
                }
            },
        }
    }

    fn detail_and_field(&self) -> (String, Option<String>) {
        match self {
            ApiError::MalformedJson(detail)
            | ApiError::InvalidBody(detail)
            | ApiError::InvalidQuery(detail) => (detail.clone(), None),
            ApiError::UnsupportedMediaType => ("send the body as application/json".into(), None),
            ApiError::PayloadTooLarge => (
                "the request body is larger than this endpoint accepts".into(),
                None,
            ),
            ApiError::NotFound => ("no such resource".into(), None),
            ApiError::MethodNotAllowed => {
                ("this resource does not support that method".into(), None)
            }
            ApiError::Timeout => (
                "the request took too long and was stopped; retry".into(),
                None,
            ),
            // Storage failures are logged in full and shown generically.
            ApiError::App(AppError::Store(_)) => (
                "something went wrong on our side; it was logged".into(),
                None,
            ),
            ApiError::App(AppError::Domain(DomainError::Validation { field, reason })) => {
                (format!("{field}: {reason}"), Some((*field).to_owned()))
            }
            ApiError::App(AppError::InvalidReference { field, reason }) => {
                (format!("{field}: {reason}"), Some((*field).to_owned()))
            }
            ApiError::App(error) => (error.to_string(), None),
        }
    }

    /// The problem document of this error.
    pub fn problem(&self) -> (StatusCode, Problem) {
        let (status, code, title) = self.status_and_code();
        let (detail, field) = self.detail_and_field();
        let problem = Problem {
            problem_type: format!("urn:otklik:problem:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            field,
        };
        (status, problem)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::App(AppError::Store(error)) = &self {
            let chain = error_chain(error);
            tracing::error!(error = %chain, "storage failure while serving a request");
        }
        let (status, problem) = self.problem();
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let ApiError::App(AppError::RateLimited {
            retry_after_seconds,
            ..
        }) = &self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
        response
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The result of every handler.
pub type ApiResult<T> = Result<T, ApiError>;
