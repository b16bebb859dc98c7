//! Why the security layers decided what they did: left in the response extensions for the audit
//! and metrics layers, and counted in `streamgate_auth_decisions_total`.

use http::StatusCode;

/// Where the credential of a request came from.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthSource {
    /// A JWT bearer token (`Authorization: Bearer` or the configured cookie).
    Jwt,
    /// An API key header.
    ApiKey,
    /// Headers set by a trusted gateway.
    Gateway,
    /// No credential was presented.
    None,
    /// A role or permission check of the RBAC layers.
    Rbac,
}

impl AuthSource {
    pub(crate) const ALL: [AuthSource; 5] = [
        AuthSource::Jwt,
        AuthSource::ApiKey,
        AuthSource::Gateway,
        AuthSource::None,
        AuthSource::Rbac,
    ];

    /// The metric label value: `jwt`, `api_key`, `gateway`, `none` or `rbac`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AuthSource::Jwt => "jwt",
            AuthSource::ApiKey => "api_key",
            AuthSource::Gateway => "gateway",
            AuthSource::None => "none",
            AuthSource::Rbac => "rbac",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Why a request was let through or refused.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthReason {
    /// The credential is valid (or the policy allows the request).
    Ok,
    /// No credential was presented and anonymous requests are allowed here.
    Anonymous,
    /// No credential was presented.
    MissingCredentials,
    /// A token was sent in the query string, where tokens are never read.
    TokenInQuery,
    /// The token is not a well-formed JWS compact serialization.
    MalformedToken,
    /// The token says `alg: none`.
    AlgorithmNone,
    /// The token's algorithm is not on the issuer's allowlist.
    AlgorithmNotAllowed,
    /// The token's algorithm does not belong to the family of the key its `kid` selects.
    AlgorithmKeyMismatch,
    /// No key is known for the token's `kid` (even after a JWKS refresh).
    UnknownKeyId,
    /// The signature does not verify.
    BadSignature,
    /// `exp` has passed, beyond the leeway.
    Expired,
    /// `nbf` is in the future, beyond the leeway.
    NotYetValid,
    /// `iss` is missing or not an accepted issuer.
    WrongIssuer,
    /// `aud` is missing or names no accepted audience.
    WrongAudience,
    /// The token's `jti` or subject is on the deny-list.
    Revoked,
    /// A required claim is missing or malformed (`sub`, `exp`, the wallet address, ...).
    InvalidClaims,
    /// The API key is unknown.
    InvalidApiKey,
    /// A cookie-borne token came with a cross-site unsafe request.
    CsrfRejected,
    /// The principal lacks a required role.
    MissingRole,
    /// The principal lacks a required permission.
    MissingPermission,
    /// The route is not in the policy table and unlisted routes are denied.
    RouteNotListed,
}

impl AuthReason {
    pub(crate) const COUNT: usize = 21;

