//! Signing in and out, the first-run set-up page, and the language switch.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use otklik_app::AppError;
use otklik_app::auth::SESSION_TTL;
use otklik_domain::DomainError;
use serde::Deserialize;

use crate::UiState;
use crate::error::UiError;
use crate::i18n::{LANG_COOKIE, Lang};
use crate::pages::{Frame, html};
use crate::session::{Staff, cookie, csrf_token, presession, safe_next, set_cookie};

/// Field-level problems of a submitted form, shown next to each field.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: String) {
        self.0.push((field, message));
    }

    /// The message for `field`, if it has one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, message)| message.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds every problem of `other`.
    pub fn merge(&mut self, other: FieldErrors) {
        self.0.extend(other.0);
    }
}

/// A person-readable message for a refused field value. Domain reasons are English sentences
/// for the API; here the common ones get their own translation and the rest a general one.
pub fn field_message(lang: Lang, field: &str, reason: &str) -> String {
    let key = if reason.contains("must not be empty") {
        "form-error-required"
    } else if field == "password" {
        "form-error-password"
    } else if field == "email" {
        "form-error-email"
    } else if reason.contains("at most") {
        "form-error-too-long"
    } else {
        "form-error-invalid"
    };
    lang.t(key)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginTemplate {
    page: Frame,
    email: String,
    next: String,
    /// A message key: wrong credentials.
    error: Option<&'static str>,
    /// A message key: why the person is here (the session expired, they signed out).
    notice: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    expired: Option<String>,
}

/// `GET /`: the inbox, or the sign-in page on the way to it.
pub async fn root(_staff: Staff) -> Redirect {
    Redirect::to("/inbox")
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<UiState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Result<Response, UiError> {
    let next = safe_next(query.next.as_deref());
    let session = cookie(&headers, state.config.session_cookie());
    if let Some(secret) = &session
        && state.app.authenticate_session(secret).await.is_ok()
    {
        return Ok(Redirect::to(&next).into_response());
    }
    let lang = Lang::of_request(&headers, state.config.default_language);
    let (secret, set) = presession(&state.config, &headers);
    let template = LoginTemplate {
        page: Frame::anonymous(lang, csrf_token(&secret), login_path(&next)),
        email: String::new(),
        next,
        error: None,
        notice: query.expired.is_some().then_some("login-expired"),
    };
    let mut response = html(&template)?;
    if let Some(set) = set {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    if session.is_some() {
        // A session the server no longer honours: forget it.
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&state.config, state.config.session_cookie(), "", 0, "Lax"),
        );
    }
    Ok(response)
}

fn login_path(next: &str) -> String {
    format!("/login?next={}", crate::pages::url_encode(next))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// `POST /login`: a session cookie and the page the person was going to, or the form again
/// with the e-mail kept.
pub async fn login(
    State(state): State<UiState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, UiError> {
    let next = safe_next(form.next.as_deref());
    match state.app.sign_in(&form.email, form.password).await {
        Ok((secret, _session)) => {
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(
                    &state.config,
                    state.config.session_cookie(),
                    &secret,
                    SESSION_TTL.as_secs(),
                    "Lax",
                ),
            );
            Ok(response)
        }
        Err(AppError::Unauthenticated) => {
            let lang = Lang::of_request(&headers, state.config.default_language);
            let (secret, set) = presession(&state.config, &headers);
            let template = LoginTemplate {
                page: Frame::anonymous(lang, csrf_token(&secret), login_path(&next)),
                email: form.email,
                next,
                error: Some("login-failed"),
                notice: None,
            };
            let mut response = (StatusCode::UNAUTHORIZED, html(&template)?).into_response();
            if let Some(set) = set {
                response.headers_mut().append(header::SET_COOKIE, set);
            }
            Ok(response)
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST /logout`: ends the session on the server and in the browser.
pub async fn logout(State(state): State<UiState>, headers: HeaderMap) -> Result<Response, UiError> {
    if let Some(secret) = cookie(&headers, state.config.session_cookie()) {
        state.app.sign_out(&secret).await?;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state.config, state.config.session_cookie(), "", 0, "Lax"),
    );
    Ok(response)
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupTemplate {
    page: Frame,
    token: String,
    email: String,
    name: String,
    errors: FieldErrors,
    /// A message key for the whole form (an invalid or used link).
    error: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

/// `GET /setup?token=…`: the form that creates the first admin.
pub async fn setup_page(
    State(state): State<UiState>,
    headers: HeaderMap,
    Query(query): Query<SetupQuery>,
) -> Result<Response, UiError> {
    let lang = Lang::of_request(&headers, state.config.default_language);
    let (secret, set) = presession(&state.config, &headers);
    let template = SetupTemplate {
        page: Frame::anonymous(
            lang,
            csrf_token(&secret),
            format!("/setup?token={}", crate::pages::url_encode(&query.token)),
        ),
        error: query.token.is_empty().then_some("setup-no-token"),
        token: query.token,
        email: String::new(),
        name: String::new(),
        errors: FieldErrors::default(),
    };
    let mut response = html(&template)?;
    if let Some(set) = set {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
}

/// `POST /setup`: spends the one-time token, creates the admin and signs them in.
pub async fn setup(
    State(state): State<UiState>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Result<Response, UiError> {
    let lang = Lang::of_request(&headers, state.config.default_language);
    let mut errors = FieldErrors::default();
    let mut error = None;
    if form.password != form.password_again {
        errors.add("password_again", lang.t("setup-password-mismatch"));
    } else {
        match state
            .app
            .complete_setup(&form.token, &form.email, &form.name, form.password.clone())
            .await
        {
            Ok(agent) => {
                let (secret, _) = state.app.sign_in(&agent.email, form.password).await?;
                let mut response = Redirect::to("/inbox").into_response();
                response.headers_mut().append(
                    header::SET_COOKIE,
                    set_cookie(
                        &state.config,
                        state.config.session_cookie(),
                        &secret,
                        SESSION_TTL.as_secs(),
                        "Lax",
                    ),
                );
                return Ok(response);
            }
            Err(AppError::Unauthenticated) => error = Some("setup-invalid-token"),
            Err(AppError::Domain(DomainError::Validation { field, reason })) => {
                errors.add(field, field_message(lang, field, &reason));
            }
            Err(AppError::Conflict { .. }) => {
                errors.add("email", lang.t("form-error-email-taken"));
            }
            Err(other) => return Err(other.into()),
        }
    }
    let (secret, _) = presession(&state.config, &headers);
    let template = SetupTemplate {
        page: Frame::anonymous(lang, csrf_token(&secret), "/setup".into()),
        token: form.token,
        email: form.email,
        name: form.name,
        errors,
        error,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, html(&template)?).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LanguageForm {
    lang: String,
    next: Option<String>,
}

/// `POST /lang`: remembers the chosen language in this browser and goes back.
pub async fn switch_language(
    State(state): State<UiState>,
    Form(form): Form<LanguageForm>,
) -> Result<Response, UiError> {
    let lang = Lang::from_code(&form.lang).ok_or(UiError::BadRequest)?;
    let next = safe_next(form.next.as_deref());
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &state.config,
            LANG_COOKIE,
            lang.code(),
            365 * 24 * 3600,
            "Lax",
        ),
    );
    Ok(response)
}
