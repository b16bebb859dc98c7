//! The extractor's added cost, measured in alternating batches so that a busy machine's drift hits
//! both routes alike (criterion measures one case after the other).
//!
//! `cargo bench -p streamgate-validate --bench paired`
//!
//! Prints, per route, the median time per request over the batches, and the median of the paired
//! differences (`valid_extractor - by_hand`, and `no_layer - by_hand`).

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Body,
    http::StatusCode,
    routing::{RouterIntoService, post},
};
use http::Request;
use serde::Deserialize;
use streamgate_core::MetricsHandle;
use streamgate_validate::{Sanitize, Sanitizer, Valid, ValidationLayer, validate_email};
use tower::{Service, ServiceExt};
use validator::Validate;

const BODY: &str = r#"{"email": "user@example.com", "name": "Widget"}"#;
const BATCH: u32 = 2_000;
const ROUNDS: usize = 41;

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

streamgate_validate::wire_names!(NewItem {});

async fn by_hand(Json(mut item): Json<NewItem>) -> Result<String, StatusCode> {
    item.sanitize();
    item.validate()
        .map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
    Ok(item.name)
}

async fn with_extractor(Valid(Json(item)): Valid<Json<NewItem>>) -> Result<String, StatusCode> {
    Ok(item.name)
}

fn request() -> Request<Body> {
    Request::post("/items")
        .header("content-type", "application/json")
        .body(Body::from(BODY))
        .unwrap()
}

fn batch(runtime: &tokio::runtime::Runtime, service: &mut RouterIntoService<Body>) -> Duration {
    runtime.block_on(async {
        let start = Instant::now();
        for _ in 0..BATCH {
            let response = service
                .ready()
                .await
                .unwrap()
                .call(request())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            black_box(response);
        }
        start.elapsed()
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut routes = [
        (
            "by_hand",
            Router::new()
                .route("/items", post(by_hand))
                .into_service::<Body>(),
        ),
        (
            "valid_extractor",
            Router::new()
                .route("/items", post(with_extractor))
                .layer(ValidationLayer::new().metrics(MetricsHandle::global()))
                .into_service::<Body>(),
        ),
        (
            "no_layer",
            Router::new()
                .route("/items", post(with_extractor))
                .into_service::<Body>(),
        ),
    ];
    let mut per_request: Vec<Vec<f64>> = vec![Vec::new(); routes.len()];
    for round in 0..ROUNDS {
        for offset in 0..routes.len() {
            // Rotate the order every round.
            let index = (round + offset) % routes.len();
            let elapsed = batch(&runtime, &mut routes[index].1);
            per_request[index].push(elapsed.as_secs_f64() * 1e9 / f64::from(BATCH));
        }
    }
    for (index, (name, _)) in routes.iter().enumerate() {
        let mut times = per_request[index].clone();
        println!(
            "{name:<16} median {:>7.0} ns/request",
            median(&mut times[1..])
        );
    }
    for index in 1..routes.len() {
        let mut differences: Vec<f64> = per_request[index]
            .iter()
            .zip(&per_request[0])
            .skip(1)
            .map(|(route, base)| route - base)
            .collect();
        println!(
            "{} - by_hand: median {:>+6.0} ns/request",
            routes[index].0,
            median(&mut differences)
        );
    }
}
