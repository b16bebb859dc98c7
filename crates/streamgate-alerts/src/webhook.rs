//! [`WebhookHandler`]: posts each change as JSON.

use std::time::Duration;

use serde::Serialize;

use crate::{
    Alert, AlertHandler, AlertState, BoxFuture, HandlerError, Notification,
    http::{HandlerConfigError, JsonPoster},
};

/// Posts the alerts that changed to a URL as JSON:
///
/// ```json
/// {"status":"firing","alerts":[{"id":"HighErrorRate","severity":"critical","state":"firing",
///   "value":0.25,"summary":"...","labels":{...},"active_since":"...","fired_at":"...",
///   "resolved_at":null}]}
/// ```
///
/// `status` is `firing` when any alert in the list fires, else `resolved`. A non-2xx answer is
/// a failed notification (counted, logged; the next change is sent as usual).
#[derive(Debug, Clone)]
pub struct WebhookHandler {
    poster: JsonPoster,
}

#[derive(Serialize)]
struct Payload<'a> {
    status: &'static str,
    alerts: &'a [Alert],
}

impl WebhookHandler {
    /// Posts to `url` (http; https with the `https` feature), each request within 10 s.
    ///
    /// # Errors
    /// When `url` is not an http(s) URL.
    pub fn new(url: &str) -> Result<Self, HandlerConfigError> {
        Self::with_timeout(url, Duration::from_secs(10))
    }

    /// [`new`](Self::new) with another request timeout.
    ///
    /// # Errors
    /// When `url` is not an http(s) URL.
    pub fn with_timeout(url: &str, timeout: Duration) -> Result<Self, HandlerConfigError> {
        Ok(Self {
            poster: JsonPoster::new(url, timeout)?,
        })
    }
}

impl AlertHandler for WebhookHandler {
    fn name(&self) -> &str {
        "webhook"
    }

    fn notify<'a>(
        &'a self,
        notification: &'a Notification,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let firing = notification
                .changed
                .iter()
                .any(|a| a.state == AlertState::Firing);
            let payload = Payload {
                status: if firing { "firing" } else { "resolved" },
                alerts: &notification.changed,
            };
            let body = serde_json::to_vec(&payload)
                .map_err(|e| HandlerError(format!("cannot encode the alerts: {e}")))?;
            self.poster.post(body).await
        })
    }
}
