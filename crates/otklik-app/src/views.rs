//! Saved views and their maintained counts.

use otklik_domain::DomainError;
use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::ids::ViewId;
use otklik_domain::permission::{Action, Principal};
use otklik_domain::ticket::TicketStatus;
use otklik_domain::view::{
    SavedView, ViewAssignee, ViewFilter, ViewTeam, day_number, default_views,
};
use otklik_store::{
    AssigneeFilter, Mutation, SortedTicketCursor, TeamFilter, TicketCountQuery, TicketCursor,
    TicketFilter, TicketSort, UnitOfWork,
};

use crate::tickets::{SortedTicketPage, TicketPage};
use crate::{App, AppError, AppResult};

/// A view and how many tickets it holds for the caller.
#[derive(Debug, Clone)]
pub struct CountedView {
    pub view: SavedView,
    pub count: i64,
}

fn assignee_filter(
    assignee: Option<ViewAssignee>,
    principal: &Principal,
) -> Option<AssigneeFilter> {
    assignee.map(|assignee| match assignee {
        ViewAssignee::Me => AssigneeFilter::Agent(principal.agent_id),
        ViewAssignee::Nobody => AssigneeFilter::Unassigned,
        ViewAssignee::Agent(agent_id) => AssigneeFilter::Agent(agent_id),
    })
}

fn team_filter(team: Option<ViewTeam>) -> Option<TeamFilter> {
    team.map(|team| match team {
        ViewTeam::NoTeam => TeamFilter::NoTeam,
        ViewTeam::Team(team_id) => TeamFilter::Team(team_id),
    })
}

impl App {
    /// Creates the default shared views on an instance that has none yet.
    pub async fn ensure_default_views(&self) -> AppResult<()> {
        let any_agent = otklik_domain::ids::AgentId(uuid::Uuid::nil());
        if !self.store.list_views(any_agent).await?.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let mut unit = UnitOfWork::new();
        for (position, (name, filter)) in default_views().into_iter().enumerate() {
            unit.push(Mutation::InsertView(SavedView {
                id: ViewId::new(),
                name: name.to_owned(),
                owner_agent_id: None,
                filter,
                position: i64::try_from(position).unwrap_or(i64::MAX),
                created_at: now,
            }));
        }
        self.store.commit(unit).await?;
        Ok(())
    }

    /// The count query of a view for a caller: the view's filter, in the caller's sight.
    fn count_query(&self, principal: &Principal, filter: &ViewFilter) -> TicketCountQuery {
        TicketCountQuery {
            statuses: filter.statuses.clone(),
            priorities: filter.priorities.clone(),
            assignee: assignee_filter(filter.assignee, principal),
            team: team_filter(filter.team),
            max_day: filter
                .idle_days
                .map(|days| day_number(self.clock.now()) - i64::from(days)),
            visible_to: (!principal.sees_all_tickets())
                .then(|| (principal.agent_id, principal.team_ids.clone())),
        }
    }

    /// The caller's views (shared and own) with their counts, read from the maintained
    /// counters.
    pub async fn list_views(&self, principal: &Principal) -> AppResult<Vec<CountedView>> {
        principal.require(Action::ReadTickets)?;
        let views = self.store.list_views(principal.agent_id).await?;
        let queries: Vec<TicketCountQuery> = views
            .iter()
            .map(|view| self.count_query(principal, &view.filter))
            .collect();
        let counts = self.store.count_tickets_many(&queries).await?;
        Ok(views
            .into_iter()
            .zip(counts)
            .map(|(view, count)| CountedView { view, count })
            .collect())
    }

