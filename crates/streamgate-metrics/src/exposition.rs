//! The `/metrics` endpoint: the Prometheus text exposition, process metrics refreshed at scrape.

use axum::{
    response::{IntoResponse, Response},
    routing::{MethodRouter, get},
};
use http::{HeaderValue, header};

use crate::MetricsRecorder;

/// The content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A `GET` route that renders `recorder` in the Prometheus text format, with the process metrics
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`,
/// `process_start_time_seconds`, ...) read at each scrape.
///
/// `process_cpu_seconds_total` comes from the `metrics-process` crate, which records it as a
/// counter of whole seconds: the fraction is dropped, so over short intervals (a `rate()` over
/// less than a few minutes of a mostly idle process) it moves in steps of one second.
///
/// ```
/// use axum::Router;
/// use streamgate_metrics::{MetricsRecorder, metrics_route};
///
/// let recorder = MetricsRecorder::new();
/// let app: Router = Router::new().route("/metrics", metrics_route(recorder));
/// ```
pub fn metrics_route<S>(recorder: MetricsRecorder) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    get(move || {
        let recorder = recorder.clone();
        async move { render_response(&recorder) }
    })
}

/// The `/metrics` response for `recorder`.
#[must_use]
pub fn render_response(recorder: &MetricsRecorder) -> Response {
    let mut response = recorder.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROMETHEUS_TEXT),
    );
    response
}
