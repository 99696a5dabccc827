//! Lists: bulk actions on ticked tickets, filters and saving one as a view, the customer list,
//! and merging and un-merging customers.

use axum::http::{Method, StatusCode};
use otklik_domain::ticket::{Priority, TicketStatus};

use crate::helpers::{ADMIN_EMAIL, test_ui};

#[tokio::test]
async fn ticked_tickets_are_assigned_prioritised_tagged_and_solved_in_bulk() {
    let ui = test_ui().await;
    let principal = ui.admin_principal();
    let one = ui.ticket("Первый", "Текст", "a@example.com").await;
    let two = ui.ticket("Второй", "Текст", "b@example.com").await;
    let untouched = ui.ticket("Третий", "Текст", "c@example.com").await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let inbox = browser.get("/inbox").await;
    let view = browser.get("/tickets?status=new").await;
    assert!(view.body.contains("id=\"bulk-form\""));
    assert!(view.body.contains(&format!(
        "name=\"ids\" value=\"{}\" form=\"bulk-form\"",
        one.id
    )));
    let csrf = view.csrf();
    let (a, b) = (one.id.to_string(), two.id.to_string());
    let back = inbox.location().to_owned();
    let assigned = browser
        .post_form(
            "/tickets/bulk",
            &[
                ("_csrf", &csrf),
                ("back", &back),
                ("ids", &a),
                ("ids", &b),
                ("assignee", "me"),
                ("action", "assign"),
            ],
        )
        .await;
    assert_eq!(assigned.status, StatusCode::SEE_OTHER);
    assert!(
        assigned.location().contains("done=bulk&ok=2&failed=0"),
        "{}",
        assigned.location()
    );
    let page = browser.get(assigned.location()).await;
    assert!(page.body.contains("Изменено 2 тикета."), "{}", page.body);
    for (action, field, value) in [
        ("priority", "priority", "urgent"),
        ("tag", "tag", "опт"),
        ("status", "status", "solved"),
    ] {
        let reply = browser
            .post_form(
                "/tickets/bulk",
                &[
                    ("_csrf", &csrf),
                    ("back", &back),
                    ("ids", &a),
                    ("ids", &b),
                    (field, value),
                    ("action", action),
                ],
            )
            .await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "{action}");
    }
    for id in [one.id, two.id] {
        let ticket = ui.app.get_ticket(&principal, id).await.unwrap();
        assert_eq!(ticket.assignee_id, Some(ui.admin.id));
        assert_eq!(ticket.priority, Priority::Urgent);
        assert_eq!(ticket.tags, vec!["опт".to_owned()]);
        assert_eq!(ticket.status, TicketStatus::Solved);
    }
    let third = ui.app.get_ticket(&principal, untouched.id).await.unwrap();
    assert_eq!(
        third.version, untouched.version,
        "an unticked ticket is untouched"
    );

    // A change a ticket cannot take is counted, not fatal: a closed ticket cannot reopen.
    ui.app
        .update_ticket(
            &principal,
            one.id,
            otklik_domain::ticket::TicketPatch {
                status: Some(TicketStatus::Closed),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mixed = browser
        .post_form(
            "/tickets/bulk",
            &[
                ("_csrf", &csrf),
                ("back", &back),
                ("ids", &a),
                ("ids", &b),
                ("status", "open"),
                ("action", "status"),
            ],
        )
        .await;
    assert!(
        mixed.location().contains("ok=1&failed=1"),
        "{}",
        mixed.location()
    );
    let page = browser.get(mixed.location()).await;
    assert!(
        page.body.contains("1 тикет изменить не удалось"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn ticked_tickets_are_merged_into_the_one_chosen_after_a_preview() {
    let ui = test_ui().await;
    let principal = ui.admin_principal();
    let oldest = ui.ticket("Заказ 5", "Первое", "a@example.com").await;
    let newer = ui.ticket("Заказ 5 снова", "Второе", "a@example.com").await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let csrf = browser.csrf().await;
    let (a, b) = (oldest.id.to_string(), newer.id.to_string());
    let preview = browser
        .post_form(
            "/tickets/bulk",
            &[
                ("_csrf", &csrf),
                ("back", "/inbox"),
                ("ids", &b),
                ("ids", &a),
                ("action", "merge"),
            ],
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(
        preview
            .body
            .contains(&format!("name=\"target\" value=\"{a}\" checked")),
        "the oldest is suggested: {}",
        preview.body
    );
    assert!(
        ui.app
            .get_ticket(&principal, newer.id)
            .await
            .unwrap()
            .merged_into
            .is_none()
    );
    let merged = browser
        .post_form(
            "/tickets/bulk-merge",
            &[
                ("_csrf", &csrf),
                ("back", "/inbox"),
                ("ids", &a),
                ("ids", &b),
                ("target", &a),
            ],
        )
        .await;
    assert_eq!(merged.status, StatusCode::SEE_OTHER);
    assert!(
        merged
            .location()
            .starts_with(&format!("/tickets/{a}?done=merged"))
    );
    assert_eq!(
        ui.app
            .get_ticket(&principal, newer.id)
            .await
            .unwrap()
            .merged_into,
        Some(oldest.id)
    );
    let one = browser
        .post_form(
            "/tickets/bulk",
            &[("_csrf", &csrf), ("ids", &a), ("action", "merge")],
        )
        .await;
    assert_eq!(one.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(one.body.contains("Отметьте хотя бы два тикета"));
}

#[tokio::test]
async fn a_filter_narrows_the_list_and_is_saved_as_a_personal_view() {
    let ui = test_ui().await;
    let principal = ui.admin_principal();
    let urgent = ui.ticket("Срочный вопрос", "Текст", "a@example.com").await;
    ui.ticket("Обычный вопрос", "Текст", "b@example.com").await;
    ui.app
        .update_ticket(
            &principal,
            urgent.id,
            otklik_domain::ticket::TicketPatch {
                priority: Some(Priority::Urgent),
                tags: Some(vec!["vip".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let page = browser.get("/tickets?priority=urgent&assignee=none").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Срочный вопрос"));
    assert!(!page.body.contains("Обычный вопрос"));
    assert!(page.body.contains("<option value=\"urgent\" selected>"));
    let by_tag = browser.get("/tickets?tag=VIP").await;
    assert!(by_tag.body.contains("Срочный вопрос") && !by_tag.body.contains("Обычный вопрос"));
    assert!(by_tag.body.contains("нельзя сохранить как представление"));
    let bad = browser.get("/tickets?status=nonsense").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("aria-invalid=\"true\""));
    // Days of the last update, in UTC: the tickets' day finds both, the day before neither.
    let day = urgent.updated_at.to_zoned(jiff::tz::TimeZone::UTC).date();
    let same_day = browser
        .get(&format!("/tickets?updated_from={day}&updated_to={day}"))
        .await;
    assert!(same_day.body.contains("Срочный вопрос") && same_day.body.contains("Обычный вопрос"));
    assert!(same_day.body.contains("нельзя сохранить как представление"));
    let before = browser
        .get(&format!("/tickets?updated_to={}", day.yesterday().unwrap()))
        .await;
    assert_eq!(before.status, StatusCode::OK);
    assert!(!before.body.contains("Срочный вопрос") && !before.body.contains("Обычный вопрос"));
    let not_a_day = browser.get("/tickets?updated_to=вчера").await;
    assert_eq!(not_a_day.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(not_a_day.body.contains("id=\"flt-updated-to-error\""));

    let csrf = page.csrf();
    let unnamed = browser
        .post_form(
            "/views",
            &[
                ("_csrf", &csrf),
                ("priority", "urgent"),
                ("assignee", "none"),
                ("name", ""),
            ],
        )
        .await;
    assert_eq!(unnamed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unnamed.body.contains("id=\"view-name-error\""));
    let saved = browser
        .post_form(
            "/views",
            &[
                ("_csrf", &csrf),
                ("priority", "urgent"),
                ("assignee", "none"),
                ("name", "Горящие"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let view = browser.get(saved.location()).await;
    assert!(view.body.contains("Представление сохранено"));
    assert!(view.body.contains("Горящие"));
    assert!(
        view.body.contains("1 тикет"),
        "counted by the maintained counters"
    );
    assert!(view.body.contains("Срочный вопрос"));
    let views = ui.app.list_views(&principal).await.unwrap();
    let mine = views.iter().find(|v| v.view.name == "Горящие").unwrap();
    assert_eq!(mine.view.owner_agent_id, Some(ui.admin.id), "personal");
}

#[tokio::test]
async fn customers_are_listed_searched_merged_after_a_preview_and_unmerged() {
    let ui = test_ui().await;
    let principal = ui.admin_principal();
    let first = ui.ticket("Заказ", "Текст", "ivan@example.com").await;
    let second = ui
        .ticket("Ещё заказ", "Текст", "ivan.petrov@work.example")
        .await;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let list = browser.get("/customers").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains("ivan@example.com") && list.body.contains("ivan.petrov@work.example")
    );
    let found = browser.get("/customers?q=ivan.petrov@work.example").await;
    assert!(found.body.contains("ivan.petrov@work.example"));
    assert!(!found.body.contains(">ivan@example.com<"));

    let (source, target) = (second.customer_id, first.customer_id);
    let preview = browser
        .get(&format!("/customers/{source}/merge?target={target}"))
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(preview.body.contains("1 контакт"), "{}", preview.body);
    assert!(preview.body.contains("1 тикет"));
    assert!(preview.body.contains("Ещё заказ"));
    assert!(
        ui.app
            .get_customer(&principal, source)
            .await
            .unwrap()
            .merged_into
            .is_none()
    );
    let csrf = preview.csrf();
    let target_text = target.to_string();
    let merged = browser
        .post_form(
            &format!("/customers/{source}/merge"),
            &[("_csrf", &csrf), ("target", &target_text)],
        )
        .await;
    assert_eq!(merged.status, StatusCode::SEE_OTHER, "{}", merged.body);
    let page = browser.get(merged.location()).await;
    assert!(page.body.contains("Клиенты объединены"));
    assert!(
        page.body.contains("ivan.petrov@work.example"),
        "the contact moved"
    );
    assert!(page.body.contains("Отменить объединение"));
    assert_eq!(
        ui.app
            .get_ticket(&principal, second.id)
            .await
            .unwrap()
            .customer_id,
        target
    );
    let merge = ui
        .app
        .list_customer_merges(&principal, target)
        .await
        .unwrap()
        .remove(0);
    let undone = browser
        .post_form(
            &format!("/customers/merges/{}/undo", merge.id),
            &[("_csrf", &csrf), ("target", &target_text)],
        )
        .await;
    assert_eq!(undone.status, StatusCode::SEE_OTHER);
    assert_eq!(
        ui.app
            .get_ticket(&principal, second.id)
            .await
            .unwrap()
            .customer_id,
        source
    );
    let twice = browser
        .post_form(
            &format!("/customers/merges/{}/undo", merge.id),
            &[("_csrf", &csrf), ("target", &target_text)],
        )
        .await;
    assert_eq!(twice.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(twice.body.contains("нельзя отменить"));
}

#[tokio::test]
async fn an_agent_may_not_merge_customers() {
    let ui = test_ui().await;
    let first = ui.ticket("Заказ", "Текст", "ivan@example.com").await;
    let second = ui.ticket("Ещё", "Текст", "other@example.com").await;
    ui.agent("petr@shop.test", vec![]).await;
    let mut petr = ui.signed_in("petr@shop.test").await;
    let page = petr
        .get(&format!("/customers/{}", second.customer_id))
        .await;
    assert!(!page.body.contains("/merge\""), "no merge link for agents");
    let form = petr
        .get(&format!("/customers/{}/merge", second.customer_id))
        .await;
    assert_eq!(form.status, StatusCode::FORBIDDEN);
    let csrf = petr.csrf().await;
    let target = first.customer_id.to_string();
    let merged = petr
        .post_form(
            &format!("/customers/{}/merge", second.customer_id),
            &[("_csrf", &csrf), ("target", &target)],
        )
        .await;
    assert_eq!(merged.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_new_state_changing_routes_refuse_get_and_a_missing_token() {
    let ui = test_ui().await;
    let ticket = ui
        .ticket("Возврат", "Хочу вернуть", "ivan@example.com")
        .await;
    let message = ui
        .app
        .list_messages(&ui.admin_principal(), ticket.id)
        .await
        .unwrap()[0]
        .id;
    let mut browser = ui.signed_in(ADMIN_EMAIL).await;
    let id = ticket.id;
    let posts = [
        "/tickets/bulk".to_owned(),
        "/tickets/bulk-merge".to_owned(),
        "/views".to_owned(),
        format!("/tickets/{id}/presence"),
        format!("/tickets/{id}/merge"),
        format!("/tickets/{id}/split/{message}"),
        format!("/customers/{}/merge", ticket.customer_id),
        "/admin/agents".to_owned(),
        "/admin/teams".to_owned(),
        "/admin/tags".to_owned(),
        "/admin/tokens".to_owned(),
        "/admin/mailboxes".to_owned(),
    ];
    for path in &posts {
        let reply = browser
            .post_form(
                path,
                &[
                    ("ids", &id.to_string()),
                    ("action", "assign"),
                    ("name", "x"),
                ],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "POST {path} without a token"
        );
    }
    for path in [
        "/tickets/bulk".to_owned(),
        "/tickets/bulk-merge".to_owned(),
        format!("/emails/{id}/retry"),
        "/admin/emails/x/reprocess".to_owned(),
        format!("/admin/agents/{}/active", ui.admin.id),
    ] {
        let reply = browser.method(Method::GET, &path).await;
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "GET {path}");
    }
    let after = ui.app.get_ticket(&ui.admin_principal(), id).await.unwrap();
    assert_eq!(after.version, ticket.version, "nothing changed");
    assert!(
        ui.app
            .list_teams(&ui.admin_principal())
            .await
            .unwrap()
            .is_empty()
    );
}
