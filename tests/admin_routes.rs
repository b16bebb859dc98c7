//! The admin routes answer whatever the security, rate-limit and audit layers would do to a
//! user route: a liveness probe or a scrape is never refused, limited or audited.

mod support;

use axum::{Router, routing::get};
use streamgate::{
    Config, Stack,
    audit::{AuditLogger, FileSink, FileSinkConfig, SigningKey},
    ratelimit::{KeyExtractor, Policy, Quota, RateLimitLayer},
};
use support::Served;

const CONFIG: &str = r#"
monitoring:
  metrics:
    service_name: shop
security:
  rate_limiting:
    enabled: false
  audit_logging:
    enabled: false
  auth:
    jwt:
      issuers:
        - issuer: https://id.example.com
          audiences: [shop]
          keys:
            - hmac_secret: an-admin-routes-test-secret-0123456789
    routes:
      - route: /items/{id}
        policy: authenticated
    deny_unlisted: true
"#;

#[tokio::test]
async fn health_and_metrics_bypass_auth_rate_limits_and_audit() {
    let dir = std::env::temp_dir().join(format!("streamgate-e2e-admin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let key = SigningKey::new(&[7; 32]).unwrap();

    let config = Config::from_yaml_str("admin.yaml", CONFIG).unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let logger = AuditLogger::builder()
        .sink(FileSink::open(FileSinkConfig::new(dir.clone(), key)).unwrap())
        .metrics(stack.layer_metrics())
        .start();
    // One request an hour for everyone.
    let limit = RateLimitLayer::builder()
        .policy(Policy::new("global", Quota::per_hour(1).burst(1)).key(KeyExtractor::global()))
        .metrics(stack.layer_metrics())
        .build()
        .unwrap();
    let stack = stack.audit(logger.clone()).rate_limit(limit);
    let served =
        Served::start(stack.apply(Router::new().route("/items/{id}", get(|| async { "item" }))))
            .await;

    assert_eq!(served.get("/items/1").await.status, 401);
    assert_eq!(served.get("/items/1").await.status, 429);

    for _ in 0..3 {
        let live = served.get("/health/live").await;
        assert_eq!(live.status, 200, "{}", live.body);
        assert_eq!(live.body, "ok");
        assert!(live.headers.contains_key("x-request-id"));

        let metrics = served.get("/metrics").await;
        assert_eq!(metrics.status, 200, "{}", metrics.body);
        assert!(
            metrics
                .body
                .contains("http_server_request_duration_seconds_count{"),
            "{}",
            metrics.body
        );
    }
    assert_eq!(served.get("/items/1").await.status, 429);
    // An unmatched path still goes through every layer.
    assert_eq!(served.get("/nope").await.status, 429);

    let metrics = served.get("/metrics").await.body;
    assert!(!metrics.contains(r#"http_route="/metrics""#), "{metrics}");
    assert!(
        !metrics.contains(r#"http_route="/health/live""#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"http_route="unmatched""#), "{metrics}");

    logger.shutdown().await;
    let log = read_all(&dir);
    assert_eq!(log.matches(r#""denied""#).count(), 4, "{log}");
    assert!(!log.contains("/health/live"), "a probe was audited:\n{log}");
    assert!(!log.contains("/metrics"), "a scrape was audited:\n{log}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_user_fallback_keeps_the_layers() {
    let stack = Stack::new("shop");
    let served = Served::start(
        stack.apply(
            Router::new()
                .route("/items/{id}", get(|| async { "item" }))
                .fallback(|| async { (http::StatusCode::NOT_FOUND, "no such page") }),
        ),
    )
    .await;
    let missing = served.get("/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, "no such page");
    assert!(missing.headers.contains_key("x-request-id"));
    assert!(missing.headers.contains_key("ratelimit-policy"));
    assert_eq!(served.get("/health/live").await.body, "ok");

    let metrics = served.get("/metrics").await.body;
    assert!(metrics.contains(r#"http_route="unmatched""#), "{metrics}");
}

fn read_all(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            text.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
    }
    text
}
