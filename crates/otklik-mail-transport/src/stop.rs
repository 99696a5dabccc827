//! The stop signal shared by long-running loops (IMAP watch, SMTP sessions).

use tokio::sync::watch;

/// Resolves once a stop was asked for (or the sender is gone, which means the same).
///
/// Returns nothing, so no lock guard of the channel outlives the wait across later awaits.
pub(crate) async fn requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
