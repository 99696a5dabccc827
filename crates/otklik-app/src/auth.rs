//! Credentials: argon2id passwords, API tokens and browser sessions (both stored as SHA-256
//! only), and the one-time set-up token that creates the first admin.

use std::collections::BTreeSet;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use otklik_domain::agent::{Agent, Role, check_password};
use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::customer::{normalize_email, parse_person_name};
use otklik_domain::ids::{AgentId, TokenId};
use otklik_domain::permission::{Action, Principal, Scope};
use otklik_store::{
    ApiTokenRecord, Mutation, SessionRecord, SetupTokenRecord, StoreError, UnitOfWork,
};
use password_hash::rand_core::OsRng;
use sha2::{Digest, Sha256};

use crate::{App, AppError, AppResult};

/// Every API token starts with this, so secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "otk_";
/// How long a set-up token stays valid.
pub const SETUP_TOKEN_TTL: SignedDuration = SignedDuration::from_hours(24);
/// How long a browser session lasts without signing in again.
pub const SESSION_TTL: SignedDuration = SignedDuration::from_hours(12);

/// 32 random bytes, URL-safe base64: the secret of a token, session or link.
pub(crate) fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a secret: what the database keeps instead of the secret.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Hashes a password with argon2id on a blocking thread (it takes tens of milliseconds by design).
pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
    })
    .await
    .map_err(|error| AppError::Store(StoreError::database(error)))?
    .map_err(|error| AppError::Store(StoreError::corrupt(error.to_string())))
}

/// Checks a password against a stored PHC string, on a blocking thread.
pub async fn verify_password(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|hash| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A new API token: the secret is returned once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub record: ApiTokenRecord,
    pub secret: String,
}

/// The fields of a new agent.
#[derive(Debug, Clone)]
pub struct NewAgentInput {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub team_ids: Vec<otklik_domain::ids::TeamId>,
    pub password: Option<String>,
}

impl App {
    /// The principal of an active agent (all of the role's rights, no token scopes).
    pub fn principal_of(
        agent: &Agent,
        scopes: Option<BTreeSet<Scope>>,
        token_id: Option<TokenId>,
    ) -> Principal {
        Principal {
            agent_id: agent.id,
            role: agent.role,
            team_ids: agent.team_ids.clone(),
            scopes,
            token_id,
        }
    }

    /// Resolves a bearer token to its principal. Unknown, revoked, expired tokens and tokens of
    /// deactivated agents are all refused the same way.
    pub async fn authenticate_token(&self, secret: &str) -> AppResult<Principal> {
        if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 200 {
            return Err(AppError::Unauthenticated);
        }
        let (token, agent) = self
            .store
            .find_token_with_agent(&secret_hash(secret))
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let now = self.clock.now();
        if token.revoked_at.is_some() || token.expires_at.is_some_and(|expiry| expiry <= now) {
            return Err(AppError::Unauthenticated);
        }
        if !agent.active {
            return Err(AppError::Unauthenticated);
        }
        Ok(Self::principal_of(
            &agent,
            Some(token.scopes),
            Some(token.id),
        ))
    }

