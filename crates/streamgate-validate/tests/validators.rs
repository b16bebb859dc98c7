//! Domain validators as plain functions and as `#[validate(custom(...))]` rules.

use serde::Deserialize;
use streamgate_validate::{
    FailureKind, Sanitize, WireNames, check_address, from_json_slice, normalize_address,
    validate_address, validate_address_strict, validate_hash_hex,
};
use validator::Validate;

const EIP55: [&str; 4] = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
];

/// Every variant of `address` with exactly one letter's case flipped.
fn one_letter_flipped(address: &str) -> Vec<String> {
    (2..address.len())
        .filter(|&i| address.as_bytes()[i].is_ascii_alphabetic())
        .map(|i| {
            let mut bytes = address.as_bytes().to_vec();
            bytes[i] ^= 0x20;
            String::from_utf8(bytes).unwrap()
        })
        .collect()
}

#[test]
fn eip55_vectors_pass_strict_mode() {
    for address in EIP55 {
        assert!(validate_address_strict(address).is_ok(), "{address}");
        assert!(validate_address(address).is_ok(), "{address}");
        assert_eq!(normalize_address(&address.to_lowercase()).unwrap(), address);
    }
}

#[test]
fn one_flipped_letter_fails_with_a_checksum_reason() {
    for address in EIP55 {
        let flipped = one_letter_flipped(address);
        assert!(flipped.len() > 10);
        for candidate in flipped {
            for strict in [false, true] {
                let error = check_address(&candidate, strict).unwrap_err();
                assert_eq!(error.code, "eth_address_checksum", "{candidate}");
                assert!(
                    error.message.as_deref().unwrap().contains("checksum"),
                    "{candidate}"
                );
            }
        }
    }
}

#[test]
fn single_case_addresses_are_unchecksummed() {
    let lower = EIP55[0].to_lowercase();
    let upper = format!("0x{}", EIP55[0][2..].to_uppercase());
    for address in [&lower, &upper] {
        assert!(validate_address(address).is_ok());
        let error = validate_address_strict(address).unwrap_err();
        assert_eq!(error.code, "eth_address_checksum_missing");
    }
    assert_eq!(validate_address("0x1234").unwrap_err().code, "eth_address");
}

#[derive(Debug, Deserialize, Validate)]
struct Transfer {
    #[validate(custom(function = "validate_address_strict"))]
    to: String,
    #[validate(custom(function = "validate_hash_hex::<64>"))]
    tx: String,
    #[validate(custom(function = "streamgate_validate::validate_email"))]
    notify: Option<String>,
}
impl Sanitize for Transfer {}
impl WireNames for Transfer {}

#[test]
fn validators_work_as_custom_rules_with_their_reason() {
    let tx = format!("0x{}", "ab".repeat(32));
    let ok = format!(
        r#"{{"to": "{}", "tx": "{tx}", "notify": "ada@example.com"}}"#,
        EIP55[1]
    );
    assert!(from_json_slice::<Transfer>(ok.as_bytes()).is_ok());

    let flipped = &one_letter_flipped(EIP55[1])[0];
    let bad = format!(r#"{{"to": "{flipped}", "tx": "0x12", "notify": "nope"}}"#);
    let failure = from_json_slice::<Transfer>(bad.as_bytes()).unwrap_err();
    assert_eq!(failure.kind(), FailureKind::RuleFailed);
    let found: Vec<(&str, &str)> = failure
        .errors()
        .iter()
        .map(|e| (e.pointer(), e.code()))
        .collect();
    assert_eq!(
        found,
        [
            ("/notify", "email"),
            ("/to", "eth_address_checksum"),
            ("/tx", "hash")
        ]
    );
    assert_eq!(
        failure.errors()[1].message(),
        "the address's letter case does not match its EIP-55 checksum"
    );
}
