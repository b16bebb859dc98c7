//! The in-memory store: GCRA state per key in a sharded table with a hard cap on keys.
//!
//! See [`MemoryStore`] for the memory bound and what happens when it is reached.

use std::{
    fmt,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use metrics::{Counter, Gauge};
use smallvec::SmallVec;
use std::hash::BuildHasher;
use streamgate_core::MetricsHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::{
    Check, CheckMode, Decision, Decisions, PolicyId, PolicyNames, RateLimitStore, StoreError,
    StoreFuture,
    table::{self, KeyHash, Table},
};
use crate::Gcra;

const TRACKED_KEYS: &str = "streamgate_ratelimit_tracked_keys";
const OVERFLOW: &str = "streamgate_ratelimit_overflow_total";
const IDLE_REMOVED: &str = "streamgate_ratelimit_idle_keys_removed_total";

/// Keys per shard below which the table is not split further.
const MIN_KEYS_PER_SHARD: usize = 1024;
const MAX_SHARDS: usize = 64;

struct ShardState {
    table: Table,
    cap: usize,
    /// The buckets the table needs to hold `cap` keys: it grows no further.
    max_buckets: usize,
    next_purge: u64,
}

#[repr(align(64))]
struct Shard(Mutex<ShardState>);

impl Shard {
    fn lock(&self) -> MutexGuard<'_, ShardState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct StoreMetrics {
    tracked: Gauge,
    overflow: Counter,
    idle_removed: Counter,
}

struct Inner {
    shards: Box<[Shard]>,
    shard_mask: u64,
    hasher: foldhash::fast::RandomState,
    check_hasher: foldhash::fast::RandomState,
    start: Instant,
    overflow: Mutex<SmallVec<[(u32, u64); 4]>>,
    tracked: AtomicUsize,
    max_keys: usize,
    sweep_interval: Duration,
    purge_backoff_nanos: u64,
    sweeper_started: AtomicBool,
    metrics: StoreMetrics,
    names: PolicyNames,
}

/// The in-process [`RateLimitStore`]: bounded, sharded, swept in the background.
///
/// Cheap to clone (clones share the state). Its clock is tokio's `Instant`, so paused-time tests
/// drive it. The sweep task starts with the first check made inside a tokio runtime and ends when
/// the last clone is dropped.
///
/// # Memory bound and what happens when it is reached
///
/// The table never holds more than `max_keys` keys. The cap is split evenly over the table's
/// shards (up to 64, one per 1024 keys), so a shard can fill a little before the whole table
/// does: filled with distinct random keys, a table reaches about 99.6% of its cap before the first
/// new key overflows. A key whose bucket is full again (its TAT has passed) carries no
/// information, so it can be dropped at any time: a background task does this every sweep
/// interval, and a full shard does it itself (at most once a second) before turning a key away.
///
/// When a shard is still full, a new key is not tracked: its requests are decided on the
/// policy's one shared **overflow bucket** (same quota), and each such decision is counted in
/// `streamgate_ratelimit_overflow_total`. Keys already tracked are never evicted to make room,
/// so a client that is limited stays limited however many new clients arrive; new clients during
/// such a flood share one bucket, so they cannot escape limiting either.
///
/// Each key costs one 20-byte slot (its 64-bit hash, 32 bits of a second hash, its TAT) in
/// 64-byte buckets of three, at most 3/4 full, so that a lookup reads one cache line for most
/// keys. A key is known by those 96 hash bits: two keys are confused only if both independently
/// seeded hashes agree (with a million keys tracked, less than one chance in 10^22 for a new
/// key). A shard's table grows by doubling up to the size its cap needs and no further (see the
/// crate README for the measured bytes per key).
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("max_keys", &self.inner.max_keys)
            .field("tracked_keys", &self.len())
            .field("shards", &self.inner.shards.len())
            .field("sweep_interval", &self.inner.sweep_interval)
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// Builds a [`MemoryStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryStoreBuilder {
    max_keys: usize,
    sweep_interval: Duration,
    metrics: MetricsHandle,
}

