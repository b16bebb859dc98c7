//! What validation costs: the bench server's `POST /items` body `{email, name}`.
//!
//! `cargo bench -p streamgate-validate --bench validate -- --warm-up-time 1 --measurement-time 3`
//!
//! - `body/deserialize_sanitize_validate`: `from_json_slice` (budget 2 us);
//!   `body/validate_only`: `validate()` alone on an already-deserialized value, for reference.
//! - `route/by_hand` vs `route/valid_extractor`: the same axum route, once with axum's `Json`
//!   and sanitize + validate written in the handler, once with `Valid<Json<T>>` behind
//!   `ValidationLayer`; both called through `Service::call` on a reused router. The difference is
//!   what the extractor adds (budget 0.3 us). `route/valid_extractor_no_layer` is the extractor
//!   with its defaults (global recorder), without the layer's per-route wrapping.
//!   On a busy machine prefer `--bench paired`, which alternates the routes.

use std::hint::black_box;

use axum::{Json, Router, body::Body, http::StatusCode, routing::post};
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use serde::Deserialize;
use streamgate_core::MetricsHandle;
use streamgate_validate::{
    Sanitize, Sanitizer, Valid, ValidationLayer, WireNames, from_json_slice, validate_email,
};
use tower::{Service, ServiceExt};
use validator::Validate;

const BODY: &str = r#"{"email": "user@example.com", "name": "Widget"}"#;

#[derive(Deserialize, Validate)]
struct NewItem {
    #[validate(custom(function = "validate_email"))]
    email: String,
    #[validate(length(min = 1, max = 100))]
    name: String,
}

impl Sanitize for NewItem {
    fn sanitize(&mut self) {
        Sanitizer::IDENTIFIER.apply(&mut self.email);
        Sanitizer::TEXT.max_chars(100).apply(&mut self.name);
    }
}

impl WireNames for NewItem {}

fn request() -> Request<Body> {
    Request::post("/items")
        .header("content-type", "application/json")
        .body(Body::from(BODY))
        .unwrap()
}

async fn by_hand(Json(mut item): Json<NewItem>) -> Result<String, StatusCode> {
    item.sanitize();
    item.validate()
        .map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
    Ok(item.name)
}

async fn with_extractor(Valid(Json(item)): Valid<Json<NewItem>>) -> Result<String, StatusCode> {
    Ok(item.name)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("body");
    group.bench_function("deserialize_sanitize_validate", |b| {
        b.iter(|| black_box(from_json_slice::<NewItem>(black_box(BODY.as_bytes())).is_ok()));
    });
    let item: NewItem = serde_json::from_str(BODY).unwrap();
    group.bench_function("validate_only", |b| {
        b.iter(|| black_box(black_box(&item).validate().is_ok()));
    });
    group.finish();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases = [
        ("by_hand", Router::new().route("/items", post(by_hand))),
        (
            "valid_extractor",
            Router::new()
                .route("/items", post(with_extractor))
                .layer(ValidationLayer::new().metrics(MetricsHandle::global())),
        ),
        (
            "valid_extractor_no_layer",
            Router::new().route("/items", post(with_extractor)),
        ),
    ];
    let mut group = c.benchmark_group("route");
    for (name, app) in cases {
        let mut service = app.into_service::<Body>();
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let response = service.ready().await.unwrap().call(request()).await;
                    let response = response.unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                    black_box(response);
                });
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
