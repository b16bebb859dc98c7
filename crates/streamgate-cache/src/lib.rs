//! A response cache for tower and axum services: per route, keyed so that a cached response
//! never reaches a caller who would not have received it.
//!
//! [`CacheLayer`] keeps `GET` responses of the routes it is given in a [`store`]
//! for a [`CacheRoute`]'s TTL or less when the response's `Cache-Control` says so; an
//! authenticated caller's entries are their own unless the route is shared; concurrent misses of
//! one key send one request on; unsafe requests that succeed remove their path's entries.
//! Responses say what happened in RFC 9211's `Cache-Status` (and `X-Cache`), hits carry `Age`.
//! [`CacheConfig`] is `optimization.cache` in the YAML file. Metrics:
//! `streamgate_cache_lookups_total{result}`, `streamgate_cache_stores_total`,
//! `streamgate_cache_invalidations_total`, `streamgate_cache_store_errors_total{operation}`,
//! `streamgate_cache_warmed_total{outcome}`, and for the in-memory store
//! `streamgate_cache_entries` and `streamgate_cache_evictions_total`. [`CacheWarmer`] fills the cache on start, on a
//! schedule and on demand (the seed's warming).
//!
//! # Stores
//!
//! - [`MemoryCacheStore`] (the default): this process's memory (moka, 10,000 entries by
//!   default), freshness on tokio's clock; a hit answers at once, with no allocation of its own.
//! - `RedisCacheStore` (feature `redis`): one Redis server shared by replicas, so that what one
//!   replica stores is a hit on the others and a write through any replica invalidates the path
//!   for all. Entries expire by Redis's own clock; invalidation is a new generation per path.
//! - Your own: implement [`CacheStore`] and give it to [`CacheLayerBuilder::store`].
//!
//! A store's failure never fails a request: a lookup error is a miss, a store error leaves the
//! response unstored; each is counted and logged at most once a second. Single flight is per
//! process, whatever the store.
//!
//! ```
//! use std::{sync::{Arc, atomic::{AtomicU32, Ordering}}, time::Duration};
//! use axum::{Router, body::Body, http::Request, routing::get};
//! use streamgate_cache::{CacheLayer, CacheRoute};
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let calls = Arc::new(AtomicU32::new(0));
//! let counted = calls.clone();
//! let app = Router::new()
//!     .route("/items/{id}", get(move || async move { counted.fetch_add(1, Ordering::SeqCst); "item" }))
//!     .layer(CacheLayer::builder().route("/items/{id}", CacheRoute::ttl(Duration::from_secs(60))).build());
//!
//! let first = app.clone().oneshot(Request::get("/items/1").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(first.headers()["cache-status"], "streamgate; fwd=uri-miss; stored");
//! let second = app.oneshot(Request::get("/items/1").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(second.headers()["x-cache"], "HIT");
//! assert_eq!(calls.load(Ordering::SeqCst), 1);
//! # }
//! ```

mod body;
mod config;
mod directives;
mod fetch;
mod flight;
mod future;
mod key;
mod layer;
mod metrics;
mod service;
pub mod store;
mod stored;
mod warm;

pub use config::{CacheConfig, CacheConfigError, CacheRouteConfig, CacheWarmConfig};
pub use future::ResponseFuture;
pub use key::{CacheKey, normalized_path};
pub use layer::{CacheLayer, CacheLayerBuilder, CacheRoute};
pub use service::Cache;
#[doc(inline)]
pub use store::{
    CacheStore, Generation, Lookup, MemoryCacheStore, StoreError, StoreFuture, TieredCacheStore,
};
#[cfg(feature = "redis")]
#[doc(inline)]
pub use store::{RedisCacheStore, RedisCacheStoreBuilder};
pub use stored::{CACHE_STATUS, CachedResponse, Hit, X_CACHE};
pub use warm::{CacheWarmer, WARMER_USER_AGENT, WarmOutcome, WarmReport};
