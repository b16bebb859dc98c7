//! The windowed in-process store: the half of the process recorder that can be read back.
//!
//! Every counter and histogram keeps its total since start and, in a ring of time slots, what
//! happened during the last window (default five minutes in thirty ten-second slots). Each slot
//! packs its slot number beside its count in one atomic word, so a slot that comes round again is
//! reset by the same compare-and-swap that counts into it and nothing is lost at a boundary.
//! The clock is tokio's `Instant`, so tests move it with paused time.

use std::{
    cell::Cell,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use metrics_util::registry::{Registry, Storage};
use tokio::time::Instant;

/// The slot clock shared by every series of one store.
#[derive(Debug)]
pub(crate) struct SlotClock {
    /// Tells this clock's slots apart from another clock's in [`LAST_SLOT`].
    id: u64,
    origin: Instant,
    slot_nanos: u64,
    slots: u64,
}

/// The slot a thread last computed: which clock, the slot, and the instants it spans. Most
/// readings fall in the same slot as the one before (a slot lasts seconds), and two instant
/// comparisons cost less than the subtraction and division that find a slot from scratch.
#[derive(Clone, Copy)]
struct LastSlot {
    clock: u64,
    slot: u64,
    start: Instant,
    end: Instant,
}

thread_local! {
    static LAST_SLOT: Cell<Option<LastSlot>> = const { Cell::new(None) };
}

impl SlotClock {
    pub(crate) fn new(window: Duration, slots: u32) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let slots = u64::from(slots.max(1));
        let window_nanos = u64::try_from(window.as_nanos())
            .unwrap_or(u64::MAX)
            .max(slots);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            origin: Instant::now(),
            slot_nanos: window_nanos / slots,
            slots,
        }
    }

    fn current(&self) -> u64 {
        self.slot_at(Instant::now())
    }

    fn slot_at(&self, now: Instant) -> u64 {
        if let Some(last) = LAST_SLOT.get()
            && last.clock == self.id
            && last.start <= now
            && now < last.end
        {
            return last.slot;
        }
        let slot = self.slot_from_origin(now);
        let start = self
            .origin
            .checked_add(Duration::from_nanos(slot.saturating_mul(self.slot_nanos)));
        let end = start.and_then(|start| start.checked_add(Duration::from_nanos(self.slot_nanos)));
        if let (Some(start), Some(end)) = (start, end) {
            LAST_SLOT.set(Some(LastSlot {
                clock: self.id,
                slot,
                start,
                end,
            }));
        }
        slot
    }

    fn slot_from_origin(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin);
        // Whole seconds and nanoseconds separately: no 128-bit arithmetic.
        let nanos = elapsed
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(elapsed.subsec_nanos()));
        nanos / self.slot_nanos
    }

    /// The slot numbers inside the window ending now, newest first.
    fn window(&self) -> impl Iterator<Item = u64> {
        let current = self.current();
        (0..self.slots.min(current + 1)).map(move |back| current - back)
    }
}

/// A ring of per-slot counts. Each word is `slot number (high 32 bits) | count (low 32 bits)`.
#[derive(Debug)]
struct SlotRing {
    words: Box<[AtomicU64]>,
}

