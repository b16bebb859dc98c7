//! [`MetricsLayer`]: request duration, in-flight requests and (opt-in) body sizes per route.

use std::sync::Arc;

use metrics::{Recorder, SharedString, Unit};
use tower_layer::Layer;

use crate::{
    MetricsRecorder,
    handles::{HandleCache, LayerConfig},
    names,
    service::Metrics,
};

/// Records `http_server_request_duration_seconds` and `http_server_active_requests` for every
/// request, labelled by method, route template, status and service name; and, once it wraps a
/// service, `streamgate_service_info{service_name}` at 1 (a fleet's replicas up, summed).
///
/// Add it with `Router::layer` (after the routes) so that axum's `MatchedPath` is known: requests
/// that match no route are labelled `unmatched`, unknown methods `_OTHER`, so no label takes an
/// unbounded value. The duration runs until the response body has been sent or dropped; the
/// in-flight gauge comes back down when the client disconnects or the response future or body is
/// dropped.
///
/// A request that ends without a response is still counted, with a status of its own:
///
/// - `500` when the handler panicked (the response future is dropped while the thread unwinds,
///   as tokio does with a panicking task) or the inner service returned an error;
/// - `499` ("client closed request", nginx's convention) when the response future was dropped
///   without a panic: the client disconnected, or an outer layer such as a timeout gave up.
///   It is a 4xx, so the default [`MetricsRecorder::error_rate`] does not count it as an error.
///
/// Both record the time until the drop and no response size. A panic caught by a
/// `CatchPanicLayer` inside this layer is its 500 response, recorded as any other.
///
/// ```
/// use axum::{Router, routing::get, body::Body};
/// use http::Request;
/// use streamgate_metrics::{MetricsLayer, MetricsRecorder};
/// use tower::ServiceExt;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let recorder = MetricsRecorder::new();
/// let app = Router::new()
///     .route("/items/{id}", get(|| async { "item" }))
///     .layer(MetricsLayer::new(recorder.clone()).service_name("shop"));
///
/// let response = app.oneshot(Request::get("/items/7").body(Body::empty()).unwrap()).await.unwrap();
/// drop(response); // the request is recorded once its body is done with
///
/// let snapshot = recorder.snapshot();
/// let series = snapshot
///     .histogram("http_server_request_duration_seconds", &[("http_route", "/items/{id}")])
///     .unwrap();
/// assert_eq!(series.count, 1);
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct MetricsLayer {
    /// Shared by every service the layer makes (`Router::layer` makes one per route), so cloning
    /// the layer or a service is one reference count.
    cache: Arc<HandleCache>,
}

impl MetricsLayer {
    /// Records into `recorder`, for the service `unknown_service` until
    /// [`service_name`](Self::service_name) says otherwise.
    pub fn new(recorder: MetricsRecorder) -> Self {
        describe(&recorder);
        Self::from_config(LayerConfig {
            recorder,
            service: SharedString::const_str("unknown_service"),
            excluded: Vec::new(),
            body_sizes: false,
            enabled: true,
        })
    }

    /// The `service_name` label.
    pub fn service_name(self, name: impl Into<String>) -> Self {
        let mut config = self.cache.config().clone();
        config.service = SharedString::from(name.into());
        Self::from_config(config)
    }

    /// Records nothing for requests to this route template (for example `/metrics`).
    pub fn exclude_route(self, template: impl Into<String>) -> Self {
        let mut config = self.cache.config().clone();
        config.excluded.push(template.into());
        Self::from_config(config)
    }

    /// Also records `http_server_request_body_size_bytes` (from `Content-Length`) and
    /// `http_server_response_body_size_bytes` (bytes sent).
    pub fn record_body_sizes(self, enabled: bool) -> Self {
        let mut config = self.cache.config().clone();
        config.body_sizes = enabled;
        Self::from_config(config)
    }

    /// Whether the layer records at all (default true); a disabled layer passes requests through.
    pub fn enabled(self, enabled: bool) -> Self {
        let mut config = self.cache.config().clone();
        config.enabled = enabled;
        Self::from_config(config)
    }

    fn from_config(config: LayerConfig) -> Self {
        Self {
            cache: Arc::new(HandleCache::new(config)),
        }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.cache.announce();
        Metrics::new(inner, self.cache.clone())
    }
}

fn describe(recorder: &MetricsRecorder) {
    recorder.describe_histogram(
        names::HTTP_SERVER_REQUEST_DURATION.into(),
        Some(Unit::Seconds),
        "Duration of HTTP server requests, until the response body is sent.".into(),
    );
    recorder.describe_gauge(
        names::HTTP_SERVER_ACTIVE_REQUESTS.into(),
        None,
        "Number of HTTP server requests being served.".into(),
    );
    recorder.describe_gauge(
        names::SERVICE_INFO.into(),
        None,
        "1 for each service this process serves and records; summed across replicas, the replicas up.".into(),
    );
    recorder.describe_histogram(
        names::HTTP_SERVER_REQUEST_BODY_SIZE.into(),
        Some(Unit::Bytes),
        "Size of HTTP server request bodies (from Content-Length).".into(),
    );
    recorder.describe_histogram(
        names::HTTP_SERVER_RESPONSE_BODY_SIZE.into(),
        Some(Unit::Bytes),
        "Size of HTTP server response bodies as sent.".into(),
    );
}
