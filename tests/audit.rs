//! The audit trail sees what the inner layers decided: the actor from the security context,
//! refusals from the security and rate-limit layers, the client IP and request id.

mod support;

use std::time::{Duration, SystemTime};

use axum::{Router, body::Body, routing::post};
use http::Request;
use streamgate::{
    Stack,
    audit::{Actor, AuditLogger, FileSink, FileSinkConfig, Outcome, SigningKey, verify_path},
    ratelimit::{Policy as RatePolicy, Quota, RateLimitLayer},
    security::{
        Issuer, JwtAuth, JwtKey, SecurityContextLayer,
        jsonwebtoken::{EncodingKey, Header, encode},
    },
};
use support::Served;

const SECRET: &[u8] = b"an-audit-test-secret-0123456789abcdef";
const ISSUER: &str = "https://id.example.com";

fn token() -> String {
    let exp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = serde_json::json!({"iss": ISSUER, "sub": "user-7", "exp": exp});
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn upload(token: Option<&str>, request_id: &str) -> Request<Body> {
    let mut builder = Request::post("/files")
        .header("content-type", "application/json")
        .header("x-request-id", request_id);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder
        .body(Body::from(r#"{"name":"cat.png","password":"hunter2"}"#))
        .unwrap()
}

#[tokio::test]
async fn events_carry_the_actor_and_the_refusals_of_inner_layers() {
    let dir = std::env::temp_dir().join(format!("streamgate-e2e-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let key = SigningKey::new(&[9; 32]).unwrap();
    let stack = Stack::new("files").no_rate_limits();
    let logger = AuditLogger::builder()
        .sink(FileSink::open(FileSinkConfig::new(dir.clone(), key.clone())).unwrap())
        .metrics(stack.layer_metrics())
        .start();
    let jwt = JwtAuth::builder()
        .issuer(Issuer::new(ISSUER).key(JwtKey::hmac(SECRET)))
        .build()
        .unwrap();
    let security = SecurityContextLayer::builder()
        .jwt(jwt)
        .metrics(stack.layer_metrics())
        .build();
    let limit = RateLimitLayer::builder()
        .policy(RatePolicy::new("per-ip", Quota::per_hour(4).burst(4)))
        .build()
        .unwrap();
    let stack = stack
        .audit(logger.clone())
        .security(security)
        .rate_limit(limit);
    let served =
        Served::start(stack.apply(Router::new().route("/files", post(|| async { "stored" }))))
            .await;

    let token = token();
    assert_eq!(
        served.send(upload(Some(&token), "req-ok")).await.status,
        200
    );
    assert_eq!(served.send(upload(None, "req-anonymous")).await.status, 401);
    assert_eq!(
        served
            .send(upload(Some("not-a-token"), "req-bad-token"))
            .await
            .status,
        401
    );
    assert_eq!(served.send(upload(Some(&token), "req-2")).await.status, 200);
    assert_eq!(
        served
            .send(upload(Some(&token), "req-limited"))
            .await
            .status,
        429
    );

    let all_time = SystemTime::UNIX_EPOCH..SystemTime::now() + Duration::from_secs(60);
    let by_user = logger
        .events_by_actor("user-7", all_time.clone(), 100)
        .await
        .unwrap();
    let ids: Vec<_> = by_user
        .iter()
        .filter_map(|e| e.request_id.as_deref())
        .collect();
    assert_eq!(ids, ["req-ok", "req-2"], "{by_user:?}");
    assert!(by_user.iter().all(|e| e.outcome == Outcome::Success));
    assert!(by_user.iter().all(|e| e.route.as_deref() == Some("/files")));
    assert!(
        by_user
            .iter()
            .all(|e| e.source_ip == Some("127.0.0.1".parse().unwrap()))
    );
    assert!(matches!(&by_user[0].actor, Actor::User { id, .. } if id == "user-7"));

    logger.shutdown().await;
    let log = read_all(&dir);
    // Each refusal carries the reason of the layer that refused, not only its status.
    for (id, status, reason) in [
        ("req-anonymous", 401, "missing_credentials"),
        ("req-bad-token", 401, "malformed_token"),
        ("req-limited", 429, "rate_limited"),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("\"{id}\"")))
            .unwrap_or_else(|| panic!("no event for {id}:\n{log}"));
        assert!(line.contains(&format!("\"status\":{status}")), "{line}");
        assert!(line.contains("\"denied\""), "{line}");
        assert!(line.contains(&format!("\"reason\":\"{reason}\"")), "{line}");
    }
    assert!(!log.contains("hunter2"), "a password reached the audit log");
    assert!(!log.contains(&token), "a token reached the audit log");
    verify_path(&dir, &key).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn read_all(dir: &std::path::Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            text.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
    }
    text
}