impl SlotRing {
    fn new(slots: u64) -> Self {
        Self {
            words: (0..slots).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }

    fn add(&self, slot: u64, amount: u64) {
        let word = &self.words[(slot % self.words.len() as u64) as usize];
        let tag = slot & 0xFFFF_FFFF;
        let amount = amount.min(0xFFFF_FFFF);
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let next = if current >> 32 == tag {
                let count = (current & 0xFFFF_FFFF)
                    .saturating_add(amount)
                    .min(0xFFFF_FFFF);
                (tag << 32) | count
            } else {
                (tag << 32) | amount
            };
            match word.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    fn count_in(&self, slot: u64) -> u64 {
        let word = self.words[(slot % self.words.len() as u64) as usize].load(Ordering::Relaxed);
        if word >> 32 == slot & 0xFFFF_FFFF {
            word & 0xFFFF_FFFF
        } else {
            0
        }
    }
}

/// A counter with its total and its windowed count.
#[derive(Debug)]
pub(crate) struct WindowedCounter {
    clock: Arc<SlotClock>,
    total: AtomicU64,
    ring: SlotRing,
}

impl WindowedCounter {
    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub(crate) fn in_window(&self) -> u64 {
        self.clock
            .window()
            .map(|slot| self.ring.count_in(slot))
            .sum()
    }
}

impl CounterFn for WindowedCounter {
    fn increment(&self, value: u64) {
        self.total.fetch_add(value, Ordering::Relaxed);
        self.ring.add(self.clock.current(), value);
    }

    fn absolute(&self, value: u64) {
        let previous = self.total.fetch_max(value, Ordering::Relaxed);
        if value > previous {
            self.ring.add(self.clock.current(), value - previous);
        }
    }
}

/// A histogram over fixed buckets: totals since start, and per-slot bucket counts.
#[derive(Debug)]
pub(crate) struct WindowedHistogram {
    clock: Arc<SlotClock>,
    bounds: Arc<[f64]>,
    /// One per bound plus `+Inf`.
    totals: Box<[AtomicU64]>,
    sum_bits: AtomicU64,
    /// One ring per bucket.
    rings: Box<[SlotRing]>,
}

/// Bucket counts (not cumulative) with their upper bounds; the last count is `+Inf`'s.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BucketCounts {
    pub(crate) bounds: Arc<[f64]>,
    pub(crate) counts: Vec<u64>,
}

impl BucketCounts {
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The `q` quantile, interpolated linearly inside its bucket as Prometheus's
    /// `histogram_quantile` does; `None` without observations.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut seen = 0u64;
        for (i, &count) in self.counts.iter().enumerate() {
            if count > 0 && (seen + count) as f64 >= rank {
                let Some(&upper) = self.bounds.get(i) else {
                    // In +Inf: the highest finite bound is the best answer there is.
                    return self.bounds.last().copied();
                };
                let lower = if i == 0 {
                    0.0_f64.min(upper)
                } else {
                    self.bounds[i - 1]
                };
                let within = (rank - seen as f64) / count as f64;
                return Some(lower + (upper - lower) * within);
            }
            seen += count;
        }
        self.bounds.last().copied()
    }
}

impl WindowedHistogram {
    fn bucket_of(&self, value: f64) -> usize {
        self.bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len())
    }

    pub(crate) fn totals(&self) -> BucketCounts {
        BucketCounts {
            bounds: self.bounds.clone(),
            counts: self
                .totals
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
        }
    }

    pub(crate) fn sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Ordering::Relaxed))
    }

    pub(crate) fn in_window(&self) -> BucketCounts {
        let slots: Vec<u64> = self.clock.window().collect();
        BucketCounts {
            bounds: self.bounds.clone(),
            counts: self
                .rings
                .iter()
                .map(|ring| slots.iter().map(|&slot| ring.count_in(slot)).sum())
                .collect(),
        }
    }
}

impl WindowedHistogram {
    /// Records `value` observed at `now`, saving the clock read of [`HistogramFn::record`] when
    /// the caller has just read the time.
    pub(crate) fn record_at(&self, value: f64, now: Instant) {
        self.record_in_slot(value, self.clock.slot_at(now));
    }

    fn record_in_slot(&self, value: f64, slot: u64) {
        let bucket = self.bucket_of(value);
        self.totals[bucket].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
        self.rings[bucket].add(slot, 1);
    }
}

impl HistogramFn for WindowedHistogram {
    fn record(&self, value: f64) {
        self.record_in_slot(value, self.clock.current());
    }
}

/// How the store makes its series.
#[derive(Debug)]
pub(crate) struct WindowStorage {
    clock: Arc<SlotClock>,
    buckets: crate::buckets::BucketTable,
}

impl Storage<Key> for WindowStorage {
    type Counter = Arc<WindowedCounter>;
    type Gauge = Arc<AtomicU64>;
    type Histogram = Arc<WindowedHistogram>;

    fn counter(&self, _key: &Key) -> Self::Counter {
        Arc::new(WindowedCounter {
            clock: self.clock.clone(),
            total: AtomicU64::new(0),
            ring: SlotRing::new(self.clock.slots),
        })
    }

    fn gauge(&self, _key: &Key) -> Self::Gauge {
        Arc::new(AtomicU64::new(0f64.to_bits()))
    }

    fn histogram(&self, key: &Key) -> Self::Histogram {
        let bounds = self.buckets.for_name(key.name());
        Arc::new(WindowedHistogram {
            clock: self.clock.clone(),
            totals: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            rings: (0..=bounds.len())
                .map(|_| SlotRing::new(self.clock.slots))
                .collect(),
            bounds,
            sum_bits: AtomicU64::new(0f64.to_bits()),
        })
    }
}

