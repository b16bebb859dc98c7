//! The bench routes, the same for every server measured: `bench_server` (bare and StreamGate)
//! and the hand-assembled ecosystem server (`benches/ecosystem`), which includes this file.

use axum::{Json, extract::Path, http::StatusCode, response::IntoResponse};
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
