//! Chat sites: where the widget runs and how its chat behaves (admins only).

use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::chat::{
    ChatSite, PreChatForm, WorkingHours, normalize_origin, parse_accent_colour,
};
use otklik_domain::ids::{ChatSiteId, MailboxId, TeamId};
use otklik_domain::permission::{Action, Principal};
use otklik_store::{Mutation, UnitOfWork};

use crate::{App, AppError, AppResult};

/// What an admin sets on a chat site.
#[derive(Debug, Clone)]
pub struct ChatSiteInput {
    pub name: String,
    pub allowed_origins: Vec<String>,
    pub greeting: String,
    pub accent_colour: String,
    pub working_hours: WorkingHours,
    pub pre_chat: PreChatForm,
    pub require_identity: bool,
    pub team_id: Option<TeamId>,
    pub mailbox_id: Option<MailboxId>,
    pub active: bool,
}

fn new_identity_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl App {
    async fn checked_site_fields(
        &self,
        site: &mut ChatSite,
        input: ChatSiteInput,
    ) -> AppResult<()> {
        let mut origins = Vec::new();
        for origin in &input.allowed_origins {
            if origin.trim().is_empty() {
                continue;
            }
            let origin = normalize_origin(origin)?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        if let Some(team_id) = input.team_id
            && self.store.find_team(team_id).await?.is_none()
        {
            return Err(AppError::InvalidReference {
                field: "team_id",
                reason: format!("no team {team_id}"),
            });
        }
        if let Some(mailbox_id) = input.mailbox_id
            && self.store.find_mailbox(mailbox_id).await?.is_none()
        {
            return Err(AppError::InvalidReference {
                field: "mailbox_id",
                reason: format!("no mailbox {mailbox_id}"),
            });
        }
        site.name = input.name.trim().to_owned();
        site.allowed_origins = origins;
        site.greeting = input.greeting.trim().to_owned();
        site.accent_colour = parse_accent_colour(&input.accent_colour)?;
        site.working_hours = input.working_hours;
        site.pre_chat = input.pre_chat;
        site.require_identity = input.require_identity;
        site.team_id = input.team_id;
        site.mailbox_id = input.mailbox_id;
        site.active = input.active;
        site.validate()?;
        Ok(())
    }

    /// Creates a chat site with a fresh identity secret.
    pub async fn create_chat_site(
        &self,
        principal: &Principal,
        input: ChatSiteInput,
    ) -> AppResult<ChatSite> {
        principal.require(Action::ManageChannels)?;
        let now = self.clock.now();
        let mut site = ChatSite {
            id: ChatSiteId::new(),
            name: String::new(),
            allowed_origins: Vec::new(),
            greeting: String::new(),
            accent_colour: String::new(),
            working_hours: WorkingHours::around_the_clock(),
            pre_chat: PreChatForm::default(),
            identity_secret: new_identity_secret(),
            require_identity: false,
            team_id: None,
            mailbox_id: None,
            active: true,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.checked_site_fields(&mut site, input).await?;
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::InsertChatSite(site.clone()))
                    .with(Mutation::Audit(AuditEvent::new(
                        now,
                        Actor::Agent(principal.agent_id),
                        "chat_site.created",
                        "chat_site",
                        site.id.0,
                        vec![
                            set("name", &site.name),
                            set("allowed_origins", site.allowed_origins.join(" ")),
                        ],
                    ))),
            )
            .await?;
        Ok(site)
    }

    /// Saves an admin's changes to a site.
    pub async fn update_chat_site(
        &self,
        principal: &Principal,
        id: ChatSiteId,
        input: ChatSiteInput,
    ) -> AppResult<ChatSite> {
        principal.require(Action::ManageChannels)?;
        let mut site = self.get_chat_site(principal, id).await?;
        let expected_version = site.version;
        self.checked_site_fields(&mut site, input).await?;
        let now = self.clock.now();
        site.updated_at = now;
        site.version += 1;
        self.commit_site(
            principal,
            site.clone(),
            expected_version,
            "chat_site.updated",
        )
        .await?;
        Ok(site)
    }

    /// Replaces a site's identity secret (the old one stops verifying at once).
    pub async fn rotate_chat_site_secret(
        &self,
        principal: &Principal,
        id: ChatSiteId,
    ) -> AppResult<ChatSite> {
        principal.require(Action::ManageChannels)?;
        let mut site = self.get_chat_site(principal, id).await?;
        let expected_version = site.version;
        site.identity_secret = new_identity_secret();
        site.updated_at = self.clock.now();
        site.version += 1;
        self.commit_site(
            principal,
            site.clone(),
            expected_version,
            "chat_site.secret_rotated",
        )
        .await?;
        Ok(site)
    }

    async fn commit_site(
        &self,
        principal: &Principal,
        site: ChatSite,
        expected_version: i64,
        action: &'static str,
    ) -> AppResult<()> {
        let audit = AuditEvent::new(
            site.updated_at,
            Actor::Agent(principal.agent_id),
            action,
            "chat_site",
            site.id.0,
            vec![
                set("name", &site.name),
                set("allowed_origins", site.allowed_origins.join(" ")),
                set("active", site.active),
            ],
        );
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::UpdateChatSite {
                        site,
                        expected_version,
                    })
                    .with(Mutation::Audit(audit)),
            )
            .await?;
        Ok(())
    }

    /// A chat site, for admins.
    pub async fn get_chat_site(
        &self,
        principal: &Principal,
        id: ChatSiteId,
    ) -> AppResult<ChatSite> {
        principal.require(Action::ManageChannels)?;
        self.store
            .find_chat_site(id)
            .await?
            .ok_or(AppError::NotFound { what: "chat site" })
    }

    /// Every chat site, for admins.
    pub async fn list_chat_sites(&self, principal: &Principal) -> AppResult<Vec<ChatSite>> {
        principal.require(Action::ManageChannels)?;
        Ok(self.store.list_chat_sites().await?)
    }

    /// The names of every chat site, for showing where a chat comes from to anyone who may
    /// read tickets (the sites' settings and identity secrets stay admin-only).
    pub async fn chat_site_names(
        &self,
        principal: &Principal,
    ) -> AppResult<std::collections::HashMap<ChatSiteId, String>> {
        principal.require(Action::ReadTickets)?;
        Ok(self
            .store
            .list_chat_sites()
            .await?
            .into_iter()
            .map(|site| (site.id, site.name))
            .collect())
    }

    /// What the widget of an active site needs before a visitor exists: the site, whether it
    /// is within working hours, and whether an agent is online for it.
    pub async fn public_chat_site(&self, id: ChatSiteId) -> AppResult<(ChatSite, bool, bool)> {
        let site = self
            .store
            .find_chat_site(id)
            .await?
            .filter(|site| site.active)
            .ok_or(AppError::NotFound { what: "chat site" })?;
        let open = site.working_hours.is_open(self.clock.now());
        let agents_online = self.agents_online_for(site.team_id).await?;
        Ok((site, open, agents_online))
    }

    /// The active site with this id, for requests that must check its origins first.
    pub async fn active_chat_site(&self, id: ChatSiteId) -> AppResult<ChatSite> {
        self.store
            .find_chat_site(id)
            .await?
            .filter(|site| site.active)
            .ok_or(AppError::NotFound { what: "chat site" })
    }
}
