//! axum's path-parameter rejections as failures that never repeat a parameter's value.

use axum::extract::{path::ErrorKind, rejection::PathRejection};

use crate::{
    failure::{FailureKind, FieldError, ValidationFailure},
    serde_errors::{data_failure, safe_key},
    wire_names::push_pointer_segment,
};

/// axum's path rejection as a failure that never repeats the parameter's value.
pub(crate) fn path_failure(rejection: PathRejection) -> ValidationFailure {
    let PathRejection::FailedToDeserializePathParams(error) = rejection else {
        return route_mismatch();
    };
    let at = |key: &str| {
        let mut pointer = String::new();
        push_pointer_segment(&mut pointer, safe_key(key));
        pointer
    };
    let wrong_type = |pointer: String, expected: &str| {
        ValidationFailure::invalid_fields(
            FailureKind::WrongType,
            vec![FieldError::new(
                pointer,
                "invalid_type",
                format!("expected {expected}"),
            )],
        )
    };
    match error.kind() {
        ErrorKind::ParseErrorAtKey {
            key, expected_type, ..
        } => wrong_type(at(key), expected_type),
        ErrorKind::ParseErrorAtIndex {
            index,
            expected_type,
            ..
        } => wrong_type(at(&index.to_string()), expected_type),
        ErrorKind::ParseError { expected_type, .. } => wrong_type(String::new(), expected_type),
        ErrorKind::InvalidUtf8InPathParam { .. } => ValidationFailure::new(
            FailureKind::InvalidUtf8,
            "a path parameter is not valid UTF-8 once percent-decoded",
        ),
        ErrorKind::DeserializeError { key, message, .. } => {
            let failure = data_failure(message, String::new());
            let error = &failure.errors()[0];
            ValidationFailure::invalid_fields(
                failure.kind(),
                vec![FieldError::new(
                    at(key),
                    error.code().to_owned(),
                    error.message().to_owned(),
                )],
            )
        }
        ErrorKind::Message(message) => data_failure(message, String::new()),
        ErrorKind::WrongNumberOfParameters { .. } | ErrorKind::UnsupportedType { .. } => {
            route_mismatch()
        }
        // A kind added to axum later: treated as the client's, never as a 500.
        _ => data_failure("", String::new()),
    }
}

fn route_mismatch() -> ValidationFailure {
    ValidationFailure::new(
        FailureKind::RouteMismatch,
        "the route's path parameters do not fit the handler",
    )
}
