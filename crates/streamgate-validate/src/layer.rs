//! [`ValidationLayer`]: hands the extractors their configuration (metrics recorder, depth limit).
//!
//! An extractor cannot see a layer's configuration, so the layer inserts a [`ValidationConfig`]
//! into each request's extensions and the extractors read it from there. Without the layer the
//! extractors use a process-wide default: the default depth limit and the global metrics recorder.
//! The layer is therefore optional: add it for a recorder other than the global one (tests) or
//! another depth limit. It costs one extension insert per request, plus the per-route wrapping
//! every `Router::layer` adds (about 0.15 µs together, `benches/paired.rs`).
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
};

use http::Extensions;
use metrics::Counter;
use streamgate_core::{MetricsHandle, route_label_from};
use tower_http::add_extension::AddExtension;
use tower_layer::Layer;

use crate::{failure::FailureKind, json::DEFAULT_MAX_DEPTH};

/// The failures counter.
pub const FAILURES_TOTAL: &str = "streamgate_validation_failures_total";
const FAILURES_HELP: &str =
    "Requests rejected by the validation extractors, by route template and failure code.";

/// What the extractors read from the request extensions. Cheap to clone.
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

    /// The configuration in `extensions`, or [`ValidationConfig::global`].
    #[must_use]
    pub fn from_extensions(extensions: &Extensions) -> &Self {
        extensions.get::<Self>().unwrap_or_else(|| Self::global())
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

/// Inserts a [`ValidationConfig`] into every request for the extractors. See the
/// [module docs](self).
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
    /// tower-http's extension inserter: the layer only hands its settings to the extractors.
    type Service = AddExtension<S, ValidationConfig>;

    fn layer(&self, inner: S) -> Self::Service {
        AddExtension::new(inner, self.config.clone())
    }
}
