//! The Redis store against a real server (`STREAMGATE_TEST_REDIS_URL`, e.g.
//! `redis://127.0.0.1:6379`), skipped with a message when the variable is unset: two replicas
//! (two routers, two layers, two stores) sharing entries, invalidation, per-user entries, TTLs
//! on Redis, a write racing a fetch. The outage tests need no server and always run.
#![cfg(feature = "redis")]

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, StatusCode},
    middleware,
    routing::get,
};
use common::{Answer, header, send, test_identity};
use redis::AsyncCommands;
use streamgate_cache::{CacheLayer, CacheRoute, RedisCacheStore};
use streamgate_core::MetricsHandle;
use streamgate_metrics::MetricsRecorder;
use tokio::sync::Semaphore;

const MINUTE: Duration = Duration::from_secs(60);

fn redis_url(test: &str) -> Option<String> {
    match std::env::var("STREAMGATE_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            println!("skipped: STREAMGATE_TEST_REDIS_URL is not set ({test})");
            None
        }
    }
}

/// A key prefix of its own for every test and run, so tests never share entries.
fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "streamgate-test:cache:{test}:{}:{nanos}",
        std::process::id()
    )
}

/// One replica: its own router, layer, store (and connection) and handler calls.
struct Replica {
    router: Router,
    calls: Arc<AtomicU32>,
    recorder: MetricsRecorder,
}

impl Replica {
    /// A replica named `name` caching on the Redis at `url` under `prefix`. Its handlers answer
    /// with the replica's name, the caller and their call count; `/slow/{id}` first waits for a
    /// permit of `gate`.
    fn new(name: &'static str, url: &str, prefix: &str, gate: Arc<Semaphore>) -> Self {
        let store = RedisCacheStore::builder(url)
            .prefix(prefix)
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        Self::with_store(name, store, gate)
    }

    fn with_store(name: &'static str, store: RedisCacheStore, gate: Arc<Semaphore>) -> Self {
        let calls = Arc::new(AtomicU32::new(0));
        let recorder = MetricsRecorder::new();
        let (item, short, slow, write) =
            (calls.clone(), calls.clone(), calls.clone(), calls.clone());
        let router = Router::new()
            .route(
                "/items/{id}",
                get(
                    move |Path(id): Path<String>, headers: HeaderMap| async move {
                        let user = headers
                            .get("x-user")
                            .map_or("anonymous".into(), |v| v.to_str().unwrap().to_owned());
                        let call = item.fetch_add(1, Ordering::SeqCst) + 1;
                        (
                            [("x-served-by", name), ("content-type", "text/plain")],
                            format!("item {id} for {user}, call {call} on {name}"),
                        )
                    },
                )
                .post(move || async move {
                    write.fetch_add(1, Ordering::SeqCst);
                    StatusCode::NO_CONTENT
                }),
            )
            .route(
                "/short",
                get(move || async move {
                    let call = short.fetch_add(1, Ordering::SeqCst) + 1;
                    (
                        [("cache-control", "max-age=5")],
                        format!("short, call {call}"),
                    )
                }),
            )
            .route(
                "/slow/{id}",
                get(move || async move {
                    let call = slow.fetch_add(1, Ordering::SeqCst) + 1;
                    gate.acquire().await.unwrap().forget();
                    format!("slow, call {call} on {name}")
                })
                .put(|| async { StatusCode::NO_CONTENT }),
            )
            .layer(
                CacheLayer::builder()
                    .route("/items/{id}", CacheRoute::ttl(MINUTE))
                    .route("/short", CacheRoute::ttl(MINUTE))
                    .route("/slow/{id}", CacheRoute::ttl(MINUTE))
                    .store(Arc::new(store))
                    .metrics(MetricsHandle::new(recorder.clone()))
                    .build(),
            )
            .layer(middleware::from_fn(test_identity));
        Self {
            router,
            calls,
            recorder,
        }
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        send(&self.router, method, path, headers).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, &[]).await
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.recorder
            .snapshot()
            .counter(name, labels)
            .map_or(0, |counter| counter.value)
    }
}

