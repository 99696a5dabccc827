//! The admin pages: only admins reach them; agents, teams, tags, tokens, mailboxes and the
//! quarantine, with forms that keep input and mark the bad field.

use axum::http::StatusCode;
use otklik_domain::agent::Role;

use crate::helpers::{ADMIN_EMAIL, PASSWORD, test_ui};

/// The text between `marker` and the next `<`.
fn text_after<'a>(body: &'a str, marker: &str) -> &'a str {
    let start = body.find(marker).unwrap_or_else(|| panic!("no {marker}")) + marker.len();
    let end = body[start..].find('<').unwrap() + start;
    &body[start..end]
}

#[tokio::test]
async fn an_agent_who_is_not_an_admin_gets_the_403_page_on_every_admin_page() {
    let ui = test_ui().await;
    ui.agent("petr@shop.test", vec![]).await;
    let mut browser = ui.signed_in("petr@shop.test").await;
    let inbox = browser.get("/search").await;
    assert!(
        !inbox.body.contains("/admin/agents"),
        "no admin link for agents"
    );
    for path in [
        "/admin",
        "/admin/agents",
        "/admin/teams",
        "/admin/tags",
        "/admin/tokens",
        "/admin/mailboxes",
        "/admin/mail",
        "/admin/settings",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.body.contains("Нет доступа"), "{path}: {}", page.body);
    }
    let csrf = browser.csrf().await;
    let invite = browser
        .post_form(
            "/admin/agents",
            &[
                ("_csrf", &csrf),
                ("email", "new@shop.test"),
                ("name", "Новый"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(invite.status, StatusCode::FORBIDDEN);
    assert!(
        ui.app
            .store
            .find_agent_by_email("new@shop.test")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_admin_invites_an_agent_whose_one_time_password_signs_in() {
    let ui = test_ui().await;
    let principal = ui.admin_principal();
    let team = ui.app.create_team(&principal, "Доставка").await.unwrap();
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let page = browser.get("/admin/agents").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Анна Админова"));
    let csrf = page.csrf();
    let team_id = team.id.to_string();
    let answer = browser
        .post_form(
            "/admin/agents",
            &[
                ("_csrf", &csrf),
                ("email", "olga@shop.test"),
                ("name", "Ольга Новикова"),
                ("role", "supervisor"),
                ("teams", &team_id),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.contains("Ольга Новикова теперь может войти"));
    let password = text_after(&answer.body, "<code id=\"issued-secret\">").to_owned();
    assert!(password.len() >= 16, "{password}");
    let olga = ui
        .app
        .store
        .find_agent_by_email("olga@shop.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(olga.role, Role::Supervisor);
    assert_eq!(olga.team_ids, vec![team.id]);
    assert!(
        ui.app
            .sign_in("olga@shop.test", password.clone())
            .await
            .is_ok()
    );
    // Shown once: the list page does not carry it.
    let again = browser.get("/admin/agents").await;
    assert!(!again.body.contains(&password));

    // A taken e-mail comes back kept and marked.
    let taken = browser
        .post_form(
            "/admin/agents",
            &[
                ("_csrf", &csrf),
                ("email", "olga@shop.test"),
                ("name", "Другая Ольга"),
                ("role", "agent"),
            ],
        )
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.body.contains("value=\"Другая Ольга\""));
    assert!(taken.body.contains("id=\"invite-email-error\""));
    assert!(
        taken.body.contains("Этот e-mail уже занят"),
        "{}",
        taken.body
    );
}

#[tokio::test]
async fn an_admin_changes_a_role_and_teams_and_deactivates_an_agent_but_not_themselves() {
    let ui = test_ui().await;
    let principal = ui.admin_principal();
    let team = ui.app.create_team(&principal, "Возвраты").await.unwrap();
    let petr = ui.agent("petr@shop.test", vec![]).await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = browser.csrf().await;
    let team_id = team.id.to_string();
    let saved = browser
        .post_form(
            &format!("/admin/agents/{}", petr.id),
            &[
                ("_csrf", &csrf),
                ("role", "supervisor"),
                ("teams", &team_id),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let petr_now = ui.app.get_agent(&principal, petr.id).await.unwrap();
    assert_eq!(petr_now.role, Role::Supervisor);
    assert_eq!(petr_now.team_ids, vec![team.id]);

    let off = browser
        .post_form(
            &format!("/admin/agents/{}/active", petr.id),
            &[("_csrf", &csrf), ("active", "0")],
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER);
    assert!(!ui.app.get_agent(&principal, petr.id).await.unwrap().active);
    assert!(
        ui.app
            .sign_in("petr@shop.test", PASSWORD.into())
            .await
            .is_err()
    );
    let list = browser.get("/admin/agents?done=saved").await;
    assert!(list.body.contains("Отключён"));
    assert!(list.body.contains("Сохранено."));

    let me = browser
        .post_form(
            &format!("/admin/agents/{}/active", ui.admin.id),
            &[("_csrf", &csrf), ("active", "0")],
        )
        .await;
    assert_eq!(me.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(me.body.contains("Нельзя отключить себя"));
    assert!(
        ui.app
            .get_agent(&principal, ui.admin.id)
            .await
            .unwrap()
            .active
    );
}

#[tokio::test]
async fn teams_and_tags_are_created_renamed_and_deleted_from_their_pages() {
    let ui = test_ui().await;
    let principal = ui.admin_principal();
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = browser.csrf().await;
    let created = browser
        .post_form("/admin/teams", &[("_csrf", &csrf), ("name", "Доставка")])
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER);
    let team = ui.app.list_teams(&principal).await.unwrap().remove(0);
    assert_eq!(team.name, "Доставка");
    let duplicate = browser
        .post_form("/admin/teams", &[("_csrf", &csrf), ("name", "Доставка")])
        .await;
    assert_eq!(duplicate.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(duplicate.body.contains("Это имя уже занято"));
    assert!(duplicate.body.contains("aria-invalid=\"true\""));
    let renamed = browser
        .post_form(
            &format!("/admin/teams/{}", team.id),
            &[("_csrf", &csrf), ("name", "Логистика")],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        ui.app.get_team(&principal, team.id).await.unwrap().name,
        "Логистика"
    );
    let deleted = browser
        .post_form(
            &format!("/admin/teams/{}/delete", team.id),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER);
    assert!(ui.app.list_teams(&principal).await.unwrap().is_empty());

    let tag = browser
        .post_form("/admin/tags", &[("_csrf", &csrf), ("name", "Возврат")])
        .await;
    assert_eq!(tag.status, StatusCode::SEE_OTHER);
    let tags = ui.app.list_tags(&principal).await.unwrap();
    assert_eq!(tags.len(), 1);
    let page = browser.get("/admin/tags").await;
    assert!(page.body.contains(&tags[0].name));
    let gone = browser
        .post_form(
            &format!("/admin/tags/{}/delete", tags[0].id),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert!(ui.app.list_tags(&principal).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_new_token_is_shown_once_works_and_stops_working_when_revoked() {
    let ui = test_ui().await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = browser.csrf().await;
    let none = browser
        .post_form("/admin/tokens", &[("_csrf", &csrf), ("name", "Магазин")])
        .await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.body.contains("Выберите хотя бы одно разрешение"));
    assert!(none.body.contains("value=\"Магазин\""), "the name is kept");
    let created = browser
        .post_form(
            "/admin/tokens",
            &[
                ("_csrf", &csrf),
                ("name", "Магазин"),
                ("scopes", "tickets:read"),
                ("scopes", "tickets:write"),
                ("days", "30"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let secret = text_after(&created.body, "<code id=\"issued-secret\">").to_owned();
    let principal = ui
        .app
        .authenticate_token(&secret)
        .await
        .expect("the token works");
    assert_eq!(principal.agent_id, ui.admin.id);
    let listed = browser.get("/admin/tokens").await;
    assert!(listed.body.contains("Магазин"));
    assert!(
        !listed.body.contains(&secret),
        "the secret is shown only once"
    );
    let token = ui
        .app
        .list_tokens(&ui.admin_principal(), ui.admin.id)
        .await
        .unwrap()
        .remove(0);
    assert!(token.expires_at.is_some());
    let revoked = browser
        .post_form(
            &format!("/admin/tokens/{}/revoke", token.id),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert!(ui.app.authenticate_token(&secret).await.is_err());
}

#[tokio::test]
async fn a_mailbox_is_listed_without_its_password_and_a_bad_url_is_kept_and_marked() {
    let ui = test_ui().await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = browser.csrf().await;
    let bad = browser
        .post_form(
            "/admin/mailboxes",
            &[
                ("_csrf", &csrf),
                ("name", "support"),
                ("address", "support@shop.test"),
                ("imap_url", "http://not-imap"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("value=\"http://not-imap\""));
    assert!(bad.body.contains("id=\"mb-imap-error\""));
    let good = browser
        .post_form(
            "/admin/mailboxes",
            &[
                ("_csrf", &csrf),
                ("name", "support"),
                ("address", "support@shop.test"),
                (
                    "imap_url",
                    "imaps://support:s3cret-pass@imap.shop.test:993/INBOX",
                ),
                ("auto_acknowledge", "1"),
            ],
        )
        .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.body);
    let page = browser.get("/admin/mailboxes").await;
    assert!(
        page.body
            .contains("imaps://support:***@imap.shop.test:993/INBOX")
    );
    assert!(!page.body.contains("s3cret-pass"));
    let mailbox = ui.app.mailboxes().await.unwrap().remove(0);
    // This test's workspace talks to no mail servers: the page says so rather than failing.
    let check = browser
        .post_form(
            &format!("/admin/mailboxes/{}/check", mailbox.id),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(check.status, StatusCode::OK);
    assert!(check.body.contains("проверить подключение отсюда нельзя"));
}

#[tokio::test]
async fn a_quarantined_email_is_listed_downloaded_raw_and_processed_again() {
    let ui = test_ui().await;
    let mailbox = ui.mailbox().await;
    // No header/body separator and no From: not a message the parser accepts.
    let raw = "this is not an e-mail at all\u{0}";
    let outcome = ui
        .app
        .ingest_email(&mailbox, raw.as_bytes().to_vec())
        .await
        .unwrap();
    let email_id = match outcome {
        otklik_app::mail::IngestOutcome::Quarantined { email_id, .. } => email_id,
        other => panic!("expected quarantine, got {other:?}"),
    };
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let page = browser.get("/admin/mail").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("1 письмо"), "{}", page.body);
    assert!(page.body.contains(&format!("/emails/{email_id}/raw")));
    let download = browser.get(&format!("/emails/{email_id}/raw")).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.body.as_bytes(), raw.as_bytes());
    assert!(
        download
            .header("content-disposition")
            .starts_with("attachment")
    );
    let csrf = page.csrf();
    let again = browser
        .post_form(
            &format!("/admin/emails/{email_id}/reprocess"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(
        again.body.contains("По-прежнему не читается"),
        "{}",
        again.body
    );
}
