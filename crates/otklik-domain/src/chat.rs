//! Live chat: the shop's chat sites, their visitors, chats (a chat is a ticket of channel
//! `chat` with a live session on top), agents' chat availability, and routing.
//!
//! Routing is a pure function ([`plan_routing`]): given the waiting chats in queue order and
//! the agents with their load, it says which chat goes to whom. Stores keep each agent's count
//! of active chats as a maintained counter and refuse a reservation beyond the agent's maximum,
//! so two nodes applying plans at once can never overload anyone: the loser re-plans.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::DomainError;
use crate::ids::{AgentId, ChatSiteId, CustomerId, MailboxId, TeamId, TicketId, VisitorId};
use crate::ticket::string_enum;

/// Most origins one site may list.
pub const MAX_ALLOWED_ORIGINS: usize = 20;
/// Longest greeting shown in the widget.
pub const MAX_GREETING_CHARS: usize = 500;
/// Longest client message id the widget may send (it sends UUIDs).
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// The most chats an agent may take at once.
pub const MAX_CONCURRENT_CHATS: u16 = 20;
/// The longest a shop's customer id may be.
pub const MAX_EXTERNAL_ID_CHARS: usize = 200;

string_enum!(
    /// Whether a pre-chat question is asked, and whether it must be answered.
    FieldMode {
        Hidden = "hidden",
        Optional = "optional",
        Required = "required",
    }
);

/// The questions asked before a chat starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreChatForm {
    pub name: FieldMode,
    pub email: FieldMode,
    pub order_number: FieldMode,
}

impl Default for PreChatForm {
    fn default() -> Self {
        PreChatForm {
            name: FieldMode::Optional,
            email: FieldMode::Optional,
            order_number: FieldMode::Hidden,
        }
    }
}

/// The answers a visitor gave to the pre-chat form, already trimmed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreChatAnswers {
    pub name: Option<String>,
    pub email: Option<String>,
    pub order_number: Option<String>,
}

impl PreChatForm {
    /// Checks answers against the form: required ones present, hidden ones dropped, the
    /// e-mail well formed (normalised to lower case).
    pub fn check(&self, answers: PreChatAnswers) -> Result<PreChatAnswers, DomainError> {
        fn keep(
            mode: FieldMode,
            field: &'static str,
            value: Option<String>,
            max_chars: usize,
        ) -> Result<Option<String>, DomainError> {
            let value = value
                .map(|text| text.trim().to_owned())
                .filter(|text| !text.is_empty());
            match (mode, value) {
                (FieldMode::Hidden, _) => Ok(None),
                (FieldMode::Required, None) => Err(DomainError::invalid(field, "is required")),
                (_, Some(text)) if text.chars().count() > max_chars => Err(DomainError::invalid(
                    field,
                    format!("must be at most {max_chars} characters"),
                )),
                (_, value) => Ok(value),
            }
        }
        let name = keep(self.name, "name", answers.name, 200)?;
        let email = keep(self.email, "email", answers.email, 320)?
            .map(|email| crate::customer::normalize_email(&email))
            .transpose()?;
        let order_number = keep(self.order_number, "order_number", answers.order_number, 100)?;
        Ok(PreChatAnswers {
            name,
            email,
            order_number,
        })
    }
}

/// Opening hours of one day, in minutes since midnight local time: `from` inclusive, `to`
/// exclusive (`to` may be 1440 for "until midnight").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DayHours {
    pub from_minute: u16,
    pub to_minute: u16,
}

/// When a site's chat is staffed. No days at all means around the clock.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WorkingHours {
    /// An IANA time zone name ("Europe/Moscow").
    pub time_zone: String,
    /// Monday first; `None` is a day off.
    pub days: [Option<DayHours>; 7],
}

impl Default for WorkingHours {
    fn default() -> Self {
        WorkingHours::around_the_clock()
    }
}

impl WorkingHours {
    /// Always open.
    pub fn around_the_clock() -> WorkingHours {
        WorkingHours {
            time_zone: "UTC".to_owned(),
            days: [None; 7],
        }
    }

    /// Whether these are "always open" hours (no day configured).
    pub fn is_around_the_clock(&self) -> bool {
        self.days.iter().all(Option::is_none)
    }

