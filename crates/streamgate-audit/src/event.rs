//! The audit event: who did what to which resource, when, from where, and with what outcome.

use std::{borrow::Cow, net::IpAddr, time::SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use streamgate_core::{EthAddress, SecurityContext};
use uuid::Uuid;

use crate::{
    clock::{serde_rfc3339, unix_millis},
    id,
};

/// Well-known event types. Any string may be used; these are the ones the layer emits.
pub mod event_type {
    /// A request the policy records that fits no narrower type.
    pub const HTTP_REQUEST: &str = "http_request";
    /// Sign-in, token and session events, and every 401.
    pub const AUTHENTICATION: &str = "authentication";
    /// Every 403.
    pub const AUTHORIZATION: &str = "authorization";
    /// A request with a non-safe method (POST, PUT, PATCH, DELETE, ...).
    pub const DATA_MODIFICATION: &str = "data_modification";
    /// Refusals that protect the service: 413, 415, 422, 429.
    pub const SECURITY: &str = "security";
    /// Requests to admin routes.
    pub const ADMIN: &str = "admin";
}

/// Who acted: a user (with their wallet when known), a wallet alone, or nobody known.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// An authenticated user.
    User {
        /// The user id ([`SecurityContext::user_id`]).
        id: String,
        /// The user's wallet, EIP-55 normalized.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wallet: Option<EthAddress>,
    },
    /// A wallet with no user id.
    Wallet {
        /// The address, EIP-55 normalized.
        address: EthAddress,
    },
    /// No identity is known.
    Anonymous,
}

impl Actor {
    /// A user actor.
    #[must_use]
    pub fn user(id: impl Into<String>) -> Self {
        Actor::User {
            id: id.into(),
            wallet: None,
        }
    }

    /// Whether this actor is `who`: the user id, or (case-insensitively) the wallet address.
    #[must_use]
    pub fn matches(&self, who: &str) -> bool {
        match self {
            Actor::User { id, wallet } => {
                id == who || wallet.is_some_and(|w| w.to_string().eq_ignore_ascii_case(who))
            }
            Actor::Wallet { address } => address.to_string().eq_ignore_ascii_case(who),
            Actor::Anonymous => who == "anonymous",
        }
    }
}

impl From<&SecurityContext> for Actor {
    fn from(context: &SecurityContext) -> Self {
        Actor::User {
            id: context.user_id().to_owned(),
            wallet: context.wallet().copied(),
        }
    }
}

impl From<&str> for Actor {
    /// A user id, or `anonymous` for [`Actor::Anonymous`].
    fn from(who: &str) -> Self {
        if who == "anonymous" {
            Actor::Anonymous
        } else {
            Actor::user(who)
        }
    }
}

impl From<String> for Actor {
    fn from(who: String) -> Self {
        if who == "anonymous" {
            Actor::Anonymous
        } else {
            Actor::user(who)
        }
    }
}

impl From<EthAddress> for Actor {
    fn from(address: EthAddress) -> Self {
        Actor::Wallet { address }
    }
}

/// The result of the audited action.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It worked (1xx, 2xx, 3xx).
    Success,
    /// The request was wrong (4xx other than the refusals).
    Failure,
    /// The request was refused: unauthenticated (401), forbidden (403), rate limited (429).
    Denied,
    /// The service failed (5xx).
    Error,
}

impl Outcome {
    /// The outcome class of an HTTP status.
    #[must_use]
    pub fn from_status(status: u16) -> Self {
        match status {
            401 | 403 | 429 => Outcome::Denied,
            400..=499 => Outcome::Failure,
            500.. => Outcome::Error,
            _ => Outcome::Success,
        }
    }

    /// `success`, `failure`, `denied` or `error`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

/// Why an inner layer decided what it did, left in the response extensions for the audit layer
/// (defined in `streamgate-core`, so the security, rate-limit and validation layers leave one
/// without depending on this crate).
pub use streamgate_core::AuditReason;

/// The reason recorded for a security status when no inner layer gave one.
#[must_use]
pub(crate) fn default_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        401 => "unauthenticated",
        403 => "forbidden",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "validation_failed",
        429 => "rate_limited",
        _ => return None,
    })
}

/// Whether `status` is one of the security outcomes the default policy always records.
#[must_use]
#[inline]
pub fn is_security_status(status: u16) -> bool {
    matches!(status, 401 | 403 | 413 | 415 | 422 | 429)
}

/// One audit record.
///
/// Serialized as one JSON object; every string is escaped by `serde_json`, so CR, LF and control
/// characters in any field cannot start a new record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// A UUIDv7 (time-ordered).
    pub id: Uuid,
    /// When it happened (UTC, millisecond precision in records).
    #[serde(with = "serde_rfc3339")]
    pub timestamp: SystemTime,
    /// What kind of event (see [`event_type`]).
    #[serde(rename = "type")]
    pub event_type: Cow<'static, str>,
    /// Who.
    pub actor: Actor,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// The request id (`x-request-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Cow<'static, str>>,
    /// The matched route template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// What was acted on (for requests: the path, without the query).
    pub resource: String,
    /// What was done.
    pub action: Cow<'static, str>,
    /// The result.
    pub outcome: Outcome,
    /// The HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why (an [`AuditReason`] or the default reason of a security status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Cow<'static, str>>,
    /// Time to the response head, in milliseconds. Absent for requests recorded only because of
    /// their security outcome (plain reads under the default policy are not timed, to keep
    /// their cost near zero).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Anything else, redacted.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

impl AuditEvent {
    /// An event at `timestamp` (cut to milliseconds) with a fresh UUIDv7 and no request fields.
    #[must_use]
    pub fn new(
        timestamp: SystemTime,
        event_type: impl Into<Cow<'static, str>>,
        actor: Actor,
        action: impl Into<Cow<'static, str>>,
        resource: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        let millis = unix_millis(timestamp);
        Self {
            id: id::new_v7(millis),
            timestamp: SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(millis),
            event_type: event_type.into(),
            actor,
            source_ip: None,
            request_id: None,
            method: None,
            route: None,
            resource: resource.into(),
            action: action.into(),
            outcome,
            status: None,
            reason: None,
            latency_ms: None,
            metadata: Map::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_stay_inside_one_line() {
        let mut event = AuditEvent::new(
            SystemTime::UNIX_EPOCH,
            "upload",
            Actor::user("u\r\n{\"forged\":true}"),
            "upload_file",
            "file\r\n1\u{0}\u{1b}[31m",
            Outcome::Success,
        );
        event.reason = Some("a\nb".into());
        let line = serde_json::to_string(&event).unwrap();
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\u{0}'));
        assert!(!line.contains('\u{1b}'));
        let back: AuditEvent = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn outcomes_follow_status_classes() {
        assert_eq!(Outcome::from_status(200), Outcome::Success);
        assert_eq!(Outcome::from_status(302), Outcome::Success);
        assert_eq!(Outcome::from_status(401), Outcome::Denied);
        assert_eq!(Outcome::from_status(429), Outcome::Denied);
        assert_eq!(Outcome::from_status(422), Outcome::Failure);
        assert_eq!(Outcome::from_status(503), Outcome::Error);
    }

    #[test]
    fn actors_match_ids_and_wallets() {
        let wallet = EthAddress::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap();
        let actor = Actor::User {
            id: "u1".into(),
            wallet: Some(wallet),
        };
        assert!(actor.matches("u1"));
        assert!(actor.matches("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"));
        assert!(!actor.matches("u2"));
        assert!(Actor::from("anonymous").matches("anonymous"));
    }
}
