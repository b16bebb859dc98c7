//! The whole stack over a real socket.

mod support;

use axum::{Router, http::StatusCode, routing::get};
use streamgate::Stack;
use support::{Served, program};

fn routes() -> Router {
    Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
}

#[tokio::test]
async fn request_ids_metrics_and_health() {
    let stack = Stack::new("shop");
    let served = Served::start(stack.apply(routes())).await;

    let answer = served.get("/items/1").await;
    assert_eq!(answer.status, 200);
    let id = answer.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36);

    let given = served
        .send(
            http::Request::get("/items/2")
                .header("x-request-id", "trace-me")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(given.headers["x-request-id"], "trace-me");

    assert_eq!(served.get("/boom").await.status, 500);
    assert_eq!(served.get("/nope").await.status, 404);
    assert_eq!(served.get("/health/live").await.body, "ok");

    let metrics = served.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let count = metrics
        .body
        .lines()
        .find(|l| {
            l.starts_with("http_server_request_duration_seconds_count")
                && l.contains(r#"http_route="/items/{id}""#)
        })
        .unwrap();
    assert!(count.contains(r#"service_name="shop""#), "{count}");
    assert!(count.ends_with(" 2"), "{count}");
    assert!(metrics.body.contains(r#"http_route="unmatched""#));
    assert!(
        !metrics.body.contains(r#"http_route="/metrics""#),
        "the scrape endpoint records itself"
    );
    assert!(
        !metrics.body.contains(r#"http_route="/health/live""#),
        "the health endpoint is recorded"
    );
    assert_eq!(stack.recorder().error_rate("shop"), Some(0.25));
}

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    let Some(promtool) = program("promtool") else {
        return;
    };
    let stack = Stack::new("shop");
    let served = Served::start(stack.apply(routes())).await;
    for path in ["/items/1", "/boom", "/nope"] {
        served.get(path).await;
    }
    let text = served.get("/metrics").await.body;

    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool failed: {said}\n{text}");
    assert!(said.trim().is_empty(), "promtool warnings: {said}");
}

#[cfg(feature = "ratelimit")]
#[tokio::test]
async fn the_default_rate_limit_records_into_a_recorder_given_later() {
    let recorder = streamgate::metrics::MetricsRecorder::new();
    let stack = Stack::new("shop").metrics_recorder(recorder.clone());
    let served = Served::start(stack.apply(routes())).await;
    assert_eq!(served.get("/items/1").await.status, 200);

    let text = served.get("/metrics").await.body;
    let allowed = text
        .lines()
        .find(|l| l.starts_with("streamgate_ratelimit_requests_total{") && l.contains("allowed"))
        .unwrap_or_else(|| panic!("no rate-limit decisions at /metrics:\n{text}"));
    assert!(allowed.ends_with(" 1"), "{allowed}");
}
