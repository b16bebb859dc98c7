//! Identity headers set by a trusted gateway (`x-user-id`, `x-roles`, ...), honoured only when the
//! connection comes from a trusted proxy. From anyone else they are removed from the request, so
//! no handler can read a forged one either.
//!
//! ```
//! use streamgate_core::TrustedProxies;
//! use streamgate_security::GatewayHeaders;
//!
//! let gateway = GatewayHeaders::new(TrustedProxies::parse(["10.0.0.0/8"]).unwrap())
//!     .roles_header(http::HeaderName::from_static("x-auth-roles"));
//! # let _ = gateway;
//! ```

use http::{HeaderMap, HeaderName, HeaderValue, Request};
use streamgate_core::{EthAddress, SecurityContext, TrustedProxies, peer_addr};

use crate::AuthReason;

/// Which headers a trusted gateway sets, and which peers are trusted to set them.
///
/// Defaults: `x-user-id`, `x-roles` and `x-permissions` (comma-separated), `x-wallet-address`.
///
/// The gateway must set each header once, replacing what the client sent: a request from a
/// trusted peer with two lines of one of them (the client's and the gateway's, from a gateway
/// that appends) is refused (401, `invalid_claims`), since which one is the gateway's cannot be
/// told.
#[derive(Debug, Clone)]
#[must_use]
pub struct GatewayHeaders {
    trusted: TrustedProxies,
    user: HeaderName,
    roles: HeaderName,
    permissions: HeaderName,
    wallet: HeaderName,
}

impl GatewayHeaders {
    /// Honours the headers from `trusted` peers only.
    pub fn new(trusted: TrustedProxies) -> Self {
        Self {
            trusted,
            user: HeaderName::from_static("x-user-id"),
            roles: HeaderName::from_static("x-roles"),
            permissions: HeaderName::from_static("x-permissions"),
            wallet: HeaderName::from_static("x-wallet-address"),
        }
    }

    /// The header naming the user.
    pub fn user_header(mut self, name: HeaderName) -> Self {
        self.user = name;
        self
    }

    /// The header listing roles.
    pub fn roles_header(mut self, name: HeaderName) -> Self {
        self.roles = name;
        self
    }

    /// The header listing permissions.
    pub fn permissions_header(mut self, name: HeaderName) -> Self {
        self.permissions = name;
        self
    }

    /// The header carrying the wallet address.
    pub fn wallet_header(mut self, name: HeaderName) -> Self {
        self.wallet = name;
        self
    }

    /// Whether the request came straight from a trusted proxy.
    pub(crate) fn peer_is_trusted<B>(&self, request: &Request<B>) -> bool {
        peer_addr(request.extensions())
            .is_some_and(|peer| self.trusted.contains(peer.ip().to_canonical()))
    }

    /// Removes the identity headers (from an untrusted peer).
    pub(crate) fn strip(&self, headers: &mut HeaderMap) {
        for name in [&self.user, &self.roles, &self.permissions, &self.wallet] {
            if headers.contains_key(name) {
                headers.remove(name);
            }
        }
    }

    pub(crate) fn presents(&self, headers: &HeaderMap) -> bool {
        headers.contains_key(&self.user)
    }

    /// The context from the headers of a trusted peer.
    pub(crate) fn context(&self, headers: &HeaderMap) -> Result<SecurityContext, AuthReason> {
        // One line at most of each: several mean the client's copy reached us beside the
        // gateway's.
        let once = |name: &HeaderName| -> Result<Option<&HeaderValue>, AuthReason> {
            let mut lines = headers.get_all(name).iter();
            let first = lines.next();
            match lines.next() {
                Some(_) => Err(AuthReason::InvalidClaims),
                None => Ok(first),
            }
        };
        let user = once(&self.user)?
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or(AuthReason::InvalidClaims)?;
        let list = |name: &HeaderName| -> Result<Vec<String>, AuthReason> {
            let mut out = Vec::new();
            if let Some(value) = once(name)? {
                let value = value.to_str().map_err(|_| AuthReason::InvalidClaims)?;
                out.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
            }
            Ok(out)
        };
        let mut builder = SecurityContext::builder(user)
            .roles(list(&self.roles)?)
            .permissions(list(&self.permissions)?);
        if let Some(wallet) = once(&self.wallet)? {
            let wallet = wallet
                .to_str()
                .ok()
                .and_then(|w| EthAddress::parse(w.trim()).ok())
                .ok_or(AuthReason::InvalidClaims)?;
            builder = builder.wallet(wallet);
        }
        Ok(builder.build())
    }
}
