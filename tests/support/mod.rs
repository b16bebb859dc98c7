//! Serving a router on a real socket, and a small client, for the end-to-end tests.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;

use axum::{Router, body::Body};
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// A running server and a client for it.
pub struct Served {
    pub addr: SocketAddr,
    client: Client<HttpConnector, Body>,
}

/// A finished response: status, headers and the whole body as text.
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Served {
    /// Serves `app` on 127.0.0.1 with an ephemeral port, connection info included.
    pub async fn start(app: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self {
            addr,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends `request` (its URI a path) and reads the whole answer.
    pub async fn send(&self, mut request: Request<Body>) -> Answer {
        let uri = format!("http://{}{}", self.addr, request.uri());
        *request.uri_mut() = uri.parse().unwrap();
        let response: Response<_> = self.client.request(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }
}

/// Whether a test that needs the program `name` should run: `Some(path)` when it is installed;
/// `None` (with the reason printed) when it is not and this is not CI. Under `CI=true` a missing
/// program fails the test.
pub fn program(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    match found {
        Some(path) => Some(path),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{name} is not installed, and CI=true requires it (apt-get install)")
        }
        None => {
            eprintln!("skipped: {name} is not installed (set CI=true to make this a failure)");
            None
        }
    }
}

/// The HMAC secret of the issuer `https://id.example.com` in the tests' auth sections.
#[cfg(feature = "security")]
pub const TEST_SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

/// A token of `https://id.example.com` for audience `files`, signed with [`TEST_SECRET`], valid
/// for ten minutes.
#[cfg(feature = "security")]
pub fn test_token(subject: &str, roles: &[&str]) -> String {
    use streamgate::security::jsonwebtoken;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let claims = serde_json::json!({
        "iss": "https://id.example.com", "aud": "files", "sub": subject, "exp": exp, "roles": roles,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap()
}
