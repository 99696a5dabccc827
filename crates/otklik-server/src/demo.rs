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

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use otklik_app::App;
use otklik_app::auth::NewAgentInput;
use otklik_app::customers::CreateCustomerInput;
use otklik_app::tickets::{AddMessageInput, AuthorKind, CreateTicketInput, CustomerRef};
use otklik_domain::agent::{Agent, Role, Team};
use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::clock::Clock;
use otklik_domain::customer::{Customer, Identity, IdentityKind, IdentityValue};
use otklik_domain::ids::{CustomerId, IdentityId, MessageId, TeamId, TicketId};
use otklik_domain::message::{Author, Message, MessageVisibility};
use otklik_domain::permission::Principal;
use otklik_domain::ticket::{Channel, NewTicket, Priority, TicketPatch, TicketStatus};
use otklik_store::{Backend, Mutation, UnitOfWork};
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

// ---------------------------------------------------------------------------------------------
// People

const RU_MALE: &[(&str, &str)] = &[
    ("Иван", "ivan"),
    ("Алексей", "alexey"),
    ("Дмитрий", "dmitry"),
    ("Сергей", "sergey"),
    ("Андрей", "andrey"),
    ("Михаил", "mikhail"),
    ("Никита", "nikita"),
    ("Артём", "artem"),
    ("Павел", "pavel"),
    ("Егор", "egor"),
    ("Максим", "maxim"),
    ("Кирилл", "kirill"),
    ("Роман", "roman"),
    ("Олег", "oleg"),
    ("Тимур", "timur"),
    ("Георгий", "georgy"),
];

const RU_FEMALE: &[(&str, &str)] = &[
    ("Анна", "anna"),
    ("Мария", "maria"),
    ("Екатерина", "ekaterina"),
    ("Ольга", "olga"),
    ("Наталья", "natalya"),
    ("Елена", "elena"),
    ("Татьяна", "tatiana"),
    ("Юлия", "yulia"),
    ("Дарья", "darya"),
    ("Алина", "alina"),
    ("Ксения", "ksenia"),
    ("Виктория", "victoria"),
    ("Полина", "polina"),
    ("Светлана", "svetlana"),
    ("Софья", "sofya"),
    ("Вероника", "veronika"),
];

/// Masculine forms; feminine ones are derived (Иванов → Иванова, Ковальский → Ковальская).
const RU_SURNAMES: &[(&str, &str)] = &[
    ("Иванов", "ivanov"),
    ("Смирнов", "smirnov"),
    ("Кузнецов", "kuznetsov"),
    ("Попов", "popov"),
    ("Васильев", "vasiliev"),
    ("Петров", "petrov"),
    ("Соколов", "sokolov"),
    ("Михайлов", "mikhailov"),
    ("Новиков", "novikov"),
    ("Фёдоров", "fedorov"),
    ("Морозов", "morozov"),
    ("Волков", "volkov"),
    ("Алексеев", "alekseev"),
    ("Лебедев", "lebedev"),
    ("Семёнов", "semenov"),
    ("Егоров", "egorov"),
    ("Павлов", "pavlov"),
    ("Козлов", "kozlov"),
    ("Степанов", "stepanov"),
    ("Николаев", "nikolaev"),
    ("Орлов", "orlov"),
    ("Зайцев", "zaitsev"),
    ("Белов", "belov"),
    ("Гусев", "gusev"),
    ("Титов", "titov"),
    ("Ильин", "ilyin"),
    ("Кравченко", "kravchenko"),
    ("Шевченко", "shevchenko"),
    ("Ковальский", "kovalsky"),
    ("Чернов", "chernov"),
];

const EN_FIRST: &[&str] = &[
    "James",
    "Emily",
    "Oliver",
    "Sophie",
    "Michael",
    "Sarah",
    "Daniel",
    "Emma",
    "Thomas",
    "Olivia",
    "Lucas",
    "Hannah",
    "Jack",
    "Charlotte",
    "David",
    "Laura",
    "Mark",
    "Chloe",
    "Ryan",
    "Grace",
];

const EN_LAST: &[&str] = &[
    "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Miller", "Clarke",
    "Walker", "Wright", "Green", "Hall", "Baker", "Murphy", "Becker", "Fischer", "Novak",
    "Kowalski", "Andersen",
];

#[derive(Debug, Clone)]
struct Person {
    full: String,
    first: String,
    latin_first: String,
    latin_last: String,
    english: bool,
}

fn feminine(surname: &str, latin: &str) -> (String, String) {
    if let Some(stem) = surname.strip_suffix("ский") {
        let latin_stem = latin.strip_suffix("sky").unwrap_or(latin);
        return (format!("{stem}ская"), format!("{latin_stem}skaya"));
    }
    if surname.ends_with("ов")
        || surname.ends_with("ев")
        || surname.ends_with("ёв")
        || surname.ends_with("ин")
    {
        return (format!("{surname}а"), format!("{latin}a"));
    }
    (surname.to_owned(), latin.to_owned())
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, weight)| weight).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for &(item, weight) in items {
        if roll < weight {
            return item;
        }
        roll -= weight;
    }
    items[items.len() - 1].0
}

fn person(rng: &mut StdRng, english: bool) -> Person {
    if english {
        let first = *pick(rng, EN_FIRST);
        let last = *pick(rng, EN_LAST);
        return Person {
            full: format!("{first} {last}"),
            first: first.to_owned(),
            latin_first: first.to_lowercase(),
            latin_last: last.to_lowercase(),
            english,
        };
    }
    let female = rng.random_bool(0.55);
    let &(first, latin_first) = pick(rng, if female { RU_FEMALE } else { RU_MALE });
    let &(surname, latin_surname) = pick(rng, RU_SURNAMES);
    let (surname, latin_surname) = if female {
        feminine(surname, latin_surname)
    } else {
        (surname.to_owned(), latin_surname.to_owned())
    };
    Person {
        full: format!("{first} {surname}"),
        first: first.to_owned(),
        latin_first: latin_first.to_owned(),
        latin_last: latin_surname,
        english,
    }
}

const RU_MAIL_DOMAINS: &[&str] = &[
    "mail.ru",
    "yandex.ru",
    "gmail.com",
    "bk.ru",
    "inbox.ru",
    "rambler.ru",
    "ya.ru",
];
const EN_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "icloud.com",
    "proton.me",
    "gmx.de",
];

/// Marketplaces: identity provider, "on …" in Russian, English name, tag.
const MARKETPLACES: &[(&str, &str, &str, &str)] = &[
    ("ozon", "на Ozon", "Ozon", "ozon"),
    (
        "wildberries",
        "на Wildberries",
        "Wildberries",
        "wildberries",
    ),
    (
        "yandex_market",
        "на Яндекс Маркете",
        "Yandex Market",
        "яндекс_маркет",
    ),
];

fn identity(
    kind: IdentityKind,
    provider: Option<&str>,
    value: &str,
) -> anyhow::Result<IdentityValue> {
    IdentityValue::parse(kind, provider, value)
        .with_context(|| format!("the demo made an invalid {kind} identity {value:?}"))
}

/// Makes identities that are unique within one run of the use-case path. Their shapes never
/// collide with the batched path's (which end in `.<number>` or use other prefixes).
#[derive(Default)]
struct IdentityFactory {
    used: HashSet<(IdentityKind, String, String)>,
}

impl IdentityFactory {
    fn claim(&mut self, value: IdentityValue) -> Option<IdentityValue> {
        let key = (value.kind, value.provider.clone(), value.value.clone());
        self.used.insert(key).then_some(value)
    }

    fn email(&mut self, rng: &mut StdRng, who: &Person) -> anyhow::Result<IdentityValue> {
        let (first, last) = (&who.latin_first, &who.latin_last);
        let domain = *pick(
            rng,
            if who.english {
                EN_MAIL_DOMAINS
            } else {
                RU_MAIL_DOMAINS
            },
        );
        let initial = first.chars().next().unwrap_or('x');
        let local = match rng.random_range(0..5) {
            0 => format!("{first}.{last}"),
            1 => format!("{first}{last}{}", rng.random_range(70..=99)),
            2 => format!("{first}_{last}"),
            3 => format!("{initial}.{last}"),
            _ => format!("{last}.{first}{}", rng.random_range(1..=30)),
        };
        for attempt in 0..50 {
            let local = if attempt == 0 {
                local.clone()
            } else {
                format!("{local}{}", rng.random_range(100..1000))
            };
            if let Some(value) = self.claim(identity(
                IdentityKind::Email,
                None,
                &format!("{local}@{domain}"),
            )?) {
                return Ok(value);
            }
        }
        anyhow::bail!("could not make a unique demo e-mail for {}", who.full)
    }

    fn phone(&mut self, rng: &mut StdRng, english: bool) -> anyhow::Result<IdentityValue> {
        for _ in 0..50 {
            let raw = if english {
                match rng.random_range(0..4) {
                    0 => format!(
                        "+44 7{} {:06}",
                        rng.random_range(100..1000),
                        rng.random_range(0..1_000_000)
                    ),
                    1 => format!(
                        "+49 15{} {:07}",
                        rng.random_range(1..10),
                        rng.random_range(0..10_000_000)
                    ),
                    2 => format!(
                        "+374 9{} {:06}",
                        rng.random_range(1..10),
                        rng.random_range(0..1_000_000)
                    ),
                    _ => format!(
                        "+7 70{} {:07}",
                        rng.random_range(0..10),
                        rng.random_range(0..10_000_000)
                    ),
                }
            } else {
                // 96x is left to the batched path.
                let code = *pick(
                    rng,
                    &[903, 905, 909, 915, 916, 921, 926, 977, 985, 999, 912, 951],
                );
                let (a, b, c) = (
                    rng.random_range(0..1000),
                    rng.random_range(0..100),
                    rng.random_range(0..100),
                );
                if rng.random_bool(0.3) {
                    format!("8 ({code}) {a:03}-{b:02}-{c:02}")
                } else {
                    format!("+7 {code} {a:03}-{b:02}-{c:02}")
                }
            };
            if let Some(value) = self.claim(identity(IdentityKind::Phone, None, &raw)?) {
                return Ok(value);
            }
        }
        anyhow::bail!("could not make a unique demo phone number")
    }

    fn messenger(&mut self, rng: &mut StdRng, english: bool) -> anyhow::Result<IdentityValue> {
        let provider = if english && rng.random_bool(0.4) {
            "whatsapp"
        } else {
            "telegram"
        };
        for _ in 0..50 {
            let value = rng.random_range(100_000_000u64..8_000_000_000).to_string();
            if let Some(value) =
                self.claim(identity(IdentityKind::Messenger, Some(provider), &value)?)
            {
                return Ok(value);
            }
        }
        anyhow::bail!("could not make a unique demo messenger id")
    }

    fn marketplace(&mut self, rng: &mut StdRng) -> anyhow::Result<IdentityValue> {
        let (provider, ..) = *pick(rng, MARKETPLACES);
        for _ in 0..50 {
            let value = rng.random_range(10_000_000u64..100_000_000).to_string();
            if let Some(value) = self.claim(identity(
                IdentityKind::MarketplaceBuyer,
                Some(provider),
                &value,
            )?) {
                return Ok(value);
            }
        }
        anyhow::bail!("could not make a unique demo marketplace buyer id")
    }

