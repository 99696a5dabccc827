//! Counts already summed, kept per node while the counters stay as they were.
//!
//! Every unit that changes `ticket_counts` or `ticket_counters` also raises the counters'
//! version (a row of `count_versions`, in the same transaction), so a version read in a snapshot
//! names exactly the counter rows that snapshot sees. A count is kept with the version it was
//! summed at and served again only to a read whose own snapshot shows the same version: a change
//! committed anywhere (this node, another node, another process on the same SQLite file) is
//! seen by the next read, and what a caller just wrote is always in the count it reads next.
//!
//! A page of views then costs one tiny read instead of summing counter rows for every view of
//! every agent on every refresh, which is what makes queue counters cheap with many agents.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::TicketCountQuery;

/// Queries kept at most; a cache that grows past this is emptied (agents × their views are a
/// few thousand in the largest shops).
const MAX_ENTRIES: usize = 10_000;

/// The counts of one version of the counters.
#[derive(Debug, Default)]
pub struct CountCache {
    state: Mutex<Kept>,
    /// One turn per page of queries (by hash): see [`CountCache::recount_turn`].
    turns: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    hasher: RandomState,
    /// Counts summed and kept since the cache was made (for tests and diagnostics).
    sums: AtomicU64,
}

/// The turn to sum a page of counts again (see [`CountCache::recount_turn`]).
pub struct RecountTurn {
    _turn: tokio::sync::OwnedMutexGuard<()>,
    /// Whether another request had the turn first (its counts may be kept now).
    pub waited: bool,
}

#[derive(Debug, Default)]
struct Kept {
    version: i64,
    counts: HashMap<TicketCountQuery, i64>,
}

