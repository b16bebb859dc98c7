//! The whole stack's added cost per request, in-process.
//!
//! `cargo bench --bench stack`
//!
//! `bare` is the bench server's router with no layer; `stack` is the same router under
//! [`streamgate::Stack`] with every layer this build has. Both are called through
//! `Service::call` on a current-thread runtime, and the response is dropped (when the metrics
//! layer records).

use std::hint::black_box;

use axum::{Router, body::Body, routing::get};
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use streamgate::Stack;
use tower::{Service, ServiceExt};

fn routes() -> Router {
    Router::new().route("/items/{id}", get(|| async { "item" }))
}

fn request() -> Request<Body> {
    let mut request = Request::get("/items/42").body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(streamgate::core::PeerAddr(([127, 0, 0, 1], 40000).into()));
    request
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stack = runtime.block_on(async { Stack::new("bench") });
    let cases = [("bare", routes()), ("stack", stack.apply(routes()))];
    let mut group = c.benchmark_group("stack");
    for (name, app) in cases {
        // `with_state` turns handlers into services once, as `axum::serve` does.
        let mut service = app.with_state::<()>(()).into_service::<Body>();
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let response = service.ready().await.unwrap().call(request()).await;
                    black_box(response.unwrap());
                });
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
