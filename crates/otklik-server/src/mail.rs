//! Wiring of the email channel: the protocol adapters of `otklik-mail-transport` on one side,
//! the use cases of `otklik-app` on the other, and the workers `otklik serve` runs (an IMAP
//! watcher per mailbox, the SMTP listener, the outbox).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use otklik_app::App;
use otklik_app::mail::{IngestOutcome, MailTransport, SendFailure};
use otklik_domain::email::Mailbox;
use otklik_mail_transport as transport;
use tokio::sync::watch;

/// `otklik-mail-transport` behind the app's port.
pub struct Transport;

#[async_trait]
impl MailTransport for Transport {
    async fn send(
        &self,
        smtp_url: &str,
        mail_from: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> Result<(), SendFailure> {
        let settings = transport::SmtpSettings::from_url(smtp_url)
            .map_err(|error| SendFailure::Permanent(error.to_string()))?;
        transport::send_raw(&settings, mail_from, recipients, raw)
            .await
            .map_err(|error| match error {
                transport::SendError::Temporary(reason) => SendFailure::Temporary(reason),
                transport::SendError::Permanent(reason) => SendFailure::Permanent(reason),
            })
    }

    async fn check_imap(&self, imap_url: &str) -> Result<(), String> {
        let settings =
            transport::ImapSettings::from_url(imap_url).map_err(|error| error.to_string())?;
        transport::test_imap(&settings)
            .await
            .map_err(|error| error.to_string())
    }

    async fn check_smtp(&self, smtp_url: &str) -> Result<(), String> {
        let settings =
            transport::SmtpSettings::from_url(smtp_url).map_err(|error| error.to_string())?;
        transport::test_smtp(&settings)
            .await
            .map_err(|error| error.to_string())
    }
}

fn handled(outcome: &IngestOutcome) -> transport::Handled {
    match outcome {
        IngestOutcome::Ticket { .. } => transport::Handled::Stored,
        IngestOutcome::Duplicate { .. } => transport::Handled::Duplicate,
        IngestOutcome::Quarantined { .. } => transport::Handled::Quarantined,
        IngestOutcome::Ignored { .. } => transport::Handled::Ignored,
    }
}

/// Delivers raw mail of one mailbox (IMAP) into the app.
pub struct MailboxSink {
    pub app: App,
    pub mailbox: Mailbox,
}

#[async_trait]
impl transport::InboundSink for MailboxSink {
    async fn deliver(
        &self,
        raw: Vec<u8>,
        _envelope: Option<transport::Envelope>,
    ) -> Result<transport::Handled, transport::DeliveryError> {
        match self.app.ingest_email(&self.mailbox, raw).await {
            Ok(outcome) => Ok(handled(&outcome)),
            Err(error) => Err(transport::DeliveryError::Temporary(error.to_string())),
        }
    }
}

/// Delivers mail from the SMTP listener: the mailbox is the one whose address (or plus
/// address) is a recipient, else the default mailbox.
pub struct ListenerSink {
    pub app: App,
}

#[async_trait]
impl transport::InboundSink for ListenerSink {
    async fn deliver(
        &self,
        raw: Vec<u8>,
        envelope: Option<transport::Envelope>,
    ) -> Result<transport::Handled, transport::DeliveryError> {
        let temporary =
            |error: otklik_app::AppError| transport::DeliveryError::Temporary(error.to_string());
        let mailboxes = self.app.mailboxes().await.map_err(temporary)?;
        let recipients = envelope
            .map(|envelope| envelope.rcpt_to)
            .unwrap_or_default();
        let mailbox = match mailbox_for(&mailboxes, &recipients) {
            Some(mailbox) => mailbox.clone(),
            None => self.app.default_mailbox().await.map_err(temporary)?,
        };
        let outcome = self
            .app
            .ingest_email(&mailbox, raw)
            .await
            .map_err(temporary)?;
        Ok(handled(&outcome))
    }
}

/// The mailbox a recipient address belongs to: its address, or its address with a `+tag`.
fn mailbox_for<'a>(mailboxes: &'a [Mailbox], recipients: &[String]) -> Option<&'a Mailbox> {
    recipients.iter().find_map(|recipient| {
        let recipient = recipient.to_lowercase();
        let (local, domain) = recipient.rsplit_once('@')?;
        let base_local = local.split_once('+').map_or(local, |(base, _)| base);
        let base = format!("{base_local}@{domain}");
        mailboxes
            .iter()
            .find(|mailbox| mailbox.address.eq_ignore_ascii_case(&base))
    })
}