    /// Validates the time zone and every day's range.
    pub fn validate(&self) -> Result<(), DomainError> {
        TimeZone::get(&self.time_zone).map_err(|_| {
            DomainError::invalid(
                "working_hours.time_zone",
                format!("unknown time zone {:?}", self.time_zone),
            )
        })?;
        for day in self.days.iter().flatten() {
            if day.from_minute >= day.to_minute || day.to_minute > 24 * 60 {
                return Err(DomainError::invalid(
                    "working_hours.days",
                    "each day must open before it closes, within 00:00–24:00",
                ));
            }
        }
        Ok(())
    }

    /// Whether the site is open at `at`.
    pub fn is_open(&self, at: Timestamp) -> bool {
        if self.is_around_the_clock() {
            return true;
        }
        let Ok(zone) = TimeZone::get(&self.time_zone) else {
            // Validated on save; a zone missing from this machine's database keeps chat open
            // rather than silently turning every visitor away.
            return true;
        };
        let local = at.to_zoned(zone);
        let day_index = match local.weekday() {
            Weekday::Monday => 0,
            Weekday::Tuesday => 1,
            Weekday::Wednesday => 2,
            Weekday::Thursday => 3,
            Weekday::Friday => 4,
            Weekday::Saturday => 5,
            Weekday::Sunday => 6,
        };
        let minute = local.hour() as u16 * 60 + local.minute() as u16;
        self.days[day_index].is_some_and(|day| day.from_minute <= minute && minute < day.to_minute)
    }
}

/// The shop's pages where the widget runs, and how its chat behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSite {
    pub id: ChatSiteId,
    pub name: String,
    /// Normalised origins (`https://shop.ru`, `http://127.0.0.1:8000`) allowed to embed the
    /// widget and talk to the chat API.
    pub allowed_origins: Vec<String>,
    pub greeting: String,
    /// `#rrggbb`, lower case.
    pub accent_colour: String,
    pub working_hours: WorkingHours,
    pub pre_chat: PreChatForm,
    /// The key the shop's server signs its customers' ids with (HMAC-SHA256). It must be kept
    /// readable to verify signatures; it is shown to admins only.
    pub identity_secret: String,
    /// When set, only visitors with a valid signature may chat.
    pub require_identity: bool,
    /// Chats from this site wait for this team's agents.
    pub team_id: Option<TeamId>,
    /// Offline messages and transcripts are answered from this mailbox.
    pub mailbox_id: Option<MailboxId>,
    pub active: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

/// Normalises an origin as browsers send it in the `Origin` header: scheme, host, and a port
/// only when it is not the scheme's default; lower case; no path.
pub fn normalize_origin(raw: &str) -> Result<String, DomainError> {
    let raw = raw.trim().trim_end_matches('/');
    let invalid = || {
        DomainError::invalid(
            "allowed_origins",
            format!("{raw:?} is not an origin like https://shop.example"),
        )
    };
    let (scheme, rest) = raw.split_once("://").ok_or_else(invalid)?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return Err(invalid()),
    };
    if rest.is_empty()
        || rest.contains(['/', '?', '#', '@', ' '])
        || !rest.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(invalid());
    }
    let host_port = rest.to_ascii_lowercase();
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') && host.contains(':') => {
            // An IPv6 address without brackets is not an origin.
            let _ = port;
            return Err(invalid());
        }
        Some((host, port)) => {
            if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) || port.len() > 5 {
                return Err(invalid());
            }
            (host.to_owned(), Some(port.to_owned()))
        }
        None => (host_port.clone(), None),
    };
    if host.is_empty() {
        return Err(invalid());
    }
    Ok(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// Validates an accent colour (`#rgb` or `#rrggbb`), returning `#rrggbb` in lower case.
pub fn parse_accent_colour(raw: &str) -> Result<String, DomainError> {
    let hex = raw.trim().trim_start_matches('#').to_ascii_lowercase();
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(DomainError::invalid(
            "accent_colour",
            "must be a colour like #1f6feb",
        ));
    }
    match hex.len() {
        6 => Ok(format!("#{hex}")),
        3 => Ok(format!(
            "#{}",
            hex.chars().flat_map(|c| [c, c]).collect::<String>()
        )),
        _ => Err(DomainError::invalid(
            "accent_colour",
            "must be a colour like #1f6feb",
        )),
    }
}

impl ChatSite {
    /// Whether a request from `origin` (the browser's `Origin` header) may use this site.
    pub fn allows_origin(&self, origin: &str) -> bool {
        normalize_origin(origin).is_ok_and(|origin| self.allowed_origins.contains(&origin))
    }

