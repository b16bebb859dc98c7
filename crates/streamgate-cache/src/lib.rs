//! A response cache for tower and axum services: per route, keyed so that a cached response
//! never reaches a caller who would not have received it.
//!
//! [`CacheLayer`] keeps `GET` responses of the routes it is given in memory (moka, 10,000
//! entries by default) for a [`CacheRoute`]'s TTL or less when the response's `Cache-Control`
//! says so; an authenticated caller's entries are their own unless the route is shared;
//! concurrent misses of one key send one request on; unsafe
//! requests that succeed remove their path's entries. Responses say what happened in RFC 9211's
//! `Cache-Status` (and `X-Cache`), hits carry `Age`. [`CacheConfig`] is `optimization.cache` in
//! the YAML file. Metrics: `streamgate_cache_lookups_total{result}`,
//! `streamgate_cache_stores_total`, `streamgate_cache_invalidations_total`.
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
mod flight;
mod key;
mod layer;
mod metrics;
mod service;
mod stored;

pub use config::{CacheConfig, CacheConfigError, CacheRouteConfig};
pub use layer::{CacheLayer, CacheLayerBuilder, CacheRoute};
pub use service::{Cache, ResponseFuture};
pub use stored::{CACHE_STATUS, X_CACHE};
