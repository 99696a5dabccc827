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
    /// A second store on the same database: another node on PostgreSQL, another process on
    /// the same SQLite file.
    pub another_node: Arc<dyn Store>,
    pub guard: Box<dyn Any + Send>,
}

/// Expands to one `#[tokio::test]` per conformance case, each on a fresh store from `$factory`.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::conformance_tests!(@cases $factory;
            a_new_ticket_reads_back_equal_with_the_next_number,
            concurrent_ticket_inserts_get_distinct_numbers,
            an_imported_ticket_keeps_its_history_is_counted_and_found_in_one_write,
            after_a_bulk_import_every_ticket_and_customer_is_listed_counted_and_found,
            a_unit_importing_many_tickets_numbers_them_in_order_and_stands_or_falls_whole,
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
            a_token_a_database_parser_would_split_is_found_as_it_was_indexed,
            a_prefix_stands_for_its_shortest_tokens_and_sees_words_written_later,
            search_keeps_to_the_filters_and_the_callers_visibility,
            an_agents_search_follows_every_change_of_who_may_see_a_ticket,
            a_search_for_a_rare_status_follows_every_change_of_status,
            a_search_for_a_rare_team_or_assignee_follows_every_change_of_routing,
            a_search_by_priority_channel_or_tag_follows_every_change_of_them,
            a_search_keeps_to_every_filter_the_index_has_no_terms_for,
            the_search_index_follows_edits_replies_and_merges_and_rebuilds_the_same,
            attachment_names_are_found_and_stay_found_after_a_rebuild,
            customers_are_found_by_name_e_mail_and_phone,
            customers_rank_by_the_same_score_on_every_backend,
            maintained_counts_equal_a_scan_after_every_kind_of_change,
            plain_and_idle_counts_equal_a_scan_after_a_mix_of_changes,
            saved_views_round_trip_and_personal_views_stay_personal,
            mailboxes_round_trip_and_names_and_addresses_are_unique,
            an_email_is_recorded_once_per_dedup_key_and_found_by_its_message_id,
            due_outbound_emails_are_claimed_once_until_their_lease_ends,
            automatic_emails_are_counted_per_recipient_and_hour,
            imap_cursors_and_instance_secrets_round_trip,
            a_lease_has_one_holder_until_it_ends_or_is_released,
            chat_sites_round_trip_every_field_and_refuse_a_stale_version,
            visitors_are_found_by_id_token_and_external_id_which_is_unique_per_site,
            chats_round_trip_refuse_a_stale_version_and_list_by_filters_in_queue_order,
            chat_entries_are_numbered_once_per_seq_and_client_id_and_page_after_a_seq,
            setting_an_agents_chat_status_keeps_the_count_of_active_chats,
            a_chat_slot_is_reserved_only_online_below_the_maximum_and_released_down_to_zero,
            concurrent_chat_slot_reservations_never_exceed_the_maximum,
            chat_mutations_announce_chat_and_availability_changes_after_commit,
            a_published_signal_reaches_every_subscriber_and_an_oversized_one_is_refused,
            an_agents_locale_is_saved_on_its_own_without_a_new_version,
            a_password_reset_token_is_spent_once_expires_and_a_newer_one_voids_it,
            settings_are_saved_replaced_and_removed,
            every_ticket_sort_pages_without_gaps_or_repeats,
            a_queue_position_counts_the_earlier_waiting_chats_of_the_same_team
        );
        $crate::conformance_tests!(@two_node_cases $factory;
            counts_kept_by_one_node_follow_changes_committed_on_another
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
    (@two_node_cases $factory:path; $($case:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let test_store = $factory().await;
                $crate::conformance::$case(
                    test_store.store.clone(),
                    test_store.another_node.clone(),
                )
                .await;
                drop(test_store);
            }
        )+
    };
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + second).expect("valid test time")
}

