//! The hand-assembled ecosystem stack that `benches/load.sh --layers ecosystem` measures: the
//! bench routes of `benches/server` under what a service author assembles by hand for the
//! same features StreamGate's full stack gives them (its audit trail aside, which has no ecosystem
//! counterpart to assemble):
//!
//! - request ids: tower-http's `SetRequestId` (UUID v4) and `PropagateRequestId`;
//! - metrics: `axum-prometheus` (requests, durations, pending, and its `/metrics` route);
//! - rate limit: `tower_governor`, keyed by peer IP, with its `x-ratelimit-*` headers, at a quota
//!   the load never reaches;
//! - authentication: hand-written glue, an `axum::middleware::from_fn` that verifies the bearer
//!   token with `jsonwebtoken` on every request and puts the claims in the request extensions;
//! - validation: by hand in the handler, as the bare server does.
//!
//! The layers are added with `Router::layer`, in the order StreamGate's stack uses: request id
//! outermost, then metrics, rate limit and authentication. It accepts the token that
//! `bench_server --print-token` prints.
//!
//! ```text
//! cargo run --release -p streamgate-bench-ecosystem -- --port 3002
//! ```

use std::{process::ExitCode, time::Duration};

use axum::{
    Router,
    extract::Request,
    http::{StatusCode, header::AUTHORIZATION},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use axum_prometheus::PrometheusMetricLayer;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;
use tower_governor::{GovernorLayer, governor::GovernorConfigBuilder};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

#[path = "../../server/src/routes.rs"]
mod routes;

use routes::{ISSUER, SECRET, create_item_by_hand, get_item, serve};

/// The claims the glue keeps for handlers (the bench handlers do not read them).
#[derive(Debug, Clone, Deserialize)]
#[allow(dead_code)]
struct Claims {
    sub: String,
    #[serde(default)]
    roles: Vec<String>,
}

/// The bench routes under the hand-assembled stack, with its own `/metrics` route.
fn app() -> Router {
    let routes = Router::new()
        .route("/items/{id}", get(get_item))
        .route("/items", post(create_item_by_hand));
    let (prometheus, handle) = PrometheusMetricLayer::pair();
    // One token per nanosecond with a burst of a billion: wrk's one client is never limited.
    let governor = GovernorConfigBuilder::default()
        .period(Duration::from_nanos(1))
        .burst_size(1_000_000_000)
        .use_headers()
        .finish()
        .expect("a valid governor quota");
    let limiter = governor.limiter().clone();
    // tower_governor's documented clean-up: dropping idle keys from a task of its own.
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            limiter.retain_recent();
        }
    });
    routes
        .route_layer(middleware::from_fn(verify_bearer))
        .route("/metrics", get(move || async move { handle.render() }))
        .layer(GovernorLayer::new(governor))
        .layer(prometheus)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The usual hand-written authentication middleware: every request's token is verified.
async fn verify_bearer(mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(token) = token else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    match decode::<Claims>(token, &DecodingKey::from_secret(SECRET), &validation) {
        Ok(data) => {
            request.extensions_mut().insert(data.claims);
            next.run(request).await
        }
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

fn main() -> ExitCode {
    let mut port = 3002;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let parsed = match flag.as_str() {
            "--port" => args.next().and_then(|value| value.parse().ok()),
            _ => None,
        };
        match parsed {
            Some(value) => port = value,
            None => {
                eprintln!("ecosystem_server: usage: ecosystem_server [--port PORT]");
                return ExitCode::from(2);
            }
        }
    }
    serve("ecosystem_server", port, "", app)
}
