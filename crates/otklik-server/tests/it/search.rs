//! Search and views over HTTP: morphology, exact tokens, filters, snippets, authorization, and
//! counters that follow every change.

use otklik_domain::agent::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    an_agent_finds_tickets_in_any_word_form_by_number_e_mail_and_prefix,
    search_results_respect_filters_and_never_show_a_hidden_ticket,
    a_merged_ticket_is_found_only_when_merged_tickets_are_asked_for,
    abusive_or_empty_queries_get_a_clear_problem,
    view_counters_follow_every_change_and_match_the_views_tickets,
    personal_views_stay_personal_and_shared_ones_need_a_supervisor,
);

fn hit_ids(reply: &Value) -> Vec<String> {
    reply["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["ticket"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn search(test: &TestApp, token: &str, query: &str) -> Value {
    let url = format!("/api/v1/search?q={}", urlencode(query));
    let reply = test.get(&url, token).await;
    assert_eq!(reply.status, StatusCode::OK, "{query:?}: {}", reply.body);
    reply.body
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

async fn an_agent_finds_tickets_in_any_word_form_by_number_e_mail_and_prefix(backend: Backend) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let delivery = test
        .ticket(token, json!({
            "subject": "Задержка доставки заказа №448812",
            "body": "Здравствуйте! Курьер так и не приехал, доставка сорвалась уже дважды.",
            "requester": { "kind": "email", "value": "olga.smirnova@example.ru", "name": "Ольга Смирнова" },
        }))
        .await;
    let refund = test
        .ticket(
            token,
            json!({
                "subject": "Refund request",
                "body": "I am still waiting for refunding my payment for order 77123.",
                "requester": { "kind": "phone", "value": "+7 916 200-30-40", "name": "John Smith" },
            }),
        )
        .await;
    let delivery_id = delivery.str("id");

    let found = search(&test, token, "доставка ").await;
    assert_eq!(hit_ids(&found), vec![delivery_id.clone()]);
    let snippet = &found["tickets"][0]["snippet"];
    let text = snippet["text"].as_str().unwrap();
    let [start, end] = [
        snippet["highlights"][0][0].as_u64().unwrap() as usize,
        snippet["highlights"][0][1].as_u64().unwrap() as usize,
    ];
    assert_eq!(
        &text[start..end],
        "доставки",
        "the subject's own word form is highlighted"
    );

    for (query, expected) in [
        ("ДОСТАВКИ ", vec![delivery_id.clone()]),
        ("заказы ", vec![delivery_id.clone()]),
        ("448812", vec![delivery_id.clone()]),
        ("44881", vec![delivery_id.clone()]),
        ("refund ", vec![refund.str("id")]),
        ("refunding ", vec![refund.str("id")]),
        ("77123 ", vec![refund.str("id")]),
        ("курьер приехал ", vec![delivery_id.clone()]),
        ("курьер refund ", vec![]),
    ] {
        assert_eq!(
            hit_ids(&search(&test, token, query).await),
            expected,
            "{query:?}"
        );
    }
    let number = delivery.body["number"].as_i64().unwrap();
    assert_eq!(
        hit_ids(&search(&test, token, &format!("#{number} ")).await),
        vec![delivery_id.clone()]
    );

    let by_email = search(&test, token, "Olga.Smirnova@example.ru").await;
    assert_eq!(by_email["customers"][0]["name"], "Ольга Смирнова");
    let by_phone = search(&test, token, "8 (916) 200-30-40").await;
    assert_eq!(by_phone["customers"][0]["name"], "John Smith");
    let by_name = search(&test, token, "смирновой ").await;
    assert_eq!(
        by_name["customers"].as_array().unwrap().len(),
        1,
        "«Смирновой» finds «Смирнова»"
    );

    // A reply is searchable at once, and the index follows a subject change.
    test.post(
        &format!("/api/v1/tickets/{}/messages", refund.str("id")),
        token,
        json!({ "body": "Возврат оформлен, деньги придут за 3 дня." }),
    )
    .await;
    assert_eq!(
        hit_ids(&search(&test, token, "возврат ").await),
        vec![refund.str("id")]
    );
    test.patch(
        &format!("/api/v1/tickets/{}", refund.str("id")),
        token,
        json!({ "subject": "Money back" }),
    )
    .await;
    assert!(hit_ids(&search(&test, token, "request ").await).is_empty());
}

async fn search_results_respect_filters_and_never_show_a_hidden_ticket(backend: Backend) {
    let test = spawn_app(backend).await;
    let admin = &test.admin_token;
    let red = test.create_team("Red").await;
    let blue = test.create_team("Blue").await;
    let (_, agent_red) = test.staff("red@shop.test", Role::Agent, &[red], &[]).await;
    let visible = test
        .ticket(admin, json!({ "subject": "Оплата не прошла", "body": "Списали дважды", "requester": { "kind": "email", "value": "v@example.ru" }, "team_id": red.to_string() }))
        .await;
    let hidden = test
        .ticket(admin, json!({ "subject": "Оплата не прошла снова", "body": "Секретный VIP клиент", "requester": { "kind": "email", "value": "h@example.ru" }, "team_id": blue.to_string() }))
        .await;
    let as_red = search(&test, &agent_red, "оплата ").await;
    assert_eq!(hit_ids(&as_red), vec![visible.str("id")]);
    let text = serde_json::to_string(&as_red).unwrap();
    assert!(
        !text.contains(&hidden.str("id")) && !text.contains("Секретный"),
        "nothing of the hidden ticket leaks"
    );
    assert!(hit_ids(&search(&test, &agent_red, "секретный ").await).is_empty());
    let as_admin = search(&test, admin, "оплата ").await;
    assert_eq!(hit_ids(&as_admin).len(), 2);
    let filtered = test
        .get(
            &format!("/api/v1/search?q=%D0%BE%D0%BF%D0%BB%D0%B0%D1%82%D0%B0&team={blue}"),
            admin,
        )
        .await;
    assert_eq!(hit_ids(&filtered.body), vec![hidden.str("id")]);
    let by_status = test
        .get(
            "/api/v1/search?q=%D0%BE%D0%BF%D0%BB%D0%B0%D1%82%D0%B0&status=solved",
            admin,
        )
        .await;
    assert!(hit_ids(&by_status.body).is_empty());
}

async fn a_merged_ticket_is_found_only_when_merged_tickets_are_asked_for(backend: Backend) {
    let test = spawn_app(backend).await;
    let admin = &test.admin_token;
    let survivor = test
        .ticket(admin, json!({ "subject": "Возврат куртки", "body": "Хочу вернуть", "requester": { "kind": "email", "value": "m@example.ru" } }))
        .await;
    let duplicate = test
        .ticket(admin, json!({ "subject": "Возврат куртки повторно", "body": "Пишу второй раз", "requester": { "kind": "email", "value": "m@example.ru" } }))
        .await;
    let merged = test
        .post(
            &format!("/api/v1/tickets/{}/merge", duplicate.str("id")),
            admin,
            json!({ "into_ticket_id": survivor.str("id") }),
        )
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);

    assert_eq!(
        hit_ids(&search(&test, admin, "повторно ").await),
        Vec::<String>::new(),
        "a merged ticket is hidden from search"
    );
    assert_eq!(
        hit_ids(&search(&test, admin, "возврат ").await),
        vec![survivor.str("id")]
    );
    let with_merged =
        |query: &str| format!("/api/v1/search?q={}&include_merged=true", urlencode(query));
    let found = test.get(&with_merged("повторно "), admin).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(hit_ids(&found.body), vec![duplicate.str("id")]);
    let number = duplicate.body["number"].as_i64().unwrap();
    let by_number = test.get(&with_merged(&format!("#{number} ")), admin).await;
    // The survivor mentions the merged number too (the merge's note), ranked below it.
    assert_eq!(
        hit_ids(&by_number.body).first(),
        Some(&duplicate.str("id")),
        "a customer may quote a merged ticket's number: {}",
        by_number.body
    );
    let bad = test
        .get("/api/v1/search?q=x&include_merged=maybe", admin)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
}

