//! The response cache in the stack: configured from YAML, inside the security context and the
//! route table, so a cached answer reaches only callers the table lets through, and private
//! routes keep one entry per user.

mod support;

use axum::{Router, body::Body, routing::get};
use http::Request;
use streamgate::{Config, Stack, core::SecurityContext};
use support::{Answer, Served, test_token};

const CONFIG: &str = r#"
monitoring:
  metrics:
    service_name: files
optimization:
  cache:
    ttl: 1m
    routes:
      /catalog: { shared: true }
      /whoami: {}
security:
  auth:
    allow_anonymous: true
    jwt:
      issuers:
        - issuer: https://id.example.com
          audiences: [files]
          keys:
            - hmac_secret: a-test-secret-of-at-least-32-bytes!!
    roles:
      - name: viewer
        permissions: ["files:read"]
    routes:
      - route: /catalog
        policy: {permission: "files:read"}
      - route: /whoami
        policy: authenticated
"#;

async fn get_as(served: &Served, path: &str, token: Option<&str>) -> Answer {
    let mut builder = Request::get(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    served.send(builder.body(Body::empty()).unwrap()).await
}

fn x_cache(answer: &Answer) -> &str {
    answer
        .headers
        .get("x-cache")
        .map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn cached_answers_go_only_to_callers_the_route_table_lets_through() {
    let config = Config::from_yaml_str("cache.yaml", CONFIG).unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let calls = counter.clone();
    let routes = Router::new()
        .route(
            "/catalog",
            get(move || async move {
                let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                format!("catalog, call {call}")
            }),
        )
        .route(
            "/whoami",
            get(|context: SecurityContext| async move { context.user_id().to_owned() }),
        );
    let served = Served::start(stack.apply(routes)).await;
    let (viewer, nobody) = (test_token("ada", &["viewer"]), test_token("bob", &[]));

    let first = get_as(&served, "/catalog", Some(&viewer)).await;
    assert_eq!((first.status, x_cache(&first)), (200, "MISS"));
    let hit = get_as(&served, "/catalog", Some(&viewer)).await;
    assert_eq!((hit.status, x_cache(&hit)), (200, "HIT"));
    assert_eq!(hit.body, "catalog, call 1");
    assert_eq!(get_as(&served, "/catalog", None).await.status, 401);
    let refused = get_as(&served, "/catalog", Some(&nobody)).await;
    assert_eq!(refused.status, 403, "the route table runs before the cache");
    assert!(!refused.body.contains("catalog"));

    let ada = get_as(&served, "/whoami", Some(&viewer)).await;
    let bob = get_as(&served, "/whoami", Some(&nobody)).await;
    assert_eq!((ada.body.as_str(), bob.body.as_str()), ("ada", "bob"));
    assert_eq!(
        x_cache(&bob),
        "MISS",
        "a private route keeps one entry per user"
    );
    let ada_again = get_as(&served, "/whoami", Some(&viewer)).await;
    assert_eq!(
        (ada_again.body.as_str(), x_cache(&ada_again)),
        ("ada", "HIT")
    );

    let metrics = served.get("/metrics").await.body;
    assert!(
        metrics.contains(r#"streamgate_cache_lookups_total{result="hit"} 2"#),
        "{metrics}"
    );
}

#[test]
fn cache_config_errors_are_located() {
    let unknown = Config::from_yaml_str(
        "cache.yaml",
        "optimization:\n  cache:\n    max_entries: 5\n",
    )
    .unwrap_err();
    assert!(
        unknown
            .to_string()
            .starts_with("cache.yaml:3:5: optimization.cache: unknown field `max_entries`"),
        "{unknown}"
    );
    let config = Config::from_yaml_str(
        "cache.yaml",
        "optimization:\n  cache:\n    vary: [\"not a header\"]\n    routes:\n      /x: {}\n",
    )
    .unwrap();
    let error = Stack::from_config(&config).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cache.yaml:2:3: optimization.cache: vary: `not a header` is not a header name"
    );
}

/// Two replicas of one service, each a `Stack` from the same YAML, share the cache on Redis
/// (`STREAMGATE_TEST_REDIS_URL`; skipped when unset).
#[cfg(feature = "redis")]
#[tokio::test]
async fn stacks_configured_with_redis_share_cached_answers_and_invalidations() {
    let Ok(url) = std::env::var("STREAMGATE_TEST_REDIS_URL") else {
        println!("skipped: STREAMGATE_TEST_REDIS_URL is not set");
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let yaml = format!(
        "optimization:\n  cache:\n    routes:\n      /items/{{id}}: {{}}\n    redis:\n      \
         url: {url}\n      prefix: streamgate-test:facade:{}:{nanos}\n",
        std::process::id()
    );
    let config = Config::from_yaml_str("cache.yaml", &yaml).unwrap();
    let replica = |name: &'static str| {
        let stack = Stack::from_config(&config).unwrap();
        let routes = Router::new().route(
            "/items/{id}",
            get(move || async move { format!("item from {name}") })
                .post(|| async { http::StatusCode::NO_CONTENT }),
        );
        Served::start(stack.apply(routes))
    };
    let (a, b) = (replica("a").await, replica("b").await);

    let stored = a.get("/items/1").await;
    assert_eq!(
        (stored.body.as_str(), x_cache(&stored)),
        ("item from a", "MISS")
    );
    let hit = b.get("/items/1").await;
    assert_eq!((hit.body.as_str(), x_cache(&hit)), ("item from a", "HIT"));
    let write = Request::post("/items/1").body(Body::empty()).unwrap();
    assert_eq!(b.send(write).await.status, 204);
    let after = a.get("/items/1").await;
    assert_eq!(
        (after.body.as_str(), x_cache(&after)),
        ("item from a", "MISS")
    );
    assert_eq!(x_cache(&b.get("/items/1").await), "HIT");
}

#[cfg(feature = "redis")]
#[test]
fn cache_redis_config_errors_are_located() {
    let unknown = Config::from_yaml_str(
        "cache.yaml",
        "optimization:\n  cache:\n    redis:\n      uri: redis://127.0.0.1\n",
    )
    .unwrap_err();
    assert!(
        unknown
            .to_string()
            .starts_with("cache.yaml:4:7: optimization.cache.redis: unknown field `uri`"),
        "{unknown}"
    );
    let config = Config::from_yaml_str(
        "cache.yaml",
        "optimization:\n  cache:\n    routes:\n      /x: {}\n    redis: {url: \"http://x\"}\n",
    )
    .unwrap();
    let error = Stack::from_config(&config).unwrap_err().to_string();
    assert!(
        error.starts_with("cache.yaml:2:3: optimization.cache: redis: invalid Redis URL"),
        "{error}"
    );
}

#[tokio::test]
async fn configured_paths_are_warmed_through_every_layer() {
    // CONFIG's route table: /catalog needs a permission, /products is not listed (open).
    let yaml = format!(
        "optimization:\n  cache:\n    routes:\n      /products: {{shared: true}}\n      \
         /catalog: {{shared: true}}\n    warm:\n      paths: [/products, /catalog]\n{}",
        &CONFIG[CONFIG.find("security:").unwrap()..]
    );
    let config = Config::from_yaml_str("warm.yaml", &yaml).unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = calls.clone();
    let app = stack.apply(
        Router::new()
            .route(
                "/products",
                get(move || {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async { "every product" }
                }),
            )
            .route("/catalog", get(|| async { "for viewers" })),
    );
    let report = stack.cache_warmer(app.clone()).unwrap().warm().await;
    assert_eq!(report.stored(), 1, "{report:?}");
    // The route table refuses an anonymous warming request as it would a client.
    assert_eq!(
        report.paths[1].1,
        streamgate::cache::WarmOutcome::NotStored(http::StatusCode::UNAUTHORIZED)
    );

    let served = Served::start(app).await;
    // A client sending what the warmer sent (by default `Accept: */*`, as curl does) hits.
    let curl_like = Request::get("/products")
        .header("accept", "*/*")
        .body(Body::empty())
        .unwrap();
    let first = served.send(curl_like).await;
    assert_eq!(
        (x_cache(&first), first.body.as_str()),
        ("HIT", "every product")
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let metrics = served.get("/metrics").await.body;
    assert!(
        metrics.contains(r#"streamgate_cache_warmed_total{outcome="stored"} 1"#),
        "{metrics}"
    );
    assert!(Stack::new("shop").cache_warmer(Router::new()).is_none());
}