    /// Validates what an admin may edit.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err(DomainError::invalid("name", "must be 1–100 characters"));
        }
        if self.allowed_origins.is_empty() {
            return Err(DomainError::invalid(
                "allowed_origins",
                "list at least one origin where the widget runs",
            ));
        }
        if self.allowed_origins.len() > MAX_ALLOWED_ORIGINS {
            return Err(DomainError::invalid(
                "allowed_origins",
                format!("at most {MAX_ALLOWED_ORIGINS} origins"),
            ));
        }
        if self.greeting.chars().count() > MAX_GREETING_CHARS {
            return Err(DomainError::invalid(
                "greeting",
                format!("must be at most {MAX_GREETING_CHARS} characters"),
            ));
        }
        self.working_hours.validate()
    }
}

/// A visitor of a chat site: one browser (anonymous), or one verified customer of the shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    pub id: VisitorId,
    pub site_id: ChatSiteId,
    /// The customer this visitor's chats belong to.
    pub customer_id: CustomerId,
    /// The shop's own customer id, present only when the shop signed it.
    pub verified_external_id: Option<String>,
    pub created_at: Timestamp,
}

string_enum!(
    /// Where a chat is in its life.
    ChatState {
        /// Waiting for an agent, in the queue.
        Queued = "queued",
        /// An agent is talking with the visitor.
        Active = "active",
        /// Finished; the ticket stays, a new message starts a new chat.
        Ended = "ended",
        /// Left while nobody could answer: continues by e-mail as a ticket.
        Offline = "offline",
    }
);

/// A live conversation on top of a ticket of channel `chat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chat {
    pub ticket_id: TicketId,
    pub site_id: ChatSiteId,
    pub visitor_id: VisitorId,
    pub state: ChatState,
    /// The agent talking with the visitor (while `Active`; kept after the end for history).
    pub agent_id: Option<AgentId>,
    /// The team whose agents may take it.
    pub team_id: Option<TeamId>,
    /// The visitor's language (`ru`, `en`) when known, for routing.
    pub language: Option<String>,
    /// When it entered the queue; transfers to a team keep it, so the visitor does not start
    /// waiting again from the back.
    pub queued_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// For chat SLA clocks: the visitor's first message, the first agent answer.
    pub first_visitor_message_at: Option<Timestamp>,
    pub first_agent_message_at: Option<Timestamp>,
    /// The sequence number of the last public entry (messages and chat events the visitor sees).
    pub last_seq: i64,
    /// How far each side has read.
    pub visitor_read_seq: i64,
    pub agent_read_seq: i64,
    pub version: i64,
}

impl Chat {
    /// Whether an agent may still talk in this chat live.
    pub fn is_live(&self) -> bool {
        matches!(self.state, ChatState::Queued | ChatState::Active)
    }

    /// An agent takes the chat.
    pub fn accept(&mut self, agent_id: AgentId, now: Timestamp) -> Result<(), DomainError> {
        if self.state != ChatState::Queued {
            return Err(DomainError::invalid(
                "chat",
                format!(
                    "only a waiting chat can be accepted; this one is {}",
                    self.state
                ),
            ));
        }
        self.state = ChatState::Active;
        self.agent_id = Some(agent_id);
        self.accepted_at.get_or_insert(now);
        Ok(())
    }

    /// Hands the chat to another agent directly.
    pub fn transfer_to_agent(&mut self, agent_id: AgentId) -> Result<(), DomainError> {
        if !self.is_live() {
            return Err(DomainError::invalid("chat", "the chat has ended"));
        }
        if self.agent_id == Some(agent_id) {
            return Err(DomainError::invalid(
                "agent_id",
                "the chat is already with this agent",
            ));
        }
        self.state = ChatState::Active;
        self.agent_id = Some(agent_id);
        Ok(())
    }

    /// Puts the chat back in the queue of a team, keeping its place by first queueing time.
    pub fn transfer_to_team(&mut self, team_id: TeamId) -> Result<(), DomainError> {
        if !self.is_live() {
            return Err(DomainError::invalid("chat", "the chat has ended"));
        }
        self.state = ChatState::Queued;
        self.agent_id = None;
        self.team_id = Some(team_id);
        Ok(())
    }

