//! The audit clock (the system clock, read again every second, or for tests a wall time that
//! follows tokio's clock alone, so paused-time tests move it) and the RFC 3339 millisecond
//! timestamps of the records.

use std::{
    cell::Cell,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::time::Instant;

/// How long a reading of the system clock is used before it is read again, in tokio time.
const SYSTEM_RESYNC: Duration = Duration::from_secs(1);

/// Wall-clock time derived from tokio's [`Instant`]: a reading of a wall clock plus the tokio time
/// elapsed since.
///
/// [`AuditClock::new`] follows the system clock: it is read again once a second of tokio time has
/// passed since the last reading (at most once a second per thread, whatever the number of
/// events), so a correction by NTP or a resumed VM shows within a second. A clock made with
/// [`AuditClock::starting_at`] follows tokio's clock alone: in tests with paused tokio time,
/// `tokio::time::advance` moves it, so rotation by day and retention can be tested without
/// waiting. Cheap to copy.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use streamgate_audit::AuditClock;
///
/// let clock = AuditClock::starting_at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// assert!(clock.now() >= UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AuditClock {
    /// The reading of a clock made by [`AuditClock::starting_at`]; `None` for the system clock.
    fixed: Option<Reading>,
}

/// A wall-clock time and the tokio instant it was read at.
#[derive(Debug, Clone, Copy)]
struct Reading {
    system: SystemTime,
    instant: Instant,
    /// `system` in nanoseconds since the Unix epoch (`u64::MAX` when it does not fit).
    nanos: u64,
}

thread_local! {
    /// The last reading of the system clock on this thread, shared by every system clock.
    static SYSTEM_READING: Cell<Option<Reading>> = const { Cell::new(None) };
}

impl Reading {
    fn new(system: SystemTime, instant: Instant) -> Self {
        let nanos = system
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| u64::try_from(d.as_nanos()).ok())
            .unwrap_or(u64::MAX);
        Self {
            system,
            instant,
            nanos,
        }
    }

    /// A reading of the system clock to convert `instant` with: this thread's last one, unless
    /// `instant` is more than [`SYSTEM_RESYNC`] after it.
    fn system(instant: Instant) -> Self {
        SYSTEM_READING.with(|last| {
            if let Some(reading) = last.get()
                && instant
                    .checked_duration_since(reading.instant)
                    .is_none_or(|since| since <= SYSTEM_RESYNC)
            {
                return reading;
            }
            let reading = Reading::new(SystemTime::now(), Instant::now());
            last.set(Some(reading));
            reading
        })
    }

    fn at(&self, instant: Instant) -> SystemTime {
        match instant.checked_duration_since(self.instant) {
            Some(elapsed) => self.system + elapsed,
            None => self.system - self.instant.duration_since(instant),
        }
    }

    fn unix_millis_at(&self, instant: Instant) -> u64 {
        match instant.checked_duration_since(self.instant) {
            Some(elapsed) if self.nanos != u64::MAX => {
                let elapsed = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
                self.nanos.saturating_add(elapsed) / 1_000_000
            }
            _ => unix_millis(self.at(instant)),
        }
    }
}

impl Default for AuditClock {
    fn default() -> Self {
        Self::new()
    }
}

impl AuditClock {
    /// A clock that follows the system clock (read again at least once a second).
    #[must_use]
    pub fn new() -> Self {
        Self { fixed: None }
    }

    /// A clock that reads `start` now and then advances with tokio's clock alone, never reading
    /// the system clock: for tests with paused tokio time.
    #[must_use]
    pub fn starting_at(start: SystemTime) -> Self {
        Self {
            fixed: Some(Reading::new(start, Instant::now())),
        }
    }

    /// The current wall-clock time.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        self.at(Instant::now())
    }

    /// The wall-clock time at tokio instant `instant`.
    #[must_use]
    pub fn at(&self, instant: Instant) -> SystemTime {
        self.reading(instant).at(instant)
    }

    fn reading(&self, instant: Instant) -> Reading {
        match self.fixed {
            Some(reading) => reading,
            None => Reading::system(instant),
        }
    }
}

