//! `monitoring.alerts` in the YAML file: the rules and where alerts go.

use std::{collections::BTreeMap, fmt, time::Duration};

use serde::Deserialize;
use streamgate_metrics::MetricsRecorder;

use crate::{
    AlertRule, AlertmanagerHandler, Alerts, AlertsBuilder, LogHandler, Severity, Signal,
    WebhookHandler,
    prometheus_rules::{RESERVED_LABELS, is_label_name, is_metric_name, series},
};

/// `monitoring.alerts`.
///
/// ```
/// use streamgate_alerts::AlertsConfig;
/// use streamgate_metrics::MetricsRecorder;
///
/// let config: AlertsConfig = serde_yaml_ng::from_str(r#"
/// check_interval: 15s
/// rules:
///   - name: QueueBacklog
///     signal: { kind: reported, name: queue_depth }
///     above: 100
///     for: 1m
///     severity: warning
///     labels: { team: uploads }
/// alertmanager: http://127.0.0.1:9093
/// "#).unwrap();
/// let alerts = config.build(MetricsRecorder::new(), "upload").unwrap().build();
/// assert_eq!(alerts.rules().len(), 9); // the seed's eight and QueueBacklog
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AlertsConfig {
    /// Whether rules are evaluated at all (default true).
    pub enabled: bool,
    /// How often every rule is evaluated (default 30s, the seed's).
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
    /// The seed's threshold rules for the service (default true): no replica up for a minute
    /// critical (in the Prometheus rule file; in process the replica is up), error rate above 10% critical
    /// and 5% warning, p99 latency above 5 s critical and 2 s warning, each for a minute; CPU
    /// above 80% warning and memory above 80% warning for five minutes, memory above 95% of the
    /// limit critical for a minute (see [`AlertRule::defaults`]).
    pub default_rules: bool,
    /// Further rules.
    pub rules: Vec<RuleConfig>,
    /// Log each change with `tracing` (default true).
    pub log: bool,
    /// Post each change as JSON to this URL.
    pub webhook: Option<String>,
    /// Send alerts to the Alertmanager at this URL (`http://alertmanager:9093`).
    pub alertmanager: Option<String>,
    /// How often firing alerts are sent to Alertmanager again (default 1m).
    #[serde(with = "humantime_serde")]
    pub resend_interval: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            check_interval: Duration::from_secs(30),
            default_rules: true,
            rules: Vec::new(),
            log: true,
            webhook: None,
            alertmanager: None,
            resend_interval: Duration::from_secs(60),
        }
    }
}

/// One rule of `monitoring.alerts.rules`; exactly one of `above` and `below`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RuleConfig {
    /// The rule's name (`alertname`).
    pub name: String,
    /// What it measures: `{ kind: error_rate, service: upload }`,
    /// `{ kind: latency, service: upload, quantile: 0.99 }` (optionally `route`),
    /// `{ kind: counter_increase, name: ..., labels: {...} }`, `{ kind: gauge, name: ... }`,
    /// `{ kind: replicas_up, service: upload }`,
    /// `{ kind: reported, name: ... }`, or the process's resources as shares from 0 to 1:
    /// `{ kind: cpu_usage }`, `{ kind: memory_usage }`, `{ kind: disk_usage, path: /var/lib/app }`.
    pub signal: Signal,
    /// Fires above this value.
    #[serde(default)]
    pub above: Option<f64>,
    /// Fires below this value.
    #[serde(default)]
    pub below: Option<f64>,
    /// How long the condition must hold (default 0s).
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub hold: Duration,
    /// `critical`, `warning` (default) or `info`.
    #[serde(default = "warning")]
    pub severity: Severity,
    /// One line for people.
    #[serde(default)]
    pub summary: String,
    /// Labels sent with the alert.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn warning() -> Severity {
    Severity::Warning
}

/// A value of `monitoring.alerts` the types could not check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertsConfigError(String);

impl fmt::Display for AlertsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AlertsConfigError {}

