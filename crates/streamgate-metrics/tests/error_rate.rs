//! Error and success rates per service over the sliding window, with paused time.

use std::time::Duration;

use axum::{Router, body::Body, routing::get};
use http::{Request, StatusCode};
use streamgate_metrics::{MetricsLayer, MetricsRecorder};
use tower::ServiceExt;

async fn hit(app: &Router, path: &str) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    drop(response);
}

fn app(recorder: &MetricsRecorder) -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .layer(MetricsLayer::new(recorder.clone()).service_name("upload"))
}

fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|a| (a - expected).abs() < 1e-9)
}

#[tokio::test(start_paused = true)]
async fn rates_follow_the_window_not_the_process_lifetime() {
    let recorder = MetricsRecorder::new();
    let app = app(&recorder);
    assert_eq!(recorder.error_rate("upload"), None);

    for i in 0..10 {
        hit(&app, if i % 5 == 0 { "/fail" } else { "/ok" }).await;
    }
    assert!(close(recorder.error_rate("upload"), 0.2));
    assert!(close(recorder.success_rate("upload"), 0.8));
    assert_eq!(recorder.error_rate("another-service"), None);

    tokio::time::advance(Duration::from_secs(301)).await;
    for _ in 0..10 {
        hit(&app, "/ok").await;
    }
    assert!(close(recorder.error_rate("upload"), 0.0));
    assert!(close(recorder.success_rate("upload"), 1.0));
    // The totals still hold every request.
    let failed = recorder.snapshot();
    let failed = failed
        .histogram(
            "http_server_request_duration_seconds",
            &[("http_route", "/fail")],
        )
        .unwrap();
    assert_eq!((failed.count, failed.window_count), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn error_statuses_are_configurable() {
    let recorder = MetricsRecorder::builder()
        .error_statuses(|status| status >= 400)
        .build()
        .unwrap();
    let app = app(&recorder);
    hit(&app, "/missing").await;
    hit(&app, "/ok").await;
    assert!(close(recorder.error_rate("upload"), 0.5));
}

#[tokio::test(start_paused = true)]
async fn seed_api_records_into_the_same_store() {
    let recorder = MetricsRecorder::new();
    recorder.increment_counter("uploads_total", &[("service", "upload")]);
    recorder.increment_counter("uploads_total", &[("service", "upload")]);
    recorder.set_gauge("queue_size", 7.0, &[("queue", "thumbnails")]);
    recorder.record_histogram("payload_size_bytes", 2048.0, &[]);
    recorder.record_timer("db_query_duration_seconds", Duration::from_millis(30), &[]);

    let snapshot = recorder.snapshot();
    let uploads = snapshot
        .counter("uploads_total", &[("service", "upload")])
        .unwrap();
    assert_eq!((uploads.value, uploads.window_value), (2, 2));
    assert_eq!(snapshot.gauge("queue_size", &[]).unwrap().value, 7.0);
    let timer = snapshot
        .histogram("db_query_duration_seconds", &[])
        .unwrap();
    assert_eq!(timer.count, 1);
    assert!((timer.sum - 0.03).abs() < 1e-9);
    // 0.03 s falls in the (0.025, 0.05] bucket: the median interpolates inside it.
    let p50 = timer.quantiles.p50.unwrap();
    assert!((0.025..=0.05).contains(&p50), "{p50}");
    let size = snapshot.histogram("payload_size_bytes", &[]).unwrap();
    // One observation in (1024, 4096]: p99 interpolates 99% of the way through that bucket.
    assert!(close(size.quantiles.p99, 1024.0 + (4096.0 - 1024.0) * 0.99));

    let text = recorder.render();
    assert!(
        text.contains("uploads_total{service=\"upload\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("payload_size_bytes_bucket{le=\"4096\"} 1"),
        "{text}"
    );
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
    assert!(text.contains("process_cpu_seconds_total"), "{text}");
}
