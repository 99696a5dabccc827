//! Otklik's storage port on SQLite: the embedded default that needs no set-up.
//!
//! One database file in WAL mode with `synchronous = FULL` (a commit is on disk before it is
//! acknowledged). SQLite allows one writer at a time, so all writes go through one writer thread
//! that owns the only write connection and practises *group commit*: it takes every unit of work
//! waiting in its queue, applies each inside its own savepoint of one transaction, commits once
//! (one fsync for the whole batch), and only then answers each caller. A unit that fails rolls
//! back to its savepoint alone; the others still commit. Reads run concurrently on a small pool
//! of read-only connections, which WAL lets see the last committed state without blocking the
//! writer.
//!
//! This crate must not depend on HTTP or on the app crate; only it knows SQLite's SQL.

mod access_terms;
mod bulk;
mod chat;
mod derived;
mod email;
mod full_text_build;
mod read;
mod rows;
mod schema;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use otklik_domain::agent::{Agent, Tag, Team};
use otklik_domain::attachment::AttachmentMeta;
use otklik_domain::audit::StoredAuditEvent;
use otklik_domain::chat::{AgentChatStatus, Chat, ChatSite, Visitor};
use otklik_domain::customer::{Customer, CustomerMerge, IdentityValue};
use otklik_domain::email::{EmailDirection, EmailRecord, Mailbox};
use otklik_domain::ids::{
    AgentId, AttachmentId, ChatSiteId, CustomerId, CustomerMergeId, EmailId, MailboxId, TagId,
    TeamId, TicketId, ViewId, VisitorId,
};
use otklik_domain::message::Message;
use otklik_domain::ticket::Ticket;
use otklik_domain::view::SavedView;
use otklik_store::events::Signal;
use otklik_store::{
    ApiTokenRecord, Backend, ChatEntry, ChatQuery, ColumnInfo, CommitReceipt, CustomerQuery,
    EmailQuery, IdPage, IdempotencyRecord, ImapCursorRecord, SessionRecord, SetupTokenRecord,
    Store, StoreError, StoreResult, TicketCountQuery, TicketQuery, TicketSearch, UnitOfWork,
};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Semaphore, oneshot};

mod migrations {
    refinery::embed_migrations!("migrations");
}

/// How many read connections serve queries concurrently.
const READ_CONNECTIONS: usize = 4;
/// The most units one group commit takes; bounds the latency a unit can add to its batch.
const MAX_BATCH: usize = 512;

struct WriteRequest {
    unit: UnitOfWork,
    /// What the writer needs of the unit, prepared before it is queued (see
    /// [`write::Prepared`]).
    prepared: write::Prepared,
    reply: oneshot::Sender<StoreResult<CommitReceipt>>,
}

/// The SQLite store. Cheap to share: clone the `Arc<dyn Store>` that holds it.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<WriteRequest>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Shared with the blocking tasks that use them, so a connection goes back to the pool
    /// even when the request that asked for it is cancelled mid-read.
    readers: Arc<Mutex<Vec<Connection>>>,
    read_permits: Arc<Semaphore>,
    events: tokio::sync::broadcast::Sender<otklik_store::events::ChangeEvent>,
    /// Signals stay in this process: one SQLite file serves one node.
    signals: tokio::sync::broadcast::Sender<otklik_store::events::Signal>,
    /// Counts summed by this store's readers, kept while the counters' version holds.
    counts: Arc<otklik_store::count_cache::CountCache>,
    /// Taken (first come, first served) by a unit whose text is analysed on a blocking thread
    /// until it is queued for the writer, so such units reach the writer in the order their
    /// commits began, as light units do: a bulk load's ticket numbers follow its order.
    heavy_turn: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A connection to write the database at `path` with.
