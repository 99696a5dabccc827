//! `otklik demo`: a living helpdesk of an online shop selling clothes, shoes and electronics in
//! Russia and abroad, so a newcomer sees queues, conversations and history instead of an empty
//! screen.
//!
//! Up to a few thousand tickets are written through the [`App`] use cases (the same code paths
//! as the API, so the audit history is real), on a hand-moved clock so the history spreads over
//! weeks instead of the seconds the load takes. Larger datasets (for scale work) are written in
//! big units of work straight through the storage port, hundreds of tickets per commit.
//!
//! Everything is drawn from a seeded random generator: the same options give the same shop.
//! Running the demo again on the same database reuses the teams, agents and customers it made.
//!
//! Here: the options, the clock and the staff. The shop's customers are in `people`, what they
//! write about and how a ticket lives in `stories`, and the two ways of writing tickets in
//! `use_cases` and `batched`.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use otklik_app::App;
use otklik_app::auth::NewAgentInput;
use otklik_domain::agent::{Agent, Role, Team};
use otklik_domain::clock::Clock;
use otklik_domain::ids::TeamId;
use otklik_domain::permission::Principal;
use otklik_store::Backend;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The password every demo agent signs in with. The demo is for a local trial only.
pub const DEMO_PASSWORD: &str = "demo-password-1";
/// How many tickets `otklik demo` creates unless told otherwise.
pub const DEFAULT_DEMO_TICKETS: usize = 300;
/// A demo agent of the Delivery and VIP teams. Most tickets about refunds belong to the Payments
/// and Returns teams, whose tickets this agent may not see: the bench searches as them to measure
/// a search whose matches are mostly hidden from the searcher.
pub const DEMO_AGENT_OF_OTHER_TEAMS: &str = "james.wilson@demo-shop.example";
/// The seed of the generator: the same options always give the same shop.
const DEMO_SEED: u64 = 0x07C1_1C0D_E3A0_2026;
/// Above this many tickets the demo writes straight through the store in big units of work.
const BATCH_THRESHOLD: usize = 2000;
/// Tickets per unit of work on the batched path with SQLite. Small on purpose: the SQLite store
/// runs each unit in a savepoint, and every statement that needs a statement journal walks that
/// savepoint's in-memory journal from its start when it ends, so a unit costs about the square
/// of its size. The writer thread still commits every queued unit in one transaction (up to 512
/// units per fsync), so small units cost no durability round trips.
const SQLITE_BATCH_TICKETS: usize = 800;
/// Units submitted to SQLite and not yet acknowledged.
const SQLITE_UNITS_IN_FLIGHT: usize = 2;
/// Tickets per unit of work on the batched path with PostgreSQL (one transaction each).
const POSTGRES_BATCH_TICKETS: usize = 250;
/// Units committing at once on PostgreSQL (each on its own connection).
const POSTGRES_UNITS_IN_FLIGHT: usize = 8;
/// A batched ticket reuses only customers whose first ticket came at least this many tickets
/// earlier: by then that customer's unit is acknowledged on either backend. The same on both
/// backends, so both get the same shop.
const CUSTOMER_LAG_TICKETS: usize = 2_600;
/// Units generated ahead of the writing.
const UNITS_AHEAD: usize = 32;

/// What to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoOptions {
    /// How many tickets to create.
    pub tickets: usize,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            tickets: DEFAULT_DEMO_TICKETS,
        }
    }
}

