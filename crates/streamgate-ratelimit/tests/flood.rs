//! A flood of 1,000,000 distinct client addresses against a store capped at 100,000 keys.
//!
//! The flood goes straight to the store the layer uses (one check per request, as the layer
//! makes it), so that the test stays quick in a debug build; the client that was limited before
//! the flood is checked through the real layer while the flood runs.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::Duration,
};

use axum::{Router, routing::get};
use common::{counter, gauge, get_from, recorder};
use http::StatusCode;
use streamgate_ratelimit::{
    Check, MemoryStore, Policy, Quota, RateLimitKey, RateLimitLayer, RateLimitStore,
};
use tower::ServiceExt;

const CAP: usize = 100_000;
const FLOOD: u32 = 1_000_000;
const ATTACKER: &str = "203.0.113.66";

#[tokio::test(start_paused = true)]
async fn a_million_new_clients_never_exceed_the_cap_and_the_limited_client_stays_limited() {
    let (metrics, snapshot) = recorder();
    let store = MemoryStore::builder()
        .max_keys(CAP)
        .sweep_interval(Duration::from_millis(500))
        .metrics(metrics.clone())
        .build();
    let quota = Quota::per_minute(5);
    let layer = RateLimitLayer::builder()
        .policy(Policy::new("per-ip", quota))
        .store(Arc::new(store.clone()))
        .metrics(metrics)
        .build()
        .unwrap();
    let policy = layer.policy_id("per-ip").unwrap();
    let app = Router::new()
        .route("/items/{id}", get(|| async { "item" }))
        .layer(layer);

    for _ in 0..5 {
        let ok = app
            .clone()
            .oneshot(get_from("/items/1", ATTACKER))
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
    }
    let limited = app
        .clone()
        .oneshot(get_from("/items/1", ATTACKER))
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);

    let mut most_tracked = 0;
    let mut flood_allowed = 0u64;
    for n in 0..FLOOD {
        // 11.0.0.0 onwards: a million distinct addresses.
        let ip = IpAddr::V4(Ipv4Addr::from(0x0B00_0000 + n));
        let check = Check::consume(policy, RateLimitKey::from_ip(ip, 64), quota.gcra(), 1);
        let decision = store.check(&[check]).take_ready().unwrap().unwrap()[0];
        flood_allowed += u64::from(decision.is_allowed());
        if n % 50_000 == 0 {
            most_tracked = most_tracked.max(store.len());
            assert!(store.len() <= CAP, "{} keys tracked", store.len());
            // The flood lasts 2 seconds: the sweep runs (and finds nothing idle yet).
            tokio::time::advance(Duration::from_millis(100)).await;
            let still = app
                .clone()
                .oneshot(get_from("/items/1", ATTACKER))
                .await
                .unwrap();
            assert_eq!(
                still.status(),
                StatusCode::TOO_MANY_REQUESTS,
                "after {n} flood requests"
            );
        }
    }
    assert_eq!(
        store.len(),
        CAP,
        "the table filled up to its cap and no further"
    );
    assert_eq!(most_tracked.max(store.len()), CAP);
    assert_eq!(
        gauge(&snapshot, "streamgate_ratelimit_tracked_keys"),
        Some(CAP as f64)
    );
    // The attacker holds one slot; the keys that did not fit shared one bucket of 5: they did
    // not escape the limit.
    assert_eq!(flood_allowed, CAP as u64 - 1 + 5);
    let overflow = counter(&snapshot, "streamgate_ratelimit_overflow_total", &[]);
    assert!(overflow >= u64::from(FLOOD) - CAP as u64, "{overflow}");

    let bytes_per_key = store.table_bytes() as f64 / store.len() as f64;
    println!("in-memory store at its cap of {CAP} keys: {bytes_per_key:.1} bytes per key");
    assert!(bytes_per_key <= 64.0, "{bytes_per_key} bytes per key");

    // Once the flood's buckets are full again (12 s for one request), the sweep drops them.
    tokio::time::advance(Duration::from_secs(13)).await;
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
    assert!(
        store.len() <= 1,
        "{} keys left after the sweep",
        store.len()
    );
    assert!(
        counter(
            &snapshot,
            "streamgate_ratelimit_idle_keys_removed_total",
            &[]
        ) >= CAP as u64 - 1
    );
}
