//! Tickets over HTTP: lifecycle, idempotency, bad input, messages, attachments, merge, audit.

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, new_ticket, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    an_integrator_opens_reads_changes_and_lists_a_ticket,
    a_retried_post_with_the_same_idempotency_key_creates_one_ticket,
    concurrent_twins_with_one_idempotency_key_create_one_ticket,
    an_invalid_status_transition_is_a_problem_and_changes_nothing,
    bad_input_gets_a_problem_with_a_stable_code_and_changes_nothing,
    replies_and_notes_carry_attachments_served_as_safe_downloads,
    merging_a_ticket_moves_its_messages_and_points_to_the_survivor,
    every_change_lands_in_the_ticket_audit_history,
    the_ticket_list_filters_and_pages_without_gaps,
    a_customer_reply_reopens_a_solved_ticket_and_a_closed_ticket_refuses_changes,
);

async fn an_integrator_opens_reads_changes_and_lists_a_ticket(backend: Backend) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let team = test.create_team("Доставка").await;
    let created = test
        .ticket(token, json!({
            "subject": "  Где мой заказ №448812? ",
            "body": "Заказ не пришёл, трек RA123456789RU",
            "requester": { "kind": "email", "value": "Anna.Petrova@Example.RU", "name": "Анна Петрова" },
            "channel": "email",
            "priority": "high",
            "tags": ["Доставка", "vip"],
        }))
        .await;
    assert_eq!(created.str("subject"), "Где мой заказ №448812?");
    assert_eq!(created.str("status"), "new");
    assert_eq!(created.body["tags"], json!(["vip", "доставка"]));
    let id = created.str("id");
    let number = created.body["number"].as_i64().unwrap();
    assert!(number >= 1);

    let customer = test
        .get(
            &format!("/api/v1/customers/{}", created.str("customer_id")),
            token,
        )
        .await;
    assert_eq!(customer.str("name"), "Анна Петрова");
    assert_eq!(
        customer.body["identities"][0]["value"],
        "anna.petrova@example.ru"
    );

    let changed = test
        .patch(&format!("/api/v1/tickets/{id}"), token, json!({
            "assignee_id": test.admin.id.to_string(), "team_id": team.to_string(), "priority": "urgent",
        }))
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(
        changed.str("status"),
        "open",
        "assigning a new ticket opens it"
    );
    assert_eq!(changed.str("priority"), "urgent");
    assert_eq!(changed.body["version"], 2);

    let cleared = test
        .patch(
            &format!("/api/v1/tickets/{id}"),
            token,
            json!({ "team_id": null }),
        )
        .await;
    assert_eq!(cleared.body["team_id"], serde_json::Value::Null);
    assert_eq!(
        cleared.str("assignee_id"),
        test.admin.id.to_string(),
        "an omitted field stays"
    );

    let fetched = test.get(&format!("/api/v1/tickets/{id}"), token).await;
    assert_eq!(fetched.body["number"].as_i64(), Some(number));
    let listed = test
        .get("/api/v1/tickets?status=open&assignee=me", token)
        .await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let by_customer = test
        .get(
            &format!("/api/v1/tickets?customer_id={}", created.str("customer_id")),
            token,
        )
        .await;
    assert_eq!(by_customer.body["items"][0]["id"], id.as_str());
    let missing = test
        .get(&format!("/api/v1/tickets/{}", uuid::Uuid::now_v7()), token)
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

