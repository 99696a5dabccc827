//! "Forgot password?": a one-time link by e-mail, and the CLI's reset for when there is no
//! mailbox.
//!
//! Requests always look alike to the requester (whether the e-mail belongs to an agent or not,
//! and whether the hourly limit was reached), so the form cannot be used to learn which
//! addresses have accounts. The link's secret is 32 random bytes; only its SHA-256 is stored. It
//! lasts [`PASSWORD_RESET_TTL`], works once (spent in the same unit that sets the password, so
//! two racing uses cannot both succeed), and a newer request voids older links. Setting the
//! password ends every session of the agent.

use jiff::{SignedDuration, Timestamp};
use otklik_domain::DomainError;
use otklik_domain::agent::{Agent, check_password};
use otklik_domain::audit::{Actor, AuditEvent, FieldChange, set};
use otklik_domain::customer::normalize_email;
use otklik_domain::email::{EmailDirection, EmailRecord, EmailStatus, Mailbox};
use otklik_domain::ids::EmailId;
use otklik_store::{Mutation, PasswordResetRecord, StoreError, UnitOfWork};

use crate::auth::{hash_password, random_secret, secret_hash};
use crate::mail::domain_of;
use crate::{App, AppError, AppResult};

/// How long a password-reset link works.
pub const PASSWORD_RESET_TTL: SignedDuration = SignedDuration::from_hours(1);
/// Links sent per agent per hour; further requests are answered the same way but send nothing.
pub const PASSWORD_RESETS_PER_HOUR: i64 = 3;
/// The path of the page a reset link opens (the web UI serves it).
pub const RESET_PATH: &str = "/reset-password";

/// What became of a reset request, as far as the requester may know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetRequest {
    /// Answered "if an account exists, we sent a link" whatever happened.
    Accepted,
    /// There is no mailbox to send from: resets go through an admin or the CLI.
    NotConfigured,
}

fn password_field_change() -> FieldChange {
    FieldChange {
        field: "password",
        before: None,
        after: Some("changed".into()),
    }
}

impl App {
    /// Whether reset links can be sent at all (some mailbox exists). Says nothing about
    /// accounts, so the page may tell it before anyone types an e-mail.
    pub async fn password_reset_configured(&self) -> AppResult<bool> {
        let settings = self.instance_settings().await?;
        Ok(self.system_mailbox(&settings).await?.is_some())
    }

