//! Live chat use cases on a real SQLite store with a fake clock: visitors and identity,
//! starting and continuing chats, routing by capacity and the queue, transfers, ending,
//! replies in the chat and by e-mail afterwards, and what a visitor may reach.

use std::sync::Arc;

use jiff::SignedDuration;
use otklik_app::chat::{
    ChatSiteInput, IdentityClaim, SetAvailabilityInput, StartChatInput, TransferTarget,
    VisitorMessageInput, VisitorSession, sign_identity,
};
use otklik_app::mail::MailboxInput;
use otklik_app::tickets::{AddMessageInput, AuthorKind, NewAttachment};
use otklik_app::{App, AppError, auth::NewAgentInput};
use otklik_domain::agent::Role;
use otklik_domain::chat::{
    Availability, ChatSite, ChatState, FieldMode, PreChatAnswers, PreChatForm, WorkingHours,
};
use otklik_domain::clock::FakeClock;
use otklik_domain::ids::TeamId;
use otklik_domain::message::MessageVisibility;
use otklik_domain::permission::Principal;
use otklik_domain::ticket::{Channel, TicketStatus};
use otklik_store::ChatEntryKind;
use otklik_store::blobs::LocalBlobStore;
use otklik_store_sqlite::SqliteStore;

struct Harness {
    app: App,
    clock: Arc<FakeClock>,
    admin: Principal,
    site: ChatSite,
    _folder: tempfile::TempDir,
}

fn site_input(team_id: Option<TeamId>) -> ChatSiteInput {
    ChatSiteInput {
        name: "Магазин".into(),
        allowed_origins: vec!["https://shop.example".into()],
        greeting: "Здравствуйте!".into(),
        accent_colour: "#1f6feb".into(),
        working_hours: WorkingHours::around_the_clock(),
        pre_chat: PreChatForm::default(),
        require_identity: false,
        team_id,
        mailbox_id: None,
        active: true,
    }
}

async fn harness() -> Harness {
    let folder = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&folder.path().join("otklik.db")).unwrap());
    let blobs = Arc::new(LocalBlobStore::new(folder.path().join("blobs")));
    let clock = Arc::new(FakeClock::new("2026-11-23T09:00:00Z".parse().unwrap()));
    let app = App::new(store, blobs, clock.clone());
    let admin = app
        .create_admin_from_cli("admin@shop.test", "Админ", "a long enough password".into())
        .await
        .unwrap();
    let admin = App::principal_of(&admin, None, None);
    let site = app
        .create_chat_site(&admin, site_input(None))
        .await
        .unwrap();
    Harness {
        app,
        clock,
        admin,
        site,
        _folder: folder,
    }
}

impl Harness {
    async fn agent(&self, name: &str, teams: Vec<TeamId>) -> Principal {
        let agent = self
            .app
            .create_agent(
                &self.admin,
                NewAgentInput {
                    email: format!("{}@shop.test", name.to_lowercase()),
                    name: name.into(),
                    role: Role::Agent,
                    team_ids: teams,
                    password: None,
                },
            )
            .await
            .unwrap();
        App::principal_of(&agent, None, None)
    }

    async fn online(&self, agent: &Principal, max_chats: u16) {
        self.app
            .set_chat_availability(
                agent,
                SetAvailabilityInput {
                    availability: Availability::Online,
                    max_chats,
                    languages: Vec::new(),
                },
            )
            .await
            .unwrap();
    }

    async fn visitor(&self) -> VisitorSession {
        self.app.create_visitor(self.site.id, None).await.unwrap().1
    }

    async fn start(&self, session: &VisitorSession, text: &str) -> otklik_domain::ids::TicketId {
        let (chat, _, created) = self
            .app
            .start_chat(
                session,
                StartChatInput {
                    client_id: uuid::Uuid::now_v7().to_string(),
                    body: text.into(),
                    ..StartChatInput::default()
                },
            )
            .await
            .unwrap();
        assert!(created);
        chat.chat.ticket_id
    }
}

