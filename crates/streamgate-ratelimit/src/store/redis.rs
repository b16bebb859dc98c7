//! The shared store for several replicas: GCRA in one Lua script on Redis (feature `redis`).
//!
//! ```no_run
//! use std::{sync::Arc, time::Duration};
//! use streamgate_ratelimit::{MemoryStore, Policy, Quota, RateLimitLayer, RedisStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder("redis://127.0.0.1:6379")
//!     .timeout(Duration::from_millis(50))
//!     // When Redis is down or slow, decide on this replica's own state.
//!     .fallback(MemoryStore::default())
//!     .build()?;
//! let layer = RateLimitLayer::builder()
//!     .policy(Policy::new("per-ip", Quota::per_second(100).burst(1000)))
//!     .store(Arc::new(store))
//!     .build()?;
//! # let _ = layer; Ok(()) }
//! ```
//!
//! See [`RedisStore`] for how it decides and what it does when Redis fails.

use std::{fmt, sync::Arc, time::Duration};

use metrics::Counter;
use redis::Script;
use streamgate_core::{LogLimiter, MetricsHandle, redis::RedisConnection};

use super::{
    Check, CheckMode, Decision, Decisions, MemoryStore, PolicyId, PolicyNames, RateLimitStore,
    StoreError, StoreFuture, StoreResult,
};
use crate::Quota;

const STORE_ERRORS: &str = "streamgate_ratelimit_store_errors_total";

/// Builds a [`RedisStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
    fallback: Option<MemoryStore>,
    metrics: MetricsHandle,
}

impl RedisStoreBuilder {
    /// The prefix of every key (default `streamgate:ratelimit`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The bound on each call, connecting included (default 50 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Decide on `store` when Redis fails or is too slow, instead of returning the error.
    pub fn fallback(mut self, store: MemoryStore) -> Self {
        self.fallback = Some(store);
        self
    }

    /// Where the store counts fallback decisions (default: the global recorder).
    pub fn metrics(mut self, metrics: MetricsHandle) -> Self {
        self.metrics = metrics;
        self
    }

    /// Builds the store. It connects on its first call (or [`RedisStore::health`]).
    ///
    /// # Errors
    /// When the URL is not a Redis URL.
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let connection = RedisConnection::open(&self.url, self.timeout)?;
        self.metrics.describe_counter(
            STORE_ERRORS,
            "Rate-limit store failures, by what was done (allowed, rejected, fallback).",
        );
        Ok(RedisStore {
            inner: Arc::new(Inner {
                connection,
                script: Script::new(include_str!("gcra.lua")),
                prefix: self.prefix,
                fallback: self.fallback,
                names: PolicyNames::default(),
                log_limit: LogLimiter::new(Duration::from_secs(1)),
                fallback_decisions: self
                    .metrics
                    .counter(STORE_ERRORS, &[("outcome", "fallback")]),
            }),
        })
    }
}

struct Inner {
    connection: RedisConnection,
    script: Script,
    prefix: String,
    fallback: Option<MemoryStore>,
    names: PolicyNames,
    log_limit: LogLimiter,
    fallback_decisions: Counter,
}

