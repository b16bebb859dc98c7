//! The audit trail of StreamGate: who did what, when, from where, and with what outcome,
//! recorded without slowing requests, redacted, kept 30 days and provably untampered.
//!
//! ```
//! use std::net::SocketAddr;
//! use axum::{Router, body::Body, extract::connect_info::MockConnectInfo, routing::post};
//! use http::Request;
//! use streamgate_audit::{AuditLayer, AuditLogger, FileSink, FileSinkConfig, SigningKey, verify_path};
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! # let dir = tempfile::tempdir().unwrap();
//! let key = SigningKey::new(&[7; 32]).unwrap();
//! let logger = AuditLogger::builder()
//!     .sink(FileSink::open(FileSinkConfig::new(dir.path(), key.clone())).unwrap())
//!     .start();
//! let app = Router::new()
//!     .route("/items", post(|| async { "created" }))
//!     // The default policy records data changes, auth and admin routes and refusals.
//!     .layer(AuditLayer::new(logger.clone()))
//!     .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5000))));
//! let response = app
//!     .oneshot(Request::post("/items").body(Body::from("{}")).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 200);
//! logger.shutdown().await; // writes everything queued
//! assert_eq!(verify_path(dir.path(), &key).unwrap().events, 1);
//! # }
//! ```
//!
//! - [`AuditEvent`]: the record (UUIDv7 id, RFC 3339 millisecond UTC time, actor, source IP,
//!   request id, method, route, resource, action, outcome, status, reason, latency, metadata).
//! - [`AuditLayer`]: records requests by an [`AuditPolicy`] of first-matching [`Rule`]s; the actor
//!   comes from the [`SecurityContext`](streamgate_core::SecurityContext) the security layer
//!   leaves in the response extensions; inner layers explain refusals with an [`AuditReason`].
//! - [`AuditLogger`]: the seed's `log_event` and queries, a bounded queue ([`WhenFull`]) and a
//!   background writer that batches into [`AuditSink`]s, lingering between batches under load
//!   ([`batch_linger`](AuditLoggerBuilder::batch_linger), default [`DEFAULT_BATCH_LINGER`]),
//!   retries failing sinks with backoff, and flushes on [`shutdown`](AuditLogger::shutdown).
//! - [`Redaction`]: header allowlist and key denylist; credentials never reach a sink.
//! - Sinks: [`TracingSink`], and [`FileSink`] (hash-chained JSON lines, signed checkpoints and
//!   head, rotation, retention) with [`verify_path`] (also the `streamgate-audit verify` command);
//!   with the cargo feature `postgres`, `postgres::PostgresSink` for replicas sharing one trail.
//!
//! Metrics: `streamgate_audit_events_total{sink}`, `streamgate_audit_dropped_total`,
//! `streamgate_audit_sink_errors_total{sink}`, and the `streamgate_audit_queued` gauge (the
//! backlog, which grows while a sink fails).

mod body;
mod capture;
mod clock;
mod event;
mod event_json;
pub mod file;
mod future;
mod http_record;
mod id;
mod layer;
mod logger;
mod policy;
#[cfg(feature = "postgres")]
pub mod postgres;
mod queue;
mod redact;
pub mod sink;

pub use clock::AuditClock;
pub use event::{Actor, AuditEvent, AuditReason, Outcome, event_type, is_security_status};
pub use file::{
    FileQuery, FileSink, FileSinkConfig, InvalidKey, SigningKey, TamperKind, VerifyFailure,
    VerifyReport, verify_path,
};
pub use future::ResponseFuture;
pub use layer::{Audit, AuditLayer};
pub use logger::{
    AuditLogger, AuditLoggerBuilder, DEFAULT_BATCH_LINGER, DEFAULT_CAPACITY, DROPPED_TOTAL,
    EVENTS_TOTAL, LoggerClosed, QUEUED, SINK_ERRORS_TOTAL,
};
pub use policy::{AuditPolicy, Level, Rule};
pub use queue::WhenFull;
pub use redact::{
    DEFAULT_ALLOWED_HEADERS, DEFAULT_DENIED_KEYS, DEFAULT_EXCERPT_BYTES, REDACTED, Redaction,
};
pub use sink::{AuditQuery, AuditSink, QueryFuture, SinkError, SinkFuture, TimeRange, TracingSink};
