//! An alert: a rule's condition seen by the evaluator, with its state and value.

use std::{collections::BTreeMap, time::SystemTime};

use serde::{Serialize, Serializer};

use crate::{AlertRule, Severity};

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition holds, but not yet for the rule's `for`.
    Pending,
    /// The condition has held for the rule's `for`: handlers were told.
    Firing,
    /// The condition stopped holding, or the alert was resolved by hand.
    Resolved,
}

/// One alert of one rule. Its id is the rule's name: a rule has at most one alert at a time.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Alert {
    /// The rule's name.
    pub id: String,
    /// The rule's severity.
    pub severity: Severity,
    /// Pending, firing or resolved.
    pub state: AlertState,
    /// The value at the last evaluation that saw the condition hold.
    pub value: f64,
    /// One line for people.
    pub summary: String,
    /// `alertname`, `severity` and the rule's own labels.
    pub labels: BTreeMap<String, String>,
    /// When the condition was first seen to hold.
    #[serde(serialize_with = "rfc3339")]
    pub active_since: SystemTime,
    /// When it started firing.
    #[serde(serialize_with = "rfc3339_option")]
    pub fired_at: Option<SystemTime>,
    /// When it was resolved.
    #[serde(serialize_with = "rfc3339_option")]
    pub resolved_at: Option<SystemTime>,
}

impl Alert {
    /// A pending alert of `rule`, first seen now with `value`.
    pub(crate) fn pending(rule: &AlertRule, value: f64) -> Self {
        let mut labels = rule.labels.clone();
        labels.insert("alertname".to_owned(), rule.name.clone());
        labels.insert("severity".to_owned(), rule.severity.as_str().to_owned());
        Self {
            id: rule.name.clone(),
            severity: rule.severity,
            state: AlertState::Pending,
            value,
            summary: rule.summary_for(value),
            labels,
            active_since: SystemTime::now(),
            fired_at: None,
            resolved_at: None,
        }
    }

    /// An event of `severity` named `name`, firing now, outside any rule.
    pub(crate) fn event(name: &str, severity: Severity, summary: String) -> Self {
        let now = SystemTime::now();
        Self {
            id: name.to_owned(),
            severity,
            state: AlertState::Firing,
            value: 1.0,
            summary,
            labels: BTreeMap::from([
                ("alertname".to_owned(), name.to_owned()),
                ("severity".to_owned(), severity.as_str().to_owned()),
            ]),
            active_since: now,
            fired_at: Some(now),
            resolved_at: None,
        }
    }

    /// Records a new value seen while the condition holds.
    pub(crate) fn observe(&mut self, rule: &AlertRule, value: f64) {
        self.value = value;
        self.summary = rule.summary_for(value);
    }

    pub(crate) fn fire(&mut self) {
        self.state = AlertState::Firing;
        self.fired_at = Some(SystemTime::now());
    }

    pub(crate) fn resolve(&mut self) {
        self.state = AlertState::Resolved;
        self.resolved_at = Some(SystemTime::now());
    }
}

/// `time` as RFC 3339 with milliseconds, UTC.
pub(crate) fn rfc3339_text(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

fn rfc3339<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_millis(*time))
}

fn rfc3339_option<S: Serializer>(
    time: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => rfc3339(time, serializer),
        None => serializer.serialize_none(),
    }
}
