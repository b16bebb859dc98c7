//! The Redis store against a real server (`STREAMGATE_TEST_REDIS_URL`, e.g.
//! `redis://127.0.0.1:6379`); skipped with a message when the variable is unset.
#![cfg(feature = "redis")]

mod common;

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::body::Body;
use common::{get_from, header, json_body};
use http::{Request, Response, StatusCode};
use streamgate_ratelimit::{FailMode, Policy, Quota, RateLimitLayer, RedisStore};
use tower::{Service, ServiceBuilder, ServiceExt};

fn redis_url(test: &str) -> Option<String> {
    match std::env::var("STREAMGATE_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!(
                "SKIPPED {test}: set STREAMGATE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run it"
            );
            None
        }
    }
}

/// A key prefix of its own for every run, so runs never share buckets.
fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("streamgate-test:{test}:{}:{nanos}", std::process::id())
}

async fn ok(_: Request<Body>) -> Result<Response<Body>, Infallible> {
    Ok(Response::new(Body::empty()))
}

#[tokio::test]
async fn burst_then_429_then_one_more_after_one_interval_on_redis() {
    let Some(url) = redis_url("burst_then_429_then_one_more_after_one_interval_on_redis") else {
        return;
    };
    let store = RedisStore::builder(url)
        .prefix(unique_prefix("burst"))
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    store.health().await.expect("Redis answers PING");
    // Burst 5, 20 per second: one unit back every 50 ms.
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("per-ip", Quota::per_second(20).burst(5)))
        .store(Arc::new(store))
        .fail_mode(FailMode::Closed)
        .build()
        .unwrap();
    let service = ServiceBuilder::new().layer(layer).service_fn(ok);

    for remaining in (0..5).rev() {
        let response = service
            .clone()
            .oneshot(get_from("/", "203.0.113.80"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "ratelimit"),
            format!("\"per-ip\";r={remaining};t=1")
        );
        assert_eq!(header(&response, "ratelimit-policy"), "\"per-ip\";q=5;w=1");
    }
    let limited = service
        .clone()
        .oneshot(get_from("/", "203.0.113.80"))
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&limited, "retry-after"), "1");
    assert_eq!(header(&limited, "ratelimit"), "\"per-ip\";r=0;t=1");
    assert_eq!(
        json_body(limited).await["violated-policies"],
        serde_json::json!(["per-ip"])
    );

    tokio::time::sleep(Duration::from_millis(60)).await;
    let again = service
        .clone()
        .oneshot(get_from("/", "203.0.113.80"))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let after = service
        .oneshot(get_from("/", "203.0.113.80"))
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_quota() {
    let Some(url) = redis_url("three_replicas_share_one_quota") else {
        return;
    };
    let prefix = unique_prefix("replicas");
    const CLIENTS_PER_REPLICA: usize = 8;
    const RUN: Duration = Duration::from_secs(2);
    let replicas: Vec<_> = (0..3)
        .map(|_| {
            let store = RedisStore::builder(url.clone())
                .prefix(prefix.clone())
                .timeout(Duration::from_secs(1))
                .build()
                .unwrap();
            let layer = RateLimitLayer::builder()
                .policy(Policy::new("per-ip", Quota::per_second(100).burst(100)))
                .store(Arc::new(store))
                .fail_mode(FailMode::Closed)
                .build()
                .unwrap();
            ServiceBuilder::new().layer(layer).service_fn(ok)
        })
        .collect();
    for replica in &replicas {
        // Connect every replica before the clock starts.
        let mut replica = replica.clone();
        let warm = replica
            .ready()
            .await
            .unwrap()
            .call(get_from("/", "198.51.100.250"))
            .await
            .unwrap();
        assert_eq!(warm.status(), StatusCode::OK);
    }

    let admitted = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + RUN;
    let mut tasks = Vec::new();
    for replica in &replicas {
        for _ in 0..CLIENTS_PER_REPLICA {
            let mut service = replica.clone();
            let admitted = admitted.clone();
            let other = other.clone();
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let response = service
                        .ready()
                        .await
                        .unwrap()
                        .call(get_from("/", "203.0.113.81"))
                        .await
                        .unwrap();
                    match response.status() {
                        StatusCode::OK => admitted.fetch_add(1, Ordering::Relaxed),
                        StatusCode::TOO_MANY_REQUESTS => 0,
                        _ => other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let admitted = admitted.load(Ordering::Relaxed) as f64;
    let expected = 100.0 + 100.0 * elapsed;
    println!("3 replicas, 24 clients, {elapsed:.3} s: admitted {admitted}, expected {expected:.1}");
    assert_eq!(other.load(Ordering::Relaxed), 0, "no store failures");
    assert!(
        (admitted - expected).abs() <= expected * 0.02,
        "admitted {admitted}, expected {expected:.1} (+-2%)"
    );
}

/// A TCP proxy in front of Redis that passes, refuses or hangs connections on command.
mod proxy {
    use std::{
        net::SocketAddr,
        sync::{
            Arc,
            atomic::{AtomicU8, Ordering},
        },
        time::Duration,
    };

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
    };

    pub(super) const PASS: u8 = 0;
    pub(super) const REFUSE: u8 = 1;
    pub(super) const HANG: u8 = 2;

    pub(super) struct Proxy {
        pub(super) addr: SocketAddr,
        mode: Arc<AtomicU8>,
    }

    impl Proxy {
        pub(super) async fn start(upstream: SocketAddr) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mode = Arc::new(AtomicU8::new(PASS));
            let accept_mode = mode.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    match accept_mode.load(Ordering::SeqCst) {
                        REFUSE => drop(client),
                        _ => {
                            tokio::spawn(serve(client, upstream, accept_mode.clone()));
                        }
                    }
                }
            });
            Self { addr, mode }
        }

        pub(super) fn set(&self, mode: u8) {
            self.mode.store(mode, Ordering::SeqCst);
        }
    }

    /// Forwards both ways while passing; stops reading while hanging; closes when refusing.
    async fn serve(mut client: TcpStream, upstream: SocketAddr, mode: Arc<AtomicU8>) {
        let Ok(mut server) = TcpStream::connect(upstream).await else {
            return;
        };
        let mut from_client = [0u8; 16 * 1024];
        let mut from_server = [0u8; 16 * 1024];
        loop {
            match mode.load(Ordering::SeqCst) {
                REFUSE => return,
                HANG => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                _ => {}
            }
            tokio::select! {
                read = client.read(&mut from_client) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if mode.load(Ordering::SeqCst) != PASS || server.write_all(&from_client[..n]).await.is_err() {
                            return;
                        }
                    }
                },
                read = server.read(&mut from_server) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if mode.load(Ordering::SeqCst) != PASS || client.write_all(&from_server[..n]).await.is_err() {
                            return;
                        }
                    }
                },
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }
}

