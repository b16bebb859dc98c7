//! Where alerts go: the [`AlertHandler`] trait and the log handler.

use std::{fmt, future::Future, pin::Pin, time::Duration};

use crate::{Alert, AlertState, Severity};

/// A boxed future, as [`AlertHandler::notify`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one evaluation tells the handlers.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Notification {
    /// Alerts that started firing or were resolved at this evaluation.
    pub changed: Vec<Alert>,
    /// Every alert firing after this evaluation (for handlers that repeat them, as Alertmanager
    /// needs).
    pub firing: Vec<Alert>,
    /// How often the rules are evaluated: a handler that repeats firing alerts can do so only
    /// this often, whatever its own interval.
    pub evaluation_interval: Duration,
}

/// A handler's failure, counted in `streamgate_alerts_notifications_total` and logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError(pub String);

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HandlerError {}

/// Receives alerts: register with [`Alerts::register_handler`](crate::Alerts::register_handler).
///
/// Each evaluation calls [`wants`](AlertHandler::wants) and, if it says yes, `notify` within the
/// handler timeout; a failure or a timeout is counted and logged, and the next evaluation goes on.
pub trait AlertHandler: fmt::Debug + Send + Sync + 'static {
    /// A short name for metrics and logs (`log`, `webhook`, `alertmanager`).
    fn name(&self) -> &str;

    /// Whether this notification is for this handler; by default, when an alert changed.
    fn wants(&self, notification: &Notification) -> bool {
        !notification.changed.is_empty()
    }

    /// Delivers the notification.
    fn notify<'a>(
        &'a self,
        notification: &'a Notification,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

/// Logs each change with `tracing`: firing critical alerts at `error`, warnings at `warn`, the
/// rest (info alerts, resolutions) at `info`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogHandler;

impl AlertHandler for LogHandler {
    fn name(&self) -> &str {
        "log"
    }

    fn notify<'a>(
        &'a self,
        notification: &'a Notification,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        for alert in &notification.changed {
            let (id, severity, value, summary) = (
                &alert.id,
                alert.severity.as_str(),
                alert.value,
                &alert.summary,
            );
            match (alert.state, alert.severity) {
                (AlertState::Firing, Severity::Critical) => {
                    tracing::error!(alert = %id, severity, value, "alert firing: {summary}");
                }
                (AlertState::Firing, Severity::Warning) => {
                    tracing::warn!(alert = %id, severity, value, "alert firing: {summary}");
                }
                (AlertState::Firing, Severity::Info) => {
                    tracing::info!(alert = %id, severity, value, "alert firing: {summary}");
                }
                _ => tracing::info!(alert = %id, severity, "alert resolved: {summary}"),
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
}
