//! E-mails as the workspace shows them: a customer's HTML body in an isolated frame, the raw
//! message as a download, and "retry" for a reply that could not be delivered.
//!
//! The HTML was sanitised when the mail arrived; it is still served as if it were hostile. It
//! comes from its own route with a policy that allows no script at all and puts the document in
//! a sandbox (an opaque origin, so even a sanitiser bug could not reach our cookies, pages or
//! API), and the page embeds it with `<iframe sandbox>` as a second lock. Inline pictures
//! (`cid:` parts, rewritten to attachment links at ingestion) are inlined as `data:` URLs of
//! pictures whose type we sniffed ourselves, so the sandboxed document needs no cookie and can
//! load nothing from anywhere: remote images (trackers) are blocked by the policy.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use otklik_app::AppError;
use otklik_domain::DomainError;
use otklik_domain::email::{EmailDirection, EmailRecord};
use otklik_domain::ids::{AttachmentId, EmailId};

use crate::UiState;
use crate::error::UiError;
use crate::pages::Pairs;
use crate::session::{Staff, safe_next};

/// The policy of a framed e-mail body: nothing but inline styles and inlined pictures, in a
/// sandbox whose only freedom is opening links in a new, normal tab.
pub const EMAIL_FRAME_POLICY: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; \
     font-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'; \
     sandbox allow-popups allow-popups-to-escape-sandbox";

/// Pictures larger than this stay out of the frame (they are still attachments to download).
const MAX_INLINE_IMAGE_BYTES: usize = 2 * 1024 * 1024;
/// Where ingestion points `cid:` pictures.
const ATTACHMENT_LINK: &str = "/api/v1/attachments/";

fn parse_email_id(raw: &str) -> Result<EmailId, UiError> {
    raw.parse().map_err(|_| UiError::NotFound)
}

/// Whether a sniffed type is a picture a browser shows without running anything.
pub fn is_inert_image(content_type: &str) -> bool {
    matches!(
        content_type.split(';').next().unwrap_or("").trim(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// The attachment ids the sanitised HTML points at, in order of appearance.
fn linked_attachments(html: &str) -> Vec<(String, AttachmentId)> {
    let mut found = Vec::new();
    for (start, _) in html.match_indices(ATTACHMENT_LINK) {
        let rest = &html[start + ATTACHMENT_LINK.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
            .unwrap_or(rest.len());
        if let Ok(id) = rest[..end].parse::<AttachmentId>() {
            let link = format!("{ATTACHMENT_LINK}{}", &rest[..end]);
            if !found.iter().any(|(seen, _)| *seen == link) {
                found.push((link, id));
            }
        }
    }
    found
}

/// `GET /emails/{id}/html`: the sanitised HTML body of an inbound e-mail, for an iframe.
pub async fn html_body(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = parse_email_id(&id)?;
    let email = state.app.get_email(&staff.principal, id).await?;
    let body = match (&email.direction, &email.html_body) {
        (EmailDirection::Inbound, Some(body)) => body.clone(),
        _ => return Err(UiError::NotFound),
    };
    let mut body = body;
    for (link, attachment_id) in linked_attachments(&body) {
        let inline = match state
            .app
            .get_attachment(&staff.principal, attachment_id)
            .await
        {
            Ok((meta, bytes))
                if is_inert_image(&meta.content_type) && bytes.len() <= MAX_INLINE_IMAGE_BYTES =>
            {
                format!(
                    "data:{};base64,{}",
                    meta.content_type,
                    base64::engine::general_purpose::STANDARD.encode(&bytes)
                )
            }
            // Not a picture, too big, or not this agent's to see: the picture stays empty.
            Ok(_) | Err(AppError::NotFound { .. }) => String::new(),
            Err(error) => return Err(error.into()),
        };
        body = body.replace(&link, &inline);
    }
    // Remote pictures are trackers more often than content, and the policy would block them
    // anyway (logging a violation in the agent's console): they are not even requested.
    let body = body
        .replace(" src=\"http://", " data-blocked-src=\"http://")
        .replace(" src=\"https://", " data-blocked-src=\"https://");
    let document = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><base target=\"_blank\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <style>body{{margin:8px;font:15px/1.45 system-ui,sans-serif;color:#1a1f2b;background:#fff;overflow-wrap:anywhere}}img{{max-width:100%;height:auto}}</style>\
         </head><body>{body}</body></html>"
    );
    let mut response = document.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(EMAIL_FRAME_POLICY),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    headers.insert(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    Ok(response)
}

/// `GET /emails/{id}/raw`: the message exactly as received or sent, always as a download.
pub async fn raw(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let id = parse_email_id(&id)?;
    let bytes = state.app.raw_email(&staff.principal, id).await?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"email-{id}.eml\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// `POST /emails/{id}/retry`: queues a failed reply again and goes back to its ticket (or the
/// page named by `back`).
pub async fn retry(
    State(state): State<UiState>,
    staff: Staff,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, UiError> {
    let id = parse_email_id(&id)?;
    let back = Pairs::parse(&body).get("back").to_owned();
    let email: EmailRecord = match state.app.retry_email(&staff.principal, id).await {
        Ok(email) => email,
        // Already queued again (another agent, a double click): nothing to do.
        Err(AppError::Domain(DomainError::Validation { .. })) => {
            state.app.get_email(&staff.principal, id).await?
        }
        Err(error) => return Err(error.into()),
    };
    let target = if !back.is_empty() {
        format!("{}?done=retried", safe_next(Some(&back)))
    } else if let Some(ticket_id) = email.ticket_id {
        format!("/tickets/{ticket_id}?done=retried")
    } else {
        "/inbox".to_owned()
    };
    Ok(Redirect::to(&target).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_links_in_sanitised_html_are_found_once_each() {
        let id = AttachmentId::new();
        let html = format!(
            "<p><img src=\"/api/v1/attachments/{id}\"><img src=\"/api/v1/attachments/{id}\">\
             <img src=\"/api/v1/attachments/not-an-id\"></p>"
        );
        let found = linked_attachments(&html);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1, id);
        assert_eq!(found[0].0, format!("/api/v1/attachments/{id}"));
    }

    #[test]
    fn only_plain_picture_types_are_inlined() {
        assert!(is_inert_image("image/png"));
        assert!(is_inert_image("image/jpeg"));
        assert!(!is_inert_image("image/svg+xml"));
        assert!(!is_inert_image("text/html"));
    }

    #[test]
    fn the_frame_policy_allows_no_script_and_sandboxes_the_document() {
        assert!(!EMAIL_FRAME_POLICY.contains("script-src"));
        assert!(EMAIL_FRAME_POLICY.starts_with("default-src 'none'"));
        assert!(EMAIL_FRAME_POLICY.contains("sandbox"));
        assert!(!EMAIL_FRAME_POLICY.contains("allow-scripts"));
        assert!(!EMAIL_FRAME_POLICY.contains("allow-same-origin"));
    }
}
