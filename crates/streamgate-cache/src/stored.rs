//! A stored response, a hit on it, and the `Cache-Status` (RFC 9211), `X-Cache` and `Age`
//! headers.

use std::{sync::Arc, time::Duration};

use axum::body::Body;
use bytes::Bytes;
use http::{
    HeaderMap, HeaderName, HeaderValue, Response, StatusCode,
    header::{AGE, SET_COOKIE},
};

/// `Cache-Status` (RFC 9211).
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");
/// `X-Cache`: `HIT`, `MISS` or `BYPASS`, for tools that read it.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// A response as a [`CacheStore`](crate::CacheStore) keeps it: status, headers and body.
///
/// Never holds `Set-Cookie`, nor the cache's own `Cache-Status` and `X-Cache`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl CachedResponse {
    /// The response to keep, without `Set-Cookie`, `Cache-Status` and `X-Cache`.
    #[must_use]
    pub fn new(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Self {
        let mut headers = headers.clone();
        headers.remove(SET_COOKIE);
        headers.remove(CACHE_STATUS);
        headers.remove(X_CACHE);
        Self {
            status,
            headers,
            body,
        }
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }
}

/// A fresh response found by a [`CacheStore`](crate::CacheStore): the response, how long ago it
/// was stored and how long it stays fresh.
#[derive(Debug, Clone)]
pub struct Hit {
    response: Arc<CachedResponse>,
    age: Duration,
    remaining: Duration,
}

impl Hit {
    /// `response`, stored `age` ago, fresh for `remaining` more.
    #[must_use]
    pub fn new(response: Arc<CachedResponse>, age: Duration, remaining: Duration) -> Self {
        Self {
            response,
            age,
            remaining,
        }
    }

    /// The stored response.
    #[must_use]
    pub fn response(&self) -> &CachedResponse {
        &self.response
    }

    /// The stored response, shared (to keep it in another store).
    #[must_use]
    pub fn shared_response(&self) -> Arc<CachedResponse> {
        self.response.clone()
    }

    /// How long ago it was stored (the `Age` header, in whole seconds).
    #[must_use]
    pub fn age(&self) -> Duration {
        self.age
    }

    /// How long it stays fresh (`ttl` of `Cache-Status`, in whole seconds).
    #[must_use]
    pub fn remaining(&self) -> Duration {
        self.remaining
    }

    /// The response served from it, with `Age`, `Cache-Status` and `X-Cache`.
    pub(crate) fn into_response(self) -> Response<Body> {
        let stored = &*self.response;
        let mut response = Response::new(Body::from(stored.body.clone()));
        *response.status_mut() = stored.status;
        let headers = response.headers_mut();
        headers.clone_from(&stored.headers);
        headers.insert(AGE, HeaderValue::from(self.age.as_secs()));
        headers.insert(
            CACHE_STATUS,
            header_value(&format!(
                "streamgate; hit; ttl={}",
                self.remaining.as_secs()
            )),
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
    /// The request asked not to be served from the cache (`no-cache`); the response was
    /// stored.
    RequestStored,
    /// The request could not be keyed safely (credentials without a security context).
    Bypass,
}

impl Forwarded {
    /// What happened when the response was stored after all.
    pub(crate) fn stored(self) -> Self {
        match self {
            Forwarded::Request | Forwarded::RequestStored => Forwarded::RequestStored,
            Forwarded::MissStored | Forwarded::Miss | Forwarded::Bypass => Forwarded::MissStored,
        }
    }

    /// Marks `headers` with what happened.
    pub(crate) fn mark(self, headers: &mut HeaderMap) {
        let (status, x_cache) = match self {
            Forwarded::MissStored => ("streamgate; fwd=uri-miss; stored", "MISS"),
            Forwarded::Miss => ("streamgate; fwd=uri-miss", "MISS"),
            Forwarded::Request => ("streamgate; fwd=request", "MISS"),
            Forwarded::RequestStored => ("streamgate; fwd=request; stored", "MISS"),
            Forwarded::Bypass => ("streamgate; fwd=bypass", "BYPASS"),
        };
        headers.insert(CACHE_STATUS, HeaderValue::from_static(status));
        headers.insert(X_CACHE, HeaderValue::from_static(x_cache));
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("ASCII made here")
}
