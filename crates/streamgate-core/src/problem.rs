//! RFC 9457 problem details, the one error body every StreamGate layer answers with.
//!
//! ```
//! use axum_core::response::IntoResponse;
//! use http::StatusCode;
//! use streamgate_core::Problem;
//!
//! let response = Problem::new(StatusCode::TOO_MANY_REQUESTS)
//!     .with_detail("quota exhausted; retry in 3 seconds")
//!     .with_member("violated-policies", serde_json::json!(["per-ip"]))
//!     .into_response();
//! assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(response.headers()["content-type"], "application/problem+json");
//! ```

use std::borrow::Cow;

use axum_core::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Map, Value};

/// The media type of a problem details body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem details object ([RFC 9457]) rendered as `application/problem+json`.
///
/// `type` defaults to `about:blank` and `title` to the status code's reason phrase, as the RFC
/// recommends. Extension members (`errors`, `violated-policies`, ...) are added with
/// [`Problem::with_member`]. The body never contains anything the caller did not put in it: layers
/// must not pass secrets or raw internal errors as the detail.
///
/// [RFC 9457]: https://www.rfc-editor.org/rfc/rfc9457
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    type_uri: Cow<'static, str>,
    title: Cow<'static, str>,
    #[serde(serialize_with = "serialize_status")]
    status: StatusCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<String>,
    #[serde(flatten)]
    members: Map<String, Value>,
}

fn serialize_status<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    /// A problem with the given status, `type` `about:blank` and the status's reason phrase as title.
    #[must_use]
    pub fn new(status: StatusCode) -> Self {
        Self {
            type_uri: Cow::Borrowed("about:blank"),
            title: Cow::Borrowed(status.canonical_reason().unwrap_or("Error")),
            status,
            detail: None,
            instance: None,
            members: Map::new(),
        }
    }

    /// Sets the `type` URI that identifies this kind of problem.
    #[must_use]
    pub fn with_type(mut self, type_uri: impl Into<Cow<'static, str>>) -> Self {
        self.type_uri = type_uri.into();
        self
    }

    /// Sets the short, human-readable `title` of this kind of problem.
    #[must_use]
    pub fn with_title(mut self, title: impl Into<Cow<'static, str>>) -> Self {
        self.title = title.into();
        self
    }

    /// Sets the `detail`: an explanation specific to this occurrence.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the `instance` URI reference (for example the request id).
    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Adds an extension member such as `errors` or `violated-policies`.
    ///
    /// Names of the standard members (`type`, `title`, `status`, `detail`, `instance`) are ignored
    /// so that an extension can never overwrite them.
    #[must_use]
    pub fn with_member(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        if !matches!(
            name.as_str(),
            "type" | "title" | "status" | "detail" | "instance"
        ) {
            self.members.insert(name, value.into());
        }
        self
    }

    /// The HTTP status of this problem.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `type` URI.
    #[must_use]
    pub fn type_uri(&self) -> &str {
        &self.type_uri
    }

    /// The `title`.
    #[must_use]
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The `detail`, if any.
    #[must_use]
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// An extension member by name.
    #[must_use]
    pub fn member(&self, name: &str) -> Option<&Value> {
        self.members.get(name)
    }

    /// The body as JSON bytes.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings, numbers and `serde_json::Value`s cannot fail.
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.to_json();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn renders_rfc9457_members_and_content_type() {
        let response = Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
            .with_type("https://streamgate.dev/problems/validation")
            .with_detail("2 fields are invalid")
            .with_member("errors", serde_json::json!([{"pointer": "/email"}]))
            .with_member("status", 200)
            .into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "type": "https://streamgate.dev/problems/validation",
                "title": "Unprocessable Entity",
                "status": 422,
                "detail": "2 fields are invalid",
                "errors": [{"pointer": "/email"}],
            })
        );
    }

    #[test]
    fn defaults_to_about_blank_and_reason_phrase() {
        let problem = Problem::new(StatusCode::NOT_FOUND);
        let body: Value = serde_json::from_slice(&problem.to_json()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"type": "about:blank", "title": "Not Found", "status": 404})
        );
    }
}
