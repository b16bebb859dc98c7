//! The service made by [`CacheLayer`](crate::CacheLayer) and its response future.

use std::{
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use axum::body::Body;
use bytes::Bytes;
use http::{
    Method, Request, Response,
    header::{AUTHORIZATION, CACHE_CONTROL, COOKIE},
};
use streamgate_core::{SecurityContext, route_label_from};
use tower_service::Service;

use crate::{
    CacheKey, CacheRoute,
    directives::Directives,
    fetch::{BoxError, Keep, fetch, lead, take_off, wait_then_fetch},
    future::ResponseFuture,
    layer::Shared,
    metrics::Operation,
    stored::Forwarded,
};

/// The cache service; made by [`CacheLayer`](crate::CacheLayer).
#[derive(Debug, Clone)]
pub struct Cache<S> {
    inner: S,
    shared: Arc<Shared>,
    /// This route's template and settings, found at its first request (`Router::layer` makes one
    /// service per route).
    memo: Arc<OnceLock<(Box<str>, Option<CacheRoute>)>>,
}

impl<S> Cache<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        Self {
            inner,
            shared,
            memo: Arc::new(OnceLock::new()),
        }
    }

    fn route(&self, extensions: &http::Extensions) -> Option<CacheRoute> {
        let template = route_label_from(extensions);
        if let Some((memo, route)) = self.memo.get()
            && **memo == *template
        {
            return *route;
        }
        let route = self.shared.routes.get(template).copied();
        let _ = self.memo.set((template.into(), route));
        route
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Cache<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let Some(route) = self.route(request.extensions()) else {
            return ResponseFuture::passthrough(self.inner.call(request));
        };
        if request.method() == Method::GET {
            return self.get(request, route);
        }
        if is_unsafe(request.method()) {
            let shared = self.shared.clone();
            let path = crate::normalized_path(request.uri().path()).into_owned();
            let future = self.inner.call(request);
            return ResponseFuture::boxed(async move {
                let response = future.await?;
                let status = response.status();
                if status.is_success() || status.is_redirection() {
                    match shared.store.invalidate(&path).await {
                        Ok(()) => {
                            shared.metrics.invalidated.increment(1);
                            shared.metrics.count_entries(&*shared.store);
                        }
                        Err(error) => shared.store_failed(Operation::Invalidate, &error),
                    }
                }
                Ok(response.map(Body::new))
            });
        }
        ResponseFuture::passthrough(self.inner.call(request))
    }
}

impl<S: Clone> Cache<S> {
    /// A `GET` of a cached route.
    fn get<ReqBody, ResBody>(
        &mut self,
        request: Request<ReqBody>,
        route: CacheRoute,
    ) -> ResponseFuture<S::Future, S::Error>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: 'static,
        ReqBody: Send + 'static,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        let shared = self.shared.clone();
        let Some(key) = key_of(&request, route, &shared.vary) else {
            shared.metrics.bypass.increment(1);
            let future = self.inner.call(request);
            return ResponseFuture::boxed(async move {
                let mut response = future.await?.map(Body::new);
                Forwarded::Bypass.mark(response.headers_mut());
                Ok(response)
            });
        };
        let asked = if request.headers().contains_key(CACHE_CONTROL) {
            Directives::of(request.headers())
        } else {
            Directives::default()
        };
        if asked.no_store {
            shared.metrics.bypass.increment(1);
            let future = self.inner.call(request);
            return ResponseFuture::boxed(fetch(
                future,
                shared,
                key,
                route,
                Keep::Never,
                Forwarded::Request,
            ));
        }
        if asked.no_cache {
            // No lookup, but the answer replaces the entry: unless a write invalidates the path
            // while it is fetched, which the path's generation, read first, tells the store.
            shared.metrics.bypass.increment(1);
            let mut generation = shared.store.generation(&crate::normalized_path(key.path()));
            if let Some(generation) = generation.take_ready() {
                let keep = shared.generation_read(generation);
                let future = self.inner.call(request);
                return ResponseFuture::boxed(fetch(
                    future,
                    shared,
                    key,
                    route,
                    keep,
                    Forwarded::Request,
                ));
            }
            let mut inner = self.take_ready_inner();
            return ResponseFuture::boxed(async move {
                let keep = shared.generation_read(generation.await);
                fetch(
                    inner.call(request),
                    shared,
                    key,
                    route,
                    keep,
                    Forwarded::Request,
                )
                .await
            });
        }
        let mut lookup = shared.store.lookup(&key);
        let keep = match lookup.take_ready().map(|found| shared.looked_up(found)) {
            Some(Ok(hit)) => {
                shared.metrics.hit.increment(1);
                return ResponseFuture::ready(hit.into_response());
            }
            Some(Err(keep)) => keep,
            None => {
                // A networked store: the rest happens in the response future.
                let mut inner = self.take_ready_inner();
                return ResponseFuture::boxed(async move {
                    let keep = match shared.looked_up(lookup.await) {
                        Ok(hit) => {
                            shared.metrics.hit.increment(1);
                            return Ok(hit.into_response());
                        }
                        Err(keep) => keep,
                    };
                    match take_off(&shared, &key, keep) {
                        Ok(flight) => {
                            lead(inner.call(request), shared, key, route, keep, flight).await
                        }
                        Err(waiting) => {
                            wait_then_fetch(inner, request, shared, key, route, waiting).await
                        }
                    }
                });
            }
        };
        match take_off(&shared, &key, keep) {
            Ok(flight) => {
                let future = self.inner.call(request);
                ResponseFuture::boxed(lead(future, shared, key, route, keep, flight))
            }
            Err(waiting) => {
                let inner = self.take_ready_inner();
                ResponseFuture::boxed(wait_then_fetch(inner, request, shared, key, route, waiting))
            }
        }
    }

    /// The service that was driven to readiness, for a request sent on later; a clone takes its
    /// place.
    fn take_ready_inner(&mut self) -> S {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }
}

fn is_unsafe(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The key of a `GET` on a cached route, or `None` when the caller cannot be told apart: the
/// request carries credentials but no security context said whose they are.
fn key_of<B>(
    request: &Request<B>,
    route: CacheRoute,
    vary: &[http::HeaderName],
) -> Option<CacheKey> {
    let scope = if route.shared {
        None
    } else {
        match request.extensions().get::<SecurityContext>() {
            Some(context) => Some(Arc::from(context.user_id())),
            None => {
                let headers = request.headers();
                if headers.contains_key(AUTHORIZATION) || headers.contains_key(COOKIE) {
                    return None;
                }
                None
            }
        }
    };
    Some(CacheKey::new(request, scope, vary))
}