/// A customer with one e-mail identity, not yet committed.
pub fn new_customer(name: &str, email: &str) -> Customer {
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

/// A new ticket of `customer_id`, created `created` seconds after the tests' epoch.
pub fn new_ticket(customer_id: CustomerId, subject: &str, created: i64) -> NewTicket {
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

/// An agent of `team_ids` with `role`, named after `email`, not yet committed.
pub fn new_agent(email: &str, role: Role, team_ids: Vec<TeamId>) -> Agent {
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

/// An agent without a password, committed.
async fn seed_agent(
    store: &Arc<dyn Store>,
    email: &str,
    role: Role,
    team_ids: Vec<TeamId>,
) -> Agent {
    let agent = new_agent(email, role, team_ids);
    commit(
        store,
        vec![Mutation::InsertAgent {
            agent: agent.clone(),
            password_hash: None,
        }],
    )
    .await;
    agent
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

/// A migration as a newer Otklik records it, for a backend to write into its history table and
/// then open the database: [`assert_refused_as_newer_schema`] checks the error.
pub const MIGRATION_FROM_A_NEWER_OTKLIK: (i32, &str) = (9999, "from_a_newer_otklik");

/// `error` refuses a database holding [`MIGRATION_FROM_A_NEWER_OTKLIK`], names it, and says what
/// happened.
pub fn assert_refused_as_newer_schema(error: &StoreError) {
    let (version, name) = MIGRATION_FROM_A_NEWER_OTKLIK;
    let expected = format!("V{version}__{name}");
    assert!(
        matches!(error, StoreError::SchemaTooNew { migration } if *migration == expected),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("newer version of Otklik"),
        "{error}"
    );
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

pub async fn an_imported_ticket_keeps_its_history_is_counted_and_found_in_one_write(
    store: Arc<dyn Store>,
) {
    let customer = seed_customer(&store, "Ира", "ira@example.ru").await;
    let before = seed_ticket(&store, new_ticket(customer.id, "Before", 1)).await;
    let mut draft = new_ticket(customer.id, "Возврат платья", 10);
    draft.status = TicketStatus::Solved;
    draft.priority = Priority::High;
    draft.tags = vec!["возврат".into()];
    let mut imported = draft.into_ticket(0);
    imported.number = 999_999; // ignored: the store numbers it
    imported.version = 7; // ignored: it starts at 1
    imported.updated_at = at(500);
    imported.first_agent_reply_at = Some(at(60));
    imported.solved_at = Some(at(500));
    let message = Message {
        id: MessageId::new(),
        ticket_id: imported.id,
        author: Author::Customer(customer.id),
        visibility: MessageVisibility::Public,
        channel: imported.channel,
        body: "Платье не подошло по размеру".into(),
        attachments: vec![],
        created_at: at(10),
    };
    let receipt = commit(
        &store,
        vec![
            Mutation::ImportTicket(Box::new(imported.clone())),
            Mutation::InsertMessage(message),
        ],
    )
    .await;
    assert_eq!(receipt.ticket_numbers, vec![before.number + 1]);
    let expected = Ticket {
        number: before.number + 1,
        version: 1,
        ..imported.clone()
    };
    assert_eq!(
        store.find_ticket(imported.id).await.unwrap(),
        Some(expected)
    );
    let solved_high = TicketCountQuery {
        statuses: vec![TicketStatus::Solved],
        priorities: vec![Priority::High],
        ..Default::default()
    };
    assert_eq!(
        store
            .count_tickets_many(std::slice::from_ref(&solved_high))
            .await
            .unwrap(),
        vec![1]
    );
    assert_eq!(scanned_count(&store, &solved_high).await, 1);
    for query in ["размер", "возврат"] {
        assert_eq!(
            search(&store, query, TicketFilter::default(), Visibility::All).await,
            vec![imported.id],
            "{query}"
        );
    }
}

pub async fn after_a_bulk_import_every_ticket_and_customer_is_listed_counted_and_found(
    store: Arc<dyn Store>,
) {
    let anna = seed_customer(&store, "Анна", "anna@example.ru").await;
    let before = seed_ticket(&store, new_ticket(anna.id, "Доставка курьером", 1)).await;
    commit(&store, vec![Mutation::BeginBulkImport]).await;
    // Beginning twice is the same as once.
    commit(&store, vec![Mutation::BeginBulkImport]).await;
    let boris = new_customer("Борис Ксилофонов", "boris@example.ru");
    let imported: Vec<Ticket> = (0..6)
        .map(|n| {
            let mut draft = new_ticket(boris.id, &format!("Возврат платья {n}"), 10 + n);
            draft.status = if n % 2 == 0 {
                TicketStatus::Open
            } else {
                TicketStatus::Solved
            };
            draft.tags = vec!["возврат".into()];
            draft.into_ticket(0)
        })
        .collect();
    let mut unit = vec![Mutation::InsertCustomer(boris.clone())];
    unit.extend(
        imported
            .iter()
            .map(|ticket| Mutation::ImportTicket(Box::new(ticket.clone()))),
    );
    unit.extend(imported.iter().map(|ticket| {
        Mutation::InsertMessage(Message {
            id: MessageId::new(),
            ticket_id: ticket.id,
            author: Author::Customer(boris.id),
            visibility: MessageVisibility::Public,
            channel: ticket.channel,
            body: "Верните деньги за ксилофоны".into(),
            attachments: vec![],
            created_at: ticket.created_at,
        })
    }));
    commit(&store, unit).await;
    // An edit during the import: the old subject's words leave the index, the new ones join.
    let mut renamed = store.find_ticket(before.id).await.unwrap().unwrap();
    renamed.subject = "Самовывоз из пункта".into();
    commit(
        &store,
        vec![Mutation::UpdateTicket {
            ticket: renamed.clone(),
            expected_version: renamed.version,
        }],
    )
    .await;
    commit(&store, vec![Mutation::EndBulkImport]).await;
    // Ending without an import under way does nothing.
    commit(&store, vec![Mutation::EndBulkImport]).await;

    let mut expected: Vec<TicketId> = ids(&imported);
    expected.sort_unstable();
    let mut found = search(
        &store,
        "ксилофоны",
        TicketFilter::default(),
        Visibility::All,
    )
    .await;
    found.sort_unstable();
    assert_eq!(
        found, expected,
        "every imported ticket is found by its messages"
    );
    // As typed: a prefix, through the vocabulary of words the import wrote.
    let mut found = search(&store, "ксилоф", TicketFilter::default(), Visibility::All).await;
    found.sort_unstable();
    assert_eq!(found, expected, "imported words are in the vocabulary");
    assert_eq!(
        search(
            &store,
            "самовывоз",
            TicketFilter::default(),
            Visibility::All
        )
        .await,
        vec![before.id]
    );
    assert!(
        search(&store, "курьером", TicketFilter::default(), Visibility::All)
            .await
            .is_empty(),
        "a subject replaced during the import is not found by its old words"
    );
    let tagged = store
        .list_tickets(&query(
            Visibility::All,
            TicketFilter {
                tag: Some("возврат".into()),
                statuses: vec![TicketStatus::Open],
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    assert_eq!(tagged.len(), 3, "open tickets tagged during the import");
    let customers = store
        .search_customers(&words("ксилофонов"), 10)
        .await
        .unwrap();
    assert_eq!(
        customers.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![boris.id]
    );
    for status in [TicketStatus::Open, TicketStatus::Solved, TicketStatus::New] {
        let count = TicketCountQuery {
            statuses: vec![status],
            ..Default::default()
        };
        assert_eq!(
            store.count_tickets(&count).await.unwrap(),
            scanned_count(&store, &count).await,
            "{status:?}"
        );
    }
}

/// One message of `customer` on `ticket`.
fn customer_message(ticket: &Ticket, customer: CustomerId, body: &str, second: i64) -> Message {
    Message {
        id: MessageId::new(),
        ticket_id: ticket.id,
        author: Author::Customer(customer),
        visibility: MessageVisibility::Public,
        channel: ticket.channel,
        body: body.into(),
        attachments: vec![],
        created_at: at(second),
    }
}

/// A unit the way an import writes it (backends may write such units table by table): a new
/// customer, several tickets with tags, their messages interleaved, an audit event each.
pub async fn a_unit_importing_many_tickets_numbers_them_in_order_and_stands_or_falls_whole(
    store: Arc<dyn Store>,
) {
    let anna = seed_customer(&store, "Анна", "anna@example.ru").await;
    let before = seed_ticket(&store, new_ticket(anna.id, "Before", 1)).await;
    let mut vera = new_customer("Вера Гармошкина", "vera@example.ru");
    vera.identities.push(Identity {
        id: IdentityId::new(),
        customer_id: vera.id,
        value: IdentityValue::parse(IdentityKind::Phone, None, "+7 912 345-67-89")
            .expect("valid phone"),
        created_at: at(0),
    });
    let tags: [&[&str]; 3] = [&["возврат", "срочно"], &["возврат"], &[]];
    let imported: Vec<Ticket> = tags
        .iter()
        .enumerate()
        .map(|(n, tags)| {
            let mut draft = new_ticket(vera.id, &format!("Гармошка {n}"), 10 + n as i64);
            draft.tags = tags.iter().map(|tag| (*tag).to_owned()).collect();
            draft.status = TicketStatus::Open;
            let mut ticket = draft.into_ticket(0);
            ticket.customer_id = if n == 2 { anna.id } else { vera.id };
            ticket
        })
        .collect();
    let first = customer_message(&imported[0], vera.id, "Гармошка пришла без ремня", 20);
    let second = customer_message(&imported[0], vera.id, "И без чехла", 40);
    let other = customer_message(&imported[1], vera.id, "Где моя посылка с баяном?", 30);
    let mut unit = vec![Mutation::InsertCustomer(vera.clone())];
    for ticket in &imported {
        unit.push(Mutation::ImportTicket(Box::new(ticket.clone())));
        unit.push(Mutation::Audit(AuditEvent::new(
            ticket.created_at,
            Actor::System,
            "ticket.created",
            "ticket",
            ticket.id.0,
            vec![set("subject", &ticket.subject)],
        )));
    }
    unit.extend([
        Mutation::InsertMessage(first.clone()),
        Mutation::InsertMessage(other.clone()),
        Mutation::InsertMessage(second.clone()),
    ]);
    let receipt = commit(&store, unit).await;

    let numbers: Vec<i64> = (1..=3).map(|n| before.number + n).collect();
    assert_eq!(
        receipt.ticket_numbers, numbers,
        "numbered in the unit's order"
    );
    for (ticket, number) in imported.iter().zip(&numbers) {
        let mut stored = store
            .find_ticket(ticket.id)
            .await
            .unwrap()
            .expect("imported");
        stored.tags.sort();
        let mut expected = Ticket {
            number: *number,
            version: 1,
            ..ticket.clone()
        };
        expected.tags.sort();
        assert_eq!(stored, expected);
        let history = store.list_audit_events(ticket.id.0).await.unwrap();
        assert_eq!(
            history
                .iter()
                .map(|event| event.action.as_str())
                .collect::<Vec<_>>(),
            vec!["ticket.created"]
        );
    }
    let bodies = |messages: Vec<Message>| -> Vec<String> {
        messages.into_iter().map(|message| message.body).collect()
    };
    assert_eq!(
        bodies(store.list_messages(imported[0].id).await.unwrap()),
        vec![first.body.clone(), second.body.clone()]
    );
    assert_eq!(
        bodies(store.list_messages(imported[1].id).await.unwrap()),
        vec![other.body.clone()]
    );
    assert!(
        store
            .list_messages(imported[2].id)
            .await
            .unwrap()
            .is_empty()
    );
    let phone = IdentityValue::parse(IdentityKind::Phone, None, "+79123456789").unwrap();
    assert_eq!(
        store
            .find_customer_by_identity(&phone)
            .await
            .unwrap()
            .map(|customer| customer.id),
        Some(vera.id)
    );
    assert!(
        store
            .list_tags()
            .await
            .unwrap()
            .iter()
            .any(|tag| tag.name == "срочно"),
        "a tag first used by an import is created"
    );
    let tagged = store
        .list_tickets(&query(
            Visibility::All,
            TicketFilter {
                tag: Some("возврат".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let mut tagged = ids(&tagged);
    tagged.sort_unstable();
    assert_eq!(tagged, ids(&imported[..2]));
    assert_eq!(
        search(
            &store,
            "ремня чехла",
            TicketFilter::default(),
            Visibility::All
        )
        .await,
        vec![imported[0].id],
        "both messages of a ticket are in its document"
    );
    assert_eq!(
        search(&store, "баян", TicketFilter::default(), Visibility::All).await,
        vec![imported[1].id]
    );
    let open = TicketCountQuery {
        statuses: vec![TicketStatus::Open],
        ..Default::default()
    };
    assert_eq!(store.count_tickets(&open).await.unwrap(), 3);
    assert_eq!(
        store
            .search_customers(&words("гармошкина"), 10)
            .await
            .unwrap()
            .iter()
            .map(|customer| customer.id)
            .collect::<Vec<_>>(),
        vec![vera.id]
    );

    // A second import whose customer takes an e-mail already taken: nothing of it stays.
    let twin = new_customer("Вера Двойник", "vera@example.ru");
    let lost = new_ticket(twin.id, "Двойник", 60).into_ticket(0);
    let error = store
        .commit(UnitOfWork {
            mutations: vec![
                Mutation::InsertCustomer(twin.clone()),
                Mutation::ImportTicket(Box::new(lost.clone())),
                Mutation::InsertMessage(customer_message(&lost, twin.id, "Потеряно", 61)),
            ],
        })
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
    assert_eq!(store.find_ticket(lost.id).await.unwrap(), None);
    assert_eq!(store.find_customer(twin.id).await.unwrap(), None);
    assert!(
        search(&store, "потеряно", TicketFilter::default(), Visibility::All)
            .await
            .is_empty()
    );
    assert_eq!(store.count_tickets(&open).await.unwrap(), 3);
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
    let agent = seed_agent(&store, "agent@shop.test", Role::Agent, vec![]).await;

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
    let agent = seed_agent(&store, "a@shop.test", Role::Agent, vec![mine.id]).await;

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

    let second = seed_agent(&store, "ivan@shop.test", Role::Agent, vec![]).await;
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
    let mut paged = vec![first_page[0].id, second_page[0].id];
    paged.sort();
    let mut both = vec![agent.id, second.id];
    both.sort();
    assert_eq!(paged, both, "two pages of one hold both agents");
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
    let agent = seed_agent(&store, "a@shop.test", Role::Agent, vec![team.id]).await;
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
    let (support, vip) = (
        seed_team(&store, "Support").await,
        seed_team(&store, "VIP").await,
    );
    let mut team_ids = vec![support.id, vip.id];
    team_ids.sort_unstable();
    let agent = seed_agent(&store, "t@shop.test", Role::Admin, team_ids).await;
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
    // What an API request reads: the token with its agent and the agent's teams.
    assert_eq!(
        store.find_token_with_agent(&[7; 32]).await.unwrap(),
        Some((token.clone(), agent.clone()))
    );
    assert_eq!(store.find_token_with_agent(&[8; 32]).await.unwrap(), None);
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
    let agent = seed_agent(&store, "audit@shop.test", Role::Admin, vec![]).await;
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

/// Tokens are made once, in Rust, and stored as they are: a query must name them as they are
/// too. PostgreSQL's own text parser reads «1e5x» as the number «1e5» followed by «x», so a
/// query it parsed would look for two tokens that no document holds.
pub async fn a_token_a_database_parser_would_split_is_found_as_it_was_indexed(
    store: Arc<dyn Store>,
) {
    let customer = seed_customer(&store, "Зоя 1e5x", "zoya@example.ru").await;
    let ticket = seed_ticket(
        &store,
        new_ticket(customer.id, "Модель 2e3kw не включается", 1),
    )
    .await;
    seed_message(&store, &ticket, "На экране код 7e1q", 2).await;
    let other = seed_ticket(&store, new_ticket(customer.id, "Модель 2e3 не та", 3)).await;
    for (query, expected) in [
        ("2e3kw ", vec![ticket.id]),
        ("7e1q ", vec![ticket.id]),
        ("2e3k", vec![ticket.id]),
        ("2e3 ", vec![other.id]),
    ] {
        let hits = search(&store, query, TicketFilter::default(), Visibility::All).await;
        assert_eq!(hits, expected, "query {query:?}");
    }
    let found = store
        .search_customers(&words("1e5x "), 10)
        .await
        .expect("customer search runs");
    assert_eq!(
        found.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![customer.id],
        "a customer is found by a token of their name"
    );
    let found = store
        .search_customers(&words("1e5 "), 10)
        .await
        .expect("customer search runs");
    assert!(
        found.is_empty(),
        "«1e5» is not a token of the customer's: {found:?}"
    );
}

pub async fn a_prefix_stands_for_its_shortest_tokens_and_sees_words_written_later(
    store: Arc<dyn Store>,
) {
    let customer = seed_customer(&store, "Олег", "oleg@example.ru").await;
    let all = || (TicketFilter::default(), Visibility::All);
    // More tokens start with «770» than a prefix stands for: the shortest ones are kept.
    let short = seed_ticket(&store, new_ticket(customer.id, "Ксерокс 7700", 1)).await;
    let long = seed_ticket(&store, new_ticket(customer.id, "Ксерокс 770123456", 2)).await;
    let mut many = Vec::new();
    for index in 0..otklik_search::MAX_PREFIX_TOKENS {
        let mut draft = new_ticket(customer.id, &format!("Заказ {}", 770_000 + index), 3);
        draft.created_at = at(3 + i64::try_from(index).unwrap());
        many.push(Mutation::InsertTicket(draft));
    }
    commit(&store, many).await;
    let (filter, visibility) = all();
    assert_eq!(
        search(&store, "ксерокс 770", filter, visibility).await,
        vec![short.id],
        "the shortest token is kept, a longer one past the bound is left out"
    );
    let (filter, visibility) = all();
    assert_eq!(
        search(&store, "770123456", filter, visibility).await,
        vec![long.id],
        "the whole number still finds it"
    );

    // A word first written after searches ran, then again: a prefix finds both tickets.
    let (filter, visibility) = all();
    assert_eq!(search(&store, "ксило", filter, visibility).await, vec![]);
    let first = seed_ticket(&store, new_ticket(customer.id, "Ксилофон сломан", 200)).await;
    let second = seed_ticket(&store, new_ticket(customer.id, "Второй ксилофон", 201)).await;
    let reply = seed_ticket(&store, new_ticket(customer.id, "Без темы", 202)).await;
    seed_message(&store, &reply, "Ксилофонист доволен", 203).await;
    let (filter, visibility) = all();
    let mut hits = search(&store, "ксило", filter, visibility).await;
    hits.sort();
    let mut expected = vec![first.id, second.id, reply.id];
    expected.sort();
    assert_eq!(hits, expected, "words of subjects and of later messages");
    let (filter, visibility) = all();
    assert_eq!(
        search(&store, "ксилофонис", filter, visibility).await,
        vec![reply.id]
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
        search(&store, "payment ", new_only.clone(), Visibility::All).await,
        vec![hidden.id]
    );
    let other_team = TicketFilter {
        team: Some(TeamFilter::Team(other.id)),
        ..Default::default()
    };
    assert!(
        search(&store, "payment ", other_team, agent.clone())
            .await
            .is_empty(),
        "a filter never widens visibility"
    );

    // An agent's filtered search keeps to both: the filter, and what the agent may see.
    let mut draft = new_ticket(customer.id, "Payment refused", 3);
    draft.status = TicketStatus::New;
    let unrouted = seed_ticket(&store, draft).await;
    assert_eq!(
        search(&store, "payment ", new_only, agent.clone()).await,
        vec![unrouted.id],
        "new and seen by every agent; the other new one is another team's"
    );
    let open_only = TicketFilter {
        statuses: vec![TicketStatus::Open],
        ..Default::default()
    };
    assert_eq!(
        search(&store, "payment ", open_only, agent.clone()).await,
        vec![visible.id]
    );
    let no_team = TicketFilter {
        team: Some(TeamFilter::NoTeam),
        ..Default::default()
    };
    assert_eq!(
        search(&store, "payment ", no_team, agent).await,
        vec![unrouted.id]
    );
}

/// Commits `changed` over its stored version and keeps `ticket` current.
async fn update_ticket(
    store: &Arc<dyn Store>,
    ticket: &mut Ticket,
    change: impl FnOnce(&mut Ticket),
) {
    let mut changed = ticket.clone();
    change(&mut changed);
    commit(
        store,
        vec![Mutation::UpdateTicket {
            ticket: changed.clone(),
            expected_version: ticket.version,
        }],
    )
    .await;
    changed.version += 1;
    *ticket = changed;
}

/// A status filter that few tickets pass: a store may ask its index for the status (SQLite V24,
/// PostgreSQL V25), so the index must follow every change of status.
pub async fn a_search_for_a_rare_status_follows_every_change_of_status(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "R", "r@example.com").await;
    let team = seed_team(&store, "Desk").await;
    let agent = seed_agent(&store, "rare@shop.test", Role::Agent, vec![team.id]).await;
    // Sixteen tickets about a parcel, one open among solved ones; every other one of the
    // agent's team, the rest of no team: the agent sees them all.
    let mut tickets = Vec::new();
    for index in 0..16 {
        let mut draft = new_ticket(customer.id, &format!("Parcel {index}"), index + 1);
        draft.status = if index == 5 {
            TicketStatus::Open
        } else {
            TicketStatus::Solved
        };
        draft.team_id = (index % 2 == 0).then_some(team.id);
        tickets.push(seed_ticket(&store, draft).await);
    }
    let found = |statuses: Vec<TicketStatus>, as_agent: bool| {
        let store = store.clone();
        let visibility = if as_agent {
            Visibility::Agent {
                agent_id: agent.id,
                team_ids: vec![team.id],
            }
        } else {
            Visibility::All
        };
        async move {
            let filter = TicketFilter {
                statuses,
                ..Default::default()
            };
            let mut found = search(&store, "parcel", filter, visibility).await;
            found.sort();
            found
        }
    };
    for as_agent in [false, true] {
        assert_eq!(
            found(vec![TicketStatus::Open], as_agent).await,
            vec![tickets[5].id],
            "the open one; as an agent: {as_agent}"
        );
        assert_eq!(
            found(vec![TicketStatus::Solved], as_agent).await.len(),
            15,
            "the solved ones; as an agent: {as_agent}"
        );
    }

    // One ticket waits on the customer, the open one is solved, a solved one is reopened.
    update_ticket(&store, &mut tickets[9], |t| {
        t.status = TicketStatus::Pending
    })
    .await;
    update_ticket(&store, &mut tickets[5], |t| t.status = TicketStatus::Solved).await;
    update_ticket(&store, &mut tickets[12], |t| t.status = TicketStatus::Open).await;
    for as_agent in [false, true] {
        assert_eq!(
            found(vec![TicketStatus::Open], as_agent).await,
            vec![tickets[12].id],
            "reopened; as an agent: {as_agent}"
        );
        assert_eq!(
            found(vec![TicketStatus::Pending], as_agent).await,
            vec![tickets[9].id],
            "pending; as an agent: {as_agent}"
        );
        let mut either = vec![tickets[9].id, tickets[12].id];
        either.sort();
        assert_eq!(
            found(vec![TicketStatus::Open, TicketStatus::Pending], as_agent).await,
            either,
            "open or pending; as an agent: {as_agent}"
        );
    }
}

/// Team and assignee filters that few tickets pass: a store may ask its index for the terms of
/// who a ticket is routed to (SQLite V22, PostgreSQL V21), which must follow every change.
pub async fn a_search_for_a_rare_team_or_assignee_follows_every_change_of_routing(
    store: Arc<dyn Store>,
) {
    let customer = seed_customer(&store, "T", "t@example.com").await;
    let team = seed_team(&store, "Couriers").await;
    let agent = seed_agent(&store, "courier@shop.test", Role::Agent, vec![team.id]).await;
    // Sixteen tickets about a parcel: one of the team, one assigned to the agent.
    let mut tickets = Vec::new();
    for index in 0..16 {
        let mut draft = new_ticket(customer.id, &format!("Parcel {index}"), index + 1);
        draft.team_id = (index == 4).then_some(team.id);
        draft.assignee_id = (index == 7).then_some(agent.id);
        tickets.push(seed_ticket(&store, draft).await);
    }
    let found = |team_filter: Option<TeamFilter>, assignee: Option<AssigneeFilter>| {
        let store = store.clone();
        async move {
            let filter = TicketFilter {
                team: team_filter,
                assignee,
                ..Default::default()
            };
            let mut found = search(&store, "parcel", filter, Visibility::All).await;
            found.sort();
            found
        }
    };
    let of_team = || Some(TeamFilter::Team(team.id));
    let of_agent = || Some(AssigneeFilter::Agent(agent.id));
    assert_eq!(found(of_team(), None).await, vec![tickets[4].id]);
    assert_eq!(found(None, of_agent()).await, vec![tickets[7].id]);
    assert_eq!(found(of_team(), of_agent()).await, Vec::<TicketId>::new());

    // The ticket of the team is handed to the agent; the agent's ticket leaves for no one.
    update_ticket(&store, &mut tickets[4], |t| t.assignee_id = Some(agent.id)).await;
    update_ticket(&store, &mut tickets[7], |t| t.assignee_id = None).await;
    update_ticket(&store, &mut tickets[11], |t| t.team_id = Some(team.id)).await;
    let mut of_team_now = vec![tickets[4].id, tickets[11].id];
    of_team_now.sort();
    assert_eq!(found(of_team(), None).await, of_team_now);
    assert_eq!(found(None, of_agent()).await, vec![tickets[4].id]);
    assert_eq!(found(of_team(), of_agent()).await, vec![tickets[4].id]);
    assert_eq!(
        found(Some(TeamFilter::NoTeam), Some(AssigneeFilter::Unassigned))
            .await
            .len(),
        14,
        "neither routed nor assigned"
    );
}

/// A search filtered by priority, channel or tag, which both backends' indexes carry as terms
/// (PostgreSQL V26–V27, SQLite V29), follows every change of them: a ticket that comes to pass
/// the filter is found, one that leaves it is not.
pub async fn a_search_by_priority_channel_or_tag_follows_every_change_of_them(
    store: Arc<dyn Store>,
) {
    let customer = seed_customer(&store, "P", "p@example.com").await;
    // Sixteen tickets about a parcel: one urgent, one by phone, one tagged «хрупкое».
    let mut tickets = Vec::new();
    for index in 0..16 {
        let mut draft = new_ticket(customer.id, &format!("Parcel {index}"), index + 1);
        if index == 2 {
            draft.priority = Priority::Urgent;
        }
        if index == 5 {
            draft.channel = Channel::Phone;
        }
        draft.tags = if index == 9 {
            vec!["хрупкое".into(), "доставка".into()]
        } else {
            vec!["доставка".into()]
        };
        tickets.push(seed_ticket(&store, draft).await);
    }
    let found = |filter: TicketFilter| {
        let store = store.clone();
        async move {
            let mut found = search(&store, "parcel", filter, Visibility::All).await;
            found.sort();
            found
        }
    };
    let urgent = || TicketFilter {
        priorities: vec![Priority::Urgent],
        ..Default::default()
    };
    let by_phone = || TicketFilter {
        channels: vec![Channel::Phone],
        ..Default::default()
    };
    let fragile = || TicketFilter {
        tag: Some("хрупкое".into()),
        ..Default::default()
    };
    assert_eq!(found(urgent()).await, vec![tickets[2].id]);
    assert_eq!(found(by_phone()).await, vec![tickets[5].id]);
    assert_eq!(found(fragile()).await, vec![tickets[9].id]);

    // Each passes to another ticket.
    update_ticket(&store, &mut tickets[2], |t| t.priority = Priority::Low).await;
    update_ticket(&store, &mut tickets[12], |t| t.priority = Priority::Urgent).await;
    update_ticket(&store, &mut tickets[5], |t| t.channel = Channel::Email).await;
    update_ticket(&store, &mut tickets[13], |t| t.channel = Channel::Phone).await;
    update_ticket(&store, &mut tickets[9], |t| {
        t.tags = vec!["доставка".into()]
    })
    .await;
    update_ticket(&store, &mut tickets[14], |t| {
        t.tags = vec!["доставка".into(), "хрупкое".into()];
    })
    .await;
    assert_eq!(found(urgent()).await, vec![tickets[12].id]);
    assert_eq!(found(by_phone()).await, vec![tickets[13].id]);
    assert_eq!(found(fragile()).await, vec![tickets[14].id]);
    // A tag no ticket carries, and one that does not exist.
    update_ticket(&store, &mut tickets[14], |t| t.tags = vec![]).await;
    assert_eq!(found(fragile()).await, Vec::<TicketId>::new());
    let missing = TicketFilter {
        tag: Some("нет-такого".into()),
        ..Default::default()
    };
    assert_eq!(found(missing).await, Vec::<TicketId>::new());
}

/// Filters a store may apply by listing the few tickets that pass them first (a date range, a
/// priority, a channel, a tag, a customer, no assignee): each keeps exactly its tickets, alone,
/// together, and for an agent.
pub async fn a_search_keeps_to_every_filter_the_index_has_no_terms_for(store: Arc<dyn Store>) {
    let anna = seed_customer(&store, "Anna", "anna@example.com").await;
    let boris = seed_customer(&store, "Boris", "boris@example.com").await;
    let team = seed_team(&store, "Desk").await;
    let agent = seed_agent(&store, "filters@shop.test", Role::Agent, vec![team.id]).await;
    // Twelve tickets about a parcel, one every hour; every third urgent, every fourth by phone,
    // every fifth tagged, the last four Boris's, the even ones assigned.
    let mut tickets = Vec::new();
    for index in 0..12_i64 {
        let customer = if index >= 8 { boris.id } else { anna.id };
        let mut draft = new_ticket(customer, &format!("Parcel {index}"), index * 3600 + 1);
        if index % 3 == 0 {
            draft.priority = Priority::Urgent;
        }
        if index % 4 == 0 {
            draft.channel = Channel::Phone;
        }
        if index % 5 == 0 {
            draft.tags = vec!["доставка".into()];
        }
        draft.team_id = (index % 2 == 1).then_some(team.id);
        draft.assignee_id = (index % 2 == 0).then_some(agent.id);
        tickets.push(seed_ticket(&store, draft).await);
    }
    let expect = |pick: &dyn Fn(i64, &Ticket) -> bool| {
        let mut ids: Vec<TicketId> = tickets
            .iter()
            .enumerate()
            .filter(|(index, ticket)| pick(*index as i64, ticket))
            .map(|(_, ticket)| ticket.id)
            .collect();
        ids.sort();
        ids
    };
    let found = |filter: TicketFilter, visibility: Visibility| {
        let store = store.clone();
        async move {
            let mut found = search(&store, "parcel", filter, visibility).await;
            found.sort();
            found
        }
    };
    let since = tickets[6].updated_at;
    let before = tickets[9].updated_at;
    let cases: Vec<(&str, TicketFilter, Vec<TicketId>)> = vec![
        (
            "updated since",
            TicketFilter {
                updated_since: Some(since),
                ..Default::default()
            },
            expect(&|index, _| index >= 6),
        ),
        (
            "updated between",
            TicketFilter {
                updated_since: Some(since),
                updated_before: Some(before),
                ..Default::default()
            },
            expect(&|index, _| (6..9).contains(&index)),
        ),
        (
            "urgent",
            TicketFilter {
                priorities: vec![Priority::Urgent],
                ..Default::default()
            },
            expect(&|index, _| index % 3 == 0),
        ),
        (
            "by phone",
            TicketFilter {
                channels: vec![Channel::Phone],
                ..Default::default()
            },
            expect(&|index, _| index % 4 == 0),
        ),
        (
            "tagged",
            TicketFilter {
                tag: Some("доставка".into()),
                ..Default::default()
            },
            expect(&|index, _| index % 5 == 0),
        ),
        (
            "Boris's",
            TicketFilter {
                customer_id: Some(boris.id),
                ..Default::default()
            },
            expect(&|index, _| index >= 8),
        ),
        (
            "unassigned",
            TicketFilter {
                assignee: Some(AssigneeFilter::Unassigned),
                ..Default::default()
            },
            expect(&|index, _| index % 2 == 1),
        ),
        (
            "urgent and unassigned since",
            TicketFilter {
                priorities: vec![Priority::Urgent],
                assignee: Some(AssigneeFilter::Unassigned),
                updated_since: Some(tickets[2].updated_at),
                ..Default::default()
            },
            expect(&|index, _| index >= 2 && index % 3 == 0 && index % 2 == 1),
        ),
    ];
    for (name, filter, expected) in cases {
        assert_eq!(
            found(filter.clone(), Visibility::All).await,
            expected,
            "{name}"
        );
        // An agent of no team sees the tickets without one and those assigned to them: all.
        let someone_else = Visibility::Agent {
            agent_id: AgentId::new(),
            team_ids: vec![],
        };
        let visible: Vec<TicketId> = expected
            .iter()
            .copied()
            .filter(|id| {
                tickets
                    .iter()
                    .any(|ticket| ticket.id == *id && ticket.team_id.is_none())
            })
            .collect();
        assert_eq!(
            found(filter, someone_else).await,
            visible,
            "{name}, as an agent"
        );
    }
}

pub async fn an_agents_search_follows_every_change_of_who_may_see_a_ticket(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "G", "g@example.com").await;
    let mine = seed_team(&store, "Mine").await;
    let other = seed_team(&store, "Other").await;
    let agent = seed_agent(&store, "searcher@shop.test", Role::Agent, vec![mine.id]).await;
    // Oldest first; most matches belong to the other team, the newest ones above all.
    let routed = [
        ("Parcel lost", Some(other.id), None),
        ("Parcel late", Some(mine.id), None),
        ("Parcel damaged", None, None),
        ("Parcel opened", Some(other.id), Some(agent.id)),
        ("Parcel returned", Some(other.id), None),
        ("Parcel stuck", Some(other.id), None),
        ("Parcel wet", Some(other.id), None),
    ];
    let mut tickets = Vec::new();
    for (index, (subject, team_id, assignee_id)) in routed.into_iter().enumerate() {
        let mut draft = new_ticket(customer.id, subject, index as i64 + 1);
        draft.team_id = team_id;
        draft.assignee_id = assignee_id;
        tickets.push(seed_ticket(&store, draft).await);
    }
    let all_ids: Vec<TicketId> = tickets.iter().map(|ticket| ticket.id).collect();
    let ticket_ids = |positions: &[usize]| {
        let mut ids: Vec<TicketId> = positions.iter().map(|p| all_ids[*p]).collect();
        ids.sort();
        ids
    };
    let sees = |filter: TicketFilter| {
        let store = store.clone();
        let visibility = Visibility::Agent {
            agent_id: agent.id,
            team_ids: vec![mine.id],
        };
        async move {
            let mut found = search(&store, "parcel ", filter, visibility).await;
            found.sort();
            found
        }
    };
    let with_merged = || TicketFilter {
        include_merged: true,
        ..Default::default()
    };
    assert_eq!(
        sees(TicketFilter::default()).await,
        ticket_ids(&[1, 2, 3]),
        "no team, the agent's team and assigned to the agent"
    );

    update_ticket(&store, &mut tickets[4], |t| t.assignee_id = Some(agent.id)).await;
    assert_eq!(
        sees(TicketFilter::default()).await,
        ticket_ids(&[1, 2, 3, 4]),
        "assigned to the agent"
    );
    update_ticket(&store, &mut tickets[1], |t| t.team_id = Some(other.id)).await;
    update_ticket(&store, &mut tickets[3], |t| t.assignee_id = None).await;
    assert_eq!(
        sees(TicketFilter::default()).await,
        ticket_ids(&[2, 4]),
        "moved to another team, and unassigned"
    );
    let survivor = tickets[2].id;
    update_ticket(&store, &mut tickets[6], |t| t.merged_into = Some(survivor)).await;
    assert_eq!(sees(with_merged()).await, ticket_ids(&[2, 4]));

    // Deleting the other team leaves its tickets, merged ones too, with no team: every agent
    // sees them.
    commit(&store, vec![Mutation::DeleteTeam(other.id)]).await;
    assert_eq!(
        sees(TicketFilter::default()).await,
        ticket_ids(&[0, 1, 2, 3, 4, 5])
    );
    assert_eq!(
        sees(with_merged()).await,
        ticket_ids(&[0, 1, 2, 3, 4, 5, 6])
    );
    store.rebuild_derived_data().await.expect("rebuild");
    assert_eq!(
        sees(with_merged()).await,
        ticket_ids(&[0, 1, 2, 3, 4, 5, 6]),
        "after a rebuild"
    );
    let mut everyone = search(&store, "parcel ", with_merged(), Visibility::All).await;
    everyone.sort();
    assert_eq!(everyone, ticket_ids(&[0, 1, 2, 3, 4, 5, 6]));
}

pub async fn attachment_names_are_found_and_stay_found_after_a_rebuild(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "K", "k@example.com").await;
    let ticket = seed_ticket(&store, new_ticket(customer.id, "Посылка", 1)).await;
    let other = seed_ticket(&store, new_ticket(customer.id, "Посылка", 2)).await;
    let attachment = |message_id: MessageId, file_name: &str| AttachmentMeta {
        id: AttachmentId::new(),
        ticket_id: ticket.id,
        message_id,
        file_name: file_name.into(),
        content_type: "application/octet-stream".into(),
        size_bytes: 10,
        sha256: "cd".repeat(32),
    };
    let message = |body: &str, names: &[&str], second: i64| {
        let id = MessageId::new();
        Message {
            id,
            ticket_id: ticket.id,
            author: Author::Customer(customer.id),
            visibility: MessageVisibility::Public,
            channel: Channel::Email,
            body: body.into(),
            attachments: names.iter().map(|name| attachment(id, name)).collect(),
            created_at: at(second),
        }
    };
    commit(
        &store,
        vec![
            // Two names on one message, none on the next, one on the last: each message's names
            // stay with it when the documents are written again from the tables.
            Mutation::InsertMessage(message(
                "Вот документы",
                &["накладная.pdf", "фото_коробки.jpg"],
                3,
            )),
            Mutation::InsertMessage(message("Без вложений", &[], 4)),
            Mutation::InsertMessage(message("И ещё", &["гарантийный талон.png"], 5)),
        ],
    )
    .await;
    let (f, v) = (TicketFilter::default(), Visibility::All);
    let queries = ["накладная ", "коробки ", "талон ", "вложений ", "посылка "];
    let before: Vec<Vec<TicketId>> = {
        let mut found = Vec::new();
        for query in queries {
            found.push(search(&store, query, f.clone(), v.clone()).await);
        }
        found
    };
    for (query, found) in queries.iter().zip(&before).take(4) {
        assert_eq!(found, &vec![ticket.id], "{query}");
    }
    assert_eq!(before[4].len(), 2, "both tickets by their subject");
    assert!(before[4].contains(&other.id));
    store.rebuild_derived_data().await.expect("rebuild");
    for (query, found) in queries.iter().zip(&before) {
        assert_eq!(
            &search(&store, query, f.clone(), v.clone()).await,
            found,
            "{query} after a rebuild"
        );
    }
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
    let with_merged = || {
        (
            TicketFilter {
                include_merged: true,
                ..Default::default()
            },
            Visibility::All,
        )
    };
    let (f, v) = all();
    assert!(
        search(&store, "warranty ", f, v).await.is_empty(),
        "a merged ticket is hidden from search"
    );
    let (f, v) = with_merged();
    assert_eq!(search(&store, "warranty ", f, v).await, vec![source.id]);

    // A ticket merged without messages to move, whose search text does not change: hidden all
    // the same, and found again once unmerged.
    let bare = seed_ticket(&store, new_ticket(customer.id, "Warranty question", 4)).await;
    let (f, v) = all();
    assert_eq!(search(&store, "question ", f, v).await, vec![bare.id]);
    let mut bare_merged = bare.clone();
    bare_merged.merged_into = Some(target.id);
    commit(
        &store,
        vec![Mutation::UpdateTicket {
            ticket: bare_merged.clone(),
            expected_version: 1,
        }],
    )
    .await;
    let (f, v) = all();
    assert!(search(&store, "question ", f, v).await.is_empty());
    let mut bare_unmerged = bare_merged;
    bare_unmerged.version = 2;
    bare_unmerged.merged_into = None;
    commit(
        &store,
        vec![Mutation::UpdateTicket {
            ticket: bare_unmerged,
            expected_version: 2,
        }],
    )
    .await;
    let (f, v) = all();
    assert_eq!(search(&store, "question ", f, v).await, vec![bare.id]);

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
    let (f, v) = with_merged();
    assert_eq!(
        search(&store, "warranty ", f, v).await,
        vec![bare.id, source.id],
        "merged tickets are still found when asked for, after a rebuild"
    );
    let (f, v) = all();
    assert_eq!(search(&store, "warranty ", f, v).await, vec![bare.id]);
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

pub async fn customers_rank_by_the_same_score_on_every_backend(store: Arc<dyn Store>) {
    // A shorter record that matches ranks first (bm25() thought so, ts_rank did not: the two
    // backends listed these customers in different orders); equal scores list the newest first;
    // a customer merged into another is not listed.
    let short = seed_customer(&store, "Иван", "a@example.com").await;
    let long = seed_customer(
        &store,
        "Иван Александрович Петров-Водкин Соколов",
        "b@example.com",
    )
    .await;
    let short_too = seed_customer(&store, "Иван", "c@example.com").await;
    let merged = seed_customer(&store, "Иван", "d@example.com").await;
    let mut gone = merged.clone();
    gone.merged_into = Some(short.id);
    commit(
        &store,
        vec![Mutation::UpdateCustomer {
            customer: gone,
            expected_version: 1,
        }],
    )
    .await;
    let found: Vec<CustomerId> = store
        .search_customers(&words("иван "), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|customer| customer.id)
        .collect();
    assert_eq!(found, vec![short_too.id, short.id, long.id]);
    let first: Vec<CustomerId> = store
        .search_customers(&words("иван "), 1)
        .await
        .unwrap()
        .into_iter()
        .map(|customer| customer.id)
        .collect();
    assert_eq!(first, vec![short_too.id], "the limit keeps the best");
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
        // Idle days count waiting work only.
        filter.updated_before = Some(Timestamp::from_second((day + 1) * 86_400).unwrap());
        if filter.statuses.is_empty() {
            filter.statuses = vec![TicketStatus::Pending, TicketStatus::OnHold];
        }
        filter.statuses.retain(|status| status.is_waiting());
        if filter.statuses.is_empty() {
            return 0;
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

pub async fn counts_kept_by_one_node_follow_changes_committed_on_another(
    first: Arc<dyn Store>,
    second: Arc<dyn Store>,
) {
    let by_status = |status: TicketStatus| TicketCountQuery {
        statuses: vec![status],
        ..Default::default()
    };
    let queue = [
        TicketCountQuery::default(),
        by_status(TicketStatus::New),
        by_status(TicketStatus::Pending),
    ];
    let customer = seed_customer(&first, "K", "k@example.com").await;
    let ticket = seed_ticket(&first, new_ticket(customer.id, "Kept", 1)).await;
    for _ in 0..2 {
        assert_eq!(first.count_tickets_many(&queue).await.unwrap(), [1, 1, 0]);
        assert_eq!(second.count_tickets_many(&queue).await.unwrap(), [1, 1, 0]);
    }

    // A ticket created on the second node is counted by the first at once.
    seed_ticket(&second, new_ticket(customer.id, "Elsewhere", 2)).await;
    assert_eq!(first.count_tickets_many(&queue).await.unwrap(), [2, 2, 0]);

    // A change that leaves the counters as they were keeps every count right.
    let mut renamed = ticket.clone();
    renamed.subject = "Kept, renamed".into();
    commit(
        &second,
        vec![Mutation::UpdateTicket {
            ticket: renamed.clone(),
            expected_version: 1,
        }],
    )
    .await;
    assert_eq!(first.count_tickets_many(&queue).await.unwrap(), [2, 2, 0]);

    // A status change on one node moves the counts the other node kept.
    let mut pending = second.find_ticket(ticket.id).await.unwrap().unwrap();
    assert_eq!(pending.subject, renamed.subject);
    pending.status = TicketStatus::Pending;
    let expected_version = pending.version;
    commit(
        &second,
        vec![Mutation::UpdateTicket {
            ticket: pending,
            expected_version,
        }],
    )
    .await;
    assert_eq!(first.count_tickets_many(&queue).await.unwrap(), [2, 1, 1]);
    assert_eq!(
        first
            .count_tickets(&by_status(TicketStatus::Pending))
            .await
            .unwrap(),
        1
    );

    // And the writing node reads its own change.
    let mut solved = first.find_ticket(ticket.id).await.unwrap().unwrap();
    solved.status = TicketStatus::Solved;
    let expected_version = solved.version;
    commit(
        &first,
        vec![Mutation::UpdateTicket {
            ticket: solved,
            expected_version,
        }],
    )
    .await;
    assert_eq!(first.count_tickets_many(&queue).await.unwrap(), [2, 1, 0]);
    assert_eq!(second.count_tickets_many(&queue).await.unwrap(), [2, 1, 0]);
}

pub async fn maintained_counts_equal_a_scan_after_every_kind_of_change(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "D", "d@example.com").await;
    let other_customer = seed_customer(&store, "E", "e@example.com").await;
    let red = seed_team(&store, "Red").await;
    let blue = seed_team(&store, "Blue").await;
    let agent = seed_agent(&store, "counter@shop.test", Role::Agent, vec![red.id]).await;
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

/// Plain counts (`ticket_counts`) and idle-days counts (plain waiting work minus the recent
/// days of `ticket_counters`) must agree with a scan after any sequence of changes: statuses
/// in and out of waiting, priorities, assignees, teams, days moving forth and back, merges,
/// moves, a team deletion and a rebuild.
pub async fn plain_and_idle_counts_equal_a_scan_after_a_mix_of_changes(store: Arc<dyn Store>) {
    let customer = seed_customer(&store, "M", "m@example.com").await;
    let other_customer = seed_customer(&store, "N", "n@example.com").await;
    let red = seed_team(&store, "Mix red").await;
    let blue = seed_team(&store, "Mix blue").await;
    let first = new_agent("mix-1@shop.test", Role::Agent, vec![red.id]);
    let second = new_agent("mix-2@shop.test", Role::Agent, vec![blue.id]);
    for agent in [&first, &second] {
        commit(
            &store,
            vec![Mutation::InsertAgent {
                agent: agent.clone(),
                password_hash: None,
            }],
        )
        .await;
    }
    let statuses = [
        TicketStatus::New,
        TicketStatus::Open,
        TicketStatus::Pending,
        TicketStatus::OnHold,
        TicketStatus::Solved,
        TicketStatus::Closed,
    ];
    let priorities = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];
    let assignees = [None, Some(first.id), Some(second.id)];
    let teams = [None, Some(red.id), Some(blue.id)];
    // A fixed pseudo-random sequence (the same on every backend and run).
    let mut seed: u64 = 0x5eed_c0de;
    let mut next = move |bound: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap() % bound
    };
    let day = |d: i64| at(10 * 86_400 + d * 86_400 + 3_600);
    let mut tickets = Vec::new();
    for index in 0..24_i64 {
        let mut draft = new_ticket(customer.id, &format!("Mix {index}"), 10 * 86_400 + index);
        draft.status = statuses[next(statuses.len())];
        draft.priority = priorities[next(priorities.len())];
        draft.assignee_id = assignees[next(assignees.len())];
        draft.team_id = teams[next(teams.len())];
        tickets.push(seed_ticket(&store, draft).await);
    }
    let base_day = otklik_domain::view::day_number(day(0));
    let queries = {
        let (first, red, blue) = (first.id, red.id, blue.id);
        move || {
            let mut queries = vec![
                TicketCountQuery::default(),
                TicketCountQuery {
                    statuses: vec![TicketStatus::Pending, TicketStatus::OnHold],
                    ..Default::default()
                },
                TicketCountQuery {
                    statuses: vec![TicketStatus::New, TicketStatus::Open, TicketStatus::Pending],
                    priorities: vec![Priority::Urgent, Priority::High],
                    ..Default::default()
                },
                TicketCountQuery {
                    assignee: Some(AssigneeFilter::Unassigned),
                    team: Some(TeamFilter::Team(blue)),
                    ..Default::default()
                },
                TicketCountQuery {
                    visible_to: Some((first, vec![red])),
                    statuses: vec![TicketStatus::Pending],
                    ..Default::default()
                },
                TicketCountQuery {
                    statuses: vec![TicketStatus::Open],
                    max_day: Some(base_day + 30),
                    ..Default::default()
                },
            ];
            // Idle-days counts before, inside and after the days the tickets were touched.
            for max_day in [
                base_day - 1,
                base_day,
                base_day + 2,
                base_day + 5,
                base_day + 30,
            ] {
                queries.push(TicketCountQuery {
                    max_day: Some(max_day),
                    ..Default::default()
                });
                queries.push(TicketCountQuery {
                    statuses: vec![TicketStatus::Pending],
                    assignee: Some(AssigneeFilter::Agent(first)),
                    max_day: Some(max_day),
                    ..Default::default()
                });
                queries.push(TicketCountQuery {
                    statuses: vec![TicketStatus::OnHold, TicketStatus::New],
                    priorities: vec![Priority::Low, Priority::Urgent],
                    visible_to: Some((first, vec![red])),
                    max_day: Some(max_day),
                    ..Default::default()
                });
            }
            queries
        }
    };
    let check = |label: String| {
        let store = store.clone();
        let queries = queries();
        async move {
            let together = store.count_tickets_many(&queries).await.unwrap();
            for (query, counted) in queries.iter().zip(together) {
                assert_eq!(
                    counted,
                    scanned_count(&store, query).await,
                    "{label}: {query:?}"
                );
            }
        }
    };
    check("after inserts".into()).await;

    for round in 0..6 {
        let mut mutations = Vec::new();
        for _ in 0..8 {
            let index = next(tickets.len());
            let ticket: &mut Ticket = &mut tickets[index];
            if ticket.merged_into.is_some()
                || mutations.iter().any(
                    |m| matches!(m, Mutation::UpdateTicket { ticket: t, .. } if t.id == ticket.id),
                )
            {
                continue;
            }
            let mut changed = ticket.clone();
            match next(4) {
                0 => changed.status = statuses[next(statuses.len())],
                1 => changed.priority = priorities[next(priorities.len())],
                2 => changed.assignee_id = assignees[next(assignees.len())],
                _ => changed.team_id = teams[next(teams.len())],
            }
            // Days move forward mostly, sometimes back (a clock set right).
            changed.updated_at = day(i64::try_from(next(9)).unwrap() - 1);
            mutations.push(Mutation::UpdateTicket {
                ticket: changed.clone(),
                expected_version: ticket.version,
            });
            changed.version += 1;
            *ticket = changed;
        }
        commit(&store, mutations).await;
        check(format!("after round {round} of updates")).await;
    }

    // A merge, a move to another customer, a team deletion and a rebuild.
    let (source, target) = (tickets[0].clone(), tickets[1].clone());
    let mut merged = source.clone();
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
                expected_version: source.version,
            },
        ],
    )
    .await;
    check("after a merge".into()).await;
    commit(
        &store,
        vec![Mutation::MoveTickets {
            ticket_ids: tickets[2..8].iter().map(|ticket| ticket.id).collect(),
            to: other_customer.id,
            at: day(4),
        }],
    )
    .await;
    check("after moving tickets".into()).await;
    commit(&store, vec![Mutation::DeleteTeam(red.id)]).await;
    check("after deleting a team".into()).await;
    store.rebuild_derived_data().await.unwrap();
    check("after a rebuild".into()).await;
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

// Live chat.

fn new_chat_site(name: &str) -> otklik_domain::chat::ChatSite {
    use otklik_domain::chat::{ChatSite, PreChatForm, WorkingHours};
    ChatSite {
        id: ChatSiteId::new(),
        name: name.into(),
        allowed_origins: vec!["https://shop.example".into()],
        greeting: "Здравствуйте!".into(),
        accent_colour: "#1f6feb".into(),
        working_hours: WorkingHours::around_the_clock(),
        pre_chat: PreChatForm::default(),
        identity_secret: format!("secret of {name}"),
        require_identity: false,
        team_id: None,
        mailbox_id: None,
        active: true,
        created_at: at(0),
        updated_at: at(0),
        version: 1,
    }
}

fn new_visitor(
    site_id: ChatSiteId,
    customer_id: CustomerId,
    external_id: Option<&str>,
) -> otklik_domain::chat::Visitor {
    otklik_domain::chat::Visitor {
        id: VisitorId::new(),
        site_id,
        customer_id,
        verified_external_id: external_id.map(str::to_owned),
        created_at: at(1),
    }
}

fn new_chat(
    ticket_id: TicketId,
    visitor: &otklik_domain::chat::Visitor,
    queued: i64,
) -> otklik_domain::chat::Chat {
    otklik_domain::chat::Chat {
        ticket_id,
        site_id: visitor.site_id,
        visitor_id: visitor.id,
        state: otklik_domain::chat::ChatState::Queued,
        agent_id: None,
        team_id: None,
        language: None,
        queued_at: at(queued),
        accepted_at: None,
        ended_at: None,
        first_visitor_message_at: None,
        first_agent_message_at: None,
        last_seq: 0,
        visitor_read_seq: 0,
        agent_read_seq: 0,
        version: 1,
    }
}

/// A chat ticket with its chat, for a visitor, queued at `queued`: the mutations that create
/// both (as the app does, in one unit).
fn chat_ticket(
    visitor: &otklik_domain::chat::Visitor,
    queued: i64,
) -> (otklik_domain::chat::Chat, Vec<Mutation>) {
    let mut draft = new_ticket(visitor.customer_id, "Чат с сайта", queued);
    draft.channel = Channel::Chat;
    let chat = new_chat(draft.id, visitor, queued);
    let mutations = vec![
        Mutation::InsertTicket(draft),
        Mutation::InsertChat(chat.clone()),
    ];
    (chat, mutations)
}

/// A site with one anonymous visitor.
async fn seed_chat_site_and_visitor(
    store: &Arc<dyn Store>,
    email: &str,
) -> (otklik_domain::chat::ChatSite, otklik_domain::chat::Visitor) {
    let customer = seed_customer(store, "Посетитель", email).await;
    let site = new_chat_site(&format!("site of {email}"));
    let visitor = new_visitor(site.id, customer.id, None);
    commit(
        store,
        vec![
            Mutation::InsertChatSite(site.clone()),
            Mutation::InsertVisitor(visitor.clone()),
        ],
    )
    .await;
    (site, visitor)
}

fn chat_status(
    agent_id: AgentId,
    availability: otklik_domain::chat::Availability,
    max_chats: u16,
) -> otklik_domain::chat::AgentChatStatus {
    otklik_domain::chat::AgentChatStatus {
        availability,
        max_chats,
        updated_at: at(1),
        ..otklik_domain::chat::AgentChatStatus::offline(agent_id, at(1))
    }
}

fn conflict_on(result: StoreResult<CommitReceipt>) -> String {
    match result {
        Err(StoreError::Conflict { constraint }) => constraint,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub async fn chat_sites_round_trip_every_field_and_refuse_a_stale_version(store: Arc<dyn Store>) {
    use otklik_domain::chat::{DayHours, FieldMode, PreChatForm, WorkingHours};
    let team = seed_team(&store, "Чат").await;
    let mailbox = new_mailbox("chat", "chat@shop.test");
    commit(&store, vec![Mutation::InsertMailbox(mailbox.clone())]).await;
    let mut days = [None; 7];
    for day in days.iter_mut().take(5) {
        *day = Some(DayHours {
            from_minute: 9 * 60,
            to_minute: 18 * 60,
        });
    }
    days[5] = Some(DayHours {
        from_minute: 10 * 60,
        to_minute: 24 * 60,
    });
    let site = otklik_domain::chat::ChatSite {
        allowed_origins: vec![
            "https://shop.example".into(),
            "http://127.0.0.1:8000".into(),
        ],
        working_hours: WorkingHours {
            time_zone: "Europe/Moscow".into(),
            days,
        },
        pre_chat: PreChatForm {
            name: FieldMode::Required,
            email: FieldMode::Hidden,
            order_number: FieldMode::Optional,
        },
        require_identity: true,
        team_id: Some(team.id),
        mailbox_id: Some(mailbox.id),
        active: false,
        created_at: at(5),
        updated_at: at(6),
        version: 3,
        ..new_chat_site("Магазин")
    };
    let plain = new_chat_site("Alpha");
    commit(
        &store,
        vec![
            Mutation::InsertChatSite(site.clone()),
            Mutation::InsertChatSite(plain.clone()),
        ],
    )
    .await;
    assert_eq!(
        store.find_chat_site(site.id).await.unwrap(),
        Some(site.clone())
    );
    assert_eq!(
        store.list_chat_sites().await.unwrap(),
        vec![plain.clone(), site.clone()],
        "by name"
    );
    assert_eq!(store.find_chat_site(ChatSiteId::new()).await.unwrap(), None);
    assert_eq!(
        conflict_on(
            store
                .commit(UnitOfWork::new().with(Mutation::InsertChatSite(plain.clone())))
                .await
        ),
        "chat_sites.id"
    );

    // Every field is saved; the stored version moves one past the expected one.
    let edited = otklik_domain::chat::ChatSite {
        name: "Магазин 2".into(),
        allowed_origins: vec!["https://shop2.example".into()],
        greeting: String::new(),
        accent_colour: "#aabbcc".into(),
        working_hours: WorkingHours::around_the_clock(),
        pre_chat: PreChatForm::default(),
        identity_secret: "rotated".into(),
        require_identity: false,
        team_id: None,
        mailbox_id: None,
        active: true,
        updated_at: at(9),
        ..site.clone()
    };
    commit(
        &store,
        vec![Mutation::UpdateChatSite {
            site: edited.clone(),
            expected_version: site.version,
        }],
    )
    .await;
    let saved = otklik_domain::chat::ChatSite {
        version: site.version + 1,
        ..edited.clone()
    };
    assert_eq!(
        store.find_chat_site(site.id).await.unwrap(),
        Some(saved.clone())
    );

    // A stale version is refused and changes nothing; a missing site is not found.
    let stale = store
        .commit(UnitOfWork::new().with(Mutation::UpdateChatSite {
            site: otklik_domain::chat::ChatSite {
                name: "lost update".into(),
                ..edited.clone()
            },
            expected_version: site.version,
        }))
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { .. })),
        "{stale:?}"
    );
    assert_eq!(store.find_chat_site(site.id).await.unwrap(), Some(saved));
    let missing = store
        .commit(UnitOfWork::new().with(Mutation::UpdateChatSite {
            site: new_chat_site("nowhere"),
            expected_version: 1,
        }))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

pub async fn visitors_are_found_by_id_token_and_external_id_which_is_unique_per_site(
    store: Arc<dyn Store>,
) {
    let customer = seed_customer(&store, "Ольга", "olga@example.ru").await;
    let (site_a, site_b) = (new_chat_site("A"), new_chat_site("B"));
    let anonymous = new_visitor(site_a.id, customer.id, None);
    let another_anonymous = new_visitor(site_a.id, customer.id, None);
    let verified = new_visitor(site_a.id, customer.id, Some("shop-42"));
    let verified_elsewhere = new_visitor(site_b.id, customer.id, Some("shop-42"));
    commit(
        &store,
        vec![
            Mutation::InsertChatSite(site_a.clone()),
            Mutation::InsertChatSite(site_b.clone()),
            Mutation::InsertVisitor(anonymous.clone()),
            Mutation::InsertVisitor(another_anonymous.clone()),
            Mutation::InsertVisitor(verified.clone()),
            Mutation::InsertVisitor(verified_elsewhere.clone()),
        ],
    )
    .await;
    for visitor in [
        &anonymous,
        &another_anonymous,
        &verified,
        &verified_elsewhere,
    ] {
        assert_eq!(
            store.find_visitor(visitor.id).await.unwrap().as_ref(),
            Some(visitor)
        );
    }
    assert_eq!(store.find_visitor(VisitorId::new()).await.unwrap(), None);
    assert_eq!(
        store
            .find_visitor_by_external_id(site_a.id, "shop-42")
            .await
            .unwrap(),
        Some(verified.clone())
    );
    assert_eq!(
        store
            .find_visitor_by_external_id(site_b.id, "shop-42")
            .await
            .unwrap(),
        Some(verified_elsewhere.clone())
    );
    assert_eq!(
        store
            .find_visitor_by_external_id(site_a.id, "shop-43")
            .await
            .unwrap(),
        None
    );
    // The same verified id twice on one site is refused, and the unit with it.
    let twin = new_visitor(site_a.id, customer.id, Some("shop-42"));
    let site_c = new_chat_site("C");
    let refused = store
        .commit(UnitOfWork {
            mutations: vec![
                Mutation::InsertChatSite(site_c.clone()),
                Mutation::InsertVisitor(twin.clone()),
            ],
        })
        .await;
    assert_eq!(conflict_on(refused), "visitors.external_id");
    assert_eq!(store.find_visitor(twin.id).await.unwrap(), None);
    assert_eq!(store.find_chat_site(site_c.id).await.unwrap(), None);

    // A verified visitor signs in from two browsers: one token each.
    let (laptop, phone) = (vec![1_u8; 32], vec![2_u8; 32]);
    let token = |hash: &Vec<u8>, visitor_id: VisitorId| Mutation::InsertVisitorToken {
        token_hash: hash.clone(),
        visitor_id,
        created_at: at(3),
    };
    commit(
        &store,
        vec![
            token(&laptop, verified.id),
            token(&phone, verified.id),
            token(&vec![3_u8; 32], anonymous.id),
        ],
    )
    .await;
    assert_eq!(
        store.find_visitor_by_token(&laptop).await.unwrap(),
        Some(verified.clone())
    );
    assert_eq!(
        store.find_visitor_by_token(&phone).await.unwrap(),
        Some(verified.clone())
    );
    assert_eq!(
        store.find_visitor_by_token(&[3_u8; 32]).await.unwrap(),
        Some(anonymous.clone())
    );
    assert_eq!(
        store.find_visitor_by_token(&[9_u8; 32]).await.unwrap(),
        None
    );
    assert_eq!(
        conflict_on(
            store
                .commit(UnitOfWork::new().with(token(&laptop, anonymous.id)))
                .await
        ),
        "visitor_tokens.token_hash"
    );
    let orphan = store
        .commit(UnitOfWork::new().with(token(&vec![4_u8; 32], VisitorId::new())))
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound { .. })),
        "{orphan:?}"
    );
}

pub async fn chats_round_trip_refuse_a_stale_version_and_list_by_filters_in_queue_order(
    store: Arc<dyn Store>,
) {
    use otklik_domain::chat::ChatState;
    let team = seed_team(&store, "Поддержка").await;
    let (anna, boris) = (
        new_agent("anna@shop.test", Role::Agent, vec![team.id]),
        new_agent("boris@shop.test", Role::Agent, vec![]),
    );
    commit(
        &store,
        vec![
            Mutation::InsertAgent {
                agent: anna.clone(),
                password_hash: None,
            },
            Mutation::InsertAgent {
                agent: boris.clone(),
                password_hash: None,
            },
        ],
    )
    .await;
    let (site_a, first) = seed_chat_site_and_visitor(&store, "first@example.ru").await;
    let (site_b, third) = seed_chat_site_and_visitor(&store, "third@example.ru").await;
    let second = new_visitor(site_a.id, first.customer_id, Some("shop-2"));
    commit(&store, vec![Mutation::InsertVisitor(second.clone())]).await;

    // Queued last; active with Anna (two tie on their queueing time); ended long ago.
    let (waiting, mutations) = chat_ticket(&first, 10);
    commit(&store, mutations).await;
    let (mut with_anna, mutations) = chat_ticket(&second, 5);
    commit(&store, mutations).await;
    let (mut with_anna_too, mutations) = chat_ticket(&third, 5);
    commit(&store, mutations).await;
    let (mut ended, mutations) = chat_ticket(&first, 1);
    commit(&store, mutations).await;
    assert_eq!(
        store.find_chat(waiting.ticket_id).await.unwrap(),
        Some(waiting.clone())
    );

    // Every field round trips through an update.
    with_anna.accept(anna.id, at(6)).unwrap();
    with_anna.team_id = Some(team.id);
    with_anna.language = Some("ru".into());
    with_anna.first_visitor_message_at = Some(at(5));
    with_anna.first_agent_message_at = Some(at(7));
    with_anna.last_seq = 4;
    with_anna.visitor_read_seq = 3;
    with_anna.agent_read_seq = 4;
    with_anna_too.accept(anna.id, at(8)).unwrap();
    ended.accept(boris.id, at(2)).unwrap();
    ended.end(at(3)).unwrap();
    for chat in [&mut with_anna, &mut with_anna_too, &mut ended] {
        let expected_version = chat.version;
        commit(
            &store,
            vec![Mutation::UpdateChat {
                chat: chat.clone(),
                expected_version,
            }],
        )
        .await;
        chat.version = expected_version + 1;
        assert_eq!(
            store.find_chat(chat.ticket_id).await.unwrap().as_ref(),
            Some(&*chat)
        );
    }

    // A stale version is refused and changes nothing; an unknown chat is not found.
    let mut lost = with_anna.clone();
    lost.agent_read_seq = 1;
    let stale = store
        .commit(UnitOfWork::new().with(Mutation::UpdateChat {
            chat: lost,
            expected_version: with_anna.version - 1,
        }))
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { .. })),
        "{stale:?}"
    );
    assert_eq!(
        store.find_chat(with_anna.ticket_id).await.unwrap(),
        Some(with_anna.clone())
    );
    let unknown = store
        .commit(UnitOfWork::new().with(Mutation::UpdateChat {
            chat: new_chat(TicketId::new(), &first, 0),
            expected_version: 1,
        }))
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "{unknown:?}"
    );
    assert_eq!(
        conflict_on(
            store
                .commit(UnitOfWork::new().with(Mutation::InsertChat(waiting.clone())))
                .await
        ),
        "chats.ticket_id"
    );
    assert_eq!(store.find_chat(TicketId::new()).await.unwrap(), None);

    // Lists: oldest queued first, ties by ticket id; filters combine.
    let mut all = vec![
        waiting.clone(),
        with_anna.clone(),
        with_anna_too.clone(),
        ended.clone(),
    ];
    all.sort_by_key(|chat| (chat.queued_at, chat.ticket_id));
    let list = |query: crate::ChatQuery| {
        let store = store.clone();
        async move { store.list_chats(&query).await.unwrap() }
    };
    let tickets = |chats: &[otklik_domain::chat::Chat]| -> Vec<TicketId> {
        chats.iter().map(|chat| chat.ticket_id).collect()
    };
    assert_eq!(
        list(crate::ChatQuery::default()).await,
        all,
        "limit 0 means all"
    );
    assert_eq!(
        tickets(
            &list(crate::ChatQuery {
                limit: 2,
                ..Default::default()
            })
            .await
        ),
        tickets(&all[..2])
    );
    assert_eq!(
        list(crate::ChatQuery {
            states: vec![ChatState::Queued],
            ..Default::default()
        })
        .await,
        vec![waiting.clone()]
    );
    let mut live = vec![with_anna.clone(), with_anna_too.clone()];
    live.sort_by_key(|chat| (chat.queued_at, chat.ticket_id));
    assert_eq!(
        list(crate::ChatQuery {
            states: vec![ChatState::Active, ChatState::Queued],
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    assert_eq!(
        list(crate::ChatQuery {
            agent_id: Some(anna.id),
            ..Default::default()
        })
        .await,
        live
    );
    assert_eq!(
        list(crate::ChatQuery {
            agent_id: Some(anna.id),
            site_id: Some(site_a.id),
            ..Default::default()
        })
        .await,
        vec![with_anna.clone()]
    );
    assert_eq!(
        list(crate::ChatQuery {
            site_id: Some(site_b.id),
            ..Default::default()
        })
        .await,
        vec![with_anna_too.clone()]
    );
    assert_eq!(
        list(crate::ChatQuery {
            visitor_id: Some(first.id),
            ..Default::default()
        })
        .await,
        vec![ended.clone(), waiting.clone()]
    );
    assert_eq!(
        list(crate::ChatQuery {
            visitor_id: Some(first.id),
            states: vec![ChatState::Active],
            ..Default::default()
        })
        .await,
        vec![]
    );
    assert_eq!(
        list(crate::ChatQuery {
            agent_id: Some(boris.id),
            states: vec![ChatState::Ended, ChatState::Offline],
            ..Default::default()
        })
        .await,
        vec![ended.clone()]
    );
}

pub async fn chat_entries_are_numbered_once_per_seq_and_client_id_and_page_after_a_seq(
    store: Arc<dyn Store>,
) {
    let (_, visitor) = seed_chat_site_and_visitor(&store, "entries@example.ru").await;
    let (chat, mutations) = chat_ticket(&visitor, 1);
    commit(&store, mutations).await;
    let (other_chat, mutations) = chat_ticket(&visitor, 2);
    commit(&store, mutations).await;
    let message = |body: &str| Message {
        id: MessageId::new(),
        ticket_id: chat.ticket_id,
        author: Author::Customer(visitor.customer_id),
        visibility: MessageVisibility::Public,
        channel: Channel::Chat,
        body: body.into(),
        attachments: vec![],
        created_at: at(3),
    };
    let (question, answer) = (message("Где заказ?"), message("Уже в пути"));
    let entry = |seq: i64, kind: ChatEntryKind, client_id: Option<&str>| ChatEntry {
        ticket_id: chat.ticket_id,
        seq,
        kind,
        client_id: client_id.map(str::to_owned),
        created_at: at(3 + seq),
    };
    let entries = vec![
        entry(1, ChatEntryKind::Message(question.id), Some("c-1")),
        entry(
            2,
            ChatEntryKind::Event {
                code: "agent_joined".into(),
                agent_name: Some("Анна".into()),
            },
            None,
        ),
        entry(3, ChatEntryKind::Message(answer.id), None),
        entry(
            4,
            ChatEntryKind::Event {
                code: "ended".into(),
                agent_name: None,
            },
            None,
        ),
    ];
    let mut mutations = vec![
        Mutation::InsertMessage(question.clone()),
        Mutation::InsertMessage(answer.clone()),
    ];
    mutations.extend(entries.iter().cloned().map(Mutation::InsertChatEntry));
    commit(&store, mutations).await;

    assert_eq!(
        store.list_chat_entries(chat.ticket_id, 0, 0).await.unwrap(),
        entries,
        "limit 0 means all"
    );
    assert_eq!(
        store.list_chat_entries(chat.ticket_id, 1, 2).await.unwrap(),
        entries[1..3].to_vec()
    );
    assert_eq!(
        store
            .list_chat_entries(chat.ticket_id, 3, 10)
            .await
            .unwrap(),
        entries[3..].to_vec()
    );
    assert!(
        store
            .list_chat_entries(chat.ticket_id, 4, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_chat_entries(other_chat.ticket_id, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .find_chat_entry_by_client_id(chat.ticket_id, "c-1")
            .await
            .unwrap(),
        Some(entries[0].clone())
    );
    assert_eq!(
        store
            .find_chat_entry_by_client_id(chat.ticket_id, "c-2")
            .await
            .unwrap(),
        None
    );

    // A resent message (same client id) and a taken number are refused with their names.
    let resent = message("Где заказ?");
    let refused = store
        .commit(UnitOfWork {
            mutations: vec![
                Mutation::InsertMessage(resent.clone()),
                Mutation::InsertChatEntry(entry(5, ChatEntryKind::Message(resent.id), Some("c-1"))),
            ],
        })
        .await;
    assert_eq!(conflict_on(refused), "chat_entries.client_id");
    let taken = store
        .commit(UnitOfWork {
            mutations: vec![
                Mutation::InsertMessage(resent.clone()),
                Mutation::InsertChatEntry(entry(4, ChatEntryKind::Message(resent.id), Some("c-5"))),
            ],
        })
        .await;
    assert_eq!(conflict_on(taken), "chat_entries.seq");
    assert_eq!(
        store.list_messages(chat.ticket_id).await.unwrap().len(),
        2,
        "the refused units left no message behind"
    );
    assert_eq!(
        store.list_chat_entries(chat.ticket_id, 0, 0).await.unwrap(),
        entries
    );

    // Client ids and numbers belong to one chat: another chat may reuse both.
    let elsewhere = ChatEntry {
        ticket_id: other_chat.ticket_id,
        ..entry(
            1,
            ChatEntryKind::Event {
                code: "offline".into(),
                agent_name: None,
            },
            Some("c-1"),
        )
    };
    commit(&store, vec![Mutation::InsertChatEntry(elsewhere.clone())]).await;
    assert_eq!(
        store
            .find_chat_entry_by_client_id(other_chat.ticket_id, "c-1")
            .await
            .unwrap(),
        Some(elsewhere)
    );
    // An entry needs its chat.
    let orphan = store
        .commit(UnitOfWork::new().with(Mutation::InsertChatEntry(ChatEntry {
            ticket_id: TicketId::new(),
            ..entries[1].clone()
        })))
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound { .. })),
        "{orphan:?}"
    );
}

pub async fn setting_an_agents_chat_status_keeps_the_count_of_active_chats(store: Arc<dyn Store>) {
    use otklik_domain::chat::Availability;
    let (anna, boris) = (
        new_agent("anna@shop.test", Role::Agent, vec![]),
        new_agent("boris@shop.test", Role::Agent, vec![]),
    );
    commit(
        &store,
        vec![
            Mutation::InsertAgent {
                agent: anna.clone(),
                password_hash: None,
            },
            Mutation::InsertAgent {
                agent: boris.clone(),
                password_hash: None,
            },
        ],
    )
    .await;
    assert_eq!(store.find_agent_chat_status(anna.id).await.unwrap(), None);
    assert!(store.list_agent_chat_statuses().await.unwrap().is_empty());

    let mut online = chat_status(anna.id, Availability::Online, 3);
    online.languages = vec!["ru".into(), "en".into()];
    commit(&store, vec![Mutation::SetAgentChatStatus(online.clone())]).await;
    assert_eq!(
        store.find_agent_chat_status(anna.id).await.unwrap(),
        Some(online.clone())
    );
    for second in [2, 3] {
        commit(
            &store,
            vec![Mutation::ReserveChatSlot {
                agent_id: anna.id,
                at: at(second),
            }],
        )
        .await;
    }

    // Changing availability, maximum and languages leaves the count and last assignment alone,
    // whatever the saved status says about them.
    let away = otklik_domain::chat::AgentChatStatus {
        availability: Availability::Away,
        max_chats: 5,
        languages: vec!["en".into()],
        active_chats: 0,
        last_assigned_at: None,
        updated_at: at(4),
        agent_id: anna.id,
    };
    commit(&store, vec![Mutation::SetAgentChatStatus(away.clone())]).await;
    let expected = otklik_domain::chat::AgentChatStatus {
        active_chats: 2,
        last_assigned_at: Some(at(3)),
        ..away.clone()
    };
    assert_eq!(
        store.find_agent_chat_status(anna.id).await.unwrap(),
        Some(expected.clone())
    );
    // A status set for the first time starts with no chats, whatever it says.
    let boris_status = otklik_domain::chat::AgentChatStatus {
        active_chats: 7,
        last_assigned_at: Some(at(1)),
        ..chat_status(boris.id, Availability::Offline, 2)
    };
    commit(
        &store,
        vec![Mutation::SetAgentChatStatus(boris_status.clone())],
    )
    .await;
    let boris_stored = otklik_domain::chat::AgentChatStatus {
        active_chats: 0,
        last_assigned_at: None,
        ..boris_status
    };
    let mut every = vec![expected, boris_stored];
    every.sort_by_key(|status| status.agent_id);
    assert_eq!(store.list_agent_chat_statuses().await.unwrap(), every);
    // A status needs its agent.
    let nobody = store
        .commit(
            UnitOfWork::new().with(Mutation::SetAgentChatStatus(chat_status(
                AgentId::new(),
                Availability::Online,
                1,
            ))),
        )
        .await;
    assert!(
        matches!(nobody, Err(StoreError::NotFound { .. })),
        "{nobody:?}"
    );
}

pub async fn a_chat_slot_is_reserved_only_online_below_the_maximum_and_released_down_to_zero(
    store: Arc<dyn Store>,
) {
    use otklik_domain::chat::Availability;
    let anna = new_agent("anna@shop.test", Role::Agent, vec![]);
    let boris = new_agent("boris@shop.test", Role::Agent, vec![]);
    commit(
        &store,
        vec![
            Mutation::InsertAgent {
                agent: anna.clone(),
                password_hash: None,
            },
            Mutation::InsertAgent {
                agent: boris.clone(),
                password_hash: None,
            },
        ],
    )
    .await;
    let reserve = |second: i64| {
        UnitOfWork::new().with(Mutation::ReserveChatSlot {
            agent_id: anna.id,
            at: at(second),
        })
    };
    let release = || UnitOfWork::new().with(Mutation::ReleaseChatSlot { agent_id: anna.id });
    let load = |status: Option<otklik_domain::chat::AgentChatStatus>| {
        status.map(|status| (status.active_chats, status.last_assigned_at))
    };
    const CAPACITY: &str = "agent_chat_status.capacity";

    // An agent who never set a status is offline.
    assert_eq!(conflict_on(store.commit(reserve(1)).await), CAPACITY);
    assert_eq!(store.find_agent_chat_status(anna.id).await.unwrap(), None);
    for availability in [Availability::Offline, Availability::Away] {
        commit(
            &store,
            vec![Mutation::SetAgentChatStatus(chat_status(
                anna.id,
                availability,
                2,
            ))],
        )
        .await;
        assert_eq!(conflict_on(store.commit(reserve(1)).await), CAPACITY);
        assert_eq!(
            load(store.find_agent_chat_status(anna.id).await.unwrap()),
            Some((0, None))
        );
    }

    commit(
        &store,
        vec![Mutation::SetAgentChatStatus(chat_status(
            anna.id,
            Availability::Online,
            2,
        ))],
    )
    .await;
    store.commit(reserve(10)).await.expect("first slot");
    assert_eq!(
        load(store.find_agent_chat_status(anna.id).await.unwrap()),
        Some((1, Some(at(10))))
    );
    store.commit(reserve(11)).await.expect("second slot");
    assert_eq!(
        load(store.find_agent_chat_status(anna.id).await.unwrap()),
        Some((2, Some(at(11))))
    );
    // At the maximum: refused, and the whole unit with it.
    let mut full = reserve(12);
    full.push(Mutation::SetAgentChatStatus(chat_status(
        boris.id,
        Availability::Online,
        1,
    )));
    assert_eq!(conflict_on(store.commit(full).await), CAPACITY);
    assert_eq!(
        load(store.find_agent_chat_status(anna.id).await.unwrap()),
        Some((2, Some(at(11))))
    );
    assert_eq!(store.find_agent_chat_status(boris.id).await.unwrap(), None);
    // Lowering the maximum below the load keeps the chats and takes no new ones.
    commit(
        &store,
        vec![Mutation::SetAgentChatStatus(chat_status(
            anna.id,
            Availability::Online,
            1,
        ))],
    )
    .await;
    store.commit(release()).await.expect("release");
    assert_eq!(conflict_on(store.commit(reserve(13)).await), CAPACITY);
    store.commit(release()).await.expect("release");
    store
        .commit(release())
        .await
        .expect("a release at zero is fine");
    assert_eq!(
        load(store.find_agent_chat_status(anna.id).await.unwrap()),
        Some((0, Some(at(11)))),
        "never below zero"
    );
    store.commit(reserve(14)).await.expect("free again");
    assert_eq!(
        load(store.find_agent_chat_status(anna.id).await.unwrap()),
        Some((1, Some(at(14))))
    );
    // Releasing for an agent without a status changes nothing and is not an error.
    store
        .commit(UnitOfWork::new().with(Mutation::ReleaseChatSlot { agent_id: boris.id }))
        .await
        .expect("nothing to release");
    assert_eq!(store.find_agent_chat_status(boris.id).await.unwrap(), None);
}

pub async fn concurrent_chat_slot_reservations_never_exceed_the_maximum(store: Arc<dyn Store>) {
    use otklik_domain::chat::Availability;
    let anna = new_agent("anna@shop.test", Role::Agent, vec![]);
    commit(
        &store,
        vec![
            Mutation::InsertAgent {
                agent: anna.clone(),
                password_hash: None,
            },
            Mutation::SetAgentChatStatus(chat_status(anna.id, Availability::Online, 3)),
        ],
    )
    .await;
    let mut tasks = Vec::new();
    for index in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .commit(UnitOfWork::new().with(Mutation::ReserveChatSlot {
                    agent_id: anna.id,
                    at: at(100 + index),
                }))
                .await
        }));
    }
    let mut n_reserved = 0;
    for task in tasks {
        match task.await.expect("the task ran") {
            Ok(_) => n_reserved += 1,
            Err(StoreError::Conflict { constraint }) => {
                assert_eq!(constraint, "agent_chat_status.capacity");
            }
            Err(other) => panic!("a reservation failed otherwise: {other}"),
        }
    }
    assert_eq!(n_reserved, 3, "exactly the maximum succeeds");
    let status = store
        .find_agent_chat_status(anna.id)
        .await
        .unwrap()
        .expect("a status");
    assert_eq!(status.active_chats, 3);
    assert!(status.last_assigned_at.is_some());
}

