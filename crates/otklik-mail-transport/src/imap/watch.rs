//! The long-running IMAP loop: fetch, then IDLE (or sleep), reconnecting with backoff.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use async_imap::types::UnsolicitedResponse;
use tokio::sync::watch;

use super::connection::{COMMAND_TIMEOUT, Session, login, logout, protocol_error, timed};
use super::fetch::fetch_in_session;
use super::{CursorStore, ImapError, ImapSettings};
use crate::sink::InboundSink;

/// RFC 2177: re-issue IDLE at least every 29 minutes, or the server may log us out.
const IDLE_PERIOD: Duration = Duration::from_secs(25 * 60);
/// After shutdown is asked for, a pass may finish the message it is delivering for this long.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// The first reconnect (or retry after a temporary sink failure) waits this long, then doubles.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// How [`watch_imap`] waits for new mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapWatchOptions {
    /// Time between passes when IDLE is off or not offered by the server.
    pub poll_interval: Duration,
    /// Use IMAP IDLE when the server advertises it, so new mail arrives within seconds.
    pub use_idle: bool,
    /// The longest wait between reconnect attempts (the backoff doubles from one second).
    pub max_backoff: Duration,
}

impl Default for ImapWatchOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(60),
            use_idle: true,
            max_backoff: Duration::from_secs(15 * 60),
        }
    }
}

/// Watches one folder until `shutdown` resolves: a fetch pass, then IDLE until the server reports
/// a change (or [`ImapWatchOptions::poll_interval`] of sleep without IDLE), again and again.
/// Errors are logged (with the URL redacted) and followed by a reconnect with exponential backoff.
/// On shutdown, a message being delivered is finished (up to 30 s) before the function returns.
pub async fn watch_imap(
    settings: ImapSettings,
    cursors: Arc<dyn CursorStore>,
    sink: Arc<dyn InboundSink>,
    options: ImapWatchOptions,
    shutdown: impl Future<Output = ()> + Send,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut work = pin!(watch_loop(&settings, &*cursors, &*sink, &options, stop_rx));
    tokio::select! {
        () = &mut work => {}
        () = shutdown => {
            let _ = stop_tx.send(true);
            if tokio::time::timeout(SHUTDOWN_GRACE, work).await.is_err() {
                tracing::warn!(imap = %settings.redacted(), "IMAP watch did not stop in time; abandoned");
            }
        }
    }
}

async fn watch_loop(
    settings: &ImapSettings,
    cursors: &dyn CursorStore,
    sink: &dyn InboundSink,
    options: &ImapWatchOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(options.max_backoff);
    loop {
        match run_session(settings, cursors, sink, options, &mut backoff, &mut stop).await {
            Ok(()) => return,
            Err(error) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    imap = %settings.redacted(), %error, retry_in_secs = delay.as_secs(),
                    "IMAP watch failed; reconnecting",
                );
                if !sleep_unless_stopped(delay, &mut stop).await {
                    return;
                }
            }
        }
    }
}

