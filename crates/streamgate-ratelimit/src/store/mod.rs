//! Where rate-limit state lives: the [`RateLimitStore`] trait and its in-memory implementation.
//!
//! ```
//! use streamgate_ratelimit::{Check, MemoryStore, PolicyId, Quota, RateLimitKey, RateLimitStore};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = MemoryStore::builder().max_keys(10_000).build();
//! let policy = PolicyId::next();
//! let key = RateLimitKey::from_ip("203.0.113.7".parse().unwrap(), 64);
//! let quota = Quota::per_second(1).burst(2);
//! let mut allowed = 0;
//! for _ in 0..3 {
//!     let decisions = store.check(&[Check::consume(policy, key, quota.gcra(), 1)]).await.unwrap();
//!     allowed += usize::from(decisions[0].is_allowed());
//! }
//! assert_eq!(allowed, 2);
//! # }
//! ```
//!
//! The layer hands a store one batch of [`Check`]s per request (one per policy that applies) and
//! reads one [`Decision`] per check. A store applies the batch all-or-nothing: when one check is
//! limited, the others take nothing. The in-memory store answers at once (a ready
//! [`StoreFuture`], no allocation); a networked store (Redis) answers later, and the layer waits.

mod memory;
#[cfg(feature = "redis")]
mod redis;
mod table;

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use smallvec::SmallVec;

use crate::{Gcra, RateLimitKey};

/// A store could not decide (a shared store unreachable or too slow). The layer then fails
/// open or closed as configured, and counts it.
#[doc(inline)]
pub use streamgate_core::store::StoreError;

#[cfg(feature = "redis")]
#[doc(inline)]
pub use self::redis::{RedisStore, RedisStoreBuilder};
#[doc(inline)]
pub use memory::{MemoryStore, MemoryStoreBuilder};

/// A batch of decisions, one per [`Check`], in the same order.
pub type Decisions = SmallVec<[Decision; 2]>;

/// Where rate-limit state lives: in process ([`MemoryStore`]) or shared by replicas (Redis).
///
/// Object safe: the layer holds an `Arc<dyn RateLimitStore>`, so a store is chosen at run time
/// without changing the layer's type.
pub trait RateLimitStore: Send + Sync + fmt::Debug + 'static {
    /// Tells the store a policy's name and quota before its first check (a shared store names
    /// its keys after the policy). The default does nothing.
    ///
    /// A name is a policy's identity in the store: layers that share a store must not define
    /// the same name twice, or their buckets would be confused (on Redis, where keys are named
    /// after the policy, both would charge one bucket). The stores of this crate refuse a name
    /// registered under another id until that id is unregistered; registering the same id again
    /// is allowed.
    ///
    /// # Errors
    /// When the store refuses the policy (its name is already registered under another id).
    fn register_policy(
        &self,
        id: PolicyId,
        name: &str,
        quota: &crate::Quota,
    ) -> Result<(), StoreError> {
        let _ = (id, name, quota);
        Ok(())
    }

    /// Forgets a policy registered with [`register_policy`](Self::register_policy), freeing its
    /// name for another layer (the layer does this when it and all its services are dropped).
    /// The default does nothing.
    fn unregister_policy(&self, id: PolicyId) {
        let _ = id;
    }

    /// Decides every check of one request, all-or-nothing: checks in
    /// [`CheckMode::Consume`] take their cost only when no check of the batch is limited.
    fn check(&self, checks: &[Check]) -> StoreFuture;

    /// Charges responses that matched an outcome-based policy (after the response, whether or
    /// not the units fit). The response is already sent: the layer counts and logs an error.
    fn record(&self, checks: &[Check]) -> StoreFuture;

    /// How many keys the store tracks now, when it can say cheaply (a shared store may not).
    fn tracked_keys(&self) -> Option<usize> {
        None
    }

    /// Whether the store can decide now, for a readiness probe: a shared store asks its server.
    /// The default (a store in process) is always ready.
    fn health(&self) -> streamgate_core::store::StoreFuture<()> {
        streamgate_core::store::StoreFuture::ready(Ok(()))
    }
}

/// The policies registered with a store: their names, unique within the store.
#[derive(Debug, Default)]
pub(crate) struct PolicyNames(Mutex<HashMap<PolicyId, Arc<str>>>);