/// Two replicas sharing the Redis at `url` under a prefix of their own; the Redis is checked.
async fn replicas(url: &str, test: &str) -> (Replica, Replica, String) {
    let prefix = unique_prefix(test);
    let store = RedisCacheStore::builder(url).build().unwrap();
    store.health().await.expect("Redis answers PING");
    let gate = Arc::new(Semaphore::new(0));
    let a = Replica::new("a", url, &prefix, gate.clone());
    let b = Replica::new("b", url, &prefix, gate);
    (a, b, prefix)
}

async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis")
}

/// The entry keys under `prefix` (a path's generation key ends in `:g`).
async fn entry_keys(redis: &mut redis::aio::MultiplexedConnection, prefix: &str) -> Vec<String> {
    let keys: Vec<String> = redis.keys(format!("{prefix}:*")).await.unwrap();
    keys.into_iter()
        .filter(|key| !key.ends_with(":g"))
        .collect()
}

fn ttl_seconds(answer: &Answer) -> u64 {
    let status = header(answer, "cache-status");
    status
        .strip_prefix("streamgate; hit; ttl=")
        .unwrap_or_else(|| panic!("not a hit: {status}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_response_stored_by_one_replica_is_a_hit_on_the_other_until_a_write_through_either() {
    let test = "shared_hits";
    let Some(url) = redis_url(test) else { return };
    let (a, b, _) = replicas(&url, test).await;

    let stored = a.get("/items/1").await;
    assert_eq!(stored.body, "item 1 for anonymous, call 1 on a");
    assert_eq!(
        header(&stored, "cache-status"),
        "streamgate; fwd=uri-miss; stored"
    );
    a.get("/items/2").await;

    let hit = b.get("/items/1").await;
    assert_eq!(hit.status, StatusCode::OK);
    assert_eq!(hit.body, stored.body, "b serves what a stored");
    assert_eq!(header(&hit, "x-cache"), "HIT");
    assert!(
        (58..=60).contains(&ttl_seconds(&hit)),
        "{}",
        header(&hit, "cache-status")
    );
    assert!(header(&hit, "age").parse::<u64>().unwrap() <= 1);
    for name in ["x-served-by", "content-type", "content-length"] {
        assert_eq!(header(&hit, name), header(&stored, name), "{name}");
    }
    assert_eq!(b.calls(), 0, "b's handler never ran");

    // A write through b removes /items/1 for a too, and leaves /items/2.
    assert_eq!(
        b.send("POST", "/items/1", &[]).await.status,
        StatusCode::NO_CONTENT
    );
    let after = a.get("/items/1").await;
    assert_eq!(after.body, "item 1 for anonymous, call 3 on a");
    assert_eq!(
        header(&after, "cache-status"),
        "streamgate; fwd=uri-miss; stored"
    );
    assert_eq!(
        header(&b.get("/items/1").await, "x-cache"),
        "HIT",
        "stored again"
    );
    let other = a.get("/items/2").await;
    assert_eq!(header(&other, "x-cache"), "HIT");
    assert_eq!(other.body, "item 2 for anonymous, call 2 on a");

    let hits = [("result", "hit")];
    assert_eq!(b.counter("streamgate_cache_lookups_total", &hits), 2);
    assert_eq!(b.counter("streamgate_cache_invalidations_total", &[]), 1);
    assert_eq!(a.counter("streamgate_cache_stores_total", &[]), 3);
    for replica in [&a, &b] {
        for operation in ["lookup", "store", "invalidate"] {
            let labels = [("operation", operation)];
            assert_eq!(
                replica.counter("streamgate_cache_store_errors_total", &labels),
                0
            );
        }
    }
}

#[tokio::test]
async fn a_users_entry_is_never_served_to_another_user() {
    let test = "per_user";
    let Some(url) = redis_url(test) else { return };
    let (a, b, _) = replicas(&url, test).await;

    let ada = a.send("GET", "/items/1", &[("x-user", "ada")]).await;
    assert_eq!(ada.body, "item 1 for ada, call 1 on a");
    let bob = b.send("GET", "/items/1", &[("x-user", "bob")]).await;
    assert_eq!(
        bob.body, "item 1 for bob, call 1 on b",
        "bob never gets ada's answer"
    );
    assert_eq!(header(&bob, "x-cache"), "MISS");
    let anonymous = b.get("/items/1").await;
    assert_eq!(anonymous.body, "item 1 for anonymous, call 2 on b");

    let ada_on_b = b.send("GET", "/items/1", &[("x-user", "ada")]).await;
    assert_eq!(header(&ada_on_b, "x-cache"), "HIT");
    assert_eq!(ada_on_b.body, ada.body);
    let bob_on_a = a.send("GET", "/items/1", &[("x-user", "bob")]).await;
    assert_eq!(bob_on_a.body, bob.body);
    assert_eq!(a.calls() + b.calls(), 3);
}

#[tokio::test]
async fn entries_expire_on_redis_after_the_route_ttl_or_a_shorter_max_age() {
    let test = "ttl";
    let Some(url) = redis_url(test) else { return };
    let (a, b, prefix) = replicas(&url, test).await;
    let mut redis = connect(&url).await;

    a.get("/items/1").await;
    let items = entry_keys(&mut redis, &prefix).await;
    assert_eq!(items.len(), 1, "{items:?}");
    let left: i64 = redis.pttl(&items[0]).await.unwrap();
    assert!(
        (58_000..=60_000).contains(&left),
        "route TTL 60 s, {left} ms left"
    );

    a.get("/short").await;
    let mut keys = entry_keys(&mut redis, &prefix).await;
    keys.retain(|key| *key != items[0]);
    assert_eq!(keys.len(), 1, "{keys:?}");
    let left: i64 = redis.pttl(&keys[0]).await.unwrap();
    assert!((3_000..=5_000).contains(&left), "max-age=5, {left} ms left");

    // Freshness and Age come from Redis's remaining time: as if 35 s had passed there.
    let _: bool = redis.pexpire(&items[0], 25_000).await.unwrap();
    let hit = b.get("/items/1").await;
    assert_eq!(header(&hit, "x-cache"), "HIT");
    assert!(
        (23..=25).contains(&ttl_seconds(&hit)),
        "{}",
        header(&hit, "cache-status")
    );
    let age: u64 = header(&hit, "age").parse().unwrap();
    assert!((35..=37).contains(&age), "age {age}");

    // Gone from Redis: a miss on every replica.
    let _: usize = redis.del(&items[0]).await.unwrap();
    assert_eq!(header(&b.get("/items/1").await, "x-cache"), "MISS");
}

#[tokio::test]
async fn a_response_fetched_before_a_write_is_not_stored_after_it() {
    let test = "write_race";
    let Some(url) = redis_url(test) else { return };
    let prefix = unique_prefix(test);
    let gate = Arc::new(Semaphore::new(0));
    let a = Arc::new(Replica::new("a", &url, &prefix, gate.clone()));
    let b = Replica::new("b", &url, &prefix, gate.clone());

    // a misses and sends the request on; the handler waits at the gate.
    let fetching = {
        let a = a.clone();
        tokio::spawn(async move { a.get("/slow/1").await })
    };
    let started = Instant::now();
    while a.calls() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the handler never ran"
        );
        tokio::task::yield_now().await;
    }
    // Meanwhile b writes the path; then a's handler answers with what it read before.
    assert_eq!(
        b.send("PUT", "/slow/1", &[]).await.status,
        StatusCode::NO_CONTENT
    );
    gate.add_permits(1);
    let old = fetching.await.unwrap();
    assert_eq!(old.body, "slow, call 1 on a");
    assert_eq!(
        header(&old, "cache-status"),
        "streamgate; fwd=uri-miss",
        "not stored"
    );

    gate.add_permits(1);
    let fresh = b.get("/slow/1").await;
    assert_eq!(fresh.body, "slow, call 1 on b");
    assert_eq!(
        header(&fresh, "cache-status"),
        "streamgate; fwd=uri-miss; stored"
    );
    assert_eq!(header(&a.get("/slow/1").await, "x-cache"), "HIT");
}