/// What the demo loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    /// Demo staff (supervisor and agents; the admin running the demo is not counted).
    pub agents: usize,
    pub teams: usize,
    /// Customers the demo tickets belong to (created now or reused from an earlier run).
    pub customers: usize,
    pub tickets: usize,
    /// Every message: customers' messages, public replies and internal notes.
    pub messages: usize,
    /// The demo supervisor's e-mail, to sign in with.
    pub supervisor_email: String,
    /// Whether the tickets were written in big units of work rather than through use cases.
    pub batched: bool,
    pub elapsed: Duration,
    /// Of which writing customers, tickets and messages took this long (staff set-up, with its
    /// deliberately slow password hashing, is the rest).
    pub writing: Duration,
    /// Of which building the indexes that a bulk import set aside took this long (zero when the
    /// demo was not one).
    pub indexing: Duration,
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let team_names: Vec<&str> = TeamKey::ALL.iter().map(|team| team.name()).collect();
        let seconds = self.elapsed.as_secs_f64();
        write!(
            f,
            "Demo shop loaded in {seconds:.1} s: {} tickets with {} messages from {} customers, \
             handled by {} agents in {} teams ({}).",
            self.tickets,
            self.messages,
            self.customers,
            self.agents,
            self.teams,
            team_names.join(", "),
        )?;
        let writing = self.writing.as_secs_f64();
        if writing > 0.0 && self.tickets > 0 {
            write!(
                f,
                " Writing took {writing:.1} s{}: {:.0} tickets/s, {:.0} messages/s, {:.2} messages \
                 per ticket.",
                if self.batched {
                    " in big batches"
                } else {
                    " through the use cases"
                },
                self.tickets as f64 / writing,
                self.messages as f64 / writing,
                self.messages as f64 / self.tickets as f64
            )?;
            let rows = (self.writing.saturating_sub(self.indexing)).as_secs_f64();
            if !self.indexing.is_zero() && rows > 0.0 {
                write!(
                    f,
                    " The rows went in at {:.0} tickets/s, then building the indexes the import \
                     set aside took {:.1} s.",
                    self.tickets as f64 / rows,
                    self.indexing.as_secs_f64()
                )?;
            }
        }
        write!(
            f,
            " Demo agents share the password «{DEMO_PASSWORD}» (for a local trial only); sign in \
             as the supervisor {} to see every queue.",
            self.supervisor_email
        )
    }
}

/// Loads the demo shop, acting as `principal` (an existing admin).
pub async fn load_demo(
    app: &App,
    principal: &Principal,
    options: &DemoOptions,
) -> anyhow::Result<DemoSummary> {
    load_demo_with(app, principal, options, Batching::default()).await
}

/// When and how the demo switches to big units of work.
#[derive(Debug, Clone, Copy)]
struct Batching {
    /// More tickets than this go through the batched path.
    threshold: usize,
    /// Tickets per unit of work and units in flight on SQLite.
    sqlite: (usize, usize),
    /// Tickets per unit of work and units in flight on PostgreSQL.
    postgres: (usize, usize),
    /// See [`CUSTOMER_LAG_TICKETS`]; at least (units in flight + 1) × tickets per unit.
    customer_lag: usize,
}

impl Batching {
    /// Tickets per unit and units in flight for `backend`.
    fn for_backend(self, backend: Backend) -> (usize, usize) {
        let (tickets, units) = match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        };
        (tickets.max(1), units.max(1))
    }
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            threshold: BATCH_THRESHOLD,
            sqlite: (SQLITE_BATCH_TICKETS, SQLITE_UNITS_IN_FLIGHT),
            postgres: (POSTGRES_BATCH_TICKETS, POSTGRES_UNITS_IN_FLIGHT),
            customer_lag: CUSTOMER_LAG_TICKETS,
        }
    }
}

async fn load_demo_with(
    app: &App,
    principal: &Principal,
    options: &DemoOptions,
    batching: Batching,
) -> anyhow::Result<DemoSummary> {
    let started = Instant::now();
    let now = app.clock.now();
    let clock = Arc::new(DemoClock::new(ago(
        now,
        SignedDuration::from_hours(24 * 120),
    )));
    // Same store and blobs, but time moves as the demo says.
    let demo_app = app.with_clock(clock.clone());
    let mut rng = StdRng::seed_from_u64(DEMO_SEED);
    let staff = Arc::new(ensure_staff(&demo_app, &clock, principal).await?);
    let batched = options.tickets > batching.threshold;
    let writing = Instant::now();
    let counts = if batched {
        load_batched(app, principal, &staff, options.tickets, batching, now, &rng).await?
    } else {
        load_with_use_cases(
            &demo_app,
            &clock,
            principal,
            &staff,
            options.tickets,
            now,
            &mut rng,
        )
        .await?
    };
    Ok(DemoSummary {
        agents: staff.members.len(),
        teams: staff.teams.len(),
        customers: counts.customers,
        tickets: counts.tickets,
        messages: counts.messages,
        supervisor_email: staff.supervisor().agent.email.clone(),
        batched,
        elapsed: started.elapsed(),
        writing: writing.elapsed(),
        indexing: counts.indexing,
    })
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    customers: usize,
    tickets: usize,
    messages: usize,
    /// Building the indexes a bulk import set aside.
    indexing: Duration,
}

