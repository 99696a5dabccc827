//! The account and instance pages added with issue 4's last round: "forgot password", the
//! language remembered per agent, Admin → Settings, and sorted lists.

use axum::http::StatusCode;
use otklik_domain::email::EmailStatus;
use otklik_domain::ticket::{Priority, TicketPatch};
use otklik_store::EmailQuery;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, TestUi, test_ui};

/// The ids of the ticket rows of a list page, in order.
fn row_ids(body: &str) -> Vec<String> {
    body.split("class=\"row-link\" href=\"/tickets/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

/// The "next page" link of a list page.
fn next_page(body: &str) -> Option<String> {
    let start = body.find("<tr class=\"more\">")?;
    let href = body[start..].split("href=\"").nth(1)?;
    Some(
        href.split('"')
            .next()?
            .replace("&amp;", "&")
            .replace("&#38;", "&"),
    )
}

/// The reset link of the newest queued e-mail.
async fn queued_reset_token(ui: &TestUi) -> Option<String> {
    let queued = ui
        .app
        .store
        .list_emails(&EmailQuery {
            status: EmailStatus::Queued,
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    let email = queued.first()?;
    let raw = ui.app.blobs.get(&email.raw_sha256).await.unwrap().unwrap();
    let text = otklik_email::parse_inbound(&raw, &Default::default())
        .unwrap()
        .text;
    let link = text
        .split_whitespace()
        .find(|word| word.contains("token="))?;
    assert!(
        link.starts_with("http://otklik.test/reset-password?token="),
        "the configured fallback address: {link}"
    );
    Some(link.split_once("token=").unwrap().1.to_owned())
}

#[tokio::test]
async fn a_language_chosen_while_signed_in_follows_the_agent_to_another_browser() {
    let ui = test_ui().await;
    let mut first = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = first.csrf().await;
    let switched = first
        .post_form(
            "/lang",
            &[("_csrf", &csrf), ("lang", "en"), ("next", "/search")],
        )
        .await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    let agent = ui.app.store.find_agent(ui.admin.id).await.unwrap().unwrap();
    assert_eq!(agent.locale.as_deref(), Some("en"), "saved on the account");

    // Another browser that prefers Russian, even by its own cookie, gets English once signed in.
    let mut second = ui.browser();
    second
        .headers
        .push(("accept-language".into(), "ru-RU,ru".into()));
    second.jar.insert("otklik_lang".into(), "ru".into());
    let login = second.get("/login").await;
    assert!(login.body.contains("<html lang=\"ru\""), "before sign-in");
    let csrf = login.csrf();
    let signed_in = second
        .post_form(
            "/login",
            &[
                ("_csrf", &csrf),
                ("email", ADMIN_EMAIL),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(
        second.jar.get("otklik_lang").map(String::as_str),
        Some("en")
    );
    second.jar.insert("otklik_lang".into(), "ru".into());
    let page = second.get("/search").await;
    assert!(
        page.body.contains("<html lang=\"en\""),
        "the agent's choice wins"
    );
    let history = ui.app.store.list_audit_events(ui.admin.id.0).await.unwrap();
    assert!(
        history
            .iter()
            .any(|event| event.action == "agent.locale_changed")
    );
}

#[tokio::test]
async fn forgot_password_says_when_mail_is_not_set_up_and_otherwise_answers_alike_for_anyone() {
    let ui = test_ui().await;
    let mut browser = ui.browser();
    let login = browser.get("/login").await;
    assert!(login.body.contains("href=\"/forgot-password\""));
    let page = browser.get("/forgot-password").await;
    assert!(
        page.body.contains("id=\"forgot-not-configured\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("otklik admin reset-password"));
    assert!(!page.body.contains("id=\"forgot-email\""));

    ui.mailbox().await;
    let page = browser.get("/forgot-password").await;
    assert!(page.body.contains("id=\"forgot-email\""));
    let csrf = page.csrf();
    let unknown = browser
        .post_form(
            "/forgot-password",
            &[("_csrf", &csrf), ("email", "nobody@shop.test")],
        )
        .await;
    let known = browser
        .post_form(
            "/forgot-password",
            &[("_csrf", &csrf), ("email", ADMIN_EMAIL)],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(known.status, StatusCode::OK);
    assert!(known.body.contains("id=\"forgot-sent\""));
    assert_eq!(
        unknown.body.replace("nobody@shop.test", ADMIN_EMAIL),
        known.body,
        "the answer does not tell whether an account exists"
    );
    // The link is queued after the answer.
    let mut token = None;
    for _ in 0..100 {
        token = queued_reset_token(&ui).await;
        if token.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(token.is_some(), "a reset e-mail is queued for the admin");
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_ends_the_old_sessions() {
    let ui = test_ui().await;
    ui.mailbox().await;
    let mut old = ui.signed_in(ADMIN_EMAIL).await;
    ui.app
        .request_password_reset(ADMIN_EMAIL, "http://otklik.test", "ru")
        .await
        .unwrap();
    let token = queued_reset_token(&ui).await.expect("a queued link");
    let mut browser = ui.browser();
    let bad = browser.get("/reset-password?token=not-a-token").await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);
    assert!(bad.body.contains("id=\"reset-invalid\""));
    let form = browser.get(&format!("/reset-password?token={token}")).await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = form.csrf();
    let mismatch = browser
        .post_form(
            "/reset-password",
            &[
                ("_csrf", &csrf),
                ("token", &token),
                ("password", "a brand new passphrase"),
                ("password_again", "something else"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.body.contains("id=\"reset-password-again-error\""));
    let short = browser
        .post_form(
            "/reset-password",
            &[
                ("_csrf", &csrf),
                ("token", &token),
                ("password", "short"),
                ("password_again", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(short.body.contains("id=\"reset-password-error\""));
    let done = browser
        .post_form(
            "/reset-password",
            &[
                ("_csrf", &csrf),
                ("token", &token),
                ("password", "a brand new passphrase"),
                ("password_again", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.location(), "/login?reset=1");
    let gone = old.get("/search").await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER, "the old session ended");
    let again = browser
        .post_form(
            "/reset-password",
            &[
                ("_csrf", &csrf),
                ("token", &token),
                ("password", "another new passphrase"),
                ("password_again", "another new passphrase"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND, "a link works once");
    ui.app
        .sign_in(ADMIN_EMAIL, "a brand new passphrase".into())
        .await
        .expect("the new password signs in");
}

#[tokio::test]
async fn settings_are_saved_shown_in_the_header_and_bad_input_comes_back_marked() {
    let ui = test_ui().await;
    let mailbox = ui.mailbox().await;
    ui.agent("petr@shop.test", vec![]).await;
    let mut agent = ui.signed_in("petr@shop.test").await;
    assert_eq!(
        agent.get("/admin/settings").await.status,
        StatusCode::FORBIDDEN
    );
    let csrf = agent.csrf().await;
    let refused = agent
        .post_form(
            "/admin/settings",
            &[("_csrf", &csrf), ("helpdesk_name", "Hijacked")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let mut admin = ui.signed_in(ADMIN_EMAIL).await;
    let page = admin.get("/admin/settings").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("value=\"Otklik\""));
    let csrf = page.csrf();
    let mailbox_id = mailbox.id.to_string();
    let bad = admin
        .post_form(
            "/admin/settings",
            &[
                ("_csrf", &csrf),
                ("helpdesk_name", "Магазин «Пример»"),
                ("default_language", "en"),
                ("public_base_url", "help.shop.test/otklik"),
                ("system_mailbox_id", &mailbox_id),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body.contains("value=\"help.shop.test/otklik\""),
        "input kept"
    );
    assert!(bad.body.contains("id=\"set-url-error\""));
    assert!(bad.body.contains("aria-invalid=\"true\""));
    assert!(bad.body.contains("value=\"Магазин «Пример»\""));
    let saved = admin
        .post_form(
            "/admin/settings",
            &[
                ("_csrf", &csrf),
                ("helpdesk_name", "Магазин «Пример»"),
                ("default_language", "en"),
                ("public_base_url", "https://help.shop.test/"),
                ("system_mailbox_id", &mailbox_id),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let settings = ui.app.instance_settings().await.unwrap();
    assert_eq!(
        settings.public_base_url.as_deref(),
        Some("https://help.shop.test")
    );
    assert_eq!(settings.system_mailbox_id, Some(mailbox.id));
    let search = admin.get("/search").await;
    assert!(search.body.contains("id=\"brand\">Магазин «Пример»</a>"));
    // A browser that names neither language now gets the default chosen here.
    let login = ui.browser().get("/login").await;
    assert!(login.body.contains("<html lang=\"en\""));
    assert!(login.body.contains("Магазин «Пример»"));
}

#[tokio::test]
async fn a_sort_stays_in_the_url_and_its_pages_never_skip_or_repeat_a_ticket() {
    let ui = test_ui().await;
    let principal = ui.admin_principal();
    let priorities = [
        Priority::Low,
        Priority::Urgent,
        Priority::Normal,
        Priority::High,
    ];
    let mut tickets = Vec::new();
    for index in 0..60 {
        let ticket = ui
            .ticket(
                &format!("Заказ {index}"),
                "Текст",
                &format!("c{index}@example.com"),
            )
            .await;
        let ticket = ui
            .app
            .update_ticket(
                &principal,
                ticket.id,
                TicketPatch {
                    priority: Some(priorities[index % 4]),
                    ..TicketPatch::default()
                },
            )
            .await
            .unwrap();
        tickets.push(ticket);
    }
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let views = ui.app.list_views(&principal).await.unwrap();
    let all_open = views
        .iter()
        .find(|counted| counted.view.name == "All open")
        .expect("the default view");
    assert_eq!(all_open.count, 60);
    let view = format!("/views/{}", all_open.view.id);
    for start in [
        format!("{view}?sort=priority-desc"),
        format!("{view}?sort=number-asc"),
        "/tickets?status=new&sort=created-asc".to_owned(),
        "/tickets?sort=priority-asc".to_owned(),
    ] {
        let mut seen: Vec<String> = Vec::new();
        let mut next = Some(start.clone());
        let mut pages = 0;
        while let Some(path) = next {
            let page = browser.get(&path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}");
            seen.extend(row_ids(&page.body));
            next = next_page(&page.body);
            if let Some(link) = &next {
                let code = start.split("sort=").nth(1).unwrap();
                assert!(
                    link.contains(&format!("sort={code}")),
                    "{link} keeps the sort"
                );
            }
            pages += 1;
        }
        assert!(pages >= 3, "{start}: {pages} pages, {} rows", seen.len());
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{start}: a ticket repeated");
        assert_eq!(seen.len(), tickets.len(), "{start}: a ticket skipped");
        let rank = |id: &String| {
            let ticket = tickets.iter().find(|t| t.id.to_string() == *id).unwrap();
            (ticket.priority.rank(), ticket.number)
        };
        if start.contains("priority-desc") {
            assert!(seen.windows(2).all(|w| rank(&w[0]).0 >= rank(&w[1]).0));
        }
        if start.contains("number-asc") {
            assert!(seen.windows(2).all(|w| rank(&w[0]).1 < rank(&w[1]).1));
        }
    }
    let page = browser.get(&format!("{view}?sort=priority-desc")).await;
    assert!(
        page.body
            .contains("<option value=\"priority-desc\" selected>")
    );
    assert_eq!(
        browser.get(&format!("{view}?sort=subject")).await.status,
        StatusCode::BAD_REQUEST
    );
}