impl RuleConfig {
    /// Checks what Prometheus and Alertmanager would refuse later (an alert that is never
    /// delivered, a rule file that does not load) or what could never fire.
    fn check(&self) -> Result<(), String> {
        if !is_metric_name(&self.name) {
            return Err(
                "an alert name is [a-zA-Z_:][a-zA-Z0-9_:]*, as Prometheus and \
                        Alertmanager take them"
                    .to_owned(),
            );
        }
        for key in self.labels.keys() {
            if !is_label_name(key) {
                return Err(format!(
                    "label `{key}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
                ));
            }
            if RESERVED_LABELS.contains(&key.as_str()) {
                return Err(format!(
                    "label `{key}` is set by the rule itself (its name, its `severity`)"
                ));
            }
        }
        if let Signal::CounterIncrease { name, labels } | Signal::Gauge { name, labels } =
            &self.signal
        {
            series(name, labels)?;
        }
        if let Some(limit) = self.above.or(self.below)
            && !limit.is_finite()
        {
            return Err(format!("the threshold must be a number, not {limit}"));
        }
        Ok(())
    }

    fn rule(&self) -> Result<AlertRule, AlertsConfigError> {
        self.check()
            .map_err(|message| AlertsConfigError(format!("rules: `{}`: {message}", self.name)))?;
        let rule = AlertRule::new(self.name.clone(), self.signal.clone())
            .for_duration(self.hold)
            .severity(self.severity)
            .summary(self.summary.clone());
        let rule = match (self.above, self.below) {
            (Some(limit), None) => rule.above(limit),
            (None, Some(limit)) => rule.below(limit),
            _ => {
                return Err(AlertsConfigError(format!(
                    "rules: `{}` needs exactly one of `above` and `below`",
                    self.name
                )));
            }
        };
        Ok(self
            .labels
            .iter()
            .fold(rule, |rule, (k, v)| rule.label(k.clone(), v.clone())))
    }
}

