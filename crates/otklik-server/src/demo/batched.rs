//! The batched path: large datasets (for scale work) generated on a thread of their own and
//! written straight through the storage port in big units of work, hundreds of tickets each.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use otklik_app::App;
use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::customer::{Customer, Identity, IdentityKind, IdentityValue};
use otklik_domain::ids::{CustomerId, IdentityId, MessageId, TicketId};
use otklik_domain::message::{Author, Message, MessageVisibility};
use otklik_domain::permission::Principal;
use otklik_domain::ticket::{Channel, NewTicket, TicketStatus};
use otklik_store::{Backend, Mutation, UnitOfWork};
use rand::Rng;
use rand::rngs::StdRng;

use super::people::{
    CHANNEL_WEIGHTS, EN_MAIL_DOMAINS, MARKETPLACES, Person, RU_MAIL_DOMAINS, identity, person,
    pick, reachable_on, weighted,
};
use super::stories::{
    ABROAD_CARRIERS, Beat, KIND_WEIGHTS, MARKETPLACE_KIND_WEIGHTS, RU_CARRIERS, agent_reply,
    beat_delay, beats, marketplace_of, story,
};
use super::{Batching, Counts, Staff, UNITS_AHEAD, ago, later, minutes};

/// Identities of batched customer `key`: shapes the use-case path never makes (an e-mail
/// ending in `.<key>`, phones starting +7 96…, 10-digit Telegram ids starting with 8, …), unique
/// per key through multiplications that are bijections modulo a power of ten.
pub(super) fn batch_identities(
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

pub(super) fn batch_phone(key: u64) -> String {
    format!("+796{:08}", (key * 7_654_321 + 12_345) % 100_000_000)
}

/// Keys of one batched run start at `generation * KEYS_PER_RUN`.
pub(super) const KEYS_PER_RUN: u64 = 10_000_000;

/// Every tag a demo ticket can carry.
pub(super) fn every_tag() -> Vec<&'static str> {
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
pub(super) async fn ensure_tags(app: &App, principal: &Principal) -> anyhow::Result<()> {
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
pub(super) fn batch_status(rng: &mut StdRng, age: SignedDuration) -> TicketStatus {
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
pub(super) fn batch_message_count(rng: &mut StdRng, status: TicketStatus) -> usize {
    if status == TicketStatus::New {
        return if rng.random_bool(0.7) { 1 } else { 2 };
    }
    weighted(rng, &[(2, 15), (3, 35), (4, 30), (5, 20)])
}

/// Writes one ticket of the batched path into `unit`: the ticket in its final state, its whole
/// thread and its `ticket.created` audit event. Returns how many messages it has.
pub(super) fn push_batch_ticket(
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
pub(super) struct BatchCustomer {
    pub(super) id: CustomerId,
    pub(super) person: Person,
    pub(super) kinds: Vec<IdentityKind>,
    pub(super) marketplace: Option<usize>,
    pub(super) vip: bool,
    /// The index of their first ticket in this run.
    pub(super) first_ticket: usize,
}

/// The fixed inputs of the batched generator.
#[derive(Clone)]
pub(super) struct BatchPlan {
    pub(super) tickets: usize,
    pub(super) tickets_per_unit: usize,
    /// A ticket reuses only customers whose first ticket is at least this many tickets earlier.
    pub(super) customer_lag: usize,
    pub(super) first_key: u64,
    pub(super) start: Timestamp,
    pub(super) step_micros: i64,
    pub(super) now: Timestamp,
    pub(super) actor: Actor,
}

/// One unit of the batched path, ready to commit, and what it holds.
pub(super) struct Batch {
    pub(super) unit: UnitOfWork,
    pub(super) counts: Counts,
}

/// The customers a ticket may reuse: those whose first ticket is at least `lag` tickets before
/// `ticket`. `first_tickets` is ascending; `known` is the answer for an earlier ticket (the
/// count only grows).
pub(super) fn reusable_customers(
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
pub(super) fn generate_batches(
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
pub(super) type PendingCommit =
    tokio::task::JoinHandle<otklik_store::StoreResult<otklik_store::CommitReceipt>>;

/// Hands `unit` to the store and lets the commit finish on its own task. The commit is polled
/// once here, before this returns: on that first poll the SQLite store queues a light unit for
/// its writer thread, or takes its turn for a heavy one (analysed on a blocking thread first), so
/// units reach the writer in the order they were submitted and ticket numbers follow time.
/// (Correctness does not rest on it: a unit only refers to customers of units already
/// acknowledged.)
pub(super) fn submit(store: Arc<dyn otklik_store::Store>, unit: UnitOfWork) -> PendingCommit {
    use std::future::Future;
    let mut commit = Box::pin(async move { store.commit(unit).await });
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match commit.as_mut().poll(&mut context) {
        std::task::Poll::Ready(outcome) => tokio::spawn(std::future::ready(outcome)),
        std::task::Poll::Pending => tokio::spawn(commit),
    }
}

pub(super) async fn finish(commit: PendingCommit) -> anyhow::Result<()> {
    commit
        .await
        .context("a demo batch commit panicked")?
        .context("a demo batch commit failed")?;
    Ok(())
}

pub(super) async fn load_batched(
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
pub(super) async fn write_batches(
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
pub(super) const PROGRESS_INTERVAL: Duration = Duration::from_secs(5);

/// Says, every [`PROGRESS_INTERVAL`], how many of a batched demo's tickets are written.
pub(super) struct Progress {
    pub(super) started: Instant,
    pub(super) last: Instant,
    pub(super) total: usize,
}

impl Progress {
    pub(super) fn new(total: usize) -> Self {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            total,
        }
    }

    /// `done` tickets are written (or committing).
    pub(super) fn written(&mut self, done: usize) {
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
pub(super) fn progress_line(done: usize, total: usize, elapsed: Duration) -> String {
    let percent = done.saturating_mul(100) / total.max(1);
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        done as f64 / seconds
    } else {
        0.0
    };
    format!("demo: {done} of {total} tickets written ({percent}%), {rate:.0} tickets/s")
}
