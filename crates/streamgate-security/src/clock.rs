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
}
