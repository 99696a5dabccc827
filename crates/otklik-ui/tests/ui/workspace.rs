//! What an agent does: the inbox and its pages, the ticket page's forms, search, the language,
//! error pages, set-up, assets.

use axum::http::StatusCode;
use otklik_domain::message::MessageVisibility;
use otklik_domain::ticket::TicketStatus;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, fresh_app, test_ui, ui_router};

async fn view_id(ui: &crate::helpers::TestUi, name: &str) -> String {
    ui.app
        .list_views(&ui.admin_principal())
        .await
        .unwrap()
        .into_iter()
        .find(|view| view.view.name == name)
        .unwrap()
        .view
        .id
        .to_string()
}

#[tokio::test]
async fn the_inbox_shows_views_with_counters_and_pages_by_keyset() {
    let ui = test_ui().await;
    for number in 0..27 {
        ui.ticket(
            &format!("Вопрос номер {number}"),
            "Текст",
            &format!("c{number}@example.com"),
        )
        .await;
    }
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let unassigned = view_id(&ui, "Unassigned").await;
    let page = browser.get(&format!("/views/{unassigned}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Не назначенные"),
        "the default view's Russian name"
    );
    assert!(page.body.contains("27 тикетов"), "the plural count");
    assert!(page.body.contains("<span class=\"view-count\">27</span>"));
    assert_eq!(
        page.body.matches("data-row").count(),
        25,
        "a page is 25 rows"
    );
    assert!(page.body.contains("Иван Петров"), "the customer's name");
    assert!(page.body.contains("Новый"), "the status");
    assert!(page.body.contains("Вопрос номер 26"), "newest first");
    let marker = "hx-get=\"/views/";
    let more = page
        .body
        .split(marker)
        .find(|part| part.contains("rows?after="))
        .expect("a next-page link");
    let next_path = format!("/views/{}", &more[..more.find('"').unwrap()]);
    let rest = browser.get(&next_path).await;
    assert_eq!(rest.status, StatusCode::OK);
    assert_eq!(rest.body.matches("data-row").count(), 2);
    assert!(rest.body.contains("Вопрос номер 0"));
    assert!(!rest.body.contains("Вопрос номер 26"));
    assert!(
        !rest.body.contains("rows?after="),
        "the last page has no next link"
    );

    let nav = browser
        .get(&format!("/inbox/nav?current={unassigned}"))
        .await;
    assert!(nav.body.contains("aria-current=\"page\""));
    assert!(nav.body.contains("<span class=\"view-count\">27</span>"));
}