    /// Puts the chat back in the queue of its own team (its agent left), keeping its place.
    pub fn requeue(&mut self) -> Result<(), DomainError> {
        if !self.is_live() {
            return Err(DomainError::invalid("chat", "the chat has ended"));
        }
        self.state = ChatState::Queued;
        self.agent_id = None;
        Ok(())
    }

    /// Ends the chat (either side). Ending twice is refused so callers can tell.
    pub fn end(&mut self, now: Timestamp) -> Result<(), DomainError> {
        if !self.is_live() {
            return Err(DomainError::invalid("chat", "the chat has already ended"));
        }
        self.state = ChatState::Ended;
        self.ended_at = Some(now);
        Ok(())
    }

    /// Gives the next public entry its sequence number.
    pub fn next_seq(&mut self) -> i64 {
        self.last_seq += 1;
        self.last_seq
    }
}

/// Checks a client-chosen message id (the widget's dedup key).
pub fn parse_client_id(raw: &str) -> Result<String, DomainError> {
    let raw = raw.trim();
    if raw.is_empty()
        || raw.len() > MAX_CLIENT_ID_CHARS
        || !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(DomainError::invalid(
            "client_id",
            "must be 1–64 letters, digits, '-' or '_'",
        ));
    }
    Ok(raw.to_owned())
}

string_enum!(
    /// Whether an agent takes chats.
    Availability {
        /// Takes new chats up to the maximum.
        Online = "online",
        /// Keeps current chats, takes no new ones.
        Away = "away",
        /// Takes nothing.
        Offline = "offline",
    }
);

/// An agent's chat availability and load, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentChatStatus {
    pub agent_id: AgentId,
    pub availability: Availability,
    pub max_chats: u16,
    /// Maintained by the store with every reservation and release.
    pub active_chats: u16,
    /// Languages the agent chats in (`ru`, `en`); empty means any.
    pub languages: Vec<String>,
    /// When the agent last got a chat, so ties go to whoever waited longest.
    pub last_assigned_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

impl AgentChatStatus {
    /// The status of an agent who never set one: offline, three chats at most.
    pub fn offline(agent_id: AgentId, now: Timestamp) -> AgentChatStatus {
        AgentChatStatus {
            agent_id,
            availability: Availability::Offline,
            max_chats: 3,
            active_chats: 0,
            languages: Vec::new(),
            last_assigned_at: None,
            updated_at: now,
        }
    }

    /// Validates the maximum an agent sets.
    pub fn parse_max_chats(max_chats: u16) -> Result<u16, DomainError> {
        if max_chats == 0 || max_chats > MAX_CONCURRENT_CHATS {
            return Err(DomainError::invalid(
                "max_chats",
                format!("must be between 1 and {MAX_CONCURRENT_CHATS}"),
            ));
        }
        Ok(max_chats)
    }

    /// Whether a new chat may go to this agent now.
    pub fn has_free_capacity(&self) -> bool {
        self.availability == Availability::Online && self.active_chats < self.max_chats
    }
}

/// A chat waiting in the queue, as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingChat {
    pub ticket_id: TicketId,
    pub team_id: Option<TeamId>,
    pub language: Option<String>,
    pub queued_at: Timestamp,
}

/// An agent as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutableAgent {
    pub status: AgentChatStatus,
    pub team_ids: Vec<TeamId>,
}

impl RoutableAgent {
    fn serves_team(&self, team_id: Option<TeamId>) -> bool {
        team_id.is_none_or(|team_id| self.team_ids.contains(&team_id))
    }

    fn speaks(&self, language: &str) -> bool {
        self.status.languages.is_empty() || self.status.languages.iter().any(|l| l == language)
    }
}

/// One decision of routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    pub ticket_id: TicketId,
    pub agent_id: AgentId,
}

/// The order of the queue: first queued first, ties by id (time-ordered too).
pub fn queue_order(a: &WaitingChat, b: &WaitingChat) -> std::cmp::Ordering {
    (a.queued_at, a.ticket_id).cmp(&(b.queued_at, b.ticket_id))
}

