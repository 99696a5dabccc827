//! Real mail servers and in-memory doubles for tests of this crate and of the server.
//!
//! - [`Dovecot`]: a private dovecot IMAP server on a free loopback port, with test users.
//! - [`SmtpSink`]: an aiosmtpd SMTP peer that keeps every message it receives.
//! - [`MemorySink`], [`MemoryCursors`]: an [`crate::InboundSink`] and a [`crate::CursorStore`]
//!   in memory, with switches for temporary failures.
//!
//! The servers are installed on first use (dovecot with apt-get, aiosmtpd with pip into
//! `$HOME/.cache/otklik/venv`), one installer at a time across processes, and killed when dropped.
//! Anything that goes wrong panics with the reason: a test never silently skips.
//!
//! The server helpers are synchronous, so they work in plain and in async tests alike (inside,
//! IMAP calls run on a runtime of their own on a helper thread). They block the calling thread:
//! in a `#[tokio::test]` whose code under test runs in the same runtime, prefer a
//! `flavor = "multi_thread"` runtime or keep the blocking calls short (the IMAP helpers are).

mod dovecot;
mod install;
mod memory;
mod smtp_sink;

pub use dovecot::Dovecot;
pub use memory::{MemoryCursors, MemorySink};
pub use smtp_sink::{ReceivedMail, SmtpSink};

use std::process::Command;
use std::time::Duration;

/// Kills a server and everything it started (it runs in its own process group).
fn kill_process_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .status();
}

/// A loopback port nobody listens on right now (the caller binds it soon after).
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|error| panic!("testkit: cannot find a free loopback port: {error}"))
}

/// Runs an async helper to completion from synchronous code, even inside an async test: on a
/// helper thread with a runtime of its own, so it never nests in the caller's runtime.
fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|error| panic!("testkit: cannot build a runtime: {error}"))
                    .block_on(future)
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Waits a little while polling a server from synchronous code.
#[allow(
    clippy::disallowed_methods,
    reason = "the testkit is synchronous on purpose and never runs on a runtime worker it owns"
)]
fn pause(duration: Duration) {
    std::thread::sleep(duration);
}
