//! Rate limits of the anonymous widget API (per node, in memory: GCRA buckets from
//! `governor`). They bound what one browser or one address can make the helpdesk store.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use otklik_app::AppError;
use otklik_domain::ids::VisitorId;

/// How much anonymous traffic one node accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WidgetLimits {
    /// New visitor sessions per IP address per minute (burst of the same size).
    pub visitors_per_ip_per_minute: u32,
    /// Messages, files, typing and read marks per visitor per minute (burst of the same size).
    pub actions_per_visitor_per_minute: u32,
}

impl Default for WidgetLimits {
    fn default() -> Self {
        WidgetLimits {
            visitors_per_ip_per_minute: 30,
            actions_per_visitor_per_minute: 120,
        }
    }
}

pub(super) struct Limiters {
    visitors: DefaultKeyedRateLimiter<IpAddr>,
    actions: DefaultKeyedRateLimiter<VisitorId>,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters").finish_non_exhaustive()
    }
}

fn per_minute(count: u32) -> Quota {
    let count = NonZeroU32::new(count.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_minute(count).allow_burst(count)
}

fn refused(wait: std::time::Duration) -> AppError {
    AppError::RateLimited {
        message: "too many requests; slow down".into(),
        retry_after_seconds: wait.as_secs().max(1),
    }
}

impl Limiters {
    pub(super) fn new(limits: WidgetLimits) -> Limiters {
        Limiters {
            visitors: RateLimiter::keyed(per_minute(limits.visitors_per_ip_per_minute)),
            actions: RateLimiter::keyed(per_minute(limits.actions_per_visitor_per_minute)),
        }
    }

    pub(super) fn new_visitor(&self, ip: IpAddr) -> Result<(), AppError> {
        self.visitors.check_key(&ip).map_err(|not_until| {
            refused(not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            )))
        })?;
        if self.visitors.len() > 100_000 {
            self.visitors.retain_recent();
        }
        Ok(())
    }

    pub(super) fn action(&self, visitor_id: VisitorId) -> Result<(), AppError> {
        self.actions.check_key(&visitor_id).map_err(|not_until| {
            refused(not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            )))
        })?;
        if self.actions.len() > 100_000 {
            self.actions.retain_recent();
        }
        Ok(())
    }
}