// ---------------------------------------------------------------------------------------------
// Time

/// A clock the demo sets by hand, so one run leaves weeks of believable history.
#[derive(Debug)]
struct DemoClock {
    now: Mutex<Timestamp>,
}

impl DemoClock {
    fn new(at: Timestamp) -> Self {
        DemoClock {
            now: Mutex::new(at),
        }
    }

    fn set(&self, at: Timestamp) {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = at;
    }
}

impl Clock for DemoClock {
    fn now(&self) -> Timestamp {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn ago(now: Timestamp, by: SignedDuration) -> Timestamp {
    now.checked_sub(by).unwrap_or(now)
}

fn later(at: Timestamp, by: SignedDuration) -> Timestamp {
    at.checked_add(by).unwrap_or(at)
}

fn minutes(rng: &mut StdRng, low: i64, high: i64) -> SignedDuration {
    SignedDuration::from_mins(rng.random_range(low..=high))
}

// ---------------------------------------------------------------------------------------------
// Staff

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TeamKey {
    Delivery,
    Returns,
    Payments,
    Vip,
}

impl TeamKey {
    const ALL: [TeamKey; 4] = [
        TeamKey::Delivery,
        TeamKey::Returns,
        TeamKey::Payments,
        TeamKey::Vip,
    ];

    fn name(self) -> &'static str {
        match self {
            TeamKey::Delivery => "Доставка",
            TeamKey::Returns => "Возвраты",
            TeamKey::Payments => "Оплата",
            TeamKey::Vip => "VIP",
        }
    }
}

struct AgentSpec {
    name: &'static str,
    email: &'static str,
    role: Role,
    teams: &'static [TeamKey],
    /// Answers English tickets by preference (and never Russian ones).
    english: bool,
}

/// The demo staff; the first one is the supervisor.
const AGENTS: &[AgentSpec] = &[
    AgentSpec {
        name: "Ольга Кузнецова",
        email: "olga.kuznetsova@demo-shop.example",
        role: Role::Supervisor,
        teams: &[TeamKey::Vip],
        english: false,
    },
    AgentSpec {
        name: "Иван Петров",
        email: "ivan.petrov@demo-shop.example",
        role: Role::Agent,
        teams: &[TeamKey::Delivery],
        english: false,
    },
    AgentSpec {
        name: "Мария Соколова",
        email: "maria.sokolova@demo-shop.example",
        role: Role::Agent,
        teams: &[TeamKey::Delivery],
        english: false,
    },
    AgentSpec {
        name: "James Wilson",
        email: DEMO_AGENT_OF_OTHER_TEAMS,
        role: Role::Agent,
        teams: &[TeamKey::Delivery, TeamKey::Vip],
        english: true,
    },
    AgentSpec {
        name: "Анна Смирнова",
        email: "anna.smirnova@demo-shop.example",
        role: Role::Agent,
        teams: &[TeamKey::Returns],
        english: false,
    },
    AgentSpec {
        name: "Emily Carter",
        email: "emily.carter@demo-shop.example",
        role: Role::Agent,
        teams: &[TeamKey::Returns],
        english: true,
    },
    AgentSpec {
        name: "Дмитрий Волков",
        email: "dmitry.volkov@demo-shop.example",
        role: Role::Agent,
        teams: &[TeamKey::Payments],
        english: false,
    },
    AgentSpec {
        name: "Алексей Новиков",
        email: "alexey.novikov@demo-shop.example",
        role: Role::Agent,
        teams: &[TeamKey::Payments, TeamKey::Delivery],
        english: false,
    },
    AgentSpec {
        name: "Екатерина Морозова",
        email: "ekaterina.morozova@demo-shop.example",
        role: Role::Agent,
        teams: &[TeamKey::Vip, TeamKey::Returns],
        english: false,
    },
];

struct Member {
    agent: Agent,
    principal: Principal,
    spec: &'static AgentSpec,
}

impl Member {
    fn first_name(&self) -> &str {
        self.spec.name.split(' ').next().unwrap_or(self.spec.name)
    }
}

struct Staff {
    teams: Vec<(TeamKey, Team)>,
    /// `members[0]` is the supervisor.
    members: Vec<Member>,
}

impl Staff {
    fn team_id(&self, key: TeamKey) -> Option<TeamId> {
        self.teams
            .iter()
            .find(|(team, _)| *team == key)
            .map(|(_, team)| team.id)
    }

