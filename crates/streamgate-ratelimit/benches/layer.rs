//! What the rate-limit layer adds to a request: a bare service and an axum route, each with and
//! without the layer (one IP policy high enough never to limit, headers on: the bench server's
//! set-up).
//!
//! - `service_fn_bare` / `service_fn_with_layer`: the in-process figure, a GET through a
//!   `service_fn` (metrics to the global recorder, none installed: counting is free).
//! - `service_fn_with_layer_recorded`: the same with the stack's `MetricsRecorder`, as under load
//!   (each decision is counted in `streamgate_ratelimit_requests_total`).
//! - `service_fn_with_layer_no_headers`, `axum_route_*`: for comparison.
//!
//! Criterion's point estimate is a mean; medians are in
//! `target/criterion/ratelimit_layer/<bench>/new/estimates.json`. After the criterion runs, the
//! added cost is printed again as the fastest of many alternating batches, which survives a
//! loaded machine better.
//!
//! Run: `taskset -c 0 cargo bench -p streamgate-ratelimit --bench layer -- --warm-up-time 1 --measurement-time 3`

use std::{
    convert::Infallible,
    hint::black_box,
    net::IpAddr,
    time::{Duration, Instant},
};

use axum::{Router, body::Body, routing::get};
use criterion::{Criterion, criterion_group};
use http::{Request, Response};
use streamgate_core::{ClientIp, MetricsHandle};
use streamgate_metrics::MetricsRecorder;
use streamgate_ratelimit::{Policy, Quota, RateLimitLayer};
use tower::{Service, ServiceBuilder, ServiceExt};

fn layer() -> RateLimitLayer {
    RateLimitLayer::new(Policy::new(
        "per-ip",
        Quota::per_second(1_000_000).burst(1_000_000),
    ))
}

/// The layer counting into a recorder of its own, as the Stack sets it up.
fn recorded_layer() -> RateLimitLayer {
    RateLimitLayer::builder()
        .policy(Policy::new(
            "per-ip",
            Quota::per_second(1_000_000).burst(1_000_000),
        ))
        .metrics(MetricsHandle::new(MetricsRecorder::new()))
        .build()
        .unwrap()
}

fn request() -> Request<Body> {
    let mut request = Request::get("/items/7").body(Body::empty()).unwrap();
    let ip = IpAddr::from([203, 0, 113, 7]);
    request.extensions_mut().insert(ClientIp(ip));
    request
}

async fn handler(_: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::empty()))
}

