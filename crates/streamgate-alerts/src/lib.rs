//! Alert rules evaluated in-process over StreamGate's metrics recorder, sent to a log, a webhook
//! or Alertmanager.
//!
//! - [`AlertRule`]: a [`Signal`] read from the recorder's sliding window (error rate, a latency
//!   quantile, a counter's increase, a gauge), reported by the service, or one of the process's
//!   resources (CPU, memory, a disk), a [`Threshold`], a `for` duration and a [`Severity`]
//!   (critical, warning, info). [`AlertRule::defaults`] are the seed's: no replica up, error rate
//!   above 10% / 5%, p99 latency above 5 s / 2 s, CPU above 80%, memory above 80% / 95% of the limit;
//!   [`AlertRule::disk_full`] is its `Disk full` for a path.
//! - [`Alerts`]: the rules and their alerts (pending, firing, resolved), the seed's API
//!   ([`add_rule`](Alerts::add_rule), [`register_handler`](Alerts::register_handler),
//!   [`check_metric`](Alerts::check_metric), [`resolve`](Alerts::resolve),
//!   [`active`](Alerts::active), [`by_level`](Alerts::by_level)), events for its info alerts
//!   ([`announce`](Alerts::announce)), the [`Health`] they give, and the evaluator task
//!   ([`spawn`](Alerts::spawn)).
//! - Handlers: [`LogHandler`] (tracing), [`WebhookHandler`] (JSON POST),
//!   [`AlertmanagerHandler`] (Alertmanager's v2 API, which de-duplicates the replicas' alerts);
//!   your own with [`AlertHandler`].
//! - [`alerts_route`]: `GET /alerts` as JSON.
//! - [`prometheus_rules`]: the same rules as a Prometheus rule file, for a fleet-wide view
//!   across replicas.
//! - Metrics: `streamgate_alerts_firing{severity}`, `streamgate_alerts_evaluations_total`,
//!   `streamgate_alerts_notifications_total{handler,outcome}`; and, as the resource rules read
//!   them, `streamgate_process_cpu_usage_ratio`, `streamgate_process_memory_usage_ratio` and
//!   `streamgate_disk_usage_ratio{path}`.
//!
//! Every replica evaluates its own rules over its own requests; Alertmanager groups what they
//! send. Time is tokio's, so tests move `for` durations with paused time.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, body::Body, http::{Request, StatusCode}, routing::get};
//! use streamgate_alerts::{AlertRule, AlertState, Alerts, LogHandler, Severity, Signal};
//! use streamgate_metrics::{MetricsLayer, MetricsRecorder};
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let recorder = MetricsRecorder::new();
//! let app = Router::new()
//!     .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
//!     .layer(MetricsLayer::new(recorder.clone()).service_name("shop"));
//!
//! let alerts = Alerts::builder(recorder)
//!     .rule(
//!         AlertRule::new("HighErrorRate", Signal::ErrorRate { service: "shop".into() })
//!             .above(0.10)
//!             .severity(Severity::Critical),
//!     )
//!     .handler(LogHandler)
//!     .build();
//!
//! let response = app.oneshot(Request::get("/fail").body(Body::empty()).unwrap()).await.unwrap();
//! drop(response);
//! let changed = alerts.evaluate().await;
//! assert_eq!(changed[0].id, "HighErrorRate");
//! assert_eq!(changed[0].state, AlertState::Firing);
//! assert_eq!(alerts.by_level(Severity::Critical).len(), 1);
//! # }
//! ```

mod alert;
mod alertmanager;
mod alerts;
mod config;
mod handler;
mod http;
mod metrics;
mod prometheus_rules;
mod resources;
mod route;
mod rule;
mod webhook;

pub use alert::{Alert, AlertState};
pub use alertmanager::AlertmanagerHandler;
pub use alerts::{Alerts, AlertsBuilder, Health};
pub use config::{AlertsConfig, AlertsConfigError, RuleConfig};
pub use handler::{AlertHandler, BoxFuture, HandlerError, LogHandler, Notification};
pub use http::HandlerConfigError;
pub use prometheus_rules::{PrometheusRules, PrometheusRulesError, prometheus_rules};
pub use resources::{CPU_USAGE, DISK_USAGE, MEMORY_USAGE, ResourceSource, SystemResources};
pub use route::alerts_route;
pub use rule::{AlertRule, Severity, Signal, Threshold};
pub use webhook::WebhookHandler;
