//! [`Alerts`]: the rules, their states, the handlers, and the evaluator task.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use serde::Serialize;
use streamgate_metrics::MetricsRecorder;
use tokio::{task::JoinHandle, time::Instant};

use crate::{
    Alert, AlertHandler, AlertRule, AlertState, Notification, ResourceSource, Severity, Signal,
    SystemResources, metrics::AlertMetrics, resources::Resources,
};

/// Alert rules evaluated in-process over a [`MetricsRecorder`], with the seed's API: add rules
/// and handlers, report values, resolve by hand, list the active alerts.
///
/// [`spawn`](Alerts::spawn) starts the evaluator task; [`evaluate`](Alerts::evaluate) runs one
/// evaluation (tests drive it under paused tokio time). A rule's condition is read from the
/// recorder's sliding window; once it has held at every evaluation for the rule's `for`, the
/// alert fires and each handler is told; at the first evaluation where it does not hold, the
/// alert resolves and the handlers are told again. Cloning is cheap and shares the state.
///
/// See the [crate docs](crate) for an example.
#[derive(Debug, Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    recorder: MetricsRecorder,
    interval: Duration,
    handler_timeout: Duration,
    rules: Mutex<Vec<Tracked>>,
    reported: Mutex<HashMap<String, f64>>,
    handlers: Mutex<Vec<Arc<dyn AlertHandler>>>,
    metrics: AlertMetrics,
    resources: Resources,
    /// One evaluation at a time.
    turn: tokio::sync::Mutex<()>,
    /// One delivery at a time, taken before the evaluation's turn is given up, so that handlers
    /// see changes in order while a slow handler holds up no evaluation that changes nothing.
    delivery: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Tracked {
    rule: AlertRule,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    Inactive,
    Pending {
        since: Instant,
        alert: Alert,
    },
    Firing {
        alert: Alert,
    },
    /// Resolved by hand while the condition still held: quiet until it stops holding.
    Silenced,
}

/// The service's health as its firing alerts say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// No critical or warning alert is firing.
    Healthy,
    /// A warning alert is firing.
    Degraded,
    /// A critical alert is firing.
    Unhealthy,
}

/// Builds [`Alerts`].
#[derive(Debug)]
#[must_use]
pub struct AlertsBuilder {
    recorder: MetricsRecorder,
    interval: Duration,
    handler_timeout: Duration,
    rules: Vec<AlertRule>,
    handlers: Vec<Arc<dyn AlertHandler>>,
    resources: Arc<dyn ResourceSource>,
}

impl AlertsBuilder {
    /// How often the evaluator task evaluates every rule (default 30 s, the seed's
    /// `check_interval`).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How long one handler may take for one notification (default 10 s).
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.handler_timeout = timeout;
        self
    }

    /// Adds a rule.
    pub fn rule(mut self, rule: AlertRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds rules.
    pub fn rules(mut self, rules: impl IntoIterator<Item = AlertRule>) -> Self {
        self.rules.extend(rules);
        self
    }

    /// Adds a handler.
    pub fn handler(mut self, handler: impl AlertHandler) -> Self {
        self.handlers.push(Arc::new(handler));
        self
    }

    /// Where the resource rules ([`Signal::CpuUsage`], [`Signal::MemoryUsage`],
    /// [`Signal::DiskUsage`]) read the process's resources (default: [`SystemResources`], the
    /// operating system).
    pub fn resource_source(mut self, source: impl ResourceSource) -> Self {
        self.resources = Arc::new(source);
        self
    }

    /// Finishes. A rule whose name is already taken replaces the earlier one.
    pub fn build(self) -> Alerts {
        let alerts = Alerts {
            inner: Arc::new(Inner {
                metrics: AlertMetrics::new(&self.recorder),
                resources: Resources::new(self.resources, &self.recorder),
                recorder: self.recorder,
                interval: self.interval.max(Duration::from_millis(10)),
                handler_timeout: self.handler_timeout,
                rules: Mutex::new(Vec::new()),
                reported: Mutex::new(HashMap::new()),
                handlers: Mutex::new(self.handlers),
                turn: tokio::sync::Mutex::new(()),
                delivery: tokio::sync::Mutex::new(()),
            }),
        };
        for rule in self.rules {
            alerts.add_rule(rule);
        }
        alerts
    }
}