/// Decides which waiting chats go to which agents now.
///
/// Rules, in order: chats are served first come, first served; a chat with a team goes only to
/// that team's agents; an agent must be online with free capacity; among those, an agent who
/// speaks the chat's language is preferred when one exists (a language nobody online speaks
/// does not keep the chat waiting); then the least loaded agent; then whoever got a chat
/// least recently; then the smaller id, so the result is deterministic. A chat nobody can take
/// stays queued without blocking chats behind it that others can take.
pub fn plan_routing(waiting: &[WaitingChat], agents: &[RoutableAgent]) -> Vec<Assignment> {
    let mut queue: Vec<&WaitingChat> = waiting.iter().collect();
    queue.sort_by(|a, b| queue_order(a, b));
    let mut load: Vec<RoutableAgent> = agents.to_vec();
    let mut plan = Vec::new();
    for chat in queue {
        let candidates: Vec<usize> = (0..load.len())
            .filter(|&index| {
                let agent = &load[index];
                agent.status.has_free_capacity() && agent.serves_team(chat.team_id)
            })
            .collect();
        let speakers: Vec<usize> = match &chat.language {
            Some(language) => candidates
                .iter()
                .copied()
                .filter(|&index| load[index].speaks(language))
                .collect(),
            None => Vec::new(),
        };
        let pool = if speakers.is_empty() {
            candidates
        } else {
            speakers
        };
        let chosen = pool.into_iter().min_by(|&a, &b| {
            let (a, b) = (&load[a].status, &load[b].status);
            (a.active_chats, a.last_assigned_at, a.agent_id).cmp(&(
                b.active_chats,
                b.last_assigned_at,
                b.agent_id,
            ))
        });
        if let Some(index) = chosen {
            let status = &mut load[index].status;
            status.active_chats += 1;
            // Within one plan, later ties go to the others first.
            status.last_assigned_at = Some(
                chat.queued_at.max(
                    status
                        .last_assigned_at
                        .unwrap_or(Timestamp::UNIX_EPOCH)
                        .checked_add(SignedDuration::from_nanos(1))
                        .unwrap_or(chat.queued_at),
                ),
            );
            plan.push(Assignment {
                ticket_id: chat.ticket_id,
                agent_id: status.agent_id,
            });
        }
    }
    plan
}

/// Where a chat stands in its queue: how many wait before it (same team), and for how long it
/// has waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePosition {
    /// 1 for the next chat to be taken.
    pub position: usize,
    pub waiting: SignedDuration,
}

