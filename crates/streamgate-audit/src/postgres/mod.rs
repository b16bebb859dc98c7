//! The PostgreSQL sink (cargo feature `postgres`): several replicas share one audit trail, each
//! keeping its own hash chain under its instance id, with a signed head per instance.
//!
//! ```no_run
//! use streamgate_audit::{AuditLogger, SigningKey, postgres::{PostgresSink, PostgresSinkConfig}};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let key = SigningKey::new(&[42; 32]).unwrap();
//! let config = PostgresSinkConfig::new("postgres://postgres@127.0.0.1/test", "replica-1", key);
//! let sink = PostgresSink::new(config.clone()).unwrap();
//! let health = sink.health();
//! let logger = AuditLogger::builder().sink(sink).start();
//! // ... later, from a readiness probe:
//! let ready = health.check().await.is_ok();
//! # let _ = ready;
//! logger.shutdown().await;
//! # }
//! ```
//!
//! The sink connects lazily and reconnects after any error: while the database is down, events
//! wait in the logger's bounded queue and each write is retried with backoff. At its first
//! connection it creates or migrates its tables (idempotent, under an advisory lock so replicas
//! may start together) and applies retention. Each batch is one multi-row insert (`unnest` of
//! arrays) and the head update, in one transaction.
//!
//! The connection has **no TLS** (`NoTls`): connect over a local Unix socket, through a sidecar
//! or across a trusted network; a URL with `sslmode=require` will never connect. The
//! [configured timeout](PostgresSinkConfig::timeout) bounds connecting, the setup after each
//! connection (the DDL runs only when a table or index is missing), each batch, retention and
//! queries; each session sets `lock_timeout` (half the timeout) and `statement_timeout` (the
//! timeout), so a session holding a lock on the table makes writes fail and retry, not hang.
//!
//! Retention removes only this instance's events, and chains and heads are per instance: give
//! each replica an id that survives restarts (a StatefulSet pod name such as `api-0`, not a
//! Deployment's random pod name), or the events of ids no longer in use are never purged.
//!
//! `TEXT` cannot hold NUL, so NUL characters in the actor and event type columns are stored as
//! U+FFFD (lookups are changed the same way); the event's JSON keeps them, escaped as `\u0000`.
//! A unique index on the event id and an insert that skips stored ids keep an event whose
//! commit acknowledgement was lost from being stored twice.
//!
//! Table `<table>` holds one row per event (instance id, sequence number, id, time, type, actor,
//! wallet, the event's JSON, previous hash, hash), indexed on actor, wallet, type and time and
//! uniquely on id;
//! `<table>_heads` holds the signed head of each instance.

mod schema;
mod sink;
mod verify;

pub use sink::{PostgresHealth, PostgresQuery, PostgresSink, PostgresSinkConfig};
pub use verify::verify_postgres;