    /// The metric label value, e.g. `expired` or `bad_signature`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AuthReason::Ok => "ok",
            AuthReason::Anonymous => "anonymous",
            AuthReason::MissingCredentials => "missing_credentials",
            AuthReason::TokenInQuery => "token_in_query",
            AuthReason::MalformedToken => "malformed_token",
            AuthReason::AlgorithmNone => "alg_none",
            AuthReason::AlgorithmNotAllowed => "alg_not_allowed",
            AuthReason::AlgorithmKeyMismatch => "alg_key_mismatch",
            AuthReason::UnknownKeyId => "unknown_kid",
            AuthReason::BadSignature => "bad_signature",
            AuthReason::Expired => "expired",
            AuthReason::NotYetValid => "not_yet_valid",
            AuthReason::WrongIssuer => "wrong_issuer",
            AuthReason::WrongAudience => "wrong_audience",
            AuthReason::Revoked => "revoked",
            AuthReason::InvalidClaims => "invalid_claims",
            AuthReason::InvalidApiKey => "invalid_api_key",
            AuthReason::CsrfRejected => "csrf_rejected",
            AuthReason::MissingRole => "missing_role",
            AuthReason::MissingPermission => "missing_permission",
            AuthReason::RouteNotListed => "route_not_listed",
        }
    }

    /// A sentence for the problem+json `detail`; it never contains request data.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            AuthReason::Ok => "the credential is valid",
            AuthReason::Anonymous => "no credential was presented",
            AuthReason::MissingCredentials => "this resource requires a credential",
            AuthReason::TokenInQuery => {
                "tokens are accepted only in the Authorization header, never in the query string"
            }
            AuthReason::MalformedToken => "the token is malformed",
            AuthReason::AlgorithmNone => "unsigned tokens are not accepted",
            AuthReason::AlgorithmNotAllowed => "the token's signing algorithm is not accepted",
            AuthReason::AlgorithmKeyMismatch => {
                "the token's signing algorithm does not match its key"
            }
            AuthReason::UnknownKeyId => "the token's signing key is unknown",
            AuthReason::BadSignature => "the token's signature is invalid",
            AuthReason::Expired => "the token has expired",
            AuthReason::NotYetValid => "the token is not valid yet",
            AuthReason::WrongIssuer => "the token's issuer is not accepted",
            AuthReason::WrongAudience => "the token is not meant for this service",
            AuthReason::Revoked => "the credential has been revoked",
            AuthReason::InvalidClaims => "the token's claims are missing or malformed",
            AuthReason::InvalidApiKey => "the API key is not valid",
            AuthReason::CsrfRejected => "cross-site requests may not use the session cookie",
            AuthReason::MissingRole => "a required role is missing",
            AuthReason::MissingPermission => "a required permission is missing",
            AuthReason::RouteNotListed => "no access policy covers this route",
        }
    }

    /// What the reason means for the request.
    #[must_use]
    pub fn decision(self) -> Decision {
        match self {
            AuthReason::Ok => Decision::Allow,
            AuthReason::Anonymous => Decision::Anonymous,
            AuthReason::CsrfRejected
            | AuthReason::MissingRole
            | AuthReason::MissingPermission
            | AuthReason::RouteNotListed => Decision::Forbidden,
            _ => Decision::Unauthenticated,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// The outcome class of a decision.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Let through with a security context.
    Allow,
    /// Let through without a security context.
    Anonymous,
    /// Refused with 401.
    Unauthenticated,
    /// Refused with 403.
    Forbidden,
}

impl Decision {
    /// The metric label value: `allow`, `anonymous`, `unauthenticated` or `forbidden`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Anonymous => "anonymous",
            Decision::Unauthenticated => "unauthenticated",
            Decision::Forbidden => "forbidden",
        }
    }

    /// The status a refusal answers with; `None` when the request goes through.
    #[must_use]
    pub fn status(self) -> Option<StatusCode> {
        match self {
            Decision::Allow | Decision::Anonymous => None,
            Decision::Unauthenticated => Some(StatusCode::UNAUTHORIZED),
            Decision::Forbidden => Some(StatusCode::FORBIDDEN),
        }
    }
}

/// What a security layer decided about a request, left in the response extensions for the audit
/// and metrics layers outside: on every refusal (401, 403) and on every request let through
/// without a credential. A request that authenticated leaves its [`SecurityContext`] there instead
/// (one extension less on the hot path); [`AuthDecision::of`] reads either.
///
/// The innermost decision wins: when the RBAC layers run after [`SecurityContextLayer`], their
/// refusal replaces the authentication outcome.
///
/// [`SecurityContext`]: streamgate_core::SecurityContext
///
/// [`SecurityContextLayer`]: crate::SecurityContextLayer
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthDecision {
    /// Where the credential came from.
    pub source: AuthSource,
    /// Why.
    pub reason: AuthReason,
}

impl AuthDecision {
    /// A decision from `source` for `reason`.
    #[must_use]
    pub fn new(source: AuthSource, reason: AuthReason) -> Self {
        Self { source, reason }
    }

    /// The outcome class.
    #[must_use]
    pub fn decision(self) -> Decision {
        self.reason.decision()
    }

    /// The decision recorded in a response's extensions: the [`AuthDecision`] when one was left,
    /// else [`AuthReason::Ok`] when a [`SecurityContext`](streamgate_core::SecurityContext) was
    /// (its source is then not recorded: [`AuthSource::None`] stands in); `None` when no security
    /// layer ran.
    #[must_use]
    pub fn of(extensions: &http::Extensions) -> Option<Self> {
        extensions.get::<Self>().copied().or_else(|| {
            extensions
                .get::<streamgate_core::SecurityContext>()
                .map(|_| Self::new(AuthSource::None, AuthReason::Ok))
        })
    }
}
