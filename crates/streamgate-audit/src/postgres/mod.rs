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
//! Table `<table>` holds one row per event (instance id, sequence number, id, time, type, actor,
//! wallet, the event's JSON, previous hash, hash), indexed on actor, wallet, type and time;
//! `<table>_heads` holds the signed head of each instance.

mod schema;
mod sink;
mod verify;

pub use sink::{PostgresHealth, PostgresQuery, PostgresSink, PostgresSinkConfig};
pub use verify::verify_postgres;