    fn chat(&mut self, rng: &mut StdRng) -> anyhow::Result<IdentityValue> {
        for _ in 0..50 {
            let value = format!("v-{:08x}", rng.random::<u32>());
            if let Some(value) = self.claim(identity(IdentityKind::ChatVisitor, None, &value)?) {
                return Ok(value);
            }
        }
        anyhow::bail!("could not make a unique demo chat visitor id")
    }

    /// An identity a customer writing on `channel` would have.
    fn for_channel(
        &mut self,
        rng: &mut StdRng,
        channel: Channel,
        who: &Person,
    ) -> anyhow::Result<IdentityValue> {
        match identity_kind_for(channel) {
            IdentityKind::Phone => self.phone(rng, who.english),
            IdentityKind::ChatVisitor => self.chat(rng),
            IdentityKind::Messenger => self.messenger(rng, who.english),
            IdentityKind::MarketplaceBuyer => self.marketplace(rng),
            IdentityKind::Email => self.email(rng, who),
        }
    }

    /// A customer's identities: often several (e-mail, phone, Telegram, a marketplace account).
    fn profile(&mut self, rng: &mut StdRng, who: &Person) -> anyhow::Result<Vec<IdentityValue>> {
        let english = who.english;
        let mut identities = Vec::new();
        if rng.random_bool(if english { 0.95 } else { 0.85 }) {
            identities.push(self.email(rng, who)?);
        }
        if rng.random_bool(if english { 0.3 } else { 0.55 }) {
            identities.push(self.phone(rng, english)?);
        }
        if rng.random_bool(if english { 0.2 } else { 0.3 }) {
            identities.push(self.messenger(rng, english)?);
        }
        if rng.random_bool(if english { 0.05 } else { 0.25 }) {
            identities.push(self.marketplace(rng)?);
        }
        if rng.random_bool(0.15) || identities.is_empty() {
            identities.push(self.chat(rng)?);
        }
        Ok(identities)
    }
}

/// The identity a channel identifies its customers by.
fn identity_kind_for(channel: Channel) -> IdentityKind {
    match channel {
        Channel::Email | Channel::WebForm | Channel::Api => IdentityKind::Email,
        Channel::Chat => IdentityKind::ChatVisitor,
        Channel::Phone => IdentityKind::Phone,
        Channel::Messenger => IdentityKind::Messenger,
        Channel::Marketplace => IdentityKind::MarketplaceBuyer,
    }
}

/// Whether a customer with identities of `kinds` can write on `channel`.
fn reachable_on(kinds: &[IdentityKind], channel: Channel) -> bool {
    channel == Channel::Api || kinds.contains(&identity_kind_for(channel))
}

const CHANNEL_WEIGHTS: &[(Channel, u32)] = &[
    (Channel::Email, 30),
    (Channel::Chat, 16),
    (Channel::WebForm, 11),
    (Channel::Phone, 10),
    (Channel::Messenger, 14),
    (Channel::Marketplace, 12),
    (Channel::Api, 7),
];

// ---------------------------------------------------------------------------------------------
// What customers write about

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Goods {
    Clothes,
    Shoes,
    Electronics,
}

struct Product {
    ru: &'static str,
    en: &'static str,
    goods: Goods,
    /// Price range in thousands of roubles.
    price: (u32, u32),
}

const PRODUCTS: &[Product] = &[
    Product {
        ru: "кроссовки Nike Air Zoom Pegasus 40",
        en: "Nike Air Zoom Pegasus 40 running shoes",
        goods: Goods::Shoes,
        price: (9, 15),
    },
    Product {
        ru: "ботинки Timberland 6-Inch Premium",
        en: "Timberland 6-Inch Premium boots",
        goods: Goods::Shoes,
        price: (16, 22),
    },
    Product {
        ru: "кеды Converse Chuck 70",
        en: "Converse Chuck 70 sneakers",
        goods: Goods::Shoes,
        price: (7, 10),
    },
    Product {
        ru: "кроссовки New Balance 574",
        en: "New Balance 574 sneakers",
        goods: Goods::Shoes,
        price: (8, 12),
    },
    Product {
        ru: "пуховик The North Face Nuptse",
        en: "The North Face Nuptse down jacket",
        goods: Goods::Clothes,
        price: (28, 37),
    },
    Product {
        ru: "джинсы Levi's 501",
        en: "Levi's 501 jeans",
        goods: Goods::Clothes,
        price: (6, 9),
    },
    Product {
        ru: "платье миди из вискозы",
        en: "viscose midi dress",
        goods: Goods::Clothes,
        price: (3, 6),
    },
    Product {
        ru: "худи оверсайз из хлопка",
        en: "oversized cotton hoodie",
        goods: Goods::Clothes,
        price: (3, 5),
    },
    Product {
        ru: "ветровка Columbia",
        en: "Columbia windbreaker",
        goods: Goods::Clothes,
        price: (8, 12),
    },
    Product {
        ru: "наушники Sony WH-1000XM5",
        en: "Sony WH-1000XM5 headphones",
        goods: Goods::Electronics,
        price: (28, 35),
    },
    Product {
        ru: "смартфон Xiaomi Redmi Note 13 Pro 256 ГБ",
        en: "Xiaomi Redmi Note 13 Pro 256 GB",
        goods: Goods::Electronics,
        price: (25, 32),
    },
    Product {
        ru: "умные часы Huawei Watch GT 4",
        en: "Huawei Watch GT 4 smartwatch",
        goods: Goods::Electronics,
        price: (18, 23),
    },
    Product {
        ru: "планшет Samsung Galaxy Tab S9 FE",
        en: "Samsung Galaxy Tab S9 FE tablet",
        goods: Goods::Electronics,
        price: (40, 47),
    },
    Product {
        ru: "пауэрбанк Anker 20000 мАч",
        en: "Anker 20000 mAh power bank",
        goods: Goods::Electronics,
        price: (3, 5),
    },
];

struct Carrier {
    ru: &'static str,
    en: &'static str,
    tag: &'static str,
}

const RU_CARRIERS: &[Carrier] = &[
    Carrier {
        ru: "СДЭК",
        en: "CDEK",
        tag: "сдэк",
    },
    Carrier {
        ru: "Почта России",
        en: "Russian Post",
        tag: "почта_россии",
    },
    Carrier {
        ru: "Boxberry",
        en: "Boxberry",
        tag: "boxberry",
    },
];

const ABROAD_CARRIERS: &[Carrier] = &[
    Carrier {
        ru: "DHL Express",
        en: "DHL Express",
        tag: "dhl",
    },
    Carrier {
        ru: "СДЭК",
        en: "CDEK",
        tag: "сдэк",
    },
];

const RU_CITIES: &[&str] = &[
    "Москва",
    "Санкт-Петербург",
    "Казань",
    "Новосибирск",
    "Екатеринбург",
    "Нижний Новгород",
    "Краснодар",
    "Самара",
    "Владивосток",
    "Калининград",
];
const EN_CITIES: &[&str] = &[
    "Almaty", "Yerevan", "Tbilisi", "Belgrade", "Limassol", "Dubai", "Berlin", "Tashkent",
];
const RU_STREETS: &[&str] = &[
    "ул. Ленина",
    "ул. Гагарина",
    "ул. Пушкина",
    "Садовая ул.",
    "пр-т Мира",
    "Советская ул.",
    "ул. Молодёжная",
];
const EN_STREETS: &[&str] = &[
    "Abay Avenue",
    "Mashtots Avenue",
    "Rustaveli Avenue",
    "Main Street",
    "Park Lane",
    "Seaside Road",
];
const PROMO_CODES: &[&str] = &[
    "VESNA15",
    "WELCOME500",
    "SALE20",
    "BLACKFRIDAY",
    "OSEN10",
    "SNEAKERS7",
];
const CLOTHES_SIZES: &[&str] = &["XS", "S", "M", "L", "XL", "XXL"];
const RU_MONTHS: &[&str] = &[
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
];
const EN_MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    WhereIsOrder,
    DeliveryDelayed,
    ReturnSize,
    RefundNotReceived,
    PaymentFailedTwice,
    WrongItem,
    Warranty,
    PromoCode,
    MarketplaceQuestion,
}

const KIND_WEIGHTS: &[(Kind, u32)] = &[
    (Kind::WhereIsOrder, 20),
    (Kind::DeliveryDelayed, 12),
    (Kind::ReturnSize, 15),
    (Kind::RefundNotReceived, 10),
    (Kind::PaymentFailedTwice, 8),
    (Kind::WrongItem, 8),
    (Kind::Warranty, 9),
    (Kind::PromoCode, 8),
];

const MARKETPLACE_KIND_WEIGHTS: &[(Kind, u32)] = &[
    (Kind::MarketplaceQuestion, 50),
    (Kind::WhereIsOrder, 20),
    (Kind::ReturnSize, 15),
    (Kind::WrongItem, 15),
];

impl Kind {
    fn team(self) -> Option<TeamKey> {
        match self {
            Kind::WhereIsOrder | Kind::DeliveryDelayed => Some(TeamKey::Delivery),
            Kind::ReturnSize | Kind::WrongItem | Kind::Warranty => Some(TeamKey::Returns),
            Kind::RefundNotReceived | Kind::PaymentFailedTwice | Kind::PromoCode => {
                Some(TeamKey::Payments)
            }
            Kind::MarketplaceQuestion => None,
        }
    }

    fn tags(self) -> &'static [&'static str] {
        match self {
            Kind::WhereIsOrder => &["доставка"],
            Kind::DeliveryDelayed => &["доставка", "задержка"],
            Kind::ReturnSize => &["возврат", "размер"],
            Kind::RefundNotReceived => &["возврат", "оплата", "возврат_денег"],
            Kind::PaymentFailedTwice => &["оплата", "двойное_списание"],
            Kind::WrongItem => &["возврат", "пересорт"],
            Kind::Warranty => &["брак", "гарантия"],
            Kind::PromoCode => &["промокод"],
            Kind::MarketplaceQuestion => &["маркетплейс", "вопрос_о_товаре"],
        }
    }

    fn priority(self, rng: &mut StdRng) -> Priority {
        let weights: &[(Priority, u32)] = match self {
            Kind::PaymentFailedTwice => &[
                (Priority::High, 70),
                (Priority::Urgent, 20),
                (Priority::Normal, 10),
            ],
            Kind::DeliveryDelayed | Kind::RefundNotReceived => &[
                (Priority::Normal, 55),
                (Priority::High, 40),
                (Priority::Urgent, 5),
            ],
            Kind::PromoCode | Kind::MarketplaceQuestion => {
                &[(Priority::Low, 60), (Priority::Normal, 40)]
            }
            _ => &[
                (Priority::Low, 15),
                (Priority::Normal, 70),
                (Priority::High, 15),
            ],
        };
        weighted(rng, weights)
    }

    fn goods(self) -> &'static [Goods] {
        match self {
            Kind::ReturnSize | Kind::WrongItem | Kind::MarketplaceQuestion => {
                &[Goods::Clothes, Goods::Shoes]
            }
            Kind::Warranty => &[Goods::Electronics],
            _ => &[Goods::Clothes, Goods::Shoes, Goods::Electronics],
        }
    }
}