/// The next change event other than `resync` (which a reconnecting listener may add), or a
/// panic after ten seconds.
async fn next_change(
    events: &mut tokio::sync::broadcast::Receiver<events::ChangeEvent>,
) -> events::ChangeEvent {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if event.kind == events::ChangeKind::Resync => continue,
                Ok(event) => return event,
                Err(error) => panic!("the event stream failed: {error}"),
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .expect("an event within ten seconds")
}

pub async fn chat_mutations_announce_chat_and_availability_changes_after_commit(
    store: Arc<dyn Store>,
) {
    use events::{ChangeEvent, ChangeKind};
    use otklik_domain::chat::Availability;
    let anna = seed_agent(&store, "anna@shop.test", Role::Agent, vec![]).await;
    let (_, visitor) = seed_chat_site_and_visitor(&store, "events@example.ru").await;
    let mut changes = store.subscribe();
    let chat_event = |ticket_id: TicketId| ChangeEvent {
        kind: ChangeKind::ChatUpdated,
        ticket_id: Some(ticket_id),
    };
    let availability = ChangeEvent {
        kind: ChangeKind::AvailabilityChanged,
        ticket_id: None,
    };

    let (mut chat, mutations) = chat_ticket(&visitor, 1);
    commit(&store, mutations).await;
    assert_eq!(
        next_change(&mut changes).await,
        ChangeEvent {
            kind: ChangeKind::TicketCreated,
            ticket_id: Some(chat.ticket_id),
        }
    );
    assert_eq!(next_change(&mut changes).await, chat_event(chat.ticket_id));
    assert!(
        store.find_chat(chat.ticket_id).await.unwrap().is_some(),
        "announced only once committed"
    );

    commit(
        &store,
        vec![Mutation::SetAgentChatStatus(chat_status(
            anna.id,
            Availability::Online,
            2,
        ))],
    )
    .await;
    assert_eq!(next_change(&mut changes).await, availability);

    // A failed unit announces nothing: the next event is the next unit's.
    let refused = store
        .commit(UnitOfWork::new().with(Mutation::InsertChat(chat.clone())))
        .await;
    assert!(refused.is_err());

    // Accepting a chat: one chat event and one availability event for the unit.
    let expected_version = chat.version;
    chat.accept(anna.id, at(2)).unwrap();
    chat.last_seq = 1;
    commit(
        &store,
        vec![
            Mutation::ReserveChatSlot {
                agent_id: anna.id,
                at: at(2),
            },
            Mutation::UpdateChat {
                chat: chat.clone(),
                expected_version,
            },
            Mutation::InsertChatEntry(ChatEntry {
                ticket_id: chat.ticket_id,
                seq: 1,
                kind: ChatEntryKind::Event {
                    code: "agent_joined".into(),
                    agent_name: Some(anna.name.clone()),
                },
                client_id: None,
                created_at: at(2),
            }),
        ],
    )
    .await;
    assert_eq!(next_change(&mut changes).await, chat_event(chat.ticket_id));
    assert_eq!(next_change(&mut changes).await, availability);
    assert_eq!(
        store
            .find_agent_chat_status(anna.id)
            .await
            .unwrap()
            .map(|status| status.active_chats),
        Some(1)
    );

    commit(
        &store,
        vec![Mutation::ReleaseChatSlot { agent_id: anna.id }],
    )
    .await;
    assert_eq!(next_change(&mut changes).await, availability);
}