/// Keeps a mailbox's IMAP cursor in the database.
struct AppCursorStore {
    app: App,
    mailbox: Mailbox,
}

#[async_trait]
impl transport::CursorStore for AppCursorStore {
    async fn load(&self) -> Result<Option<transport::ImapCursor>, transport::DeliveryError> {
        let cursor = self
            .app
            .imap_cursor(self.mailbox.id)
            .await
            .map_err(|error| transport::DeliveryError::Temporary(error.to_string()))?;
        Ok(cursor.map(|cursor| transport::ImapCursor {
            uid_validity: cursor.uid_validity,
            last_uid: cursor.last_uid,
        }))
    }

    async fn save(&self, cursor: transport::ImapCursor) -> Result<(), transport::DeliveryError> {
        self.app
            .save_imap_cursor(self.mailbox.id, cursor.uid_validity, cursor.last_uid)
            .await
            .map_err(|error| transport::DeliveryError::Temporary(error.to_string()))
    }
}

/// What `otklik serve` runs for mail.
#[derive(Debug, Clone)]
pub struct MailWorkerOptions {
    /// Where the SMTP listener listens, if anywhere.
    pub smtp_listen: Option<SocketAddr>,
    /// Domains the listener accepts mail for, beyond those of the mailboxes.
    pub smtp_domains: Vec<String>,
    /// Largest message the listener accepts.
    pub max_message_bytes: usize,
    /// How often IMAP is polled when IDLE is unavailable, and mailboxes re-read.
    pub poll_interval: Duration,
    /// How often the outbox looks for due e-mails.
    pub outbox_interval: Duration,
    /// This node's name in leases: stable across restarts of the same node, different for
    /// every node sharing the database.
    pub node_id: String,
}

/// How long an IMAP lease lasts without renewal: a node that dies hands its mailboxes over
/// this long after its last renewal.
const IMAP_LEASE: Duration = Duration::from_secs(30);

/// A running IMAP watcher: the settings it was started with, and how to stop it.
struct Watcher {
    imap_url: String,
    stop: watch::Sender<bool>,
}

/// Runs one IMAP watcher per mailbox with IMAP settings, on whichever node holds the mailbox's
/// lease: several nodes on one database never fetch the same folder at once (dedup would make
/// that harmless but wasteful). Mailboxes added or changed later are picked up on the next
/// pass; a lost lease stops the watcher; shutdown releases the leases for the other nodes.
async fn supervise_imap(app: App, options: MailWorkerOptions, mut stop: watch::Receiver<bool>) {
    let tick = options.poll_interval.min(IMAP_LEASE / 3);
    let ttl =
        jiff::SignedDuration::try_from(IMAP_LEASE).unwrap_or(jiff::SignedDuration::from_secs(30));
    let mut watchers: HashMap<otklik_domain::ids::MailboxId, Watcher> = HashMap::new();
    loop {
        match app.mailboxes().await {
            Ok(mailboxes) => {
                let wanted: HashMap<_, _> = mailboxes
                    .into_iter()
                    .filter_map(|mailbox| {
                        mailbox
                            .imap_url
                            .clone()
                            .map(|url| (mailbox.id, (mailbox, url)))
                    })
                    .collect();
                // Mailboxes that lost their IMAP settings (or were removed).
                let gone: Vec<_> = watchers
                    .keys()
                    .filter(|id| !wanted.contains_key(id))
                    .copied()
                    .collect();
                for id in gone {
                    if let Some(watcher) = watchers.remove(&id) {
                        let _ = watcher.stop.send(true);
                        release(&app, id, &options.node_id).await;
                    }
                }
                for (id, (mailbox, url)) in wanted {
                    let held = match app.hold_lease(&lease_name(id), &options.node_id, ttl).await {
                        Ok(held) => held,
                        Err(error) => {
                            tracing::warn!(%error, mailbox = %mailbox.name, "cannot renew the IMAP lease");
                            false
                        }
                    };
                    let running = watchers
                        .get(&id)
                        .is_some_and(|watcher| watcher.imap_url == url);
                    if !held {
                        if let Some(watcher) = watchers.remove(&id) {
                            tracing::info!(mailbox = %mailbox.name, "another node watches this mailbox now");
                            let _ = watcher.stop.send(true);
                        }
                        continue;
                    }
                    if running {
                        continue;
                    }
                    let settings = match transport::ImapSettings::from_url(&url) {
                        Ok(settings) => settings,
                        Err(error) => {
                            tracing::warn!(mailbox = %mailbox.name, %error, "unusable IMAP settings");
                            continue;
                        }
                    };
                    let (watcher_stop, watcher_stopped) = watch::channel(false);
                    if let Some(previous) = watchers.insert(
                        id,
                        Watcher {
                            imap_url: url,
                            stop: watcher_stop,
                        },
                    ) {
                        let _ = previous.stop.send(true);
                    }
                    tracing::info!(mailbox = %mailbox.name, imap = %settings.redacted(), "watching IMAP");
                    let cursors = Arc::new(AppCursorStore {
                        app: app.clone(),
                        mailbox: mailbox.clone(),
                    });
                    let sink = Arc::new(MailboxSink {
                        app: app.clone(),
                        mailbox,
                    });
                    let watch_options = transport::ImapWatchOptions {
                        poll_interval: options.poll_interval,
                        ..transport::ImapWatchOptions::default()
                    };
                    tokio::spawn(transport::watch_imap(
                        settings,
                        cursors,
                        sink,
                        watch_options,
                        stopped(watcher_stopped),
                    ));
                }
            }
            Err(error) => tracing::warn!(%error, "cannot list mailboxes"),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.changed() => {
                for (id, watcher) in watchers.drain() {
                    let _ = watcher.stop.send(true);
                    release(&app, id, &options.node_id).await;
                }
                return;
            }
        }
    }
}

