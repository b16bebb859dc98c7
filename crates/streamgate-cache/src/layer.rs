//! [`CacheLayer`] and its builder.

use std::{collections::HashMap, sync::Arc, time::Duration};

use http::{HeaderName, header};
use moka::sync::Cache as Store;
use streamgate_core::MetricsHandle;
use tower_layer::Layer;

use crate::{
    flight::Flights, key::CacheKey, metrics::CacheMetrics, service::Cache, stored::Stored,
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

/// Serves `GET` requests of the routes it is told about from memory.
///
/// - **Keys:** the path and query, the values of the `vary` headers (default `Accept` and
///   `Accept-Encoding`), and, unless the route is [`shared`](CacheRoute::shared), the user id of
///   the request's `SecurityContext`. A request that carries `Authorization` or `Cookie` without
///   a security context cannot be keyed safely and is sent on uncached (`fwd=bypass`).
/// - **Stored:** `200` responses whose body fits `max_body_bytes`, without `Set-Cookie`, whose
///   `Cache-Control` allows it (no `no-store`, `no-cache`; `private` only in a user's own
///   entry; `max-age=0` not) and whose `Vary` names only the key's headers.
/// - **Freshness:** checked on tokio's clock on every hit, so tests move it with paused time.
///   Hits carry `Age`, `Cache-Status: streamgate; hit; ttl=N` (RFC 9211) and `X-Cache: HIT`;
///   misses `Cache-Status: streamgate; fwd=uri-miss` (`; stored` when kept). A request with
///   `Cache-Control: no-cache` is sent on and its response stored; `no-store` is sent on and
///   nothing is stored.
/// - **Single flight:** while one request of a key is sent on, the others of that key wait for
///   its answer and are served from the cache (or, if it was not stored, sent on themselves).
/// - **Invalidation:** a `POST`, `PUT`, `PATCH` or `DELETE` on a cached route that succeeds
///   (2xx, 3xx) removes every entry of its path (RFC 9111 §4.4).
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
    pub(crate) store: Store<CacheKey, Arc<Stored>>,
    pub(crate) flights: Flights,
    pub(crate) routes: HashMap<Box<str>, CacheRoute>,
    pub(crate) vary: Vec<HeaderName>,
    pub(crate) max_body_bytes: usize,
    pub(crate) metrics: CacheMetrics,
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

    /// At most this many entries (default 10,000); the least useful go first.
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

    /// Finishes the layer.
    pub fn build(self) -> CacheLayer {
        let longest = self
            .routes
            .values()
            .map(|r| r.ttl)
            .max()
            .unwrap_or_default()
            .max(Duration::from_secs(1));
        let store = Store::builder()
            .max_capacity(self.max_entries)
            // Memory is given back at the longest TTL; freshness is our own check.
            .time_to_live(longest)
            .support_invalidation_closures()
            .build();
        CacheLayer {
            shared: Arc::new(Shared {
                store,
                flights: Flights::default(),
                routes: self.routes,
                vary: self.vary,
                max_body_bytes: self.max_body_bytes,
                metrics: CacheMetrics::new(&self.metrics),
            }),
        }
    }
}

impl CacheLayer {
    /// The number of entries held now (approximate while entries are being added).
    #[must_use]
    pub fn entry_count(&self) -> u64 {
        self.shared.store.run_pending_tasks();
        self.shared.store.entry_count()
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = Cache<S>;

    fn layer(&self, inner: S) -> Cache<S> {
        Cache::new(inner, self.shared.clone())
    }
}
