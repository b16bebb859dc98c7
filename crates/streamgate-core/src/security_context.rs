//! Who is making a request: the identity every layer can read once the security layer has run.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use streamgate_core::{EthAddress, SecurityContext};
//!
//! let wallet = EthAddress::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap();
//! let context = SecurityContext::builder("user-42")
//!     .wallet(wallet)
//!     .roles(["uploader"])
//!     .permissions(["files:write", "files:read"])
//!     .issuer("https://id.example.com")
//!     .expires_at(SystemTime::now() + Duration::from_secs(300))
//!     .build();
//! assert!(context.has_role("uploader"));
//! assert!(context.has_permission("files:write"));
//! assert_eq!(context.wallet(), Some(&wallet));
//! ```

use std::{convert::Infallible, sync::Arc, time::SystemTime};

use axum_core::{
    extract::{FromRequestParts, OptionalFromRequestParts},
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header::WWW_AUTHENTICATE, request::Parts};
use serde::Serialize;

use crate::{EthAddress, Problem};

/// The authenticated principal of a request: user id, wallet address, roles, permissions, scopes,
/// issuer and expiry.
///
/// The security layer inserts it into the request extensions and leaves a copy in the response
/// extensions for the layers outside it (audit, metrics). Cloning is a reference-count increment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityContext {
    inner: Arc<Identity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Identity {
    user_id: String,
    wallet: Option<EthAddress>,
    roles: Vec<String>,
    permissions: Vec<String>,
    scopes: Vec<String>,
    issuer: Option<String>,
    #[serde(skip)]
    expires_at: Option<SystemTime>,
}

impl SecurityContext {
    /// Starts a context for `user_id` with no roles, permissions or scopes.
    pub fn builder(user_id: impl Into<String>) -> SecurityContextBuilder {
        SecurityContextBuilder {
            identity: Identity {
                user_id: user_id.into(),
                wallet: None,
                roles: Vec::new(),
                permissions: Vec::new(),
                scopes: Vec::new(),
                issuer: None,
                expires_at: None,
            },
        }
    }

    /// The principal's id (a token's `sub`, an API key's principal, a gateway's user header).
    #[must_use]
    pub fn user_id(&self) -> &str {
        &self.inner.user_id
    }

    /// The principal's wallet address, EIP-55 normalized.
    #[must_use]
    pub fn wallet(&self) -> Option<&EthAddress> {
        self.inner.wallet.as_ref()
    }

    /// The principal's roles.
    #[must_use]
    pub fn roles(&self) -> &[String] {
        &self.inner.roles
    }

    /// The principal's permissions (after role expansion, when the security layer does it).
    #[must_use]
    pub fn permissions(&self) -> &[String] {
        &self.inner.permissions
    }

    /// OAuth scopes granted to the credential.
    #[must_use]
    pub fn scopes(&self) -> &[String] {
        &self.inner.scopes
    }

    /// Who issued the credential (a token's `iss`).
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// When the credential stops being valid.
    #[must_use]
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.inner.expires_at
    }

    /// Whether the principal has `role`.
    #[must_use]
    pub fn has_role(&self, role: &str) -> bool {
        self.inner.roles.iter().any(|r| r == role)
    }

    /// Whether the principal has `permission`.
    #[must_use]
    pub fn has_permission(&self, permission: &str) -> bool {
        self.inner.permissions.iter().any(|p| p == permission)
    }

    /// Whether the credential was granted `scope`.
    #[must_use]
    pub fn has_scope(&self, scope: &str) -> bool {
        self.inner.scopes.iter().any(|s| s == scope)
    }

    /// Whether the credential has expired at `now`.
    #[must_use]
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.inner.expires_at.is_some_and(|exp| exp <= now)
    }
}

/// Builds a [`SecurityContext`]; made by [`SecurityContext::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct SecurityContextBuilder {
    identity: Identity,
}

impl SecurityContextBuilder {
    /// Sets the wallet address.
    pub fn wallet(mut self, wallet: EthAddress) -> Self {
        self.identity.wallet = Some(wallet);
        self
    }

    /// Adds roles.
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.identity
            .roles
            .extend(roles.into_iter().map(Into::into));
        self
    }

    /// Adds permissions.
    pub fn permissions<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        permissions: I,
    ) -> Self {
        self.identity
            .permissions
            .extend(permissions.into_iter().map(Into::into));
        self
    }

    /// Adds scopes.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.identity
            .scopes
            .extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Sets the issuer.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.identity.issuer = Some(issuer.into());
        self
    }

    /// Sets the expiry.
    pub fn expires_at(mut self, expires_at: SystemTime) -> Self {
        self.identity.expires_at = Some(expires_at);
        self
    }

    /// Finishes the context.
    #[must_use]
    pub fn build(self) -> SecurityContext {
        SecurityContext {
            inner: Arc::new(self.identity),
        }
    }
}

/// The request has no [`SecurityContext`]: 401 with `WWW-Authenticate: Bearer` and a
/// problem+json body. Extract `Option<SecurityContext>` where a caller may be anonymous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingSecurityContext(pub(crate) ());

impl std::fmt::Display for MissingSecurityContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("this resource requires a credential")
    }
}

impl std::error::Error for MissingSecurityContext {}

impl IntoResponse for MissingSecurityContext {
    fn into_response(self) -> Response {
        let mut response = Problem::new(StatusCode::UNAUTHORIZED)
            .with_detail("this resource requires a credential")
            .with_member("reason", "missing_credentials")
            .into_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SecurityContext {
    type Rejection = MissingSecurityContext;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SecurityContext>()
            .cloned()
            .ok_or(MissingSecurityContext(()))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for SecurityContext {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<SecurityContext>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn extractor_answers_401_bearer_without_a_context() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let rejection =
            <SecurityContext as FromRequestParts<()>>::from_request_parts(&mut parts, &())
                .await
                .unwrap_err();
        let response = rejection.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
        let optional =
            <SecurityContext as OptionalFromRequestParts<()>>::from_request_parts(&mut parts, &())
                .await
                .unwrap();
        assert_eq!(optional, None);
    }

    #[tokio::test]
    async fn extractor_returns_the_context() {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        let context = SecurityContext::builder("u1").roles(["admin"]).build();
        parts.extensions.insert(context.clone());
        let got = <SecurityContext as FromRequestParts<()>>::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        assert_eq!(got, context);
    }
}
