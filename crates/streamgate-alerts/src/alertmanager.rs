//! [`AlertmanagerHandler`]: Alertmanager's v2 API, as Prometheus speaks it.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, SystemTime},
};

use serde::Serialize;
use tokio::time::Instant;

use crate::{
    Alert, AlertHandler, AlertState, BoxFuture, HandlerError, Notification,
    alert::rfc3339_text,
    alerts::lock,
    http::{HandlerConfigError, JsonPoster},
};

/// Sends alerts to Alertmanager (`POST /api/v2/alerts`), which de-duplicates the replicas'
/// alerts and routes them.
///
/// As Prometheus does, firing alerts are sent again every resend interval (default 1 min, or
/// each evaluation when the rules are evaluated less often) with `endsAt` four of those
/// intervals ahead, so Alertmanager keeps them while the service lives and resolves them on its
/// own if it stops sending; a resolved alert is sent with `endsAt` at its resolution, and again
/// at each evaluation until Alertmanager has taken it. Labels are the alert's (`alertname`,
/// `severity`, the rule's own); annotations are `summary` and `value`.
#[derive(Debug)]
pub struct AlertmanagerHandler {
    poster: JsonPoster,
    resend: Duration,
    generator_url: Option<String>,
    last_sent: Mutex<Option<Instant>>,
    /// Resolved alerts a failed post did not deliver: sent with the next post.
    unsent_resolved: Mutex<Vec<Alert>>,
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
            unsent_resolved: Mutex::new(Vec::new()),
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

    /// `alert` as Alertmanager takes it; a firing one ends `lifetime` from `now` unless sent
    /// again.
    fn postable<'a>(
        &'a self,
        alert: &'a Alert,
        now: SystemTime,
        lifetime: Duration,
    ) -> PostableAlert<'a> {
        let ends_at = match (alert.state, alert.resolved_at) {
            (AlertState::Resolved, Some(at)) => at,
            _ => now + lifetime,
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
        if !notification.changed.is_empty() || !lock(&self.unsent_resolved).is_empty() {
            return true;
        }
        let last = *lock(&self.last_sent);
        !notification.firing.is_empty() && last.is_none_or(|last| last.elapsed() >= self.resend)
    }

    fn notify<'a>(
        &'a self,
        notification: &'a Notification,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let now = SystemTime::now();
            // Prometheus's rule: an alert outlives four sends, which are no more frequent than
            // the evaluations.
            let lifetime = self.resend.max(notification.evaluation_interval) * 4;
            let firing = |id: &str| notification.firing.iter().any(|f| f.id == id);
            // Resolved alerts an earlier post did not deliver, unless they fire again, and the
            // ones resolved now: kept as unsent until a post succeeds, so that a post cut off
            // by the handler timeout loses none.
            let resolved: Vec<Alert> = {
                let mut unsent = lock(&self.unsent_resolved);
                unsent.retain(|alert| !firing(&alert.id));
                unsent.extend(
                    notification
                        .changed
                        .iter()
                        .filter(|a| a.state == AlertState::Resolved)
                        .cloned(),
                );
                unsent.clone()
            };
            // Every firing alert, the resolved ones, and announced events (firing, but no
            // rule's: not in the firing list).
            let events = notification
                .changed
                .iter()
                .filter(|a| a.state != AlertState::Resolved && !firing(&a.id));
            let alerts: Vec<PostableAlert<'_>> = notification
                .firing
                .iter()
                .chain(events)
                .chain(&resolved)
                .map(|alert| self.postable(alert, now, lifetime))
                .collect();
            if alerts.is_empty() {
                return Ok(());
            }
            let body = serde_json::to_vec(&alerts)
                .map_err(|e| HandlerError(format!("cannot encode the alerts: {e}")))?;
            drop(alerts);
            self.poster.post(body).await?;
            // Delivered: these are sent; any resolved since wait for the next post.
            lock(&self.unsent_resolved).retain(|alert| !resolved.iter().any(|r| r.id == alert.id));
            *lock(&self.last_sent) = Some(Instant::now());
            Ok(())
        })
    }
}
