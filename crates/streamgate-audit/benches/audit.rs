//! Benchmarks of the audit trail.
//!
//! - `file_sink/events`: the file sink alone (serialize, hash-chain, write, head), batches of
//!   1024 events; reported as events per second of on-CPU time (system calls included).
//!   Budget: >= 200,000 events/s. `file_sink/events_batch_16`: the same in batches of 16, where
//!   the head file's replacement after each batch weighs more.
//! - `sha256/512_bytes`: SHA-256 of a record-sized input, to see that the SHA-NI code path is
//!   taken (about 1.3 GB/s or more; the portable code is about four times slower).
//! - `layer/*`: the layer's added cost per request on a reused `service_fn` service:
//!   `bare` (no layer), `default_policy_get` (a plain GET the default policy does not record;
//!   budget <= 0.05 us over `bare`), `identity_layer` (tower's `map_response` with an identity
//!   function: what wrapping any layer costs here), `unrecorded_get_without_floor` (the same with the security
//!   floor off: the policy decision alone), and `record_every_request` (every request recorded, the
//!   background writer into the file sink included: it runs on the same single-threaded runtime
//!   and each sample waits until its events are written; budget <= 1.0 us over `bare`).
//!
//! - `postgres_sink/events`: the PostgreSQL sink (feature `postgres`, server from
//!   `STREAMGATE_TEST_POSTGRES_URL`), batches of 1024, events per second.
//!
//! The layer figures are on-CPU time of the benchmark thread (`CLOCK_THREAD_CPUTIME_ID`), so a
//! busy shared machine does not inflate them.
//!
//! `cargo bench -p streamgate-audit --bench audit -- --warm-up-time 1 --measurement-time 3`

use std::{
    convert::Infallible,
    hint::black_box,
    sync::Arc,
    time::{Duration, SystemTime},
};

use axum::body::Body;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderValue, Request, Response};
use streamgate_audit::{
    Actor, AuditEvent, AuditLayer, AuditLogger, AuditPolicy, AuditSink, FileSink, FileSinkConfig,
    Level, Outcome, SigningKey,
};
use streamgate_core::{ClientIp, RouteTemplate};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
use tower_http::request_id::RequestId;

fn key() -> SigningKey {
    SigningKey::new(&[9; 32]).unwrap()
}

fn sample_event(i: u64) -> AuditEvent {
    let mut event = AuditEvent::new(
        SystemTime::now(),
        "data_modification",
        Actor::user("user-1234"),
        "POST",
        format!("/items/{i}"),
        Outcome::Success,
    );
    event.source_ip = Some("203.0.113.9".parse().unwrap());
    event.request_id = Some("0b9c3d64-1f0e-4a8e-9a57-2f0d1c3b4a5e".to_owned());
    event.method = Some("POST".into());
    event.route = Some("/items/{id}".to_owned());
    event.status = Some(201);
    event.latency_ms = Some(0.123);
    event
}

fn file_sink(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sink = runtime.block_on(async {
        FileSink::open(FileSinkConfig::new(dir.path(), key()).retention(None)).unwrap()
    });
    let mut group = c.benchmark_group("file_sink");
    // Big batches (a busy writer), and small ones (a lightly loaded writer: the head file is
    // replaced after every batch, so its cost is shared by fewer events).
    for (name, size) in [("events", 1024), ("events_batch_16", 16)] {
        let batch: Vec<AuditEvent> = (0..size).map(sample_event).collect();
        group.throughput(Throughput::Elements(size));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = on_cpu();
                for _ in 0..iters {
                    runtime.block_on(sink.write(black_box(&batch))).unwrap();
                }
                on_cpu() - start
            });
        });
    }
    group.finish();
}

/// SHA-256 of a record-sized input: about 1.3 GB/s or more means the SHA-NI code path of `sha2`
/// is in use (the portable code gives about a quarter of that).
fn sha256(c: &mut Criterion) {
    use sha2::{Digest, Sha256};
    let record = vec![b'a'; 512];
    let mut group = c.benchmark_group("sha256");
    group.throughput(Throughput::Bytes(record.len() as u64));
    group.bench_function("512_bytes", |b| {
        b.iter(|| Sha256::digest(black_box(&record)));
    });
    group.finish();
}

fn request(method: &str) -> Request<Body> {
    // A static URI: like hyper's (a slice of the read buffer), cloning it does not allocate.
    let mut request = Request::builder()
        .method(method)
        .uri(http::Uri::from_static("/items/7"))
        .body(Body::empty())
        .unwrap();
    let extensions = request.extensions_mut();
    extensions.insert(RouteTemplate(Arc::from("/items/{id}")));
    extensions.insert(ClientIp("203.0.113.9".parse().unwrap()));
    extensions.insert(RequestId::new(HeaderValue::from_static(
        "0b9c3d64-1f0e-4a8e-9a57-2f0d1c3b4a5e",
    )));
    request
}

