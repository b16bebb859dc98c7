//! JSON bodies: deserialize, then sanitize, then validate, with every failure as a
//! [`ValidationFailure`].
//!
//! ```
//! use serde::Deserialize;
//! use streamgate_validate::{FailureKind, Sanitize, Sanitizer, WireNames, json::from_json_slice};
//! use validator::Validate;
//!
//! #[derive(Debug, Deserialize, Validate)]
//! struct Signup {
//!     #[validate(custom(function = "streamgate_validate::validate_email"))]
//!     email: String,
//! }
//! impl Sanitize for Signup {
//!     fn sanitize(&mut self) {
//!         Sanitizer::TEXT.apply(&mut self.email);
//!     }
//! }
//! impl WireNames for Signup {}
//!
//! let signup: Signup = from_json_slice(br#"{"email": "  ada@example.com "}"#).unwrap();
//! assert_eq!(signup.email, "ada@example.com");
//! let failure = from_json_slice::<Signup>(br#"{"email": 7}"#).unwrap_err();
//! assert_eq!(failure.kind(), FailureKind::WrongType);
//! assert_eq!(failure.errors()[0].pointer(), "/email");
//! ```

use serde::de::DeserializeOwned;
use validator::Validate;

use crate::{
    failure::{FailureKind, ValidationFailure},
    rule_errors::rule_failure,
    sanitize::Sanitize,
    serde_errors::{data_failure, path_pointer},
    wire_names::{FieldNames, WireNames},
};

/// The default limit on nested arrays and objects: the deepest nesting serde_json's own
/// recursion limit (128) lets through.
pub const DEFAULT_MAX_DEPTH: usize = 127;

/// Deserializes, sanitizes and validates a JSON body, in that order, with the default depth limit.
///
/// # Errors
/// A 400 [`ValidationFailure`] for invalid UTF-8, a syntax error or nesting deeper than
/// [`DEFAULT_MAX_DEPTH`]; a 422 for a wrong type, a missing or unknown field, or a failed rule.
pub fn from_json_slice<T>(bytes: &[u8]) -> Result<T, ValidationFailure>
where
    T: DeserializeOwned + Sanitize + Validate + WireNames,
{
    from_json_slice_with_depth(bytes, DEFAULT_MAX_DEPTH)
}

/// Like [`from_json_slice`] with a nesting limit of `max_depth` (at most [`DEFAULT_MAX_DEPTH`] has
/// an effect: serde_json stops at that depth anyway).
///
/// # Errors
/// As [`from_json_slice`].
pub fn from_json_slice_with_depth<T>(bytes: &[u8], max_depth: usize) -> Result<T, ValidationFailure>
where
    T: DeserializeOwned + Sanitize + Validate + WireNames,
{
    let mut value: T = deserialize_json(bytes, max_depth)?;
    sanitize_and_validate(&mut value)?;
    Ok(value)
}

/// Sanitizes `value`, then validates it; rule failures point at wire names.
///
/// # Errors
/// A 422 [`ValidationFailure`] with one entry per failed rule.
pub fn sanitize_and_validate<T>(value: &mut T) -> Result<(), ValidationFailure>
where
    T: Sanitize + Validate + WireNames,
{
    value.sanitize();
    value
        .validate()
        .map_err(|errors| rule_failure(&errors, FieldNames::of::<T>()))
}

/// Deserializes a JSON body without sanitizing or validating it.
///
/// # Errors
/// As [`from_json_slice`], except rule failures.
pub fn deserialize_json<T: DeserializeOwned>(
    bytes: &[u8],
    max_depth: usize,
) -> Result<T, ValidationFailure> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        ValidationFailure::new(
            FailureKind::InvalidUtf8,
            format!(
                "the body is not valid UTF-8 (first invalid byte at offset {})",
                error.valid_up_to()
            ),
        )
    })?;
    if nesting_exceeds(bytes, max_depth) {
        return Err(too_deep(max_depth));
    }
    // The fast path tracks no path; a data error is deserialized again to find where it is.
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(error) if error.is_data() => Err(located_data_error::<T>(text)),
        Err(error) => Err(syntax_failure(&error, max_depth)),
    }
}

fn located_data_error<T: DeserializeOwned>(text: &str) -> ValidationFailure {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Err(error) if error.inner().is_data() => data_failure(
            &message_without_position(error.inner()),
            path_pointer(error.path()),
        ),
        Err(error) => syntax_failure(error.inner(), DEFAULT_MAX_DEPTH),
        // Both passes read the same text, so this is not expected; it stays a client error.
        Ok(_) => ValidationFailure::new(FailureKind::Malformed, "the body is not valid JSON"),
    }
}

fn too_deep(max_depth: usize) -> ValidationFailure {
    ValidationFailure::new(
        FailureKind::TooDeep,
        format!("the body nests arrays or objects deeper than {max_depth} levels"),
    )
}

fn syntax_failure(error: &serde_json::Error, max_depth: usize) -> ValidationFailure {
    let message = message_without_position(error);
    if message == "recursion limit exceeded" {
        return too_deep(max_depth.min(DEFAULT_MAX_DEPTH));
    }
    ValidationFailure::malformed_at(
        FailureKind::Malformed,
        format!("the body is not valid JSON: {message}"),
        error.line(),
        error.column(),
    )
}

/// serde_json's message without its ` at line L column C` suffix.
fn message_without_position(error: &serde_json::Error) -> String {
    let mut message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    if message.ends_with(&suffix) {
        message.truncate(message.len() - suffix.len());
    }
    message
}

/// Whether arrays and objects nest deeper than `max_depth`, brackets inside strings ignored. A body
/// shorter than the limit cannot exceed it and is not scanned.
#[must_use]
pub fn nesting_exceeds(bytes: &[u8], max_depth: usize) -> bool {
    if bytes.len() <= max_depth {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_depth {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_scan_ignores_brackets_in_strings() {
        let inside = format!("[\"{}\"]", "[".repeat(300));
        assert!(!nesting_exceeds(inside.as_bytes(), 4));
        let deep = format!("{}{}", "[".repeat(5), "]".repeat(5));
        assert!(nesting_exceeds(deep.as_bytes(), 4));
        assert!(!nesting_exceeds(deep.as_bytes(), 5));
    }
}
