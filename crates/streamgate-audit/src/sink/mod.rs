//! Where audit events go: every sink implements [`AuditSink`]; sinks that can answer queries
//! also hand out an [`AuditQuery`].

use std::{
    error::Error as StdError, fmt, future::Future, ops::Range, pin::Pin, sync::Arc,
    time::SystemTime,
};

use crate::event::AuditEvent;

mod tracing_sink;

pub use tracing_sink::TracingSink;

/// The boxed future a sink returns.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// The boxed future a query returns.
pub type QueryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<AuditEvent>, SinkError>> + Send + 'a>>;

/// A time range, start included, end excluded.
pub type TimeRange = Range<SystemTime>;

/// A destination for audit events, driven by the logger's background writer.
///
/// `write` is all or nothing: when it fails, the writer waits (with backoff) and calls it again
/// with the same events, so a sink that wrote part of them must undo that or skip them.
pub trait AuditSink: Send + 'static {
    /// The sink's name, the `sink` label of `streamgate_audit_events_total`.
    fn name(&self) -> &'static str;

    /// Writes `events`, in order.
    fn write<'a>(&'a mut self, events: &'a [AuditEvent]) -> SinkFuture<'a>;

    /// Makes everything written so far durable (called for explicit flushes and queries, and
    /// when the writer has written everything queued).
    fn flush(&mut self) -> SinkFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    /// Periodic housekeeping (checkpoints, retention), called by the writer on its interval.
    fn maintain(&mut self) -> SinkFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    /// Flushes and closes, at shutdown.
    fn close(&mut self) -> SinkFuture<'_> {
        self.flush()
    }

    /// A reader that answers queries over what this sink stored, when it can.
    fn query(&self) -> Option<Arc<dyn AuditQuery>> {
        None
    }
}

/// Queries over stored events: the seed's `GetEventsByActor`, and by type.
pub trait AuditQuery: Send + Sync + fmt::Debug + 'static {
    /// Events whose actor is `actor` (a user id or wallet address) within `range`, oldest first,
    /// at most `limit`.
    fn events_by_actor<'a>(
        &'a self,
        actor: &'a str,
        range: TimeRange,
        limit: usize,
    ) -> QueryFuture<'a>;

    /// Events of type `event_type` within `range`, oldest first, at most `limit`.
    fn events_by_type<'a>(
        &'a self,
        event_type: &'a str,
        range: TimeRange,
        limit: usize,
    ) -> QueryFuture<'a>;
}

/// A sink or query failure.
#[derive(Debug)]
pub struct SinkError {
    message: String,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl SinkError {
    /// A failure described by `message`.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A failure caused by `source`.
    #[must_use]
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "{}: {source}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl StdError for SinkError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

impl From<std::io::Error> for SinkError {
    fn from(error: std::io::Error) -> Self {
        SinkError::with_source("i/o error", error)
    }
}
