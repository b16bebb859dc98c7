//! What the layer writes into responses: the IETF `RateLimit` / `RateLimit-Policy` headers
//! (draft-ietf-httpapi-ratelimit-headers-11), legacy `X-RateLimit-*`, and the 429 itself.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};
use smallvec::SmallVec;
use streamgate_core::{AuditReason, PROBLEM_JSON, Problem};

use crate::{Decision, quota::ceil_seconds};

/// The `RateLimit` header: remaining units and reset time of each policy.
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// The `RateLimit-Policy` header: quota and window of each policy.
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// Legacy `X-RateLimit-Limit` (burst of the tightest policy).
pub static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// Legacy `X-RateLimit-Remaining` (fewest units left over all policies).
pub static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// Legacy `X-RateLimit-Reset` (seconds until the tightest policy is full again).
pub static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Left in the extensions of a 429 response: which policies the request violated, for the audit
/// layer. Holds policy names only, never the key (client address, user id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited {
    policies: SmallVec<[Arc<str>; 2]>,
    retry_after: Duration,
}

impl RateLimited {
    pub(crate) fn new(policies: SmallVec<[Arc<str>; 2]>, retry_after: Duration) -> Self {
        Self {
            policies,
            retry_after,
        }
    }

    /// The names of the violated policies.
    pub fn policies(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|name| &**name)
    }

    /// The first violated policy.
    #[must_use]
    pub fn policy(&self) -> &str {
        self.policies.first().map_or("", |name| name)
    }

    /// The `Retry-After` sent with the 429.
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

/// Seconds for a `t=` or `Retry-After`: rounded up.
pub(crate) fn whole_seconds(duration: Duration) -> u64 {
    ceil_seconds(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX))
}

/// The `RateLimit-Policy` item of one policy: `"name";q=<burst>;w=<seconds>`.
pub(crate) fn policy_item(name: &str, quota: &crate::Quota) -> String {
    format!(
        "\"{name}\";q={};w={}",
        quota.burst_size(),
        quota.window_seconds()
    )
}

/// Formats the `RateLimit` header of several policies on the stack (one policy takes under 100
/// bytes); the header value is then one exact-size allocation.
pub(crate) struct RateLimitValue {
    buffer: [u8; 256],
    len: usize,
    spill: Vec<u8>,
}

impl RateLimitValue {
    pub(crate) fn new() -> Self {
        Self {
            buffer: [0; 256],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if self.spill.is_empty() && end <= self.buffer.len() {
            self.buffer[self.len..end].copy_from_slice(bytes);
            self.len = end;
        } else {
            if self.spill.is_empty() {
                self.spill.extend_from_slice(&self.buffer[..self.len]);
            }
            self.spill.extend_from_slice(bytes);
        }
    }

    pub(crate) fn push(&mut self, name: &str, decision: &Decision) {
        if self.len > 0 || !self.spill.is_empty() {
            self.write(b", ");
        }
        let mut numbers = itoa::Buffer::new();
        self.write(b"\"");
        self.write(name.as_bytes());
        self.write(b"\";r=");
        self.write(numbers.format(decision.remaining()).as_bytes());
        self.write(b";t=");
        self.write(numbers.format(whole_seconds(decision.reset())).as_bytes());
    }

    pub(crate) fn into_header(self) -> Option<HeaderValue> {
        let bytes = if self.spill.is_empty() {
            &self.buffer[..self.len]
        } else {
            &self.spill[..]
        };
        HeaderValue::from_bytes(bytes).ok()
    }
}

/// Headers computed before the inner service runs and added to its response.
#[derive(Debug)]
pub(crate) struct RateHeaders {
    pub(crate) ratelimit: Option<HeaderValue>,
    pub(crate) policy: HeaderValue,
    pub(crate) legacy: Option<Box<[HeaderValue; 3]>>,
}

impl RateHeaders {
    /// Adds the headers to a response, keeping what a rate-limit layer nested inside this one
    /// already wrote there.
    ///
    /// `RateLimit` and `RateLimit-Policy` are structured-field Lists, so several field lines
    /// combine into one list (RFC 9110 section 5.3): this layer's policies are appended as
    /// another line after the inner layer's. The legacy `X-RateLimit-*` triple names a single
    /// policy, the tightest; the inner layer's stays when it has no more units left than this
    /// layer's. `Retry-After` is never touched here, so an inner layer's 429 keeps its own.
    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        // `append` on a name the map does not hold is the same single insert as `insert`.
        if let Some(value) = self.ratelimit {
            headers.append(RATELIMIT.clone(), value);
        }
        headers.append(RATELIMIT_POLICY.clone(), self.policy);
        if let Some(legacy) = self.legacy {
            let [limit, remaining, reset] = *legacy;
            if let Some(inner) = headers.get(&X_RATELIMIT_REMAINING)
                && units(inner) <= units(&remaining)
            {
                return;
            }
            headers.insert(X_RATELIMIT_LIMIT.clone(), limit);
            headers.insert(X_RATELIMIT_REMAINING.clone(), remaining);
            headers.insert(X_RATELIMIT_RESET.clone(), reset);
        }
    }
}

/// The number in an `X-RateLimit-Remaining` value; one that is not a number counts as none left,
/// so it is kept rather than replaced.
fn units(value: &HeaderValue) -> u64 {
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Legacy headers from the tightest decision (fewest units left).
pub(crate) fn legacy_headers(burst: u32, decision: &Decision) -> Box<[HeaderValue; 3]> {
    Box::new([
        HeaderValue::from(burst),
        HeaderValue::from(decision.remaining()),
        HeaderValue::from(whole_seconds(decision.reset())),
    ])
}

/// The problem+json body of a 429 that violated `policies`.
pub(crate) fn problem_body<'a>(policies: impl Iterator<Item = &'a str> + Clone) -> Bytes {
    let names: Vec<&str> = policies.collect();
    let detail = if names.len() == 1 {
        format!(
            "Too many requests under the rate-limit policy \"{}\"; retry after the time in Retry-After.",
            names[0]
        )
    } else {
        "Too many requests under several rate-limit policies; retry after the time in Retry-After."
            .to_owned()
    };
    Bytes::from(
        Problem::new(StatusCode::TOO_MANY_REQUESTS)
            .with_title("Too Many Requests")
            .with_detail(detail)
            .with_member("violated-policies", serde_json::json!(names))
            .to_json(),
    )
}

/// A 429 with its body and headers; `RateLimited` and the audit reason `rate_limited` in its
/// extensions.
pub(crate) fn too_many_requests<B: From<Bytes>>(
    body: Bytes,
    headers: RateHeaders,
    violation: RateLimited,
) -> Response<B> {
    let retry_after = whole_seconds(violation.retry_after).max(1);
    let mut response = Response::new(B::from(body));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let map = response.headers_mut();
    map.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    map.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    headers.apply(map);
    let extensions = response.extensions_mut();
    extensions.insert(violation);
    extensions.insert(AuditReason::new("rate_limited"));
    response
}

/// A 503 when the store failed and the layer fails closed; the audit reason is
/// `rate_limit_store_unavailable`.
pub(crate) fn store_unavailable<B: From<Bytes>>() -> Response<B> {
    let body = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .with_title("Rate limit unavailable")
        .with_detail("The rate-limit store could not decide; try again shortly.")
        .to_json();
    let mut response = Response::new(B::from(Bytes::from(body)));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
        .extensions_mut()
        .insert(AuditReason::new("rate_limit_store_unavailable"));
    response
}
