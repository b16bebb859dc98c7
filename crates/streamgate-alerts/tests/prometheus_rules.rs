//! The exported rule file against Prometheus's own tools (`promtool`, Debian's `prometheus`
//! package): `promtool check rules` accepts it, and `promtool test rules` shows the alerts fire
//! on series from several replicas exactly when the fleet crosses the thresholds. Skipped with a
//! message when promtool is not installed; with `CI=true` a missing promtool fails.

mod common;

use std::{process::Command, time::Duration};

use streamgate_alerts::{AlertRule, Signal, prometheus_rules};

/// Runs promtool with `args` in `dir`, failing the test with its output when it fails.
fn run_promtool(dir: &std::path::Path, args: &[&str]) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Two replicas (`instance` a and b) of `shop`; per 15 s, a answers `a_errors` 500s and b
/// `b_ok` 200s, and every request takes between 5 and 7.5 s when `slow`, else under 5 ms. When
/// `slow`, replica a also uses 95% of its CPUs and 97% of its memory limit; b half of each.
fn series(a_errors: u32, b_ok: u32, slow: bool) -> String {
    let count = "http_server_request_duration_seconds_count";
    let bucket = "http_server_request_duration_seconds_bucket";
    let total = a_errors + b_ok;
    let mut lines = vec![
        format!(
            "      - series: '{count}{{service_name=\"shop\",http_route=\"/items/{{id}}\",http_response_status_code=\"500\",instance=\"a\"}}'\n        values: '0+{a_errors}x40'"
        ),
        format!(
            "      - series: '{count}{{service_name=\"shop\",http_route=\"/items/{{id}}\",http_response_status_code=\"200\",instance=\"b\"}}'\n        values: '0+{b_ok}x40'"
        ),
    ];
    let fast_le = if slow { 0 } else { total };
    for (le, step) in [
        ("0.005", fast_le),
        ("5", fast_le),
        ("7.5", total),
        ("+Inf", total),
    ] {
        lines.push(format!(
            "      - series: '{bucket}{{service_name=\"shop\",http_route=\"/items/{{id}}\",le=\"{le}\"}}'\n        values: '0+{step}x40'"
        ));
    }
    let a_share = if slow { "0.97" } else { "0.5" };
    for (name, a) in [
        ("streamgate_process_memory_usage_ratio", a_share),
        ("streamgate_process_cpu_usage_ratio", a_share),
    ] {
        lines.push(format!(
            "      - series: '{name}{{instance=\"a\"}}'\n        values: '{a}x40'"
        ));
        lines.push(format!(
            "      - series: '{name}{{instance=\"b\"}}'\n        values: '0.5x40'"
        ));
    }
    for instance in ["a", "b"] {
        lines.push(format!(
            "      - series: 'streamgate_service_info{{service_name=\"shop\",instance=\"{instance}\"}}'\n        values: '1x40'"
        ));
    }
    lines.join("\n")
}

const CRITICAL_ERRORS: &str = "
          - exp_labels: {severity: critical}
            exp_annotations: {summary: \"more than 10% of shop's requests fail\"}";
const WARNING_ERRORS: &str = "
          - exp_labels: {severity: warning}
            exp_annotations: {summary: \"more than 5% of shop's requests fail\"}";

#[test]
fn promtool_accepts_the_rules_and_they_fire_on_the_fleet() {
    if !common::installed("promtool", "prometheus") {
        return;
    }
    let mut rules = AlertRule::defaults("shop");
    rules.push(
        AlertRule::new(
            "SlowItems",
            Signal::Latency {
                service: "shop".into(),
                quantile: 0.5,
                route: Some("/items/{id}".into()),
            },
        )
        .above(1.0)
        .label("team", "catalog")
        .summary("half of /items/{id} takes over a second"),
    );
    let exported = prometheus_rules("shop", &rules, Duration::from_secs(300)).unwrap();
    assert!(exported.left_out.is_empty());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yml"), &exported.yaml).unwrap();
    run_promtool(dir.path(), &["check", "rules", "rules.yml"]);

    // 3 errors in 20 requests across the fleet: 15%, both error alerts; slow: every latency
    // alert. 1 in 100 and fast: nothing fires.
    let test = format!(
        "rule_files: [rules.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
{unhealthy}
    alert_rule_test:
      - eval_time: 5m
        alertname: HighErrorRate
        exp_alerts:{CRITICAL_ERRORS}
      - eval_time: 5m
        alertname: ElevatedErrorRate
        exp_alerts:{WARNING_ERRORS}
      - eval_time: 5m
        alertname: HighLatency
        exp_alerts:
          - exp_labels: {{severity: critical}}
            exp_annotations: {{summary: \"shop's p99 latency is above 5 s\"}}
      - eval_time: 5m
        alertname: SlowItems
        exp_alerts:
          - exp_labels: {{severity: warning, team: catalog}}
            exp_annotations: {{summary: \"half of /items/{{id}} takes over a second\"}}
      - eval_time: 30s
        alertname: HighErrorRate
        exp_alerts: []
      - eval_time: 5m
        alertname: OutOfMemory
        exp_alerts:
          - exp_labels: {{severity: critical, instance: a}}
            exp_annotations: {{summary: \"shop uses more than 95% of its memory limit\"}}
      - eval_time: 6m
        alertname: HighCpuUsage
        exp_alerts:
          - exp_labels: {{severity: warning, instance: a}}
            exp_annotations: {{summary: \"shop uses more than 80% of its CPUs\"}}
      - eval_time: 4m
        alertname: HighCpuUsage
        exp_alerts: []
  - interval: 15s
    input_series:
{healthy}
    alert_rule_test:
      - eval_time: 5m
        alertname: ElevatedErrorRate
        exp_alerts: []
      - eval_time: 5m
        alertname: ElevatedLatency
        exp_alerts: []
      - eval_time: 5m
        alertname: SlowItems
        exp_alerts: []
      - eval_time: 10m
        alertname: HighMemoryUsage
        exp_alerts: []
      - eval_time: 10m
        alertname: OutOfMemory
        exp_alerts: []
      - eval_time: 10m
        alertname: ServiceDown
        exp_alerts: []
  - interval: 15s
    input_series:
      - series: 'streamgate_service_info{{service_name=\"shop\",instance=\"a\"}}'
        values: '1x10 stale'
      - series: 'streamgate_service_info{{service_name=\"shop\",instance=\"b\"}}'
        values: '1x20 stale'
    alert_rule_test:
      - eval_time: 4m
        alertname: ServiceDown
        exp_alerts: []
      - eval_time: 7m
        alertname: ServiceDown
        exp_alerts:
          - exp_labels: {{severity: critical}}
            exp_annotations: {{summary: \"no replica of shop is up\"}}
",
        unhealthy = series(3, 17, true),
        healthy = series(1, 99, false),
    );
    std::fs::write(dir.path().join("test.yml"), test).unwrap();
    run_promtool(dir.path(), &["test", "rules", "test.yml"]);
}
