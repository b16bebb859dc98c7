//! Request ids in `x-request-id`: kept when the client or a gateway sent one, made (UUID v4) when
//! absent, and copied onto the response. This is tower-http's request-id middleware, configured.
//!
//! ```
//! use axum::{Router, routing::get, body::Body};
//! use http::Request;
//! use streamgate_core::request_id_layer;
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let app = Router::new().route("/", get(|| async { "ok" })).layer(request_id_layer());
//! let response = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
//! assert!(response.headers().contains_key("x-request-id"));
//! # }
//! ```

use http::HeaderName;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_layer::Stack;

/// The request id header, `x-request-id`.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The layers that set and propagate `x-request-id`.
pub type RequestIdLayer = Stack<PropagateRequestIdLayer, SetRequestIdLayer<MakeRequestUuid>>;

/// Sets `x-request-id` when absent (UUID v4) and copies it onto the response.
///
/// Layers inside it read the id from the request header or tower-http's [`RequestId`] extension.
#[must_use]
pub fn request_id_layer() -> RequestIdLayer {
    Stack::new(
        PropagateRequestIdLayer::new(REQUEST_ID_HEADER),
        SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid),
    )
}

/// The request id of a request, as text, when it has a valid one.
#[must_use]
pub fn request_id(extensions: &http::Extensions) -> Option<&str> {
    extensions
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{Router, body::Body, extract::Request, routing::get};
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route(
                "/",
                get(|request: Request| async move {
                    request_id(request.extensions())
                        .unwrap_or("none")
                        .to_owned()
                }),
            )
            .layer(request_id_layer())
    }

    #[tokio::test]
    async fn sets_an_id_when_absent() {
        let response = app()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let id = response.headers()[REQUEST_ID_HEADER].to_str().unwrap();
        assert_eq!(id.len(), 36, "{id}");
    }

    #[tokio::test]
    async fn propagates_a_given_id() {
        let response = app()
            .oneshot(
                Request::get("/")
                    .header("x-request-id", "abc-123")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.headers()[REQUEST_ID_HEADER], "abc-123");
    }
}
