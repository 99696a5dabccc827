//! Otklik's storage port on PostgreSQL, for installations that outgrow one SQLite file or
//! already run PostgreSQL.
//!
//! [`PostgresStore`] implements [`otklik_store::Store`] on a `deadpool-postgres` pool of
//! `tokio-postgres` connections (no TLS: the database is expected on localhost or a private
//! network). [`PostgresStore::connect`] brings the schema up to date with the embedded refinery
//! migrations (`migrations/`, named like the SQLite ones and reaching the same logical schema)
//! before the store serves anything.
//!
//! What this crate is responsible for:
//! - turning a [`UnitOfWork`] into one READ COMMITTED transaction (`write.rs`) and mapping
//!   PostgreSQL errors to the port's errors in one place (`error.rs`): unique violations become
//!   `Conflict` with the same stable constraint names as SQLite;
//! - answering the port's queries with visibility, filters and keyset pagination inside SQL, and
//!   loading child rows for a whole page with one query (`read.rs`, `rows.rs`);
//! - keeping the full-text index (`tsvector` + GIN over terms from `otklik-search`) and the
//!   queue counters current in the same transaction as the data (`derived.rs`), and answering
//!   searches (`search.rs`, with the arithmetic that decides how a search reads the index in
//!   `search/plan.rs`) and counts from them;
//! - keeping each agent's count of active chats race-free across nodes with one conditional
//!   `UPDATE` per reservation (`chat.rs`);
//! - carrying change events and short-lived signals between nodes with NOTIFY, heard by one
//!   LISTEN connection per node (`listen.rs`);
//! - reporting its logical schema (`schema.rs`) so a test can prove both backends agree.
//!
//! Differences from SQLite that callers may notice: ticket numbers come from a sequence, so a
//! rolled-back insert leaves a gap; `backup_to` is unsupported (use `pg_dump`); a ticket's
//! search document keeps at most 200,000 characters of message terms (a `tsvector` is limited
//! to 1 MiB), so words past that in a very long ticket are not found.
//!
//! It must not depend on HTTP, on the app crate or on the SQLite backend; only it knows
//! PostgreSQL's SQL. The URL it is given may hold a password: nothing here prints or logs it.

mod chat;
mod derived;
mod email;
mod error;
mod import;
mod listen;
mod read;
mod rows;
mod schema;
mod search;
#[cfg(feature = "testkit")]
pub mod testkit;
mod visibility_terms;
mod write;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use otklik_domain::agent::{Agent, Tag, Team};
use otklik_domain::attachment::AttachmentMeta;
use otklik_domain::audit::StoredAuditEvent;
use otklik_domain::chat::{AgentChatStatus, Chat, ChatSite, Visitor};
use otklik_domain::customer::{Customer, CustomerMerge, IdentityValue};
use otklik_domain::ids::{
    AgentId, AttachmentId, ChatSiteId, CustomerId, CustomerMergeId, TagId, TeamId, TicketId,
    ViewId, VisitorId,
};
use otklik_domain::message::Message;
use otklik_domain::ticket::Ticket;
use otklik_domain::view::SavedView;
use otklik_search::SearchQuery;
use otklik_store::events::Signal;
use otklik_store::{
    ApiTokenRecord, Backend, ChatEntry, ChatQuery, ColumnInfo, CommitReceipt, CustomerQuery,
    IdPage, IdempotencyRecord, Mutation, SessionRecord, SetupTokenRecord, Store, StoreError,
    StoreResult, TicketCountQuery, TicketQuery, TicketSearch, UnitOfWork,
};
use tokio_postgres::NoTls;

use crate::error::{map_error, pool_error};

/// A pooled connection.
type Client = deadpool_postgres::Client;

