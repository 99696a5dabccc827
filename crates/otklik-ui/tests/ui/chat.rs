//! Live chat in the workspace: the availability control, the chats page (queue and own chats),
//! the chat bar of a chat ticket (accept, transfer, end), replies that would take a chat, the
//! typing and read posts, typing on the event stream, and Admin → Chat sites.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use futures::StreamExt;
use otklik_app::chat::{ChatSiteInput, SetAvailabilityInput, StartChatInput};
use otklik_domain::agent::{Agent, Team};
use otklik_domain::chat::{
    Availability, ChatSite, ChatState, FieldMode, PreChatForm, WorkingHours,
};
use otklik_domain::ids::TicketId;
use otklik_domain::permission::Principal;
use otklik_store::events::Signal;
use tower::ServiceExt;

use crate::helpers::{ADMIN_EMAIL, Backend, Browser, TestUi, test_ui, test_ui_on};

/// A team, a site whose chats wait for it, and Пётр of that team online with room for one
/// chat, already busy with a first chat: the next chat waits in the queue, and the admin (in
/// no team, so routing never hands them the team's chats) can take it.
struct ChatScene {
    team: Team,
    site: ChatSite,
    petr: Agent,
    /// The chat that waits.
    queued: TicketId,
}

fn site_input(team: &Team) -> ChatSiteInput {
    ChatSiteInput {
        name: "Магазин цветов".into(),
        allowed_origins: vec!["https://flowers.example".into()],
        greeting: "Здравствуйте!".into(),
        accent_colour: "#0b57d0".into(),
        working_hours: WorkingHours::around_the_clock(),
        pre_chat: PreChatForm::default(),
        require_identity: false,
        team_id: Some(team.id),
        mailbox_id: None,
        active: true,
    }
}

fn principal_of(agent: &Agent) -> Principal {
    otklik_app::App::principal_of(agent, None, None)
}

async fn go_online(ui: &TestUi, agent: &Agent, max_chats: u16) {
    ui.app
        .set_chat_availability(
            &principal_of(agent),
            SetAvailabilityInput {
                availability: Availability::Online,
                max_chats,
                languages: Vec::new(),
            },
        )
        .await
        .expect("online");
}

/// A visitor of `site` starts a chat with `body`.
async fn start_chat(ui: &TestUi, site: &ChatSite, body: &str) -> TicketId {
    let (_, session) = ui
        .app
        .create_visitor(site.id, None)
        .await
        .expect("a visitor");
    let (summary, _, created) = ui
        .app
        .start_chat(
            &session,
            StartChatInput {
                client_id: format!("c-{}", uuid::Uuid::now_v7().simple()),
                body: body.into(),
                language: Some("ru".into()),
                ..StartChatInput::default()
            },
        )
        .await
        .expect("a chat");
    assert!(created);
    summary.chat.ticket_id
}

async fn chat_scene(ui: &TestUi) -> ChatScene {
    let admin = ui.admin_principal();
    let team = ui.app.create_team(&admin, "Чат-поддержка").await.unwrap();
    let petr = ui.agent("petr@shop.test", vec![team.id]).await;
    let site = ui
        .app
        .create_chat_site(&admin, site_input(&team))
        .await
        .expect("a site");
    go_online(ui, &petr, 1).await;
    let first = start_chat(ui, &site, "Первый вопрос").await;
    assert_eq!(
        ui.app.get_chat(&admin, first).await.unwrap().chat.state,
        ChatState::Active,
        "the first chat goes to Пётр"
    );
    let queued = start_chat(
        ui,
        &site,
        "Где мой заказ 7731? Курьер не приехал, а доставка была на сегодня",
    )
    .await;
    assert_eq!(
        ui.app.get_chat(&admin, queued).await.unwrap().chat.state,
        ChatState::Queued,
        "Пётр is full: the second chat waits"
    );
    ChatScene {
        team,
        site,
        petr,
        queued,
    }
}

async fn chat_state(ui: &TestUi, ticket_id: TicketId) -> ChatState {
    ui.app
        .get_chat(&ui.admin_principal(), ticket_id)
        .await
        .unwrap()
        .chat
        .state
}

