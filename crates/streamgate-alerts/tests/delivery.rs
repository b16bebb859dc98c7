//! Delivery to real peers: an in-test webhook receiver, and a real Alertmanager
//! (`prometheus-alertmanager`, Debian's package) when it is installed. With `CI=true` a missing
//! Alertmanager is a failure.

mod common;

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use serde_json::Value;
use streamgate_alerts::{
    AlertRule, AlertState, AlertmanagerHandler, Alerts, Severity, Signal, WebhookHandler,
};
use streamgate_metrics::MetricsRecorder;

type Received = Arc<Mutex<Vec<Value>>>;

/// The test's own client: with reqwest's rustls on (`--all-features`), a crypto provider first.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Serves a receiver that keeps each JSON body and answers `status`.
async fn receiver(status: StatusCode) -> (SocketAddr, Received) {
    let received = Received::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                move |State(received): State<Received>, Json(body): Json<Value>| async move {
                    received.lock().unwrap().push(body);
                    status
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, received)
}

fn backlog_rule() -> AlertRule {
    AlertRule::new(
        "Backlog",
        Signal::Reported {
            name: "depth".into(),
        },
    )
    .above(100.0)
    .severity(Severity::Critical)
    .label("team", "uploads")
    .summary("the upload queue is backing up")
}

