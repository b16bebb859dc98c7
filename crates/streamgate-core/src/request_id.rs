//! Request ids in `x-request-id`: kept when the client or a gateway sent one, made (UUID v4) when
//! absent, and copied onto the response. This is tower-http's request-id middleware, configured
//! with [`MakeUuidV4`], an id maker that allocates once per id.
//!
//! A client's id is kept as it was sent, as tower-http keeps it: put a gateway that sets its own
//! in front when clients must not choose theirs. [`request_id`] reads only a UTF-8 one, and the
//! audit trail records its first 64 characters (none when they are not visible ASCII).
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

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_layer::Stack;
use uuid::Uuid;

/// The request id header, `x-request-id`.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The layers that set and propagate `x-request-id`.
pub type RequestIdLayer = Stack<PropagateRequestIdLayer, SetRequestIdLayer<MakeUuidV4>>;

/// Makes random (v4) UUID request ids, hyphenated and lower-case.
///
/// tower-http's `MakeRequestUuid` formats the id into a `String`, parses it into a header value
/// (a copy) and, when the id is cloned into the [`RequestId`] extension and the response, moves
/// the bytes once more into shared storage. This maker encodes the id on the stack and hands the
/// header value shared storage from the start: one allocation per id, and every clone is a
/// reference-count increment.
#[derive(Debug, Clone, Copy, Default)]
pub struct MakeUuidV4;

impl MakeRequestId for MakeUuidV4 {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let mut text = [0_u8; uuid::fmt::Hyphenated::LENGTH];
        Uuid::new_v4().hyphenated().encode_lower(&mut text);
        HeaderValue::from_maybe_shared(Bytes::from_owner(text))
            .ok()
            .map(RequestId::new)
    }
}

/// Sets `x-request-id` when absent (UUID v4) and copies it onto the response.
///
/// Layers inside it read the id from the request header or tower-http's [`RequestId`] extension.
#[must_use]
pub fn request_id_layer() -> RequestIdLayer {
    Stack::new(
        PropagateRequestIdLayer::new(REQUEST_ID_HEADER),
        SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeUuidV4),
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
        let parsed = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(parsed.get_version_num(), 4, "{id}");
        assert_eq!(
            id,
            parsed.hyphenated().to_string(),
            "lower-case, hyphenated"
        );
    }

    #[tokio::test]
    async fn the_handler_sees_the_id_of_the_response_and_each_request_gets_its_own() {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let response = app()
                .oneshot(Request::get("/").body(Body::empty()).unwrap())
                .await
                .unwrap();
            let header = response.headers()[REQUEST_ID_HEADER].clone();
            let body = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            assert_eq!(header.as_bytes(), &body[..]);
            seen.push(header);
        }
        assert_ne!(seen[0], seen[1]);
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