/// The admin goes online through the header's control (a plain form post).
async fn admin_online(browser: &mut Browser, max_chats: &str) {
    let csrf = browser.csrf().await;
    let answer = browser
        .post_form(
            "/chat/availability",
            &[
                ("_csrf", &csrf),
                ("availability", "online"),
                ("max_chats", max_chats),
                ("next", "/chats"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), "/chats");
}

fn queue_row(body: &str, ticket_id: TicketId) -> bool {
    body.contains(&format!(
        "data-testid=\"chat-queue-row\" data-ticket-id=\"{ticket_id}\""
    ))
}

fn my_row(body: &str, ticket_id: TicketId) -> bool {
    body.contains(&format!(
        "data-testid=\"my-chat-row\" data-ticket-id=\"{ticket_id}\""
    ))
}

#[tokio::test]
async fn an_agent_sets_availability_in_the_header_and_sees_their_load() {
    let ui = test_ui().await;
    let team = ui
        .app
        .create_team(&ui.admin_principal(), "Чат")
        .await
        .unwrap();
    let petr = ui.agent("petr@shop.test", vec![team.id]).await;
    let site = ui
        .app
        .create_chat_site(&ui.admin_principal(), site_input(&team))
        .await
        .unwrap();
    let mut browser = ui.signed_in("petr@shop.test").await;
    let inbox = browser.get("/search").await;
    assert!(inbox.body.contains("data-testid=\"availability\""));
    assert!(
        inbox
            .body
            .contains("value=\"offline\" class=\"avail avail-offline\" aria-pressed=\"true\""),
        "offline until set"
    );
    assert!(inbox.body.contains("0/3 чата"), "{}", inbox.body);
    assert!(inbox.body.contains("href=\"/chats\""), "the Chats nav item");

    // One click on "online" with a maximum of 2 saves both, and the page comes back.
    let csrf = inbox.csrf();
    let saved = browser
        .post_form(
            "/chat/availability",
            &[
                ("_csrf", &csrf),
                ("availability", "online"),
                ("max_chats", "2"),
                ("next", "/inbox"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(saved.location(), "/inbox");
    let status = ui.app.chat_status(&principal_of(&petr)).await.unwrap();
    assert_eq!(
        (status.availability, status.max_chats),
        (Availability::Online, 2)
    );

    // A chat routed to Пётр shows in the load.
    start_chat(&ui, &site, "Здравствуйте").await;
    let page = browser.get("/search").await;
    assert!(page.body.contains("1/2 чата"), "{}", page.body);
    assert!(
        page.body
            .contains("value=\"online\" class=\"avail avail-online\" aria-pressed=\"true\"")
    );

    // With htmx the control itself comes back; a maximum out of range is refused and marked.
    browser.headers.push(("hx-request".into(), "true".into()));
    let away = browser
        .post_form(
            "/chat/availability",
            &[
                ("_csrf", &csrf),
                ("availability", "away"),
                ("max_chats", "2"),
            ],
        )
        .await;
    assert_eq!(away.status, StatusCode::OK);
    assert!(away.body.contains("<div id=\"availability\""));
    assert!(!away.body.contains("<html"), "only the control");
    assert!(
        away.body
            .contains("value=\"away\" class=\"avail avail-away\" aria-pressed=\"true\"")
    );
    let refused = browser
        .post_form(
            "/chat/availability",
            &[
                ("_csrf", &csrf),
                ("availability", "online"),
                ("max_chats", "25"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("от 1 до 20"), "{}", refused.body);
    assert!(refused.body.contains("aria-invalid=\"true\""));
    let status = ui.app.chat_status(&principal_of(&petr)).await.unwrap();
    assert_eq!(status.availability, Availability::Away, "nothing saved");
    // The maximum alone (the select saves on change): the state stays.
    let max_only = browser
        .post_form(
            "/chat/availability",
            &[("_csrf", &csrf), ("max_chats", "5")],
        )
        .await;
    assert_eq!(max_only.status, StatusCode::OK);
    let status = ui.app.chat_status(&principal_of(&petr)).await.unwrap();
    assert_eq!(
        (status.availability, status.max_chats),
        (Availability::Away, 5)
    );
    // The control's refresh after a `chat.availability` event.
    let fragment = browser.get("/chat/availability").await;
    assert!(fragment.body.contains("1/5 чатов"), "{}", fragment.body);
}

async fn a_waiting_chat_is_accepted_from_the_queue_page_on(backend: Backend) {
    let ui = test_ui_on(backend).await;
    let scene = chat_scene(&ui).await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    admin_online(&mut browser, "2").await;
    assert_eq!(
        chat_state(&ui, scene.queued).await,
        ChatState::Queued,
        "the team's chat does not go to the admin by itself"
    );

    let page = browser.get("/chats").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-live=\"1\""), "the page is live");
    assert!(queue_row(&page.body, scene.queued), "{}", page.body);
    assert!(
        page.body.contains("Где мой заказ 7731?"),
        "the first message"
    );
    assert!(page.body.contains("Магазин цветов"), "the site");
    assert!(page.body.contains("Чат-поддержка"), "the team");
    assert!(page.body.contains("Русский"), "the language");
    assert!(
        page.body.contains("Посетитель сайта"),
        "an anonymous visitor"
    );
    assert!(
        page.body
            .contains("data-testid=\"chat-queue-position\">#1<")
    );
    assert!(
        page.body.contains("data-since=\""),
        "the waiting time ticks"
    );
    assert!(page.body.contains("1 чат"), "the count");

    // Accept: the admin goes to the chat, which is theirs now.
    let csrf = page.csrf();
    let accepted = browser
        .post_form(
            &format!("/tickets/{}/chat/accept", scene.queued),
            &[("_csrf", &csrf), ("from", "chats")],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    assert_eq!(
        accepted.location(),
        format!("/tickets/{}?done=chat-accepted", scene.queued)
    );
    assert_eq!(chat_state(&ui, scene.queued).await, ChatState::Active);
    let ticket = browser.get(accepted.location()).await;
    assert!(ticket.body.contains("data-testid=\"chat-bar\""));
    assert!(ticket.body.contains("data-chat-state=\"active\""));
    assert!(ticket.body.contains("с вами"));
    assert!(
        ticket.body.contains("Посетитель сайта"),
        "not the visitor's id"
    );
    assert!(ticket.body.contains("Вы приняли чат."));
    assert!(ticket.body.contains("data-testid=\"chat-end\""));
    assert!(ticket.body.contains("data-testid=\"chat-transfer\""));
    assert!(!ticket.body.contains("data-testid=\"chat-accept\""));
    assert!(ticket.body.contains("ответ клиенту уйдёт в чат"));
    assert!(ticket.body.contains("1/2 чата"), "the header counts it");

    let lists = browser.get("/chats/lists").await;
    assert!(!lists.body.contains("<html"), "the live fragment alone");
    assert!(!queue_row(&lists.body, scene.queued));
    assert!(my_row(&lists.body, scene.queued), "{}", lists.body);
    assert!(lists.body.contains("Никто не ждёт."));

    // Пётр sees it neither waiting nor as his.
    let mut petr = ui.signed_in("petr@shop.test").await;
    let his = petr.get("/chats").await;
    assert!(!queue_row(&his.body, scene.queued) && !my_row(&his.body, scene.queued));
    let _ = scene.petr;
}

#[tokio::test]
async fn a_waiting_chat_appears_in_the_queue_and_accept_makes_it_mine() {
    a_waiting_chat_is_accepted_from_the_queue_page_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_waiting_chat_appears_in_the_queue_and_accept_makes_it_mine_on_postgres() {
    a_waiting_chat_is_accepted_from_the_queue_page_on(Backend::Postgres).await;
}

#[tokio::test]
async fn accepting_while_offline_says_why_on_the_queue_page() {
    let ui = test_ui().await;
    let scene = chat_scene(&ui).await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = browser.csrf().await;
    let refused = browser
        .post_form(
            &format!("/tickets/{}/chat/accept", scene.queued),
            &[("_csrf", &csrf), ("from", "chats")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("Вы не в сети для чатов"),
        "{}",
        refused.body
    );
    assert!(queue_row(&refused.body, scene.queued), "still waiting");
    assert_eq!(chat_state(&ui, scene.queued).await, ChatState::Queued);
}

async fn transfer_and_end_on(backend: Backend) {
    let ui = test_ui_on(backend).await;
    let scene = chat_scene(&ui).await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    admin_online(&mut browser, "3").await;
    let path = format!("/tickets/{}", scene.queued);
    let page = browser.get(&path).await;
    assert!(
        page.body.contains("data-chat-state=\"queued\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("№1 в очереди"));
    let csrf = page.csrf();
    let accepted = browser
        .post_form(&format!("{path}/chat/accept"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER);

    // Nothing picked: the transfer form says so.
    let unpicked = browser
        .post_form(
            &format!("{path}/chat/transfer"),
            &[("_csrf", &csrf), ("target", "")],
        )
        .await;
    assert_eq!(unpicked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unpicked.body.contains("Выберите агента или команду."));
    assert!(unpicked.body.contains("id=\"chat-transfer-target\" name=\"target\" data-testid=\"chat-transfer-target\" aria-invalid=\"true\""));

    // To Пётр, who is full: refused, the choice kept.
    let to_petr = format!("agent:{}", scene.petr.id);
    let full = browser
        .post_form(
            &format!("{path}/chat/transfer"),
            &[("_csrf", &csrf), ("target", &to_petr)],
        )
        .await;
    assert_eq!(full.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(full.body.contains("нет свободного места"), "{}", full.body);
    assert!(
        full.body
            .contains(&format!("<option value=\"{to_petr}\" selected>"))
    );
    assert_eq!(chat_state(&ui, scene.queued).await, ChatState::Active);

    // To the team: back in the queue, waiting for the team's agents.
    let to_team = format!("team:{}", scene.team.id);
    let moved = browser
        .post_form(
            &format!("{path}/chat/transfer"),
            &[("_csrf", &csrf), ("target", &to_team)],
        )
        .await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    assert_eq!(moved.location(), format!("{path}?done=chat-transferred"));
    assert_eq!(chat_state(&ui, scene.queued).await, ChatState::Queued);
    let queue = browser.get("/chats").await;
    assert!(queue_row(&queue.body, scene.queued));
    assert!(!my_row(&queue.body, scene.queued));
    let bar = browser.get(&format!("{path}/chat")).await;
    assert!(bar.body.contains("data-chat-state=\"queued\""));
    assert!(bar.body.contains("data-testid=\"chat-accept\""));

    // Taken again and ended: the bar says so and the actions are gone.
    browser
        .post_form(&format!("{path}/chat/accept"), &[("_csrf", &csrf)])
        .await;
    let ended = browser
        .post_form(&format!("{path}/chat/end"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER, "{}", ended.body);
    assert_eq!(chat_state(&ui, scene.queued).await, ChatState::Ended);
    let page = browser.get(ended.location()).await;
    assert!(page.body.contains("data-chat-state=\"ended\""));
    assert!(page.body.contains("Чат завершён."));
    assert!(!page.body.contains("data-testid=\"chat-end\""));
    assert!(
        page.body
            .contains("чат завершён — ответ клиенту уйдёт письмом")
    );
    // Ending twice is explained, not an error page.
    let again = browser
        .post_form(&format!("{path}/chat/end"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("Чат уже завершён."));
    let mine = browser.get("/chats").await;
    assert!(!my_row(&mine.body, scene.queued));
    let _ = scene.site;
}

#[tokio::test]
async fn transfer_to_a_team_puts_the_chat_back_in_the_queue_and_end_marks_it_ended() {
    transfer_and_end_on(Backend::Sqlite).await;
}

#[tokio::test]
async fn transfer_to_a_team_puts_the_chat_back_in_the_queue_and_end_marks_it_ended_on_postgres() {
    transfer_and_end_on(Backend::Postgres).await;
}

#[tokio::test]
async fn a_reply_on_a_waiting_chat_while_offline_shows_the_capacity_error_with_the_text_kept() {
    let ui = test_ui().await;
    let scene = chat_scene(&ui).await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let path = format!("/tickets/{}", scene.queued);
    let csrf = browser.get(&path).await.csrf();
    let refused = browser
        .post_form(
            &format!("{path}/messages"),
            &[
                ("_csrf", &csrf),
                ("kind", "reply"),
                ("body", "Сейчас проверю заказ"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .body
            .contains("вы не в сети для чатов или у вас нет свободного места"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(">Сейчас проверю заказ</textarea>"));
    assert!(
        refused
            .body
            .contains("aria-describedby=\"reply-body-error\"")
    );
    assert_eq!(chat_state(&ui, scene.queued).await, ChatState::Queued);

    // In the agent's language.
    browser
        .headers
        .push(("accept-language".into(), "en".into()));
    let english = browser
        .post_form(
            &format!("{path}/messages"),
            &[("_csrf", &csrf), ("kind", "reply"), ("body", "One moment")],
        )
        .await;
    assert_eq!(english.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(english.body.contains("you are not online for chats"));
    assert!(english.body.contains(">One moment</textarea>"));

    // An internal note is not a reply to the chat: it goes in.
    let note = browser
        .post_form(
            &format!("{path}/messages"),
            &[
                ("_csrf", &csrf),
                ("kind", "note"),
                ("body", "Проверить курьера"),
            ],
        )
        .await;
    assert_eq!(note.status, StatusCode::SEE_OTHER);
}

/// The next signal on `topic`, if one comes within a second.
async fn next_signal(
    signals: &mut tokio::sync::broadcast::Receiver<Signal>,
    topic: &str,
) -> Option<Signal> {
    tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match signals.recv().await {
                Ok(signal) if signal.topic == topic => return Some(signal),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test]
async fn the_typing_post_reaches_the_visitor_and_refuses_requests_without_the_csrf_token() {
    let ui = test_ui().await;
    let scene = chat_scene(&ui).await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let path = format!("/tickets/{}", scene.queued);
    let page = browser.get(&path).await;
    assert!(page.body.contains("data-testid=\"chat-typing\""));
    assert!(page.body.contains("data-visitor-text=\"Клиент печатает…\""));
    let csrf = page.csrf();
    let mut signals = ui.app.store.subscribe_signals();

    let typed = browser
        .post_form(
            &format!("{path}/chat/typing"),
            &[("_csrf", &csrf), ("typing", "1")],
        )
        .await;
    assert_eq!(typed.status, StatusCode::NO_CONTENT, "{}", typed.body);
    let signal = next_signal(&mut signals, otklik_app::chat::TYPING_TOPIC)
        .await
        .expect("a typing signal");
    assert_eq!(signal.ticket_id, Some(scene.queued));
    assert_eq!(signal.data["by"], "agent");
    assert_eq!(signal.data["typing"], true);
    assert_eq!(signal.data["agent_name"], "Анна Админова");

    // Without the token (or from another site) nothing is said.
    let forged = browser
        .post_form(&format!("{path}/chat/typing"), &[("typing", "1")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    browser
        .headers
        .push(("sec-fetch-site".into(), "cross-site".into()));
    let cross = browser
        .post_form(
            &format!("{path}/chat/typing"),
            &[("_csrf", &csrf), ("typing", "1")],
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    browser.headers.clear();
    assert!(
        next_signal(&mut signals, otklik_app::chat::TYPING_TOPIC)
            .await
            .is_none()
    );

    // A malformed value, a missing ticket.
    let bad = browser
        .post_form(
            &format!("{path}/chat/typing"),
            &[("_csrf", &csrf), ("typing", "maybe")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let missing = browser
        .post_form(
            &format!("/tickets/{}/chat/typing", TicketId::new()),
            &[("_csrf", &csrf), ("typing", "0")],
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The read mark: the page says how far it showed the chat.
    let read = browser
        .post_form(
            &format!("{path}/chat/read"),
            &[("_csrf", &csrf), ("seq", "1")],
        )
        .await;
    assert_eq!(read.status, StatusCode::NO_CONTENT);
    let chat = ui
        .app
        .get_chat(&ui.admin_principal(), scene.queued)
        .await
        .unwrap()
        .chat;
    assert_eq!(chat.agent_read_seq, 1);
    let page = browser.get(&path).await;
    assert!(page.body.contains(&format!(
        "data-last-seq=\"{}\" data-read-seq=\"1\"",
        chat.last_seq
    )));
}

#[tokio::test]
async fn the_event_stream_says_when_the_customer_types_on_a_visible_chat() {
    let ui = test_ui().await;
    let scene = chat_scene(&ui).await;
    let browser = ui.signed_in(ADMIN_EMAIL).await;
    let cookies: Vec<String> = browser
        .jar
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let response = ui
        .router
        .clone()
        .oneshot(
            Request::get("/events")
                .header(header::COOKIE, cookies.join("; "))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = response.into_body().into_data_stream();
    // The visitor types (their widget's call), after the stream is listening.
    let store = ui.app.store.clone();
    let ticket_id = scene.queued;
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        store
            .publish_signal(Signal {
                topic: otklik_app::chat::TYPING_TOPIC.into(),
                ticket_id: Some(ticket_id),
                data: serde_json::json!({ "by": "visitor", "typing": true }),
            })
            .await
            .unwrap();
    });
    let received = tokio::time::timeout(Duration::from_secs(3), async {
        let mut text = String::new();
        while let Some(Ok(bytes)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&bytes));
            if text.contains("event: typing") && text.contains("\n\n") {
                return text;
            }
        }
        text
    })
    .await
    .expect("a typing event within 3 s");
    assert!(received.contains("event: typing"), "{received}");
    assert!(received.contains(&ticket_id.to_string()));
    assert!(received.contains("\"by\":\"visitor\""));
    assert!(received.contains("\"typing\":true"));
}

// --- Admin → Chat sites ---------------------------------------------------------------------

/// `text` as askama writes it into HTML.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

fn site_form<'a>(
    csrf: &'a str,
    origins: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("_csrf", csrf),
        ("name", "Цветы на Арбате"),
        ("allowed_origins", origins),
        ("greeting", "Чем помочь?"),
        ("accent_colour", "#c2185b"),
        ("prechat_name", "optional"),
        ("prechat_email", "required"),
        ("prechat_order_number", "hidden"),
    ];
    fields.extend_from_slice(extra);
    fields
}

#[tokio::test]
async fn an_admin_creates_and_edits_a_chat_site_and_a_bad_origin_comes_back_kept_and_marked() {
    let ui = test_ui().await;
    let team = ui
        .app
        .create_team(&ui.admin_principal(), "Цветы")
        .await
        .unwrap();
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    browser
        .headers
        .push(("host".into(), "help.shop.test".into()));
    let list = browser.get("/admin/chat-sites").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("Сайтов с чатом пока нет."));
    assert!(
        list.body
            .contains("href=\"/admin/chat-sites\" aria-current=\"page\"")
    );
    let new = browser.get("/admin/chat-sites/new").await;
    assert_eq!(new.status, StatusCode::OK);
    assert!(new.body.contains("type=\"color\""));
    assert!(new.body.contains("name=\"mon_from\""));
    let csrf = new.csrf();

    // A bad origin: the form comes back as typed, the field marked.
    let origins = "https://flowers.example\nflowers.example/catalog";
    let team_id = team.id.to_string();
    let refused = browser
        .post_form(
            "/admin/chat-sites",
            &site_form(&csrf, origins, &[("team_id", &team_id), ("active", "1")]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .body
            .contains("«flowers.example/catalog» — не адрес сайта"),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains(&format!(">{}</textarea>", escaped(origins)))
    );
    assert!(refused.body.contains("value=\"Цветы на Арбате\""));
    assert!(refused.body.contains("aria-invalid=\"true\""));
    assert!(
        refused
            .body
            .contains(&format!("<option value=\"{team_id}\" selected>"))
    );
    assert!(
        ui.app
            .list_chat_sites(&ui.admin_principal())
            .await
            .unwrap()
            .is_empty()
    );

    // Hours that close before they open are marked on their day.
    let bad_hours = browser
        .post_form(
            "/admin/chat-sites",
            &site_form(
                &csrf,
                "https://flowers.example",
                &[
                    ("time_zone", "Europe/Moscow"),
                    ("mon_from", "18:00"),
                    ("mon_to", "09:00"),
                ],
            ),
        )
        .await;
    assert_eq!(bad_hours.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_hours.body.contains("id=\"day-mon-error\""));
    assert!(bad_hours.body.contains("value=\"18:00\""));

    // Saved: the page shows the snippet to copy and the identity secret.
    let created = browser
        .post_form(
            "/admin/chat-sites",
            &site_form(
                &csrf,
                "HTTPS://Flowers.Example/\nhttp://127.0.0.1:8000",
                &[
                    ("team_id", &team_id),
                    ("active", "1"),
                    ("time_zone", "Europe/Moscow"),
                    ("mon_from", "09:00"),
                    ("mon_to", "18:00"),
                    ("tue_from", "09:00"),
                    ("tue_to", "00:00"),
                    ("sun_closed", "1"),
                ],
            ),
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let site = ui
        .app
        .list_chat_sites(&ui.admin_principal())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        created.location(),
        format!("/admin/chat-sites/{}?done=created", site.id)
    );
    assert_eq!(
        site.allowed_origins,
        vec!["https://flowers.example", "http://127.0.0.1:8000"]
    );
    assert_eq!(site.accent_colour, "#c2185b");
    assert_eq!(site.pre_chat.email, FieldMode::Required);
    assert_eq!(site.team_id, Some(team.id));
    assert_eq!(site.working_hours.time_zone, "Europe/Moscow");
    let monday = site.working_hours.days[0].expect("open on Monday");
    assert_eq!((monday.from_minute, monday.to_minute), (540, 1080));
    assert_eq!(
        site.working_hours.days[1].map(|day| day.to_minute),
        Some(1440)
    );
    assert!(site.working_hours.days[6].is_none(), "closed on Sunday");
    assert!(
        site.working_hours.days[2].is_none(),
        "a day without hours is closed"
    );

    let page = browser.get(created.location()).await;
    assert_eq!(page.status, StatusCode::OK);
    let snippet = format!(
        "<script src=\"http://help.shop.test/widget.js\" data-site=\"{}\" async></script>",
        site.id
    );
    assert!(page.body.contains(&escaped(&snippet)), "{}", page.body);
    assert!(page.body.contains(&site.identity_secret));
    assert!(
        page.body.contains("hash_hmac('sha256'")
            || page.body.contains("hash_hmac(&#39;sha256&#39;")
    );
    assert!(page.body.contains("value=\"09:00\""));
    assert!(page.body.contains("Создано."));

    // Edited: everything open around the clock, switched off.
    let edited = browser
        .post_form(
            &format!("/admin/chat-sites/{}", site.id),
            &site_form(
                &csrf,
                "https://flowers.example",
                &[("time_zone", "Europe/Moscow")],
            ),
        )
        .await;
    assert_eq!(edited.status, StatusCode::SEE_OTHER, "{}", edited.body);
    let saved = ui
        .app
        .get_chat_site(&ui.admin_principal(), site.id)
        .await
        .unwrap();
    assert!(saved.working_hours.is_around_the_clock());
    assert!(!saved.active);
    assert_eq!(saved.team_id, None);
    // A bad edit keeps the input and the snippet.
    let bad = browser
        .post_form(
            &format!("/admin/chat-sites/{}", site.id),
            &site_form(&csrf, "ftp://flowers.example", &[]),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains(">ftp://flowers.example</textarea>"));
    assert!(bad.body.contains("data-testid=\"chat-site-snippet\""));

    // Rotating the secret makes a new one.
    let rotated = browser
        .post_form(
            &format!("/admin/chat-sites/{}/rotate-secret", site.id),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER);
    let after = ui
        .app
        .get_chat_site(&ui.admin_principal(), site.id)
        .await
        .unwrap();
    assert_ne!(after.identity_secret, site.identity_secret);
    let page = browser.get(rotated.location()).await;
    assert!(page.body.contains(&after.identity_secret));
    assert!(
        page.body.contains("data-confirm="),
        "the rotation asks first"
    );

    let list = browser.get("/admin/chat-sites").await;
    assert!(list.body.contains("Цветы на Арбате"));
    assert!(list.body.contains("выключен"));
    let unknown = browser
        .get(&format!("/admin/chat-sites/{}", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_agent_who_is_not_an_admin_cannot_see_or_change_chat_sites() {
    let ui = test_ui().await;
    let team = ui
        .app
        .create_team(&ui.admin_principal(), "Чат")
        .await
        .unwrap();
    let site = ui
        .app
        .create_chat_site(&ui.admin_principal(), site_input(&team))
        .await
        .unwrap();
    ui.agent("petr@shop.test", vec![]).await;
    let mut browser = ui.signed_in("petr@shop.test").await;
    let page = browser.get("/search").await;
    assert!(!page.body.contains("/admin/chat-sites"));
    for path in [
        "/admin/chat-sites".to_owned(),
        "/admin/chat-sites/new".to_owned(),
        format!("/admin/chat-sites/{}", site.id),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(!page.body.contains(&site.identity_secret));
    }
    let csrf = browser.csrf().await;
    for path in [
        "/admin/chat-sites".to_owned(),
        format!("/admin/chat-sites/{}", site.id),
        format!("/admin/chat-sites/{}/rotate-secret", site.id),
    ] {
        let answer = browser
            .post_form(
                &path,
                &site_form(&csrf, "https://evil.example", &[("active", "1")]),
            )
            .await;
        assert!(
            matches!(answer.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
            "{path}: {}",
            answer.status
        );
    }
    let unchanged = ui
        .app
        .get_chat_site(&ui.admin_principal(), site.id)
        .await
        .unwrap();
    assert_eq!(unchanged, site);
    assert_eq!(
        ui.app
            .list_chat_sites(&ui.admin_principal())
            .await
            .unwrap()
            .len(),
        1
    );
}