/// The position of `ticket_id` among `waiting` chats (those of the same team count).
pub fn queue_position(
    waiting: &[WaitingChat],
    ticket_id: TicketId,
    now: Timestamp,
) -> Option<QueuePosition> {
    let chat = waiting.iter().find(|chat| chat.ticket_id == ticket_id)?;
    let ahead = waiting
        .iter()
        .filter(|other| {
            other.team_id == chat.team_id && queue_order(other, chat) == std::cmp::Ordering::Less
        })
        .count();
    Some(QueuePosition {
        position: ahead + 1,
        waiting: now.duration_since(chat.queued_at).max(SignedDuration::ZERO),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + seconds).unwrap()
    }

    fn agent(id: u128, active: u16, max: u16) -> RoutableAgent {
        RoutableAgent {
            status: AgentChatStatus {
                agent_id: AgentId(uuid::Uuid::from_u128(id)),
                availability: Availability::Online,
                max_chats: max,
                active_chats: active,
                languages: Vec::new(),
                last_assigned_at: None,
                updated_at: at(0),
            },
            team_ids: Vec::new(),
        }
    }

    fn chat(id: u128, queued: i64) -> WaitingChat {
        WaitingChat {
            ticket_id: TicketId(uuid::Uuid::from_u128(id)),
            team_id: None,
            language: None,
            queued_at: at(queued),
        }
    }

    fn agent_of(plan: &[Assignment], ticket: u128) -> Option<u128> {
        plan.iter()
            .find(|a| a.ticket_id.0.as_u128() == ticket)
            .map(|a| a.agent_id.0.as_u128())
    }

    #[test]
    fn a_new_chat_goes_to_the_least_loaded_online_agent() {
        let plan = plan_routing(&[chat(1, 0)], &[agent(10, 2, 3), agent(11, 1, 3)]);
        assert_eq!(agent_of(&plan, 1), Some(11));
    }

    #[test]
    fn nobody_gets_more_chats_than_their_maximum_and_the_rest_wait() {
        let waiting = [chat(1, 0), chat(2, 1), chat(3, 2)];
        let plan = plan_routing(&waiting, &[agent(10, 0, 1), agent(11, 1, 2)]);
        assert_eq!(plan.len(), 2);
        assert_eq!(agent_of(&plan, 3), None, "the last queued chat waits");
    }

    #[test]
    fn the_queue_is_served_first_come_first_served() {
        let plan = plan_routing(&[chat(2, 5), chat(1, 9)], &[agent(10, 0, 1)]);
        assert_eq!(plan.len(), 1);
        assert_eq!(agent_of(&plan, 2), Some(10));
    }

    #[test]
    fn away_and_offline_agents_get_no_new_chats() {
        let mut away = agent(10, 0, 3);
        away.status.availability = Availability::Away;
        let mut offline = agent(11, 0, 3);
        offline.status.availability = Availability::Offline;
        assert!(plan_routing(&[chat(1, 0)], &[away, offline]).is_empty());
    }

    #[test]
    fn a_chat_for_a_team_goes_only_to_its_members_without_blocking_others() {
        let team = TeamId(uuid::Uuid::from_u128(99));
        let mut for_team = chat(1, 0);
        for_team.team_id = Some(team);
        let plan = plan_routing(&[for_team, chat(2, 1)], &[agent(10, 0, 3)]);
        assert_eq!(agent_of(&plan, 1), None);
        assert_eq!(agent_of(&plan, 2), Some(10));
        let mut member = agent(11, 2, 3);
        member.team_ids.push(team);
        let mut for_team = chat(1, 0);
        for_team.team_id = Some(team);
        let plan = plan_routing(&[for_team], &[agent(10, 0, 3), member]);
        assert_eq!(agent_of(&plan, 1), Some(11));
    }

    #[test]
    fn speakers_of_the_chat_language_are_preferred_but_not_required() {
        let mut russian = chat(1, 0);
        russian.language = Some("ru".into());
        let mut speaker = agent(11, 2, 3);
        speaker.status.languages = vec!["ru".into()];
        let mut english_only = agent(10, 0, 3);
        english_only.status.languages = vec!["en".into()];
        let plan = plan_routing(
            std::slice::from_ref(&russian),
            &[english_only.clone(), speaker],
        );
        assert_eq!(agent_of(&plan, 1), Some(11));
        let plan = plan_routing(&[russian], &[english_only]);
        assert_eq!(
            agent_of(&plan, 1),
            Some(10),
            "nobody speaks it: anyone takes it"
        );
    }

    #[test]
    fn equally_loaded_agents_take_turns() {
        let waiting = [chat(1, 0), chat(2, 1), chat(3, 2), chat(4, 3)];
        let plan = plan_routing(&waiting, &[agent(10, 0, 5), agent(11, 0, 5)]);
        let first = agent_of(&plan, 1).unwrap();
        let second = agent_of(&plan, 2).unwrap();
        assert_ne!(first, second);
        assert_eq!(agent_of(&plan, 3), Some(first));
        assert_eq!(agent_of(&plan, 4), Some(second));
    }

    #[test]
    fn queue_position_counts_only_earlier_chats_of_the_same_team() {
        let team = TeamId(uuid::Uuid::from_u128(99));
        let mut other_team = chat(1, 0);
        other_team.team_id = Some(team);
        let waiting = [other_team, chat(2, 10), chat(3, 20)];
        let position =
            queue_position(&waiting, TicketId(uuid::Uuid::from_u128(3)), at(80)).expect("queued");
        assert_eq!(position.position, 2);
        assert_eq!(position.waiting, SignedDuration::from_secs(60));
        assert!(queue_position(&waiting, TicketId(uuid::Uuid::from_u128(7)), at(0)).is_none());
    }

    #[test]
    fn a_transfer_to_a_team_requeues_the_chat_keeping_its_waiting_time() {
        let mut live = Chat {
            ticket_id: TicketId::new(),
            site_id: ChatSiteId::new(),
            visitor_id: VisitorId::new(),
            state: ChatState::Queued,
            agent_id: None,
            team_id: None,
            language: None,
            queued_at: at(0),
            accepted_at: None,
            ended_at: None,
            first_visitor_message_at: None,
            first_agent_message_at: None,
            last_seq: 0,
            visitor_read_seq: 0,
            agent_read_seq: 0,
            version: 0,
        };
        let anna = AgentId::new();
        live.accept(anna, at(30)).unwrap();
        assert!(
            live.accept(anna, at(31)).is_err(),
            "accepting twice is refused"
        );
        let team = TeamId::new();
        live.transfer_to_team(team).unwrap();
        assert_eq!(
            (live.state, live.agent_id, live.queued_at),
            (ChatState::Queued, None, at(0))
        );
        live.end(at(90)).unwrap();
        assert!(live.end(at(91)).is_err());
        assert!(live.transfer_to_agent(anna).is_err());
    }

    #[test]
    fn origins_are_normalised_as_browsers_send_them() {
        assert_eq!(
            normalize_origin("HTTPS://Shop.Example/").unwrap(),
            "https://shop.example"
        );
        assert_eq!(
            normalize_origin("https://shop.example:443").unwrap(),
            "https://shop.example"
        );
        assert_eq!(
            normalize_origin("http://127.0.0.1:8000").unwrap(),
            "http://127.0.0.1:8000"
        );
        for bad in [
            "shop.example",
            "ftp://shop.example",
            "https://shop.example/path",
            "https://user@shop.example",
            "https://",
            "https://shop.example:port",
            "javascript://x",
        ] {
            assert!(normalize_origin(bad).is_err(), "{bad} must be refused");
        }
        let site_origins = vec!["https://shop.example".to_owned()];
        let site = ChatSite {
            id: ChatSiteId::new(),
            name: "Shop".into(),
            allowed_origins: site_origins,
            greeting: String::new(),
            accent_colour: "#1f6feb".into(),
            working_hours: WorkingHours::around_the_clock(),
            pre_chat: PreChatForm::default(),
            identity_secret: "s".into(),
            require_identity: false,
            team_id: None,
            mailbox_id: None,
            active: true,
            created_at: at(0),
            updated_at: at(0),
            version: 0,
        };
        assert!(site.allows_origin("https://shop.example"));
        assert!(!site.allows_origin("https://shop.example.evil.test"));
        assert!(!site.allows_origin("null"));
    }

    #[test]
    fn working_hours_follow_the_sites_time_zone() {
        let mut hours = WorkingHours {
            time_zone: "Europe/Moscow".into(),
            days: [None; 7],
        };
        // Monday to Friday, 09:00–18:00 Moscow time.
        for day in hours.days.iter_mut().take(5) {
            *day = Some(DayHours {
                from_minute: 9 * 60,
                to_minute: 18 * 60,
            });
        }
        hours.validate().unwrap();
        // 2026-11-23 is a Monday. 06:30 UTC = 09:30 in Moscow.
        let monday_morning: Timestamp = "2026-11-23T06:30:00Z".parse().unwrap();
        let monday_evening: Timestamp = "2026-11-23T15:30:00Z".parse().unwrap();
        let saturday: Timestamp = "2026-11-28T08:00:00Z".parse().unwrap();
        assert!(hours.is_open(monday_morning));
        assert!(!hours.is_open(monday_evening), "18:30 in Moscow is closed");
        assert!(!hours.is_open(saturday));
        assert!(WorkingHours::around_the_clock().is_open(saturday));
        let bad_zone = WorkingHours {
            time_zone: "Mars/Olympus".into(),
            days: hours.days,
        };
        assert!(bad_zone.validate().is_err());
    }

    #[test]
    fn the_pre_chat_form_enforces_required_answers_and_drops_hidden_ones() {
        let form = PreChatForm {
            name: FieldMode::Required,
            email: FieldMode::Optional,
            order_number: FieldMode::Hidden,
        };
        assert!(form.check(PreChatAnswers::default()).is_err());
        let answers = form
            .check(PreChatAnswers {
                name: Some("  Ольга ".into()),
                email: Some("Olga@Example.RU".into()),
                order_number: Some("A-1".into()),
            })
            .unwrap();
        assert_eq!(answers.name.as_deref(), Some("Ольга"));
        assert_eq!(answers.email.as_deref(), Some("olga@example.ru"));
        assert_eq!(answers.order_number, None);
        assert!(
            form.check(PreChatAnswers {
                name: Some("x".into()),
                email: Some("not an email".into()),
                order_number: None,
            })
            .is_err()
        );
    }

    #[test]
    fn client_ids_and_colours_are_checked() {
        assert!(parse_client_id("0f8e-abc_1").is_ok());
        assert!(parse_client_id("").is_err());
        assert!(parse_client_id("a b").is_err());
        assert!(parse_client_id(&"x".repeat(65)).is_err());
        assert_eq!(parse_accent_colour("#ABC").unwrap(), "#aabbcc");
        assert_eq!(parse_accent_colour("1f6feb").unwrap(), "#1f6feb");
        assert!(parse_accent_colour("red; x").is_err());
    }
}