    fn supervisor(&self) -> &Member {
        &self.members[0]
    }

    /// An agent (never the supervisor) for a ticket of `team` in the customer's language.
    fn pick_agent(&self, rng: &mut StdRng, team: Option<TeamKey>, english: bool) -> usize {
        let fits = |member: &Member, by_team: bool, by_language: bool| {
            member.spec.role == Role::Agent
                && (!by_team || team.is_none_or(|team| member.spec.teams.contains(&team)))
                && (!by_language || member.spec.english == english)
        };
        for (by_team, by_language) in [(true, true), (true, false), (false, true)] {
            let candidates: Vec<usize> = (0..self.members.len())
                .filter(|&index| fits(&self.members[index], by_team, by_language))
                .collect();
            if !candidates.is_empty() {
                return candidates[rng.random_range(0..candidates.len())];
            }
        }
        1
    }
}

/// Creates the demo teams and agents, or finds them from an earlier run.
async fn ensure_staff(
    app: &App,
    clock: &DemoClock,
    principal: &Principal,
) -> anyhow::Result<Staff> {
    let existing = app
        .list_teams(principal)
        .await
        .context("cannot list teams")?;
    let mut teams = Vec::new();
    for key in TeamKey::ALL {
        let team = match existing.iter().find(|team| team.name == key.name()) {
            Some(team) => team.clone(),
            None => app
                .create_team(principal, key.name())
                .await
                .with_context(|| format!("cannot create the demo team {}", key.name()))?,
        };
        clock.set(later(clock.now(), SignedDuration::from_mins(7)));
        teams.push((key, team));
    }
    let mut members = Vec::new();
    for spec in AGENTS {
        let agent = match app.store.find_agent_by_email(spec.email).await? {
            Some(agent) => agent,
            None => {
                let team_ids = spec
                    .teams
                    .iter()
                    .filter_map(|key| teams.iter().find(|(team, _)| team == key))
                    .map(|(_, team)| team.id)
                    .collect();
                let input = NewAgentInput {
                    email: spec.email.into(),
                    name: spec.name.into(),
                    role: spec.role,
                    team_ids,
                    password: Some(DEMO_PASSWORD.into()),
                };
                app.create_agent(principal, input)
                    .await
                    .with_context(|| format!("cannot create the demo agent {}", spec.email))?
            }
        };
        anyhow::ensure!(
            agent.active,
            "the demo agent {} is deactivated; reactivate it or use a fresh database",
            agent.email
        );
        clock.set(later(clock.now(), SignedDuration::from_hours(5)));
        let principal = App::principal_of(&agent, None, None);
        members.push(Member {
            agent,
            principal,
            spec,
        });
    }
    Ok(Staff { teams, members })
}

mod batched;
mod people;
mod stories;
mod use_cases;

use batched::load_batched;
use use_cases::load_with_use_cases;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use otklik_domain::clock::SystemClock;
    use otklik_domain::message::Author;
    use otklik_domain::ticket::{Channel, TicketStatus};
    use otklik_store::TicketFilter;
    use otklik_store::blobs::LocalBlobStore;
    use otklik_store_sqlite::SqliteStore;

    use super::batched::{batch_message_count, progress_line, reusable_customers};
    use super::people::feminine;
    use super::stories::{Beat, beats, rub};
    use super::*;

    async fn fresh_app(folder: &tempfile::TempDir) -> (App, Principal) {
        let store = SqliteStore::open(&folder.path().join("otklik.db")).unwrap();
        app_on(Arc::new(store), folder).await
    }

    /// An app on `store` with its blobs in `folder`, and its first admin.
    async fn app_on(
        store: Arc<dyn otklik_store::Store>,
        folder: &tempfile::TempDir,
    ) -> (App, Principal) {
        let app = App::new(
            store,
            Arc::new(LocalBlobStore::new(folder.path().join("blobs"))),
            Arc::new(SystemClock),
        );
        let admin = app
            .create_admin_from_cli("admin@otklik.test", "Admin", "correct horse battery".into())
            .await
            .unwrap();
        (app, App::principal_of(&admin, None, None))
    }

