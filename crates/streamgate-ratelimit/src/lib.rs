//! Rate limiting for tower and axum: keyed GCRA quotas, several named policies per request,
//! per-route costs and exemptions, outcome-based policies, IETF `RateLimit` headers, and an
//! in-memory store that stays bounded under a flood of distinct clients.
//!
//! ```
//! use std::net::SocketAddr;
//! use axum::{Router, body::Body, extract::connect_info::MockConnectInfo, routing::get};
//! use http::{Request, StatusCode};
//! use streamgate_ratelimit::{Policy, Quota, RateLimitLayer, RateLimited};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let layer = RateLimitLayer::builder()
//!     .policy(Policy::new("per-ip", Quota::per_second(1).burst(2)))
//!     .exempt_route("/health")
//!     .build()
//!     .unwrap();
//! let app = Router::new()
//!     .route("/items/{id}", get(|| async { "item" }))
//!     .route("/health", get(|| async { "ok" }))
//!     .layer(layer)
//!     .layer(MockConnectInfo(SocketAddr::from(([203, 0, 113, 7], 4000))));
//!
//! let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
//! let first = app.clone().oneshot(get("/items/1")).await.unwrap();
//! assert_eq!(first.headers()["ratelimit"], r#""per-ip";r=1;t=1"#);
//! assert_eq!(first.headers()["ratelimit-policy"], r#""per-ip";q=2;w=2"#);
//! app.clone().oneshot(get("/items/2")).await.unwrap();
//!
//! let third = app.clone().oneshot(get("/items/3")).await.unwrap();
//! assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(third.headers()["retry-after"], "1");
//! assert_eq!(third.extensions().get::<RateLimited>().unwrap().policy(), "per-ip");
//!
//! // Exempt routes are never limited.
//! assert_eq!(app.oneshot(get("/health")).await.unwrap().status(), StatusCode::OK);
//! # }
//! ```
//!
//! - [`Quota`]: a refill rate and a burst (`Quota::per_second(100).burst(1000)`, the seed's
//!   default). The arithmetic is the generic cell rate algorithm of the `governor` crate, on
//!   tokio's clock so that paused-time tests drive the real layer.
//! - [`Policy`]: a named quota with a [`KeyExtractor`] (client IP with IPv6 by /64, user id, hashed
//!   API key, global, or a closure); [`Policy::count_responses`] counts only responses that match
//!   (failed logins); [`Policy::shadow`] counts what would be limited and rejects nothing.
//! - [`RateLimitLayer`]: policies for every route or one route (also by name, as the YAML config
//!   says, see [`RateLimitConfig`]), costs, exempt routes and methods. Every policy that applies must pass; a store
//!   applies a request all-or-nothing.
//! - Responses: every response under a policy carries `RateLimit: "<policy>";r=<remaining>;t=<s>`
//!   and `RateLimit-Policy: "<policy>";q=<burst>;w=<s>` (draft-ietf-httpapi-ratelimit-headers-11;
//!   `w` is the time to refill the burst from empty). A 429 adds `Retry-After` in whole seconds
//!   (at least 1), a problem+json body with `violated-policies`, and [`RateLimited`] in its
//!   extensions for the audit layer. An outer layer keeps what an inner one wrote: it adds its
//!   policies as further field lines of the same Lists and leaves the inner 429's `Retry-After`.
//! - [`RateLimiter`]: one policy checked from code, the seed's `Allow(identifier)`, for work
//!   that is not a request of its own (a job, a message, an attempt counted in a handler).
//! - [`RateLimitStore`]: where state lives. [`MemoryStore`] (the default) never tracks more than
//!   its cap of keys; see its docs for what happens when it is full.
//!
//! # Features
//! - `redis`: [`RedisStore`](crate::store), the store shared by several replicas.
//!
//! # Metrics
//! - `streamgate_ratelimit_requests_total{policy,decision}`: decision is `allowed`, `limited`
//!   or `shadow`.
//! - `streamgate_ratelimit_tracked_keys`: keys in the in-memory store.
//! - `streamgate_ratelimit_overflow_total`: decisions made on the shared overflow bucket
//!   because the store was full.
//! - `streamgate_ratelimit_idle_keys_removed_total`: idle keys dropped.
//! - `streamgate_ratelimit_store_errors_total{outcome}`: store failures, `allowed` (fail open),
//!   `rejected` (fail closed), `fallback` (the Redis store decided on its local fallback) or
//!   `unrecorded` (an outcome-based policy's charge after the response failed).

mod config;
mod header_value;
mod key;
mod layer;
mod limiter;
mod policy;
mod quota;
mod response;
mod service;
pub mod store;

#[doc(inline)]
pub use config::{KeyKind, PolicyConfig, RateLimitConfig, RouteConfig, parse_duration};
#[doc(inline)]
pub use key::{KeyExtractor, RateLimitKey, RequestInfo};
#[doc(inline)]
pub use layer::{FailMode, RateLimitConfigError, RateLimitLayer, RateLimitLayerBuilder};
#[doc(inline)]
pub use limiter::{RateLimiter, RateLimiterBuilder};
#[doc(inline)]
pub use policy::Policy;
#[doc(inline)]
pub use quota::{Gcra, Quota, Step};
#[doc(inline)]
pub use response::{
    RATELIMIT, RATELIMIT_POLICY, RateLimited, X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING,
    X_RATELIMIT_RESET,
};
#[doc(inline)]
pub use service::{RateLimit, ResponseFuture};
#[doc(inline)]
pub use store::{
    Check, CheckMode, Decision, Decisions, MemoryStore, MemoryStoreBuilder, PolicyId,
    RateLimitStore, StoreError, StoreFuture, StoreResult,
};
#[cfg(feature = "redis")]
#[doc(inline)]
pub use store::{RedisStore, RedisStoreBuilder};
