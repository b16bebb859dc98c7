//! Cache warming: on demand, on a schedule (paused tokio time), and what is not stored.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use axum::{Router, body::Body, extract::Path, http::Request, routing::get};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use streamgate_cache::{CacheConfig, CacheLayer, CacheRoute, CacheWarmer, WarmOutcome};
use streamgate_core::MetricsHandle;
use streamgate_metrics::MetricsRecorder;
use tower::ServiceExt;

/// A catalog whose answers say how many times the handler ran.
fn catalog(calls: &Arc<AtomicU32>, cache: CacheLayer) -> Router {
    let calls = calls.clone();
    Router::new()
        .route(
            "/catalog/{page}",
            get(move |Path(page): Path<u32>| {
                let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
                async move { format!("page {page}, call {call}") }
            }),
        )
        .route("/uncached", get(|| async { "fresh every time" }))
        .layer(cache)
}

fn shared_cache(ttl: Duration) -> CacheLayer {
    CacheLayer::builder()
        .route("/catalog/{page}", CacheRoute::ttl(ttl).shared())
        .build()
}

/// A client's `GET`, with the `Accept: */*` curl and most HTTP libraries send.
async fn get_text(app: &Router, path: &str) -> (String, String) {
    get_with(app, path, &[("accept", "*/*")]).await
}

async fn get_with(app: &Router, path: &str, headers: &[(&str, &str)]) -> (String, String) {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let cache = response.headers()["x-cache"].to_str().unwrap().to_owned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (cache, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test(start_paused = true)]
async fn a_warmed_path_is_a_hit_for_the_first_client() {
    let calls = Arc::new(AtomicU32::new(0));
    let app = catalog(&calls, shared_cache(Duration::from_secs(600)));
    let recorder = MetricsRecorder::new();
    let metrics = MetricsHandle::new(recorder.clone());
    let warmer = CacheWarmer::with_metrics(
        app.clone(),
        ["/catalog/1", "/catalog/2", "/uncached", "/nowhere"],
        &metrics,
    );

    let report = warmer.warm().await;
    assert_eq!(
        report.paths,
        [
            ("/catalog/1".to_owned(), WarmOutcome::Stored),
            ("/catalog/2".to_owned(), WarmOutcome::Stored),
            (
                "/uncached".to_owned(),
                WarmOutcome::NotStored(StatusCode::OK)
            ),
            (
                "/nowhere".to_owned(),
                WarmOutcome::NotStored(StatusCode::NOT_FOUND)
            ),
        ]
    );
    assert_eq!(report.stored(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let (cache, body) = get_text(&app, "/catalog/1").await;
    assert_eq!((cache.as_str(), body.as_str()), ("HIT", "page 1, call 1"));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "served from the cache");

    let exposition = recorder.render();
    for (outcome, count) in [("stored", 2), ("not_stored", 2), ("failed", 0)] {
        let line = format!("streamgate_cache_warmed_total{{outcome=\"{outcome}\"}} {count}");
        assert!(
            count == 0 || exposition.contains(&line),
            "{line}\n{exposition}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_schedule_refreshes_entries_before_they_expire() {
    let calls = Arc::new(AtomicU32::new(0));
    // Entries live 10 minutes; warming every 5 keeps the path from ever missing.
    let app = catalog(&calls, shared_cache(Duration::from_secs(600)));
    let task = CacheWarmer::new(app.clone(), ["/catalog/1"]).spawn(Duration::from_secs(300));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "warmed on start");

    for round in 2..=4 {
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert_eq!(calls.load(Ordering::SeqCst), round);
        let (cache, body) = get_text(&app, "/catalog/1").await;
        assert_eq!(cache, "HIT");
        assert_eq!(
            body,
            format!("page 1, call {round}"),
            "the entry was replaced"
        );
    }
    task.abort();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 4, "stopped with the task");
}

#[tokio::test]
async fn a_failing_service_is_reported_not_fatal() {
    let failing = tower::service_fn(|_: Request<Body>| async {
        Err::<Response<Body>, _>(std::io::Error::other("backend down"))
    });
    let report = CacheWarmer::new(failing, ["/catalog/1"]).warm().await;
    assert_eq!(
        report.paths,
        [("/catalog/1".to_owned(), WarmOutcome::Failed)]
    );
    let ok = tower::service_fn(|_: Request<Body>| async {
        Ok::<_, Infallible>(Response::new(Body::from("x")))
    });
    let report = CacheWarmer::new(ok, ["not a path"]).warm().await;
    assert_eq!(report.paths[0].1, WarmOutcome::Failed);
}

#[test]
fn warming_settings_are_checked() {
    let config: CacheConfig = serde_yaml_ng::from_str(
        "routes:\n  /catalog/{page}: {shared: true}\nwarm:\n  paths: [/catalog/1]\n",
    )
    .unwrap();
    assert_eq!(config.warm.interval, Duration::from_secs(3600));
    assert!(config.builder(MetricsHandle::global()).is_ok());

    let bad: CacheConfig = serde_yaml_ng::from_str("warm:\n  paths: [catalog/1]\n").unwrap();
    let error = bad.builder(MetricsHandle::global()).unwrap_err();
    assert!(
        error.to_string().contains("`catalog/1` is not a path"),
        "{error}"
    );
    let fast: CacheConfig =
        serde_yaml_ng::from_str("warm:\n  paths: [/a]\n  interval: 10ms\n").unwrap();
    let error = fast.builder(MetricsHandle::global()).unwrap_err();
    assert!(error.to_string().contains("at least 1s"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn warming_requests_send_the_configured_headers_so_those_clients_hit() {
    let calls = Arc::new(AtomicU32::new(0));
    let app = catalog(&calls, shared_cache(Duration::from_secs(600)));
    let config: streamgate_cache::CacheWarmConfig = serde_yaml_ng::from_str(
        "paths: [/catalog/1]\nheaders: {accept: application/json, accept-encoding: gzip}\n",
    )
    .unwrap();
    let warmer = CacheWarmer::new(app.clone(), config.paths.clone())
        .headers(config.header_values().unwrap());
    assert_eq!(warmer.warm().await.stored(), 1);
    let json_gzip = [("accept", "application/json"), ("accept-encoding", "gzip")];
    assert_eq!(get_with(&app, "/catalog/1", &json_gzip).await.0, "HIT");
    // Another client's values are another entry.
    assert_eq!(get_text(&app, "/catalog/1").await.0, "MISS");

    let bad: streamgate_cache::CacheWarmConfig =
        serde_yaml_ng::from_str("headers: {bad name: x}\n").unwrap();
    let error = bad.header_values().unwrap_err();
    assert!(
        error.contains("\"bad name\" is not a header name"),
        "{error}"
    );
}
