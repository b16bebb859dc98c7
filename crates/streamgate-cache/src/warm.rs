//! Cache warming, the seed's `Warm()`: on start, on a schedule (hourly by default) and on
//! demand, [`CacheWarmer`] sends `GET` for each of its paths through the whole service, so every
//! layer in front of the cache (authentication, authorization, rate limits) decides as for a
//! client, and the cache stores the answers where a client's request would find them.
//!
//! Entries are keyed by the values of the layer's `vary` headers (`Accept` and
//! `Accept-Encoding` by default), so a warmed entry is found by the clients that send the same
//! values: by default warming requests say `Accept: */*` and no `Accept-Encoding`, as curl,
//! reqwest and a browser's `fetch` (for `Accept`) do; [`CacheWarmer::headers`] (config
//! `warm.headers`) sends what your clients send instead.
//!
//! Each warming request says `Cache-Control: no-cache`, so a path still fresh in the cache is
//! fetched again and its entry replaced: a schedule shorter than the TTL keeps hot paths from
//! ever missing. Requests carry no credentials, so warm the routes every caller shares
//! ([`CacheRoute::shared`](crate::CacheRoute::shared)) or the entries anonymous callers get.

use std::{fmt, sync::Arc, time::Duration};

use axum::body::Body;
use http::{
    HeaderName, HeaderValue, Request, StatusCode,
    header::{ACCEPT, CACHE_CONTROL, USER_AGENT},
};
use http_body_util::BodyExt;
use metrics::Counter;
use streamgate_core::MetricsHandle;
use tower_service::Service;

use crate::CACHE_STATUS;

const WARMED: &str = "streamgate_cache_warmed_total";

/// The `User-Agent` of warming requests, so logs and access rules can tell them apart.
pub const WARMER_USER_AGENT: &str = "streamgate-cache-warmer";

/// What warming did with one path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WarmOutcome {
    /// The answer was stored.
    Stored,
    /// The service answered, but the cache did not keep the answer: the status was not 200, the
    /// path is not on a cached route, or the response said not to store it.
    NotStored(StatusCode),
    /// The service failed, or its body could not be read.
    Failed,
}

/// What one round of warming did, path by path, in the warmer's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarmReport {
    /// Each path and its outcome.
    pub paths: Vec<(String, WarmOutcome)>,
}

impl WarmReport {
    /// How many answers were stored.
    #[must_use]
    pub fn stored(&self) -> usize {
        self.paths
            .iter()
            .filter(|(_, outcome)| *outcome == WarmOutcome::Stored)
            .count()
    }
}

#[derive(Debug)]
struct Counters {
    stored: Counter,
    not_stored: Counter,
    failed: Counter,
}

/// Warms the cache of a service by requesting its paths. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use streamgate_cache::{CacheLayer, CacheRoute, CacheWarmer, WarmOutcome};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cache = CacheLayer::builder()
///     .route("/catalog", CacheRoute::ttl(Duration::from_secs(600)).shared())
///     .build();
/// let app = Router::new()
///     .route("/catalog", get(|| async { "every product" }))
///     .layer(cache.clone());
///
/// let warmer = CacheWarmer::new(app, ["/catalog", "/missing"]);
/// let report = warmer.warm().await;
/// assert_eq!(report.paths[0].1, WarmOutcome::Stored);
/// assert!(matches!(report.paths[1].1, WarmOutcome::NotStored(status) if status == 404));
/// assert_eq!(cache.entry_count(), Some(1));
/// // warmer.spawn(Duration::from_secs(3600)) warms now and then every hour.
/// # }
/// ```
#[derive(Clone)]
pub struct CacheWarmer<S> {
    service: S,
    paths: Arc<[String]>,
    headers: Arc<[(HeaderName, HeaderValue)]>,
    counters: Arc<Counters>,
}

impl<S> fmt::Debug for CacheWarmer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheWarmer")
            .field("paths", &self.paths)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl<S> CacheWarmer<S>
