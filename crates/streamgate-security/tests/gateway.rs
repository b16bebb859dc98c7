//! Acceptance 2: gateway identity headers count only from trusted proxies.

mod common;

use std::net::SocketAddr;

use axum::{Router, extract::connect_info::MockConnectInfo, routing::get};
use common::*;
use http::{HeaderMap, StatusCode};
use streamgate_core::TrustedProxies;
use streamgate_security::{
    ApiKeys, AuthDecision, AuthReason, AuthSource, GatewayHeaders, MaybeAuthenticated,
    SecurityContextLayer,
};

fn app(peer: &str) -> Router {
    let peer: SocketAddr = peer.parse().unwrap();
    Router::new()
        .route(
            "/whoami",
            get(
                |MaybeAuthenticated(me): MaybeAuthenticated, headers: HeaderMap| async move {
                    let user = me.map_or_else(
                        || "anonymous".to_owned(),
                        |c| format!("{} roles={}", c.user_id(), c.roles().join(",")),
                    );
                    // What a handler reading the raw header would see.
                    let raw = headers
                        .get("x-user-id")
                        .map_or("none", |v| v.to_str().unwrap())
                        .to_owned();
                    format!("{user} raw={raw}")
                },
            ),
        )
        .layer(
            SecurityContextLayer::builder()
                .api_keys(
                    ApiKeys::new(http::HeaderName::from_static("x-api-key")).key(
                        "key-1",
                        streamgate_core::SecurityContext::builder("service-1").build(),
                    ),
                )
                .gateway(GatewayHeaders::new(
                    TrustedProxies::parse(["10.0.0.0/8"]).unwrap(),
                ))
                .allow_anonymous(true)
                .build(),
        )
        .layer(MockConnectInfo(peer))
}

const FORGED: &[(&str, &str)] = &[("x-user-id", "admin"), ("x-roles", "admin, ops")];

#[tokio::test]
async fn forged_user_header_from_an_untrusted_peer_is_ignored() {
    let response = fetch(&app("203.0.113.9:5000"), "/whoami", FORGED).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.extensions().get::<AuthDecision>().copied(),
        Some(AuthDecision::new(AuthSource::None, AuthReason::Anonymous))
    );
    // Not used for the context, and removed before any handler could read it.
    assert_eq!(body_text(response).await, "anonymous raw=none");
}

#[tokio::test]
async fn user_header_from_a_trusted_proxy_is_used() {
    let response = fetch(&app("10.1.2.3:5000"), "/whoami", FORGED).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .extensions()
            .get::<streamgate_core::SecurityContext>()
            .map(|c| c.user_id().to_owned()),
        Some("admin".to_owned())
    );
    assert_eq!(
        AuthDecision::of(response.extensions()).map(|d| d.reason),
        Some(AuthReason::Ok)
    );
    assert_eq!(body_text(response).await, "admin roles=admin,ops raw=admin");
}

#[tokio::test]
async fn untrusted_peer_with_an_api_key_still_loses_the_forged_headers() {
    let mut headers = FORGED.to_vec();
    headers.push(("x-api-key", "key-1"));
    let response = fetch(&app("203.0.113.9:5000"), "/whoami", &headers).await;
    assert_eq!(body_text(response).await, "service-1 roles= raw=none");
}

#[tokio::test]
async fn a_wrong_api_key_is_refused_not_passed_on() {
    let response = fetch(
        &app("10.1.2.3:5000"),
        "/whoami",
        &[("x-api-key", "guess"), ("x-user-id", "u")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.extensions().get::<AuthDecision>().unwrap().reason,
        AuthReason::InvalidApiKey
    );
    assert!(!body_text(response).await.contains("guess"));
}

#[tokio::test]
async fn a_repeated_identity_header_from_a_trusted_proxy_is_refused() {
    // A gateway that appends its headers to the client's instead of replacing them.
    for repeated in [
        &[("x-user-id", "admin"), ("x-user-id", "alice")][..],
        &[
            ("x-user-id", "alice"),
            ("x-roles", "admin"),
            ("x-roles", "viewer"),
        ],
        &[
            ("x-user-id", "alice"),
            ("x-permissions", "files:write"),
            ("x-permissions", "files:read"),
        ],
        &[
            ("x-user-id", "alice"),
            (
                "x-wallet-address",
                "0x52908400098527886E0F7030069857D2E4169EE7",
            ),
            (
                "x-wallet-address",
                "0xde709f2102306220921060314715629080e2fb77",
            ),
        ],
    ] {
        let response = fetch(&app("10.1.2.3:5000"), "/whoami", repeated).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{repeated:?}");
        assert_eq!(
            response.extensions().get::<AuthDecision>().unwrap().reason,
            AuthReason::InvalidClaims,
            "{repeated:?}"
        );
    }
}