async fn ok(_request: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::empty()))
}

/// Time this thread has spent on a CPU (`CLOCK_THREAD_CPUTIME_ID`), so that other processes on
/// a shared machine do not inflate the figures.
fn on_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Runs `iters` requests through `service` in chunks (built outside the measurement) and returns
/// the on-CPU time; `settle` runs inside the measurement after the last chunk.
async fn measure<S>(
    service: &mut S,
    method: &str,
    iters: u64,
    settle: impl std::future::Future<Output = ()>,
) -> Duration
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let chunk = left.min(1024);
        left -= chunk;
        let requests: Vec<Request<Body>> = (0..chunk).map(|_| request(method)).collect();
        let start = on_cpu();
        for request in requests {
            let response = service.ready().await.unwrap().call(request).await;
            black_box(response.unwrap());
        }
        total += on_cpu() - start;
    }
    let start = on_cpu();
    settle.await;
    total + (on_cpu() - start)
}

fn layer(c: &mut Criterion) {
    // One thread, as the load test's server: the writer's work is paid on the same core.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let logger = runtime.block_on(async {
        let sink = FileSink::open(FileSinkConfig::new(dir.path(), key()).retention(None)).unwrap();
        AuditLogger::builder().sink(sink).capacity(16_384).start()
    });
    let mut group = c.benchmark_group("layer");

    let bare = service_fn(ok);
    group.bench_function("bare", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let mut service = bare;
            async move { measure(&mut service, "GET", iters, async {}).await }
        });
    });

    let default_policy = ServiceBuilder::new()
        .layer(AuditLayer::new(logger.clone()))
        .service(service_fn(ok));
    group.bench_function("default_policy_get", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let mut service = default_policy.clone();
            async move { measure(&mut service, "GET", iters, async {}).await }
        });
    });

    let identity = ServiceBuilder::new()
        .map_response(|r: Response<Body>| r)
        .service(service_fn(ok));
    group.bench_function("identity_layer", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let mut service = identity.clone();
            async move { measure(&mut service, "GET", iters, async {}).await }
        });
    });

    // The decision alone: a policy that records nothing, not even refusals.
    let nothing = ServiceBuilder::new()
        .layer(AuditLayer::new(logger.clone()).policy(AuditPolicy::default().security_floor(false)))
        .service(service_fn(ok));
    group.bench_function("unrecorded_get_without_floor", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let mut service = nothing.clone();
            async move { measure(&mut service, "GET", iters, async {}).await }
        });
    });

    let everything = ServiceBuilder::new()
        .layer(
            AuditLayer::new(logger.clone()).policy(AuditPolicy::record_everything(Level::Metadata)),
        )
        .service(service_fn(ok));
    group.bench_function("record_every_request", |b| {
        b.to_async(&runtime).iter_custom(|iters| {
            let mut service = everything.clone();
            let logger = logger.clone();
            // The writer is part of the cost: wait until every event is on disk.
            async move {
                measure(
                    &mut service,
                    "POST",
                    iters,
                    async move { logger.flush().await },
                )
                .await
            }
        });
    });
    group.finish();
    runtime.block_on(logger.shutdown());
}

/// The PostgreSQL sink alone, batches of 1024 (feature `postgres`, with
/// `STREAMGATE_TEST_POSTGRES_URL` set; skipped otherwise).
fn postgres_sink(c: &mut Criterion) {
    #[cfg(feature = "postgres")]
    {
        use streamgate_audit::postgres::{PostgresSink, PostgresSinkConfig};
        let Ok(url) = std::env::var("STREAMGATE_TEST_POSTGRES_URL") else {
            eprintln!("postgres_sink: skipped, STREAMGATE_TEST_POSTGRES_URL is not set");
            return;
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let drop_tables = || {
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                client
                    .batch_execute(
                        "DROP TABLE IF EXISTS audit_bench; DROP TABLE IF EXISTS audit_bench_heads;",
                    )
                    .await
                    .unwrap();
            });
        };
        drop_tables();
        let instance = format!("bench-{}", std::process::id());
        let config = PostgresSinkConfig::new(url.clone(), instance, key())
            .table("audit_bench")
            .retention(None);
        let mut sink = PostgresSink::new(config).unwrap();
        let batch: Vec<AuditEvent> = (0..1024).map(sample_event).collect();
        let mut group = c.benchmark_group("postgres_sink");
        group.throughput(Throughput::Elements(batch.len() as u64));
        group.sample_size(20);
        group.bench_function("events", |b| {
            b.iter(|| runtime.block_on(sink.write(black_box(&batch))).unwrap());
        });
        group.finish();
        drop(sink);
        drop_tables();
    }
    #[cfg(not(feature = "postgres"))]
    let _ = c;
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = file_sink, sha256, layer, postgres_sink
}
criterion_main!(benches);
