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
use crate::session::{Staff, cookie, csrf_token, presession, request_lang, safe_next, set_cookie};

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
    /// Set after a password reset: the page says the new password is ready.
    reset: Option<String>,
}

/// The language and the helpdesk's name for a page shown before signing in.
async fn anonymous(state: &UiState, headers: &HeaderMap) -> Result<(Lang, String), UiError> {
    let settings = state.app.instance_settings().await?;
    Ok((
        request_lang(headers, state, &settings),
        settings.helpdesk_name,
    ))
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
    let (lang, brand) = anonymous(&state, &headers).await?;
    let (secret, set) = presession(&state.config, &headers);
    let notice = if query.reset.is_some() {
        Some("login-reset-done")
    } else {
        query.expired.is_some().then_some("login-expired")
    };
    let template = LoginTemplate {
        page: Frame::anonymous(lang, csrf_token(&secret), login_path(&next)).branded(&brand),
        email: String::new(),
        next,
        error: None,
        notice,
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
            // The language the agent chose follows them to this browser, over its cookie and
            // Accept-Language (also on the pages shown after signing out).
            if let Some(lang) = saved_language(&state, &secret).await {
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, language_cookie(&state, lang));
            }
            Ok(response)
        }
        Err(AppError::Unauthenticated) => {
            let (lang, brand) = anonymous(&state, &headers).await?;
            let (secret, set) = presession(&state.config, &headers);
            let template = LoginTemplate {
                page: Frame::anonymous(lang, csrf_token(&secret), login_path(&next))
                    .branded(&brand),
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
    let (lang, brand) = anonymous(&state, &headers).await?;
    let (secret, set) = presession(&state.config, &headers);
    let template = SetupTemplate {
        page: Frame::anonymous(
            lang,
            csrf_token(&secret),
            format!("/setup?token={}", crate::pages::url_encode(&query.token)),
        )
        .branded(&brand),
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
    let (lang, brand) = anonymous(&state, &headers).await?;
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
        page: Frame::anonymous(lang, csrf_token(&secret), "/setup".into()).branded(&brand),
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

/// `POST /lang`: remembers the chosen language in this browser and, for a signed-in agent, on
/// their account (so it follows them to other browsers), then goes back.
pub async fn switch_language(
    State(state): State<UiState>,
    headers: HeaderMap,
    Form(form): Form<LanguageForm>,
) -> Result<Response, UiError> {
    let lang = Lang::from_code(&form.lang).ok_or(UiError::BadRequest)?;
    let next = safe_next(form.next.as_deref());
    if let Some(secret) = cookie(&headers, state.config.session_cookie()) {
        match state.app.authenticate_session(&secret).await {
            Ok(principal) => state.app.set_own_locale(&principal, lang.code()).await?,
            // A stale session still switches this browser's language.
            Err(AppError::Unauthenticated) => {}
            Err(error) => return Err(error.into()),
        }
    }
    let mut response = Redirect::to(&next).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, language_cookie(&state, lang));
    Ok(response)
}

fn language_cookie(state: &UiState, lang: Lang) -> axum::http::HeaderValue {
    set_cookie(
        &state.config,
        LANG_COOKIE,
        lang.code(),
        365 * 24 * 3600,
        "Lax",
    )
}

/// The language saved on the account behind a fresh session, if the agent chose one.
async fn saved_language(state: &UiState, session_secret: &str) -> Option<Lang> {
    let principal = state.app.authenticate_session(session_secret).await.ok()?;
    let agent = state
        .app
        .get_agent(&principal, principal.agent_id)
        .await
        .ok()?;
    agent.locale.as_deref().and_then(Lang::from_code)
}

// --- Forgot password ------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotTemplate {
    page: Frame,
    email: String,
    /// Some mailbox can send reset links; otherwise the page says to ask an admin.
    configured: bool,
    /// The request was taken (the same answer whatever the address).
    sent: bool,
}

/// `GET /forgot-password`: the form asking for the e-mail, or why there is none.
pub async fn forgot_page(
    State(state): State<UiState>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let (lang, brand) = anonymous(&state, &headers).await?;
    let configured = state.app.password_reset_configured().await?;
    let (secret, set) = presession(&state.config, &headers);
    let template = ForgotTemplate {
        page: Frame::anonymous(lang, csrf_token(&secret), "/forgot-password".into())
            .branded(&brand),
        email: String::new(),
        configured,
        sent: false,
    };
    let mut response = html(&template)?;
    if let Some(set) = set {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

/// `POST /forgot-password`: always the same answer. The work (finding the agent, the hourly
/// limit, writing the e-mail) runs after the answer, so neither the page nor its timing tells
/// whether an account exists.
pub async fn forgot(
    State(state): State<UiState>,
    headers: HeaderMap,
    Form(form): Form<ForgotForm>,
) -> Result<Response, UiError> {
    let (lang, brand) = anonymous(&state, &headers).await?;
    let configured = state.app.password_reset_configured().await?;
    if configured {
        let app = state.app.clone();
        let base = state.config.fallback_base_url.clone();
        let email = form.email.chars().take(320).collect::<String>();
        tokio::spawn(async move {
            if let Err(error) = app.request_password_reset(&email, &base, lang.code()).await {
                tracing::warn!(%error, "a password reset request failed");
            }
        });
    }
    let (secret, _) = presession(&state.config, &headers);
    html(&ForgotTemplate {
        page: Frame::anonymous(lang, csrf_token(&secret), "/forgot-password".into())
            .branded(&brand),
        email: form.email,
        configured,
        sent: configured,
    })
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetTemplate {
    page: Frame,
    token: String,
    /// The link can still be used; otherwise the page says it expired or was used.
    usable: bool,
    errors: FieldErrors,
}

#[derive(Debug, Deserialize)]
pub struct ResetQuery {
    #[serde(default)]
    token: String,
}

/// `GET /reset-password?token=…`: the new-password form of a reset link.
pub async fn reset_page(
    State(state): State<UiState>,
    headers: HeaderMap,
    Query(query): Query<ResetQuery>,
) -> Result<Response, UiError> {
    let (lang, brand) = anonymous(&state, &headers).await?;
    let usable = state.app.password_reset_token_usable(&query.token).await?;
    let (secret, set) = presession(&state.config, &headers);
    let template = ResetTemplate {
        // The token stays out of the language switcher's way back (and so out of a form).
        page: Frame::anonymous(lang, csrf_token(&secret), "/forgot-password".into())
            .branded(&brand),
        token: query.token,
        usable,
        errors: FieldErrors::default(),
    };
    let mut response = html(&template)?;
    if !usable {
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    if let Some(set) = set {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    // The page's URL holds a secret: keep it out of referrers and caches.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("valid"));
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
}

/// `POST /reset-password`: spends the link, sets the password, ends every session of the
/// agent, and sends the browser to sign in with it.
pub async fn reset(
    State(state): State<UiState>,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Result<Response, UiError> {
    let (lang, brand) = anonymous(&state, &headers).await?;
    let mut errors = FieldErrors::default();
    let mut usable = true;
    if form.password != form.password_again {
        errors.add("password_again", lang.t("setup-password-mismatch"));
    } else {
        match state
            .app
            .reset_password(&form.token, form.password.clone())
            .await
        {
            Ok(_) => return Ok(Redirect::to("/login?reset=1").into_response()),
            Err(AppError::Unauthenticated) => usable = false,
            Err(AppError::Domain(DomainError::Validation { field, reason })) => {
                errors.add(field, field_message(lang, field, &reason));
            }
            Err(other) => return Err(other.into()),
        }
    }
    let (secret, _) = presession(&state.config, &headers);
    let template = ResetTemplate {
        page: Frame::anonymous(lang, csrf_token(&secret), "/forgot-password".into())
            .branded(&brand),
        token: form.token,
        usable,
        errors,
    };
    let status = if usable {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::NOT_FOUND
    };
    Ok((status, html(&template)?).into_response())
}
