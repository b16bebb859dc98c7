//! A stored response and the `Cache-Status` (RFC 9211), `X-Cache` and `Age` headers.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{
    HeaderMap, HeaderName, HeaderValue, Response, StatusCode,
    header::{AGE, SET_COOKIE},
};
use tokio::time::Instant;

/// `Cache-Status` (RFC 9211).
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
/// `X-Cache`: `HIT`, `MISS` or `BYPASS`, for tools that read it.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// A response kept by the cache.
#[derive(Debug)]
pub(crate) struct Stored {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    stored_at: Instant,
    ttl: Duration,
}

impl Stored {
    pub(crate) fn new(status: StatusCode, headers: &HeaderMap, body: Bytes, ttl: Duration) -> Self {
        let mut headers = headers.clone();
        headers.remove(SET_COOKIE);
        headers.remove(CACHE_STATUS);
        headers.remove(X_CACHE);
        Self {
            status,
            headers,
            body,
            stored_at: Instant::now(),
            ttl,
        }
    }

    /// How long it stays fresh from `now`; `None` once stale.
    pub(crate) fn remaining(&self, now: Instant) -> Option<Duration> {
        self.ttl
            .checked_sub(now.saturating_duration_since(self.stored_at))
            .filter(|left| !left.is_zero())
    }

    /// The response served from it, `remaining` before it goes stale.
    pub(crate) fn response(&self, now: Instant, remaining: Duration) -> Response<Body> {
        let mut response = Response::new(Body::from(self.body.clone()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.clone_from(&self.headers);
        let age = now.saturating_duration_since(self.stored_at).as_secs();
        headers.insert(AGE, HeaderValue::from(age));
        headers.insert(
            CACHE_STATUS,
            header_value(&format!("streamgate; hit; ttl={}", remaining.as_secs())),
        );
        headers.insert(X_CACHE, HeaderValue::from_static("HIT"));
        response
    }
}

/// What the cache did with a request it did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forwarded {
    /// Nothing fresh was stored; the response was stored.
    MissStored,
    /// Nothing fresh was stored; the response could not be stored.
    Miss,
    /// The request asked not to be served from the cache (`Cache-Control: no-cache` or
    /// `no-store`).
    Request,
    /// The request could not be keyed safely (credentials without a security context).
    Bypass,
}

impl Forwarded {
    /// Marks `headers` with what happened.
    pub(crate) fn mark(self, headers: &mut HeaderMap) {
        let (status, x_cache) = match self {
            Forwarded::MissStored => ("streamgate; fwd=uri-miss; stored", "MISS"),
            Forwarded::Miss => ("streamgate; fwd=uri-miss", "MISS"),
            Forwarded::Request => ("streamgate; fwd=request", "MISS"),
            Forwarded::Bypass => ("streamgate; fwd=bypass", "BYPASS"),
        };
        headers.insert(CACHE_STATUS, HeaderValue::from_static(status));
        headers.insert(X_CACHE, HeaderValue::from_static(x_cache));
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("ASCII made here")
}
