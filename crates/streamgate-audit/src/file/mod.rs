//! The hash-chained JSON-lines file sink, its verifier and its query reader.
//!
//! Every record carries the SHA-256 of the previous one; signed checkpoints (HMAC-SHA256) are
//! written every [`checkpoint_every`](FileSinkConfig::checkpoint_every) records, at the end of
//! every file and on the checkpoint interval; a signed head (`head.json`, replaced atomically
//! after a batch once the writer has written everything queued, and at least every
//! [`head_interval`](FileSinkConfig::head_interval) while it is kept busy) names the newest record, so a truncated tail is detected. Files rotate by
//! size and by UTC day; each file opens with a record anchored to the previous file's last hash,
//! and file indexes increase by one, so a missing file is detected. Retention removes whole old
//! files and moves the head's first file forward, so what remains still verifies.
//!
//! ```
//! use streamgate_audit::{AuditLogger, FileSink, FileSinkConfig, Outcome, SigningKey, verify_path};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! # let dir = tempfile::tempdir().unwrap();
//! let key = SigningKey::new(&[42; 32]).unwrap();
//! let sink = FileSink::open(FileSinkConfig::new(dir.path(), key.clone())).unwrap();
//! let logger = AuditLogger::builder().sink(sink).start();
//! logger.log_event("login", "user-1", "sign_in", "session", Outcome::Success, serde_json::Value::Null).await.unwrap();
//! logger.shutdown().await;
//! let report = verify_path(dir.path(), &key).unwrap();
//! assert_eq!(report.events, 1);
//! # }
//! ```

mod head;
mod key;
mod naming;
mod query;
pub(crate) mod record;
mod sink;
mod verify;

pub use key::{InvalidKey, SigningKey};
pub use query::FileQuery;
pub use sink::{
    DEFAULT_HEAD_INTERVAL, DEFAULT_MAX_FILE_BYTES, DEFAULT_RETENTION, FileSink, FileSinkConfig,
};
pub use verify::{TamperKind, VerifyFailure, VerifyReport, verify_path};
