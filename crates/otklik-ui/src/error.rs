//! Errors as pages a person understands, in their language. A handler returns [`UiError`]; its
//! response carries only a marker, and [`render_errors`] (which knows the request's language)
//! draws the page.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use otklik_app::AppError;

use crate::UiState;
use crate::i18n::Lang;
use crate::pages::Frame;

/// Why a page cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// Missing, or not visible to this agent: the two look the same on purpose.
    #[error("not found")]
    NotFound,
    /// The path exists, but not for this method (a GET to a form's target).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The agent's role does not allow this.
    #[error("forbidden")]
    Forbidden,
    /// A state-changing request without a valid CSRF token, or from another site.
    #[error("cross-site request refused")]
    Csrf,
    /// A malformed request (a broken cursor, a body that is not a form).
    #[error("bad request")]
    BadRequest,
    /// A form body larger than allowed.
    #[error("request too large")]
    TooLarge,
    /// Something broke on our side; the cause is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The marker [`UiError`] leaves on its response for [`render_errors`]: the message keys.
#[derive(Debug, Clone, Copy)]
struct ErrorPage {
    title_key: &'static str,
    text_key: &'static str,
}

impl UiError {
    fn status(&self) -> StatusCode {
        match self {
            UiError::NotFound => StatusCode::NOT_FOUND,
            UiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            UiError::Forbidden | UiError::Csrf => StatusCode::FORBIDDEN,
            UiError::BadRequest => StatusCode::BAD_REQUEST,
            UiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message_keys(&self) -> (&'static str, &'static str) {
        match self {
            UiError::NotFound => ("error-404-title", "error-404-text"),
            UiError::MethodNotAllowed => ("error-405-title", "error-405-text"),
            UiError::Forbidden => ("error-403-title", "error-403-text"),
            UiError::Csrf => ("error-csrf-title", "error-csrf-text"),
            UiError::BadRequest => ("error-400-title", "error-400-text"),
            UiError::TooLarge => ("error-413-title", "error-413-text"),
            UiError::Internal(_) => ("error-500-title", "error-500-text"),
        }
    }
}

impl From<AppError> for UiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::NotFound { .. } => UiError::NotFound,
            AppError::Forbidden(_) | AppError::Unauthenticated => UiError::Forbidden,
            AppError::Domain(_)
            | AppError::InvalidReference { .. }
            | AppError::Conflict { .. }
            | AppError::Refused { .. }
            | AppError::RateLimited { .. }
            | AppError::IdempotencyKeyReused => UiError::BadRequest,
            AppError::TooLarge(_) => UiError::TooLarge,
            AppError::Store(error) => {
                tracing::error!(error = %error, cause = ?std::error::Error::source(&error), "storage failed while serving a page");
                UiError::Internal(error.to_string())
            }
        }
    }
}

impl From<askama::Error> for UiError {
    fn from(error: askama::Error) -> Self {
        tracing::error!(%error, "a template failed to render");
        UiError::Internal(error.to_string())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        if let UiError::Internal(cause) = &self {
            tracing::warn!(%cause, "answering with the error page");
        }
        let (title_key, text_key) = self.message_keys();
        let mut response = self.status().into_response();
        response.extensions_mut().insert(ErrorPage {
            title_key,
            text_key,
        });
        response
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate {
    page: Frame,
    title_key: &'static str,
    text_key: &'static str,
    status: u16,
}

/// Replaces the bodies of [`UiError`] responses with an error page in the request's language.
pub async fn render_errors(State(state): State<UiState>, request: Request, next: Next) -> Response {
    let lang = Lang::of_request(request.headers(), state.config.default_language);
    let response = next.run(request).await;
    let Some(ErrorPage {
        title_key,
        text_key,
    }) = response.extensions().get::<ErrorPage>().copied()
    else {
        return response;
    };
    let status = response.status();
    let template = ErrorTemplate {
        page: Frame::anonymous(lang, String::new(), "/".into()),
        title_key,
        text_key,
        status: status.as_u16(),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    match template.render() {
        Ok(html) => (parts, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "the error page failed to render");
            (parts, "error").into_response()
        }
    }
}
