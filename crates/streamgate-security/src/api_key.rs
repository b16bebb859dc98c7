//! API keys from a configured header, stored as SHA-256 hashes, each mapped to a principal.
//!
//! ```
//! use streamgate_core::SecurityContext;
//! use streamgate_security::ApiKeys;
//!
//! // The configuration holds only the hash: `ApiKeys::hash("sk_live_...")` prints it once.
//! let hash = ApiKeys::hash("sk_test_0123456789");
//! let keys = ApiKeys::new(http::HeaderName::from_static("x-api-key"))
//!     .sha256_hex(&hash, SecurityContext::builder("billing-job").roles(["billing"]).build())
//!     .unwrap();
//! # let _ = keys;
//! ```

use std::collections::HashMap;

use http::HeaderName;
use sha2::{Digest, Sha256};
use streamgate_core::SecurityContext;

use crate::{AuthReason, ConfigError};

/// The accepted API keys and the header they come in.
#[derive(Clone)]
pub struct ApiKeys {
    pub(crate) header: HeaderName,
    keys: HashMap<[u8; 32], SecurityContext>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("header", &self.header)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl ApiKeys {
    /// No keys yet, read from `header` (for example `x-api-key`).
    #[must_use]
    pub fn new(header: HeaderName) -> Self {
        Self {
            header,
            keys: HashMap::new(),
        }
    }

    /// The lowercase hex SHA-256 of `key`, the form the configuration stores.
    #[must_use]
    pub fn hash(key: &str) -> String {
        Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Accepts the key whose SHA-256 is `hex` (64 hex digits) as `principal`.
    ///
    /// # Errors
    /// `hex` is not 64 hex digits.
    pub fn sha256_hex(
        mut self,
        hex: &str,
        principal: SecurityContext,
    ) -> Result<Self, ConfigError> {
        let digest = parse_hex(hex.trim()).ok_or_else(|| {
            ConfigError::new("an API key hash must be 64 hex digits (SHA-256 of the key)")
        })?;
        self.keys.insert(digest, principal);
        Ok(self)
    }

    /// Accepts the plaintext `key` as `principal` (hashed here; prefer
    /// [`ApiKeys::sha256_hex`] so configuration files never hold the key).
    #[must_use]
    pub fn key(mut self, key: &str, principal: SecurityContext) -> Self {
        self.keys
            .insert(Sha256::digest(key.as_bytes()).into(), principal);
        self
    }

    pub(crate) fn authenticate(&self, presented: &[u8]) -> Result<SecurityContext, AuthReason> {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        self.keys
            .get(&digest)
            .cloned()
            .ok_or(AuthReason::InvalidApiKey)
    }
}

fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_key_matches_only_its_key() {
        let keys = ApiKeys::new(HeaderName::from_static("x-api-key"))
            .sha256_hex(
                &ApiKeys::hash("secret-1"),
                SecurityContext::builder("svc").build(),
            )
            .unwrap();
        assert_eq!(keys.authenticate(b"secret-1").unwrap().user_id(), "svc");
        assert_eq!(
            keys.authenticate(b"secret-2").unwrap_err(),
            AuthReason::InvalidApiKey
        );
        assert!(
            ApiKeys::new(HeaderName::from_static("x-api-key"))
                .sha256_hex("abc", SecurityContext::builder("svc").build())
                .is_err()
        );
    }
}
