//! The service made by [`CacheLayer`](crate::CacheLayer) and its response future.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::body::Body;
use bytes::Bytes;
use http::{
    Method, Request, Response, StatusCode,
    header::{AUTHORIZATION, CACHE_CONTROL, COOKIE, SET_COOKIE, VARY},
    response::Parts,
};
use pin_project_lite::pin_project;
use streamgate_core::{SecurityContext, route_label_from};
use tokio::time::Instant;
use tower_service::Service;

use crate::{
    CacheRoute,
    body::{Collected, collect_limited},
    directives::Directives,
    flight::{Turn, landed},
    key::CacheKey,
    layer::Shared,
    stored::{Forwarded, Stored},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

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
        let shared = self.shared.clone();
        if request.method() == Method::GET {
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
            if asked.no_cache || asked.no_store {
                shared.metrics.bypass.increment(1);
                let future = self.inner.call(request);
                let may_store = !asked.no_store;
                return ResponseFuture::boxed(fetch(
                    future,
                    shared,
                    key,
                    route,
                    may_store,
                    Forwarded::Request,
                ));
            }
            if let Some(response) = fresh(&shared, &key) {
                shared.metrics.hit.increment(1);
                return ResponseFuture::ready(response);
            }
            return match shared.flights.join(&key) {
                Turn::Lead(flight) => {
                    shared.metrics.miss.increment(1);
                    let future = self.inner.call(request);
                    ResponseFuture::boxed(async move {
                        let answer = fetch(future, shared, key, route, true, Forwarded::Miss).await;
                        drop(flight);
                        answer
                    })
                }
                Turn::Wait(waiting) => {
                    shared.metrics.collapsed.increment(1);
                    // The clone takes the place of the service that was driven to readiness.
                    let clone = self.inner.clone();
                    let mut inner = std::mem::replace(&mut self.inner, clone);
                    ResponseFuture::boxed(async move {
                        landed(waiting).await;
                        if let Some(response) = fresh(&shared, &key) {
                            return Ok(response);
                        }
                        let future = inner.call(request);
                        fetch(future, shared, key, route, true, Forwarded::Miss).await
                    })
                }
            };
        }
        if is_unsafe(request.method()) {
            let path = request.uri().path().to_owned();
            let future = self.inner.call(request);
            return ResponseFuture::boxed(async move {
                let response = future.await?;
                let status = response.status();
                if status.is_success() || status.is_redirection() {
                    let removed = shared
                        .store
                        .invalidate_entries_if(move |key, _| key.path() == path);
                    if removed.is_ok() {
                        shared.metrics.invalidated.increment(1);
                    }
                }
                Ok(response.map(Body::new))
            });
        }
        ResponseFuture::passthrough(self.inner.call(request))
    }
}

/// The stored response of `key`, while fresh.
fn fresh(shared: &Shared, key: &CacheKey) -> Option<Response<Body>> {
    let now = Instant::now();
    let stored = shared.store.get(key)?;
    let remaining = stored.remaining(now)?;
    Some(stored.response(now, remaining))
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

/// Sends the request on and stores the response when it may.
async fn fetch<F, ResBody, E>(
    future: F,
    shared: Arc<Shared>,
    key: CacheKey,
    route: CacheRoute,
    may_store: bool,
    not_stored: Forwarded,
) -> Result<Response<Body>, E>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let (mut parts, body) = future.await?.into_parts();
    let body = Body::new(body);
    let lifetime = may_store
        .then(|| lifetime(&parts, route, key.is_private(), &shared.vary))
        .flatten();
    let Some(ttl) = lifetime else {
        not_stored.mark(&mut parts.headers);
        return Ok(Response::from_parts(parts, body));
    };
    match collect_limited(body, shared.max_body_bytes).await {
        Collected::Whole(bytes) => {
            let stored = Stored::new(parts.status, &parts.headers, bytes.clone(), ttl);
            shared.store.insert(key, Arc::new(stored));
            shared.metrics.stored.increment(1);
            Forwarded::MissStored.mark(&mut parts.headers);
            Ok(Response::from_parts(parts, Body::from(bytes)))
        }
        Collected::Partial(body) => {
            not_stored.mark(&mut parts.headers);
            Ok(Response::from_parts(parts, body))
        }
    }
}

/// How long the response may be kept, or `None` when it may not be stored.
fn lifetime(
    parts: &Parts,
    route: CacheRoute,
    private_key: bool,
    vary: &[http::HeaderName],
) -> Option<Duration> {
    let headers = &parts.headers;
    if parts.status != StatusCode::OK || headers.contains_key(SET_COOKIE) {
        return None;
    }
    for value in headers.get_all(VARY) {
        let keyed = value.to_str().ok()?.split(',').all(|name| {
            let name = name.trim();
            name != "*" && vary.iter().any(|v| v.as_str().eq_ignore_ascii_case(name))
        });
        if !keyed {
            return None;
        }
    }
    let said = Directives::of(headers);
    if said.no_store || said.no_cache || (said.private && !private_key) {
        return None;
    }
    let ttl = said.lifetime().map_or(route.ttl, |l| l.min(route.ttl));
    (!ttl.is_zero()).then_some(ttl)
}

pin_project! {
    /// The response future of [`Cache`].
    pub struct ResponseFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        Passthrough { #[pin] future: F },
        Ready { response: Option<Response<Body>> },
        Boxed { future: BoxFuture<Result<Response<Body>, E>> },
    }
}

impl<F, E> ResponseFuture<F, E> {
    fn passthrough(future: F) -> Self {
        Self {
            kind: Kind::Passthrough { future },
        }
    }

    fn ready(response: Response<Body>) -> Self {
        Self {
            kind: Kind::Ready {
                response: Some(response),
            },
        }
    }

    fn boxed(future: impl Future<Output = Result<Response<Body>, E>> + Send + 'static) -> Self {
        Self {
            kind: Kind::Boxed {
                future: Box::pin(future),
            },
        }
    }
}

impl<F, E> std::fmt::Debug for ResponseFuture<F, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passthrough { future } => {
                Poll::Ready(Ok(ready!(future.poll(cx))?.map(Body::new)))
            }
            KindProj::Ready { response } => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
            KindProj::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}
