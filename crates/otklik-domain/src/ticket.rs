//! Tickets: the status machine, priorities, channels and the rules for changing a ticket.

use jiff::Timestamp;

use crate::DomainError;
use crate::audit::FieldChange;
use crate::ids::{AgentId, CustomerId, TeamId, TicketId};

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The stable name used in the API and the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::DomainError;
            fn from_str(text: &str) -> Result<Self, $crate::DomainError> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::DomainError::invalid(
                        stringify!($name),
                        format!("unknown value {other:?}; expected one of: {}",
                            [$($text),+].join(", ")),
                    )),
                }
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// Where a ticket is in its life.
    TicketStatus {
        /// Arrived, nobody has touched it yet.
        New = "new",
        /// An agent is working on it.
        Open = "open",
        /// Waiting for the customer; SLA clocks pause.
        Pending = "pending",
        /// Waiting for a third party (carrier, warehouse, supplier).
        OnHold = "on_hold",
        /// Answered; reopens if the customer writes back.
        Solved = "solved",
        /// Final; a new message starts a new ticket.
        Closed = "closed",
    }
);

impl TicketStatus {
    /// Whether the status machine allows going from `self` to `to`. Staying put is always allowed
    /// (it is a no-op, not a transition).
    pub fn can_become(self, to: TicketStatus) -> bool {
        use TicketStatus::*;
        if self == to {
            return true;
        }
        match self {
            New => matches!(to, Open | Pending | OnHold | Solved),
            Open | Pending | OnHold => matches!(to, Open | Pending | OnHold | Solved),
            // A solved ticket can be reopened, or closed for good.
            Solved => matches!(to, Open | Pending | OnHold | Closed),
            Closed => false,
        }
    }

    /// Waiting on someone else (the customer or a third party): what "idle for N days" views
    /// are about.
    pub fn is_waiting(self) -> bool {
        matches!(self, TicketStatus::Pending | TicketStatus::OnHold)
    }

    /// Open work that still counts in queues (not solved or closed).
    pub fn is_active(self) -> bool {
        !matches!(self, TicketStatus::Solved | TicketStatus::Closed)
    }
}

string_enum!(
    /// How urgent a ticket is.
    Priority {
        Low = "low",
        Normal = "normal",
        High = "high",
        Urgent = "urgent",
    }
);

impl Priority {
    /// The priority as a number that sorts by urgency (low 0 … urgent 3). Both backends sort
    /// and index by the same mapping, written as a `CASE` in their migrations.
    pub fn rank(self) -> i64 {
        match self {
            Priority::Low => 0,
            Priority::Normal => 1,
            Priority::High => 2,
            Priority::Urgent => 3,
        }
    }
}

string_enum!(
    /// The channel a ticket or message came through. A reply goes back on the same channel.
    Channel {
        Email = "email",
        Chat = "chat",
        WebForm = "web_form",
        Phone = "phone",
        Messenger = "messenger",
        Marketplace = "marketplace",
        /// Created by an integrator through the REST API.
        Api = "api",
    }
);

/// Ticket subjects are single-line and bounded so lists stay readable and indexes small.
pub const MAX_SUBJECT_CHARS: usize = 250;

/// A validated ticket subject: trimmed, single line, 1..=250 characters.
pub fn parse_subject(raw: &str) -> Result<String, DomainError> {
    let subject: String = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if subject.is_empty() {
        return Err(DomainError::invalid("subject", "must not be empty"));
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(DomainError::invalid(
            "subject",
            format!("must be at most {MAX_SUBJECT_CHARS} characters"),
        ));
    }
    Ok(subject)
}

/// A ticket as the domain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub id: TicketId,
    /// The human number shown to agents and customers ("#1042"); separate from the id.
    pub number: i64,
    pub subject: String,
    pub status: TicketStatus,
    pub priority: Priority,
    pub channel: Channel,
    pub customer_id: CustomerId,
    pub assignee_id: Option<AgentId>,
    pub team_id: Option<TeamId>,
    /// Normalised tag names, sorted.
    pub tags: Vec<String>,
    /// Set when this ticket was merged into another: the survivor.
    pub merged_into: Option<TicketId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub first_agent_reply_at: Option<Timestamp>,
    pub solved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    /// Optimistic-concurrency counter: each saved change increments it.
    pub version: i64,
}

/// The fields of a new ticket; the store assigns the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub id: TicketId,
    pub subject: String,
    pub status: TicketStatus,
    pub priority: Priority,
    pub channel: Channel,
    pub customer_id: CustomerId,
    pub assignee_id: Option<AgentId>,
    pub team_id: Option<TeamId>,
    pub tags: Vec<String>,
    pub created_at: Timestamp,
}

