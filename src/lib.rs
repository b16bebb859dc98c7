//! StreamGate hardens an HTTP service from inside it: request metrics for Prometheus, alerts, a security
//! context, rate limits, validation, an audit trail, a response cache, each a tower `Layer`, composed in the right
//! order by one [`Stack`].
//!
//! ```
//! use axum::{Router, routing::get, body::Body};
//! use http::Request;
//! use streamgate::Stack;
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let stack = Stack::new("shop");
//! let app = stack.apply(Router::new().route("/items/{id}", get(|| async { "item" })));
//!
//! let response = app.clone().oneshot(Request::get("/items/1").body(Body::empty()).unwrap()).await.unwrap();
//! assert!(response.headers().contains_key("x-request-id"));
//! drop(response);
//!
//! let metrics = app.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
//! let text = axum::body::to_bytes(metrics.into_body(), usize::MAX).await.unwrap();
//! assert!(std::str::from_utf8(&text).unwrap().contains(r#"http_route="/items/{id}""#));
//! # }
//! ```
//!
//! Each layer is its own crate, re-exported here behind a Cargo feature of the same name
//! (`full`, the default, turns on all of them):
//!
//! | module | feature | what it does |
//! |---|---|---|
//! | [`alerts`] | `alerts` | alert rules over the metrics window; log, webhook and Alertmanager handlers; `/alerts` |
//! | [`cache`] | `cache` | per-route response cache keyed by the caller's scope, `Cache-Status`; Redis store (`redis`) |
//! | [`core`] | always | problem+json errors, client IP, security context type, Ethereum addresses |
//! | [`audit`] | `audit` | audit layer and logger, redaction, hash-chained signed file, `verify`; PostgreSQL sink (`postgres`) |
//! | [`metrics`] | `metrics` | request metrics, the process recorder, `/metrics` |
//! | [`ratelimit`] | `ratelimit` | per-client GCRA quotas, per-route policies, IETF headers; Redis store (`redis`) |
//! | [`security`] | `security` | security context from JWT / API keys / gateway headers, RBAC |
//! | [`validate`] | `validate` | `Valid<T>` extractors with problem+json errors, validators, sanitizers |
//!
//! The facade itself adds the admin routes (`/metrics`, `/alerts`, `/health/live` and the
//! readiness probe [`READY_PATH`] over the shared engines and [`Stack::readiness_check`]), the
//! opt-in request timeout, [`SecureHeaders`] and CORS ([`CorsConfig`]), and [`Config`], the one
//! YAML file that drives it all, shared engines (Redis, PostgreSQL) included.

/// The README's Rust examples, compiled and run as doc tests so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

mod config;
mod config_origin;
mod cors;
mod hardening;
mod problem_bodies;
mod ready;
mod stack;

#[cfg(feature = "audit")]
#[doc(inline)]
pub use config::{AuditLoggingConfig, AuditPostgresConfig, AuditSinkKind, AuditWhenFull};
#[doc(inline)]
pub use config::{
    Config, ConfigError, ENV_PREFIX, MetricsConfig, MonitoringConfig, OptimizationConfig,
    SecurityConfig,
};

#[doc(inline)]
pub use cors::CorsConfig;
#[doc(inline)]
pub use hardening::{API_CONTENT_SECURITY_POLICY, ResponseHeadersConfig, SecureHeaders};
#[doc(inline)]
pub use ready::{CHECK_TIMEOUT, READY_PATH, ReadyFuture};
#[doc(inline)]
pub use stack::{ALERTS_PATH, LIVE_PATH, METRICS_PATH, Stack};
#[cfg(feature = "alerts")]
#[doc(inline)]
pub use streamgate_alerts as alerts;
#[cfg(feature = "audit")]
#[doc(inline)]
pub use streamgate_audit as audit;
#[cfg(feature = "cache")]
#[doc(inline)]
pub use streamgate_cache as cache;
#[doc(inline)]
pub use streamgate_core as core;
#[cfg(feature = "metrics")]
#[doc(inline)]
pub use streamgate_metrics as metrics;
#[cfg(feature = "ratelimit")]
#[doc(inline)]
pub use streamgate_ratelimit as ratelimit;
#[cfg(feature = "security")]
#[doc(inline)]
pub use streamgate_security as security;
#[cfg(feature = "validate")]
#[doc(inline)]
pub use streamgate_validate as validate;
