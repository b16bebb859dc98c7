//! Cost of one full JWT verification (cache off): header, key selection, signature, claims.
//!
//! `cargo bench -p streamgate-security --bench verify -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use streamgate_security::{
    Issuer, JwtAuth, JwtKey,
    jsonwebtoken::{Algorithm, EncodingKey, Header, encode},
};

const HMAC_SECRET: &[u8] = b"bench-secret-0123456789abcdef0123456789";

fn verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let jwt = runtime.block_on(async {
        JwtAuth::builder()
            .issuer(
                Issuer::new("https://id.bench")
                    .key(
                        JwtKey::rsa_pem(include_bytes!("../tests/keys/rsa_public.pem"))
                            .unwrap()
                            .with_kid("rsa"),
                    )
                    .key(
                        JwtKey::ec_pem(include_bytes!("../tests/keys/ec_public.pem"))
                            .unwrap()
                            .with_kid("ec"),
                    ),
            )
            .issuer(Issuer::new("https://hmac.bench").key(JwtKey::hmac(HMAC_SECRET).with_kid("hs")))
            .cache_capacity(0)
            .build()
            .unwrap()
    });
    let claims = |iss: &str| {
        json!({
            "iss": iss, "sub": "user-1", "exp": jwt.clock().unix_seconds() + 3600,
            "roles": ["viewer", "editor"], "permissions": ["items:read"],
            "wallet": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        })
    };
    let sign = |alg, kid: &str, key: &EncodingKey, iss: &str| {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        encode(&header, &claims(iss), key).unwrap()
    };
    let tokens = [
        (
            "HS256",
            sign(
                Algorithm::HS256,
                "hs",
                &EncodingKey::from_secret(HMAC_SECRET),
                "https://hmac.bench",
            ),
        ),
        (
            "RS256",
            sign(
                Algorithm::RS256,
                "rsa",
                &EncodingKey::from_rsa_pem(include_bytes!("../tests/keys/rsa_private.pem"))
                    .unwrap(),
                "https://id.bench",
            ),
        ),
        (
            "ES256",
            sign(
                Algorithm::ES256,
                "ec",
                &EncodingKey::from_ec_pem(include_bytes!("../tests/keys/ec_private.pem")).unwrap(),
                "https://id.bench",
            ),
        ),
    ];
    let mut group = c.benchmark_group("jwt_verify");
    for (name, token) in &tokens {
        runtime.block_on(jwt.verify(token)).unwrap();
        group.bench_function(*name, |b| {
            b.iter(|| runtime.block_on(jwt.verify(black_box(token))).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
