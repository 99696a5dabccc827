//! Sign-in, sessions, CSRF, the Content-Security-Policy, escaping and visibility.

use axum::http::{Method, StatusCode};
use otklik_domain::ticket::TicketStatus;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, attachment, test_ui};

#[tokio::test]
async fn signing_in_sets_an_http_only_lax_session_cookie_and_opens_the_inbox() {
    let ui = test_ui().await;
    let mut browser = ui.browser();
    let login = browser.get("/login?next=/search").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("Вход"), "Russian by default");
    let reply = browser
        .post_form(
            "/login",
            &[
                ("_csrf", &login.csrf()),
                ("email", ADMIN_EMAIL),
                ("password", PASSWORD),
                ("next", "/search"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/search");
    let cookie = reply.header("set-cookie");
    assert!(cookie.starts_with("otklik_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "tests serve plain HTTP");
    let inbox = browser.get("/inbox").await;
    assert_eq!(inbox.status, StatusCode::SEE_OTHER, "to the first view");
    let view = browser.get(inbox.location()).await;
    assert_eq!(view.status, StatusCode::OK);
    assert!(view.body.contains("Анна Админова"), "the signed-in name");
}

#[tokio::test]
async fn secure_cookies_carry_the_host_prefix_and_the_secure_flag() {
    let ui = test_ui().await;
    let router = otklik_ui::router(ui.app.clone(), otklik_ui::UiConfig::default());
    let response = tower::ServiceExt::oneshot(
        router,
        axum::http::Request::get("/login")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-otklik_pre="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_with_the_email_kept_and_no_session() {
    let ui = test_ui().await;
    let mut browser = ui.browser();
    let login = browser.get("/login").await;
    let reply = browser
        .post_form(
            "/login",
            &[
                ("_csrf", &login.csrf()),
                ("email", ADMIN_EMAIL),
                ("password", "wrong password!"),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(reply.body.contains("Неверный e-mail или пароль."));
    assert!(reply.body.contains(&format!("value=\"{ADMIN_EMAIL}\"")));
    assert!(reply.body.contains("aria-invalid=\"true\""));
    assert!(!browser.jar.contains_key("otklik_session"));
    assert_eq!(browser.get("/inbox").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_page_without_a_session_sends_the_browser_to_sign_in_and_back() {
    let ui = test_ui().await;
    let ticket = ui
        .ticket("Где заказ?", "Жду неделю", "ivan@example.com")
        .await;
    let mut browser = ui.browser();
    let path = format!("/tickets/{}", ticket.id);
    let reply = browser.get(&path).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), format!("/login?next={path}"));
    // htmx requests are told to redirect the whole page instead.
    browser.headers.push(("hx-request".into(), "true".into()));
    let partial = browser.get(&format!("{path}/timeline")).await;
    assert_eq!(partial.status, StatusCode::UNAUTHORIZED);
    assert!(partial.header("hx-redirect").starts_with("/login?"));
}

#[tokio::test]
async fn an_expired_session_is_cleared_and_the_sign_in_page_says_why() {
    let ui = test_ui().await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    // A session the server no longer knows (expired rows are gone, or it was signed out).
    browser
        .jar
        .insert("otklik_session".into(), "no-such-session-secret".into());
    let reply = browser.get("/search").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(
        reply.location().starts_with("/login?expired=1"),
        "{}",
        reply.location()
    );
    assert!(
        !browser.jar.contains_key("otklik_session"),
        "cookie cleared"
    );
    let login = browser.get(reply.location()).await;
    assert!(login.body.contains("Сеанс завершён"));
}

#[tokio::test]
async fn a_stale_session_cookie_does_not_stop_signing_in_again() {
    let ui = test_ui().await;
    let mut browser = ui.browser();
    let login = browser.get("/login").await;
    // The session died on the server while the browser kept its cookie.
    browser
        .jar
        .insert("otklik_session".into(), "a-session-that-ended".into());
    let reply = browser
        .post_form(
            "/login",
            &[
                ("_csrf", &login.csrf()),
                ("email", ADMIN_EMAIL),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_ne!(browser.jar["otklik_session"], "a-session-that-ended");
    assert_eq!(browser.get("/search").await.status, StatusCode::OK);
}

#[tokio::test]
async fn signing_out_ends_the_session_on_the_server() {
    let ui = test_ui().await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let secret = browser.jar["otklik_session"].clone();
    let csrf = browser.csrf().await;
    let reply = browser.post_form("/logout", &[("_csrf", &csrf)]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(reply.location(), "/login");
    assert!(ui.app.authenticate_session(&secret).await.is_err());
    // A copy of the old cookie is worthless too.
    browser.jar.insert("otklik_session".into(), secret);
    assert_eq!(browser.get("/search").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing() {
    let ui = test_ui().await;
    let ticket = ui
        .ticket("Возврат", "Хочу вернуть", "ivan@example.com")
        .await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let path = format!("/tickets/{}/messages", ticket.id);
    let missing = browser.post_form(&path, &[("body", "Ответ")]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.body.contains("Форма устарела"), "{}", missing.body);
    let other_session = ui.signed_in(ADMIN_EMAIL).await.csrf().await;
    let wrong = browser
        .post_form(&path, &[("_csrf", &other_session), ("body", "Ответ")])
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let garbage = browser
        .post_form(&path, &[("_csrf", "AAAA"), ("body", "Ответ")])
        .await;
    assert_eq!(garbage.status, StatusCode::FORBIDDEN);
    let solve = browser
        .post_form(&format!("/tickets/{}/solve", ticket.id), &[])
        .await;
    assert_eq!(solve.status, StatusCode::FORBIDDEN);
    let messages = ui
        .app
        .list_messages(&ui.admin_principal(), ticket.id)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1, "only the customer's first message");
    let after = ui
        .app
        .get_ticket(&ui.admin_principal(), ticket.id)
        .await
        .unwrap();
    assert_eq!(after.version, ticket.version);
    assert_eq!(after.status, TicketStatus::New);
}

#[tokio::test]
async fn a_cross_site_post_is_refused_even_with_the_right_token() {
    let ui = test_ui().await;
    let ticket = ui
        .ticket("Возврат", "Хочу вернуть", "ivan@example.com")
        .await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = browser.csrf().await;
    let path = format!("/tickets/{}/solve", ticket.id);

    let mut cross_site = browser.clone();
    cross_site
        .headers
        .push(("sec-fetch-site".into(), "cross-site".into()));
    assert_eq!(
        cross_site
            .post_form(&path, &[("_csrf", &csrf)])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let mut foreign_origin = browser.clone();
    foreign_origin
        .headers
        .push(("host".into(), "help.shop.test".into()));
    foreign_origin
        .headers
        .push(("origin".into(), "https://evil.test".into()));
    assert_eq!(
        foreign_origin
            .post_form(&path, &[("_csrf", &csrf)])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let after = ui
        .app
        .get_ticket(&ui.admin_principal(), ticket.id)
        .await
        .unwrap();
    assert_eq!(after.status, TicketStatus::New, "nothing changed");

    // The same request from our own origin goes through.
    let mut same_origin = browser.clone();
    same_origin
        .headers
        .push(("host".into(), "help.shop.test".into()));
    same_origin
        .headers
        .push(("origin".into(), "https://help.shop.test".into()));
    same_origin
        .headers
        .push(("sec-fetch-site".into(), "same-origin".into()));
    let reply = same_origin.post_form(&path, &[("_csrf", &csrf)]).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    let after = ui
        .app
        .get_ticket(&ui.admin_principal(), ticket.id)
        .await
        .unwrap();
    assert_eq!(after.status, TicketStatus::Solved);
}

#[tokio::test]
async fn the_htmx_header_carries_the_csrf_token_as_well_as_the_form_field() {
    let ui = test_ui().await;
    let ticket = ui
        .ticket("Возврат", "Хочу вернуть", "ivan@example.com")
        .await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = browser.csrf().await;
    browser.headers.push(("x-csrf-token".into(), csrf));
    let reply = browser
        .post_form(&format!("/tickets/{}/assign-to-me", ticket.id), &[])
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
}

#[tokio::test]
async fn a_sign_in_form_from_another_site_is_refused() {
    let ui = test_ui().await;
    let mut browser = ui.browser();
    // No pre-session cookie (a forged form on another site cannot read or set ours).
    let reply = browser
        .post_form("/login", &[("email", ADMIN_EMAIL), ("password", PASSWORD)])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(!browser.jar.contains_key("otklik_session"));
}

#[tokio::test]
async fn no_get_request_changes_anything() {
    let ui = test_ui().await;
    let ticket = ui
        .ticket("Возврат", "Хочу вернуть", "ivan@example.com")
        .await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let secret = browser.jar["otklik_session"].clone();
    let id = ticket.id;
    for path in [
        format!("/tickets/{id}/solve"),
        format!("/tickets/{id}/assign-to-me"),
        format!("/tickets/{id}/messages?body=hi"),
        "/logout".to_owned(),
        "/lang?lang=en".to_owned(),
        format!("/tickets/{id}?status=solved&subject=x"),
        format!("/tickets/{id}/timeline"),
        "/setup?token=x&email=a@b.test&name=A&password=0123456789".to_owned(),
    ] {
        for method in [Method::GET, Method::HEAD] {
            let reply = browser.method(method.clone(), &path).await;
            assert!(
                reply.status == StatusCode::OK || reply.status == StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {}",
                reply.status
            );
            assert!(
                !reply.header("set-cookie").contains("otklik_session")
                    && !reply.header("set-cookie").contains("otklik_lang"),
                "{method} {path}"
            );
        }
    }
    let after = ui.app.get_ticket(&ui.admin_principal(), id).await.unwrap();
    assert_eq!(after.version, ticket.version, "the ticket is unchanged");
    assert_eq!(after.status, ticket.status);
    assert_eq!(after.assignee_id, None);
    let messages = ui
        .app
        .list_messages(&ui.admin_principal(), id)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert!(
        ui.app.authenticate_session(&secret).await.is_ok(),
        "still signed in"
    );
    assert_eq!(
        ui.app.store.count_agents().await.unwrap(),
        1,
        "set-up by GET created nobody"
    );
}

fn assert_strict_policy(page: &crate::helpers::Page, what: &str) {
    let policy = page.header("content-security-policy");
    assert!(policy.contains("script-src 'self'"), "{what}: {policy}");
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{what}: {policy}"
    );
    assert!(policy.contains("default-src 'none'"), "{what}: {policy}");
    assert!(!policy.contains("unsafe-inline"), "{what}: {policy}");
    assert!(!policy.contains("unsafe-eval"), "{what}: {policy}");
    assert_eq!(page.header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(page.header("referrer-policy"), "same-origin", "{what}");
    // No inline script and no inline event handlers in the markup.
    for chunk in page.body.split("<script").skip(1) {
        let tag = &chunk[..chunk.find('>').unwrap_or(chunk.len())];
        assert!(
            tag.contains(" src=\""),
            "{what}: inline script <script{tag}>"
        );
    }
    for handler in [
        " onclick=",
        " onload=",
        " onerror=",
        " onsubmit=",
        "javascript:",
    ] {
        assert!(!page.body.contains(handler), "{what}: {handler}");
    }
}

#[tokio::test]
async fn every_page_carries_a_strict_content_security_policy_without_inline_script() {
    let ui = test_ui().await;
    let ticket = ui
        .ticket("Возврат", "Хочу вернуть", "ivan@example.com")
        .await;
    let mut anonymous = ui.browser();
    assert_strict_policy(&anonymous.get("/login").await, "login");
    assert_strict_policy(&anonymous.get("/no-such-page").await, "404");
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let inbox = browser.get("/inbox").await;
    let view = browser.get(inbox.location()).await;
    assert_strict_policy(&view, "inbox");
    assert_strict_policy(
        &browser.get(&format!("/tickets/{}", ticket.id)).await,
        "ticket",
    );
    assert_strict_policy(&browser.get("/search?q=возврат").await, "search");
    assert_strict_policy(
        &browser
            .get(&format!("/customers/{}", ticket.customer_id))
            .await,
        "customer",
    );
}

#[tokio::test]
async fn a_subject_and_message_with_script_are_shown_as_text() {
    let ui = test_ui().await;
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let ticket = ui.ticket(hostile, hostile, "ivan@example.com").await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let views = ui.app.list_views(&ui.admin_principal()).await.unwrap();
    let all_open = views
        .iter()
        .find(|view| view.view.name == "All open")
        .unwrap();
    for path in [
        format!("/views/{}", all_open.view.id),
        format!("/tickets/{}", ticket.id),
        "/search?q=alert".to_owned(),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("<script>alert"), "{path}");
        assert!(!page.body.contains("<img src=x"), "{path}");
        assert!(page.body.contains("&#60;script&#62;alert(1)"), "{path}");
    }
}

#[tokio::test]
async fn an_agent_cannot_open_a_ticket_of_another_team_by_any_route() {
    let ui = test_ui().await;
    let principal = ui.admin_principal();
    let delivery = ui.app.create_team(&principal, "Доставка").await.unwrap();
    let returns = ui.app.create_team(&principal, "Возвраты").await.unwrap();
    let hidden = ui
        .ticket_with(
            "Секретный тикет доставки",
            "Только для доставки",
            "vip@example.com",
            Some(delivery.id),
            vec![attachment("invoice.txt", b"secret")],
        )
        .await;
    let attachment_id =
        ui.app.list_messages(&principal, hidden.id).await.unwrap()[0].attachments[0].id;
    ui.agent("petr@shop.test", vec![returns.id]).await;
    let mut browser = ui.signed_in("petr@shop.test").await;
    for path in [
        format!("/tickets/{}", hidden.id),
        format!("/tickets/{}/timeline", hidden.id),
        format!("/attachments/{attachment_id}"),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(page.body.contains("Страница не найдена"), "{path}");
        assert!(!page.body.contains("Секретный"), "{path}");
    }
    let csrf = browser.csrf().await;
    let reply = browser
        .post_form(
            &format!("/tickets/{}/messages", hidden.id),
            &[("_csrf", &csrf), ("body", "Влез")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let search = browser.get("/search?q=секретный").await;
    assert!(!search.body.contains("Секретный тикет"));
    let views = ui.app.list_views(&principal).await.unwrap();
    let all_open = views
        .iter()
        .find(|view| view.view.name == "All open")
        .unwrap();
    let list = browser.get(&format!("/views/{}", all_open.view.id)).await;
    assert!(!list.body.contains("Секретный тикет"));
    assert!(list.body.contains("0 тикетов"), "the count hides it too");
    assert_eq!(
        ui.app
            .list_messages(&principal, hidden.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn an_attachment_downloads_as_a_sandboxed_file_never_as_a_page() {
    let ui = test_ui().await;
    let html = b"<html><script>alert(1)</script></html>";
    let ticket = ui
        .ticket_with(
            "Файл",
            "Смотрите вложение",
            "ivan@example.com",
            None,
            vec![attachment("счёт.html", html)],
        )
        .await;
    let attachment = &ui
        .app
        .list_messages(&ui.admin_principal(), ticket.id)
        .await
        .unwrap()[0]
        .attachments[0];
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let page = browser.get(&format!("/tickets/{}", ticket.id)).await;
    assert!(
        page.body
            .contains(&format!("/attachments/{}", attachment.id))
    );
    let file = browser
        .get(&format!("/attachments/{}", attachment.id))
        .await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.body.as_bytes(), html);
    assert!(
        file.header("content-disposition")
            .starts_with("attachment;")
    );
    assert!(file.header("content-disposition").contains("UTF-8''"));
    assert!(
        file.header("content-security-policy")
            .starts_with("sandbox")
    );
    assert_eq!(file.header("x-content-type-options"), "nosniff");
    assert!(
        !file.header("content-type").contains("html"),
        "typed from the bytes"
    );
}