/// What the layer does while Redis is unreachable, for one configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outage {
    Allow,
    Reject,
    Fallback,
}

async fn outage_behaves_as_configured(outage: Outage) {
    use streamgate_ratelimit::MemoryStore;
    let test = format!("outage_{outage:?}");
    let Some(url) = redis_url(&test) else { return };
    let upstream: std::net::SocketAddr = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .expect("STREAMGATE_TEST_REDIS_URL of the form redis://127.0.0.1:6379");
    let proxy = proxy::Proxy::start(upstream).await;
    let (metrics, recorder) = common::recorder();
    let mut store = RedisStore::builder(format!("redis://{}", proxy.addr))
        .prefix(unique_prefix(&test))
        .metrics(metrics.clone());
    if outage == Outage::Fallback {
        store = store.fallback(MemoryStore::builder().metrics(metrics.clone()).build());
    }
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("per-ip", Quota::per_minute(2)))
        .store(Arc::new(store.build().unwrap()))
        .fail_mode(if outage == Outage::Reject {
            FailMode::Closed
        } else {
            FailMode::Open
        })
        .metrics(metrics)
        .build()
        .unwrap();
    let service = ServiceBuilder::new().layer(layer).service_fn(ok);
    let status = || async {
        let started = Instant::now();
        let response = service
            .clone()
            .oneshot(get_from("/", "203.0.113.90"))
            .await
            .unwrap();
        (response.status(), started.elapsed())
    };

    // Shared limiting: the quota of 2 is used up on Redis.
    assert_eq!(status().await.0, StatusCode::OK);
    assert_eq!(status().await.0, StatusCode::OK);
    assert_eq!(status().await.0, StatusCode::TOO_MANY_REQUESTS);

    for mode in [proxy::HANG, proxy::REFUSE] {
        proxy.set(mode);
        let (first, took) = status().await;
        assert!(
            took < Duration::from_millis(500),
            "decided after {took:?} in mode {mode}"
        );
        let expected = match outage {
            Outage::Allow => StatusCode::OK,
            Outage::Reject => StatusCode::SERVICE_UNAVAILABLE,
            // The local store has its own fresh quota of 2.
            Outage::Fallback => StatusCode::OK,
        };
        assert_eq!(first, expected, "{outage:?} in proxy mode {mode}");
        proxy.set(proxy::PASS);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    if outage == Outage::Fallback {
        // Two outages, one request each: the local quota of 2 is now used up too.
        proxy.set(proxy::HANG);
        assert_eq!(status().await.0, StatusCode::TOO_MANY_REQUESTS);
        proxy.set(proxy::PASS);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    // Redis is back: shared limiting resumes (the shared bucket is still empty).
    let mut resumed = None;
    for _ in 0..20 {
        let (status, _) = status().await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            resumed = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        resumed,
        Some(StatusCode::TOO_MANY_REQUESTS),
        "shared limiting resumed"
    );

    let outcome = match outage {
        Outage::Allow => "allowed",
        Outage::Reject => "rejected",
        Outage::Fallback => "fallback",
    };
    let counted = common::counter(
        &recorder,
        "streamgate_ratelimit_store_errors_total",
        &[("outcome", outcome)],
    );
    assert!(counted >= 2, "{counted} store errors counted as {outcome}");
}

#[tokio::test]
async fn outage_fail_open_allows() {
    outage_behaves_as_configured(Outage::Allow).await;
}

#[tokio::test]
async fn outage_fail_closed_answers_503() {
    outage_behaves_as_configured(Outage::Reject).await;
}

#[tokio::test]
async fn outage_falls_back_to_the_local_store() {
    outage_behaves_as_configured(Outage::Fallback).await;
}

#[tokio::test]
async fn several_policies_and_outcome_based_counting_on_redis() {
    let Some(url) = redis_url("several_policies_and_outcome_based_counting_on_redis") else {
        return;
    };
    let store = RedisStore::builder(url)
        .prefix(unique_prefix("policies"))
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("loose", Quota::per_minute(10)))
        .policy(Policy::new("strict", Quota::per_minute(3)))
        .policy(
            Policy::new("failures", Quota::per_minute(1))
                .count_responses(|status| status == StatusCode::UNAUTHORIZED),
        )
        .store(Arc::new(store))
        .fail_mode(FailMode::Closed)
        .build()
        .unwrap();
    let service =
        ServiceBuilder::new()
            .layer(layer)
            .service_fn(|request: Request<Body>| async move {
                let status = if request.headers().contains_key("x-fail") {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::OK
                };
                let mut response = Response::new(Body::empty());
                *response.status_mut() = status;
                Ok::<_, Infallible>(response)
            });
    let send = |fail: bool| {
        let mut request = get_from("/", "203.0.113.95");
        if fail {
            request.headers_mut().insert("x-fail", "1".parse().unwrap());
        }
        service.clone().oneshot(request)
    };

    let first = send(false).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        header(&first, "ratelimit"),
        "\"loose\";r=9;t=6, \"strict\";r=2;t=20, \"failures\";r=1;t=0"
    );
    // A failure: counted by the outcome-based policy after the response.
    assert_eq!(send(true).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // Its bucket is now empty: rejected before the handler, and nothing taken from the others.
    let limited = send(false).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let ratelimit = header(&limited, "ratelimit");
    assert!(ratelimit.starts_with("\"loose\";r=8;"), "{ratelimit}");
    assert!(ratelimit.contains("\"strict\";r=1;"), "{ratelimit}");
    assert!(ratelimit.contains("\"failures\";r=0;"), "{ratelimit}");
    assert_eq!(
        json_body(limited).await["violated-policies"],
        serde_json::json!(["failures"])
    );
}

