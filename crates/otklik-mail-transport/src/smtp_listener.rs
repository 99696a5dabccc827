//! The inbound SMTP listener: accepts mail for our domains only and answers `250` to DATA only
//! after the sink stored the message.
//!
//! Commands are parsed by `smtp-proto` (Stalwart's parser) and DATA is dot-unstuffed by its
//! `DataReceiver`; this module runs the sessions on tokio with limits on line length, message
//! size, recipients, errors, time and concurrent sessions. TLS is left to a real MTA in front
//! (Postfix relaying to this port), so neither STARTTLS nor AUTH is offered.

mod session;

use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::sink::InboundSink;

/// What the listener accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpListenerConfig {
    /// Our name in the greeting and EHLO reply.
    pub hostname: String,
    /// Recipient domains we take mail for (case-insensitive, exact: no subdomains). Everything
    /// else is refused with `550`, so the listener is never an open relay.
    pub accepted_domains: Vec<String>,
    /// Advertised with `SIZE` and enforced (`552`).
    pub max_message_bytes: usize,
    /// Recipients per message; more get `452` (RFC 5321 §4.5.3.1.10), and the client sends the
    /// rest in another transaction.
    pub max_recipients: usize,
}

/// Protocol limits beyond [`SmtpListenerConfig`]; the defaults follow RFC 5321 §4.5.3.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSessionLimits {
    /// Waiting for the next command line (RFC 5321: 5 minutes).
    pub command_timeout: Duration,
    /// Receiving the whole message after `354` (RFC 5321: 3 minutes per block, 10 overall).
    pub data_timeout: Duration,
    /// Waiting for the sink; on expiry the client gets `451` and retries.
    pub deliver_timeout: Duration,
    /// Sessions served at once; more connections get `421` and retry later.
    pub max_sessions: usize,
    /// Rejected commands per session before it is closed with `421`.
    pub max_errors: usize,
    /// After shutdown, how long running sessions may finish (a delivery in progress completes).
    pub shutdown_grace: Duration,
}

impl Default for SmtpSessionLimits {
    fn default() -> Self {
        Self {
            command_timeout: Duration::from_secs(5 * 60),
            data_timeout: Duration::from_secs(10 * 60),
            deliver_timeout: Duration::from_secs(5 * 60),
            max_sessions: 200,
            max_errors: 10,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serves SMTP on `listener` with [`SmtpSessionLimits::default`] until `shutdown` resolves.
pub async fn serve_smtp(
    listener: TcpListener,
    config: SmtpListenerConfig,
    sink: Arc<dyn InboundSink>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_smtp_with_limits(
        listener,
        config,
        SmtpSessionLimits::default(),
        sink,
        shutdown,
    )
    .await
}

/// Serves SMTP on `listener` until `shutdown` resolves. Then it stops accepting, lets each
/// session finish its current command (idle sessions get `421`), waits up to
/// [`SmtpSessionLimits::shutdown_grace`] and returns.
///
/// Accept errors (such as running out of file descriptors) are logged and retried, so this only
/// returns on shutdown.
pub async fn serve_smtp_with_limits(
    listener: TcpListener,
    config: SmtpListenerConfig,
    limits: SmtpSessionLimits,
    sink: Arc<dyn InboundSink>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let shared = Arc::new(session::Shared::new(config, limits, sink));
    let permits = Arc::new(Semaphore::new(shared.limits.max_sessions));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(joined) = sessions.join_next(), if !sessions.is_empty() => log_join(joined),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Replies are small writes answered by the client's next command: with
                    // Nagle's algorithm each could wait for a delayed ACK (~40 ms).
                    let _ = stream.set_nodelay(true);
                    match Arc::clone(&permits).try_acquire_owned() {
                        Ok(permit) => {
                            let shared = Arc::clone(&shared);
                            let stop = stop_rx.clone();
                            sessions.spawn(async move {
                                session::serve(stream, peer, shared, stop).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            sessions.spawn(session::refuse_busy(stream, peer));
                        }
                    }
                }
                Err(error) => {
                    // Typically EMFILE: pause instead of spinning, the condition usually passes.
                    tracing::warn!(%error, "SMTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(shared.limits.shutdown_grace, async {
        while let Some(joined) = sessions.join_next().await {
            log_join(joined);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            sessions = sessions.len(),
            "SMTP sessions still running after the shutdown grace period; aborting them",
        );
        sessions.shutdown().await;
    }
    Ok(())
}

fn log_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined
        && error.is_panic()
    {
        tracing::error!(%error, "SMTP session panicked");
    }
}