/// A [`RateLimitStore`] on Redis, shared by replicas.
///
/// One script call decides a request's whole batch atomically on the Redis clock (`TIME`), so
/// replicas' clocks do not matter and several replicas admit one quota between them. A bucket's
/// key expires when the bucket is full again. Keys are `<prefix>:<policy>:<key>`, where the key
/// is the hex form of [`RateLimitKey`](crate::RateLimitKey) (hashed for users and credentials).
/// A policy name therefore names buckets: replicas share a policy's buckets by using the same
/// name, and layers of one process sharing a store must use distinct names (registering a name
/// already registered under another policy is refused, see
/// [`RateLimitStore::register_policy`]).
/// Times are kept in microseconds: quotas faster than one unit per microsecond are rounded to it.
///
/// Every call (connecting included) is bounded by the timeout (default 50 ms). On an error or
/// timeout the store decides on its fallback [`MemoryStore`] when it has one (counted as
/// `streamgate_ratelimit_store_errors_total{outcome="fallback"}`), else it returns the error and
/// the layer's [`FailMode`](crate::FailMode) allows or rejects (counted as `allowed` or
/// `rejected`). A broken connection is dropped and made again on a later call, at most every
/// 100 ms, so shared limiting resumes when Redis is back.
///
/// Cheap to clone; clones share one multiplexed connection.
///
/// # Redis Cluster is not supported
///
/// The store speaks to the one server its URL names. A request's script touches one key per policy, and those keys (different
/// policy names, and IP- and user-based keys) hash to different cluster slots, which Redis
/// Cluster refuses in one script (`CROSSSLOT`); the connection does not follow cluster redirects
/// either.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.connection.timeout())
            .field("fallback", &self.inner.fallback.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A builder for the server at `url` (`redis://127.0.0.1:6379`).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: "streamgate:ratelimit".to_owned(),
            timeout: Duration::from_millis(50),
            fallback: None,
            metrics: MetricsHandle::global(),
        }
    }

    /// Pings the server within the timeout (readiness).
    ///
    /// # Errors
    /// When the server cannot be reached or does not answer in time.
    pub async fn health(&self) -> Result<(), StoreError> {
        self.inner.connection.ping().await
    }

    fn call(&self, mode: &'static str, checks: &[Check]) -> StoreFuture {
        let inner = self.inner.clone();
        let keys = match inner.keys(checks) {
            Ok(keys) => keys,
            Err(error) => return StoreFuture::ready(Err(error)),
        };
        let checks: Vec<Check> = checks.to_vec();
        StoreFuture::boxed(async move {
            let result = inner
                .connection
                .bounded(inner.run(mode, &keys, &checks))
                .await;
            match (result, &inner.fallback) {
                (Ok(decisions), _) => Ok(decisions),
                (Err(error), Some(fallback)) => {
                    inner.fallback_decisions.increment(1);
                    inner.log(&error, "deciding on the local fallback store");
                    let mut local = if mode == "record" {
                        fallback.record(&checks)
                    } else {
                        fallback.check(&checks)
                    };
                    local
                        .take_ready()
                        .unwrap_or_else(|| Err(StoreError::new("fallback store did not answer")))
                }
                (Err(error), None) => {
                    inner.log(&error, "returning the error to the layer");
                    Err(error)
                }
            }
        })
    }
}

impl Inner {
    /// Logs at most once a second.
    fn log(&self, error: &StoreError, action: &str) {
        if self.log_limit.allow() {
            tracing::warn!(%error, "rate-limit Redis store failed; {action} (logged at most once a second)");
        }
    }

    fn keys(&self, checks: &[Check]) -> Result<Vec<String>, StoreError> {
        checks
            .iter()
            .map(|check| {
                let name = self.names.name(check.policy()).ok_or_else(|| {
                    StoreError::new("a policy was not registered with the Redis store")
                })?;
                Ok(format!("{}:{}:{}", self.prefix, name, check.key()))
            })
            .collect()
    }

    async fn run(&self, mode: &str, keys: &[String], checks: &[Check]) -> StoreResult {
        let mut connection = self.connection.get().await?;
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(mode);
        for (key, check) in keys.iter().zip(checks) {
            let gcra = check.gcra();
            invocation
                .key(key)
                .arg((gcra.interval_nanos() / 1000).max(1))
                .arg(gcra.burst())
                .arg(check.cost())
                .arg(u8::from(check.mode() == CheckMode::Peek));
        }
        let values: Vec<i64> = self
            .connection
            .settle(invocation.invoke_async(&mut connection).await)?;
        if values.len() != checks.len() * 4 {
            return Err(StoreError::new(
                "unexpected answer from the rate-limit script",
            ));
        }
        let micros = |value: i64| Duration::from_micros(u64::try_from(value).unwrap_or(0));
        Ok(values
            .chunks_exact(4)
            .map(|row| {
                let remaining = u64::try_from(row[1]).unwrap_or(0);
                if row[0] == 1 {
                    Decision::allowed(remaining, micros(row[2]))
                } else {
                    Decision::limited(micros(row[3]), micros(row[2]), remaining)
                }
            })
            .collect::<Decisions>())
    }
}

impl RateLimitStore for RedisStore {
    fn health(&self) -> streamgate_core::store::StoreFuture<()> {
        let store = self.clone();
        streamgate_core::store::StoreFuture::boxed(async move { store.health().await })
    }

    fn register_policy(&self, id: PolicyId, name: &str, quota: &Quota) -> Result<(), StoreError> {
        self.inner.names.register(id, name)?;
        if let Some(fallback) = &self.inner.fallback
            && let Err(error) = fallback.register_policy(id, name, quota)
        {
            self.inner.names.unregister(id);
            return Err(error);
        }
        Ok(())
    }

    fn unregister_policy(&self, id: PolicyId) {
        self.inner.names.unregister(id);
        if let Some(fallback) = &self.inner.fallback {
            fallback.unregister_policy(id);
        }
    }

    fn check(&self, checks: &[Check]) -> StoreFuture {
        self.call("check", checks)
    }

    fn record(&self, checks: &[Check]) -> StoreFuture {
        self.call("record", checks)
    }
}
