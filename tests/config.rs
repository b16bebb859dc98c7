//! The YAML file drives the stack.

mod support;

use axum::{Router, routing::get};
use streamgate::{Config, Stack};
use support::Served;

#[test]
fn the_example_file_parses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/streamgate.yaml");
    let config = Config::from_file(path).unwrap();
    assert_eq!(config.monitoring.metrics.service_name, "upload");
    // Everything else in the file is the default it claims to show.
    let mut metrics = config.monitoring.metrics.clone();
    metrics.service_name = streamgate::MetricsConfig::default().service_name;
    assert_eq!(metrics, streamgate::MetricsConfig::default());
    #[cfg(feature = "ratelimit")]
    assert_eq!(
        config.security.rate_limiting,
        streamgate::ratelimit::RateLimitConfig::default()
    );
    #[cfg(feature = "audit")]
    assert_eq!(
        config.security.audit_logging,
        streamgate::AuditLoggingConfig::default()
    );
}

#[test]
fn a_missing_file_is_named() {
    let error = Config::from_file("/nonexistent/streamgate.yaml").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/streamgate.yaml: cannot read"),
        "{error}"
    );
}

#[tokio::test]
async fn config_sets_labels_proxies_and_exclusions() {
    let text = r#"
monitoring:
  metrics:
    service_name: catalog
    exclude_routes: ["/internal"]
security:
  trusted_proxies: ["127.0.0.1"]
"#;
    let config = Config::from_yaml_str("catalog.yaml", text).unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let routes = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .route(
            "/ip",
            get(
                |streamgate::core::ClientIp(ip): streamgate::core::ClientIp| async move {
                    ip.to_string()
                },
            ),
        )
        .route("/internal", get(|| async { "hidden" }));
    let served = Served::start(stack.apply(routes)).await;
    served.get("/items/1").await;
    served.get("/internal").await;
    let forwarded = served
        .send(
            http::Request::get("/ip")
                .header("x-forwarded-for", "203.0.113.9")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        forwarded.body, "203.0.113.9",
        "the loopback proxy is trusted"
    );
    // The proxy appends to X-Forwarded-For; a `Forwarded` it passed on is the client's own.
    let forged = served
        .send(
            http::Request::get("/ip")
                .header("forwarded", "for=198.51.100.66")
                .header("x-forwarded-for", "203.0.113.9")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(forged.body, "203.0.113.9", "`Forwarded` is not read");

    let text = served.get("/metrics").await.body;
    assert!(text.contains(r#"service_name="catalog""#), "{text}");
    assert!(!text.contains(r#"http_route="/internal""#), "{text}");
}

#[tokio::test]
async fn forwarded_header_setting_picks_the_header_read() {
    let text = r#"
security:
  trusted_proxies: ["127.0.0.1"]
  forwarded_header: forwarded
"#;
    let config = Config::from_yaml_str("rfc7239.yaml", text).unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let routes =
        Router::new().route(
            "/ip",
            get(
                |streamgate::core::ClientIp(ip): streamgate::core::ClientIp| async move {
                    ip.to_string()
                },
            ),
        );
    let served = Served::start(stack.apply(routes)).await;
    let response = served
        .send(
            http::Request::get("/ip")
                .header("forwarded", "for=198.51.100.66")
                .header("x-forwarded-for", "203.0.113.9")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(response.body, "198.51.100.66");
}

#[tokio::test]
async fn disabled_metrics_mount_no_endpoint_and_record_nothing() {
    let config =
        Config::from_yaml_str("off.yaml", "monitoring:\n  metrics:\n    enabled: false\n").unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let served =
        Served::start(stack.apply(Router::new().route("/items/{id}", get(|| async { "item" }))))
            .await;
    assert_eq!(served.get("/items/1").await.status, 200);
    assert_eq!(served.get("/metrics").await.status, 404);
    assert!(stack.recorder().snapshot().histograms.is_empty());
}

#[tokio::test]
async fn the_readme_yaml_examples_parse() {
    let readme = include_str!("../README.md");
    let blocks: Vec<&str> = readme
        .split("```yaml\n")
        .skip(1)
        .map(|rest| &rest[..rest.find("```").unwrap()])
        .collect();
    assert!(blocks.len() >= 2);
    for block in &blocks {
        match Config::from_yaml_str("README.md", block) {
            Ok(_) => {}
            // The replicas example needs the shared engines' features, as the README says.
            Err(error)
                if !cfg!(all(feature = "redis", feature = "postgres"))
                    && error.to_string().contains("feature") => {}
            Err(error) => panic!("{error}\n{block}"),
        }
    }
    let security = blocks
        .iter()
        .find(|b| b.contains("trusted_proxies"))
        .expect("the security example");
    let config = Config::from_yaml_str("README.md", security).unwrap();
    assert_eq!(config.security.trusted_proxies, ["10.0.0.0/8"]);
    assert_eq!(config.security.rate_limiting.capacity, 1000);
    assert!(config.security.auth.is_some());
    let alerts = blocks
        .iter()
        .find(|b| b.contains("alerts:"))
        .expect("the alerts example");
    let config = Config::from_yaml_str("README.md", alerts).unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let rules = stack.alerting().unwrap().rules();
    let names: Vec<&str> = rules.iter().map(|rule| rule.name()).collect();
    assert_eq!(
        names.len(),
        10,
        "the seed's eight, QueueBacklog and DataDiskFull: {names:?}"
    );
    assert!(
        names.ends_with(&["QueueBacklog", "DataDiskFull"]),
        "{names:?}"
    );
}

/// The error `Stack::from_config` gives for `yaml`.
fn stack_error(yaml: &str) -> String {
    let config = Config::from_yaml_str("replica.yaml", yaml).unwrap();
    Stack::from_config(&config).unwrap_err().to_string()
}

#[tokio::test]
async fn errors_found_when_the_layers_are_built_name_the_file_line_and_key() {
    let error = stack_error(
        "monitoring:\n  metrics:\n    window: 5m\nsecurity:\n  cors: {allow_origins: [\"not a url\"]}\n",
    );
    assert_eq!(
        error,
        "replica.yaml:5:3: security.cors: allow_origins: \"not a url\" is not an origin (scheme://host[:port])"
    );
    let error = stack_error("security:\n  request_timeout: 0s\n");
    assert!(
        error.starts_with("replica.yaml:2:3: security.request_timeout: a zero timeout"),
        "{error}"
    );
    let error = Config::from_yaml_str(
        "replica.yaml",
        "security:\n  trusted_proxies:\n    - 10.0.0.0/33\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("replica.yaml:2:3: security.trusted_proxies: `10.0.0.0/33`"),
        "{error}"
    );
    // A section set by a variable is that variable's fault.
    let config = Config::from_yaml_str_with_env(
        "replica.yaml",
        "security:\n  cors: null\n",
        [(
            "STREAMGATE__SECURITY__CORS__ALLOW_ORIGINS".to_owned(),
            "[ftp]".to_owned(),
        )],
    )
    .unwrap();
    let error = Stack::from_config(&config).unwrap_err().to_string();
    assert!(
        error.starts_with("STREAMGATE__SECURITY__CORS__ALLOW_ORIGINS: security.cors: "),
        "{error}"
    );
}

#[tokio::test]
async fn mistakes_that_would_weaken_a_layer_are_refused() {
    // A misspelled policy name on a route would leave the route unlimited.
    let error = stack_error(
        "security:\n  rate_limiting:\n    policies:\n      tight: {capacity: 1, refill_rate: 1, per: 1h}\n    routes:\n      /files: {policies: [tigth]}\n",
    );
    assert!(
        error.starts_with("replica.yaml:5:5: security.rate_limiting.routes: ")
            && error.contains("\"tigth\", which is not defined"),
        "{error}"
    );
    // A value a layer refuses is placed at its own key.
    let error = stack_error("security:\n  rate_limiting:\n    capacity: 10\n    refill_rate: 0\n");
    assert!(
        error.starts_with("replica.yaml:4:5: security.rate_limiting.refill_rate: "),
        "{error}"
    );
    let error = stack_error(
        "security:\n  rate_limiting:\n    policies:\n      login: {capacity: 0, refill_rate: 1, per: 1m}\n",
    );
    assert!(
        error.starts_with("replica.yaml:4:7: security.rate_limiting.policies.login: "),
        "{error}"
    );
    // An empty or short HMAC secret would let anyone sign tokens.
    let error = stack_error(
        "security:\n  auth:\n    jwt:\n      issuers:\n        - issuer: https://id.test\n          keys: [{hmac_secret: \"\"}]\n",
    );
    assert!(
        error.starts_with("replica.yaml:2:3: security.auth: ")
            && error.contains("the HMAC secret has 0 bytes"),
        "{error}"
    );
}

#[tokio::test]
async fn a_refused_configuration_starts_no_audit_writer() {
    let dir = std::env::temp_dir().join(format!("streamgate-refused-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let error = stack_error(&format!(
        "security:\n  audit_logging:\n    dir: {}\n  auth:\n    jwt:\n      issuers: []\n",
        dir.display()
    ));
    assert!(error.contains("security.auth"), "{error}");
    assert!(
        !dir.exists(),
        "the audit trail was opened for a refused configuration"
    );
}

#[cfg(all(feature = "redis", feature = "postgres"))]
#[tokio::test]
async fn shared_engine_settings_that_cannot_work_are_named() {
    let error = stack_error("security:\n  audit_logging: {sink: postgres}\n");
    assert_eq!(
        error,
        "replica.yaml:2:3: security.audit_logging: the postgres sink needs `postgres: {url: ...}`"
    );
    let error = stack_error(
        "security:\n  audit_logging:\n    sink: postgres\n    key_file: /nonexistent/audit.key\n    postgres: {url: postgres://db/app, instance: api-0}\n",
    );
    assert!(
        error.contains("cannot read key_file /nonexistent/audit.key"),
        "{error}"
    );
    let key_file = std::env::temp_dir().join(format!("streamgate-badkey-{}", std::process::id()));
    std::fs::write(&key_file, "not hex").unwrap();
    let error = stack_error(&format!(
        "security:\n  audit_logging:\n    sink: postgres\n    key_file: {}\n    postgres: {{url: postgres://db/app, instance: api-0}}\n",
        key_file.display()
    ));
    std::fs::remove_file(&key_file).unwrap();
    assert!(error.contains("is not hex"), "{error}");
    let error =
        stack_error("security:\n  rate_limiting:\n    redis: {url: \"http://not-redis\"}\n");
    assert!(
        error.contains("security.rate_limiting.redis: invalid Redis URL"),
        "{error}"
    );
    let error = Config::from_yaml_str(
        "replica.yaml",
        "security:\n  rate_limiting:\n    redis: {url: \"redis://r\", timout: 1s}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("replica.yaml:3") && error.contains("timout"),
        "{error}"
    );
}
