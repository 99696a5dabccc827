//! The conformance suite: the behaviour every backend must show, written once against
//! `dyn Store`. A backend runs it with [`conformance_tests!`](crate::conformance_tests), which
//! expands to one named test per case:
//!
//! ```ignore
//! otklik_store::conformance_tests!(my_backend_tests::fresh_store);
//! ```
//!
//! where `fresh_store()` is an `async fn() -> TestStore` giving an empty, migrated database.

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;
use otklik_domain::agent::{Agent, Role, Tag, Team};
use otklik_domain::attachment::AttachmentMeta;
use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::customer::{Customer, CustomerMerge, Identity, IdentityKind, IdentityValue};
use otklik_domain::ids::*;
use otklik_domain::message::{Author, Message, MessageVisibility};
use otklik_domain::permission::Scope;
use otklik_domain::ticket::{Channel, NewTicket, Priority, Ticket, TicketStatus};

use crate::*;

/// An empty, migrated store and whatever keeps its database alive (a temp folder, a database
/// that is dropped when the guard is).
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub guard: Box<dyn Any + Send>,
}

/// Expands to one `#[tokio::test]` per conformance case, each on a fresh store from `$factory`.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@cases $factory;
            a_new_ticket_reads_back_equal_with_the_next_number,
            concurrent_ticket_inserts_get_distinct_numbers,
            a_stale_ticket_version_is_refused_and_changes_nothing,
            a_failing_mutation_rolls_back_the_whole_unit,
            tickets_list_newest_first_and_pages_by_cursor_without_gaps_or_repeats,
            every_ticket_filter_keeps_only_matching_tickets,
            an_agent_visibility_hides_tickets_of_other_teams,
            tags_are_created_on_use_and_deleting_a_tag_removes_it_from_tickets,
            messages_read_back_in_order_with_attachments_and_move_on_merge,
            customers_read_back_with_identities_and_an_identity_belongs_to_one_customer,
            customers_are_read_in_one_batch_by_id_with_their_identities,
            customer_merges_move_identities_and_tickets_and_undo_exactly,
            agents_read_back_with_teams_and_emails_are_unique,
            deleting_a_team_unroutes_its_tickets_and_ends_memberships,
            tokens_sessions_and_setup_tokens_round_trip,
            a_setup_token_can_be_consumed_only_once,
            a_claimed_idempotency_key_is_found_and_cannot_be_claimed_twice,
            audit_events_read_back_oldest_first,
            the_logical_schema_lists_the_core_tables,
            search_finds_tickets_by_stems_numbers_and_prefixes_best_first,
            search_keeps_to_the_filters_and_the_callers_visibility,
            the_search_index_follows_edits_replies_and_merges_and_rebuilds_the_same,
            customers_are_found_by_name_e_mail_and_phone,
            maintained_counts_equal_a_scan_after_every_kind_of_change,
            saved_views_round_trip_and_personal_views_stay_personal,
            mailboxes_round_trip_and_names_and_addresses_are_unique,
            an_email_is_recorded_once_per_dedup_key_and_found_by_its_message_id,
            due_outbound_emails_are_claimed_once_until_their_lease_ends,
            automatic_emails_are_counted_per_recipient_and_hour,
            imap_cursors_and_instance_secrets_round_trip,
            a_lease_has_one_holder_until_it_ends_or_is_released,
            an_agents_locale_is_saved_on_its_own_without_a_new_version,
            a_password_reset_token_is_spent_once_expires_and_a_newer_one_voids_it,
            settings_are_saved_replaced_and_removed,
            every_ticket_sort_pages_without_gaps_or_repeats
        );
    };
    (@cases $factory:path; $($case:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let test_store = $factory().await;
                $crate::conformance::$case(test_store.store.clone()).await;
                drop(test_store);
            }
        )+
    };
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).expect("valid test time")
}

fn new_customer(name: &str, email: &str) -> Customer {
    let id = CustomerId::new();
    Customer {
        id,
        name: name.into(),
        language: Some("ru".into()),
        identities: vec![Identity {
            id: IdentityId::new(),
            customer_id: id,
            value: IdentityValue::parse(IdentityKind::Email, None, email).expect("valid email"),
            created_at: at(0),
        }],
        merged_into: None,
        created_at: at(0),
        updated_at: at(0),
        version: 1,
    }
}

fn new_ticket(customer_id: CustomerId, subject: &str, created: i64) -> NewTicket {
    NewTicket {
        id: TicketId::new(),
        subject: subject.into(),
        status: TicketStatus::New,
        priority: Priority::Normal,
        channel: Channel::Email,
        customer_id,
        assignee_id: None,
        team_id: None,
        tags: vec![],
        created_at: at(created),
    }
}

fn new_agent(email: &str, role: Role, team_ids: Vec<TeamId>) -> Agent {
    Agent {
        id: AgentId::new(),
        email: email.into(),
        name: format!("Agent {email}"),
        role,
        team_ids,
        active: true,
        created_at: at(0),
        updated_at: at(0),
        version: 1,
        locale: None,
    }
}

fn query(visibility: Visibility, filter: TicketFilter) -> TicketQuery {
    TicketQuery {
        filter,
        visibility,
        after: None,
        limit: MAX_PAGE_SIZE,
    }
}

async fn commit(store: &Arc<dyn Store>, mutations: Vec<Mutation>) -> CommitReceipt {
    store
        .commit(UnitOfWork { mutations })
        .await
        .expect("commit succeeds")
}

async fn seed_customer(store: &Arc<dyn Store>, name: &str, email: &str) -> Customer {
    let customer = new_customer(name, email);
    commit(store, vec![Mutation::InsertCustomer(customer.clone())]).await;
    customer
}

async fn seed_ticket(store: &Arc<dyn Store>, ticket: NewTicket) -> Ticket {
    let receipt = commit(store, vec![Mutation::InsertTicket(ticket.clone())]).await;
    ticket.into_ticket(receipt.ticket_numbers[0])
}

async fn seed_team(store: &Arc<dyn Store>, name: &str) -> Team {
    let team = Team {
        id: TeamId::new(),
        name: name.into(),
        created_at: at(0),
    };
    commit(store, vec![Mutation::InsertTeam(team.clone())]).await;
    team
}

fn ids(tickets: &[Ticket]) -> Vec<TicketId> {
    tickets.iter().map(|ticket| ticket.id).collect()
}

pub async fn a_new_ticket_reads_back_equal_with_the_next_number(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "Анна", "anna@example.ru").await;
    let mut draft = new_ticket(customer.id, "Где мой заказ?", 1);
    draft.tags = vec!["доставка".into(), "vip".into()];
    let first = seed_ticket(&store, draft).await;
    let second = seed_ticket(&store, new_ticket(customer.id, "Second", 2)).await;
    assert_eq!(second.number, first.number + 1);
    let mut expected = first.clone();
    expected.tags.sort();
    assert_eq!(
        store.find_ticket(first.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store.find_ticket_by_number(first.number).await.unwrap(),
        Some(expected)
    );
    assert_eq!(store.find_ticket(TicketId::new()).await.unwrap(), None);
}

pub async fn concurrent_ticket_inserts_get_distinct_numbers(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "Boris", "boris@example.com").await;
    let mut tasks = Vec::new();
    for index in 0..40 {
        let store = store.clone();
        let draft = new_ticket(customer.id, &format!("Ticket {index}"), index);
        tasks.push(tokio::spawn(async move {
            store
                .commit(UnitOfWork::new().with(Mutation::InsertTicket(draft)))
                .await
        }));
    }
    let mut numbers = BTreeSet::new();
    for task in tasks {
        let receipt = task.await.expect("task runs").expect("commit succeeds");
        assert!(
            numbers.insert(receipt.ticket_numbers[0]),
            "duplicate number"
        );
    }
    assert_eq!(numbers.len(), 40);
}

pub async fn a_stale_ticket_version_is_refused_and_changes_nothing(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "C", "c@example.com").await;
    let ticket = seed_ticket(&store, new_ticket(customer.id, "Subject", 1)).await;
    let mut first_edit = ticket.clone();
    first_edit.priority = Priority::High;
    first_edit.tags = vec!["a".into()];
    commit(
        &store,
        vec![Mutation::UpdateTicket {
            ticket: first_edit.clone(),
            expected_version: 1,
        }],
    )
    .await;
    let mut stale_edit = ticket.clone();
    stale_edit.priority = Priority::Low;
    let error = store
        .commit(UnitOfWork::new().with(Mutation::UpdateTicket {
            ticket: stale_edit,
            expected_version: 1,
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::VersionConflict { .. }),
        "{error:?}"
    );
    let stored = store.find_ticket(ticket.id).await.unwrap().unwrap();
    assert_eq!(stored.priority, Priority::High);
    assert_eq!(stored.tags, vec!["a".to_owned()]);
    assert_eq!(stored.version, 2);
}

pub async fn a_failing_mutation_rolls_back_the_whole_unit(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "D", "d@example.com").await;
    let key = IdempotencyRecord {
        principal: "agent:x".into(),
        key: "k1".into(),
        fingerprint: "f".into(),
        resource_kind: "ticket".into(),
        resource_id: uuid::Uuid::now_v7(),
        created_at: at(0),
    };
    commit(&store, vec![Mutation::ClaimIdempotencyKey(key.clone())]).await;
    let draft = new_ticket(customer.id, "Never saved", 1);
    let audit = AuditEvent::new(
        at(1),
        Actor::System,
        "ticket.created",
        "ticket",
        draft.id.0,
        vec![],
    );
    let error = store
        .commit(UnitOfWork {
            mutations: vec![
                Mutation::InsertTicket(draft.clone()),
                Mutation::Audit(audit),
                Mutation::ClaimIdempotencyKey(key),
            ],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict { constraint } if constraint == "idempotency_keys"),
        "{error:?}"
    );
    assert_eq!(store.find_ticket(draft.id).await.unwrap(), None);
    assert!(
        store
            .list_audit_events(draft.id.0)
            .await
            .unwrap()
            .is_empty()
    );
    // The store keeps working after a rolled-back unit.
    seed_ticket(&store, new_ticket(customer.id, "Saved", 2)).await;
}

