//! The clock that every expiry decision of this crate reads.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use streamgate_security::Clock;
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let clock = Clock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000));
//! assert_eq!(clock.unix_seconds(), 1_000);
//! tokio::time::advance(Duration::from_secs(90)).await;
//! assert_eq!(clock.unix_seconds(), 1_090);
//! # }
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Wall time read through tokio's [`Instant`], so tests that pause and advance tokio time move
/// token expiry, cache freshness and JWKS refresh intervals with it.
///
/// The clock remembers one (wall time, instant) pair and adds the instant's elapsed time. Cheap to
/// copy.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: SystemTime,
    /// `wall` in whole seconds since the epoch, for the per-request check.
    wall_seconds: u64,
    instant: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The system's wall time now, advancing with tokio's clock.
    #[must_use]
    pub fn system() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// A clock that reads `wall` now and advances with tokio's clock.
    #[must_use]
    pub fn starting_at(wall: SystemTime) -> Self {
        Self {
            wall,
            wall_seconds: wall
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs(),
            instant: Instant::now(),
        }
    }

    /// The current wall time.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        self.wall + self.instant.elapsed()
    }

    /// The current wall time in whole seconds since the Unix epoch (JWT `NumericDate`).
    #[must_use]
    pub fn unix_seconds(&self) -> u64 {
        // Sub-second parts of the start are dropped: token times are whole seconds anyway.
        self.wall_seconds + self.instant.elapsed().as_secs()
    }

    /// The first instant at which [`unix_seconds`](Self::unix_seconds) exceeds `seconds`: a
    /// cached token's end, so its per-request check is one clock read and one comparison.
    pub(crate) fn instant_after(&self, seconds: u64) -> Instant {
        /// Stands in for a time too far ahead to represent.
        const FAR: Duration = Duration::from_secs(30 * 365 * 86_400);
        match seconds.checked_sub(self.wall_seconds) {
            None => self.instant,
            Some(ahead) => self
                .instant
                .checked_add(Duration::from_secs(ahead.saturating_add(1)))
                .or_else(|| self.instant.checked_add(FAR))
                .unwrap_or(self.instant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_instant_after_a_second_is_when_the_clock_passes_it() {
        let clock = Clock::starting_at(UNIX_EPOCH + Duration::from_secs(1_000));
        let end = clock.instant_after(1_010);
        tokio::time::advance(Duration::from_millis(10_999)).await;
        assert_eq!(clock.unix_seconds(), 1_010);
        assert!(Instant::now() < end);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(clock.unix_seconds(), 1_011);
        assert!(Instant::now() >= end);
        assert_eq!(
            clock.instant_after(999),
            clock.instant,
            "a past second has passed already"
        );
        assert!(
            clock.instant_after(u64::MAX) > Instant::now(),
            "a far second stays ahead"
        );
    }
}
