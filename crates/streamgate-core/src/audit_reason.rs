//! [`AuditReason`]: why a layer refused or let through a request, left in the response extensions
//! for the audit layer outside it.
//!
//! The security, rate-limit and validation layers each leave their own detailed type (an auth
//! decision, the violated policy, the validation failure); they also leave this one short code, so
//! the audit layer records why without depending on any of them.
//!
//! ```
//! use axum::response::IntoResponse;
//! use streamgate_core::AuditReason;
//!
//! let mut response = http::StatusCode::UNAUTHORIZED.into_response();
//! response.extensions_mut().insert(AuditReason::new("expired_token"));
//! let reason = response.extensions().get::<AuditReason>().unwrap();
//! assert_eq!(reason.as_str(), "expired_token");
//! ```

use std::{borrow::Cow, fmt};

/// A short reason code such as `expired_token`, `rate_limited` or `validation_failed`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuditReason(Cow<'static, str>);

impl AuditReason {
    /// A reason such as `invalid_token` or `rate_limited`. Keep it a short code: never put a
    /// credential or a submitted value in it.
    #[must_use]
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        Self(reason.into())
    }

    /// The reason text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The reason as a `Cow`, without copying a static one.
    #[must_use]
    pub fn to_cow(&self) -> Cow<'static, str> {
        self.0.clone()
    }
}

impl fmt::Display for AuditReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