async fn abusive_or_empty_queries_get_a_clear_problem(backend: Backend) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    test.ticket(token, json!({ "subject": "Anything", "body": "b", "requester": { "kind": "email", "value": "a@example.com" } })).await;
    for (query, code) in [
        ("", "validation_failed"),
        ("*\"()", "validation_failed"),
        (&"долгий ".repeat(100), "validation_failed"),
        (
            &(0..40)
                .map(|i| format!("w{i}"))
                .collect::<Vec<_>>()
                .join(" "),
            "validation_failed",
        ),
    ] {
        let reply = test
            .get(&format!("/api/v1/search?q={}", urlencode(query)), token)
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{query:?}: {}",
            reply.body
        );
    }
    for hostile in [
        "\") OR 1=1 --",
        "NEAR(a b)",
        "a*b",
        "title:x",
        "-x",
        "'; DROP TABLE tickets; --",
    ] {
        let reply = test
            .get(&format!("/api/v1/search?q={}", urlencode(hostile)), token)
            .await;
        assert!(
            reply.status == StatusCode::OK || reply.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{hostile:?}: {} {}",
            reply.status,
            reply.body
        );
    }
    let missing = test.get("/api/v1/search", token).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    assert_eq!(
        test.get("/api/v1/tickets", token).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the data is intact"
    );
}

