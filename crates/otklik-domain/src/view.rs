//! Saved views: named queue filters ("my open", "unassigned", "urgent", "pending > 2 days")
//! whose counts are kept up to date as tickets change, never counted by scanning.
//!
//! A view may filter only on what the maintained counters record: status, priority, assignee,
//! team and how long ago the ticket was last updated (in whole days).

use jiff::Timestamp;

use crate::DomainError;
use crate::ids::{AgentId, TeamId, ViewId};
use crate::ticket::{Priority, TicketStatus};

/// Whose tickets a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum ViewAssignee {
    /// The agent looking at the view.
    Me,
    /// Unassigned tickets.
    Nobody,
    /// One agent.
    Agent(AgentId),
}

/// Which team's tickets a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum ViewTeam {
    /// Tickets without a team.
    NoTeam,
    Team(TeamId),
}

/// The filter of a saved view. Empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewFilter {
    #[serde(default)]
    pub statuses: Vec<TicketStatus>,
    #[serde(default)]
    pub priorities: Vec<Priority>,
    #[serde(default)]
    pub assignee: Option<ViewAssignee>,
    #[serde(default)]
    pub team: Option<ViewTeam>,
    /// Only waiting work (pending, on hold) last updated at least this many whole days ago.
    #[serde(default)]
    pub idle_days: Option<u32>,
}

impl ViewFilter {
    /// Checks the filter's bounds.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.idle_days.is_some_and(|days| days == 0 || days > 3650) {
            return Err(DomainError::invalid("idle_days", "must be 1 to 3650"));
        }
        if self.idle_days.is_some() && self.statuses.iter().any(|status| !status.is_waiting()) {
            return Err(DomainError::invalid(
                "idle_days",
                "applies to waiting work only (pending, on_hold)",
            ));
        }
        Ok(())
    }
}

/// A saved view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedView {
    pub id: ViewId,
    pub name: String,
    /// `None` for a view shared by everyone.
    pub owner_agent_id: Option<AgentId>,
    pub filter: ViewFilter,
    pub position: i64,
    pub created_at: Timestamp,
}

/// The views every instance starts with, shared by all staff.
pub fn default_views() -> Vec<(&'static str, ViewFilter)> {
    let active = vec![
        TicketStatus::New,
        TicketStatus::Open,
        TicketStatus::Pending,
        TicketStatus::OnHold,
    ];
    vec![
        (
            "My open tickets",
            ViewFilter {
                statuses: vec![TicketStatus::New, TicketStatus::Open],
                assignee: Some(ViewAssignee::Me),
                ..ViewFilter::default()
            },
        ),
        (
            "Unassigned",
            ViewFilter {
                statuses: active.clone(),
                assignee: Some(ViewAssignee::Nobody),
                ..ViewFilter::default()
            },
        ),
        (
            "All open",
            ViewFilter {
                statuses: vec![TicketStatus::New, TicketStatus::Open],
                ..ViewFilter::default()
            },
        ),
        (
            "Urgent",
            ViewFilter {
                statuses: active,
                priorities: vec![Priority::Urgent],
                ..ViewFilter::default()
            },
        ),
        (
            "Pending > 2 days",
            ViewFilter {
                statuses: vec![TicketStatus::Pending],
                idle_days: Some(2),
                ..ViewFilter::default()
            },
        ),
        (
            "Solved",
            ViewFilter {
                statuses: vec![TicketStatus::Solved],
                ..ViewFilter::default()
            },
        ),
    ]
}

/// The UTC day number (days since 1970-01-01) of an instant: the counters' time bucket.
pub fn day_number(at: Timestamp) -> i64 {
    at.as_second().div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_days_apply_to_waiting_work_only() {
        let filter = ViewFilter {
            statuses: vec![TicketStatus::Open],
            idle_days: Some(2),
            ..ViewFilter::default()
        };
        assert!(filter.validate().is_err());
        assert!(
            ViewFilter {
                idle_days: Some(0),
                ..ViewFilter::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            default_views()
                .iter()
                .all(|(_, filter)| filter.validate().is_ok())
        );
    }

    #[test]
    fn the_day_number_of_an_instant_is_its_utc_day() {
        assert_eq!(day_number(Timestamp::from_second(0).unwrap()), 0);
        assert_eq!(day_number(Timestamp::from_second(86_399).unwrap()), 0);
        assert_eq!(day_number(Timestamp::from_second(86_400).unwrap()), 1);
        assert_eq!(day_number(Timestamp::from_second(-1).unwrap()), -1);
    }

    #[test]
    fn a_view_filter_round_trips_through_json() {
        let filter = ViewFilter {
            statuses: vec![TicketStatus::Pending],
            assignee: Some(ViewAssignee::Me),
            team: Some(ViewTeam::NoTeam),
            idle_days: Some(3),
            ..ViewFilter::default()
        };
        let json = serde_json::to_string(&filter).unwrap();
        assert_eq!(serde_json::from_str::<ViewFilter>(&json).unwrap(), filter);
    }
}
