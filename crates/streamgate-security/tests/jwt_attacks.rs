//! Acceptance 1: the JWT attack table, and a valid token mapped into the context.

mod common;

use axum::{Router, routing::get};
use common::*;
use http::{StatusCode, header::WWW_AUTHENTICATE};
use serde_json::{Value, json};
use streamgate_core::{MetricsHandle, SecurityContext};
use streamgate_metrics::MetricsRecorder;
use streamgate_security::{
    AuthDecision, AuthReason, Authenticated, ClaimMapping, Issuer, JwtAuth, JwtKey, RevocationList,
    SecurityContextLayer, jsonwebtoken::Algorithm,
};

const ISSUER: &str = "https://id.test";
const WALLET_LOWER: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
const WALLET_CHECKSUM: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

struct Fixture {
    app: Router,
    jwt: JwtAuth,
    recorder: MetricsRecorder,
}

fn fixture() -> Fixture {
    let revocations = RevocationList::new();
    revocations.revoke_token_id("revoked-jti");
    let jwt = JwtAuth::builder()
        .issuer(
            Issuer::new(ISSUER)
                .audience("items-api")
                .algorithms([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA])
                .key(JwtKey::rsa_pem(RSA_PUBLIC).unwrap().with_kid("rsa-1"))
                .key(JwtKey::ec_pem(EC_PUBLIC).unwrap().with_kid("ec-1"))
                .key(JwtKey::ed25519_pem(ED_PUBLIC).unwrap().with_kid("ed-1"))
                .claims(
                    ClaimMapping::default()
                        .roles("realm_access.roles")
                        .permissions("resource_access.items.permissions")
                        .wallet("ext.wallet"),
                ),
        )
        .issuer(Issuer::new("https://hmac.test").key(JwtKey::hmac(HMAC_SECRET).with_kid("hs-1")))
        .revocations(revocations)
        .build()
        .unwrap();
    let recorder = MetricsRecorder::new();
    let app = Router::new()
        .route(
            "/me",
            get(|Authenticated(me): Authenticated| async move {
                axum::Json(json!({
                    "user": me.user_id(),
                    "roles": me.roles(),
                    "permissions": me.permissions(),
                    "wallet": me.wallet().map(|w| w.to_checksum()),
                    "issuer": me.issuer(),
                }))
            }),
        )
        .layer(
            SecurityContextLayer::builder()
                .jwt(jwt.clone())
                .metrics(MetricsHandle::new(recorder.clone()))
                .build(),
        );
    Fixture { app, jwt, recorder }
}

fn claims(jwt: &JwtAuth) -> Value {
    let now = jwt.clock().unix_seconds();
    json!({
        "iss": ISSUER,
        "aud": ["items-api", "other"],
        "sub": "user-7",
        "exp": now + 600,
        "iat": now,
        "jti": "jti-1",
        "realm_access": {"roles": ["editor"]},
        "resource_access": {"items": {"permissions": ["items:write"]}},
        "ext": {"wallet": WALLET_LOWER},
    })
}

fn with(mut base: Value, changes: Value) -> Value {
    for (key, value) in changes.as_object().unwrap() {
        base[key] = value.clone();
    }
    base
}