#[tokio::test]
async fn layers_sharing_a_redis_store_need_distinct_policy_names() {
    let Some(url) = redis_url("layers_sharing_a_redis_store_need_distinct_policy_names") else {
        return;
    };
    let store = RedisStore::builder(url)
        .prefix(unique_prefix("names"))
        .timeout(Duration::from_secs(1))
        .fallback(streamgate_ratelimit::MemoryStore::default())
        .build()
        .unwrap();
    store.health().await.expect("Redis answers PING");
    let store = Arc::new(store);
    let layer = |name: &str| {
        RateLimitLayer::builder()
            .policy(Policy::new(name, Quota::per_minute(10).burst(10)))
            .store(store.clone())
            .build()
    };
    let outer = layer("per-client").unwrap();
    let error = layer("per-client").unwrap_err().to_string();
    assert!(error.contains("\"per-client\""), "{error}");

    // Distinct names keep distinct buckets (keys `<prefix>:<name>:<key>`): no request is charged
    // twice against one bucket.
    let inner = layer("per-client-inner").unwrap();
    let mut service = ServiceBuilder::new()
        .layer(outer)
        .layer(inner)
        .service_fn(ok);
    for attempt in 0..10 {
        let response = service
            .ready()
            .await
            .unwrap()
            .call(get_from("/", "192.0.2.13"))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "request {attempt}");
    }

    drop(service);
    layer("per-client").unwrap();
}

#[tokio::test]
async fn limiters_of_two_replicas_share_one_quota_on_redis() {
    let Some(url) = redis_url("limiters_of_two_replicas_share_one_quota_on_redis") else {
        return;
    };
    let prefix = unique_prefix("limiter");
    let replica = || {
        let store = RedisStore::builder(url.as_str())
            .prefix(prefix.as_str())
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        streamgate_ratelimit::RateLimiter::builder("exports", Quota::per_hour(3).burst(3))
            .store(Arc::new(store))
            .build()
            .unwrap()
    };
    let (a, b) = (replica(), replica());
    assert!(a.allow("tenant-9").await);
    assert!(b.allow("tenant-9").await);
    assert!(a.allow("tenant-9").await);
    assert!(!b.allow("tenant-9").await, "the quota is shared");
    assert!(!a.allow("tenant-9").await);
    assert!(b.allow("tenant-10").await, "another tenant's bucket");
}