/// The guard of `mutex`, poisoned or not (no lock here guards an invariant a panic could break).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Alerts {
    /// Starts alerts over `recorder`, with no rule and no handler.
    pub fn builder(recorder: MetricsRecorder) -> AlertsBuilder {
        AlertsBuilder {
            recorder,
            interval: Duration::from_secs(30),
            handler_timeout: Duration::from_secs(10),
            rules: Vec::new(),
            handlers: Vec::new(),
            resources: Arc::new(SystemResources),
        }
    }

    /// Adds `rule` (the seed's `AddRule`); a rule of the same name is replaced, and its alert
    /// with it (resolved without telling the handlers).
    pub fn add_rule(&self, rule: AlertRule) {
        let mut rules = lock(&self.inner.rules);
        let tracked = Tracked {
            rule,
            phase: Phase::Inactive,
        };
        match rules.iter_mut().find(|t| t.rule.name == tracked.rule.name) {
            Some(existing) => *existing = tracked,
            None => rules.push(tracked),
        }
    }

    /// Adds a handler (the seed's `RegisterHandler`).
    pub fn register_handler(&self, handler: impl AlertHandler) {
        lock(&self.inner.handlers).push(Arc::new(handler));
    }

    /// The rules, in the order they were added.
    #[must_use]
    pub fn rules(&self) -> Vec<AlertRule> {
        lock(&self.inner.rules)
            .iter()
            .map(|t| t.rule.clone())
            .collect()
    }

    /// Reports `value` for the rules whose signal is [`Signal::Reported`] with this `name`, and
    /// evaluates those rules now (the seed's `CheckMetric`). The value stands until the next
    /// report. Returns the alerts that started firing or resolved.
    ///
    /// When an alert changes, the call returns once the handlers were told (each within the
    /// handler timeout, after any delivery already under way); when none does, at once.
    pub async fn check_metric(&self, name: &str, value: f64) -> Vec<Alert> {
        lock(&self.inner.reported).insert(name.to_owned(), value);
        self.run(
            |signal| matches!(signal, Signal::Reported { name: n } if n == name),
            false,
        )
        .await
    }

    /// Evaluates every rule once and tells the handlers; returns the alerts that started firing
    /// or resolved.
    pub async fn evaluate(&self) -> Vec<Alert> {
        self.run(|_| true, true).await
    }

    /// Tells the handlers of an event, the seed's info alerts (`ServiceStarted`,
    /// `CacheWarmed`, `ConfigurationChanged`, ...): an `info` alert named `name` that fires now,
    /// outside any rule. It is not tracked: [`active`](Self::active) and `/alerts` do not list
    /// it, it is not sent again, and Alertmanager lets it end on its own (four resend intervals
    /// later). Returns the alert the handlers were given.
    ///
    /// The stack announces `ServiceStarted` when it starts its evaluator and `CacheWarmed` after
    /// each round of cache warming.
    pub async fn announce(&self, name: &str, summary: impl Into<String>) -> Alert {
        let event = Alert::event(name, Severity::Info, summary.into());
        let turn = self.inner.turn.lock().await;
        let delivery = self.inner.delivery.lock().await;
        drop(turn);
        self.notify(vec![event.clone()]).await;
        drop(delivery);
        event
    }

    /// Resolves the alert `id` by hand (the seed's `ResolveAlert`) and tells the handlers. If its
    /// condition still holds, the rule stays quiet until the condition stops holding once.
    /// Returns the resolved alert, or `None` when `id` has no pending or firing alert.
    pub async fn resolve(&self, id: &str) -> Option<Alert> {
        let turn = self.inner.turn.lock().await;
        let resolved = {
            let mut rules = lock(&self.inner.rules);
            let tracked = rules.iter_mut().find(|t| t.rule.name == id)?;
            match std::mem::replace(&mut tracked.phase, Phase::Silenced) {
                Phase::Pending { mut alert, .. } | Phase::Firing { mut alert } => {
                    alert.resolve();
                    alert
                }
                other => {
                    tracked.phase = other;
                    return None;
                }
            }
        };
        self.update_gauges();
        if resolved.fired_at.is_some() {
            let delivery = self.inner.delivery.lock().await;
            drop(turn);
            self.notify(vec![resolved.clone()]).await;
            drop(delivery);
        }
        Some(resolved)
    }

    /// The pending and firing alerts, most severe first, then by id.
    #[must_use]
    pub fn active(&self) -> Vec<Alert> {
        let mut alerts: Vec<Alert> = lock(&self.inner.rules)
            .iter()
            .filter_map(|t| match &t.phase {
                Phase::Pending { alert, .. } | Phase::Firing { alert } => Some(alert.clone()),
                Phase::Inactive | Phase::Silenced => None,
            })
            .collect();
        alerts.sort_by(|a, b| (a.severity, &a.id).cmp(&(b.severity, &b.id)));
        alerts
    }

    /// The firing alerts.
    #[must_use]
    pub fn firing(&self) -> Vec<Alert> {
        let mut alerts = self.active();
        alerts.retain(|a| a.state == AlertState::Firing);
        alerts
    }

    /// The pending and firing alerts of one severity (the seed's `GetAlertsByLevel`).
    #[must_use]
    pub fn by_level(&self, severity: Severity) -> Vec<Alert> {
        let mut alerts = self.active();
        alerts.retain(|a| a.severity == severity);
        alerts
    }

    /// Unhealthy while a critical alert fires, degraded while a warning fires, else healthy.
    #[must_use]
    pub fn health(&self) -> Health {
        let firing = self.firing();
        if firing.iter().any(|a| a.severity == Severity::Critical) {
            Health::Unhealthy
        } else if firing.iter().any(|a| a.severity == Severity::Warning) {
            Health::Degraded
        } else {
            Health::Healthy
        }
    }

    /// Starts the evaluator: a tokio task that evaluates every rule at each interval, the first
    /// time at once. Dropping the handle leaves it running; abort the handle to stop it.
    #[must_use = "abort the handle to stop the evaluator"]
    pub fn spawn(&self) -> JoinHandle<()> {
        let alerts = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(alerts.inner.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                alerts.evaluate().await;
            }
        })
    }

    /// One evaluation of the rules whose signal `select` picks. The handlers are told of the
    /// changes, and at a full evaluation (`every_rule`) also when nothing changed (Alertmanager
    /// is sent its firing alerts again).
    async fn run(&self, select: impl Fn(&Signal) -> bool, every_rule: bool) -> Vec<Alert> {
        let turn = self.inner.turn.lock().await;
        let now = Instant::now();
        let changed = {
            let reported = lock(&self.inner.reported).clone();
            let mut rules = lock(&self.inner.rules);
            let mut changed = Vec::new();
            let resources = &self.inner.resources;
            for tracked in rules.iter_mut().filter(|t| select(&t.rule.signal)) {
                let value = match &tracked.rule.signal {
                    Signal::Reported { name } => reported.get(name).copied(),
                    Signal::CpuUsage => resources.cpu_usage(now),
                    Signal::MemoryUsage => resources.memory_usage(),
                    Signal::DiskUsage { path } => resources.disk_usage(path),
                    signal => signal.read(&self.inner.recorder),
                };
                let holding = value.filter(|v| tracked.rule.threshold.holds(*v));
                if let Some(alert) = tracked.step(holding, now) {
                    changed.push(alert);
                }
            }
            changed
        };
        self.inner.metrics.evaluations.increment(1);
        self.update_gauges();
        let delivery = if changed.is_empty() {
            // Nothing to keep in order: no call waits behind this one's delivery.
            drop(turn);
            if !every_rule {
                return changed;
            }
            self.inner.delivery.lock().await
        } else {
            // Taken before the turn is given up: deliveries follow the order of the changes.
            let delivery = self.inner.delivery.lock().await;
            drop(turn);
            delivery
        };
        self.notify(changed.clone()).await;
        drop(delivery);
        changed
    }

    /// Tells every handler that wants it, each within the timeout.
    async fn notify(&self, changed: Vec<Alert>) {
        let handlers = lock(&self.inner.handlers).clone();
        if handlers.is_empty() {
            return;
        }
        let notification = Notification {
            changed,
            firing: self.firing(),
            evaluation_interval: self.inner.interval,
        };
        for handler in handlers {
            if !handler.wants(&notification) {
                continue;
            }
            let outcome =
                tokio::time::timeout(self.inner.handler_timeout, handler.notify(&notification))
                    .await;
            let result = match outcome {
                Ok(Ok(())) => "ok",
                Ok(Err(error)) => {
                    tracing::warn!(handler = handler.name(), %error, "alert handler failed");
                    "error"
                }
                Err(_) => {
                    tracing::warn!(
                        handler = handler.name(),
                        timeout = ?self.inner.handler_timeout,
                        "alert handler timed out"
                    );
                    "timeout"
                }
            };
            self.inner
                .metrics
                .notification(&self.inner.recorder, handler.name(), result);
        }
    }

    fn update_gauges(&self) {
        let active = self.active();
        for severity in Severity::ALL {
            let firing = active
                .iter()
                .filter(|a| a.severity == severity && a.state == AlertState::Firing)
                .count();
            self.inner.metrics.firing(severity).set(firing as f64);
        }
    }
}

