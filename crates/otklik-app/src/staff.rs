//! Staff use cases: agents, teams and tags.

use otklik_domain::DomainError;
use otklik_domain::agent::{
    Agent, Role, Tag, Team, check_password, normalize_tag, parse_team_name,
};
use otklik_domain::audit::{Actor, AuditEvent, FieldChange, set};
use otklik_domain::customer::{normalize_email, parse_person_name};
use otklik_domain::ids::{AgentId, TagId, TeamId};
use otklik_domain::permission::{Action, Principal};
use otklik_store::{IdPage, MAX_PAGE_SIZE, Mutation, StoreError, UnitOfWork};

use crate::auth::{NewAgentInput, agent_created_audit, email_conflict, hash_password};
use crate::{App, AppError, AppResult, MAX_ATTEMPTS};

/// A change to an agent; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct AgentPatch {
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<Role>,
    pub team_ids: Option<Vec<TeamId>>,
    pub active: Option<bool>,
    pub password: Option<String>,
}

fn actor(principal: &Principal) -> Actor {
    Actor::Agent(principal.agent_id)
}

impl App {
    /// Creates a staff member (admins only).
    pub async fn create_agent(
        &self,
        principal: &Principal,
        input: NewAgentInput,
    ) -> AppResult<Agent> {
        principal.require(Action::ManageAgents)?;
        let (agent, insert) = self.new_agent_mutation(input).await?;
        let audit = agent_created_audit(&agent, actor(principal), self.clock.now());
        self.store
            .commit(UnitOfWork::new().with(insert).with(Mutation::Audit(audit)))
            .await
            .map_err(email_conflict)?;
        Ok(agent)
    }

    /// A staff member.
    pub async fn get_agent(&self, principal: &Principal, id: AgentId) -> AppResult<Agent> {
        principal.require(Action::ReadDirectory)?;
        self.store
            .find_agent(id)
            .await?
            .ok_or(AppError::NotFound { what: "agent" })
    }

    /// A page of staff, by id.
    pub async fn list_agents(
        &self,
        principal: &Principal,
        after: Option<AgentId>,
        limit: u32,
    ) -> AppResult<Vec<Agent>> {
        principal.require(Action::ReadDirectory)?;
        Ok(self
            .store
            .list_agents(&IdPage {
                after: after.map(|id| id.0),
                limit: limit.clamp(1, MAX_PAGE_SIZE),
            })
            .await?)
    }

