//! Ethereum account addresses with EIP-55 mixed-case checksums.
//!
//! ```
//! use streamgate_core::{EthAddress, EthAddressError};
//!
//! // Lower case carries no checksum and is accepted; the address normalizes to EIP-55.
//! let address = EthAddress::parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").unwrap();
//! assert_eq!(address.to_string(), "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed");
//!
//! // Mixed case is a checksum and must be right.
//! let flipped = "0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
//! assert_eq!(EthAddress::parse(flipped), Err(EthAddressError::BadChecksum));
//!
//! // Strict parsing requires the checksum.
//! assert!(EthAddress::parse_strict("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed").is_err());
//! ```
//!
//! See [EIP-55](https://eips.ethereum.org/EIPS/eip-55).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest, Keccak256};

/// A 20-byte Ethereum account address.
///
/// Displays (and serializes) in its EIP-55 checksummed form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EthAddress([u8; 20]);

/// Why a string is not an acceptable Ethereum address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EthAddressError {
    /// It does not start with `0x`.
    MissingPrefix,
    /// It does not have exactly 40 hex digits after the prefix.
    WrongLength,
    /// A character after the prefix is not a hex digit.
    InvalidHex,
    /// Its letters are mixed case and do not match the EIP-55 checksum.
    BadChecksum,
    /// Strict parsing: it is all lower or all upper case, so it carries no checksum.
    MissingChecksum,
}

impl fmt::Display for EthAddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingPrefix => "an Ethereum address must start with 0x",
            Self::WrongLength => "an Ethereum address has exactly 40 hex digits after 0x",
            Self::InvalidHex => "an Ethereum address may only contain hex digits after 0x",
            Self::BadChecksum => "the address's letter case does not match its EIP-55 checksum",
            Self::MissingChecksum => {
                "the address must be written with its EIP-55 checksum (mixed case)"
            }
        })
    }
}

impl std::error::Error for EthAddressError {}

impl EthAddress {
    /// Wraps raw address bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    /// The raw address bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Parses `0x` followed by 40 hex digits. All-lower and all-upper case are accepted as
    /// unchecksummed; mixed case must match the EIP-55 checksum.
    ///
    /// # Errors
    /// The first [`EthAddressError`] that applies.
    pub fn parse(input: &str) -> Result<Self, EthAddressError> {
        let (address, case) = Self::parse_digits(input)?;
        match case {
            LetterCase::Mixed if !address.checksum_matches(&input[2..]) => {
                Err(EthAddressError::BadChecksum)
            }
            _ => Ok(address),
        }
    }

    /// Parses like [`EthAddress::parse`] but requires the EIP-55 checksum. An address whose digits
    /// contain no letters cannot carry a checksum and is accepted.
    ///
    /// # Errors
    /// The first [`EthAddressError`] that applies; [`EthAddressError::MissingChecksum`] for an
    /// address written in one case.
    pub fn parse_strict(input: &str) -> Result<Self, EthAddressError> {
        let (address, case) = Self::parse_digits(input)?;
        match case {
            LetterCase::NoLetters => Ok(address),
            LetterCase::Mixed if address.checksum_matches(&input[2..]) => Ok(address),
            LetterCase::Mixed => Err(EthAddressError::BadChecksum),
            LetterCase::Lower | LetterCase::Upper => {
                if address.checksum_matches(&input[2..]) {
                    Ok(address)
                } else {
                    Err(EthAddressError::MissingChecksum)
                }
            }
        }
    }

