//! Entries and key names on Redis.
//!
//! An entry is its path's generation (16 hex digits, compared by the scripts) followed by
//! a length-prefixed binary form of the response, big-endian:
//!
//! ```text
//! version u8 = 1 | TTL in ms u64 | status u16 | header count u16
//! per header: name length u16 | name | value length u32 | value
//! body (the rest)
//! ```
//!
//! Keys are `<prefix>:{<path digest>}:g` (the path's generation) and
//! `<prefix>:{<path digest>}:<key digest>` (an entry): SHA-256 digests in hex, so a user id,
//! a query or a header value never appears in a key name, and a key of any length makes a name
//! of fixed length. The braces (a hash tag) put a path's keys in one cluster slot.

use std::{fmt::Write as _, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use sha2::{Digest, Sha256};

use crate::{CacheKey, CachedResponse, StoreError};

/// The length of the generation tag that starts every entry.
pub(super) const TAG_LEN: usize = 16;
const VERSION: u8 = 1;

/// The key of `path`'s generation.
pub(super) fn generation_key(prefix: &str, path: &str) -> String {
    let mut name = path_part(prefix, path);
    name.push('g');
    name
}

/// The keys of `key`'s generation and entry: the generation by the path's normal form (what
/// invalidation gives), the entry by the path as sent.
pub(super) fn keys(prefix: &str, key: &CacheKey) -> (String, String) {
    let part = path_part(prefix, &crate::normalized_path(key.path()));
    let generation = format!("{part}g");
    let mut digest = Sha256::new();
    field(&mut digest, Some(key.path().as_bytes()));
    field(&mut digest, key.query().map(str::as_bytes));
    field(&mut digest, key.scope().map(str::as_bytes));
    digest.update((key.vary().len() as u64).to_be_bytes());
    for value in key.vary() {
        field(&mut digest, value.as_ref().map(HeaderValue::as_bytes));
    }
    let mut entry = part;
    hex(&mut entry, &digest.finalize());
    (generation, entry)
}

/// `<prefix>:{<first 16 bytes of the path's digest>}:`
fn path_part(prefix: &str, path: &str) -> String {
    let mut name = String::with_capacity(prefix.len() + 4 + 32 + 65);
    name.push_str(prefix);
    name.push_str(":{");
    hex(&mut name, &Sha256::digest(path.as_bytes())[..16]);
    name.push_str("}:");
    name
}

/// Feeds an optional field so that no two different keys feed the same bytes.
fn field(digest: &mut Sha256, value: Option<&[u8]>) {
    match value {
        None => digest.update([0]),
        Some(bytes) => {
            digest.update([1]);
            digest.update((bytes.len() as u64).to_be_bytes());
            digest.update(bytes);
        }
    }
}

fn hex(out: &mut String, bytes: &[u8]) {
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
}

/// A generation as its tag: 16 lowercase hex digits.
pub(super) fn tag(generation: u64) -> String {
    format!("{generation:016x}")
}

/// The generation a tag names.
pub(super) fn parse_tag(tag: &[u8]) -> Result<u64, StoreError> {
    std::str::from_utf8(tag)
        .ok()
        .filter(|text| text.len() == TAG_LEN)
        .and_then(|text| u64::from_str_radix(text, 16).ok())
        .ok_or_else(|| StoreError::new("a cache generation on Redis is not 16 hex digits"))
}

/// The binary form of `response`, kept for `ttl` (without the tag).
///
/// # Errors
/// More than 65,535 headers, a header name longer than 65,535 bytes or a value longer than
/// 4 GiB: such a response is not stored.
pub(super) fn encode(response: &CachedResponse, ttl: Duration) -> Result<Vec<u8>, StoreError> {
    let headers = response.headers();
    let too_large = || StoreError::new("response headers too large to store");
    let count = u16::try_from(headers.len()).map_err(|_| too_large())?;
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| 6 + name.as_str().len() + value.len())
        .sum();
    let mut out = Vec::with_capacity(13 + header_bytes + response.body().len());
    out.push(VERSION);
    let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    out.extend_from_slice(&millis.to_be_bytes());
    out.extend_from_slice(&response.status().as_u16().to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    for (name, value) in headers {
        let name = name.as_str().as_bytes();
        let name_len = u16::try_from(name.len()).map_err(|_| too_large())?;
        let value_len = u32::try_from(value.len()).map_err(|_| too_large())?;
        out.extend_from_slice(&name_len.to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&value_len.to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(response.body());
    Ok(out)
}

/// The response and its TTL from their binary form (without the tag). The body is a slice of
/// `bytes`, not a copy.
///
/// # Errors
/// Bytes that [`encode`] did not write (another version, cut short, invalid header).
pub(super) fn decode(bytes: &Bytes) -> Result<(CachedResponse, Duration), StoreError> {
    let unreadable = || StoreError::new("a cache entry on Redis is unreadable");
    let mut reader = Reader(bytes);
    if reader.take(1).ok_or_else(unreadable)? != [VERSION] {
        return Err(StoreError::new(
            "a cache entry on Redis has another version",
        ));
    }
    let ttl = Duration::from_millis(reader.u64().ok_or_else(unreadable)?);
    let status = reader
        .u16()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(unreadable)?;
    let count = reader.u16().ok_or_else(unreadable)?;
    let mut headers = HeaderMap::with_capacity(usize::from(count));
    for _ in 0..count {
        let name_len = reader.u16().ok_or_else(unreadable)?;
        let name = reader.take(usize::from(name_len)).ok_or_else(unreadable)?;
        let name = HeaderName::from_bytes(name).map_err(|_| unreadable())?;
        let value_len = reader.u32().ok_or_else(unreadable)?;
        let value = reader
            .take(usize::try_from(value_len).map_err(|_| unreadable())?)
            .ok_or_else(unreadable)?;
        let value = HeaderValue::from_bytes(value).map_err(|_| unreadable())?;
        headers.append(name, value);
    }
    let body = bytes.slice(bytes.len() - reader.0.len()..);
    Ok((CachedResponse::new(status, &headers, body), ttl))
}

/// Reads big-endian numbers and byte runs off the front of a slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.0.len() < len {
            return None;
        }
        let (front, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(front)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|bytes| bytes.try_into().ok())
    }

    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use http::{Request, header};

    use super::*;

    fn response() -> CachedResponse {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.append("x-many", HeaderValue::from_static("one"));
        headers.append("x-many", HeaderValue::from_static("two"));
        headers.insert(header::SET_COOKIE, HeaderValue::from_static("session=1"));
        CachedResponse::new(
            StatusCode::OK,
            &headers,
            Bytes::from_static(b"body \0 bytes"),
        )
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let ttl = Duration::from_millis(60_123);
        let bytes = Bytes::from(encode(&response(), ttl).unwrap());
        let (read, read_ttl) = decode(&bytes).unwrap();
        assert_eq!(read, response());
        assert_eq!(read_ttl, ttl);
        assert!(read.headers().get(header::SET_COOKIE).is_none());
        let many: Vec<_> = read.headers().get_all("x-many").iter().collect();
        assert_eq!(many, ["one", "two"]);
        // Compact: the fixed part, the headers as written, the body.
        let headers = (6 + 12 + 10) + 2 * (6 + 6 + 3);
        assert_eq!(bytes.len(), 13 + headers + 12);
    }

    #[test]
    fn cut_or_foreign_bytes_are_refused() {
        let bytes = Bytes::from(encode(&response(), Duration::from_secs(1)).unwrap());
        for len in 0..13 + 6 {
            assert!(decode(&bytes.slice(..len)).is_err(), "cut at {len}");
        }
        let mut other = bytes.to_vec();
        other[0] = 2;
        assert!(decode(&Bytes::from(other)).is_err());
    }

    #[test]
    fn tags_are_sixteen_hex_digits() {
        assert_eq!(tag(0xab), "00000000000000ab");
        assert_eq!(parse_tag(tag(u64::MAX).as_bytes()).unwrap(), u64::MAX);
        assert!(parse_tag(b"00ab").is_err());
        assert!(parse_tag(b"zzzzzzzzzzzzzzzz").is_err());
    }

    fn key(uri: &str, user: Option<&str>, accept: Option<&'static str>) -> CacheKey {
        let mut request = Request::get(uri);
        if let Some(accept) = accept {
            request = request.header(header::ACCEPT, accept);
        }
        CacheKey::new(
            &request.body(()).unwrap(),
            user.map(Into::into),
            &[header::ACCEPT],
        )
    }

    #[test]
    fn keys_share_the_path_part_and_differ_by_every_field() {
        let (generation, entry) = keys("p", &key("/a?x=1", Some("ada"), None));
        assert_eq!(generation, generation_key("p", "/a"));
        assert!(generation.starts_with("p:{") && generation.ends_with("}:g"));
        assert_eq!(generation.len(), "p:{}:g".len() + 32);
        assert_eq!(entry.len(), "p:{}:".len() + 32 + 64);
        assert_eq!(
            entry[..entry.len() - 64],
            generation[..generation.len() - 1]
        );
        let others = [
            key("/a?x=2", Some("ada"), None),
            key("/a?x=1", Some("bob"), None),
            key("/a?x=1", None, None),
            key("/a?x=1", Some("ada"), Some("text/html")),
            key("/a", Some("ada"), None),
        ];
        for other in &others {
            assert_ne!(keys("p", other).1, entry, "{other:?}");
        }
        assert!(!entry.contains("ada"));
    }
}
