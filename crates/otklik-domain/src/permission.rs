//! Who may do what. Every use case asks [`Principal::require`] before it acts and
//! [`Principal::can_view_ticket`] before it shows or touches a ticket; the web layer turns a
//! refusal on a specific object into 404 so ids of hidden objects are never confirmed.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::DomainError;
use crate::agent::Role;
use crate::ids::{AgentId, TeamId, TokenId};
use crate::ticket::Ticket;

/// An operation class that permissions are granted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ReadTickets,
    WriteTickets,
    ReadCustomers,
    WriteCustomers,
    MergeCustomers,
    /// See agents, teams and tags (needed to assign and tag).
    ReadDirectory,
    ManageTags,
    ManageTeams,
    ManageAgents,
    /// Change one's own name and password, and issue or revoke one's own API tokens. A token can
    /// do this only if it carries the `admin` scope: a narrow token must never mint a wider one
    /// or take over its owner's account.
    ManageOwnAccount,
    /// Configure channels (mailboxes), read raw and quarantined mail, re-process it.
    ManageChannels,
}

impl Action {
    /// The token scope that must be granted for this action.
    pub fn scope(self) -> Scope {
        match self {
            Action::ReadTickets | Action::ReadDirectory => Scope::TicketsRead,
            Action::WriteTickets => Scope::TicketsWrite,
            Action::ReadCustomers => Scope::CustomersRead,
            Action::WriteCustomers | Action::MergeCustomers => Scope::CustomersWrite,
            Action::ManageTags
            | Action::ManageTeams
            | Action::ManageAgents
            | Action::ManageOwnAccount
            | Action::ManageChannels => Scope::Admin,
        }
    }

    /// The least role that may perform this action.
    pub fn min_role(self) -> Role {
        match self {
            Action::ReadTickets
            | Action::WriteTickets
            | Action::ReadCustomers
            | Action::WriteCustomers
            | Action::ReadDirectory
            | Action::ManageOwnAccount => Role::Agent,
            Action::MergeCustomers | Action::ManageTags | Action::ManageTeams => Role::Supervisor,
            Action::ManageAgents | Action::ManageChannels => Role::Admin,
        }
    }
}

/// What an API token may be used for. A token never grants more than its owner's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    TicketsRead,
    TicketsWrite,
    CustomersRead,
    CustomersWrite,
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: &'static [Scope] = &[
        Scope::TicketsRead,
        Scope::TicketsWrite,
        Scope::CustomersRead,
        Scope::CustomersWrite,
        Scope::Admin,
    ];

    /// The scope's stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TicketsRead => "tickets:read",
            Scope::TicketsWrite => "tickets:write",
            Scope::CustomersRead => "customers:read",
            Scope::CustomersWrite => "customers:write",
            Scope::Admin => "admin",
        }
    }

    /// Write scopes imply the matching read scope; `admin` implies every scope.
    fn implies(self, needed: Scope) -> bool {
        self == needed
            || self == Scope::Admin
            || (self == Scope::TicketsWrite && needed == Scope::TicketsRead)
            || (self == Scope::CustomersWrite && needed == Scope::CustomersRead)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = DomainError;
    fn from_str(text: &str) -> Result<Self, DomainError> {
        Scope::ALL
            .iter()
            .copied()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<_> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
                DomainError::invalid(
                    "scopes",
                    format!("unknown scope {text:?}; expected: {}", names.join(", ")),
                )
            })
    }
}

/// Parses a comma- or space-separated scope list; an empty list is refused.
pub fn parse_scopes(raw: &str) -> Result<BTreeSet<Scope>, DomainError> {
    let scopes = raw
        .split([',', ' '])
        .filter(|part| !part.is_empty())
        .map(Scope::from_str)
        .collect::<Result<BTreeSet<_>, _>>()?;
    if scopes.is_empty() {
        return Err(DomainError::invalid("scopes", "name at least one scope"));
    }
    Ok(scopes)
}

/// The authenticated caller of a use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub agent_id: AgentId,
    pub role: Role,
    pub team_ids: Vec<TeamId>,
    /// `None` for a signed-in session (all of the role's rights); a token's scopes otherwise.
    pub scopes: Option<BTreeSet<Scope>>,
    /// The token used, if any (for audit and idempotency keys).
    pub token_id: Option<TokenId>,
}

/// A refused permission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The role does not allow the action at all.
    #[error("your role does not allow this")]
    Role,
    /// The token was not granted the scope.
    #[error("this API token lacks the {0} scope")]
    Scope(Scope),
}

