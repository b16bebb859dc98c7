//! The rendered `/metrics` text keeps one series per route template, and hostile traffic (random
//! paths, random method names) adds none.

use axum::{Router, body::Body, routing::get};
use http::{Method, Request};
use rand::{Rng, SeedableRng, distr::Alphanumeric, rngs::StdRng};
use streamgate_metrics::{MetricsLayer, MetricsRecorder, metrics_route};
use tower::ServiceExt;

fn app(recorder: &MetricsRecorder) -> Router {
    Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .route("/metrics", metrics_route(recorder.clone()))
        .layer(
            MetricsLayer::new(recorder.clone())
                .service_name("shop")
                .exclude_route("/metrics"),
        )
}

const KNOWN_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

async fn send(app: &Router, method: Method, path: &str) -> u16 {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    response.status().as_u16()
}

async fn scrape(app: &Router) -> String {
    let response = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The `_count` lines of the request duration histogram.
fn count_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count"))
        .collect()
}

/// Every series line (not comments) of the HTTP metrics.
fn http_series(text: &str) -> Vec<String> {
    let mut series: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("http_server_"))
        .map(|l| l.rsplit_once(' ').map_or(l, |(name, _)| name).to_owned())
        .collect();
    series.sort();
    series
}

#[tokio::test]
async fn one_series_per_template_and_unmatched() {
    let recorder = MetricsRecorder::new();
    let app = app(&recorder);
    for path in ["/items/1", "/items/2", "/items/3"] {
        assert_eq!(send(&app, Method::GET, path).await, 200);
    }
    assert_eq!(send(&app, Method::GET, "/nope").await, 404);

    let text = scrape(&app).await;
    let counts = count_lines(&text);
    let items: Vec<_> = counts
        .iter()
        .filter(|l| l.contains(r#"http_route="/items/{id}""#))
        .collect();
    assert_eq!(items.len(), 1, "{text}");
    assert!(items[0].ends_with(" 3"), "{}", items[0]);
    assert!(items[0].contains(r#"http_request_method="GET""#));
    assert!(items[0].contains(r#"http_response_status_code="200""#));
    assert!(items[0].contains(r#"service_name="shop""#));
    let unmatched: Vec<_> = counts
        .iter()
        .filter(|l| l.contains(r#"http_route="unmatched""#))
        .collect();
    assert_eq!(unmatched.len(), 1, "{text}");
    assert!(unmatched[0].contains(r#"http_response_status_code="404""#));
    assert!(!text.contains("/items/1"), "a raw path leaked into a label");
    assert!(
        !text.contains(r#"http_route="/metrics""#),
        "excluded route recorded"
    );
    assert!(text.contains("# HELP http_server_request_duration_seconds "));
    assert!(text.contains("# HELP http_server_active_requests "));
    assert!(text.contains(r#"http_server_request_duration_seconds_bucket{"#));
    assert!(text.contains(r#"le="0.005""#) && text.contains(r#"le="10""#));
}

#[tokio::test]
async fn random_paths_and_methods_add_no_series() {
    let recorder = MetricsRecorder::new();
    let app = app(&recorder);
    // One request of each shape the flood will produce: unmatched GET, unmatched unknown method.
    send(&app, Method::GET, "/nope").await;
    send(&app, Method::from_bytes(b"BREW").unwrap(), "/nope").await;
    let before = http_series(&scrape(&app).await);

    let mut rng = StdRng::seed_from_u64(7);
    let mut sent = 0;
    while sent < 10_000 {
        let len = rng.random_range(3..12);
        let method: String = (0..len)
            .map(|_| char::from(rng.random_range(b'A'..=b'Z')))
            .collect();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        if KNOWN_METHODS.contains(&method.as_str()) {
            continue;
        }
        sent += 1;
        let segment_len = rng.random_range(1..20);
        let segment: String = (&mut rng)
            .sample_iter(&Alphanumeric)
            .take(segment_len)
            .map(char::from)
            .collect();
        let path = format!("/{segment}/{}", rng.random::<u32>());
        let status = send(&app, method, &path).await;
        assert_eq!(status, 404);
    }

    let text = scrape(&app).await;
    let after = http_series(&text);
    assert_eq!(before, after, "the flood added series");
    let other = count_lines(&text)
        .into_iter()
        .find(|l| l.contains(r#"http_request_method="_OTHER""#))
        .unwrap();
    assert!(other.ends_with(" 10001"), "{other}");
}
