//! `validator`'s errors as field errors with wire-name pointers and messages that never carry the
//! submitted value.

use std::{borrow::Cow, cmp::Ordering};

use serde_json::Value;
use validator::{ValidationError, ValidationErrors, ValidationErrorsKind};

use crate::{
    failure::{FailureKind, FieldError, ValidationFailure},
    wire_names::{FieldNames, push_pointer_segment},
};

/// The name validator gives to errors of a whole struct (`#[validate(schema(...))]`).
const STRUCT_LEVEL: &str = "__all__";

/// Turns `validator`'s errors into a 422, pointers mapped through `names`, sorted by pointer
/// (list indices in numeric order: `/items/2` before `/items/10`). The first
/// [`MAX_FIELD_ERRORS`](crate::failure::MAX_FIELD_ERRORS) in that order are listed.
#[must_use]
pub fn rule_failure(errors: &ValidationErrors, names: FieldNames) -> ValidationFailure {
    let mut out = Vec::new();
    let mut pointer = String::new();
    collect(errors, names, &mut pointer, &mut out);
    out.sort_by(|a, b| compare_pointers(a.pointer(), b.pointer()).then(a.code().cmp(b.code())));
    ValidationFailure::invalid_fields(FailureKind::RuleFailed, out)
}

/// Orders JSON pointers segment by segment, segments that are both array indices by their
/// number, others by their text.
fn compare_pointers(a: &str, b: &str) -> Ordering {
    let is_index = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut left = a.split('/');
    let mut right = b.split('/');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = if is_index(x) && is_index(y) {
                    // Without leading zeros (indices have none), the shorter number is smaller.
                    let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
                } else {
                    x.cmp(y)
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

fn collect(
    errors: &ValidationErrors,
    names: FieldNames,
    pointer: &mut String,
    out: &mut Vec<FieldError>,
) {
    for (field, kind) in errors.errors() {
        let len = pointer.len();
        if field != STRUCT_LEVEL {
            push_pointer_segment(pointer, &names.wire_name(field));
        }
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    out.push(FieldError::new(
                        pointer.clone(),
                        error.code.clone(),
                        message_of(error),
                    ));
                }
            }
            ValidationErrorsKind::Struct(inner) => {
                collect(inner, names.nested(field), pointer, out);
            }
            ValidationErrorsKind::List(items) => {
                let nested = names.nested(field);
                for (index, inner) in items {
                    let before = pointer.len();
                    push_pointer_segment(pointer, &index.to_string());
                    collect(inner, nested, pointer, out);
                    pointer.truncate(before);
                }
            }
        }
        pointer.truncate(len);
    }
}

/// The error's own message (set by a custom validator or `message = ...`), or one built from the
/// rule's code and its bounds. The `value` parameter is never used.
fn message_of(error: &ValidationError) -> Cow<'static, str> {
    if let Some(message) = &error.message {
        return message.clone();
    }
    let param = |name: &str| error.params.get(name).and_then(number);
    let bounds = |what: &str| match (param("equal"), param("min"), param("max")) {
        (Some(n), _, _) => Cow::Owned(format!("{what} must be exactly {n}")),
        (None, Some(min), Some(max)) => {
            Cow::Owned(format!("{what} must be between {min} and {max}"))
        }
        (None, Some(min), None) => Cow::Owned(format!("{what} must be at least {min}")),
        (None, None, Some(max)) => Cow::Owned(format!("{what} must be at most {max}")),
        (None, None, None) => Cow::Owned(format!("{what} is out of range")),
    };
    match &*error.code {
        "email" => Cow::Borrowed("must be a valid email address"),
        "url" => Cow::Borrowed("must be a valid URL"),
        "length" => bounds("length"),
        "range" => bounds("value"),
        "required" => Cow::Borrowed("is required"),
        "must_match" => Cow::Borrowed("must match the other field"),
        "contains" => Cow::Borrowed("does not contain the required text"),
        "does_not_contain" => Cow::Borrowed("contains text that is not allowed"),
        "regex" => Cow::Borrowed("has an invalid format"),
        "credit_card" => Cow::Borrowed("must be a valid credit card number"),
        "non_control_character" => Cow::Borrowed("must not contain control characters"),
        "ip" | "ipv4" | "ipv6" => Cow::Borrowed("must be a valid IP address"),
        _ => Cow::Borrowed("is invalid"),
    }
}

fn number(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_sort_indices_by_number() {
        let mut pointers = vec![
            "/items/10/name",
            "/type",
            "/items/2/name",
            "/items",
            "/items/2",
        ];
        pointers.sort_by(|a, b| compare_pointers(a, b));
        assert_eq!(
            pointers,
            [
                "/items",
                "/items/2",
                "/items/2/name",
                "/items/10/name",
                "/type"
            ]
        );
    }
}
