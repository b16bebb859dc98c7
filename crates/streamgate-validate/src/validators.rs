//! Domain validators, usable both as `#[validate(custom(function = ...))]` and as plain functions:
//! each returns `Ok(())` or a [`ValidationError`] whose `code` and `message` are the reason.
//! Messages never repeat the value.
//!
//! ```
//! use serde::Deserialize;
//! use validator::Validate;
//! use streamgate_validate::{validate_address_strict, validate_email, validate_hash};
//!
//! #[derive(Deserialize, Validate)]
//! struct Transfer {
//!     #[validate(custom(function = "validate_email"))]
//!     notify: String,
//!     #[validate(custom(function = "validate_address_strict"))]
//!     to: String,
//!     #[validate(custom(function = "streamgate_validate::validate_hash_hex::<64>"))]
//!     tx: String,
//! }
//!
//! let error = validate_hash("0x12", 64).unwrap_err();
//! assert_eq!(error.code, "hash");
//! assert_eq!(error.message.as_deref(), Some("must be 64 hex digits, with or without 0x"));
//! assert!(validate_email("ada@example.com").is_ok());
//! ```

use std::borrow::Cow;

use streamgate_core::{EthAddress, EthAddressError};
use validator::{ValidateEmail, ValidationError};

/// The longest email address accepted (RFC 5321's path limit less the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;

fn reason(code: &'static str, message: impl Into<Cow<'static, str>>) -> ValidationError {
    ValidationError::new(code).with_message(message.into())
}

/// An email address: validator's HTML5 rule (local part at most 64 characters, domain checked)
/// and at most [`MAX_EMAIL_LEN`] characters.
///
/// # Errors
/// Code `email`.
pub fn validate_email(value: &str) -> Result<(), ValidationError> {
    if value.chars().count() > MAX_EMAIL_LEN {
        return Err(reason("email", "must be at most 254 characters"));
    }
    if !value.validate_email() {
        return Err(reason("email", "must be a valid email address"));
    }
    Ok(())
}

/// An Ethereum address: `0x` and 40 hex digits; mixed case must match the EIP-55 checksum,
/// all-lowercase and all-uppercase are accepted without one.
///
/// # Errors
/// Code `eth_address_checksum` for a wrong checksum, `eth_address` for a malformed address.
pub fn validate_address(value: &str) -> Result<(), ValidationError> {
    check_address(value, false)
}

/// Like [`validate_address`], and the address must carry its EIP-55 checksum (mixed case).
///
/// # Errors
/// Also code `eth_address_checksum_missing` for an address written in one case.
pub fn validate_address_strict(value: &str) -> Result<(), ValidationError> {
    check_address(value, true)
}

/// [`validate_address`] (`strict == false`) or [`validate_address_strict`].
///
/// # Errors
/// As those functions.
pub fn check_address(value: &str, strict: bool) -> Result<(), ValidationError> {
    let parsed = if strict {
        EthAddress::parse_strict(value)
    } else {
        EthAddress::parse(value)
    };
    parsed.map(drop).map_err(address_reason)
}

/// The address in its EIP-55 checksummed form, which always passes [`validate_address_strict`].
///
/// # Errors
/// As [`validate_address`].
pub fn normalize_address(value: &str) -> Result<String, ValidationError> {
    EthAddress::parse(value)
        .map(|address| address.to_checksum())
        .map_err(address_reason)
}

fn address_reason(error: EthAddressError) -> ValidationError {
    let code = match error {
        EthAddressError::BadChecksum => "eth_address_checksum",
        EthAddressError::MissingChecksum => "eth_address_checksum_missing",
        _ => "eth_address",
    };
    reason(code, error.to_string())
}

/// A hash written as exactly `hex_digits` hex digits, with or without a `0x` prefix (either case
/// of letters).
///
/// # Errors
/// Code `hash`.
pub fn validate_hash(value: &str, hex_digits: usize) -> Result<(), ValidationError> {
    let digits = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
        .unwrap_or(value);
    if digits.len() == hex_digits && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(reason(
            "hash",
            format!("must be {hex_digits} hex digits, with or without 0x"),
        ))
    }
}

/// [`validate_hash`] with the length as a const parameter, for
/// `#[validate(custom(function = "validate_hash_hex::<64>"))]`.
///
/// # Errors
/// Code `hash`.
pub fn validate_hash_hex<const DIGITS: usize>(value: &str) -> Result<(), ValidationError> {
    validate_hash(value, DIGITS)
}

/// A length in characters (Unicode scalar values, not bytes) between `min` and `max` inclusive.
///
/// # Errors
/// Code `length`.
pub fn validate_char_count(value: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    let count = value.chars().count();
    if (min..=max).contains(&count) {
        Ok(())
    } else {
        Err(reason(
            "length",
            format!("length must be between {min} and {max} characters"),
        ))
    }
}

/// An allowlist of ASCII characters, built at compile time.
///
/// ```
/// use streamgate_validate::CharSet;
/// const HEX_UPPER: CharSet = CharSet::new().with_range(b'0', b'9').with_range(b'A', b'F');
/// assert!(HEX_UPPER.allows_all("C0FFEE"));
/// assert!(!HEX_UPPER.allows_all("c0ffee"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CharSet {
    bits: u128,
}

impl CharSet {
    /// `[A-Za-z0-9_-]`.
    pub const SLUG: Self = Self::new()
        .with_range(b'a', b'z')
        .with_range(b'A', b'Z')
        .with_range(b'0', b'9')
        .with_chars(b"_-");