    /// The EIP-55 checksummed form, `0x` included.
    #[must_use]
    pub fn to_checksum(&self) -> String {
        let lower = self.lower_hex();
        let hash = Keccak256::digest(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0x0f;
            out.push(if c.is_ascii_alphabetic() && nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            });
        }
        out
    }

    fn lower_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(40);
        for byte in self.0 {
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0x0f)] as char);
        }
        out
    }

    fn checksum_matches(&self, digits: &str) -> bool {
        self.to_checksum()[2..] == *digits
    }

    fn parse_digits(input: &str) -> Result<(Self, LetterCase), EthAddressError> {
        let digits = input
            .strip_prefix("0x")
            .or_else(|| input.strip_prefix("0X"))
            .ok_or(EthAddressError::MissingPrefix)?;
        if digits.len() != 40 {
            return Err(EthAddressError::WrongLength);
        }
        let mut bytes = [0u8; 20];
        let (mut lower, mut upper) = (false, false);
        for (i, c) in digits.bytes().enumerate() {
            let value = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => {
                    lower = true;
                    c - b'a' + 10
                }
                b'A'..=b'F' => {
                    upper = true;
                    c - b'A' + 10
                }
                _ => return Err(EthAddressError::InvalidHex),
            };
            bytes[i / 2] |= if i % 2 == 0 { value << 4 } else { value };
        }
        let case = match (lower, upper) {
            (false, false) => LetterCase::NoLetters,
            (true, false) => LetterCase::Lower,
            (false, true) => LetterCase::Upper,
            (true, true) => LetterCase::Mixed,
        };
        Ok((Self(bytes), case))
    }
}

enum LetterCase {
    NoLetters,
    Lower,
    Upper,
    Mixed,
}

impl fmt::Display for EthAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Debug for EthAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EthAddress({})", self.to_checksum())
    }
}

impl FromStr for EthAddress {
    type Err = EthAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for EthAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_checksum())
    }
}

impl<'de> Deserialize<'de> for EthAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The test vectors of EIP-55.
    const EIP55_VECTORS: [&str; 8] = [
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        "0xde709f2102306220921060314715629080e2fb77",
        "0x27b1fdb04752bbc536007a920d24acb045561c26",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn eip55_vectors_checksum_to_themselves() {
        for vector in EIP55_VECTORS {
            let address = EthAddress::parse_strict(vector).unwrap();
            assert_eq!(address.to_checksum(), vector);
            let lower = EthAddress::parse(&vector.to_ascii_lowercase()).unwrap();
            assert_eq!(lower.to_string(), vector);
        }
    }

    #[test]
    fn one_flipped_letter_fails_the_checksum() {
        for vector in &EIP55_VECTORS[4..] {
            let mut chars: Vec<char> = vector.chars().collect();
            let at = chars
                .iter()
                .enumerate()
                .skip(2)
                .find(|(_, c)| c.is_ascii_alphabetic())
                .map(|(i, _)| i)
                .unwrap();
            chars[at] = if chars[at].is_ascii_uppercase() {
                chars[at].to_ascii_lowercase()
            } else {
                chars[at].to_ascii_uppercase()
            };
            let flipped: String = chars.into_iter().collect();
            assert_eq!(
                EthAddress::parse(&flipped),
                Err(EthAddressError::BadChecksum)
            );
            assert_eq!(
                EthAddress::parse_strict(&flipped),
                Err(EthAddressError::BadChecksum)
            );
        }
    }

    #[test]
    fn shape_errors() {
        assert_eq!(
            EthAddress::parse("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            Err(EthAddressError::MissingPrefix)
        );
        assert_eq!(
            EthAddress::parse("0x5aAeb6"),
            Err(EthAddressError::WrongLength)
        );
        assert_eq!(
            EthAddress::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeZ"),
            Err(EthAddressError::InvalidHex)
        );
        assert_eq!(
            EthAddress::parse_strict("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"),
            Err(EthAddressError::MissingChecksum)
        );
    }

    #[test]
    fn serde_round_trip_is_checksummed() {
        let address: EthAddress =
            serde_json::from_str("\"0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359\"").unwrap();
        assert_eq!(
            serde_json::to_string(&address).unwrap(),
            "\"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359\""
        );
    }

    proptest! {
        #[test]
        fn normalized_form_always_passes_strict(bytes in proptest::array::uniform20(any::<u8>())) {
            let address = EthAddress::from_bytes(bytes);
            let parsed = EthAddress::parse_strict(&address.to_checksum()).unwrap();
            prop_assert_eq!(parsed, address);
        }

        #[test]
        fn parse_never_panics(input in "\\PC{0,64}") {
            let _ = EthAddress::parse(&input);
            let _ = EthAddress::parse_strict(&input);
        }
    }
}
