//! Customers over HTTP: identities, look-ups, and explainable merge and un-merge.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    a_customer_with_several_identities_is_created_found_and_changed,
    one_identity_cannot_belong_to_two_customers,
    merging_customers_moves_identities_and_tickets_and_undoing_moves_them_back,
    a_new_ticket_for_a_merged_customer_lands_on_the_survivor,
);

async fn a_customer_with_several_identities_is_created_found_and_changed(backend: Backend) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let created = test
        .post(
            "/api/v1/customers",
            token,
            json!({
                "name": "Мария Иванова",
                "language": "ru",
                "identities": [
                    { "kind": "email", "value": "Maria@Example.ru" },
                    { "kind": "phone", "value": "8 (916) 555-12-34" },
                    { "kind": "messenger", "provider": "telegram", "value": "402117" },
                    { "kind": "marketplace_buyer", "provider": "ozon", "value": "buyer-99" },
                ],
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.str("id");
    assert_eq!(created.body["identities"].as_array().unwrap().len(), 4);

    let by_phone = test
        .get("/api/v1/customers?phone=%2B7%20916%20555%2012%2034", token)
        .await;
    assert_eq!(
        by_phone.body["items"][0]["id"],
        id.as_str(),
        "the two notations of one number match"
    );
    let by_email = test
        .get("/api/v1/customers?email=MARIA@example.ru", token)
        .await;
    assert_eq!(by_email.body["items"][0]["id"], id.as_str());

    let telegram_id = created.body["identities"][2]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let changed = test
        .patch(
            &format!("/api/v1/customers/{id}"),
            token,
            json!({
                "name": "Мария Петрова",
                "language": null,
                "add_identities": [{ "kind": "chat_visitor", "value": "visitor-7f3a" }],
                "remove_identity_ids": [telegram_id],
            }),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.str("name"), "Мария Петрова");
    assert!(changed.body["language"].is_null());
    let kinds: Vec<_> = changed.body["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        vec!["email", "phone", "marketplace_buyer", "chat_visitor"]
    );

    let audit = test
        .get(&format!("/api/v1/customers/{id}/audit"), token)
        .await;
    let actions: Vec<_> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, vec!["customer.created", "customer.updated"]);

    let bad_language = test
        .patch(
            &format!("/api/v1/customers/{id}"),
            token,
            json!({ "language": "de" }),
        )
        .await;
    assert_eq!(
        (bad_language.status, bad_language.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let bad_identity = test
        .post(
            "/api/v1/customers",
            token,
            json!({ "name": "X", "identities": [{ "kind": "messenger", "value": "1" }] }),
        )
        .await;
    assert_eq!(bad_identity.body["field"], "provider");
}

async fn one_identity_cannot_belong_to_two_customers(backend: Backend) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let first = test.post("/api/v1/customers", token, json!({ "name": "A", "identities": [{ "kind": "email", "value": "shared@example.com" }] })).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = test.post("/api/v1/customers", token, json!({ "name": "B", "identities": [{ "kind": "email", "value": "SHARED@example.com" }] })).await;
    assert_eq!(
        (second.status, second.code()),
        (StatusCode::CONFLICT, "identity_taken")
    );
    let listed = test.get("/api/v1/customers", token).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "the refused customer was not created"
    );
    let other = test
        .post("/api/v1/customers", token, json!({ "name": "C" }))
        .await;
    let taken = test
        .patch(
            &format!("/api/v1/customers/{}", other.str("id")),
            token,
            json!({ "add_identities": [{ "kind": "email", "value": "shared@example.com" }] }),
        )
        .await;
    assert_eq!(taken.code(), "identity_taken");
}

async fn merging_customers_moves_identities_and_tickets_and_undoing_moves_them_back(
    backend: Backend,
) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let by_phone = test.ticket(token, json!({ "subject": "Звонок", "body": "Перезвоните", "channel": "phone", "requester": { "kind": "phone", "value": "+79161112233", "name": "Олег" } })).await;
    let by_email = test.ticket(token, json!({ "subject": "Письмо", "body": "Где заказ?", "requester": { "kind": "email", "value": "oleg@example.ru", "name": "Олег С." } })).await;
    let source = by_phone.str("customer_id");
    let target = by_email.str("customer_id");

    let merge = test
        .post(
            &format!("/api/v1/customers/{source}/merge"),
            token,
            json!({ "into_customer_id": target }),
        )
        .await;
    assert_eq!(merge.status, StatusCode::CREATED, "{}", merge.body);
    assert_eq!(merge.body["moved_ticket_ids"], json!([by_phone.str("id")]));
    let survivor = test
        .get(&format!("/api/v1/customers/{target}"), token)
        .await;
    assert_eq!(survivor.body["identities"].as_array().unwrap().len(), 2);
    let merged = test
        .get(&format!("/api/v1/customers/{source}"), token)
        .await;
    assert_eq!(merged.str("merged_into"), target);
    let tickets = test
        .get(&format!("/api/v1/tickets?customer_id={target}"), token)
        .await;
    assert_eq!(
        tickets.body["items"].as_array().unwrap().len(),
        2,
        "the survivor has every conversation"
    );
    let history = test
        .get(&format!("/api/v1/customers/{target}/merges"), token)
        .await;
    assert_eq!(
        history.body[0]["id"], merge.body["id"],
        "the merge is explained on the survivor"
    );

    let undo = test
        .post(
            &format!("/api/v1/customer-merges/{}/undo", merge.str("id")),
            token,
            json!({}),
        )
        .await;
    assert_eq!(undo.status, StatusCode::OK, "{}", undo.body);
    assert!(undo.body["undone_at"].is_string());
    let restored = test
        .get(&format!("/api/v1/customers/{source}"), token)
        .await;
    assert!(restored.body["merged_into"].is_null());
    assert_eq!(restored.body["identities"][0]["value"], "+79161112233");
    let ticket = test
        .get(&format!("/api/v1/tickets/{}", by_phone.str("id")), token)
        .await;
    assert_eq!(ticket.str("customer_id"), source, "the ticket went back");
    let again = test
        .post(
            &format!("/api/v1/customer-merges/{}/undo", merge.str("id")),
            token,
            json!({}),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "invalid_merge")
    );
    let into_itself = test
        .post(
            &format!("/api/v1/customers/{source}/merge"),
            token,
            json!({ "into_customer_id": source }),
        )
        .await;
    assert_eq!(into_itself.code(), "invalid_merge");
}

async fn a_new_ticket_for_a_merged_customer_lands_on_the_survivor(backend: Backend) {
    let test = spawn_app(backend).await;
    let token = &test.admin_token;
    let a = test
        .post("/api/v1/customers", token, json!({ "name": "A" }))
        .await
        .str("id");
    let b = test
        .post("/api/v1/customers", token, json!({ "name": "B" }))
        .await
        .str("id");
    test.post(
        &format!("/api/v1/customers/{a}/merge"),
        token,
        json!({ "into_customer_id": b }),
    )
    .await;
    let ticket = test
        .ticket(
            token,
            json!({ "subject": "s", "body": "b", "customer_id": a }),
        )
        .await;
    assert_eq!(ticket.str("customer_id"), b);
}