/// The particulars of one customer's story: order, goods, money, parcel.
struct Ctx {
    english: bool,
    order: u32,
    product: &'static Product,
    other: &'static Product,
    size: String,
    new_size: String,
    amount: String,
    carrier: &'static Carrier,
    tracking: String,
    days: u32,
    deadline: String,
    city: &'static str,
    address: String,
    card4: u32,
    arn: String,
    serial: String,
    claim: u32,
    promo: &'static str,
    marketplace: (&'static str, &'static str, &'static str, &'static str),
}

/// Formats roubles the Russian way: `12 990 ₽` (with no-break spaces).
fn rub(amount: u32) -> String {
    let digits = amount.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push('\u{a0}');
        }
        grouped.push(digit);
    }
    format!("{grouped}\u{a0}₽")
}

impl Ctx {
    fn new(
        rng: &mut StdRng,
        kind: Kind,
        english: bool,
        created_at: Timestamp,
        marketplace_index: Option<usize>,
    ) -> Ctx {
        let goods = kind.goods();
        let candidates: Vec<&'static Product> = PRODUCTS
            .iter()
            .filter(|product| goods.contains(&product.goods))
            .collect();
        let product = candidates[rng.random_range(0..candidates.len())];
        let others: Vec<&'static Product> = PRODUCTS
            .iter()
            .filter(|other| other.goods == product.goods && other.ru != product.ru)
            .collect();
        let other = others
            .get(rng.random_range(0..others.len().max(1)))
            .copied()
            .unwrap_or(product);
        let (size, new_size) = match product.goods {
            Goods::Shoes => {
                let size = rng.random_range(36..=45);
                (size.to_string(), (size + 1).to_string())
            }
            Goods::Clothes => {
                let index = rng.random_range(0..CLOTHES_SIZES.len() - 1);
                (
                    CLOTHES_SIZES[index].to_owned(),
                    CLOTHES_SIZES[index + 1].to_owned(),
                )
            }
            Goods::Electronics => (String::new(), String::new()),
        };
        let price = rng.random_range(product.price.0..=product.price.1) * 1000 - 10;
        let extra = if rng.random_bool(0.3) {
            rng.random_range(1..=5) * 1000 - 10
        } else {
            0
        };
        let carrier = pick(
            rng,
            if english {
                ABROAD_CARRIERS
            } else {
                RU_CARRIERS
            },
        );
        let tracking = match carrier.tag {
            "почта_россии" => {
                format!("8{:013}", rng.random_range(0..10_000_000_000_000u64))
            }
            "boxberry" => format!("BBR{:010}", rng.random_range(0..10_000_000_000u64)),
            _ => format!("{:010}", rng.random_range(1_000_000_000..10_000_000_000u64)),
        };
        let days = rng.random_range(3..=12);
        let promised = ago(created_at, SignedDuration::from_hours(24 * i64::from(days)))
            .to_zoned(TimeZone::UTC);
        let month = usize::try_from(promised.month() - 1).unwrap_or(0).min(11);
        let deadline = if english {
            format!("{} {}", EN_MONTHS[month], promised.day())
        } else {
            format!("{} {}", promised.day(), RU_MONTHS[month])
        };
        let city = *pick(rng, if english { EN_CITIES } else { RU_CITIES });
        let address = if english {
            format!(
                "{} {}, apt {}, {city}",
                pick(rng, EN_STREETS),
                rng.random_range(1..200),
                rng.random_range(1..120)
            )
        } else {
            format!(
                "г. {city}, {}, д. {}, кв. {}",
                pick(rng, RU_STREETS),
                rng.random_range(1..120),
                rng.random_range(1..300)
            )
        };
        let marketplace = MARKETPLACES
            [marketplace_index.unwrap_or_else(|| rng.random_range(0..MARKETPLACES.len()))];
        Ctx {
            english,
            order: rng.random_range(400_000..500_000),
            product,
            other,
            size,
            new_size,
            amount: rub(price + extra),
            carrier,
            tracking,
            days,
            deadline,
            city,
            address,
            card4: rng.random_range(1000..10_000),
            arn: format!(
                "74{:011}{:010}",
                rng.random_range(0..100_000_000_000u64),
                rng.random_range(0..10_000_000_000u64)
            ),
            serial: format!("SN{:010X}", rng.random_range(0..0xFF_FFFF_FFFFu64)),
            claim: rng.random_range(1_000_000..10_000_000),
            promo: PROMO_CODES[rng.random_range(0..PROMO_CODES.len())],
            marketplace,
        }
    }

    fn product(&self) -> &'static str {
        if self.english {
            self.product.en
        } else {
            self.product.ru
        }
    }

    fn carrier(&self) -> &'static str {
        if self.english {
            self.carrier.en
        } else {
            self.carrier.ru
        }
    }
}

/// Everything that can be said in one story; the flow picks what its status needs.
struct Script {
    subject: String,
    /// The customer's first message.
    first: String,
    /// An agent's question back (the ticket waits for the customer).
    ask: String,
    /// The customer's answer to it.
    answer: String,
    /// An agent's "working on it".
    working: String,
    /// An agent's "waiting for a third party".
    hold: String,
    /// The answer that solves it.
    resolution: String,
    /// An internal note.
    note: String,
    /// The customer chasing.
    followup: String,
}

