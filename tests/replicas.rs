//! Two replicas built from one YAML file share their rate limits through Redis and their audit
//! trail through PostgreSQL (`STREAMGATE_TEST_REDIS_URL`, `STREAMGATE_TEST_POSTGRES_URL`; skipped
//! with a message when either is unset).

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::{
    Router,
    body::Body,
    routing::{get, post},
};
use http::Request;
use streamgate::{
    Config, Stack,
    audit::{
        AuditQuery, SigningKey,
        postgres::{PostgresSink, PostgresSinkConfig, verify_postgres},
    },
    ratelimit::Quota,
};
use support::Served;

const KEY: [u8; 32] = [7; 32];

fn engine_urls(test: &str) -> Option<(String, String)> {
    let read = |name: &str| std::env::var(name).ok().filter(|url| !url.is_empty());
    match (
        read("STREAMGATE_TEST_REDIS_URL"),
        read("STREAMGATE_TEST_POSTGRES_URL"),
    ) {
        (Some(redis), Some(postgres)) => Some((redis, postgres)),
        _ => {
            println!(
                "SKIPPED {test}: set STREAMGATE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) and \
                 STREAMGATE_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run it"
            );
            None
        }
    }
}

/// One replica's configuration: everything shared except its instance id.
fn replica_yaml(
    redis: &str,
    postgres: &str,
    unique: &str,
    key_file: &str,
    instance: &str,
) -> String {
    format!(
        r#"
monitoring:
  metrics:
    service_name: shop
  alerts:
    enabled: false
optimization:
  cache:
    routes:
      /orders/{{id}}: {{shared: true}}
    redis:
      url: {redis}
      prefix: "streamgate-test:{unique}:cache"
      timeout: 2s
security:
  rate_limiting:
    capacity: 0
    policies:
      orders-per-ip:
        capacity: 3
        refill_rate: 3
        per: 1h
    routes:
      /orders:
        policies: [orders-per-ip]
    redis:
      url: {redis}
      prefix: "streamgate-test:{unique}"
      timeout: 2s
    fail_mode: closed
  audit_logging:
    sink: postgres
    key_file: {key_file}
    postgres:
      url: {postgres}
      instance: {instance}
      table: audit_{unique}
"#
    )
}

async fn replica(yaml: &str) -> (Stack, Served) {
    let config = Config::from_yaml_str("replica.yaml", yaml).unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let app = stack.apply(
        Router::new()
            .route("/orders", post(|| async { "created" }))
            .route("/orders/{id}", get(|| async { "order" })),
    );
    let served = Served::start(app).await;
    (stack, served)
}

async fn order(replica: &Served) -> u16 {
    let request = Request::post("/orders")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    replica.send(request).await.status
}

#[tokio::test]
async fn two_replicas_share_one_quota_and_one_audit_trail() {
    let Some((redis, postgres)) = engine_urls("two_replicas_share_one_quota_and_one_audit_trail")
    else {
        return;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let unique = format!("replicas_{}_{nanos}", std::process::id());
    let key_file = std::env::temp_dir().join(format!("streamgate-{unique}.key"));
    std::fs::write(&key_file, hex::encode(KEY)).unwrap();
    let key_path = key_file.to_str().unwrap();

    let (stack_a, a) = replica(&replica_yaml(&redis, &postgres, &unique, key_path, "api-0")).await;
    let (stack_b, b) = replica(&replica_yaml(&redis, &postgres, &unique, key_path, "api-1")).await;

    for replica in [&a, &b] {
        let ready = replica.get("/health/ready").await;
        assert_eq!(ready.status, 200, "{}", ready.body);
        assert_eq!(
            ready.body,
            r#"{"checks":{"audit_queue":"ok","audit_sink":"ok","cache_store":"ok","ratelimit_store":"ok"},"status":"ready"}"#
        );
    }

    // A response one replica cached is a hit on the other.
    assert_eq!(a.get("/orders/7").await.headers["x-cache"], "MISS");
    let hit = b.get("/orders/7").await;
    assert_eq!(
        (hit.headers["x-cache"].to_str().unwrap(), hit.body.as_str()),
        ("HIT", "order")
    );

    // One quota of three between the two replicas: the fourth order is refused on either.
    assert_eq!(order(&a).await, 200);
    assert_eq!(order(&a).await, 200);
    assert_eq!(order(&b).await, 200);
    assert_eq!(order(&b).await, 429);
    assert_eq!(order(&a).await, 429);

    // A limiter for service code decides on the same Redis: its quota is shared too.
    let exports_a = stack_a.rate_limiter("exports", Quota::per_hour(2)).unwrap();
    let exports_b = stack_b.rate_limiter("exports", Quota::per_hour(2)).unwrap();
    assert!(exports_a.allow("tenant-9").await);
    assert!(exports_b.allow("tenant-9").await);
    assert!(!exports_a.allow("tenant-9").await);
    let metrics = a.get("/metrics").await.body;
    assert!(
        metrics.contains(
            r#"streamgate_ratelimit_requests_total{policy="exports",decision="limited"} 1"#
        ),
        "{metrics}"
    );

    for stack in [&stack_a, &stack_b] {
        stack.audit_logger().unwrap().shutdown().await;
    }
    std::fs::remove_file(&key_file).unwrap();

    // Each replica wrote its own verifiable chain into the one table.
    let table = format!("audit_{unique}");
    let key = SigningKey::new(&KEY).unwrap();
    for (instance, events) in [("api-0", 3), ("api-1", 2)] {
        let report = verify_postgres(&postgres, &table, instance, &key)
            .await
            .unwrap_or_else(|failure| panic!("{instance}: {failure}"));
        assert_eq!(report.events, events, "{instance}");
    }

    // And the seed's queries see both replicas' events.
    let reader =
        PostgresSink::new(PostgresSinkConfig::new(postgres.as_str(), "reader", key).table(table))
            .unwrap()
            .reader();
    let now = SystemTime::now();
    let events = reader
        .events_by_actor("anonymous", now - Duration::from_secs(600)..now, 100)
        .await
        .unwrap();
    let mut statuses: Vec<u16> = events.iter().filter_map(|event| event.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn a_replica_whose_engines_are_down_is_not_ready() {
    let key_file = std::env::temp_dir().join(format!("streamgate-down-{}.key", std::process::id()));
    std::fs::write(&key_file, hex::encode(KEY)).unwrap();
    // Nothing listens on port 1.
    let yaml = replica_yaml(
        "redis://127.0.0.1:1",
        "postgres://postgres@127.0.0.1:1/test",
        "down",
        key_file.to_str().unwrap(),
        "api-0",
    );
    let (stack, replica) = replica(&yaml).await;
    std::fs::remove_file(&key_file).unwrap();

    let ready = replica.get("/health/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    let problem: serde_json::Value = serde_json::from_str(&ready.body).unwrap();
    assert_eq!(
        problem["detail"],
        "not ready: ratelimit_store, cache_store, audit_sink"
    );
    assert_eq!(
        problem["checks"],
        serde_json::json!({
            "ratelimit_store": "failed",
            "audit_queue": "ok",
            "cache_store": "failed",
            "audit_sink": "failed"
        })
    );
    // fail_mode: closed: the store cannot decide, so orders are refused, not let through.
    assert_eq!(order(&replica).await, 503);
    assert_eq!(replica.get("/health/live").await.status, 200);
    drop(stack);
}