#[tokio::test(start_paused = true)]
async fn attack_table_is_refused_with_the_right_reason() {
    let f = fixture();
    let now = f.jwt.clock().unix_seconds();
    let valid = claims(&f.jwt);
    let rsa = |c: &Value| sign(Algorithm::RS256, Some("rsa-1"), &rsa_key(), c);
    let other_signature = {
        let good = rsa(&valid);
        let foreign = sign(Algorithm::RS256, Some("rsa-1"), &rsa2_key(), &valid);
        let (message, _) = good.rsplit_once('.').unwrap();
        let (_, signature) = foreign.rsplit_once('.').unwrap();
        format!("{message}.{signature}")
    };

    let table: Vec<(&str, String, AuthReason)> = vec![
        (
            "alg none",
            forge(&json!({"alg": "none", "typ": "JWT"}), &valid, None),
            AuthReason::AlgorithmNone,
        ),
        (
            "alg None with a kid",
            forge(&json!({"alg": "None", "kid": "rsa-1"}), &valid, None),
            AuthReason::AlgorithmNone,
        ),
        (
            "algorithm off the allowlist",
            sign(Algorithm::RS512, Some("rsa-1"), &rsa_key(), &valid),
            AuthReason::AlgorithmNotAllowed,
        ),
        (
            "alg does not match the key of its kid",
            sign(Algorithm::ES256, Some("rsa-1"), &ec_key(), &valid),
            AuthReason::AlgorithmKeyMismatch,
        ),
        (
            "HS256 signed with the RSA public key as the secret",
            forge(
                &json!({"alg": "HS256", "kid": "rsa-1"}),
                &valid,
                Some(RSA_PUBLIC),
            ),
            AuthReason::AlgorithmNotAllowed,
        ),
        (
            "unknown kid",
            sign(Algorithm::RS256, Some("rsa-9"), &rsa_key(), &valid),
            AuthReason::UnknownKeyId,
        ),
        ("bad signature", other_signature, AuthReason::BadSignature),
        (
            "expired beyond leeway",
            rsa(&with(valid.clone(), json!({"exp": now - 61}))),
            AuthReason::Expired,
        ),
        (
            "nbf in the future",
            rsa(&with(valid.clone(), json!({"nbf": now + 120}))),
            AuthReason::NotYetValid,
        ),
        (
            "wrong iss",
            rsa(&with(valid.clone(), json!({"iss": "https://evil.test"}))),
            AuthReason::WrongIssuer,
        ),
        (
            "iss of the other issuer, signed with this one's key",
            rsa(&with(valid.clone(), json!({"iss": "https://hmac.test"}))),
            AuthReason::UnknownKeyId,
        ),
        (
            "wrong aud",
            rsa(&with(valid.clone(), json!({"aud": "billing-api"}))),
            AuthReason::WrongAudience,
        ),
        (
            "missing aud",
            rsa(&{
                let mut c = valid.clone();
                c.as_object_mut().unwrap().remove("aud");
                c
            }),
            AuthReason::WrongAudience,
        ),
        (
            "missing exp",
            rsa(&{
                let mut c = valid.clone();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
            AuthReason::InvalidClaims,
        ),
        (
            "malformed",
            "not-a-jwt".to_owned(),
            AuthReason::MalformedToken,
        ),
        (
            "malformed header",
            "e30.e30.sig".to_owned(),
            AuthReason::MalformedToken,
        ),
        (
            "revoked jti",
            rsa(&with(valid.clone(), json!({"jti": "revoked-jti"}))),
            AuthReason::Revoked,
        ),
        (
            "wallet with a bad checksum",
            rsa(&with(
                valid.clone(),
                json!({"ext": {"wallet": "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"}}),
            )),
            AuthReason::InvalidClaims,
        ),
    ];

    for (case, token, reason) in &table {
        let response = fetch(
            &f.app,
            "/me",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Bearer error=\"invalid_token\"",
            "{case}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{case}"
        );
        assert_eq!(
            response
                .extensions()
                .get::<AuthDecision>()
                .map(|d| d.reason),
            Some(*reason),
            "{case}"
        );
        let body = body_text(response).await;
        assert!(
            !body.contains(token.as_str()),
            "{case}: body echoes the token"
        );
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["reason"], reason.as_str(), "{case}");
        assert_eq!(body["status"], 401, "{case}");
    }

    let rendered = f.recorder.render();
    assert_eq!(
        decisions(&rendered, "jwt", "unauthenticated", "alg_none"),
        2
    );
    assert_eq!(decisions(&rendered, "jwt", "unauthenticated", "expired"), 1);
}

#[tokio::test(start_paused = true)]
async fn token_only_in_the_query_string_is_refused() {
    let f = fixture();
    let token = sign(Algorithm::RS256, Some("rsa-1"), &rsa_key(), &claims(&f.jwt));
    let response = fetch(&f.app, &format!("/me?access_token={token}"), &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // No credential was presented where one is read: a bare challenge.
    assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
    assert_eq!(
        response.extensions().get::<AuthDecision>().unwrap().reason,
        AuthReason::TokenInQuery
    );
    let body = body_text(response).await;
    assert!(!body.contains(&token));
    assert!(body.contains("token_in_query"));
}

/// Two `Authorization` lines, one a valid token: which one the client meant is ambiguous (a
/// proxy's line beside the client's), so neither is used.
#[tokio::test(start_paused = true)]
async fn a_valid_token_beside_another_authorization_line_is_refused() {
    let f = fixture();
    let token = sign(Algorithm::RS256, Some("rsa-1"), &rsa_key(), &claims(&f.jwt));
    let bearer = format!("Bearer {token}");
    for other in ["Bearer garbage", "Basic dXNlcjpwYXNz"] {
        for lines in [[bearer.as_str(), other], [other, bearer.as_str()]] {
            let headers = [("authorization", lines[0]), ("authorization", lines[1])];
            let response = fetch(&f.app, "/me", &headers).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{lines:?}");
            assert_eq!(
                response.extensions().get::<AuthDecision>().unwrap().reason,
                AuthReason::MalformedToken
            );
            assert!(!body_text(response).await.contains(&token));
        }
    }
    let response = fetch(&f.app, "/me", &[("authorization", &bearer)]).await;
    assert_eq!(response.status(), StatusCode::OK, "the token alone is fine");
}

/// Only RFC 6750's `access_token` is a bearer token in a query; an application's own `token`
/// parameter (an e-mail verification link) is no credential and a public route serves it.
#[tokio::test(start_paused = true)]
async fn application_token_parameter_is_not_a_credential() {
    let f = fixture();
    let app = Router::new()
        .route("/verify-email", get(|| async { "verified" }))
        .layer(
            SecurityContextLayer::builder()
                .jwt(f.jwt.clone())
                .allow_anonymous(true)
                .build(),
        );
    let response = fetch(&app, "/verify-email?token=abc", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "verified");
    // A bearer token in the query is still refused, anonymous access or not.
    let response = fetch(&app, "/verify-email?access_token=abc", &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.extensions().get::<AuthDecision>().unwrap().reason,
        AuthReason::TokenInQuery
    );
}

#[tokio::test(start_paused = true)]
async fn missing_credentials_get_a_bare_challenge() {
    let f = fixture();
    let response = fetch(&f.app, "/me", &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
    let body = body_json(response).await;
    assert_eq!(body["reason"], "missing_credentials");
}

#[tokio::test(start_paused = true)]
async fn expired_within_leeway_is_accepted() {
    let f = fixture();
    let now = f.jwt.clock().unix_seconds();
    let token = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &rsa_key(),
        &with(claims(&f.jwt), json!({"exp": now - 30, "nbf": now + 30})),
    );
    let response = fetch(
        &f.app,
        "/me",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// The claims are whole seconds: half a second of leeway tolerates one, not none.
#[tokio::test(start_paused = true)]
async fn a_leeway_under_a_second_counts_as_a_whole_one() {
    let jwt = JwtAuth::builder()
        .issuer(Issuer::new("https://hmac.test").key(JwtKey::hmac(HMAC_SECRET)))
        .leeway(std::time::Duration::from_millis(500))
        .build()
        .unwrap();
    let now = jwt.clock().unix_seconds();
    let token = |exp: u64| {
        let claims = json!({"iss": "https://hmac.test", "sub": "u", "exp": exp});
        sign(Algorithm::HS256, None, &hmac_key(), &claims)
    };
    assert!(jwt.verify(&token(now - 1)).await.is_ok());
    assert_eq!(
        jwt.verify(&token(now - 2)).await.unwrap_err(),
        AuthReason::Expired
    );
}

#[tokio::test(start_paused = true)]
async fn valid_tokens_of_every_key_type_map_roles_permissions_and_wallet() {
    let f = fixture();
    let valid = claims(&f.jwt);
    let tokens = [
        sign(Algorithm::RS256, Some("rsa-1"), &rsa_key(), &valid),
        sign(Algorithm::ES256, Some("ec-1"), &ec_key(), &valid),
        sign(Algorithm::EdDSA, Some("ed-1"), &ed_key(), &valid),
    ];
    for token in &tokens {
        let response = fetch(
            &f.app,
            "/me",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let context = response
            .extensions()
            .get::<SecurityContext>()
            .cloned()
            .unwrap();
        assert_eq!(context.user_id(), "user-7");
        assert_eq!(
            AuthDecision::of(response.extensions()).unwrap().reason,
            AuthReason::Ok
        );
        let body = body_json(response).await;
        assert_eq!(
            body,
            json!({
                "user": "user-7",
                "roles": ["editor"],
                "permissions": ["items:write"],
                "wallet": WALLET_CHECKSUM,
                "issuer": ISSUER,
            })
        );
    }
    // HMAC issuer, selected by `iss`.
    let hmac = sign(
        Algorithm::HS256,
        Some("hs-1"),
        &hmac_key(),
        &with(valid, json!({"iss": "https://hmac.test"})),
    );
    let response = fetch(
        &f.app,
        "/me",
        &[("authorization", &format!("Bearer {hmac}"))],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(decisions(&f.recorder.render(), "jwt", "allow", "ok"), 4);
}

#[tokio::test(start_paused = true)]
async fn cached_token_is_refused_once_revoked_or_expired() {
    let f = fixture();
    let now = f.jwt.clock().unix_seconds();
    let token = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &rsa_key(),
        &with(
            claims(&f.jwt),
            json!({"exp": now + 100, "jti": "jti-cached"}),
        ),
    );
    let auth = format!("Bearer {token}");
    assert_eq!(
        fetch(&f.app, "/me", &[("authorization", &auth)])
            .await
            .status(),
        200
    );
    // Within exp + leeway the cached entry serves.
    tokio::time::advance(std::time::Duration::from_secs(150)).await;
    assert_eq!(
        fetch(&f.app, "/me", &[("authorization", &auth)])
            .await
            .status(),
        200
    );
    // Past exp + leeway (160 s) the cached entry no longer does.
    tokio::time::advance(std::time::Duration::from_secs(11)).await;
    let response = fetch(&f.app, "/me", &[("authorization", &auth)]).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.extensions().get::<AuthDecision>().unwrap().reason,
        AuthReason::Expired
    );

    // Revocation after caching.
    let token = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &rsa_key(),
        &with(claims(&f.jwt), json!({"jti": "jti-later"})),
    );
    let auth = format!("Bearer {token}");
    assert_eq!(
        fetch(&f.app, "/me", &[("authorization", &auth)])
            .await
            .status(),
        200
    );
    f.jwt.revocations().revoke_token_id("jti-later");
    let response = fetch(&f.app, "/me", &[("authorization", &auth)]).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.extensions().get::<AuthDecision>().unwrap().reason,
        AuthReason::Revoked
    );
    f.jwt.revocations().revoke_subject("user-7");
    let fresh = sign(Algorithm::ES256, Some("ec-1"), &ec_key(), &claims(&f.jwt));
    let response = fetch(
        &f.app,
        "/me",
        &[("authorization", &format!("Bearer {fresh}"))],
    )
    .await;
    assert_eq!(response.status(), 401);
}

#[tokio::test(start_paused = true)]
async fn hs256_with_the_public_key_as_secret_is_refused_without_an_allowlist() {
    // No algorithm allowlist: the key family alone must stop the confusion attack.
    let jwt = JwtAuth::builder()
        .issuer(Issuer::new(ISSUER).key(JwtKey::rsa_pem(RSA_PUBLIC).unwrap().with_kid("rsa-1")))
        .build()
        .unwrap();
    let claims = claims(&jwt);
    for header in [
        json!({"alg": "HS256", "kid": "rsa-1"}),
        json!({"alg": "HS256"}),
    ] {
        let token = forge(&header, &claims, Some(RSA_PUBLIC));
        assert_eq!(
            jwt.verify(&token).await.unwrap_err(),
            AuthReason::AlgorithmKeyMismatch,
            "{header}"
        );
    }
}
