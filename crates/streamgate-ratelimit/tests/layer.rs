//! The layer through axum, on paused tokio time.

mod common;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    routing::{get, post},
};
use common::{counter, get_from, header, json_body, recorder};
use http::StatusCode;
use streamgate_ratelimit::{
    MemoryStore, Policy, Quota, RateLimitLayer, RateLimitStore, RateLimited,
};
use tower::ServiceExt;

const BURST: u32 = 5;
const RATE: u32 = 2; // per second: one unit back every 500 ms

fn app(layer: RateLimitLayer) -> Router {
    Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .route("/items", post(|| async { "created" }))
        .route("/health", get(|| async { "ok" }))
        .layer(layer)
}

#[tokio::test(start_paused = true)]
async fn burst_passes_then_429_then_one_more_after_one_interval() {
    let (metrics, snapshot) = recorder();
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("per-ip", Quota::per_second(RATE).burst(BURST)))
        .metrics(metrics)
        .build()
        .unwrap();
    let app = app(layer);

    for n in 0..BURST {
        let response = app
            .clone()
            .oneshot(get_from("/items/1", "203.0.113.9"))
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "request {n} of the burst"
        );
        let remaining = BURST - 1 - n;
        // The bucket is full again after (BURST - remaining) intervals of 500 ms.
        let reset = (u64::from(BURST - remaining) * 500).div_ceil(1000);
        assert_eq!(
            header(&response, "ratelimit"),
            format!("\"per-ip\";r={remaining};t={reset}")
        );
        assert_eq!(header(&response, "ratelimit-policy"), "\"per-ip\";q=5;w=3");
    }

    let limited = app
        .clone()
        .oneshot(get_from("/items/1", "203.0.113.9"))
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "retry-after"), "1");
    assert_eq!(header(&limited, "ratelimit"), "\"per-ip\";r=0;t=3");
    assert_eq!(header(&limited, "ratelimit-policy"), "\"per-ip\";q=5;w=3");
    assert_eq!(header(&limited, "content-type"), "application/problem+json");
    let violation = limited.extensions().get::<RateLimited>().unwrap().clone();
    assert_eq!(violation.policies().collect::<Vec<_>>(), ["per-ip"]);
    assert_eq!(violation.retry_after(), Duration::from_millis(500));
    assert_eq!(
        limited
            .extensions()
            .get::<streamgate_core::AuditReason>()
            .map(streamgate_core::AuditReason::as_str),
        Some("rate_limited")
    );
    let body = json_body(limited).await;
    assert_eq!(body["status"], 429);
    assert_eq!(body["title"], "Too Many Requests");
    assert_eq!(body["violated-policies"], serde_json::json!(["per-ip"]));

    // Another client is not affected.
    let other = app
        .clone()
        .oneshot(get_from("/items/1", "198.51.100.1"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);

    // Just short of one interval: still limited. After 1/R: exactly one more passes.
    tokio::time::advance(Duration::from_millis(499)).await;
    let early = app
        .clone()
        .oneshot(get_from("/items/1", "203.0.113.9"))
        .await
        .unwrap();
    assert_eq!(early.status(), StatusCode::TOO_MANY_REQUESTS);
    tokio::time::advance(Duration::from_millis(1)).await;
    let again = app
        .clone()
        .oneshot(get_from("/items/1", "203.0.113.9"))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(header(&again, "ratelimit"), "\"per-ip\";r=0;t=3");
    let after = app
        .clone()
        .oneshot(get_from("/items/1", "203.0.113.9"))
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::TOO_MANY_REQUESTS);

    let requests = "streamgate_ratelimit_requests_total";
    assert_eq!(
        counter(
            &snapshot,
            requests,
            &[("policy", "per-ip"), ("decision", "allowed")]
        ),
        7
    );
    assert_eq!(
        counter(
            &snapshot,
            requests,
            &[("policy", "per-ip"), ("decision", "limited")]
        ),
        3
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_whole_seconds_rounded_up() {
    let layer = RateLimitLayer::new(Policy::new("slow", Quota::per_minute(1)));
    let app = app(layer);
    app.clone()
        .oneshot(get_from("/items/1", "192.0.2.1"))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_millis(20_500)).await;
    let limited = app
        .oneshot(get_from("/items/1", "192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "retry-after"), "40");
}

#[tokio::test(start_paused = true)]
async fn route_cost_takes_several_units() {
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("per-ip", Quota::per_minute(10)))
        .route_cost("/items", 4)
        .build()
        .unwrap();
    let app = app(layer);
    let post = |ip: &str| {
        let mut request = get_from("/items", ip);
        *request.method_mut() = http::Method::POST;
        request
    };
    let first = app.clone().oneshot(post("192.0.2.2")).await.unwrap();
    assert!(header(&first, "ratelimit").contains("r=6;"));
    let second = app.clone().oneshot(post("192.0.2.2")).await.unwrap();
    assert!(header(&second, "ratelimit").contains("r=2;"));
    let third = app.clone().oneshot(post("192.0.2.2")).await.unwrap();
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    // The GET route still costs one unit, and two are left.
    let cheap = app
        .oneshot(get_from("/items/1", "192.0.2.2"))
        .await
        .unwrap();
    assert_eq!(cheap.status(), StatusCode::OK);
    assert!(header(&cheap, "ratelimit").contains("r=1;"));
}

#[tokio::test(start_paused = true)]
async fn legacy_headers_are_optional() {
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("per-ip", Quota::per_second(1).burst(3)))
        .legacy_headers(true)
        .build()
        .unwrap();
    let response = app(layer)
        .oneshot(get_from("/items/1", "192.0.2.3"))
        .await
        .unwrap();
    assert_eq!(header(&response, "x-ratelimit-limit"), "3");
    assert_eq!(header(&response, "x-ratelimit-remaining"), "2");
    assert_eq!(header(&response, "x-ratelimit-reset"), "1");

    let without = RateLimitLayer::new(Policy::new("per-ip", Quota::per_second(1)));
    let response = app(without)
        .oneshot(get_from("/items/1", "192.0.2.3"))
        .await
        .unwrap();
    assert!(response.headers().get("x-ratelimit-limit").is_none());
}

