//! Properties over large input spaces: sanitizing is idempotent, normalized addresses pass strict
//! mode, nothing panics.

use proptest::prelude::*;
use streamgate_validate::{
    Sanitizer, check_address, fuzzing, normalize_address, validate_address_strict,
};

/// Strings rich in what sanitizers touch: controls, whitespace, combining marks, bidi and
/// zero-width characters, Hangul jamo, and any other character.
fn messy_string() -> impl Strategy<Value = String> {
    let special = prop_oneof![
        Just('\u{0}'),
        Just('\t'),
        Just('\n'),
        Just('\r'),
        Just(' '),
        Just('\u{7f}'),
        Just('\u{85}'),
        Just('\u{a0}'),
        Just('\u{301}'),
        Just('\u{323}'),
        Just('\u{200b}'),
        Just('\u{202e}'),
        Just('\u{3000}'),
        Just('\u{1100}'),
        Just('\u{1161}'),
        Just('\u{11a8}'),
        Just('e'),
        Just('A'),
    ];
    proptest::collection::vec(prop_oneof![special, any::<char>()], 0..40)
        .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #[test]
    fn sanitizing_twice_equals_sanitizing_once(input in messy_string(), cap in 0usize..12) {
        for sanitizer in [Sanitizer::TEXT, Sanitizer::IDENTIFIER, Sanitizer::IDENTIFIER.max_chars(cap)] {
            let once = sanitizer.sanitized(&input);
            prop_assert_eq!(sanitizer.sanitized(&once), once.clone());
        }
    }

    #[test]
    fn normalized_addresses_validate_in_strict_mode(
        bytes in proptest::array::uniform20(any::<u8>()),
        upper in any::<bool>(),
    ) {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let written = if upper { format!("0x{}", hex.to_uppercase()) } else { format!("0x{hex}") };
        let normalized = normalize_address(&written).unwrap();
        prop_assert!(validate_address_strict(&normalized).is_ok());
        prop_assert_eq!(normalized.to_lowercase(), format!("0x{hex}"));
    }

    #[test]
    fn no_input_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        fuzzing::address(&bytes);
        fuzzing::hash(&bytes);
        fuzzing::email(&bytes);
        fuzzing::sanitize(&bytes);
        fuzzing::json_body(&bytes);
    }

    #[test]
    fn no_json_shaped_input_panics(input in r#"[\[\]{}":,0-9a-z \\]{0,200}"#) {
        fuzzing::json_body(input.as_bytes());
        let _ = check_address(&input, true);
    }
}
