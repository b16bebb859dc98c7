//! A miss: the request sent on (or, when another request of the key is already out, a wait for
//! its answer), and its response stored when it may be.

use std::{future::Future, sync::Arc, time::Duration};

use axum::body::Body;
use bytes::Bytes;
use http::{
    Request, Response, StatusCode,
    header::{SET_COOKIE, VARY},
    response::Parts,
};
use tokio::sync::watch;
use tower_service::Service;

use crate::{
    CacheKey, CacheRoute, CachedResponse, Generation, Hit, Lookup, StoreError,
    body::{Collected, collect_limited},
    directives::Directives,
    flight::{Flight, Turn, landed},
    layer::Shared,
    metrics::Operation,
    stored::Forwarded,
};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Whether a response sent on may be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// The request said `no-store`, or the lookup failed (a store that failed once is not asked
    /// twice for one request).
    Never,
    /// A lookup missed: stored unless the path was invalidated since.
    IfUnchanged(Generation),
}

/// Whether this miss sends the request on (holding the key's flight when its answer may be
/// stored) or waits for the request of the same key that is already out.
pub(crate) fn take_off(
    shared: &Shared,
    key: &CacheKey,
    keep: Keep,
) -> Result<Option<Flight>, watch::Receiver<()>> {
    if keep == Keep::Never {
        shared.metrics.miss.increment(1);
        return Ok(None);
    }
    match shared.flights.join(key) {
        Turn::Lead(flight) => {
            shared.metrics.miss.increment(1);
            Ok(Some(flight))
        }
        Turn::Wait(waiting) => {
            shared.metrics.collapsed.increment(1);
            Err(waiting)
        }
    }
}

/// Sends the request on; the flight lands (waking its waiters) once the answer is stored.
pub(crate) async fn lead<F, ResBody, E>(
    future: F,
    shared: Arc<Shared>,
    key: CacheKey,
    route: CacheRoute,
    keep: Keep,
    flight: Option<Flight>,
) -> Result<Response<Body>, E>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let answer = fetch(future, shared, key, route, keep, Forwarded::Miss).await;
    drop(flight);
    answer
}

/// Waits for the request of the same key that is out, then answers from the store, or sends
/// the request on when its answer was not stored.
pub(crate) async fn wait_then_fetch<S, ReqBody, ResBody>(
    mut inner: S,
    request: Request<ReqBody>,
    shared: Arc<Shared>,
    key: CacheKey,
    route: CacheRoute,
    waiting: watch::Receiver<()>,
) -> Result<Response<Body>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    landed(waiting).await;
    let keep = match shared.looked_up(shared.store.lookup(&key).await) {
        Ok(hit) => return Ok(hit.into_response()),
        Err(keep) => keep,
    };
    fetch(
        inner.call(request),
        shared,
        key,
        route,
        keep,
        Forwarded::Miss,
    )
    .await
}

impl Shared {
    /// A lookup's hit, or how the response sent on instead may be kept; counts a failure.
    /// How to keep the answer of a request that skipped the lookup, given the path's generation
    /// read before it was sent on.
    pub(crate) fn generation_read(&self, read: Result<Generation, StoreError>) -> Keep {
        match read {
            Ok(generation) => Keep::IfUnchanged(generation),
            Err(error) => {
                self.store_failed(Operation::Lookup, &error);
                Keep::Never
            }
        }
    }

    pub(crate) fn looked_up(&self, found: Result<Lookup, StoreError>) -> Result<Hit, Keep> {
        match found {
            Ok(Lookup::Hit(hit)) => Ok(hit),
            Ok(Lookup::Miss(generation)) => Err(Keep::IfUnchanged(generation)),
            Err(error) => {
                self.store_failed(Operation::Lookup, &error);
                Err(Keep::Never)
            }
        }
    }
}

/// Sends the request on and stores the response when it may.
pub(crate) async fn fetch<F, ResBody, E>(
    future: F,
    shared: Arc<Shared>,
    key: CacheKey,
    route: CacheRoute,
    keep: Keep,
    not_stored: Forwarded,
) -> Result<Response<Body>, E>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let (mut parts, body) = future.await?.into_parts();
    let body = Body::new(body);
    let lifetime = (keep != Keep::Never)
        .then(|| lifetime(&parts, route, key.is_private(), &shared.vary))
        .flatten();
    let Some(ttl) = lifetime else {
        not_stored.mark(&mut parts.headers);
        return Ok(Response::from_parts(parts, body));
    };
    match collect_limited(body, shared.max_body_bytes).await {
        Collected::Whole(bytes) => {
            let response = CachedResponse::new(parts.status, &parts.headers, bytes.clone());
            let seen = match keep {
                Keep::IfUnchanged(generation) => Some(generation),
                Keep::Never => None,
            };
            let kept = match shared.store.store(key, Arc::new(response), ttl, seen).await {
                Ok(kept) => kept,
                Err(error) => {
                    shared.store_failed(Operation::Store, &error);
                    false
                }
            };
            if kept {
                shared.metrics.stored.increment(1);
                shared.metrics.count_entries(&*shared.store);
                not_stored.stored().mark(&mut parts.headers);
            } else {
                not_stored.mark(&mut parts.headers);
            }
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
