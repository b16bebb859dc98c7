//! What a cached response is stored under.

use std::sync::Arc;

use http::{HeaderName, HeaderValue, Request};

/// The request target, the caller's scope and the values of the varying headers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
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
                .map(|name| request.headers().get(name).cloned())
                .collect(),
        }
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn is_private(&self) -> bool {
        self.scope.is_some()
    }
}
