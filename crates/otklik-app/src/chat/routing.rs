//! Routing: waiting chats go to available agents with free capacity (least loaded first),
//! decided by the domain's `plan_routing` and applied one chat per unit of work.
//!
//! Any node may route at any time (after a new chat, an availability change, an ended chat,
//! and on a periodic tick): the chat's version check stops a chat from being taken twice, and
//! the store's capacity check on `ReserveChatSlot` stops an agent from being overloaded, so a
//! plan that lost a race simply skips that chat until the next round.

use super::lifecycle::Step;
use crate::{App, AppError, AppResult};
use otklik_domain::audit::{Actor, set};
use otklik_domain::chat::{Availability, ChatState, RoutableAgent, plan_routing};
use otklik_domain::ids::{AgentId, TeamId, TicketId};
use otklik_domain::ticket::TicketStatus;

impl App {
    /// Agents who could take chats now (online, active accounts), with their teams.
    pub(crate) async fn routable_agents(&self) -> AppResult<Vec<RoutableAgent>> {
        let statuses = self.store.list_agent_chat_statuses().await?;
        let mut agents = Vec::new();
        for status in statuses {
            if status.availability != Availability::Online {
                continue;
            }
            if let Some(agent) = self.store.find_agent(status.agent_id).await?
                && agent.active
            {
                agents.push(RoutableAgent {
                    status,
                    team_ids: agent.team_ids,
                });
            }
        }
        Ok(agents)
    }

    /// Whether an agent is online for chats of this team (any team when `None`).
    pub async fn agents_online_for(&self, team_id: Option<TeamId>) -> AppResult<bool> {
        Ok(self
            .routable_agents()
            .await?
            .iter()
            .any(|agent| team_id.is_none_or(|team_id| agent.team_ids.contains(&team_id))))
    }

    /// Gives waiting chats to available agents; returns how many were assigned.
    pub async fn route_chats(&self) -> AppResult<usize> {
        let waiting = self.waiting_chats().await?;
        if waiting.is_empty() {
            return Ok(0);
        }
        let agents = self.routable_agents().await?;
        if agents.is_empty() {
            return Ok(0);
        }
        let mut assigned = 0;
        for assignment in plan_routing(&waiting, &agents) {
            match self
                .assign_chat(assignment.ticket_id, assignment.agent_id, Actor::System)
                .await
            {
                Ok(()) => assigned += 1,
                // Lost a race (taken meanwhile, agent just filled up): the next round decides.
                Err(AppError::Conflict { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(assigned)
    }

    /// Gives a queued chat to an agent: the chat becomes active, the ticket is assigned and
    /// opened, the agent's load grows, the visitor sees who joined — all in one unit.
    pub(crate) async fn assign_chat(
        &self,
        ticket_id: TicketId,
        agent_id: AgentId,
        actor: Actor,
    ) -> AppResult<()> {
        let agent = self
            .store
            .find_agent(agent_id)
            .await?
            .filter(|agent| agent.active)
            .ok_or(AppError::NotFound { what: "agent" })?;
        self.step_chat(ticket_id, actor, "chat.accepted", |chat, ticket, now| {
            if chat.state != ChatState::Queued {
                return Err(AppError::Conflict {
                    code: "chat_not_waiting",
                    message: "the chat is no longer waiting".into(),
                });
            }
            chat.accept(agent_id, now)?;
            ticket.assignee_id = Some(agent_id);
            if chat.team_id.is_some() {
                ticket.team_id = chat.team_id;
            }
            if ticket.status == TicketStatus::New {
                ticket.transition(TicketStatus::Open, now)?;
            }
            Ok(Step {
                event: "agent_joined",
                agent_name: Some(agent.name.clone()),
                extra_changes: vec![set("chat_state", chat.state)],
            })
        })
        .await?;
        Ok(())
    }
}