fn script(kind: Kind, c: &Ctx, rng: &mut StdRng) -> Script {
    let (order, product, carrier, tracking) = (c.order, c.product(), c.carrier(), &c.tracking);
    let (size, new_size, amount, days, city) = (&c.size, &c.new_size, &c.amount, c.days, c.city);
    let (ru_market, en_market) = (c.marketplace.1, c.marketplace.2);
    let electronics = c.product.goods == Goods::Electronics;
    let variant = rng.random_range(0..3usize);
    let s = |texts: [String; 3]| texts[variant].clone();
    if !c.english {
        return match kind {
            Kind::WhereIsOrder => Script {
                subject: s([format!("Где мой заказ №{order}?"), format!("Заказ №{order} до сих пор не пришёл"), format!("Статус заказа №{order}")]),
                first: format!(
                    "Заказ №{order} ({product}) оформлен {days} дн. назад, а в личном кабинете уже несколько дней статус «Передан в доставку». \
                     Трек-номер {tracking} на сайте {carrier} не отслеживается. Подскажите, где сейчас посылка?"
                ),
                ask: format!("Уточните, пожалуйста, адрес доставки и удобный телефон для курьера — передам запрос в {carrier}."),
                answer: format!("Адрес: {}. Телефон тот же, что в заказе.", c.address),
                working: format!("Проверяю информацию по отправлению {tracking} у {carrier}, вернусь с ответом в течение дня."),
                hold: format!(
                    "Мы направили запрос в {carrier} по отправлению {tracking}. Обычно ответ приходит в течение двух рабочих дней — \
                     как только он будет, сразу напишем вам."
                ),
                resolution: format!(
                    "Посылка по заказу №{order} прибыла в пункт выдачи {carrier} в г. {city}, трек-номер {tracking}. \
                     Срок хранения — 7 дней. Приятных покупок!"
                ),
                note: format!("Трек {tracking} завис на сортировочном центре, в {carrier} открыта претензия №{}.", c.claim),
                followup: format!("Есть новости по заказу №{order}?"),
            },
            Kind::DeliveryDelayed => Script {
                subject: s([format!("Задерживается доставка заказа №{order}"), format!("Курьер не приехал, заказ №{order}"), format!("Сорван срок доставки заказа №{order}")]),
                first: format!(
                    "По заказу №{order} доставку обещали до {}, прошло уже {days} дн. сверх срока. Покупка нужна к выходным, \
                     иначе придётся отменять заказ. Когда ждать доставку?",
                    c.deadline
                ),
                ask: "Приносим извинения за задержку. Подскажите, пожалуйста, удобный интервал доставки — согласуем повторный выезд курьера.".into(),
                answer: "Удобно завтра с 18:00 до 22:00.".into(),
                working: "Приносим извинения за задержку. Уже разбираемся со службой доставки.".into(),
                hold: format!(
                    "Отправление {tracking} задержано на сортировочном центре {carrier}. Мы поставили его на контроль и вернёмся \
                     с новостями, как только оно поедет дальше."
                ),
                resolution: format!(
                    "Курьер доставит заказ №{order} завтра с 18:00 до 22:00. За задержку мы начислили вам 500 бонусных баллов — \
                     они уже на счёте."
                ),
                note: format!("Компенсация 500 баллов согласована со старшим смены. Причина задержки — перегруз СЦ {carrier}."),
                followup: "Курьер так и не приехал. Что происходит?".into(),
            },
            Kind::ReturnSize => Script {
                subject: s([format!("Не подошёл размер, заказ №{order}"), format!("Обмен размера по заказу №{order}"), "Возврат: не подошёл размер".into()]),
                first: format!(
                    "Пришли {product} размера {size} (заказ №{order}) — маломерят, нужен {new_size}. Можно обменять или оформить \
                     возврат? Бирки на месте, товар не носили."
                ),
                ask: "Конечно, обменяем. Пришлите, пожалуйста, фото товара с бирками и выберите способ возврата: курьер или пункт выдачи.".into(),
                answer: "Фото с бирками отправляю. Удобнее через пункт выдачи.".into(),
                working: format!("Проверяем наличие размера {new_size} на складе."),
                hold: format!(
                    "Размер {new_size} сейчас едет на склад от поставщика, поступление ожидаем через 3–5 дней. Как только он \
                     появится, отправим обмен."
                ),
                resolution: format!(
                    "Возврат по заказу №{order} оформлен. Сдайте товар в любой пункт выдачи по коду возврата R-{order}; \
                     размер {new_size} отправим сразу после приёмки."
                ),
                note: format!("Размер {new_size} есть на складе в Подольске, резерв под обмен сделан."),
                followup: "Подскажите, обмен уже оформлен?".into(),
            },
            Kind::RefundNotReceived => Script {
                subject: s([format!("Не пришли деньги за возврат, заказ №{order}"), format!("Возврат средств по заказу №{order}"), format!("Где мои {amount}?")]),
                first: format!(
                    "Возврат по заказу №{order} сдан в пункт выдачи {days} дн. назад, но {amount} на карту до сих пор не поступили. \
                     Когда ждать деньги?"
                ),
                ask: "Подскажите, пожалуйста, последние 4 цифры карты, с которой была оплата, — проверим статус возврата в банке.".into(),
                answer: format!("Карта заканчивается на {}.", c.card4),
                working: "Запросили статус возврата в платёжном сервисе.".into(),
                hold: format!(
                    "Возврат {amount} отправлен в банк, ARN {}. Банк зачисляет средства до 10 рабочих дней — мы проконтролируем \
                     поступление.",
                    c.arn
                ),
                resolution: format!(
                    "Возврат {amount} по заказу №{order} проведён, ARN {}. Деньги поступят на карту в течение 1–3 рабочих дней \
                     в зависимости от банка.",
                    c.arn
                ),
                note: "Возврат завис в статусе «на проверке» у эквайера, эскалировано в финотдел.".into(),
                followup: "Деньги так и не пришли.".into(),
            },
            Kind::PaymentFailedTwice => Script {
                subject: s([format!("Деньги списались дважды, заказ №{order}"), format!("Двойное списание при оплате заказа №{order}"), "Оплата не прошла, а деньги списаны".into()]),
                first: format!(
                    "При оплате заказа №{order} страница выдала ошибку, оплата повторилась — и с карты списали {amount} два раза. \
                     А заказ в личном кабинете до сих пор «Ожидает оплаты». Верните, пожалуйста, лишнее списание."
                ),
                ask: "Пришлите, пожалуйста, скриншот выписки из банка с двумя списаниями — передадим в платёжный сервис.".into(),
                answer: format!("Скриншот выписки отправляю, оба списания по {amount} от сегодняшнего числа."),
                working: format!("Проверяем транзакции по заказу №{order} в платёжном сервисе."),
                hold: format!(
                    "Второе списание {amount} — это блокировка средств банком (холд). Мы отправили запрос на её отмену; банк обычно \
                     снимает холд в течение трёх рабочих дней."
                ),
                resolution: format!(
                    "Заказ №{order} оплачен, второе списание {amount} отменено — деньги вернутся на карту в течение 1–3 рабочих дней."
                ),
                note: "В платёжном шлюзе две транзакции, вторая в статусе AUTHORIZED — отправлен запрос на reversal.".into(),
                followup: "Деньги всё ещё заблокированы.".into(),
            },
            Kind::WrongItem => Script {
                subject: s([format!("Прислали не тот товар, заказ №{order}"), format!("Пересорт в заказе №{order}"), "В посылке чужой товар".into()]),
                first: format!(
                    "В заказе №{order} вместо «{product}», размер {size}, в посылке лежит другой товар — {}. Упаковка была целая. \
                     Что делать?",
                    c.other.ru
                ),
                ask: "Пришлите, пожалуйста, фото полученного товара и этикетки на коробке — оформим замену без похода в пункт выдачи.".into(),
                answer: "Фото товара и этикетки отправляю.".into(),
                working: "Проверяем со складом, как произошла ошибка.".into(),
                hold: "Передали фото на склад для проверки пересорта. Ответ склада ждём в течение двух рабочих дней.".into(),
                resolution: format!(
                    "Приносим извинения за ошибку склада! Правильный товар — {product}, размер {size} — отправлен курьером, \
                     трек {tracking}. Полученный по ошибке товар курьер заберёт при доставке."
                ),
                note: "Пересорт подтверждён складом: при комплектации перепутаны ячейки.".into(),
                followup: "Когда пришлёте правильный товар?".into(),
            },
            Kind::Warranty => Script {
                subject: s([format!("Брак: {product}, заказ №{order}"), format!("Гарантийный случай — {product}"), format!("Гарантия по заказу №{order}")]),
                first: format!(
                    "Товар из заказа №{order} — {product} — через {} дн. после покупки перестал заряжаться. Это гарантийный случай?",
                    days * 3
                ),
                ask: "Сочувствуем! Пришлите, пожалуйста, видео с неисправностью и фото серийного номера — оформим гарантийное обращение.".into(),
                answer: format!("Видео и фото отправляю, серийный номер {}.", c.serial),
                working: "Передали информацию в сервисный центр, ждём заключение.".into(),
                hold: "Товар принят в авторизованный сервисный центр на диагностику. Срок — до 20 дней, мы будем держать вас в курсе.".into(),
                resolution: format!(
                    "Сервисный центр подтвердил заводской брак. Мы отправили вам замену, трек {tracking}. Если удобнее вернуть \
                     {amount}, просто ответьте на это сообщение."
                ),
                note: format!("Серийный {} — из партии с известной проблемой контроллера заряда, замена без диагностики согласована.", c.serial),
                followup: "Есть новости по гарантии?".into(),
            },
            Kind::PromoCode => Script {
                subject: s([format!("Не работает промокод {}", c.promo), format!("Промокод {} не применяется", c.promo), "Проблема с промокодом".into()]),
                first: format!(
                    "Пытаюсь применить промокод {} к заказу на {amount}, а сайт пишет «Промокод недействителен». В рассылке было \
                     написано, что он действует до конца месяца.",
                    c.promo
                ),
                ask: "Подскажите, пожалуйста, какие товары в корзине — промокод действует не на все категории.".into(),
                answer: format!("В корзине {product}."),
                working: "Уточняем условия акции у отдела маркетинга.".into(),
                hold: "Уточняем у отдела маркетинга условия акции — ответим в течение дня.".into(),
                resolution: format!(
                    "Промокод {} не распространяется на товары со скидкой, поэтому не применился. Мы начислили вам 500 бонусных \
                     баллов — их можно списать на этот заказ.",
                    c.promo
                ),
                note: format!("Промокод {} в админке ограничен категорией «Новинки», в рассылке об этом ни слова — передано маркетингу.", c.promo),
                followup: "Так что с промокодом?".into(),
            },
            Kind::MarketplaceQuestion => Script {
                subject: s([format!("Вопрос о товаре {ru_market}: {product}"), format!("Вопрос по размеру: {product}"), format!("Будет ли пополнение: {product}?")]),
                first: if electronics {
                    format!("Интересует {product} в вашем магазине {ru_market}. Это глобальная версия? Есть русский язык и официальная гарантия?")
                } else {
                    format!("Смотрю {product} в вашем магазине {ru_market}. Размер соответствует? Обычно ношу {size}. Будет ли пополнение?")
                },
                ask: "Уточните, пожалуйста, ваши параметры (рост и обхват груди или длину стопы) — подберём размер.".into(),
                answer: format!("Рост 178, длина стопы 27 см, обычно ношу {size}."),
                working: "Уточняем у склада информацию о ближайшей поставке.".into(),
                hold: format!("Пополнение ожидаем на следующей неделе — напишем вам, когда товар появится {ru_market}."),
                resolution: format!("Модель соответствует размеру, рекомендуем взять {size}. Товар снова в наличии {ru_market}, можно оформлять заказ."),
                note: format!("Ответ продублирован в вопросы к карточке товара {ru_market}."),
                followup: "Подскажите, пожалуйста, ответ на мой вопрос.".into(),
            },
        };
    }
    match kind {
        Kind::WhereIsOrder => Script {
            subject: s([format!("Where is my order #{order}?"), format!("Order #{order} still not delivered"), format!("Order #{order} status")]),
            first: format!(
                "I ordered the {product} (order #{order}) {days} days ago. The tracking number {tracking} has not been updated for \
                 several days. Could you please check where my parcel is? Delivery address is in {city}."
            ),
            ask: format!("Could you please confirm your delivery address and a phone number for the courier? I will pass it on to {carrier}."),
            answer: format!("Sure: {}. The phone number is the one in my order.", c.address),
            working: format!("I'm checking parcel {tracking} with {carrier} now and will get back to you within a day."),
            hold: format!(
                "We've opened an enquiry with {carrier} about parcel {tracking}. They usually reply within two business days; we'll \
                 update you as soon as we hear back."
            ),
            resolution: format!(
                "Good news: your order #{order} has arrived at the {carrier} pickup point in {city} (tracking {tracking}). It will be \
                 held there for 7 days."
            ),
            note: format!("Parcel {tracking} stuck in customs clearance; claim #{} opened with {carrier}.", c.claim),
            followup: format!("Any news about order #{order}?"),
        },
        Kind::DeliveryDelayed => Script {
            subject: s([format!("Delivery of order #{order} is late"), format!("Courier never came, order #{order}"), format!("Order #{order} is {days} days late")]),
            first: format!(
                "My order #{order} was supposed to arrive by {}, it's now {days} days late. I need it before the weekend, otherwise \
                 I'd rather cancel. When will it be delivered?",
                c.deadline
            ),
            ask: "We're sorry for the delay. Could you tell us a convenient delivery window? We'll book a new courier visit.".into(),
            answer: "Tomorrow between 6 and 10 pm works for me.".into(),
            working: "Sorry about the delay, we're already looking into it with the carrier.".into(),
            hold: format!("Parcel {tracking} is held at the {carrier} sorting centre. We've flagged it and will let you know as soon as it moves."),
            resolution: format!(
                "The courier will deliver order #{order} tomorrow between 6 and 10 pm. We've added 500 bonus points to your account \
                 as an apology."
            ),
            note: format!("500 points compensation approved by the shift lead. Cause: {carrier} sorting centre overload."),
            followup: "The courier still hasn't come. What's going on?".into(),
        },
        Kind::ReturnSize => Script {
            subject: s([format!("Wrong size, order #{order}"), format!("Exchange size for order #{order}"), "Return: the size doesn't fit".into()]),
            first: format!(
                "Size {size} of the {product} from order #{order} is too small, I need {new_size}. Can I exchange or return the item? \
                 Tags are still attached, never worn."
            ),
            ask: "Of course! Please send a photo of the item with its tags and choose how you'd like to return it: courier pickup or a pickup point.".into(),
            answer: "Photo attached. A pickup point is easier for me.".into(),
            working: format!("Checking whether size {new_size} is in stock."),
            hold: format!("Size {new_size} is on its way to our warehouse, expected in 3–5 days. We'll ship your exchange as soon as it arrives."),
            resolution: format!(
                "Your return for order #{order} is registered. Drop the item off at any pickup point with return code R-{order}; \
                 we'll ship size {new_size} as soon as it's received."
            ),
            note: format!("Size {new_size} reserved at the Podolsk warehouse for the exchange."),
            followup: "Has my exchange been processed yet?".into(),
        },
        Kind::RefundNotReceived => Script {
            subject: s([format!("Refund not received for order #{order}"), format!("Where is my refund of {amount}?"), format!("Refund for order #{order}")]),
            first: format!("I returned order #{order} {days} days ago, but the refund of {amount} still hasn't reached my card. When should I expect it?"),
            ask: "Could you tell us the last 4 digits of the card you paid with? We'll check the refund status with the bank.".into(),
            answer: format!("The card ends in {}.", c.card4),
            working: "We've asked the payment provider for the refund status.".into(),
            hold: format!(
                "The refund of {amount} was sent to your bank, ARN {}. Banks can take up to 10 business days; we'll keep an eye on it.",
                c.arn
            ),
            resolution: format!(
                "The refund of {amount} for order #{order} has been processed (ARN {}). It should appear on your card within 1–3 \
                 business days depending on your bank.",
                c.arn
            ),
            note: "Refund stuck in 'review' at the acquirer; escalated to finance.".into(),
            followup: "Still no refund.".into(),
        },
        Kind::PaymentFailedTwice => Script {
            subject: s([format!("Charged twice for order #{order}"), "Payment failed but money was taken".into(), format!("Double charge, order #{order}")]),
            first: format!(
                "When I paid for order #{order} the page showed an error, I tried again and now I've been charged {amount} twice. \
                 The order still says 'Awaiting payment'. Please refund the extra charge."
            ),
            ask: "Could you send a screenshot of your bank statement showing both charges? We'll pass it to the payment provider.".into(),
            answer: format!("Screenshot attached: two charges of {amount} from today."),
            working: format!("Checking the transactions for order #{order} with the payment provider."),
            hold: format!(
                "The second charge of {amount} is a temporary hold by your bank. We've requested its release; banks usually lift it \
                 within three business days."
            ),
            resolution: format!(
                "Order #{order} is paid and the second charge of {amount} has been cancelled; the money will be back on your card \
                 within 1–3 business days."
            ),
            note: "Two transactions in the gateway, the second one AUTHORIZED; reversal requested.".into(),
            followup: "The money is still blocked.".into(),
        },
        Kind::WrongItem => Script {
            subject: s([format!("Wrong item in order #{order}"), "I received someone else's item".into(), format!("Order #{order}: not what I ordered")]),
            first: format!(
                "Instead of the {product} (size {size}) I ordered (order #{order}), the parcel contains a different item: {}. \
                 The packaging was intact. What should I do?",
                c.other.en
            ),
            ask: "Please send a photo of the item you received and the label on the box; we'll arrange a replacement without a trip to a pickup point.".into(),
            answer: "Photos of the item and the label attached.".into(),
            working: "Checking with the warehouse how this happened.".into(),
            hold: "We've sent the photos to the warehouse to confirm the mix-up; they'll reply within two business days.".into(),
            resolution: format!(
                "Sorry for the warehouse mistake! The correct item ({product}, size {size}) has been shipped, tracking {tracking}. \
                 The courier will collect the wrong item on delivery."
            ),
            note: "Mix-up confirmed by the warehouse: bins swapped during picking.".into(),
            followup: "When will you send the correct item?".into(),
        },
        Kind::Warranty => Script {
            subject: s([format!("Warranty claim: {product}"), format!("Defective {product}, order #{order}"), format!("Warranty for order #{order}")]),
            first: format!("The {product} I bought (order #{order}) stopped charging after {} days. Is this covered by the warranty?", days * 3),
            ask: "Sorry to hear that! Please send a short video showing the problem and a photo of the serial number; we'll open a warranty claim.".into(),
            answer: format!("Video and serial number photo attached, serial {}.", c.serial),
            working: "We've passed the details to the service centre and are waiting for their assessment.".into(),
            hold: "The item has been accepted by the authorised service centre for diagnostics. It can take up to 20 days; we'll keep you posted.".into(),
            resolution: format!(
                "The service centre confirmed a manufacturing defect. A replacement has been shipped, tracking {tracking}. If you'd \
                 rather have a refund of {amount}, just reply to this message."
            ),
            note: format!("Serial {} is from a batch with a known charging controller fault; replacement approved without diagnostics.", c.serial),
            followup: "Any news on my warranty claim?".into(),
        },
        Kind::PromoCode => Script {
            subject: s([format!("Promo code {} doesn't work", c.promo), format!("Can't apply promo code {}", c.promo), "Problem with a promo code".into()]),
            first: format!(
                "I'm trying to apply promo code {} to an order of {amount}, but the site says 'Promo code is invalid'. Your newsletter \
                 said it's valid until the end of the month.",
                c.promo
            ),
            ask: "Could you tell us what's in your cart? The code doesn't apply to every category.".into(),
            answer: format!("Just the {product}."),
            working: "Checking the campaign terms with marketing.".into(),
            hold: "We're checking the campaign terms with our marketing team and will reply within a day.".into(),
            resolution: format!(
                "Promo code {} doesn't apply to discounted items, which is why it was rejected. We've added 500 bonus points to your \
                 account that you can use on this order.",
                c.promo
            ),
            note: format!("Code {} is limited to 'New arrivals' in the admin panel; the newsletter didn't say so. Reported to marketing.", c.promo),
            followup: "Any update on the promo code?".into(),
        },
        Kind::MarketplaceQuestion => Script {
            subject: s([format!("{en_market} question: {product}"), format!("Sizing question: {product}"), format!("Restock of the {product}?")]),
            first: if electronics {
                format!("I'm looking at the {product} in your store on {en_market}. Is it the global version with English menus, and is there a warranty?")
            } else {
                format!("I'm looking at the {product} in your store on {en_market}. Does it run true to size? I usually wear {size}. Will there be a restock?")
            },
            ask: "Could you tell us your measurements (height and chest, or foot length)? We'll help you pick a size.".into(),
            answer: format!("Height 182 cm, foot length 27 cm, I usually wear {size}."),
            working: "Checking the next delivery with the warehouse.".into(),
            hold: format!("We expect a restock next week and will message you when it's back on {en_market}."),
            resolution: format!("It runs true to size, we recommend {size}. It's back in stock on {en_market}, you can order now."),
            note: format!("Answer copied to the product Q&A on {en_market}."),
            followup: "Could you please answer my question?".into(),
        },
    }
}

