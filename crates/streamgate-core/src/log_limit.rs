//! At most one log line per interval for a repeating failure (a store outage must not flood
//! the logs with one line per request).
//!
//! ```
//! use std::time::Duration;
//! use streamgate_core::LogLimiter;
//!
//! let limiter = LogLimiter::new(Duration::from_secs(1));
//! for _ in 0..1000 {
//!     if limiter.allow() {
//!         // tracing::warn!(...) runs once in this loop.
//!     }
//! }
//! assert!(!limiter.allow());
//! ```

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// Lets one caller through per interval; shared by the threads that log the same failure.
#[derive(Debug)]
pub struct LogLimiter {
    epoch: Instant,
    interval_ms: u64,
    next_ms: AtomicU64,
}

impl LogLimiter {
    /// One caller per `interval`, the first at once.
    #[must_use]
    pub fn new(interval: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            next_ms: AtomicU64::new(0),
        }
    }

    /// Whether this caller may log now.
    #[must_use]
    pub fn allow(&self) -> bool {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now.saturating_add(self.interval_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_interval() {
        let limiter = LogLimiter::new(Duration::from_secs(3600));
        assert!(limiter.allow());
        assert!(!limiter.allow());
        assert!(!limiter.allow());
    }
}