pub async fn tickets_list_newest_first_and_pages_by_cursor_without_gaps_or_repeats(
    store: Arc<dyn Store>,
) {
    let customer = seed_customer(&store, "E", "e@example.com").await;
    let mut created = Vec::new();
    for index in 0..25 {
        // Pairs share a timestamp so the id breaks ties.
        created.push(
            seed_ticket(
                &store,
                new_ticket(customer.id, &format!("T{index}"), index / 2),
            )
            .await,
        );
    }
    let mut expected = created.clone();
    expected.sort_by_key(|t| std::cmp::Reverse((t.updated_at, t.id)));
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_tickets(&TicketQuery {
                filter: TicketFilter::default(),
                visibility: Visibility::All,
                after,
                limit: 7,
            })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        let last = page.last().unwrap();
        after = Some(TicketCursor {
            updated_at: last.updated_at,
            id: last.id,
        });
        seen.extend(page);
    }
    assert_eq!(ids(&seen), ids(&expected));
}

pub async fn every_ticket_filter_keeps_only_matching_tickets(store: Arc<dyn Store>) {
    let anna = seed_customer(&store, "Anna", "anna@example.com").await;
    let boris = seed_customer(&store, "Boris", "boris@example.com").await;
    let team = seed_team(&store, "Delivery").await;
    let agent = new_agent("agent@shop.test", Role::Agent, vec![]);
    commit(
        &store,
        vec![Mutation::InsertAgent {
            agent: agent.clone(),
            password_hash: None,
        }],
    )
    .await;

    let plain = seed_ticket(&store, new_ticket(anna.id, "plain", 1)).await;
    let mut draft = new_ticket(boris.id, "rich", 5);
    draft.status = TicketStatus::Open;
    draft.priority = Priority::Urgent;
    draft.channel = Channel::Chat;
    draft.assignee_id = Some(agent.id);
    draft.team_id = Some(team.id);
    draft.tags = vec!["refund".into()];
    let rich = seed_ticket(&store, draft).await;

    let cases: Vec<(&str, TicketFilter, Vec<TicketId>)> = vec![
        (
            "status",
            TicketFilter {
                statuses: vec![TicketStatus::Open],
                ..Default::default()
            },
            vec![rich.id],
        ),
        (
            "two statuses",
            TicketFilter {
                statuses: vec![TicketStatus::Open, TicketStatus::New],
                ..Default::default()
            },
            vec![rich.id, plain.id],
        ),
        (
            "priority",
            TicketFilter {
                priorities: vec![Priority::Normal],
                ..Default::default()
            },
            vec![plain.id],
        ),
        (
            "channel",
            TicketFilter {
                channels: vec![Channel::Chat],
                ..Default::default()
            },
            vec![rich.id],
        ),
        (
            "assignee",
            TicketFilter {
                assignee: Some(AssigneeFilter::Agent(agent.id)),
                ..Default::default()
            },
            vec![rich.id],
        ),
        (
            "unassigned",
            TicketFilter {
                assignee: Some(AssigneeFilter::Unassigned),
                ..Default::default()
            },
            vec![plain.id],
        ),
        (
            "team",
            TicketFilter {
                team: Some(TeamFilter::Team(team.id)),
                ..Default::default()
            },
            vec![rich.id],
        ),
        (
            "no team",
            TicketFilter {
                team: Some(TeamFilter::NoTeam),
                ..Default::default()
            },
            vec![plain.id],
        ),
        (
            "tag",
            TicketFilter {
                tag: Some("refund".into()),
                ..Default::default()
            },
            vec![rich.id],
        ),
        (
            "unknown tag",
            TicketFilter {
                tag: Some("nope".into()),
                ..Default::default()
            },
            vec![],
        ),
        (
            "customer",
            TicketFilter {
                customer_id: Some(anna.id),
                ..Default::default()
            },
            vec![plain.id],
        ),
        (
            "updated since",
            TicketFilter {
                updated_since: Some(at(3)),
                ..Default::default()
            },
            vec![rich.id],
        ),
    ];
    for (name, filter, expected) in cases {
        let listed = store
            .list_tickets(&query(Visibility::All, filter))
            .await
            .unwrap();
        assert_eq!(ids(&listed), expected, "filter {name}");
    }

    // A merged ticket is hidden unless asked for.
    let mut merged = plain.clone();
    merged.merged_into = Some(rich.id);
    merged.status = TicketStatus::Closed;
    commit(
        &store,
        vec![Mutation::UpdateTicket {
            ticket: merged,
            expected_version: 1,
        }],
    )
    .await;
    let listed = store
        .list_tickets(&query(Visibility::All, TicketFilter::default()))
        .await
        .unwrap();
    assert_eq!(ids(&listed), vec![rich.id]);
    let all = TicketFilter {
        include_merged: true,
        ..Default::default()
    };
    assert_eq!(
        store
            .list_tickets(&query(Visibility::All, all))
            .await
            .unwrap()
            .len(),
        2
    );
}

pub async fn an_agent_visibility_hides_tickets_of_other_teams(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "F", "f@example.com").await;
    let mine = seed_team(&store, "Mine").await;
    let other = seed_team(&store, "Other").await;
    let agent = new_agent("a@shop.test", Role::Agent, vec![mine.id]);
    commit(
        &store,
        vec![Mutation::InsertAgent {
            agent: agent.clone(),
            password_hash: None,
        }],
    )
    .await;

    let unrouted = seed_ticket(&store, new_ticket(customer.id, "unrouted", 1)).await;
    let mut draft = new_ticket(customer.id, "my team", 2);
    draft.team_id = Some(mine.id);
    let my_team = seed_ticket(&store, draft).await;
    let mut draft = new_ticket(customer.id, "other team", 3);
    draft.team_id = Some(other.id);
    let hidden = seed_ticket(&store, draft).await;
    let mut draft = new_ticket(customer.id, "other team, assigned to me", 4);
    draft.team_id = Some(other.id);
    draft.assignee_id = Some(agent.id);
    let assigned = seed_ticket(&store, draft).await;

    let visibility = Visibility::Agent {
        agent_id: agent.id,
        team_ids: vec![mine.id],
    };
    let listed = store
        .list_tickets(&query(visibility.clone(), TicketFilter::default()))
        .await
        .unwrap();
    assert_eq!(ids(&listed), vec![assigned.id, my_team.id, unrouted.id]);
    let filtered = TicketFilter {
        team: Some(TeamFilter::Team(other.id)),
        ..Default::default()
    };
    let listed = store
        .list_tickets(&query(visibility, filtered))
        .await
        .unwrap();
    assert_eq!(ids(&listed), vec![assigned.id]);
    assert!(!ids(&listed).contains(&hidden.id));
}

pub async fn tags_are_created_on_use_and_deleting_a_tag_removes_it_from_tickets(
    store: Arc<dyn Store>,
) {
    let customer = seed_customer(&store, "G", "g@example.com").await;
    let existing = Tag {
        id: TagId::new(),
        name: "vip".into(),
        created_at: at(0),
    };
    commit(&store, vec![Mutation::InsertTag(existing.clone())]).await;
    let duplicate = Tag {
        id: TagId::new(),
        name: "vip".into(),
        created_at: at(0),
    };
    let error = store
        .commit(UnitOfWork::new().with(Mutation::InsertTag(duplicate)))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict { constraint } if constraint == "tags.name"),
        "{error:?}"
    );

    let mut draft = new_ticket(customer.id, "tagged", 1);
    draft.tags = vec!["vip".into(), "возврат".into()];
    let ticket = seed_ticket(&store, draft).await;
    let names: Vec<_> = store
        .list_tags()
        .await
        .unwrap()
        .into_iter()
        .map(|tag| tag.name)
        .collect();
    assert_eq!(names, vec!["vip", "возврат"]);

    commit(&store, vec![Mutation::DeleteTag(existing.id)]).await;
    let stored = store.find_ticket(ticket.id).await.unwrap().unwrap();
    assert_eq!(stored.tags, vec!["возврат".to_owned()]);
    assert_eq!(store.find_tag(existing.id).await.unwrap(), None);
    let error = store
        .commit(UnitOfWork::new().with(Mutation::DeleteTag(existing.id)))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub async fn messages_read_back_in_order_with_attachments_and_move_on_merge(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "H", "h@example.com").await;
    let source = seed_ticket(&store, new_ticket(customer.id, "source", 1)).await;
    let target = seed_ticket(&store, new_ticket(customer.id, "target", 2)).await;
    let message_id = MessageId::new();
    let attachment = AttachmentMeta {
        id: AttachmentId::new(),
        ticket_id: source.id,
        message_id,
        file_name: "чек.pdf".into(),
        content_type: "application/pdf".into(),
        size_bytes: 1234,
        sha256: "ab".repeat(32),
    };
    let first = Message {
        id: message_id,
        ticket_id: source.id,
        author: Author::Customer(customer.id),
        visibility: MessageVisibility::Public,
        channel: Channel::Email,
        body: "Здравствуйте, где заказ?".into(),
        attachments: vec![attachment.clone()],
        created_at: at(1),
    };
    let note = Message {
        id: MessageId::new(),
        ticket_id: source.id,
        author: Author::System,
        visibility: MessageVisibility::Internal,
        channel: Channel::Api,
        body: "note".into(),
        attachments: vec![],
        created_at: at(2),
    };
    let on_target = Message {
        id: MessageId::new(),
        ticket_id: target.id,
        created_at: at(0),
        ..note.clone()
    };
    commit(
        &store,
        vec![
            Mutation::InsertMessage(first.clone()),
            Mutation::InsertMessage(note.clone()),
            Mutation::InsertMessage(on_target.clone()),
        ],
    )
    .await;
    assert_eq!(
        store.list_messages(source.id).await.unwrap(),
        vec![first.clone(), note.clone()]
    );
    assert_eq!(
        store.find_attachment(attachment.id).await.unwrap(),
        Some(attachment.clone())
    );

    commit(
        &store,
        vec![Mutation::MoveMessages {
            from: source.id,
            to: target.id,
        }],
    )
    .await;
    assert!(store.list_messages(source.id).await.unwrap().is_empty());
    let moved = store.list_messages(target.id).await.unwrap();
    assert_eq!(
        moved.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![on_target.id, first.id, note.id]
    );
    let moved_attachment = store.find_attachment(attachment.id).await.unwrap().unwrap();
    assert_eq!(moved_attachment.ticket_id, target.id);
}