/// Runs `iters` requests through one reused service and times them.
async fn run<S>(mut service: S, iters: u64) -> Duration
where
    S: Service<Request<Body>>,
    S::Error: std::fmt::Debug,
{
    let start = Instant::now();
    for _ in 0..iters {
        let response = service
            .ready()
            .await
            .unwrap()
            .call(request())
            .await
            .unwrap();
        black_box(response);
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("ratelimit_layer");

    let bare = ServiceBuilder::new().service_fn(handler);
    group.bench_function("service_fn_bare", |b| {
        b.to_async(&runtime).iter_custom(|iters| run(bare, iters));
    });
    let limited = ServiceBuilder::new().layer(layer()).service_fn(handler);
    group.bench_function("service_fn_with_layer", |b| {
        b.to_async(&runtime)
            .iter_custom(|iters| run(limited.clone(), iters));
    });

    let recorded = ServiceBuilder::new()
        .layer(recorded_layer())
        .service_fn(handler);
    group.bench_function("service_fn_with_layer_recorded", |b| {
        b.to_async(&runtime)
            .iter_custom(|iters| run(recorded.clone(), iters));
    });

    let quiet = ServiceBuilder::new()
        .layer(
            RateLimitLayer::builder()
                .policy(Policy::new(
                    "per-ip",
                    Quota::per_second(1_000_000).burst(1_000_000),
                ))
                .headers(false)
                .build()
                .unwrap(),
        )
        .service_fn(handler);
    group.bench_function("service_fn_with_layer_no_headers", |b| {
        b.to_async(&runtime)
            .iter_custom(|iters| run(quiet.clone(), iters));
    });

    let router = Router::new().route("/items/{id}", get(|| async { "item" }));
    group.bench_function("axum_route_bare", |b| {
        b.to_async(&runtime)
            .iter_custom(|iters| run(router.clone(), iters));
    });
    let router_limited = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(layer());
    group.bench_function("axum_route_with_layer", |b| {
        b.to_async(&runtime)
            .iter_custom(|iters| run(router_limited.clone(), iters));
    });
    group.finish();
}

/// The fastest of `ROUNDS` batches of `service` (per request), alternating with `other` so that
/// both see the same machine load (a shared machine makes criterion's means noisy).
fn fastest_pair<A, B>(runtime: &tokio::runtime::Runtime, a: A, b: B) -> (f64, f64)
where
    A: Service<Request<Body>> + Clone,
    A::Error: std::fmt::Debug,
    B: Service<Request<Body>> + Clone,
    B::Error: std::fmt::Debug,
{
    const BATCH: u64 = 5_000;
    const ROUNDS: usize = 300;
    let (mut best_a, mut best_b) = (Duration::MAX, Duration::MAX);
    for _ in 0..ROUNDS {
        best_a = best_a.min(runtime.block_on(run(a.clone(), BATCH)));
        best_b = best_b.min(runtime.block_on(run(b.clone(), BATCH)));
    }
    let per = |d: Duration| d.as_nanos() as f64 / BATCH as f64;
    (per(best_a), per(best_b))
}

/// The layer's added cost: fastest batch with the layer minus fastest batch without.
fn added_cost_min_of_batches() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bare = ServiceBuilder::new().service_fn(handler);
    let limited = ServiceBuilder::new().layer(layer()).service_fn(handler);
    let (bare_ns, limited_ns) = fastest_pair(&runtime, bare, limited);
    println!(
        "added cost, service_fn: bare {bare_ns:.0} ns, with layer {limited_ns:.0} ns, added {:.0} ns per request",
        limited_ns - bare_ns
    );
    let recorded = ServiceBuilder::new()
        .layer(recorded_layer())
        .service_fn(handler);
    let (bare_ns, recorded_ns) = fastest_pair(&runtime, bare, recorded);
    println!(
        "added cost, service_fn, counted in a MetricsRecorder: bare {bare_ns:.0} ns, with layer {recorded_ns:.0} ns, added {:.0} ns per request",
        recorded_ns - bare_ns
    );
    let quiet = ServiceBuilder::new()
        .layer(
            RateLimitLayer::builder()
                .policy(Policy::new(
                    "per-ip",
                    Quota::per_second(1_000_000).burst(1_000_000),
                ))
                .headers(false)
                .build()
                .unwrap(),
        )
        .service_fn(handler);
    let (bare_ns, quiet_ns) = fastest_pair(&runtime, bare, quiet);
    println!(
        "added cost, service_fn, headers(false): bare {bare_ns:.0} ns, with layer {quiet_ns:.0} ns, added {:.0} ns per request",
        quiet_ns - bare_ns
    );
    // axum boxes and clones every layered route service: compare with a pass-through layer, so
    // that the figure is what the rate limiting itself costs.
    let router_passthrough = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(tower::util::MapResponseLayer::new(
            |response: axum::response::Response| response,
        ));
    let router_limited = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(layer());
    let (bare, limited) = fastest_pair(&runtime, router_passthrough, router_limited);
    println!(
        "added cost, axum route: with a pass-through layer {bare:.0} ns, with the rate-limit layer {limited:.0} ns, added {:.0} ns per request",
        limited - bare
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    added_cost_min_of_batches();
    Criterion::default().configure_from_args().final_summary();
}
