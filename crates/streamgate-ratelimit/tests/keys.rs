//! Keys: IPv6 /64 sharing, trusted proxies, API keys, global and custom keys.

mod common;

use std::net::SocketAddr;

use axum::{Router, body::Body, routing::get};
use common::get_from;
use http::{HeaderName, Request, StatusCode};
use streamgate_core::{ClientIpLayer, PeerAddr, TrustedProxies};
use streamgate_ratelimit::{KeyExtractor, Policy, Quota, RateLimitKey, RateLimitLayer};
use tower::ServiceExt;

fn app(policy: Policy) -> Router {
    Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(RateLimitLayer::new(policy))
}

async fn status(app: &Router, request: Request<Body>) -> StatusCode {
    app.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test(start_paused = true)]
async fn ipv6_addresses_in_one_slash_64_share_a_bucket() {
    let app = app(Policy::new("per-ip", Quota::per_minute(2)));
    assert_eq!(
        status(&app, get_from("/items/1", "2001:db8:aa:1::1")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, get_from("/items/1", "2001:db8:aa:1:8000::77")).await,
        StatusCode::OK
    );
    // A third address of the same /64: the bucket of two is empty.
    assert_eq!(
        status(
            &app,
            get_from("/items/1", "2001:db8:aa:1:ffff:ffff:ffff:fffe")
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The neighbouring /64 is another client.
    assert_eq!(
        status(&app, get_from("/items/1", "2001:db8:aa:2::1")).await,
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn per_address_ipv6_keys_when_configured() {
    let app =
        app(Policy::new("per-ip", Quota::per_minute(1)).key(KeyExtractor::ip().ipv6_prefix(128)));
    assert_eq!(
        status(&app, get_from("/items/1", "2001:db8::1")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, get_from("/items/1", "2001:db8::2")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, get_from("/items/1", "2001:db8::1")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(start_paused = true)]
async fn behind_a_trusted_proxy_the_forwarded_client_is_the_key() {
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(RateLimitLayer::new(Policy::new(
            "per-ip",
            Quota::per_minute(1),
        )))
        .layer(ClientIpLayer::new(
            TrustedProxies::parse(["10.0.0.0/8"]).unwrap(),
        ));
    let via_proxy = |client: &str| {
        let mut request = Request::get("/items/1").body(Body::empty()).unwrap();
        request
            .extensions_mut()
            .insert(PeerAddr(SocketAddr::from(([10, 0, 0, 1], 443))));
        request
            .headers_mut()
            .insert("x-forwarded-for", client.parse().unwrap());
        request
    };
    // Two clients behind one proxy each get their own bucket.
    assert_eq!(
        status(&app, via_proxy("198.51.100.20")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, via_proxy("198.51.100.21")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, via_proxy("198.51.100.20")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // From an untrusted peer the header is ignored: the peer itself is the client.
    let mut forged = get_from("/items/1", "203.0.113.50");
    forged
        .headers_mut()
        .insert("x-forwarded-for", "198.51.100.99".parse().unwrap());
    assert_eq!(status(&app, forged).await, StatusCode::OK);
    let mut forged_again = get_from("/items/1", "203.0.113.50");
    forged_again
        .headers_mut()
        .insert("x-forwarded-for", "198.51.100.100".parse().unwrap());
    assert_eq!(
        status(&app, forged_again).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(start_paused = true)]
async fn api_key_header_keys_each_credential_and_falls_back_to_ip() {
    let header = HeaderName::from_static("x-api-key");
    let app = app(Policy::new("per-key", Quota::per_minute(1)).key(KeyExtractor::api_key(header)));
    let with_key = |key: &str| {
        let mut request = get_from("/items/1", "192.0.2.30");
        request
            .headers_mut()
            .insert("x-api-key", key.parse().unwrap());
        request
    };
    assert_eq!(status(&app, with_key("key-one")).await, StatusCode::OK);
    assert_eq!(status(&app, with_key("key-two")).await, StatusCode::OK);
    assert_eq!(
        status(&app, with_key("key-one")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(&app, get_from("/items/1", "192.0.2.30")).await,
        StatusCode::OK
    );
}

#[tokio::test(start_paused = true)]
async fn global_key_is_shared_by_everyone() {
    let app = app(Policy::new("global", Quota::per_minute(2)).key(KeyExtractor::global()));
    assert_eq!(
        status(&app, get_from("/items/1", "192.0.2.40")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, get_from("/items/1", "192.0.2.41")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, get_from("/items/1", "192.0.2.42")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(start_paused = true)]
async fn custom_key_closure_and_none_exempts() {
    let tenant = KeyExtractor::custom(|request| {
        request
            .headers()
            .get("x-tenant")
            .map(|tenant| RateLimitKey::from_bytes(tenant.as_bytes()))
    });
    let app = app(Policy::new("per-tenant", Quota::per_minute(1)).key(tenant));
    let for_tenant = |tenant: &str| {
        let mut request = get_from("/items/1", "192.0.2.50");
        request
            .headers_mut()
            .insert("x-tenant", tenant.parse().unwrap());
        request
    };
    assert_eq!(status(&app, for_tenant("acme")).await, StatusCode::OK);
    assert_eq!(
        status(&app, for_tenant("acme")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(status(&app, for_tenant("globex")).await, StatusCode::OK);
    // No tenant: the policy does not apply.
    for _ in 0..3 {
        let response = app
            .clone()
            .oneshot(get_from("/items/1", "192.0.2.50"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("ratelimit").is_none());
    }
}
