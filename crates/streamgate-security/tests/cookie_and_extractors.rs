//! Cookie-borne tokens (with the cross-site check), the extractors, and anonymous access.

mod common;

use axum::{
    Router,
    routing::{get, post},
};
use common::*;
use http::{StatusCode, header::WWW_AUTHENTICATE};
use serde_json::json;
use streamgate_core::SecurityContext;
use streamgate_security::{
    AuthDecision, AuthReason, Authenticated, Issuer, JwtAuth, JwtKey, MaybeAuthenticated,
    SecurityContextLayer, jsonwebtoken::Algorithm,
};

fn jwt() -> JwtAuth {
    JwtAuth::builder()
        .issuer(Issuer::new("https://id.test").key(JwtKey::hmac(HMAC_SECRET)))
        .build()
        .unwrap()
}

fn token(jwt: &JwtAuth) -> String {
    sign(
        Algorithm::HS256,
        None,
        &hmac_key(),
        &json!({"iss": "https://id.test", "sub": "alice", "exp": jwt.clock().unix_seconds() + 60}),
    )
}

fn app(layer: SecurityContextLayer) -> Router {
    Router::new()
        .route(
            "/me",
            get(|Authenticated(me): Authenticated| async move { me.user_id().to_owned() })
                .post(|Authenticated(me): Authenticated| async move { me.user_id().to_owned() }),
        )
        .route(
            "/maybe",
            post(|MaybeAuthenticated(me): MaybeAuthenticated| async move {
                me.map_or_else(|| "nobody".to_owned(), |me| me.user_id().to_owned())
            }),
        )
        .route(
            "/optional",
            get(|me: Option<Authenticated>| async move {
                me.map_or_else(
                    || "nobody".to_owned(),
                    |Authenticated(me)| me.user_id().to_owned(),
                )
            }),
        )
        .layer(layer)
}

#[tokio::test]
async fn cookie_token_needs_a_same_origin_request_for_unsafe_methods() {
    let jwt = jwt();
    let app = app(SecurityContextLayer::builder()
        .jwt_with_cookie(jwt.clone(), "session")
        .build());
    let cookie = format!("theme=dark; session={}", token(&jwt));

    let response = fetch(
        &app,
        "/me",
        &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "safe methods pass");

    let response = send(
        &app,
        "POST",
        "/me",
        &[("cookie", &cookie), ("sec-fetch-site", "same-origin")],
    )
    .await;
    assert_eq!(body_text(response).await, "alice");

    let response = send(
        &app,
        "POST",
        "/me",
        &[("cookie", &cookie), ("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        response.extensions().get::<AuthDecision>().unwrap().reason,
        AuthReason::CsrfRejected
    );
    // Not a scope problem: no challenge, the problem+json body says why.
    assert!(response.headers().get("www-authenticate").is_none());
    assert_eq!(body_json(response).await["reason"], "csrf_rejected");

    let response = send(
        &app,
        "POST",
        "/me",
        &[
            ("cookie", &cookie),
            ("origin", "https://evil.example"),
            ("host", "api.example"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // The Authorization header is not sent by browsers on their own: no cross-site check.
    let bearer = format!("Bearer {}", token(&jwt));
    let response = send(
        &app,
        "POST",
        "/me",
        &[("authorization", &bearer), ("sec-fetch-site", "cross-site")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_the_cookie_option_cookies_are_not_read() {
    let jwt = jwt();
    let app = app(SecurityContextLayer::builder().jwt(jwt.clone()).build());
    let cookie = format!("session={}", token(&jwt));
    let response = fetch(&app, "/me", &[("cookie", &cookie)]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn anonymous_requests_reach_optional_extractors_but_not_required_ones() {
    let jwt = jwt();
    let app = app(SecurityContextLayer::builder()
        .jwt(jwt.clone())
        .allow_anonymous(true)
        .build());
    let response = send(&app, "POST", "/maybe", &[]).await;
    assert_eq!(body_text(response).await, "nobody");
    let response = fetch(&app, "/optional", &[]).await;
    assert_eq!(body_text(response).await, "nobody");
    let response = fetch(&app, "/me", &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
    // An invalid token is still refused when anonymous access is allowed.
    let response = fetch(&app, "/optional", &[("authorization", "Bearer x.y.z")]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[WWW_AUTHENTICATE],
        "Bearer error=\"invalid_token\""
    );

    let bearer = format!("Bearer {}", token(&jwt));
    let response = fetch(&app, "/optional", &[("authorization", &bearer)]).await;
    let context = response
        .extensions()
        .get::<SecurityContext>()
        .cloned()
        .unwrap();
    assert_eq!(context.user_id(), "alice");
    assert_eq!(body_text(response).await, "alice");
}
