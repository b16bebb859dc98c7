//! Signature verification with ring, plugged into jsonwebtoken as its crypto provider.
//!
//! jsonwebtoken is built with its pure-Rust backend only (one backend, whatever features are
//! enabled). Its verifiers are several times slower than ring's on RSA and ECDSA, so this provider
//! verifies with ring and keeps the pure-Rust signers and key utilities (used to mint tokens and
//! build JWKs, not on the request path).

use std::sync::OnceLock;

use jsonwebtoken::{
    Algorithm, DecodingKey, DecodingKeyKind,
    crypto::{CryptoProvider, JwtVerifier, rust_crypto},
    errors::{Error, ErrorKind},
    signature::{self, Verifier},
};
use ring::signature::{self as ring_signature, RsaPublicKeyComponents, UnparsedPublicKey};

/// Installs the provider as jsonwebtoken's process default, unless one is installed already.
pub(crate) fn install() {
    static PROVIDER: OnceLock<CryptoProvider> = OnceLock::new();
    let provider = PROVIDER.get_or_init(|| CryptoProvider {
        signer_factory: rust_crypto::DEFAULT_PROVIDER.signer_factory,
        verifier_factory: new_verifier,
        key_utils: rust_crypto::DEFAULT_PROVIDER.key_utils.clone(),
    });
    // Another provider installed first (by the application) stays in charge.
    let _ = provider.install_default();
}

enum Key {
    Hmac(ring::hmac::Key),
    Der(&'static dyn ring_signature::VerificationAlgorithm, Vec<u8>),
    Rsa(&'static ring_signature::RsaParameters, Vec<u8>, Vec<u8>),
}

struct RingVerifier {
    algorithm: Algorithm,
    key: Key,
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>, Error> {
    use ring_signature as sig;
    let rsa = |params: &'static sig::RsaParameters| -> Result<Key, Error> {
        match key.kind() {
            DecodingKeyKind::SecretOrDer(der) => Ok(Key::Der(params, der.clone())),
            DecodingKeyKind::RsaModulusExponent { n, e } => {
                Ok(Key::Rsa(params, n.clone(), e.clone()))
            }
        }
    };
    let der = |alg: &'static dyn sig::VerificationAlgorithm| -> Result<Key, Error> {
        Ok(Key::Der(alg, key.try_get_as_bytes()?.to_vec()))
    };
    let hmac = |alg: ring::hmac::Algorithm| -> Result<Key, Error> {
        Ok(Key::Hmac(ring::hmac::Key::new(
            alg,
            key.try_get_as_bytes()?,
        )))
    };
    let family_matches = key.family() == jsonwebtoken::AlgorithmFamily::Hmac
        && matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        )
        || key.family() != jsonwebtoken::AlgorithmFamily::Hmac
            && key.family().algorithms().contains(algorithm);
    if !family_matches {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    let key = match algorithm {
        Algorithm::HS256 => hmac(ring::hmac::HMAC_SHA256)?,
        Algorithm::HS384 => hmac(ring::hmac::HMAC_SHA384)?,
        Algorithm::HS512 => hmac(ring::hmac::HMAC_SHA512)?,
        Algorithm::RS256 => rsa(&sig::RSA_PKCS1_2048_8192_SHA256)?,
        Algorithm::RS384 => rsa(&sig::RSA_PKCS1_2048_8192_SHA384)?,
        Algorithm::RS512 => rsa(&sig::RSA_PKCS1_2048_8192_SHA512)?,
        Algorithm::PS256 => rsa(&sig::RSA_PSS_2048_8192_SHA256)?,
        Algorithm::PS384 => rsa(&sig::RSA_PSS_2048_8192_SHA384)?,
        Algorithm::PS512 => rsa(&sig::RSA_PSS_2048_8192_SHA512)?,
        Algorithm::ES256 => der(&sig::ECDSA_P256_SHA256_FIXED)?,
        Algorithm::ES384 => der(&sig::ECDSA_P384_SHA384_FIXED)?,
        Algorithm::EdDSA => der(&sig::ED25519)?,
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    };
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        key,
    }))
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let verified = match &self.key {
            Key::Hmac(key) => ring::hmac::verify(key, message, signature),
            Key::Der(algorithm, der) => {
                UnparsedPublicKey::new(*algorithm, der).verify(message, signature)
            }
            Key::Rsa(params, n, e) => {
                RsaPublicKeyComponents { n, e }.verify(params, message, signature)
            }
        };
        verified.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}