impl AuditClock {
    /// `unix_millis(self.at(instant))`, in integer arithmetic for the usual case of an instant
    /// after the clock was read.
    pub(crate) fn unix_millis_at(&self, instant: Instant) -> u64 {
        self.reading(instant).unix_millis_at(instant)
    }
}

/// Milliseconds since the Unix epoch (0 for times before it).
#[must_use]
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Days since the Unix epoch of a UTC time.
pub(crate) fn unix_day(time: SystemTime) -> u64 {
    unix_millis(time) / 86_400_000
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let yoe = year - era * 400;
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Length of a formatted timestamp: `2026-11-26T03:17:05.123Z`.
pub(crate) const TIMESTAMP_LEN: usize = 24;

thread_local! {
    /// The last second formatted and its `YYYY-MM-DDTHH:MM:SS`: consecutive records mostly share
    /// it, so only their milliseconds are formatted.
    static LAST_SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
}

/// Formats `time` as RFC 3339 UTC with milliseconds, `2026-11-26T03:17:05.123Z`.
pub(crate) fn format_rfc3339_millis(time: SystemTime) -> [u8; TIMESTAMP_LEN] {
    let millis = unix_millis(time);
    let secs = millis / 1000;
    let in_second = (millis % 1000) as u16;
    let prefix = LAST_SECOND.with(|last| {
        let (second, prefix) = last.get();
        if second == secs {
            return prefix;
        }
        let prefix = format_second(secs);
        last.set((secs, prefix));
        prefix
    });
    let mut out = *b"0000-00-00T00:00:00.000Z";
    out[..19].copy_from_slice(&prefix);
    out[20] = b'0' + (in_second / 100) as u8;
    out[21] = b'0' + (in_second / 10 % 10) as u8;
    out[22] = b'0' + (in_second % 10) as u8;
    out
}

/// `YYYY-MM-DDTHH:MM:SS` of a second since the Unix epoch.
fn format_second(secs: u64) -> [u8; 19] {
    let in_day = secs % 86_400;
    let mut out = *b"0000-00-00T00:00:00";
    out[..10].copy_from_slice(&format_date(secs / 86_400));
    for (at, value) in [
        (11, in_day / 3600),
        (14, in_day / 60 % 60),
        (17, in_day % 60),
    ] {
        out[at] = b'0' + (value / 10) as u8;
        out[at + 1] = b'0' + (value % 10) as u8;
    }
    out
}

/// `YYYY-MM-DD` of a day since the Unix epoch.
fn format_date(days: u64) -> [u8; 10] {
    let (year, month, day) = civil_from_days(days as i64);
    let mut out = *b"0000-00-00";
    let year = year.clamp(0, 9999) as u64;
    let mut put = |at: usize, width: usize, mut value: u64| {
        for i in (0..width).rev() {
            out[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, u64::from(month));
    put(8, 2, u64::from(day));
    out
}

/// The formatted timestamp as a `String`.
pub(crate) fn rfc3339_string(time: SystemTime) -> String {
    String::from_utf8_lossy(&format_rfc3339_millis(time)).into_owned()
}

/// Parses the timestamps this crate writes (`YYYY-MM-DDTHH:MM:SS.mmmZ`; the fraction may have 0
/// to 9 digits).
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || *b.last()? != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            part.iter()
                .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')),
        )
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut nanos = 0u64;
    let rest = &b[19..b.len() - 1];
    if !rest.is_empty() {
        if rest[0] != b'.' || rest.len() < 2 || rest.len() > 10 {
            return None;
        }
        let digits = num(20..b.len() - 1)?;
        nanos = digits * 10u64.pow(u32::try_from(10 - rest.len()).ok()?);
    }
    let days = days_from_civil(year as i64, month as u32, day as u32);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

/// `serde` helpers for RFC 3339 millisecond timestamps.
pub(crate) mod serde_rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let bytes = super::format_rfc3339_millis(*time);
        s.serialize_str(std::str::from_utf8(&bytes).unwrap_or("1970-01-01T00:00:00.000Z"))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        super::parse_rfc3339(&text)
            .ok_or_else(|| D::Error::custom("expected an RFC 3339 UTC timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_127_025_123);
        let text = rfc3339_string(t);
        assert_eq!(text, "2025-11-26T03:17:05.123Z");
        assert_eq!(parse_rfc3339(&text), Some(t));
        assert_eq!(rfc3339_string(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339_string(leap), "2000-02-29T00:00:00.000Z");
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(leap));
    }

    #[test]
    fn consecutive_timestamps_across_second_and_day_boundaries() {
        // The formatter keeps the last second's text: every step must still be exact.
        let midnight = 1_764_115_200_000u64; // 2025-11-26T00:00:00.000Z
        let mut expected_day = "2025-11-25";
        for millis in (midnight - 2_500..midnight + 2_500).step_by(7) {
            let t = UNIX_EPOCH + Duration::from_millis(millis);
            let text = rfc3339_string(t);
            assert_eq!(parse_rfc3339(&text), Some(t), "{text}");
            if millis >= midnight {
                expected_day = "2025-11-26";
            }
            assert!(text.starts_with(expected_day), "{text}");
        }
        // And going back in time.
        let earlier = UNIX_EPOCH + Duration::from_millis(1_000_123);
        assert_eq!(rfc3339_string(earlier), "1970-01-01T00:16:40.123Z");
    }

    #[test]
    fn round_trips_every_day_for_centuries() {
        for day in (0..80_000i64).step_by(7) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in [
            "",
            "2025-11-26",
            "2025-11-26T03:17:05+01:00",
            "2025-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn millis_at_an_instant_agree_with_the_wall_clock_time() {
        let clock =
            AuditClock::starting_at(UNIX_EPOCH + Duration::from_nanos(1_764_127_025_123_999_999));
        let start = Instant::now();
        for step in [0, 1, 999_999, 1_000_000, 86_400_000_000_000] {
            let at = start + Duration::from_nanos(step);
            assert_eq!(
                clock.unix_millis_at(at),
                unix_millis(clock.at(at)),
                "{step}"
            );
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        let later = AuditClock::starting_at(UNIX_EPOCH + Duration::from_secs(10));
        assert_eq!(later.unix_millis_at(start), 5_000);
    }

    #[tokio::test(start_paused = true)]
    async fn the_system_clock_is_read_again_once_a_second_has_passed() {
        // Paused tokio time moves while the system clock hardly does, as the monotonic clock
        // and the system clock part after an NTP step or a VM suspend.
        let clock = AuditClock::new();
        let near_system = |time: SystemTime| {
            let system = SystemTime::now();
            let gap = system
                .duration_since(time)
                .or_else(|_| time.duration_since(system))
                .unwrap();
            assert!(
                gap < Duration::from_secs(60),
                "{gap:?} from the system clock"
            );
        };
        near_system(clock.now());
        tokio::time::advance(Duration::from_millis(500)).await;
        let half = clock.now();
        tokio::time::advance(Duration::from_millis(500)).await;
        // Within a second of the last reading, tokio time is followed exactly.
        assert_eq!(
            clock.now().duration_since(half).unwrap(),
            Duration::from_millis(500)
        );
        tokio::time::advance(Duration::from_secs(86_400)).await;
        near_system(clock.now());
        let at = Instant::now();
        assert_eq!(clock.unix_millis_at(at), unix_millis(clock.at(at)));
        // Instants before the last reading are converted from it.
        let before = at - Duration::from_secs(30);
        assert_eq!(
            clock.at(at).duration_since(clock.at(before)).unwrap(),
            Duration::from_secs(30)
        );
        assert_eq!(AuditClock::default().at(at), clock.at(at));
    }

    #[tokio::test(start_paused = true)]
    async fn clock_follows_paused_tokio_time() {
        let start = UNIX_EPOCH + Duration::from_secs(1000);
        let clock = AuditClock::starting_at(start);
        tokio::time::advance(Duration::from_secs(86_400)).await;
        assert_eq!(clock.now(), start + Duration::from_secs(86_400));
    }
}
