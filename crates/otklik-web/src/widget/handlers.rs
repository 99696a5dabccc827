//! Handlers of `/widget/v1/*` and `/widget.js`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Multipart, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::Stream;
use otklik_app::AppError;
use otklik_app::chat::{IdentityClaim, StartChatInput, VisitorMessageInput, VisitorSession};
use otklik_app::tickets::NewAttachment;
use otklik_domain::chat::{ChatSite, PreChatAnswers};
use otklik_domain::ids::{AttachmentId, ChatSiteId, TicketId};

use super::dto::*;
use super::hub::Subscription;
use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, parse_id, parse_json};

/// Refuses a request whose `Origin` the site does not allow.
fn check_origin(site: &ChatSite, headers: &HeaderMap) -> ApiResult<()> {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    if site.allows_origin(origin) {
        Ok(())
    } else {
        Err(AppError::Refused {
            code: "origin_not_allowed",
            message: "this page's origin may not use the chat of this site".into(),
        }
        .into())
    }
}

/// The visitor behind `Authorization: Bearer <visitor token>`, from an allowed origin.
pub struct Visitor(pub VisitorSession);

impl FromRequestParts<AppState> for Visitor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(ApiError::App(AppError::Unauthenticated))?;
        let session = state.app.authenticate_visitor(token.trim()).await?;
        check_origin(&session.site, &parts.headers)?;
        Ok(Visitor(session))
    }
}

fn client_ip(parts: &axum::http::Extensions) -> IpAddr {
    parts
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip())
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// `GET /widget.js`: the script, revalidated by ETag.
pub async fn script(headers: HeaderMap) -> Response {
    let etag = format!("\"{}\"", otklik_widget::content_hash());
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        == Some(etag.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut response = otklik_widget::WIDGET_JS.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

pub async fn site(
    State(state): State<AppState>,
    Path(site_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<SiteDto>> {
    let site_id: ChatSiteId = parse_id(&site_id)?;
    let (site, open, agents_online) = state.app.public_chat_site(site_id).await?;
    check_origin(&site, &headers)?;
    Ok(Json(SiteDto::new(&site, open, agents_online)))
}

pub async fn create_visitor(
    State(state): State<AppState>,
    Path(site_id): Path<String>,
    request: axum::extract::Request,
) -> ApiResult<(StatusCode, Json<VisitorCreatedDto>)> {
    let site_id: ChatSiteId = parse_id(&site_id)?;
    let ip = client_ip(request.extensions());
    let (parts, body) = request.into_parts();
    let site = state.app.active_chat_site(site_id).await?;
    check_origin(&site, &parts.headers)?;
    state.widget.limiters.new_visitor(ip)?;
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let input: CreateVisitorInput = if body.is_empty() {
        CreateVisitorInput::default()
    } else {
        parse_json(&parts.headers, &body)?
    };
    let claim = input.identity.map(|identity| IdentityClaim {
        external_id: identity.external_id,
        email: identity.email,
        name: identity.name,
        signature: identity.signature,
    });
    let (token, session) = state.app.create_visitor(site.id, claim).await?;
    Ok((
        StatusCode::CREATED,
        Json(VisitorCreatedDto {
            token,
            visitor_id: session.visitor.id.to_string(),
            verified: session.visitor.verified_external_id.is_some(),
        }),
    ))
}

pub async fn state(
    State(state): State<AppState>,
    Visitor(session): Visitor,
) -> ApiResult<Json<StateDto>> {
    let (live, history) = state.app.visitor_state(&session).await?;
    Ok(Json(StateDto {
        visitor: VisitorDto {
            id: session.visitor.id.to_string(),
            verified: session.visitor.verified_external_id.is_some(),
        },
        chat: live.as_ref().map(ChatViewDto::from),
        history: history.iter().map(ChatViewDto::from).collect(),
    }))
}

pub async fn start_chat(
    State(state): State<AppState>,
    Visitor(session): Visitor,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ChatAndEntryDto>)> {
    state.widget.limiters.action(session.visitor.id)?;
    let input: StartChatBody = parse_json(&headers, &body)?;
    let (chat, entry, created) = state
        .app
        .start_chat(
            &session,
            StartChatInput {
                client_id: input.client_id,
                body: input.body,
                answers: PreChatAnswers {
                    name: input.name,
                    email: input.email,
                    order_number: input.order_number,
                },
                language: input.language,
            },
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ChatAndEntryDto {
            chat: (&chat).into(),
            entry: (&entry).into(),
        }),
    ))
}

fn ticket_id(raw: &str) -> ApiResult<TicketId> {
    parse_id(raw)
}

pub async fn post_message(
    State(state): State<AppState>,
    Visitor(session): Visitor,
    Path(ticket): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<EntryOnlyDto>)> {
    let ticket_id = ticket_id(&ticket)?;
    state.widget.limiters.action(session.visitor.id)?;
    let input: MessageBody = parse_json(&headers, &body)?;
    let (entry, created) = state
        .app
        .post_visitor_message(
            &session,
            ticket_id,
            VisitorMessageInput {
                client_id: input.client_id,
                body: input.body,
                attachment: None,
            },
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(EntryOnlyDto {
            entry: (&entry).into(),
        }),
    ))
}

pub async fn post_attachment(
    State(state): State<AppState>,
    Visitor(session): Visitor,
    Path(ticket): Path<String>,
    mut multipart: Multipart,
) -> ApiResult<(StatusCode, Json<EntryOnlyDto>)> {
    let ticket_id = ticket_id(&ticket)?;
    state.widget.limiters.action(session.visitor.id)?;
    let mut client_id = None;
    let mut body = String::new();
    let mut file = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|error| ApiError::InvalidBody(error.body_text()))?
    {
        match field.name() {
            Some("client_id") => {
                client_id = Some(
                    field
                        .text()
                        .await
                        .map_err(|error| ApiError::InvalidBody(error.body_text()))?,
                );
            }
            Some("body") => {
                body = field
                    .text()
                    .await
                    .map_err(|error| ApiError::InvalidBody(error.body_text()))?;
            }
            Some("file") if file.is_none() => {
                let file_name = field.file_name().unwrap_or("file").to_owned();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|error| ApiError::InvalidBody(error.body_text()))?;
                file = Some(NewAttachment {
                    file_name,
                    bytes: bytes.to_vec(),
                });
            }
            _ => return Err(ApiError::InvalidBody("unexpected form field".into())),
        }
    }
    let (Some(client_id), Some(file)) = (client_id, file) else {
        return Err(ApiError::InvalidBody(
            "send the fields client_id and file".into(),
        ));
    };
    let (entry, created) = state
        .app
        .post_visitor_message(
            &session,
            ticket_id,
            VisitorMessageInput {
                client_id,
                body,
                attachment: Some(file),
            },
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(EntryOnlyDto {
            entry: (&entry).into(),
        }),
    ))
}

