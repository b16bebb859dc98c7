//! The rejection every extractor answers with, and what it leaves for the audit layer.
//!
//! ```
//! use axum::response::IntoResponse;
//! use streamgate_validate::{FailureKind, FieldError, ValidationFailure};
//!
//! let failure = ValidationFailure::invalid_fields(
//!     FailureKind::RuleFailed,
//!     vec![FieldError::new("/email", "email", "must be a valid email address")],
//! );
//! let response = failure.into_response();
//! assert_eq!(response.status(), 422);
//! // Layers outside read the same failure back from the response; the audit layer its code.
//! let left = response.extensions().get::<ValidationFailure>().unwrap();
//! assert_eq!(left.errors()[0].pointer(), "/email");
//! let reason = response.extensions().get::<streamgate_core::AuditReason>().unwrap();
//! assert_eq!(reason.as_str(), "rule_failed");
//! ```

use std::{borrow::Cow, fmt, sync::Arc};

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use streamgate_core::{AuditReason, Problem};

/// The `type` URI of the problem bodies for a 400 (the body could not be read as the format).
pub const MALFORMED_TYPE: &str = "https://streamgate.dev/problems/malformed-request";
/// The `type` URI of the problem bodies for a 422 (well-formed, but some fields are invalid).
pub const VALIDATION_TYPE: &str = "https://streamgate.dev/problems/validation";
/// The `type` URI of the problem bodies for a 415.
pub const MEDIA_TYPE_TYPE: &str = "https://streamgate.dev/problems/unsupported-media-type";
/// The `type` URI of the problem bodies for a 413.
pub const TOO_LARGE_TYPE: &str = "https://streamgate.dev/problems/payload-too-large";

/// The most field errors a [`ValidationFailure`] keeps and its problem body lists. The body's
/// `errors_total` member (and [`ValidationFailure::errors_total`]) counts them all, so a client
/// can tell when the `errors` list was cut.
pub const MAX_FIELD_ERRORS: usize = 100;

/// Why a request was rejected. Its [`as_str`](FailureKind::as_str) is the `code` label of
/// `streamgate_validation_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// 400: the body is not well-formed (JSON syntax, a truncated body, trailing characters).
    Malformed,
    /// 400: the body is not valid UTF-8.
    InvalidUtf8,
    /// 400: the body nests arrays or objects deeper than the limit.
    TooDeep,
    /// 415: the `Content-Type` is missing or not the extractor's format.
    UnsupportedMediaType,
    /// 413: the body is over the body limit.
    PayloadTooLarge,
    /// 422: a `validator` rule (or a custom validator) failed.
    RuleFailed,
    /// 422: a value has the wrong type or cannot be parsed as the field's type.
    WrongType,
    /// 422: a required field is missing.
    MissingField,
    /// 422: a field the type does not know (the type denies unknown fields).
    UnknownField,
    /// 400: the request could not be read (a broken connection or body stream).
    UnreadableBody,
    /// 500: the route's path parameters cannot fit the extractor's type (a programming error,
    /// never caused by the client's input).
    RouteMismatch,
}

impl FailureKind {
    /// The stable snake_case name of the kind.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::TooDeep => "too_deep",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RuleFailed => "rule_failed",
            Self::WrongType => "wrong_type",
            Self::MissingField => "missing_field",
            Self::UnknownField => "unknown_field",
            Self::UnreadableBody => "unreadable_body",
            Self::RouteMismatch => "route_mismatch",
        }
    }

    /// The HTTP status of the kind.
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::Malformed | Self::InvalidUtf8 | Self::TooDeep | Self::UnreadableBody => {
                StatusCode::BAD_REQUEST
            }
            Self::RouteMismatch => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RuleFailed | Self::WrongType | Self::MissingField | Self::UnknownField => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
        }
    }

    const fn problem_type(self) -> &'static str {
        match self.status() {
            StatusCode::UNSUPPORTED_MEDIA_TYPE => MEDIA_TYPE_TYPE,
            StatusCode::PAYLOAD_TOO_LARGE => TOO_LARGE_TYPE,
            StatusCode::UNPROCESSABLE_ENTITY => VALIDATION_TYPE,
            StatusCode::BAD_REQUEST => MALFORMED_TYPE,
            _ => "about:blank",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One invalid field: where it is (a JSON pointer with the names used on the wire), a code and a
/// message. Serializes as `{"pointer", "code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pointer: String,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
}

