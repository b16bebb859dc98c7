//! 401 and 403 answers: RFC 6750 `WWW-Authenticate` challenges and problem+json bodies that say
//! why without echoing the credential. The response also carries the [`AuthDecision`] and, for
//! the audit layer, the reason as an [`AuditReason`].

use axum_core::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header::WWW_AUTHENTICATE};
use streamgate_core::{AuditReason, Problem};

use crate::{AuthDecision, AuthReason, Decision};

/// Builds the refusal for `decision`; `token_given` adds `error="invalid_token"` to a 401.
///
/// A CSRF refusal is a 403 without a challenge: the credential is fine and has every scope it
/// needs, the request just came from another site, so `insufficient_scope` would mislead.
pub(crate) fn refusal(decision: AuthDecision, token_given: bool) -> Response {
    let reason = decision.reason;
    let (status, title, challenge) = match reason.decision() {
        Decision::Forbidden if reason == AuthReason::CsrfRejected => {
            (StatusCode::FORBIDDEN, "Forbidden", None)
        }
        Decision::Forbidden => (
            StatusCode::FORBIDDEN,
            "Forbidden",
            Some(HeaderValue::from_static(
                "Bearer error=\"insufficient_scope\"",
            )),
        ),
        _ if token_given => (
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            Some(HeaderValue::from_static("Bearer error=\"invalid_token\"")),
        ),
        _ => (
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            Some(HeaderValue::from_static("Bearer")),
        ),
    };
    let mut response = Problem::new(status)
        .with_title(title)
        .with_detail(reason.description())
        .with_member("reason", reason.as_str())
        .into_response();
    if let Some(challenge) = challenge {
        response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
    }
    let extensions = response.extensions_mut();
    extensions.insert(decision);
    extensions.insert(AuditReason::new(reason.as_str()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuthSource;

    #[test]
    fn forbidden_says_insufficient_scope() {
        let response = refusal(
            AuthDecision::new(AuthSource::Rbac, AuthReason::MissingRole),
            true,
        );
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Bearer error=\"insufficient_scope\""
        );
        assert_eq!(
            response.extensions().get::<AuditReason>(),
            Some(&AuditReason::new("missing_role"))
        );
    }

    #[test]
    fn csrf_refusal_has_no_challenge() {
        let response = refusal(
            AuthDecision::new(AuthSource::Jwt, AuthReason::CsrfRejected),
            true,
        );
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            streamgate_core::PROBLEM_JSON
        );
    }

    #[test]
    fn missing_credentials_is_a_bare_challenge() {
        let response = refusal(
            AuthDecision::new(AuthSource::None, AuthReason::MissingCredentials),
            false,
        );
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
        assert!(response.extensions().get::<AuthDecision>().is_some());
    }
}
