//! Input validation for StreamGate: `Valid<T>` axum extractors over `validator`, domain
//! validators, sanitizers and problem+json errors.
//!
//! ```
//! use axum::{Json, Router, routing::post, body::Body};
//! use http::Request;
//! use http_body_util::BodyExt;
//! use serde::Deserialize;
//! use streamgate_validate::{Sanitize, Sanitizer, Valid, ValidationLayer, WireNames, validate_email};
//! use tower::ServiceExt;
//! use validator::Validate;
//!
//! #[derive(Deserialize, Validate)]
//! #[serde(deny_unknown_fields)]
//! struct NewItem {
//!     #[validate(custom(function = "validate_email"))]
//!     email: String,
//!     #[validate(length(min = 1, max = 100))]
//!     name: String,
//! }
//! impl Sanitize for NewItem {
//!     fn sanitize(&mut self) {
//!         Sanitizer::IDENTIFIER.apply(&mut self.email);
//!         Sanitizer::TEXT.max_chars(100).apply(&mut self.name);
//!     }
//! }
//! impl WireNames for NewItem {}
//!
//! async fn create(Valid(Json(item)): Valid<Json<NewItem>>) -> String {
//!     item.name
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let app = Router::new().route("/items", post(create)).layer(ValidationLayer::new());
//! let request = |body: &'static str| {
//!     Request::post("/items").header("content-type", "application/json").body(Body::from(body)).unwrap()
//! };
//!
//! let ok = app.clone().oneshot(request(r#"{"email": " ada@example.com", "name": "Ada "}"#)).await.unwrap();
//! assert_eq!(ok.status(), 200);
//!
//! let bad = app.oneshot(request(r#"{"email": "nope", "name": "Ada"}"#)).await.unwrap();
//! assert_eq!(bad.status(), 422);
//! assert_eq!(bad.headers()["content-type"], "application/problem+json");
//! let body: serde_json::Value =
//!     serde_json::from_slice(&bad.into_body().collect().await.unwrap().to_bytes()).unwrap();
//! assert_eq!(body["errors"][0]["pointer"], "/email");
//! assert_eq!(body["errors"][0]["code"], "email");
//! # }
//! ```
//!
//! # Order
//! Every extractor **deserializes, then sanitizes ([`Sanitize`]), then validates
//! (`validator::Validate`)**, so rules see cleaned values. The request type implements
//! [`Sanitize`] and [`WireNames`] by hand; both have no-op defaults (`impl Sanitize for T {}`).
//!
//! # Statuses
//! All rejections are [`ValidationFailure`]s rendered as `application/problem+json`, with a
//! `code` member ([`FailureKind`]) and, for 422, an `errors` array of `{pointer, code, message}`:
//!
//! | status | when |
//! |---|---|
//! | 400 | malformed JSON (`line` and `column` members), invalid UTF-8, nesting deeper than the limit (127 by default, checked before parsing so a 10,000-deep body costs one scan) |
//! | 413 | the body is over the body limit |
//! | 415 | a missing or wrong `Content-Type` |
//! | 422 | a failed rule, a wrong type, a missing field, an unknown field (with `#[serde(deny_unknown_fields)]`) |
//!
//! A 422 body lists the invalid fields in `errors` (`[{pointer, code, message}]`, rule failures
//! sorted by pointer with list indices in numeric order), at most [`MAX_FIELD_ERRORS`] of them,
//! and counts them all in `errors_total`: when `errors_total` is larger than the list, the list
//! was cut.
//!
//! Messages never repeat the submitted value: serde's messages are reduced to what the target
//! type expected, and keys from the input appear in pointers only when short and made of name
//! characters (otherwise `*`).
//!
//! # Pointers use wire names
//! Type errors come from serde's own deserialization path (`serde_path_to_error`, run again only
//! after a failure so the success path pays nothing), which already uses the names on the wire
//! (except inside `#[serde(flatten)]` fields and internally tagged enums, which serde buffers:
//! see [`WireNames`]).
//! `validator` reports Rust field names and ignores `#[serde(rename)]` (validator#306), so rule
//! failures are mapped through [`WireNames`], implemented beside the serde attributes.
//!
//! # Body limit
//! The JSON and form extractors read the body through axum's
//! [`DefaultBodyLimit`](axum::extract::DefaultBodyLimit) (2 MiB by default;
//! `Router::layer(DefaultBodyLimit::max(n))` changes it): a larger body is a problem+json 413.
//! tower-http's `RequestBodyLimitLayer` also works: a body without `Content-Length` that runs over
//! it becomes the same 413 here, but a request whose `Content-Length` is over the limit is
//! answered by tower-http itself (a plain-text 413) before the handler runs. Prefer
//! `DefaultBodyLimit` for problem+json everywhere.
//!
//! # Metrics and audit
//! Each rejection increments `streamgate_validation_failures_total{route,code}` (route template,
//! [`FailureKind`] name) and leaves the [`ValidationFailure`] in the response extensions. The
//! recorder comes from the [`ValidationLayer`] around the handler (a task-local while its future
//! runs), or the global recorder without it.

mod content_type;
pub mod extract;
pub mod failure;
pub mod fuzzing;
pub mod json;
pub mod layer;
mod path_params;
mod rule_errors;
pub mod sanitize;
mod serde_errors;
pub mod urlencoded;
pub mod validators;
pub mod wire_names;

#[doc(inline)]
pub use extract::Valid;
#[doc(inline)]
pub use failure::{FailureKind, FieldError, MAX_FIELD_ERRORS, ValidationFailure};
#[doc(inline)]
pub use json::{from_json_slice, sanitize_and_validate};
#[doc(inline)]
pub use layer::{FAILURES_TOTAL, ValidationConfig, ValidationLayer, ValidationService};
pub use rule_errors::rule_failure;
#[doc(inline)]
pub use sanitize::{Sanitize, Sanitizer, html_escape};
#[doc(inline)]
pub use validators::{
    CharSet, MAX_EMAIL_LEN, check_address, is_invisible_control, normalize_address,
    validate_address, validate_address_strict, validate_char_count, validate_charset,
    validate_email, validate_hash, validate_hash_hex, validate_identifier, validate_slug,
};
#[doc(inline)]
pub use wire_names::{FieldNames, WireNames, camel_case};