#[tokio::test(start_paused = true)]
async fn route_layer_limits_only_its_route() {
    let login = RateLimitLayer::new(Policy::new("login", Quota::per_minute(1)));
    let app = Router::new()
        .route("/login", post(|| async { "welcome" }).route_layer(login))
        .route("/items/{id}", get(|| async { "item" }));
    let login_request = || {
        let mut request = get_from("/login", "192.0.2.4");
        *request.method_mut() = http::Method::POST;
        request
    };
    assert_eq!(
        app.clone().oneshot(login_request()).await.unwrap().status(),
        StatusCode::OK
    );
    let limited = app.clone().oneshot(login_request()).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let other = app
        .oneshot(get_from("/items/1", "192.0.2.4"))
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    assert!(other.headers().get("ratelimit").is_none());
}

#[tokio::test(start_paused = true)]
async fn named_policies_apply_to_the_routes_that_use_them() {
    let layer = RateLimitLayer::builder()
        .define(Policy::new("writes", Quota::per_minute(1)))
        .policy(Policy::new("per-ip", Quota::per_minute(100)))
        .route_uses("/items", "writes")
        .build()
        .unwrap();
    let app = app(layer);
    let post = || {
        let mut request = get_from("/items", "192.0.2.5");
        *request.method_mut() = http::Method::POST;
        request
    };
    let first = app.clone().oneshot(post()).await.unwrap();
    assert_eq!(
        header(&first, "ratelimit-policy"),
        "\"per-ip\";q=100;w=60, \"writes\";q=1;w=60"
    );
    let second = app.clone().oneshot(post()).await.unwrap();
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    let read = app
        .oneshot(get_from("/items/9", "192.0.2.5"))
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(header(&read, "ratelimit-policy"), "\"per-ip\";q=100;w=60");
}

#[test]
fn invalid_configurations_are_reported() {
    let error = RateLimitLayer::builder().build().unwrap_err();
    assert!(error.to_string().contains("at least one policy"), "{error}");
    let error = RateLimitLayer::builder()
        .policy(Policy::new("bad\"name", Quota::default()))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("bad"), "{error}");
    let error = RateLimitLayer::builder()
        .policy(Policy::new("a", Quota::default()))
        .route_uses("/x", "missing")
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("\"missing\""), "{error}");
    let error = RateLimitLayer::builder()
        .policy(Policy::new("a", Quota::default()))
        .policy(Policy::new("a", Quota::default()))
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("twice"), "{error}");
}

#[test]
fn route_cost_above_a_burst_is_refused() {
    let error = RateLimitLayer::builder()
        .policy(Policy::new("per-ip", Quota::per_second(1).burst(5)))
        .route_cost("/upload", 10)
        .build()
        .unwrap_err();
    let message = error.to_string();
    for part in ["\"/upload\"", "10", "\"per-ip\"", "burst of 5"] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
    // Only the policies on the route count: a route-scoped policy elsewhere does not.
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("per-ip", Quota::per_second(1).burst(20)))
        .route_policy("/login", Policy::new("login", Quota::per_minute(3)))
        .route_cost("/upload", 10)
        .build();
    assert!(layer.is_ok());
    // An exempt route is never charged.
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("per-ip", Quota::per_second(1).burst(5)))
        .route_cost("/upload", 10)
        .exempt_route("/upload")
        .build();
    assert!(layer.is_ok());

    let config: streamgate_ratelimit::RateLimitConfig = serde_json::from_value(serde_json::json!({
        "capacity": 100,
        "refill_rate": 10,
        "policies": { "uploads": { "capacity": 3, "refill_rate": 1, "per": "1m" } },
        "routes": { "/upload": { "policies": ["uploads"], "cost": 4 } }
    }))
    .unwrap();
    let error = config.builder().unwrap().build().unwrap_err();
    let message = error.to_string();
    for part in ["\"/upload\"", "costs 4", "\"uploads\"", "burst of 3"] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
}