impl Tracked {
    /// Moves the rule's alert on, given the value when the condition holds (`None` when it does
    /// not, or without data); returns the alert if it started firing or resolved.
    fn step(&mut self, holding: Option<f64>, now: Instant) -> Option<Alert> {
        let rule = &self.rule;
        let phase = std::mem::replace(&mut self.phase, Phase::Inactive);
        let (phase, change) = match (phase, holding) {
            (Phase::Inactive, None) | (Phase::Pending { .. }, None) | (Phase::Silenced, None) => {
                (Phase::Inactive, None)
            }
            (Phase::Firing { mut alert }, None) => {
                alert.resolve();
                (Phase::Inactive, Some(alert))
            }
            (Phase::Silenced, Some(_)) => (Phase::Silenced, None),
            (Phase::Inactive, Some(value)) => {
                Self::pending(rule, now, now, Alert::pending(rule, value))
            }
            (Phase::Pending { since, mut alert }, Some(value)) => {
                alert.observe(rule, value);
                Self::pending(rule, since, now, alert)
            }
            (Phase::Firing { mut alert }, Some(value)) => {
                alert.observe(rule, value);
                (Phase::Firing { alert }, None)
            }
        };
        self.phase = phase;
        change
    }

    /// A pending alert since `since`, firing if it has held for the rule's `for` by `now`.
    fn pending(
        rule: &AlertRule,
        since: Instant,
        now: Instant,
        mut alert: Alert,
    ) -> (Phase, Option<Alert>) {
        if now.saturating_duration_since(since) >= rule.hold {
            alert.fire();
            (
                Phase::Firing {
                    alert: alert.clone(),
                },
                Some(alert),
            )
        } else {
            (Phase::Pending { since, alert }, None)
        }
    }
}
