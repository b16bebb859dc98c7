//! `dashboards/streamgate.json`, the Grafana dashboard: every query is valid PromQL (promtool
//! checks each as a recording rule; skipped with a message when promtool is not installed, and
//! failing under `CI=true`), and every metric it reads is one the stack exports.

mod support;

use std::collections::BTreeSet;

use axum::{Json, Router, routing::post};
use serde::Deserialize;
use streamgate::{
    Config, Stack,
    validate::{Sanitize, Valid, wire_names},
};
use support::Served;
use validator::Validate;

const DASHBOARD: &str = include_str!("../dashboards/streamgate.json");

/// Every panel query, with Grafana's variables given values Prometheus accepts.
fn queries() -> Vec<String> {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            queries.push(
                expr.replace("$__rate_interval", "1m")
                    .replace("$service", ".*")
                    .replace("$instance", ".*"),
            );
        }
    }
    queries
}

/// The metric names a query reads (our families: `http_server_`, `streamgate_`, `process_`).
fn metric_names(query: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (start, _) in query.match_indices(['h', 's', 'p']) {
        let rest = &query[start..];
        if !["http_server_", "streamgate_", "process_"]
            .iter()
            .any(|prefix| rest.starts_with(prefix))
            || query[..start]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        names.insert(name);
    }
    names
}

#[test]
fn every_query_is_valid_promql() {
    let queries = queries();
    assert!(queries.len() >= 20, "{} queries", queries.len());
    if support::program("promtool").is_none() {
        return;
    }
    let mut rules = String::from("groups:\n- name: dashboard\n  rules:\n");
    for (i, query) in queries.iter().enumerate() {
        let quoted = serde_json::to_string(query).unwrap();
        rules.push_str(&format!(
            "  - record: dashboard:query_{i}\n    expr: {quoted}\n"
        ));
    }
    let dir = std::env::temp_dir().join(format!("streamgate-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.yml");
    std::fs::write(&file, rules).unwrap();
    let output = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[derive(Deserialize, Validate)]
struct NewOrder {
    #[validate(length(min = 1))]
    item: String,
}
impl Sanitize for NewOrder {}
wire_names!(NewOrder {});

async fn create(Valid(Json(order)): Valid<Json<NewOrder>>) -> String {
    order.item
}

#[tokio::test]
async fn every_metric_the_dashboard_reads_is_exported() {
    // The audit trail on files, so that its disk is watched; alerts evaluated often, so that
    // the CPU reading (two evaluations apart) is there soon.
    let dir =
        std::env::temp_dir().join(format!("streamgate-dashboard-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("audit.key"), "00112233445566778899aabbccddeeff").unwrap();
    let yaml = format!(
        r#"
monitoring:
  metrics:
    service_name: shop
  alerts:
    check_interval: 20ms
optimization:
  cache:
    routes:
      /orders: {{shared: true}}
security:
  auth:
    allow_anonymous: true
    jwt:
      issuers:
        - issuer: https://id.example.com
          audiences: [shop]
          keys:
            - hmac_secret: a-dashboard-test-secret-of-32-bytes!
  audit_logging:
    sink: file
    dir: {trail}
    key_file: {key}
"#,
        trail = dir.join("trail").display(),
        key = dir.join("audit.key").display(),
    );
    let config = Config::from_yaml_str("dashboard.yaml", &yaml).unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let served = Served::start(
        stack.apply(Router::new().route("/orders", post(create).get(|| async { "orders" }))),
    )
    .await;
    served.get("/orders").await;
    let refused = served
        .send(
            http::Request::post("/orders")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(r#"{"item":""}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let mut exposition = served.get("/metrics").await.body;
    for _ in 0..250 {
        if exposition.contains("streamgate_process_cpu_usage_ratio ") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        exposition = served.get("/metrics").await.body;
    }

    let names: BTreeSet<String> = queries().iter().flat_map(|q| metric_names(q)).collect();
    assert!(names.len() >= 15, "{names:?}");
    let mut missing = Vec::new();
    for query in queries() {
        for name in metric_names(&query) {
            let exported = exposition.lines().any(|line| {
                line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
            });
            if !exported {
                missing.push(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not exported: {missing:?}\n{exposition}"
    );
    drop(served);
    drop(stack);
    std::fs::remove_dir_all(&dir).ok();
}
