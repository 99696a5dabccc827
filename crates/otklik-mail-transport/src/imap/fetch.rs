//! One fetch pass: select, list what is above the cursor, deliver in UID order, acknowledge.

use std::collections::HashMap;

use async_imap::types::{Fetch, Mailbox};
use futures::TryStreamExt;

use super::connection::{
    COMMAND_TIMEOUT, Session, TRANSFER_TIMEOUT, login, logout, protocol_error, timed,
};
use super::{CursorStore, ImapCursor, ImapError, ImapSettings};
use crate::sink::{DeliveryError, Handled, InboundSink};

/// At most this many messages are fetched in one `UID FETCH`…
const BATCH_MESSAGES: usize = 20;
/// …and at most this many bytes (by `RFC822.SIZE`), unless a single message is larger.
const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// What one fetch pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchReport {
    /// Messages the sink took and that were acknowledged (every [`Handled`] variant).
    pub delivered: usize,
    /// Of `delivered`: how many were new ([`Handled::Stored`]).
    pub stored: usize,
    /// Of `delivered`: how many the sink already had ([`Handled::Duplicate`]).
    pub duplicates: usize,
    /// Of `delivered`: how many the sink quarantined ([`Handled::Quarantined`]).
    pub quarantined: usize,
    /// Of `delivered`: how many the sink ignored ([`Handled::Ignored`]).
    pub ignored: usize,
    /// Messages listed but expunged by another client before their body could be fetched.
    pub vanished: usize,
    /// Set when the sink failed temporarily: the pass stopped there, the cursor stays below
    /// that UID, and the message is offered again on the next pass.
    pub deferred: Option<Deferred>,
    /// The cursor after the pass (`None` when nothing was acknowledged in this pass).
    pub cursor: Option<ImapCursor>,
}

/// The message a pass stopped at because the sink could not take it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub uid: u32,
    pub reason: DeliveryError,
}

/// Connects, logs in, selects the folder and logs out: the "test connection" button.
pub async fn test_imap(settings: &ImapSettings) -> Result<(), ImapError> {
    let mut session = login(settings).await?;
    select(&mut session, settings).await?;
    timed(settings, "LOGOUT", COMMAND_TIMEOUT, async {
        session
            .logout()
            .await
            .map_err(protocol_error(settings, "LOGOUT"))
    })
    .await
}

/// Fetches everything above the stored cursor and hands it to `sink`, in UID order.
///
/// Per message: `sink.deliver` → on `Ok`, `UID STORE +FLAGS (\Seen)` then `cursors.save`. A
/// temporary sink failure ends the pass without advancing (see [`FetchReport::deferred`]). When
/// the folder's UIDVALIDITY differs from the cursor's, the whole folder is offered again; the
/// sink's dedup makes that harmless.
pub async fn fetch_new(
    settings: &ImapSettings,
    cursors: &dyn CursorStore,
    sink: &dyn InboundSink,
) -> Result<FetchReport, ImapError> {
    let mut session = login(settings).await?;
    let result = fetch_in_session(&mut session, settings, cursors, sink, &|| false).await;
    if result.is_ok() {
        logout(settings, session).await;
    }
    result
}