pub async fn customers_read_back_with_identities_and_an_identity_belongs_to_one_customer(
    store: Arc<dyn Store>,
) {
    let anna = seed_customer(&store, "Анна", "anna@example.ru").await;
    let phone = Identity {
        id: IdentityId::new(),
        customer_id: anna.id,
        value: IdentityValue::parse(IdentityKind::Phone, None, "8 916 123-45-67").unwrap(),
        created_at: at(1),
    };
    let telegram = Identity {
        id: IdentityId::new(),
        customer_id: anna.id,
        value: IdentityValue::parse(IdentityKind::Messenger, Some("telegram"), "777").unwrap(),
        created_at: at(2),
    };
    commit(
        &store,
        vec![
            Mutation::InsertIdentity(phone.clone()),
            Mutation::InsertIdentity(telegram.clone()),
        ],
    )
    .await;
    let stored = store.find_customer(anna.id).await.unwrap().unwrap();
    assert_eq!(stored.identities.len(), 3);
    assert_eq!(stored.name, "Анна");
    let by_phone = store
        .find_customer_by_identity(&phone.value)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_phone.id, anna.id);

    let mut boris = new_customer("Boris", "boris@example.com");
    boris.identities[0].value = phone.value.clone();
    let error = store
        .commit(UnitOfWork::new().with(Mutation::InsertCustomer(boris.clone())))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict { constraint } if constraint == "customer_identities.value"),
        "{error:?}"
    );
    assert_eq!(store.find_customer(boris.id).await.unwrap(), None);

    commit(&store, vec![Mutation::DeleteIdentity(telegram.id)]).await;
    assert_eq!(
        store
            .find_customer_by_identity(&telegram.value)
            .await
            .unwrap(),
        None
    );

    let mut renamed = stored.clone();
    renamed.name = "Анна Петрова".into();
    renamed.language = None;
    commit(
        &store,
        vec![Mutation::UpdateCustomer {
            customer: renamed,
            expected_version: 1,
        }],
    )
    .await;
    let stored = store.find_customer(anna.id).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.name.as_str(),
            stored.language.clone(),
            stored.version
        ),
        ("Анна Петрова", None, 2)
    );

    let second = seed_customer(&store, "Second", "second@example.com").await;
    let listed = store
        .list_customers(&CustomerQuery {
            include_merged: false,
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![second.id, anna.id]
    );
    let page = store
        .list_customers(&CustomerQuery {
            include_merged: false,
            after: Some(second.id),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(page.iter().map(|c| c.id).collect::<Vec<_>>(), vec![anna.id]);
}

pub async fn customers_are_read_in_one_batch_by_id_with_their_identities(store: Arc<dyn Store>) {
    let anna = seed_customer(&store, "Анна", "anna@example.ru").await;
    let boris = seed_customer(&store, "Boris", "boris@example.com").await;
    let vera = seed_customer(&store, "Вера", "vera@example.ru").await;
    let phone = Identity {
        id: IdentityId::new(),
        customer_id: boris.id,
        value: IdentityValue::parse(IdentityKind::Phone, None, "+7 916 000-11-22").unwrap(),
        created_at: at(1),
    };
    commit(&store, vec![Mutation::InsertIdentity(phone)]).await;
    let unknown = CustomerId::new();
    let mut found = store
        .find_customers(&[boris.id, unknown, anna.id, boris.id])
        .await
        .unwrap();
    found.sort_by_key(|customer| customer.name.clone());
    let summary: Vec<(&str, usize)> = found
        .iter()
        .map(|customer| (customer.name.as_str(), customer.identities.len()))
        .collect();
    assert_eq!(
        summary,
        vec![("Boris", 2), ("Анна", 1)],
        "each known id once, with every identity; the unknown id and the third customer left out"
    );
    assert!(found.iter().all(|customer| customer.id != vera.id));
    assert_eq!(
        found.iter().find(|c| c.id == anna.id),
        store.find_customer(anna.id).await.unwrap().as_ref(),
        "the batch reads the same customer as the point read"
    );
    assert!(store.find_customers(&[]).await.unwrap().is_empty());
    // More ids than one statement takes on any backend.
    let many: Vec<CustomerId> = (0..450)
        .map(|_| CustomerId::new())
        .chain([vera.id])
        .collect();
    let found = store.find_customers(&many).await.unwrap();
    assert_eq!(
        found.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![vera.id]
    );
}

pub async fn customer_merges_move_identities_and_tickets_and_undo_exactly(store: Arc<dyn Store>) {
    let source = seed_customer(&store, "Source", "source@example.com").await;
    let target = seed_customer(&store, "Target", "target@example.com").await;
    let ticket = seed_ticket(&store, new_ticket(source.id, "from source", 1)).await;
    assert_eq!(
        store.list_customer_ticket_ids(source.id).await.unwrap(),
        vec![ticket.id]
    );

    let merge = CustomerMerge {
        id: CustomerMergeId::new(),
        source_id: source.id,
        target_id: target.id,
        moved_identity_ids: vec![source.identities[0].id],
        moved_ticket_ids: vec![ticket.id],
        merged_by: None,
        merged_at: at(5),
        undone_at: None,
    };
    let mut merged_source = source.clone();
    merged_source.merged_into = Some(target.id);
    commit(
        &store,
        vec![
            Mutation::MoveIdentities {
                identity_ids: merge.moved_identity_ids.clone(),
                to: target.id,
            },
            Mutation::MoveTickets {
                ticket_ids: merge.moved_ticket_ids.clone(),
                to: target.id,
                at: at(5),
            },
            Mutation::UpdateCustomer {
                customer: merged_source,
                expected_version: 1,
            },
            Mutation::InsertCustomerMerge(merge.clone()),
        ],
    )
    .await;
    let stored_target = store.find_customer(target.id).await.unwrap().unwrap();
    assert_eq!(stored_target.identities.len(), 2);
    let moved_ticket = store.find_ticket(ticket.id).await.unwrap().unwrap();
    assert_eq!(
        (
            moved_ticket.customer_id,
            moved_ticket.version,
            moved_ticket.updated_at
        ),
        (target.id, 2, at(5))
    );
    assert_eq!(
        store.find_customer_merge(merge.id).await.unwrap(),
        Some(merge.clone())
    );
    assert_eq!(
        store.list_customer_merges(source.id).await.unwrap(),
        vec![merge.clone()]
    );
    assert_eq!(
        store.list_customer_merges(target.id).await.unwrap(),
        vec![merge.clone()]
    );
    let listed = store
        .list_customers(&CustomerQuery {
            include_merged: false,
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![target.id]
    );

    commit(
        &store,
        vec![
            Mutation::MoveIdentities {
                identity_ids: merge.moved_identity_ids.clone(),
                to: source.id,
            },
            Mutation::MoveTickets {
                ticket_ids: merge.moved_ticket_ids.clone(),
                to: source.id,
                at: at(6),
            },
            Mutation::UpdateCustomer {
                customer: source.clone(),
                expected_version: 2,
            },
            Mutation::MarkCustomerMergeUndone {
                id: merge.id,
                at: at(6),
            },
        ],
    )
    .await;
    let restored = store.find_customer(source.id).await.unwrap().unwrap();
    assert_eq!((restored.merged_into, restored.identities.len()), (None, 1));
    assert_eq!(
        store
            .find_ticket(ticket.id)
            .await
            .unwrap()
            .unwrap()
            .customer_id,
        source.id
    );
    assert_eq!(
        store
            .find_customer_merge(merge.id)
            .await
            .unwrap()
            .unwrap()
            .undone_at,
        Some(at(6))
    );
}

pub async fn agents_read_back_with_teams_and_emails_are_unique(store: Arc<dyn Store>) {
    assert_eq!(store.count_agents().await.unwrap(), 0);
    let red = seed_team(&store, "Red").await;
    let blue = seed_team(&store, "Blue").await;
    let agent = new_agent("olga@shop.test", Role::Supervisor, vec![red.id]);
    commit(
        &store,
        vec![Mutation::InsertAgent {
            agent: agent.clone(),
            password_hash: Some("$argon2id$x".into()),
        }],
    )
    .await;
    assert_eq!(
        store.find_agent(agent.id).await.unwrap(),
        Some(agent.clone())
    );
    assert_eq!(
        store.find_agent_by_email("olga@shop.test").await.unwrap(),
        Some(agent.clone())
    );
    assert_eq!(
        store.find_password_hash(agent.id).await.unwrap().as_deref(),
        Some("$argon2id$x")
    );
    assert_eq!(store.count_agents().await.unwrap(), 1);

    let twin = new_agent("olga@shop.test", Role::Agent, vec![]);
    let error = store
        .commit(UnitOfWork::new().with(Mutation::InsertAgent {
            agent: twin,
            password_hash: None,
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict { constraint } if constraint == "agents.email"),
        "{error:?}"
    );

    let mut edited = agent.clone();
    edited.team_ids = vec![blue.id];
    edited.role = Role::Agent;
    edited.active = false;
    commit(
        &store,
        vec![
            Mutation::UpdateAgent {
                agent: edited.clone(),
                expected_version: 1,
            },
            Mutation::SetPasswordHash {
                agent_id: agent.id,
                password_hash: "$argon2id$y".into(),
            },
        ],
    )
    .await;
    let stored = store.find_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(
        (
            stored.team_ids.clone(),
            stored.role,
            stored.active,
            stored.version
        ),
        (vec![blue.id], Role::Agent, false, 2)
    );
    assert_eq!(
        store.find_password_hash(agent.id).await.unwrap().as_deref(),
        Some("$argon2id$y")
    );
    let stale = store
        .commit(UnitOfWork::new().with(Mutation::UpdateAgent {
            agent: edited,
            expected_version: 1,
        }))
        .await;
    assert!(matches!(stale, Err(StoreError::VersionConflict { .. })));

    let second = new_agent("ivan@shop.test", Role::Agent, vec![]);
    commit(
        &store,
        vec![Mutation::InsertAgent {
            agent: second.clone(),
            password_hash: None,
        }],
    )
    .await;
    let first_page = store
        .list_agents(&IdPage {
            after: None,
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(first_page.len(), 1);
    let second_page = store
        .list_agents(&IdPage {
            after: Some(first_page[0].id.0),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(second_page.len(), 1);
    assert_ne!(first_page[0].id, second_page[0].id);
    let names: Vec<_> = store
        .list_teams()
        .await
        .unwrap()
        .into_iter()
        .map(|team| team.name)
        .collect();
    assert_eq!(names, vec!["Blue", "Red"]);
}

pub async fn deleting_a_team_unroutes_its_tickets_and_ends_memberships(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "I", "i@example.com").await;
    let team = seed_team(&store, "Returns").await;
    let agent = new_agent("a@shop.test", Role::Agent, vec![team.id]);
    commit(
        &store,
        vec![Mutation::InsertAgent {
            agent: agent.clone(),
            password_hash: None,
        }],
    )
    .await;
    let mut draft = new_ticket(customer.id, "routed", 1);
    draft.team_id = Some(team.id);
    let ticket = seed_ticket(&store, draft).await;

    let renamed = Team {
        name: "Returns & exchanges".into(),
        ..team.clone()
    };
    commit(&store, vec![Mutation::UpdateTeam(renamed.clone())]).await;
    assert_eq!(store.find_team(team.id).await.unwrap(), Some(renamed));
    let duplicate = Team {
        id: TeamId::new(),
        name: "Returns & exchanges".into(),
        created_at: at(0),
    };
    let error = store
        .commit(UnitOfWork::new().with(Mutation::InsertTeam(duplicate)))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict { constraint } if constraint == "teams.name"),
        "{error:?}"
    );

    commit(&store, vec![Mutation::DeleteTeam(team.id)]).await;
    assert_eq!(store.find_team(team.id).await.unwrap(), None);
    assert_eq!(
        store.find_ticket(ticket.id).await.unwrap().unwrap().team_id,
        None
    );
    assert!(
        store
            .find_agent(agent.id)
            .await
            .unwrap()
            .unwrap()
            .team_ids
            .is_empty()
    );
}

pub async fn tokens_sessions_and_setup_tokens_round_trip(store: Arc<dyn Store>) {
    let agent = new_agent("t@shop.test", Role::Admin, vec![]);
    commit(
        &store,
        vec![Mutation::InsertAgent {
            agent: agent.clone(),
            password_hash: None,
        }],
    )
    .await;
    let token = ApiTokenRecord {
        id: TokenId::new(),
        agent_id: agent.id,
        name: "CRM sync".into(),
        prefix: "otk_abcd".into(),
        token_hash: vec![7; 32],
        scopes: [Scope::TicketsRead, Scope::CustomersWrite]
            .into_iter()
            .collect(),
        created_at: at(1),
        expires_at: Some(at(100)),
        revoked_at: None,
    };
    commit(&store, vec![Mutation::InsertToken(token.clone())]).await;
    assert_eq!(
        store.find_token_by_hash(&[7; 32]).await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(store.find_token_by_hash(&[8; 32]).await.unwrap(), None);
    commit(
        &store,
        vec![Mutation::RevokeToken {
            id: token.id,
            at: at(2),
        }],
    )
    .await;
    assert_eq!(
        store.list_tokens(agent.id).await.unwrap()[0].revoked_at,
        Some(at(2))
    );

    let session = SessionRecord {
        id_hash: vec![1; 32],
        agent_id: agent.id,
        created_at: at(1),
        expires_at: at(50),
    };
    commit(&store, vec![Mutation::InsertSession(session.clone())]).await;
    assert_eq!(
        store.find_session(&[1; 32]).await.unwrap(),
        Some(session.clone())
    );
    commit(
        &store,
        vec![Mutation::DeleteSession {
            id_hash: vec![1; 32],
        }],
    )
    .await;
    assert_eq!(store.find_session(&[1; 32]).await.unwrap(), None);
    commit(&store, vec![Mutation::InsertSession(session.clone())]).await;
    commit(
        &store,
        vec![Mutation::DeleteAgentSessions { agent_id: agent.id }],
    )
    .await;
    assert_eq!(store.find_session(&[1; 32]).await.unwrap(), None);
}

pub async fn a_setup_token_can_be_consumed_only_once(store: Arc<dyn Store>) {
    let setup = SetupTokenRecord {
        token_hash: vec![9; 32],
        created_at: at(0),
        expires_at: at(3600),
        used_at: None,
    };
    commit(&store, vec![Mutation::InsertSetupToken(setup.clone())]).await;
    assert_eq!(store.find_setup_token(&[9; 32]).await.unwrap(), Some(setup));
    commit(
        &store,
        vec![Mutation::ConsumeSetupToken {
            token_hash: vec![9; 32],
            at: at(5),
        }],
    )
    .await;
    let again = store
        .commit(UnitOfWork::new().with(Mutation::ConsumeSetupToken {
            token_hash: vec![9; 32],
            at: at(6),
        }))
        .await;
    assert!(
        matches!(&again, Err(StoreError::Conflict { constraint }) if constraint == "setup_tokens.used"),
        "{again:?}"
    );
    assert_eq!(
        store
            .find_setup_token(&[9; 32])
            .await
            .unwrap()
            .unwrap()
            .used_at,
        Some(at(5))
    );
    let unknown = store
        .commit(UnitOfWork::new().with(Mutation::ConsumeSetupToken {
            token_hash: vec![1; 32],
            at: at(6),
        }))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::Conflict { .. })),
        "{unknown:?}"
    );
}

pub async fn a_claimed_idempotency_key_is_found_and_cannot_be_claimed_twice(store: Arc<dyn Store>) {
    let record = IdempotencyRecord {
        principal: "token:1".into(),
        key: "order-42-create".into(),
        fingerprint: "abc".into(),
        resource_kind: "ticket".into(),
        resource_id: uuid::Uuid::now_v7(),
        created_at: at(1),
    };
    commit(&store, vec![Mutation::ClaimIdempotencyKey(record.clone())]).await;
    assert_eq!(
        store
            .find_idempotency_key("token:1", "order-42-create")
            .await
            .unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        store
            .find_idempotency_key("token:2", "order-42-create")
            .await
            .unwrap(),
        None
    );
    let other_principal = IdempotencyRecord {
        principal: "token:2".into(),
        ..record.clone()
    };
    commit(&store, vec![Mutation::ClaimIdempotencyKey(other_principal)]).await;
    let twice = store
        .commit(UnitOfWork::new().with(Mutation::ClaimIdempotencyKey(record)))
        .await;
    assert!(matches!(twice, Err(StoreError::Conflict { .. })));
}

pub async fn audit_events_read_back_oldest_first(store: Arc<dyn Store>) {
    let object = uuid::Uuid::now_v7();
    let agent = new_agent("audit@shop.test", Role::Admin, vec![]);
    commit(
        &store,
        vec![Mutation::InsertAgent {
            agent: agent.clone(),
            password_hash: None,
        }],
    )
    .await;
    let created = AuditEvent::new(
        at(1),
        Actor::Agent(agent.id),
        "ticket.created",
        "ticket",
        object,
        vec![set("status", "new")],
    );
    let updated = AuditEvent::new(
        at(2),
        Actor::System,
        "ticket.updated",
        "ticket",
        object,
        vec![],
    );
    commit(
        &store,
        vec![
            Mutation::Audit(updated.clone()),
            Mutation::Audit(created.clone()),
        ],
    )
    .await;
    let events = store.list_audit_events(object).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        (
            events[0].id,
            events[0].actor_agent_id,
            events[0].action.as_str()
        ),
        (created.id, Some(agent.id), "ticket.created")
    );
    assert_eq!(events[0].changes, created.changes_json());
    assert_eq!((events[1].id, events[1].actor_agent_id), (updated.id, None));
}

pub async fn the_logical_schema_lists_the_core_tables(store: Arc<dyn Store>) {
    let schema = store.logical_schema().await.unwrap();
    for (table, column, logical_type) in [
        ("tickets", "number", "int"),
        ("tickets", "id", "bytes"),
        ("tickets", "subject", "text"),
        ("agents", "active", "bool"),
        ("audit_events", "changes", "json"),
    ] {
        assert!(
            schema
                .iter()
                .any(|c| c.table == table && c.column == column && c.logical_type == logical_type),
            "{table}.{column} {logical_type} missing from {schema:?}"
        );
    }
    assert!(
        schema
            .iter()
            .all(|column| !column.table.starts_with("refinery"))
    );
}

fn words(query: &str) -> otklik_search::SearchQuery {
    otklik_search::parse_query(query).expect("a valid query")
}

async fn search(
    store: &Arc<dyn Store>,
    query: &str,
    filter: TicketFilter,
    visibility: Visibility,
) -> Vec<TicketId> {
    let search = TicketSearch {
        query: words(query),
        filter,
        visibility,
        limit: 50,
    };
    ids(&store.search_tickets(&search).await.expect("search runs"))
}

async fn seed_message(store: &Arc<dyn Store>, ticket: &Ticket, body: &str, second: i64) {
    let message = Message {
        id: MessageId::new(),
        ticket_id: ticket.id,
        author: Author::Customer(ticket.customer_id),
        visibility: MessageVisibility::Public,
        channel: ticket.channel,
        body: body.into(),
        attachments: vec![],
        created_at: at(second),
    };
    commit(store, vec![Mutation::InsertMessage(message)]).await;
}

pub async fn search_finds_tickets_by_stems_numbers_and_prefixes_best_first(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "Анна", "anna@example.ru").await;
    let delivery = seed_ticket(
        &store,
        new_ticket(customer.id, "Доставка заказа №448812", 1),
    )
    .await;
    seed_message(&store, &delivery, "Курьер не приехал, доставка сорвана", 2).await;
    let refund = seed_ticket(&store, new_ticket(customer.id, "Refund for order 77123", 3)).await;
    seed_message(&store, &refund, "I was refunded only half of the amount", 4).await;
    let other = seed_ticket(&store, new_ticket(customer.id, "Размер не подошёл", 5)).await;
    seed_message(
        &store,
        &other,
        "Хочу обменять на ёлочные игрушки, про доставку потом",
        6,
    )
    .await;
    let all = || (TicketFilter::default(), Visibility::All);

    let (filter, visibility) = all();
    let hits = search(&store, "доставки ", filter, visibility).await;
    assert_eq!(
        hits.first(),
        Some(&delivery.id),
        "the ticket with the word in its subject ranks first: {hits:?}"
    );
    assert!(
        hits.contains(&other.id),
        "«доставку» in a message matches «доставки»"
    );
    assert!(!hits.contains(&refund.id));
    for (query, expected) in [
        ("refunding ", vec![refund.id]),
        ("ЗАКАЗЫ ", vec![delivery.id]),
        ("448812 ", vec![delivery.id]),
        ("4488", vec![delivery.id]),
        ("елочные ", vec![other.id]),
        ("курьер доставка ", vec![delivery.id]),
        ("курьер refund ", vec![]),
        ("достав", vec![delivery.id, other.id]),
    ] {
        let (filter, visibility) = all();
        let mut hits = search(&store, query, filter, visibility).await;
        hits.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(hits, expected, "query {query:?}");
    }
    let number = format!("{} ", delivery.number);
    let (filter, visibility) = all();
    assert!(
        search(&store, &number, filter, visibility)
            .await
            .contains(&delivery.id),
        "the ticket number is indexed"
    );
}

pub async fn search_keeps_to_the_filters_and_the_callers_visibility(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "Boris", "boris@example.com").await;
    let mine = seed_team(&store, "Mine").await;
    let other = seed_team(&store, "Other").await;
    let mut draft = new_ticket(customer.id, "Payment failed twice", 1);
    draft.team_id = Some(mine.id);
    draft.status = TicketStatus::Open;
    let visible = seed_ticket(&store, draft).await;
    let mut draft = new_ticket(customer.id, "Payment failed again", 2);
    draft.team_id = Some(other.id);
    let hidden = seed_ticket(&store, draft).await;
    let agent = Visibility::Agent {
        agent_id: AgentId::new(),
        team_ids: vec![mine.id],
    };
    assert_eq!(
        search(&store, "payment ", TicketFilter::default(), agent.clone()).await,
        vec![visible.id]
    );
    let mut both = search(&store, "payment ", TicketFilter::default(), Visibility::All).await;
    both.sort();
    let mut expected = vec![visible.id, hidden.id];
    expected.sort();
    assert_eq!(both, expected);
    let new_only = TicketFilter {
        statuses: vec![TicketStatus::New],
        ..Default::default()
    };
    assert_eq!(
        search(&store, "payment ", new_only, Visibility::All).await,
        vec![hidden.id]
    );
    let other_team = TicketFilter {
        team: Some(TeamFilter::Team(other.id)),
        ..Default::default()
    };
    assert!(
        search(&store, "payment ", other_team, agent)
            .await
            .is_empty(),
        "a filter never widens visibility"
    );
}

