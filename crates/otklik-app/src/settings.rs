//! Instance settings (Admin → Settings): the helpdesk's name, the default language, the public
//! base URL and the mailbox that sends system mail. Read by every page (the name is in the
//! header), changed by admins only, each change one unit with its audit event.

use otklik_domain::audit::{Actor, AuditEvent, FieldChange};
use otklik_domain::customer::parse_language;
use otklik_domain::email::Mailbox;
use otklik_domain::ids::MailboxId;
use otklik_domain::permission::{Action, Principal};
use otklik_domain::settings::{InstanceSettings, parse_helpdesk_name, parse_public_base_url};
use otklik_store::{Mutation, UnitOfWork};

use crate::{App, AppError, AppResult};

/// The audit object id of the instance settings (there is one set per instance).
pub const SETTINGS_OBJECT_ID: uuid::Uuid = uuid::Uuid::nil();

/// The settings form as submitted: empty text means "not set" (the default).
#[derive(Debug, Clone, Default)]
pub struct SettingsInput {
    pub helpdesk_name: String,
    pub default_language: String,
    pub public_base_url: String,
    pub system_mailbox_id: String,
}

impl App {
    /// The instance settings. Anyone may read them (the name and language shape the sign-in
    /// page), so this takes no principal; nothing secret is in them.
    pub async fn instance_settings(&self) -> AppResult<InstanceSettings> {
        let pairs = self.store.list_settings().await?;
        Ok(InstanceSettings::from_pairs(
            pairs
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        ))
    }

    /// The settings and every mailbox, for the admin's settings page.
    pub async fn settings_page(
        &self,
        principal: &Principal,
    ) -> AppResult<(InstanceSettings, Vec<Mailbox>)> {
        principal.require(Action::ManageAgents)?;
        let (settings, mailboxes) =
            tokio::join!(self.instance_settings(), self.store.list_mailboxes());
        Ok((settings?, mailboxes?))
    }

    /// The mailbox that sends system mail: the chosen one if it still exists, else the first.
    pub async fn system_mailbox(&self, settings: &InstanceSettings) -> AppResult<Option<Mailbox>> {
        let mailboxes = self.store.list_mailboxes().await?;
        let chosen = settings
            .system_mailbox_id
            .and_then(|id| mailboxes.iter().find(|mailbox| mailbox.id == id).cloned());
        Ok(chosen.or_else(|| mailboxes.into_iter().next()))
    }

    /// Validates and saves the settings (admins only) in one unit with the audit of what
    /// changed. The first invalid field is reported as a validation error naming it.
    pub async fn update_settings(
        &self,
        principal: &Principal,
        input: &SettingsInput,
    ) -> AppResult<InstanceSettings> {
        principal.require(Action::ManageAgents)?;
        let helpdesk_name = parse_helpdesk_name(&input.helpdesk_name)?;
        let default_language = match input.default_language.trim() {
            "" => None,
            raw => Some(parse_language(raw).map_err(|error| match error {
                otklik_domain::DomainError::Validation { reason, .. } => {
                    otklik_domain::DomainError::invalid("default_language", reason)
                }
                other => other,
            })?),
        };
        let public_base_url = match input.public_base_url.trim() {
            "" => None,
            raw => Some(parse_public_base_url(raw)?),
        };
        let system_mailbox_id = match input.system_mailbox_id.trim() {
            "" => None,
            raw => {
                let unknown = || AppError::InvalidReference {
                    field: "system_mailbox_id",
                    reason: "no such mailbox".into(),
                };
                let id: MailboxId = raw.parse().map_err(|_| unknown())?;
                self.store.find_mailbox(id).await?.ok_or_else(unknown)?;
                Some(id)
            }
        };
        let settings = InstanceSettings {
            helpdesk_name,
            default_language,
            public_base_url,
            system_mailbox_id,
        };
        let before = self.instance_settings().await?;
        let now = self.clock.now();
        let mut unit = UnitOfWork::new();
        let mut changes = Vec::new();
        for ((name, old), (_, new)) in before.to_pairs().into_iter().zip(settings.to_pairs()) {
            if old != new {
                changes.push(FieldChange {
                    field: name,
                    before: old,
                    after: new.clone(),
                });
                unit.push(Mutation::SaveSetting {
                    name: name.to_owned(),
                    value: new,
                    at: now,
                });
            }
        }
        if changes.is_empty() {
            return Ok(settings);
        }
        unit.push(Mutation::Audit(AuditEvent::new(
            now,
            Actor::Agent(principal.agent_id),
            "settings.updated",
            "settings",
            SETTINGS_OBJECT_ID,
            changes,
        )));
        self.store.commit(unit).await?;
        Ok(settings)
    }
}