    /// Issues an API token for `agent_id` (the caller's own, or anyone's for an admin).
    pub async fn create_token(
        &self,
        actor: Actor,
        agent_id: AgentId,
        name: &str,
        scopes: BTreeSet<Scope>,
        expires_at: Option<Timestamp>,
    ) -> AppResult<IssuedToken> {
        let agent = self
            .store
            .find_agent(agent_id)
            .await?
            .ok_or(AppError::NotFound { what: "agent" })?;
        if !agent.active {
            return Err(AppError::InvalidReference {
                field: "agent",
                reason: "the agent is deactivated".into(),
            });
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(
                otklik_domain::DomainError::invalid("name", "must be 1 to 100 characters").into(),
            );
        }
        let now = self.clock.now();
        let secret = format!("{TOKEN_PREFIX}{}", random_secret());
        let record = ApiTokenRecord {
            id: TokenId::new(),
            agent_id,
            name: name.to_owned(),
            prefix: secret.chars().take(TOKEN_PREFIX.len() + 6).collect(),
            token_hash: secret_hash(&secret),
            scopes: scopes.clone(),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        let scope_names: Vec<&str> = scopes.iter().map(|scope| scope.as_str()).collect();
        let audit = AuditEvent::new(
            now,
            actor,
            "token.created",
            "token",
            record.id.0,
            vec![
                set("agent_id", agent_id),
                set("name", name),
                set("scopes", scope_names.join(" ")),
            ],
        );
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::InsertToken(record.clone()))
                    .with(Mutation::Audit(audit)),
            )
            .await?;
        Ok(IssuedToken { record, secret })
    }

    /// Issues a token for the caller (admins: for anyone). Another agent's id is "not found" to
    /// non-admins, so ids are not confirmed.
    pub async fn issue_token(
        &self,
        principal: &Principal,
        agent_id: AgentId,
        name: &str,
        scopes: BTreeSet<Scope>,
        expires_at: Option<Timestamp>,
    ) -> AppResult<IssuedToken> {
        // A narrow token can never mint a token, whoever it would be for.
        principal.require(Action::ManageOwnAccount)?;
        self.require_account_access(principal, agent_id).await?;
        if let Some(expiry) = expires_at
            && expiry <= self.clock.now()
        {
            return Err(
                otklik_domain::DomainError::invalid("expires_at", "must be in the future").into(),
            );
        }
        self.create_token(
            Actor::Agent(principal.agent_id),
            agent_id,
            name,
            scopes,
            expires_at,
        )
        .await
    }

    /// Lists the caller's own tokens (admins may list anyone's).
    pub async fn list_tokens(
        &self,
        principal: &Principal,
        agent_id: AgentId,
    ) -> AppResult<Vec<ApiTokenRecord>> {
        // Seeing one's own tokens (never their secrets) needs no special scope.
        if agent_id != principal.agent_id {
            self.require_account_access(principal, agent_id).await?;
        }
        Ok(self.store.list_tokens(agent_id).await?)
    }

    /// Revokes a token of the caller's (admins: anyone's).
    pub async fn revoke_token(&self, principal: &Principal, token_id: TokenId) -> AppResult<()> {
        principal.require(Action::ManageOwnAccount)?;
        let tokens = self.store.list_tokens(principal.agent_id).await?;
        let own = tokens.iter().any(|token| token.id == token_id);
        // Only an admin may revoke another agent's token; anyone else just does not see it.
        if !own && principal.require(Action::ManageAgents).is_err() {
            return Err(AppError::NotFound { what: "token" });
        }
        let now = self.clock.now();
        let audit = AuditEvent::new(
            now,
            Actor::Agent(principal.agent_id),
            "token.revoked",
            "token",
            token_id.0,
            vec![],
        );
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::RevokeToken {
                        id: token_id,
                        at: now,
                    })
                    .with(Mutation::Audit(audit)),
            )
            .await?;
        Ok(())
    }

    /// The caller's own account needs [`Action::ManageOwnAccount`]; another agent's needs
    /// [`Action::ManageAgents`], and a missing or foreign agent is "not found".
    pub(crate) async fn require_account_access(
        &self,
        principal: &Principal,
        agent_id: AgentId,
    ) -> AppResult<()> {
        if agent_id == principal.agent_id {
            principal.require(Action::ManageOwnAccount)?;
            return Ok(());
        }
        if principal.require(Action::ManageAgents).is_err() {
            return Err(AppError::NotFound { what: "agent" });
        }
        match self.store.find_agent(agent_id).await? {
            Some(_) => Ok(()),
            None => Err(AppError::NotFound { what: "agent" }),
        }
    }

    /// Builds the insert of a validated new agent (shared by set-up, the CLI and the API).
    pub(crate) async fn new_agent_mutation(
        &self,
        input: NewAgentInput,
    ) -> AppResult<(Agent, Mutation)> {
        let email = normalize_email(&input.email)?;
        let name = parse_person_name(&input.name)?;
        let password_hash = match input.password {
            Some(password) => {
                check_password(&password)?;
                Some(hash_password(password).await?)
            }
            None => None,
        };
        for team_id in &input.team_ids {
            if self.store.find_team(*team_id).await?.is_none() {
                return Err(AppError::InvalidReference {
                    field: "team_ids",
                    reason: format!("no team {team_id}"),
                });
            }
        }
        let now = self.clock.now();
        let agent = Agent {
            id: AgentId::new(),
            email,
            name,
            role: input.role,
            team_ids: input.team_ids,
            active: true,
            created_at: now,
            updated_at: now,
            version: 1,
            locale: None,
        };
        Ok((
            agent.clone(),
            Mutation::InsertAgent {
                agent,
                password_hash,
            },
        ))
    }

    /// Creates an admin without a principal: for `otklik admin create` on the server's machine.
    pub async fn create_admin_from_cli(
        &self,
        email: &str,
        name: &str,
        password: String,
    ) -> AppResult<Agent> {
        let input = NewAgentInput {
            email: email.into(),
            name: name.into(),
            role: Role::Admin,
            team_ids: vec![],
            password: Some(password),
        };
        let (agent, insert) = self.new_agent_mutation(input).await?;
        let audit = agent_created_audit(&agent, Actor::System, self.clock.now());
        self.store
            .commit(UnitOfWork::new().with(insert).with(Mutation::Audit(audit)))
            .await
            .map_err(email_conflict)?;
        Ok(agent)
    }

    /// Issues a token from the CLI for the agent with `email`.
    pub async fn create_token_from_cli(
        &self,
        email: &str,
        scopes: BTreeSet<Scope>,
        name: &str,
    ) -> AppResult<IssuedToken> {
        let email = normalize_email(email)?;
        let agent = self
            .store
            .find_agent_by_email(&email)
            .await?
            .ok_or(AppError::NotFound { what: "agent" })?;
        self.create_token(Actor::System, agent.id, name, scopes, None)
            .await
    }

    /// On a fresh instance (no agents), issues a one-time set-up token valid for a day; returns
    /// `None` once anyone exists.
    pub async fn issue_setup_token_if_needed(&self) -> AppResult<Option<String>> {
        if self.store.count_agents().await? > 0 {
            return Ok(None);
        }
        let secret = random_secret();
        let now = self.clock.now();
        let record = SetupTokenRecord {
            token_hash: secret_hash(&secret),
            created_at: now,
            expires_at: now.checked_add(SETUP_TOKEN_TTL).unwrap_or(now),
            used_at: None,
        };
        self.store
            .commit(UnitOfWork::new().with(Mutation::InsertSetupToken(record)))
            .await?;
        Ok(Some(secret))
    }

    /// Spends a set-up token to create the first admin. The token is consumed in the same
    /// transaction, so two racing attempts cannot both succeed.
    pub async fn complete_setup(
        &self,
        setup_token: &str,
        email: &str,
        name: &str,
        password: String,
    ) -> AppResult<Agent> {
        let token_hash = secret_hash(setup_token);
        let now = self.clock.now();
        let valid = match self.store.find_setup_token(&token_hash).await? {
            Some(record) => record.used_at.is_none() && record.expires_at > now,
            None => false,
        };
        if !valid || self.store.count_agents().await? > 0 {
            return Err(AppError::Unauthenticated);
        }
        let input = NewAgentInput {
            email: email.into(),
            name: name.into(),
            role: Role::Admin,
            team_ids: vec![],
            password: Some(password),
        };
        let (agent, insert) = self.new_agent_mutation(input).await?;
        let audit = agent_created_audit(&agent, Actor::System, now);
        let unit = UnitOfWork::new()
            .with(Mutation::ConsumeSetupToken {
                token_hash,
                at: now,
            })
            .with(insert)
            .with(Mutation::Audit(audit));
        match self.store.commit(unit).await {
            Ok(_) => Ok(agent),
            Err(StoreError::Conflict { constraint }) if constraint == "setup_tokens.used" => {
                Err(AppError::Unauthenticated)
            }
            Err(error) => Err(email_conflict(error)),
        }
    }

    /// Signs an agent in with e-mail and password; returns the session secret for the cookie.
    /// Wrong e-mail and wrong password fail alike, after the same argon2 work.
    pub async fn sign_in(
        &self,
        email: &str,
        password: String,
    ) -> AppResult<(String, SessionRecord)> {
        let agent = match normalize_email(email) {
            Ok(email) => self.store.find_agent_by_email(&email).await?,
            Err(_) => None,
        };
        let phc = match &agent {
            Some(agent) if agent.active => self.store.find_password_hash(agent.id).await?,
            _ => None,
        };
        // Verify against a dummy hash when there is no real one, so timing does not reveal which
        // e-mails exist.
        let dummy = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2kLs/2xqg6xL0+3XR0yoCXkDJ8C1/O8y0o9tNDzTV1s";
        let matched =
            verify_password(password, phc.clone().unwrap_or_else(|| dummy.to_owned())).await;
        let (Some(agent), true, Some(_)) = (agent, matched, phc) else {
            return Err(AppError::Unauthenticated);
        };
        let secret = random_secret();
        let now = self.clock.now();
        let session = SessionRecord {
            id_hash: secret_hash(&secret),
            agent_id: agent.id,
            created_at: now,
            expires_at: now.checked_add(SESSION_TTL).unwrap_or(now),
        };
        self.store
            .commit(UnitOfWork::new().with(Mutation::InsertSession(session.clone())))
            .await?;
        Ok((secret, session))
    }

    /// The principal behind a session cookie, if the session is live and the agent active.
    pub async fn authenticate_session(&self, secret: &str) -> AppResult<Principal> {
        let session = self
            .store
            .find_session(&secret_hash(secret))
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if session.expires_at <= self.clock.now() {
            return Err(AppError::Unauthenticated);
        }
        let agent = self
            .store
            .find_agent(session.agent_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if !agent.active {
            return Err(AppError::Unauthenticated);
        }
        Ok(Self::principal_of(&agent, None, None))
    }

    /// Remembers the caller's interface language (`ru` or `en`) so it follows them to every
    /// browser they sign in from.
    pub async fn set_own_locale(&self, principal: &Principal, locale: &str) -> AppResult<()> {
        principal.require(Action::ManageOwnAccount)?;
        let locale = otklik_domain::customer::parse_language(locale)?;
        let agent = self
            .store
            .find_agent(principal.agent_id)
            .await?
            .ok_or(AppError::NotFound { what: "agent" })?;
        if agent.locale.as_deref() == Some(locale.as_str()) {
            return Ok(());
        }
        let audit = AuditEvent::new(
            self.clock.now(),
            Actor::Agent(principal.agent_id),
            "agent.locale_changed",
            "agent",
            principal.agent_id.0,
            vec![otklik_domain::audit::FieldChange {
                field: "locale",
                before: agent.locale.clone(),
                after: Some(locale.clone()),
            }],
        );
        self.store
            .commit(
                UnitOfWork::new()
                    .with(Mutation::SetAgentLocale {
                        agent_id: principal.agent_id,
                        locale: Some(locale),
                    })
                    .with(Mutation::Audit(audit)),
            )
            .await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn sign_out(&self, secret: &str) -> AppResult<()> {
        self.store
            .commit(UnitOfWork::new().with(Mutation::DeleteSession {
                id_hash: secret_hash(secret),
            }))
            .await?;
        Ok(())
    }
}

pub(crate) fn agent_created_audit(agent: &Agent, actor: Actor, now: Timestamp) -> AuditEvent {
    AuditEvent::new(
        now,
        actor,
        "agent.created",
        "agent",
        agent.id.0,
        vec![
            set("email", &agent.email),
            set("name", &agent.name),
            set("role", agent.role),
        ],
    )
}

pub(crate) fn email_conflict(error: StoreError) -> AppError {
    match error {
        StoreError::Conflict { constraint } if constraint == "agents.email" => AppError::Conflict {
            code: "email_taken",
            message: "an agent with this e-mail already exists".into(),
        },
        other => other.into(),
    }
}