fn lease_name(mailbox: otklik_domain::ids::MailboxId) -> String {
    format!("imap:{mailbox}")
}

async fn release(app: &App, mailbox: otklik_domain::ids::MailboxId, node_id: &str) {
    if let Err(error) = app.release_lease(&lease_name(mailbox), node_id).await {
        tracing::warn!(%error, "cannot release an IMAP lease");
    }
}

/// Runs the mail workers until `stop` turns true.
pub async fn run_workers(
    app: App,
    options: MailWorkerOptions,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(address) = options.smtp_listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|error| anyhow::anyhow!("cannot listen for SMTP on {address}: {error}"))?;
        tracing::info!(%address, "SMTP listener is accepting mail");
        let mut domains: Vec<String> = options.smtp_domains.clone();
        for mailbox in app.mailboxes().await.map_err(|e| anyhow::anyhow!("{e}"))? {
            if let Some((_, domain)) = mailbox.address.rsplit_once('@') {
                domains.push(domain.to_owned());
            }
        }
        domains.sort();
        domains.dedup();
        let config = transport::SmtpListenerConfig {
            hostname: "otklik".into(),
            accepted_domains: domains,
            max_message_bytes: options.max_message_bytes,
            max_recipients: 100,
        };
        let sink = Arc::new(ListenerSink { app: app.clone() });
        let stopped = stopped(stop.clone());
        tasks.spawn(async move {
            if let Err(error) = transport::serve_smtp(listener, config, sink, stopped).await {
                tracing::error!(%error, "the SMTP listener stopped");
            }
        });
    }
    {
        let app = app.clone();
        let mut stop = stop.clone();
        let interval = options.outbox_interval;
        tasks.spawn(async move {
            let transport = Transport;
            loop {
                if let Err(error) = app.deliver_due_emails(&transport).await {
                    tracing::warn!(%error, "outbox round failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }
    {
        let app = app.clone();
        let stop = stop.clone();
        let options = options.clone();
        tasks.spawn(async move { supervise_imap(app, options, stop).await });
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(error) = joined {
            tracing::error!(%error, "a mail worker panicked");
        }
    }
    Ok(())
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(name: &str, address: &str) -> Mailbox {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        Mailbox {
            id: otklik_domain::ids::MailboxId::new(),
            name: name.into(),
            address: address.into(),
            imap_url: None,
            smtp_url: None,
            auto_acknowledge: true,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_recipient_finds_its_mailbox_by_address_or_plus_address() {
        let mailboxes = vec![
            mailbox("support", "support@shop.test"),
            mailbox("returns", "returns@shop.test"),
        ];
        let found =
            |rcpt: &str| mailbox_for(&mailboxes, &[rcpt.to_owned()]).map(|m| m.name.clone());
        assert_eq!(found("Returns@Shop.Test").as_deref(), Some("returns"));
        assert_eq!(
            found("support+abc123@shop.test").as_deref(),
            Some("support")
        );
        assert_eq!(found("sales@shop.test"), None);
    }
}
