//! The bodies of the fuzz targets (`fuzz/fuzz_targets/*.rs`), also replayed over the committed
//! corpus by a stable test. Each takes arbitrary bytes and panics only when an invariant breaks.
//!
//! ```
//! streamgate_validate::fuzzing::json_body(br#"{"email": "a@b.co", "name": "x", "tags": []}"#);
//! streamgate_validate::fuzzing::sanitize("  \u{7}text ".as_bytes());
//! ```

use std::borrow::Cow;

use serde::Deserialize;
use validator::Validate;

use crate::{
    FieldNames, Sanitize, Sanitizer, WireNames, check_address, from_json_slice,
    json::nesting_exceeds, normalize_address, validate_email, validate_hash, validate_identifier,
};

/// The bytes as text, lossily, so every input exercises the string validators.
fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Ethereum address parsing: never panics; whatever normalizes passes strict mode.
pub fn address(data: &[u8]) {
    let input = text(data);
    let _ = check_address(&input, false);
    let _ = check_address(&input, true);
    if let Ok(normalized) = normalize_address(&input) {
        assert!(check_address(&normalized, true).is_ok(), "{normalized}");
    }
}

/// Hash validation: never panics; accepts exactly the hex strings of the asked length.
pub fn hash(data: &[u8]) {
    let input = text(data);
    for digits in [40, 64] {
        let accepted = validate_hash(&input, digits).is_ok();
        let bare = input
            .strip_prefix("0x")
            .or_else(|| input.strip_prefix("0X"))
            .unwrap_or(&input);
        let expected = bare.len() == digits && bare.bytes().all(|b| b.is_ascii_hexdigit());
        assert_eq!(accepted, expected);
    }
}

/// Email validation: never panics; nothing over 254 characters passes.
pub fn email(data: &[u8]) {
    let input = text(data);
    if validate_email(&input).is_ok() {
        assert!(input.chars().count() <= crate::MAX_EMAIL_LEN);
    }
}

/// Sanitizers: idempotent, no control characters left, the cap holds.
pub fn sanitize(data: &[u8]) {
    let input = text(data);
    for sanitizer in [
        Sanitizer::TEXT,
        Sanitizer::IDENTIFIER,
        Sanitizer::IDENTIFIER.max_chars(8),
    ] {
        let once = sanitizer.sanitized(&input);
        assert_eq!(sanitizer.sanitized(&once), once);
        assert!(
            once.chars()
                .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        );
        if sanitizer == Sanitizer::IDENTIFIER.max_chars(8) {
            assert!(once.chars().count() <= 8);
        }
    }
    let _ = validate_identifier(&input);
    let _ = crate::html_escape(&input);
}

/// The request type of [`json_body`].
#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
pub struct FuzzRequest {
    #[validate(custom(function = "crate::validate_email"))]
    email: String,
    #[serde(rename = "displayName", alias = "name")]
    #[validate(length(min = 1, max = 64))]
    name: String,
    #[validate(nested)]
    #[serde(default)]
    tags: Vec<FuzzTag>,
}

/// One tag of a [`FuzzRequest`].
#[derive(Debug, Deserialize, Validate)]
pub struct FuzzTag {
    #[validate(custom(function = "crate::validate_slug"))]
    slug: String,
}

impl Sanitize for FuzzRequest {
    fn sanitize(&mut self) {
        Sanitizer::IDENTIFIER.apply(&mut self.email);
        Sanitizer::TEXT.max_chars(80).apply(&mut self.name);
        for tag in &mut self.tags {
            Sanitizer::IDENTIFIER.apply(&mut tag.slug);
        }
    }
}

impl WireNames for FuzzRequest {
    fn wire_name(field: &str) -> Cow<'_, str> {
        Cow::Borrowed(if field == "name" {
            "displayName"
        } else {
            field
        })
    }

    fn nested(field: &str) -> Option<FieldNames> {
        (field == "tags").then(FieldNames::of::<FuzzTag>)
    }
}

impl WireNames for FuzzTag {}

/// The JSON extractor's path: any body is accepted or rejected with 400 or 422, never a panic;
/// a too-deep body is always 400; every 422 lists at least one pointer.
pub fn json_body(data: &[u8]) {
    match from_json_slice::<FuzzRequest>(data) {
        Ok(request) => assert!(request.name.chars().count() <= 80),
        Err(failure) => {
            let status = failure.status().as_u16();
            assert!(status == 400 || status == 422, "{status}");
            if status == 422 {
                assert!(!failure.errors().is_empty());
            }
            if nesting_exceeds(data, crate::json::DEFAULT_MAX_DEPTH) {
                assert_eq!(status, 400);
            }
            let rendered = failure.to_problem().to_json();
            assert!(serde_json::from_slice::<serde_json::Value>(&rendered).is_ok());
        }
    }
}
