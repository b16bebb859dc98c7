//! Acceptance 4: a JWKS served by an in-test server on 127.0.0.1, fetched at most once per
//! interval, with key rotation and cache expiry, under paused tokio time.
//!
//! The server runs in the test's own current-thread runtime. Paused time only auto-advances when
//! no task can run; a loopback write makes the peer readable at once, so the fetch completes
//! before its 5 s timeout could be reached by auto-advance. Time moves only by `advance`.

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::State, routing::get};
use common::*;
use serde_json::{Value, json};
use streamgate_security::{
    AuthReason, Issuer, JwksSource, JwtAuth, SecurityContextLayer,
    jsonwebtoken::{Algorithm, EncodingKey, jwk::Jwk},
};

const ISSUER: &str = "https://jwks.test";

#[derive(Clone, Default)]
struct Served {
    document: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

impl Served {
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn serve(&self, keys: &[(&EncodingKey, &str)]) {
        let keys: Vec<Value> = keys
            .iter()
            .map(|(key, kid)| {
                let mut jwk = Jwk::from_encoding_key(key, Algorithm::RS256).unwrap();
                jwk.common.key_id = Some((*kid).to_owned());
                serde_json::to_value(jwk).unwrap()
            })
            .collect();
        *self.document.lock().unwrap() = json!({ "keys": keys });
    }
}

async fn jwks_server(served: Served) -> String {
    let app = Router::new()
        .route(
            "/.well-known/jwks.json",
            get(|State(served): State<Served>| async move {
                served.fetches.fetch_add(1, Ordering::SeqCst);
                axum::Json(served.document.lock().unwrap().clone())
            }),
        )
        .with_state(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}/.well-known/jwks.json")
}

fn token(jwt: &JwtAuth, key: &EncodingKey, kid: &str, lifetime: u64) -> String {
    let now = jwt.clock().unix_seconds();
    sign(
        Algorithm::RS256,
        Some(kid),
        key,
        &json!({"iss": ISSUER, "sub": "user-1", "exp": now + lifetime}),
    )
}

#[tokio::test(start_paused = true)]
async fn unknown_kid_bursts_fetch_once_per_interval_and_rotation_is_picked_up() {
    let served = Served::default();
    let (key_1, key_2) = (rsa_key(), rsa2_key());
    served.serve(&[(&key_1, "k1")]);
    let url = jwks_server(served.clone()).await;
    let jwt = JwtAuth::builder()
        .issuer(
            Issuer::new(ISSUER).jwks(
                JwksSource::url(&url, false)
                    .unwrap()
                    .refresh_interval(Duration::from_secs(60)),
            ),
        )
        .build()
        .unwrap();

    // Nothing is fetched before a token needs a key.
    assert_eq!(served.fetches(), 0);
    let first = token(&jwt, &key_1, "k1", 3600);
    assert_eq!(jwt.verify(&first).await.unwrap().user_id(), "user-1");
    assert_eq!(served.fetches(), 1);

    // A burst of unknown kids within the interval: no fetch at all.
    let burst = |count: usize| {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..count {
            let jwt = jwt.clone();
            let token = token(&jwt, &key_1, &format!("made-up-{i}"), 3600);
            tasks.spawn(async move { jwt.verify(&token).await });
        }
        tasks
    };
    let results = burst(20).join_all().await;
    assert!(results.iter().all(|r| *r == Err(AuthReason::UnknownKeyId)));
    assert_eq!(served.fetches(), 1);

    // After the interval, a burst causes exactly one fetch.
    tokio::time::advance(Duration::from_secs(61)).await;
    let results = burst(50).join_all().await;
    assert!(results.iter().all(|r| *r == Err(AuthReason::UnknownKeyId)));
    assert_eq!(served.fetches(), 2);

    // The issuer rotates to k2. Within the interval the new kid is not fetched yet...
    served.serve(&[(&key_2, "k2")]);
    let rotated = token(&jwt, &key_2, "k2", 3600);
    assert_eq!(jwt.verify(&rotated).await, Err(AuthReason::UnknownKeyId));
    assert_eq!(served.fetches(), 2);
    // ...after it, the first token with k2 triggers the fetch and passes.
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(jwt.verify(&rotated).await.unwrap().user_id(), "user-1");
    assert_eq!(served.fetches(), 3);
    // A token of the retired key that was never cached is refused now.
    let retired = token(&jwt, &key_1, "k1", 3600);
    assert_eq!(jwt.verify(&retired).await, Err(AuthReason::UnknownKeyId));
}

#[tokio::test(start_paused = true)]
async fn cached_token_stops_being_accepted_when_exp_passes() {
    let served = Served::default();
    let key = rsa_key();
    served.serve(&[(&key, "k1")]);
    let url = jwks_server(served.clone()).await;
    let jwt = JwtAuth::builder()
        .issuer(Issuer::new(ISSUER).jwks(JwksSource::url(&url, false).unwrap()))
        .leeway(Duration::from_secs(5))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(SecurityContextLayer::builder().jwt(jwt.clone()).build());

    let short = token(&jwt, &key, "k1", 30);
    let auth = format!("Bearer {short}");
    for _ in 0..3 {
        assert_eq!(
            fetch(&app, "/", &[("authorization", &auth)]).await.status(),
            200
        );
        tokio::time::advance(Duration::from_secs(10)).await;
    }
    // 30 s of exp + 5 s of leeway: refused from 36 s on, by our clock.
    tokio::time::advance(Duration::from_secs(6)).await;
    let response = fetch(&app, "/", &[("authorization", &auth)]).await;
    assert_eq!(response.status(), 401);
    assert_eq!(body_json(response).await["reason"], "expired");
    assert_eq!(served.fetches(), 1);
}

#[tokio::test(start_paused = true)]
async fn jwks_file_is_loaded_at_start() {
    let served = Served::default();
    let key = rsa_key();
    served.serve(&[(&key, "file-key")]);
    let dir = std::env::temp_dir().join(format!("streamgate-security-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, served.document.lock().unwrap().to_string()).unwrap();
    let jwt = JwtAuth::builder()
        .issuer(Issuer::new(ISSUER).jwks(JwksSource::file(&path)))
        .build()
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let valid = token(&jwt, &key, "file-key", 60);
    assert_eq!(jwt.verify(&valid).await.unwrap().user_id(), "user-1");
}

#[tokio::test(start_paused = true)]
async fn a_custom_fetcher_brings_its_own_client() {
    // For https (or any transport) without this crate's `https` feature.
    let served = Served::default();
    let key = rsa_key();
    served.serve(&[(&key, "custom")]);
    let fetched = served.clone();
    let jwt = JwtAuth::builder()
        .issuer(Issuer::new(ISSUER).jwks(JwksSource::custom(move || {
            let served = fetched.clone();
            async move {
                served.fetches.fetch_add(1, Ordering::SeqCst);
                Ok(bytes::Bytes::from(
                    served.document.lock().unwrap().to_string(),
                ))
            }
        })))
        .build()
        .unwrap();
    let valid = token(&jwt, &key, "custom", 60);
    assert_eq!(jwt.verify(&valid).await.unwrap().user_id(), "user-1");
    assert_eq!(served.fetches(), 1);
}
