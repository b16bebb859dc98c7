//! A cache hit through the layer on an axum route: the memory store vs the Redis store (what a
//! Redis round trip costs), for a 1 KiB and a 64 KiB body. The Redis part runs with the `redis`
//! feature against `STREAMGATE_TEST_REDIS_URL` and is skipped when it is unset.
//!
//! Run: `STREAMGATE_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench -p streamgate-cache --features redis --bench hit`

use std::{sync::Arc, time::Duration};

use axum::{Router, body::Body, http::Request, routing::get};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use streamgate_cache::{CacheLayer, CacheRoute, CacheStore};
use tokio::runtime::Runtime;
use tower::ServiceExt;

const SIZES: [(&str, usize); 2] = [("1KiB", 1024), ("64KiB", 64 * 1024)];

/// A route answering `size` bytes, cached in `store` (the memory store when `None`).
fn app(size: usize, store: Option<Arc<dyn CacheStore>>) -> Router {
    let body = bytes::Bytes::from("x".repeat(size));
    let mut layer = CacheLayer::builder()
        .route("/items/{id}", CacheRoute::ttl(Duration::from_secs(600)))
        .metrics(streamgate_core::MetricsHandle::global());
    if let Some(store) = store {
        layer = layer.store(store);
    }
    Router::new()
        .route("/items/{id}", get(move || std::future::ready(body.clone())))
        .layer(layer.build())
}

/// One GET of `/items/1`, read whole; returns its `x-cache`.
async fn get_item(app: &Router) -> String {
    let request = Request::get("/items/1").body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let x_cache = response.headers()["x-cache"].to_str().unwrap().to_owned();
    response.into_body().collect().await.unwrap();
    x_cache
}

fn bench(c: &mut Criterion, runtime: &Runtime, store: &str, app: &Router, size: &str) {
    runtime.block_on(get_item(app));
    assert_eq!(
        runtime.block_on(get_item(app)),
        "HIT",
        "the bench measures hits"
    );
    c.bench_function(&format!("hit/{store}/{size}"), |b| {
        b.to_async(runtime).iter(|| get_item(app));
    });
}

fn hits(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (name, size) in SIZES {
        bench(c, &runtime, "memory", &app(size, None), name);
    }
    #[cfg(feature = "redis")]
    {
        let Ok(url) = std::env::var("STREAMGATE_TEST_REDIS_URL") else {
            println!("skipped: STREAMGATE_TEST_REDIS_URL is not set (the Redis hits)");
            return;
        };
        for (name, size) in SIZES {
            let store = streamgate_cache::RedisCacheStore::builder(url.as_str())
                .prefix(format!(
                    "streamgate-bench:cache:{}:{name}",
                    std::process::id()
                ))
                .timeout(Duration::from_secs(1))
                .build()
                .unwrap();
            runtime
                .block_on(store.health())
                .expect("Redis answers PING");
            bench(
                c,
                &runtime,
                "redis",
                &app(size, Some(Arc::new(store))),
                name,
            );
        }
    }
    #[cfg(not(feature = "redis"))]
    println!("skipped: the Redis hits need the `redis` feature");
}

criterion_group!(benches, hits);
criterion_main!(benches);
