//! Alert rules: what is measured, the threshold, how long it must hold, and how severe it is.

use std::{collections::BTreeMap, fmt, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};
use streamgate_metrics::{MetricsRecorder, names};

/// How severe an alert is: the seed's three levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Someone must act now (the service is failing its users).
    Critical,
    /// Something is degrading.
    Warning,
    /// Worth knowing; nothing to do.
    Info,
}

impl Severity {
    /// Every level, most severe first.
    pub const ALL: [Severity; 3] = [Severity::Critical, Severity::Warning, Severity::Info];

    /// The lowercase name (`critical`, `warning`, `info`), as in labels and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a rule measures. Each is read from the metrics recorder's sliding window at every
/// evaluation, except [`Signal::Reported`], whose value the service reports itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Signal {
    /// The share of `service`'s requests in the window that were errors (0 to 1).
    ErrorRate {
        /// The `service_name` label.
        service: String,
    },
    /// A quantile of `service`'s request durations in the window, in seconds (optionally of one
    /// route template).
    Latency {
        /// The `service_name` label.
        service: String,
        /// The quantile, 0 to 1 (0.99 for p99).
        quantile: f64,
        /// Only this route template (`/items/{id}`); all routes when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<String>,
    },
    /// How much the counters named `name` with these labels grew during the window.
    CounterIncrease {
        /// The metric name.
        name: String,
        /// Labels the series must carry.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
    },
    /// The sum of the gauges named `name` with these labels.
    Gauge {
        /// The metric name.
        name: String,
        /// Labels the series must carry.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
    },
    /// The last value the service reported with [`Alerts::check_metric`](crate::Alerts::check_metric)
    /// under `name` (the seed's `CheckMetric`).
    Reported {
        /// The name the value is reported under.
        name: String,
    },
    /// How many replicas of `service` are up: in process, 1 once its metrics layer serves
    /// requests (this replica, the only one it can see); in the Prometheus rule file, the
    /// replicas Prometheus scrapes, 0 when none answers. `below 1` is the seed's `Service down`.
    ReplicasUp {
        /// The `service_name` label.
        service: String,
    },
    /// The share (0 to 1) of the CPUs available to the process that it used since the previous
    /// evaluation, one check interval ago; no data at the first evaluation.
    CpuUsage,
    /// The process's resident memory as a share of its memory limit: its cgroup's (a
    /// container's) when it has one, else the machine's memory.
    MemoryUsage,
    /// The used share (0 to 1) of the filesystem holding `path`, as `df` counts it.
    DiskUsage {
        /// A file or directory on the filesystem to watch (the audit trail's directory, say).
        path: PathBuf,
    },
}

impl Signal {
    /// The current value of a signal the recorder holds, or `None` without data (no request in
    /// the window, no such series); a rule without data does not fire. Reported values and the
    /// process's resources are read by [`Alerts`](crate::Alerts) itself.
    pub(crate) fn read(&self, recorder: &MetricsRecorder) -> Option<f64> {
        match self {
            Signal::ErrorRate { service } => recorder.error_rate(service),
            Signal::Latency {
                service,
                quantile,
                route,
            } => {
                let mut labels = vec![(names::SERVICE_LABEL, service.as_str())];
                if let Some(route) = route {
                    labels.push((names::ROUTE_LABEL, route.as_str()));
                }
                recorder.window_quantile(names::HTTP_SERVER_REQUEST_DURATION, &labels, *quantile)
            }
            Signal::CounterIncrease { name, labels } => {
                let labels = pairs(labels);
                recorder
                    .window_counter_sum(name, &labels)
                    .map(|sum| sum as f64)
            }
            Signal::Gauge { name, labels } => recorder.gauge_sum(name, &pairs(labels)),
            Signal::ReplicasUp { service } => {
                recorder.gauge_sum(names::SERVICE_INFO, &[(names::SERVICE_LABEL, service)])
            }
            Signal::Reported { .. }
            | Signal::CpuUsage
            | Signal::MemoryUsage
            | Signal::DiskUsage { .. } => None,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Signal::ErrorRate { service } => format!("error rate of {service}"),
            Signal::Latency {
                service,
                quantile,
                route,
            } => match route {
                Some(route) => format!("p{} latency of {service} {route}", quantile * 100.0),
                None => format!("p{} latency of {service}", quantile * 100.0),
            },
            Signal::CounterIncrease { name, .. } => format!("increase of {name}"),
            Signal::Gauge { name, .. } => name.clone(),
            Signal::Reported { name } => name.clone(),
            Signal::ReplicasUp { service } => format!("replicas of {service} up"),
            Signal::CpuUsage => "CPU usage".to_owned(),
            Signal::MemoryUsage => "memory usage".to_owned(),
            Signal::DiskUsage { path } => format!("disk usage of {}", path.display()),
        }
    }
}