impl NewTicket {
    /// The audit changes of creating this ticket: every field it starts with.
    pub fn creation_changes(&self) -> Vec<FieldChange> {
        let mut changes = vec![
            crate::audit::set("subject", &self.subject),
            crate::audit::set("status", self.status),
            crate::audit::set("priority", self.priority),
            crate::audit::set("channel", self.channel),
            crate::audit::set("customer_id", self.customer_id),
        ];
        if let Some(assignee_id) = self.assignee_id {
            changes.push(crate::audit::set("assignee_id", assignee_id));
        }
        if let Some(team_id) = self.team_id {
            changes.push(crate::audit::set("team_id", team_id));
        }
        if !self.tags.is_empty() {
            changes.push(crate::audit::set("tags", self.tags.join(",")));
        }
        changes
    }

    /// The ticket as it will exist once the store has given it `number`.
    pub fn into_ticket(self, number: i64) -> Ticket {
        Ticket {
            id: self.id,
            number,
            subject: self.subject,
            status: self.status,
            priority: self.priority,
            channel: self.channel,
            customer_id: self.customer_id,
            assignee_id: self.assignee_id,
            team_id: self.team_id,
            tags: self.tags,
            merged_into: None,
            created_at: self.created_at,
            updated_at: self.created_at,
            first_agent_reply_at: None,
            solved_at: None,
            closed_at: None,
            version: 1,
        }
    }
}

/// A partial update: `None` leaves a field alone; `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketPatch {
    pub subject: Option<String>,
    pub status: Option<TicketStatus>,
    pub priority: Option<Priority>,
    pub assignee_id: Option<Option<AgentId>>,
    pub team_id: Option<Option<TeamId>>,
    pub tags: Option<Vec<String>>,
}

impl Ticket {
    /// Refuses any change to a merged or closed ticket.
    pub fn ensure_editable(
        &self,
        survivor_number: impl FnOnce() -> i64,
    ) -> Result<(), DomainError> {
        if self.merged_into.is_some() {
            return Err(DomainError::TicketMerged {
                survivor_number: survivor_number(),
            });
        }
        if self.status == TicketStatus::Closed {
            return Err(DomainError::TicketClosed);
        }
        Ok(())
    }

    /// Moves the ticket to `to`, keeping the lifecycle timestamps right.
    pub fn transition(&mut self, to: TicketStatus, now: Timestamp) -> Result<(), DomainError> {
        if !self.status.can_become(to) {
            return Err(DomainError::InvalidTransition {
                from: self.status,
                to,
            });
        }
        if self.status == to {
            return Ok(());
        }
        match to {
            TicketStatus::Solved => self.solved_at = Some(now),
            TicketStatus::Closed => self.closed_at = Some(now),
            // Reopening clears the solve time: resolution is measured to the last solve.
            _ if self.status == TicketStatus::Solved => self.solved_at = None,
            _ => {}
        }
        self.status = to;
        Ok(())
    }

    /// Applies a patch and returns the field-level changes for the audit log. Nothing is changed
    /// if any part of the patch is refused.
    pub fn apply_patch(
        &mut self,
        patch: TicketPatch,
        now: Timestamp,
    ) -> Result<Vec<FieldChange>, DomainError> {
        let before = self.clone();
        let mut after = self.clone();
        if let Some(subject) = patch.subject {
            after.subject = parse_subject(&subject)?;
        }
        if let Some(priority) = patch.priority {
            after.priority = priority;
        }
        if let Some(assignee_id) = patch.assignee_id {
            after.assignee_id = assignee_id;
            // Taking a new ticket means someone works on it.
            if assignee_id.is_some() && after.status == TicketStatus::New && patch.status.is_none()
            {
                after.transition(TicketStatus::Open, now)?;
            }
        }
        if let Some(team_id) = patch.team_id {
            after.team_id = team_id;
        }
        if let Some(tags) = patch.tags {
            after.tags = crate::agent::normalize_tag_list(&tags)?;
        }
        if let Some(status) = patch.status {
            after.transition(status, now)?;
        }
        let changes = diff(&before, &after);
        if !changes.is_empty() {
            after.updated_at = now;
        }
        *self = after;
        Ok(changes)
    }
}

fn opt_string<T: ToString>(value: &Option<T>) -> Option<String> {
    value.as_ref().map(ToString::to_string)
}

