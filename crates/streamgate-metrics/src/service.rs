//! The service, future and guard of [`MetricsLayer`](crate::MetricsLayer).

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, ready},
};

use http::{Request, Response, header::CONTENT_LENGTH};
use pin_project_lite::pin_project;
use streamgate_core::route_label_from;
use tokio::time::Instant;
use tower_service::Service;

use crate::{
    body::MetricsBody,
    handles::{HandleCache, RouteMetrics, method_index},
};

/// The service made by [`MetricsLayer`](crate::MetricsLayer).
#[derive(Debug)]
pub struct Metrics<S> {
    inner: S,
    shared: Arc<ServiceHandles>,
}

/// The layer's handle cache and this service's memo of its route. `Router::layer` makes one
/// service per route and method, so the memo nearly always answers without a map lookup.
#[derive(Debug)]
struct ServiceHandles {
    cache: Arc<HandleCache>,
    memo: OnceLock<Arc<RouteMetrics>>,
}

impl<S: Clone> Clone for Metrics<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S> Metrics<S> {
    pub(crate) fn new(inner: S, cache: Arc<HandleCache>) -> Self {
        Self {
            inner,
            shared: Arc::new(ServiceHandles {
                cache,
                memo: OnceLock::new(),
            }),
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Metrics<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<MetricsBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let method = method_index(request.method());
        let template = route_label_from(request.extensions());
        let shared = &*self.shared;
        let route = match shared.memo.get() {
            Some(memo) if memo.is(method, template) => memo.clone(),
            _ => {
                let route = shared.cache.route(method, template);
                let _ = shared.memo.set(route.clone());
                route
            }
        };
        let guard = (!route.excluded).then(|| {
            let request_bytes = if shared.cache.config().body_sizes {
                request
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            } else {
                None
            };
            RequestGuard::start(route, request_bytes)
        });
        ResponseFuture {
            inner: self.inner.call(request),
            guard,
        }
    }
}

pin_project! {
    /// The response future of [`Metrics`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        guard: Option<RequestGuard>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<MetricsBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match ready!(this.inner.poll(cx)) {
            Ok(response) => response,
            Err(error) => {
                if let Some(guard) = this.guard {
                    guard.status = Some(STATUS_SERVICE_ERROR);
                }
                return Poll::Ready(Err(error));
            }
        };
        let mut guard = this.guard.take();
        if let Some(guard) = &mut guard {
            guard.status = Some(response.status().as_u16());
        }
        Poll::Ready(Ok(response.map(|body| MetricsBody::new(body, guard))))
    }
}

/// The status recorded for a request whose inner service returned an error, or whose response
/// future was dropped while the thread unwound from a panic (the handler panicked): no response
/// was produced, and the server failed.
pub(crate) const STATUS_SERVICE_ERROR: u16 = 500;

/// The status recorded for a request whose response future was dropped before a response was
/// produced, without a panic: the client closed the connection, or an outer layer (a timeout)
/// gave up on it. nginx's "499 Client Closed Request", so it is not a server error.
pub(crate) const STATUS_CLIENT_CLOSED: u16 = 499;

/// Holds one request's in-flight count; on drop it records the request and brings the in-flight
/// gauge back down. A request dropped without a response is recorded as
/// [`STATUS_SERVICE_ERROR`] when the thread is panicking, else as [`STATUS_CLIENT_CLOSED`].
#[derive(Debug)]
pub(crate) struct RequestGuard {
    route: Arc<RouteMetrics>,
    start: Instant,
    status: Option<u16>,
    request_bytes: Option<u64>,
    pub(crate) response_bytes: u64,
}

impl RequestGuard {
    fn start(route: Arc<RouteMetrics>, request_bytes: Option<u64>) -> Self {
        route.active.increment(1.0);
        Self {
            route,
            start: Instant::now(),
            status: None,
            request_bytes,
            response_bytes: 0,
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let responded = self.status.is_some();
        let status = self.status.unwrap_or_else(unfinished_status);
        let metrics = self.route.status(status);
        let now = Instant::now();
        let seconds = now.saturating_duration_since(self.start).as_secs_f64();
        metrics.duration.0.record(seconds);
        metrics.duration.1.record_at(seconds, now);
        if let (Some(histogram), Some(bytes)) = (&metrics.request_size, self.request_bytes) {
            histogram.record(bytes as f64);
        }
        if let (Some(histogram), true) = (&metrics.response_size, responded) {
            histogram.record(self.response_bytes as f64);
        }
        // Last, so that an observer who sees the gauge down also sees the request recorded.
        self.route.active.decrement(1.0);
    }
}

/// The status of a request dropped before its response: see [`RequestGuard`].
#[cold]
fn unfinished_status() -> u16 {
    if std::thread::panicking() {
        STATUS_SERVICE_ERROR
    } else {
        STATUS_CLIENT_CLOSED
    }
}