/// How long opening one connection may take before the caller gets an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a caller waits for a free connection when all are busy: long enough to ride out a
/// burst, short enough that a leak or a stuck query shows up as errors instead of a hang.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The PostgreSQL store. Cheap to share: the server holds it in an `Arc<dyn Store>`.
pub struct PostgresStore {
    pool: Pool,
    events: tokio::sync::broadcast::Sender<otklik_store::events::ChangeEvent>,
    /// Signals heard from every node (this one included) on the LISTEN connection.
    signals: tokio::sync::broadcast::Sender<otklik_store::events::Signal>,
    /// The LISTEN task; aborted when the store closes.
    listener: tokio::task::JoinHandle<()>,
    /// Whether the LISTEN connection is up right now.
    listening: tokio::sync::watch::Receiver<bool>,
    /// `user@host:port/database`, for `Debug` and logs; never the password.
    target: String,
    /// Search vocabulary tokens this node knows are stored (see `KnownTokens`).
    known_tokens: std::sync::Mutex<otklik_store::derived::KnownTokens>,
    /// Counts summed on this node, kept while the counters' version holds.
    counts: otklik_store::count_cache::CountCache,
    /// Documents a search tries before it judges how to find the rest.
    search_window: i64,
    /// The most tickets passing a search's filter that it lists first.
    search_listing: i64,
    /// Searches this node runs in the database at once; the rest wait their turn, first come
    /// first served ([`PostgresStore::with_searches_at_once`]).
    search_turns: tokio::sync::Semaphore,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("max_connections", &status.max_size)
            .field("open_connections", &status.size)
            .finish()
    }
}

/// Describes where a connection URL points without its password (`user@host:port/database`),
/// for logs and error messages. A URL that does not parse is described as such, not echoed.
pub fn redacted_target(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(config) => describe(&config),
        Err(_) => "<unparseable PostgreSQL URL>".to_owned(),
    }
}

fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "{}@{}:{}/{}",
        config.get_user().unwrap_or("<default user>"),
        hosts.join(","),
        if ports.is_empty() {
            "5432".to_owned()
        } else {
            ports.join(",")
        },
        config.get_dbname().unwrap_or("<default database>"),
    )
}

impl PostgresStore {
    /// Connects a pool of at most `max_connections` (at least one) to `url` and brings the
    /// schema up to date. Fails if the database is unreachable or a migration fails.
    pub async fn connect(url: &str, max_connections: usize) -> StoreResult<PostgresStore> {
        let mut config: tokio_postgres::Config = url.parse().map_err(map_error)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let target = describe(&config);
        // Otklik's queries are short and bounded, and many run at once: a parallel plan's
        // workers start for each of them (3–4 ms measured) and compete for the same cores.
        // Nor do they gain from compiling: a plan whose estimate passes `jit_above_cost` (an
        // estimate off on a table never analysed is enough) spent 5.9 ms compiling a statement
        // that ran in 0.3.
        // GIN keeps new entries in a pending list until it passes `gin_pending_list_limit` (4 MB
        // by default) or a vacuum runs, and every search scans its index's whole list. A
        // helpdesk rewrites documents all day (a change of status, team or priority does), so
        // the lists were always filling: 46 pages took a round of an agent's search from 3.0 to
        // 4.4 ms at a million tickets. Import units keep the default (`import`): with short
        // lists the 100k demo took 26.7 s instead of 22.2.
        // Options in the URL come after these, so an operator can still set them otherwise.
        let options = format!(
            "-c max_parallel_workers_per_gather=0 -c jit=off -c gin_pending_list_limit=64kB {}",
            config.get_options().unwrap_or_default()
        );
        config.options(options.trim_end());
        // Fast recycling skips a round trip per checkout; a broken connection is still noticed
        // by the driver (`is_closed`) and replaced.
        let listen_config = config.clone();
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(WAIT_TIMEOUT))
            .build()
            .map_err(StoreError::database)?;
        let (events, _) = tokio::sync::broadcast::channel(otklik_store::events::EVENT_BUFFER);
        let (signals, _) = tokio::sync::broadcast::channel(otklik_store::events::EVENT_BUFFER);
        let (listening_sender, listening) = tokio::sync::watch::channel(false);
        let listener = tokio::spawn(listen::listen(
            listen_config,
            listen::Broadcasts {
                events: events.clone(),
                signals: signals.clone(),
            },
            listening_sender,
        ));
        let store = PostgresStore {
            pool,
            events,
            signals,
            listener,
            listening,
            target,
            known_tokens: std::sync::Mutex::default(),
            search_window: search::SEARCH_WINDOW,
            search_listing: search::FEW_PASSING_TICKETS,
            counts: otklik_store::count_cache::CountCache::new(),
            search_turns: tokio::sync::Semaphore::new(default_searches_at_once()),
        };
        let mut client = store.client().await?;
        schema::migrate(&mut client).await?;
        drop(client);
        tracing::info!(target = %store.target, "connected to PostgreSQL");
        Ok(store)
    }

    /// Waits until this node hears other nodes' changes (its LISTEN connection is up), at most
    /// `timeout`; returns whether it is.
    pub async fn wait_until_listening(&self, timeout: Duration) -> bool {
        let mut listening = self.listening.clone();
        tokio::time::timeout(timeout, listening.wait_for(|up| *up))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// Closes the pool: idle connections are closed now, busy ones when they are returned, and
    /// every later call fails. Used on shutdown and before a test drops its database.
    pub fn close(&self) {
        self.listener.abort();
        self.pool.close();
        self.search_turns.close();
    }

    /// Sets how many of the newest documents a search tries before it judges whether
    /// to walk on or ask the index for the rest (1024 unless set; see `search::newest_matches`).
    /// Results do not depend on it, only the work done: tests set it small to take every path
    /// on a few tickets.
    pub fn with_search_window(mut self, documents: i64) -> PostgresStore {
        self.search_window = documents.max(1);
        self
    }

    /// Sets how many tickets passing a filter that the documents have no terms for (a date
    /// range, a customer, «unassigned») a search lists first, to test the words on those
    /// tickets only (20,000 unless set; see `search::few_passing_tickets`). Results do not depend
    /// on it: tests set it to 0 to take the other paths on a few tickets.
    pub fn with_search_listing_at_most(mut self, tickets: i64) -> PostgresStore {
        self.search_listing = tickets.max(0);
        self
    }

    /// Sets how many searches (of tickets or customers) this node runs in the database at once,
    /// at least one; more wait their turn, first come first served. Twice this machine's cores
    /// unless set (`default_searches_at_once`).
    ///
    /// Why: a search is a dozen short statements of CPU-bound work, and every connection is a
    /// process of its own, so eight searches at once on two cores share them by the
    /// scheduler's time slices, and a search that loses several slices in a row waits for all
    /// the others: an agent's «refunding» + solved at a million tickets, 8 clients, p50/p99 26
    /// / 58–63 ms with 16 at once, 26 / 43 with 4 (throughput the same).
    pub fn with_searches_at_once(mut self, searches: usize) -> PostgresStore {
        self.search_turns = tokio::sync::Semaphore::new(searches.max(1));
        self
    }

    /// Waits for a turn to search ([`Self::with_searches_at_once`]); the search runs while the
    /// permit lives.
    async fn search_turn(&self) -> StoreResult<tokio::sync::SemaphorePermit<'_>> {
        self.search_turns
            .acquire()
            .await
            .map_err(StoreError::database)
    }

    /// Ticket counts this node summed in the database (counts served from its cache are not
    /// counted): for tests and diagnostics.
    pub fn count_sums(&self) -> u64 {
        self.counts.sums()
    }

    pub(crate) async fn client(&self) -> StoreResult<Client> {
        self.pool.get().await.map_err(pool_error)
    }
}

