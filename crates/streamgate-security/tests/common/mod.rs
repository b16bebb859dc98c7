//! Shared by the integration tests: keys, token minting, requests, metric reads.
#![allow(dead_code, unreachable_pub)]

use axum::{Router, body::Body, response::Response};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use http::Request;
use http_body_util::BodyExt;
use streamgate_security::jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use tower::ServiceExt;

pub const RSA_PRIVATE: &[u8] = include_bytes!("../keys/rsa_private.pem");
pub const RSA_PUBLIC: &[u8] = include_bytes!("../keys/rsa_public.pem");
pub const RSA2_PRIVATE: &[u8] = include_bytes!("../keys/rsa2_private.pem");
pub const EC_PRIVATE: &[u8] = include_bytes!("../keys/ec_private.pem");
pub const EC_PUBLIC: &[u8] = include_bytes!("../keys/ec_public.pem");
pub const ED_PRIVATE: &[u8] = include_bytes!("../keys/ed_private.pem");
pub const ED_PUBLIC: &[u8] = include_bytes!("../keys/ed_public.pem");
pub const HMAC_SECRET: &[u8] = b"test-secret-0123456789abcdef0123456789";

/// Signs `claims` with `alg`, naming `kid`.
pub fn sign(
    alg: Algorithm,
    kid: Option<&str>,
    key: &EncodingKey,
    claims: &serde_json::Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

pub fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap()
}

pub fn rsa2_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA2_PRIVATE).unwrap()
}

pub fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_PRIVATE).unwrap()
}

pub fn ed_key() -> EncodingKey {
    EncodingKey::from_ed_pem(ED_PRIVATE).unwrap()
}

pub fn hmac_key() -> EncodingKey {
    EncodingKey::from_secret(HMAC_SECRET)
}

/// A token with a hand-written header, signed with HMAC over `secret` (or unsigned for `none`).
pub fn forge(
    header: &serde_json::Value,
    claims: &serde_json::Value,
    secret: Option<&[u8]>,
) -> String {
    use hmac::{Hmac, Mac};
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = match secret {
        Some(secret) => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
            mac.update(message.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        None => String::new(),
    };
    format!("{message}.{signature}")
}

pub async fn fetch(app: &Router, uri: &str, headers: &[(&str, &str)]) -> Response {
    send(app, "GET", uri, headers).await
}

pub async fn send(app: &Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

pub async fn body_json(response: Response) -> serde_json::Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

pub async fn body_text(response: Response) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The value of `streamgate_auth_decisions_total` with the given labels in a rendered exposition.
pub fn decisions(rendered: &str, source: &str, decision: &str, reason: &str) -> u64 {
    let wanted = [
        format!("source=\"{source}\""),
        format!("decision=\"{decision}\""),
        format!("reason=\"{reason}\""),
    ];
    rendered
        .lines()
        .filter(|line| line.starts_with("streamgate_auth_decisions_total{"))
        .filter(|line| wanted.iter().all(|w| line.contains(w.as_str())))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
