//! The record format: one JSON object per line, keys in a fixed order, each carrying the SHA-256
//! of the previous record and its own hash over everything before the `hash` key.
//!
//! ```text
//! {"seq":0,"prev":"000…","kind":"file_start","file":1,"ts":"2026-11-26T03:17:05.123Z","hash":"…"}
//! {"seq":1,"prev":"…","kind":"event","event":{…},"hash":"…"}
//! {"seq":2,"prev":"…","kind":"checkpoint","ts":"…","sig":"…","hash":"…"}
//! ```

use std::io::Write as _;

use sha2::{Digest, Sha256};

use crate::file::SigningKey;

/// The `prev` of the very first record.
pub(crate) const GENESIS: [u8; 32] = [0; 32];

/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;

/// Starts a record in `buf`; returns where it starts.
pub(crate) fn begin(buf: &mut Vec<u8>, seq: u64, prev: &[u8; 32], kind: &str) -> usize {
    begin_hex(buf, seq, &hex64(prev), kind)
}

/// [`begin`] with the previous hash already in hex.
pub(crate) fn begin_hex(buf: &mut Vec<u8>, seq: u64, prev_hex: &[u8; 64], kind: &str) -> usize {
    let start = buf.len();
    buf.extend_from_slice(b"{\"seq\":");
    crate::event_json::decimal(buf, seq);
    buf.extend_from_slice(b",\"prev\":\"");
    buf.extend_from_slice(prev_hex);
    buf.extend_from_slice(b"\",\"kind\":\"");
    buf.extend_from_slice(kind.as_bytes());
    buf.push(b'"');
    start
}

/// Ends the record started at `start`: hashes it, appends the hash and the newline.
pub(crate) fn finish(buf: &mut Vec<u8>, start: usize) -> [u8; 32] {
    finish_hex(buf, start).0
}

/// [`finish`], also returning the hash in hex (the next record's `prev`).
pub(crate) fn finish_hex(buf: &mut Vec<u8>, start: usize) -> ([u8; 32], [u8; 64]) {
    let hash: [u8; 32] = Sha256::digest(&buf[start..]).into();
    let hex = hex64(&hash);
    buf.extend_from_slice(b",\"hash\":\"");
    buf.extend_from_slice(&hex);
    buf.extend_from_slice(b"\"}\n");
    (hash, hex)
}

/// `bytes` as lowercase hex.
pub(crate) fn hex64(bytes: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0xf)];
    }
    out
}

pub(crate) fn hex32(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}

pub(crate) fn parse_hex32(text: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// What a checkpoint signs: its position and the hash of the record before it.
pub(crate) fn checkpoint_message(seq: u64, prev: &[u8; 32]) -> Vec<u8> {
    format!("streamgate-audit/checkpoint/v1\n{seq}\n{}", hex32(prev)).into_bytes()
}

/// Appends a signed checkpoint record; returns its hash.
pub(crate) fn checkpoint(
    buf: &mut Vec<u8>,
    seq: u64,
    prev: &[u8; 32],
    ts: &[u8],
    key: &SigningKey,
) -> [u8; 32] {
    let start = begin(buf, seq, prev, "checkpoint");
    buf.extend_from_slice(b",\"ts\":\"");
    buf.extend_from_slice(ts);
    buf.extend_from_slice(b"\",\"sig\":\"");
    buf.extend_from_slice(key.sign(&checkpoint_message(seq, prev)).as_bytes());
    buf.push(b'"');
    finish(buf, start)
}

/// Appends the record that opens file `file`; returns its hash. `extra` is appended to its
/// fields as is: empty, or further JSON members each starting with a comma.
pub(crate) fn file_start(
    buf: &mut Vec<u8>,
    seq: u64,
    prev: &[u8; 32],
    file: u64,
    ts: &[u8],
    extra: &[u8],
) -> [u8; 32] {
    let start = begin(buf, seq, prev, "file_start");
    let _ = write!(buf, ",\"file\":{file},\"ts\":\"");
    buf.extend_from_slice(ts);
    buf.push(b'"');
    buf.extend_from_slice(extra);
    finish(buf, start)
}

/// A record line split into its fixed-position parts.
#[derive(Debug)]
pub(crate) struct Line<'a> {
    pub(crate) seq: u64,
    pub(crate) prev: [u8; 32],
    pub(crate) kind: &'a str,
    /// The fields after `kind` (`,"event":{…}`), without the hash.
    pub(crate) fields: &'a [u8],
    /// The hash the line claims.
    pub(crate) hash: [u8; 32],
    /// Whether the claimed hash is the hash of the line's content.
    pub(crate) hash_ok: bool,
}

/// Splits a line (without its newline) into its parts; `None` when it does not have the shape.
pub(crate) fn parse(line: &[u8]) -> Option<Line<'_>> {
    if line.len() < HASH_SUFFIX_LEN + 20 {
        return None;
    }
    let (content, suffix) = line.split_at(line.len() - HASH_SUFFIX_LEN);
    let hash_hex = suffix.strip_prefix(b",\"hash\":\"")?.strip_suffix(b"\"}")?;
    let hash = parse_hex32(hash_hex)?;
    let rest = content.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 {
        return None;
    }
    let seq = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let rest = rest[digits..].strip_prefix(b",\"prev\":\"")?;
    let prev = parse_hex32(rest.get(..64)?)?;
    let rest = rest[64..].strip_prefix(b"\",\"kind\":\"")?;
    let kind_len = rest.iter().position(|b| *b == b'"')?;
    let kind = std::str::from_utf8(&rest[..kind_len]).ok()?;
    let fields = &rest[kind_len + 1..];
    let actual: [u8; 32] = Sha256::digest(content).into();
    Some(Line {
        seq,
        prev,
        kind,
        fields,
        hash,
        hash_ok: actual == hash,
    })
}

/// The event JSON of an event line's fields (`,"event":{…}`).
pub(crate) fn event_json(fields: &[u8]) -> Option<&[u8]> {
    fields.strip_prefix(b",\"event\":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_parser() {
        let key = SigningKey::new(&[7; 32]).unwrap();
        let mut buf = Vec::new();
        let h0 = file_start(&mut buf, 0, &GENESIS, 1, b"2026-01-01T00:00:00.000Z", b"");
        let start = begin(&mut buf, 1, &h0, "event");
        buf.extend_from_slice(b",\"event\":{\"a\":1}");
        let h1 = finish(&mut buf, start);
        let h2 = checkpoint(&mut buf, 2, &h1, b"2026-01-01T00:00:00.000Z", &key);
        let lines: Vec<&[u8]> = buf
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(lines.len(), 3);
        let parsed: Vec<Line<'_>> = lines.iter().map(|l| parse(l).unwrap()).collect();
        assert!(parsed.iter().all(|l| l.hash_ok));
        assert_eq!((parsed[1].seq, parsed[1].prev, parsed[1].hash), (1, h0, h1));
        assert_eq!(event_json(parsed[1].fields), Some(&b"{\"a\":1}"[..]));
        assert_eq!((parsed[2].kind, parsed[2].hash), ("checkpoint", h2));
        for line in &lines {
            serde_json::from_slice::<serde_json::Value>(line).unwrap();
        }
        assert_eq!(hex64(&h1).to_vec(), hex::encode(h1).into_bytes());
    }
}
