//! The admin routes answer whatever the security, rate-limit and audit layers would do to a
//! user route: a liveness probe or a scrape is never refused, limited or audited.

mod support;

use axum::{Router, routing::get};
use streamgate::{
    Config, Stack,
    audit::{
        AuditEvent, AuditLogger, AuditSink, FileSink, FileSinkConfig, Outcome, SigningKey,
        SinkFuture, WhenFull,
    },
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

        let ready = served.get("/health/ready").await;
        assert_eq!(ready.status, 200, "{}", ready.body);
        assert_eq!(
            ready.body,
            r#"{"checks":{"audit_queue":"ok","ratelimit_store":"ok"},"status":"ready"}"#
        );

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
    assert!(!log.contains("/health/"), "a probe was audited:\n{log}");
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

#[tokio::test]
async fn a_failing_readiness_check_takes_the_replica_out_of_rotation() {
    let database_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = database_up.clone();
    let stack = Stack::new("shop").readiness_check("database", move || {
        let up = probe.load(std::sync::atomic::Ordering::SeqCst);
        async move {
            if up {
                Ok(())
            } else {
                Err("connection refused by db.internal:5432")
            }
        }
    });
    let served =
        Served::start(stack.apply(Router::new().route("/items/{id}", get(|| async { "item" }))))
            .await;

    let down = served.get("/health/ready").await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(
        down.headers["content-type"], "application/problem+json",
        "{}",
        down.body
    );
    let problem: serde_json::Value = serde_json::from_str(&down.body).unwrap();
    assert_eq!(problem["detail"], "not ready: database");
    assert_eq!(
        problem["checks"],
        serde_json::json!({"ratelimit_store": "ok", "database": "failed"})
    );
    assert!(!down.body.contains("db.internal"), "{}", down.body);
    // Liveness does not depend on the database.
    assert_eq!(served.get("/health/live").await.status, 200);

    database_up.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(served.get("/health/ready").await.status, 200);
}

/// A sink that never finishes a write: the writer falls behind for good.
#[derive(Debug)]
struct StalledSink;

impl AuditSink for StalledSink {
    fn name(&self) -> &'static str {
        "stalled"
    }

    fn write<'a>(&'a mut self, _: &'a [AuditEvent]) -> SinkFuture<'a> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn an_audit_writer_that_fell_behind_takes_the_replica_out_of_rotation() {
    let logger = AuditLogger::builder()
        .sink(StalledSink)
        .capacity(10)
        .when_full(WhenFull::DropOldest)
        .start();
    let stack = Stack::new("shop").audit(logger.clone());
    let served =
        Served::start(stack.apply(Router::new().route("/items/{id}", get(|| async { "item" }))))
            .await;
    assert_eq!(served.get("/health/ready").await.status, 200);
    // The writer takes the first event and stalls on it; nine more fill the queue to 9 of 10.
    for i in 0..10 {
        logger
            .log_event(
                "test",
                "user-1",
                "act",
                format!("r-{i}"),
                Outcome::Success,
                serde_json::json!({}),
            )
            .await
            .unwrap();
        tokio::task::yield_now().await;
    }
    let behind = served.get("/health/ready").await;
    assert_eq!(behind.status, 503, "{}", behind.body);
    let problem: serde_json::Value = serde_json::from_str(&behind.body).unwrap();
    assert_eq!(problem["checks"]["audit_queue"], "failed");
    assert_eq!(problem["detail"], "not ready: audit_queue");
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
