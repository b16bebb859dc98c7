//! [`ValidationLayer`]: hands the extractors their configuration (metrics recorder, depth limit).
//!
//! An extractor cannot see a layer's configuration, so the layer makes its [`ValidationConfig`]
//! the current one while the inner service's future runs (a tokio task-local, set around each
//! poll), and the extractors read it from there. A `ValidationConfig` in the request extensions,
//! put there by the application, takes precedence. Without either, the extractors use a
//! process-wide default: the default depth limit and the global metrics recorder. The layer is
//! therefore optional: add it for a recorder other than the global one (tests) or another depth
//! limit. Per request it costs a reference-count increment and the per-route wrapping every
//! `Router::layer` adds: no allocation, unlike an extension insert.
//! Failures are counted by the extractor, in `streamgate_validation_failures_total{route,code}`
//! (`route` is the matched route template, `code` a [`FailureKind`]), and the failure is left in
//! the response extensions for the audit layer.
//!
//! ```
//! use axum::{Json, Router, routing::post, body::Body};
//! use http::Request;
//! use serde::Deserialize;
//! use streamgate_core::MetricsHandle;
//! use streamgate_validate::{Sanitize, Valid, ValidationLayer, WireNames};
//! use tower::ServiceExt;
//! use validator::Validate;
//!
//! #[derive(Deserialize, Validate)]
//! struct Item {
//!     #[validate(length(min = 1))]
//!     name: String,
//! }
//! impl Sanitize for Item {}
//! impl WireNames for Item {}
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let app = Router::new()
//!     .route("/items", post(|Valid(Json(item)): Valid<Json<Item>>| async move { item.name }))
//!     .layer(ValidationLayer::new().metrics(MetricsHandle::global()).max_depth(32));
//! let response = app
//!     .oneshot(Request::post("/items").header("content-type", "application/json")
//!         .body(Body::from(r#"{"name": ""}"#)).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 422);
//! # }
//! ```

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, OnceLock, RwLock},
    task::{Context, Poll},
};

use http::{Extensions, Request};
use metrics::Counter;
use streamgate_core::{MetricsHandle, route_label_from};
use tokio::task::futures::TaskLocalFuture;
use tower_layer::Layer;
use tower_service::Service;

use crate::{failure::FailureKind, json::DEFAULT_MAX_DEPTH};

/// The failures counter.
pub const FAILURES_TOTAL: &str = "streamgate_validation_failures_total";
const FAILURES_HELP: &str =
    "Requests rejected by the validation extractors, by route template and failure code.";

tokio::task_local! {
    /// The configuration of the innermost [`ValidationLayer`] whose future is being polled.
    static CURRENT: ValidationConfig;
}

/// What the extractors read: the metrics recorder and the depth limit. Cheap to clone.
#[derive(Clone)]
pub struct ValidationConfig {
    inner: Arc<ConfigInner>,
}

struct ConfigInner {
    metrics: MetricsHandle,
    max_depth: usize,
    /// Counters registered on first use per route and code, then held.
    counters: RwLock<HashMap<Box<str>, HashMap<FailureKind, Counter>>>,
}

impl fmt::Debug for ValidationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidationConfig")
            .field("metrics", &self.inner.metrics)
            .field("max_depth", &self.inner.max_depth)
            .finish_non_exhaustive()
    }
}

