//! Alerts in the stack: the seed's rules by default, `/alerts` beside `/metrics`, and the
//! `monitoring.alerts` config section.

use std::time::Duration;

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Request, StatusCode},
    routing::get,
};
use serde_json::Value;
use streamgate::{
    Config, Stack,
    alerts::{AlertRule, Alerts, Severity, Signal},
};
use tower::ServiceExt;

fn routes() -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
}

async fn get_json(app: &Router, path: &str) -> (StatusCode, Value) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn send(app: &Router, path: &str, times: usize) {
    for _ in 0..times {
        let request = Request::get(path).body(Body::empty()).unwrap();
        drop(app.clone().oneshot(request).await.unwrap());
    }
}

#[tokio::test]
async fn the_stack_evaluates_the_seeds_rules_and_serves_them_at_alerts() {
    let stack = Stack::new("shop").no_rate_limits();
    let rules: Vec<String> = stack
        .alerting()
        .expect("alerts are on by default")
        .rules()
        .iter()
        .map(|r| r.name().to_owned())
        .collect();
    assert_eq!(
        rules,
        [
            "ServiceDown",
            "HighErrorRate",
            "ElevatedErrorRate",
            "HighLatency",
            "ElevatedLatency",
            "HighCpuUsage",
            "HighMemoryUsage",
            "OutOfMemory"
        ]
    );
    let app = stack.apply(routes());
    let (status, page) = get_json(&app, "/alerts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["health"], "healthy");
    assert_eq!(page["alerts"], Value::Array(vec![]));

    send(&app, "/fail", 4).await;
    stack.alerting().unwrap().evaluate().await;
    let (_, page) = get_json(&app, "/alerts").await;
    let ids: Vec<&str> = page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["HighErrorRate", "ElevatedErrorRate"], "{page}");
    assert_eq!(
        page["alerts"][0]["state"], "pending",
        "the seed's rules hold for a minute"
    );
}

