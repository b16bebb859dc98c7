//! A named quota applied to the keys of requests.
//!
//! ```
//! use http::StatusCode;
//! use streamgate_ratelimit::{KeyExtractor, Policy, Quota};
//!
//! // A burst per client address.
//! let per_ip = Policy::new("per-ip", Quota::per_second(100).burst(1000));
//! // A daily quota per user (IP for anonymous requests).
//! let daily = Policy::new("daily", Quota::per_day(10_000)).key(KeyExtractor::user_or_ip());
//! // Brute-force protection: only failed logins count. After five failures the next attempt is
//! // answered with 429 before the handler runs; one more attempt comes back every 3 minutes.
//! let logins = Policy::new("login-failures", Quota::per_hour(20).burst(5))
//!     .count_responses(|status| status == StatusCode::UNAUTHORIZED);
//! # let _ = (per_ip, daily, logins);
//! ```

use std::{fmt, sync::Arc};

use http::StatusCode;

use crate::{KeyExtractor, Quota};

pub(crate) type StatusPredicate = dyn Fn(StatusCode) -> bool + Send + Sync;

/// A named [`Quota`] applied per key.
///
/// ```
/// use http::StatusCode;
/// use streamgate_ratelimit::{KeyExtractor, Policy, Quota};
///
/// let per_ip = Policy::new("per-ip", Quota::per_second(100).burst(1000));
/// let daily = Policy::new("daily", Quota::per_day(10_000)).key(KeyExtractor::user_or_ip());
/// // Only failed logins count; after five, attempts get 429 until a unit comes back.
/// let logins = Policy::new("login-failures", Quota::per_hour(20).burst(5))
///     .count_responses(|status| status == StatusCode::UNAUTHORIZED);
/// # let _ = (per_ip, daily, logins);
/// ```
///
/// The name appears in the `RateLimit` headers, the `violated-policies` member of a 429 and the
/// `policy` label of the metrics, so keep it short and fixed: printable ASCII without `"` or `\`.
#[derive(Clone)]
pub struct Policy {
    pub(crate) name: Arc<str>,
    pub(crate) quota: Quota,
    pub(crate) key: KeyExtractor,
    pub(crate) counts: Option<Arc<StatusPredicate>>,
    pub(crate) shadow: bool,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("quota", &self.quota)
            .field("key", &self.key)
            .field("outcome_based", &self.counts.is_some())
            .field("shadow", &self.shadow)
            .finish()
    }
}

impl Policy {
    /// A policy keyed by client IP.
    #[must_use]
    pub fn new(name: impl Into<Arc<str>>, quota: Quota) -> Self {
        Self {
            name: name.into(),
            quota,
            key: KeyExtractor::ip(),
            counts: None,
            shadow: false,
        }
    }

    /// Sets how requests are keyed (default: client IP).
    #[must_use]
    pub fn key(mut self, key: KeyExtractor) -> Self {
        self.key = key;
        self
    }

    /// Makes the policy outcome-based: only responses whose status matches `predicate` take
    /// quota (after the response), and a request is rejected while the key has none left.
    #[must_use]
    pub fn count_responses<F>(mut self, predicate: F) -> Self
    where
        F: Fn(StatusCode) -> bool + Send + Sync + 'static,
    {
        self.counts = Some(Arc::new(predicate));
        self
    }

    /// Shadow mode for this policy: count and log what it would limit, reject nothing.
    #[must_use]
    pub fn shadow(mut self, shadow: bool) -> Self {
        self.shadow = shadow;
        self
    }

    /// The policy's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The policy's quota.
    #[must_use]
    pub fn quota(&self) -> Quota {
        self.quota
    }

    pub(crate) fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    }
}