    /// Changes an agent. Admins change anyone; everyone may change their own name and password.
    /// Nobody can demote or deactivate themselves, so an instance never locks out its last admin
    /// by accident.
    pub async fn update_agent(
        &self,
        principal: &Principal,
        id: AgentId,
        patch: AgentPatch,
    ) -> AppResult<Agent> {
        let self_service = id == principal.agent_id
            && patch.email.is_none()
            && patch.role.is_none()
            && patch.team_ids.is_none()
            && patch.active.is_none();
        if self_service {
            principal.require(Action::ManageOwnAccount)?;
        } else {
            principal.require(Action::ManageAgents)?;
        }
        if id == principal.agent_id
            && (patch.role.is_some_and(|role| role != principal.role)
                || patch.active == Some(false))
        {
            return Err(
                DomainError::invalid("role", "you cannot demote or deactivate yourself").into(),
            );
        }
        let email = patch.email.as_deref().map(normalize_email).transpose()?;
        let name = patch.name.as_deref().map(parse_person_name).transpose()?;
        let password_hash = match patch.password.clone() {
            Some(password) => {
                check_password(&password)?;
                Some(hash_password(password).await?)
            }
            None => None,
        };
        if let Some(team_ids) = &patch.team_ids {
            for team_id in team_ids {
                if self.store.find_team(*team_id).await?.is_none() {
                    return Err(AppError::InvalidReference {
                        field: "team_ids",
                        reason: format!("no team {team_id}"),
                    });
                }
            }
        }
        for _ in 0..MAX_ATTEMPTS {
            let mut agent = self
                .store
                .find_agent(id)
                .await?
                .ok_or(AppError::NotFound { what: "agent" })?;
            let before = agent.clone();
            let now = self.clock.now();
            if let Some(email) = &email {
                agent.email = email.clone();
            }
            if let Some(name) = &name {
                agent.name = name.clone();
            }
            if let Some(role) = patch.role {
                agent.role = role;
            }
            if let Some(team_ids) = &patch.team_ids {
                let mut team_ids = team_ids.clone();
                team_ids.sort();
                team_ids.dedup();
                agent.team_ids = team_ids;
            }
            if let Some(active) = patch.active {
                agent.active = active;
            }
            let mut changes = Vec::new();
            let mut record = |field: &'static str, old: String, new: String| {
                if old != new {
                    changes.push(FieldChange {
                        field,
                        before: Some(old),
                        after: Some(new),
                    });
                }
            };
            record("email", before.email.clone(), agent.email.clone());
            record("name", before.name.clone(), agent.name.clone());
            record("role", before.role.to_string(), agent.role.to_string());
            record(
                "team_ids",
                format!("{:?}", before.team_ids),
                format!("{:?}", agent.team_ids),
            );
            record(
                "active",
                before.active.to_string(),
                agent.active.to_string(),
            );
            if password_hash.is_some() {
                changes.push(FieldChange {
                    field: "password",
                    before: None,
                    after: Some("changed".into()),
                });
            }
            if changes.is_empty() {
                return Ok(agent);
            }
            agent.updated_at = now;
            let mut unit = UnitOfWork::new().with(Mutation::UpdateAgent {
                agent: agent.clone(),
                expected_version: before.version,
            });
            if let Some(password_hash) = &password_hash {
                unit.push(Mutation::SetPasswordHash {
                    agent_id: id,
                    password_hash: password_hash.clone(),
                });
            }
            // A password change or deactivation ends every session of the agent.
            if password_hash.is_some() || !agent.active {
                unit.push(Mutation::DeleteAgentSessions { agent_id: id });
            }
            unit.push(Mutation::Audit(AuditEvent::new(
                now,
                actor(principal),
                "agent.updated",
                "agent",
                id.0,
                changes,
            )));
            match self.store.commit(unit).await {
                Ok(_) => {
                    return self
                        .store
                        .find_agent(id)
                        .await?
                        .ok_or(AppError::NotFound { what: "agent" });
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(error) => return Err(email_conflict(error)),
            }
        }
        Err(StoreError::VersionConflict { what: "agent" }.into())
    }

    /// Every team.
    pub async fn list_teams(&self, principal: &Principal) -> AppResult<Vec<Team>> {
        principal.require(Action::ReadDirectory)?;
        Ok(self.store.list_teams().await?)
    }

    /// A team.
    pub async fn get_team(&self, principal: &Principal, id: TeamId) -> AppResult<Team> {
        principal.require(Action::ReadDirectory)?;
        self.store
            .find_team(id)
            .await?
            .ok_or(AppError::NotFound { what: "team" })
    }