#[tokio::test]
async fn firing_alerts_show_in_alerts_and_metrics_and_alerts_is_not_counted() {
    let stack = Stack::new("shop").no_rate_limits();
    let alerts = Alerts::builder(stack.recorder().clone())
        .rule(
            AlertRule::new(
                "AnyError",
                Signal::ErrorRate {
                    service: "shop".into(),
                },
            )
            .above(0.0)
            .severity(Severity::Critical),
        )
        .interval(Duration::from_secs(3600))
        .build();
    let stack = stack.alerts(alerts);
    let app = stack.apply(routes());
    send(&app, "/fail", 1).await;
    stack.alerting().unwrap().evaluate().await;

    let (_, page) = get_json(&app, "/alerts").await;
    assert_eq!(page["health"], "unhealthy");
    assert_eq!(page["alerts"][0]["id"], "AnyError");
    assert_eq!(page["alerts"][0]["state"], "firing");
    assert_eq!(page["alerts"][0]["value"], 1.0);

    let response = app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = String::from_utf8(
        to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains("# HELP streamgate_alerts_firing "), "{text}");
    assert!(
        text.contains(r#"streamgate_alerts_firing{severity="critical"} 1"#),
        "{text}"
    );
    assert!(
        !text.contains(r#"http_route="/alerts""#),
        "admin routes are not counted"
    );
}

#[tokio::test]
async fn no_alerts_means_no_route() {
    let app = Stack::new("shop").no_alerts().apply(routes());
    let response = app
        .oneshot(Request::get("/alerts").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_config_section_builds_the_rules_and_handlers() {
    let config = Config::from_yaml_str(
        "streamgate.yaml",
        r"
monitoring:
  metrics:
    service_name: upload
  alerts:
    check_interval: 10s
    default_rules: false
    rules:
      - name: QueueBacklog
        signal: { kind: reported, name: queue_depth }
        above: 100
        severity: critical
",
    )
    .unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let alerts = stack.alerting().unwrap();
    assert_eq!(alerts.rules().len(), 1);
    let fired = alerts.check_metric("queue_depth", 150.0).await;
    assert_eq!(fired[0].id, "QueueBacklog");
    assert_eq!(fired[0].severity, Severity::Critical);
    // Prometheus never sees a reported value: the rule file leaves it out and says so.
    let exported = stack.prometheus_rules().unwrap().unwrap();
    assert_eq!(exported.left_out, ["QueueBacklog"]);
    assert!(!exported.yaml.contains("alert:"), "{}", exported.yaml);

    let off = Config::from_yaml_str(
        "streamgate.yaml",
        "monitoring:\n  alerts:\n    enabled: false\n",
    )
    .unwrap();
    assert!(Stack::from_config(&off).unwrap().alerting().is_none());
    assert!(
        Stack::from_config(&off)
            .unwrap()
            .prometheus_rules()
            .is_none()
    );
}

#[tokio::test]
async fn the_default_rules_export_over_the_configured_window() {
    let config = Config::from_yaml_str(
        "streamgate.yaml",
        "monitoring:\n  metrics:\n    service_name: shop\n    window: 2m\n",
    )
    .unwrap();
    let exported = Stack::from_config(&config)
        .unwrap()
        .prometheus_rules()
        .unwrap()
        .unwrap();
    assert_eq!(
        exported.yaml.matches("- alert: ").count(),
        8,
        "{}",
        exported.yaml
    );
    assert!(
        exported.yaml.starts_with("groups:\n- name: shop\n"),
        "{}",
        exported.yaml
    );
    assert!(
        exported.yaml.contains(
            r#"sum(rate(http_server_request_duration_seconds_count{service_name="shop",http_response_status_code=~"5.."}[120s]))"#
        ),
        "{}",
        exported.yaml
    );
}

#[test]
fn config_errors_name_the_file_line_and_key() {
    let unknown = Config::from_yaml_str(
        "streamgate.yaml",
        "monitoring:\n  alerts:\n    check_interval: 10s\n    resend: 1m\n",
    )
    .unwrap_err();
    assert!(
        unknown
            .to_string()
            .starts_with("streamgate.yaml:4:5: monitoring.alerts: unknown field `resend`"),
        "{unknown}"
    );
    let config = Config::from_yaml_str(
        "streamgate.yaml",
        "monitoring:\n  alerts:\n    rules:\n      - { name: X, signal: { kind: gauge, name: g } }\n",
    )
    .unwrap();
    let error = Stack::from_config(&config).unwrap_err();
    assert_eq!(
        error.to_string(),
        "streamgate.yaml:2:3: monitoring.alerts: rules: `X` needs exactly one of `above` and `below`"
    );
}

/// A directory for a test named `name` holding an audit signing key, and the config section
/// of an audit trail written to files in its `trail` folder.
fn file_audit_trail(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("streamgate-alerts-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("audit.key");
    std::fs::write(&key_file, "00112233445566778899aabbccddeeff").unwrap();
    let yaml = format!(
        "security:\n  audit_logging:\n    sink: file\n    dir: {}\n    key_file: {}\n",
        dir.join("trail").display(),
        key_file.display()
    );
    (dir, yaml)
}

#[tokio::test]
async fn a_file_audit_trail_gets_the_disk_full_rule() {
    let (dir, yaml) = file_audit_trail("disk");
    let audit_dir = dir.join("trail");
    let config = Config::from_yaml_str("streamgate.yaml", &yaml).unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let rules = stack.alerting().unwrap().rules();
    let disk = rules
        .iter()
        .find(|rule| rule.name() == "AuditDiskFull")
        .expect("an AuditDiskFull rule");
    assert_eq!(disk.signal(), &Signal::DiskUsage { path: audit_dir });
    assert_eq!(disk.level(), Severity::Critical);
    // The seed's request and resource rules are there too.
    for name in ["HighErrorRate", "HighCpuUsage", "OutOfMemory"] {
        assert!(rules.iter().any(|rule| rule.name() == name), "{name}");
    }
    // It is evaluated over this machine's disk like any rule (the disk is not 95% full here).
    let alerts = stack.alerting().unwrap();
    alerts.evaluate().await;
    assert!(
        alerts
            .active()
            .iter()
            .all(|alert| alert.id != "AuditDiskFull"),
        "{:?}",
        alerts.active()
    );
    assert!(
        stack
            .recorder()
            .render()
            .contains("streamgate_disk_usage_ratio{path=")
    );

    // Without the file sink (or without the default rules) there is no disk to watch.
    let tracing =
        Config::from_yaml_str("streamgate.yaml", "security:\n  audit_logging: {}\n").unwrap();
    let rules = Stack::from_config(&tracing)
        .unwrap()
        .alerting()
        .unwrap()
        .rules();
    assert!(rules.iter().all(|rule| rule.name() != "AuditDiskFull"));
    let no_defaults = format!("{yaml}monitoring:\n  alerts:\n    default_rules: false\n");
    let config = Config::from_yaml_str("streamgate.yaml", &no_defaults).unwrap();
    let rules = Stack::from_config(&config)
        .unwrap()
        .alerting()
        .unwrap()
        .rules();
    assert!(rules.is_empty(), "{rules:?}");
    drop(stack);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_cache_that_churns_through_its_size_raises_the_eviction_alert() {
    let config = Config::from_yaml_str(
        "streamgate.yaml",
        "optimization:\n  cache:\n    max_size: 10\n    routes:\n      /items/{id}: {shared: true}\n",
    )
    .unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let alerts = stack.alerting().unwrap().clone();
    let rule = alerts
        .rules()
        .into_iter()
        .find(|rule| rule.name() == "CacheEvictionRateHigh")
        .expect("a cache eviction rule");
    assert_eq!(rule.level(), Severity::Warning);
    let app = stack.apply(Router::new().route(
        "/items/{id}",
        get(
            |axum::extract::Path(id): axum::extract::Path<u32>| async move { format!("item {id}") },
        ),
    ));

    // A working set of 5 fits: nothing evicted, nothing raised.
    for id in 0..5 {
        let (status, _) = get_json(&app, &format!("/items/{id}")).await;
        assert_eq!(status, StatusCode::OK);
    }
    alerts.evaluate().await;
    assert!(
        alerts
            .active()
            .iter()
            .all(|a| a.id != "CacheEvictionRateHigh")
    );

    // 200 distinct items through 10 entries: far more evictions than entries in the window.
    for id in 0..200 {
        get_json(&app, &format!("/items/{id}")).await;
    }
    alerts.evaluate().await;
    tokio::time::advance(Duration::from_secs(60)).await;
    alerts.evaluate().await;
    let raised: Vec<_> = alerts
        .firing()
        .into_iter()
        .filter(|a| a.id == "CacheEvictionRateHigh")
        .collect();
    assert_eq!(raised.len(), 1, "{:?}", alerts.active());
    assert!(raised[0].value > 10.0, "{}", raised[0].value);
}

/// Keeps every alert the handlers are told of, as (id, summary).
#[derive(Debug, Clone, Default)]
struct Told(std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>);

impl streamgate::alerts::AlertHandler for Told {
    fn name(&self) -> &str {
        "told"
    }

    fn notify<'a>(
        &'a self,
        notification: &'a streamgate::alerts::Notification,
    ) -> streamgate::alerts::BoxFuture<'a, Result<(), streamgate::alerts::HandlerError>> {
        let mut told = self.0.lock().unwrap();
        told.extend(
            notification
                .changed
                .iter()
                .map(|alert| (alert.id.clone(), alert.summary.clone())),
        );
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn the_stack_announces_its_start_and_each_round_of_cache_warming() {
    let config = Config::from_yaml_str(
        "streamgate.yaml",
        r#"
monitoring:
  metrics:
    service_name: shop
optimization:
  cache:
    routes:
      /items/{id}: {shared: true}
    warm:
      paths: ["/items/1", "/items/2"]
"#,
    )
    .unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let told = Told::default();
    stack.alerting().unwrap().register_handler(told.clone());
    let app = stack.apply(Router::new().route(
        "/items/{id}",
        get(
            |axum::extract::Path(id): axum::extract::Path<u32>| async move { format!("item {id}") },
        ),
    ));
    let warming = stack.spawn_cache_warming(app).unwrap();

    let want = [
        ("ServiceStarted".to_owned(), "shop started".to_owned()),
        (
            "CacheWarmed".to_owned(),
            "cache warmed: 2 of 2 paths stored".to_owned(),
        ),
    ];
    let mut seen = Vec::new();
    for _ in 0..500 {
        seen = told.0.lock().unwrap().clone();
        if want.iter().all(|event| seen.contains(event)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    warming.abort();
    for event in &want {
        assert!(seen.contains(event), "{event:?} not in {seen:?}");
    }
    // Events are not alerts of a rule: `/alerts` lists neither.
    assert!(stack.alerting().unwrap().active().is_empty());
}

#[tokio::test]
async fn shutdown_announces_the_stop_and_flushes_the_audit_trail() {
    let (dir, audit) = file_audit_trail("stop");
    let yaml = format!("monitoring:\n  metrics:\n    service_name: shop\n{audit}");
    let stack =
        Stack::from_config(&Config::from_yaml_str("streamgate.yaml", &yaml).unwrap()).unwrap();
    let told = Told::default();
    stack.alerting().unwrap().register_handler(told.clone());
    let app = stack.apply(Router::new().route("/orders", axum::routing::post(|| async { "made" })));
    // A data change: recorded by the default audit policy.
    let response = app
        .clone()
        .oneshot(Request::post("/orders").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    stack.shutdown().await;
    let stopped = ("ServiceStopped".to_owned(), "shop stopped".to_owned());
    assert!(told.0.lock().unwrap().contains(&stopped));
    let trail: String = std::fs::read_dir(dir.join("trail"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonl"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    assert!(
        trail.contains(r#""method":"POST","route":"/orders""#),
        "{trail}"
    );

    // Once: a second call announces nothing more.
    stack.shutdown().await;
    let stops = told
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| **e == stopped)
        .count();
    assert_eq!(stops, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
