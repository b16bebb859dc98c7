//! A sink that emits each event as a `tracing` event with structured fields.

use crate::{
    event::AuditEvent,
    sink::{AuditSink, SinkFuture},
};

/// Emits each event at INFO level on target `streamgate_audit`, one structured field per event
/// field. Strings are recorded with `Debug` formatting, so control characters are escaped by
/// any formatter; the actor and metadata are recorded as JSON with every control and line
/// separator escaped (C1 controls and U+2028/U+2029 too, which JSON would leave as they are).
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
                one_line(serde_json::Value::Object(event.metadata.clone()).to_string())
            };
            let actor = one_line(serde_json::to_string(&event.actor).unwrap_or_default());
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

/// `json` with the characters a JSON serializer leaves raw but a reader may take for a line
/// break or a control (U+0080 to U+009F, U+2028, U+2029) written as `\uXXXX` escapes. Such
/// characters are only inside JSON strings, where the escape means the same character.
fn one_line(json: String) -> String {
    let raw = |c: char| matches!(c, '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}');
    if !json.contains(raw) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if raw(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn line_separators_and_c1_controls_are_escaped_and_the_json_means_the_same() {
        let value = serde_json::json!({"resource": "a\u{2028}b\u{85}c\u{2029}d\u{9f}é"});
        let text = one_line(value.to_string());
        assert_eq!(text, r#"{"resource":"a\u2028b\u0085c\u2029d\u009fé"}"#);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
        assert_eq!(one_line("{\"a\":1}".to_owned()), "{\"a\":1}");
    }
}