impl PolicyNames {
    /// Records `name` for `id`, refusing a name already registered under another id.
    pub(crate) fn register(&self, id: PolicyId, name: &str) -> Result<(), StoreError> {
        let mut names = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if names
            .iter()
            .any(|(other, existing)| *other != id && &**existing == name)
        {
            return Err(StoreError::new(format!(
                "rate-limit policy {name:?} is already registered with this store by another \
                 layer; layers sharing a store need distinct policy names, or they would share \
                 buckets"
            )));
        }
        names.insert(id, name.into());
        Ok(())
    }

    pub(crate) fn unregister(&self, id: PolicyId) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// The name registered for `id`, if any.
    #[cfg(feature = "redis")]
    pub(crate) fn name(&self, id: PolicyId) -> Option<Arc<str>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }
}

/// Identifies a policy within a store. Ids are unique in the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyId(u32);

impl PolicyId {
    /// A fresh id, never handed out before in this process.
    ///
    /// # Panics
    /// After 65,535 ids (policies are created when layers are built, not per request).
    #[must_use]
    pub fn next() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(
            id <= u32::from(u16::MAX),
            "more than 65535 rate-limit policies created in one process"
        );
        Self(id)
    }

    /// The id as a number.
    #[must_use]
    pub fn get(self) -> u32 {
        self.0
    }
}

/// What a check does to the key's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckMode {
    /// Take `cost` units if they fit.
    Consume,
    /// Only say whether `cost` units would fit (outcome-based policies, charged afterwards).
    Peek,
}

/// One policy's question about one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    policy: PolicyId,
    key: RateLimitKey,
    gcra: Gcra,
    cost: u32,
    mode: CheckMode,
}

impl Check {
    /// Take `cost` units of `key`'s bucket under `policy`, if they fit.
    #[must_use]
    pub fn consume(policy: PolicyId, key: RateLimitKey, gcra: Gcra, cost: u32) -> Self {
        Self {
            policy,
            key,
            gcra,
            cost,
            mode: CheckMode::Consume,
        }
    }

    /// Whether `cost` units would fit, taking nothing.
    #[must_use]
    pub fn peek(policy: PolicyId, key: RateLimitKey, gcra: Gcra, cost: u32) -> Self {
        Self {
            mode: CheckMode::Peek,
            ..Self::consume(policy, key, gcra, cost)
        }
    }

    /// The policy.
    #[must_use]
    pub fn policy(&self) -> PolicyId {
        self.policy
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> RateLimitKey {
        self.key
    }

    /// The quota's GCRA parameters.
    #[must_use]
    pub fn gcra(&self) -> Gcra {
        self.gcra
    }

    /// The request's cost in quota units.
    #[must_use]
    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// Consume or peek.
    #[must_use]
    pub fn mode(&self) -> CheckMode {
        self.mode
    }
}

/// A store's answer to one [`Check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    allowed: bool,
    remaining: u64,
    reset_nanos: u64,
    retry_after_nanos: u64,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Decision {
    /// The request fits; `remaining` units are left and the bucket is full again after `reset`.
    #[must_use]
    pub fn allowed(remaining: u64, reset: Duration) -> Self {
        Self {
            allowed: true,
            remaining,
            reset_nanos: nanos(reset),
            retry_after_nanos: 0,
        }
    }

    /// The request does not fit; it would after `retry_after`. `remaining` units are left (fewer
    /// than the request costs) and the bucket is full again after `reset`.
    #[must_use]
    pub fn limited(retry_after: Duration, reset: Duration, remaining: u64) -> Self {
        Self {
            allowed: false,
            remaining,
            reset_nanos: nanos(reset),
            retry_after_nanos: nanos(retry_after),
        }
    }

    /// Whether the request fits.
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// Units left after this decision.
    #[must_use]
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Time until the bucket is full again.
    #[must_use]
    pub fn reset(&self) -> Duration {
        Duration::from_nanos(self.reset_nanos)
    }

    /// Time until a limited request would fit (zero when allowed).
    #[must_use]
    pub fn retry_after(&self) -> Duration {
        Duration::from_nanos(self.retry_after_nanos)
    }
}

/// The result of a store call.
pub type StoreResult = Result<Decisions, StoreError>;

/// The future a store returns: ready at once (in-memory) or boxed (networked).
pub type StoreFuture = streamgate_core::store::StoreFuture<Decisions>;
