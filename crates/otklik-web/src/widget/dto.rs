//! Wire types of the widget API (`docs/chat-widget-api.md`).

use otklik_app::chat::{ChatSummary, EntryAuthor, EntryView};
use otklik_domain::chat::{ChatSite, FieldMode};
use otklik_store::ChatEntryKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
pub struct PreChatDto {
    pub name: FieldMode,
    pub email: FieldMode,
    pub order_number: FieldMode,
}

#[derive(Debug, Serialize)]
pub struct SiteDto {
    pub site_id: String,
    pub name: String,
    pub greeting: String,
    pub accent_colour: String,
    pub pre_chat: PreChatDto,
    pub require_identity: bool,
    pub open: bool,
    pub agents_online: bool,
}

impl SiteDto {
    pub fn new(site: &ChatSite, open: bool, agents_online: bool) -> SiteDto {
        SiteDto {
            site_id: site.id.to_string(),
            name: site.name.clone(),
            greeting: site.greeting.clone(),
            accent_colour: site.accent_colour.clone(),
            pre_chat: PreChatDto {
                name: site.pre_chat.name,
                email: site.pre_chat.email,
                order_number: site.pre_chat.order_number,
            },
            require_identity: site.require_identity,
            open,
            agents_online,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AgentDto {
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct QueueDto {
    pub position: usize,
    pub waiting_seconds: i64,
}

#[derive(Debug, Serialize)]
pub struct ChatViewDto {
    pub ticket_id: String,
    pub number: i64,
    pub state: otklik_domain::chat::ChatState,
    pub agent: Option<AgentDto>,
    pub queue: Option<QueueDto>,
    pub last_seq: i64,
    pub visitor_read_seq: i64,
    pub agent_read_seq: i64,
}

impl From<&ChatSummary> for ChatViewDto {
    fn from(summary: &ChatSummary) -> Self {
        let chat = &summary.chat;
        ChatViewDto {
            ticket_id: chat.ticket_id.to_string(),
            number: summary.number,
            state: chat.state,
            agent: summary.agent_name.clone().map(|name| AgentDto { name }),
            queue: summary.queue.map(|queue| QueueDto {
                position: queue.position,
                waiting_seconds: queue.waiting.as_secs(),
            }),
            last_seq: chat.last_seq,
            visitor_read_seq: chat.visitor_read_seq,
            agent_read_seq: chat.agent_read_seq,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AttachmentDto {
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
}

#[derive(Debug, Serialize)]
pub struct EntryDto {
    pub ticket_id: String,
    pub seq: i64,
    pub created_at: String,
    pub kind: &'static str,
    pub author: &'static str,
    pub agent_name: Option<String>,
    pub body: Option<String>,
    pub attachments: Vec<AttachmentDto>,
    pub client_id: Option<String>,
    pub event: Option<String>,
}

impl From<&EntryView> for EntryDto {
    fn from(view: &EntryView) -> Self {
        let (kind, event, event_agent) = match &view.entry.kind {
            ChatEntryKind::Message(_) => ("message", None, None),
            ChatEntryKind::Event { code, agent_name } => {
                ("event", Some(code.clone()), agent_name.clone())
            }
        };
        let (author, agent_name) = match &view.author {
            EntryAuthor::Visitor => ("visitor", None),
            EntryAuthor::Agent { name } => ("agent", Some(name.clone())),
            EntryAuthor::System => ("system", event_agent),
        };
        EntryDto {
            ticket_id: view.entry.ticket_id.to_string(),
            seq: view.entry.seq,
            created_at: view.entry.created_at.to_string(),
            kind,
            author,
            agent_name,
            body: view.body.clone(),
            attachments: view
                .attachments
                .iter()
                .map(|attachment| AttachmentDto {
                    id: attachment.id.to_string(),
                    file_name: attachment.file_name.clone(),
                    content_type: attachment.content_type.clone(),
                    size: attachment.size_bytes,
                })
                .collect(),
            client_id: view.entry.client_id.clone(),
            event,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityInput {
    pub external_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub signature: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateVisitorInput {
    pub identity: Option<IdentityInput>,
}

#[derive(Debug, Serialize)]
pub struct VisitorCreatedDto {
    pub token: String,
    pub visitor_id: String,
    pub verified: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartChatBody {
    pub client_id: String,
    pub body: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub order_number: Option<String>,
    pub language: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    pub client_id: String,
    pub body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypingBody {
    pub typing: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    pub seq: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptBody {
    pub email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    #[serde(default)]
    pub after: i64,
}

#[derive(Debug, Serialize)]
pub struct VisitorDto {
    pub id: String,
    pub verified: bool,
}

#[derive(Debug, Serialize)]
pub struct StateDto {
    pub visitor: VisitorDto,
    pub chat: Option<ChatViewDto>,
    pub history: Vec<ChatViewDto>,
}

#[derive(Debug, Serialize)]
pub struct ChatAndEntryDto {
    pub chat: ChatViewDto,
    pub entry: EntryDto,
}

#[derive(Debug, Serialize)]
pub struct EntryOnlyDto {
    pub entry: EntryDto,
}

#[derive(Debug, Serialize)]
pub struct ChatOnlyDto {
    pub chat: ChatViewDto,
}

#[derive(Debug, Serialize)]
pub struct EntriesDto {
    pub chat: ChatViewDto,
    pub entries: Vec<EntryDto>,
}
