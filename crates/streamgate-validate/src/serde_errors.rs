//! serde's data errors (wrong type, missing field, unknown field) as field errors.
//!
//! serde reports these as text, and the text of some (`invalid type: string "..."`) contains the
//! submitted value. Only the parts serde takes from the target type (the field name of a missing
//! field, what was expected) are kept; the path comes from `serde_path_to_error`, which follows the
//! names on the wire.

use std::borrow::Cow;

use serde_path_to_error::{Path, Segment};

use crate::{
    failure::{FailureKind, FieldError, ValidationFailure},
    wire_names::push_pointer_segment,
};

/// The longest key of the input that is repeated in a pointer.
const MAX_ECHOED_KEY: usize = 64;
/// The longest text taken from a custom deserialization error.
const MAX_CUSTOM_MESSAGE: usize = 200;

/// A key taken from the input, safe to repeat in a pointer: short and made of name characters.
/// Anything else becomes `*`.
pub(crate) fn safe_key(key: &str) -> &str {
    let plain = key.len() <= MAX_ECHOED_KEY
        && !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$' | b'@'));
    if plain { key } else { "*" }
}

/// The JSON pointer of a serde path.
#[must_use]
pub(crate) fn path_pointer(path: &Path) -> String {
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => push_pointer_segment(&mut pointer, &index.to_string()),
            Segment::Map { key } => push_pointer_segment(&mut pointer, safe_key(key)),
            Segment::Enum { variant } => push_pointer_segment(&mut pointer, safe_key(variant)),
            Segment::Unknown => {}
        }
    }
    pointer
}

/// The text between the first pair of backticks after `prefix`, and what follows it.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = message.strip_prefix(prefix)?;
    let end = rest.find('`')?;
    Some((&rest[..end], &rest[end + 1..]))
}

/// What the target type expected, from `..., expected X`: taken from the type, not the input.
fn expected(message: &str) -> Cow<'static, str> {
    match message.rfind(", expected ") {
        Some(at) => {
            let what = &message[at + ", expected ".len()..];
            Cow::Owned(format!("expected {}", truncate(what, MAX_CUSTOM_MESSAGE)))
        }
        None => Cow::Borrowed("has an invalid value"),
    }
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A 422 for a serde data error `message` (its position suffix already removed) at `pointer`
/// (from [`path_pointer`]).
#[must_use]
pub(crate) fn data_failure(message: &str, mut pointer: String) -> ValidationFailure {
    let (kind, code, text): (FailureKind, &'static str, Cow<'static, str>) =
        if let Some((field, _)) = quoted_after(message, "missing field `") {
            push_pointer_segment(&mut pointer, safe_key(field));
            (
                FailureKind::MissingField,
                "missing_field",
                Cow::Borrowed("is required"),
            )
        } else if let Some((field, rest)) = quoted_after(message, "unknown field `") {
            push_unless_last(&mut pointer, field);
            let allowed = rest.trim_start_matches(", ");
            let text = if allowed.starts_with("expected") {
                Cow::Owned(format!(
                    "is not allowed; {}",
                    truncate(allowed, MAX_CUSTOM_MESSAGE)
                ))
            } else {
                Cow::Borrowed("is not allowed")
            };
            (FailureKind::UnknownField, "unknown_field", text)
        } else if let Some((field, _)) = quoted_after(message, "duplicate field `") {
            push_unless_last(&mut pointer, field);
            (
                FailureKind::WrongType,
                "duplicate_field",
                Cow::Borrowed("appears more than once"),
            )
        } else if message.starts_with("unknown variant `") {
            (
                FailureKind::WrongType,
                "unknown_variant",
                expected_variants(message),
            )
        } else if message.starts_with("invalid type: ") {
            (FailureKind::WrongType, "invalid_type", expected(message))
        } else if message.starts_with("invalid value: ") {
            (FailureKind::WrongType, "invalid_value", expected(message))
        } else if message.starts_with("invalid length ") {
            (FailureKind::WrongType, "invalid_length", expected(message))
        } else {
            (
                FailureKind::WrongType,
                "invalid_value",
                custom_message(message),
            )
        };
    ValidationFailure::invalid_fields(kind, vec![FieldError::new(pointer, code, text)])
}

/// Appends the field named in serde's message, unless the path already ends at it (serde_path_to_error
/// records the key of an unknown field before the error is raised).
fn push_unless_last(pointer: &mut String, field: &str) {
    let mut last = String::new();
    push_pointer_segment(&mut last, safe_key(field));
    if !pointer.ends_with(&last) {
        pointer.push_str(&last);
    }
}

fn expected_variants(message: &str) -> Cow<'static, str> {
    match message.find("`, expected ") {
        Some(at) => Cow::Owned(truncate(&message[at + 3..], MAX_CUSTOM_MESSAGE).to_owned()),
        None => Cow::Borrowed("is not one of the allowed values"),
    }
}

/// A custom error's text (for example from a type's `FromStr`) is kept only when it quotes nothing:
/// serde and most parsers quote the input in backticks or double quotes.
fn custom_message(message: &str) -> Cow<'static, str> {
    if message.is_empty() || message.len() > MAX_CUSTOM_MESSAGE || message.contains(['`', '"']) {
        Cow::Borrowed("has an invalid value")
    } else {
        Cow::Owned(message.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_never_repeated() {
        let path = String::new;
        let failure = data_failure(
            "invalid type: string \"<script>secret</script>\", expected u32",
            path(),
        );
        assert_eq!(failure.errors()[0].message(), "expected u32");
        let failure = data_failure("unknown field `<script>`, expected `email`", path());
        assert_eq!(failure.errors()[0].pointer(), "/*");
        let failure = data_failure("invalid digit in \"12x\"", path());
        assert_eq!(failure.errors()[0].message(), "has an invalid value");
    }

    #[test]
    fn missing_field_points_at_the_field() {
        let failure = data_failure("missing field `email`", String::new());
        assert_eq!(failure.kind(), FailureKind::MissingField);
        assert_eq!(failure.errors()[0].pointer(), "/email");
    }
}
