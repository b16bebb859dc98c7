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
    if is_plain_name(key) { key } else { "*" }
}

/// Whether a name is short and made of name characters: safe to repeat, and the only kind of name
/// taken from serde's messages as one the type declares.
fn is_plain_name(key: &str) -> bool {
    key.len() <= MAX_ECHOED_KEY
        && !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$' | b'@'))
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

/// The name in `` `name` `` when `message` is exactly `prefix` followed by it: the messages of
/// `missing field` and `duplicate field`, whose name serde takes from the type. A name that could
/// not be a plain declared name (a backtick, a space, anything [`is_plain_name`] refuses) gives
/// `None`.
fn declared_name_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let name = message.strip_prefix(prefix)?.strip_suffix('`')?;
    is_plain_name(name).then_some(name)
}

/// The names the type declares, from the end of an `unknown field` or `unknown variant` message
/// (`none` is its `there are no fields` form).
///
/// serde writes ``unknown field `<input>`, expected <names>`` where `<names>` is `` `a` ``,
/// `` `a` or `b` `` or `` one of `a`, `b`, `c` ``. The input may contain any of that text, so the
/// list is read from the end, one plain name at a time, and never past the `` `, expected ``
/// that precedes it. `None` when the tail is not such a list (a declared name that is not plain);
/// an empty list for `none`.
fn declared_names<'a>(message: &'a str, none: &str) -> Option<Vec<&'a str>> {
    if message.ends_with(none) {
        return Some(Vec::new());
    }
    let mut names = Vec::new();
    let (mut rest, last) = pop_name(message)?;
    names.push(last);
    if let Some(before) = rest.strip_suffix(" or ") {
        let (before, first) = pop_name(before)?;
        names.push(first);
        rest = before;
    } else if rest.ends_with(", ") {
        while let Some(before) = rest.strip_suffix(", ") {
            let (before, name) = pop_name(before)?;
            names.push(name);
            rest = before;
        }
        rest = rest.strip_suffix("one of ")?;
    }
    rest.strip_suffix("`, expected ")?;
    names.reverse();
    Some(names)
}

/// Splits `` ...`name` `` into `...` and a plain `name`.
fn pop_name(text: &str) -> Option<(&str, &str)> {
    let text = text.strip_suffix('`')?;
    let open = text.rfind('`')?;
    let name = &text[open + 1..];
    is_plain_name(name).then_some((&text[..open], name))
}

/// serde's way of listing names: `` `a` ``, `` `a` or `b` ``, `` one of `a`, `b`, `c` ``.
fn one_of(names: &[&str]) -> String {
    match names {
        [one] => format!("`{one}`"),
        [a, b] => format!("`{a}` or `{b}`"),
        _ => {
            let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
            format!("one of {}", quoted.join(", "))
        }
    }
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
        if message.starts_with("missing field `") {
            // The name is the type's; the path stops at the struct that misses it.
            if let Some(field) = declared_name_after(message, "missing field `") {
                push_pointer_segment(&mut pointer, field);
            }
            (
                FailureKind::MissingField,
                "missing_field",
                Cow::Borrowed("is required"),
            )
        } else if message.starts_with("unknown field `") {
            // The unknown name is the client's: the pointer takes it from the path (where
            // `serde_path_to_error` put it, through `safe_key`), never from the message.
            let text = match declared_names(message, "`, there are no fields") {
                Some(names) if !names.is_empty() => Cow::Owned(format!(
                    "is not allowed; expected {}",
                    truncate(&one_of(&names), MAX_CUSTOM_MESSAGE)
                )),
                _ => Cow::Borrowed("is not allowed"),
            };
            (FailureKind::UnknownField, "unknown_field", text)
        } else if message.starts_with("duplicate field `") {
            if let Some(field) = declared_name_after(message, "duplicate field `") {
                push_unless_last(&mut pointer, field);
            }
            (
                FailureKind::WrongType,
                "duplicate_field",
                Cow::Borrowed("appears more than once"),
            )
        } else if message.starts_with("unknown variant `") {
            let text = match declared_names(message, "`, there are no variants") {
                Some(names) if !names.is_empty() => Cow::Owned(format!(
                    "expected {}",
                    truncate(&one_of(&names), MAX_CUSTOM_MESSAGE)
                )),
                _ => Cow::Borrowed("is not one of the allowed values"),
            };
            (FailureKind::WrongType, "unknown_variant", text)
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
        // serde_path_to_error has put the unknown key (through `safe_key`) in the path.
        let failure = data_failure("unknown field `<script>`, expected `email`", "/*".into());
        assert_eq!(failure.errors()[0].pointer(), "/*");
        assert_eq!(
            failure.errors()[0].message(),
            "is not allowed; expected `email`"
        );
        let failure = data_failure("invalid digit in \"12x\"", path());
        assert_eq!(failure.errors()[0].message(), "has an invalid value");
    }

    #[test]
    fn names_are_read_from_the_end_of_the_message() {
        let hostile =
            "unknown field `x`, expected `<img src=x onerror=alert(1)> SECRET`, expected ";
        for (tail, names) in [
            ("`email`", vec!["email"]),
            ("`email` or `kind`", vec!["email", "kind"]),
            ("one of `a`, `b`, `c`", vec!["a", "b", "c"]),
        ] {
            let message = format!("{hostile}{tail}");
            assert_eq!(
                declared_names(&message, "`, there are no fields"),
                Some(names)
            );
        }
        // A fake list in the input before the real one is not read.
        let message =
            "unknown variant `zz`, expected one of `evil`, `x`, expected `alpha` or `beta`";
        assert_eq!(
            declared_names(message, "`, there are no variants"),
            Some(vec!["alpha", "beta"])
        );
        let message = "unknown field `a`, expected `b`, there are no fields";
        assert_eq!(
            declared_names(message, "`, there are no fields"),
            Some(vec![])
        );
        // A declared name that is not plain: no list at all.
        let message = "unknown field `a`, expected `first name`";
        assert_eq!(declared_names(message, "`, there are no fields"), None);
    }

    #[test]
    fn hostile_unknown_variant_is_not_echoed() {
        let message = "unknown variant `zz`, expected <script>alert(1)</script> sk_live_123`, \
                       expected `alpha` or `beta`";
        let failure = data_failure(message, "/kind".into());
        let error = &failure.errors()[0];
        assert_eq!(error.pointer(), "/kind");
        assert_eq!(error.message(), "expected `alpha` or `beta`");
        // Without a well-formed tail, the message is generic.
        let failure = data_failure("unknown variant `zz`, expected <b>`", "/kind".into());
        assert_eq!(
            failure.errors()[0].message(),
            "is not one of the allowed values"
        );
    }

    #[test]
    fn missing_field_points_at_the_field() {
        let failure = data_failure("missing field `email`", String::new());
        assert_eq!(failure.kind(), FailureKind::MissingField);
        assert_eq!(failure.errors()[0].pointer(), "/email");
    }
}