/// Searches a node runs at once unless told otherwise: twice the cores, so a search's round
/// trips and the server's own work leave none idle.
fn default_searches_at_once() -> usize {
    std::thread::available_parallelism().map_or(4, |cores| cores.get() * 2)
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<otklik_store::events::ChangeEvent> {
        self.events.subscribe()
    }

    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> StoreResult<()> {
        self.client()
            .await?
            .simple_query("SELECT 1")
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn commit(&self, unit: UnitOfWork) -> StoreResult<CommitReceipt> {
        let mut client = self.client().await?;
        write::commit(&mut client, unit, &self.known_tokens).await
    }

    async fn find_ticket(&self, id: TicketId) -> StoreResult<Option<Ticket>> {
        read::find_ticket(&self.client().await?, id).await
    }

    async fn find_ticket_by_number(&self, number: i64) -> StoreResult<Option<Ticket>> {
        read::find_ticket_by_number(&self.client().await?, number).await
    }

    async fn list_tickets(&self, query: &TicketQuery) -> StoreResult<Vec<Ticket>> {
        read::list_tickets(&self.client().await?, query).await
    }

    async fn list_messages(&self, ticket_id: TicketId) -> StoreResult<Vec<Message>> {
        read::list_messages(&self.client().await?, ticket_id).await
    }

    async fn find_attachment(&self, id: AttachmentId) -> StoreResult<Option<AttachmentMeta>> {
        read::find_attachment(&self.client().await?, id).await
    }

    async fn find_customer(&self, id: CustomerId) -> StoreResult<Option<Customer>> {
        read::find_customer(&self.client().await?, id).await
    }

    async fn find_customers(&self, ids: &[CustomerId]) -> StoreResult<Vec<Customer>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        read::find_customers(&self.client().await?, ids).await
    }

    async fn find_customer_by_identity(
        &self,
        identity: &IdentityValue,
    ) -> StoreResult<Option<Customer>> {
        read::find_customer_by_identity(&self.client().await?, identity).await
    }

    async fn list_customers(&self, query: &CustomerQuery) -> StoreResult<Vec<Customer>> {
        read::list_customers(&self.client().await?, query).await
    }

    async fn list_customer_ticket_ids(
        &self,
        customer_id: CustomerId,
    ) -> StoreResult<Vec<TicketId>> {
        read::list_customer_ticket_ids(&self.client().await?, customer_id).await
    }

    async fn find_customer_merge(&self, id: CustomerMergeId) -> StoreResult<Option<CustomerMerge>> {
        read::find_customer_merge(&self.client().await?, id).await
    }

    async fn list_customer_merges(
        &self,
        customer_id: CustomerId,
    ) -> StoreResult<Vec<CustomerMerge>> {
        read::list_customer_merges(&self.client().await?, customer_id).await
    }

    async fn find_agent(&self, id: AgentId) -> StoreResult<Option<Agent>> {
        read::find_agent(&self.client().await?, id).await
    }

    async fn find_agent_by_email(&self, email: &str) -> StoreResult<Option<Agent>> {
        read::find_agent_by_email(&self.client().await?, email).await
    }

    async fn list_agents(&self, page: &IdPage) -> StoreResult<Vec<Agent>> {
        read::list_agents(&self.client().await?, page).await
    }

    async fn count_agents(&self) -> StoreResult<i64> {
        read::count_agents(&self.client().await?).await
    }

    async fn find_password_hash(&self, agent_id: AgentId) -> StoreResult<Option<String>> {
        read::find_password_hash(&self.client().await?, agent_id).await
    }

    async fn find_mailbox(
        &self,
        id: otklik_domain::ids::MailboxId,
    ) -> StoreResult<Option<otklik_domain::email::Mailbox>> {
        email::find_mailbox(&self.client().await?, id).await
    }

    async fn find_mailbox_by_name(
        &self,
        name: &str,
    ) -> StoreResult<Option<otklik_domain::email::Mailbox>> {
        email::find_mailbox_by_name(&self.client().await?, name).await
    }

    async fn list_mailboxes(&self) -> StoreResult<Vec<otklik_domain::email::Mailbox>> {
        email::list_mailboxes(&self.client().await?).await
    }

    async fn find_imap_cursor(
        &self,
        mailbox_id: otklik_domain::ids::MailboxId,
    ) -> StoreResult<Option<otklik_store::ImapCursorRecord>> {
        email::find_imap_cursor(&self.client().await?, mailbox_id).await
    }

    async fn find_email(
        &self,
        id: otklik_domain::ids::EmailId,
    ) -> StoreResult<Option<otklik_domain::email::EmailRecord>> {
        email::find_email(&self.client().await?, id).await
    }

    async fn find_email_by_dedup_key(
        &self,
        direction: otklik_domain::email::EmailDirection,
        dedup_key: &str,
    ) -> StoreResult<Option<otklik_domain::email::EmailRecord>> {
        email::find_email_by_dedup_key(&self.client().await?, direction, dedup_key).await
    }

    async fn find_emails_by_message_ids(
        &self,
        message_ids: &[String],
    ) -> StoreResult<Vec<otklik_domain::email::EmailRecord>> {
        email::find_emails_by_message_ids(&self.client().await?, message_ids).await
    }

    async fn list_ticket_emails(
        &self,
        ticket_id: TicketId,
    ) -> StoreResult<Vec<otklik_domain::email::EmailRecord>> {
        email::list_ticket_emails(&self.client().await?, ticket_id).await
    }

    async fn list_emails(
        &self,
        query: &otklik_store::EmailQuery,
    ) -> StoreResult<Vec<otklik_domain::email::EmailRecord>> {
        email::list_emails(&self.client().await?, query).await
    }

    async fn count_automatic_emails_since(
        &self,
        recipient: &str,
        since: jiff::Timestamp,
    ) -> StoreResult<i64> {
        email::count_automatic_emails_since(&self.client().await?, recipient, since).await
    }

    async fn find_instance_secret(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        email::find_instance_secret(&self.client().await?, name).await
    }

    async fn find_team(&self, id: TeamId) -> StoreResult<Option<Team>> {
        read::find_team(&self.client().await?, id).await
    }

    async fn list_teams(&self) -> StoreResult<Vec<Team>> {
        read::list_teams(&self.client().await?).await
    }

    async fn find_tag(&self, id: TagId) -> StoreResult<Option<Tag>> {
        read::find_tag(&self.client().await?, id).await
    }

    async fn list_tags(&self) -> StoreResult<Vec<Tag>> {
        read::list_tags(&self.client().await?).await
    }

    async fn find_token_by_hash(&self, token_hash: &[u8]) -> StoreResult<Option<ApiTokenRecord>> {
        read::find_token_by_hash(&self.client().await?, token_hash).await
    }

    async fn find_token_with_agent(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<(ApiTokenRecord, Agent)>> {
        read::find_token_with_agent(&self.client().await?, token_hash).await
    }

    async fn list_tokens(&self, agent_id: AgentId) -> StoreResult<Vec<ApiTokenRecord>> {
        read::list_tokens(&self.client().await?, agent_id).await
    }

    async fn find_session(&self, id_hash: &[u8]) -> StoreResult<Option<SessionRecord>> {
        read::find_session(&self.client().await?, id_hash).await
    }

    async fn find_setup_token(&self, token_hash: &[u8]) -> StoreResult<Option<SetupTokenRecord>> {
        read::find_setup_token(&self.client().await?, token_hash).await
    }

    async fn find_idempotency_key(
        &self,
        principal: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        read::find_idempotency_key(&self.client().await?, principal, key).await
    }

    async fn search_tickets(&self, search: &TicketSearch) -> StoreResult<Vec<Ticket>> {
        // The turn before the connection: a search waiting its turn holds no connection.
        let _turn = self.search_turn().await?;
        let client = self.client().await?;
        search::search_tickets(&client, search, self.search_window, self.search_listing).await
    }

    async fn search_customers(
        &self,
        query: &SearchQuery,
        limit: u32,
    ) -> StoreResult<Vec<Customer>> {
        let _turn = self.search_turn().await?;
        read::search_customers(&self.client().await?, query, limit).await
    }

    async fn list_messages_of(&self, ticket_ids: &[TicketId]) -> StoreResult<Vec<Message>> {
        read::list_messages_of(&self.client().await?, ticket_ids).await
    }

    async fn count_tickets(&self, query: &TicketCountQuery) -> StoreResult<i64> {
        Ok(self
            .count_tickets_many(std::slice::from_ref(query))
            .await?
            .pop()
            .unwrap_or(0))
    }

    async fn count_tickets_many(&self, queries: &[TicketCountQuery]) -> StoreResult<Vec<i64>> {
        read::count_tickets_through(&self.client().await?, &self.counts, queries).await
    }

    async fn list_views(&self, agent_id: AgentId) -> StoreResult<Vec<SavedView>> {
        read::list_views(&self.client().await?, agent_id).await
    }

    async fn find_view(&self, id: ViewId) -> StoreResult<Option<SavedView>> {
        read::find_view(&self.client().await?, id).await
    }

    async fn rebuild_derived_data(&self) -> StoreResult<()> {
        self.commit(UnitOfWork::new().with(Mutation::RebuildDerivedData))
            .await
            .map(|_| ())
    }

    async fn find_chat_site(&self, id: ChatSiteId) -> StoreResult<Option<ChatSite>> {
        chat::find_chat_site(&self.client().await?, id).await
    }

    async fn list_chat_sites(&self) -> StoreResult<Vec<ChatSite>> {
        chat::list_chat_sites(&self.client().await?).await
    }

    async fn find_visitor(&self, id: VisitorId) -> StoreResult<Option<Visitor>> {
        chat::find_visitor(&self.client().await?, id).await
    }

    async fn find_visitor_by_token(&self, token_hash: &[u8]) -> StoreResult<Option<Visitor>> {
        chat::find_visitor_by_token(&self.client().await?, token_hash).await
    }

    async fn find_visitor_by_external_id(
        &self,
        site_id: ChatSiteId,
        external_id: &str,
    ) -> StoreResult<Option<Visitor>> {
        chat::find_visitor_by_external_id(&self.client().await?, site_id, external_id).await
    }

    async fn find_chat(&self, ticket_id: TicketId) -> StoreResult<Option<Chat>> {
        chat::find_chat(&self.client().await?, ticket_id).await
    }

    async fn list_chats(&self, query: &ChatQuery) -> StoreResult<Vec<Chat>> {
        chat::list_chats(&self.client().await?, query).await
    }

    async fn count_queued_chats_before(&self, chat: &Chat) -> StoreResult<i64> {
        chat::count_queued_chats_before(&self.client().await?, chat).await
    }

    async fn list_chat_entries(
        &self,
        ticket_id: TicketId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChatEntry>> {
        chat::list_chat_entries(&self.client().await?, ticket_id, after_seq, limit).await
    }

    async fn find_chat_entry_by_client_id(
        &self,
        ticket_id: TicketId,
        client_id: &str,
    ) -> StoreResult<Option<ChatEntry>> {
        chat::find_chat_entry_by_client_id(&self.client().await?, ticket_id, client_id).await
    }

    async fn find_agent_chat_status(
        &self,
        agent_id: AgentId,
    ) -> StoreResult<Option<AgentChatStatus>> {
        chat::find_agent_chat_status(&self.client().await?, agent_id).await
    }

    async fn list_agent_chat_statuses(&self) -> StoreResult<Vec<AgentChatStatus>> {
        chat::list_agent_chat_statuses(&self.client().await?).await
    }

    async fn publish_signal(&self, signal: Signal) -> StoreResult<()> {
        let payload = otklik_store::events::signal_payload(&signal)?;
        chat::publish_signal(&self.client().await?, &payload).await
    }

    fn subscribe_signals(&self) -> tokio::sync::broadcast::Receiver<Signal> {
        self.signals.subscribe()
    }

    async fn list_audit_events(&self, object_id: uuid::Uuid) -> StoreResult<Vec<StoredAuditEvent>> {
        read::list_audit_events(&self.client().await?, object_id).await
    }

    async fn backup_to(&self, _path: &Path) -> StoreResult<()> {
        // A consistent online copy of a PostgreSQL database is pg_dump's (or the operator's
        // base backup's) job; a file written by this process could not do better.
        Err(StoreError::Unsupported("online file backup; use pg_dump"))
    }

    async fn logical_schema(&self) -> StoreResult<Vec<ColumnInfo>> {
        schema::logical_schema(&self.client().await?).await
    }

    async fn find_password_reset_token(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<otklik_store::PasswordResetRecord>> {
        read::find_password_reset_token(&self.client().await?, token_hash).await
    }

    async fn count_password_reset_tokens_since(
        &self,
        agent_id: AgentId,
        since: jiff::Timestamp,
    ) -> StoreResult<i64> {
        read::count_password_reset_tokens_since(&self.client().await?, agent_id, since).await
    }

    async fn list_settings(&self) -> StoreResult<Vec<(String, String)>> {
        read::list_settings(&self.client().await?).await
    }

    async fn list_tickets_sorted(
        &self,
        query: &otklik_store::SortedTicketQuery,
    ) -> StoreResult<Vec<Ticket>> {
        read::list_tickets_sorted(&self.client().await?, query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_described_url_never_shows_the_password() {
        let described = redacted_target("postgres://otklik:s3cret@db.internal:5433/helpdesk");
        assert_eq!(described, "otklik@db.internal:5433/helpdesk");
        assert!(!redacted_target("postgres://u:s3cret@h/%zz").contains("s3cret"));
    }

    #[tokio::test]
    async fn the_stores_sessions_plan_without_parallel_workers_or_compiling_and_keep_gin_lists_short()
     {
        let (url, _database) = crate::testkit::create_database().await;
        let setting = |client: Client, name: &'static str| async move {
            let row = client
                .query_one(&format!("SHOW {name}"), &[])
                .await
                .expect("shows the setting");
            row.get::<_, String>(0)
        };
        let store = PostgresStore::connect(&url, 1).await.expect("connects");
        let client = store.client().await.expect("a connection");
        assert_eq!(setting(client, "jit").await, "off");
        let client = store.client().await.expect("a connection");
        assert_eq!(
            setting(client, "max_parallel_workers_per_gather").await,
            "0"
        );
        let client = store.client().await.expect("a connection");
        assert_eq!(setting(client, "gin_pending_list_limit").await, "64kB");
        store.close();
        // The URL's options come last, so an operator can turn compiling back on.
        let separator = if url.contains('?') { '&' } else { '?' };
        let store = PostgresStore::connect(&format!("{url}{separator}options=-c%20jit%3Don"), 1)
            .await
            .expect("connects");
        let client = store.client().await.expect("a connection");
        assert_eq!(setting(client, "jit").await, "on");
        store.close();
    }
}
