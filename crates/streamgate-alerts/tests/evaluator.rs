//! The evaluator under paused tokio time: `for` durations, resolution, reported values, resolving
//! by hand, latency quantiles, failing handlers and the evaluator task.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode},
    routing::get,
};
use streamgate_alerts::{
    AlertHandler, AlertRule, AlertState, Alerts, BoxFuture, HandlerError, Health, Notification,
    Severity, Signal,
};
use streamgate_metrics::{MetricsLayer, MetricsRecorder};
use tower::ServiceExt;

/// Keeps every notification it is given.
#[derive(Debug, Clone, Default)]
struct Recording(Arc<Mutex<Vec<Notification>>>);

impl Recording {
    fn changes(&self) -> Vec<(String, AlertState)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|n| n.changed.iter().map(|a| (a.id.clone(), a.state)))
            .collect()
    }
}

impl AlertHandler for Recording {
    fn name(&self) -> &str {
        "recording"
    }

    fn notify<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), HandlerError>> {
        self.0.lock().unwrap().push(n.clone());
        Box::pin(async { Ok(()) })
    }
}

fn app(recorder: &MetricsRecorder) -> Router {
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                "slow"
            }),
        )
        .layer(MetricsLayer::new(recorder.clone()).service_name("shop"))
}

async fn send(app: &Router, path: &str, times: usize) {
    for _ in 0..times {
        let request = Request::get(path).body(Body::empty()).unwrap();
        drop(app.clone().oneshot(request).await.unwrap());
    }
}

/// A rule named `rule` over the value reported as `name`.
fn reported_rule(rule: &str, name: &str) -> AlertRule {
    AlertRule::new(rule, Signal::Reported { name: name.into() })
}

fn error_rule(hold: Duration) -> AlertRule {
    AlertRule::new(
        "HighErrorRate",
        Signal::ErrorRate {
            service: "shop".into(),
        },
    )
    .above(0.5)
    .for_duration(hold)
    .severity(Severity::Critical)
}