fn pairs(labels: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Which side of the threshold fires.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    /// Fires while the value is above this.
    Above(f64),
    /// Fires while the value is below this.
    Below(f64),
}

impl Threshold {
    pub(crate) fn holds(self, value: f64) -> bool {
        match self {
            Threshold::Above(limit) => value > limit,
            Threshold::Below(limit) => value < limit,
        }
    }
}

/// One alert rule: fires when its [`Signal`] has been past its [`Threshold`] at every evaluation
/// for at least `for` (Prometheus's `for`), and resolves at the first evaluation where it is not.
///
/// ```
/// use std::time::Duration;
/// use streamgate_alerts::{AlertRule, Severity, Signal};
///
/// let rule = AlertRule::new("HighErrorRate", Signal::ErrorRate { service: "shop".into() })
///     .above(0.10)
///     .for_duration(Duration::from_secs(60))
///     .severity(Severity::Critical)
///     .summary("more than 10% of requests fail");
/// assert_eq!(rule.name(), "HighErrorRate");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRule {
    pub(crate) name: String,
    pub(crate) signal: Signal,
    pub(crate) threshold: Threshold,
    #[serde(rename = "for", with = "crate::rule::duration_text")]
    pub(crate) hold: Duration,
    pub(crate) severity: Severity,
    pub(crate) summary: String,
    pub(crate) labels: BTreeMap<String, String>,
}

impl AlertRule {
    /// A warning rule named `name` (the alert's `alertname`) that fires as soon as `signal` is
    /// above 0; set the threshold, `for` and severity with the other methods.
    pub fn new(name: impl Into<String>, signal: Signal) -> Self {
        Self {
            name: name.into(),
            signal,
            threshold: Threshold::Above(0.0),
            hold: Duration::ZERO,
            severity: Severity::Warning,
            summary: String::new(),
            labels: BTreeMap::new(),
        }
    }

    /// Fires while the value is above `limit`.
    #[must_use]
    pub fn above(mut self, limit: f64) -> Self {
        self.threshold = Threshold::Above(limit);
        self
    }

    /// Fires while the value is below `limit`.
    #[must_use]
    pub fn below(mut self, limit: f64) -> Self {
        self.threshold = Threshold::Below(limit);
        self
    }

    /// Sets the threshold.
    #[must_use]
    pub fn threshold(mut self, threshold: Threshold) -> Self {
        self.threshold = threshold;
        self
    }

    /// How long the condition must hold before the alert fires (default 0: at the first
    /// evaluation that sees it).
    #[must_use]
    pub fn for_duration(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }

    /// Sets the severity (default warning).
    #[must_use]
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// One line for people (Alertmanager's `summary` annotation). Default: the signal, the
    /// threshold and the value.
    #[must_use]
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = summary.into();
        self
    }

    /// Adds a label sent with the alert (for Alertmanager's routing, e.g. `team`).
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// The rule's name, which is also its alert's id.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the rule measures.
    #[must_use]
    pub fn signal(&self) -> &Signal {
        &self.signal
    }

    /// The rule's severity.
    #[must_use]
    pub fn level(&self) -> Severity {
        self.severity
    }

    /// The summary of an alert of this rule whose value is `value`.
    pub(crate) fn summary_for(&self, value: f64) -> String {
        if !self.summary.is_empty() {
            return self.summary.clone();
        }
        let (side, limit) = match self.threshold {
            Threshold::Above(limit) => ("above", limit),
            Threshold::Below(limit) => ("below", limit),
        };
        format!("{} is {value} ({side} {limit})", self.signal.describe())
    }

    /// The seed's threshold rules for `service`: no replica up for a minute (`ServiceDown`,
    /// critical, which only Prometheus can see: in process the replica evaluating is up), error
    /// rate above 10% (critical) and 5% (warning), p99 latency above 5 s (critical) and 2 s
    /// (warning), each held for a minute; then its resource rules
    /// ([`resource_defaults`](Self::resource_defaults)).
    #[must_use]
    pub fn defaults(service: &str) -> Vec<AlertRule> {
        let mut rules = Self::request_defaults(service);
        rules.extend(Self::resource_defaults(service));
        rules
    }

    /// The seed's resource rules for the process serving `service`: CPU usage above 80% for
    /// five minutes (`HighCpuUsage`, warning), memory above 80% of the limit for five minutes
    /// (`HighMemoryUsage`, warning) and above 95% for a minute (`OutOfMemory`, critical).
    #[must_use]
    pub fn resource_defaults(service: &str) -> Vec<AlertRule> {
        let minute = Duration::from_secs(60);
        vec![
            AlertRule::new("HighCpuUsage", Signal::CpuUsage)
                .above(0.80)
                .for_duration(5 * minute)
                .severity(Severity::Warning)
                .summary(format!("{service} uses more than 80% of its CPUs")),
            AlertRule::new("HighMemoryUsage", Signal::MemoryUsage)
                .above(0.80)
                .for_duration(5 * minute)
                .severity(Severity::Warning)
                .summary(format!("{service} uses more than 80% of its memory limit")),
            AlertRule::new("OutOfMemory", Signal::MemoryUsage)
                .above(0.95)
                .for_duration(minute)
                .severity(Severity::Critical)
                .summary(format!("{service} uses more than 95% of its memory limit")),
        ]
    }

    /// The seed's `Disk full`: critical once the filesystem holding `path` is more than 95%
    /// used for a minute.
    #[must_use]
    pub fn disk_full(name: impl Into<String>, path: impl Into<PathBuf>) -> AlertRule {
        let path = path.into();
        let summary = format!("the disk holding {} is more than 95% full", path.display());
        AlertRule::new(name, Signal::DiskUsage { path })
            .above(0.95)
            .for_duration(Duration::from_secs(60))
            .severity(Severity::Critical)
            .summary(summary)
    }

    /// The request rules of [`defaults`](Self::defaults).
    fn request_defaults(service: &str) -> Vec<AlertRule> {
        let minute = Duration::from_secs(60);
        let errors = || Signal::ErrorRate {
            service: service.to_owned(),
        };
        let latency = || Signal::Latency {
            service: service.to_owned(),
            quantile: 0.99,
            route: None,
        };
        vec![
            AlertRule::new(
                "ServiceDown",
                Signal::ReplicasUp {
                    service: service.to_owned(),
                },
            )
            .below(1.0)
            .for_duration(minute)
            .severity(Severity::Critical)
            .summary(format!("no replica of {service} is up")),
            AlertRule::new("HighErrorRate", errors())
                .above(0.10)
                .for_duration(minute)
                .severity(Severity::Critical)
                .summary(format!("more than 10% of {service}'s requests fail")),
            AlertRule::new("ElevatedErrorRate", errors())
                .above(0.05)
                .for_duration(minute)
                .severity(Severity::Warning)
                .summary(format!("more than 5% of {service}'s requests fail")),
            AlertRule::new("HighLatency", latency())
                .above(5.0)
                .for_duration(minute)
                .severity(Severity::Critical)
                .summary(format!("{service}'s p99 latency is above 5 s")),
            AlertRule::new("ElevatedLatency", latency())
                .above(2.0)
                .for_duration(minute)
                .severity(Severity::Warning)
                .summary(format!("{service}'s p99 latency is above 2 s")),
        ]
    }
}

/// Durations as humantime text (`"1m"`), the config's way of writing them.
pub(crate) mod duration_text {
    use std::time::Duration;

    use serde::Serializer;

    pub(crate) fn serialize<S: Serializer>(
        value: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*value))
    }
}
