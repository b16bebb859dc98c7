//! [`AlertmanagerHandler`]: Alertmanager's v2 API, as Prometheus speaks it.

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
    time::{Duration, SystemTime},
};

use serde::Serialize;
use tokio::time::Instant;

use crate::{
    Alert, AlertHandler, AlertState, BoxFuture, HandlerError, Notification,
    alert::rfc3339_text,
    http::{HandlerConfigError, JsonPoster},
};

/// Sends alerts to Alertmanager (`POST /api/v2/alerts`), which de-duplicates the replicas'
/// alerts and routes them.
///
/// As Prometheus does, firing alerts are sent again every resend interval (default 1 min) with
/// `endsAt` four intervals ahead, so Alertmanager keeps them while the service lives and resolves
/// them on its own if it stops sending; a resolved alert is sent once with `endsAt` at its
/// resolution. Labels are the alert's (`alertname`, `severity`, the rule's own); annotations are
/// `summary` and `value`.
#[derive(Debug)]
pub struct AlertmanagerHandler {
    poster: JsonPoster,
    resend: Duration,
    generator_url: Option<String>,
    last_sent: Mutex<Option<Instant>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: &'a BTreeMap<String, String>,
    annotations: BTreeMap<&'static str, String>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    generator_url: Option<&'a str>,
}

impl AlertmanagerHandler {
    /// Sends to the Alertmanager at `base` (`http://alertmanager:9093`; https with the `https`
    /// feature), each request within 10 s.
    ///
    /// # Errors
    /// When `base` is not an http(s) URL.
    pub fn new(base: &str) -> Result<Self, HandlerConfigError> {
        let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
        Ok(Self {
            poster: JsonPoster::new(&url, Duration::from_secs(10))?,
            resend: Duration::from_secs(60),
            generator_url: None,
            last_sent: Mutex::new(None),
        })
    }

    /// How often firing alerts are sent again (default 1 min).
    #[must_use]
    pub fn resend_interval(mut self, resend: Duration) -> Self {
        self.resend = resend.max(Duration::from_secs(1));
        self
    }

    /// A link sent with each alert (`generatorURL`), such as the service's `/alerts` page.
    #[must_use]
    pub fn generator_url(mut self, url: impl Into<String>) -> Self {
        self.generator_url = Some(url.into());
        self
    }

    /// The URL alerts are posted to.
    #[must_use]
    pub fn url(&self) -> &str {
        self.poster.url().as_str()
    }

    fn postable<'a>(&'a self, alert: &'a Alert, now: SystemTime) -> PostableAlert<'a> {
        let ends_at = match (alert.state, alert.resolved_at) {
            (AlertState::Resolved, Some(at)) => at,
            _ => now + self.resend * 4,
        };
        PostableAlert {
            labels: &alert.labels,
            annotations: BTreeMap::from([
                ("summary", alert.summary.clone()),
                ("value", alert.value.to_string()),
            ]),
            starts_at: rfc3339_text(alert.fired_at.unwrap_or(alert.active_since)),
            ends_at: rfc3339_text(ends_at),
            generator_url: self.generator_url.as_deref(),
        }
    }
}

impl AlertHandler for AlertmanagerHandler {
    fn name(&self) -> &str {
        "alertmanager"
    }

    fn wants(&self, notification: &Notification) -> bool {
        if !notification.changed.is_empty() {
            return true;
        }
        let last = *self
            .last_sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        !notification.firing.is_empty() && last.is_none_or(|last| last.elapsed() >= self.resend)
    }

    fn notify<'a>(
        &'a self,
        notification: &'a Notification,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let now = SystemTime::now();
            // Every firing alert, the ones that resolved now, and announced events (firing,
            // but no rule's: not in the firing list).
            let alerts: Vec<PostableAlert<'_>> = notification
                .firing
                .iter()
                .chain(notification.changed.iter().filter(|a| {
                    a.state == AlertState::Resolved
                        || !notification.firing.iter().any(|f| f.id == a.id)
                }))
                .map(|alert| self.postable(alert, now))
                .collect();
            if alerts.is_empty() {
                return Ok(());
            }
            let body = serde_json::to_vec(&alerts)
                .map_err(|e| HandlerError(format!("cannot encode the alerts: {e}")))?;
            self.poster.post(body).await?;
            *self
                .last_sent
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
            Ok(())
        })
    }
}
