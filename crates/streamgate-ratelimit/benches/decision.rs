//! One rate-limit decision with 1,000,000 keys in the in-memory store, next to governor's own
//! keyed limiter at the same size; bytes per key; request latency while the sweep runs.
//!
//! - `memory_store_decision_1m_keys_same_key`: one client sending again and again (its bucket
//!   stays in the cache): what the decision itself costs, clock read included.
//! - `memory_store_decision_1m_keys_random_key`: a different client each time, in a scattered
//!   order over all 1M keys: the table (about 30 MB) is larger than the cache, so this one is
//!   bound by memory latency (one cache line, one round trip, when the key sits in its home
//!   bucket).
//!
//! Criterion's point estimate is a mean; medians are in
//! `target/criterion/<bench>/new/estimates.json`.
//!
//! Run: `taskset -c 0 cargo bench -p streamgate-ratelimit --bench decision -- --warm-up-time 1 --measurement-time 3`

use std::{
    hint::black_box,
    net::{IpAddr, Ipv4Addr},
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use criterion::{Criterion, criterion_group, criterion_main};
use streamgate_ratelimit::{Check, MemoryStore, PolicyId, Quota, RateLimitKey, RateLimitStore};

const KEYS: u32 = 1_000_000;

fn key(n: u32) -> RateLimitKey {
    RateLimitKey::from_ip(IpAddr::V4(Ipv4Addr::from(0x0B00_0000 + n)), 64)
}

/// Visits every key once in a scattered order (a multiplicative step coprime with KEYS).
fn scattered(i: u64) -> u32 {
    ((i.wrapping_mul(7_919)) % u64::from(KEYS)) as u32
}

fn filled_store(policy: PolicyId, quota: Quota) -> MemoryStore {
    // The cap is split evenly over the shards, and hashing does not fill them evenly: leave 5%
    // headroom so that all 1M keys are tracked.
    let store = MemoryStore::builder()
        .max_keys(KEYS as usize * 105 / 100)
        .build();
    for n in 0..KEYS {
        let _ = store
            .check(&[Check::consume(policy, key(n), quota.gcra(), 1)])
            .take_ready();
    }
    assert_eq!(store.len(), KEYS as usize);
    store
}

fn decision(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = runtime.enter();
    // Keys stay live (not idle) for 864 s, so the sweep finds nothing to drop and visits
    // every key each time; 1000 is enough burst that no decision here is a rejection.
    let quota = Quota::per_day(100).burst(1000);
    let policy = PolicyId::next();
    let store = filled_store(policy, quota);
    println!(
        "memory store with {} keys: {:.1} bytes per key ({} table bytes)",
        store.len(),
        store.table_bytes() as f64 / store.len() as f64,
        store.table_bytes()
    );

    let gcra = quota.gcra();
    let hot = key(123_456);
    // What one read of the clock costs on this machine (part of every decision).
    c.bench_function("tokio_instant_now", |b| {
        b.iter(|| black_box(tokio::time::Instant::now()));
    });
    c.bench_function("memory_store_decision_1m_keys_same_key", |b| {
        b.iter(|| {
            let check = Check::consume(policy, black_box(hot), gcra, 1);
            black_box(store.check(black_box(&[check])).take_ready())
        });
    });
    let mut i = 0u64;
    c.bench_function("memory_store_decision_1m_keys_random_key", |b| {
        b.iter(|| {
            i += 1;
            let check = Check::consume(policy, key(scattered(i)), gcra, 1);
            black_box(store.check(black_box(&[check])).take_ready())
        });
    });

    let governor = governor::RateLimiter::keyed(
        governor::Quota::with_period(quota.replenish_interval())
            .unwrap()
            .allow_burst(NonZeroU32::new(1000).unwrap()),
    );
    for n in 0..KEYS {
        let _ = governor.check_key(&key(n));
    }
    c.bench_function("governor_keyed_check_1m_keys_same_key", |b| {
        b.iter(|| black_box(governor.check_key(black_box(&hot))));
    });
    let mut j = 0u64;
    c.bench_function("governor_keyed_check_1m_keys_random_key", |b| {
        b.iter(|| {
            j += 1;
            black_box(governor.check_key(black_box(&key(scattered(j)))))
        });
    });

    sweep_latency(&store, policy, quota);
}

/// Decision latency percentiles with and without a sweep over the 1M keys running on another
/// thread (criterion reports means and medians, not p99).
fn sweep_latency(store: &MemoryStore, policy: PolicyId, quota: Quota) {
    const SAMPLES: u64 = 400_000;
    let gcra = quota.gcra();
    let measure = |offset: u64| {
        let mut nanos: Vec<u64> = (0..SAMPLES)
            .map(|i| {
                let check = Check::consume(policy, key(scattered(i + offset)), gcra, 1);
                let start = Instant::now();
                black_box(store.check(&[check]).take_ready());
                start.elapsed().as_nanos() as u64
            })
            .collect();
        nanos.sort_unstable();
        let at = |q: f64| nanos[((nanos.len() as f64 - 1.0) * q) as usize];
        (at(0.5), at(0.99), at(0.999), nanos[nanos.len() - 1])
    };
    let (p50, p99, p999, max) = measure(0);
    println!(
        "decision latency, no sweep:        p50 {p50} ns, p99 {p99} ns, p99.9 {p999} ns, max {max} ns"
    );

    let running = Arc::new(AtomicBool::new(true));
    let sweeper = {
        let store = store.clone();
        let running = running.clone();
        std::thread::spawn(move || {
            let mut sweeps = 0u32;
            let start = Instant::now();
            while running.load(Ordering::Relaxed) {
                black_box(store.sweep());
                sweeps += 1;
            }
            (sweeps, start.elapsed())
        })
    };
    let (p50, p99, p999, max) = measure(SAMPLES);
    running.store(false, Ordering::Relaxed);
    let (sweeps, elapsed) = sweeper.join().unwrap();
    println!(
        "decision latency, sweeping 1M keys: p50 {p50} ns, p99 {p99} ns, p99.9 {p999} ns, max {max} ns \
         ({sweeps} full sweeps, {:.1} ms each)",
        elapsed.as_secs_f64() * 1e3 / f64::from(sweeps.max(1))
    );
}

criterion_group!(benches, decision);
criterion_main!(benches);