/// The windowed store. Cheap to clone; clones share their series.
#[derive(Debug, Clone)]
pub(crate) struct WindowedStore {
    registry: Arc<Registry<Key, WindowStorage>>,
}

impl WindowedStore {
    pub(crate) fn new(window: Duration, slots: u32, buckets: crate::buckets::BucketTable) -> Self {
        let storage = WindowStorage {
            clock: Arc::new(SlotClock::new(window, slots)),
            buckets,
        };
        Self {
            registry: Arc::new(Registry::new(storage)),
        }
    }

    pub(crate) fn visit_counters(&self, mut visit: impl FnMut(&Key, &WindowedCounter)) {
        self.registry
            .visit_counters(|key, counter| visit(key, counter));
    }

    pub(crate) fn visit_gauges(&self, mut visit: impl FnMut(&Key, f64)) {
        self.registry
            .visit_gauges(|key, gauge| visit(key, f64::from_bits(gauge.load(Ordering::Relaxed))));
    }

    /// The series of `key`, made on first use.
    pub(crate) fn histogram(&self, key: &Key) -> Arc<WindowedHistogram> {
        self.registry.get_or_create_histogram(key, Arc::clone)
    }

    pub(crate) fn visit_histograms(&self, mut visit: impl FnMut(&Key, &WindowedHistogram)) {
        self.registry
            .visit_histograms(|key, histogram| visit(key, histogram));
    }
}

impl Recorder for WindowedStore {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.registry.get_or_create_counter(key, Arc::clone))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.registry.get_or_create_gauge(key, Arc::clone))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.registry.get_or_create_histogram(key, Arc::clone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(bounds: &[f64], counts: &[u64]) -> BucketCounts {
        BucketCounts {
            bounds: bounds.into(),
            counts: counts.to_vec(),
        }
    }

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        let buckets = counts(&[1.0, 2.0, 4.0], &[0, 10, 0, 0]);
        assert_eq!(buckets.quantile(0.5), Some(1.5));
        assert_eq!(buckets.quantile(1.0), Some(2.0));
    }

    #[test]
    fn quantile_in_inf_bucket_is_the_highest_bound() {
        let buckets = counts(&[1.0, 2.0], &[1, 0, 9]);
        assert_eq!(buckets.quantile(0.99), Some(2.0));
        assert_eq!(counts(&[1.0], &[0, 0]).quantile(0.5), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_remembered_slot_is_the_slot_counted_from_the_origin() {
        let one = SlotClock::new(Duration::from_secs(60), 6);
        tokio::time::advance(Duration::from_millis(3_500)).await;
        let two = SlotClock::new(Duration::from_secs(30), 3);
        let start = Instant::now();
        // Both clocks read on one thread, in steps that cross slot boundaries, forwards and
        // back: each answer equals the slot found from scratch.
        let steps = [
            0, 1, 6_499, 6_500, 6_501, 9_999, 10_000, 25_000, 6_500, 0, 95_000,
        ];
        for millis in steps {
            let now = start + Duration::from_millis(millis);
            for clock in [&one, &two] {
                assert_eq!(
                    clock.slot_at(now),
                    clock.slot_from_origin(now),
                    "{millis} ms"
                );
                assert_eq!(
                    clock.slot_at(now),
                    clock.slot_from_origin(now),
                    "{millis} ms again"
                );
            }
        }
        assert_eq!(one.slot_at(start + Duration::from_millis(6_499)), 0);
        assert_eq!(one.slot_at(start + Duration::from_millis(6_500)), 1);
        assert_eq!(two.slot_at(start + Duration::from_millis(9_999)), 0);
        assert_eq!(two.slot_at(start + Duration::from_millis(10_000)), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn slot_ring_forgets_what_left_the_window() {
        let store = WindowedStore::new(
            Duration::from_secs(60),
            6,
            crate::buckets::BucketTable::default(),
        );
        let key = Key::from_name("jobs_total");
        let counter = store.register_counter(&key, &Metadata::new("", metrics::Level::INFO, None));
        counter.increment(5);
        tokio::time::advance(Duration::from_secs(30)).await;
        counter.increment(2);
        let window = |store: &WindowedStore| {
            let mut seen = (0, 0);
            store.visit_counters(|_, c| seen = (c.total(), c.in_window()));
            seen
        };
        assert_eq!(window(&store), (7, 7));
        tokio::time::advance(Duration::from_secs(35)).await;
        assert_eq!(window(&store), (7, 2));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(window(&store), (7, 0));
    }
}
