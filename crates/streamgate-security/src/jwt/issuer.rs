//! One token issuer: its name (`iss`), audiences, algorithms, keys and claim mapping.

use std::{sync::Arc, time::SystemTime};

use arc_swap::ArcSwap;
use jsonwebtoken::Algorithm;

use super::{
    ClaimMapping, JwksSource, JwtKey,
    keys::{KeySet, keys_from_jwks},
};
use crate::{Clock, ConfigError};

/// A trusted token issuer. Tokens must name it in `iss`.
///
/// ```
/// use jsonwebtoken::Algorithm;
/// use streamgate_security::{ClaimMapping, Issuer, JwtKey};
///
/// let issuer = Issuer::new("https://id.example.com")
///     .audience("items-api")
///     .algorithms([Algorithm::HS256])
///     .key(JwtKey::hmac(b"a long random secret, 32 bytes or more").with_kid("2025-01"))
///     .claims(ClaimMapping::default().roles("realm_access.roles"));
/// # let _ = issuer;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Issuer {
    pub(crate) name: String,
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: Option<Vec<Algorithm>>,
    pub(crate) keys: Vec<JwtKey>,
    pub(crate) jwks: Option<JwksSource>,
    pub(crate) claims: ClaimMapping,
}

impl Issuer {
    /// An issuer whose tokens carry `iss: name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            audiences: Vec::new(),
            algorithms: None,
            keys: Vec::new(),
            jwks: None,
            claims: ClaimMapping::default(),
        }
    }

    /// Accepts tokens whose `aud` names `audience`. With at least one audience configured, a token
    /// without a matching `aud` is refused.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// The algorithms accepted (default: every algorithm of each key's family).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Adds a verification key.
    pub fn key(mut self, key: JwtKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Loads keys from a JWKS file or URL as well.
    pub fn jwks(mut self, source: JwksSource) -> Self {
        self.jwks = Some(source);
        self
    }

    /// Where roles, permissions, scopes and the wallet live in this issuer's tokens.
    pub fn claims(mut self, claims: ClaimMapping) -> Self {
        self.claims = claims;
        self
    }
}

/// An issuer at run time: its current key set and the JWKS refresh state.
#[derive(Debug)]
pub(crate) struct IssuerKeys {
    pub(crate) issuer: Issuer,
    current: ArcSwap<KeySet>,
    /// When the JWKS was last fetched (or a fetch was attempted).
    last_fetch: tokio::sync::Mutex<Option<SystemTime>>,
}

impl IssuerKeys {
    pub(crate) fn new(issuer: Issuer) -> Result<Self, ConfigError> {
        if issuer.name.is_empty() {
            return Err(ConfigError::new("an issuer needs a name (the `iss` claim)"));
        }
        if issuer.keys.is_empty() && issuer.jwks.is_none() {
            return Err(ConfigError::new(format!(
                "issuer `{}` has no keys and no JWKS",
                issuer.name
            )));
        }
        if issuer.algorithms.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError::new(format!(
                "issuer `{}` allows no algorithm",
                issuer.name
            )));
        }
        let mut keys = issuer.keys.clone();
        if let Some(jwks) = &issuer.jwks {
            if issuer.keys.iter().any(JwtKey::is_hmac) {
                return Err(ConfigError::new(format!(
                    "issuer `{}` mixes HMAC secrets with a JWKS of asymmetric keys; a token could \
                     then be signed with a public key used as an HMAC secret. Give each issuer one \
                     kind of key",
                    issuer.name
                )));
            }
            if let Some(body) = jwks.read_file_now() {
                keys.extend(
                    keys_from_jwks(&body?)
                        .map_err(|e| ConfigError::new(format!("issuer `{}`: {e}", issuer.name)))?,
                );
            }
        }
        let set = KeySet::new(keys);
        set.check(&issuer.name)?;
        Ok(Self {
            issuer,
            current: ArcSwap::from_pointee(set),
            last_fetch: tokio::sync::Mutex::new(None),
        })
    }

    /// The key for `kid`, fetching the JWKS when it is unknown and the refresh interval allows.
    pub(crate) async fn key_for(&self, kid: Option<&str>, clock: &Clock) -> Option<JwtKey> {
        if let Some(key) = self.current.load().select(kid) {
            return Some(key.clone());
        }
        let jwks = self.issuer.jwks.as_ref()?;
        let mut last_fetch = self.last_fetch.lock().await;
        // Another request may have refreshed the set while this one waited.
        if let Some(key) = self.current.load().select(kid) {
            return Some(key.clone());
        }
        let now = clock.now();
        if let Some(last) = *last_fetch
            && now < last + jwks.refresh_interval
        {
            return None;
        }
        *last_fetch = Some(now);
        match jwks.fetch().await {
            Ok(body) => match self.replace_keys(&body) {
                Ok(()) => {
                    tracing::info!(issuer = %self.issuer.name, "JWKS refreshed");
                }
                Err(error) => {
                    tracing::warn!(issuer = %self.issuer.name, %error, "JWKS refused");
                }
            },
            Err(error) => {
                tracing::warn!(issuer = %self.issuer.name, %error, "JWKS fetch failed");
            }
        }
        drop(last_fetch);
        self.current.load().select(kid).cloned()
    }

    fn replace_keys(&self, body: &[u8]) -> Result<(), ConfigError> {
        let mut keys = self.issuer.keys.clone();
        keys.extend(keys_from_jwks(body)?);
        let set = KeySet::new(keys);
        set.check(&self.issuer.name)?;
        self.current.store(Arc::new(set));
        Ok(())
    }

    /// Whether `alg` is on the allowlist.
    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.issuer
            .algorithms
            .as_ref()
            .is_none_or(|list| list.contains(&alg))
    }
}