impl FieldError {
    /// A field error at `pointer` (RFC 6901, `""` for the whole document).
    pub fn new(
        pointer: impl Into<String>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            pointer: pointer.into(),
            code: code.into(),
            message: message.into(),
        }
    }

    /// The JSON pointer to the field, with wire names (`/items/2/name`).
    #[must_use]
    pub fn pointer(&self) -> &str {
        &self.pointer
    }

    /// The machine-readable code (`email`, `length`, `invalid_type`, `missing_field`, ...).
    #[must_use]
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human-readable message. It never contains the submitted value.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A rejected request: the extractors' rejection type, rendered as `application/problem+json`.
///
/// Its response carries a clone of it in the response extensions, so that the audit layer (or any
/// outer layer) can read what was rejected and why without parsing the body. It never holds the
/// submitted values, only pointers, codes and fixed messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationFailure {
    inner: Arc<Inner>,
}

#[derive(Debug, PartialEq, Eq)]
struct Inner {
    kind: FailureKind,
    detail: Cow<'static, str>,
    errors: Vec<FieldError>,
    errors_total: usize,
    position: Option<(usize, usize)>,
}

impl ValidationFailure {
    /// A failure of `kind` with a fixed `detail` and no field errors (400, 413, 415).
    pub fn new(kind: FailureKind, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::build(kind, detail.into(), Vec::new(), 0, None)
    }

    /// A 400 for a syntax error at a 1-based `line` and `column` of the body.
    pub fn malformed_at(
        kind: FailureKind,
        detail: impl Into<Cow<'static, str>>,
        line: usize,
        column: usize,
    ) -> Self {
        Self::build(kind, detail.into(), Vec::new(), 0, Some((line, column)))
    }

    /// A 422 (for a 422 `kind`) listing each invalid field.
    ///
    /// Only the first [`MAX_FIELD_ERRORS`] of `errors` are kept (sort them first if the order
    /// matters); [`errors_total`](Self::errors_total) and the `detail` count them all.
    #[must_use]
    pub fn invalid_fields(kind: FailureKind, mut errors: Vec<FieldError>) -> Self {
        let total = errors.len();
        let detail = match total {
            1 => Cow::Borrowed("1 field is invalid"),
            n => Cow::Owned(format!("{n} fields are invalid")),
        };
        errors.truncate(MAX_FIELD_ERRORS);
        errors.shrink_to_fit();
        Self::build(kind, detail, errors, total, None)
    }

    fn build(
        kind: FailureKind,
        detail: Cow<'static, str>,
        errors: Vec<FieldError>,
        errors_total: usize,
        position: Option<(usize, usize)>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                detail,
                errors,
                errors_total,
                position,
            }),
        }
    }

    /// Why the request was rejected.
    #[must_use]
    pub fn kind(&self) -> FailureKind {
        self.inner.kind
    }

    /// The HTTP status of the response.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.inner.kind.status()
    }

    /// The problem's `detail`.
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.inner.detail
    }

    /// The invalid fields (empty for 400, 413 and 415), at most [`MAX_FIELD_ERRORS`] of them.
    #[must_use]
    pub fn errors(&self) -> &[FieldError] {
        &self.inner.errors
    }

    /// How many fields were invalid in all, including those cut from [`errors`](Self::errors)
    /// beyond [`MAX_FIELD_ERRORS`].
    #[must_use]
    pub fn errors_total(&self) -> usize {
        self.inner.errors_total
    }

    /// The 1-based line and column of a syntax error, if known.
    #[must_use]
    pub fn position(&self) -> Option<(usize, usize)> {
        self.inner.position
    }

    /// The problem details body of this failure.
    #[must_use]
    pub fn to_problem(&self) -> Problem {
        let inner = &*self.inner;
        let mut problem = Problem::new(self.status())
            .with_type(inner.kind.problem_type())
            .with_detail(inner.detail.clone())
            .with_member("code", inner.kind.as_str());
        if let Some((line, column)) = inner.position {
            problem = problem
                .with_member("line", line)
                .with_member("column", column);
        }
        if self.status() == StatusCode::UNPROCESSABLE_ENTITY {
            let errors: Vec<Value> = inner
                .errors
                .iter()
                .map(|e| json!({"pointer": e.pointer, "code": e.code, "message": e.message}))
                .collect();
            problem = problem
                .with_member("errors", errors)
                .with_member("errors_total", inner.errors_total);
        }
        problem
    }
}

impl fmt::Display for ValidationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.kind, self.inner.detail)
    }
}

impl std::error::Error for ValidationFailure {}

impl IntoResponse for ValidationFailure {
    fn into_response(self) -> Response {
        let mut response = self.to_problem().into_response();
        let extensions = response.extensions_mut();
        extensions.insert(AuditReason::new(self.kind().as_str()));
        extensions.insert(self);
        response
    }
}