pub(crate) fn writer_connection(path: impl AsRef<Path>) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    configure(&connection)?;
    Ok(connection)
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
    // WAL lets readers work beside the writer; FULL makes every commit durable before it
    // returns.
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -32000;",
    )?;
    // Other processes (a CLI backup, `otklik mail ingest` runs delivered by an MTA) hold the
    // write lock briefly. SQLite's own busy timeout backs off to 100 ms sleeps, so a process
    // that found the lock taken sleeps long after it was freed; retrying every millisecond
    // for up to five seconds lets a queue of short writers through at the pace they commit.
    connection.busy_handler(Some(wait_a_millisecond))
}

/// The busy handler: wait 1 ms and try again, for about five seconds. It runs inside SQLite
/// calls, which this store makes only on its writer thread and on blocking-pool threads, never
/// on an async worker.
#[allow(clippy::disallowed_methods)]
fn wait_a_millisecond(attempts: i32) -> bool {
    if attempts >= BUSY_ATTEMPTS {
        return false;
    }
    std::thread::sleep(std::time::Duration::from_millis(1));
    true
}

/// How many 1 ms waits the busy handler allows (about five seconds).
const BUSY_ATTEMPTS: i32 = 5_000;

/// The version of the newest of `migrations`.
fn newest_version(migrations: &[refinery::Migration]) -> refinery::SchemaVersion {
    migrations
        .iter()
        .map(refinery::Migration::version)
        .max()
        .unwrap_or_default()
}