pub async fn the_search_index_follows_edits_replies_and_merges_and_rebuilds_the_same(
    store: Arc<dyn Store>,
) {
    let customer = seed_customer(&store, "C", "c@example.com").await;
    let source = seed_ticket(&store, new_ticket(customer.id, "Old subject", 1)).await;
    let target = seed_ticket(&store, new_ticket(customer.id, "Target", 2)).await;
    let mut renamed = source.clone();
    renamed.subject = "Warranty claim".into();
    commit(
        &store,
        vec![Mutation::UpdateTicket {
            ticket: renamed.clone(),
            expected_version: 1,
        }],
    )
    .await;
    let all = || (TicketFilter::default(), Visibility::All);
    let (f, v) = all();
    assert!(
        search(&store, "old ", f, v).await.is_empty(),
        "the old subject is gone from the index"
    );
    let (f, v) = all();
    assert_eq!(search(&store, "warranty ", f, v).await, vec![source.id]);
    seed_message(&store, &source, "The zipper broke after a week", 3).await;
    let (f, v) = all();
    assert_eq!(search(&store, "zipper ", f, v).await, vec![source.id]);

    let mut merged = renamed.clone();
    merged.version = 2;
    merged.merged_into = Some(target.id);
    merged.status = TicketStatus::Closed;
    commit(
        &store,
        vec![
            Mutation::MoveMessages {
                from: source.id,
                to: target.id,
            },
            Mutation::UpdateTicket {
                ticket: merged,
                expected_version: 2,
            },
        ],
    )
    .await;
    let (f, v) = all();
    assert_eq!(
        search(&store, "zipper ", f, v).await,
        vec![target.id],
        "merged messages are found on the survivor"
    );

    let before: Vec<_> = [("zipper ", 0), ("warranty ", 1), ("target ", 2)].to_vec();
    let mut results = Vec::new();
    for (query, _) in &before {
        let (f, v) = all();
        results.push(search(&store, query, f, v).await);
    }
    store.rebuild_derived_data().await.expect("rebuild");
    for ((query, _), expected) in before.iter().zip(results) {
        let (f, v) = all();
        assert_eq!(
            search(&store, query, f, v).await,
            expected,
            "{query} after a rebuild"
        );
    }
    let bodies = store
        .list_messages_of(&[target.id, source.id])
        .await
        .unwrap();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0].body, "The zipper broke after a week");
}

