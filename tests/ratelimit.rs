//! Rate limits configured from YAML, through the whole stack over a real socket.

mod support;

use axum::{Router, routing::get};
use streamgate::{Config, Stack};
use support::Served;

const CONFIG: &str = r#"
monitoring:
  metrics:
    service_name: shop
security:
  rate_limiting:
    capacity: 0
    policies:
      per-ip-hourly:
        capacity: 2
        refill_rate: 2
        per: 1h
    routes:
      /items/{id}:
        policies: [per-ip-hourly]
"#;

#[tokio::test]
async fn third_request_in_the_hour_is_refused_with_ietf_headers() {
    let config = Config::from_yaml_str("limits.yaml", CONFIG).unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let served = Served::start(
        stack.apply(
            Router::new()
                .route("/items/{id}", get(|| async { "item" }))
                .route("/other", get(|| async { "free" })),
        ),
    )
    .await;

    let first = served.get("/items/1").await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.headers["ratelimit-policy"],
        r#""per-ip-hourly";q=2;w=3600"#
    );
    assert_eq!(served.get("/items/2").await.status, 200);

    let refused = served.get("/items/3").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    let retry_after: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1800).contains(&retry_after), "{retry_after}");
    assert!(
        refused.headers["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with(r#""per-ip-hourly";r=0;t="#)
    );
    assert_eq!(refused.headers["content-type"], "application/problem+json");
    let body: serde_json::Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(body["status"], 429);
    assert_eq!(
        body["violated-policies"],
        serde_json::json!(["per-ip-hourly"])
    );

    // Routes without a policy are not limited.
    for _ in 0..5 {
        assert_eq!(served.get("/other").await.status, 200);
    }

    let metrics = served.get("/metrics").await.body;
    let limited = metrics
        .lines()
        .find(|l| {
            l.starts_with("streamgate_ratelimit_requests_total")
                && l.contains(r#"decision="limited""#)
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(limited.ends_with(" 1"), "{limited}");
    let status_429 = metrics
        .lines()
        .find(|l| {
            l.starts_with("http_server_request_duration_seconds_count")
                && l.contains(r#"http_response_status_code="429""#)
        })
        .unwrap();
    assert!(status_429.contains(r#"http_route="/items/{id}""#));
}

#[tokio::test]
async fn the_seed_default_limits_every_client_ip() {
    let stack = Stack::new("shop");
    let served = Served::start(stack.apply(Router::new().route("/", get(|| async { "ok" })))).await;
    let answer = served.get("/").await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.headers["ratelimit-policy"],
        r#""default";q=1000;w=10"#
    );
}

#[test]
fn an_unknown_rate_limit_key_is_located() {
    let text = "security:\n  rate_limiting:\n    capacty: 5\n";
    let error = Config::from_yaml_str("s.yaml", text).unwrap_err();
    assert_eq!(error.line(), Some(3), "{error}");
    assert!(
        error.to_string().contains("unknown field `capacty`"),
        "{error}"
    );
}

#[tokio::test]
async fn a_limiter_for_service_code_shares_the_stacks_store_and_metrics() {
    let stack = Stack::new("shop");
    let quota = streamgate::ratelimit::Quota::per_hour(1);
    let uploads = stack.rate_limiter("uploads", quota).unwrap();
    assert!(uploads.allow("user-42").await);
    assert!(!uploads.allow("user-42").await);
    // The seed's default policy is called `default` on the same store.
    let error = stack.rate_limiter("default", quota).unwrap_err();
    assert!(error.to_string().contains("default"), "{error}");

    let served =
        Served::start(stack.apply(Router::new().route("/items/{id}", get(|| async { "item" }))))
            .await;
    let metrics = served.get("/metrics").await.body;
    assert!(
        metrics.contains(
            r#"streamgate_ratelimit_requests_total{policy="uploads",decision="limited"} 1"#
        ),
        "{metrics}"
    );
}
