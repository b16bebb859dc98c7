//! The rules as a Prometheus rule file, so that Prometheus evaluates them over every replica's
//! series.
//!
//! In process, each replica judges its own traffic: with many replicas, one that serves a few
//! requests can cross a threshold the fleet does not, and a fleet-wide problem is raised once
//! per replica. [`prometheus_rules`] writes the same rules in PromQL over the metrics `/metrics`
//! exposes, summed across replicas, for Prometheus to evaluate and send to Alertmanager:
//!
//! | signal | expression (window `w`) |
//! |---|---|
//! | `error_rate` | `sum(rate(http_server_request_duration_seconds_count{service_name="s",http_response_status_code=~"5.."}[w])) / sum(rate(..._count{service_name="s"}[w]))` |
//! | `latency` | `histogram_quantile(q, sum by (le) (rate(http_server_request_duration_seconds_bucket{service_name="s"[,http_route="r"]}[w])))` |
//! | `counter_increase` | `sum(increase(name{labels}[w]))` |
//! | `gauge` | `sum(name{labels})` |
//! | `replicas_up` | `sum(streamgate_service_info{service_name="s"}) or vector(0)` |
//! | `cpu_usage` | `max by (instance) (streamgate_process_cpu_usage_ratio)` |
//! | `memory_usage` | `max by (instance) (streamgate_process_memory_usage_ratio)` |
//! | `disk_usage` | `max by (instance) (streamgate_disk_usage_ratio{path="p"})` |
//!
//! The resource rules are each replica's own, so they fire per instance over the gauges the
//! in-process evaluation exports.
//! Errors are 5xx responses, the recorder's default. A `reported` rule reads a value the service
//! reports in process, which Prometheus never sees: it is left out and named in
//! [`PrometheusRules::left_out`]. Each alert carries the labels the in-process alert carries
//! (`severity` and the rule's own; Prometheus adds `alertname`) and its summary.
//!
//! ```
//! use std::time::Duration;
//! use streamgate_alerts::{AlertRule, prometheus_rules};
//!
//! let rules = prometheus_rules("shop", &AlertRule::defaults("shop"), Duration::from_secs(300)).unwrap();
//! assert!(rules.yaml.contains("alert: HighErrorRate"));
//! assert!(rules.yaml.contains(r#"histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{service_name="shop"}[300s])))"#));
//! assert!(rules.left_out.is_empty());
//! ```

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::Serialize;
use streamgate_metrics::names;

use crate::{AlertRule, CPU_USAGE, DISK_USAGE, MEMORY_USAGE, Signal, Threshold};

/// A Prometheus rule file made from alert rules.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrometheusRules {
    /// The file, YAML: one group holding one alerting rule per exported rule.
    pub yaml: String,
    /// The rules left out (their signal is not a metric Prometheus scrapes), by name.
    pub left_out: Vec<String>,
}

/// A rule that cannot be written in PromQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusRulesError(String);

impl fmt::Display for PrometheusRulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PrometheusRulesError {}

#[derive(Serialize)]
struct File<'a> {
    groups: [Group<'a>; 1],
}

#[derive(Serialize)]
struct Group<'a> {
    name: &'a str,
    rules: Vec<Rule<'a>>,
}

#[derive(Serialize)]
struct Rule<'a> {
    alert: &'a str,
    expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    hold: Option<String>,
    labels: BTreeMap<&'a str, &'a str>,
    annotations: BTreeMap<&'static str, String>,
}

