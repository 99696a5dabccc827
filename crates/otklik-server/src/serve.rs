//! `otklik serve`: the HTTP server with graceful shutdown.

use std::sync::atomic::Ordering;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use otklik_web::AppState;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::node;

/// Runs the server until SIGTERM or Ctrl-C, then stops taking requests, finishes the ones in
/// flight, and closes the database (the SQLite writer commits what it holds first).
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = node::build_app(&settings).await?;
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

    let state = AppState::new(app, Some(metrics));
    let ready = state.ready.clone();
    let router = otklik_web::router(state);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            ready.store(false, Ordering::Relaxed);
            tracing::info!("shutting down: finishing requests in flight");
        })
        .await
        .context("the HTTP server failed")?;
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
