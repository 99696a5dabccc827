//! The use-case path: a few thousand tickets told through the [`App`]'s use cases on a clock
//! moved by hand, so their audit history is the real one.

use std::collections::HashSet;

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use otklik_app::App;
use otklik_app::customers::CreateCustomerInput;
use otklik_app::tickets::{AddMessageInput, AuthorKind, CreateTicketInput, CustomerRef};
use otklik_domain::customer::{IdentityKind, IdentityValue};
use otklik_domain::ids::CustomerId;
use otklik_domain::message::MessageVisibility;
use otklik_domain::permission::Principal;
use otklik_domain::ticket::{Channel, Priority, TicketPatch, TicketStatus};
use rand::Rng;
use rand::rngs::StdRng;

use super::people::{CHANNEL_WEIGHTS, IdentityFactory, Person, person, reachable_on, weighted};
use super::stories::{
    Beat, STATUS_WEIGHTS, Story, age_minutes, agent_reply, beat_delay, marketplace_of, story,
};
use super::{Counts, DemoClock, Staff, ago, later, minutes};

pub(super) struct DemoCustomer {
    pub(super) id: CustomerId,
    pub(super) person: Person,
    pub(super) kinds: Vec<IdentityKind>,
    pub(super) marketplace: Option<usize>,
    pub(super) vip: bool,
}

pub(super) enum Requester {
    Existing(usize),
    New {
        person: Person,
        identity: IdentityValue,
    },
}

pub(super) struct Plan {
    pub(super) created_at: Timestamp,
    pub(super) requester: Requester,
    pub(super) story: Story,
    /// Routed to a team on arrival (by channel rules) rather than at triage.
    pub(super) routed_on_arrival: bool,
    /// Index in `Staff::members`: who answers.
    pub(super) assignee: usize,
    /// Index in `Staff::members` of who logged a phone call; `None` for the admin.
    pub(super) creator: Option<usize>,
    /// Raised or lowered at triage.
    pub(super) triage_priority: Option<Priority>,
    /// The internal note is the supervisor's advice rather than the agent's own.
    pub(super) note_by_supervisor: bool,
    pub(super) times: Vec<Timestamp>,
}

pub(super) async fn load_with_use_cases(
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
pub(super) async fn create_or_find_customer(
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
pub(super) async fn tell(
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