impl AlertsConfig {
    /// The builder this section describes, over `recorder`, for the service `service` (the
    /// default rules' `service_name`).
    ///
    /// # Errors
    /// A rule without exactly one threshold, two rules of one name, a quantile outside 0 to 1, a
    /// handler URL that is not http(s).
    pub fn build(
        &self,
        recorder: MetricsRecorder,
        service: &str,
    ) -> Result<AlertsBuilder, AlertsConfigError> {
        let mut builder = Alerts::builder(recorder).interval(self.check_interval);
        let mut names = std::collections::BTreeSet::new();
        let defaults = if self.default_rules {
            AlertRule::defaults(service)
        } else {
            Vec::new()
        };
        let own = self
            .rules
            .iter()
            .map(RuleConfig::rule)
            .collect::<Result<Vec<_>, _>>()?;
        for rule in defaults.into_iter().chain(own) {
            if let Signal::Latency { quantile, .. } = rule.signal()
                && !(0.0..=1.0).contains(quantile)
            {
                return Err(AlertsConfigError(format!(
                    "rules: `{}`: the quantile must be between 0 and 1, not {quantile}",
                    rule.name()
                )));
            }
            if !names.insert(rule.name().to_owned()) {
                return Err(AlertsConfigError(format!(
                    "rules: two rules are named `{}`",
                    rule.name()
                )));
            }
            builder = builder.rule(rule);
        }
        if self.log {
            builder = builder.handler(LogHandler);
        }
        if let Some(url) = &self.webhook {
            let handler =
                WebhookHandler::new(url).map_err(|e| AlertsConfigError(format!("webhook: {e}")))?;
            builder = builder.handler(handler);
        }
        if let Some(url) = &self.alertmanager {
            let handler = AlertmanagerHandler::new(url)
                .map_err(|e| AlertsConfigError(format!("alertmanager: {e}")))?
                .resend_interval(self.resend_interval);
            builder = builder.handler(handler);
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(yaml: &str) -> Result<AlertsBuilder, AlertsConfigError> {
        let config: AlertsConfig = serde_yaml_ng::from_str(yaml).unwrap();
        config.build(MetricsRecorder::new(), "upload")
    }

    #[test]
    fn a_rule_needs_exactly_one_threshold() {
        let both = "rules:\n  - {name: X, signal: {kind: gauge, name: g}, above: 1, below: 0}\n";
        let error = build(both).unwrap_err();
        assert_eq!(
            error.to_string(),
            "rules: `X` needs exactly one of `above` and `below`"
        );
        let neither = "rules:\n  - {name: X, signal: {kind: gauge, name: g}}\n";
        assert!(build(neither).is_err());
    }

    #[test]
    fn rules_prometheus_or_alertmanager_would_refuse_are_refused_at_load() {
        for (rule, message) in [
            (
                "{name: 'High errors', signal: {kind: gauge, name: g}, above: 1}",
                "rules: `High errors`: an alert name is",
            ),
            (
                "{name: '', signal: {kind: gauge, name: g}, above: 1}",
                "rules: ``: an alert name",
            ),
            (
                "{name: X, signal: {kind: gauge, name: ''}, above: 1}",
                "rules: `X`: \"\" is not a Prometheus metric name",
            ),
            (
                "{name: X, signal: {kind: counter_increase, name: c, labels: {a-b: x}}, below: 1}",
                "rules: `X`: label \"a-b\" is not a Prometheus label name",
            ),
            (
                "{name: X, signal: {kind: gauge, name: g}, above: 1, labels: {team-name: x}}",
                "rules: `X`: label `team-name` is not a label name",
            ),
            (
                "{name: X, signal: {kind: gauge, name: g}, above: 1, labels: {severity: page}}",
                "rules: `X`: label `severity` is set by the rule itself",
            ),
            (
                "{name: X, signal: {kind: gauge, name: g}, above: .nan}",
                "rules: `X`: the threshold must be a number, not NaN",
            ),
        ] {
            let error = build(&format!("rules:\n  - {rule}\n"))
                .unwrap_err()
                .to_string();
            assert!(error.starts_with(message), "{rule}: {error}");
        }
        let alerts = build(
            "rules:\n  - {name: X_1, signal: {kind: gauge, name: g}, above: 1, labels: {team: x}}\n",
        )
        .expect("a rule Prometheus takes")
        .build();
        assert!(alerts.rules().iter().any(|rule| rule.name() == "X_1"));
    }

    #[test]
    fn names_are_unique_with_the_default_rules() {
        let clash = "rules:\n  - {name: HighErrorRate, signal: {kind: error_rate, service: upload}, above: 0.5}\n";
        let error = build(clash).unwrap_err();
        assert_eq!(
            error.to_string(),
            "rules: two rules are named `HighErrorRate`"
        );
        let without_defaults = format!("default_rules: false\n{clash}");
        let alerts = build(&without_defaults).unwrap().build();
        assert_eq!(alerts.rules().len(), 1);
    }

    #[test]
    fn bad_quantiles_and_urls_are_refused() {
        let quantile = "rules:\n  - {name: L, signal: {kind: latency, service: upload, quantile: 99}, above: 1}\n";
        assert!(
            build(quantile)
                .unwrap_err()
                .to_string()
                .contains("between 0 and 1")
        );
        let url = build("webhook: ftp://hooks.example.com\n").unwrap_err();
        assert!(url.to_string().starts_with("webhook: "), "{url}");
    }

    #[test]
    fn resource_rules_are_read() {
        let yaml = "default_rules: false\nrules:\n  - {name: Cpu, signal: {kind: cpu_usage}, above: 0.9}\n  - {name: Disk, signal: {kind: disk_usage, path: /var/lib/app}, above: 0.9, severity: critical}\n";
        let rules = build(yaml).unwrap().build().rules();
        assert_eq!(rules[0].signal(), &Signal::CpuUsage);
        assert_eq!(
            rules[1].signal(),
            &Signal::DiskUsage {
                path: "/var/lib/app".into()
            }
        );
        let pathless = "rules:\n  - {name: D, signal: {kind: disk_usage}, above: 0.9}\n";
        let error = serde_yaml_ng::from_str::<AlertsConfig>(pathless).unwrap_err();
        assert!(error.to_string().contains("path"), "{error}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = serde_yaml_ng::from_str::<AlertsConfig>(
            "rules:\n  - {name: X, signal: {kind: gauge, nam: g}, above: 1}\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("nam"), "{error}");
    }
}
