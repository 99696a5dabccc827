//! `otklik serve`: the HTTP server with graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use otklik_web::AppState;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::{mail, node};

/// Runs the server until SIGTERM or Ctrl-C, then stops taking requests, finishes the ones in
/// flight, and closes the database (the SQLite writer commits what it holds first).
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = node::build_app(&settings)
        .await?
        .with_mail_transport(Arc::new(mail::Transport));
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let listener = TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("cannot listen on {}", settings.bind))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, backend = ?app.store.backend(), "Otklik is serving");

    app.ensure_default_views().await?;
    if let Some(setup_token) = app.issue_setup_token_if_needed().await? {
        // Printed once, on the console of whoever started the server: there is no default
        // password, and the token only works until the first admin exists.
        println!(
            "\nOtklik has no admin yet. Within 24 hours, create one with this one-time set-up token:\n\n  \
             curl -X POST http://{address}/api/v1/setup -H 'Content-Type: application/json' \\\n    \
             -d '{{\"setup_token\":\"{setup_token}\",\"email\":\"you@example.com\",\"name\":\"Your Name\",\"password\":\"a long password\"}}'\n\n\
             or on this machine: otklik admin create --email you@example.com --name 'Your Name' --password-stdin\n"
        );
    }

    let (stop_mail, mail_stopped) = tokio::sync::watch::channel(false);
    let mail_workers = tokio::spawn(mail::run_workers(
        app.clone(),
        mail::MailWorkerOptions {
            smtp_listen: settings.smtp_listen,
            smtp_domains: settings.smtp_domains.clone(),
            max_message_bytes: otklik_app::mail::MAX_RAW_EMAIL_BYTES,
            poll_interval: Duration::from_secs(settings.mail_poll_seconds.max(1)),
            outbox_interval: Duration::from_millis(settings.outbox_interval_ms.max(10)),
            node_id: settings.node_id(),
        },
        mail_stopped,
    ));

    // Presence (who views or replies to a ticket) travels between nodes as store signals.
    let presence = Arc::new(
        otklik_app::presence::PresenceHub::default().with_transport(Arc::new(
            otklik_app::presence::SignalTransport::new(app.store.clone()),
        )),
    );
    let presence_relay = tokio::spawn(otklik_app::presence::relay_signals(
        presence.clone(),
        app.store.clone(),
    ));
    let pages = otklik_ui::router_with_presence(
        app.clone(),
        otklik_ui::UiConfig {
            secure_cookies: settings.secure_cookies,
            fallback_base_url: settings.fallback_base_url(),
            ..otklik_ui::UiConfig::default()
        },
        presence,
    );
    let chat_router = tokio::spawn(route_chats_periodically(app.clone()));
    let state =
        AppState::new(app, Some(metrics)).with_widget_limits(otklik_web::widget::WidgetLimits {
            visitors_per_ip_per_minute: settings.widget_visitors_per_ip_per_minute,
            actions_per_visitor_per_minute: settings.widget_actions_per_visitor_per_minute,
        });
    let ready = state.ready.clone();
    let router = otklik_web::router_with_pages(state, Some(pages));
    let router = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            ready.store(false, Ordering::Relaxed);
            tracing::info!("shutting down: finishing requests in flight");
        })
        .await
        .context("the HTTP server failed")?;
    chat_router.abort();
    presence_relay.abort();
    let _ = stop_mail.send(true);
    match mail_workers.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "mail workers failed"),
        Err(error) => tracing::error!(%error, "mail workers panicked"),
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Gives waiting chats to agents who became free. Use cases route at once after the changes
/// they make; this tick catches what they could not see (another node's agent went online, a
/// plan lost a race), so a waiting chat is offered within a couple of seconds on any node.
async fn route_chats_periodically(app: otklik_app::App) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = app.route_chats().await {
            tracing::warn!(%error, "routing waiting chats failed; retrying on the next tick");
        }
    }
}