#[tokio::test]
async fn the_webhook_receives_firing_then_resolved() {
    let (addr, received) = receiver(StatusCode::OK).await;
    let recorder = MetricsRecorder::new();
    let alerts = Alerts::builder(recorder.clone())
        .rule(backlog_rule())
        .handler(WebhookHandler::new(&format!("http://{addr}/hook")).unwrap())
        .build();
    alerts.check_metric("depth", 150.0).await;
    alerts.check_metric("depth", 120.0).await;
    alerts.check_metric("depth", 5.0).await;

    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "one post per change: {bodies:?}");
    assert_eq!(bodies[0]["status"], "firing");
    let alert = &bodies[0]["alerts"][0];
    assert_eq!(alert["id"], "Backlog");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["value"], 150.0);
    assert_eq!(alert["labels"]["team"], "uploads");
    assert_eq!(alert["summary"], "the upload queue is backing up");
    assert!(alert["fired_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(bodies[1]["status"], "resolved");
    assert_eq!(bodies[1]["alerts"][0]["state"], "resolved");
    assert!(
        recorder
            .render()
            .contains(r#"streamgate_alerts_notifications_total{handler="webhook",outcome="ok"} 2"#)
    );
}

/// An in-test Alertmanager API: keeps each posted list of alerts and answers the status set in
/// `answer`.
async fn mock_alertmanager() -> (String, Received, Arc<Mutex<StatusCode>>) {
    let received = Received::default();
    let answer = Arc::new(Mutex::new(StatusCode::OK));
    let state = (received.clone(), answer.clone());
    let app = Router::new()
        .route(
            "/api/v2/alerts",
            post(
                |State((received, answer)): State<(Received, Arc<Mutex<StatusCode>>)>,
                 Json(body): Json<Value>| async move {
                    received.lock().unwrap().push(body);
                    let status = *answer.lock().unwrap();
                    // 504: an Alertmanager that hangs.
                    if status == StatusCode::GATEWAY_TIMEOUT {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    status
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received, answer)
}

fn rfc3339(value: &Value) -> std::time::SystemTime {
    humantime::parse_rfc3339(value.as_str().unwrap()).unwrap()
}

/// Evaluated every 5 minutes, a firing alert is sent again only every 5 minutes however short
/// the resend interval: its `endsAt` must reach four evaluations ahead, or Alertmanager resolves
/// it between them.
#[tokio::test]
async fn a_firing_alert_outlives_four_evaluations_when_they_are_rarer_than_resends() {
    let (base, received, _) = mock_alertmanager().await;
    let alerts = Alerts::builder(MetricsRecorder::new())
        .interval(Duration::from_secs(300))
        .rule(backlog_rule())
        .handler(
            AlertmanagerHandler::new(&base)
                .unwrap()
                .resend_interval(Duration::from_secs(1)),
        )
        .build();
    let sent_at = std::time::SystemTime::now();
    alerts.check_metric("depth", 150.0).await;
    let posts = received.lock().unwrap().clone();
    let ends_at = rfc3339(&posts[0][0]["endsAt"]);
    let lifetime = ends_at.duration_since(sent_at).unwrap();
    assert!(
        lifetime >= Duration::from_secs(1199) && lifetime <= Duration::from_secs(1201),
        "{lifetime:?}"
    );
}

/// A resolution Alertmanager did not take is sent again at the next evaluation, or Alertmanager
/// holds the alert until its old `endsAt`.
#[tokio::test]
async fn a_resolution_that_failed_is_sent_again() {
    let (base, received, answer) = mock_alertmanager().await;
    let recorder = MetricsRecorder::new();
    let alerts = Alerts::builder(recorder.clone())
        .rule(backlog_rule())
        .handler(AlertmanagerHandler::new(&base).unwrap())
        .build();
    alerts.check_metric("depth", 150.0).await;
    *answer.lock().unwrap() = StatusCode::SERVICE_UNAVAILABLE;
    alerts.check_metric("depth", 5.0).await;
    *answer.lock().unwrap() = StatusCode::OK;
    alerts.evaluate().await;
    alerts.evaluate().await;
    let posts = received.lock().unwrap().clone();
    assert_eq!(
        posts.len(),
        3,
        "fired, failed, sent again, then nothing: {posts:?}"
    );
    for post in &posts[1..] {
        let alert = &post[0];
        assert_eq!(alert["labels"]["alertname"], "Backlog");
        assert!(
            rfc3339(&alert["endsAt"]) <= std::time::SystemTime::now(),
            "resolved: {alert}"
        );
    }
    assert!(recorder.render().contains(
        r#"streamgate_alerts_notifications_total{handler="alertmanager",outcome="ok"} 2"#
    ));
}

/// A resolution whose post the handler timeout cuts off is sent again too.
#[tokio::test]
async fn a_resolution_cut_off_by_the_handler_timeout_is_sent_again() {
    let (base, received, answer) = mock_alertmanager().await;
    let alerts = Alerts::builder(MetricsRecorder::new())
        .handler_timeout(Duration::from_millis(200))
        .rule(backlog_rule())
        .handler(AlertmanagerHandler::new(&base).unwrap())
        .build();
    alerts.check_metric("depth", 150.0).await;
    *answer.lock().unwrap() = StatusCode::GATEWAY_TIMEOUT;
    alerts.check_metric("depth", 5.0).await;
    *answer.lock().unwrap() = StatusCode::OK;
    alerts.evaluate().await;
    let posts = received.lock().unwrap().clone();
    assert_eq!(posts.len(), 3, "{posts:?}");
    assert!(rfc3339(&posts[2][0]["endsAt"]) <= std::time::SystemTime::now());
}

/// A handler that takes long holds up only the calls that have something to tell it.
#[tokio::test(start_paused = true)]
async fn a_slow_handler_holds_up_no_check_that_changes_nothing() {
    let slow = Router::new().route(
        "/hook",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::OK
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, slow).await });
    let alerts = Alerts::builder(MetricsRecorder::new())
        .rule(backlog_rule())
        .handler(WebhookHandler::new(&format!("http://{addr}/hook")).unwrap())
        .build();
    let firing = tokio::spawn({
        let alerts = alerts.clone();
        async move { alerts.check_metric("depth", 150.0).await }
    });
    // Let the first call reach the handler.
    while alerts.active().is_empty() {
        tokio::task::yield_now().await;
    }
    // An evaluation that changes nothing waits to resend, without holding up the checks.
    let evaluating = tokio::spawn({
        let alerts = alerts.clone();
        async move { alerts.evaluate().await }
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let started = tokio::time::Instant::now();
    assert!(alerts.check_metric("other", 1.0).await.is_empty());
    assert!(alerts.check_metric("depth", 160.0).await.is_empty());
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(firing.await.unwrap().len(), 1);
    assert!(evaluating.await.unwrap().is_empty());
}

#[tokio::test]
async fn a_webhook_that_refuses_is_counted_as_an_error() {
    let (addr, received) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
    let recorder = MetricsRecorder::new();
    let alerts = Alerts::builder(recorder.clone())
        .rule(backlog_rule())
        .handler(WebhookHandler::new(&format!("http://{addr}/hook")).unwrap())
        .build();
    let fired = alerts.check_metric("depth", 150.0).await;
    assert_eq!(
        fired[0].state,
        AlertState::Firing,
        "the alert fires all the same"
    );
    assert_eq!(received.lock().unwrap().len(), 1);
    assert!(
        recorder.render().contains(
            r#"streamgate_alerts_notifications_total{handler="webhook",outcome="error"} 1"#
        )
    );
}

#[test]
fn handler_urls_are_checked() {
    let error = WebhookHandler::new("ftp://example.com/hook").unwrap_err();
    assert!(error.to_string().contains("http or https"), "{error}");
    assert!(WebhookHandler::new("not a url").is_err());
    let handler = AlertmanagerHandler::new("http://127.0.0.1:9093/").unwrap();
    assert_eq!(handler.url(), "http://127.0.0.1:9093/api/v2/alerts");
}

#[cfg(not(feature = "https"))]
#[test]
fn https_needs_the_feature() {
    let error = WebhookHandler::new("https://hooks.example.com/x").unwrap_err();
    assert!(error.to_string().contains("`https` feature"), "{error}");
}

/// A real Alertmanager on a free port, stopped on drop.
struct Alertmanager {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ALERTMANAGER: &str = "prometheus-alertmanager";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Alertmanager, or says why not: `None` when it is not installed outside CI.
async fn start_alertmanager() -> Option<Alertmanager> {
    if !common::installed(ALERTMANAGER, "prometheus-alertmanager") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: none\n  group_wait: 0s\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let alertmanager = Alertmanager {
        child,
        base,
        _dir: dir,
    };
    let client = client();
    for _ in 0..100 {
        let ready = client
            .get(format!("{}/-/ready", alertmanager.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Some(alertmanager);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("alertmanager did not become ready at {}", alertmanager.base);
}

/// The alerts Alertmanager holds as active, by `alertname`.
async fn held(base: &str) -> Vec<Value> {
    let body: Value = client()
        .get(format!("{base}/api/v2/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn alertmanager_holds_the_firing_alert_and_lets_it_go_when_resolved() {
    let Some(alertmanager) = start_alertmanager().await else {
        return;
    };
    let recorder = MetricsRecorder::new();
    let alerts = Alerts::builder(recorder.clone())
        .rule(backlog_rule())
        .handler(
            AlertmanagerHandler::new(&alertmanager.base)
                .unwrap()
                .generator_url("http://upload.internal/alerts"),
        )
        .build();
    alerts.check_metric("depth", 150.0).await;

    let active = held(&alertmanager.base).await;
    assert_eq!(active.len(), 1, "{active:?}");
    let alert = &active[0];
    assert_eq!(alert["labels"]["alertname"], "Backlog");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["team"], "uploads");
    assert_eq!(
        alert["annotations"]["summary"],
        "the upload queue is backing up"
    );
    assert_eq!(alert["annotations"]["value"], "150");
    assert_eq!(alert["generatorURL"], "http://upload.internal/alerts");
    assert_eq!(alert["status"]["state"], "active");

    alerts.check_metric("depth", 1.0).await;
    // Alertmanager drops an alert from its active list once its `endsAt` has passed.
    let mut remaining = held(&alertmanager.base).await;
    for _ in 0..50 {
        if remaining.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        remaining = held(&alertmanager.base).await;
    }
    assert!(remaining.is_empty(), "still held: {remaining:?}");
    assert!(recorder.render().contains(
        r#"streamgate_alerts_notifications_total{handler="alertmanager",outcome="ok"} 2"#
    ));
}

#[tokio::test]
async fn an_announced_event_reaches_alertmanager_as_an_info_alert() {
    let Some(alertmanager) = start_alertmanager().await else {
        return;
    };
    let alerts = Alerts::builder(MetricsRecorder::new())
        .handler(AlertmanagerHandler::new(&alertmanager.base).unwrap())
        .build();
    alerts.announce("CacheWarmed", "12 paths warmed").await;

    let active = held(&alertmanager.base).await;
    assert_eq!(active.len(), 1, "{active:?}");
    let event = &active[0];
    assert_eq!(event["labels"]["alertname"], "CacheWarmed");
    assert_eq!(event["labels"]["severity"], "info");
    assert_eq!(event["annotations"]["summary"], "12 paths warmed");
    assert_eq!(event["status"]["state"], "active");
    // Not an alert of any rule: the service lists nothing active.
    assert!(alerts.active().is_empty());
}
