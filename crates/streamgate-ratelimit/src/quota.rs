//! Quotas and the GCRA arithmetic behind them.
//!
//! ```
//! use std::time::Duration;
//! use streamgate_ratelimit::Quota;
//!
//! // The seed's default: refill 100 per second, hold up to 1000.
//! let quota = Quota::per_second(100).burst(1000);
//! assert_eq!(quota.burst_size(), 1000);
//! assert_eq!(quota.replenish_interval(), Duration::from_millis(10));
//! // Advertised as `q=1000;w=10`: 1000 units, refilled from empty in 10 seconds.
//! assert_eq!(quota.window_seconds(), 10);
//! ```
//!
//! The generic cell rate algorithm keeps one number per key, the theoretical arrival time (TAT):
//! when the bucket would be full again. A request of cost `n` at time `now` conforms when
//! `max(tat, now) + n * interval <= now + burst * interval`; it then moves the TAT forward by
//! `n * interval`. This is the algorithm of the `governor` crate (token bucket equivalent:
//! burst = capacity, interval = 1 / refill rate); the tests compare both on random sequences.

use std::time::Duration;

/// How many requests a key may make: a refill rate and a burst (the bucket's capacity).
///
/// Built with [`Quota::per_second`], [`Quota::per_minute`], [`Quota::per_hour`],
/// [`Quota::per_day`] or [`Quota::with_period`]; the burst defaults to the count of the rate
/// (`per_minute(60)` allows 60 at once, then one per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    interval_nanos: u64,
    burst: u32,
}

impl Default for Quota {
    /// The seed's default: capacity 1000, refill 100 per second.
    fn default() -> Self {
        Self::per_second(100).burst(1000)
    }
}

impl Quota {
    /// `count` requests per `period`, refilled evenly (one every `period / count`).
    ///
    /// # Panics
    /// When `count` is zero or `period` is shorter than `count` nanoseconds.
    #[must_use]
    pub fn with_period(count: u32, period: Duration) -> Self {
        assert!(count > 0, "a quota needs a count of at least 1");
        let nanos = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        let interval_nanos = nanos / u64::from(count);
        assert!(
            interval_nanos > 0,
            "a quota's period must be at least one nanosecond per request"
        );
        Self {
            interval_nanos,
            burst: count,
        }
    }

    /// `count` requests per second.
    ///
    /// # Panics
    /// When `count` is zero.
    #[must_use]
    pub fn per_second(count: u32) -> Self {
        Self::with_period(count, Duration::from_secs(1))
    }

    /// `count` requests per minute.
    ///
    /// # Panics
    /// When `count` is zero.
    #[must_use]
    pub fn per_minute(count: u32) -> Self {
        Self::with_period(count, Duration::from_secs(60))
    }

    /// `count` requests per hour.
    ///
    /// # Panics
    /// When `count` is zero.
    #[must_use]
    pub fn per_hour(count: u32) -> Self {
        Self::with_period(count, Duration::from_secs(3600))
    }

    /// `count` requests per day.
    ///
    /// # Panics
    /// When `count` is zero.
    #[must_use]
    pub fn per_day(count: u32) -> Self {
        Self::with_period(count, Duration::from_secs(86_400))
    }

    /// Sets the burst: how many requests may arrive at once (the bucket's capacity).
    ///
    /// # Panics
    /// When `burst` is zero.
    #[must_use]
    pub fn burst(mut self, burst: u32) -> Self {
        assert!(burst > 0, "a quota's burst must be at least 1");
        self.burst = burst;
        self
    }

    /// The burst size (bucket capacity).
    #[must_use]
    pub fn burst_size(&self) -> u32 {
        self.burst
    }

    /// The time in which one unit of quota comes back.
    #[must_use]
    pub fn replenish_interval(&self) -> Duration {
        Duration::from_nanos(self.interval_nanos)
    }

    /// The time to refill the whole burst from empty, in whole seconds (rounded up, at least 1):
    /// the `w` of the `RateLimit-Policy` header, whose `q` is the burst.
    #[must_use]
    pub fn window_seconds(&self) -> u64 {
        ceil_seconds(self.full_nanos()).max(1)
    }

    /// The GCRA parameters of this quota.
    #[must_use]
    pub fn gcra(&self) -> Gcra {
        Gcra {
            interval_nanos: self.interval_nanos,
            burst: self.burst,
        }
    }

    fn full_nanos(&self) -> u64 {
        self.interval_nanos.saturating_mul(u64::from(self.burst))
    }
}

/// Rounds nanoseconds up to whole seconds.
pub(crate) fn ceil_seconds(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000)
}

/// The GCRA parameters of a [`Quota`], and its arithmetic on a theoretical arrival time.
///
/// Times are nanoseconds on the store's clock. Stores other than the in-memory one (Redis) apply
/// the same arithmetic to their own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    interval_nanos: u64,
    burst: u32,
}

/// What a GCRA step decided for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The decision to report.
    pub decision: crate::Decision,
    /// The TAT to store, when the step changes the state.
    pub new_tat: Option<u64>,
}

impl Gcra {
    /// The time in which one unit comes back, in nanoseconds.
    #[must_use]
    pub fn interval_nanos(&self) -> u64 {
        self.interval_nanos
    }

    /// The burst (bucket capacity).
    #[must_use]
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The time to refill the burst from empty, in nanoseconds.
    #[must_use]
    pub fn full_nanos(&self) -> u64 {
        self.interval_nanos.saturating_mul(u64::from(self.burst))
    }

