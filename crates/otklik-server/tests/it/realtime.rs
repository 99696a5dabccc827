//! Live change events over SSE: visibility per event, and across nodes on PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use otklik_domain::agent::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, new_ticket, spawn_app};
use crate::on_both_backends;

on_both_backends!(an_agent_hears_live_of_changes_to_tickets_it_may_see_and_of_no_others);

/// Reads an event stream until `done` says enough, or fails after ten seconds.
async fn read_events(mut response: reqwest::Response, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    let reading = async {
        while let Some(chunk) = response.chunk().await.expect("stream readable") {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if done(&text) {
                break;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .is_err()
    {
        panic!("the expected events did not arrive; got so far:\n{text}");
    }
    text
}

async fn an_agent_hears_live_of_changes_to_tickets_it_may_see_and_of_no_others(backend: Backend) {
    let test = spawn_app(backend).await;
    let admin = &test.admin_token;
    let red = test.create_team("Red").await;
    let blue = test.create_team("Blue").await;
    let (_, agent_red) = test.staff("red@shop.test", Role::Agent, &[red], &[]).await;
    let stream = test
        .client
        .get(format!("{}/api/v1/events", test.base_url))
        .bearer_auth(&agent_red)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");

    let mut hidden = new_ticket("Blue only", "blue@example.com");
    hidden["team_id"] = json!(blue.to_string());
    let hidden = test.ticket(admin, hidden).await.str("id");
    let mut visible = new_ticket("Red ticket", "red@example.com");
    visible["team_id"] = json!(red.to_string());
    let visible = test.ticket(admin, visible).await.str("id");
    test.post(
        &format!("/api/v1/tickets/{visible}/messages"),
        admin,
        json!({ "body": "On it" }),
    )
    .await;

    let text = read_events(stream, |text| text.contains("message.added")).await;
    assert!(
        text.contains("event: ticket.created") && text.contains(&visible),
        "{text}"
    );
    assert!(text.contains("event: message.added"), "{text}");
    assert!(
        !text.contains(&hidden),
        "an event about a hidden ticket reached the agent:\n{text}"
    );

    let anonymous = test
        .client
        .get(format!("{}/api/v1/events", test.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_through_one_node_reaches_a_subscriber_on_another() {
    let node_a = spawn_app(Backend::Postgres).await;
    // Node B: a second, independent store and server on the same database.
    let url = node_a.postgres_url.clone().expect("a PostgreSQL test app");
    let store_b = Arc::new(
        otklik_store_postgres::PostgresStore::connect(&url, 2)
            .await
            .expect("node B connects"),
    );
    let folder = tempfile::tempdir().unwrap();
    let app_b = otklik_app::App::new(
        store_b.clone(),
        Arc::new(otklik_store::blobs::LocalBlobStore::new(folder.path())),
        Arc::new(otklik_domain::clock::SystemClock),
    );
    let router_b = otklik_web::router(otklik_web::AppState::new(app_b, None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_b = format!("http://{}", listener.local_addr().unwrap());
    let server_b = tokio::spawn(async move { axum::serve(listener, router_b).await.unwrap() });

    let stream = node_a
        .client
        .get(format!("{base_b}/api/v1/events"))
        .bearer_auth(&node_a.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        store_b.wait_until_listening(Duration::from_secs(10)).await,
        "node B listens for other nodes' changes"
    );
    let created = node_a
        .ticket(
            &node_a.admin_token,
            new_ticket("Across nodes", "x@example.com"),
        )
        .await
        .str("id");
    let text = read_events(stream, |text| text.contains(&created)).await;
    assert!(text.contains("event: ticket.created"), "{text}");
    server_b.abort();
    store_b.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_viewing_a_ticket_on_one_node_is_seen_on_another() {
    use otklik_app::presence::{
        Activity, PresenceBeat, PresenceHub, SignalTransport, relay_signals,
    };
    let node_a = spawn_app(Backend::Postgres).await;
    let url = node_a.postgres_url.clone().expect("a PostgreSQL test app");
    let store_b = Arc::new(
        otklik_store_postgres::PostgresStore::connect(&url, 2)
            .await
            .expect("node B connects"),
    );
    assert!(store_b.wait_until_listening(Duration::from_secs(10)).await);
    let store_a = node_a.app.store.clone();
    let hub = |store: Arc<dyn otklik_store::Store>| {
        let hub = Arc::new(
            PresenceHub::default().with_transport(Arc::new(SignalTransport::new(store.clone()))),
        );
        tokio::spawn(relay_signals(hub.clone(), store));
        hub
    };
    let hub_a = hub(store_a);
    let hub_b = hub(store_b.clone());
    let ticket_id = otklik_domain::ids::TicketId::new();
    let agent_id = otklik_domain::ids::AgentId::new();
    let now = otklik_domain::clock::Clock::now(&otklik_domain::clock::SystemClock);
    let mut changes_b = hub_b.subscribe();
    hub_a.beat(PresenceBeat {
        ticket_id,
        agent_id,
        name: "Анна".into(),
        activity: Some(Activity::Replying),
        at: now,
    });
    let changed = tokio::time::timeout(Duration::from_secs(10), changes_b.recv())
        .await
        .expect("node B hears of the beat")
        .expect("the hub is open");
    assert_eq!(changed, ticket_id);
    let present = hub_b.present(ticket_id, now);
    assert_eq!(present.len(), 1);
    assert_eq!(present[0].name, "Анна");
    assert_eq!(present[0].activity, Activity::Replying);
    store_b.close();
}
