//! Request metrics for tower and axum services, and the process recorder they feed.
//!
//! - [`MetricsLayer`] records `http_server_request_duration_seconds` (histogram, its `_count` is
//!   the request count) and `http_server_active_requests`, named and labelled as OpenTelemetry's
//!   HTTP server conventions in Prometheus form, so dashboards made for OpenTelemetry work.
//! - [`MetricsRecorder`] is one recorder for the process: a fanout of metrics-exporter-prometheus
//!   (rendered by [`metrics_route`] at `/metrics`) and a windowed store read in-process by
//!   [`MetricsRecorder::snapshot`], [`MetricsRecorder::error_rate`] and the alert evaluator.
//! - The seed's API: [`increment_counter`](MetricsRecorder::increment_counter),
//!   [`set_gauge`](MetricsRecorder::set_gauge), [`record_histogram`](MetricsRecorder::record_histogram),
//!   [`record_timer`](MetricsRecorder::record_timer), [`snapshot`](MetricsRecorder::snapshot),
//!   [`error_rate`](MetricsRecorder::error_rate), [`success_rate`](MetricsRecorder::success_rate).
//!
//! ```
//! use axum::{Router, routing::get, body::Body};
//! use http::{Request, StatusCode};
//! use streamgate_metrics::{MetricsLayer, MetricsRecorder, metrics_route};
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let recorder = MetricsRecorder::new();
//! let app = Router::new()
//!     .route("/items/{id}", get(|| async { "item" }))
//!     .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
//!     .route("/metrics", metrics_route(recorder.clone()))
//!     .layer(MetricsLayer::new(recorder.clone()).service_name("shop").exclude_route("/metrics"));
//!
//! for path in ["/items/1", "/items/2", "/items/3", "/fail"] {
//!     let response = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
//!     drop(response);
//! }
//! assert_eq!(recorder.error_rate("shop"), Some(0.25));
//!
//! let text = recorder.render();
//! assert!(text.contains(r#"http_route="/items/{id}""#));
//! # }
//! ```

mod api;
mod body;
pub mod buckets;
mod exposition;
mod fanout;
mod handles;
mod layer;
pub mod names;
mod recorder;
mod service;
mod snapshot;
mod window;

pub use body::MetricsBody;
pub use exposition::{PROMETHEUS_TEXT, metrics_route, render_response};
pub use layer::MetricsLayer;
pub use recorder::{MetricsConfigError, MetricsRecorder, MetricsRecorderBuilder};
pub use service::{Metrics, ResponseFuture};
pub use snapshot::{
    CounterSnapshot, GaugeSnapshot, HistogramSnapshot, Labels, MetricsSnapshot, Quantiles,
};