/// The same race for a request that skips the lookup (`Cache-Control: no-cache`): its answer
/// replaces the entry only if no write came in between.
#[tokio::test]
async fn a_no_cache_response_fetched_before_a_write_is_not_stored_after_it() {
    let test = "no_cache_write_race";
    let Some(url) = redis_url(test) else { return };
    let prefix = unique_prefix(test);
    let gate = Arc::new(Semaphore::new(0));
    let a = Arc::new(Replica::new("a", &url, &prefix, gate.clone()));
    let b = Replica::new("b", &url, &prefix, gate.clone());
    // An entry exists (the path has a generation).
    gate.add_permits(1);
    b.get("/slow/1").await;

    let fetching = {
        let a = a.clone();
        tokio::spawn(async move {
            a.send("GET", "/slow/1", &[("cache-control", "no-cache")])
                .await
        })
    };
    let started = Instant::now();
    while a.calls() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the handler never ran"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(
        b.send("PUT", "/slow/1", &[]).await.status,
        StatusCode::NO_CONTENT
    );
    gate.add_permits(1);
    let old = fetching.await.unwrap();
    assert_eq!(old.body, "slow, call 1 on a");
    assert_eq!(
        header(&old, "cache-status"),
        "streamgate; fwd=request",
        "not stored"
    );
    // With no write in between, a no-cache answer replaces the entry.
    gate.add_permits(1);
    let refreshed = a
        .send("GET", "/slow/1", &[("cache-control", "no-cache")])
        .await;
    assert_eq!(
        header(&refreshed, "cache-status"),
        "streamgate; fwd=request; stored"
    );
    let hit = b.get("/slow/1").await;
    assert_eq!(
        (header(&hit, "x-cache"), hit.body.as_str()),
        ("HIT", refreshed.body.as_str())
    );
}

