//! Verification keys: HMAC secrets, RSA / EC / Ed25519 public keys, JWKs.

use std::{collections::HashMap, fmt, sync::Arc};

use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey,
    jwk::{Jwk, JwkSet},
};

use crate::ConfigError;

/// One key a token can be verified with. The key fixes the algorithm family; a token whose `alg`
/// belongs to another family is refused before any signature check.
#[derive(Clone)]
pub struct JwtKey {
    pub(crate) kid: Option<String>,
    pub(crate) key: Arc<DecodingKey>,
    pub(crate) family: AlgorithmFamily,
    pub(crate) algorithm: Option<Algorithm>,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material (an HMAC secret is a password).
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl JwtKey {
    fn new(key: DecodingKey, family: AlgorithmFamily) -> Self {
        Self {
            kid: None,
            key: Arc::new(key),
            family,
            algorithm: None,
        }
    }

    /// An HMAC secret (HS256 / HS384 / HS512).
    #[must_use]
    pub fn hmac(secret: impl AsRef<[u8]>) -> Self {
        Self::new(
            DecodingKey::from_secret(secret.as_ref()),
            AlgorithmFamily::Hmac,
        )
    }

    /// An RSA public key in PEM (RS* and PS* algorithms).
    ///
    /// # Errors
    /// The PEM is not an RSA public key.
    pub fn rsa_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        DecodingKey::from_rsa_pem(pem.as_ref())
            .map(|key| Self::new(key, AlgorithmFamily::Rsa))
            .map_err(|e| ConfigError::new(format!("invalid RSA public key PEM: {e}")))
    }

    /// An EC (P-256 or P-384) public key in PEM (ES256 / ES384).
    ///
    /// # Errors
    /// The PEM is not an EC public key.
    pub fn ec_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        DecodingKey::from_ec_pem(pem.as_ref())
            .map(|key| Self::new(key, AlgorithmFamily::Ec))
            .map_err(|e| ConfigError::new(format!("invalid EC public key PEM: {e}")))
    }

    /// An Ed25519 public key in PEM (EdDSA).
    ///
    /// # Errors
    /// The PEM is not an Ed25519 public key.
    pub fn ed25519_pem(pem: impl AsRef<[u8]>) -> Result<Self, ConfigError> {
        DecodingKey::from_ed_pem(pem.as_ref())
            .map(|key| Self::new(key, AlgorithmFamily::Ed))
            .map_err(|e| ConfigError::new(format!("invalid Ed25519 public key PEM: {e}")))
    }

    /// A key from a JWK; its `kid` and `alg` are taken over when present.
    ///
    /// # Errors
    /// The JWK is not a supported verification key.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, ConfigError> {
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| ConfigError::new(format!("unsupported JWK: {e}")))?;
        let family = key.family();
        let mut key = Self::new(key, family);
        key.kid = jwk.common.key_id.clone();
        if let Some(alg) = jwk.common.key_algorithm {
            let alg: Algorithm = alg
                .to_string()
                .parse()
                .map_err(|_| ConfigError::new(format!("JWK algorithm {alg} cannot verify")))?;
            key = key.with_algorithm(alg);
        }
        Ok(key)
    }

    /// Names the key; tokens select it with their `kid` header.
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Restricts the key to exactly one algorithm of its family.
    #[must_use]
    pub fn with_algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = Some(algorithm);
        self
    }

    /// The key's id.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Whether `alg` may be verified with this key.
    pub(crate) fn accepts(&self, alg: Algorithm) -> bool {
        match self.algorithm {
            Some(pinned) => pinned == alg,
            None => self.family.algorithms().contains(&alg),
        }
    }

    pub(crate) fn is_hmac(&self) -> bool {
        self.family == AlgorithmFamily::Hmac
    }
}

/// The keys of one issuer at one moment: by `kid`, plus the keys without one.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<String, JwtKey>,
    unnamed: Vec<JwtKey>,
}

impl KeySet {
    pub(crate) fn new(keys: impl IntoIterator<Item = JwtKey>) -> Self {
        let mut set = Self::default();
        for key in keys {
            match key.kid.clone() {
                Some(kid) => {
                    set.by_kid.insert(kid, key);
                }
                None => set.unnamed.push(key),
            }
        }
        set
    }

    /// The key for a token's `kid`; a token without one may use the only key there is, or the
    /// only key configured without a `kid`.
    pub(crate) fn select(&self, kid: Option<&str>) -> Option<&JwtKey> {
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None if self.unnamed.len() == 1 => self.unnamed.first(),
            None if self.unnamed.is_empty() && self.by_kid.len() == 1 => {
                self.by_kid.values().next()
            }
            None => None,
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &JwtKey> {
        self.by_kid.values().chain(self.unnamed.iter())
    }

    /// Refuses a set that mixes HMAC secrets with public keys.
    pub(crate) fn check_families(&self, issuer: &str) -> Result<(), ConfigError> {
        let hmac = self.iter().filter(|k| k.is_hmac()).count();
        let total = self.iter().count();
        if hmac > 0 && hmac < total {
            return Err(ConfigError::new(format!(
                "issuer `{issuer}` mixes HMAC secrets with asymmetric keys; a token could then be \
                 signed with a public key used as an HMAC secret. Give each issuer one kind of key"
            )));
        }
        Ok(())
    }
}

/// Parses a JWKS document into keys, skipping keys meant for encryption.
pub(crate) fn keys_from_jwks(body: &[u8]) -> Result<Vec<JwtKey>, ConfigError> {
    let set: JwkSet = serde_json::from_slice(body)
        .map_err(|e| ConfigError::new(format!("invalid JWKS document: {e}")))?;
    let mut keys = Vec::with_capacity(set.keys.len());
    for jwk in &set.keys {
        if matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        ) {
            continue;
        }
        keys.push(JwtKey::from_jwk(jwk)?);
    }
    Ok(keys)
}