#[tokio::test]
async fn a_broken_cursor_or_an_unknown_view_is_an_error_page_not_a_crash() {
    let ui = test_ui().await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let unassigned = view_id(&ui, "Unassigned").await;
    let broken = browser
        .get(&format!("/views/{unassigned}?after=garbage"))
        .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert!(broken.body.contains("Запрос не удалось прочитать"));
    let unknown = browser
        .get("/views/0190a8f0-0000-7000-8000-000000000000")
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_agent_replies_notes_assigns_and_solves_from_the_ticket_page() {
    let ui = test_ui().await;
    let ticket = ui
        .ticket("Где мой заказ?", "Заказ 1042 не пришёл", "ivan@example.com")
        .await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let path = format!("/tickets/{}", ticket.id);
    let page = browser.get(&path).await;
    assert!(page.body.contains("Заказ 1042 не пришёл"));
    assert!(
        page.body.contains("ivan@example.com"),
        "the customer's identity"
    );
    let csrf = page.csrf();

    let reply = browser
        .post_form(
            &format!("{path}/messages"),
            &[
                ("_csrf", &csrf),
                ("kind", "reply"),
                ("body", "Уже едет!"),
                ("status", "pending"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let after_reply = browser.get(reply.location()).await;
    assert!(after_reply.body.contains("Ответ отправлен."));
    assert!(after_reply.body.contains("entry-agent"));
    assert!(after_reply.body.contains("Уже едет!"));

    let note = browser
        .post_form(
            &format!("{path}/messages"),
            &[
                ("_csrf", &csrf),
                ("kind", "note"),
                ("body", "Проверить склад"),
            ],
        )
        .await;
    assert_eq!(note.status, StatusCode::SEE_OTHER);
    let assign = browser
        .post_form(&format!("{path}/assign-to-me"), &[("_csrf", &csrf)])
        .await;
    assert_eq!(assign.location(), format!("{path}?done=assigned"));
    let solve = browser
        .post_form(&format!("{path}/solve"), &[("_csrf", &csrf)])
        .await;
    let solved = browser.get(solve.location()).await;
    assert!(solved.body.contains("Тикет решён."));
    assert!(solved.body.contains("entry-note"));
    assert!(
        !solved.body.contains("id=\"solve-form\""),
        "no solve button on a solved ticket"
    );

    let principal = ui.admin_principal();
    let saved = ui.app.get_ticket(&principal, ticket.id).await.unwrap();
    assert_eq!(saved.status, TicketStatus::Solved);
    assert_eq!(saved.assignee_id, Some(ui.admin.id));
    let messages = ui.app.list_messages(&principal, ticket.id).await.unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1].visibility, MessageVisibility::Public);
    assert_eq!(messages[2].visibility, MessageVisibility::Internal);
    assert_eq!(messages[2].body, "Проверить склад");
}

#[tokio::test]
async fn the_ticket_fields_save_and_a_bad_value_comes_back_kept_and_marked() {
    let ui = test_ui().await;
    let team = ui
        .app
        .create_team(&ui.admin_principal(), "Доставка")
        .await
        .unwrap();
    let ticket = ui.ticket("Старая тема", "Текст", "ivan@example.com").await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let path = format!("/tickets/{}", ticket.id);
    let csrf = browser.get(&path).await.csrf();
    let admin = ui.admin.id.to_string();
    let team_id = team.id.to_string();

    let bad = browser
        .post_form(
            &path,
            &[
                ("_csrf", &csrf),
                ("subject", "   "),
                ("status", "open"),
                ("priority", "high"),
                ("assignee", &admin),
                ("team", &team_id),
                ("tags", "доставка, срочно"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("id=\"f-subject-error\""));
    assert!(bad.body.contains("Заполните это поле."));
    assert!(bad.body.contains("value=\"доставка, срочно\""), "tags kept");
    assert!(
        bad.body.contains("<option value=\"high\" selected>"),
        "priority kept"
    );
    let unchanged = ui
        .app
        .get_ticket(&ui.admin_principal(), ticket.id)
        .await
        .unwrap();
    assert_eq!(unchanged.version, ticket.version);

    let good = browser
        .post_form(
            &path,
            &[
                ("_csrf", &csrf),
                ("subject", "Новая тема"),
                ("status", "open"),
                ("priority", "high"),
                ("assignee", &admin),
                ("team", &team_id),
                ("tags", "доставка, срочно"),
            ],
        )
        .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.body);
    let saved = ui
        .app
        .get_ticket(&ui.admin_principal(), ticket.id)
        .await
        .unwrap();
    assert_eq!(saved.subject, "Новая тема");
    assert_eq!(saved.team_id, Some(team.id));
    assert_eq!(saved.tags, vec!["доставка".to_owned(), "срочно".to_owned()]);

    let empty_reply = browser
        .post_form(
            &format!("{path}/messages"),
            &[("_csrf", &csrf), ("kind", "note"), ("body", "  ")],
        )
        .await;
    assert_eq!(empty_reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty_reply.body.contains("id=\"reply-body-error\""));
    assert!(
        empty_reply
            .body
            .contains("value=\"note\" id=\"kind-note\" checked"),
        "kind kept"
    );
}

#[tokio::test]
async fn search_finds_tickets_and_customers_and_marks_the_words() {
    let ui = test_ui().await;
    ui.ticket("Где моя доставка?", "Курьер не приехал", "ivan@example.com")
        .await;
    ui.ticket("Возврат денег", "Верните деньги", "olga@example.com")
        .await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let page = browser.get("/search?q=доставки").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<mark>доставка</mark>"), "{}", page.body);
    assert!(!page.body.contains("Возврат денег"));
    assert!(page.body.contains("1 тикет"));
    let customers = browser.get("/search?q=olga%40example.com").await;
    assert!(
        customers.body.contains("<h2>Клиенты</h2>"),
        "{}",
        customers.body
    );
    assert!(customers.body.contains("href=\"/customers/"));
    let empty = browser.get("/search?q=").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(!empty.body.contains("Ничего не найдено"));
}

#[tokio::test]
async fn search_keeps_to_the_chosen_filters_and_refuses_a_bad_one_with_the_form_kept() {
    let ui = test_ui().await;
    let open = ui
        .ticket("Доставка задерживается", "Где посылка?", "ivan@example.com")
        .await;
    let solved = ui
        .ticket(
            "Доставка пришла",
            "Спасибо, всё получил",
            "olga@example.com",
        )
        .await;
    ui.app
        .update_ticket(
            &ui.admin_principal(),
            solved.id,
            otklik_domain::ticket::TicketPatch {
                status: Some(TicketStatus::Solved),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;

    let both = browser.get("/search?q=доставка").await;
    assert_eq!(both.status, StatusCode::OK);
    assert!(both.body.contains(&format!("/tickets/{}", open.id)));
    assert!(both.body.contains(&format!("/tickets/{}", solved.id)));
    assert!(
        !both.body.contains("class=\"search-filters\" open"),
        "folded without filters"
    );

    let only_solved = browser.get("/search?q=доставка&status=solved").await;
    assert_eq!(only_solved.status, StatusCode::OK);
    assert!(
        only_solved
            .body
            .contains(&format!("/tickets/{}", solved.id))
    );
    assert!(
        !only_solved.body.contains(&format!("/tickets/{}", open.id)),
        "{}",
        only_solved.body
    );
    assert!(only_solved.body.contains("class=\"search-filters\" open"));
    assert!(
        only_solved
            .body
            .contains("<option value=\"solved\" selected>")
    );

    let unassigned_email = browser
        .get("/search?q=доставка&assignee=none&channel=email&tag=нет-такого")
        .await;
    assert_eq!(unassigned_email.status, StatusCode::OK);
    assert!(unassigned_email.body.contains("Ничего не найдено"));

    // A range of UTC days: the day the tickets were updated finds them, the next day does not.
    let day = open.updated_at.to_zoned(jiff::tz::TimeZone::UTC).date();
    let next_day = day.tomorrow().unwrap();
    let that_day = browser
        .get(&format!(
            "/search?q=доставка&updated_from={day}&updated_to={day}"
        ))
        .await;
    assert_eq!(that_day.status, StatusCode::OK);
    assert!(that_day.body.contains(&format!("/tickets/{}", open.id)));
    assert!(
        that_day.body.contains(&format!("value=\"{day}\"")),
        "the day is kept"
    );
    let later = browser
        .get(&format!("/search?q=доставка&updated_from={next_day}"))
        .await;
    assert!(!later.body.contains(&format!("/tickets/{}", open.id)));
    assert!(later.body.contains("Ничего не найдено"));
    let backwards = browser
        .get(&format!(
            "/search?q=доставка&updated_from={next_day}&updated_to={day}"
        ))
        .await;
    assert_eq!(backwards.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(backwards.body.contains("id=\"flt-updated-to-error\""));
    let no_day = browser
        .get("/search?q=доставка&updated_from=2026-13-01")
        .await;
    assert_eq!(no_day.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(no_day.body.contains("id=\"flt-updated-from-error\""));

    let refused = browser.get("/search?q=доставка&status=lost").await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("id=\"flt-status-error\""));
    assert!(
        refused.body.contains("value=\"доставка\""),
        "the words are kept"
    );
    assert!(!refused.body.contains(&format!("/tickets/{}", open.id)));
}

#[tokio::test]
async fn the_language_follows_the_browser_and_the_switch_is_remembered() {
    let ui = test_ui().await;
    let mut english = ui.browser();
    english
        .headers
        .push(("accept-language".into(), "en-GB,en;q=0.9,ru;q=0.5".into()));
    let login = english.get("/login").await;
    assert!(login.body.contains("<html lang=\"en\">"));
    assert!(login.body.contains("Sign in"));
    let missing = english.get("/nowhere").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("Page not found"));

    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = browser.csrf().await;
    let switched = browser
        .post_form(
            "/lang",
            &[("_csrf", &csrf), ("lang", "en"), ("next", "/search")],
        )
        .await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    assert_eq!(switched.location(), "/search");
    assert!(switched.header("set-cookie").starts_with("otklik_lang=en"));
    let page = browser.get("/search").await;
    assert!(page.body.contains("<h1>Search</h1>"));
    assert!(
        browser
            .get("/nowhere")
            .await
            .body
            .contains("Page not found")
    );
    let back = browser
        .post_form(
            "/lang",
            &[
                ("_csrf", &csrf),
                ("lang", "ru"),
                ("next", "https://evil.test/"),
            ],
        )
        .await;
    assert_eq!(back.location(), "/inbox", "only local paths are followed");
    assert!(browser.get("/search").await.body.contains("<h1>Поиск</h1>"));
    let nonsense = browser
        .post_form("/lang", &[("_csrf", &csrf), ("lang", "xx")])
        .await;
    assert_eq!(nonsense.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_first_admin_is_created_from_the_one_time_set_up_link() {
    let (app, _guards) = fresh_app().await;
    let token = app
        .issue_setup_token_if_needed()
        .await
        .unwrap()
        .expect("a fresh instance issues a set-up token");
    let router = ui_router(app.clone());
    let ui_like = crate::helpers::Browser::for_router(router);
    let mut browser = ui_like;
    let page = browser.get(&format!("/setup?token={token}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();

    let mismatch = browser
        .post_form(
            "/setup",
            &[
                ("_csrf", &csrf),
                ("token", &token),
                ("email", "boss@shop.test"),
                ("name", "Босс"),
                ("password", PASSWORD),
                ("password_again", "something else"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.body.contains("Пароли не совпадают."));
    assert!(
        mismatch.body.contains("value=\"boss@shop.test\""),
        "input kept"
    );

    let short = browser
        .post_form(
            "/setup",
            &[
                ("_csrf", &csrf),
                ("token", &token),
                ("email", "boss@shop.test"),
                ("name", "Босс"),
                ("password", "short"),
                ("password_again", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("id=\"setup-password-error\""));

    let created = browser
        .post_form(
            "/setup",
            &[
                ("_csrf", &csrf),
                ("token", &token),
                ("email", "boss@shop.test"),
                ("name", "Босс"),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    assert_eq!(created.location(), "/inbox");
    assert!(
        browser.jar.contains_key("otklik_session"),
        "signed in at once"
    );
    assert_eq!(browser.get("/inbox").await.status, StatusCode::SEE_OTHER);

    let csrf = browser.csrf().await;
    let again = browser
        .post_form(
            "/setup",
            &[
                ("_csrf", &csrf),
                ("token", &token),
                ("email", "other@shop.test"),
                ("name", "Другой"),
                ("password", PASSWORD),
                ("password_again", PASSWORD),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("уже использована"));
    assert_eq!(app.store.count_agents().await.unwrap(), 1);
}

#[tokio::test]
async fn assets_are_served_under_hashed_names_with_long_caching() {
    let ui = test_ui().await;
    let mut browser = ui.browser();
    let login = browser.get("/login").await;
    let start = login
        .body
        .find("/assets/app.")
        .expect("app.js or app.css link");
    let rest = &login.body[start..];
    let url = &rest[..rest.find('"').unwrap()];
    let asset = browser.get(url).await;
    assert_eq!(asset.status, StatusCode::OK, "{url}");
    assert!(asset.header("cache-control").contains("immutable"));
    assert!(asset.header("cache-control").contains("max-age=31536000"));
    let htmx = login
        .body
        .find("/assets/htmx.min.")
        .expect("htmx is linked");
    let htmx_url = &login.body[htmx..htmx + login.body[htmx..].find('"').unwrap()];
    let htmx_file = browser.get(htmx_url).await;
    assert!(
        htmx_file
            .header("content-type")
            .starts_with("text/javascript")
    );
    assert!(htmx_file.body.contains("htmx"));
    assert_eq!(
        browser.get("/assets/app.js").await.status,
        StatusCode::NOT_FOUND
    );
}
