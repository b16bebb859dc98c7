//! Several policies on one request, exemptions, outcome-based policies, shadow mode.

mod common;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::Request,
    middleware::{self, Next},
    routing::{get, post},
};
use common::{counter, get_from, header, json_body, recorder};
use http::{Method, StatusCode};
use streamgate_core::SecurityContext;
use streamgate_ratelimit::{
    Check, KeyExtractor, MemoryStore, Policy, Quota, RateLimitLayer, RateLimitStore, RateLimited,
    StoreError, StoreFuture,
};
use tower::ServiceExt;

/// Plays the security layer: `x-user` becomes the `SecurityContext`.
async fn fake_auth(mut request: Request, next: Next) -> axum::response::Response {
    if let Some(user) = request
        .headers()
        .get("x-user")
        .and_then(|v| v.to_str().ok())
    {
        let context = SecurityContext::builder(user).build();
        request.extensions_mut().insert(context);
    }
    next.run(request).await
}

fn as_user(mut request: Request, user: &str) -> Request {
    request
        .headers_mut()
        .insert("x-user", user.parse().unwrap());
    request
}

#[tokio::test(start_paused = true)]
async fn two_policies_the_stricter_decides_and_both_headers_are_sent() {
    // A burst per IP (generous) and a daily quota per user (strict).
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("burst", Quota::per_second(10).burst(20)))
        .policy(Policy::new("daily", Quota::per_day(3)).key(KeyExtractor::user_or_ip()))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(layer)
        .layer(middleware::from_fn(fake_auth));

    for remaining in [2, 1, 0] {
        let response = app
            .clone()
            .oneshot(as_user(get_from("/items/1", "192.0.2.10"), "alice"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let ratelimit = header(&response, "ratelimit");
        assert!(ratelimit.starts_with("\"burst\";r="), "{ratelimit}");
        assert!(
            ratelimit.contains(&format!("\"daily\";r={remaining};")),
            "{ratelimit}"
        );
        assert_eq!(
            header(&response, "ratelimit-policy"),
            "\"burst\";q=20;w=2, \"daily\";q=3;w=86400"
        );
    }
    let limited = app
        .clone()
        .oneshot(as_user(get_from("/items/1", "192.0.2.10"), "alice"))
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let ratelimit = header(&limited, "ratelimit").to_owned();
    // The burst policy took nothing for the rejected request: 17 of 20 left.
    assert!(ratelimit.starts_with("\"burst\";r=17;"), "{ratelimit}");
    assert!(ratelimit.contains("\"daily\";r=0;"), "{ratelimit}");
    assert_eq!(header(&limited, "retry-after"), "28800");
    assert_eq!(
        limited.extensions().get::<RateLimited>().unwrap().policy(),
        "daily"
    );
    let body = json_body(limited).await;
    assert_eq!(body["violated-policies"], serde_json::json!(["daily"]));

    // Another user from the same address still has a daily quota.
    let bob = app
        .oneshot(as_user(get_from("/items/1", "192.0.2.10"), "bob"))
        .await
        .unwrap();
    assert_eq!(bob.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn user_keyed_inside_ip_keyed_outside() {
    let outer = RateLimitLayer::new(Policy::new("per-ip", Quota::per_minute(2)));
    let inner = RateLimitLayer::new(
        Policy::new("per-user", Quota::per_minute(100)).key(KeyExtractor::user_or_ip()),
    );
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(inner)
        .layer(middleware::from_fn(fake_auth))
        .layer(outer);
    for _ in 0..2 {
        let ok = app
            .clone()
            .oneshot(as_user(get_from("/items/1", "192.0.2.11"), "carol"))
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
    }
    // The outer, IP-keyed layer rejects before the credentials are looked at.
    let limited = app
        .oneshot(as_user(get_from("/items/1", "192.0.2.11"), "carol"))
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        limited.extensions().get::<RateLimited>().unwrap().policy(),
        "per-ip"
    );
}

#[tokio::test(start_paused = true)]
async fn exempt_routes_and_methods_are_never_limited() {
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("per-ip", Quota::per_minute(1)))
        .exempt_route("/health")
        .exempt_method(Method::OPTIONS)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/items/{id}",
            get(|| async { "item" }).options(|| async { "" }),
        )
        .layer(layer);
    for _ in 0..5 {
        let health = app
            .clone()
            .oneshot(get_from("/health", "192.0.2.12"))
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        assert!(health.headers().get("ratelimit").is_none());
        let mut preflight = get_from("/items/1", "192.0.2.12");
        *preflight.method_mut() = Method::OPTIONS;
        assert_eq!(
            app.clone().oneshot(preflight).await.unwrap().status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        app.clone()
            .oneshot(get_from("/items/1", "192.0.2.12"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.oneshot(get_from("/items/1", "192.0.2.12"))
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(start_paused = true)]
async fn outcome_based_policy_limits_only_after_n_failed_logins() {
    const FAILURES: u32 = 3;
    let (metrics, snapshot) = recorder();
    let logins = Policy::new("login-failures", Quota::per_minute(1).burst(FAILURES))
        .count_responses(|status| status == StatusCode::UNAUTHORIZED);
    let layer = RateLimitLayer::builder()
        .route_policy("/login", logins)
        .metrics(metrics)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/login",
            post(|request: Request| async move {
                let good = request.headers().contains_key("x-good-password");
                if good {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }),
        )
        .layer(layer);
    let login = |good: bool| {
        let mut request = get_from("/login", "192.0.2.13");
        *request.method_mut() = Method::POST;
        if good {
            request
                .headers_mut()
                .insert("x-good-password", "1".parse().unwrap());
        }
        request
    };
    // Successful logins do not count, however many.
    for _ in 0..10 {
        assert_eq!(
            app.clone().oneshot(login(true)).await.unwrap().status(),
            StatusCode::OK
        );
    }
    for n in 0..FAILURES {
        let response = app.clone().oneshot(login(false)).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "failure {n}");
        let remaining = FAILURES - n;
        assert!(
            header(&response, "ratelimit").contains(&format!("r={remaining};")),
            "before failure {n} the header shows what was left"
        );
    }
    // Now even the right password is turned away until a unit comes back.
    let limited = app.clone().oneshot(login(true)).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "retry-after"), "60");
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(
        app.oneshot(login(true)).await.unwrap().status(),
        StatusCode::OK
    );
    let requests = "streamgate_ratelimit_requests_total";
    let limited = [("policy", "login-failures"), ("decision", "limited")];
    assert_eq!(counter(&snapshot, requests, &limited), 1);
}

#[tokio::test(start_paused = true)]
async fn shadow_mode_lets_everything_through_and_counts() {
    let (metrics, snapshot) = recorder();
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("per-ip", Quota::per_minute(2)))
        .shadow(true)
        .metrics(metrics)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(layer);
    for _ in 0..5 {
        let response = app
            .clone()
            .oneshot(get_from("/items/1", "192.0.2.14"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.extensions().get::<RateLimited>().is_none());
    }
    let requests = "streamgate_ratelimit_requests_total";
    assert_eq!(
        counter(
            &snapshot,
            requests,
            &[("policy", "per-ip"), ("decision", "allowed")]
        ),
        2
    );
    assert_eq!(
        counter(
            &snapshot,
            requests,
            &[("policy", "per-ip"), ("decision", "shadow")]
        ),
        3
    );
    assert_eq!(
        counter(
            &snapshot,
            requests,
            &[("policy", "per-ip"), ("decision", "limited")]
        ),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn a_shadow_policy_does_not_stop_an_enforced_one_from_counting() {
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("trial", Quota::per_minute(1)).shadow(true))
        .policy(Policy::new("enforced", Quota::per_minute(3)))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(layer);
    let statuses: Vec<StatusCode> = {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(
                app.clone()
                    .oneshot(get_from("/items/1", "192.0.2.15"))
                    .await
                    .unwrap()
                    .status(),
            );
        }
        statuses
    };
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

/// Decides on a [`MemoryStore`] but fails every charge made after the response.
#[derive(Debug, Default)]
struct FailingRecords(MemoryStore);

impl RateLimitStore for FailingRecords {
    fn check(&self, checks: &[Check]) -> StoreFuture {
        self.0.check(checks)
    }

    fn record(&self, _: &[Check]) -> StoreFuture {
        StoreFuture::ready(Err(StoreError::new("the store is down")))
    }
}

#[tokio::test(start_paused = true)]
async fn failed_charges_after_the_response_are_counted() {
    let (metrics, snapshot) = recorder();
    let failures = Policy::new("login-failures", Quota::per_minute(1).burst(3))
        .count_responses(|status| status == StatusCode::UNAUTHORIZED);
    let layer = RateLimitLayer::builder()
        .route_policy("/login", failures)
        .store(Arc::new(FailingRecords::default()))
        .metrics(metrics)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/login", post(|| async { StatusCode::UNAUTHORIZED }))
        .layer(layer);
    for _ in 0..2 {
        let mut request = get_from("/login", "192.0.2.14");
        *request.method_mut() = Method::POST;
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    tokio::task::yield_now().await;
    let errors = |outcome: &str| {
        counter(
            &snapshot,
            "streamgate_ratelimit_store_errors_total",
            &[("outcome", outcome)],
        )
    };
    assert_eq!(errors("unrecorded"), 2);
    assert_eq!(errors("allowed") + errors("rejected"), 0);
}
