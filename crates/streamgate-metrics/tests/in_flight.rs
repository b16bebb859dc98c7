//! Over a real socket: the in-flight gauge counts a pending request and comes back down when the
//! client disconnects.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, routing::get};
use streamgate_metrics::{MetricsLayer, MetricsRecorder};
use tokio::{io::AsyncWriteExt, net::TcpStream};

fn in_flight(recorder: &MetricsRecorder) -> f64 {
    recorder
        .snapshot()
        .gauge("http_server_active_requests", &[("http_route", "/slow")])
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

    // The abandoned request has no status, so it is not counted as served.
    let snapshot = recorder.snapshot();
    assert!(
        snapshot
            .histogram(
                "http_server_request_duration_seconds",
                &[("http_route", "/slow")]
            )
            .is_none()
    );
}
