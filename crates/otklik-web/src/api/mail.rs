//! The email channel: `/mailboxes` (admins), `/emails` (records, raw bytes, retry, quarantine)
//! and `/tickets/{id}/emails`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use jiff::Timestamp;
use otklik_app::mail::{IngestOutcome, MailboxCheck, MailboxInput, redact_url};
use otklik_domain::email::{EmailRecord, EmailStatus, Mailbox};
use otklik_domain::ids::{EmailId, MailboxId, TicketId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::AppState;
use crate::dto::Page;
use crate::error::{ApiResult, Problem};
use crate::extract::{ApiQuery, Auth, parse_id, parse_json};

/// A support mailbox. Credentials in its URLs are never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxDto {
    pub id: Uuid,
    pub name: String,
    pub address: String,
    /// The IMAP URL with its password replaced by `***`.
    pub imap_url: Option<String>,
    /// The SMTP URL with its password replaced by `***`.
    pub smtp_url: Option<String>,
    pub auto_acknowledge: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<Mailbox> for MailboxDto {
    fn from(mailbox: Mailbox) -> Self {
        MailboxDto {
            id: mailbox.id.0,
            name: mailbox.name,
            address: mailbox.address,
            imap_url: mailbox.imap_url.as_deref().map(redact_url),
            smtp_url: mailbox.smtp_url.as_deref().map(redact_url),
            auto_acknowledge: mailbox.auto_acknowledge,
            created_at: mailbox.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMailboxDto {
    /// A short name: letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// The address customers write to.
    pub address: String,
    /// `imaps://user:password@host:993/INBOX`.
    pub imap_url: Option<String>,
    /// `smtps://user:password@host:465` or `smtp://user:password@host:587`.
    pub smtp_url: Option<String>,
    /// Send an automatic acknowledgement for new e-mail tickets (default true).
    pub auto_acknowledge: Option<bool>,
}

/// One server's answer to "test connection".
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckDto {
    pub ok: bool,
    /// What failed, when it did.
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxCheckDto {
    /// Absent when the mailbox has no IMAP settings.
    pub imap: Option<CheckDto>,
    /// Absent when the mailbox has no SMTP settings.
    pub smtp: Option<CheckDto>,
}

fn check_dto(result: Option<Result<(), String>>) -> Option<CheckDto> {
    result.map(|result| CheckDto {
        ok: result.is_ok(),
        error: result.err(),
    })
}

impl From<MailboxCheck> for MailboxCheckDto {
    fn from(check: MailboxCheck) -> Self {
        MailboxCheckDto {
            imap: check_dto(check.imap),
            smtp: check_dto(check.smtp),
        }
    }
}

/// An e-mail received or sent.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailDto {
    pub id: Uuid,
    pub mailbox_id: Uuid,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `processed`, `quarantined`, `ignored`, `queued`, `sent` or `failed`.
    pub status: String,
    /// Why it was quarantined, ignored or failed, or the last temporary error.
    pub status_reason: Option<String>,
    /// The Message-ID header, without angle brackets.
    pub message_id_header: Option<String>,
    pub ticket_id: Option<Uuid>,
    /// The ticket message it became (inbound) or came from (outbound).
    pub message_id: Option<Uuid>,
    pub from_address: Option<String>,
    pub recipients: Vec<String>,
    pub subject: String,
    /// Sanitised HTML of an inbound e-mail; show it in a sandboxed frame.
    pub html_body: Option<String>,
    /// The quoted history and signature folded away from the message body.
    pub folded_text: Option<String>,
    /// Sent by Otklik without a person (an acknowledgement).
    pub automatic: bool,
    pub attempts: i32,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<EmailRecord> for EmailDto {
    fn from(email: EmailRecord) -> Self {
        EmailDto {
            id: email.id.0,
            mailbox_id: email.mailbox_id.0,
            direction: email.direction.as_str().into(),
            status: email.status.as_str().into(),
            status_reason: email.status_reason,
            message_id_header: email.message_id_header,
            ticket_id: email.ticket_id.map(|id| id.0),
            message_id: email.message_id.map(|id| id.0),
            from_address: email.from_address,
            recipients: email.recipients,
            subject: email.subject,
            html_body: email.html_body,
            folded_text: email.folded_text,
            automatic: email.automatic,
            attempts: email.attempts,
            next_attempt_at: email.next_attempt_at,
            created_at: email.created_at,
            updated_at: email.updated_at,
        }
    }
}

/// What re-processing a quarantined e-mail did.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResultDto {
    /// `ticket`, `duplicate`, `quarantined` or `ignored`.
    pub outcome: String,
    pub ticket_id: Option<Uuid>,
    pub ticket_number: Option<i64>,
    pub reason: Option<String>,
}

impl From<IngestOutcome> for IngestResultDto {
    fn from(outcome: IngestOutcome) -> Self {
        match outcome {
            IngestOutcome::Ticket {
                ticket_id, number, ..
            } => IngestResultDto {
                outcome: "ticket".into(),
                ticket_id: Some(ticket_id.0),
                ticket_number: Some(number),
                reason: None,
            },
            IngestOutcome::Duplicate { ticket_number } => IngestResultDto {
                outcome: "duplicate".into(),
                ticket_id: None,
                ticket_number,
                reason: None,
            },
            IngestOutcome::Quarantined { reason, .. } => IngestResultDto {
                outcome: "quarantined".into(),
                ticket_id: None,
                ticket_number: None,
                reason: Some(reason),
            },
            IngestOutcome::Ignored { reason, .. } => IngestResultDto {
                outcome: "ignored".into(),
                ticket_id: None,
                ticket_number: None,
                reason: Some(reason),
            },
        }
    }
}

/// List mailboxes (admins).
#[utoipa::path(get, path = "/mailboxes", tag = "email",
    responses((status = 200, body = Vec<MailboxDto>), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_mailboxes(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<Json<Vec<MailboxDto>>> {
    let mailboxes = state.app.list_mailboxes(&principal).await?;
    Ok(Json(mailboxes.into_iter().map(MailboxDto::from).collect()))
}

/// Add a mailbox (admins).
#[utoipa::path(post, path = "/mailboxes", tag = "email", request_body = CreateMailboxDto,
    responses((status = 201, body = MailboxDto), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_mailbox(
    State(state): State<AppState>,
    Auth(principal): Auth,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<MailboxDto>)> {
    let dto: CreateMailboxDto = parse_json(&headers, &body)?;
    let input = MailboxInput {
        name: dto.name,
        address: dto.address,
        imap_url: dto.imap_url,
        smtp_url: dto.smtp_url,
        auto_acknowledge: dto.auto_acknowledge.unwrap_or(true),
    };
    let mailbox = state.app.create_mailbox(&principal, input).await?;
    Ok((StatusCode::CREATED, Json(mailbox.into())))
}

/// Test a mailbox's IMAP and SMTP connections (admins).
#[utoipa::path(post, path = "/mailboxes/{id}/test", tag = "email", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = MailboxCheckDto), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn test_mailbox(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<MailboxCheckDto>> {
    let id: MailboxId = parse_id(&id)?;
    let check = state.app.check_mailbox(&principal, id).await?;
    Ok(Json(check.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListEmailsQuery {
    /// `quarantined` (default), `failed`, `queued`, `ignored`, `sent` or `processed`.
    pub status: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<uuid::Uuid>,
    /// 1 to 200; default 50.
    pub limit: Option<u32>,
}

/// E-mails with a status, newest first: the quarantine, failed replies (admins).
#[utoipa::path(get, path = "/emails", tag = "email", params(ListEmailsQuery),
    responses((status = 200, body = Page<EmailDto>), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_emails(
    State(state): State<AppState>,
    Auth(principal): Auth,
    ApiQuery(query): ApiQuery<ListEmailsQuery>,
) -> ApiResult<Json<Page<EmailDto>>> {
    let status: EmailStatus = query
        .status
        .as_deref()
        .unwrap_or("quarantined")
        .parse()
        .map_err(otklik_app::AppError::from)?;
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let emails = state
        .app
        .list_emails_with_status(&principal, status, query.cursor.map(EmailId), limit)
        .await?;
    let next_cursor = (emails.len() == limit as usize)
        .then(|| emails.last().map(|email| email.id.to_string()))
        .flatten();
    Ok(Json(Page {
        items: emails.into_iter().map(EmailDto::from).collect(),
        next_cursor,
    }))
}

/// An e-mail's record.
#[utoipa::path(get, path = "/emails/{id}", tag = "email", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = EmailDto), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_email(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<EmailDto>> {
    let id: EmailId = parse_id(&id)?;
    Ok(Json(state.app.get_email(&principal, id).await?.into()))
}

/// The e-mail exactly as received or sent (`message/rfc822`, downloaded, never rendered).
#[utoipa::path(get, path = "/emails/{id}/raw", tag = "email", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, content_type = "message/rfc822", body = Vec<u8>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn raw_email(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id: EmailId = parse_id(&id)?;
    let raw = state.app.raw_email(&principal, id).await?;
    Ok(super::tickets::download(
        raw,
        HeaderValue::from_static("message/rfc822"),
        &format!("{id}.eml"),
    ))
}

/// Send a failed outbound e-mail again.
#[utoipa::path(post, path = "/emails/{id}/retry", tag = "email", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = EmailDto), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn retry_email(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<EmailDto>> {
    let id: EmailId = parse_id(&id)?;
    Ok(Json(state.app.retry_email(&principal, id).await?.into()))
}

/// Run a quarantined e-mail through ingestion again (admins).
#[utoipa::path(post, path = "/emails/{id}/reprocess", tag = "email", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = IngestResultDto), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn reprocess_email(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<IngestResultDto>> {
    let id: EmailId = parse_id(&id)?;
    Ok(Json(
        state.app.reprocess_email(&principal, id).await?.into(),
    ))
}

/// The e-mails of a ticket, oldest first, with delivery status.
#[utoipa::path(get, path = "/tickets/{id}/emails", tag = "email", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<EmailDto>), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn ticket_emails(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<EmailDto>>> {
    let id: TicketId = parse_id(&id)?;
    let emails = state.app.ticket_emails(&principal, id).await?;
    Ok(Json(emails.into_iter().map(EmailDto::from).collect()))
}