pub async fn customers_are_found_by_name_e_mail_and_phone(store: Arc<dyn Store>) {
    let anna = seed_customer(&store, "Анна Петрова", "anna.petrova@example.ru").await;
    let boris = seed_customer(&store, "Boris Smith", "boris@example.com").await;
    let phone = Identity {
        id: IdentityId::new(),
        customer_id: boris.id,
        value: IdentityValue::parse(IdentityKind::Phone, None, "+7 916 555-12-34").unwrap(),
        created_at: at(1),
    };
    commit(&store, vec![Mutation::InsertIdentity(phone)]).await;
    let found = |customers: Vec<Customer>| customers.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        found(
            store
                .search_customers(&words("петровой "), 10)
                .await
                .unwrap()
        ),
        vec![anna.id]
    );
    assert_eq!(
        found(
            store
                .search_customers(&words("anna.petrova@example.ru"), 10)
                .await
                .unwrap()
        ),
        vec![anna.id]
    );
    assert_eq!(
        found(
            store
                .search_customers(&words("8 (916) 555-12-34"), 10)
                .await
                .unwrap()
        ),
        vec![boris.id]
    );
    assert_eq!(
        found(store.search_customers(&words("smi"), 10).await.unwrap()),
        vec![boris.id]
    );
    let mut renamed = boris.clone();
    renamed.name = "Boris Ivanov".into();
    commit(
        &store,
        vec![Mutation::UpdateCustomer {
            customer: renamed,
            expected_version: 1,
        }],
    )
    .await;
    assert!(
        store
            .search_customers(&words("smith "), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        found(store.search_customers(&words("ivanov "), 10).await.unwrap()),
        vec![boris.id]
    );
}

/// Counts every listed ticket that a count query describes, the slow way.
async fn scanned_count(store: &Arc<dyn Store>, query: &TicketCountQuery) -> i64 {
    let visibility = match &query.visible_to {
        Some((agent_id, team_ids)) => Visibility::Agent {
            agent_id: *agent_id,
            team_ids: team_ids.clone(),
        },
        None => Visibility::All,
    };
    let mut filter = TicketFilter {
        statuses: query.statuses.clone(),
        priorities: query.priorities.clone(),
        assignee: query.assignee,
        team: query.team,
        ..Default::default()
    };
    if let Some(day) = query.max_day {
        filter.updated_before = Some(Timestamp::from_second((day + 1) * 86_400).unwrap());
        if filter.statuses.is_empty() {
            filter.statuses = vec![TicketStatus::Pending, TicketStatus::OnHold];
        }
    }
    let listed = store
        .list_tickets(&TicketQuery {
            filter,
            visibility,
            after: None,
            limit: MAX_PAGE_SIZE,
        })
        .await
        .unwrap();
    i64::try_from(listed.len()).unwrap()
}