/// One pass on an open session. `should_stop` is checked between messages, so a shutdown never
/// interrupts a delivery halfway.
pub(crate) async fn fetch_in_session(
    session: &mut Session,
    settings: &ImapSettings,
    cursors: &dyn CursorStore,
    sink: &dyn InboundSink,
    should_stop: &(dyn Fn() -> bool + Sync),
) -> Result<FetchReport, ImapError> {
    let mailbox = select(session, settings).await?;
    let uid_validity = mailbox.uid_validity.ok_or_else(|| ImapError::Protocol {
        host: settings.host.clone(),
        folder: settings.folder.clone(),
        operation: "SELECT",
        detail: "the server reported no UIDVALIDITY".to_owned(),
    })?;
    let stored = cursors.load().await.map_err(|source| ImapError::Cursor {
        host: settings.host.clone(),
        folder: settings.folder.clone(),
        uid: None,
        source,
    })?;
    let last_uid = match stored {
        Some(cursor) if cursor.uid_validity == uid_validity => cursor.last_uid,
        Some(cursor) => {
            tracing::warn!(
                imap = %settings.redacted(),
                old = cursor.uid_validity,
                new = uid_validity,
                "IMAP UIDVALIDITY changed; offering the whole folder again",
            );
            0
        }
        None => 0,
    };
    let mut report = FetchReport::default();
    let listed = list_above(session, settings, last_uid).await?;
    for batch in batches(&listed) {
        let mut bodies = fetch_bodies(session, settings, batch).await?;
        for &(uid, _size) in batch {
            if should_stop() {
                return Ok(report);
            }
            let Some(raw) = bodies.remove(&uid) else {
                if still_exists(session, settings, uid).await? {
                    return Err(ImapError::MissingBody {
                        host: settings.host.clone(),
                        folder: settings.folder.clone(),
                        uid,
                    });
                }
                report.vanished += 1;
                continue;
            };
            let handled = match sink.deliver(raw, None).await {
                Ok(handled) => handled,
                Err(reason) => {
                    tracing::warn!(
                        imap = %settings.redacted(), uid, %reason,
                        "sink could not take an IMAP message; it stays for the next pass",
                    );
                    report.deferred = Some(Deferred { uid, reason });
                    return Ok(report);
                }
            };
            report.count(handled);
            let flagged = mark_seen(session, settings, uid).await;
            let cursor = ImapCursor {
                uid_validity,
                last_uid: uid,
            };
            // The message is durable in the sink whether or not the flag was set: advance the
            // cursor first, then report a broken connection.
            cursors
                .save(cursor)
                .await
                .map_err(|source| ImapError::Cursor {
                    host: settings.host.clone(),
                    folder: settings.folder.clone(),
                    uid: Some(uid),
                    source,
                })?;
            report.cursor = Some(cursor);
            flagged?;
        }
    }
    Ok(report)
}

impl FetchReport {
    fn count(&mut self, handled: Handled) {
        self.delivered += 1;
        match handled {
            Handled::Stored => self.stored += 1,
            Handled::Duplicate => self.duplicates += 1,
            Handled::Quarantined => self.quarantined += 1,
            Handled::Ignored => self.ignored += 1,
        }
    }
}

pub(crate) async fn select(
    session: &mut Session,
    settings: &ImapSettings,
) -> Result<Mailbox, ImapError> {
    timed(settings, "SELECT", COMMAND_TIMEOUT, async {
        session
            .select(&settings.folder)
            .await
            .map_err(|error| match error {
                async_imap::error::Error::No(detail) => ImapError::Folder {
                    host: settings.host.clone(),
                    folder: settings.folder.clone(),
                    detail,
                },
                other => protocol_error(settings, "SELECT")(other),
            })
    })
    .await
}

/// UIDs above `last_uid` with their sizes, ascending.
async fn list_above(
    session: &mut Session,
    settings: &ImapSettings,
    last_uid: u32,
) -> Result<Vec<(u32, u64)>, ImapError> {
    let fetches = run_fetch(
        session,
        settings,
        &format!("{}:*", last_uid.saturating_add(1)),
        "(UID RFC822.SIZE)",
    )
    .await?;
    // `n:*` always matches the highest UID, even when it is below n (RFC 3501 §6.4.8), so a
    // quiet folder returns its last, already handled message: keep only UIDs above the cursor.
    let mut listed: Vec<(u32, u64)> = fetches
        .iter()
        .filter_map(|fetch| Some((fetch.uid?, u64::from(fetch.size.unwrap_or(0)))))
        .filter(|&(uid, _)| uid > last_uid)
        .collect();
    listed.sort_unstable();
    listed.dedup_by_key(|(uid, _)| *uid);
    Ok(listed)
}

