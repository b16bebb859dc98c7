//! Acceptance 1: credentials never reach the log; CR/LF cannot split a record.

mod common;

use std::net::SocketAddr;

use axum::{
    Router,
    body::{Body, Bytes},
    extract::connect_info::MockConnectInfo,
    routing::{get, post},
};
use http::Request;
use serde_json::json;
use streamgate_audit::{AuditLayer, AuditLogger, AuditPolicy, Level, Outcome, Rule, verify_path};
use tower::ServiceExt;

#[tokio::test]
async fn credentials_in_headers_and_body_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let logger = AuditLogger::builder()
        .sink(common::file_sink(dir.path()))
        .start();
    let policy = AuditPolicy::default().prepend(
        Rule::route("/login")
            .level(Level::Request)
            .event_type("authentication"),
    );
    let app = Router::new()
        .route(
            "/login",
            post(|body: Bytes| async move { format!("read {} bytes", body.len()) }),
        )
        .layer(AuditLayer::new(logger.clone()).policy(policy))
        .layer(MockConnectInfo(SocketAddr::from(([203, 0, 113, 9], 4000))));
    let body = json!({
        "email": "ann@example.com",
        "password": "hunter2-very-secret",
        "profile": {"api_key": "ak_live_123456", "refresh_token": "rt_abcdef"}
    });
    let response = app
        .oneshot(
            Request::post("/login")
                .header(
                    "authorization",
                    "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig-value-xyz",
                )
                .header("cookie", "session=cookie-value-777")
                .header("content-type", "application/json")
                .header("user-agent", "test-agent")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    logger.shutdown().await;

    let raw: String = common::log_lines(dir.path()).join("\n");
    for secret in [
        "eyJhbGciOiJIUzI1NiJ9",
        "sig-value-xyz",
        "Bearer",
        "cookie-value-777",
        "hunter2-very-secret",
        "ak_live_123456",
        "rt_abcdef",
    ] {
        assert!(!raw.contains(secret), "{secret} leaked into the log");
    }
    let events = common::events(dir.path());
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["type"], "authentication");
    assert_eq!(event["source_ip"], "203.0.113.9");
    assert_eq!(event["metadata"]["headers"]["user-agent"], "test-agent");
    assert!(event["metadata"]["headers"].get("authorization").is_none());
    let excerpt: serde_json::Value =
        serde_json::from_str(event["metadata"]["body_excerpt"].as_str().unwrap()).unwrap();
    assert_eq!(excerpt["email"], "ann@example.com");
    assert_eq!(excerpt["password"], "[REDACTED]");
    assert_eq!(excerpt["profile"]["api_key"], "[REDACTED]");
    assert_eq!(excerpt["profile"]["refresh_token"], "[REDACTED]");
    verify_path(dir.path(), &common::key()).unwrap();
}

#[tokio::test]
async fn tokens_in_the_path_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let logger = AuditLogger::builder()
        .sink(common::file_sink(dir.path()))
        .start();
    let app = Router::new()
        .route("/auth/reset/{token}", get(|| async { "reset" }))
        .route("/auth/users/{id}/keys/{api_key}", get(|| async { "key" }))
        .layer(AuditLayer::new(logger.clone()))
        .layer(MockConnectInfo(SocketAddr::from(([203, 0, 113, 9], 4000))));
    for uri in [
        "/auth/reset/SECRET-RESET-TOKEN-123?token=QUERY-SECRET-456",
        "/auth/reset/SECRET-RESET-TOKEN-789",
        "/auth/users/user-42/keys/SECRET-API-KEY-000",
    ] {
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    logger.shutdown().await;

    let raw: String = common::log_lines(dir.path()).join("\n");
    for secret in ["SECRET", "QUERY-SECRET-456"] {
        assert!(!raw.contains(secret), "{secret} leaked into the log");
    }
    let events = common::events(dir.path());
    let resources: Vec<_> = events.iter().map(|e| e["resource"].clone()).collect();
    assert_eq!(
        resources,
        [
            "/auth/reset/[REDACTED]",
            "/auth/reset/[REDACTED]",
            "/auth/users/user-42/keys/[REDACTED]"
        ]
    );
    assert_eq!(events[2]["route"], "/auth/users/{id}/keys/{api_key}");
    verify_path(dir.path(), &common::key()).unwrap();
}

#[tokio::test]
async fn metadata_is_redacted_and_control_characters_stay_in_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let logger = AuditLogger::builder()
        .sink(common::file_sink(dir.path()))
        .start();
    let forged = "file-1\r\n{\"seq\":99,\"kind\":\"event\"}\n\u{0}\u{1b}[2J";
    logger
        .log_event(
            "upload",
            "user\r\n-42",
            "upload_file",
            forged,
            Outcome::Success,
            json!({"size": 10, "password": "pw-123", "nested": [{"token": "tk-456"}], "note": "a\nb"}),
        )
        .await
        .unwrap();
    logger.shutdown().await;

    let lines = common::log_lines(dir.path());
    // file start, the event, the closing checkpoint
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let raw = lines.join("\n");
    assert!(!raw.contains("pw-123") && !raw.contains("tk-456"));
    assert!(!raw.contains('\r') && !raw.contains('\u{0}') && !raw.contains('\u{1b}'));
    let events = common::events(dir.path());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["resource"], forged);
    assert_eq!(events[0]["actor"]["id"], "user\r\n-42");
    assert_eq!(events[0]["metadata"]["password"], "[REDACTED]");
    assert_eq!(events[0]["metadata"]["nested"][0]["token"], "[REDACTED]");
    assert_eq!(events[0]["metadata"]["size"], 10);
    verify_path(dir.path(), &common::key()).unwrap();
}
