//! Wire types of the REST API. They are separate from domain types on purpose: the API can stay
//! stable while the domain changes, and nothing secret (password hashes, token hashes) can leak
//! by being serialised by accident.

use std::collections::BTreeSet;

use base64::Engine;
use jiff::Timestamp;
use otklik_app::auth::IssuedToken;
use otklik_domain::agent::{Agent, Role, Tag, Team};
use otklik_domain::attachment::AttachmentMeta;
use otklik_domain::audit::StoredAuditEvent;
use otklik_domain::customer::{Customer, CustomerMerge, IdentityKind, IdentityValue};
use otklik_domain::message::{Author, Message, MessageVisibility};
use otklik_domain::permission::Scope;
use otklik_domain::ticket::{Channel, Priority, Ticket, TicketStatus};
use otklik_store::{ApiTokenRecord, TicketCursor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A page of results and the cursor of the next page (absent on the last page).
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketDto {
    pub id: Uuid,
    /// The human number ("#1042").
    pub number: i64,
    pub subject: String,
    #[schema(value_type = String, example = "open")]
    pub status: TicketStatus,
    #[schema(value_type = String, example = "normal")]
    pub priority: Priority,
    #[schema(value_type = String, example = "email")]
    pub channel: Channel,
    pub customer_id: Uuid,
    pub assignee_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub tags: Vec<String>,
    /// Set when this ticket was merged into another one: the survivor's id.
    pub merged_into: Option<Uuid>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_agent_reply_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub solved_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<Timestamp>,
    pub version: i64,
}

impl From<Ticket> for TicketDto {
    fn from(ticket: Ticket) -> Self {
        TicketDto {
            id: ticket.id.0,
            number: ticket.number,
            subject: ticket.subject,
            status: ticket.status,
            priority: ticket.priority,
            channel: ticket.channel,
            customer_id: ticket.customer_id.0,
            assignee_id: ticket.assignee_id.map(|id| id.0),
            team_id: ticket.team_id.map(|id| id.0),
            tags: ticket.tags,
            merged_into: ticket.merged_into.map(|id| id.0),
            created_at: ticket.created_at,
            updated_at: ticket.updated_at,
            first_agent_reply_at: ticket.first_agent_reply_at,
            solved_at: ticket.solved_at,
            closed_at: ticket.closed_at,
            version: ticket.version,
        }
    }
}

/// A file to attach, inline in JSON.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAttachmentDto {
    /// Shown to people; made safe (no paths, control or bidi characters) before storing.
    pub file_name: String,
    /// The bytes, base64 (standard alphabet).
    pub content_base64: String,
}

impl NewAttachmentDto {
    pub fn decode(self) -> ApiResult<otklik_app::tickets::NewAttachment> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.content_base64.as_bytes())
            .map_err(|error| {
                ApiError::InvalidBody(format!("attachments.content_base64: {error}"))
            })?;
        Ok(otklik_app::tickets::NewAttachment {
            file_name: self.file_name,
            bytes,
        })
    }
}

/// Who the ticket is for: either `customer_id`, or a `requester` found or created by identity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequesterDto {
    pub name: Option<String>,
    #[schema(value_type = String, example = "email")]
    pub kind: IdentityKind,
    /// Required for messenger and marketplace identities ("telegram", "ozon").
    pub provider: Option<String>,
    pub value: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicketDto {
    pub subject: String,
    /// The customer's first message.
    pub body: String,
    pub customer_id: Option<Uuid>,
    pub requester: Option<RequesterDto>,
    #[schema(value_type = Option<String>, example = "api")]
    pub channel: Option<Channel>,
    #[schema(value_type = Option<String>)]
    pub priority: Option<Priority>,
    #[schema(value_type = Option<String>)]
    pub status: Option<TicketStatus>,
    pub assignee_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub attachments: Vec<NewAttachmentDto>,
}

