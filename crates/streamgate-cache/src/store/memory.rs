//! The in-process store: moka, bounded by entries, freshness on tokio's clock.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use moka::{notification::RemovalCause, policy::EvictionPolicy, sync::Cache};
use streamgate_core::MetricsHandle;
use tokio::time::Instant;

use super::{CacheStore, Generation, Lookup, StoreError, StoreFuture};
use crate::{CacheKey, CachedResponse, Hit, normalized_path};

/// The default [`CacheStore`]: this process's memory (moka), at most a given number of entries.
///
/// Freshness is checked on tokio's clock on every lookup, so tests move it with paused time;
/// moka gives memory back at the longest TTL. Answers at once: a hit costs no allocation of its
/// own. Keeps a generation for each path invalidated lately (as many paths as entries, least
/// recently invalidated forgotten first), so that a response fetched before an invalidation is
/// not stored after it. Cheap to clone; clones share the entries.
#[derive(Debug, Clone)]
pub struct MemoryCacheStore {
    entries: Cache<CacheKey, Entry>,
    generations: Arc<Generations>,
}

/// The generation of each path invalidated lately; a path not listed has the default one.
#[derive(Debug)]
struct Generations {
    by_path: Cache<Box<str>, u64>,
    /// The last generation given out: each invalidation takes the next.
    last: AtomicU64,
}

impl Generations {
    fn of(&self, path: &str) -> Generation {
        self.by_path
            .get(path)
            .map_or_else(Generation::default, Generation::new)
    }

    fn advance(&self, path: &str) {
        let next = self.last.fetch_add(1, Ordering::Relaxed) + 1;
        self.by_path.insert(path.into(), next);
    }
}

#[derive(Debug, Clone)]
struct Entry {
    response: Arc<CachedResponse>,
    stored_at: Instant,
    ttl: Duration,
}

impl MemoryCacheStore {
    /// At most `max_entries` (the least useful go first), each kept in memory at most
    /// `longest_ttl` (at least a second); the layer's longest route TTL is the right value.
    #[must_use]
    pub fn new(max_entries: u64, longest_ttl: Duration) -> Self {
        Self::with_metrics(max_entries, longest_ttl, &MetricsHandle::global())
    }

    /// As [`new`](Self::new), counting entries evicted to make room (the cache is too small for
    /// what is asked of it) in `metrics` as `streamgate_cache_evictions_total`.
    #[must_use]
    pub fn with_metrics(max_entries: u64, longest_ttl: Duration, metrics: &MetricsHandle) -> Self {
        metrics.describe_counter(
            crate::metrics::EVICTIONS,
            "Cached responses evicted from the in-memory store to make room for others.",
        );
        let evicted = metrics.counter(crate::metrics::EVICTIONS, &[]);
        let generations = Generations {
            // Least recently invalidated forgotten first; never refused on the way in.
            by_path: Cache::builder()
                .max_capacity(max_entries.max(1024))
                .eviction_policy(EvictionPolicy::lru())
                .build(),
            last: AtomicU64::new(0),
        };
        Self {
            generations: Arc::new(generations),
            entries: Cache::builder()
                .max_capacity(max_entries)
                // Memory is given back at the longest TTL; freshness is our own check.
                .time_to_live(longest_ttl.max(Duration::from_secs(1)))
                .support_invalidation_closures()
                .eviction_listener(move |_, _, cause| {
                    if cause == RemovalCause::Size {
                        evicted.increment(1);
                    }
                })
                .build(),
        }
    }
}

impl MemoryCacheStore {
    /// Keeps `response`, already `age` old, fresh for `remaining` more: a hit found elsewhere
    /// keeps its `Age` here.
    pub(crate) fn keep_aged(
        &self,
        key: CacheKey,
        response: Arc<CachedResponse>,
        age: Duration,
        remaining: Duration,
    ) {
        let now = Instant::now();
        let (stored_at, ttl) = match now.checked_sub(age) {
            Some(stored_at) => (stored_at, age + remaining),
            None => (now, remaining),
        };
        self.entries.insert(
            key,
            Entry {
                response,
                stored_at,
                ttl,
            },
        );
    }
}

impl CacheStore for MemoryCacheStore {
    fn lookup(&self, key: &CacheKey) -> StoreFuture<Lookup> {
        let now = Instant::now();
        let hit = self.entries.get(key).and_then(|entry| {
            let age = now.saturating_duration_since(entry.stored_at);
            let remaining = entry.ttl.checked_sub(age).filter(|left| !left.is_zero())?;
            Some(Hit::new(entry.response, age, remaining))
        });
        StoreFuture::ready(Ok(match hit {
            Some(hit) => Lookup::Hit(hit),
            None => Lookup::Miss(self.generations.of(&normalized_path(key.path()))),
        }))
    }

    fn store(
        &self,
        key: CacheKey,
        response: Arc<CachedResponse>,
        ttl: Duration,
        seen: Option<Generation>,
    ) -> StoreFuture<bool> {
        let changed = |seen: Option<Generation>| {
            seen.is_some_and(|seen| self.generations.of(&normalized_path(key.path())) != seen)
        };
        if changed(seen) {
            return StoreFuture::ready(Ok(false));
        }
        let entry = Entry {
            response,
            stored_at: Instant::now(),
            ttl,
        };
        self.entries.insert(key.clone(), entry);
        // An invalidation between the check and the insert may have missed the new entry.
        if changed(seen) {
            self.entries.invalidate(&key);
            return StoreFuture::ready(Ok(false));
        }
        StoreFuture::ready(Ok(true))
    }

    fn generation(&self, path: &str) -> StoreFuture<Generation> {
        StoreFuture::ready(Ok(self.generations.of(path)))
    }

    fn invalidate(&self, path: &str) -> StoreFuture<()> {
        // The generation first: a response fetched before this is refused from now on.
        self.generations.advance(path);
        let path: Box<str> = path.into();
        let removed = self
            .entries
            .invalidate_entries_if(move |key, _| normalized_path(key.path()) == *path);
        StoreFuture::ready(
            removed
                .map(|_| ())
                .map_err(|error| StoreError::with_source("cannot invalidate", error)),
        )
    }

    fn entry_count(&self) -> Option<u64> {
        self.entries.run_pending_tasks();
        Some(self.entries.entry_count())
    }

    /// moka's count as of its last housekeeping, which it runs by itself as entries come and go.
    fn entry_estimate(&self) -> Option<u64> {
        Some(self.entries.entry_count())
    }
}
