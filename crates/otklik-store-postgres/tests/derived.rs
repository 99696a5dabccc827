//! The search index and the queue counters on PostgreSQL under what the shared conformance suite
//! does not reach: concurrent units sharing counter rows and index rows, a rebuild while units
//! commit, tickets too long for one `tsvector`, and many requests missing the same counts.

use otklik_store_postgres::testkit as test_database;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::Timestamp;
use otklik_domain::agent::{Agent, Role, Team};
use otklik_domain::clock::from_micros;
use otklik_domain::customer::{Customer, Identity, IdentityKind, IdentityValue};
use otklik_domain::ids::{CustomerId, IdentityId, MessageId, TeamId, TicketId};
use otklik_domain::message::{Author, Message, MessageVisibility};
use otklik_domain::ticket::{Channel, NewTicket, Priority, Ticket, TicketStatus};
use otklik_store::derived::CounterKey;
use otklik_store::{
    AssigneeFilter, Mutation, Store, StoreError, TicketCountQuery, TicketFilter, TicketSearch,
    UnitOfWork, Visibility,
};
use otklik_store_postgres::PostgresStore;
use test_database::{DropDatabase, admin_url, create_database, with_database};
use tokio_postgres::NoTls;
use uuid::Uuid;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).expect("valid test time")
}

const DAY: i64 = 86_400;

/// A store with a pool large enough for real concurrency, and a plain client to inspect tables.
struct Fixture {
    store: Arc<PostgresStore>,
    inspect: tokio_postgres::Client,
    _database: DropDatabase,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.store.close();
    }
}

async fn fixture(pool: usize) -> Fixture {
    let (url, database) = create_database().await;
    let store = PostgresStore::connect(&url, pool).await.expect("connects");
    let url = with_database(&admin_url(), &database.name);
    let (inspect, connection) = tokio_postgres::connect(&url, NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    Fixture {
        store: Arc::new(store),
        inspect,
        _database: database,
    }
}

async fn commit(store: &PostgresStore, mutations: Vec<Mutation>) -> Result<Vec<i64>, StoreError> {
    let receipt = store.commit(UnitOfWork { mutations }).await?;
    Ok(receipt.ticket_numbers)
}

async fn seed_customer(store: &PostgresStore, name: &str, email: &str) -> Customer {
    let id = CustomerId::new();
    let customer = Customer {
        id,
        name: name.into(),
        language: None,
        identities: vec![Identity {
            id: IdentityId::new(),
            customer_id: id,
            value: IdentityValue::parse(IdentityKind::Email, None, email).expect("valid"),
            created_at: at(0),
        }],
        merged_into: None,
        created_at: at(0),
        updated_at: at(0),
        version: 1,
    };
    commit(store, vec![Mutation::InsertCustomer(customer.clone())])
        .await
        .expect("customer");
    customer
}

async fn seed_team(store: &PostgresStore, name: &str) -> Team {
    let team = Team {
        id: TeamId::new(),
        name: name.into(),
        created_at: at(0),
    };
    commit(store, vec![Mutation::InsertTeam(team.clone())])
        .await
        .expect("team");
    team
}

/// An agent of `team_ids`, without a password, committed.
async fn seed_agent(store: &PostgresStore, email: &str, team_ids: Vec<TeamId>) -> Agent {
    let agent = otklik_store::conformance::new_agent(email, Role::Agent, team_ids);
    commit(
        store,
        vec![Mutation::InsertAgent {
            agent: agent.clone(),
            password_hash: None,
        }],
    )
    .await
    .expect("agent");
    agent
}

fn draft(customer_id: CustomerId, subject: &str, team_id: Option<TeamId>) -> NewTicket {
    NewTicket {
        id: TicketId::new(),
        subject: subject.into(),
        status: TicketStatus::New,
        priority: Priority::Normal,
        channel: Channel::Email,
        customer_id,
        assignee_id: None,
        team_id,
        tags: vec![],
        created_at: at(0),
    }
}

async fn seed_ticket(store: &PostgresStore, draft: NewTicket) -> Ticket {
    let numbers = commit(store, vec![Mutation::InsertTicket(draft.clone())])
        .await
        .expect("ticket");
    draft.into_ticket(numbers[0])
}

fn message(ticket: &Ticket, body: &str, second: i64) -> Message {
    Message {
        id: MessageId::new(),
        ticket_id: ticket.id,
        author: Author::Customer(ticket.customer_id),
        visibility: MessageVisibility::Public,
        channel: ticket.channel,
        body: body.into(),
        attachments: vec![],
        created_at: at(second),
    }
}

/// The counter rows that are not zero.
async fn counters(
    client: &tokio_postgres::Client,
) -> BTreeMap<(String, String, Uuid, Uuid, i64), i64> {
    client
        .query(
            // A key's count is the sum of its shards (one per writing connection). Plain
            // counts come as day 0; the daily rows of waiting work have days from 1.
            "SELECT status, priority, assignee_key, team_key, 0::bigint, sum(n)::bigint \
             FROM ticket_counts GROUP BY status, priority, assignee_key, team_key \
             HAVING sum(n) <> 0 \
             UNION ALL \
             SELECT status, priority, assignee_key, team_key, day, sum(n)::bigint FROM ticket_counters \
             GROUP BY status, priority, assignee_key, team_key, day HAVING sum(n) <> 0",
            &[],
        )
        .await
        .expect("counters")
        .iter()
        .map(|row| {
            (
                (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)),
                row.get(5),
            )
        })
        .collect()
}

/// What the counters must hold, computed from every ticket with the shared key rule: every
/// ticket in its plain count (day 0), waiting work also on its day.
async fn expected_counters(
    client: &tokio_postgres::Client,
) -> BTreeMap<(String, String, Uuid, Uuid, i64), i64> {
    let mut expected = BTreeMap::new();
    for row in client
        .query(
            "SELECT status, priority, assignee_id, team_id, updated_at, merged_into IS NOT NULL \
             FROM tickets",
            &[],
        )
        .await
        .expect("tickets")
    {
        let status: &str = row.get(0);
        let priority: &str = row.get(1);
        let key = CounterKey::of(
            status.parse().expect("status"),
            priority.parse().expect("priority"),
            row.get::<_, Option<Uuid>>(2)
                .map(otklik_domain::ids::AgentId),
            row.get::<_, Option<Uuid>>(3).map(TeamId),
            from_micros(row.get(4)),
            row.get(5),
        );
        if let Some(key) = key {
            let days = if key.day == 0 {
                vec![0]
            } else {
                vec![0, key.day]
            };
            for day in days {
                *expected
                    .entry((
                        key.status.as_str().to_owned(),
                        key.priority.as_str().to_owned(),
                        key.assignee_id.map_or(Uuid::nil(), |id| id.0),
                        key.team_id.map_or(Uuid::nil(), |id| id.0),
                        day,
                    ))
                    .or_insert(0) += 1;
            }
        }
    }
    expected
}