pub async fn download_attachment(
    State(state): State<AppState>,
    Visitor(session): Visitor,
    Path((ticket, attachment)): Path<(String, String)>,
) -> ApiResult<Response> {
    let ticket_id = ticket_id(&ticket)?;
    let attachment_id: AttachmentId = parse_id(&attachment)?;
    let (meta, bytes) = state
        .app
        .visitor_attachment(&session, ticket_id, attachment_id)
        .await?;
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&meta.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(response)
}

pub async fn entries(
    State(state): State<AppState>,
    Visitor(session): Visitor,
    Path(ticket): Path<String>,
    ApiQuery(query): ApiQuery<EntriesQuery>,
) -> ApiResult<Json<EntriesDto>> {
    let ticket_id = ticket_id(&ticket)?;
    let (chat, entries) = state
        .app
        .visitor_entries(&session, ticket_id, query.after)
        .await?;
    Ok(Json(EntriesDto {
        chat: (&chat).into(),
        entries: entries.iter().map(EntryDto::from).collect(),
    }))
}

pub async fn typing(
    State(state): State<AppState>,
    Visitor(session): Visitor,
    Path(ticket): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let ticket_id = ticket_id(&ticket)?;
    state.widget.limiters.action(session.visitor.id)?;
    let input: TypingBody = parse_json(&headers, &body)?;
    state
        .app
        .visitor_typing(&session, ticket_id, input.typing)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn read(
    State(state): State<AppState>,
    Visitor(session): Visitor,
    Path(ticket): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let ticket_id = ticket_id(&ticket)?;
    state.widget.limiters.action(session.visitor.id)?;
    let input: ReadBody = parse_json(&headers, &body)?;
    state
        .app
        .visitor_read(&session, ticket_id, input.seq)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn end(
    State(state): State<AppState>,
    Visitor(session): Visitor,
    Path(ticket): Path<String>,
) -> ApiResult<Json<ChatOnlyDto>> {
    let ticket_id = ticket_id(&ticket)?;
    let chat = state.app.visitor_end_chat(&session, ticket_id).await?;
    Ok(Json(ChatOnlyDto {
        chat: (&chat).into(),
    }))
}

pub async fn transcript(
    State(state): State<AppState>,
    Visitor(session): Visitor,
    Path(ticket): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let ticket_id = ticket_id(&ticket)?;
    state.widget.limiters.action(session.visitor.id)?;
    let input: TranscriptBody = if body.is_empty() {
        TranscriptBody::default()
    } else {
        parse_json(&headers, &body)?
    };
    state
        .app
        .email_transcript(&session, ticket_id, input.email)
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// One visitor event stream: what it has sent so far, and what waits to be sent.
struct EventStream {
    state: AppState,
    session: VisitorSession,
    subscription: Subscription,
    /// The last sequence sent per chat.
    sent: HashMap<TicketId, i64>,
    /// The last state sent per chat, so an unchanged one is not sent again.
    chat_views: HashMap<TicketId, String>,
    queue: VecDeque<Event>,
}

fn json_event(name: &'static str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(data).unwrap_or_else(|_| "{}".into()))
}

impl EventStream {
    async fn fill(&mut self) {
        let pending = self.subscription.subscriber.next().await;
        let mut changed: Vec<TicketId> = pending.changed.into_iter().collect();
        if pending.recheck {
            // Events may have been missed (this node fell behind, or lost its connection to
            // the other nodes): look at every chat of the visitor here rather than making
            // thousands of widgets refetch at once.
            match self.state.app.visitor_state(&self.session).await {
                Ok((live, history)) => {
                    for summary in live.iter().chain(history.iter()) {
                        changed.push(summary.chat.ticket_id);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "could not recheck a visitor's chats");
                    self.queue
                        .push_back(json_event("resync", &serde_json::json!({})));
                }
            }
            changed.extend(self.sent.keys().copied());
            changed.sort();
            changed.dedup();
        }
        for ticket_id in changed {
            self.send_news(ticket_id).await;
        }
        for (ticket_id, (typing, agent_name)) in pending.typing {
            self.queue.push_back(json_event(
                "typing",
                &serde_json::json!({
                    "ticket_id": ticket_id,
                    "typing": typing,
                    "agent_name": agent_name,
                }),
            ));
        }
    }
}

impl EventStream {
    /// Sends the entries of a chat after the last one sent, and its state if it changed.
    async fn send_news(&mut self, ticket_id: TicketId) {
        let mut after = self.sent.get(&ticket_id).copied().unwrap_or(0);
        loop {
            match self
                .state
                .app
                .visitor_entries(&self.session, ticket_id, after)
                .await
            {
                Ok((chat, entries)) => {
                    let full = entries.len() == otklik_app::chat::ENTRIES_PAGE as usize;
                    for entry in &entries {
                        after = after.max(entry.entry.seq);
                        self.queue
                            .push_back(json_event("entry", &EntryDto::from(entry)));
                    }
                    if !full {
                        let view = serde_json::to_string(&ChatViewDto::from(&chat))
                            .unwrap_or_else(|_| "{}".into());
                        if self.chat_views.get(&ticket_id) != Some(&view) {
                            self.queue
                                .push_back(Event::default().event("chat").data(view.clone()));
                            self.chat_views.insert(ticket_id, view);
                        }
                        break;
                    }
                }
                Err(AppError::NotFound { .. }) => break,
                Err(error) => {
                    tracing::warn!(%error, "could not read a chat for a visitor stream");
                    self.queue
                        .push_back(json_event("resync", &serde_json::json!({})));
                    break;
                }
            }
        }
        self.sent.insert(ticket_id, after);
    }
}

/// `GET /widget/v1/events`: the visitor's live events (see the contract).
pub async fn events(
    State(state): State<AppState>,
    Visitor(session): Visitor,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Subscribe first, then read where each chat stands: nothing committed in between is
    // missed (it is marked and fetched after the cursor).
    let subscription = state.widget.hub.subscribe(&state.app, session.visitor.id);
    let (live, history) = state.app.visitor_state(&session).await?;
    let mut sent = HashMap::new();
    for summary in live.iter().chain(history.iter()) {
        sent.insert(summary.chat.ticket_id, summary.chat.last_seq);
    }
    let mut queue = VecDeque::new();
    queue.push_back(json_event(
        "hello",
        &serde_json::json!({ "visitor_id": session.visitor.id }),
    ));
    let stream = EventStream {
        state,
        session,
        subscription,
        sent,
        chat_views: HashMap::new(),
        queue,
    };
    let stream = futures::stream::unfold(stream, |mut stream| async move {
        loop {
            if let Some(event) = stream.queue.pop_front() {
                return Some((Ok(event), stream));
            }
            stream.fill().await;
        }
    });
    Ok(Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(20))
            .text("ping"),
    ))
}