where
    S: Service<Request<Body>> + Clone + Send + 'static,
    S::Response: Into<http::Response<Body>>,
    S::Future: Send,
{
    /// A warmer that requests `paths` (each a path with its query, `/catalog?page=1`) from
    /// `service`, counting in the global recorder.
    pub fn new<P: Into<String>>(service: S, paths: impl IntoIterator<Item = P>) -> Self {
        Self::with_metrics(service, paths, &MetricsHandle::global())
    }

    /// A warmer counting its outcomes in `metrics`
    /// (`streamgate_cache_warmed_total{outcome="stored|not_stored|failed"}`).
    pub fn with_metrics<P: Into<String>>(
        service: S,
        paths: impl IntoIterator<Item = P>,
        metrics: &MetricsHandle,
    ) -> Self {
        metrics.describe_counter(
            WARMED,
            "Paths requested by the cache warmer, by outcome (stored, not_stored, failed).",
        );
        let counter = |outcome: &str| metrics.counter(WARMED, &[("outcome", outcome)]);
        Self {
            service,
            paths: paths.into_iter().map(Into::into).collect(),
            headers: Arc::new([(ACCEPT, HeaderValue::from_static("*/*"))]),
            counters: Arc::new(Counters {
                stored: counter("stored"),
                not_stored: counter("not_stored"),
                failed: counter("failed"),
            }),
        }
    }

    /// The paths it requests.
    #[must_use]
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The headers each warming request carries besides `Cache-Control: no-cache` and
    /// `User-Agent`, in place of the default `Accept: */*`: the values of the cache's `vary`
    /// headers your clients send, so that they find the warmed entries.
    #[must_use]
    pub fn headers(mut self, headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>) -> Self {
        self.headers = headers.into_iter().collect();
        self
    }

    /// Requests every path once, one after the other (on demand).
    pub async fn warm(&self) -> WarmReport {
        let mut report = WarmReport::default();
        for path in self.paths.iter() {
            let outcome = self.warm_one(path).await;
            let counter = match outcome {
                WarmOutcome::Stored => &self.counters.stored,
                WarmOutcome::NotStored(_) => &self.counters.not_stored,
                WarmOutcome::Failed => &self.counters.failed,
            };
            counter.increment(1);
            report.paths.push((path.clone(), outcome));
        }
        report
    }

    async fn warm_one(&self, path: &str) -> WarmOutcome {
        let mut request = Request::get(path)
            .header(CACHE_CONTROL, HeaderValue::from_static("no-cache"))
            .header(USER_AGENT, HeaderValue::from_static(WARMER_USER_AGENT));
        for (name, value) in self.headers.iter() {
            request = request.header(name, value);
        }
        let Ok(request) = request.body(Body::empty()) else {
            tracing::warn!(path, "cache warming: not a valid path");
            return WarmOutcome::Failed;
        };
        let mut service = self.service.clone();
        let ready = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
        let answered = match ready {
            Ok(()) => service.call(request).await,
            Err(error) => Err(error),
        };
        let Ok(response) = answered else {
            tracing::warn!(path, "cache warming: the service failed");
            return WarmOutcome::Failed;
        };
        let (parts, body) = response.into().into_parts();
        // Read the whole answer, as a client would.
        if body.collect().await.is_err() {
            tracing::warn!(path, "cache warming: the body could not be read");
            return WarmOutcome::Failed;
        }
        let stored = parts
            .headers
            .get(CACHE_STATUS)
            .and_then(|status| status.to_str().ok())
            .is_some_and(|status| status.ends_with("; stored"));
        if stored {
            WarmOutcome::Stored
        } else {
            WarmOutcome::NotStored(parts.status)
        }
    }

    /// Warms now, then every `interval` (the seed's schedule is hourly), until the task is
    /// aborted or the runtime stops. Each round is logged with how many paths were stored.
    pub fn spawn(self, interval: Duration) -> tokio::task::JoinHandle<()>
    where
        S: Sync,
        S::Response: Send,
        S::Error: Send,
    {
        self.spawn_then(interval, |_| std::future::ready(()))
    }

    /// As [`spawn`](Self::spawn), and after each round awaits `after_round` with its report
    /// (to tell someone: the stack announces the seed's `CacheWarmed` info alert).
    pub fn spawn_then<F, Fut>(
        self,
        interval: Duration,
        after_round: F,
    ) -> tokio::task::JoinHandle<()>
    where
        S: Sync,
        S::Response: Send,
        S::Error: Send,
        F: Fn(WarmReport) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval.max(Duration::from_secs(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let report = self.warm().await;
                tracing::info!(
                    stored = report.stored(),
                    paths = report.paths.len(),
                    "cache warmed"
                );
                after_round(report).await;
            }
        })
    }
}