/// A change to a ticket: omitted fields stay; `null` clears `assignee_id` or `team_id`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTicketDto {
    pub subject: Option<String>,
    #[schema(value_type = Option<String>)]
    pub status: Option<TicketStatus>,
    #[schema(value_type = Option<String>)]
    pub priority: Option<Priority>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub assignee_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub team_id: Option<Option<Uuid>>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthorKindDto {
    Agent,
    Customer,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMessageDto {
    pub body: String,
    /// `public` (default) goes to the customer; `internal` is a staff-only note.
    #[schema(value_type = Option<String>, example = "public")]
    pub visibility: Option<MessageVisibility>,
    /// `agent` (default): the caller; `customer`: imported from the customer.
    pub author: Option<AuthorKindDto>,
    /// Move the ticket to this status in the same change.
    #[schema(value_type = Option<String>)]
    pub status: Option<TicketStatus>,
    #[serde(default)]
    pub attachments: Vec<NewAttachmentDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentDto {
    pub id: Uuid,
    pub file_name: String,
    /// Sniffed from the bytes.
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    /// Where to download it (with the same credentials).
    pub url: String,
}

impl From<AttachmentMeta> for AttachmentDto {
    fn from(meta: AttachmentMeta) -> Self {
        AttachmentDto {
            url: format!("/api/v1/attachments/{}", meta.id),
            id: meta.id.0,
            file_name: meta.file_name,
            content_type: meta.content_type,
            size_bytes: meta.size_bytes,
            sha256: meta.sha256,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageDto {
    pub id: Uuid,
    pub ticket_id: Uuid,
    /// `agent`, `customer` or `system`.
    pub author_kind: String,
    pub author_id: Option<Uuid>,
    #[schema(value_type = String)]
    pub visibility: MessageVisibility,
    #[schema(value_type = String)]
    pub channel: Channel,
    pub body: String,
    pub attachments: Vec<AttachmentDto>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<Message> for MessageDto {
    fn from(message: Message) -> Self {
        let (author_kind, author_id) = match message.author {
            Author::Agent(id) => ("agent", Some(id.0)),
            Author::Customer(id) => ("customer", Some(id.0)),
            Author::System => ("system", None),
        };
        MessageDto {
            id: message.id.0,
            ticket_id: message.ticket_id.0,
            author_kind: author_kind.into(),
            author_id,
            visibility: message.visibility,
            channel: message.channel,
            body: message.body,
            attachments: message
                .attachments
                .into_iter()
                .map(AttachmentDto::from)
                .collect(),
            created_at: message.created_at,
        }
    }
}

/// A message just added and the ticket as it stands after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageCreatedDto {
    pub message: MessageDto,
    pub ticket: TicketDto,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeTicketDto {
    /// The surviving ticket.
    pub into_ticket_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventDto {
    pub id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The agent who made the change; absent for Otklik itself.
    pub actor_agent_id: Option<Uuid>,
    pub action: String,
    pub object_kind: String,
    pub object_id: Uuid,
    /// `[{field, before, after}]`.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
}

impl From<StoredAuditEvent> for AuditEventDto {
    fn from(event: StoredAuditEvent) -> Self {
        AuditEventDto {
            id: event.id.0,
            at: event.at,
            actor_agent_id: event.actor_agent_id.map(|id| id.0),
            action: event.action,
            object_kind: event.object_kind,
            object_id: event.object_id,
            changes: event.changes,
        }
    }
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityInputDto {
    #[schema(value_type = String, example = "email")]
    pub kind: IdentityKind,
    pub provider: Option<String>,
    pub value: String,
}

impl IdentityInputDto {
    pub fn parse(&self) -> ApiResult<IdentityValue> {
        Ok(IdentityValue::parse(
            self.kind,
            self.provider.as_deref(),
            &self.value,
        )?)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityDto {
    pub id: Uuid,
    #[schema(value_type = String)]
    pub kind: IdentityKind,
    /// Empty for e-mail, phone and chat visitors.
    pub provider: String,
    pub value: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerDto {
    pub id: Uuid,
    pub name: String,
    pub language: Option<String>,
    pub identities: Vec<IdentityDto>,
    /// Set when merged into another customer: the survivor's id.
    pub merged_into: Option<Uuid>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub version: i64,
}

impl From<Customer> for CustomerDto {
    fn from(customer: Customer) -> Self {
        CustomerDto {
            id: customer.id.0,
            name: customer.name,
            language: customer.language,
            identities: customer
                .identities
                .into_iter()
                .map(|identity| IdentityDto {
                    id: identity.id.0,
                    kind: identity.value.kind,
                    provider: identity.value.provider,
                    value: identity.value.value,
                    created_at: identity.created_at,
                })
                .collect(),
            merged_into: customer.merged_into.map(|id| id.0),
            created_at: customer.created_at,
            updated_at: customer.updated_at,
            version: customer.version,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerDto {
    pub name: String,
    /// `ru` or `en`.
    pub language: Option<String>,
    #[serde(default)]
    pub identities: Vec<IdentityInputDto>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomerDto {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub language: Option<Option<String>>,
    #[serde(default)]
    pub add_identities: Vec<IdentityInputDto>,
    #[serde(default)]
    pub remove_identity_ids: Vec<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeCustomerDto {
    /// The surviving customer.
    pub into_customer_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerMergeDto {
    pub id: Uuid,
    pub source_id: Uuid,
    pub target_id: Uuid,
    pub moved_identity_ids: Vec<Uuid>,
    pub moved_ticket_ids: Vec<Uuid>,
    pub merged_by: Option<Uuid>,
    #[schema(value_type = String, format = DateTime)]
    pub merged_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub undone_at: Option<Timestamp>,
}

impl From<CustomerMerge> for CustomerMergeDto {
    fn from(merge: CustomerMerge) -> Self {
        CustomerMergeDto {
            id: merge.id.0,
            source_id: merge.source_id.0,
            target_id: merge.target_id.0,
            moved_identity_ids: merge
                .moved_identity_ids
                .into_iter()
                .map(|id| id.0)
                .collect(),
            moved_ticket_ids: merge.moved_ticket_ids.into_iter().map(|id| id.0).collect(),
            merged_by: merge.merged_by.map(|id| id.0),
            merged_at: merge.merged_at,
            undone_at: merge.undone_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentDto {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    #[schema(value_type = String, example = "agent")]
    pub role: Role,
    pub team_ids: Vec<Uuid>,
    pub active: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub version: i64,
}

impl From<Agent> for AgentDto {
    fn from(agent: Agent) -> Self {
        AgentDto {
            id: agent.id.0,
            email: agent.email,
            name: agent.name,
            role: agent.role,
            team_ids: agent.team_ids.into_iter().map(|id| id.0).collect(),
            active: agent.active,
            created_at: agent.created_at,
            updated_at: agent.updated_at,
            version: agent.version,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentDto {
    pub email: String,
    pub name: String,
    #[schema(value_type = String, example = "agent")]
    pub role: Role,
    #[serde(default)]
    pub team_ids: Vec<Uuid>,
    /// At least 10 characters; omit for token-only accounts.
    pub password: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentDto {
    pub email: Option<String>,
    pub name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    pub team_ids: Option<Vec<Uuid>>,
    pub active: Option<bool>,
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamDto {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<Team> for TeamDto {
    fn from(team: Team) -> Self {
        TeamDto {
            id: team.id.0,
            name: team.name,
            created_at: team.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameDto {
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagDto {
    pub id: Uuid,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<Tag> for TagDto {
    fn from(tag: Tag) -> Self {
        TagDto {
            id: tag.id.0,
            name: tag.name,
            created_at: tag.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenDto {
    pub name: String,
    /// Any of `tickets:read`, `tickets:write`, `customers:read`, `customers:write`, `admin`.
    pub scopes: Vec<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenDto {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub name: String,
    /// The first characters of the secret, to tell tokens apart.
    pub prefix: String,
    pub scopes: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Timestamp>,
}

fn scope_names(scopes: &BTreeSet<Scope>) -> Vec<String> {
    scopes
        .iter()
        .map(|scope| scope.as_str().to_owned())
        .collect()
}

impl From<ApiTokenRecord> for TokenDto {
    fn from(token: ApiTokenRecord) -> Self {
        TokenDto {
            id: token.id.0,
            agent_id: token.agent_id.0,
            name: token.name,
            prefix: token.prefix,
            scopes: scope_names(&token.scopes),
            created_at: token.created_at,
            expires_at: token.expires_at,
            revoked_at: token.revoked_at,
        }
    }
}

/// A new token: `token` is the secret, shown this once only.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedTokenDto {
    pub token: String,
    #[serde(flatten)]
    pub details: TokenDto,
}

impl From<IssuedToken> for IssuedTokenDto {
    fn from(issued: IssuedToken) -> Self {
        IssuedTokenDto {
            token: issued.secret,
            details: issued.record.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupDto {
    /// The one-time token printed by the server on its first start.
    pub setup_token: String,
    pub email: String,
    pub name: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleDto {
    pub name: String,
    /// What the role may do.
    pub permissions: Vec<String>,
}

/// Encodes a ticket keyset cursor as an opaque string.
pub fn encode_ticket_cursor(cursor: TicketCursor) -> String {
    let raw = format!("{}:{}", cursor.updated_at.as_microsecond(), cursor.id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a cursor made by [`encode_ticket_cursor`].
pub fn decode_ticket_cursor(text: &str) -> ApiResult<TicketCursor> {
    let invalid = || ApiError::InvalidQuery("cursor: not a cursor returned by this API".into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (micros, id) = raw.split_once(':').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    Ok(TicketCursor {
        updated_at: Timestamp::from_microsecond(micros).map_err(|_| invalid())?,
        id: otklik_domain::ids::TicketId(id.parse().map_err(|_| invalid())?),
    })
}
