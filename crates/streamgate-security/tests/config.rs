//! Acceptance 5: start-up refuses configurations that cannot be safe.

mod common;

use common::*;
use streamgate_security::{Issuer, JwksSource, JwtAuth, JwtKey, MIN_HMAC_SECRET_BYTES};

#[test]
fn hmac_mixed_with_asymmetric_keys_is_refused_naming_the_issuer() {
    let err = JwtAuth::builder()
        .issuer(Issuer::new("https://fine.test").key(JwtKey::hmac(HMAC_SECRET)))
        .issuer(
            Issuer::new("https://mixed.test")
                .key(JwtKey::hmac(HMAC_SECRET).with_kid("h"))
                .key(JwtKey::rsa_pem(RSA_PUBLIC).unwrap().with_kid("r")),
        )
        .build()
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("`https://mixed.test`"), "{message}");
    assert!(message.contains("HMAC"), "{message}");
}

#[test]
fn a_short_hmac_secret_is_refused_naming_the_issuer_and_kid() {
    for secret in [&b""[..], b"fourteen bytes", &[7; MIN_HMAC_SECRET_BYTES - 1]] {
        let err = JwtAuth::builder()
            .issuer(Issuer::new("https://weak.test").key(JwtKey::hmac(secret).with_kid("k1")))
            .build()
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("`https://weak.test`"), "{message}");
        assert!(message.contains("kid `k1`"), "{message}");
        assert!(
            message.contains(&format!("has {} bytes", secret.len())),
            "{message}"
        );
    }
    JwtAuth::builder()
        .issuer(Issuer::new("https://strong.test").key(JwtKey::hmac([7; MIN_HMAC_SECRET_BYTES])))
        .build()
        .expect("32 bytes are enough");
}

#[test]
fn a_short_oct_key_in_a_jwks_file_is_refused() {
    // "secret-secret-secret": 20 bytes.
    let document = serde_json::json!({
        "keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ", "kid": "oct-1"}]
    });
    let path = std::env::temp_dir().join(format!("streamgate-short-{}.json", std::process::id()));
    std::fs::write(&path, document.to_string()).unwrap();
    let err = JwtAuth::builder()
        .issuer(Issuer::new("https://file.test").jwks(JwksSource::file(&path)))
        .build()
        .unwrap_err();
    std::fs::remove_file(&path).unwrap();
    let message = err.to_string();
    assert!(
        message.contains("`https://file.test`") && message.contains("(kid `oct-1`) has 20 bytes"),
        "{message}"
    );
}

#[test]
fn hmac_with_a_jwks_is_refused_naming_the_issuer() {
    let err = JwtAuth::builder()
        .issuer(
            Issuer::new("https://jwks-and-secret.test")
                .key(JwtKey::hmac(HMAC_SECRET))
                .jwks(JwksSource::url("http://127.0.0.1:1/jwks.json", false).unwrap()),
        )
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("`https://jwks-and-secret.test`"),
        "{err}"
    );
}

#[test]
fn jwks_file_mixing_oct_and_rsa_keys_is_refused() {
    let rsa = streamgate_security::jsonwebtoken::jwk::Jwk::from_encoding_key(
        &rsa_key(),
        streamgate_security::jsonwebtoken::Algorithm::RS256,
    )
    .unwrap();
    let document = serde_json::json!({
        "keys": [
            serde_json::to_value(rsa).unwrap(),
            {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldCE", "kid": "oct-1"}
        ]
    });
    let path = std::env::temp_dir().join(format!("streamgate-mixed-{}.json", std::process::id()));
    std::fs::write(&path, document.to_string()).unwrap();
    let err = JwtAuth::builder()
        .issuer(Issuer::new("https://file.test").jwks(JwksSource::file(&path)))
        .build()
        .unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(err.to_string().contains("`https://file.test`"), "{err}");
}

#[test]
fn other_start_up_errors_are_explained() {
    assert!(JwtAuth::builder().build().is_err());
    let err = JwtAuth::builder()
        .issuer(Issuer::new("https://empty.test"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("no keys"), "{err}");
    assert!(JwtKey::rsa_pem(b"not a pem").is_err());
    let err = JwksSource::url("http://id.example.com/jwks", false).unwrap_err();
    assert!(err.to_string().contains("plain http"), "{err}");
}
