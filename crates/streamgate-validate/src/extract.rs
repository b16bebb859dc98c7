//! [`Valid`]: axum extractors that deserialize, sanitize and validate, or reject with
//! problem+json.
//!
//! `Valid<Json<T>>`, `Valid<Form<T>>`, `Valid<Query<T>>` and `Valid<Path<T>>` wrap axum's own
//! extractor types; `T` implements `serde::Deserialize`, `validator::Validate`, [`Sanitize`] and
//! [`WireNames`]. The body limit is axum's [`DefaultBodyLimit`](axum::extract::DefaultBodyLimit)
//! (2 MiB unless changed); tower-http's `RequestBodyLimitLayer` works too, see the crate docs.
//!
//! ```
//! use axum::{Router, extract::{Path, Query}, routing::get, body::Body};
//! use http::Request;
//! use serde::Deserialize;
//! use streamgate_validate::{Sanitize, Valid, WireNames, validate_slug};
//! use tower::ServiceExt;
//! use validator::Validate;
//!
//! #[derive(Deserialize, Validate)]
//! struct ItemPath {
//!     #[validate(custom(function = "validate_slug"))]
//!     id: String,
//! }
//! impl Sanitize for ItemPath {}
//! impl WireNames for ItemPath {}
//!
//! #[derive(Deserialize, Validate)]
//! struct Page {
//!     #[validate(range(min = 1, max = 100))]
//!     limit: u32,
//! }
//! impl Sanitize for Page {}
//! impl WireNames for Page {}
//!
//! async fn item(Valid(Path(path)): Valid<Path<ItemPath>>, Valid(Query(page)): Valid<Query<Page>>) -> String {
//!     format!("{} {}", path.id, page.limit)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let app = Router::new().route("/items/{id}", get(item));
//! let ok = app.clone().oneshot(Request::get("/items/a-1?limit=5").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(ok.status(), 200);
//! let bad = app.oneshot(Request::get("/items/a-1?limit=500").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(bad.status(), 422);
//! # }
//! ```

use axum::{
    Form, Json, RequestExt,
    body::Body,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
};
use bytes::Bytes;
use http::{Method, request::Parts};
use http_body_util::{BodyExt, LengthLimitError};
use serde::de::DeserializeOwned;
use validator::Validate;

use crate::{
    content_type::{is_form, is_json, unsupported},
    failure::{FailureKind, ValidationFailure},
    json::{from_json_slice_with_depth, sanitize_and_validate},
    layer::ValidationConfig,
    path_params::path_failure,
    sanitize::Sanitize,
    urlencoded::from_urlencoded,
    wire_names::WireNames,
};

/// An extractor that deserializes, then sanitizes, then validates its inner extractor's type.
/// See the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Valid<E>(pub E);

/// Counts a failure on the request's route and hands it back.
fn counted(extensions: &http::Extensions, failure: ValidationFailure) -> ValidationFailure {
    ValidationConfig::current(extensions).record_failure(extensions, failure.kind());
    failure
}

/// Reads the body, limited by axum's `DefaultBodyLimit` (applied by `with_limited_body`) and by any
/// tower-http `RequestBodyLimit` around the route.
async fn read_body(body: Body) -> Result<Bytes, ValidationFailure> {
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(current) = source {
                if current.is::<LengthLimitError>() {
                    return Err(ValidationFailure::new(
                        FailureKind::PayloadTooLarge,
                        "the body is larger than the limit",
                    ));
                }
                source = current.source();
            }
            Err(ValidationFailure::new(
                FailureKind::UnreadableBody,
                "the body could not be read",
            ))
        }
    }
}

impl<S, T> FromRequest<S> for Valid<Json<T>>
where
    S: Send + Sync,
    T: DeserializeOwned + Sanitize + Validate + WireNames,
{
    type Rejection = ValidationFailure;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.with_limited_body().into_parts();
        let result = async {
            if !is_json(&parts.headers) {
                return Err(unsupported(&parts.headers, "application/json"));
            }
            let bytes = read_body(body).await?;
            let max_depth = ValidationConfig::current(&parts.extensions).max_depth();
            from_json_slice_with_depth(&bytes, max_depth)
        }
        .await;
        result
            .map(|value| Self(Json(value)))
            .map_err(|failure| counted(&parts.extensions, failure))
    }
}

impl<S, T> FromRequest<S> for Valid<Form<T>>
where
    S: Send + Sync,
    T: DeserializeOwned + Sanitize + Validate + WireNames,
{
    type Rejection = ValidationFailure;

    /// `GET` and `HEAD` read the query string, as axum's `Form` does; other methods read an
    /// `application/x-www-form-urlencoded` body.
    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.with_limited_body().into_parts();
        let result = async {
            if parts.method == Method::GET || parts.method == Method::HEAD {
                return from_urlencoded(parts.uri.query().unwrap_or_default().as_bytes());
            }
            if !is_form(&parts.headers) {
                return Err(unsupported(
                    &parts.headers,
                    "application/x-www-form-urlencoded",
                ));
            }
            from_urlencoded(&read_body(body).await?)
        }
        .await;
        result
            .map(|value| Self(Form(value)))
            .map_err(|failure| counted(&parts.extensions, failure))
    }
}

impl<S, T> FromRequestParts<S> for Valid<Query<T>>
where
    S: Send + Sync,
    T: DeserializeOwned + Sanitize + Validate + WireNames,
{
    type Rejection = ValidationFailure;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        from_urlencoded(parts.uri.query().unwrap_or_default().as_bytes())
            .map(|value| Self(Query(value)))
            .map_err(|failure| counted(&parts.extensions, failure))
    }
}

impl<S, T> FromRequestParts<S> for Valid<Path<T>>
where
    S: Send + Sync,
    T: DeserializeOwned + Sanitize + Validate + WireNames + Send,
{
    type Rejection = ValidationFailure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let result = match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(mut value)) => sanitize_and_validate(&mut value).map(|()| value),
            Err(rejection) => Err(path_failure(rejection)),
        };
        result
            .map(|value| Self(Path(value)))
            .map_err(|failure| counted(&parts.extensions, failure))
    }
}