fn reply(body: &str) -> AddMessageInput {
    AddMessageInput {
        body: body.into(),
        visibility: MessageVisibility::Public,
        author: AuthorKind::Agent,
        status: None,
        attachments: Vec::new(),
    }
}

#[tokio::test]
async fn a_chat_waits_in_the_queue_until_an_agent_comes_online_then_goes_to_them() {
    let h = harness().await;
    let anna = h.agent("Anna", Vec::new()).await;
    let visitor = h.visitor().await;
    // Nobody online: without an e-mail the visitor is asked for one.
    let refused = h
        .app
        .start_chat(
            &visitor,
            StartChatInput {
                client_id: "c1".into(),
                body: "Где мой заказ?".into(),
                ..StartChatInput::default()
            },
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(AppError::Domain(otklik_domain::DomainError::Validation {
                field: "email",
                ..
            }))
        ),
        "{refused:?}"
    );
    h.online(&anna, 2).await;
    let ticket_id = h.start(&visitor, "Где мой заказ?").await;
    let chat = h.app.get_chat(&anna, ticket_id).await.unwrap();
    assert_eq!(chat.chat.state, ChatState::Active, "routed at once");
    assert_eq!(chat.chat.agent_id, Some(anna.agent_id));
    let ticket = h.app.get_ticket(&anna, ticket_id).await.unwrap();
    assert_eq!(ticket.channel, Channel::Chat);
    assert_eq!(ticket.assignee_id, Some(anna.agent_id));
    assert_eq!(ticket.status, TicketStatus::Open);
    // The visitor sees their message and who joined, numbered without gaps.
    let (_, entries) = h.app.visitor_entries(&visitor, ticket_id, 0).await.unwrap();
    let seqs: Vec<i64> = entries.iter().map(|view| view.entry.seq).collect();
    assert_eq!(seqs, vec![1, 2]);
    assert!(matches!(
        &entries[1].entry.kind,
        ChatEntryKind::Event { code, agent_name } if code == "agent_joined" && agent_name.as_deref() == Some("Anna")
    ));
}

#[tokio::test]
async fn routing_gives_the_least_loaded_agent_and_never_exceeds_anyones_maximum() {
    let h = harness().await;
    let anna = h.agent("Anna", Vec::new()).await;
    let boris = h.agent("Boris", Vec::new()).await;
    h.online(&anna, 2).await;
    h.online(&boris, 1).await;
    let mut tickets = Vec::new();
    for n in 0..5 {
        let visitor = h.visitor().await;
        tickets.push(h.start(&visitor, &format!("вопрос {n}")).await);
        h.clock.advance(SignedDuration::from_secs(1));
    }
    let queue = h.app.chat_queue(&h.admin).await.unwrap();
    assert_eq!(queue.waiting.len(), 2, "3 slots in all, 5 chats");
    // First come, first served: the two last chats wait, in order, with their positions.
    let waiting: Vec<_> = queue.waiting.iter().map(|c| c.chat.ticket_id).collect();
    assert_eq!(waiting, vec![tickets[3], tickets[4]]);
    assert_eq!(queue.waiting[0].queue.unwrap().position, 1);
    assert_eq!(queue.waiting[1].queue.unwrap().position, 2);
    let anna_status = h.app.chat_status(&anna).await.unwrap();
    let boris_status = h.app.chat_status(&boris).await.unwrap();
    assert_eq!(
        (anna_status.active_chats, boris_status.active_chats),
        (2, 1)
    );
    // Ending one of Boris's chats frees his slot: the next in line goes to him.
    let boris_chat = h.app.chat_queue(&boris).await.unwrap().mine[0]
        .chat
        .ticket_id;
    h.app.end_chat(&boris, boris_chat).await.unwrap();
    let next = h.app.get_chat(&h.admin, tickets[3]).await.unwrap();
    assert_eq!(next.chat.agent_id, Some(boris.agent_id));
    assert_eq!(h.app.chat_status(&boris).await.unwrap().active_chats, 1);
    let ended = h.app.get_ticket(&boris, boris_chat).await.unwrap();
    assert_eq!(ended.status, TicketStatus::Solved);
}