impl MemoryStoreBuilder {
    /// The most keys the store tracks (default 100,000).
    ///
    /// # Panics
    /// When `max_keys` is zero.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        assert!(
            max_keys > 0,
            "a rate-limit store needs room for at least one key"
        );
        self.max_keys = max_keys;
        self
    }

    /// How often idle keys are removed (default 10 seconds).
    ///
    /// # Panics
    /// When `interval` is zero.
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        assert!(!interval.is_zero(), "the sweep interval must be positive");
        self.sweep_interval = interval;
        self
    }

    /// Where the store's metrics go (default: the global recorder).
    pub fn metrics(mut self, metrics: MetricsHandle) -> Self {
        self.metrics = metrics;
        self
    }

    /// Builds the store.
    #[must_use]
    pub fn build(self) -> MemoryStore {
        // The largest power of two that leaves every shard at least MIN_KEYS_PER_SHARD keys.
        let wanted = (self.max_keys / MIN_KEYS_PER_SHARD).clamp(1, MAX_SHARDS);
        let shard_count = if wanted.is_power_of_two() {
            wanted
        } else {
            wanted.next_power_of_two() / 2
        };
        let base = self.max_keys / shard_count;
        let extra = self.max_keys % shard_count;
        let shards = (0..shard_count)
            .map(|index| {
                let cap = base + usize::from(index < extra);
                Shard(Mutex::new(ShardState {
                    table: Table::new(),
                    cap,
                    max_buckets: table::buckets_for(cap),
                    next_purge: 0,
                }))
            })
            .collect();
        let metrics = &self.metrics;
        metrics.describe_gauge(TRACKED_KEYS, "Keys the in-memory rate-limit store tracks.");
        metrics.describe_counter(
            OVERFLOW,
            "Rate-limit decisions made on a policy's shared overflow bucket because the key table was full.",
        );
        metrics.describe_counter(
            IDLE_REMOVED,
            "Idle rate-limit keys (bucket full again) removed by the sweep or to make room.",
        );
        let store_metrics = StoreMetrics {
            tracked: metrics.gauge(TRACKED_KEYS, &[]),
            overflow: metrics.counter(OVERFLOW, &[]),
            idle_removed: metrics.counter(IDLE_REMOVED, &[]),
        };
        store_metrics.tracked.set(0.0);
        let purge_backoff = self.sweep_interval.min(Duration::from_secs(1));
        MemoryStore {
            inner: Arc::new(Inner {
                shards,
                shard_mask: (shard_count as u64) - 1,
                hasher: foldhash::fast::RandomState::default(),
                check_hasher: foldhash::fast::RandomState::default(),
                start: Instant::now(),
                overflow: Mutex::new(SmallVec::new()),
                tracked: AtomicUsize::new(0),
                max_keys: self.max_keys,
                sweep_interval: self.sweep_interval,
                purge_backoff_nanos: u64::try_from(purge_backoff.as_nanos()).unwrap_or(u64::MAX),
                sweeper_started: AtomicBool::new(false),
                metrics: store_metrics,
                names: PolicyNames::default(),
            }),
        }
    }
}

/// Where a key's state is.
#[derive(Clone, Copy)]
enum Slot {
    Table,
    Overflow,
}

impl MemoryStore {
    /// A builder with the defaults: 100,000 keys, a sweep every 10 seconds, global metrics.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            max_keys: 100_000,
            sweep_interval: Duration::from_secs(10),
            metrics: MetricsHandle::global(),
        }
    }

    /// How many keys are tracked now (never more than `max_keys`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.tracked.load(Ordering::Relaxed)
    }

    /// Whether no key is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cap on tracked keys.
    #[must_use]
    pub fn max_keys(&self) -> usize {
        self.inner.max_keys
    }

    /// Bytes the key tables hold on the heap now (their allocations, whether full or not).
    #[must_use]
    pub fn table_bytes(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|shard| shard.lock().table.allocation_size())
            .sum::<usize>()
            + self.inner.shards.len() * size_of::<Shard>()
    }

    /// Removes every idle key (bucket full again) now, shard by shard; returns how many. The
    /// background task does this every sweep interval.
    pub fn sweep(&self) -> usize {
        let now = self.inner.now_nanos();
        (0..self.inner.shards.len())
            .map(|index| self.inner.sweep_shard(index, now))
            .sum::<usize>()
            + self.inner.sweep_overflow(now)
    }

    fn ensure_sweeper(&self) {
        if self.inner.sweeper_started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.inner.sweeper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let period = self.inner.sweep_interval;
        handle.spawn(async move {
            let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(shards) = weak.upgrade().map(|inner| inner.shards.len()) else {
                    return;
                };
                for index in 0..shards {
                    let Some(inner) = weak.upgrade() else { return };
                    let now = inner.now_nanos();
                    inner.sweep_shard(index, now);
                    if index + 1 == shards {
                        inner.sweep_overflow(now);
                    }
                    drop(inner);
                    tokio::task::yield_now().await;
                }
            }
        });
    }
}