async fn a_retried_post_with_the_same_idempotency_key_creates_one_ticket(backend: Backend) {
    let test = spawn_app(backend).await;
    let body = new_ticket("Refund not received", "ivan@example.com");
    let send = |key: &'static str, body: serde_json::Value| {
        test.client
            .post(format!("{}/api/v1/tickets", test.base_url))
            .bearer_auth(&test.admin_token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = send("order-77-create", body.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = send("order-77-create", body.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);
    let listed = test.get("/api/v1/tickets", &test.admin_token).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);

    let other_body = send(
        "order-77-create",
        new_ticket("Something else", "ivan@example.com"),
    )
    .await
    .unwrap();
    assert_eq!(other_body.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: serde_json::Value = other_body.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency_key_reused");
}

async fn concurrent_twins_with_one_idempotency_key_create_one_ticket(backend: Backend) {
    let test = spawn_app(backend).await;
    let body = new_ticket("Payment failed twice", "twins@example.com");
    let mut requests = Vec::new();
    for _ in 0..8 {
        let request = test
            .client
            .post(format!("{}/api/v1/tickets", test.base_url))
            .bearer_auth(&test.admin_token)
            .header("Idempotency-Key", "twin-key")
            .json(&body)
            .send();
        requests.push(tokio::spawn(request));
    }
    let mut ids = std::collections::BTreeSet::new();
    for request in requests {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let ticket: serde_json::Value = response.json().await.unwrap();
        ids.insert(ticket["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "every twin answers with the one ticket");
    let listed = test.get("/api/v1/tickets", &test.admin_token).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
}

async fn an_invalid_status_transition_is_a_problem_and_changes_nothing(backend: Backend) {
    let test = spawn_app(backend).await;
    let ticket = test
        .ticket(&test.admin_token, new_ticket("Wrong size", "a@example.com"))
        .await;
    let path = format!("/api/v1/tickets/{}", ticket.str("id"));
    let refused = test
        .patch(
            &path,
            &test.admin_token,
            json!({ "status": "closed", "priority": "low" }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "invalid_transition");
    assert_eq!(refused.headers["content-type"], "application/problem+json");
    assert_eq!(
        refused.body["type"],
        "urn:otklik:problem:invalid_transition"
    );
    let unchanged = test.get(&path, &test.admin_token).await;
    assert_eq!(
        (
            unchanged.str("status").as_str(),
            unchanged.str("priority").as_str()
        ),
        ("new", "normal")
    );
    assert_eq!(unchanged.body["version"], 1);
    let unknown = test
        .patch(&path, &test.admin_token, json!({ "status": "reopened" }))
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
}

async fn bad_input_gets_a_problem_with_a_stable_code_and_changes_nothing(backend: Backend) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
        ("malformed JSON", "application/json", b"{\"subject\": ".to_vec(), StatusCode::BAD_REQUEST, "malformed_json"),
        ("unknown field", "application/json", br#"{"subject":"s","body":"b","customer_id":null,"tenant_id":1}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("missing field", "application/json", br#"{"subject":"s"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("wrong media type", "text/plain", b"subject=s".to_vec(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        ("no requester", "application/json", br#"{"subject":"s","body":"b"}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        ("blank subject", "application/json", br#"{"subject":"  ","body":"b","requester":{"kind":"email","value":"a@b.ru"}}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ("bad email", "application/json", br#"{"subject":"s","body":"b","requester":{"kind":"email","value":"not-an-email"}}"#.to_vec(), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ("unknown assignee", "application/json", format!(r#"{{"subject":"s","body":"b","requester":{{"kind":"email","value":"a@b.ru"}},"assignee_id":"{}"}}"#, uuid::Uuid::now_v7()).into_bytes(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_reference"),
    ];
    for (name, content_type, body, status, code) in cases {
        let reply = test
            .post_raw("/api/v1/tickets", token, content_type, body)
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{name}: {}",
            reply.body
        );
        assert_eq!(
            reply.body["status"].as_u64(),
            Some(u64::from(status.as_u16())),
            "{name}"
        );
    }
    let (status, problem) = test
        .post_announcing_length("/api/v1/tickets", token, otklik_web::MAX_BODY_BYTES + 1)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (413, Some("payload_too_large")),
        "{problem}"
    );
    let listed = test.get("/api/v1/tickets", token).await;
    assert!(
        listed.body["items"].as_array().unwrap().is_empty(),
        "nothing was created"
    );
    let customers = test.get("/api/v1/customers", token).await;
    assert!(
        customers.body["items"].as_array().unwrap().is_empty(),
        "no customer was created either"
    );

    let bad_query = test.get("/api/v1/tickets?status=lost", token).await;
    assert_eq!(
        (bad_query.status, bad_query.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let unknown_query = test.get("/api/v1/tickets?sort=desc", token).await;
    assert_eq!(
        (unknown_query.status, unknown_query.code()),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );
    let no_route = test.get("/api/v1/nothing-here", token).await;
    assert_eq!(
        (no_route.status, no_route.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let bad_id = test.get("/api/v1/tickets/not-a-uuid", token).await;
    assert_eq!(bad_id.status, StatusCode::NOT_FOUND);
    let anonymous = test.call(Method::GET, "/api/v1/tickets", None, None).await;
    assert_eq!(
        (anonymous.status, anonymous.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
}

async fn replies_and_notes_carry_attachments_served_as_safe_downloads(backend: Backend) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let ticket = test
        .ticket(token, new_ticket("Брак: порвался шов", "olga@example.ru"))
        .await;
    let messages_path = format!("/api/v1/tickets/{}/messages", ticket.str("id"));
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0].to_vec();
    let encode = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let reply = test
        .post(
            &messages_path,
            token,
            json!({
                "body": "Пришлите, пожалуйста, фото.",
                "status": "pending",
                "attachments": [
                    { "file_name": "../../etc/инструкция.html", "content_base64": encode(&html) },
                    { "file_name": "photo.jpg", "content_base64": encode(&png) },
                ],
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["ticket"]["status"], "pending");
    assert!(reply.body["ticket"]["first_agent_reply_at"].is_string());
    let attachments = reply.body["message"]["attachments"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        attachments[0]["file_name"], "инструкция.html",
        "the path was stripped"
    );
    assert_eq!(
        attachments[0]["content_type"], "text/html",
        "typed from the bytes, not the name"
    );
    assert_eq!(
        attachments[1]["content_type"], "image/png",
        "a .jpg name does not make it a JPEG"
    );

    let note = test
        .post(
            &messages_path,
            token,
            json!({ "body": "Клиент VIP, вернуть без фото", "visibility": "internal" }),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED);
    assert_eq!(
        note.body["ticket"]["status"], "pending",
        "a note does not change the status"
    );

    let download = test
        .get(attachments[0]["url"].as_str().unwrap(), token)
        .await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.bytes, html);
    assert!(
        download.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(download.headers["x-content-type-options"], "nosniff");
    assert_eq!(download.headers["content-type"], "text/html");
    assert!(
        download.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert!(
        download.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("filename*=UTF-8''%D0%B8")
    );

    let messages = test.get(&messages_path, token).await;
    let kinds: Vec<_> = messages
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["author_kind"].clone(), m["visibility"].clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (json!("customer"), json!("public")),
            (json!("agent"), json!("public")),
            (json!("agent"), json!("internal")),
        ]
    );

    let too_many: Vec<_> = (0..11)
        .map(|i| json!({ "file_name": format!("{i}.txt"), "content_base64": encode(b"x") }))
        .collect();
    let refused = test
        .post(
            &messages_path,
            token,
            json!({ "body": "many", "attachments": too_many }),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let bad_base64 = test
        .post(
            &messages_path,
            token,
            json!({ "body": "x", "attachments": [{ "file_name": "a", "content_base64": "%%%" }] }),
        )
        .await;
    assert_eq!(bad_base64.code(), "invalid_body");
    assert_eq!(
        test.get(&messages_path, token)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        3,
        "refused messages were not stored"
    );
}

async fn merging_a_ticket_moves_its_messages_and_points_to_the_survivor(backend: Backend) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let survivor = test
        .ticket(token, new_ticket("Where is my order?", "dup@example.com"))
        .await;
    let duplicate = test
        .ticket(token, new_ticket("Where is my order??", "dup@example.com"))
        .await;
    let merged = test
        .post(
            &format!("/api/v1/tickets/{}/merge", duplicate.str("id")),
            token,
            json!({ "into_ticket_id": survivor.str("id") }),
        )
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    assert_eq!(merged.str("id"), survivor.str("id"));

    let old = test
        .get(&format!("/api/v1/tickets/{}", duplicate.str("id")), token)
        .await;
    assert_eq!(old.str("merged_into"), survivor.str("id"));
    assert_eq!(old.str("status"), "closed");
    let messages = test
        .get(
            &format!("/api/v1/tickets/{}/messages", survivor.str("id")),
            token,
        )
        .await;
    let bodies: Vec<_> = messages
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert!(
        bodies
            .iter()
            .any(|body| body.contains(&format!("#{}", duplicate.body["number"])))
    );

    let listed = test.get("/api/v1/tickets", token).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "merged tickets are hidden from lists"
    );
    let again = test
        .post(
            &format!("/api/v1/tickets/{}/merge", duplicate.str("id")),
            token,
            json!({ "into_ticket_id": survivor.str("id") }),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "invalid_merge")
    );
    let into_itself = test
        .post(
            &format!("/api/v1/tickets/{}/merge", survivor.str("id")),
            token,
            json!({ "into_ticket_id": survivor.str("id") }),
        )
        .await;
    assert_eq!(into_itself.code(), "invalid_merge");
    let change_merged = test
        .patch(
            &format!("/api/v1/tickets/{}", duplicate.str("id")),
            token,
            json!({ "priority": "high" }),
        )
        .await;
    assert_eq!(
        (change_merged.status, change_merged.code()),
        (StatusCode::CONFLICT, "ticket_merged")
    );
}

async fn every_change_lands_in_the_ticket_audit_history(backend: Backend) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let ticket = test
        .ticket(
            token,
            new_ticket("Промокод не сработал", "promo@example.ru"),
        )
        .await;
    let path = format!("/api/v1/tickets/{}", ticket.str("id"));
    test.patch(
        &path,
        token,
        json!({ "priority": "high", "tags": ["промокод"] }),
    )
    .await;
    test.post(
        &format!("{path}/messages"),
        token,
        json!({ "body": "Начислили баллы." , "status": "solved"}),
    )
    .await;
    let audit = test.get(&format!("{path}/audit"), token).await;
    let events = audit.body.as_array().unwrap();
    let actions: Vec<_> = events
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["ticket.created", "ticket.updated", "ticket.message_added"]
    );
    assert!(
        events
            .iter()
            .all(|event| event["actor_agent_id"] == test.admin.id.to_string())
    );
    let update = &events[1]["changes"];
    assert!(
        update
            .as_array()
            .unwrap()
            .iter()
            .any(|change| change["field"] == "priority"
                && change["before"] == "normal"
                && change["after"] == "high")
    );
    let solve = &events[2]["changes"];
    assert!(
        solve
            .as_array()
            .unwrap()
            .iter()
            .any(|change| change["field"] == "status" && change["after"] == "solved")
    );
}

async fn the_ticket_list_filters_and_pages_without_gaps(backend: Backend) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let mut created = Vec::new();
    for index in 0..23 {
        let mut body = new_ticket(&format!("Заказ {index}"), &format!("c{index}@example.com"));
        if index % 3 == 0 {
            body["tags"] = json!(["возврат"]);
            body["channel"] = json!("chat");
        }
        created.push(test.ticket(token, body).await.str("id"));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/tickets?limit=5&cursor={cursor}"),
            None => "/api/v1/tickets?limit=5".to_owned(),
        };
        let page = test.get(&path, token).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created, "newest first, every ticket once");
    let tagged = test
        .get(
            "/api/v1/tickets?tag=%D0%B2%D0%BE%D0%B7%D0%B2%D1%80%D0%B0%D1%82&channel=chat",
            token,
        )
        .await;
    assert_eq!(tagged.body["items"].as_array().unwrap().len(), 8);
    let bad_cursor = test.get("/api/v1/tickets?cursor=garbage", token).await;
    assert_eq!(bad_cursor.code(), "invalid_query");
}

async fn a_customer_reply_reopens_a_solved_ticket_and_a_closed_ticket_refuses_changes(
    backend: Backend,
) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let ticket = test
        .ticket(token, new_ticket("Size exchange", "size@example.com"))
        .await;
    let path = format!("/api/v1/tickets/{}", ticket.str("id"));
    test.post(
        &format!("{path}/messages"),
        token,
        json!({ "body": "Exchanged.", "status": "solved" }),
    )
    .await;
    let reply = test
        .post(
            &format!("{path}/messages"),
            token,
            json!({ "body": "Still too small!", "author": "customer" }),
        )
        .await;
    assert_eq!(reply.body["ticket"]["status"], "open");
    assert_eq!(reply.body["message"]["author_kind"], "customer");
    assert!(reply.body["ticket"]["solved_at"].is_null());
    test.patch(&path, token, json!({ "status": "solved" }))
        .await;
    let closed = test
        .patch(&path, token, json!({ "status": "closed" }))
        .await;
    assert_eq!(closed.str("status"), "closed");
    assert!(closed.body["closed_at"].is_string());
    let refused = test
        .post(
            &format!("{path}/messages"),
            token,
            json!({ "body": "one more thing" }),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::CONFLICT, "ticket_closed")
    );
}