pub async fn maintained_counts_equal_a_scan_after_every_kind_of_change(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "D", "d@example.com").await;
    let other_customer = seed_customer(&store, "E", "e@example.com").await;
    let red = seed_team(&store, "Red").await;
    let blue = seed_team(&store, "Blue").await;
    let agent = new_agent("counter@shop.test", Role::Agent, vec![red.id]);
    commit(
        &store,
        vec![Mutation::InsertAgent {
            agent: agent.clone(),
            password_hash: None,
        }],
    )
    .await;
    let mut tickets = Vec::new();
    for index in 0..12_i64 {
        let mut draft = new_ticket(customer.id, &format!("T{index}"), index * 86_400);
        draft.status =
            [TicketStatus::New, TicketStatus::Open, TicketStatus::Pending][index as usize % 3];
        draft.priority = [Priority::Normal, Priority::Urgent][index as usize % 2];
        draft.team_id = [None, Some(red.id), Some(blue.id)][index as usize % 3];
        draft.assignee_id = (index % 4 == 0).then_some(agent.id);
        tickets.push(seed_ticket(&store, draft).await);
    }
    let base_day = otklik_domain::view::day_number(at(0));
    let queries = |agent_id: AgentId| {
        vec![
            TicketCountQuery::default(),
            TicketCountQuery {
                statuses: vec![TicketStatus::Pending],
                ..Default::default()
            },
            TicketCountQuery {
                statuses: vec![TicketStatus::New, TicketStatus::Open],
                assignee: Some(AssigneeFilter::Agent(agent_id)),
                ..Default::default()
            },
            TicketCountQuery {
                assignee: Some(AssigneeFilter::Unassigned),
                priorities: vec![Priority::Urgent],
                ..Default::default()
            },
            TicketCountQuery {
                team: Some(TeamFilter::NoTeam),
                ..Default::default()
            },
            TicketCountQuery {
                team: Some(TeamFilter::Team(red.id)),
                ..Default::default()
            },
            TicketCountQuery {
                statuses: vec![TicketStatus::Pending],
                max_day: Some(base_day + 5),
                ..Default::default()
            },
            TicketCountQuery {
                max_day: Some(base_day + 3),
                ..Default::default()
            },
            TicketCountQuery {
                visible_to: Some((agent_id, vec![red.id])),
                ..Default::default()
            },
            TicketCountQuery {
                statuses: vec![TicketStatus::Solved, TicketStatus::Closed],
                ..Default::default()
            },
        ]
    };
    let check = |label: &'static str| {
        let store = store.clone();
        let agent_id = agent.id;
        let queries = queries(agent_id);
        async move {
            let together = store.count_tickets_many(&queries).await.unwrap();
            assert_eq!(together.len(), queries.len());
            for (query, counted_together) in queries.iter().zip(together) {
                let counted = store.count_tickets(query).await.unwrap();
                assert_eq!(
                    counted, counted_together,
                    "{label}: one at a time and together: {query:?}"
                );
                assert_eq!(
                    counted,
                    scanned_count(&store, query).await,
                    "{label}: {query:?}"
                );
            }
        }
    };
    check("after inserts").await;

    // Status, priority, assignee and team changes, and time passing.
    let mut changed = tickets[1].clone();
    changed.status = TicketStatus::Solved;
    changed.solved_at = Some(at(40 * 86_400));
    changed.updated_at = at(40 * 86_400);
    let mut reassigned = tickets[2].clone();
    reassigned.assignee_id = Some(agent.id);
    reassigned.team_id = Some(red.id);
    reassigned.priority = Priority::High;
    reassigned.updated_at = at(41 * 86_400);
    commit(
        &store,
        vec![
            Mutation::UpdateTicket {
                ticket: changed,
                expected_version: 1,
            },
            Mutation::UpdateTicket {
                ticket: reassigned,
                expected_version: 1,
            },
        ],
    )
    .await;
    check("after updates").await;

    // A merge takes the source out of every count.
    let mut merged = tickets[3].clone();
    merged.merged_into = Some(tickets[4].id);
    merged.status = TicketStatus::Closed;
    commit(
        &store,
        vec![
            Mutation::MoveMessages {
                from: tickets[3].id,
                to: tickets[4].id,
            },
            Mutation::UpdateTicket {
                ticket: merged,
                expected_version: 1,
            },
        ],
    )
    .await;
    check("after a merge").await;

    // Moving tickets to another customer touches their update time.
    commit(
        &store,
        vec![Mutation::MoveTickets {
            ticket_ids: vec![tickets[5].id, tickets[6].id],
            to: other_customer.id,
            at: at(50 * 86_400),
        }],
    )
    .await;
    check("after moving tickets").await;

    // Deleting a team unroutes its tickets.
    commit(&store, vec![Mutation::DeleteTeam(blue.id)]).await;
    check("after deleting a team").await;

    store.rebuild_derived_data().await.unwrap();
    check("after a rebuild").await;
}

pub async fn saved_views_round_trip_and_personal_views_stay_personal(store: Arc<dyn Store>) {
    use otklik_domain::view::{SavedView, ViewAssignee, ViewFilter};
    let owner = new_agent("views@shop.test", Role::Agent, vec![]);
    let stranger = new_agent("stranger@shop.test", Role::Agent, vec![]);
    commit(
        &store,
        vec![
            Mutation::InsertAgent {
                agent: owner.clone(),
                password_hash: None,
            },
            Mutation::InsertAgent {
                agent: stranger.clone(),
                password_hash: None,
            },
        ],
    )
    .await;
    let shared = SavedView {
        id: ViewId::new(),
        name: "Unassigned".into(),
        owner_agent_id: None,
        filter: ViewFilter {
            assignee: Some(ViewAssignee::Nobody),
            ..ViewFilter::default()
        },
        position: 1,
        created_at: at(0),
    };
    let personal = SavedView {
        id: ViewId::new(),
        name: "Мои срочные".into(),
        owner_agent_id: Some(owner.id),
        filter: ViewFilter {
            assignee: Some(ViewAssignee::Me),
            priorities: vec![Priority::Urgent],
            idle_days: Some(2),
            ..ViewFilter::default()
        },
        position: 0,
        created_at: at(1),
    };
    commit(
        &store,
        vec![
            Mutation::InsertView(shared.clone()),
            Mutation::InsertView(personal.clone()),
        ],
    )
    .await;
    assert_eq!(
        store.list_views(owner.id).await.unwrap(),
        vec![personal.clone(), shared.clone()]
    );
    assert_eq!(
        store.list_views(stranger.id).await.unwrap(),
        vec![shared.clone()]
    );
    assert_eq!(
        store.find_view(personal.id).await.unwrap(),
        Some(personal.clone())
    );
    commit(&store, vec![Mutation::DeleteView(personal.id)]).await;
    assert_eq!(store.find_view(personal.id).await.unwrap(), None);
    let again = store
        .commit(UnitOfWork::new().with(Mutation::DeleteView(personal.id)))
        .await;
    assert!(
        matches!(again, Err(StoreError::NotFound { .. })),
        "{again:?}"
    );
}

fn new_mailbox(name: &str, address: &str) -> otklik_domain::email::Mailbox {
    otklik_domain::email::Mailbox {
        id: MailboxId::new(),
        name: name.into(),
        address: address.into(),
        imap_url: Some("imaps://support%40shop.test:secret@imap.shop.test:993/INBOX".into()),
        smtp_url: None,
        auto_acknowledge: true,
        created_at: at(0),
        updated_at: at(0),
    }
}

fn new_email(
    mailbox: &otklik_domain::email::Mailbox,
    direction: otklik_domain::email::EmailDirection,
    dedup_key: &str,
    second: i64,
) -> otklik_domain::email::EmailRecord {
    use otklik_domain::email::{EmailDirection, EmailStatus};
    let outbound = direction == EmailDirection::Outbound;
    otklik_domain::email::EmailRecord {
        id: EmailId::new(),
        mailbox_id: mailbox.id,
        direction,
        status: if outbound {
            EmailStatus::Queued
        } else {
            EmailStatus::Processed
        },
        status_reason: None,
        dedup_key: dedup_key.into(),
        message_id_header: dedup_key.strip_prefix("mid:").map(str::to_owned),
        ticket_id: None,
        message_id: None,
        raw_sha256: "cd".repeat(32),
        from_address: Some("buyer@example.com".into()),
        recipients: vec!["support@shop.test".into(), "копия@example.com".into()],
        subject: "Где мой заказ?".into(),
        html_body: Some("<p>Где <b>заказ</b>?</p>".into()),
        folded_text: Some("> old".into()),
        automatic: false,
        attempts: 0,
        next_attempt_at: outbound.then(|| at(second)),
        created_at: at(second),
        updated_at: at(second),
    }
}