    async fn every_ticket(
        app: &App,
        principal: &Principal,
        filter: TicketFilter,
    ) -> Vec<otklik_domain::ticket::Ticket> {
        let mut tickets = Vec::new();
        let mut after = None;
        loop {
            let page = app
                .list_tickets(principal, filter.clone(), after, 200)
                .await
                .unwrap();
            tickets.extend(page.tickets);
            match page.next {
                Some(next) => after = Some(next),
                None => return tickets,
            }
        }
    }

    #[test]
    fn a_progress_line_says_how_many_of_how_many_tickets_and_how_fast() {
        assert_eq!(
            progress_line(250_000, 1_000_000, Duration::from_secs(20)),
            "demo: 250000 of 1000000 tickets written (25%), 12500 tickets/s"
        );
        assert_eq!(
            progress_line(0, 0, Duration::ZERO),
            "demo: 0 of 0 tickets written (0%), 0 tickets/s"
        );
    }

    #[tokio::test]
    async fn the_demo_creates_the_requested_number_of_tickets_across_every_channel() {
        let folder = tempfile::tempdir().unwrap();
        let (app, admin) = fresh_app(&folder).await;
        let summary = load_demo(&app, &admin, &DemoOptions { tickets: 40 })
            .await
            .unwrap();

        assert_eq!(summary.tickets, 40);
        assert!(!summary.batched);
        assert_eq!(summary.teams, 4);
        assert_eq!(summary.agents, AGENTS.len());
        let tickets = every_ticket(&app, &admin, TicketFilter::default()).await;
        assert_eq!(tickets.len(), 40);
        let channels: BTreeSet<Channel> = tickets.iter().map(|ticket| ticket.channel).collect();
        assert_eq!(channels.len(), Channel::ALL.len(), "{channels:?}");
        let statuses: BTreeSet<TicketStatus> = tickets.iter().map(|ticket| ticket.status).collect();
        assert!(statuses.len() >= 4, "{statuses:?}");
        let mut messages = 0;
        for ticket in &tickets {
            let thread = app.list_messages(&admin, ticket.id).await.unwrap();
            assert!(
                (1..=5).contains(&thread.len()),
                "ticket #{} has {} messages",
                ticket.number,
                thread.len()
            );
            messages += thread.len();
            if ticket.status == TicketStatus::Solved {
                assert!(ticket.solved_at.is_some() && ticket.first_agent_reply_at.is_some());
            }
        }
        assert_eq!(messages, summary.messages);
        assert!(
            tickets
                .iter()
                .any(|ticket| ticket.tags.iter().any(|tag| tag == "доставка"))
        );
        let history = app.ticket_audit(&admin, tickets[0].id).await.unwrap();
        assert!(history.iter().any(|event| event.action == "ticket.created"));
        assert!(summary.to_string().contains(DEMO_PASSWORD));
    }