impl ValidationConfig {
    fn new(metrics: MetricsHandle, max_depth: usize) -> Self {
        metrics.describe_counter(FAILURES_TOTAL, FAILURES_HELP);
        Self {
            inner: Arc::new(ConfigInner {
                metrics,
                max_depth,
                counters: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The configuration the extractors use without a [`ValidationLayer`].
    #[must_use]
    pub fn global() -> &'static Self {
        static GLOBAL: OnceLock<ValidationConfig> = OnceLock::new();
        GLOBAL.get_or_init(|| Self::new(MetricsHandle::global(), DEFAULT_MAX_DEPTH))
    }

    /// The configuration an extractor uses for a request with `extensions`: one inserted into the
    /// extensions, else that of the [`ValidationLayer`] whose service is running, else
    /// [`ValidationConfig::global`].
    #[must_use]
    pub fn current(extensions: &Extensions) -> Self {
        if let Some(config) = extensions.get::<Self>() {
            return config.clone();
        }
        CURRENT
            .try_with(Self::clone)
            .unwrap_or_else(|_| Self::global().clone())
    }

    /// The nesting limit of JSON bodies.
    #[must_use]
    pub fn max_depth(&self) -> usize {
        self.inner.max_depth
    }

    /// Counts one failure of `kind` on the route in `extensions`.
    pub fn record_failure(&self, extensions: &Extensions, kind: FailureKind) {
        let route = route_label_from(extensions);
        let held = self
            .inner
            .counters
            .read()
            .ok()
            .and_then(|counters| counters.get(route)?.get(&kind).cloned());
        let counter = held.unwrap_or_else(|| self.register(route, kind));
        counter.increment(1);
    }

    fn register(&self, route: &str, kind: FailureKind) -> Counter {
        let counter = self
            .inner
            .metrics
            .counter(FAILURES_TOTAL, &[("route", route), ("code", kind.as_str())]);
        if let Ok(mut counters) = self.inner.counters.write() {
            counters
                .entry(route.into())
                .or_default()
                .insert(kind, counter.clone());
        }
        counter
    }
}

/// Makes its [`ValidationConfig`] the extractors' configuration while the inner service runs.
/// See the [module docs](self).
#[derive(Clone, Debug)]
pub struct ValidationLayer {
    metrics: MetricsHandle,
    max_depth: usize,
    config: ValidationConfig,
}

impl Default for ValidationLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ValidationLayer {
    /// Global metrics recorder, JSON nesting limit [`DEFAULT_MAX_DEPTH`].
    #[must_use]
    pub fn new() -> Self {
        let metrics = MetricsHandle::global();
        Self {
            config: ValidationConfig::new(metrics.clone(), DEFAULT_MAX_DEPTH),
            metrics,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    /// Records failures through `metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: MetricsHandle) -> Self {
        self.metrics = metrics;
        self.rebuild()
    }

    /// Rejects JSON bodies nested deeper than `max_depth` with 400 (values above
    /// [`DEFAULT_MAX_DEPTH`] act as it: serde_json stops there).
    #[must_use]
    pub fn max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self.rebuild()
    }

    fn rebuild(mut self) -> Self {
        self.config = ValidationConfig::new(self.metrics.clone(), self.max_depth);
        self
    }

    /// The configuration this layer hands to the extractors.
    #[must_use]
    pub fn config(&self) -> &ValidationConfig {
        &self.config
    }
}

impl<S> Layer<S> for ValidationLayer {
    type Service = ValidationService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ValidationService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service made by [`ValidationLayer`].
#[derive(Clone, Debug)]
pub struct ValidationService<S> {
    inner: S,
    config: ValidationConfig,
}

impl<S, B> Service<Request<B>> for ValidationService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = TaskLocalFuture<ValidationConfig, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        CURRENT.scope(self.config.clone(), self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{ServiceExt, service_fn};

    use super::*;

    async fn depth_seen(layer: &ValidationLayer, request: Request<()>) -> usize {
        layer
            .layer(service_fn(|request: Request<()>| async move {
                Ok::<_, Infallible>(ValidationConfig::current(request.extensions()).max_depth())
            }))
            .oneshot(request)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_layer_config_is_current_while_the_inner_service_runs() {
        let layer = ValidationLayer::new().max_depth(7);
        assert_eq!(depth_seen(&layer, Request::new(())).await, 7);
        assert_eq!(
            ValidationConfig::current(&Extensions::new()).max_depth(),
            DEFAULT_MAX_DEPTH,
            "outside the layer, the process-wide default"
        );
    }

    #[tokio::test]
    async fn a_config_in_the_extensions_wins() {
        let layer = ValidationLayer::new().max_depth(7);
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(ValidationLayer::new().max_depth(9).config().clone());
        assert_eq!(depth_seen(&layer, request).await, 9);
    }
}
