//! The HMAC-SHA256 key that signs checkpoints and the head.

use std::{fmt, sync::Arc};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The key that signs checkpoints and the head file (HMAC-SHA256). Keep it outside the log
/// directory: whoever holds it can re-sign a rewritten log.
///
/// ```
/// use streamgate_audit::SigningKey;
///
/// let key = SigningKey::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f").unwrap();
/// assert!(SigningKey::new(b"short").is_err());
/// # let _ = key;
/// ```
#[derive(Clone)]
pub struct SigningKey {
    bytes: Arc<[u8]>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([REDACTED])")
    }
}

/// A key shorter than 16 bytes, or hex that does not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidKey(&'static str);

impl fmt::Display for InvalidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidKey {}

impl SigningKey {
    /// A key from raw bytes (at least 16; 32 random bytes recommended).
    ///
    /// # Errors
    /// When `bytes` is shorter than 16 bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, InvalidKey> {
        if bytes.len() < 16 {
            return Err(InvalidKey(
                "the audit signing key must be at least 16 bytes",
            ));
        }
        Ok(Self {
            bytes: bytes.into(),
        })
    }

    /// A key from hex text (surrounding whitespace ignored).
    ///
    /// # Errors
    /// When the text is not hex, or decodes to fewer than 16 bytes.
    pub fn from_hex(text: &str) -> Result<Self, InvalidKey> {
        let bytes = hex::decode(text.trim())
            .map_err(|_| InvalidKey("the audit signing key is not valid hex"))?;
        Self::new(&bytes)
    }

    fn mac(&self, message: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(message);
        mac
    }

    /// The signature of `message`, as hex.
    pub(crate) fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.mac(message).finalize().into_bytes())
    }

    /// Whether `signature` (hex) signs `message`; compared in constant time.
    pub(crate) fn verify(&self, message: &[u8], signature: &str) -> bool {
        match hex::decode(signature) {
            Ok(bytes) => self.mac(message).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}