fn count_of(views: &Value, name: &str) -> i64 {
    views
        .as_array()
        .unwrap()
        .iter()
        .find(|view| view["name"] == name)
        .unwrap_or_else(|| panic!("no view {name} in {views}"))["count"]
        .as_i64()
        .unwrap()
}

async fn view_counters_follow_every_change_and_match_the_views_tickets(backend: Backend) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let views = test.get("/api/v1/views", token).await.body;
    assert_eq!(count_of(&views, "Unassigned"), 0);
    let mut ids = Vec::new();
    for index in 0..5 {
        let mut body = json!({ "subject": format!("T{index}"), "body": "b", "requester": { "kind": "email", "value": format!("c{index}@example.com") } });
        if index == 0 {
            body["priority"] = json!("urgent");
        }
        ids.push(test.ticket(token, body).await.str("id"));
    }
    let views = test.get("/api/v1/views", token).await.body;
    assert_eq!(
        (
            count_of(&views, "Unassigned"),
            count_of(&views, "All open"),
            count_of(&views, "Urgent"),
            count_of(&views, "My open tickets")
        ),
        (5, 5, 1, 0)
    );

    test.patch(
        &format!("/api/v1/tickets/{}", ids[1]),
        token,
        json!({ "assignee_id": test.admin.id.to_string() }),
    )
    .await;
    test.patch(
        &format!("/api/v1/tickets/{}", ids[2]),
        token,
        json!({ "status": "pending" }),
    )
    .await;
    test.post(
        &format!("/api/v1/tickets/{}/messages", ids[3]),
        token,
        json!({ "body": "done", "status": "solved" }),
    )
    .await;
    test.post(
        &format!("/api/v1/tickets/{}/merge", ids[4]),
        token,
        json!({ "into_ticket_id": ids[0] }),
    )
    .await;
    let views = test.get("/api/v1/views", token).await.body;
    assert_eq!(count_of(&views, "My open tickets"), 1);
    assert_eq!(
        count_of(&views, "Unassigned"),
        2,
        "the assigned, solved and merged ones left"
    );
    assert_eq!(count_of(&views, "All open"), 2);
    assert_eq!(count_of(&views, "Solved"), 1);
    assert_eq!(
        count_of(&views, "Pending > 2 days"),
        0,
        "pending since today"
    );

    for view in views.as_array().unwrap() {
        let listed = test
            .get(
                &format!(
                    "/api/v1/views/{}/tickets?limit=200",
                    view["id"].as_str().unwrap()
                ),
                token,
            )
            .await;
        assert_eq!(
            listed.body["items"].as_array().unwrap().len() as i64,
            view["count"].as_i64().unwrap(),
            "{}",
            view["name"]
        );
    }
}

