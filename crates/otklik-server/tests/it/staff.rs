//! Staff over HTTP: agents, roles, teams, tags and tokens, and who may manage them.

use otklik_domain::agent::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, new_ticket, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    admins_manage_agents_teams_and_tags_and_agents_cannot,
    a_token_with_a_narrower_scope_cannot_do_more,
    revoked_expired_and_deactivated_credentials_are_refused,
    nobody_can_demote_or_deactivate_themselves,
);

async fn admins_manage_agents_teams_and_tags_and_agents_cannot(backend: Backend) {
    let test = spawn_app(backend).await;
    let admin = &test.admin_token;
    let team = test.create_team("Возвраты").await;
    let (agent_id, agent) = test
        .staff("agent@shop.test", Role::Agent, &[team], &[])
        .await;
    let (_, supervisor) = test
        .staff("lead@shop.test", Role::Supervisor, &[], &[])
        .await;

    let refused = test
        .post(
            "/api/v1/agents",
            &agent,
            json!({ "email": "x@shop.test", "name": "X", "role": "admin" }),
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let refused = test
        .post("/api/v1/teams", &agent, json!({ "name": "Mine" }))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let team_by_lead = test
        .post("/api/v1/teams", &supervisor, json!({ "name": "VIP" }))
        .await;
    assert_eq!(team_by_lead.status, StatusCode::CREATED);
    let tag = test
        .post("/api/v1/tags", &supervisor, json!({ "name": "Брак" }))
        .await;
    assert_eq!(
        (tag.status, tag.str("name").as_str()),
        (StatusCode::CREATED, "брак")
    );
    let duplicate = test
        .post("/api/v1/tags", admin, json!({ "name": "БРАК" }))
        .await;
    assert_eq!(
        (duplicate.status, duplicate.code()),
        (StatusCode::CONFLICT, "name_taken")
    );
    let escalation = test
        .patch(
            &format!("/api/v1/agents/{agent_id}"),
            &agent,
            json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(
        escalation.status,
        StatusCode::FORBIDDEN,
        "an agent cannot promote themselves"
    );

    let renamed = test
        .patch(
            &format!("/api/v1/agents/{agent_id}"),
            &agent,
            json!({ "name": "Агент Смит" }),
        )
        .await;
    assert_eq!(
        (renamed.status, renamed.str("name").as_str()),
        (StatusCode::OK, "Агент Смит"),
        "own name is self-service"
    );
    let moved = test
        .patch(
            &format!("/api/v1/agents/{agent_id}"),
            admin,
            json!({ "team_ids": [], "role": "supervisor" }),
        )
        .await;
    assert_eq!(moved.str("role"), "supervisor");
    let duplicate_email = test
        .post(
            "/api/v1/agents",
            admin,
            json!({ "email": "AGENT@shop.test", "name": "Twin", "role": "agent" }),
        )
        .await;
    assert_eq!(
        (duplicate_email.status, duplicate_email.code()),
        (StatusCode::CONFLICT, "email_taken")
    );

    let listed = test.get("/api/v1/agents", &agent).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 3);
    assert!(
        !listed.bytes.windows(6).any(|w| w == b"argon2"),
        "no password hash on the wire"
    );
    let roles = test.get("/api/v1/roles", &agent).await;
    assert_eq!(roles.body.as_array().unwrap().len(), 3);

    let ticket = test.ticket(admin, json!({ "subject": "s", "body": "b", "requester": { "kind": "email", "value": "t@example.com" }, "team_id": team.to_string() })).await;
    let deleted = test
        .call(
            Method::DELETE,
            &format!("/api/v1/teams/{team}"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let unrouted = test
        .get(&format!("/api/v1/tickets/{}", ticket.str("id")), admin)
        .await;
    assert!(unrouted.body["team_id"].is_null());
    let audit = test.get(&format!("/api/v1/audit/{team}"), admin).await;
    let actions: Vec<_> = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, vec!["team.created", "team.deleted"]);
}

async fn a_token_with_a_narrower_scope_cannot_do_more(backend: Backend) {
    let test = spawn_app(backend).await;
    let admin = &test.admin_token;
    let (_, reader) = test
        .staff("reader@shop.test", Role::Admin, &[], &["tickets:read"])
        .await;
    let ticket = test
        .ticket(admin, new_ticket("Scoped", "s@example.com"))
        .await;
    let read = test
        .get(&format!("/api/v1/tickets/{}", ticket.str("id")), &reader)
        .await;
    assert_eq!(read.status, StatusCode::OK);
    let write = test
        .patch(
            &format!("/api/v1/tickets/{}", ticket.str("id")),
            &reader,
            json!({ "priority": "high" }),
        )
        .await;
    assert_eq!(
        (write.status, write.code()),
        (StatusCode::FORBIDDEN, "insufficient_scope")
    );
    let customers = test.get("/api/v1/customers", &reader).await;
    assert_eq!(customers.code(), "insufficient_scope");
    let staff = test
        .post(
            "/api/v1/agents",
            &reader,
            json!({ "email": "y@shop.test", "name": "Y", "role": "agent" }),
        )
        .await;
    assert_eq!(
        staff.code(),
        "insufficient_scope",
        "an admin's read-only token cannot manage staff"
    );
    let unchanged = test
        .get(&format!("/api/v1/tickets/{}", ticket.str("id")), admin)
        .await;
    assert_eq!(unchanged.str("priority"), "normal");
    let unknown_scope = test
        .post(
            &format!("/api/v1/agents/{}/tokens", test.admin.id),
            admin,
            json!({ "name": "x", "scopes": ["tickets:delete"] }),
        )
        .await;
    assert_eq!(unknown_scope.code(), "validation_failed");
}

async fn revoked_expired_and_deactivated_credentials_are_refused(backend: Backend) {
    let test = spawn_app(backend).await;
    let admin = &test.admin_token;
    let (agent_id, agent) = test.staff("temp@shop.test", Role::Agent, &[], &[]).await;
    assert_eq!(
        test.get("/api/v1/agents/me", &agent).await.status,
        StatusCode::OK
    );

    let second = test
        .post(
            &format!("/api/v1/agents/{agent_id}/tokens"),
            &agent,
            json!({ "name": "laptop", "scopes": ["tickets:read"] }),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED);
    let second_token = second.str("token");
    assert!(second_token.starts_with("otk_"));
    let tokens = test
        .get(&format!("/api/v1/agents/{agent_id}/tokens"), &agent)
        .await;
    assert!(
        !tokens
            .bytes
            .windows(second_token.len())
            .any(|w| w == second_token.as_bytes()),
        "a secret is shown once only"
    );
    let revoked = test
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", second.str("id")),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        test.get("/api/v1/agents/me", &second_token).await.status,
        StatusCode::UNAUTHORIZED
    );

    let past = test.post(&format!("/api/v1/agents/{agent_id}/tokens"), &agent, json!({ "name": "old", "scopes": ["tickets:read"], "expires_at": "2020-01-01T00:00:00Z" })).await;
    assert_eq!(past.code(), "validation_failed");

    test.patch(
        &format!("/api/v1/agents/{agent_id}"),
        admin,
        json!({ "active": false }),
    )
    .await;
    let after = test.get("/api/v1/agents/me", &agent).await;
    assert_eq!(
        (after.status, after.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert_eq!(after.headers["www-authenticate"], "Bearer");
    let forged = test
        .get("/api/v1/agents/me", "otk_forged-token-value")
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    let assign = test.ticket(admin, new_ticket("x", "x@example.com")).await;
    let to_inactive = test
        .patch(
            &format!("/api/v1/tickets/{}", assign.str("id")),
            admin,
            json!({ "assignee_id": agent_id }),
        )
        .await;
    assert_eq!(to_inactive.code(), "invalid_reference");
}

async fn nobody_can_demote_or_deactivate_themselves(backend: Backend) {
    let test = spawn_app(backend).await;
    let me = format!("/api/v1/agents/{}", test.admin.id);
    let demote = test
        .patch(&me, &test.admin_token, json!({ "role": "agent" }))
        .await;
    assert_eq!(demote.code(), "validation_failed");
    let deactivate = test
        .patch(&me, &test.admin_token, json!({ "active": false }))
        .await;
    assert_eq!(deactivate.code(), "validation_failed");
    assert_eq!(
        test.get("/api/v1/agents/me", &test.admin_token)
            .await
            .str("role"),
        "admin"
    );
}
