//! Verification keys: HMAC secrets, RSA / EC / Ed25519 public keys, JWKs.

use std::{collections::HashMap, fmt, sync::Arc};

use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey,
    jwk::{AlgorithmParameters, Jwk},
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
    /// The length of an HMAC secret given by [`JwtKey::hmac`], checked when the issuer is built.
    pub(crate) secret_bytes: Option<usize>,
}

/// The shortest HMAC secret accepted: the output size of HS256, which RFC 7518 (section 3.2)
/// requires of its key. A shorter one can be found by trying guesses against one token.
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

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
            secret_bytes: None,
        }
    }

    /// An HMAC secret (HS256 / HS384 / HS512): random bytes, at least
    /// [`MIN_HMAC_SECRET_BYTES`] of them, or the issuer it is given to refuses to build.
    #[must_use]
    pub fn hmac(secret: impl AsRef<[u8]>) -> Self {
        let secret = secret.as_ref();
        Self {
            secret_bytes: Some(secret.len()),
            ..Self::new(DecodingKey::from_secret(secret), AlgorithmFamily::Hmac)
        }
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
        if let AlgorithmParameters::OctetKey(octets) = &jwk.algorithm {
            // The length was valid base64url for `DecodingKey::from_jwk` to accept it.
            key.secret_bytes = Some(octets.value.trim_end_matches('=').len() * 3 / 4);
        }
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

    /// Refuses a set that mixes HMAC secrets with public keys, or holds an HMAC secret shorter
    /// than [`MIN_HMAC_SECRET_BYTES`] (configured or from a JWKS `oct` key).
    pub(crate) fn check(&self, issuer: &str) -> Result<(), ConfigError> {
        for key in self.iter() {
            if let Some(bytes) = key.secret_bytes.filter(|b| *b < MIN_HMAC_SECRET_BYTES) {
                let kid = key
                    .kid
                    .as_deref()
                    .map_or_else(String::new, |kid| format!(" (kid `{kid}`)"));
                return Err(ConfigError::new(format!(
                    "issuer `{issuer}`: the HMAC secret{kid} has {bytes} bytes; an HMAC secret \
                     needs at least {MIN_HMAC_SECRET_BYTES} random bytes (RFC 7518, section \
                     3.2), or tokens can be forged by guessing it"
                )));
            }
        }
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

/// Parses a JWKS document into the keys that can verify tokens.
///
/// Identity providers publish other keys beside their signing keys (Keycloak, for one, lists an
/// `RSA-OAEP` encryption key by default). Keys meant for encryption (`use: enc`) and keys this
/// library cannot verify with (an unknown key type or curve, an algorithm it does not support)
/// are skipped, each with a warning naming its `kid`, so that one of them cannot take the
/// issuer's signing keys down with it. Only a document that is not a JWKS is refused.
pub(crate) fn keys_from_jwks(body: &[u8]) -> Result<Vec<JwtKey>, ConfigError> {
    /// The document's shape, with each key left unparsed so that one bad key is one skip.
    #[derive(serde::Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document = serde_json::from_slice(body)
        .map_err(|e| ConfigError::new(format!("invalid JWKS document: {e}")))?;
    let mut keys = Vec::with_capacity(document.keys.len());
    for raw in document.keys {
        let kid = raw
            .get("kid")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("(none)")
            .to_owned();
        let parsed = serde_json::from_value::<Jwk>(raw)
            .map_err(|e| ConfigError::new(format!("not a JWK this library reads: {e}")))
            .and_then(|jwk| {
                if matches!(
                    jwk.common.public_key_use,
                    Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
                ) {
                    return Ok(None);
                }
                JwtKey::from_jwk(&jwk).map(Some)
            });
        match parsed {
            Ok(Some(key)) => keys.push(key),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(kid = %kid, %error, "JWKS key skipped: it cannot verify tokens");
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_that_cannot_verify_are_skipped_and_the_signing_key_kept() {
        let document = json!({"keys": [
            // Keycloak's default encryption key carries no `use`, only its algorithm.
            {"kty": "RSA", "kid": "enc-1", "alg": "RSA-OAEP",
             "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw",
             "e": "AQAB"},
            // A curve jsonwebtoken does not verify.
            {"kty": "EC", "kid": "p521", "crv": "P-521", "alg": "ES512",
             "x": "AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt",
             "y": "AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1"},
            // A key type no library knows.
            {"kty": "XYZ", "kid": "future"},
            {"kty": "oct", "kid": "signing", "k": "c3RyZWFtZ2F0ZS1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg"}
        ]});
        let keys = keys_from_jwks(document.to_string().as_bytes()).unwrap();
        let kids: Vec<_> = keys.iter().filter_map(JwtKey::kid).collect();
        assert_eq!(kids, ["signing"]);
    }

    #[test]
    fn a_document_that_is_not_a_jwks_is_refused() {
        let error = keys_from_jwks(br#"{"issuer": "x"}"#).unwrap_err();
        assert!(
            error.to_string().contains("invalid JWKS document"),
            "{error}"
        );
    }
}
