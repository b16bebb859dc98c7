//! The bench routes, the same for every server measured: `bench_server` (bare and StreamGate)
//! and the hand-assembled ecosystem server (`benches/ecosystem`), which includes this file.

use std::{net::SocketAddr, process::ExitCode};

use axum::{Json, Router, extract::Path, http::StatusCode, response::IntoResponse};
use serde::{Deserialize, Serialize};
use validator::Validate;

/// The HMAC secret and issuer of the bench token: both servers get the same `Authorization`.
pub(crate) const SECRET: &[u8] = b"streamgate-bench-secret-0123456789abcdef";
/// The issuer of the bench token.
pub(crate) const ISSUER: &str = "https://bench.streamgate.local";

/// The small JSON object `GET /items/{id}` answers.
#[derive(Debug, Serialize)]
pub(crate) struct Item {
    pub(crate) id: u64,
    pub(crate) name: &'static str,
    pub(crate) price_cents: u32,
}

/// The body of `POST /items`.
#[derive(Debug, Deserialize, Validate)]
pub(crate) struct NewItem {
    #[validate(email)]
    pub(crate) email: String,
    #[validate(length(min = 1, max = 64))]
    pub(crate) name: String,
}

/// `GET /items/{id}`.
pub(crate) async fn get_item(Path(id): Path<u64>) -> Json<Item> {
    Json(Item {
        id,
        name: "widget",
        price_cents: 1299,
    })
}

/// `POST /items` validated by hand, as a service without StreamGate does.
pub(crate) async fn create_item_by_hand(Json(item): Json<NewItem>) -> impl IntoResponse {
    match item.validate() {
        Ok(()) => (StatusCode::CREATED, item.name).into_response(),
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors.to_string()).into_response(),
    }
}

/// Serves the router `app` returns on 127.0.0.1:`port` with one current-thread runtime, as the
/// program `program` (named in its messages), and prints `listening` after the address once it
/// listens. `app` is called inside the runtime: a layer may start tasks of its own.
pub(crate) fn serve(
    program: &str,
    port: u16,
    listening: &str,
    app: impl FnOnce() -> Router,
) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("{program}: cannot listen on {addr}: {error}");
                return ExitCode::FAILURE;
            }
        };
        println!("{program} listening on http://{addr}{listening}");
        let app = app().into_make_service_with_connect_info::<SocketAddr>();
        match axum::serve(listener, app).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("{program}: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