impl Inner {
    fn now_nanos(&self) -> u64 {
        u64::try_from(Instant::now().duration_since(self.start).as_nanos()).unwrap_or(u64::MAX)
    }

    fn store_key(check: &Check) -> [u64; 2] {
        let [hi, lo] = check.key().to_words();
        [hi | (u64::from(check.policy().get()) << 40), lo]
    }

    /// The key's hash and check, from two independently seeded hashers. The words are hashed
    /// as two integers (an array would hash as a length and a byte slice, the slower path).
    #[inline]
    fn hash(&self, key: [u64; 2]) -> KeyHash {
        let pair = (key[0], key[1]);
        // The check is the high half of the second hash (its best-mixed bits).
        KeyHash::new(
            self.hasher.hash_one(pair),
            (self.check_hasher.hash_one(pair) >> 32) as u32,
        )
    }

    fn shard(&self, key: KeyHash) -> &Shard {
        // The table picks buckets with the hash's high bits: the shard takes the low ones.
        let index = key.hash() & self.shard_mask;
        &self.shards[usize::try_from(index).unwrap_or(0)]
    }

    /// Runs `step` on the key's TAT (table or overflow bucket); stores the TAT it returns.
    #[inline]
    fn update<R>(
        &self,
        check: &Check,
        now: u64,
        step: impl FnOnce(Option<u64>) -> (R, Option<u64>),
    ) -> (R, Slot) {
        let key = self.hash(Self::store_key(check));
        let mut shard = self.shard(key).lock();
        if let Some(stored) = shard.table.get_mut(key) {
            let (result, new_tat) = step(Some(*stored));
            if let Some(tat) = new_tat {
                *stored = tat;
            }
            return (result, Slot::Table);
        }
        let has_room = shard.table.len() < shard.cap || self.purge_full_shard(&mut shard, now);
        if !has_room {
            drop(shard);
            return (self.update_overflow(check, step), Slot::Overflow);
        }
        let (result, new_tat) = step(None);
        if let Some(tat) = new_tat {
            let max_buckets = shard.max_buckets;
            shard.table.insert(key, tat, max_buckets);
            drop(shard);
            self.tracked.fetch_add(1, Ordering::Relaxed);
            self.metrics.tracked.increment(1.0);
        }
        (result, Slot::Table)
    }

    /// Drops a full shard's idle keys, at most once per backoff; whether there is room now.
    fn purge_full_shard(&self, shard: &mut ShardState, now: u64) -> bool {
        if now < shard.next_purge {
            return false;
        }
        shard.next_purge = now.saturating_add(self.purge_backoff_nanos);
        let removed = shard.table.retain(|tat| tat > now);
        self.removed(removed);
        shard.table.len() < shard.cap
    }

    fn update_overflow<R>(
        &self,
        check: &Check,
        step: impl FnOnce(Option<u64>) -> (R, Option<u64>),
    ) -> R {
        self.metrics.overflow.increment(1);
        let policy = check.policy().get();
        let mut buckets = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
        let position = buckets.iter().position(|(id, _)| *id == policy);
        let (result, new_tat) = step(position.map(|index| buckets[index].1));
        if let Some(tat) = new_tat {
            match position {
                Some(index) => buckets[index].1 = tat,
                None => buckets.push((policy, tat)),
            }
        }
        result
    }

