//! What a cached response is stored under.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Request};

/// What a response is stored under: the request target, the caller's scope and the values of
/// the varying headers.
///
/// Made by the layer for each `GET` of a cached route; a [`CacheStore`](crate::CacheStore)
/// reads it to find or file an entry. Two requests have equal keys exactly when one may be
/// answered with the other's response.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    path: Box<str>,
    query: Option<Box<str>>,
    /// The user id a private entry belongs to; `None` for anonymous callers and shared routes.
    scope: Option<Arc<str>>,
    vary: Box<[Option<HeaderValue>]>,
}

impl CacheKey {
    pub(crate) fn new<B>(
        request: &Request<B>,
        scope: Option<Arc<str>>,
        vary: &[HeaderName],
    ) -> Self {
        let uri = request.uri();
        Self {
            path: uri.path().into(),
            query: uri.query().map(Into::into),
            scope,
            vary: vary
                .iter()
                .map(|name| vary_value(request.headers(), name))
                .collect(),
        }
    }

    /// The request's path: the unit of invalidation
    /// ([`CacheStore::invalidate`](crate::CacheStore::invalidate)).
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The request's query, without the `?`.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The user id of a private entry; `None` for anonymous callers and shared routes.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The request's values of the layer's `vary` headers, in the layer's order (`None` where
    /// the request lacks the header; a header sent on several lines is one value, its lines
    /// joined by `, ` as RFC 9110 reads them).
    #[must_use]
    pub fn vary(&self) -> &[Option<HeaderValue>] {
        &self.vary
    }

    /// Whether the entry belongs to one user.
    #[must_use]
    pub fn is_private(&self) -> bool {
        self.scope.is_some()
    }
}

/// The value of `name` in `headers`, several lines joined by `, `: `Accept: a` and `Accept: b`
/// on two lines mean `Accept: a, b`, and must not share an entry with `Accept: a` alone.
fn vary_value(headers: &HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(first.clone());
    };
    let mut joined = first.as_bytes().to_vec();
    for value in std::iter::once(second).chain(values) {
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(value.as_bytes());
    }
    // Valid values joined by `, ` are a valid value.
    HeaderValue::from_bytes(&joined).ok()
}
