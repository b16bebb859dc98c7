//! The alerts' own metrics.

use metrics::{Counter, Gauge};
use streamgate_metrics::MetricsRecorder;

use crate::Severity;

/// `streamgate_alerts_firing` by severity.
pub(crate) const FIRING: &str = "streamgate_alerts_firing";
/// `streamgate_alerts_evaluations_total`.
pub(crate) const EVALUATIONS: &str = "streamgate_alerts_evaluations_total";
/// `streamgate_alerts_notifications_total` by handler and outcome.
pub(crate) const NOTIFICATIONS: &str = "streamgate_alerts_notifications_total";

#[derive(Debug)]
pub(crate) struct AlertMetrics {
    pub(crate) evaluations: Counter,
    firing: [Gauge; 3],
}

impl AlertMetrics {
    pub(crate) fn new(recorder: &MetricsRecorder) -> Self {
        use metrics::Recorder as _;
        recorder.describe_gauge(
            FIRING.into(),
            None,
            "Alerts firing now, by severity.".into(),
        );
        recorder.describe_counter(
            EVALUATIONS.into(),
            None,
            "Evaluations of the alert rules.".into(),
        );
        recorder.describe_counter(
            NOTIFICATIONS.into(),
            None,
            "Notifications given to alert handlers, by handler and outcome (ok, error, timeout)."
                .into(),
        );
        Self {
            evaluations: recorder.counter(EVALUATIONS, &[]),
            firing: Severity::ALL.map(|s| recorder.gauge(FIRING, &[("severity", s.as_str())])),
        }
    }

    pub(crate) fn firing(&self, severity: Severity) -> &Gauge {
        &self.firing[severity as usize]
    }

    /// Counts one notification (rare: looked up each time).
    pub(crate) fn notification(&self, recorder: &MetricsRecorder, handler: &str, outcome: &str) {
        recorder
            .counter(NOTIFICATIONS, &[("handler", handler), ("outcome", outcome)])
            .increment(1);
    }
}