/// Writes `rules` as the Prometheus rule group `group`, each signal over a window of `window`
/// (the recorder's window, five minutes by default).
///
/// # Errors
/// When a rule's name, a label name or a metric name is not valid in Prometheus, or the window is
/// under a millisecond.
pub fn prometheus_rules(
    group: &str,
    rules: &[AlertRule],
    window: Duration,
) -> Result<PrometheusRules, PrometheusRulesError> {
    if window < Duration::from_millis(1) {
        return Err(PrometheusRulesError(
            "the window must be at least 1ms".to_owned(),
        ));
    }
    let range = duration(window);
    let mut exported = Vec::new();
    let mut left_out = Vec::new();
    for rule in rules {
        if !is_metric_name(&rule.name) {
            return Err(PrometheusRulesError(format!(
                "rule {:?}: Prometheus needs an alert name of [a-zA-Z_:][a-zA-Z0-9_:]*",
                rule.name
            )));
        }
        let Some(signal) = expression(&rule.signal, &range)
            .map_err(|message| PrometheusRulesError(format!("rule {:?}: {message}", rule.name)))?
        else {
            left_out.push(rule.name.clone());
            continue;
        };
        let condition = match rule.threshold {
            Threshold::Above(limit) => format!("({signal}) > {limit}"),
            Threshold::Below(limit) => format!("({signal}) < {limit}"),
        };
        let mut labels = BTreeMap::from([("severity", rule.severity.as_str())]);
        for (name, value) in &rule.labels {
            if !is_label_name(name) {
                return Err(PrometheusRulesError(format!(
                    "rule {:?}: label {name:?} is not a Prometheus label name",
                    rule.name
                )));
            }
            if RESERVED_LABELS.contains(&name.as_str()) {
                // In process the rule's own name and severity win; say so rather than export
                // a rule that labels its alerts otherwise.
                return Err(PrometheusRulesError(format!(
                    "rule {:?}: label {name:?} is set by the rule itself (its name, its severity)",
                    rule.name
                )));
            }
            labels.insert(name.as_str(), value.as_str());
        }
        let summary = if rule.summary.is_empty() {
            format!("{} is {{{{ $value }}}}", rule.signal.describe())
        } else {
            rule.summary.clone()
        };
        exported.push(Rule {
            alert: &rule.name,
            expr: condition,
            hold: (!rule.hold.is_zero()).then(|| duration(rule.hold)),
            labels,
            annotations: BTreeMap::from([("summary", summary)]),
        });
    }
    let file = File {
        groups: [Group {
            name: group,
            rules: exported,
        }],
    };
    let yaml = serde_yaml_ng::to_string(&file)
        .map_err(|e| PrometheusRulesError(format!("cannot write the rules: {e}")))?;
    Ok(PrometheusRules { yaml, left_out })
}

/// The signal's PromQL, or `None` for a signal Prometheus cannot see.
fn expression(signal: &Signal, range: &str) -> Result<Option<String>, String> {
    let duration_count = format!("{}_count", names::HTTP_SERVER_REQUEST_DURATION);
    Ok(Some(match signal {
        Signal::ErrorRate { service } => {
            let service = selector_pair(names::SERVICE_LABEL, service);
            format!(
                "sum(rate({duration_count}{{{service},{}=~\"5..\"}}[{range}])) / sum(rate({duration_count}{{{service}}}[{range}]))",
                names::STATUS_LABEL
            )
        }
        Signal::Latency {
            service,
            quantile,
            route,
        } => {
            let mut selector = selector_pair(names::SERVICE_LABEL, service);
            if let Some(route) = route {
                selector.push(',');
                selector.push_str(&selector_pair(names::ROUTE_LABEL, route));
            }
            format!(
                "histogram_quantile({quantile}, sum by (le) (rate({}_bucket{{{selector}}}[{range}])))",
                names::HTTP_SERVER_REQUEST_DURATION
            )
        }
        Signal::CounterIncrease { name, labels } => {
            format!("sum(increase({}[{range}]))", series(name, labels)?)
        }
        Signal::Gauge { name, labels } => format!("sum({})", series(name, labels)?),
        // `or vector(0)`: with no replica scraped the sum is empty, not 0.
        Signal::ReplicasUp { service } => format!(
            "sum({}{{{}}}) or vector(0)",
            names::SERVICE_INFO,
            selector_pair(names::SERVICE_LABEL, service)
        ),
        // Each replica's own resources: one alert per instance, not a fleet sum.
        Signal::CpuUsage => format!("max by (instance) ({CPU_USAGE})"),
        Signal::MemoryUsage => format!("max by (instance) ({MEMORY_USAGE})"),
        Signal::DiskUsage { path } => {
            let path = selector_pair("path", &path.to_string_lossy());
            format!("max by (instance) ({DISK_USAGE}{{{path}}})")
        }
        Signal::Reported { .. } => return Ok(None),
    }))
}

