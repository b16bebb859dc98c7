//! A fixed amount of rate-limit work, for counting instructions with callgrind (deterministic,
//! unlike wall-clock timings on a shared machine). Run it with N and 2N and diff the totals to
//! get instructions per decision or per request:
//!
//! ```text
//! CARGO_PROFILE_BENCH_DEBUG=line-tables-only cargo build --profile bench -p streamgate-ratelimit --example instructions
//! valgrind --tool=callgrind target/release/examples/instructions <mode> 100000
//! valgrind --tool=callgrind target/release/examples/instructions <mode> 200000
//! ```
//!
//! Modes:
//! - `decision-same`, `decision-random`: one in-memory store decision with 1,000,000 keys tracked,
//!   on one key or on a different key each time.
//! - `bare`, `layer`: a GET through a `service_fn`, without or with the layer (one IP policy,
//!   headers on, never limited).
//! - `layer-recorded`: the same layer counting into a `MetricsRecorder`, as in the Stack.
//! - `bare-typed`, `layer-typed`: as `bare` and `layer`, with a handler whose response already
//!   has a `content-type` (so the layer's headers do not allocate the response's header map).

use std::{
    convert::Infallible,
    hint::black_box,
    net::{IpAddr, Ipv4Addr},
};

use axum::body::Body;
use http::{Request, Response};
use streamgate_core::{ClientIp, MetricsHandle};
use streamgate_metrics::MetricsRecorder;
use streamgate_ratelimit::{
    Check, MemoryStore, Policy, PolicyId, Quota, RateLimitKey, RateLimitLayer, RateLimitStore,
};
use tower::{Service, ServiceBuilder, ServiceExt};

const KEYS: u32 = 1_000_000;

fn key(n: u32) -> RateLimitKey {
    RateLimitKey::from_ip(IpAddr::V4(Ipv4Addr::from(0x0B00_0000 + n)), 64)
}

fn decisions(n: u64, random: bool) {
    let quota = Quota::per_day(100).burst(1000);
    let policy = PolicyId::next();
    let store = MemoryStore::builder()
        .max_keys(KEYS as usize * 105 / 100)
        .build();
    for k in 0..KEYS {
        let _ = store
            .check(&[Check::consume(policy, key(k), quota.gcra(), 1)])
            .take_ready();
    }
    let gcra = quota.gcra();
    for i in 0..n {
        let k = if random {
            (i.wrapping_mul(7_919) % u64::from(KEYS)) as u32
        } else {
            123_456
        };
        let check = Check::consume(policy, key(k), gcra, 1);
        black_box(store.check(black_box(&[check])).take_ready());
    }
}

fn request() -> Request<Body> {
    let mut request = Request::get("/items/7").body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(ClientIp(IpAddr::from([203, 0, 113, 7])));
    request
}

async fn handler(_: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::empty()))
}

/// A handler whose response already has a header, as most have (`Json`, a `&str`).
async fn typed_handler(_: Request<Body>) -> Result<Response<Body>, Infallible> {
    let mut response = Response::new(Body::empty());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn requests<S>(mut service: S, n: u64)
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Error: std::fmt::Debug,
{
    for _ in 0..n {
        let response = service
            .ready()
            .await
            .unwrap()
            .call(request())
            .await
            .unwrap();
        black_box(response);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    match mode.as_str() {
        "decision-same" => decisions(n, false),
        "decision-random" => decisions(n, true),
        "bare" => runtime.block_on(requests(ServiceBuilder::new().service_fn(handler), n)),
        "bare-typed" => {
            runtime.block_on(requests(ServiceBuilder::new().service_fn(typed_handler), n))
        }
        "layer-typed" => runtime.block_on(requests(
            ServiceBuilder::new()
                .layer(
                    RateLimitLayer::builder()
                        .policy(Policy::new(
                            "per-ip",
                            Quota::per_second(1_000_000).burst(1_000_000),
                        ))
                        .build()
                        .unwrap(),
                )
                .service_fn(typed_handler),
            n,
        )),
        "layer" | "layer-recorded" => {
            let mut layer = RateLimitLayer::builder().policy(Policy::new(
                "per-ip",
                Quota::per_second(1_000_000).burst(1_000_000),
            ));
            if mode == "layer-recorded" {
                layer = layer.metrics(MetricsHandle::new(MetricsRecorder::new()));
            }
            runtime.block_on(requests(
                ServiceBuilder::new()
                    .layer(layer.build().unwrap())
                    .service_fn(handler),
                n,
            ));
        }
        _ => eprintln!(
            "modes: decision-same, decision-random, bare, layer, layer-recorded, bare-typed, layer-typed"
        ),
    }
}
