//! Browser sessions: the session cookie (the secret from [`App::sign_in`], only its hash is
//! stored), the pre-session cookie that binds the CSRF token of the sign-in and set-up forms,
//! and the [`Staff`] extractor that turns the cookie into a signed-in agent or sends the browser
//! to the sign-in page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use hmac::Mac;
use otklik_app::{App, AppError};
use otklik_domain::agent::Agent;
use otklik_domain::chat::AgentChatStatus;
use otklik_domain::permission::Principal;

use crate::error::UiError;
use crate::i18n::Lang;
use crate::{UiConfig, UiState};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
}

/// A `Set-Cookie` value. Cookies are host-only, for the whole site, and never readable by
/// scripts; `max_age = 0` deletes.
pub fn set_cookie(
    config: &UiConfig,
    name: &str,
    value: &str,
    max_age_seconds: i64,
    same_site: &str,
) -> HeaderValue {
    let secure = if config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path=/; Max-Age={max_age_seconds}; HttpOnly; SameSite={same_site}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""))
}

impl UiConfig {
    /// The session cookie's name: with `Secure`, the `__Host-` prefix also makes browsers refuse
    /// one set by a sibling sub-domain or without `Path=/`.
    pub fn session_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-otklik_session"
        } else {
            "otklik_session"
        }
    }

    /// The pre-session cookie's name (the sign-in and set-up forms' CSRF binding).
    pub fn presession_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-otklik_pre"
        } else {
            "otklik_pre"
        }
    }
}

/// The CSRF token of a browser: an HMAC keyed by its session (or pre-session) secret, so it
/// cannot be computed without that cookie and changes with every sign-in.
pub fn csrf_token(secret: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(b"otklik-ui csrf v1");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether `token` is the CSRF token of `secret` (compared in constant time).
pub fn csrf_token_matches(secret: &str, token: &str) -> bool {
    let Ok(submitted) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim())
    else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(b"otklik-ui csrf v1");
    mac.verify_slice(&submitted).is_ok()
}

/// A fresh random secret for the pre-session cookie.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The pre-session secret of a browser that is not signed in: the existing cookie, or a new one
/// to set with the page (`Some(set_cookie)`).
pub fn presession(config: &UiConfig, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, config.presession_cookie()).filter(|value| value.len() >= 32) {
        Some(secret) => (secret, None),
        None => {
            let secret = random_secret();
            let header = set_cookie(
                config,
                config.presession_cookie(),
                &secret,
                24 * 3600,
                "Strict",
            );
            (secret, Some(header))
        }
    }
}

/// A local path to return to after signing in; anything else (another site, `//host`, a
/// backslash trick) becomes the inbox.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/inbox".to_owned(),
    }
}

/// A signed-in agent, with what every page needs to draw its frame.
#[derive(Debug, Clone)]
pub struct Staff {
    pub principal: Principal,
    pub agent: Agent,
    pub lang: Lang,
    /// The CSRF token for this session's forms and htmx requests.
    pub csrf: String,
    /// The requested path and query, for the language switcher's way back.
    pub path: String,
    /// The helpdesk's name (Admin → Settings), shown in the header.
    pub helpdesk_name: String,
    /// The agent's chat availability and load, shown in the header of every page; `None` for
    /// a role that may not read tickets.
    pub chat: Option<AgentChatStatus>,
}

impl FromRequestParts<UiState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &UiState,
    ) -> Result<Self, Self::Rejection> {
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_owned();
        let secret = cookie(&parts.headers, state.config.session_cookie());
        let Some(secret) = secret else {
            return Err(to_sign_in(parts, state, &path, false));
        };
        let (authenticated, settings) = tokio::join!(
            authenticate(&state.app, &secret),
            state.app.instance_settings()
        );
        let settings = settings.map_err(|error| UiError::from(error).into_response())?;
        match authenticated {
            Ok((principal, agent)) => {
                // One indexed read: the header shows it on every page ("2/3 chats").
                let chat = state.app.chat_status(&principal).await.ok();
                // The language the agent chose wins on every browser; else this browser's.
                let lang = agent
                    .locale
                    .as_deref()
                    .and_then(Lang::from_code)
                    .unwrap_or_else(|| request_lang(&parts.headers, state, &settings));
                Ok(Staff {
                    principal,
                    agent,
                    lang,
                    csrf: csrf_token(&secret),
                    path,
                    helpdesk_name: settings.helpdesk_name,
                    chat,
                })
            }
            Err(AppError::Unauthenticated) => Err(to_sign_in(parts, state, &path, true)),
            Err(error) => Err(UiError::from(error).into_response()),
        }
    }
}

/// The language of a request before anyone signs in: the switcher's cookie, else
/// `Accept-Language`, else the settings' default, else the configured one.
pub fn request_lang(
    headers: &HeaderMap,
    state: &UiState,
    settings: &otklik_domain::settings::InstanceSettings,
) -> Lang {
    let default = settings
        .default_language
        .as_deref()
        .and_then(Lang::from_code)
        .unwrap_or(state.config.default_language);
    Lang::of_request(headers, default)
}

async fn authenticate(app: &App, secret: &str) -> Result<(Principal, Agent), AppError> {
    let principal = app.authenticate_session(secret).await?;
    let agent = app.get_agent(&principal, principal.agent_id).await?;
    Ok((principal, agent))
}

/// Sends a browser without a live session to the sign-in page, then back to `path`. An htmx
/// request gets `HX-Redirect` (a plain redirect would be followed inside the XHR and swapped
/// into the page); an expired cookie is cleared and the page says why.
fn to_sign_in(parts: &Parts, state: &UiState, path: &str, expired: bool) -> Response {
    let mut target = String::from("/login?");
    if expired {
        target.push_str("expired=1&");
    }
    let back = if parts.headers.contains_key("hx-request") || path.starts_with("/events") {
        "/inbox"
    } else {
        path
    };
    target.push_str("next=");
    target.push_str(&crate::pages::url_encode(back));
    let mut response = if parts.headers.contains_key("hx-request") {
        let mut response = StatusCode::UNAUTHORIZED.into_response();
        if let Ok(value) = HeaderValue::from_str(&target) {
            response.headers_mut().insert("hx-redirect", value);
        }
        response
    } else if parts.uri.path() == "/events" {
        StatusCode::UNAUTHORIZED.into_response()
    } else {
        Redirect::to(&target).into_response()
    };
    if expired {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&state.config, state.config.session_cookie(), "", 0, "Lax"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csrf_token_matches_only_its_own_secret() {
        let token = csrf_token("secret one");
        assert!(csrf_token_matches("secret one", &token));
        assert!(!csrf_token_matches("secret two", &token));
        assert!(!csrf_token_matches("secret one", ""));
        assert!(!csrf_token_matches("secret one", "not base64 !"));
    }

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/tickets/1?x=2")), "/tickets/1?x=2");
        assert_eq!(safe_next(Some("//evil.test/")), "/inbox");
        assert_eq!(safe_next(Some("https://evil.test/")), "/inbox");
        assert_eq!(safe_next(Some("/\\evil.test")), "/inbox");
        assert_eq!(safe_next(None), "/inbox");
    }

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=1; b=2".parse().unwrap());
        headers.append(header::COOKIE, "c=3".parse().unwrap());
        assert_eq!(cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&headers, "c").as_deref(), Some("3"));
        assert_eq!(cookie(&headers, "d"), None);
    }
}