    /// Handles "forgot password" for `email`: when an active agent has it and the hourly limit
    /// allows, queues an e-mail with a one-time link (in the agent's language, else `lang`) in
    /// one unit with the token and the audit event. Links start with the public base URL of the
    /// settings, else `fallback_base_url` (the address the server listens on).
    pub async fn request_password_reset(
        &self,
        email: &str,
        fallback_base_url: &str,
        lang: &str,
    ) -> AppResult<ResetRequest> {
        let settings = self.instance_settings().await?;
        let Some(mailbox) = self.system_mailbox(&settings).await? else {
            return Ok(ResetRequest::NotConfigured);
        };
        let Ok(email) = normalize_email(email) else {
            return Ok(ResetRequest::Accepted);
        };
        let agent = match self.store.find_agent_by_email(&email).await? {
            Some(agent) if agent.active => agent,
            _ => return Ok(ResetRequest::Accepted),
        };
        let now = self.clock.now();
        let hour_ago = now
            .checked_sub(SignedDuration::from_hours(1))
            .unwrap_or(now);
        let recent = self
            .store
            .count_password_reset_tokens_since(agent.id, hour_ago)
            .await?;
        if recent >= PASSWORD_RESETS_PER_HOUR {
            tracing::info!(agent = %agent.id, recent, "password reset limit reached; no e-mail");
            return Ok(ResetRequest::Accepted);
        }
        let secret = random_secret();
        let base = settings
            .public_base_url
            .as_deref()
            .unwrap_or(fallback_base_url)
            .trim_end_matches('/');
        let link = format!("{base}{RESET_PATH}?token={secret}");
        let lang = agent.locale.as_deref().unwrap_or(lang);
        let record = PasswordResetRecord {
            token_hash: secret_hash(&secret),
            agent_id: agent.id,
            created_at: now,
            expires_at: now.checked_add(PASSWORD_RESET_TTL).unwrap_or(now),
            used_at: None,
        };
        let email = self
            .reset_email(&mailbox, &settings.helpdesk_name, &agent, &link, lang, now)
            .await?;
        let audit = AuditEvent::new(
            now,
            Actor::System,
            "agent.password_reset_requested",
            "agent",
            agent.id.0,
            vec![set("email_id", email.id)],
        );
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::InsertPasswordResetToken(record))
                    .with(Mutation::InsertEmail(email))
                    .with(Mutation::Audit(audit)),
            )
            .await?;
        Ok(ResetRequest::Accepted)
    }

    /// The queued e-mail carrying a reset link (its bytes fixed and stored now).
    async fn reset_email(
        &self,
        mailbox: &Mailbox,
        helpdesk_name: &str,
        agent: &Agent,
        link: &str,
        lang: &str,
        now: Timestamp,
    ) -> AppResult<EmailRecord> {
        let (subject, text) = if lang == "en" {
            (
                format!("{helpdesk_name}: reset your password"),
                format!(
                    "Hello, {}!\n\nSomeone (hopefully you) asked to reset your password. \
                     To choose a new one, open this link within an hour:\n\n{link}\n\n\
                     The link works once. If you did not ask, ignore this e-mail: your password \
                     stays as it is.\n",
                    agent.name
                ),
            )
        } else {
            (
                format!("{helpdesk_name}: сброс пароля"),
                format!(
                    "Здравствуйте, {}!\n\nКто-то (надеемся, вы) попросил сбросить ваш пароль. \
                     Чтобы задать новый, откройте эту ссылку в течение часа:\n\n{link}\n\n\
                     Ссылка сработает один раз. Если вы ничего не просили, просто не обращайте \
                     внимания на это письмо: пароль останется прежним.\n",
                    agent.name
                ),
            )
        };
        let id = EmailId::new();
        let message_id_header = format!(
            "{}.reset@{}",
            id.0.as_simple(),
            domain_of(&mailbox.address).trim().to_ascii_lowercase()
        );
        let outbound = otklik_email::OutboundEmail {
            from: otklik_email::Mailbox {
                address: mailbox.address.clone(),
                name: Some(helpdesk_name.to_owned()),
            },
            to: vec![otklik_email::Mailbox {
                address: agent.email.clone(),
                name: Some(agent.name.clone()),
            }],
            cc: Vec::new(),
            reply_to: None,
            subject: subject.clone(),
            message_id: message_id_header.clone(),
            in_reply_to: None,
            references: Vec::new(),
            date: now,
            text,
            html: None,
            attachments: Vec::new(),
            automatic: true,
        };
        let raw = outbound
            .to_bytes()
            .map_err(|error| DomainError::invalid("email", error.to_string()))?;
        let raw_sha256 = self.blobs.put(raw).await?;
        Ok(EmailRecord {
            id,
            mailbox_id: mailbox.id,
            direction: EmailDirection::Outbound,
            status: EmailStatus::Queued,
            status_reason: None,
            dedup_key: format!("mid:{message_id_header}"),
            message_id_header: Some(message_id_header),
            ticket_id: None,
            message_id: None,
            raw_sha256,
            from_address: Some(mailbox.address.clone()),
            recipients: vec![agent.email.clone()],
            subject,
            html_body: None,
            folded_text: None,
            automatic: true,
            attempts: 0,
            next_attempt_at: Some(now),
            created_at: now,
            updated_at: now,
        })
    }

    /// Whether a reset link can still be used (for the page it opens; the reset itself checks
    /// again atomically).
    pub async fn password_reset_token_usable(&self, token: &str) -> AppResult<bool> {
        if token.is_empty() || token.len() > 200 {
            return Ok(false);
        }
        let now = self.clock.now();
        Ok(
            match self
                .store
                .find_password_reset_token(&secret_hash(token))
                .await?
            {
                Some(record) => record.used_at.is_none() && record.expires_at > now,
                None => false,
            },
        )
    }

    /// Spends a reset link to set a new password (same rules as everywhere) and ends every
    /// session of the agent, in one unit. An unknown, used, void or expired link, or one of a
    /// deactivated agent, is `Unauthenticated`.
    pub async fn reset_password(&self, token: &str, password: String) -> AppResult<Agent> {
        check_password(&password)?;
        if token.is_empty() || token.len() > 200 {
            return Err(AppError::Unauthenticated);
        }
        let token_hash = secret_hash(token);
        let now = self.clock.now();
        let record = self
            .store
            .find_password_reset_token(&token_hash)
            .await?
            .filter(|record| record.used_at.is_none() && record.expires_at > now)
            .ok_or(AppError::Unauthenticated)?;
        let agent = self
            .store
            .find_agent(record.agent_id)
            .await?
            .filter(|agent| agent.active)
            .ok_or(AppError::Unauthenticated)?;
        let password_hash = hash_password(password).await?;
        let now = self.clock.now();
        let unit = UnitOfWork::new()
            .with(Mutation::ConsumePasswordResetToken {
                token_hash,
                at: now,
            })
            .with(Mutation::SetPasswordHash {
                agent_id: agent.id,
                password_hash,
            })
            .with(Mutation::DeleteAgentSessions { agent_id: agent.id })
            .with(Mutation::Audit(AuditEvent::new(
                now,
                Actor::Agent(agent.id),
                "agent.password_reset",
                "agent",
                agent.id.0,
                vec![password_field_change()],
            )));
        match self.store.commit(unit).await {
            Ok(_) => Ok(agent),
            Err(StoreError::Conflict { constraint })
                if constraint == "password_reset_tokens.used" =>
            {
                Err(AppError::Unauthenticated)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Sets an agent's password from the CLI on the server's machine (`otklik admin
    /// reset-password`), ending their sessions: the way back in when no mailbox can send a
    /// reset link.
    pub async fn reset_password_from_cli(&self, email: &str, password: String) -> AppResult<Agent> {
        check_password(&password)?;
        let email = normalize_email(email)?;
        let agent = self
            .store
            .find_agent_by_email(&email)
            .await?
            .ok_or(AppError::NotFound { what: "agent" })?;
        let password_hash = hash_password(password).await?;
        let now = self.clock.now();
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::SetPasswordHash {
                        agent_id: agent.id,
                        password_hash,
                    })
                    .with(Mutation::DeleteAgentSessions { agent_id: agent.id })
                    .with(Mutation::Audit(AuditEvent::new(
                        now,
                        Actor::System,
                        "agent.password_reset",
                        "agent",
                        agent.id.0,
                        vec![password_field_change()],
                    ))),
            )
            .await?;
        Ok(agent)
    }
}
