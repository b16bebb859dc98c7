//! The cache's metrics, held as handles.

use metrics::{Counter, Gauge};
use streamgate_core::MetricsHandle;

/// `streamgate_cache_lookups_total{result}`: hit, miss, collapsed, bypass.
pub(crate) const LOOKUPS: &str = "streamgate_cache_lookups_total";
/// `streamgate_cache_stores_total`.
pub(crate) const STORES: &str = "streamgate_cache_stores_total";
/// `streamgate_cache_invalidations_total`.
pub(crate) const INVALIDATIONS: &str = "streamgate_cache_invalidations_total";
/// `streamgate_cache_evictions_total`: entries the in-memory store evicted to make room.
pub(crate) const EVICTIONS: &str = "streamgate_cache_evictions_total";
/// `streamgate_cache_entries`: entries held, when the store can say (in memory).
pub(crate) const ENTRIES: &str = "streamgate_cache_entries";
/// `streamgate_cache_store_errors_total{operation}`: lookup, store, invalidate.
pub(crate) const STORE_ERRORS: &str = "streamgate_cache_store_errors_total";

/// What the layer asked of the store when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Lookup,
    Store,
    Invalidate,
}

impl Operation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Lookup => "lookup",
            Operation::Store => "store",
            Operation::Invalidate => "invalidate",
        }
    }
}

#[derive(Debug)]
pub(crate) struct CacheMetrics {
    pub(crate) hit: Counter,
    pub(crate) miss: Counter,
    pub(crate) collapsed: Counter,
    pub(crate) bypass: Counter,
    pub(crate) stored: Counter,
    pub(crate) invalidated: Counter,
    entries: Gauge,
    store_errors: [Counter; 3],
}

impl CacheMetrics {
    pub(crate) fn new(handle: &MetricsHandle) -> Self {
        handle.describe_counter(
            LOOKUPS,
            "Requests to cached routes, by result: hit (served from the cache), miss (sent on), \
             collapsed (waited for another request of the same key, then looked again), bypass \
             (not keyable, or the request refused cached answers).",
        );
        handle.describe_counter(STORES, "Responses stored in the cache.");
        handle.describe_gauge(
            ENTRIES,
            "Responses held by the in-memory cache store (approximate; absent for a shared store).",
        );
        handle.describe_counter(
            INVALIDATIONS,
            "Paths whose cached responses a successful unsafe request (POST, PUT, PATCH, DELETE) \
             removed.",
        );
        handle.describe_counter(
            STORE_ERRORS,
            "Cache store calls that failed, by operation: lookup (served as a miss), store (the \
             response was not kept), invalidate (the path's entries were left).",
        );
        let store_errors = [Operation::Lookup, Operation::Store, Operation::Invalidate]
            .map(|operation| handle.counter(STORE_ERRORS, &[("operation", operation.as_str())]));
        Self {
            hit: handle.counter(LOOKUPS, &[("result", "hit")]),
            miss: handle.counter(LOOKUPS, &[("result", "miss")]),
            collapsed: handle.counter(LOOKUPS, &[("result", "collapsed")]),
            bypass: handle.counter(LOOKUPS, &[("result", "bypass")]),
            stored: handle.counter(STORES, &[]),
            invalidated: handle.counter(INVALIDATIONS, &[]),
            entries: handle.gauge(ENTRIES, &[]),
            store_errors,
        }
    }

    /// Reports the store's entry count after a store or an invalidation, when it has one.
    #[allow(clippy::cast_precision_loss)] // exact up to 2^53 entries
    pub(crate) fn count_entries(&self, store: &dyn crate::CacheStore) {
        if let Some(count) = store.entry_estimate() {
            self.entries.set(count as f64);
        }
    }

    /// The counter of failed `operation`s.
    pub(crate) fn store_errors(&self, operation: Operation) -> &Counter {
        &self.store_errors[operation as usize]
    }
}