/// The labels every alert gets from its rule, which a rule's own labels cannot set.
pub(crate) const RESERVED_LABELS: [&str; 2] = ["alertname", "severity"];

/// `name{k="v",...}`, checked.
pub(crate) fn series(name: &str, labels: &BTreeMap<String, String>) -> Result<String, String> {
    if !is_metric_name(name) {
        return Err(format!("{name:?} is not a Prometheus metric name"));
    }
    let mut pairs = Vec::with_capacity(labels.len());
    for (key, value) in labels {
        if !is_label_name(key) {
            return Err(format!("label {key:?} is not a Prometheus label name"));
        }
        pairs.push(selector_pair(key, value));
    }
    Ok(format!("{name}{{{}}}", pairs.join(",")))
}

/// `key="value"`, the value escaped as PromQL strings are.
fn selector_pair(key: &str, value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    format!("{key}=\"{escaped}\"")
}

pub(crate) fn is_metric_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
        })
}

pub(crate) fn is_label_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with("__")
        && name
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()))
}

/// A duration as Prometheus writes one: whole seconds, else milliseconds.
fn duration(value: Duration) -> String {
    if value.subsec_millis() == 0 {
        format!("{}s", value.as_secs())
    } else {
        format!("{}ms", value.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    #[test]
    fn reported_rules_are_left_out_and_bad_names_refused() {
        let rules = [
            AlertRule::new(
                "QueueBacklog",
                Signal::Reported {
                    name: "queue".into(),
                },
            ),
            AlertRule::new(
                "Jobs",
                Signal::Gauge {
                    name: "jobs_waiting".into(),
                    labels: BTreeMap::from([("queue".into(), "say \"hi\"\\".into())]),
                },
            )
            .above(10.0)
            .severity(Severity::Info),
        ];
        let exported = prometheus_rules("jobs", &rules, Duration::from_millis(1500)).unwrap();
        assert_eq!(exported.left_out, ["QueueBacklog"]);
        assert!(
            exported
                .yaml
                .contains(r#"(sum(jobs_waiting{queue="say \"hi\"\\"})) > 10"#),
            "{}",
            exported.yaml
        );
        assert!(!exported.yaml.contains("QueueBacklog"), "{}", exported.yaml);

        let bad = [AlertRule::new(
            "Odd",
            Signal::CounterIncrease {
                name: "2fast".into(),
                labels: BTreeMap::new(),
            },
        )];
        let error = prometheus_rules("g", &bad, Duration::from_secs(60)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("\"2fast\" is not a Prometheus metric name"),
            "{error}"
        );
        let unnamed = [AlertRule::new(
            "has space",
            Signal::Reported { name: "x".into() },
        )];
        assert!(prometheus_rules("g", &unnamed, Duration::from_secs(60)).is_err());
        let labelled = [AlertRule::new(
            "Fine",
            Signal::Gauge {
                name: "up".into(),
                labels: BTreeMap::new(),
            },
        )
        .label("team-name", "core")];
        let error = prometheus_rules("g", &labelled, Duration::from_secs(60)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("\"team-name\" is not a Prometheus label name"),
            "{error}"
        );
        // In process the rule's severity wins; the file must not say otherwise.
        let relabelled = [AlertRule::new(
            "Fine",
            Signal::Gauge {
                name: "up".into(),
                labels: BTreeMap::new(),
            },
        )
        .severity(Severity::Warning)
        .label("severity", "page")];
        let error = prometheus_rules("g", &relabelled, Duration::from_secs(60)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("label \"severity\" is set by the rule itself"),
            "{error}"
        );
    }
}