    fn refund(&self, check: &Check, slot: Slot, now: u64) {
        let gcra = check.gcra();
        let cost = check.cost();
        match slot {
            Slot::Table => {
                let key = self.hash(Self::store_key(check));
                let mut shard = self.shard(key).lock();
                if let Some(tat) = shard.table.get_mut(key) {
                    *tat = gcra.refund(*tat, now, cost);
                }
            }
            Slot::Overflow => {
                let policy = check.policy().get();
                let mut buckets = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((_, tat)) = buckets.iter_mut().find(|(id, _)| *id == policy) {
                    *tat = gcra.refund(*tat, now, cost);
                }
            }
        }
    }

    fn sweep_shard(&self, index: usize, now: u64) -> usize {
        let removed = self.shards[index].lock().table.retain(|tat| tat > now);
        self.removed(removed);
        removed
    }

    fn sweep_overflow(&self, now: u64) -> usize {
        let mut buckets = self.overflow.lock().unwrap_or_else(PoisonError::into_inner);
        let before = buckets.len();
        buckets.retain(|(_, tat)| *tat > now);
        before - buckets.len()
    }

    fn removed(&self, count: usize) {
        if count > 0 {
            self.tracked.fetch_sub(count, Ordering::Relaxed);
            self.metrics.tracked.decrement(count as f64);
            self.metrics.idle_removed.increment(count as u64);
        }
    }

    fn decide(&self, checks: &[Check]) -> Decisions {
        let now = self.now_nanos();
        if let [check] = checks {
            // One policy (the common case): nothing to give back if it is limited.
            let gcra = check.gcra();
            let cost = check.cost();
            let consume = check.mode() == CheckMode::Consume;
            let (decision, _) = self.update(check, now, |tat| {
                let step = gcra.consume(tat, now, cost);
                match (consume, step.decision.is_allowed()) {
                    (true, _) => (step.decision, step.new_tat),
                    (false, true) => (untaken(gcra, step.decision, cost), None),
                    (false, false) => (step.decision, None),
                }
            });
            let mut decisions = Decisions::new();
            decisions.push(decision);
            return decisions;
        }
        let mut decisions = Decisions::new();
        let mut consumed: SmallVec<[(usize, Slot); 4]> = SmallVec::new();
        let mut limited = false;
        for (index, check) in checks.iter().enumerate() {
            let gcra = check.gcra();
            let cost = check.cost();
            let consume = check.mode() == CheckMode::Consume && !limited;
            let (decision, slot) = self.update(check, now, |tat| {
                let step = gcra.consume(tat, now, cost);
                if consume {
                    (step.decision, step.new_tat)
                } else {
                    (step.decision, None)
                }
            });
            let decision = if !decision.is_allowed() {
                limited = true;
                decision
            } else if consume {
                consumed.push((index, slot));
                decision
            } else {
                // Nothing was taken: report what is left now.
                untaken(gcra, decision, cost)
            };
            decisions.push(decision);
        }
        if limited {
            for (index, slot) in consumed {
                let check = &checks[index];
                self.refund(check, slot, now);
                decisions[index] = untaken(check.gcra(), decisions[index], check.cost());
            }
        }
        decisions
    }

    fn charge(&self, checks: &[Check]) -> Decisions {
        let now = self.now_nanos();
        checks
            .iter()
            .map(|check| {
                let gcra = check.gcra();
                let cost = check.cost();
                self.update(check, now, |tat| {
                    let tat = gcra.charge(tat, now, cost);
                    (gcra.peek(Some(tat), now, 1), Some(tat))
                })
                .0
            })
            .collect()
    }
}

/// The decision of an allowed check whose units were given back.
fn untaken(gcra: Gcra, decision: Decision, cost: u32) -> Decision {
    let unit = Duration::from_nanos(gcra.interval_nanos());
    Decision::allowed(
        (decision.remaining() + u64::from(cost)).min(u64::from(gcra.burst())),
        decision.reset().saturating_sub(unit * cost),
    )
}

impl RateLimitStore for MemoryStore {
    fn register_policy(
        &self,
        id: PolicyId,
        name: &str,
        quota: &crate::Quota,
    ) -> Result<(), StoreError> {
        let _ = quota;
        self.inner.names.register(id, name)
    }

    fn unregister_policy(&self, id: PolicyId) {
        self.inner.names.unregister(id);
    }

    fn check(&self, checks: &[Check]) -> StoreFuture {
        self.ensure_sweeper();
        StoreFuture::ready(Ok(self.inner.decide(checks)))
    }