/// Splits the listing into fetches bounded by count and bytes; a large message goes alone.
fn batches(listed: &[(u32, u64)]) -> Vec<&[(u32, u64)]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, &(_, size)) in listed.iter().enumerate() {
        let count = index - start;
        if count > 0 && (count >= BATCH_MESSAGES || bytes + size > BATCH_BYTES) {
            batches.push(&listed[start..index]);
            start = index;
            bytes = 0;
        }
        bytes += size;
    }
    if start < listed.len() {
        batches.push(&listed[start..]);
    }
    batches
}

async fn fetch_bodies(
    session: &mut Session,
    settings: &ImapSettings,
    batch: &[(u32, u64)],
) -> Result<HashMap<u32, Vec<u8>>, ImapError> {
    let set = batch
        .iter()
        .map(|(uid, _)| uid.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let fetches = run_fetch(session, settings, &set, "(UID BODY.PEEK[])").await?;
    // Unsolicited FETCH responses (flag changes by other clients) carry no body and are skipped.
    Ok(fetches
        .iter()
        .filter_map(|fetch| Some((fetch.uid?, fetch.body()?.to_vec())))
        .filter(|(uid, _)| batch.iter().any(|(listed, _)| listed == uid))
        .collect())
}

/// Tells "expunged meanwhile" (skip it) from "there but unreadable" (stop, do not lose it).
async fn still_exists(
    session: &mut Session,
    settings: &ImapSettings,
    uid: u32,
) -> Result<bool, ImapError> {
    let fetches = run_fetch(session, settings, &uid.to_string(), "(UID)").await?;
    Ok(fetches.iter().any(|fetch| fetch.uid == Some(uid)))
}

async fn run_fetch(
    session: &mut Session,
    settings: &ImapSettings,
    set: &str,
    query: &str,
) -> Result<Vec<Fetch>, ImapError> {
    timed(settings, "UID FETCH", TRANSFER_TIMEOUT, async {
        session
            .uid_fetch(set, query)
            .await
            .map_err(protocol_error(settings, "UID FETCH"))?
            .try_collect()
            .await
            .map_err(protocol_error(settings, "UID FETCH"))
    })
    .await
}

/// Marks a handled message `\Seen`. Only a courtesy for people reading the mailbox: a server
/// that refuses (read-only folder) is tolerated, a broken connection is reported.
async fn mark_seen(
    session: &mut Session,
    settings: &ImapSettings,
    uid: u32,
) -> Result<(), ImapError> {
    timed(settings, "UID STORE", COMMAND_TIMEOUT, async {
        let stored = async {
            session
                .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        }
        .await;
        match stored {
            Ok(_) => Ok(()),
            Err(async_imap::error::Error::No(detail) | async_imap::error::Error::Bad(detail)) => {
                tracing::warn!(
                    imap = %settings.redacted(), uid, %detail,
                    "could not flag a handled message \\Seen",
                );
                Ok(())
            }
            Err(other) => Err(protocol_error(settings, "UID STORE")(other)),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uids(batches: &[&[(u32, u64)]]) -> Vec<Vec<u32>> {
        batches
            .iter()
            .map(|batch| batch.iter().map(|(uid, _)| *uid).collect())
            .collect()
    }

    #[test]
    fn batches_are_bounded_by_message_count() {
        let listed: Vec<(u32, u64)> = (1..=45).map(|uid| (uid, 100)).collect();
        let split = batches(&listed);
        assert_eq!(
            split.iter().map(|batch| batch.len()).collect::<Vec<_>>(),
            [20, 20, 5]
        );
        assert_eq!(split.concat(), listed);
    }

    #[test]
    fn batches_are_bounded_by_bytes_and_a_huge_message_goes_alone() {
        let mb = 1024 * 1024;
        let listed = [(1, 3 * mb), (2, 4 * mb), (3, 2 * mb), (4, 50 * mb), (5, mb)];
        assert_eq!(
            uids(&batches(&listed)),
            [vec![1, 2], vec![3], vec![4], vec![5]]
        );
    }

    #[test]
    fn an_empty_listing_has_no_batches() {
        assert!(batches(&[]).is_empty());
    }
}
