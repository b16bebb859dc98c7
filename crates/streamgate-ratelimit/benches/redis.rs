//! Redis-backed decisions: latency percentiles of single decisions and throughput with 64
//! concurrent clients, against `STREAMGATE_TEST_REDIS_URL` (skipped when unset).
//!
//! Run: `STREAMGATE_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench -p streamgate-ratelimit --features redis --bench redis`

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::{Duration, Instant},
};

use streamgate_ratelimit::{Check, PolicyId, Quota, RateLimitKey, RateLimitStore, RedisStore};

const CONCURRENCY: usize = 64;
const PER_CLIENT: usize = 500;

fn main() {
    let Ok(url) = std::env::var("STREAMGATE_TEST_REDIS_URL") else {
        println!(
            "SKIPPED redis bench: set STREAMGATE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379)"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = Arc::new(
            RedisStore::builder(url)
                .prefix(format!("streamgate-bench:{}", std::process::id()))
                .timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
        );
        let policy = PolicyId::next();
        let quota = Quota::per_second(1_000_000).burst(1_000_000);
        store.register_policy(policy, "bench", &quota).unwrap();
        store.health().await.expect("Redis answers PING");

        let check = move |n: u32| {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0B00_0000 + n));
            [Check::consume(
                policy,
                RateLimitKey::from_ip(ip, 64),
                quota.gcra(),
                1,
            )]
        };
        // One client: latency of each decision.
        let mut latencies: Vec<Duration> = Vec::with_capacity(5_000);
        for n in 0..5_000 {
            let start = Instant::now();
            store.check(&check(n % 1000)).await.unwrap();
            latencies.push(start.elapsed());
        }
        report("1 client", &mut latencies, None);

        // 64 concurrent clients sharing the one multiplexed connection.
        let start = Instant::now();
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|client| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(PER_CLIENT);
                    for n in 0..PER_CLIENT {
                        let started = Instant::now();
                        store
                            .check(&check((client * PER_CLIENT + n) as u32 % 10_000))
                            .await
                            .unwrap();
                        latencies.push(started.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::with_capacity(CONCURRENCY * PER_CLIENT);
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        let elapsed = start.elapsed();
        report(&format!("{CONCURRENCY} clients"), &mut all, Some(elapsed));
    });
}

fn report(label: &str, latencies: &mut [Duration], elapsed: Option<Duration>) {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    let throughput = elapsed
        .map(|elapsed| {
            format!(
                ", {:.0} decisions/s",
                latencies.len() as f64 / elapsed.as_secs_f64()
            )
        })
        .unwrap_or_default();
    println!(
        "redis decision, {label}: p50 {:?}, p99 {:?}, max {:?}{throughput}",
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}