/// The field-level differences between two states of a ticket, for the audit log.
pub fn diff(before: &Ticket, after: &Ticket) -> Vec<FieldChange> {
    let mut changes = Vec::new();
    let mut push = |field: &'static str, old: Option<String>, new: Option<String>| {
        if old != new {
            changes.push(FieldChange {
                field,
                before: old,
                after: new,
            });
        }
    };
    push(
        "subject",
        Some(before.subject.clone()),
        Some(after.subject.clone()),
    );
    push(
        "status",
        Some(before.status.to_string()),
        Some(after.status.to_string()),
    );
    push(
        "priority",
        Some(before.priority.to_string()),
        Some(after.priority.to_string()),
    );
    push(
        "assignee_id",
        opt_string(&before.assignee_id),
        opt_string(&after.assignee_id),
    );
    push(
        "team_id",
        opt_string(&before.team_id),
        opt_string(&after.team_id),
    );
    push(
        "tags",
        Some(before.tags.join(",")),
        Some(after.tags.join(",")),
    );
    push(
        "customer_id",
        Some(before.customer_id.to_string()),
        Some(after.customer_id.to_string()),
    );
    push(
        "merged_into",
        opt_string(&before.merged_into),
        opt_string(&after.merged_into),
    );
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(status: TicketStatus) -> Ticket {
        NewTicket {
            id: TicketId::new(),
            subject: "Where is my order?".into(),
            status,
            priority: Priority::Normal,
            channel: Channel::Email,
            customer_id: CustomerId::new(),
            assignee_id: None,
            team_id: None,
            tags: vec![],
            created_at: Timestamp::UNIX_EPOCH,
        }
        .into_ticket(1)
    }

    #[test]
    fn a_closed_ticket_can_go_nowhere_else() {
        for &to in TicketStatus::ALL {
            assert_eq!(
                TicketStatus::Closed.can_become(to),
                to == TicketStatus::Closed,
                "{to}"
            );
        }
    }

    #[test]
    fn only_a_solved_ticket_can_be_closed() {
        for &from in TicketStatus::ALL {
            let allowed = from.can_become(TicketStatus::Closed);
            assert_eq!(
                allowed,
                matches!(from, TicketStatus::Solved | TicketStatus::Closed),
                "{from}"
            );
        }
    }

    #[test]
    fn nothing_goes_back_to_new() {
        for &from in TicketStatus::ALL {
            if from != TicketStatus::New {
                assert!(!from.can_become(TicketStatus::New), "{from}");
            }
        }
    }

    #[test]
    fn solving_stamps_the_time_and_reopening_clears_it() {
        let mut ticket = ticket(TicketStatus::Open);
        let later = Timestamp::from_second(100).unwrap();
        ticket.transition(TicketStatus::Solved, later).unwrap();
        assert_eq!(ticket.solved_at, Some(later));
        ticket.transition(TicketStatus::Open, later).unwrap();
        assert_eq!(ticket.solved_at, None);
    }

    #[test]
    fn an_invalid_transition_in_a_patch_changes_nothing() {
        let mut ticket = ticket(TicketStatus::Open);
        let before = ticket.clone();
        let patch = TicketPatch {
            priority: Some(Priority::Urgent),
            status: Some(TicketStatus::Closed),
            ..TicketPatch::default()
        };
        let error = ticket
            .apply_patch(patch, Timestamp::UNIX_EPOCH)
            .unwrap_err();
        assert_eq!(
            error,
            DomainError::InvalidTransition {
                from: TicketStatus::Open,
                to: TicketStatus::Closed
            }
        );
        assert_eq!(ticket, before);
    }

    #[test]
    fn assigning_a_new_ticket_opens_it_and_records_both_changes() {
        let mut ticket = ticket(TicketStatus::New);
        let agent = AgentId::new();
        let patch = TicketPatch {
            assignee_id: Some(Some(agent)),
            ..TicketPatch::default()
        };
        let changes = ticket
            .apply_patch(patch, Timestamp::from_second(5).unwrap())
            .unwrap();
        assert_eq!(ticket.status, TicketStatus::Open);
        let fields: Vec<_> = changes.iter().map(|change| change.field).collect();
        assert_eq!(fields, vec!["status", "assignee_id"]);
        assert_eq!(ticket.updated_at, Timestamp::from_second(5).unwrap());
    }

    #[test]
    fn an_empty_patch_changes_nothing_and_keeps_updated_at() {
        let mut ticket = ticket(TicketStatus::Open);
        let changes = ticket
            .apply_patch(TicketPatch::default(), Timestamp::MAX)
            .unwrap();
        assert!(changes.is_empty());
        assert_eq!(ticket.updated_at, Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn a_subject_is_trimmed_to_one_line_and_bounded() {
        assert_eq!(
            parse_subject("  Где\n мой   заказ? ").unwrap(),
            "Где мой заказ?"
        );
        assert!(parse_subject(" \n ").is_err());
        assert!(parse_subject(&"я".repeat(251)).is_err());
        assert!(parse_subject(&"я".repeat(250)).is_ok());
    }

    #[test]
    fn status_names_round_trip_and_unknown_names_are_refused() {
        for &status in TicketStatus::ALL {
            assert_eq!(status.as_str().parse::<TicketStatus>().unwrap(), status);
        }
        assert!("reopened".parse::<TicketStatus>().is_err());
    }
}