impl Principal {
    /// Refuses the action unless both the role and the token scopes allow it.
    pub fn require(&self, action: Action) -> Result<(), Denied> {
        if self.role < action.min_role() {
            return Err(Denied::Role);
        }
        if let Some(scopes) = &self.scopes {
            let needed = action.scope();
            if !scopes.iter().any(|granted| granted.implies(needed)) {
                return Err(Denied::Scope(needed));
            }
        }
        Ok(())
    }

    /// Whether the principal's role sees every ticket (supervisors and admins do).
    pub fn sees_all_tickets(&self) -> bool {
        self.role >= Role::Supervisor
    }

    /// Agents see tickets of their teams, tickets not routed to any team, and tickets assigned to
    /// them; supervisors and admins see all.
    pub fn can_view_ticket(&self, ticket: &Ticket) -> bool {
        self.sees_all_tickets()
            || ticket.assignee_id == Some(self.agent_id)
            || ticket
                .team_id
                .is_none_or(|team_id| self.team_ids.contains(&team_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CustomerId, TicketId};
    use crate::ticket::{Channel, NewTicket, Priority, TicketStatus};

    fn principal(role: Role, scopes: Option<&[Scope]>) -> Principal {
        Principal {
            agent_id: AgentId::new(),
            role,
            team_ids: vec![],
            scopes: scopes.map(|scopes| scopes.iter().copied().collect()),
            token_id: None,
        }
    }

    fn ticket_in(team_id: Option<TeamId>) -> Ticket {
        NewTicket {
            id: TicketId::new(),
            subject: "s".into(),
            status: TicketStatus::New,
            priority: Priority::Normal,
            channel: Channel::Api,
            customer_id: CustomerId::new(),
            assignee_id: None,
            team_id,
            tags: vec![],
            created_at: jiff::Timestamp::UNIX_EPOCH,
        }
        .into_ticket(1)
    }

    #[test]
    fn a_read_only_token_cannot_write_even_for_an_admin() {
        let admin = principal(Role::Admin, Some(&[Scope::TicketsRead]));
        assert!(admin.require(Action::ReadTickets).is_ok());
        assert_eq!(
            admin.require(Action::WriteTickets),
            Err(Denied::Scope(Scope::TicketsWrite))
        );
    }

    #[test]
    fn an_admin_scope_on_an_agent_token_does_not_lift_the_role() {
        let agent = principal(Role::Agent, Some(&[Scope::Admin]));
        assert_eq!(agent.require(Action::ManageAgents), Err(Denied::Role));
        assert!(agent.require(Action::WriteTickets).is_ok());
    }

    #[test]
    fn a_narrow_token_cannot_manage_its_owners_account_but_a_session_can() {
        let token = principal(
            Role::Agent,
            Some(&[Scope::TicketsRead, Scope::TicketsWrite]),
        );
        assert_eq!(
            token.require(Action::ManageOwnAccount),
            Err(Denied::Scope(Scope::Admin))
        );
        assert!(
            principal(Role::Agent, None)
                .require(Action::ManageOwnAccount)
                .is_ok()
        );
    }

    #[test]
    fn only_supervisors_and_admins_merge_customers() {
        assert!(
            principal(Role::Agent, None)
                .require(Action::MergeCustomers)
                .is_err()
        );
        assert!(
            principal(Role::Supervisor, None)
                .require(Action::MergeCustomers)
                .is_ok()
        );
    }

    #[test]
    fn an_agent_sees_own_team_unrouted_and_own_assigned_tickets_only() {
        let team = TeamId::new();
        let mut agent = principal(Role::Agent, None);
        agent.team_ids = vec![team];
        assert!(agent.can_view_ticket(&ticket_in(None)));
        assert!(agent.can_view_ticket(&ticket_in(Some(team))));
        let mut foreign = ticket_in(Some(TeamId::new()));
        assert!(!agent.can_view_ticket(&foreign));
        foreign.assignee_id = Some(agent.agent_id);
        assert!(agent.can_view_ticket(&foreign));
        assert!(principal(Role::Supervisor, None).can_view_ticket(&ticket_in(Some(TeamId::new()))));
    }

    #[test]
    fn scope_lists_parse_with_commas_or_spaces_and_refuse_unknown_names() {
        let scopes = parse_scopes("tickets:read, customers:write").unwrap();
        assert_eq!(scopes.len(), 2);
        assert!(parse_scopes("tickets:delete").is_err());
        assert!(parse_scopes(" ").is_err());
    }
}