impl CountCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The kept count of each query at `version`, `None` where there is none.
    pub fn get(&self, version: i64, queries: &[TicketCountQuery]) -> Vec<Option<i64>> {
        let kept = self.lock();
        if kept.version != version {
            return vec![None; queries.len()];
        }
        queries
            .iter()
            .map(|query| kept.counts.get(query).copied())
            .collect()
    }

    /// Waits for the turn to sum `queries` again. After a change every agent's next page of
    /// views misses at once; requests for the same page take turns, so the first one sums it
    /// and the others, seeing [`RecountTurn::waited`], read the version again and find its
    /// counts kept. Different pages do not wait for each other.
    pub async fn recount_turn(&self, queries: &[TicketCountQuery]) -> RecountTurn {
        let key = self.hasher.hash_one(queries);
        let turn = {
            let mut turns = self
                .turns
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if turns.len() >= MAX_ENTRIES {
                // Only turns nobody holds or waits for are dropped.
                turns.retain(|_, turn| Arc::strong_count(turn) > 1);
            }
            turns.entry(key).or_default().clone()
        };
        match turn.clone().try_lock_owned() {
            Ok(turn) => RecountTurn {
                _turn: turn,
                waited: false,
            },
            Err(_) => RecountTurn {
                _turn: turn.lock_owned().await,
                waited: true,
            },
        }
    }

    /// Counts summed and kept so far.
    pub fn sums(&self) -> u64 {
        self.sums.load(Ordering::Relaxed)
    }

    /// Keeps counts summed in a snapshot whose counters' version was `version`. Counts of an
    /// older version than those kept are dropped: versions only grow.
    pub fn put(&self, version: i64, counts: impl IntoIterator<Item = (TicketCountQuery, i64)>) {
        let counts: Vec<(TicketCountQuery, i64)> = counts.into_iter().collect();
        self.sums.fetch_add(counts.len() as u64, Ordering::Relaxed);
        let mut kept = self.lock();
        if version < kept.version {
            return;
        }
        if version > kept.version {
            kept.version = version;
            kept.counts.clear();
        }
        for (query, count) in counts {
            if kept.counts.len() >= MAX_ENTRIES {
                kept.counts.clear();
            }
            kept.counts.insert(query, count);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // The map is valid after any panic mid-update (at worst it lacks an entry).
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Answers `queries` from `cache` at `version`, summing only the missing ones with `count`
/// (which sees the same snapshot as `version`) and keeping what it summed.
pub fn counts_through<E>(
    cache: &CountCache,
    version: i64,
    queries: &[TicketCountQuery],
    mut count: impl FnMut(&TicketCountQuery) -> Result<i64, E>,
) -> Result<Vec<i64>, E> {
    let kept = cache.get(version, queries);
    let mut summed = Vec::new();
    let mut counts = Vec::with_capacity(queries.len());
    for (query, kept) in queries.iter().zip(kept) {
        let n = match kept {
            Some(n) => n,
            None => {
                let n = count(query)?;
                summed.push((query.clone(), n));
                n
            }
        };
        counts.push(n);
    }
    if !summed.is_empty() {
        cache.put(version, summed);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use otklik_domain::ticket::TicketStatus;

    use super::*;

    fn open_tickets() -> TicketCountQuery {
        TicketCountQuery {
            statuses: vec![TicketStatus::Open],
            ..TicketCountQuery::default()
        }
    }

    #[test]
    fn a_count_is_served_again_only_at_the_version_it_was_summed_at() {
        let cache = CountCache::new();
        let mut sums = 0;
        let mut count = |_: &TicketCountQuery| -> Result<i64, ()> {
            sums += 1;
            Ok(7)
        };
        assert_eq!(
            counts_through(&cache, 3, &[open_tickets()], &mut count),
            Ok(vec![7])
        );
        assert_eq!(
            counts_through(&cache, 3, &[open_tickets()], &mut count),
            Ok(vec![7])
        );
        assert_eq!(sums, 1, "the second read at the same version is kept");
        assert_eq!(cache.get(4, &[open_tickets()]), vec![None]);
        assert_eq!(
            cache.get(3, &[TicketCountQuery::default()]),
            vec![None],
            "another query is not kept"
        );
    }

    #[test]
    fn counts_of_an_older_version_never_replace_newer_ones() {
        let cache = CountCache::new();
        cache.put(5, [(open_tickets(), 2)]);
        cache.put(4, [(open_tickets(), 1)]);
        assert_eq!(cache.get(5, &[open_tickets()]), vec![Some(2)]);
        assert_eq!(cache.get(4, &[open_tickets()]), vec![None]);
        cache.put(6, [(TicketCountQuery::default(), 9)]);
        assert_eq!(
            cache.get(6, &[open_tickets(), TicketCountQuery::default()]),
            vec![None, Some(9)],
            "a newer version drops every count of the older one"
        );
    }

    #[test]
    fn a_failed_sum_keeps_nothing_and_reports_the_error() {
        let cache = CountCache::new();
        let outcome = counts_through(&cache, 1, &[open_tickets()], |_| Err("disk"));
        assert_eq!(outcome, Err("disk"));
        assert_eq!(cache.get(1, &[open_tickets()]), vec![None]);
        assert_eq!(cache.sums(), 0, "nothing was kept");
    }

    /// Polls `future` once, without a runtime (the turns are tokio mutexes, which need none).
    fn poll_once<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> Option<F::Output> {
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match future.poll(&mut context) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn requests_for_the_same_page_take_turns_and_other_pages_do_not_wait() {
        let cache = CountCache::new();
        let page = [open_tickets()];
        let first = poll_once(std::pin::pin!(cache.recount_turn(&page))).expect("a free turn");
        assert!(!first.waited);
        let other = poll_once(std::pin::pin!(
            cache.recount_turn(&[TicketCountQuery::default()])
        ))
        .expect("another page does not wait");
        assert!(!other.waited);
        let mut second = std::pin::pin!(cache.recount_turn(&page));
        assert!(
            poll_once(second.as_mut()).is_none(),
            "the same page waits while its turn is taken"
        );
        drop(first);
        let second = poll_once(second.as_mut()).expect("the turn is free again");
        assert!(second.waited, "it knows another request may have summed");
    }

    #[test]
    fn only_counts_actually_summed_are_counted_as_sums() {
        let cache = CountCache::new();
        let count = |_: &TicketCountQuery| -> Result<i64, ()> { Ok(1) };
        counts_through(&cache, 1, &[open_tickets()], count).unwrap();
        counts_through(&cache, 1, &[open_tickets()], count).unwrap();
        assert_eq!(cache.sums(), 1);
    }
}