#[tokio::test(start_paused = true)]
async fn fires_after_its_for_duration_and_resolves_when_the_condition_stops() {
    let recorder = MetricsRecorder::new();
    let app = app(&recorder);
    let handler = Recording::default();
    let alerts = Alerts::builder(recorder.clone())
        .rule(error_rule(Duration::from_secs(60)))
        .handler(handler.clone())
        .build();

    send(&app, "/fail", 3).await;
    send(&app, "/ok", 1).await;
    assert!(alerts.evaluate().await.is_empty());
    let pending = alerts.active();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, AlertState::Pending);
    assert_eq!(pending[0].value, 0.75);
    assert_eq!(
        alerts.health(),
        Health::Healthy,
        "a pending alert does not count"
    );

    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(
        alerts.evaluate().await.is_empty(),
        "59 s is short of the 60 s `for`"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    let fired = alerts.evaluate().await;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].state, AlertState::Firing);
    assert_eq!(fired[0].labels["alertname"], "HighErrorRate");
    assert_eq!(fired[0].labels["severity"], "critical");
    assert_eq!(alerts.health(), Health::Unhealthy);
    assert_eq!(alerts.by_level(Severity::Critical).len(), 1);
    assert!(alerts.by_level(Severity::Warning).is_empty());
    assert!(
        alerts.evaluate().await.is_empty(),
        "still firing: no new change"
    );

    send(&app, "/ok", 10).await;
    let resolved = alerts.evaluate().await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].state, AlertState::Resolved);
    assert!(resolved[0].resolved_at.is_some());
    assert!(alerts.active().is_empty());
    assert_eq!(alerts.health(), Health::Healthy);
    assert_eq!(
        handler.changes(),
        [
            ("HighErrorRate".to_owned(), AlertState::Firing),
            ("HighErrorRate".to_owned(), AlertState::Resolved)
        ]
    );
    let text = recorder.render();
    assert!(
        text.contains(r#"streamgate_alerts_firing{severity="critical"} 0"#),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_condition_that_clears_before_its_for_never_notifies() {
    let recorder = MetricsRecorder::new();
    let app = app(&recorder);
    let handler = Recording::default();
    let alerts = Alerts::builder(recorder)
        .rule(error_rule(Duration::from_secs(60)))
        .handler(handler.clone())
        .build();
    send(&app, "/fail", 1).await;
    alerts.evaluate().await;
    tokio::time::advance(Duration::from_secs(30)).await;
    send(&app, "/ok", 5).await;
    alerts.evaluate().await;
    tokio::time::advance(Duration::from_secs(60)).await;
    alerts.evaluate().await;
    assert!(alerts.active().is_empty());
    assert!(handler.changes().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_rule_without_data_does_not_fire() {
    let recorder = MetricsRecorder::new();
    let alerts = Alerts::builder(recorder)
        .rule(
            AlertRule::new(
                "LowTraffic",
                Signal::ErrorRate {
                    service: "shop".into(),
                },
            )
            .below(0.5),
        )
        .build();
    assert!(alerts.evaluate().await.is_empty());
    assert!(alerts.active().is_empty());
}

/// As Prometheus's `increase` of a series that does not exist is empty, a counter rule over a
/// counter no one made (a misspelled name) does not fire; over one that exists and did not grow,
/// it does.
#[tokio::test(start_paused = true)]
async fn a_counter_increase_fires_only_over_a_counter_that_exists() {
    let recorder = MetricsRecorder::new();
    let rule = |name: &str, counter: &str| {
        AlertRule::new(
            name,
            Signal::CounterIncrease {
                name: counter.into(),
                labels: Default::default(),
            },
        )
        .below(1.0)
    };
    let alerts = Alerts::builder(recorder.clone())
        .rule(rule("NoUploads", "uploads_total"))
        .rule(rule("NoUploadz", "uploadz_total"))
        .build();
    let handle = streamgate_core::MetricsHandle::new(recorder);
    let _uploads = handle.counter("uploads_total", &[]);
    let fired: Vec<String> = alerts.evaluate().await.into_iter().map(|a| a.id).collect();
    assert_eq!(fired, ["NoUploads"]);
}

#[tokio::test(start_paused = true)]
async fn reported_values_are_checked_at_once() {
    let handler = Recording::default();
    let alerts = Alerts::builder(MetricsRecorder::new())
        .rule(
            reported_rule("QueueBacklog", "queue_depth")
                .above(100.0)
                .severity(Severity::Warning)
                .summary("the upload queue is backing up"),
        )
        .handler(handler.clone())
        .build();
    assert!(alerts.check_metric("queue_depth", 50.0).await.is_empty());
    let fired = alerts.check_metric("queue_depth", 150.0).await;
    assert_eq!(fired[0].state, AlertState::Firing);
    assert_eq!(fired[0].summary, "the upload queue is backing up");
    assert_eq!(alerts.health(), Health::Degraded);
    assert!(alerts.check_metric("other", 1_000.0).await.is_empty());
    let resolved = alerts.check_metric("queue_depth", 10.0).await;
    assert_eq!(resolved[0].state, AlertState::Resolved);
    assert_eq!(handler.changes().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn resolving_by_hand_silences_until_the_condition_clears() {
    let handler = Recording::default();
    let alerts = Alerts::builder(MetricsRecorder::new())
        .rule(reported_rule("Backlog", "depth").above(1.0))
        .handler(handler.clone())
        .build();
    alerts.check_metric("depth", 5.0).await;
    let resolved = alerts.resolve("Backlog").await.expect("a firing alert");
    assert_eq!(resolved.state, AlertState::Resolved);
    assert!(
        alerts.resolve("Backlog").await.is_none(),
        "nothing left to resolve"
    );
    assert!(alerts.resolve("NoSuchRule").await.is_none());
    assert!(
        alerts.check_metric("depth", 6.0).await.is_empty(),
        "silenced while it holds"
    );
    assert!(alerts.active().is_empty());
    alerts.check_metric("depth", 0.0).await;
    let again = alerts.check_metric("depth", 7.0).await;
    assert_eq!(
        again[0].state,
        AlertState::Firing,
        "fires again once it has cleared"
    );
    assert_eq!(
        handler.changes(),
        [
            ("Backlog".to_owned(), AlertState::Firing),
            ("Backlog".to_owned(), AlertState::Resolved),
            ("Backlog".to_owned(), AlertState::Firing)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn latency_quantiles_come_from_the_window() {
    let recorder = MetricsRecorder::new();
    let app = app(&recorder);
    let alerts = Alerts::builder(recorder)
        .rules(AlertRule::defaults("shop"))
        .build();
    send(&app, "/ok", 2).await;
    alerts.evaluate().await;
    assert!(alerts.active().is_empty());

    send(&app, "/slow", 3).await;
    alerts.evaluate().await;
    let active = alerts.active();
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0].id, "ElevatedLatency");
    assert_eq!(active[0].state, AlertState::Pending);
    assert!(
        active[0].value > 2.0 && active[0].value <= 5.0,
        "{}",
        active[0].value
    );

    tokio::time::advance(Duration::from_secs(60)).await;
    let fired = alerts.evaluate().await;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].severity, Severity::Warning);
    assert_eq!(alerts.health(), Health::Degraded);

    // Past the five-minute window the slow requests are forgotten.
    tokio::time::advance(Duration::from_secs(300)).await;
    let resolved = alerts.evaluate().await;
    assert_eq!(resolved[0].state, AlertState::Resolved);
}

/// Fails or hangs, as told.
#[derive(Debug)]
struct Broken {
    hang: bool,
}

impl AlertHandler for Broken {
    fn name(&self) -> &str {
        if self.hang { "hanging" } else { "failing" }
    }

    fn notify<'a>(&'a self, _: &'a Notification) -> BoxFuture<'a, Result<(), HandlerError>> {
        let hang = self.hang;
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            Err(HandlerError("the receiver is down".into()))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn failing_and_hanging_handlers_are_counted_and_the_others_still_told() {
    let recorder = MetricsRecorder::new();
    let handler = Recording::default();
    let alerts = Alerts::builder(recorder.clone())
        .rule(reported_rule("Backlog", "depth").above(1.0))
        .handler(Broken { hang: false })
        .handler(Broken { hang: true })
        .handler(handler.clone())
        .handler_timeout(Duration::from_secs(2))
        .build();
    alerts.check_metric("depth", 5.0).await;
    assert_eq!(handler.changes().len(), 1);
    let text = recorder.render();
    for expected in [
        r#"streamgate_alerts_notifications_total{handler="failing",outcome="error"} 1"#,
        r#"streamgate_alerts_notifications_total{handler="hanging",outcome="timeout"} 1"#,
        r#"streamgate_alerts_notifications_total{handler="recording",outcome="ok"} 1"#,
        r#"streamgate_alerts_firing{severity="warning"} 1"#,
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_evaluator_task_runs_at_its_interval() {
    let recorder = MetricsRecorder::new();
    let app = app(&recorder);
    let handler = Recording::default();
    let alerts = Alerts::builder(recorder)
        .rule(error_rule(Duration::from_secs(60)))
        .interval(Duration::from_secs(15))
        .handler(handler.clone())
        .build();
    let task = alerts.spawn();
    send(&app, "/fail", 2).await;
    tokio::time::sleep(Duration::from_secs(16)).await;
    assert_eq!(alerts.active()[0].state, AlertState::Pending);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(alerts.firing().len(), 1);
    assert_eq!(handler.changes().len(), 1);
    task.abort();
}

#[tokio::test(start_paused = true)]
async fn a_replica_sees_itself_up_once_its_metrics_layer_serves() {
    let recorder = MetricsRecorder::new();
    let replicas = || Signal::ReplicasUp {
        service: "shop".into(),
    };
    let alerts = Alerts::builder(recorder.clone())
        .rules(AlertRule::defaults("shop"))
        .rule(AlertRule::new("Up", replicas()).above(0.5))
        .build();
    // No metrics layer yet: no data, nothing fires.
    alerts.evaluate().await;
    assert!(alerts.active().is_empty(), "{:?}", alerts.active());

    // A disabled layer announces nothing.
    let _off: Router = Router::new().route("/ok", get(|| async { "ok" })).layer(
        MetricsLayer::new(recorder.clone())
            .service_name("shop")
            .enabled(false),
    );
    alerts.evaluate().await;
    assert!(alerts.active().is_empty());

    let _app = app(&recorder);
    assert!(
        recorder
            .render()
            .contains("streamgate_service_info{service_name=\"shop\"} 1\n")
    );
    let fired = alerts.evaluate().await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].id, "Up");
    assert_eq!(fired[0].value, 1.0);
    // ServiceDown is the fleet's: in process the replica evaluating is up.
    tokio::time::advance(Duration::from_secs(120)).await;
    alerts.evaluate().await;
    assert!(alerts.active().iter().all(|a| a.id != "ServiceDown"));
}

#[tokio::test(start_paused = true)]
async fn an_announced_event_goes_to_the_handlers_and_is_not_tracked() {
    let recording = Recording::default();
    let alerts = Alerts::builder(MetricsRecorder::new())
        .rule(
            AlertRule::new(
                "Backlog",
                Signal::Reported {
                    name: "depth".into(),
                },
            )
            .above(10.0),
        )
        .handler(recording.clone())
        .build();
    alerts.check_metric("depth", 50.0).await;

    let event = alerts.announce("ServiceStarted", "shop started").await;
    assert_eq!(event.severity, Severity::Info);
    assert_eq!(event.state, AlertState::Firing);
    assert_eq!(event.labels["alertname"], "ServiceStarted");
    assert_eq!(event.labels["severity"], "info");

    let notifications = recording.0.lock().unwrap().clone();
    let last = notifications.last().unwrap();
    assert_eq!(last.changed, [event]);
    // The handlers still see what fires; the event itself is not listed or resent.
    assert_eq!(last.firing.len(), 1);
    assert_eq!(last.firing[0].id, "Backlog");
    assert_eq!(
        alerts
            .active()
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        ["Backlog"]
    );
    alerts.evaluate().await;
    assert_eq!(
        recording.changes(),
        [
            ("Backlog".to_owned(), AlertState::Firing),
            ("ServiceStarted".to_owned(), AlertState::Firing),
        ]
    );
}