/// A failed migration, told apart when the database has one newer than any this build knows.
fn migration_error(error: refinery::Error, newest_known: refinery::SchemaVersion) -> StoreError {
    match error.kind() {
        refinery::error::Kind::MissingVersion(migration) if migration.version() > newest_known => {
            StoreError::SchemaTooNew {
                migration: migration.to_string(),
            }
        }
        _ => StoreError::database(error),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        if let Some(folder) = path
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty())
        {
            std::fs::create_dir_all(folder).map_err(StoreError::database)?;
        }
        // Before migrating: what an interrupted import set aside is recreated by the SQL of the
        // schema it was taken from, and later migrations find the schema they expect. On a
        // connection of its own, which FTS5 may have cached stale state in (see
        // `full_text_build`).
        bulk::finish_interrupted(&mut writer_connection(path).map_err(StoreError::database)?)?;
        let mut writer_connection = writer_connection(path).map_err(StoreError::database)?;
        let runner = migrations::migrations::runner();
        let newest_known = newest_version(runner.get_migrations());
        runner
            .run(&mut writer_connection)
            .map_err(|error| migration_error(error, newest_known))?;

        let mut readers = Vec::with_capacity(READ_CONNECTIONS);
        for _ in 0..READ_CONNECTIONS {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(StoreError::database)?;
            reader
                .execute_batch("PRAGMA busy_timeout = 5000; PRAGMA cache_size = -16000;")
                .map_err(StoreError::database)?;
            readers.push(reader);
        }

        let (sender, receiver) = mpsc::channel::<WriteRequest>();
        let (events, _) = tokio::sync::broadcast::channel(otklik_store::events::EVENT_BUFFER);
        let (signals, _) = tokio::sync::broadcast::channel(otklik_store::events::EVENT_BUFFER);
        let writer_thread = std::thread::Builder::new()
            .name("otklik-sqlite-writer".into())
            .spawn({
                let events = events.clone();
                move || write::run_writer(writer_connection, receiver, MAX_BATCH, events)
            })
            .map_err(StoreError::database)?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(Some(sender)),
            writer_thread: Mutex::new(Some(writer_thread)),
            readers: Arc::new(Mutex::new(readers)),
            read_permits: Arc::new(Semaphore::new(READ_CONNECTIONS)),
            events,
            signals,
            counts: Arc::default(),
            heavy_turn: tokio::sync::Mutex::new(()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `query` on a pooled read connection, off the async runtime's threads.
    async fn read<T, F>(&self, query: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let permit = self
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(StoreError::database)?;
        let readers = self.readers.clone();
        // The blocking task takes a connection and puts it back itself, holding the permit
        // meanwhile: if the caller goes away (a browser cancels a request), the task still
        // finishes and returns the connection, so the pool never shrinks.
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let connection = readers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop()
                .ok_or_else(|| StoreError::corrupt("no free read connection despite a permit"))?;
            let result = query(&connection);
            readers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(connection);
            Ok(result)
        })
        .await
        .map_err(StoreError::database)?;
        let result: rusqlite::Result<T> = result?;
        result.map_err(StoreError::database)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what it has and exit; joining makes sure the
        // last commit is done before the process moves on (graceful shutdown relies on it).
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = self
            .writer_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = thread.join();
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<otklik_store::events::ChangeEvent> {
        self.events.subscribe()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|connection| connection.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    async fn commit(&self, unit: UnitOfWork) -> StoreResult<CommitReceipt> {
        let (reply, answer) = oneshot::channel();
        let mut turn = None;
        let (unit, prepared) = if derived::AnalysedText::is_heavy(&unit) {
            // Megabytes of text (a bulk load, a huge e-mail): not on an async worker, and in turn
            // (see `heavy_turn`), or a smaller unit begun later could overtake it.
            turn = Some(self.heavy_turn.lock().await);
            tokio::task::spawn_blocking(move || {
                let prepared = write::Prepared::of(&unit);
                (unit, prepared)
            })
            .await
            .map_err(|_| StoreError::corrupt("text analysis panicked"))?
        } else {
            let prepared = write::Prepared::of(&unit);
            (unit, prepared)
        };
        {
            let writer = self
                .writer
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let sender = writer
                .as_ref()
                .ok_or_else(|| StoreError::corrupt("the store is closed"))?;
            sender
                .send(WriteRequest {
                    unit,
                    prepared,
                    reply,
                })
                .map_err(|_| StoreError::corrupt("the SQLite writer has stopped"))?;
        }
        // Queued: the next heavy unit may go.
        drop(turn);
        answer
            .await
            .map_err(|_| StoreError::corrupt("the SQLite writer dropped a request"))?
    }

    async fn find_ticket(&self, id: TicketId) -> StoreResult<Option<Ticket>> {
        self.read(move |c| read::find_ticket(c, "t.id = ?1", &id.as_bytes().to_vec()))
            .await
    }

    async fn find_ticket_by_number(&self, number: i64) -> StoreResult<Option<Ticket>> {
        self.read(move |c| read::find_ticket(c, "t.number = ?1", &number))
            .await
    }

    async fn list_tickets(&self, query: &TicketQuery) -> StoreResult<Vec<Ticket>> {
        let query = query.clone();
        self.read(move |c| read::list_tickets(c, &query)).await
    }

    async fn list_messages(&self, ticket_id: TicketId) -> StoreResult<Vec<Message>> {
        self.read(move |c| read::list_messages(c, ticket_id)).await
    }

    async fn find_attachment(&self, id: AttachmentId) -> StoreResult<Option<AttachmentMeta>> {
        self.read(move |c| read::find_attachment(c, id)).await
    }

    async fn find_customer(&self, id: CustomerId) -> StoreResult<Option<Customer>> {
        self.read(move |c| read::find_customer(c, id)).await
    }

    async fn find_customers(&self, ids: &[CustomerId]) -> StoreResult<Vec<Customer>> {
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |c| read::find_customers(c, &ids)).await
    }

    async fn find_customer_by_identity(
        &self,
        identity: &IdentityValue,
    ) -> StoreResult<Option<Customer>> {
        let identity = identity.clone();
        self.read(move |c| read::find_customer_by_identity(c, &identity))
            .await
    }

    async fn list_customers(&self, query: &CustomerQuery) -> StoreResult<Vec<Customer>> {
        let query = query.clone();
        self.read(move |c| read::list_customers(c, &query)).await
    }

    async fn list_customer_ticket_ids(
        &self,
        customer_id: CustomerId,
    ) -> StoreResult<Vec<TicketId>> {
        self.read(move |c| read::list_customer_ticket_ids(c, customer_id))
            .await
    }

    async fn find_customer_merge(&self, id: CustomerMergeId) -> StoreResult<Option<CustomerMerge>> {
        self.read(move |c| read::find_customer_merge(c, id)).await
    }

    async fn list_customer_merges(
        &self,
        customer_id: CustomerId,
    ) -> StoreResult<Vec<CustomerMerge>> {
        self.read(move |c| read::list_customer_merges(c, customer_id))
            .await
    }

    async fn find_agent(&self, id: AgentId) -> StoreResult<Option<Agent>> {
        self.read(move |c| read::find_agent(c, "a.id = ?1", &id.as_bytes().to_vec()))
            .await
    }

    async fn find_agent_by_email(&self, email: &str) -> StoreResult<Option<Agent>> {
        let email = email.to_owned();
        self.read(move |c| read::find_agent(c, "a.email = ?1", &email))
            .await
    }

    async fn list_agents(&self, page: &IdPage) -> StoreResult<Vec<Agent>> {
        let page = *page;
        self.read(move |c| read::list_agents(c, page)).await
    }

    async fn count_agents(&self) -> StoreResult<i64> {
        self.read(|c| c.query_row("SELECT count(*) FROM agents", [], |row| row.get(0)))
            .await
    }

    async fn find_password_hash(&self, agent_id: AgentId) -> StoreResult<Option<String>> {
        self.read(move |c| read::find_password_hash(c, agent_id))
            .await
    }

    async fn find_team(&self, id: TeamId) -> StoreResult<Option<Team>> {
        self.read(move |c| read::find_team(c, id)).await
    }

    async fn list_teams(&self) -> StoreResult<Vec<Team>> {
        self.read(read::list_teams).await
    }

    async fn find_tag(&self, id: TagId) -> StoreResult<Option<Tag>> {
        self.read(move |c| read::find_tag(c, id)).await
    }

    async fn list_tags(&self) -> StoreResult<Vec<Tag>> {
        self.read(read::list_tags).await
    }

    async fn find_token_by_hash(&self, token_hash: &[u8]) -> StoreResult<Option<ApiTokenRecord>> {
        let token_hash = token_hash.to_vec();
        self.read(move |c| read::find_token(c, "token_hash = ?1", &token_hash))
            .await
    }

    async fn list_tokens(&self, agent_id: AgentId) -> StoreResult<Vec<ApiTokenRecord>> {
        self.read(move |c| read::list_tokens(c, agent_id)).await
    }

    async fn find_session(&self, id_hash: &[u8]) -> StoreResult<Option<SessionRecord>> {
        let id_hash = id_hash.to_vec();
        self.read(move |c| read::find_session(c, &id_hash)).await
    }

    async fn find_setup_token(&self, token_hash: &[u8]) -> StoreResult<Option<SetupTokenRecord>> {
        let token_hash = token_hash.to_vec();
        self.read(move |c| read::find_setup_token(c, &token_hash))
            .await
    }

    async fn find_idempotency_key(
        &self,
        principal: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let (principal, key) = (principal.to_owned(), key.to_owned());
        self.read(move |c| read::find_idempotency_key(c, &principal, &key))
            .await
    }

    async fn find_mailbox(&self, id: MailboxId) -> StoreResult<Option<Mailbox>> {
        self.read(move |c| email::find_mailbox(c, id)).await
    }

    async fn find_mailbox_by_name(&self, name: &str) -> StoreResult<Option<Mailbox>> {
        let name = name.to_owned();
        self.read(move |c| email::find_mailbox_by_name(c, &name))
            .await
    }

    async fn list_mailboxes(&self) -> StoreResult<Vec<Mailbox>> {
        self.read(email::list_mailboxes).await
    }

    async fn find_imap_cursor(
        &self,
        mailbox_id: MailboxId,
    ) -> StoreResult<Option<ImapCursorRecord>> {
        self.read(move |c| email::find_imap_cursor(c, mailbox_id))
            .await
    }

    async fn find_email(&self, id: EmailId) -> StoreResult<Option<EmailRecord>> {
        self.read(move |c| email::find_email(c, id)).await
    }

    async fn find_email_by_dedup_key(
        &self,
        direction: EmailDirection,
        dedup_key: &str,
    ) -> StoreResult<Option<EmailRecord>> {
        let dedup_key = dedup_key.to_owned();
        self.read(move |c| email::find_email_by_dedup_key(c, direction, &dedup_key))
            .await
    }

    async fn find_emails_by_message_ids(
        &self,
        message_ids: &[String],
    ) -> StoreResult<Vec<EmailRecord>> {
        let message_ids = message_ids.to_vec();
        self.read(move |c| email::find_emails_by_message_ids(c, &message_ids))
            .await
    }

    async fn list_ticket_emails(&self, ticket_id: TicketId) -> StoreResult<Vec<EmailRecord>> {
        self.read(move |c| email::list_ticket_emails(c, ticket_id))
            .await
    }

    async fn list_emails(&self, query: &EmailQuery) -> StoreResult<Vec<EmailRecord>> {
        let query = query.clone();
        self.read(move |c| email::list_emails(c, &query)).await
    }

    async fn count_automatic_emails_since(
        &self,
        recipient: &str,
        since: jiff::Timestamp,
    ) -> StoreResult<i64> {
        let recipient = recipient.to_owned();
        self.read(move |c| email::count_automatic_emails_since(c, &recipient, since))
            .await
    }

    async fn find_instance_secret(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let name = name.to_owned();
        self.read(move |c| email::find_instance_secret(c, &name))
            .await
    }

    async fn find_chat_site(&self, id: ChatSiteId) -> StoreResult<Option<ChatSite>> {
        self.read(move |c| chat::find_chat_site(c, id)).await
    }

    async fn list_chat_sites(&self) -> StoreResult<Vec<ChatSite>> {
        self.read(chat::list_chat_sites).await
    }

    async fn find_visitor(&self, id: VisitorId) -> StoreResult<Option<Visitor>> {
        self.read(move |c| chat::find_visitor(c, id)).await
    }

    async fn find_visitor_by_token(&self, token_hash: &[u8]) -> StoreResult<Option<Visitor>> {
        let token_hash = token_hash.to_vec();
        self.read(move |c| chat::find_visitor_by_token(c, &token_hash))
            .await
    }

    async fn find_visitor_by_external_id(
        &self,
        site_id: ChatSiteId,
        external_id: &str,
    ) -> StoreResult<Option<Visitor>> {
        let external_id = external_id.to_owned();
        self.read(move |c| chat::find_visitor_by_external_id(c, site_id, &external_id))
            .await
    }

    async fn find_chat(&self, ticket_id: TicketId) -> StoreResult<Option<Chat>> {
        self.read(move |c| chat::find_chat(c, ticket_id)).await
    }

    async fn list_chats(&self, query: &ChatQuery) -> StoreResult<Vec<Chat>> {
        let query = query.clone();
        self.read(move |c| chat::list_chats(c, &query)).await
    }

    async fn count_queued_chats_before(&self, chat: &Chat) -> StoreResult<i64> {
        let chat = chat.clone();
        self.read(move |c| chat::count_queued_chats_before(c, &chat))
            .await
    }

    async fn list_chat_entries(
        &self,
        ticket_id: TicketId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<ChatEntry>> {
        self.read(move |c| chat::list_chat_entries(c, ticket_id, after_seq, limit))
            .await
    }

    async fn find_chat_entry_by_client_id(
        &self,
        ticket_id: TicketId,
        client_id: &str,
    ) -> StoreResult<Option<ChatEntry>> {
        let client_id = client_id.to_owned();
        self.read(move |c| chat::find_chat_entry_by_client_id(c, ticket_id, &client_id))
            .await
    }

    async fn find_agent_chat_status(
        &self,
        agent_id: AgentId,
    ) -> StoreResult<Option<AgentChatStatus>> {
        self.read(move |c| chat::find_agent_chat_status(c, agent_id))
            .await
    }

    async fn list_agent_chat_statuses(&self) -> StoreResult<Vec<AgentChatStatus>> {
        self.read(chat::list_agent_chat_statuses).await
    }

    async fn publish_signal(&self, signal: Signal) -> StoreResult<()> {
        // The same size rule as PostgreSQL, so a signal that works here works on every backend.
        otklik_store::events::signal_payload(&signal)?;
        // Having no subscriber is not an error.
        let _ = self.signals.send(signal);
        Ok(())
    }

    fn subscribe_signals(&self) -> tokio::sync::broadcast::Receiver<Signal> {
        self.signals.subscribe()
    }

    async fn list_audit_events(&self, object_id: uuid::Uuid) -> StoreResult<Vec<StoredAuditEvent>> {
        self.read(move |c| read::list_audit_events(c, object_id))
            .await
    }

    async fn search_tickets(&self, search: &TicketSearch) -> StoreResult<Vec<Ticket>> {
        let search = search.clone();
        self.read(move |c| read::search_tickets(c, &search)).await
    }

    async fn search_customers(
        &self,
        query: &otklik_search::SearchQuery,
        limit: u32,
    ) -> StoreResult<Vec<Customer>> {
        let query = query.clone();
        self.read(move |c| read::search_customers(c, &query, limit))
            .await
    }

    async fn list_messages_of(&self, ticket_ids: &[TicketId]) -> StoreResult<Vec<Message>> {
        let ticket_ids = ticket_ids.to_vec();
        self.read(move |c| read::list_messages_of(c, &ticket_ids))
            .await
    }

    async fn count_tickets(&self, query: &TicketCountQuery) -> StoreResult<i64> {
        Ok(self
            .count_tickets_many(std::slice::from_ref(query))
            .await?
            .pop()
            .unwrap_or(0))
    }

    async fn count_tickets_many(&self, queries: &[TicketCountQuery]) -> StoreResult<Vec<i64>> {
        let queries = queries.to_vec();
        let counts = self.counts.clone();
        self.read(move |c| read::count_tickets_through(c, &counts, &queries))
            .await
    }

    async fn list_views(&self, agent_id: AgentId) -> StoreResult<Vec<SavedView>> {
        self.read(move |c| read::list_views(c, agent_id)).await
    }

    async fn find_view(&self, id: ViewId) -> StoreResult<Option<SavedView>> {
        self.read(move |c| read::find_view(c, id)).await
    }

    async fn rebuild_derived_data(&self) -> StoreResult<()> {
        self.commit(UnitOfWork::new().with(otklik_store::Mutation::RebuildDerivedData))
            .await
            .map(|_| ())
    }

    async fn backup_to(&self, path: &Path) -> StoreResult<()> {
        let target = path.to_owned();
        if target.exists() {
            return Err(StoreError::Conflict {
                constraint: "backup target exists".into(),
            });
        }
        let target_text = target
            .to_str()
            .ok_or_else(|| StoreError::corrupt("backup path is not UTF-8"))?
            .to_owned();
        // VACUUM INTO copies one consistent read snapshot while writers go on (WAL).
        self.read(move |c| c.execute("VACUUM INTO ?1", [target_text]).map(|_| ()))
            .await
    }

    async fn logical_schema(&self) -> StoreResult<Vec<ColumnInfo>> {
        self.read(schema::logical_schema).await
    }

    async fn find_password_reset_token(
        &self,
        token_hash: &[u8],
    ) -> StoreResult<Option<otklik_store::PasswordResetRecord>> {
        let token_hash = token_hash.to_vec();
        self.read(move |c| read::find_password_reset_token(c, &token_hash))
            .await
    }

    async fn count_password_reset_tokens_since(
        &self,
        agent_id: AgentId,
        since: jiff::Timestamp,
    ) -> StoreResult<i64> {
        self.read(move |c| read::count_password_reset_tokens_since(c, agent_id, since))
            .await
    }

    async fn list_settings(&self) -> StoreResult<Vec<(String, String)>> {
        self.read(read::list_settings).await
    }

    async fn list_tickets_sorted(
        &self,
        query: &otklik_store::SortedTicketQuery,
    ) -> StoreResult<Vec<Ticket>> {
        let query = query.clone();
        self.read(move |c| read::list_tickets_sorted(c, &query))
            .await
    }
}

#[cfg(test)]
mod tests;
