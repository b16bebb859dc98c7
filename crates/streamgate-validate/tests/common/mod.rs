//! Request types and helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)]

use axum::{
    Json, Router,
    body::Body,
    extract::DefaultBodyLimit,
    http::{Request, Response},
    routing::post,
};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::Value;
use streamgate_validate::{Sanitize, Sanitizer, Valid};
use tower::ServiceExt;
use validator::Validate;

/// An order whose first field is renamed on the wire and whose items are validated one by one.
#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct Order {
    #[serde(rename = "displayName")]
    #[validate(length(min = 3, max = 40))]
    pub display_name: String,
    #[validate(nested)]
    pub items: Vec<Item>,
    pub quantity: u32,
}

/// One line of an [`Order`].
#[derive(Debug, Deserialize, Validate)]
pub struct Item {
    #[validate(length(min = 1, max = 10))]
    pub name: String,
}

impl Sanitize for Order {
    fn sanitize(&mut self) {
        Sanitizer::TEXT.apply(&mut self.display_name);
        self.items.sanitize();
    }
}

impl Sanitize for Item {
    fn sanitize(&mut self) {
        Sanitizer::TEXT.apply(&mut self.name);
    }
}

streamgate_validate::wire_names!(Order { display_name => "displayName" } nested { items => Item });

streamgate_validate::wire_names!(Item {});

/// `POST /orders` taking `Valid<Json<Order>>`, with a 64 KiB body limit.
pub fn orders_app() -> Router {
    Router::new()
        .route(
            "/orders",
            post(|Valid(Json(order)): Valid<Json<Order>>| async move {
                format!("{} x{}", order.display_name, order.quantity)
            }),
        )
        .layer(DefaultBodyLimit::max(64 * 1024))
}

/// A JSON `POST /orders` with `body`.
pub fn json_post(body: impl Into<Body>) -> Request<Body> {
    Request::post("/orders")
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

/// The response's status, content type and JSON body.
pub async fn read(response: Response<Body>) -> (u16, String, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, content_type, body)
}

/// Sends `request` to `app`.
pub async fn send(app: Router, request: Request<Body>) -> (u16, String, Value) {
    read(app.oneshot(request).await.unwrap()).await
}