    /// Takes `cost` units at `now` if they fit. `tat` is the stored TAT (`None`: a fresh key).
    #[must_use]
    pub fn consume(&self, tat: Option<u64>, now: u64, cost: u32) -> Step {
        let base = tat.map_or(now, |tat| tat.max(now));
        let next = base.saturating_add(self.interval_nanos.saturating_mul(u64::from(cost)));
        let limit = now.saturating_add(self.full_nanos());
        if next <= limit {
            Step {
                decision: crate::Decision::allowed(
                    (limit - next) / self.interval_nanos,
                    Duration::from_nanos(next - now),
                ),
                new_tat: Some(next),
            }
        } else {
            Step {
                decision: crate::Decision::limited(
                    Duration::from_nanos(next - limit),
                    Duration::from_nanos(base - now),
                    (limit.saturating_sub(base)) / self.interval_nanos,
                ),
                new_tat: None,
            }
        }
    }

    /// Whether `cost` units would fit at `now`, without taking them.
    #[must_use]
    pub fn peek(&self, tat: Option<u64>, now: u64, cost: u32) -> crate::Decision {
        self.consume(tat, now, cost).decision
    }

    /// Takes `cost` units whether or not they fit (a response that already happened), leaving
    /// the bucket at most empty.
    #[must_use]
    pub fn charge(&self, tat: Option<u64>, now: u64, cost: u32) -> u64 {
        let base = tat.map_or(now, |tat| tat.max(now));
        let next = base.saturating_add(self.interval_nanos.saturating_mul(u64::from(cost)));
        next.min(now.saturating_add(self.full_nanos()))
    }

    /// Gives back `cost` units taken by [`Gcra::consume`] (another policy rejected the request).
    #[must_use]
    pub fn refund(&self, tat: u64, now: u64, cost: u32) -> u64 {
        tat.saturating_sub(self.interval_nanos.saturating_mul(u64::from(cost)))
            .max(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn burst_then_one_per_interval() {
        let gcra = Quota::per_second(2).burst(3).gcra();
        let mut tat = None;
        for expected_remaining in [2, 1, 0] {
            let step = gcra.consume(tat, 0, 1);
            assert!(step.decision.is_allowed());
            assert_eq!(step.decision.remaining(), expected_remaining);
            tat = step.new_tat;
        }
        let limited = gcra.consume(tat, 0, 1);
        assert!(!limited.decision.is_allowed());
        assert_eq!(limited.decision.retry_after(), Duration::from_millis(500));
        assert!(gcra.consume(tat, SECOND / 2, 1).decision.is_allowed());
    }

    #[test]
    fn cost_larger_than_burst_never_fits() {
        let gcra = Quota::per_second(1).burst(2).gcra();
        assert!(!gcra.consume(None, 0, 3).decision.is_allowed());
        assert!(gcra.consume(None, 0, 2).decision.is_allowed());
    }

    #[test]
    fn reset_is_time_until_full() {
        let gcra = Quota::per_second(10).burst(10).gcra();
        let step = gcra.consume(None, 0, 5);
        assert_eq!(step.decision.reset(), Duration::from_millis(500));
    }

    #[test]
    fn window_is_time_to_refill_the_burst() {
        assert_eq!(Quota::per_second(100).burst(1000).window_seconds(), 10);
        assert_eq!(Quota::per_minute(60).window_seconds(), 60);
        assert_eq!(Quota::per_second(3).burst(5).window_seconds(), 2);
        assert_eq!(Quota::per_day(1000).window_seconds(), 86_400);
    }

    #[test]
    fn charge_never_goes_below_empty_and_refund_restores() {
        let gcra = Quota::per_second(1).burst(2).gcra();
        let tat = gcra.charge(None, 0, 10);
        assert_eq!(tat, 2 * SECOND);
        let step = gcra.consume(None, 0, 1);
        let restored = gcra.refund(step.new_tat.unwrap(), 0, 1);
        assert_eq!(gcra.consume(Some(restored), 0, 2).decision.remaining(), 0);
        assert!(gcra.consume(Some(restored), 0, 2).decision.is_allowed());
    }

    mod against_governor {
        use super::*;
        use governor::{
            Quota as GovernorQuota, RateLimiter,
            clock::{Clock, FakeRelativeClock},
        };
        use proptest::prelude::*;
        use std::num::NonZeroU32;

        proptest! {
            /// Same decisions as governor's GCRA for any sequence of arrivals and costs.
            #[test]
            fn decisions_match_governor(
                per_second in 1u32..50,
                burst in 1u32..20,
                arrivals in proptest::collection::vec((0u64..200_000_000, 1u32..4), 1..60),
            ) {
                let clock = FakeRelativeClock::default();
                let governor_quota = GovernorQuota::per_second(NonZeroU32::new(per_second).unwrap())
                    .allow_burst(NonZeroU32::new(burst).unwrap());
                let limiter = RateLimiter::direct_with_clock(governor_quota, clock.clone());
                let ours = Quota::per_second(per_second).burst(burst).gcra();
                let mut tat = None;
                let mut now = 0u64;
                let _ = clock.now();
                for (gap, cost) in arrivals {
                    clock.advance(Duration::from_nanos(gap));
                    now += gap;
                    let theirs = limiter.check_n(NonZeroU32::new(cost).unwrap());
                    let step = ours.consume(tat, now, cost);
                    let governor_allowed = matches!(theirs, Ok(Ok(())));
                    prop_assert_eq!(step.decision.is_allowed(), governor_allowed);
                    if let Some(next) = step.new_tat {
                        tat = Some(next);
                    }
                }
            }
        }
    }
}
