//! What admins do with the email channel: mailboxes, the quarantine, raw messages, and the
//! cursors the IMAP fetcher keeps.

use otklik_domain::DomainError;
use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::customer::{IdentityKind, IdentityValue};
use otklik_domain::email::{EmailRecord, EmailStatus, Mailbox, parse_mailbox_name};
use otklik_domain::ids::{EmailId, MailboxId, TicketId};
use otklik_domain::permission::{Action, Principal};
use otklik_store::{EmailQuery, ImapCursorRecord, MAX_PAGE_SIZE, Mutation, StoreError, UnitOfWork};

use super::{IngestOutcome, MailboxCheck};
use crate::{App, AppError, AppResult};

/// The fields of a new mailbox.
#[derive(Debug, Clone)]
pub struct MailboxInput {
    pub name: String,
    pub address: String,
    pub imap_url: Option<String>,
    pub smtp_url: Option<String>,
    pub auto_acknowledge: bool,
}

/// The name of the mailbox `otklik mail ingest` uses when none is named.
pub const DEFAULT_MAILBOX: &str = "default";

/// A URL with its password replaced by `***`, for display and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}

fn check_url(
    field: &'static str,
    url: Option<String>,
    schemes: &[&str],
) -> AppResult<Option<String>> {
    let Some(url) = url
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
    else {
        return Ok(None);
    };
    let scheme_ok = url
        .split_once("://")
        .is_some_and(|(scheme, rest)| schemes.contains(&scheme) && !rest.is_empty());
    if !scheme_ok || url.chars().any(char::is_whitespace) || url.len() > 2000 {
        return Err(DomainError::invalid(
            field,
            format!(
                "expected a URL starting with {}",
                schemes.join(":// or ") + "://"
            ),
        )
        .into());
    }
    Ok(Some(url))
}

impl App {
    fn new_mailbox(&self, input: MailboxInput) -> AppResult<Mailbox> {
        let name = parse_mailbox_name(&input.name)?;
        let address = IdentityValue::parse(IdentityKind::Email, None, &input.address)
            .map_err(|_| DomainError::invalid("address", "expected an e-mail address"))?
            .value;
        let now = self.clock.now();
        Ok(Mailbox {
            id: MailboxId::new(),
            name,
            address,
            imap_url: check_url("imap_url", input.imap_url, &["imap", "imaps"])?,
            smtp_url: check_url("smtp_url", input.smtp_url, &["smtp", "smtps"])?,
            auto_acknowledge: input.auto_acknowledge,
            created_at: now,
            updated_at: now,
        })
    }

