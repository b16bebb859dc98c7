//! Sanitizers: rewrite request fields before they are validated.
//!
//! The extractors call [`Sanitize::sanitize`] after deserializing and before validating, so rules
//! see the cleaned value: **deserialize, sanitize, validate**. A [`Sanitizer`] applies its steps
//! in this fixed order, chosen so that applying it twice gives the same string as applying it once:
//!
//! 1. strip control characters (Unicode `Cc`), keeping the whitespace the sanitizer allows
//!    (newlines and tabs for [`Sanitizer::TEXT`], none for [`Sanitizer::IDENTIFIER`]);
//! 2. Unicode NFC normalization;
//! 3. trim leading and trailing whitespace;
//! 4. cap the length in characters (then trim the end again, in case the cut left a space).
//!
//! Invisible characters ([`is_invisible_control`]: Unicode `Default_Ignorable_Code_Point` such as
//! bidi controls, zero-width characters, Hangul fillers and tag characters, and the line and
//! paragraph separators) are *rejected* in identifiers rather than silently removed: see
//! [`validate_identifier`](crate::validate_identifier), a validator, so its failure has a pointer
//! like every other rule, and `a\u{200B}dmin` is refused instead of becoming `admin`. A sanitizer
//! can strip them instead when that is wanted ([`Sanitizer::strip_invisible`]). Text keeps them,
//! because emoji sequences need the zero-width joiner and variation selectors. For output,
//! [`html_escape`] escapes text for HTML.
//!
//! ```
//! use streamgate_validate::{Sanitize, Sanitizer};
//!
//! struct Profile {
//!     handle: String,
//!     bio: String,
//! }
//! impl Sanitize for Profile {
//!     fn sanitize(&mut self) {
//!         Sanitizer::IDENTIFIER.max_chars(32).apply(&mut self.handle);
//!         Sanitizer::TEXT.apply(&mut self.bio);
//!     }
//! }
//!
//! let mut profile = Profile { handle: " ada\u{7}".into(), bio: "Cafe\u{301}\r\nline two\u{0}".into() };
//! profile.sanitize();
//! assert_eq!(profile.handle, "ada");
//! assert_eq!(profile.bio, "Café\r\nline two");
//! ```

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::validators::is_invisible_control;

/// A request type's sanitizing step, run by the extractors before validation.
///
/// The default does nothing, so a type that needs no sanitizing writes `impl Sanitize for T {}`.
pub trait Sanitize {
    /// Rewrites the value's fields in place.
    fn sanitize(&mut self) {}
}

impl<T: Sanitize> Sanitize for Vec<T> {
    fn sanitize(&mut self) {
        self.iter_mut().for_each(Sanitize::sanitize);
    }
}

impl<T: Sanitize> Sanitize for Option<T> {
    fn sanitize(&mut self) {
        if let Some(value) = self {
            value.sanitize();
        }
    }
}

impl<T: Sanitize + ?Sized> Sanitize for Box<T> {
    fn sanitize(&mut self) {
        (**self).sanitize();
    }
}

/// One sanitizing policy for a string field. Build it once (the presets are `const`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sanitizer {
    keep_newlines: bool,
    keep_tabs: bool,
    strip_invisible: bool,
    normalize: bool,
    trim: bool,
    max_chars: Option<usize>,
}

impl Sanitizer {
    /// Free text (names, comments): keeps `\n`, `\r` and `\t`, strips other control characters,
    /// keeps invisible characters, NFC, trims, no length cap.
    pub const TEXT: Self = Self {
        keep_newlines: true,
        keep_tabs: true,
        strip_invisible: false,
        normalize: true,
        trim: true,
        max_chars: None,
    };

    /// Identifiers (handles, slugs, emails): strips every control character, NFC, trims, no cap.
    /// Invisible characters are kept for [`validate_identifier`](crate::validate_identifier) to
    /// refuse with a pointer; [`strip_invisible`](Self::strip_invisible) removes them instead.
    pub const IDENTIFIER: Self = Self {
        keep_newlines: false,
        keep_tabs: false,
        strip_invisible: false,
        normalize: true,
        trim: true,
        max_chars: None,
    };

    /// Caps the length at `max` characters (Unicode scalar values).
    #[must_use]
    pub const fn max_chars(mut self, max: usize) -> Self {
        self.max_chars = Some(max);
        self
    }

    /// Keeps (or strips) `\n` and `\r`.
    #[must_use]
    pub const fn keep_newlines(mut self, keep: bool) -> Self {
        self.keep_newlines = keep;
        self
    }

    /// Keeps (or strips) `\t`.
    #[must_use]
    pub const fn keep_tabs(mut self, keep: bool) -> Self {
        self.keep_tabs = keep;
        self
    }

    /// Strips (or keeps) invisible characters ([`is_invisible_control`]).
    #[must_use]
    pub const fn strip_invisible(mut self, strip: bool) -> Self {
        self.strip_invisible = strip;
        self
    }