/// One connection's life. `Ok` means "stopped on request"; errors lead to a reconnect.
async fn run_session(
    settings: &ImapSettings,
    cursors: &dyn CursorStore,
    sink: &dyn InboundSink,
    options: &ImapWatchOptions,
    backoff: &mut Backoff,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), ImapError> {
    // Connecting to a server that does not answer can take a minute; a stop need not wait.
    let mut session = tokio::select! {
        session = login(settings) => session?,
        () = crate::stop::requested(stop) => return Ok(()),
    };
    let idle = options.use_idle && supports_idle(&mut session, settings).await?;
    tracing::info!(imap = %settings.redacted(), idle, "IMAP watch connected");
    loop {
        // Anything the server announced so far is covered by the pass that follows.
        while session.unsolicited_responses.try_recv().is_ok() {}
        let stop_flag = stop.clone();
        let should_stop = move || *stop_flag.borrow();
        let report = fetch_in_session(&mut session, settings, cursors, sink, &should_stop).await?;
        if report.delivered > 0 || report.vanished > 0 {
            tracing::info!(
                imap = %settings.redacted(), delivered = report.delivered, stored = report.stored,
                duplicates = report.duplicates, quarantined = report.quarantined,
                ignored = report.ignored, vanished = report.vanished, "IMAP messages fetched",
            );
        }
        if *stop.borrow() {
            logout(settings, session).await;
            return Ok(());
        }
        let wait = if report.deferred.is_some() {
            // The sink is struggling; retry the same message after a growing pause, no IDLE.
            Some(backoff.next_delay())
        } else {
            backoff.reset();
            (!idle).then_some(options.poll_interval)
        };
        let keep_going = match wait {
            Some(delay) => sleep_unless_stopped(delay, stop).await,
            None => {
                let (returned, keep_going) = idle_until_change(session, settings, stop).await?;
                session = returned;
                keep_going
            }
        };
        if !keep_going {
            logout(settings, session).await;
            return Ok(());
        }
    }
}

async fn supports_idle(session: &mut Session, settings: &ImapSettings) -> Result<bool, ImapError> {
    timed(settings, "CAPABILITY", COMMAND_TIMEOUT, async {
        let capabilities = session
            .capabilities()
            .await
            .map_err(protocol_error(settings, "CAPABILITY"))?;
        Ok(capabilities.has_str("IDLE"))
    })
    .await
}

/// IDLEs until the server reports anything, [`IDLE_PERIOD`] passes or a stop is asked for.
/// Returns the session (after `DONE`) and whether to keep going.
async fn idle_until_change(
    session: Session,
    settings: &ImapSettings,
    stop: &mut watch::Receiver<bool>,
) -> Result<(Session, bool), ImapError> {
    let unsolicited = session.unsolicited_responses.clone();
    let mut handle = session.idle();
    timed(settings, "IDLE", COMMAND_TIMEOUT, async {
        handle
            .init()
            .await
            .map_err(protocol_error(settings, "IDLE"))
    })
    .await?;
    // Mail that arrived between the pass and IDLE was announced before IDLE started, so IDLE
    // itself will not report it: look at what was queued meanwhile.
    let mut changed = false;
    while let Ok(response) = unsolicited.try_recv() {
        changed |= matches!(response, UnsolicitedResponse::Exists(_));
    }
    let mut keep_going = true;
    if !changed {
        let (wait, interrupt) = handle.wait_with_timeout(IDLE_PERIOD);
        tokio::select! {
            outcome = tokio::time::timeout(IDLE_PERIOD, wait) => {
                // New data, the IDLE period or an interrupt all mean: DONE, then another pass.
                if let Ok(Err(error)) = outcome {
                    return Err(protocol_error(settings, "IDLE")(error));
                }
            }
            () = crate::stop::requested(stop) => keep_going = false,
        }
        drop(interrupt);
    }
    let session = timed(settings, "DONE", COMMAND_TIMEOUT, async {
        handle
            .done()
            .await
            .map_err(protocol_error(settings, "DONE"))
    })
    .await?;
    Ok((session, keep_going))
}

/// Sleeps for `delay`; returns `false` if a stop was asked for meanwhile.
async fn sleep_unless_stopped(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = crate::stop::requested(stop) => false,
    }
}

/// Exponential backoff from one second up to a ceiling.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Self {
        Self {
            next: FIRST_BACKOFF.min(max),
            max,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    fn reset(&mut self) {
        self.next = FIRST_BACKOFF.min(self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(5));
        let delays: Vec<u64> = (0..5).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_secs(1));
    }

    #[test]
    fn backoff_never_exceeds_a_ceiling_below_one_second() {
        let mut backoff = Backoff::new(Duration::from_millis(200));
        assert_eq!(backoff.next_delay(), Duration::from_millis(200));
        assert_eq!(backoff.next_delay(), Duration::from_millis(200));
    }
}