/// The next signal, or a panic after ten seconds.
async fn next_signal(
    signals: &mut tokio::sync::broadcast::Receiver<events::Signal>,
) -> events::Signal {
    tokio::time::timeout(std::time::Duration::from_secs(10), signals.recv())
        .await
        .expect("a signal within ten seconds")
        .expect("the signal stream is open")
}

pub async fn a_published_signal_reaches_every_subscriber_and_an_oversized_one_is_refused(
    store: Arc<dyn Store>,
) {
    let mut first = store.subscribe_signals();
    let mut second = store.subscribe_signals();
    let typing = events::Signal {
        topic: "typing".into(),
        ticket_id: Some(TicketId::new()),
        data: serde_json::json!({ "name": "Анна", "typing": true }),
    };
    store
        .publish_signal(typing.clone())
        .await
        .expect("published");
    assert_eq!(next_signal(&mut first).await, typing);
    assert_eq!(next_signal(&mut second).await, typing);

    let oversized = events::Signal {
        topic: "typing".into(),
        ticket_id: None,
        data: serde_json::Value::String("x".repeat(events::MAX_SIGNAL_BYTES)),
    };
    let refused = store.publish_signal(oversized).await;
    assert!(refused.is_err(), "{refused:?}");
    // Nothing of the refused signal arrives: the next one is the next published.
    let presence = events::Signal {
        topic: "presence".into(),
        ticket_id: None,
        data: serde_json::json!({ "agent": "anna", "viewing": true }),
    };
    store
        .publish_signal(presence.clone())
        .await
        .expect("published");
    assert_eq!(next_signal(&mut first).await, presence);
    assert_eq!(next_signal(&mut second).await, presence);
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
    let agent = seed_agent(&store, "sorter@example.com", Role::Agent, vec![]).await;
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

pub async fn a_queue_position_counts_the_earlier_waiting_chats_of_the_same_team(
    store: Arc<dyn Store>,
) {
    use otklik_domain::chat::ChatState;
    let team = seed_team(&store, "Возвраты").await;
    let (_, visitor) = seed_chat_site_and_visitor(&store, "queue@example.ru").await;
    let mut chats = Vec::new();
    // Queued at 10, 20, 20 (a tie, broken by ticket id), 30; one for the team at 5; one
    // active at 1.
    for (queued, team_id, state) in [
        (10, None, ChatState::Queued),
        (20, None, ChatState::Queued),
        (20, None, ChatState::Queued),
        (30, None, ChatState::Queued),
        (5, Some(team.id), ChatState::Queued),
        (1, None, ChatState::Active),
    ] {
        let (mut chat, mut mutations) = chat_ticket(&visitor, queued);
        chat.team_id = team_id;
        chat.state = state;
        mutations[1] = Mutation::InsertChat(chat.clone());
        commit(&store, mutations).await;
        chats.push(chat);
    }
    let mut tied = [chats[1].clone(), chats[2].clone()];
    tied.sort_by_key(|chat| chat.ticket_id);
    let ahead = |chat: &otklik_domain::chat::Chat| {
        let store = store.clone();
        let chat = chat.clone();
        async move { store.count_queued_chats_before(&chat).await.unwrap() }
    };
    assert_eq!(
        ahead(&chats[0]).await,
        0,
        "the team's and the active chat do not count"
    );
    assert_eq!(ahead(&tied[0]).await, 1);
    assert_eq!(ahead(&tied[1]).await, 2);
    assert_eq!(ahead(&chats[3]).await, 3);
    assert_eq!(ahead(&chats[4]).await, 0, "alone in the team's queue");
}
