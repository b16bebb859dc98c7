//! Query strings and `application/x-www-form-urlencoded` bodies: deserialize, sanitize, validate.
//!
//! ```
//! use serde::Deserialize;
//! use streamgate_validate::{FailureKind, Sanitize, WireNames, urlencoded::from_urlencoded};
//! use validator::Validate;
//!
//! #[derive(Debug, Deserialize, Validate)]
//! struct Page {
//!     #[validate(range(max = 100))]
//!     limit: u32,
//! }
//! impl Sanitize for Page {}
//! impl WireNames for Page {}
//!
//! assert_eq!(from_urlencoded::<Page>(b"limit=20").unwrap().limit, 20);
//! let failure = from_urlencoded::<Page>(b"limit=lots").unwrap_err();
//! assert_eq!(failure.kind(), FailureKind::WrongType);
//! assert_eq!(failure.errors()[0].pointer(), "/limit");
//! ```

use serde::de::DeserializeOwned;
use validator::Validate;

use crate::{
    failure::ValidationFailure,
    json::sanitize_and_validate,
    sanitize::Sanitize,
    serde_errors::{data_failure, path_pointer},
    wire_names::WireNames,
};

/// Deserializes, sanitizes and validates urlencoded `input` (a query string without `?`, or a
/// form body).
///
/// # Errors
/// A 422 [`ValidationFailure`] for a wrong type, a missing or unknown field, or a failed rule.
pub fn from_urlencoded<T>(input: &[u8]) -> Result<T, ValidationFailure>
where
    T: DeserializeOwned + Sanitize + Validate + WireNames,
{
    let mut value: T = deserialize_urlencoded(input)?;
    sanitize_and_validate(&mut value)?;
    Ok(value)
}

/// Deserializes urlencoded `input` without sanitizing or validating it.
///
/// # Errors
/// A 422 [`ValidationFailure`] for a wrong type, a missing or unknown field.
pub fn deserialize_urlencoded<T: DeserializeOwned>(input: &[u8]) -> Result<T, ValidationFailure> {
    match serde_urlencoded::from_bytes(input) {
        Ok(value) => Ok(value),
        Err(_) => {
            let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(input));
            match serde_path_to_error::deserialize::<_, T>(deserializer) {
                Err(error) => Err(data_failure(
                    &error.inner().to_string(),
                    path_pointer(error.path()),
                )),
                Ok(value) => Ok(value),
            }
        }
    }
}
