//! [`RateLimiter`]: one policy checked from code (the seed's `Allow(identifier)`), for work the
//! layer does not see as a request of its own: a job, a message, a login attempt counted in a
//! handler, a call to a paid API.
//!
//! A limiter has the layer's stores: in memory by default (bounded, swept), or a shared store
//! such as Redis, so replicas share its quota. It counts its decisions in
//! `streamgate_ratelimit_requests_total{policy,decision}` like a policy of the layer.

use std::{fmt, sync::Arc, time::Duration};

use metrics::Counter;
use streamgate_core::{LogLimiter, MetricsHandle};

use crate::{
    Check, Decision, FailMode, Gcra, MemoryStore, PolicyId, Quota, RateLimitConfigError,
    RateLimitKey, RateLimitStore, StoreError,
    layer::{REQUESTS, STORE_ERRORS},
};

/// Builds a [`RateLimiter`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RateLimiterBuilder {
    name: String,
    quota: Quota,
    store: Option<Arc<dyn RateLimitStore>>,
    max_keys: usize,
    metrics: MetricsHandle,
    fail_mode: FailMode,
}

impl RateLimiterBuilder {
    /// Decide on `store` (a shared Redis store, say) instead of an in-memory store of its own.
    /// The limiter's name names its buckets there, as a policy's name does.
    pub fn store(mut self, store: Arc<dyn RateLimitStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Cap on keys in the in-memory store (default 100,000).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Where decisions are counted (default: the global recorder).
    pub fn metrics(mut self, metrics: MetricsHandle) -> Self {
        self.metrics = metrics;
        self
    }

    /// What [`allow`](RateLimiter::allow) answers when the store cannot decide: `Open` (the
    /// default) allows, `Closed` refuses. [`check`](RateLimiter::check) returns the error.
    pub fn fail_mode(mut self, mode: FailMode) -> Self {
        self.fail_mode = mode;
        self
    }

    /// Builds the limiter.
    ///
    /// # Errors
    /// When the name is not 1-64 printable ASCII characters without `"` or `\`, the in-memory
    /// store's cap is zero, or the store already has a policy of this name.
    pub fn build(self) -> Result<RateLimiter, RateLimitConfigError> {
        if !crate::Policy::valid_name(&self.name) {
            return Err(RateLimitConfigError::new(format!(
                "rate limiter name {:?} must be 1-64 printable ASCII characters without '\"' or '\\'",
                self.name
            )));
        }
        if self.store.is_none() && self.max_keys == 0 {
            return Err(RateLimitConfigError::new(
                "the in-memory store needs max_keys > 0",
            ));
        }
        let store = self.store.unwrap_or_else(|| {
            Arc::new(
                MemoryStore::builder()
                    .max_keys(self.max_keys)
                    .metrics(self.metrics.clone())
                    .build(),
            )
        });
        let id = PolicyId::next();
        store
            .register_policy(id, &self.name, &self.quota)
            .map_err(|e| RateLimitConfigError::new(e.to_string()))?;
        self.metrics.describe_counter(
            REQUESTS,
            "Requests decided by a rate-limit policy, by decision (allowed, limited, shadow).",
        );
        let counter = |decision: &str| {
            self.metrics
                .counter(REQUESTS, &[("policy", &self.name), ("decision", decision)])
        };
        let failed = |outcome: &str| self.metrics.counter(STORE_ERRORS, &[("outcome", outcome)]);
        Ok(RateLimiter {
            inner: Arc::new(Inner {
                id,
                gcra: self.quota.gcra(),
                quota: self.quota,
                allowed: counter("allowed"),
                limited: counter("limited"),
                failed: match self.fail_mode {
                    FailMode::Closed => failed("rejected"),
                    _ => failed("allowed"),
                },
                fail_mode: self.fail_mode,
                log_limit: LogLimiter::new(Duration::from_secs(1)),
                name: self.name.into(),
                store,
            }),
        })
    }
}

struct Inner {
    name: Arc<str>,
    id: PolicyId,
    quota: Quota,
    gcra: Gcra,
    store: Arc<dyn RateLimitStore>,
    allowed: Counter,
    limited: Counter,
    failed: Counter,
    fail_mode: FailMode,
    log_limit: LogLimiter,
}

impl Drop for Inner {
    /// Frees the name in the store, so a rebuilt limiter may use it again.
    fn drop(&mut self) {
        self.store.unregister_policy(self.id);
    }
}

/// One rate-limit policy checked from code; cheap to clone (clones share the buckets).
///
/// ```
/// use streamgate_ratelimit::{Quota, RateLimitKey, RateLimiter};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let uploads = RateLimiter::builder("uploads-per-user", Quota::per_minute(10).burst(2))
///     .build()
///     .unwrap();
/// assert!(uploads.allow("user-42").await);
/// assert!(uploads.allow("user-42").await);
/// assert!(!uploads.allow("user-42").await); // the burst is spent
/// assert!(uploads.allow("user-7").await); // another user's bucket
///
/// // `allow(id)` is `check(RateLimitKey::from_bytes(id), 1)`, which also tells when to retry.
/// let decision = uploads.check(RateLimitKey::from_bytes(b"user-42"), 1).await.unwrap();
/// assert!(!decision.is_allowed());
/// assert!(decision.retry_after().as_secs_f64() > 5.9); // one upload back every 6 s
/// # }
/// ```
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.inner.name)
            .field("quota", &self.inner.quota)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter named `name` (its metric label and, in a shared store, its buckets' name)
    /// allowing `quota` per key.
    pub fn builder(name: impl Into<String>, quota: Quota) -> RateLimiterBuilder {
        RateLimiterBuilder {
            name: name.into(),
            quota,
            store: None,
            max_keys: 100_000,
            metrics: MetricsHandle::global(),
            fail_mode: FailMode::Open,
        }
    }

    /// The limiter's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The quota each key gets.
    #[must_use]
    pub fn quota(&self) -> Quota {
        self.inner.quota
    }

    /// Takes `cost` units (at least 1) from `key`'s bucket when they fit, and says what is left
    /// or how long until they would fit. A cost above the burst never fits.
    ///
    /// # Errors
    /// When the store cannot decide (a shared store unreachable or too slow); nothing is
    /// counted as allowed or limited then.
    pub async fn check(&self, key: RateLimitKey, cost: u32) -> Result<Decision, StoreError> {
        let inner = &self.inner;
        let checks = [Check::consume(inner.id, key, inner.gcra, cost.max(1))];
        let decisions = inner.store.check(&checks).await?;
        let decision = decisions
            .first()
            .copied()
            .ok_or_else(|| StoreError::new("the store returned no decision"))?;
        if decision.is_allowed() {
            inner.allowed.increment(1);
        } else {
            inner.limited.increment(1);
        }
        Ok(decision)
    }

    /// The seed's `Allow(identifier)`: whether one more unit for `identifier` (a user id, a
    /// tenant, an address; hashed, never stored) fits now. It takes from the bucket of
    /// `RateLimitKey::from_bytes(identifier.as_bytes())`, the key [`check`](Self::check) takes. When the store cannot decide, the
    /// fail mode answers (by default: allowed), counted in
    /// `streamgate_ratelimit_store_errors_total` and logged at most once a second.
    pub async fn allow(&self, identifier: &str) -> bool {
        match self
            .check(RateLimitKey::from_bytes(identifier.as_bytes()), 1)
            .await
        {
            Ok(decision) => decision.is_allowed(),
            Err(error) => {
                let inner = &self.inner;
                inner.failed.increment(1);
                if inner.log_limit.allow() {
                    tracing::warn!(limiter = %inner.name, %error, "rate-limit store failed");
                }
                !matches!(inner.fail_mode, FailMode::Closed)
            }
        }
    }
}