#[tokio::test(start_paused = true)]
async fn config_maps_route_templates_to_named_policies() {
    let config: streamgate_ratelimit::RateLimitConfig = serde_json::from_value(serde_json::json!({
        "capacity": 100,
        "refill_rate": 10,
        "policies": { "writes": { "capacity": 1, "refill_rate": 1, "per": "1m" } },
        "routes": {
            "/items": { "policies": ["writes"] },
            "/health": { "exempt": true }
        }
    }))
    .unwrap();
    let app = app(config.builder().unwrap().build().unwrap());
    let post = || {
        let mut request = get_from("/items", "192.0.2.6");
        *request.method_mut() = http::Method::POST;
        request
    };
    let first = app.clone().oneshot(post()).await.unwrap();
    assert_eq!(
        header(&first, "ratelimit-policy"),
        "\"default\";q=100;w=10, \"writes\";q=1;w=60"
    );
    assert_eq!(
        app.clone().oneshot(post()).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let health = app.oneshot(get_from("/health", "192.0.2.6")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().get("ratelimit").is_none());
}

/// The facade stacks two layers (IP-keyed outside, user-keyed inside): the outer one adds its
/// policies to what the inner one wrote instead of replacing it.
#[tokio::test(start_paused = true)]
async fn stacked_layers_keep_each_others_headers() {
    let outer = RateLimitLayer::builder()
        .policy(Policy::new("default", Quota::per_second(100).burst(1000)))
        .legacy_headers(true)
        .build()
        .unwrap();
    let inner = RateLimitLayer::builder()
        .policy(Policy::new("daily", Quota::per_day(2)))
        .legacy_headers(true)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(inner)
        .layer(outer);
    let lines = |response: &http::Response<axum::body::Body>, name: &str| -> Vec<String> {
        response
            .headers()
            .get_all(name)
            .iter()
            .map(|value| value.to_str().unwrap().to_owned())
            .collect()
    };

    let first = app
        .clone()
        .oneshot(get_from("/items/1", "192.0.2.11"))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let ratelimit = lines(&first, "ratelimit");
    assert_eq!(ratelimit.len(), 2, "{ratelimit:?}");
    assert!(ratelimit[0].starts_with("\"daily\";r=1;"), "{ratelimit:?}");
    assert!(
        ratelimit[1].starts_with("\"default\";r=999;"),
        "{ratelimit:?}"
    );
    assert_eq!(
        lines(&first, "ratelimit-policy"),
        ["\"daily\";q=2;w=86400", "\"default\";q=1000;w=10"]
    );
    // The legacy triple names one policy: the tighter one, the inner here.
    assert_eq!(header(&first, "x-ratelimit-limit"), "2");
    assert_eq!(header(&first, "x-ratelimit-remaining"), "1");

    app.clone()
        .oneshot(get_from("/items/1", "192.0.2.11"))
        .await
        .unwrap();
    let limited = app
        .oneshot(get_from("/items/1", "192.0.2.11"))
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "retry-after"), "43200");
    assert_eq!(limited.headers().get_all("retry-after").iter().count(), 1);
    let ratelimit = lines(&limited, "ratelimit");
    assert_eq!(ratelimit.len(), 2, "{ratelimit:?}");
    assert!(ratelimit[0].starts_with("\"daily\";r=0;"), "{ratelimit:?}");
    assert!(
        ratelimit[1].starts_with("\"default\";r=997;"),
        "{ratelimit:?}"
    );
    assert_eq!(header(&limited, "x-ratelimit-remaining"), "0");
    assert_eq!(
        limited.extensions().get::<RateLimited>().unwrap().policy(),
        "daily"
    );
}

#[tokio::test(start_paused = true)]
async fn layers_sharing_a_store_need_distinct_policy_names() {
    let store: Arc<dyn RateLimitStore> = Arc::new(MemoryStore::default());
    let layer = |name: &str| {
        RateLimitLayer::builder()
            .policy(Policy::new(name, Quota::per_minute(10).burst(10)))
            .store(store.clone())
            .build()
    };
    let outer = layer("per-client").unwrap();
    let error = layer("per-client").unwrap_err().to_string();
    assert!(error.contains("\"per-client\""), "{error}");
    assert!(error.contains("already registered"), "{error}");

    // Distinct names keep distinct buckets: every request of the quota passes both layers.
    let inner = layer("per-client-inner").unwrap();
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(inner)
        .layer(outer);
    for _ in 0..10 {
        let response = app
            .clone()
            .oneshot(get_from("/items/1", "192.0.2.12"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    // Once the layer (and its services) are gone, a rebuilt layer may take the name again.
    drop(app);
    layer("per-client").unwrap();
}