    async fn insert_mailbox(&self, mailbox: Mailbox, actor: Actor) -> AppResult<Mailbox> {
        let audit = AuditEvent::new(
            mailbox.created_at,
            actor,
            "mailbox.created",
            "mailbox",
            mailbox.id.0,
            vec![
                set("name", &mailbox.name),
                set("address", &mailbox.address),
                set(
                    "imap_url",
                    mailbox
                        .imap_url
                        .as_deref()
                        .map(redact_url)
                        .unwrap_or_default(),
                ),
                set(
                    "smtp_url",
                    mailbox
                        .smtp_url
                        .as_deref()
                        .map(redact_url)
                        .unwrap_or_default(),
                ),
            ],
        );
        let unit = UnitOfWork::new()
            .with(Mutation::InsertMailbox(mailbox.clone()))
            .with(Mutation::Audit(audit));
        match self.store.commit(unit).await {
            Ok(_) => Ok(mailbox),
            Err(StoreError::Conflict { constraint }) if constraint == "mailboxes.name" => {
                Err(AppError::Conflict {
                    code: "mailbox_name_taken",
                    message: format!("a mailbox named {:?} exists", mailbox.name),
                })
            }
            Err(StoreError::Conflict { constraint }) if constraint == "mailboxes.address" => {
                Err(AppError::Conflict {
                    code: "mailbox_address_taken",
                    message: format!("a mailbox for {} exists", mailbox.address),
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Adds a mailbox (admins).
    pub async fn create_mailbox(
        &self,
        principal: &Principal,
        input: MailboxInput,
    ) -> AppResult<Mailbox> {
        principal.require(Action::ManageChannels)?;
        let mailbox = self.new_mailbox(input)?;
        self.insert_mailbox(mailbox, Actor::Agent(principal.agent_id))
            .await
    }

    /// Adds a mailbox from the command line (whoever runs the binary is the operator).
    pub async fn create_mailbox_from_cli(&self, input: MailboxInput) -> AppResult<Mailbox> {
        let mailbox = self.new_mailbox(input)?;
        self.insert_mailbox(mailbox, Actor::System).await
    }

    /// Every mailbox (admins).
    pub async fn list_mailboxes(&self, principal: &Principal) -> AppResult<Vec<Mailbox>> {
        principal.require(Action::ManageChannels)?;
        Ok(self.store.list_mailboxes().await?)
    }

    /// Every mailbox, for the server's channel workers.
    pub async fn mailboxes(&self) -> AppResult<Vec<Mailbox>> {
        Ok(self.store.list_mailboxes().await?)
    }

    /// The mailbox with this name, for the CLI and the SMTP listener.
    pub async fn mailbox_named(&self, name: &str) -> AppResult<Option<Mailbox>> {
        let name = parse_mailbox_name(name)?;
        Ok(self.store.find_mailbox_by_name(&name).await?)
    }

    /// The mailbox `otklik mail ingest` uses when none is named, created on first use.
    pub async fn default_mailbox(&self) -> AppResult<Mailbox> {
        if let Some(mailbox) = self.store.find_mailbox_by_name(DEFAULT_MAILBOX).await? {
            return Ok(mailbox);
        }
        let input = MailboxInput {
            name: DEFAULT_MAILBOX.into(),
            address: "support@otklik.invalid".into(),
            imap_url: None,
            smtp_url: None,
            auto_acknowledge: false,
        };
        match self.create_mailbox_from_cli(input).await {
            Ok(mailbox) => Ok(mailbox),
            // Created concurrently by another delivery.
            Err(AppError::Conflict { .. }) => self
                .store
                .find_mailbox_by_name(DEFAULT_MAILBOX)
                .await?
                .ok_or(AppError::NotFound { what: "mailbox" }),
            Err(error) => Err(error),
        }
    }

    /// A page of e-mails with a status: the quarantine, failed replies (admins).
    pub async fn list_emails_with_status(
        &self,
        principal: &Principal,
        status: EmailStatus,
        before: Option<EmailId>,
        limit: u32,
    ) -> AppResult<Vec<EmailRecord>> {
        principal.require(Action::ManageChannels)?;
        Ok(self
            .store
            .list_emails(&EmailQuery {
                status,
                before,
                limit: limit.clamp(1, MAX_PAGE_SIZE),
            })
            .await?)
    }

    /// Runs a quarantined e-mail through ingestion again (admins).
    pub async fn reprocess_email(
        &self,
        principal: &Principal,
        id: EmailId,
    ) -> AppResult<IngestOutcome> {
        principal.require(Action::ManageChannels)?;
        let email = self
            .store
            .find_email(id)
            .await?
            .ok_or(AppError::NotFound { what: "email" })?;
        if email.status != EmailStatus::Quarantined {
            return Err(DomainError::invalid(
                "status",
                "only a quarantined e-mail is re-processed",
            )
            .into());
        }
        let mailbox = self
            .store
            .find_mailbox(email.mailbox_id)
            .await?
            .ok_or(AppError::NotFound { what: "mailbox" })?;
        let raw = self
            .blobs
            .get(&email.raw_sha256)
            .await?
            .ok_or(AppError::NotFound { what: "raw e-mail" })?;
        self.reingest(email, &mailbox, raw).await
    }

    /// An e-mail's record (agents who may see its ticket; admins for the rest).
    pub async fn get_email(&self, principal: &Principal, id: EmailId) -> AppResult<EmailRecord> {
        principal.require(Action::ReadTickets)?;
        self.visible_email(principal, id).await
    }

    /// The raw bytes of an e-mail, exactly as received or sent.
    pub async fn raw_email(&self, principal: &Principal, id: EmailId) -> AppResult<Vec<u8>> {
        principal.require(Action::ReadTickets)?;
        let email = self.visible_email(principal, id).await?;
        self.blobs
            .get(&email.raw_sha256)
            .await?
            .ok_or(AppError::NotFound { what: "raw e-mail" })
    }

    /// Every e-mail of a ticket the principal may see, oldest first.
    pub async fn ticket_emails(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
    ) -> AppResult<Vec<EmailRecord>> {
        principal.require(Action::ReadTickets)?;
        let ticket = match self.store.find_ticket(ticket_id).await? {
            Some(ticket) if principal.can_view_ticket(&ticket) => ticket,
            _ => return Err(AppError::NotFound { what: "ticket" }),
        };
        Ok(self.store.list_ticket_emails(ticket.id).await?)
    }

    /// Tries the mailbox's IMAP and SMTP servers ("test connection", admins).
    pub async fn check_mailbox(
        &self,
        principal: &Principal,
        id: MailboxId,
    ) -> AppResult<MailboxCheck> {
        principal.require(Action::ManageChannels)?;
        let mailbox = self
            .store
            .find_mailbox(id)
            .await?
            .ok_or(AppError::NotFound { what: "mailbox" })?;
        if mailbox.imap_url.is_none() && mailbox.smtp_url.is_none() {
            return Ok(MailboxCheck {
                imap: None,
                smtp: None,
            });
        }
        let transport = self
            .mail_transport
            .clone()
            .ok_or_else(|| AppError::Conflict {
                code: "mail_transport_unavailable",
                message: "this process does not talk to mail servers".into(),
            })?;
        let imap = match &mailbox.imap_url {
            Some(url) => Some(transport.check_imap(url).await),
            None => None,
        };
        let smtp = match &mailbox.smtp_url {
            Some(url) => Some(transport.check_smtp(url).await),
            None => None,
        };
        Ok(MailboxCheck { imap, smtp })
    }

    /// How far a mailbox's IMAP folder has been fetched.
    pub async fn imap_cursor(&self, mailbox_id: MailboxId) -> AppResult<Option<ImapCursorRecord>> {
        Ok(self.store.find_imap_cursor(mailbox_id).await?)
    }

    /// Remembers that every message up to `last_uid` is stored.
    pub async fn save_imap_cursor(
        &self,
        mailbox_id: MailboxId,
        uid_validity: u32,
        last_uid: u32,
    ) -> AppResult<()> {
        let cursor = ImapCursorRecord {
            mailbox_id,
            uid_validity,
            last_uid,
            updated_at: self.clock.now(),
        };
        self.store
            .commit(UnitOfWork::new().with(Mutation::SaveImapCursor(cursor)))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_show_in_redacted_urls() {
        assert_eq!(
            redact_url("imaps://support%40shop.test:s3cret@imap.shop.test:993/INBOX"),
            "imaps://support%40shop.test:***@imap.shop.test:993/INBOX"
        );
        assert_eq!(redact_url("smtp://127.0.0.1:25"), "smtp://127.0.0.1:25");
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
