//! Two settings of `security` every service should weigh: a bound on how long a request may take
//! (`request_timeout`), and the response headers that keep browsers from misreading an API's
//! answers (`response_headers`, the OWASP secure-headers set for APIs). Both are off by default.
//!
//! ```yaml
//! security:
//!   request_timeout: 30s            # then 503 problem+json; the handler's future is dropped
//!   response_headers:
//!     enabled: true                 # nosniff, DENY framing, no referrer, a closed CSP
//!     content_security_policy: "default-src 'none'; frame-ancestors 'none'"
//!     hsts: 365d                    # Strict-Transport-Security; only when clients use HTTPS
//! ```

use std::{sync::Arc, time::Duration};

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde::Deserialize;
use streamgate_core::Problem;

/// The default `Content-Security-Policy`: an API's answers load nothing and are framed nowhere.
pub const API_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// `security.response_headers`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ResponseHeadersConfig {
    /// Whether the headers are added (default false).
    pub enabled: bool,
    /// `Content-Security-Policy` (default [`API_CONTENT_SECURITY_POLICY`]); empty for none.
    pub content_security_policy: String,
    /// `Strict-Transport-Security: max-age=<seconds>; includeSubDomains` (default: not sent).
    /// Set it only when every client reaches the service over HTTPS.
    #[serde(with = "humantime_serde")]
    pub hsts: Option<Duration>,
}

impl Default for ResponseHeadersConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            content_security_policy: API_CONTENT_SECURITY_POLICY.to_owned(),
            hsts: None,
        }
    }
}

/// Security headers added to every response of the layered routes that does not set them
/// itself: `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
/// `Referrer-Policy: no-referrer`, a `Content-Security-Policy` and, when asked,
/// `Strict-Transport-Security`.
///
/// ```
/// use std::time::Duration;
/// use streamgate::SecureHeaders;
///
/// let headers = SecureHeaders::api().hsts(Duration::from_secs(365 * 86_400));
/// let stack = streamgate::Stack::new("shop").secure_headers(headers);
/// # let _ = stack;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct SecureHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl SecureHeaders {
    /// The OWASP set for APIs, with [`API_CONTENT_SECURITY_POLICY`].
    pub fn api() -> Self {
        Self {
            headers: vec![
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
                (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(API_CONTENT_SECURITY_POLICY),
                ),
            ],
        }
    }

    /// Replaces the `Content-Security-Policy`; an empty policy sends none.
    ///
    /// # Errors
    /// When `policy` cannot be a header value (control characters).
    pub fn content_security_policy(mut self, policy: &str) -> Result<Self, String> {
        self.headers
            .retain(|(name, _)| name != header::CONTENT_SECURITY_POLICY);
        if !policy.is_empty() {
            let value = HeaderValue::from_str(policy)
                .map_err(|_| format!("content_security_policy {policy:?} is not a header value"))?;
            self.headers.push((header::CONTENT_SECURITY_POLICY, value));
        }
        Ok(self)
    }

    /// Adds `Strict-Transport-Security: max-age=<max_age in seconds>; includeSubDomains`.
    pub fn hsts(mut self, max_age: Duration) -> Self {
        self.headers
            .retain(|(name, _)| name != header::STRICT_TRANSPORT_SECURITY);
        let value = format!("max-age={}; includeSubDomains", max_age.as_secs());
        self.headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_str(&value).expect("digits and ASCII"),
        ));
        self
    }

    /// The headers, in the order they are added.
    #[must_use]
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// The set `config` describes, or `None` when it is off.
    pub(crate) fn from_config(config: &ResponseHeadersConfig) -> Result<Option<Self>, String> {
        if !config.enabled {
            return Ok(None);
        }
        let mut headers = Self::api().content_security_policy(&config.content_security_policy)?;
        if let Some(max_age) = config.hsts {
            headers = headers.hsts(max_age);
        }
        Ok(Some(headers))
    }
}

/// Adds each of `headers` that `response` does not set.
pub(crate) fn add_absent<B>(
    headers: &Arc<SecureHeaders>,
) -> impl Fn(http::Response<B>) -> http::Response<B> + Clone + Send + Sync + 'static {
    let headers = headers.clone();
    move |mut response: http::Response<B>| {
        let map = response.headers_mut();
        for (name, value) in &headers.headers {
            if !map.contains_key(name) {
                map.insert(name.clone(), value.clone());
            }
        }
        response
    }
}

/// The answer to a request that ran past `timeout`: 503 problem+json.
pub(crate) fn timed_out(
    timeout: Duration,
) -> impl Fn(tower::BoxError) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move |_elapsed| {
        std::future::ready(
            Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                .with_title("Request Timed Out")
                .with_detail(format!(
                    "the request took longer than {} ms",
                    timeout.as_millis()
                ))
                .into_response(),
        )
    }
}
