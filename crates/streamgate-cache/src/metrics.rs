//! The cache's metrics, held as handles.

use metrics::Counter;
use streamgate_core::MetricsHandle;

/// `streamgate_cache_lookups_total{result}`: hit, miss, collapsed, bypass.
pub(crate) const LOOKUPS: &str = "streamgate_cache_lookups_total";
/// `streamgate_cache_stores_total`.
pub(crate) const STORES: &str = "streamgate_cache_stores_total";
/// `streamgate_cache_invalidations_total`.
pub(crate) const INVALIDATIONS: &str = "streamgate_cache_invalidations_total";

#[derive(Debug)]
pub(crate) struct CacheMetrics {
    pub(crate) hit: Counter,
    pub(crate) miss: Counter,
    pub(crate) collapsed: Counter,
    pub(crate) bypass: Counter,
    pub(crate) stored: Counter,
    pub(crate) invalidated: Counter,
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
        handle.describe_counter(
            INVALIDATIONS,
            "Paths whose cached responses a successful unsafe request (POST, PUT, PATCH, DELETE) \
             removed.",
        );
        Self {
            hit: handle.counter(LOOKUPS, &[("result", "hit")]),
            miss: handle.counter(LOOKUPS, &[("result", "miss")]),
            collapsed: handle.counter(LOOKUPS, &[("result", "collapsed")]),
            bypass: handle.counter(LOOKUPS, &[("result", "bypass")]),
            stored: handle.counter(STORES, &[]),
            invalidated: handle.counter(INVALIDATIONS, &[]),
        }
    }
}
