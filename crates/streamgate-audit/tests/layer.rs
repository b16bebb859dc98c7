//! The audit layer: what it records, with which actor, reason, route, request id and address.

mod common;

use std::{net::SocketAddr, time::Duration};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, connect_info::MockConnectInfo},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use common::MemorySink;
use http::StatusCode;
use http_body_util::BodyExt;
use streamgate_audit::{
    Actor, AuditEvent, AuditLayer, AuditLogger, AuditPolicy, AuditReason, Level, Outcome,
    Redaction, Rule, WhenFull,
};
use streamgate_core::{ClientIp, EthAddress, SecurityContext, request_id_layer};
use tower::ServiceExt;

/// An inner "security layer": a token `good` authenticates user-1 (left in the request and the
/// response extensions); `bad` is refused with 401 and a reason.
async fn fake_security(mut request: Request, next: Next) -> Response {
    let auth = request
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    match auth.as_deref() {
        Some("Bearer good") => {
            let wallet = EthAddress::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap();
            let context = SecurityContext::builder("user-1").wallet(wallet).build();
            request.extensions_mut().insert(context.clone());
            let mut response = next.run(request).await;
            response.extensions_mut().insert(context);
            response
        }
        Some(_) => {
            let mut response = StatusCode::UNAUTHORIZED.into_response();
            response
                .extensions_mut()
                .insert(AuditReason::new("invalid_token"));
            response
        }
        None => next.run(request).await,
    }
}

fn app(layer: AuditLayer) -> Router {
    Router::new()
        .route(
            "/items/{id}",
            get(|| async { "item" }).delete(|| async { StatusCode::NO_CONTENT }),
        )
        .route(
            "/items",
            post(|body: Bytes| async move { format!("got {}", body.len()) }),
        )
        .route("/limited", get(|| async { StatusCode::TOO_MANY_REQUESTS }))
        .route("/big", post(|| async { StatusCode::PAYLOAD_TOO_LARGE }))
        .route("/admin/users", get(|| async { "users" }))
        .route("/stream", get(|| async { Body::new(Chunks(0)) }))
        .layer(middleware::from_fn(fake_security))
        .layer(layer)
        .layer(request_id_layer())
        .layer(MockConnectInfo(SocketAddr::from(([198, 51, 100, 7], 4000))))
}

/// A response body of three frames, to see it passes through unbuffered.
struct Chunks(u8);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.0 == 3 {
            return std::task::Poll::Ready(None);
        }
        self.0 += 1;
        let chunk = Bytes::from(format!("chunk{};", self.0));
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
    }
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Bytes) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

async fn recorded(logger: &AuditLogger, sink: &MemorySink) -> Vec<AuditEvent> {
    logger.flush().await;
    std::mem::take(&mut *sink.events.lock().unwrap())
}

fn setup() -> (AuditLogger, MemorySink) {
    let sink = MemorySink::default();
    let logger = AuditLogger::builder().sink(sink.clone()).start();
    (logger, sink)
}

#[tokio::test]
async fn default_policy_skips_plain_reads_and_records_changes_refusals_and_admin() {
    let (logger, sink) = setup();
    let app = app(AuditLayer::new(logger.clone()));
    assert_eq!(
        send(&app, Request::get("/items/1").body(Body::empty()).unwrap())
            .await
            .0,
        200
    );
    assert!(
        recorded(&logger, &sink).await.is_empty(),
        "plain reads are not recorded"
    );

    send(
        &app,
        Request::post("/items").body(Body::from("{}")).unwrap(),
    )
    .await;
    send(
        &app,
        Request::delete("/items/7").body(Body::empty()).unwrap(),
    )
    .await;
    send(
        &app,
        Request::get("/admin/users").body(Body::empty()).unwrap(),
    )
    .await;
    send(&app, Request::get("/limited").body(Body::empty()).unwrap()).await;
    send(&app, Request::post("/big").body(Body::empty()).unwrap()).await;
    send(
        &app,
        Request::get("/items/1")
            .header("authorization", "Bearer bad")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let events = recorded(&logger, &sink).await;
    type Row<'a> = (&'a str, &'a str, Option<u16>, Outcome, Option<&'a str>);
    let summary: Vec<Row<'_>> = events
        .iter()
        .map(|e| {
            (
                e.event_type.as_ref(),
                e.route.as_deref().unwrap(),
                e.status,
                e.outcome,
                e.reason.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "data_modification",
                "/items",
                Some(200),
                Outcome::Success,
                None
            ),
            (
                "data_modification",
                "/items/{id}",
                Some(204),
                Outcome::Success,
                None
            ),
            ("admin", "/admin/users", Some(200), Outcome::Success, None),
            (
                "security",
                "/limited",
                Some(429),
                Outcome::Denied,
                Some("rate_limited")
            ),
            (
                "security",
                "/big",
                Some(413),
                Outcome::Failure,
                Some("payload_too_large")
            ),
            (
                "authentication",
                "/items/{id}",
                Some(401),
                Outcome::Denied,
                Some("invalid_token")
            ),
        ]
    );
    assert_eq!(events[1].resource, "/items/7");
    assert!(events[1].latency_ms.is_some(), "recorded by a rule: timed");
    assert!(
        events[5].latency_ms.is_none(),
        "recorded only for its refusal: not timed"
    );
    assert_eq!(events[1].action, "DELETE");
    logger.shutdown().await;
}