/// Requests to `replica` go on without the store, quickly, each failure counted.
async fn requests_succeed_without_the_store(replica: &Replica) {
    for call in 1..=2 {
        let started = Instant::now();
        let answer = replica.get("/items/1").await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.body,
            format!("item 1 for anonymous, call {call} on a")
        );
        assert_eq!(header(&answer, "cache-status"), "streamgate; fwd=uri-miss");
        assert_eq!(header(&answer, "x-cache"), "MISS");
    }
    assert_eq!(
        replica.send("POST", "/items/1", &[]).await.status,
        StatusCode::NO_CONTENT
    );
    let errors = |operation| {
        replica.counter(
            "streamgate_cache_store_errors_total",
            &[("operation", operation)],
        )
    };
    assert_eq!(errors("lookup"), 2);
    assert_eq!(errors("invalidate"), 1);
    assert_eq!(
        errors("store"),
        0,
        "a failed lookup is not followed by a store"
    );
    assert_eq!(
        replica.counter("streamgate_cache_lookups_total", &[("result", "miss")]),
        2
    );
    assert_eq!(
        replica.counter("streamgate_cache_invalidations_total", &[]),
        0
    );
    let help = "# HELP streamgate_cache_store_errors_total";
    assert!(replica.recorder.render().contains(help));
}

#[tokio::test]
async fn an_unreachable_redis_leaves_requests_to_the_handler_and_counts_errors() {
    let store = RedisCacheStore::builder("redis://127.0.0.1:1")
        .prefix(unique_prefix("unreachable"))
        .build()
        .unwrap();
    assert!(store.health().await.is_err());
    let replica = Replica::with_store("a", store, Arc::new(Semaphore::new(0)));
    requests_succeed_without_the_store(&replica).await;
}

#[tokio::test]
async fn a_redis_that_never_answers_delays_requests_by_the_timeout_at_most() {
    // Accepts connections and never reads from them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let store = RedisCacheStore::builder(format!("redis://{addr}"))
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let replica = Replica::with_store("a", store, Arc::new(Semaphore::new(0)));
    requests_succeed_without_the_store(&replica).await;
}