pub async fn mailboxes_round_trip_and_names_and_addresses_are_unique(store: Arc<dyn Store>) {
    let support = new_mailbox("support", "support@shop.test");
    let returns = new_mailbox("returns", "returns@shop.test");
    commit(
        &store,
        vec![
            Mutation::InsertMailbox(support.clone()),
            Mutation::InsertMailbox(returns.clone()),
        ],
    )
    .await;
    assert_eq!(
        store.find_mailbox(support.id).await.unwrap(),
        Some(support.clone())
    );
    assert_eq!(
        store.find_mailbox_by_name("returns").await.unwrap(),
        Some(returns.clone())
    );
    assert_eq!(
        store.list_mailboxes().await.unwrap(),
        vec![returns.clone(), support.clone()]
    );

    for (twin, constraint) in [
        (new_mailbox("support", "other@shop.test"), "mailboxes.name"),
        (
            new_mailbox("other", "support@shop.test"),
            "mailboxes.address",
        ),
    ] {
        let error = store
            .commit(UnitOfWork::new().with(Mutation::InsertMailbox(twin)))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::Conflict { constraint: c } if c == constraint),
            "{error:?}"
        );
    }

    let mut changed = support.clone();
    changed.smtp_url = Some("smtps://u:p@smtp.shop.test:465".into());
    changed.auto_acknowledge = false;
    changed.updated_at = at(5);
    commit(&store, vec![Mutation::UpdateMailbox(changed.clone())]).await;
    assert_eq!(store.find_mailbox(support.id).await.unwrap(), Some(changed));
    let missing = new_mailbox("ghost", "ghost@shop.test");
    assert!(matches!(
        store
            .commit(UnitOfWork::new().with(Mutation::UpdateMailbox(missing)))
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn an_email_is_recorded_once_per_dedup_key_and_found_by_its_message_id(
    store: Arc<dyn Store>,
) {
    use otklik_domain::email::{EmailDirection, EmailStatus};
    let mailbox = new_mailbox("support", "support@shop.test");
    let customer = new_customer("I", "i@example.com");
    let ticket = new_ticket(customer.id, "thread", 1);
    let message = Message {
        id: MessageId::new(),
        ticket_id: ticket.id,
        author: Author::Customer(customer.id),
        visibility: MessageVisibility::Public,
        channel: Channel::Email,
        body: "hello".into(),
        attachments: vec![],
        created_at: at(1),
    };
    let mut inbound = new_email(&mailbox, EmailDirection::Inbound, "mid:a1@mail.example", 1);
    inbound.ticket_id = Some(ticket.id);
    inbound.message_id = Some(message.id);
    commit(
        &store,
        vec![
            Mutation::InsertMailbox(mailbox.clone()),
            Mutation::InsertCustomer(customer),
            Mutation::InsertTicket(ticket.clone()),
            Mutation::InsertMessage(message),
            Mutation::InsertEmail(inbound.clone()),
        ],
    )
    .await;
    assert_eq!(
        store.find_email(inbound.id).await.unwrap(),
        Some(inbound.clone())
    );
    assert_eq!(
        store
            .find_email_by_dedup_key(EmailDirection::Inbound, "mid:a1@mail.example")
            .await
            .unwrap(),
        Some(inbound.clone())
    );
    assert_eq!(
        store
            .find_email_by_dedup_key(EmailDirection::Outbound, "mid:a1@mail.example")
            .await
            .unwrap(),
        None,
        "the dedup key is per direction"
    );

    // The same mail delivered again: refused by the unique key, and the whole unit with it.
    let twin = new_email(&mailbox, EmailDirection::Inbound, "mid:a1@mail.example", 2);
    let stray_team = Team {
        id: TeamId::new(),
        name: "stray".into(),
        created_at: at(2),
    };
    let error = store
        .commit(UnitOfWork {
            mutations: vec![
                Mutation::InsertTeam(stray_team.clone()),
                Mutation::InsertEmail(twin),
            ],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict { constraint } if constraint == "emails.dedup_key"),
        "{error:?}"
    );
    assert_eq!(store.find_team(stray_team.id).await.unwrap(), None);

    let mut reply = new_email(&mailbox, EmailDirection::Outbound, "mid:r1@shop.test", 3);
    reply.ticket_id = Some(ticket.id);
    commit(&store, vec![Mutation::InsertEmail(reply.clone())]).await;
    let found = store
        .find_emails_by_message_ids(&[
            "r1@shop.test".into(),
            "unknown@x".into(),
            "a1@mail.example".into(),
        ])
        .await
        .unwrap();
    assert_eq!(
        found.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![reply.id, inbound.id]
    );
    assert!(
        store
            .find_emails_by_message_ids(&[])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_ticket_emails(ticket.id)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        vec![inbound.id, reply.id]
    );

    let mut failed = reply.clone();
    failed.status = EmailStatus::Failed;
    failed.status_reason = Some("550 5.1.1 no such user".into());
    failed.attempts = 1;
    failed.next_attempt_at = None;
    failed.updated_at = at(4);
    commit(&store, vec![Mutation::UpdateEmail(failed.clone())]).await;
    assert_eq!(
        store.find_email(reply.id).await.unwrap(),
        Some(failed.clone())
    );
    let page = store
        .list_emails(&EmailQuery {
            status: EmailStatus::Failed,
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(page, vec![failed.clone()]);
    let older = store
        .list_emails(&EmailQuery {
            status: EmailStatus::Failed,
            before: Some(failed.id),
            limit: 10,
        })
        .await
        .unwrap();
    assert!(older.is_empty());
}

pub async fn due_outbound_emails_are_claimed_once_until_their_lease_ends(store: Arc<dyn Store>) {
    use otklik_domain::email::EmailDirection;
    let mailbox = new_mailbox("support", "support@shop.test");
    commit(&store, vec![Mutation::InsertMailbox(mailbox.clone())]).await;
    let due_first = new_email(&mailbox, EmailDirection::Outbound, "mid:o1@shop.test", 10);
    let due_second = new_email(&mailbox, EmailDirection::Outbound, "mid:o2@shop.test", 20);
    let later = new_email(&mailbox, EmailDirection::Outbound, "mid:o3@shop.test", 1000);
    commit(
        &store,
        vec![
            Mutation::InsertEmail(due_first.clone()),
            Mutation::InsertEmail(due_second.clone()),
            Mutation::InsertEmail(later.clone()),
        ],
    )
    .await;

    let claimed = store.claim_due_emails(at(100), at(400), 10).await.unwrap();
    let mut claimed_ids: Vec<_> = claimed.iter().map(|e| e.id).collect();
    claimed_ids.sort();
    assert_eq!(claimed_ids, vec![due_first.id, due_second.id]);
    assert!(claimed.iter().all(|e| e.next_attempt_at == Some(at(400))));
    assert!(
        store
            .claim_due_emails(at(200), at(500), 10)
            .await
            .unwrap()
            .is_empty(),
        "leased e-mails are not claimed again before the lease ends"
    );
    let one = store.claim_due_emails(at(401), at(700), 1).await.unwrap();
    assert_eq!(one.len(), 1, "the limit holds");

    // Concurrent claimers never get the same e-mail twice.
    let (a, b) = tokio::join!(
        store.claim_due_emails(at(2000), at(3000), 10),
        store.claim_due_emails(at(2000), at(3000), 10)
    );
    let mut both: Vec<_> = a
        .unwrap()
        .into_iter()
        .chain(b.unwrap())
        .map(|e| e.id)
        .collect();
    both.sort();
    let mut expected = vec![due_first.id, due_second.id, later.id];
    expected.sort();
    assert_eq!(both, expected);
}

pub async fn automatic_emails_are_counted_per_recipient_and_hour(store: Arc<dyn Store>) {
    use otklik_domain::email::EmailDirection;
    let mailbox = new_mailbox("support", "support@shop.test");
    commit(&store, vec![Mutation::InsertMailbox(mailbox.clone())]).await;
    let mut mutations = Vec::new();
    for (n, (recipient, second, automatic)) in [
        ("bot@example.com", 10, true),
        ("bot@example.com", 20, true),
        ("bot@example.com", 30, false),
        ("other@example.com", 40, true),
        ("bot@example.com", -5000, true),
    ]
    .into_iter()
    .enumerate()
    {
        let mut email = new_email(
            &mailbox,
            EmailDirection::Outbound,
            &format!("mid:auto{n}@shop.test"),
            second,
        );
        email.recipients = vec![recipient.into()];
        email.automatic = automatic;
        mutations.push(Mutation::InsertEmail(email));
    }
    commit(&store, mutations).await;
    assert_eq!(
        store
            .count_automatic_emails_since("bot@example.com", at(0))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_automatic_emails_since("other@example.com", at(0))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_automatic_emails_since("nobody@example.com", at(0))
            .await
            .unwrap(),
        0
    );
}

pub async fn imap_cursors_and_instance_secrets_round_trip(store: Arc<dyn Store>) {
    let mailbox = new_mailbox("support", "support@shop.test");
    commit(&store, vec![Mutation::InsertMailbox(mailbox.clone())]).await;
    assert_eq!(store.find_imap_cursor(mailbox.id).await.unwrap(), None);
    for (uid_validity, last_uid) in [(7_u32, 10_u32), (4_000_000_000, 4_000_000_001)] {
        let cursor = ImapCursorRecord {
            mailbox_id: mailbox.id,
            uid_validity,
            last_uid,
            updated_at: at(1),
        };
        commit(&store, vec![Mutation::SaveImapCursor(cursor)]).await;
        assert_eq!(
            store.find_imap_cursor(mailbox.id).await.unwrap(),
            Some(cursor)
        );
    }

    assert_eq!(
        store.find_instance_secret("reply-token").await.unwrap(),
        None
    );
    commit(
        &store,
        vec![Mutation::InsertInstanceSecret {
            name: "reply-token".into(),
            secret: vec![1, 2, 3],
        }],
    )
    .await;
    assert_eq!(
        store.find_instance_secret("reply-token").await.unwrap(),
        Some(vec![1, 2, 3])
    );
    let error = store
        .commit(UnitOfWork::new().with(Mutation::InsertInstanceSecret {
            name: "reply-token".into(),
            secret: vec![9],
        }))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Conflict { constraint } if constraint == "instance_secrets.name"),
        "{error:?}"
    );
}

pub async fn a_lease_has_one_holder_until_it_ends_or_is_released(store: Arc<dyn Store>) {
    let acquire = |holder: &str, now: i64, until: i64| {
        UnitOfWork::new().with(Mutation::AcquireLease {
            name: "imap:support".into(),
            holder: holder.into(),
            now: at(now),
            until: at(until),
        })
    };
    let held = |result: StoreResult<CommitReceipt>| match result {
        Ok(_) => true,
        Err(StoreError::Conflict { constraint }) if constraint == "leases.held" => false,
        Err(error) => panic!("unexpected {error:?}"),
    };
    assert!(
        held(store.commit(acquire("node-a", 0, 30)).await),
        "a free lease is taken"
    );
    assert!(
        !held(store.commit(acquire("node-b", 10, 40)).await),
        "held by another"
    );
    assert!(
        held(store.commit(acquire("node-a", 20, 50)).await),
        "the holder renews"
    );
    assert!(
        !held(store.commit(acquire("node-b", 45, 75)).await),
        "renewed past 45"
    );
    assert!(
        held(store.commit(acquire("node-b", 50, 80)).await),
        "taken once it ended"
    );
    assert!(
        !held(store.commit(acquire("node-a", 60, 90)).await),
        "the old holder lost it"
    );
    // Releasing someone else's lease does nothing; releasing one's own frees it at once.
    commit(
        &store,
        vec![Mutation::ReleaseLease {
            name: "imap:support".into(),
            holder: "node-a".into(),
        }],
    )
    .await;
    assert!(!held(store.commit(acquire("node-a", 61, 91)).await));
    commit(
        &store,
        vec![Mutation::ReleaseLease {
            name: "imap:support".into(),
            holder: "node-b".into(),
        }],
    )
    .await;
    assert!(held(store.commit(acquire("node-a", 62, 92)).await));
    // A refused lease fails its whole unit.
    let team = Team {
        id: TeamId::new(),
        name: "leased".into(),
        created_at: at(0),
    };
    let mut unit = acquire("node-b", 63, 93);
    unit.push(Mutation::InsertTeam(team.clone()));
    assert!(!held(store.commit(unit).await));
    assert_eq!(store.find_team(team.id).await.unwrap(), None);
}

pub async fn an_agents_locale_is_saved_on_its_own_without_a_new_version(store: Arc<dyn Store>) {
    let mut agent = new_agent("lang@example.com", Role::Agent, vec![]);
    agent.locale = Some("en".into());
    commit(
        &store,
        vec![Mutation::InsertAgent {
            agent: agent.clone(),
            password_hash: None,
        }],
    )
    .await;
    assert_eq!(
        store.find_agent(agent.id).await.unwrap(),
        Some(agent.clone())
    );
    commit(
        &store,
        vec![Mutation::SetAgentLocale {
            agent_id: agent.id,
            locale: Some("ru".into()),
        }],
    )
    .await;
    let read = store.find_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(read.locale.as_deref(), Some("ru"));
    assert_eq!(read.version, agent.version, "a language switch is no edit");
    let by_email = store
        .find_agent_by_email("lang@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.locale.as_deref(), Some("ru"));
    // An admin's edit of the agent keeps the language.
    let mut edited = read.clone();
    edited.name = "Renamed".into();
    edited.locale = None;
    commit(
        &store,
        vec![Mutation::UpdateAgent {
            agent: edited,
            expected_version: read.version,
        }],
    )
    .await;
    let listed = store
        .list_agents(&IdPage {
            after: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(listed[0].locale.as_deref(), Some("ru"));
    commit(
        &store,
        vec![Mutation::SetAgentLocale {
            agent_id: agent.id,
            locale: None,
        }],
    )
    .await;
    assert_eq!(
        store.find_agent(agent.id).await.unwrap().unwrap().locale,
        None
    );
    let unknown = store
        .commit(UnitOfWork::new().with(Mutation::SetAgentLocale {
            agent_id: AgentId::new(),
            locale: Some("en".into()),
        }))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "{unknown:?}"
    );
}

pub async fn a_password_reset_token_is_spent_once_expires_and_a_newer_one_voids_it(
    store: Arc<dyn Store>,
) {
    let agent = new_agent("reset@example.com", Role::Agent, vec![]);
    let other = new_agent("other@example.com", Role::Agent, vec![]);
    for agent in [&agent, &other] {
        commit(
            &store,
            vec![Mutation::InsertAgent {
                agent: agent.clone(),
                password_hash: None,
            }],
        )
        .await;
    }
    let token = |byte: u8, agent_id: AgentId, created: i64| PasswordResetRecord {
        token_hash: vec![byte; 32],
        agent_id,
        created_at: at(created),
        expires_at: at(created + 3600),
        used_at: None,
    };
    let consume = |byte: u8, second: i64| {
        UnitOfWork::new().with(Mutation::ConsumePasswordResetToken {
            token_hash: vec![byte; 32],
            at: at(second),
        })
    };
    let refused = |result: StoreResult<CommitReceipt>| matches!(&result, Err(StoreError::Conflict { constraint }) if constraint == "password_reset_tokens.used");

    commit(
        &store,
        vec![Mutation::InsertPasswordResetToken(token(1, agent.id, 0))],
    )
    .await;
    commit(
        &store,
        vec![Mutation::InsertPasswordResetToken(token(7, other.id, 0))],
    )
    .await;
    assert_eq!(
        store.find_password_reset_token(&[1; 32]).await.unwrap(),
        Some(token(1, agent.id, 0))
    );
    // A newer request voids the older link of the same agent only.
    commit(
        &store,
        vec![Mutation::InsertPasswordResetToken(token(2, agent.id, 10))],
    )
    .await;
    assert_eq!(
        store
            .find_password_reset_token(&[1; 32])
            .await
            .unwrap()
            .unwrap()
            .used_at,
        Some(at(10))
    );
    assert!(refused(store.commit(consume(1, 20)).await));
    assert_eq!(
        store
            .find_password_reset_token(&[7; 32])
            .await
            .unwrap()
            .unwrap()
            .used_at,
        None
    );
    // Two racing uses of one link: exactly one wins.
    let (first, second) = tokio::join!(store.commit(consume(2, 30)), store.commit(consume(2, 30)));
    assert_eq!(
        usize::from(first.is_ok()) + usize::from(second.is_ok()),
        1,
        "{first:?} {second:?}"
    );
    assert!(refused(if first.is_ok() { second } else { first }));
    // An expired link is refused and stays unused; an unknown one is refused.
    assert!(refused(store.commit(consume(7, 3600)).await));
    assert_eq!(
        store
            .find_password_reset_token(&[7; 32])
            .await
            .unwrap()
            .unwrap()
            .used_at,
        None
    );
    assert!(refused(store.commit(consume(9, 30)).await));
    assert_eq!(
        store
            .count_password_reset_tokens_since(agent.id, at(0))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_password_reset_tokens_since(agent.id, at(5))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_password_reset_tokens_since(other.id, at(0))
            .await
            .unwrap(),
        1
    );
}

pub async fn settings_are_saved_replaced_and_removed(store: Arc<dyn Store>) {
    assert!(store.list_settings().await.unwrap().is_empty());
    let save = |name: &str, value: Option<&str>| Mutation::SaveSetting {
        name: name.into(),
        value: value.map(Into::into),
        at: at(0),
    };
    commit(
        &store,
        vec![save("helpdesk_name", Some("Магазин")), save("b", Some("1"))],
    )
    .await;
    commit(&store, vec![save("b", Some("2")), save("a", Some("x"))]).await;
    assert_eq!(
        store.list_settings().await.unwrap(),
        vec![
            ("a".to_owned(), "x".to_owned()),
            ("b".to_owned(), "2".to_owned()),
            ("helpdesk_name".to_owned(), "Магазин".to_owned()),
        ]
    );
    commit(&store, vec![save("b", None), save("missing", None)]).await;
    assert_eq!(
        store.list_settings().await.unwrap(),
        vec![
            ("a".to_owned(), "x".to_owned()),
            ("helpdesk_name".to_owned(), "Магазин".to_owned()),
        ]
    );
}

pub async fn every_ticket_sort_pages_without_gaps_or_repeats(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "S", "s@example.com").await;
    let team = seed_team(&store, "Sorted").await;
    let agent = new_agent("sorter@example.com", Role::Agent, vec![]);
    commit(
        &store,
        vec![Mutation::InsertAgent {
            agent: agent.clone(),
            password_hash: None,
        }],
    )
    .await;
    let priorities = [
        Priority::Low,
        Priority::Urgent,
        Priority::Normal,
        Priority::High,
    ];
    let mut tickets = Vec::new();
    for index in 0..31_i64 {
        let mut ticket = new_ticket(customer.id, &format!("S{index}"), index % 5);
        // Many ties on every key (five creation times, four priorities), so ids must break them.
        ticket.priority = priorities[usize::try_from(index % 4).unwrap()];
        ticket.status = if index % 3 == 0 {
            TicketStatus::Open
        } else {
            TicketStatus::New
        };
        // A third of the tickets belong to a team the agent is not in.
        ticket.team_id = (index % 3 == 1).then_some(team.id);
        tickets.push(seed_ticket(&store, ticket).await);
    }
    // Updates reorder "last update" against "created".
    for ticket in tickets.iter_mut().filter(|ticket| ticket.number % 4 == 0) {
        let mut updated = ticket.clone();
        updated.updated_at = at(100 - ticket.number % 7);
        updated.version += 1;
        commit(
            &store,
            vec![Mutation::UpdateTicket {
                ticket: updated.clone(),
                expected_version: ticket.version,
            }],
        )
        .await;
        *ticket = updated;
    }
    let keys = [
        TicketSortKey::Updated,
        TicketSortKey::Created,
        TicketSortKey::Priority,
        TicketSortKey::Number,
    ];
    let cases: Vec<(&str, TicketFilter, Visibility)> = vec![
        ("everything", TicketFilter::default(), Visibility::All),
        (
            "open only",
            TicketFilter {
                statuses: vec![TicketStatus::Open],
                ..TicketFilter::default()
            },
            Visibility::All,
        ),
        (
            "an agent's sight",
            TicketFilter::default(),
            Visibility::Agent {
                agent_id: agent.id,
                team_ids: vec![],
            },
        ),
    ];
    for (name, filter, visibility) in cases {
        for key in keys {
            for descending in [true, false] {
                let sort = TicketSort { key, descending };
                let mut expected: Vec<&Ticket> = tickets
                    .iter()
                    .filter(|ticket| {
                        (filter.statuses.is_empty() || filter.statuses.contains(&ticket.status))
                            && match &visibility {
                                Visibility::All => true,
                                Visibility::Agent { .. } => ticket.team_id.is_none(),
                            }
                    })
                    .collect();
                expected.sort_by_key(|ticket| (sort.key_of(ticket), ticket.id));
                if descending {
                    expected.reverse();
                }
                for limit in [1, 4, 7] {
                    let mut seen: Vec<Ticket> = Vec::new();
                    let mut after = None;
                    for _ in 0..100 {
                        let page = store
                            .list_tickets_sorted(&SortedTicketQuery {
                                filter: filter.clone(),
                                visibility: visibility.clone(),
                                sort,
                                after,
                                limit,
                            })
                            .await
                            .unwrap();
                        assert!(page.len() <= limit as usize);
                        let Some(last) = page.last() else { break };
                        after = Some(sort.cursor_after(last));
                        seen.extend(page);
                    }
                    assert_eq!(
                        ids(&seen),
                        expected.iter().map(|ticket| ticket.id).collect::<Vec<_>>(),
                        "{name}, {sort:?}, pages of {limit}"
                    );
                }
            }
        }
    }
    // The unsorted list is the default sort.
    let default = store
        .list_tickets_sorted(&SortedTicketQuery {
            filter: TicketFilter::default(),
            visibility: Visibility::All,
            sort: TicketSort::default(),
            after: None,
            limit: MAX_PAGE_SIZE,
        })
        .await
        .unwrap();
    let plain = store
        .list_tickets(&query(Visibility::All, TicketFilter::default()))
        .await
        .unwrap();
    assert_eq!(ids(&default), ids(&plain));
}