#[tokio::test]
async fn actor_request_id_address_and_latency_are_recorded() {
    let (logger, sink) = setup();
    let app = app(AuditLayer::new(logger.clone()));
    send(
        &app,
        Request::post("/items?token=in-query")
            .header("authorization", "Bearer good")
            .header("x-request-id", "req-42")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    send(
        &app,
        Request::post("/items").body(Body::from("{}")).unwrap(),
    )
    .await;
    let events = recorded(&logger, &sink).await;
    let wallet = EthAddress::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap();
    assert_eq!(
        events[0].actor,
        Actor::User {
            id: "user-1".into(),
            wallet: Some(wallet)
        }
    );
    assert_eq!(events[0].request_id.as_deref(), Some("req-42"));
    assert_eq!(events[0].source_ip, Some("198.51.100.7".parse().unwrap()));
    assert_eq!(
        events[0].resource, "/items",
        "the query string is never recorded"
    );
    assert_eq!(events[0].method.as_deref(), Some("POST"));
    assert!(events[0].latency_ms.is_some());
    assert_eq!(events[0].id.get_version_num(), 7);
    assert_eq!(events[1].actor, Actor::Anonymous);
    assert_eq!(
        events[1].request_id.as_ref().map(String::len),
        Some(36),
        "generated id"
    );
    logger.shutdown().await;
}

#[tokio::test]
async fn client_ip_extension_wins_over_the_peer() {
    let (logger, sink) = setup();
    let layer = AuditLayer::new(logger.clone());
    let app = Router::new()
        .route("/x", post(|| async { "ok" }))
        .layer(layer)
        .layer(middleware::from_fn(
            |mut r: Request, next: Next| async move {
                r.extensions_mut()
                    .insert(ClientIp("203.0.113.50".parse().unwrap()));
                next.run(r).await
            },
        ));
    send(&app, Request::post("/x").body(Body::empty()).unwrap()).await;
    let events = recorded(&logger, &sink).await;
    assert_eq!(events[0].source_ip, Some("203.0.113.50".parse().unwrap()));
    logger.shutdown().await;
}

#[tokio::test]
async fn request_level_keeps_a_bounded_excerpt_and_the_handler_gets_the_whole_body() {
    let (logger, sink) = setup();
    let layer = AuditLayer::new(logger.clone())
        .policy(AuditPolicy::default().prepend(Rule::route("/items").level(Level::Request)))
        .redaction(Redaction::default().excerpt_bytes(32));
    let app = app(layer);
    let body = format!(
        "{{\"name\":\"ann\",\"password\":\"pw\",\"blob\":\"{}\"}}",
        "x".repeat(10_000)
    );
    let (status, answer) = send(
        &app,
        Request::post("/items")
            .header("content-type", "application/json")
            .body(Body::from(body.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer, format!("got {}", body.len()));
    let events = recorded(&logger, &sink).await;
    let metadata = &events[0].metadata;
    assert_eq!(metadata["body_bytes"], body.len());
    assert_eq!(metadata["body_truncated"], true);
    let excerpt = metadata["body_excerpt"].as_str().unwrap();
    assert!(
        excerpt.starts_with("{\"name\":\"ann\",\"password\":\"[REDACTED]\""),
        "{excerpt}"
    );
    assert!(excerpt.len() < 64);
    assert_eq!(metadata["headers"]["content-type"], "application/json");
    logger.shutdown().await;
}

#[tokio::test]
async fn response_bodies_pass_through_in_frames() {
    let (logger, sink) = setup();
    let app =
        app(AuditLayer::new(logger.clone()).policy(AuditPolicy::record_everything(Level::Request)));
    let response = app
        .oneshot(Request::get("/stream").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let mut body = response.into_body();
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        frames.push(frame.unwrap().into_data().unwrap());
    }
    assert_eq!(frames, ["chunk1;", "chunk2;", "chunk3;"]);
    assert_eq!(recorded(&logger, &sink).await.len(), 1);
    logger.shutdown().await;
}

#[tokio::test]
async fn outcome_rules_and_a_disabled_floor() {
    let (logger, sink) = setup();
    let policy = AuditPolicy::empty().security_floor(false).rule(
        Rule::any()
            .outcomes([Outcome::Error])
            .level(Level::Metadata)
            .event_type("failure"),
    );
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/deny", get(|| async { StatusCode::FORBIDDEN }))
        .layer(AuditLayer::new(logger.clone()).policy(policy));
    for path in ["/ok", "/boom", "/deny"] {
        send(&app, Request::get(path).body(Body::empty()).unwrap()).await;
    }
    let events = recorded(&logger, &sink).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].route.as_deref(), events[0].outcome),
        (Some("/boom"), Outcome::Error)
    );
    assert_eq!(events[0].event_type, "failure");
    logger.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn block_mode_holds_the_response_until_the_event_is_queued() {
    let (sink, gate) = MemorySink::stalled();
    let logger = AuditLogger::builder()
        .sink(sink.clone())
        .capacity(1)
        .when_full(WhenFull::Block)
        .start();
    let app = Router::new()
        .route("/x", post(|| async { "ok" }))
        .layer(AuditLayer::new(logger.clone()));
    let call = |app: Router| {
        tokio::spawn(async move {
            app.oneshot(Request::post("/x").body(Body::empty()).unwrap())
                .await
                .unwrap()
                .status()
        })
    };
    let first = call(app.clone());
    tokio::time::sleep(Duration::from_millis(20)).await; // the writer takes it and stalls
    let second = call(app.clone()); // fills the queue
    let third = call(app.clone()); // must wait for room
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(first.is_finished() && second.is_finished());
    assert!(
        !third.is_finished(),
        "the third response waits for room in the queue"
    );
    gate.add_permits(100);
    assert_eq!(third.await.unwrap(), 200);
    logger.shutdown().await;
    assert_eq!(sink.taken().len(), 3);
}

#[tokio::test]
async fn each_request_records_its_own_route_template() {
    let (logger, sink) = setup();
    let layer = AuditLayer::new(logger.clone());
    // One audited service behind two routes: its clones share what they remember of a route.
    let shared = tower::Layer::layer(
        &layer,
        tower::service_fn(|_request: Request| async {
            Ok::<_, std::convert::Infallible>(StatusCode::CREATED.into_response())
        }),
    );
    let app = Router::new()
        .route_service("/p/{id}", shared.clone())
        .route_service("/q", shared)
        .merge(
            Router::new()
                .route("/r/{id}", post(|| async { "ok" }))
                .nest(
                    "/api",
                    Router::new().route("/c/{id}", post(|| async { "ok" })),
                )
                .layer(layer),
        );
    for path in [
        "/p/1", "/q", "/p/2", "/r/3", "/api/c/4", "/q", "/r/5", "/api/c/6",
    ] {
        let (status, _) = send(&app, Request::post(path).body(Body::empty()).unwrap()).await;
        assert!(status.is_success(), "{path}");
    }
    let events = recorded(&logger, &sink).await;
    let routes: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.route.as_deref().unwrap(), e.resource.as_str()))
        .collect();
    assert_eq!(
        routes,
        [
            ("/p/{id}", "/p/1"),
            ("/q", "/q"),
            ("/p/{id}", "/p/2"),
            ("/r/{id}", "/r/3"),
            ("/api/c/{id}", "/api/c/4"),
            ("/q", "/q"),
            ("/r/{id}", "/r/5"),
            ("/api/c/{id}", "/api/c/6"),
        ]
    );
    logger.shutdown().await;
}

#[tokio::test]
async fn long_paths_are_recorded_whole_without_the_query() {
    let (logger, sink) = setup();
    let app = Router::new()
        .route("/files/{*rest}", post(|| async { "ok" }))
        .layer(AuditLayer::new(logger.clone()));
    let long = format!("/files/{}", "d/".repeat(100));
    for path in [long.clone(), "/files/a".to_owned()] {
        let uri = format!("{path}?token=secret");
        send(&app, Request::post(uri).body(Body::empty()).unwrap()).await;
    }
    let events = recorded(&logger, &sink).await;
    let resources: Vec<&str> = events.iter().map(|e| e.resource.as_str()).collect();
    assert_eq!(resources, [long.as_str(), "/files/a"]);
    logger.shutdown().await;
}
