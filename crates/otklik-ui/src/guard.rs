//! What every request passes through: the CSRF check of state-changing methods and the
//! security headers of every response (a Content-Security-Policy without inline script).

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::UiState;
use crate::error::UiError;
use crate::session::{cookie, csrf_token_matches};

/// The form field that carries the CSRF token in plain forms.
pub const CSRF_FIELD: &str = "_csrf";
/// The header that carries it in htmx requests (set by `app.js` from the page's meta tag).
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Forms are small; a reply is at most 200,000 characters, i.e. under 2 MB url-encoded Cyrillic.
pub const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;
/// A reply with attachments (`multipart/form-data`): the files of one message together, as
/// mail providers commonly cap a message at 25 MB, plus room for the text and the part headers.
pub const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024 + MAX_FORM_BYTES;

/// The policy of every page. Scripts come only from our own embedded files, so neither inline
/// script nor `on…` attributes run, even if some text escaped escaping.
/// Frames may come only from our own origin: the sandboxed e-mail bodies (see
/// `pages::email::html_body`), which carry their own stricter policy.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Refuses a state-changing request unless it comes from our own pages: not announced as
/// cross-site by the browser (`Sec-Fetch-Site`), from our own origin if it names one, and with
/// the CSRF token of the browser's session (or pre-session, for sign-in and set-up) in the
/// `X-CSRF-Token` header or the `_csrf` field of a url-encoded or multipart form. Other bodies
/// are refused, so the token can always be checked before a handler runs.
pub async fn csrf_guard(
    State(state): State<UiState>,
    request: Request,
    next: Next,
) -> Result<Response, UiError> {
    if is_safe(request.method()) {
        return Ok(next.run(request).await);
    }
    let headers = request.headers();
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if fetch_site.is_some_and(|site| site != "same-origin" && site != "none") {
        return Err(UiError::Csrf);
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|origin| origin.split_once("://"))
            .map(|(_, rest)| rest);
        if host.is_none() || origin_host != host {
            return Err(UiError::Csrf);
        }
    }
    // A browser may hold both: a session cookie the server no longer honours and the
    // pre-session cookie of the sign-in form it is submitting. Either binds the token, since
    // only this browser has them.
    let secrets: Vec<String> = [
        cookie(headers, state.config.session_cookie()),
        cookie(headers, state.config.presession_cookie()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if secrets.is_empty() {
        return Err(UiError::Csrf);
    }
    let header_token = headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let essence = content_type.as_deref().map(|value| {
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    let boundary = match essence.as_deref() {
        None | Some("application/x-www-form-urlencoded") => None,
        Some("multipart/form-data") => Some(
            content_type
                .as_deref()
                .and_then(|value| multer::parse_boundary(value).ok())
                .ok_or(UiError::BadRequest)?,
        ),
        Some(_) => return Err(UiError::BadRequest),
    };
    let limit = if boundary.is_some() {
        MAX_UPLOAD_BYTES
    } else {
        MAX_FORM_BYTES
    };
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, limit).await.map_err(|_| UiError::TooLarge)?;
    let token = match (header_token, boundary) {
        (Some(token), _) => Some(token),
        (None, None) => form_urlencoded_pairs(&bytes)
            .find(|(key, _)| key == CSRF_FIELD)
            .map(|(_, value)| value),
        (None, Some(boundary)) => multipart_field(bytes.clone(), boundary, CSRF_FIELD).await,
    };
    match token {
        Some(token)
            if secrets
                .iter()
                .any(|secret| csrf_token_matches(secret, &token)) =>
        {
            Ok(next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await)
        }
        _ => Err(UiError::Csrf),
    }
}

/// The text of the first field `name` of a buffered multipart body (our forms put `_csrf`
/// first, so the files after it are not even looked at).
async fn multipart_field(bytes: axum::body::Bytes, boundary: String, name: &str) -> Option<String> {
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some(name) {
            return field.text().await.ok();
        }
    }
    None
}

/// The pairs of a url-encoded body, in order (repeated names kept).
pub(crate) fn form_urlencoded_pairs(bytes: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    bytes.split(|byte| *byte == b'&').filter_map(|pair| {
        let text = std::str::from_utf8(pair).ok()?;
        let (key, value) = text.split_once('=').unwrap_or((text, ""));
        Some((
            crate::pages::url_decode(key),
            crate::pages::url_decode(value),
        ))
    })
}

/// Adds the security headers to every response; a response that set its own policy (an
/// attachment download) keeps it. Pages are never cached: they show live, private data.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await.into_response();
    let headers = response.headers_mut();
    let defaults: [(HeaderName, &str); 6] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}
