//! `RateLimiter`: one policy checked from code (the seed's `Allow(identifier)`), on tokio's
//! paused clock.

mod common;

use std::{sync::Arc, time::Duration};

use common::{counter, recorder};
use streamgate_ratelimit::{
    Check, FailMode, MemoryStore, Quota, RateLimitKey, RateLimitStore, RateLimiter, StoreError,
    StoreFuture,
};

const REQUESTS: &str = "streamgate_ratelimit_requests_total";

#[tokio::test(start_paused = true)]
async fn the_burst_passes_then_one_more_after_each_interval() {
    let (metrics, snapshot) = recorder();
    // Burst 3, 2 per second: one unit back every 500 ms.
    let limiter = RateLimiter::builder("logins", Quota::per_second(2).burst(3))
        .metrics(metrics)
        .build()
        .unwrap();
    for _ in 0..3 {
        assert!(limiter.allow("ada@example.com").await);
    }
    assert!(!limiter.allow("ada@example.com").await);
    let refused = limiter
        .check(RateLimitKey::from_bytes(b"ada@example.com"), 1)
        .await
        .unwrap();
    assert!(!refused.is_allowed());
    assert_eq!(refused.retry_after(), Duration::from_millis(500));
    // Someone else has a bucket of their own.
    assert!(limiter.allow("grace@example.com").await);

    tokio::time::advance(Duration::from_millis(499)).await;
    assert!(!limiter.allow("ada@example.com").await);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(limiter.allow("ada@example.com").await);
    assert!(!limiter.allow("ada@example.com").await);

    let allowed = [("policy", "logins"), ("decision", "allowed")];
    let limited = [("policy", "logins"), ("decision", "limited")];
    assert_eq!(counter(&snapshot, REQUESTS, &allowed), 5);
    assert_eq!(counter(&snapshot, REQUESTS, &limited), 4);
}

#[tokio::test(start_paused = true)]
async fn a_cost_takes_that_many_units_and_one_above_the_burst_never_fits() {
    let limiter = RateLimiter::builder("exports", Quota::per_minute(6).burst(5))
        .build()
        .unwrap();
    let key = RateLimitKey::user("tenant-9");
    let first = limiter.check(key, 3).await.unwrap();
    assert!(first.is_allowed());
    assert_eq!(first.remaining(), 2);
    assert!(!limiter.check(key, 3).await.unwrap().is_allowed());
    assert!(limiter.check(key, 2).await.unwrap().is_allowed());
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(!limiter.check(key, 6).await.unwrap().is_allowed());
    // A cost of zero counts as one.
    let after_zero = limiter.check(key, 0).await.unwrap();
    assert_eq!(after_zero.remaining(), 4);
}

#[tokio::test]
async fn limiters_sharing_a_store_need_distinct_names_until_one_is_dropped() {
    let store: Arc<dyn RateLimitStore> = Arc::new(MemoryStore::builder().build());
    let quota = Quota::per_second(1).burst(1);
    let first = RateLimiter::builder("jobs", quota)
        .store(store.clone())
        .build()
        .unwrap();
    let error = RateLimiter::builder("jobs", quota)
        .store(store.clone())
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("jobs"), "{error}");
    drop(first);
    let again = RateLimiter::builder("jobs", quota)
        .store(store)
        .build()
        .unwrap();
    assert!(again.allow("worker-1").await);

    let error = RateLimiter::builder("bad \"name\"", quota)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("printable ASCII"), "{error}");
}

/// A store that is always down.
#[derive(Debug)]
struct DownStore;

impl RateLimitStore for DownStore {
    fn check(&self, _checks: &[Check]) -> StoreFuture {
        StoreFuture::ready(Err(StoreError::new("connection refused")))
    }

    fn record(&self, _checks: &[Check]) -> StoreFuture {
        StoreFuture::ready(Err(StoreError::new("connection refused")))
    }
}

#[tokio::test]
async fn a_failing_store_answers_by_the_fail_mode_and_is_counted() {
    let (metrics, snapshot) = recorder();
    let quota = Quota::per_second(1).burst(1);
    let open = RateLimiter::builder("open", quota)
        .store(Arc::new(DownStore))
        .metrics(metrics.clone())
        .build()
        .unwrap();
    let closed = RateLimiter::builder("closed", quota)
        .store(Arc::new(DownStore))
        .fail_mode(FailMode::Closed)
        .metrics(metrics)
        .build()
        .unwrap();
    assert!(open.allow("a").await);
    assert!(!closed.allow("a").await);
    assert!(!closed.allow("b").await);
    let error = open.check(RateLimitKey::global(), 1).await.unwrap_err();
    assert_eq!(error.to_string(), "connection refused");

    let errors = "streamgate_ratelimit_store_errors_total";
    assert_eq!(counter(&snapshot, errors, &[("outcome", "allowed")]), 1);
    assert_eq!(counter(&snapshot, errors, &[("outcome", "rejected")]), 2);
    let decided = [("policy", "open"), ("decision", "allowed")];
    assert_eq!(counter(&snapshot, REQUESTS, &decided), 0);
}