    #[tokio::test]
    async fn the_demo_is_reproducible_and_a_second_run_reuses_staff_and_customers() {
        let folder = tempfile::tempdir().unwrap();
        let (app, admin) = fresh_app(&folder).await;
        let first = load_demo(&app, &admin, &DemoOptions { tickets: 12 })
            .await
            .unwrap();
        let second = load_demo(&app, &admin, &DemoOptions { tickets: 12 })
            .await
            .unwrap();

        assert_eq!(
            (first.tickets, first.messages, first.customers),
            (second.tickets, second.messages, second.customers)
        );
        let tickets = every_ticket(&app, &admin, TicketFilter::default()).await;
        assert_eq!(tickets.len(), 24);
        let subjects = |range: std::ops::RangeInclusive<i64>| {
            let mut subjects: Vec<_> = tickets
                .iter()
                .filter(|t| range.contains(&t.number))
                .map(|t| t.subject.clone())
                .collect();
            subjects.sort();
            subjects
        };
        assert_eq!(subjects(1..=12), subjects(13..=24));
        assert_eq!(app.list_teams(&admin).await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn the_batched_path_writes_tickets_with_messages_and_customers() {
        let folder = tempfile::tempdir().unwrap();
        let (app, admin) = fresh_app(&folder).await;
        let summary = load_demo_with(&app, &admin, &DemoOptions { tickets: 100 }, small_batches())
            .await
            .unwrap();

        assert!(summary.batched);
        assert_eq!(summary.tickets, 100);
        assert!(
            summary.messages >= 3 * summary.tickets,
            "{} messages",
            summary.messages
        );
        assert!(summary.to_string().contains("tickets/s"), "{summary}");
        assert!(
            !summary.indexing.is_zero()
                && summary
                    .to_string()
                    .contains("then building the indexes the import set aside took"),
            "into an empty database the demo is a bulk import: {summary}"
        );
        assert!(
            summary.customers > 10 && summary.customers < 100,
            "{}",
            summary.customers
        );
        let tickets = every_ticket(&app, &admin, TicketFilter::default()).await;
        assert_eq!(tickets.len(), 100);
        let numbers: BTreeSet<i64> = tickets.iter().map(|ticket| ticket.number).collect();
        assert_eq!(numbers.len(), 100);
        let mut messages = 0;
        for ticket in &tickets {
            let thread = app.list_messages(&admin, ticket.id).await.unwrap();
            assert!(!thread.is_empty());
            messages += thread.len();
            let customer = app.get_customer(&admin, ticket.customer_id).await.unwrap();
            assert!(!customer.identities.is_empty());
            if ticket.status == TicketStatus::Closed {
                assert!(ticket.closed_at.is_some() && ticket.solved_at.is_some());
            }
            if ticket.status != TicketStatus::New {
                assert!(ticket.assignee_id.is_some() && ticket.first_agent_reply_at.is_some());
                assert!(
                    thread
                        .iter()
                        .any(|message| matches!(message.author, Author::Agent(_)))
                );
            }
            let last = thread
                .iter()
                .map(|message| message.created_at)
                .max()
                .unwrap();
            assert!(ticket.updated_at >= last, "ticket #{}", ticket.number);
            let history = app.ticket_audit(&admin, ticket.id).await.unwrap();
            let created = history
                .iter()
                .filter(|event| event.action == "ticket.created")
                .count();
            assert_eq!(created, 1, "ticket #{}", ticket.number);
        }
        assert_eq!(messages, summary.messages);
        let delivery = TicketFilter {
            tag: Some("доставка".into()),
            ..TicketFilter::default()
        };
        assert!(!every_ticket(&app, &admin, delivery).await.is_empty());

        // A second batched run on the same database takes fresh identities.
        let again = load_demo_with(&app, &admin, &DemoOptions { tickets: 20 }, small_batches())
            .await
            .unwrap();
        assert_eq!(again.tickets, 20);
        assert_eq!(
            every_ticket(&app, &admin, TicketFilter::default())
                .await
                .len(),
            120
        );
    }

    #[tokio::test]
    async fn a_batched_demo_on_postgresql_sets_no_indexes_aside_and_says_none_were_built() {
        let folder = tempfile::tempdir().unwrap();
        let database = otklik_store_postgres::testkit::fresh_database().await;
        let (app, admin) = app_on(database.store.clone(), &folder).await;
        let summary = load_demo_with(&app, &admin, &DemoOptions { tickets: 30 }, small_batches())
            .await
            .unwrap();
        assert!(summary.batched);
        assert_eq!(summary.tickets, 30);
        assert!(summary.indexing.is_zero(), "{:?}", summary.indexing);
        assert!(
            !summary.to_string().contains("indexes"),
            "PostgreSQL keeps its indexes: {summary}"
        );
        assert_eq!(
            every_ticket(&app, &admin, TicketFilter::default())
                .await
                .len(),
            30
        );
    }

    /// The batched path on a few tickets: small units, a few in flight.
    fn small_batches() -> Batching {
        Batching {
            threshold: 10,
            sqlite: (7, 3),
            postgres: (7, 3),
            customer_lag: 40,
        }
    }

    #[tokio::test]
    async fn the_batched_shop_does_not_depend_on_the_unit_size() {
        let mut shops = Vec::new();
        for (tickets_per_unit, in_flight) in [(7, 3), (3, 12)] {
            let folder = tempfile::tempdir().unwrap();
            let (app, admin) = fresh_app(&folder).await;
            let batching = Batching {
                sqlite: (tickets_per_unit, in_flight),
                ..small_batches()
            };
            let summary = load_demo_with(&app, &admin, &DemoOptions { tickets: 60 }, batching)
                .await
                .unwrap();
            let mut tickets = every_ticket(&app, &admin, TicketFilter::default()).await;
            tickets.sort_by_key(|ticket| ticket.number);
            let shop: Vec<_> = tickets
                .iter()
                .map(|ticket| {
                    (
                        ticket.number,
                        ticket.subject.clone(),
                        ticket.status,
                        ticket.priority,
                        ticket.channel,
                        ticket.tags.clone(),
                        // Times follow the wall clock; their spacing is the generator's.
                        ticket.updated_at.duration_since(ticket.created_at),
                    )
                })
                .collect();
            shops.push((summary.tickets, summary.messages, summary.customers, shop));
        }
        assert_eq!(shops[0], shops[1]);
    }

    #[tokio::test]
    async fn a_customer_lag_shorter_than_the_tickets_in_flight_is_refused() {
        let folder = tempfile::tempdir().unwrap();
        let (app, admin) = fresh_app(&folder).await;
        let batching = Batching {
            sqlite: (10, 4),
            customer_lag: 49,
            ..small_batches()
        };
        let error = load_demo_with(&app, &admin, &DemoOptions { tickets: 30 }, batching)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("customer lag"), "{error}");
    }

    #[test]
    fn a_ticket_reuses_only_customers_from_far_enough_back() {
        let first_tickets = [0, 0, 3, 10, 11];
        let at = |customer: usize| first_tickets[customer];
        assert_eq!(reusable_customers(at, 5, 0, 5, 5), 2);
        assert_eq!(reusable_customers(at, 5, 2, 8, 5), 3);
        assert_eq!(reusable_customers(at, 5, 3, 15, 5), 4);
        assert_eq!(reusable_customers(at, 5, 4, 100, 5), 5);
        assert_eq!(reusable_customers(at, 0, 0, 100, 5), 0);
    }

    #[test]
    fn batched_threads_average_more_than_three_messages() {
        let mut rng = StdRng::seed_from_u64(7);
        for status in [
            TicketStatus::Solved,
            TicketStatus::Closed,
            TicketStatus::Pending,
        ] {
            let total: usize = (0..2000)
                .map(|_| {
                    let plan = beats(status, batch_message_count(&mut rng, status));
                    1 + plan
                        .iter()
                        .filter(|beat| !matches!(beat, Beat::Triage | Beat::Close))
                        .count()
                })
                .sum();
            assert!(total > 3 * 2000, "{status}: {total}");
        }
        let new: usize = (0..1000)
            .map(|_| batch_message_count(&mut rng, TicketStatus::New))
            .sum();
        assert!((1000..=2000).contains(&new), "{new}");
    }

    #[test]
    fn roubles_are_grouped_by_thousands() {
        assert_eq!(rub(990), "990\u{a0}₽");
        assert_eq!(rub(12_990), "12\u{a0}990\u{a0}₽");
        assert_eq!(rub(1_234_567), "1\u{a0}234\u{a0}567\u{a0}₽");
    }

    #[test]
    fn feminine_surnames_follow_russian_rules() {
        assert_eq!(
            feminine("Иванов", "ivanov"),
            ("Иванова".into(), "ivanova".into())
        );
        assert_eq!(
            feminine("Ковальский", "kovalsky"),
            ("Ковальская".into(), "kovalskaya".into())
        );
        assert_eq!(
            feminine("Кравченко", "kravchenko"),
            ("Кравченко".into(), "kravchenko".into())
        );
    }

    #[test]
    fn every_final_status_is_reachable_by_its_beats() {
        for &status in TicketStatus::ALL {
            for messages in 1..=5 {
                let plan = beats(status, messages);
                let n_messages = 1 + plan
                    .iter()
                    .filter(|beat| !matches!(beat, Beat::Triage | Beat::Close))
                    .count();
                assert!(
                    (1..=5).contains(&n_messages),
                    "{status} {messages}: {plan:?}"
                );
                let mut current = TicketStatus::New;
                for beat in &plan {
                    current = match beat {
                        Beat::Triage if current == TicketStatus::New => TicketStatus::Open,
                        Beat::Reply(Some(to)) => *to,
                        Beat::Reply(None) if current == TicketStatus::New => TicketStatus::Open,
                        Beat::CustomerAnswer | Beat::CustomerFollowup
                            if matches!(
                                current,
                                TicketStatus::Pending | TicketStatus::OnHold | TicketStatus::Solved
                            ) =>
                        {
                            TicketStatus::Open
                        }
                        Beat::Close => TicketStatus::Closed,
                        _ => current,
                    };
                }
                assert_eq!(current, status, "{messages} messages: {plan:?}");
            }
        }
    }
}