async fn personal_views_stay_personal_and_shared_ones_need_a_supervisor(backend: Backend) {
    let test = spawn_app(backend).await;
    let (_, agent) = test.staff("a@shop.test", Role::Agent, &[], &[]).await;
    let (_, other) = test.staff("b@shop.test", Role::Agent, &[], &[]).await;
    let mine = test
        .post("/api/v1/views", &agent, json!({ "name": "Мои срочные", "filter": { "priorities": ["urgent"], "assignee": { "kind": "me" } } }))
        .await;
    assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.body);
    assert_eq!(mine.body["shared"], false);
    let shared = test
        .post(
            "/api/v1/views",
            &agent,
            json!({ "name": "Team", "filter": {}, "shared": true }),
        )
        .await;
    assert_eq!(shared.status, StatusCode::FORBIDDEN);
    let invalid = test
        .post(
            "/api/v1/views",
            &agent,
            json!({ "name": "x", "filter": { "statuses": ["solved"], "idle_days": 2 } }),
        )
        .await;
    assert_eq!(invalid.code(), "validation_failed");
    let others = test.get("/api/v1/views", &other).await.body;
    assert!(
        others
            .as_array()
            .unwrap()
            .iter()
            .all(|view| view["name"] != "Мои срочные")
    );
    let peek = test
        .get(&format!("/api/v1/views/{}/tickets", mine.str("id")), &other)
        .await;
    assert_eq!(peek.status, StatusCode::NOT_FOUND);
    let delete = test
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/views/{}", mine.str("id")),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(delete.status, StatusCode::NOT_FOUND);
    let delete = test
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/views/{}", mine.str("id")),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(delete.status, StatusCode::NO_CONTENT);
}

/// One corpus, both backends, many queries: the same tickets come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_corpus_gives_the_same_results_on_sqlite_and_postgresql() {
    let sqlite = spawn_app(Backend::Sqlite).await;
    let postgres = spawn_app(Backend::Postgres).await;
    let corpus = [
        (
            "Где мой заказ №448812?",
            "Заказ оплачен неделю назад, доставки всё нет.",
        ),
        (
            "Возврат денег за платье",
            "Платье не подошло по размеру, хочу вернуть деньги.",
        ),
        (
            "Refund not received",
            "I returned the shoes two weeks ago and still no refund.",
        ),
        (
            "Delivery delayed again",
            "The courier postponed the delivery of order 77123 twice.",
        ),
        (
            "Оплата картой не проходит",
            "При оплате заказа картой Мир выдаёт ошибку, списали дважды.",
        ),
        (
            "Размерная сетка кроссовок",
            "Подскажите, 42 размер — это сколько сантиметров?",
        ),
        (
            "Wrong size delivered",
            "Ordered size M, received XL. Please exchange.",
        ),
        (
            "Промокод не применяется",
            "Промокод WINTER2026 не работает в корзине.",
        ),
        (
            "Брак: оторвалась подошва",
            "Через неделю носки оторвалась подошва, прошу заменить или вернуть деньги.",
        ),
        (
            "Payment charged twice",
            "My card was charged twice for order 55001, please refund one payment.",
        ),
        (
            "Курьер не приехал",
            "Ждали курьера весь день, доставка сорвалась, позвоните +7 916 123-45-67.",
        ),
        (
            "Question about warranty",
            "Is the warranty for the headphones one or two years? Email me at buyer@example.com",
        ),
    ];
    for app in [&sqlite, &postgres] {
        for (index, (subject, body)) in corpus.iter().enumerate() {
            app.ticket(
                &app.admin_token,
                json!({
                    "subject": subject, "body": body,
                    "requester": { "kind": "email", "value": format!("c{index}@example.com") },
                }),
            )
            .await;
        }
    }
    let queries = [
        "заказ ",
        "заказы ",
        "доставки ",
        "доставк",
        "вернуть ",
        "возврат ",
        "refund ",
        "refunding ",
        "delivery ",
        "size ",
        "размер ",
        "оплата ",
        "payment ",
        "charged ",
        "курьер ",
        "448812",
        "77123 ",
        "5500",
        "winter2026 ",
        "подошва ",
        "warranty ",
        "buyer@example.com",
        "+79161234567",
        "8 916 123 45 67",
        "деньги вернуть ",
        "ёлка ",
    ];
    for query in queries {
        let subjects = |reply: Value| {
            let mut subjects: Vec<String> = reply["tickets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|hit| hit["ticket"]["subject"].as_str().unwrap().to_owned())
                .collect();
            subjects.sort();
            subjects
        };
        let on_sqlite = subjects(search(&sqlite, &sqlite.admin_token, query).await);
        let on_postgres = subjects(search(&postgres, &postgres.admin_token, query).await);
        assert_eq!(on_sqlite, on_postgres, "{query:?}");
    }
    let found = search(&sqlite, &sqlite.admin_token, "доставки ").await;
    assert_eq!(
        found["tickets"].as_array().unwrap().len(),
        2,
        "«доставки» finds both «доставки» and «доставка»: {found}"
    );
}