/// Every ticket's indexed tokens, as sets (a merge appends, a rebuild orders by message time).
async fn documents(client: &tokio_postgres::Client) -> BTreeMap<Uuid, (String, BTreeSet<String>)> {
    client
        .query(
            "SELECT ticket_id, subject_terms, body_terms FROM ticket_search",
            &[],
        )
        .await
        .expect("documents")
        .iter()
        .map(|row| {
            let body: &str = row.get(2);
            (
                row.get(0),
                (
                    row.get(1),
                    body.split(' ')
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ),
            )
        })
        .collect()
}

/// Tickets whose search document (V16: a table of its own) is missing, left over, or not the
/// one their terms, who may see them (V21: `TNONE` or `T` + the team, `A` + the assignee, in
/// upper-case hex), their status (V25: `S` + the status in upper case), their priority (V26:
/// `P` + the priority), their era (V26: `E` + the number divided by 16384), their channel (V27:
/// `C` + the channel) and their tags (V27: `G` + the tag's id in upper-case hex) give; and of
/// those, documents whose era words (V30) are missing, left over, or not the document's words
/// spelled with the ticket's era and its team's code, 0 without a team (V32: `refund~3~2`),
/// beside its other terms, merged as it is.
async fn stale_documents(client: &tokio_postgres::Client) -> i64 {
    let stale_era_words: i64 = client
        .query_one(
            "SELECT count(*) FROM ticket_documents d JOIN tickets t ON t.id = d.ticket_id \
             FULL JOIN ticket_era_words w USING (ticket_id) \
             WHERE w.merged IS DISTINCT FROM d.merged \
                OR w.words IS DISTINCT FROM array_to_tsvector(ARRAY( \
                    SELECT CASE WHEN term ~ '^[A-Z]' THEN term \
                           ELSE term || '~' || (t.number / 16384) || '~' || CASE \
                               WHEN t.team_id IS NULL THEN '0' \
                               ELSE coalesce((SELECT c.code::text FROM team_search_codes c \
                                              WHERE c.team_id = t.team_id), 'x') END END \
                    FROM unnest(tsvector_to_array(d.document)) term))",
            &[],
        )
        .await
        .expect("stale era words")
        .get(0);
    stale_era_words
        + client
            .query_one(
                "SELECT count(*) FROM ticket_search s JOIN tickets t ON t.id = s.ticket_id \
             FULL JOIN ticket_documents d USING (ticket_id) \
             WHERE d.document IS DISTINCT FROM array_to_tsvector( \
                 array_remove(string_to_array(s.subject_terms || ' ' || s.body_terms, ' '), '') \
                 || ARRAY['T' || coalesce(upper(replace(t.team_id::text, '-', '')), 'NONE')] \
                 || CASE WHEN t.assignee_id IS NULL THEN ARRAY[]::text[] \
                    ELSE ARRAY['A' || upper(replace(t.assignee_id::text, '-', ''))] END \
                 || ARRAY['S' || upper(t.status), 'P' || upper(t.priority), \
                          'E' || (t.number / 16384), 'C' || upper(t.channel)] \
                 || ARRAY(SELECT 'G' || upper(replace(tt.tag_id::text, '-', '')) \
                          FROM ticket_tags tt WHERE tt.ticket_id = t.id))",
                &[],
            )
            .await
            .expect("stale documents")
            .get::<_, i64>(0)
}

/// A small deterministic generator, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from((self.0 >> 33) % n as u64).expect("small")
    }
}