    /// Turns NFC normalization on or off.
    #[must_use]
    pub const fn normalize(mut self, on: bool) -> Self {
        self.normalize = on;
        self
    }

    /// Turns trimming on or off.
    #[must_use]
    pub const fn trim(mut self, on: bool) -> Self {
        self.trim = on;
        self
    }

    /// Sanitizes `value` in place. Allocates only when NFC changes a non-ASCII string.
    pub fn apply(&self, value: &mut String) {
        self.strip_controls(value);
        if self.normalize && !value.is_ascii() && is_nfc_quick(value.chars()) != IsNormalized::Yes {
            *value = value.nfc().collect();
        }
        if self.trim {
            trim_in_place(value);
        }
        if let Some(max) = self.max_chars
            && value.len() > max
            && let Some((cut, _)) = value.char_indices().nth(max)
        {
            value.truncate(cut);
            if self.trim {
                value.truncate(value.trim_end().len());
            }
        }
    }

    /// Returns the sanitized copy of `value`.
    #[must_use]
    pub fn sanitized(&self, value: &str) -> String {
        let mut owned = value.to_owned();
        self.apply(&mut owned);
        owned
    }

    fn kept(&self, c: char) -> bool {
        match c {
            '\n' | '\r' => self.keep_newlines,
            '\t' => self.keep_tabs,
            _ => false,
        }
    }

    fn strip_controls(&self, value: &mut String) {
        // C0 and DEL are single bytes; C1 (U+0080..=U+009F) is encoded with a 0xC2 lead byte.
        let suspicious = value.bytes().any(|b| b < 0x20 || b == 0x7f || b == 0xc2);
        if suspicious {
            value.retain(|c| !c.is_control() || self.kept(c));
        }
        // Every invisible character is outside ASCII.
        if self.strip_invisible && !value.is_ascii() && value.chars().any(is_invisible_control) {
            value.retain(|c| !is_invisible_control(c));
        }
    }
}

fn trim_in_place(value: &mut String) {
    let end = value.trim_end().len();
    value.truncate(end);
    let start = value.len() - value.trim_start().len();
    if start > 0 {
        value.drain(..start);
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values. Borrows when there is
/// nothing to escape.
///
/// ```
/// assert_eq!(streamgate_validate::html_escape("<b>\"Tom\" & 'Jerry'</b>"),
///            "&lt;b&gt;&quot;Tom&quot; &amp; &#x27;Jerry&#x27;&lt;/b&gt;");
/// ```
#[must_use]
pub fn html_escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_strip_normalize_trim_cap() {
        let mut value = "\u{1} \u{85}e\u{301}tude  ".to_owned();
        Sanitizer::IDENTIFIER.apply(&mut value);
        assert_eq!(value, "étude");

        let mut capped = "  ab cdef".to_owned();
        Sanitizer::IDENTIFIER.max_chars(3).apply(&mut capped);
        assert_eq!(capped, "ab");
    }

    #[test]
    fn text_keeps_chosen_whitespace_and_zero_width_joiner() {
        let family = "a\tb\nc\u{1b}[31m \u{1F468}\u{200D}\u{1F469}";
        let mut value = family.to_owned();
        Sanitizer::TEXT.apply(&mut value);
        assert_eq!(value, "a\tb\nc[31m \u{1F468}\u{200D}\u{1F469}");
        Sanitizer::IDENTIFIER.apply(&mut value);
        assert_eq!(value, "abc[31m \u{1F468}\u{200D}\u{1F469}");
    }

    #[test]
    fn strip_invisible_removes_invisible_characters() {
        for (input, clean) in [
            ("\u{3164}admin", "admin"),
            ("ad\u{00AD}min", "admin"),
            (" \u{115F}admin\u{E0041}\u{2028} ", "admin"),
            ("a\u{200B}d\u{FE0F}min\u{E0100}", "admin"),
        ] {
            let mut value = input.to_owned();
            Sanitizer::IDENTIFIER
                .strip_invisible(true)
                .apply(&mut value);
            assert_eq!(value, clean, "{input:?}");
            // By default they stay, for `validate_identifier` to refuse with a pointer.
            let mut kept = input.to_owned();
            Sanitizer::IDENTIFIER.apply(&mut kept);
            assert!(kept.chars().any(is_invisible_control), "{input:?}");
            assert!(crate::validate_identifier(&kept).is_err(), "{input:?}");
        }
        let mut value = "ad\u{00AD}min".to_owned();
        Sanitizer::TEXT.apply(&mut value);
        assert_eq!(value, "ad\u{00AD}min");
    }

    #[test]
    fn html_escape_borrows_clean_text() {
        assert!(matches!(html_escape("plain"), Cow::Borrowed("plain")));
    }
}
