//! What the metrics layer adds to a request, in-process.
//!
//! `cargo bench -p streamgate-metrics --bench metrics_layer`
//!
//! Both cases call the same axum router (route `/items/{id}`) through `Service::call` on a
//! current-thread runtime and drop the response (which is when the layer records). The
//! difference between `layered` and `bare` is the layer's cost per request.

use std::hint::black_box;

use axum::{Router, body::Body, routing::get};
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use streamgate_metrics::{MetricsLayer, MetricsRecorder};
use tower::{Service, ServiceExt};

fn router() -> Router {
    Router::new().route("/items/{id}", get(|| async { "item" }))
}

fn request() -> Request<Body> {
    Request::get("/items/42").body(Body::empty()).unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let recorder = MetricsRecorder::new();
    let cases = [
        ("bare", router()),
        (
            "layered",
            router().layer(MetricsLayer::new(recorder.clone()).service_name("bench")),
        ),
    ];
    let mut group = c.benchmark_group("metrics_layer");
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

    // The recording itself, without routing: one histogram record through a held handle.
    let histogram = recorder.histogram("bench_duration_seconds", &[("route", "/items/{id}")]);
    c.bench_function("held_histogram_record", |b| {
        b.iter(|| histogram.record(black_box(0.0123)));
    });
    recorder.run_upkeep();
}

criterion_group!(benches, bench);
criterion_main!(benches);