/// One random change to a random ticket, retried on a version conflict. Returns whether it
/// was applied.
async fn random_change(
    store: &PostgresStore,
    tickets: &[TicketId],
    teams: &[TeamId],
    rng: &mut Lcg,
    step: i64,
) -> Result<bool, StoreError> {
    for _attempt in 0..20 {
        let id = tickets[rng.below(tickets.len())];
        let Some(ticket) = store.find_ticket(id).await? else {
            return Ok(false);
        };
        if ticket.merged_into.is_some() {
            return Ok(false);
        }
        let mut after = ticket.clone();
        after.updated_at = at(step * DAY / 7);
        let words = [
            "доставка",
            "refund",
            "zipper",
            "курьер",
            "warranty",
            "размер",
        ];
        let body = format!("{} {step}", words[rng.below(words.len())]);
        let mutations = match rng.below(12) {
            // A reply: the message first, then the ticket (as the app does).
            0 => {
                after.status = TicketStatus::Open;
                vec![
                    Mutation::InsertMessage(message(&ticket, &body, step)),
                    Mutation::UpdateTicket {
                        ticket: after,
                        expected_version: ticket.version,
                    },
                ]
            }
            // An edit of the subject, then a note: the other order on the same rows.
            1 => {
                after.subject = format!("{} {step}", words[rng.below(words.len())]);
                vec![
                    Mutation::UpdateTicket {
                        ticket: after.clone(),
                        expected_version: ticket.version,
                    },
                    Mutation::InsertMessage(message(&after, &body, step)),
                ]
            }
            // Routing and priority.
            2 => {
                after.team_id = [None, Some(teams[rng.below(teams.len())])][rng.below(2)];
                after.priority = [Priority::Normal, Priority::Urgent][rng.below(2)];
                vec![Mutation::UpdateTicket {
                    ticket: after,
                    expected_version: ticket.version,
                }]
            }
            // Solving.
            3 | 4 => {
                after.status = TicketStatus::Solved;
                after.solved_at = Some(after.updated_at);
                vec![Mutation::UpdateTicket {
                    ticket: after,
                    expected_version: ticket.version,
                }]
            }
            // A merge into another ticket, now and then.
            5 => {
                let target = tickets[rng.below(tickets.len())];
                if target == ticket.id {
                    continue;
                }
                after.merged_into = Some(target);
                after.status = TicketStatus::Closed;
                after.closed_at = Some(after.updated_at);
                vec![
                    Mutation::MoveMessages {
                        from: ticket.id,
                        to: target,
                    },
                    Mutation::UpdateTicket {
                        ticket: after,
                        expected_version: ticket.version,
                    },
                ]
            }
            // Most often a plain reply.
            _ => {
                after.status = TicketStatus::Pending;
                vec![
                    Mutation::InsertMessage(message(&ticket, &body, step)),
                    Mutation::UpdateTicket {
                        ticket: after,
                        expected_version: ticket.version,
                    },
                ]
            }
        };
        match commit(store, mutations).await {
            Ok(_) => return Ok(true),
            Err(StoreError::VersionConflict { .. }) => continue,
            // Routed to a team deleted meanwhile.
            Err(StoreError::NotFound { what: "team" }) => return Ok(false),
            Err(error) => return Err(error),
        }
    }
    Ok(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_units_on_shared_counter_and_index_rows_neither_deadlock_nor_drift() {
    let fixture = fixture(12).await;
    let store = fixture.store.clone();
    let customer = seed_customer(&store, "Hot", "hot@example.com").await;
    let red = seed_team(&store, "Red").await;
    let blue = seed_team(&store, "Blue").await;
    let mut tickets = Vec::new();
    for index in 0..16 {
        // All in one counter cell to start with: the hottest row there is.
        let ticket = seed_ticket(
            &store,
            draft(customer.id, &format!("Order {index}"), Some(red.id)),
        )
        .await;
        tickets.push(ticket.id);
    }
    let tickets = Arc::new(tickets);
    let teams = Arc::new(vec![red.id, blue.id]);
    let mut tasks = Vec::new();
    for worker in 0..10_u64 {
        let (store, tickets, teams) = (store.clone(), tickets.clone(), teams.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Lcg(worker + 1);
            let mut applied = 0;
            for step in 0..40 {
                if random_change(&store, &tickets, &teams, &mut rng, step).await? {
                    applied += 1;
                }
            }
            Ok::<_, StoreError>(applied)
        }));
    }
    // Meanwhile: new tickets (inserting into the hot cell) and a team deletion.
    let inserter = {
        let store = store.clone();
        tokio::spawn(async move {
            for index in 0..30 {
                let mut draft = draft(customer.id, &format!("New {index}"), Some(blue.id));
                draft.team_id = [Some(red.id), None][index % 2];
                seed_ticket(&store, draft).await;
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    commit(&store, vec![Mutation::DeleteTeam(blue.id)])
        .await
        .expect("the team is deleted");
    inserter.await.expect("inserts succeed");
    let mut applied = 0;
    for task in tasks {
        applied += task
            .await
            .expect("the task ran")
            .expect("no unit failed but on a version");
    }
    assert!(applied > 100, "only {applied} changes were applied");

    let maintained = counters(&fixture.inspect).await;
    assert_eq!(maintained, expected_counters(&fixture.inspect).await);
    let indexed = documents(&fixture.inspect).await;
    assert_eq!(
        stale_documents(&fixture.inspect).await,
        0,
        "every change wrote its ticket's search document"
    );
    store.rebuild_derived_data().await.expect("rebuild");
    assert_eq!(
        counters(&fixture.inspect).await,
        maintained,
        "a rebuild finds the same counts"
    );
    assert_eq!(
        documents(&fixture.inspect).await,
        indexed,
        "a rebuild indexes the same tokens"
    );
    assert_eq!(
        stale_documents(&fixture.inspect).await,
        0,
        "after a rebuild"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_while_units_commit_loses_no_change() {
    let fixture = fixture(8).await;
    let store = fixture.store.clone();
    let customer = seed_customer(&store, "Busy", "busy@example.com").await;
    let team = seed_team(&store, "Team").await;
    let mut writers = Vec::new();
    for worker in 0..4 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for index in 0..25 {
                let ticket = seed_ticket(
                    &store,
                    draft(customer.id, &format!("W{worker} {index}"), Some(team.id)),
                )
                .await;
                let mut after = ticket.clone();
                after.status = TicketStatus::Pending;
                after.updated_at = at(3 * DAY);
                commit(
                    &store,
                    vec![
                        Mutation::InsertMessage(message(
                            &ticket,
                            &format!("parcel{worker}x{index}"),
                            5,
                        )),
                        Mutation::UpdateTicket {
                            ticket: after,
                            expected_version: 1,
                        },
                    ],
                )
                .await
                .expect("a reply commits during a rebuild");
            }
        }));
    }
    for _ in 0..5 {
        store.rebuild_derived_data().await.expect("rebuild");
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    assert_eq!(
        counters(&fixture.inspect).await,
        expected_counters(&fixture.inspect).await
    );
    let indexed = documents(&fixture.inspect).await;
    assert_eq!(indexed.len(), 100);
    for row in fixture
        .inspect
        .query("SELECT body_terms FROM ticket_search", &[])
        .await
        .expect("documents")
    {
        let body: &str = row.get(0);
        let terms: Vec<&str> = body.split(' ').collect();
        let unique: BTreeSet<&str> = terms.iter().copied().collect();
        assert!(
            !body.is_empty() && terms.len() == unique.len(),
            "indexed once: {body:?}"
        );
    }
    store.rebuild_derived_data().await.expect("rebuild");
    assert_eq!(documents(&fixture.inspect).await, indexed);
}

#[tokio::test]
async fn a_ticket_longer_than_one_tsvector_keeps_taking_replies() {
    let fixture = fixture(2).await;
    let store = fixture.store.clone();
    let customer = seed_customer(&store, "Logs", "logs@example.com").await;
    let ticket = seed_ticket(&store, draft(customer.id, "Crash dump", None)).await;
    commit(
        &store,
        vec![Mutation::InsertMessage(message(&ticket, "firstword", 1))],
    )
    .await
    .expect("reply");
    // Log lines full of distinct tokens: ~1.3 MB of terms, a `tsvector` of more than 1 MiB.
    let mut all_terms = BTreeSet::new();
    for part in 0..7_u32 {
        let body: String = (0..10_000_u32)
            .map(|i| format!("x{:x}", part * 10_000 + i))
            .collect::<Vec<_>>()
            .join(" ");
        all_terms.extend(
            otklik_search::index_terms(&body)
                .split(' ')
                .map(str::to_owned),
        );
        commit(
            &store,
            vec![Mutation::InsertMessage(message(&ticket, &body, 2))],
        )
        .await
        .expect("a reply to a very long ticket still commits");
    }
    assert_eq!(
        stale_documents(&fixture.inspect).await,
        0,
        "the document follows the capped terms"
    );
    let row = fixture
        .inspect
        .query_one(
            "SELECT char_length(body_terms), right(body_terms, 1) <> ' ' FROM ticket_search \
             WHERE ticket_id = $1",
            &[&ticket.id.0],
        )
        .await
        .expect("document");
    let chars: i32 = row.get(0);
    assert!(chars <= 200_000 && chars > 190_000, "{chars}");
    let search = |text: &str| TicketSearch {
        query: otklik_search::parse_query(text).expect("query"),
        filter: TicketFilter::default(),
        visibility: Visibility::All,
        limit: 10,
    };
    let found = store
        .search_tickets(&search("firstword "))
        .await
        .expect("search");
    assert_eq!(
        found.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![ticket.id]
    );
    let body: String = fixture
        .inspect
        .query_one(
            "SELECT body_terms FROM ticket_search WHERE ticket_id = $1",
            &[&ticket.id.0],
        )
        .await
        .expect("document")
        .get(0);
    let last = body.rsplit(' ').next().expect("a last term");
    assert!(
        all_terms.contains(last),
        "the last term is kept whole: {last}"
    );
    // The rebuild keeps the same first 200,000 characters.
    store.rebuild_derived_data().await.expect("rebuild");
    let rebuilt: String = fixture
        .inspect
        .query_one(
            "SELECT body_terms FROM ticket_search WHERE ticket_id = $1",
            &[&ticket.id.0],
        )
        .await
        .expect("document")
        .get(0);
    assert_eq!(rebuilt, body);
    assert_eq!(stale_documents(&fixture.inspect).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_missed_by_many_requests_at_once_are_summed_once_and_shared_between_pages() {
    let fixture = fixture(10).await;
    let store = fixture.store.clone();
    let customer = seed_customer(&store, "Herd", "herd@example.com").await;
    seed_ticket(&store, draft(customer.id, "First", None)).await;
    let page = Arc::new(vec![
        TicketCountQuery::default(),
        TicketCountQuery {
            statuses: vec![TicketStatus::New],
            assignee: Some(AssigneeFilter::Unassigned),
            ..TicketCountQuery::default()
        },
    ]);
    assert_eq!(store.count_tickets_many(&page).await.unwrap(), vec![1, 1]);
    // A change: every agent's next page misses at once. The counter table is held locked
    // while the requests come in, so the first sum cannot end before all of them have missed.
    seed_ticket(&store, draft(customer.id, "Second", None)).await;
    let before = store.count_sums();
    fixture
        .inspect
        .batch_execute("BEGIN; LOCK TABLE ticket_counts IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("the counters are held");
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let (store, page) = (store.clone(), page.clone());
            tokio::spawn(async move { store.count_tickets_many(&page).await })
        })
        .collect();
    // Time for every request to read the version and miss (not a measurement: arriving later
    // would only make a request find the sum kept).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    fixture
        .inspect
        .batch_execute("ROLLBACK")
        .await
        .expect("the counters are released");
    for request in requests {
        assert_eq!(
            request.await.expect("the request ran").expect("counts"),
            vec![2, 2],
            "every request sees the change"
        );
    }
    assert_eq!(
        store.count_sums() - before,
        2,
        "the page's two counts were summed once for all eight requests"
    );
    // Another agent's page shares a view: only its own count is summed.
    let before = store.count_sums();
    let other_page = vec![
        TicketCountQuery::default(),
        TicketCountQuery {
            statuses: vec![TicketStatus::Open],
            ..TicketCountQuery::default()
        },
    ];
    assert_eq!(
        store.count_tickets_many(&other_page).await.unwrap(),
        vec![2, 0]
    );
    assert_eq!(store.count_sums() - before, 1, "the shared count was kept");
}

/// A store on a fresh database whose agents' searches try `window` newest documents first,
/// with the database's address.
async fn store_with_window(window: i64) -> (Arc<PostgresStore>, String, DropDatabase) {
    let (url, database) = create_database().await;
    let store = PostgresStore::connect(&url, 2)
        .await
        .expect("connects")
        .with_search_window(window);
    (Arc::new(store), url, database)
}

/// A plain client on `url`, to inspect and analyse tables.
async fn inspector(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connects to inspect");
    tokio::spawn(connection);
    client
}

/// The ids of the tickets `search` finds, sorted.
async fn found_ids(store: &PostgresStore, search: &TicketSearch) -> Vec<TicketId> {
    let mut ids: Vec<TicketId> = store
        .search_tickets(search)
        .await
        .expect("searches")
        .into_iter()
        .map(|ticket| ticket.id)
        .collect();
    ids.sort();
    ids
}

/// The conformance case of an agent's search, with a window of a few documents: past it the
/// search walks on or asks the index, and finds the same either way.
#[tokio::test]
async fn an_agents_search_finds_the_same_whatever_its_window_of_newest_documents() {
    for window in [1, 2, 3, 5] {
        let (store, _, _database) = store_with_window(window).await;
        otklik_store::conformance::an_agents_search_follows_every_change_of_who_may_see_a_ticket(
            store.clone(),
        )
        .await;
        store.close();
    }
}

/// The conformance case of a rare status, with a window of a few documents: past it the search
/// asks the index for the status's terms, which must follow every change of status.
#[tokio::test]
async fn a_search_for_a_rare_status_finds_the_same_whatever_its_window_of_newest_documents() {
    for window in [1, 2, 5] {
        let (store, _, _database) = store_with_window(window).await;
        otklik_store::conformance::a_search_for_a_rare_status_follows_every_change_of_status(
            store.clone(),
        )
        .await;
        store.close();
    }
}

/// The conformance case of filtered searches, with a window of a few documents: past it an
/// agent's filtered search is planned by PostgreSQL or asks the index, and keeps to the filter
/// and to what the agent may see either way.
#[tokio::test]
async fn an_agents_filtered_search_keeps_to_the_filter_whatever_its_window_of_newest_documents() {
    for window in [1, 2, 5] {
        let (store, _, _database) = store_with_window(window).await;
        otklik_store::conformance::search_keeps_to_the_filters_and_the_callers_visibility(
            store.clone(),
        )
        .await;
        store.close();
    }
}

/// Seeds 40 tickets about a parcel, every `visible_every`-th of the agent's team (the rest of
/// another) and every third solved, analyses them, and searches «parcel» as that agent, with a
/// window of 4 documents, for every status or for `only_status`. Returns the tickets found and
/// those the agent may see that pass the filter, both sorted.
async fn search_past_a_window(
    visible_every: usize,
    only_status: Option<TicketStatus>,
) -> (Vec<TicketId>, Vec<TicketId>) {
    let (store, url, _database) = store_with_window(4).await;
    let inspect = inspector(&url).await;
    let customer = seed_customer(&store, "Walker", "walker@example.com").await;
    let mine = seed_team(&store, "Mine").await;
    let other = seed_team(&store, "Other").await;
    let mut expected = Vec::new();
    for index in 0..40 {
        let team = if index % visible_every == 0 {
            mine.id
        } else {
            other.id
        };
        let mut draft = draft(customer.id, &format!("Parcel {index}"), Some(team));
        if index % 3 == 0 {
            draft.status = TicketStatus::Solved;
        }
        let passes = only_status.is_none_or(|status| status == draft.status);
        let ticket = seed_ticket(&store, draft).await;
        if team == mine.id && passes {
            expected.push(ticket.id);
        }
    }
    inspect
        .batch_execute("ANALYZE ticket_documents; ANALYZE tickets")
        .await
        .expect("analyses");
    let search = TicketSearch {
        query: otklik_search::parse_query("parcel ").expect("a query"),
        filter: TicketFilter {
            statuses: only_status.into_iter().collect(),
            ..TicketFilter::default()
        },
        visibility: Visibility::Agent {
            agent_id: otklik_domain::ids::AgentId::new(),
            team_ids: vec![mine.id],
        },
        limit: 50,
    };
    let found = found_ids(&store, &search).await;
    store.close();
    expected.sort();
    assert!(!expected.is_empty(), "the agent may see some matches");
    (found, expected)
}

/// Seeds a team and 60 tickets about a parcel, `seed` shaping each by its position (and the
/// team), searches «parcel» with `filter` past a window of 4 and checks it finds only the ticket
/// at `first`; then applies
/// `changes` (position, change) and checks it finds only the one at `then`. The filter lets one
/// ticket in sixty through, so the search asks the index for its terms with the words, and the
/// documents must follow every change, or the index returns the ticket that left and misses the
/// one that came.
/// A change to a ticket, given the team [`rare_filter_past_a_window`] seeded.
type Change = Box<dyn Fn(&mut Ticket, TeamId)>;

async fn rare_filter_past_a_window(
    seed: impl Fn(usize, &mut NewTicket, TeamId),
    filter: impl Fn(TeamId) -> TicketFilter,
    changes: Vec<(usize, Change)>,
    (first, then): (usize, usize),
) {
    let (store, url, _database) = store_with_window(4).await;
    let customer = seed_customer(&store, "Rare", "rare@example.com").await;
    let team = seed_team(&store, "Couriers").await.id;
    let filter = filter(team);
    let mut tickets = Vec::new();
    for index in 0..60 {
        let mut draft = draft(customer.id, &format!("Parcel {index}"), None);
        seed(index, &mut draft, team);
        tickets.push(seed_ticket(&store, draft).await);
    }
    let inspect = inspector(&url).await;
    let found = || async {
        inspect
            .batch_execute("ANALYZE ticket_documents; ANALYZE tickets")
            .await
            .expect("analyses");
        let search = TicketSearch {
            query: otklik_search::parse_query("parcel").expect("a query"),
            filter: filter.clone(),
            visibility: Visibility::All,
            limit: 50,
        };
        found_ids(&store, &search).await
    };
    assert_eq!(found().await, vec![tickets[first].id]);
    for (index, change) in changes {
        let mut changed = tickets[index].clone();
        change(&mut changed, team);
        commit(
            &store,
            vec![Mutation::UpdateTicket {
                expected_version: changed.version,
                ticket: changed,
            }],
        )
        .await
        .expect("changed");
    }
    assert_eq!(found().await, vec![tickets[then].id]);
    store.close();
}

/// [`rare_filter_past_a_window`] for a filter that one ticket in sixty passes: `mark` makes a
/// ticket pass it (`true`) or not, as a draft and as a stored ticket. Ticket 20 passes, then
/// ticket 40 comes to pass it and ticket 20 leaves it.
async fn one_ticket_passes_past_a_window(
    filter: TicketFilter,
    mark_draft: fn(&mut NewTicket, bool),
    mark: fn(&mut Ticket, bool),
) {
    let enter: Change = Box::new(move |ticket, _| mark(ticket, true));
    let leave: Change = Box::new(move |ticket, _| mark(ticket, false));
    rare_filter_past_a_window(
        |index, draft, _| mark_draft(draft, index == 20),
        |_| filter.clone(),
        vec![(40, enter), (20, leave)],
        (20, 40),
    )
    .await;
}

/// Past a window of 4, a search for a status few tickets have asks the index for the status's
/// terms (V25) with the words.
#[tokio::test]
async fn past_its_window_a_search_for_a_rare_status_asks_the_index_and_follows_status_changes() {
    fn status(open: bool) -> TicketStatus {
        if open {
            TicketStatus::Open
        } else {
            TicketStatus::Solved
        }
    }
    one_ticket_passes_past_a_window(
        TicketFilter {
            statuses: vec![TicketStatus::Open],
            ..TicketFilter::default()
        },
        |draft, open| draft.status = status(open),
        |ticket, open| ticket.status = status(open),
    )
    .await;
}

/// Past a window of 4, a search for a team few tickets are routed to asks the index for the
/// team's term (V21) with the words.
#[tokio::test]
async fn past_its_window_a_search_for_a_rare_team_asks_the_index_and_follows_routing_changes() {
    let route: Change = Box::new(|ticket, team| ticket.team_id = Some(team));
    let unroute: Change = Box::new(|ticket, _| ticket.team_id = None);
    rare_filter_past_a_window(
        |index, draft, team| draft.team_id = (index == 20).then_some(team),
        |team| TicketFilter {
            team: Some(otklik_store::TeamFilter::Team(team)),
            ..TicketFilter::default()
        },
        vec![(40, route), (20, unroute)],
        (20, 40),
    )
    .await;
}

/// Past a window of 4, a search for a priority few tickets have asks the index for the
/// priority's terms (V26) with the words.
#[tokio::test]
async fn past_its_window_a_search_for_a_rare_priority_asks_the_index_and_follows_priority_changes()
{
    fn priority(urgent: bool) -> Priority {
        if urgent {
            Priority::Urgent
        } else {
            Priority::Normal
        }
    }
    one_ticket_passes_past_a_window(
        TicketFilter {
            priorities: vec![Priority::Urgent],
            ..TicketFilter::default()
        },
        |draft, urgent| draft.priority = priority(urgent),
        |ticket, urgent| ticket.priority = priority(urgent),
    )
    .await;
}

/// Tickets per era (V26), as `visibility_terms::ERA_TICKETS`.
const ERA_TICKETS: i64 = 16_384;

/// Imports 4 eras (V26) of 1,008 tickets each, numbered from the era's first number: one in 21
/// is a parcel of the agent's team (the newest of the era among them), one in 21 a parcel of
/// another team, the rest of the agent's team about something else (so the index would step
/// through many tickets the agent may see for the rest at once, and the rounds read era words,
/// V30); tickets of odd eras are solved. Analyses them
/// and searches «parcel» as that agent, with a window of 16 documents, for every status or for
/// `only_status`, a page of 200. Returns the tickets found and those the agent may see that
/// pass the filter, both sorted.
///
/// The window holds one visible match in 16, too few to walk on, and the planner expects few
/// matches, so the search asks the index; at that rate a page lies within a few eras, so it
/// asks two eras at a time (`EraRounds`): eras 3 and 2, then 1 and 0, each round finding 48
/// matches an era. An era left out is 48 matches missed.
///
/// With `era_words_deleted`, that era's era words (V30) are deleted before the search, and of
/// its matches only the newest is expected, in the window (deleting the newest era's: 3): the
/// rounds read the era words, and the last query asks the documents only for matches older
/// than the rounds found.
///
/// With `assigned_elsewhere`, every other one of the other team's parcels of odd eras is
/// assigned to the agent, who may open those: the rounds read the era words (V32) of that team
/// too, and still ask for the agent's terms of who may see a ticket, as the team's code no
/// longer implies them.
async fn search_era_by_era(
    only_status: Option<TicketStatus>,
    era_words_deleted: Option<i64>,
    assigned_elsewhere: bool,
) -> (Vec<TicketId>, Vec<TicketId>) {
    let (store, url, _database) = store_with_window(16).await;
    let inspect = inspector(&url).await;
    let customer = seed_customer(&store, "Eras", "eras@example.com").await;
    let mine = seed_team(&store, "Mine").await;
    let other = seed_team(&store, "Other").await;
    // A third team, so the codes of the teams the agent may see are not all of them.
    seed_team(&store, "Elsewhere").await;
    let agent = seed_agent(&store, "eras-agent@example.com", vec![mine.id]).await;
    let mut expected = Vec::new();
    for era in 0..4_i64 {
        inspect
            .execute(
                "SELECT setval('ticket_number_seq', $1::bigint)",
                &[&(era * ERA_TICKETS + 1)],
            )
            .await
            .expect("moves the ticket numbers to the era");
        let mut unit = Vec::new();
        for index in 0..1008 {
            let (subject, team) = match index % 21 {
                20 => ("Parcel of mine", mine.id),
                10 => ("Parcel of others", other.id),
                _ => ("Invoice copy", mine.id),
            };
            let mut ticket = draft(customer.id, subject, Some(team)).into_ticket(0);
            if era % 2 == 1 {
                ticket.status = TicketStatus::Solved;
            }
            let assigned = assigned_elsewhere
                && subject == "Parcel of others"
                && era % 2 == 1
                && (index / 21) % 2 == 0;
            if assigned {
                ticket.assignee_id = Some(agent.id);
            }
            let in_window = index == 1007;
            if (subject == "Parcel of mine" || assigned)
                && only_status.is_none_or(|status| status == ticket.status)
                && (era_words_deleted != Some(era) || in_window)
            {
                expected.push(ticket.id);
            }
            unit.push(Mutation::ImportTicket(Box::new(ticket)));
        }
        let numbers = commit(&store, unit).await.expect("imports the era");
        assert!(
            numbers.iter().all(|number| number / ERA_TICKETS == era),
            "every ticket in era {era}"
        );
    }
    if let Some(era) = era_words_deleted {
        inspect
            .execute(
                "DELETE FROM ticket_era_words w USING tickets t \
                 WHERE t.id = w.ticket_id AND t.number / $1::bigint = $2::bigint",
                &[&ERA_TICKETS, &era],
            )
            .await
            .expect("deletes an era's era words");
    }
    inspect
        .batch_execute("ANALYZE ticket_documents; ANALYZE tickets")
        .await
        .expect("analyses");
    let search = TicketSearch {
        query: otklik_search::parse_query("parcel ").expect("a query"),
        filter: TicketFilter {
            statuses: only_status.into_iter().collect(),
            ..TicketFilter::default()
        },
        visibility: Visibility::Agent {
            agent_id: agent.id,
            team_ids: vec![mine.id],
        },
        limit: 200,
    };
    let found = found_ids(&store, &search).await;
    store.close();
    expected.sort();
    (found, expected)
}

/// Past a window of 16, an agent's search for a word in a few tickets of each era asks the index
/// for two eras at a time (V26), and finds every visible match.
#[tokio::test]
async fn an_agents_search_asks_the_index_era_by_era_and_finds_every_visible_match() {
    let (found, expected) = search_era_by_era(None, None, false).await;
    assert_eq!(expected.len(), 192);
    assert_eq!(found, expected);
}

/// The rounds read an era's matches from its era words (V30), where GIN steps through the
/// word's postings in that era only: without the newest era's, its 47 matches past the window
/// are not found.
#[tokio::test]
async fn an_agents_search_reads_each_eras_matches_from_its_era_words() {
    let (found, expected) = search_era_by_era(None, Some(3), false).await;
    assert_eq!(expected.len(), 145);
    assert_eq!(found, expected);
}

/// The same, filtered by a status: the index finds the matches era by era with the status's
/// terms, then the rest at once, and keeps those that pass.
#[tokio::test]
async fn an_agents_filtered_search_asks_the_index_era_by_era_and_finds_every_match_that_passes() {
    let (found, expected) = search_era_by_era(Some(TicketStatus::Solved), None, false).await;
    assert_eq!(expected.len(), 96);
    assert_eq!(found, expected);
}

/// Era words are spelled by team (V32) and an agent's rounds read their teams' spellings, and
/// those of every team in which a ticket is assigned to them: the other team's 48 solved
/// parcels assigned to the agent are found with the agent's team's 96, and not the 48 that are
/// not. The first round reads era 3's era words; were the other team's missing there, the rest
/// would look only below the oldest match that round found, and miss them.
#[tokio::test]
async fn an_agents_rounds_find_tickets_assigned_to_them_in_a_team_they_are_not_in() {
    let (found, expected) = search_era_by_era(Some(TicketStatus::Solved), None, true).await;
    assert_eq!(expected.len(), 96 + 48);
    assert_eq!(found, expected);
}

/// Past a window of 4, a search for a tag asks the index for the tag's term (V27) with the words,
/// and follows every change of a ticket's tags.
#[tokio::test]
async fn past_its_window_a_search_for_a_tag_asks_the_index_and_follows_tag_changes() {
    fn tags(hazard: bool) -> Vec<String> {
        if hazard {
            vec!["hazard".into(), "fragile".into()]
        } else {
            vec!["fragile".into()]
        }
    }
    one_ticket_passes_past_a_window(
        TicketFilter {
            tag: Some("hazard".into()),
            ..TicketFilter::default()
        },
        |draft, hazard| draft.tags = tags(hazard),
        |ticket, hazard| ticket.tags = tags(hazard),
    )
    .await;
}

/// Past a window of 4, a search for a channel asks the index for the channel's term (V27) with
/// the words, and follows a change of channel.
#[tokio::test]
async fn past_its_window_a_search_for_a_channel_asks_the_index_and_follows_channel_changes() {
    fn channel(phone: bool) -> Channel {
        if phone {
            Channel::Phone
        } else {
            Channel::Email
        }
    }
    one_ticket_passes_past_a_window(
        TicketFilter {
            channels: vec![Channel::Phone],
            ..TicketFilter::default()
        },
        |draft, phone| draft.channel = channel(phone),
        |ticket, phone| ticket.channel = channel(phone),
    )
    .await;
}

/// Past a window of 4, the search walks on when half the matches are visible and asks the index
/// when a quarter are (see `WindowCounts::keep_walking`). Both find every visible match.
#[tokio::test]
async fn past_its_window_an_agents_search_walks_on_or_asks_the_index_and_finds_every_visible_match()
{
    for visible_every in [2, 4] {
        let (found, visible) = search_past_a_window(visible_every, None).await;
        assert_eq!(found, visible, "one in {visible_every} visible");
    }
}

/// Past a window of 4, a search for solved tickets is planned by PostgreSQL when half the
/// matches are visible, and asks the index when a quarter are. Both find exactly the visible
/// solved matches.
#[tokio::test]
async fn past_its_window_an_agents_filtered_search_finds_every_visible_match_that_passes_the_filter()
 {
    for visible_every in [2, 4] {
        let (found, expected) =
            search_past_a_window(visible_every, Some(TicketStatus::Solved)).await;
        assert_eq!(found, expected, "one in {visible_every} visible");
    }
}

/// A word in most older tickets but none of the newest (words of the last messages of solved
/// tickets): past a window of 4 with no match, the planner expects many, so the search walks a
/// stretch first instead of reading them all from the index; alone and with a filter, it finds
/// the newest of them all the same.
#[tokio::test]
async fn a_word_missing_from_the_newest_tickets_but_common_before_is_still_found_newest_first() {
    let (store, url, _database) = store_with_window(4).await;
    let inspect = inspector(&url).await;
    let customer = seed_customer(&store, "Older", "older@example.com").await;
    let mut older = Vec::new();
    for index in 0..60 {
        let subject = if index < 50 {
            format!("Gamma {index}")
        } else {
            format!("Delta {index}")
        };
        let mut draft = draft(customer.id, &subject, None);
        if index % 2 == 0 {
            draft.status = TicketStatus::Solved;
        }
        let solved = draft.status == TicketStatus::Solved;
        let ticket = seed_ticket(&store, draft).await;
        if index < 50 {
            older.push((ticket.id, solved));
        }
    }
    inspect
        .batch_execute("ANALYZE ticket_documents; ANALYZE tickets")
        .await
        .expect("analyses");
    for filter in [
        TicketFilter::default(),
        TicketFilter {
            statuses: vec![TicketStatus::Solved],
            ..TicketFilter::default()
        },
    ] {
        let solved_only = filter.narrows();
        let mut expected: Vec<TicketId> = older
            .iter()
            .filter(|(_, solved)| *solved || !solved_only)
            .map(|(id, _)| *id)
            .collect();
        expected.sort();
        let search = TicketSearch {
            query: otklik_search::parse_query("gamma ").expect("a query"),
            filter,
            visibility: Visibility::All,
            limit: 100,
        };
        assert_eq!(
            found_ids(&store, &search).await,
            expected,
            "solved only: {solved_only}"
        );
    }
    store.close();
}

/// The same word, with a date range the documents have no term for and the passing tickets not
/// listed first: past a window of 4 with no match the planner still expects many, but the
/// window saw none, so the search asks the index era by era and tests each match against the
/// range, and finds exactly those updated since.
#[tokio::test]
async fn a_word_missing_from_the_newest_tickets_is_found_within_a_date_range_era_by_era() {
    let (url, _database) = create_database().await;
    let store = PostgresStore::connect(&url, 2)
        .await
        .expect("connects")
        .with_search_window(4)
        .with_search_listing_at_most(0);
    let inspect = inspector(&url).await;
    let customer = seed_customer(&store, "Dated", "dated@example.com").await;
    let mut expected = Vec::new();
    for index in 0..60 {
        let subject = if index < 50 { "Gamma" } else { "Delta" };
        let mut draft = draft(customer.id, subject, None);
        // Every third gamma ticket was written later than the rest.
        let recent = index < 50 && index % 3 == 0;
        if recent {
            draft.created_at = at(1_000);
        }
        let ticket = seed_ticket(&store, draft).await;
        if recent {
            expected.push(ticket.id);
        }
    }
    inspect
        .batch_execute("ANALYZE ticket_documents; ANALYZE tickets")
        .await
        .expect("analyses");
    expected.sort();
    let search = TicketSearch {
        query: otklik_search::parse_query("gamma ").expect("a query"),
        filter: TicketFilter {
            updated_since: Some(at(500)),
            ..TicketFilter::default()
        },
        visibility: Visibility::All,
        limit: 100,
    };
    assert_eq!(found_ids(&store, &search).await, expected);
    store.close();
}

/// Words that are each common but rarely together: past a window of 4 that holds none of their
/// matches, a search by someone who sees every ticket asks the index rather than walking every
/// document; with a filter, the index's matches are tested against it. A word in every ticket
/// is walked. Each finds exactly its matches.
#[tokio::test]
async fn past_its_window_a_search_for_words_rarely_together_asks_the_index_and_finds_them() {
    let (store, url, _database) = store_with_window(4).await;
    let inspect = inspector(&url).await;
    let customer = seed_customer(&store, "Words", "words@example.com").await;
    let mut together = Vec::new();
    let mut every = Vec::new();
    for index in 0..40 {
        let subject = if index < 2 {
            format!("Alpha beta {index}")
        } else {
            format!("Alpha {index}")
        };
        let mut draft = draft(customer.id, &subject, None);
        if index == 0 {
            draft.status = TicketStatus::Solved;
        }
        let ticket = seed_ticket(&store, draft).await;
        if index < 2 {
            together.push(ticket.id);
        }
        every.push(ticket.id);
    }
    inspect
        .batch_execute("ANALYZE ticket_documents; ANALYZE tickets")
        .await
        .expect("analyses");
    let search = |words: &str, filter: TicketFilter| TicketSearch {
        query: otklik_search::parse_query(words).expect("a query"),
        filter,
        visibility: Visibility::All,
        limit: 50,
    };
    together.sort();
    every.sort();
    assert_eq!(
        found_ids(&store, &search("alpha beta ", TicketFilter::default())).await,
        together
    );
    let solved = TicketFilter {
        statuses: vec![TicketStatus::Solved],
        ..TicketFilter::default()
    };
    assert_eq!(
        found_ids(&store, &search("alpha beta ", solved)).await,
        vec![together[0].min(together[1])],
        "the older of the two is the solved one"
    );
    assert_eq!(
        found_ids(&store, &search("alpha ", TicketFilter::default())).await,
        every
    );
    store.close();
}

/// V21, V25, V26 and V27 write into the documents of tickets created before them who may see
/// them, their status, priority, era, channel and tags, as the store now writes them: the same
/// documents, term for term.
#[tokio::test]
async fn the_migrations_that_write_who_may_see_each_document_and_its_status_write_what_the_store_writes()
 {
    let fixture = fixture(2).await;
    let store = &fixture.store;
    let customer = seed_customer(store, "Before", "before@example.com").await;
    let team = seed_team(store, "Routed").await;
    let agent = seed_agent(store, "assignee@shop.test", vec![team.id]).await;
    let mut assigned = draft(customer.id, "Routed and assigned", Some(team.id));
    assigned.assignee_id = Some(agent.id);
    seed_ticket(store, assigned).await;
    seed_ticket(store, draft(customer.id, "Nobody's yet", None)).await;
    let written = document_texts(&fixture.inspect).await;
    assert!(
        written.iter().all(|(_, document)| document.contains("'T")
            && document.contains("'TNONE'") != document.contains("'A")
            && document.contains("'SNEW'")
            && document.contains("'PNORMAL'")
            && document.contains("'E0'")
            && document.contains("'CEMAIL'")),
        "a routed and assigned ticket, and one of no team and no assignee, both new and of \
         normal priority: {written:?}"
    );
    // The documents as they stood before V21: the text's terms only.
    fixture
        .inspect
        .batch_execute(
            "UPDATE ticket_documents d SET document = array_to_tsvector(array_remove( \
                 string_to_array(s.subject_terms || ' ' || s.body_terms, ' '), '')) \
             FROM ticket_search s WHERE s.ticket_id = d.ticket_id",
        )
        .await
        .expect("strips");
    let v21 = std::fs::read_to_string(
        crate_dir().join("migrations/V21__documents_know_who_may_see_them.sql"),
    )
    .expect("V21 is readable");
    fixture.inspect.batch_execute(&v21).await.expect("V21 runs");
    let v25 = std::fs::read_to_string(
        crate_dir().join("migrations/V25__documents_know_each_tickets_status.sql"),
    )
    .expect("V25 is readable");
    fixture.inspect.batch_execute(&v25).await.expect("V25 runs");
    let v26 = std::fs::read_to_string(
        crate_dir().join("migrations/V26__documents_know_each_tickets_priority_and_era.sql"),
    )
    .expect("V26 is readable");
    fixture.inspect.batch_execute(&v26).await.expect("V26 runs");
    let v27 = std::fs::read_to_string(
        crate_dir().join("migrations/V27__documents_know_each_tickets_channel_and_tags.sql"),
    )
    .expect("V27 is readable");
    fixture.inspect.batch_execute(&v27).await.expect("V27 runs");
    assert_eq!(document_texts(&fixture.inspect).await, written);
}

/// Every search document as text, by ticket id.
async fn document_texts(client: &tokio_postgres::Client) -> Vec<(Uuid, String)> {
    client
        .query(
            "SELECT ticket_id, document::text FROM ticket_documents ORDER BY ticket_id",
            &[],
        )
        .await
        .expect("reads the documents")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// The crate's folder in the checkout being tested: cargo and nextest set the variable when they
/// run the test too. The path built in is the fallback only: a target folder shared between
/// checkouts may run a binary built in another, since removed.
fn crate_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
