//! A sink that emits each event as a `tracing` event with structured fields.

use crate::{
    event::AuditEvent,
    sink::{AuditSink, SinkFuture},
};

/// Emits each event at INFO level on target `streamgate_audit`, one structured field per event
/// field. Strings are recorded with `Debug` formatting, so control characters are escaped by
/// any formatter; metadata is recorded as escaped JSON.
///
/// ```
/// use streamgate_audit::{AuditLogger, TracingSink};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let logger = AuditLogger::builder().sink(TracingSink::new()).start();
/// logger.shutdown().await;
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink {
    _private: (),
}

impl TracingSink {
    /// The sink.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl AuditSink for TracingSink {
    fn name(&self) -> &'static str {
        "tracing"
    }

    fn write<'a>(&'a mut self, events: &'a [AuditEvent]) -> SinkFuture<'a> {
        for event in events {
            let metadata = if event.metadata.is_empty() {
                String::new()
            } else {
                serde_json::Value::Object(event.metadata.clone()).to_string()
            };
            let actor = serde_json::to_string(&event.actor).unwrap_or_default();
            let timestamp = crate::clock::rfc3339_string(event.timestamp);
            tracing::info!(
                target: "streamgate_audit",
                id = %event.id,
                timestamp = %timestamp,
                event_type = ?event.event_type,
                actor = %actor,
                source_ip = ?event.source_ip,
                request_id = ?event.request_id,
                method = ?event.method,
                route = ?event.route,
                resource = ?event.resource,
                action = ?event.action,
                outcome = event.outcome.as_str(),
                status = ?event.status,
                reason = ?event.reason,
                latency_ms = ?event.latency_ms,
                metadata = %metadata,
                "audit event"
            );
        }
        Box::pin(async { Ok(()) })
    }
}