/// The customer's first message as it arrives on `channel`.
fn customer_first_message(rng: &mut StdRng, channel: Channel, who: &Person, body: &str) -> String {
    let english = who.english;
    match channel {
        Channel::Email | Channel::WebForm => {
            let greeting = if english {
                *pick(rng, &["Hello,", "Hi,", "Good afternoon,"])
            } else {
                *pick(rng, &["Здравствуйте!", "Добрый день!", "Добрый вечер."])
            };
            let sign_off = if english {
                "Best regards"
            } else {
                "С уважением"
            };
            format!("{greeting}\n\n{body}\n\n{sign_off},\n{}", who.full)
        }
        Channel::Phone if english => format!("Call to the hotline, the customer says: “{body}”"),
        Channel::Phone => format!("Звонок на горячую линию, клиент сообщает: «{body}»"),
        Channel::Api if english => {
            format!("Sent from the mobile app (iOS 17.5, version 5.12.0)\n\n{body}")
        }
        Channel::Api => {
            format!("Отправлено из мобильного приложения (Android 14, версия 5.12.0)\n\n{body}")
        }
        Channel::Chat | Channel::Messenger | Channel::Marketplace => {
            let greeting = if english {
                "Hi! "
            } else {
                *pick(rng, &["Здравствуйте! ", "Добрый день! ", ""])
            };
            format!("{greeting}{body}")
        }
    }
}

