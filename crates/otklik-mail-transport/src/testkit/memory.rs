//! In-memory sink and cursor store with switches for temporary failures.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::imap::{CursorStore, ImapCursor};
use crate::sink::{DeliveryError, Envelope, Handled, InboundSink};

/// Records every delivered message; answers [`Handled::Stored`] unless told to fail.
#[derive(Default)]
pub struct MemorySink {
    state: Mutex<SinkState>,
    arrived: Notify,
}

#[derive(Default)]
struct SinkState {
    delivered: Vec<(Vec<u8>, Option<Envelope>)>,
    calls: usize,
    fail_calls: BTreeSet<usize>,
    failing: bool,
    delay: Duration,
    in_flight: usize,
    max_in_flight: usize,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the `n`th call of `deliver` (counting from 1) fail temporarily.
    pub fn fail_on_call(&self, n: usize) {
        self.lock().fail_calls.insert(n);
    }

    /// While `true`, every call fails temporarily.
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// Every call waits this long before answering (to overlap concurrent deliveries).
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// The raw messages stored so far, in order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.deliveries().into_iter().map(|(raw, _)| raw).collect()
    }

    /// The messages stored so far with their envelopes, in order.
    pub fn deliveries(&self) -> Vec<(Vec<u8>, Option<Envelope>)> {
        self.lock().delivered.clone()
    }

    /// How often `deliver` was called, failures included.
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    /// The most deliveries that were in progress at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    /// Waits until at least `n` messages are stored and returns them. Panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let waiting = async {
            loop {
                let notified = self.arrived.notified();
                let received = self.received();
                if received.len() >= n {
                    return received;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, waiting)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "testkit: the memory sink stored {} of {n} messages within {timeout:?}",
                    self.received().len()
                )
            })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl InboundSink for MemorySink {
    async fn deliver(
        &self,
        raw: Vec<u8>,
        envelope: Option<Envelope>,
    ) -> Result<Handled, DeliveryError> {
        let (call, fail, delay) = {
            let mut state = self.lock();
            state.calls += 1;
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
            let call = state.calls;
            (
                call,
                state.failing || state.fail_calls.contains(&call),
                state.delay,
            )
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut state = self.lock();
        state.in_flight -= 1;
        if fail {
            return Err(DeliveryError::Temporary(format!(
                "memory sink told to fail call {call}"
            )));
        }
        state.delivered.push((raw, envelope));
        drop(state);
        self.arrived.notify_waiters();
        Ok(Handled::Stored)
    }
}

/// Keeps one cursor and the history of every save; saves can be made to fail.
#[derive(Default)]
pub struct MemoryCursors {
    state: Mutex<CursorState>,
}

#[derive(Default)]
struct CursorState {
    current: Option<ImapCursor>,
    saves: Vec<ImapCursor>,
    failing: bool,
}

impl MemoryCursors {
    pub fn new() -> Self {
        Self::default()
    }

    /// The cursor now.
    pub fn get(&self) -> Option<ImapCursor> {
        self.lock().current
    }

    /// Replaces the cursor (to start a test from a given position).
    pub fn set(&self, cursor: Option<ImapCursor>) {
        self.lock().current = cursor;
    }

    /// While `true`, every save fails temporarily (and changes nothing).
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// Every cursor saved so far, in order.
    pub fn saves(&self) -> Vec<ImapCursor> {
        self.lock().saves.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CursorState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl CursorStore for MemoryCursors {
    async fn load(&self) -> Result<Option<ImapCursor>, DeliveryError> {
        Ok(self.lock().current)
    }

    async fn save(&self, cursor: ImapCursor) -> Result<(), DeliveryError> {
        let mut state = self.lock();
        if state.failing {
            return Err(DeliveryError::Temporary(
                "memory cursor store told to fail".to_owned(),
            ));
        }
        state.current = Some(cursor);
        state.saves.push(cursor);
        Ok(())
    }
}
