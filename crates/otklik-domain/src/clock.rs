//! Time as a dependency: production code asks a [`Clock`], tests move a [`FakeClock`].

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// The source of "now" for every rule that depends on time.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one place allowed to read the system time.
    fn now(&self) -> Timestamp {
        // Both databases keep microseconds; a finer "now" would make a value differ from itself
        // once stored and read back.
        let now = Timestamp::now();
        Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
    }
}

/// A clock that stands still until a test moves it.
#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<Timestamp>,
}

impl FakeClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now = now.checked_add(by).unwrap_or(*now);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Timestamps are stored as whole microseconds since the Unix epoch on both backends, so the
/// two databases agree to the microsecond and compare as plain integers.
pub fn to_micros(timestamp: Timestamp) -> i64 {
    timestamp.as_microsecond()
}

/// The inverse of [`to_micros`]; out-of-range values (never written by Otklik) clamp to the epoch.
pub fn from_micros(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).unwrap_or(Timestamp::UNIX_EPOCH)
}