/// An agent's public reply with greeting and signature.
fn agent_reply(english: bool, customer_first: &str, agent_first: &str, body: &str) -> String {
    if english {
        format!("Hello {customer_first},\n\n{body}\n\nBest regards,\n{agent_first}, Customer Care")
    } else {
        format!(
            "Здравствуйте, {customer_first}!\n\n{body}\n\nС уважением,\n{agent_first}, служба заботы о клиентах"
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The life of a ticket

const STATUS_WEIGHTS: &[(TicketStatus, u32)] = &[
    (TicketStatus::New, 14),
    (TicketStatus::Open, 22),
    (TicketStatus::Pending, 14),
    (TicketStatus::OnHold, 7),
    (TicketStatus::Solved, 28),
    (TicketStatus::Closed, 15),
];

/// How long ago a ticket with this final status was opened, in minutes.
fn age_minutes(status: TicketStatus) -> (i64, i64) {
    const HOUR: i64 = 60;
    const DAY: i64 = 24 * HOUR;
    match status {
        TicketStatus::New => (5, 30 * HOUR),
        TicketStatus::Open => (2 * HOUR, 6 * DAY),
        TicketStatus::Pending => (DAY, 8 * DAY),
        TicketStatus::OnHold => (2 * DAY, 12 * DAY),
        TicketStatus::Solved => (DAY, 40 * DAY),
        TicketStatus::Closed => (12 * DAY, 75 * DAY),
    }
}

/// One thing that happens to a ticket after it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Beat {
    /// The supervisor assigns it (and routes it to a team).
    Triage,
    CustomerAnswer,
    CustomerFollowup,
    Note,
    /// A public reply: the question (with `Some(Pending)`), "working on it" (`None`), a hold
    /// notice (`Some(OnHold)`) or the resolution (`Some(Solved)`).
    Reply(Option<TicketStatus>),
    /// The supervisor closes a solved ticket.
    Close,
}

/// The beats after the first message that bring a ticket to `status` with about `messages`
/// messages in total.
fn beats(status: TicketStatus, messages: usize) -> Vec<Beat> {
    use Beat::*;
    use TicketStatus as S;
    let rest = messages.saturating_sub(1);
    let ask = Reply(Some(S::Pending));
    let mut plan = match status {
        S::New => {
            return if rest >= 1 {
                vec![CustomerFollowup]
            } else {
                vec![]
            };
        }
        S::Open => match rest {
            0 => vec![],
            1 => vec![Note],
            2 => vec![ask, CustomerAnswer],
            3 => vec![Note, ask, CustomerAnswer],
            _ => vec![ask, CustomerAnswer, Reply(None), CustomerFollowup],
        },
        S::Pending => match rest {
            0 | 1 => vec![ask],
            2 => vec![Note, ask],
            3 => vec![ask, CustomerAnswer, ask],
            _ => vec![Note, ask, CustomerAnswer, ask],
        },
        S::OnHold => match rest {
            0 | 1 => vec![Reply(Some(S::OnHold))],
            2 => vec![Note, Reply(Some(S::OnHold))],
            3 => vec![ask, CustomerAnswer, Reply(Some(S::OnHold))],
            _ => vec![Note, ask, CustomerAnswer, Reply(Some(S::OnHold))],
        },
        S::Solved | S::Closed => match rest {
            0 | 1 => vec![Reply(Some(S::Solved))],
            2 => vec![Note, Reply(Some(S::Solved))],
            3 => vec![ask, CustomerAnswer, Reply(Some(S::Solved))],
            _ => vec![ask, CustomerAnswer, Note, Reply(Some(S::Solved))],
        },
    };
    plan.insert(0, Triage);
    if status == S::Closed {
        plan.push(Close);
    }
    plan
}

fn beat_delay(rng: &mut StdRng, beat: Beat) -> SignedDuration {
    match beat {
        Beat::Triage => minutes(rng, 3, 120),
        Beat::Note => minutes(rng, 5, 180),
        Beat::Reply(_) => minutes(rng, 10, 360),
        Beat::CustomerAnswer => minutes(rng, 30, 2 * 24 * 60),
        Beat::CustomerFollowup => minutes(rng, 120, 2 * 24 * 60),
        Beat::Close => minutes(rng, 3 * 24 * 60, 7 * 24 * 60),
    }
}

fn message_count(rng: &mut StdRng, status: TicketStatus) -> usize {
    if status == TicketStatus::New {
        return if rng.random_bool(0.75) { 1 } else { 2 };
    }
    weighted(rng, &[(1, 10), (2, 30), (3, 30), (4, 18), (5, 12)])
}

/// A story ready to be told: who writes, about what, and what happens after.
struct Story {
    kind: Kind,
    channel: Channel,
    status: TicketStatus,
    priority: Priority,
    tags: Vec<String>,
    team: Option<TeamKey>,
    subject: String,
    first: String,
    script: Script,
    beats: Vec<Beat>,
}

fn story(
    rng: &mut StdRng,
    channel: Channel,
    status: TicketStatus,
    who: &Person,
    vip: bool,
    marketplace: Option<usize>,
    created_at: Timestamp,
) -> Story {
    let kind = weighted(
        rng,
        if channel == Channel::Marketplace {
            MARKETPLACE_KIND_WEIGHTS
        } else {
            KIND_WEIGHTS
        },
    );
    let ctx = Ctx::new(rng, kind, who.english, created_at, marketplace);
    let script = script(kind, &ctx, rng);
    let mut tags: Vec<String> = kind.tags().iter().map(|tag| (*tag).to_owned()).collect();
    if matches!(kind, Kind::WhereIsOrder | Kind::DeliveryDelayed) {
        tags.push(ctx.carrier.tag.to_owned());
    }
    if channel == Channel::Marketplace {
        tags.push("маркетплейс".to_owned());
        tags.push(ctx.marketplace.3.to_owned());
    }
    if who.english {
        tags.push("international".to_owned());
    }
    let mut priority = kind.priority(rng);
    let mut team = kind.team();
    if vip {
        tags.push("vip".to_owned());
        team = Some(TeamKey::Vip);
        priority = if rng.random_bool(0.3) {
            Priority::Urgent
        } else {
            Priority::High
        };
    }
    // Stored as the use cases store them: sorted, without repeats.
    tags.sort();
    tags.dedup();
    let messages = message_count(rng, status);
    Story {
        kind,
        channel,
        status,
        priority,
        tags,
        team,
        subject: script.subject.clone(),
        first: customer_first_message(rng, channel, who, &script.first),
        script,
        beats: beats(status, messages),
    }
}

/// The marketplace a customer's buyer identity belongs to.
fn marketplace_of(identities: &[IdentityValue]) -> Option<usize> {
    let provider = identities
        .iter()
        .find(|value| value.kind == IdentityKind::MarketplaceBuyer)?;
    MARKETPLACES
        .iter()
        .position(|(name, ..)| *name == provider.provider)
}

// ---------------------------------------------------------------------------------------------
// The use-case path

struct DemoCustomer {
    id: CustomerId,
    person: Person,
    kinds: Vec<IdentityKind>,
    marketplace: Option<usize>,
    vip: bool,
}

enum Requester {
    Existing(usize),
    New {
        person: Person,
        identity: IdentityValue,
    },
}

struct Plan {
    created_at: Timestamp,
    requester: Requester,
    story: Story,
    /// Routed to a team on arrival (by channel rules) rather than at triage.
    routed_on_arrival: bool,
    /// Index in `Staff::members`: who answers.
    assignee: usize,
    /// Index in `Staff::members` of who logged a phone call; `None` for the admin.
    creator: Option<usize>,
    /// Raised or lowered at triage.
    triage_priority: Option<Priority>,
    /// The internal note is the supervisor's advice rather than the agent's own.
    note_by_supervisor: bool,
    times: Vec<Timestamp>,
}

async fn load_with_use_cases(
    app: &App,
    clock: &DemoClock,
    principal: &Principal,
    staff: &Staff,
    tickets: usize,
    now: Timestamp,
    rng: &mut StdRng,
) -> anyhow::Result<Counts> {
    let mut factory = IdentityFactory::default();
    // Customers first, a couple of months back, so their tickets come after them.
    let n_customers = (tickets * 2 / 5).max(12);
    let mut customers = Vec::with_capacity(n_customers);
    let mut at = ago(now, SignedDuration::from_hours(24 * 90));
    for _ in 0..n_customers {
        let english = rng.random_bool(0.25);
        let who = person(rng, english);
        let identities = factory.profile(rng, &who)?;
        let vip = rng.random_bool(0.08);
        at = later(at, minutes(rng, 1, 40));
        clock.set(at);
        let id = create_or_find_customer(app, principal, &who, &identities).await?;
        customers.push(DemoCustomer {
            id,
            kinds: identities.iter().map(|value| value.kind).collect(),
            marketplace: marketplace_of(&identities),
            person: who,
            vip,
        });
    }

    let mut plans = Vec::with_capacity(tickets);
    for index in 0..tickets {
        // The first tickets cover every channel, so even a tiny demo shows them all.
        let channel = Channel::ALL
            .get(index)
            .copied()
            .unwrap_or_else(|| weighted(rng, CHANNEL_WEIGHTS));
        let status = weighted(rng, STATUS_WEIGHTS);
        let (low, high) = age_minutes(status);
        let created_at = ago(now, SignedDuration::from_mins(rng.random_range(low..=high)));
        let existing = if rng.random_bool(0.85) {
            (0..20)
                .map(|_| rng.random_range(0..customers.len()))
                .find(|&candidate| reachable_on(&customers[candidate].kinds, channel))
        } else {
            None
        };
        let requester = match existing {
            Some(index) => Requester::Existing(index),
            None => {
                let english = rng.random_bool(0.25);
                let who = person(rng, english);
                let identity = factory.for_channel(rng, channel, &who)?;
                Requester::New {
                    person: who,
                    identity,
                }
            }
        };
        let (who, vip, marketplace) = match &requester {
            Requester::Existing(index) => {
                let customer = &customers[*index];
                (&customer.person, customer.vip, customer.marketplace)
            }
            Requester::New { person, identity } => (
                person,
                false,
                marketplace_of(std::slice::from_ref(identity)),
            ),
        };
        let story = story(rng, channel, status, who, vip, marketplace, created_at);
        let assignee = staff.pick_agent(rng, story.team, who.english);
        let creator = (channel == Channel::Phone).then_some(assignee);
        let triage_priority = match rng.random_range(0..10) {
            0 => Some(Priority::High).filter(|_| story.priority < Priority::High),
            1 => Some(Priority::Low).filter(|_| story.priority == Priority::Normal),
            _ => None,
        };
        let mut times = Vec::with_capacity(story.beats.len());
        let mut at = created_at;
        for &beat in &story.beats {
            at = later(at, beat_delay(rng, beat)).min(now).max(at);
            times.push(at);
        }
        let routed_on_arrival = rng.random_bool(if status == TicketStatus::New {
            0.4
        } else {
            0.3
        });
        plans.push(Plan {
            created_at,
            requester,
            routed_on_arrival,
            story,
            assignee,
            creator,
            triage_priority,
            note_by_supervisor: rng.random_bool(0.3),
            times,
        });
    }
    // Numbers follow arrival, as in a real helpdesk.
    plans.sort_by_key(|plan| plan.created_at);

    let mut counts = Counts {
        customers: customers.len(),
        ..Counts::default()
    };
    let mut new_customers = HashSet::new();
    for plan in plans {
        let messages = tell(
            app,
            clock,
            principal,
            staff,
            &customers,
            plan,
            &mut new_customers,
        )
        .await?;
        counts.tickets += 1;
        counts.messages += messages;
    }
    counts.customers += new_customers.len();
    Ok(counts)
}

/// Creates a customer, or finds the one an earlier demo run created with these identities.
async fn create_or_find_customer(
    app: &App,
    principal: &Principal,
    who: &Person,
    identities: &[IdentityValue],
) -> anyhow::Result<CustomerId> {
    for identity in identities {
        if let Some(existing) = app.store.find_customer_by_identity(identity).await? {
            return Ok(existing.id);
        }
    }
    let input = CreateCustomerInput {
        name: who.full.clone(),
        language: Some(if who.english { "en" } else { "ru" }.to_owned()),
        identities: identities.to_vec(),
    };
    let customer = app
        .create_customer(principal, input, None)
        .await
        .with_context(|| format!("cannot create the demo customer {}", who.full))?;
    Ok(customer.id)
}

/// Plays one ticket's life through the use cases; returns how many messages it got.
async fn tell(
    app: &App,
    clock: &DemoClock,
    admin: &Principal,
    staff: &Staff,
    customers: &[DemoCustomer],
    plan: Plan,
    new_customers: &mut HashSet<CustomerId>,
) -> anyhow::Result<usize> {
    let Plan {
        created_at,
        requester,
        story,
        routed_on_arrival,
        assignee,
        creator,
        triage_priority,
        note_by_supervisor,
        times,
    } = plan;
    let (customer_ref, who) = match requester {
        Requester::Existing(index) => (
            CustomerRef::Id(customers[index].id),
            customers[index].person.clone(),
        ),
        Requester::New { person, identity } => (
            CustomerRef::Identity {
                identity,
                name: Some(person.full.clone()),
            },
            person,
        ),
    };
    let team_id = story.team.and_then(|team| staff.team_id(team));
    let creator = creator.map_or(admin, |index| &staff.members[index].principal);
    clock.set(created_at);
    let input = CreateTicketInput {
        subject: story.subject.clone(),
        body: story.first.clone(),
        customer: customer_ref,
        channel: story.channel,
        priority: Some(story.priority),
        status: None,
        assignee_id: None,
        team_id: if routed_on_arrival { team_id } else { None },
        tags: story.tags.clone(),
        attachments: vec![],
    };
    let ticket = app
        .create_ticket(creator, input, None)
        .await
        .with_context(|| format!("cannot create the demo ticket {:?}", story.subject))?;
    if !customers
        .iter()
        .any(|customer| customer.id == ticket.customer_id)
    {
        new_customers.insert(ticket.customer_id);
    }
    let member = &staff.members[assignee];
    let supervisor = staff.supervisor();
    let english = who.english;
    let reply = |body: &str| agent_reply(english, &who.first, member.first_name(), body);
    let mut messages = 1;
    for (beat, at) in story.beats.iter().copied().zip(times) {
        clock.set(at);
        let outcome = match beat {
            Beat::Triage => {
                let patch = TicketPatch {
                    assignee_id: Some(Some(member.agent.id)),
                    team_id: (!routed_on_arrival && team_id.is_some()).then_some(team_id),
                    priority: triage_priority,
                    ..TicketPatch::default()
                };
                app.update_ticket(&supervisor.principal, ticket.id, patch)
                    .await
                    .map(drop)
            }
            Beat::Close => {
                let patch = TicketPatch {
                    status: Some(TicketStatus::Closed),
                    ..TicketPatch::default()
                };
                app.update_ticket(&supervisor.principal, ticket.id, patch)
                    .await
                    .map(drop)
            }
            Beat::CustomerAnswer | Beat::CustomerFollowup => {
                let body = if beat == Beat::CustomerAnswer {
                    &story.script.answer
                } else {
                    &story.script.followup
                };
                messages += 1;
                let input = AddMessageInput {
                    body: body.clone(),
                    visibility: MessageVisibility::Public,
                    author: AuthorKind::Customer,
                    status: None,
                    attachments: vec![],
                };
                app.add_message(admin, ticket.id, input, None)
                    .await
                    .map(drop)
            }
            Beat::Note => {
                messages += 1;
                let by = if note_by_supervisor {
                    supervisor
                } else {
                    member
                };
                let input = AddMessageInput {
                    body: story.script.note.clone(),
                    visibility: MessageVisibility::Internal,
                    author: AuthorKind::Agent,
                    status: None,
                    attachments: vec![],
                };
                app.add_message(&by.principal, ticket.id, input, None)
                    .await
                    .map(drop)
            }
            Beat::Reply(status) => {
                messages += 1;
                let body = match status {
                    Some(TicketStatus::Pending) => &story.script.ask,
                    Some(TicketStatus::OnHold) => &story.script.hold,
                    Some(_) => &story.script.resolution,
                    None => &story.script.working,
                };
                let input = AddMessageInput {
                    body: reply(body),
                    visibility: MessageVisibility::Public,
                    author: AuthorKind::Agent,
                    status,
                    attachments: vec![],
                };
                app.add_message(&member.principal, ticket.id, input, None)
                    .await
                    .map(drop)
            }
        };
        outcome.with_context(|| {
            format!(
                "demo ticket #{} ({:?}, {:?}): step {beat:?} failed",
                ticket.number, story.kind, story.status
            )
        })?;
    }
    Ok(messages)
}

// ---------------------------------------------------------------------------------------------
// The batched path

/// Identities of batched customer `key`: shapes the use-case path never makes (an e-mail
/// ending in `.<key>`, phones starting +7 96…, 10-digit Telegram ids starting with 8, …), unique
/// per key through multiplications that are bijections modulo a power of ten.
fn batch_identities(
    rng: &mut StdRng,
    key: u64,
    who: &Person,
    always_phone: bool,
) -> anyhow::Result<Vec<IdentityValue>> {
    let english = who.english;
    let mut identities = Vec::new();
    let domain = *pick(
        rng,
        if english {
            EN_MAIL_DOMAINS
        } else {
            RU_MAIL_DOMAINS
        },
    );
    if rng.random_bool(0.85) {
        let email = format!("{}.{}.{key}@{domain}", who.latin_first, who.latin_last);
        identities.push(identity(IdentityKind::Email, None, &email)?);
    }
    if always_phone || rng.random_bool(0.45) {
        identities.push(identity(IdentityKind::Phone, None, &batch_phone(key))?);
    }
    if rng.random_bool(0.3) {
        let value = format!("8{:09}", (key * 7_919 + 1) % 1_000_000_000);
        identities.push(identity(IdentityKind::Messenger, Some("telegram"), &value)?);
    }
    if rng.random_bool(if english { 0.05 } else { 0.3 }) {
        let (provider, ..) = *pick(rng, MARKETPLACES);
        let value = format!("9{:09}", (key * 104_729 + 7) % 1_000_000_000);
        identities.push(identity(
            IdentityKind::MarketplaceBuyer,
            Some(provider),
            &value,
        )?);
    }
    if rng.random_bool(0.1) || identities.is_empty() {
        identities.push(identity(
            IdentityKind::ChatVisitor,
            None,
            &format!("vb-{key:x}"),
        )?);
    }
    Ok(identities)
}

fn batch_phone(key: u64) -> String {
    format!("+796{:08}", (key * 7_654_321 + 12_345) % 100_000_000)
}

/// Keys of one batched run start at `generation * KEYS_PER_RUN`.
const KEYS_PER_RUN: u64 = 10_000_000;

/// Every tag a demo ticket can carry.
fn every_tag() -> Vec<&'static str> {
    let mut tags: Vec<&'static str> = Vec::new();
    for kind in KIND_WEIGHTS
        .iter()
        .chain(MARKETPLACE_KIND_WEIGHTS)
        .map(|(kind, _)| *kind)
    {
        tags.extend(kind.tags());
    }
    tags.extend(
        RU_CARRIERS
            .iter()
            .chain(ABROAD_CARRIERS)
            .map(|carrier| carrier.tag),
    );
    tags.extend(MARKETPLACES.iter().map(|marketplace| marketplace.3));
    tags.extend(["маркетплейс", "international", "vip"]);
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// Creates the demo tags up front, so units committing side by side never race to insert the
/// same new tag (on PostgreSQL two such inserts can deadlock).
async fn ensure_tags(app: &App, principal: &Principal) -> anyhow::Result<()> {
    let existing = app.list_tags(principal).await.context("cannot list tags")?;
    for name in every_tag() {
        if !existing.iter().any(|tag| tag.name == name) {
            app.create_tag(principal, name)
                .await
                .with_context(|| format!("cannot create the demo tag {name}"))?;
        }
    }
    Ok(())
}

/// Status weights by age: recent tickets are still being worked on, old ones are done.
fn batch_status(rng: &mut StdRng, age: SignedDuration) -> TicketStatus {
    use TicketStatus as S;
    let hours = age.as_hours();
    let weights: &[(TicketStatus, u32)] = if hours < 24 {
        &[(S::New, 40), (S::Open, 40), (S::Pending, 20)]
    } else if hours < 14 * 24 {
        &[
            (S::New, 5),
            (S::Open, 25),
            (S::Pending, 20),
            (S::OnHold, 10),
            (S::Solved, 40),
        ]
    } else {
        &[
            (S::Pending, 2),
            (S::OnHold, 2),
            (S::Solved, 40),
            (S::Closed, 56),
        ]
    };
    weighted(rng, weights)
}

/// Messages in a batched ticket's thread, the customer's first one included: an archive's
/// threads, a little longer than the live demo's (about 3.5 on average).
fn batch_message_count(rng: &mut StdRng, status: TicketStatus) -> usize {
    if status == TicketStatus::New {
        return if rng.random_bool(0.7) { 1 } else { 2 };
    }
    weighted(rng, &[(2, 15), (3, 35), (4, 30), (5, 20)])
}

/// Writes one ticket of the batched path into `unit`: the ticket in its final state, its whole
/// thread and its `ticket.created` audit event. Returns how many messages it has.
fn push_batch_ticket(
    unit: &mut UnitOfWork,
    rng: &mut StdRng,
    staff: &Staff,
    customer: &BatchCustomer,
    created_at: Timestamp,
    now: Timestamp,
    actor: Actor,
) -> usize {
    let channels: Vec<(Channel, u32)> = CHANNEL_WEIGHTS
        .iter()
        .copied()
        .filter(|(channel, _)| reachable_on(&customer.kinds, *channel))
        .collect();
    let channel = weighted(rng, &channels);
    let status = batch_status(rng, now.duration_since(created_at));
    let story = story(
        rng,
        channel,
        status,
        &customer.person,
        customer.vip,
        customer.marketplace,
        created_at,
    );
    let plan = beats(status, batch_message_count(rng, status));
    let english = customer.person.english;
    let member = &staff.members[staff.pick_agent(rng, story.team, english)];
    let supervisor = staff.supervisor();
    let ticket_id = TicketId::new();
    let draft = NewTicket {
        id: ticket_id,
        subject: story.subject.clone(),
        status,
        priority: story.priority,
        channel,
        customer_id: customer.id,
        // New tickets wait in the unassigned queue; the rest were triaged to an agent.
        assignee_id: plan.contains(&Beat::Triage).then_some(member.agent.id),
        team_id: story.team.and_then(|team| staff.team_id(team)),
        tags: story.tags,
        created_at,
    };
    let changes = draft.creation_changes();
    let mut ticket = draft.into_ticket(0);
    // The messages wait until the story has shaped the ticket: it is written first, once.
    let mut written = Vec::with_capacity(8);
    let message = |author: Author, visibility: MessageVisibility, body: String, at: Timestamp| {
        Mutation::InsertMessage(Message {
            id: MessageId::new(),
            ticket_id,
            author,
            visibility,
            channel,
            body,
            attachments: vec![],
            created_at: at,
        })
    };
    written.push(message(
        Author::Customer(customer.id),
        MessageVisibility::Public,
        story.first,
        created_at,
    ));
    let mut messages = 1;
    let mut at = created_at;
    for beat in plan {
        at = later(at, beat_delay(rng, beat)).min(now);
        let (author, visibility, body) = match beat {
            Beat::Triage => continue,
            Beat::Close => {
                ticket.closed_at = Some(at);
                continue;
            }
            Beat::CustomerAnswer => (
                Author::Customer(customer.id),
                MessageVisibility::Public,
                story.script.answer.clone(),
            ),
            Beat::CustomerFollowup => (
                Author::Customer(customer.id),
                MessageVisibility::Public,
                story.script.followup.clone(),
            ),
            Beat::Note => {
                let by = if rng.random_bool(0.3) {
                    supervisor
                } else {
                    member
                };
                (
                    Author::Agent(by.agent.id),
                    MessageVisibility::Internal,
                    story.script.note.clone(),
                )
            }
            Beat::Reply(to) => {
                let body = match to {
                    Some(TicketStatus::Pending) => &story.script.ask,
                    Some(TicketStatus::OnHold) => &story.script.hold,
                    Some(_) => &story.script.resolution,
                    None => &story.script.working,
                };
                ticket.first_agent_reply_at.get_or_insert(at);
                if to == Some(TicketStatus::Solved) {
                    ticket.solved_at = Some(at);
                }
                (
                    Author::Agent(member.agent.id),
                    MessageVisibility::Public,
                    agent_reply(english, &customer.person.first, member.first_name(), body),
                )
            }
        };
        written.push(message(author, visibility, body, at));
        messages += 1;
    }
    // Replied, solved, closed: the ticket as its story left it.
    ticket.updated_at = at;
    unit.push(Mutation::ImportTicket(Box::new(ticket)));
    unit.mutations.append(&mut written);
    unit.push(Mutation::Audit(AuditEvent::new(
        created_at,
        actor,
        "ticket.created",
        "ticket",
        ticket_id.0,
        changes,
    )));
    messages
}

/// A customer of the batched path, with the ticket that brought them.
struct BatchCustomer {
    id: CustomerId,
    person: Person,
    kinds: Vec<IdentityKind>,
    marketplace: Option<usize>,
    vip: bool,
    /// The index of their first ticket in this run.
    first_ticket: usize,
}

/// The fixed inputs of the batched generator.
#[derive(Clone)]
struct BatchPlan {
    tickets: usize,
    tickets_per_unit: usize,
    /// A ticket reuses only customers whose first ticket is at least this many tickets earlier.
    customer_lag: usize,
    first_key: u64,
    start: Timestamp,
    step_micros: i64,
    now: Timestamp,
    actor: Actor,
}

/// One unit of the batched path, ready to commit, and what it holds.
struct Batch {
    unit: UnitOfWork,
    counts: Counts,
}

/// The customers a ticket may reuse: those whose first ticket is at least `lag` tickets before
/// `ticket`. `first_tickets` is ascending; `known` is the answer for an earlier ticket (the
/// count only grows).
fn reusable_customers(
    first_tickets: impl Fn(usize) -> usize,
    len: usize,
    known: usize,
    ticket: usize,
    lag: usize,
) -> usize {
    let mut reusable = known.min(len);
    while reusable < len && first_tickets(reusable) + lag <= ticket {
        reusable += 1;
    }
    reusable
}

/// Builds the units of the batched path in order and hands them to `sender`, on a thread of its
/// own so that the next units are generated while the previous ones are written. Stops early,
/// without error, when the receiver is gone (the writing side failed and says why).
///
/// What is generated depends only on the seed, the ticket count and the customer lag — never on
/// the unit size or the backend — so SQLite and PostgreSQL get the same shop.
fn generate_batches(
    plan: &BatchPlan,
    staff: &Staff,
    mut rng: StdRng,
    sender: &tokio::sync::mpsc::Sender<Batch>,
) -> anyhow::Result<()> {
    let rng = &mut rng;
    let mut customers: Vec<BatchCustomer> = Vec::new();
    let mut reusable = 0;
    let tickets_per_unit = plan.tickets_per_unit.max(1);
    let mut index = 0;
    while index < plan.tickets {
        let end = (index + tickets_per_unit).min(plan.tickets);
        let mut unit = UnitOfWork::new();
        unit.mutations.reserve((end - index) * 8);
        let mut counts = Counts::default();
        for ticket_index in index..end {
            let offset = i64::try_from(ticket_index)
                .unwrap_or(i64::MAX)
                .saturating_mul(plan.step_micros)
                + rng.random_range(0..plan.step_micros);
            let created_at = later(plan.start, SignedDuration::from_micros(offset)).min(plan.now);
            reusable = reusable_customers(
                |customer| customers[customer].first_ticket,
                customers.len(),
                reusable,
                ticket_index,
                plan.customer_lag,
            );
            // About one customer per three tickets, some of them regulars.
            if reusable == 0 || rng.random_bool(0.35) {
                let key = plan.first_key + u64::try_from(customers.len()).unwrap_or(0);
                let english = rng.random_bool(0.25);
                let who = person(rng, english);
                let identities = batch_identities(rng, key, &who, customers.is_empty())?;
                let customer_at = ago(created_at, minutes(rng, 0, 30 * 24 * 60))
                    .max(ago(plan.start, SignedDuration::from_hours(24 * 30)));
                let customer_id = CustomerId::new();
                let customer = Customer {
                    id: customer_id,
                    name: who.full.clone(),
                    language: Some(if english { "en" } else { "ru" }.to_owned()),
                    identities: identities
                        .iter()
                        .map(|value| Identity {
                            id: IdentityId::new(),
                            customer_id,
                            value: value.clone(),
                            created_at: customer_at,
                        })
                        .collect(),
                    merged_into: None,
                    created_at: customer_at,
                    updated_at: customer_at,
                    version: 1,
                };
                let mut changes = vec![set("name", &customer.name)];
                changes.extend(
                    identities
                        .iter()
                        .map(|value| set("identity", format!("{} {}", value.kind, value.value))),
                );
                unit.push(Mutation::InsertCustomer(customer));
                unit.push(Mutation::Audit(AuditEvent::new(
                    customer_at,
                    plan.actor,
                    "customer.created",
                    "customer",
                    customer_id.0,
                    changes,
                )));
                customers.push(BatchCustomer {
                    id: customer_id,
                    kinds: identities.iter().map(|value| value.kind).collect(),
                    marketplace: marketplace_of(&identities),
                    person: who,
                    vip: rng.random_bool(0.06),
                    first_ticket: ticket_index,
                });
                counts.customers += 1;
                let customer = &customers[customers.len() - 1];
                counts.messages += push_batch_ticket(
                    &mut unit, rng, staff, customer, created_at, plan.now, plan.actor,
                );
            } else {
                let customer = &customers[rng.random_range(0..reusable)];
                counts.messages += push_batch_ticket(
                    &mut unit, rng, staff, customer, created_at, plan.now, plan.actor,
                );
            }
            counts.tickets += 1;
        }
        if sender.blocking_send(Batch { unit, counts }).is_err() {
            return Ok(());
        }
        index = end;
    }
    Ok(())
}

/// A commit under way.
type PendingCommit =
    tokio::task::JoinHandle<otklik_store::StoreResult<otklik_store::CommitReceipt>>;

/// Hands `unit` to the store and lets the commit finish on its own task. The commit is polled
/// once here, before this returns: on that first poll the SQLite store queues a light unit for
/// its writer thread, or takes its turn for a heavy one (analysed on a blocking thread first), so
/// units reach the writer in the order they were submitted and ticket numbers follow time.
/// (Correctness does not rest on it: a unit only refers to customers of units already
/// acknowledged.)
fn submit(store: Arc<dyn otklik_store::Store>, unit: UnitOfWork) -> PendingCommit {
    use std::future::Future;
    let mut commit = Box::pin(async move { store.commit(unit).await });
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match commit.as_mut().poll(&mut context) {
        std::task::Poll::Ready(outcome) => tokio::spawn(std::future::ready(outcome)),
        std::task::Poll::Pending => tokio::spawn(commit),
    }
}

async fn finish(commit: PendingCommit) -> anyhow::Result<()> {
    commit
        .await
        .context("a demo batch commit panicked")?
        .context("a demo batch commit failed")?;
    Ok(())
}

async fn load_batched(
    app: &App,
    principal: &Principal,
    staff: &Arc<Staff>,
    tickets: usize,
    batching: Batching,
    now: Timestamp,
    rng: &StdRng,
) -> anyhow::Result<Counts> {
    ensure_tags(app, principal).await?;
    // A re-run on the same database gets fresh identity keys instead of colliding.
    let mut generation = 0u64;
    while app
        .store
        .find_customer_by_identity(&identity(
            IdentityKind::Phone,
            None,
            &batch_phone(generation * KEYS_PER_RUN),
        )?)
        .await?
        .is_some()
    {
        generation += 1;
        anyhow::ensure!(
            generation < 10,
            "the demo was already loaded ten times into this database"
        );
    }
    let span = SignedDuration::from_hours(24 * 365);
    let step_micros = span.as_micros() / i128::try_from(tickets.max(1)).unwrap_or(1);
    let (tickets_per_unit, depth) = batching.for_backend(app.store.backend());
    // Units in flight never hold customers a later unit reuses (they are acknowledged first).
    anyhow::ensure!(
        batching.customer_lag >= (depth + 1) * tickets_per_unit,
        "the demo's customer lag is shorter than the tickets in flight"
    );
    let plan = BatchPlan {
        tickets,
        tickets_per_unit,
        customer_lag: batching.customer_lag,
        first_key: generation * KEYS_PER_RUN,
        start: ago(now, span),
        step_micros: i64::try_from(step_micros).unwrap_or(i64::MAX).max(1),
        now,
        actor: Actor::Agent(principal.agent_id),
    };
    // Building the indexes at the end costs in proportion to everything stored, so it pays
    // when the demo at least doubles the database. PostgreSQL keeps its indexes through an
    // import (other nodes may be serving from it), so it is not asked to begin one; it is asked
    // to end one, which there refreshes the planner's statistics of the tables the demo filled.
    let held = app
        .store
        .count_tickets(&otklik_store::TicketCountQuery::default())
        .await?;
    let doubles = i64::try_from(tickets).unwrap_or(i64::MAX) >= held;
    let bulk = app.store.backend() == Backend::Sqlite && doubles;
    if bulk {
        app.store
            .commit(UnitOfWork::new().with(Mutation::BeginBulkImport))
            .await
            .context("could not start the demo's bulk import")?;
    }
    let mut written = write_batches(app, staff, &plan, depth, rng).await;
    if bulk {
        // Ended even when writing failed: what was written is indexed, not left aside (a killed
        // process leaves that to the next open of the database).
        tracing::info!(
            "demo: the rows are written; now building the indexes set aside for the import \
             (about a third of the whole)"
        );
        let started = Instant::now();
        app.store
            .commit(UnitOfWork::new().with(Mutation::EndBulkImport))
            .await
            .context("could not build the indexes after the demo's bulk import")?;
        let indexing = started.elapsed();
        tracing::info!(elapsed = ?indexing, "indexes built after the demo's bulk import");
        if let Ok(counts) = &mut written {
            counts.indexing = indexing;
        }
    } else if doubles && app.store.backend() == Backend::Postgres {
        // Without it, the planner plans searches by the statistics of the tables as they were
        // before the demo (empty, for a new database) until autovacuum next analyzes them, or
        // never where it is off: an agent's search at 100,000 tickets took 98 ms instead of 9.
        let started = Instant::now();
        app.store
            .commit(UnitOfWork::new().with(Mutation::EndBulkImport))
            .await
            .context("could not refresh PostgreSQL's statistics after the demo")?;
        tracing::info!(elapsed = ?started.elapsed(), "the planner's statistics are refreshed");
    }
    written
}

/// Generates the units of `plan` on a blocking thread and commits them, `depth` at a time.
async fn write_batches(
    app: &App,
    staff: &Arc<Staff>,
    plan: &BatchPlan,
    depth: usize,
    rng: &StdRng,
) -> anyhow::Result<Counts> {
    let (sender, mut receiver) = tokio::sync::mpsc::channel(UNITS_AHEAD);
    let generator = tokio::task::spawn_blocking({
        let (plan, staff, rng) = (plan.clone(), staff.clone(), rng.clone());
        move || generate_batches(&plan, &staff, rng, &sender)
    });
    let mut counts = Counts::default();
    let mut progress = Progress::new(plan.tickets);
    let written: anyhow::Result<()> = async {
        let mut in_flight: VecDeque<PendingCommit> = VecDeque::new();
        while let Some(batch) = receiver.recv().await {
            progress.written(counts.tickets);
            while in_flight.len() >= depth {
                if let Some(oldest) = in_flight.pop_front() {
                    finish(oldest).await?;
                }
            }
            in_flight.push_back(submit(app.store.clone(), batch.unit));
            counts.tickets += batch.counts.tickets;
            counts.messages += batch.counts.messages;
            counts.customers += batch.counts.customers;
        }
        for commit in in_flight {
            finish(commit).await?;
        }
        Ok(())
    }
    .await;
    // If writing failed, the generator stops at its next unit.
    drop(receiver);
    let generated = generator.await.context("the demo generator panicked")?;
    written?;
    generated?;
    Ok(counts)
}

/// How often a batched demo says how far it got: a million tickets take a minute or more.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// Says, every [`PROGRESS_INTERVAL`], how many of a batched demo's tickets are written.
struct Progress {
    started: Instant,
    last: Instant,
    total: usize,
}

impl Progress {
    fn new(total: usize) -> Self {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            total,
        }
    }

    /// `done` tickets are written (or committing).
    fn written(&mut self, done: usize) {
        if self.last.elapsed() >= PROGRESS_INTERVAL {
            self.last = Instant::now();
            tracing::info!(
                "{}",
                progress_line(done, self.total, self.started.elapsed())
            );
        }
    }
}

/// `demo: 250000 of 1000000 tickets written (25%), 14200 tickets/s`.
fn progress_line(done: usize, total: usize, elapsed: Duration) -> String {
    let percent = done.saturating_mul(100) / total.max(1);
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    format!("demo: {done} of {total} tickets written ({percent}%), {rate:.0} tickets/s")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use otklik_domain::clock::SystemClock;
    use otklik_store::TicketFilter;
    use otklik_store::blobs::LocalBlobStore;
    use otklik_store_sqlite::SqliteStore;

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