    /// The empty set.
    #[must_use]
    pub const fn new() -> Self {
        Self { bits: 0 }
    }

    /// Adds the ASCII bytes `from..=to` (bytes above 127 are ignored).
    #[must_use]
    pub const fn with_range(mut self, from: u8, to: u8) -> Self {
        let mut byte = from;
        while byte <= to && byte < 128 {
            self.bits |= 1 << byte;
            if byte == u8::MAX {
                break;
            }
            byte += 1;
        }
        self
    }

    /// Adds each ASCII byte of `chars`.
    #[must_use]
    pub const fn with_chars(mut self, chars: &[u8]) -> Self {
        let mut i = 0;
        while i < chars.len() {
            if chars[i] < 128 {
                self.bits |= 1 << chars[i];
            }
            i += 1;
        }
        self
    }

    /// Whether every character of `value` is in the set.
    #[must_use]
    pub fn allows_all(&self, value: &str) -> bool {
        value.bytes().all(|b| b < 128 && self.bits & (1 << b) != 0)
    }
}

impl Default for CharSet {
    fn default() -> Self {
        Self::new()
    }
}

/// Every character of `value` is in `allowed`.
///
/// # Errors
/// Code `charset`.
pub fn validate_charset(value: &str, allowed: &CharSet) -> Result<(), ValidationError> {
    if allowed.allows_all(value) {
        Ok(())
    } else {
        Err(reason(
            "charset",
            "contains characters that are not allowed",
        ))
    }
}

/// A non-empty slug of `[A-Za-z0-9_-]`.
///
/// # Errors
/// Code `charset`.
pub fn validate_slug(value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(reason("charset", "must not be empty"));
    }
    validate_charset(value, &CharSet::SLUG)
}

/// Whether `c` is invisible: a Unicode `Default_Ignorable_Code_Point` (bidi controls, zero-width
/// characters, the soft hyphen, Hangul fillers, variation selectors, tag characters, ...) or a
/// line or paragraph separator (`Zl`, `Zp`). These let `admin` and `a\u{200B}dmin` or
/// `\u{3164}admin` look the same.
#[must_use]
pub fn is_invisible_control(c: char) -> bool {
    // Default_Ignorable_Code_Point, from DerivedCoreProperties.txt of Unicode 16.0.0.
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    ) || matches!(c, '\u{2028}' | '\u{2029}') // Zl, Zp
}

/// An identifier (handle, username, slug) without control characters or invisible characters
/// ([`is_invisible_control`]: bidi controls, zero-width characters, Hangul fillers, tag
/// characters, variation selectors, line separators, ...).
///
/// # Errors
/// Code `invisible_character`.
pub fn validate_identifier(value: &str) -> Result<(), ValidationError> {
    if value.is_ascii() && !value.bytes().any(|b| b.is_ascii_control()) {
        return Ok(());
    }
    if value
        .chars()
        .any(|c| is_invisible_control(c) || c.is_control())
    {
        return Err(reason(
            "invisible_character",
            "must not contain invisible or control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_capped_at_254() {
        let local = "a".repeat(64);
        let domain = format!("{}.com", vec!["b".repeat(60); 4].join("."));
        let long = format!("{local}@{domain}");
        assert!(long.len() > MAX_EMAIL_LEN);
        let error = validate_email(&long).unwrap_err();
        assert_eq!(
            error.message.as_deref(),
            Some("must be at most 254 characters")
        );
        assert!(validate_email("not-an-email").is_err());
    }

    #[test]
    fn hash_accepts_optional_prefix() {
        let digits = "ab".repeat(32);
        assert!(validate_hash(&digits, 64).is_ok());
        assert!(validate_hash(&format!("0x{digits}"), 64).is_ok());
        assert!(validate_hash(&format!("0x{digits}00"), 64).is_err());
        assert!(validate_hash(&format!("0x{}zz", "ab".repeat(31)), 64).is_err());
    }

    #[test]
    fn slug_and_identifier() {
        assert!(validate_slug("a-b_C9").is_ok());
        assert!(validate_slug("a b").is_err());
        assert!(validate_slug("").is_err());
        assert!(validate_identifier("ad\u{200B}min").is_err());
        assert!(validate_identifier("user\u{202E}gnp.exe").is_err());
        assert!(validate_identifier("zoë").is_ok());
        assert!(validate_char_count("zoë", 3, 3).is_ok());
    }

    #[test]
    fn identifier_rejects_default_ignorable_and_separators() {
        for invisible in [
            '\u{00AD}',
            '\u{034F}',
            '\u{115F}',
            '\u{1160}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{206A}',
            '\u{206F}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{E007F}',
            '\u{2028}',
            '\u{2029}',
            '\u{FE00}',
            '\u{FE0F}',
            '\u{E0100}',
            '\u{E01EF}',
            '\u{180F}',
            '\u{1D173}',
        ] {
            for value in [
                format!("ad{invisible}min"),
                format!("{invisible}admin"),
                format!("admin{invisible}"),
            ] {
                assert!(validate_identifier(&value).is_err(), "{value:?}");
            }
        }
        // Visible non-ASCII letters and marks stay valid.
        assert!(validate_identifier("ㅎ한글").is_ok());
        assert!(validate_identifier("e\u{301}").is_ok());
    }
}
