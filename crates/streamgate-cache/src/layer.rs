//! [`CacheLayer`] and its builder.

use std::{collections::HashMap, sync::Arc, time::Duration};

use http::{HeaderName, header};
use streamgate_core::{LogLimiter, MetricsHandle};
use tower_layer::Layer;

use crate::{
    CacheStore, MemoryCacheStore, StoreError,
    flight::Flights,
    metrics::{CacheMetrics, Operation},
    service::Cache,
};

/// How one route is cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheRoute {
    pub(crate) ttl: Duration,
    pub(crate) shared: bool,
}

impl CacheRoute {
    /// Responses stay fresh for `ttl`, or less when the response's `Cache-Control` says
    /// (`s-maxage`, else `max-age`). Private: an authenticated caller's responses are kept for
    /// that caller alone.
    #[must_use]
    pub fn ttl(ttl: Duration) -> Self {
        Self { ttl, shared: false }
    }

    /// One entry for every caller, authenticated or not: for routes whose answer does not
    /// depend on who asks. Authorization still runs first when the cache sits inside it.
    #[must_use]
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }
}

/// Serves `GET` requests of the routes it is told about from its [`CacheStore`] (by default
/// this process's memory).
///
/// - **Keys:** the path and query, the values of the `vary` headers (default `Accept` and
///   `Accept-Encoding`), and, unless the route is [`shared`](CacheRoute::shared), the user id of
///   the request's `SecurityContext`. A request that carries `Authorization` or `Cookie` without
///   a security context cannot be keyed safely and is sent on uncached (`fwd=bypass`).
/// - **Stored:** `200` responses whose body fits `max_body_bytes`, without `Set-Cookie`, whose
///   `Cache-Control` allows it (no `no-store`, `no-cache`; `private` only in a user's own
///   entry; `max-age=0` not) and whose `Vary` names only the key's headers.
/// - **Freshness:** judged by the store: in memory on tokio's clock on every hit, so tests move
///   it with paused time; on Redis by the entry's remaining TTL there. Hits carry `Age`,
///   `Cache-Status: streamgate; hit; ttl=N` (RFC 9211) and `X-Cache: HIT`; misses
///   `Cache-Status: streamgate; fwd=uri-miss` (`; stored` when kept). A request with
///   `Cache-Control: no-cache` is sent on and its response stored (`fwd=request; stored`);
///   `no-store` is sent on and nothing is stored (`fwd=request`).
/// - **Single flight:** while one request of a key is sent on, the others of that key wait for
///   its answer and are served from the cache (or, if it was not stored, sent on themselves).
///   Flights are per process: replicas sharing a Redis store each send their own first miss on.
/// - **Invalidation:** a `POST`, `PUT`, `PATCH` or `DELETE` on a cached route that succeeds
///   (2xx, 3xx) removes every entry of its path (RFC 9111 §4.4), in the shared store for every
///   replica.
/// - **Store failures:** never fail a request; see [`store`](crate::store).
///
/// Add it with `Router::layer` (it reads the route template) inside the authorization layers,
/// so that a caller is authorized before a cached answer is returned. See the [crate
/// docs](crate) for an example.
#[derive(Debug, Clone)]
pub struct CacheLayer {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn CacheStore>,
    pub(crate) flights: Flights,
    pub(crate) routes: HashMap<Box<str>, CacheRoute>,
    pub(crate) vary: Vec<HeaderName>,
    pub(crate) max_body_bytes: usize,
    pub(crate) metrics: CacheMetrics,
    store_error_log: LogLimiter,
}

impl Shared {
    /// Counts a failed store call and logs it, at most once a second.
    pub(crate) fn store_failed(&self, operation: Operation, error: &StoreError) {
        self.metrics.store_errors(operation).increment(1);
        if self.store_error_log.allow() {
            tracing::warn!(
                %error,
                operation = operation.as_str(),
                "cache store failed; the request goes on without it (logged at most once a second)"
            );
        }
    }
}

/// Builds a [`CacheLayer`].
#[derive(Debug)]
#[must_use]
pub struct CacheLayerBuilder {
    routes: HashMap<Box<str>, CacheRoute>,
    vary: Vec<HeaderName>,
    max_entries: u64,
    max_body_bytes: usize,
    metrics: MetricsHandle,
    store: Option<Arc<dyn CacheStore>>,
}

impl CacheLayer {
    /// A cache of 10,000 entries (the seed's `max_size`) with no route yet.
    pub fn builder() -> CacheLayerBuilder {
        CacheLayerBuilder {
            routes: HashMap::new(),
            vary: vec![header::ACCEPT, header::ACCEPT_ENCODING],
            max_entries: 10_000,
            max_body_bytes: 1024 * 1024,
            metrics: MetricsHandle::global(),
            store: None,
        }
    }
}

impl CacheLayerBuilder {
    /// Caches `GET` on the route template `template` (`/items/{id}`) as `route` says.
    pub fn route(mut self, template: impl Into<String>, route: CacheRoute) -> Self {
        self.routes.insert(template.into().into_boxed_str(), route);
        self
    }

    /// The request headers whose values are part of the key (default `Accept`,
    /// `Accept-Encoding`); a response that varies on another header is not stored.
    pub fn vary(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.vary = headers.into_iter().collect();
        self
    }

    /// At most this many entries in the default memory store (default 10,000); the least
    /// useful go first. Not used with [`store`](Self::store).
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = entries;
        self
    }

    /// Bodies larger than this are sent on without being stored (default 1 MiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Where `streamgate_cache_*` are recorded (default: the global recorder).
    pub fn metrics(mut self, metrics: MetricsHandle) -> Self {
        self.metrics = metrics;
        self
    }

    /// Keeps responses in `store` instead of a [`MemoryCacheStore`] of `max_entries`: for
    /// example a `RedisCacheStore` (feature `redis`) that replicas share. Layers may share one
    /// store when they cache different routes, or the same routes the same way.
    pub fn store(mut self, store: Arc<dyn CacheStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Finishes the layer.
    pub fn build(self) -> CacheLayer {
        let store = self.store.unwrap_or_else(|| {
            let longest = self.routes.values().map(|r| r.ttl).max();
            Arc::new(MemoryCacheStore::with_metrics(
                self.max_entries,
                longest.unwrap_or_default(),
                &self.metrics,
            ))
        });
        CacheLayer {
            shared: Arc::new(Shared {
                store,
                flights: Flights::default(),
                routes: self.routes,
                vary: self.vary,
                max_body_bytes: self.max_body_bytes,
                metrics: CacheMetrics::new(&self.metrics),
                store_error_log: LogLimiter::new(Duration::from_secs(1)),
            }),
        }
    }
}

impl CacheLayer {
    /// The number of entries held now (approximate while entries are being added), when the
    /// store can say (the memory store can, a shared store does not).
    #[must_use]
    pub fn entry_count(&self) -> Option<u64> {
        self.shared.store.entry_count()
    }

    /// Whether the store answers now (see [`CacheStore::health`]), for a readiness probe.
    ///
    /// # Errors
    /// When a shared store cannot be reached or does not answer within its timeout.
    pub async fn health(&self) -> Result<(), StoreError> {
        self.shared.store.health().await
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = Cache<S>;

    fn layer(&self, inner: S) -> Cache<S> {
        Cache::new(inner, self.shared.clone())
    }
}