    fn record(&self, checks: &[Check]) -> StoreFuture {
        self.ensure_sweeper();
        StoreFuture::ready(Ok(self.inner.charge(checks)))
    }

    fn tracked_keys(&self) -> Option<usize> {
        Some(self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PolicyId, Quota, RateLimitKey};
    use std::net::{IpAddr, Ipv4Addr};

    fn ip_key(n: u32) -> RateLimitKey {
        RateLimitKey::from_ip(IpAddr::V4(Ipv4Addr::from(n)), 64)
    }

    fn check_one(store: &MemoryStore, check: Check) -> Decision {
        store.check(&[check]).take_ready().unwrap().unwrap()[0]
    }

    #[tokio::test(start_paused = true)]
    async fn cap_is_never_exceeded_and_new_keys_share_the_overflow_bucket() {
        let store = MemoryStore::builder().max_keys(10).build();
        let policy = PolicyId::next();
        let gcra = Quota::per_minute(2).gcra();
        for n in 0..10 {
            assert!(check_one(&store, Check::consume(policy, ip_key(n), gcra, 1)).is_allowed());
        }
        assert_eq!(store.len(), 10);
        // Ten more clients: none tracked, all on one bucket of 2.
        let allowed = (10..20)
            .filter(|n| check_one(&store, Check::consume(policy, ip_key(*n), gcra, 1)).is_allowed())
            .count();
        assert_eq!(allowed, 2);
        assert_eq!(store.len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_keys_are_swept_and_live_ones_kept() {
        let store = MemoryStore::builder().max_keys(100).build();
        let policy = PolicyId::next();
        let gcra = Quota::per_second(1).burst(2).gcra();
        check_one(&store, Check::consume(policy, ip_key(1), gcra, 1));
        tokio::time::advance(Duration::from_millis(1500)).await;
        check_one(&store, Check::consume(policy, ip_key(2), gcra, 1));
        assert_eq!(store.sweep(), 1);
        assert_eq!(store.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_limited_batch_takes_nothing() {
        let store = MemoryStore::builder().build();
        let (loose, strict) = (PolicyId::next(), PolicyId::next());
        let key = ip_key(7);
        let loose_gcra = Quota::per_minute(10).gcra();
        let strict_gcra = Quota::per_minute(1).gcra();
        let batch = [
            Check::consume(loose, key, loose_gcra, 1),
            Check::consume(strict, key, strict_gcra, 1),
        ];
        let first = store.check(&batch).take_ready().unwrap().unwrap();
        assert!(first.iter().all(Decision::is_allowed));
        assert_eq!(first[0].remaining(), 9);
        let second = store.check(&batch).take_ready().unwrap().unwrap();
        assert!(second[0].is_allowed() && !second[1].is_allowed());
        assert_eq!(
            second[0].remaining(),
            9,
            "the loose policy took nothing back"
        );
        let alone = check_one(&store, Check::consume(loose, key, loose_gcra, 1));
        assert_eq!(alone.remaining(), 8);
    }

    #[test]
    fn concurrent_requests_on_one_key_admit_exactly_the_burst() {
        // No runtime: the store works without one (no background sweep then).
        let store = MemoryStore::builder().build();
        let policy = PolicyId::next();
        let gcra = Quota::per_day(1).burst(1000).gcra();
        let key = ip_key(99);
        let admitted: usize = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        (0..500)
                            .filter(|_| {
                                check_one(&store, Check::consume(policy, key, gcra, 1)).is_allowed()
                            })
                            .count()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        });
        assert_eq!(admitted, 1000);
    }

    #[tokio::test(start_paused = true)]
    async fn background_sweep_runs_on_its_interval() {
        let store = MemoryStore::builder()
            .max_keys(100)
            .sweep_interval(Duration::from_secs(5))
            .build();
        let policy = PolicyId::next();
        let gcra = Quota::per_second(10).gcra();
        for n in 0..50 {
            check_one(&store, Check::consume(policy, ip_key(n), gcra, 1));
        }
        assert_eq!(store.len(), 50);
        tokio::time::sleep(Duration::from_secs(6)).await;
        for _ in 0..200 {
            tokio::task::yield_now().await;
        }
        assert_eq!(store.len(), 0);
    }
}