#[tokio::test]
async fn transfers_move_a_chat_to_an_agent_or_back_to_a_teams_queue() {
    let h = harness().await;
    let team = h.app.create_team(&h.admin, "Доставка").await.unwrap();
    let anna = h.agent("Anna", Vec::new()).await;
    let vera = h.agent("Vera", vec![team.id]).await;
    h.online(&anna, 3).await;
    let visitor = h.visitor().await;
    let ticket_id = h.start(&visitor, "Курьер не приехал").await;
    assert_eq!(
        h.app
            .get_chat(&anna, ticket_id)
            .await
            .unwrap()
            .chat
            .agent_id,
        Some(anna.agent_id)
    );
    // Vera is offline: a direct transfer to her is refused and nothing changes.
    let refused = h
        .app
        .transfer_chat(&anna, ticket_id, TransferTarget::Agent(vera.agent_id))
        .await;
    assert!(
        matches!(
            refused,
            Err(AppError::Conflict {
                code: "chat_capacity",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(h.app.chat_status(&anna).await.unwrap().active_chats, 1);
    // To the team: back in the queue for the team (Anna is not in it), keeping its place.
    let queued = h
        .app
        .transfer_chat(&anna, ticket_id, TransferTarget::Team(team.id))
        .await
        .unwrap();
    assert_eq!(queued.chat.state, ChatState::Queued);
    assert_eq!(queued.chat.team_id, Some(team.id));
    assert_eq!(h.app.chat_status(&anna).await.unwrap().active_chats, 0);
    // Vera comes online: it is hers.
    h.online(&vera, 1).await;
    let taken = h.app.get_chat(&vera, ticket_id).await.unwrap();
    assert_eq!(taken.chat.agent_id, Some(vera.agent_id));
    assert_eq!(taken.chat.state, ChatState::Active);
    // And Vera hands it to Anna directly.
    let moved = h
        .app
        .transfer_chat(&vera, ticket_id, TransferTarget::Agent(anna.agent_id))
        .await
        .unwrap();
    assert_eq!(moved.chat.agent_id, Some(anna.agent_id));
    assert_eq!(h.app.chat_status(&vera).await.unwrap().active_chats, 0);
    assert_eq!(h.app.chat_status(&anna).await.unwrap().active_chats, 1);
}

#[tokio::test]
async fn going_offline_hands_live_chats_back_to_the_queue() {
    let h = harness().await;
    let anna = h.agent("Anna", Vec::new()).await;
    h.online(&anna, 2).await;
    let visitor = h.visitor().await;
    let ticket_id = h.start(&visitor, "Алло").await;
    h.app
        .set_chat_availability(
            &anna,
            SetAvailabilityInput {
                availability: Availability::Offline,
                max_chats: 2,
                languages: Vec::new(),
            },
        )
        .await
        .unwrap();
    let chat = h.app.get_chat(&h.admin, ticket_id).await.unwrap();
    assert_eq!(chat.chat.state, ChatState::Queued);
    assert_eq!(chat.chat.agent_id, None);
    assert_eq!(h.app.chat_status(&anna).await.unwrap().active_chats, 0);
}

#[tokio::test]
async fn a_resent_message_is_stored_once_and_agents_replies_reach_the_visitor_in_order() {
    let h = harness().await;
    let anna = h.agent("Anna", Vec::new()).await;
    h.online(&anna, 2).await;
    let visitor = h.visitor().await;
    let ticket_id = h.start(&visitor, "Здравствуйте").await;
    let message = VisitorMessageInput {
        client_id: "resend-me".into(),
        body: "Заказ 12345".into(),
        attachment: None,
    };
    let (first, created) = h
        .app
        .post_visitor_message(&visitor, ticket_id, message.clone())
        .await
        .unwrap();
    assert!(created);
    let (again, created_again) = h
        .app
        .post_visitor_message(&visitor, ticket_id, message)
        .await
        .unwrap();
    assert!(!created_again);
    assert_eq!(first.entry, again.entry);
    h.app
        .add_message(&anna, ticket_id, reply("Проверяю"), None)
        .await
        .unwrap();
    let (summary, entries) = h.app.visitor_entries(&visitor, ticket_id, 0).await.unwrap();
    let texts: Vec<Option<&str>> = entries.iter().map(|view| view.body.as_deref()).collect();
    assert_eq!(
        texts,
        vec![
            Some("Здравствуйте"),
            None,
            Some("Заказ 12345"),
            Some("Проверяю")
        ]
    );
    assert_eq!(summary.chat.last_seq, 4);
    assert!(summary.chat.first_agent_message_at.is_some());
    assert_eq!(
        summary.chat.agent_read_seq, 4,
        "answering reads what came before"
    );
    // Resync from the middle gives exactly what came after.
    let (_, tail) = h.app.visitor_entries(&visitor, ticket_id, 2).await.unwrap();
    assert_eq!(
        tail.iter().map(|v| v.entry.seq).collect::<Vec<_>>(),
        vec![3, 4]
    );
    // Internal notes never become entries.
    h.app
        .add_message(
            &anna,
            ticket_id,
            AddMessageInput {
                visibility: MessageVisibility::Internal,
                ..reply("VIP customer")
            },
            None,
        )
        .await
        .unwrap();
    let (_, after_note) = h.app.visitor_entries(&visitor, ticket_id, 4).await.unwrap();
    assert!(after_note.is_empty());
}

#[tokio::test]
async fn a_visitor_reaches_only_their_own_chats_and_files() {
    let h = harness().await;
    let anna = h.agent("Anna", Vec::new()).await;
    h.online(&anna, 3).await;
    let owner = h.visitor().await;
    let stranger = h.visitor().await;
    let ticket_id = h.start(&owner, "Личное").await;
    let png = {
        let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        bytes.extend_from_slice(&[0; 64]);
        bytes
    };
    let (photo, _) = h
        .app
        .post_visitor_message(
            &owner,
            ticket_id,
            VisitorMessageInput {
                client_id: "photo".into(),
                body: String::new(),
                attachment: Some(NewAttachment {
                    file_name: "photo.png".into(),
                    bytes: png,
                }),
            },
        )
        .await
        .unwrap();
    let attachment_id = photo.attachments[0].id;
    assert!(
        h.app
            .visitor_attachment(&owner, ticket_id, attachment_id)
            .await
            .is_ok()
    );
    for result in [
        h.app
            .visitor_entries(&stranger, ticket_id, 0)
            .await
            .map(|_| ()),
        h.app
            .visitor_attachment(&stranger, ticket_id, attachment_id)
            .await
            .map(|_| ()),
        h.app
            .post_visitor_message(
                &stranger,
                ticket_id,
                VisitorMessageInput {
                    client_id: "x".into(),
                    body: "hi".into(),
                    attachment: None,
                },
            )
            .await
            .map(|_| ()),
        h.app
            .visitor_end_chat(&stranger, ticket_id)
            .await
            .map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(AppError::NotFound { .. })),
            "{result:?}"
        );
    }
    // Executables are refused whatever they are called.
    let refused = h
        .app
        .post_visitor_message(
            &owner,
            ticket_id,
            VisitorMessageInput {
                client_id: "exe".into(),
                body: String::new(),
                attachment: Some(NewAttachment {
                    file_name: "invoice.png".into(),
                    bytes: b"MZ\x90\x00 not a picture".to_vec(),
                }),
            },
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(AppError::Refused {
                code: "unsupported_type",
                ..
            })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_verified_customer_is_one_visitor_across_browsers_and_forged_identities_are_refused() {
    let h = harness().await;
    let claim = |signature: String| IdentityClaim {
        external_id: "shop-42".into(),
        email: Some("olga@example.ru".into()),
        name: Some("Ольга".into()),
        signature,
    };
    let good = sign_identity(&h.site.identity_secret, "shop-42");
    let (token_a, first) = h
        .app
        .create_visitor(h.site.id, Some(claim(good.clone())))
        .await
        .unwrap();
    let (token_b, second) = h
        .app
        .create_visitor(h.site.id, Some(claim(good)))
        .await
        .unwrap();
    assert_ne!(token_a, token_b);
    assert_eq!(
        first.visitor.id, second.visitor.id,
        "same customer, same visitor"
    );
    let customer = h
        .app
        .get_customer(&h.admin, first.visitor.customer_id)
        .await
        .unwrap();
    assert_eq!(customer.name, "Ольга");
    let forged = h
        .app
        .create_visitor(h.site.id, Some(claim(sign_identity("guess", "shop-42"))))
        .await;
    assert!(
        matches!(
            forged,
            Err(AppError::Refused {
                code: "identity_invalid",
                ..
            })
        ),
        "{forged:?}"
    );
    // A site that requires identity turns anonymous visitors away.
    let mut input = site_input(None);
    input.require_identity = true;
    let strict = h
        .app
        .update_chat_site(&h.admin, h.site.id, input)
        .await
        .unwrap();
    let anonymous = h.app.create_visitor(strict.id, None).await;
    assert!(
        matches!(
            anonymous,
            Err(AppError::Refused {
                code: "identity_required",
                ..
            })
        ),
        "{anonymous:?}"
    );
    // Tokens are checked: a made-up one is unauthenticated.
    assert!(matches!(
        h.app.authenticate_visitor("made-up").await,
        Err(AppError::Unauthenticated)
    ));
    assert_eq!(
        h.app
            .authenticate_visitor(&token_a)
            .await
            .unwrap()
            .visitor
            .id,
        first.visitor.id
    );
}

#[tokio::test]
async fn an_offline_message_becomes_a_ticket_answered_by_email_from_the_sites_mailbox() {
    let h = harness().await;
    let mailbox = h
        .app
        .create_mailbox_from_cli(MailboxInput {
            name: "support".into(),
            address: "support@shop.example".into(),
            imap_url: None,
            smtp_url: Some("smtp://127.0.0.1:2525?tls=none".into()),
            auto_acknowledge: false,
        })
        .await
        .unwrap();
    let mut input = site_input(None);
    input.mailbox_id = Some(mailbox.id);
    input.pre_chat = PreChatForm {
        name: FieldMode::Optional,
        email: FieldMode::Optional,
        order_number: FieldMode::Optional,
    };
    h.app
        .update_chat_site(&h.admin, h.site.id, input)
        .await
        .unwrap();
    let visitor = h.app.create_visitor(h.site.id, None).await.unwrap().1;
    let (chat, _, _) = h
        .app
        .start_chat(
            &visitor,
            StartChatInput {
                client_id: "offline-1".into(),
                body: "Хочу вернуть куртку".into(),
                answers: PreChatAnswers {
                    name: Some("Пётр".into()),
                    email: Some("Petr@Example.ru".into()),
                    order_number: Some("A-777".into()),
                },
                language: Some("ru-RU".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(chat.chat.state, ChatState::Offline);
    let ticket_id = chat.chat.ticket_id;
    let ticket = h.app.get_ticket(&h.admin, ticket_id).await.unwrap();
    let customer = h
        .app
        .get_customer(&h.admin, ticket.customer_id)
        .await
        .unwrap();
    assert_eq!(customer.name, "Пётр");
    assert!(
        customer
            .identities
            .iter()
            .any(|identity| identity.value.value == "petr@example.ru")
    );
    let messages = h.app.list_messages(&h.admin, ticket_id).await.unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m.visibility == MessageVisibility::Internal && m.body.contains("A-777")),
        "the order number is at hand for agents"
    );
    // The agent's answer goes by e-mail, from the site's mailbox, and shows in the widget too.
    h.app
        .add_message(&h.admin, ticket_id, reply("Оформим возврат"), None)
        .await
        .unwrap();
    let emails = h.app.store.list_ticket_emails(ticket_id).await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].recipients, vec!["petr@example.ru".to_owned()]);
    assert_eq!(emails[0].mailbox_id, mailbox.id);
    let (_, entries) = h.app.visitor_entries(&visitor, ticket_id, 0).await.unwrap();
    assert_eq!(
        entries.last().unwrap().body.as_deref(),
        Some("Оформим возврат")
    );
    // A live chat is answered in the chat only: no e-mail.
    let anna = h.agent("Anna", Vec::new()).await;
    h.online(&anna, 1).await;
    let live_visitor = h.visitor().await;
    let live = h.start(&live_visitor, "Вопрос").await;
    h.app
        .add_message(&anna, live, reply("Ответ"), None)
        .await
        .unwrap();
    assert!(
        h.app
            .store
            .list_ticket_emails(live)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_reply_takes_a_waiting_chat_within_capacity_and_after_the_end_a_new_message_needs_a_new_chat()
 {
    let h = harness().await;
    let anna = h.agent("Anna", Vec::new()).await;
    let boris = h.agent("Boris", Vec::new()).await;
    h.online(&anna, 1).await;
    let first = h.visitor().await;
    let first_chat = h.start(&first, "раз").await;
    let second = h.visitor().await;
    let waiting = h.start(&second, "два").await;
    assert_eq!(
        h.app.get_chat(&anna, waiting).await.unwrap().chat.state,
        ChatState::Queued
    );
    // Boris is offline: his reply cannot take the chat, and nothing is stored.
    let refused = h
        .app
        .add_message(&boris, waiting, reply("Я тут"), None)
        .await;
    assert!(
        matches!(
            refused,
            Err(AppError::Conflict {
                code: "chat_capacity",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        h.app.list_messages(&h.admin, waiting).await.unwrap().len(),
        1
    );
    h.online(&boris, 1).await;
    // Routing already gave it to Boris when he came online; his reply goes into the chat.
    h.app
        .add_message(&boris, waiting, reply("Я тут"), None)
        .await
        .unwrap();
    assert_eq!(
        h.app.get_chat(&boris, waiting).await.unwrap().chat.agent_id,
        Some(boris.agent_id)
    );
    // The visitor ends the first chat; writing into it again is refused with a clear code.
    h.app.visitor_end_chat(&first, first_chat).await.unwrap();
    let late = h
        .app
        .post_visitor_message(
            &first,
            first_chat,
            VisitorMessageInput {
                client_id: "late".into(),
                body: "ещё вопрос".into(),
                attachment: None,
            },
        )
        .await;
    assert!(
        matches!(
            late,
            Err(AppError::Conflict {
                code: "chat_ended",
                ..
            })
        ),
        "{late:?}"
    );
    assert_eq!(h.app.chat_status(&anna).await.unwrap().active_chats, 0);
    let (live, history) = h.app.visitor_state(&first).await.unwrap();
    assert!(live.is_none());
    assert_eq!(history.len(), 1);
}

#[tokio::test]
async fn typing_and_read_marks_travel_as_signals_and_chat_state() {
    let h = harness().await;
    let anna = h.agent("Anna", Vec::new()).await;
    h.online(&anna, 1).await;
    let visitor = h.visitor().await;
    let ticket_id = h.start(&visitor, "Привет").await;
    let mut signals = h.app.store.subscribe_signals();
    h.app
        .agent_chat_typing(&anna, ticket_id, true)
        .await
        .unwrap();
    let signal = tokio::time::timeout(std::time::Duration::from_secs(5), signals.recv())
        .await
        .expect("a typing signal")
        .unwrap();
    assert_eq!(signal.ticket_id, Some(ticket_id));
    assert_eq!(signal.data["by"], "agent");
    assert_eq!(signal.data["agent_name"], "Anna");
    assert_eq!(signal.data["typing"], true);
    h.app
        .add_message(&anna, ticket_id, reply("Здравствуйте"), None)
        .await
        .unwrap();
    h.app.visitor_read(&visitor, ticket_id, 99).await.unwrap();
    let chat = h.app.get_chat(&anna, ticket_id).await.unwrap();
    assert_eq!(
        chat.chat.visitor_read_seq, chat.chat.last_seq,
        "capped at the last entry"
    );
}
