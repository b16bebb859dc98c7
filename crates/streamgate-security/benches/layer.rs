//! What the security layer adds to a request carrying a token it has verified before (cache hit),
//! against the same service without the layer. Requests are built outside the timed part; the
//! response (with the extensions the layer adds) is dropped inside it.
//!
//! `cargo bench -p streamgate-security --bench layer -- --warm-up-time 1 --measurement-time 3`

use std::{
    convert::Infallible,
    future::Future,
    hint::black_box,
    net::SocketAddr,
    pin::pin,
    task::{Context, Poll, Waker},
};

use axum::body::Body;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use serde_json::json;
use streamgate_core::PeerAddr;
use streamgate_security::{
    Issuer, JwtAuth, JwtKey, Policy, Rbac, Role, SecurityContextLayer,
    jsonwebtoken::{EncodingKey, Header, encode},
};
use tower::{Layer, Service, service_fn};

const SECRET: &[u8] = b"bench-secret-0123456789abcdef0123456789";

/// Polls a future that completes without waiting (every service here does).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the service was expected to answer at once"),
    }
}

/// A request as a server hands it over: with the connection's address in its extensions.
fn request(authorization: &str) -> Request<Body> {
    Request::get("/items/42")
        .header("authorization", authorization)
        .header("accept", "application/json")
        .extension(PeerAddr(SocketAddr::from(([127, 0, 0, 1], 40_000))))
        .body(Body::empty())
        .unwrap()
}

fn layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    let jwt = hmac_jwt();
    let authorization = format!("Bearer {}", token(&jwt, "user-1"));
    let handler = || {
        service_fn(|_request: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        })
    };

    let mut bare = handler();
    let jwt_for_token = jwt.clone();
    let mut layered = SecurityContextLayer::builder()
        .jwt(jwt)
        .build()
        .layer(handler());
    let rbac = Rbac::builder()
        .role(Role::new("viewer").permissions(["items:read"]))
        .build()
        .unwrap();
    let mut with_rbac = SecurityContextLayer::builder()
        .jwt(hmac_jwt())
        .build()
        .layer(
            rbac.require(Policy::permission("items:read"))
                .layer(handler()),
        );
    // First call verifies and caches the token.
    assert_eq!(
        runtime
            .block_on(layered.call(request(&authorization)))
            .unwrap()
            .status(),
        200
    );

    let mut group = c.benchmark_group("security_layer");
    let batched = BatchSize::SmallInput;
    group.bench_function("bare", |b| {
        b.iter_batched(
            || request(&authorization),
            |request| drop(ready(bare.call(request)).unwrap()),
            batched,
        );
    });
    group.bench_function("cached_token", |b| {
        b.iter_batched(
            || request(&authorization),
            |request| drop(ready(layered.call(request)).unwrap()),
            batched,
        );
    });
    let other = format!("Bearer {}", token(&jwt_for_token, "user-2"));
    assert_eq!(
        runtime
            .block_on(with_rbac.call(request(&other)))
            .unwrap()
            .status(),
        200
    );
    group.bench_function("cached_token_and_permission_check", |b| {
        b.iter_batched(
            || request(&other),
            |request| drop(ready(with_rbac.call(request)).unwrap()),
            batched,
        );
    });
    // The cache lookup alone (hash, shard read lock, token comparison, clock, revocation check).
    group.bench_function("jwt_verify_cached", |b| {
        b.iter(|| ready(jwt_for_token.verify(black_box(&authorization[7..]))).unwrap());
    });
    group.finish();
}

fn hmac_jwt() -> JwtAuth {
    JwtAuth::builder()
        .issuer(Issuer::new("https://id.bench").key(JwtKey::hmac(SECRET)))
        .build()
        .unwrap()
}

fn token(jwt: &JwtAuth, subject: &str) -> String {
    encode(
        &Header::default(),
        &json!({
            "iss": "https://id.bench", "sub": subject, "exp": jwt.clock().unix_seconds() + 3600,
            "roles": ["viewer"],
        }),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

criterion_group!(benches, layer);
criterion_main!(benches);