    /// Creates a team.
    pub async fn create_team(&self, principal: &Principal, name: &str) -> AppResult<Team> {
        principal.require(Action::ManageTeams)?;
        let now = self.clock.now();
        let team = Team {
            id: TeamId::new(),
            name: parse_team_name(name)?,
            created_at: now,
        };
        let audit = AuditEvent::new(
            now,
            actor(principal),
            "team.created",
            "team",
            team.id.0,
            vec![set("name", &team.name)],
        );
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::InsertTeam(team.clone()))
                    .with(Mutation::Audit(audit)),
            )
            .await
            .map_err(name_conflict)?;
        Ok(team)
    }

    /// Renames a team.
    pub async fn rename_team(
        &self,
        principal: &Principal,
        id: TeamId,
        name: &str,
    ) -> AppResult<Team> {
        principal.require(Action::ManageTeams)?;
        let before = self
            .store
            .find_team(id)
            .await?
            .ok_or(AppError::NotFound { what: "team" })?;
        let team = Team {
            name: parse_team_name(name)?,
            ..before.clone()
        };
        let now = self.clock.now();
        let audit = AuditEvent::new(
            now,
            actor(principal),
            "team.updated",
            "team",
            id.0,
            vec![FieldChange {
                field: "name",
                before: Some(before.name),
                after: Some(team.name.clone()),
            }],
        );
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::UpdateTeam(team.clone()))
                    .with(Mutation::Audit(audit)),
            )
            .await
            .map_err(name_conflict)?;
        Ok(team)
    }

    /// Deletes a team; its tickets become unrouted and its members leave it.
    pub async fn delete_team(&self, principal: &Principal, id: TeamId) -> AppResult<()> {
        principal.require(Action::ManageTeams)?;
        let team = self
            .store
            .find_team(id)
            .await?
            .ok_or(AppError::NotFound { what: "team" })?;
        let now = self.clock.now();
        let audit = AuditEvent::new(
            now,
            actor(principal),
            "team.deleted",
            "team",
            id.0,
            vec![FieldChange {
                field: "name",
                before: Some(team.name),
                after: None,
            }],
        );
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::DeleteTeam(id))
                    .with(Mutation::Audit(audit)),
            )
            .await?;
        Ok(())
    }

    /// Every tag.
    pub async fn list_tags(&self, principal: &Principal) -> AppResult<Vec<Tag>> {
        principal.require(Action::ReadDirectory)?;
        Ok(self.store.list_tags().await?)
    }

    /// Creates a tag ahead of use (tags are also created when first put on a ticket).
    pub async fn create_tag(&self, principal: &Principal, name: &str) -> AppResult<Tag> {
        principal.require(Action::ManageTags)?;
        let now = self.clock.now();
        let tag = Tag {
            id: TagId::new(),
            name: normalize_tag(name)?,
            created_at: now,
        };
        let audit = AuditEvent::new(
            now,
            actor(principal),
            "tag.created",
            "tag",
            tag.id.0,
            vec![set("name", &tag.name)],
        );
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::InsertTag(tag.clone()))
                    .with(Mutation::Audit(audit)),
            )
            .await
            .map_err(name_conflict)?;
        Ok(tag)
    }

    /// Deletes a tag and takes it off every ticket.
    pub async fn delete_tag(&self, principal: &Principal, id: TagId) -> AppResult<()> {
        principal.require(Action::ManageTags)?;
        let tag = self
            .store
            .find_tag(id)
            .await?
            .ok_or(AppError::NotFound { what: "tag" })?;
        let now = self.clock.now();
        let audit = AuditEvent::new(
            now,
            actor(principal),
            "tag.deleted",
            "tag",
            id.0,
            vec![FieldChange {
                field: "name",
                before: Some(tag.name),
                after: None,
            }],
        );
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::DeleteTag(id))
                    .with(Mutation::Audit(audit)),
            )
            .await?;
        Ok(())
    }

    /// The audit history of a staff object (agent, team, tag, token): admins only.
    pub async fn object_audit(
        &self,
        principal: &Principal,
        object_id: uuid::Uuid,
    ) -> AppResult<Vec<otklik_domain::audit::StoredAuditEvent>> {
        principal.require(Action::ManageAgents)?;
        let events = self.store.list_audit_events(object_id).await?;
        // Every object is created with an audit event, so no history means no such object.
        if events.is_empty() {
            return Err(AppError::NotFound { what: "object" });
        }
        Ok(events)
    }
}

fn name_conflict(error: StoreError) -> AppError {
    match error {
        StoreError::Conflict { constraint }
            if constraint == "teams.name" || constraint == "tags.name" =>
        {
            AppError::Conflict {
                code: "name_taken",
                message: "that name is already in use".into(),
            }
        }
        other => other.into(),
    }
}
