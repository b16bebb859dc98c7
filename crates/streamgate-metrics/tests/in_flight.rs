//! Requests that end without a response: over a real socket, the in-flight gauge counts a pending
//! request and comes back down when the client disconnects (the request is counted as 499); a
//! panicking handler is counted as 500.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, body::Body, routing::get};
use http::Request;
use streamgate_metrics::{MetricsLayer, MetricsRecorder};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tower::ServiceExt;

fn in_flight(recorder: &MetricsRecorder) -> f64 {
    in_flight_on(recorder, "/slow")
}

fn in_flight_on(recorder: &MetricsRecorder, route: &str) -> f64 {
    recorder
        .snapshot()
        .gauge("http_server_active_requests", &[("http_route", route)])
        .map_or(0.0, |g| g.value)
}

async fn wait_for(recorder: &MetricsRecorder, want: f64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while in_flight(recorder) != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "in-flight gauge stayed at {} (wanted {want})",
            in_flight(recorder)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn gauge_returns_to_zero_when_the_client_disconnects() {
    let recorder = MetricsRecorder::new();
    let app = Router::new()
        .route("/slow", get(std::future::pending::<&'static str>))
        .layer(MetricsLayer::new(recorder.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(b"GET /slow HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    wait_for(&recorder, 1.0).await;

    drop(client);
    wait_for(&recorder, 0.0).await;

    // The abandoned request is counted as 499 (client closed request), not as a server error.
    let snapshot = recorder.snapshot();
    let series = snapshot
        .histogram(
            "http_server_request_duration_seconds",
            &[
                ("http_route", "/slow"),
                ("http_response_status_code", "499"),
            ],
        )
        .expect("the abandoned request is recorded");
    assert_eq!(series.count, 1);
    assert_eq!(recorder.error_rate("unknown_service"), Some(0.0));
}

#[tokio::test]
async fn a_panicking_handler_is_recorded_as_a_server_error() {
    let recorder = MetricsRecorder::new();
    let app = Router::new()
        .route(
            "/boom",
            get(|| async {
                if true {
                    panic!("the handler fails");
                }
                "unreachable"
            }),
        )
        .layer(MetricsLayer::new(recorder.clone()).service_name("shop"));
    let request = Request::get("/boom").body(Body::empty()).unwrap();
    let outcome = tokio::spawn(app.oneshot(request)).await;
    assert!(outcome.unwrap_err().is_panic());

    assert_eq!(in_flight_on(&recorder, "/boom"), 0.0);
    let snapshot = recorder.snapshot();
    let series = snapshot
        .histogram(
            "http_server_request_duration_seconds",
            &[
                ("http_route", "/boom"),
                ("http_response_status_code", "500"),
            ],
        )
        .expect("the panicking request is recorded");
    assert_eq!(series.count, 1);
    assert_eq!(recorder.error_rate("shop"), Some(1.0));
    assert!(
        recorder
            .render()
            .contains(r#"http_response_status_code="500""#)
    );
}