    /// Saves a view: personal, or shared with everyone (supervisors and admins).
    pub async fn create_view(
        &self,
        principal: &Principal,
        name: &str,
        filter: ViewFilter,
        shared: bool,
    ) -> AppResult<CountedView> {
        principal.require(Action::ReadTickets)?;
        if shared {
            principal.require(Action::ManageTeams)?;
        }
        filter.validate()?;
        let name: String = name.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() || name.chars().count() > 100 {
            return Err(DomainError::invalid("name", "must be 1 to 100 characters").into());
        }
        let existing = self.store.list_views(principal.agent_id).await?;
        if existing.len() >= 100 {
            return Err(DomainError::invalid("name", "at most 100 views").into());
        }
        let now = self.clock.now();
        let view = SavedView {
            id: ViewId::new(),
            name,
            owner_agent_id: (!shared).then_some(principal.agent_id),
            filter,
            position: existing.iter().map(|view| view.position).max().unwrap_or(0) + 1,
            created_at: now,
        };
        let audit = AuditEvent::new(
            now,
            Actor::Agent(principal.agent_id),
            "view.created",
            "view",
            view.id.0,
            vec![set("name", &view.name)],
        );
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::InsertView(view.clone()))
                    .with(Mutation::Audit(audit)),
            )
            .await?;
        let count = self
            .store
            .count_tickets(&self.count_query(principal, &view.filter))
            .await?;
        Ok(CountedView { view, count })
    }

    /// A view the caller may use: shared, or their own; others' views are "not found".
    async fn usable_view(&self, principal: &Principal, id: ViewId) -> AppResult<SavedView> {
        match self.store.find_view(id).await? {
            Some(view)
                if view
                    .owner_agent_id
                    .is_none_or(|owner| owner == principal.agent_id) =>
            {
                Ok(view)
            }
            _ => Err(AppError::NotFound { what: "view" }),
        }
    }

    /// Deletes a personal view (its owner) or a shared one (supervisors and admins).
    pub async fn delete_view(&self, principal: &Principal, id: ViewId) -> AppResult<()> {
        principal.require(Action::ReadTickets)?;
        let view = self.usable_view(principal, id).await?;
        if view.owner_agent_id.is_none() {
            principal.require(Action::ManageTeams)?;
        }
        let now = self.clock.now();
        let audit = AuditEvent::new(
            now,
            Actor::Agent(principal.agent_id),
            "view.deleted",
            "view",
            id.0,
            vec![set("name", &view.name)],
        );
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::DeleteView(id))
                    .with(Mutation::Audit(audit)),
            )
            .await?;
        Ok(())
    }

    /// A page of a view's tickets (the same tickets its count counts).
    pub async fn view_tickets(
        &self,
        principal: &Principal,
        id: ViewId,
        after: Option<TicketCursor>,
        limit: u32,
    ) -> AppResult<TicketPage> {
        principal.require(Action::ReadTickets)?;
        let ticket_filter = self.view_filter(principal, id).await?;
        self.list_tickets(principal, ticket_filter, after, limit)
            .await
    }

    /// A page of a view's tickets in a chosen order.
    pub async fn view_tickets_sorted(
        &self,
        principal: &Principal,
        id: ViewId,
        sort: TicketSort,
        after: Option<SortedTicketCursor>,
        limit: u32,
    ) -> AppResult<SortedTicketPage> {
        principal.require(Action::ReadTickets)?;
        let ticket_filter = self.view_filter(principal, id).await?;
        self.list_tickets_sorted(principal, ticket_filter, sort, after, limit)
            .await
    }

    /// The ticket filter of a view the caller may use, for the caller and now.
    async fn view_filter(&self, principal: &Principal, id: ViewId) -> AppResult<TicketFilter> {
        let view = self.usable_view(principal, id).await?;
        let filter = &view.filter;
        let mut statuses = filter.statuses.clone();
        let updated_before = filter.idle_days.map(|days| {
            if statuses.is_empty() {
                statuses = vec![TicketStatus::Pending, TicketStatus::OnHold];
            }
            let first_excluded_day = day_number(self.clock.now()) - i64::from(days) + 1;
            jiff::Timestamp::from_second(first_excluded_day * 86_400)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        });
        Ok(TicketFilter {
            statuses,
            priorities: filter.priorities.clone(),
            assignee: assignee_filter(filter.assignee, principal),
            team: team_filter(filter.team),
            updated_before,
            ..TicketFilter::default()
        })
    }
}
