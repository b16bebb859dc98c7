//! A fast writer for the JSON of an [`AuditEvent`], byte for byte what its `Serialize` derive
//! writes (a test holds them equal): plain strings are copied after one scan instead of being
//! escaped byte by byte, which is most of the file sink's per-event cost.

use std::{io::Write as _, net::IpAddr};

use crate::{
    clock::format_rfc3339_millis,
    event::{Actor, AuditEvent},
};

/// Whether serde_json would escape any byte of `bytes`: the control characters, `"` and `\\`.
/// Eight bytes at a time: a byte's high bit is set in `(x - 0x01..) & !x` only where some byte
/// of `x` is zero (and likewise below 0x20), so the test has no false answers.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x;
    let mut chunks = bytes.chunks_exact(8);
    let mut hits = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word);
        hits |= x.wrapping_sub(ONES * 0x20) & !x;
        hits |= zero_byte(x ^ (ONES * u64::from(b'"')));
        hits |= zero_byte(x ^ (ONES * u64::from(b'\\')));
    }
    hits & HIGH != 0
        || chunks
            .remainder()
            .iter()
            .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Appends the JSON string of `text`.
fn string(buf: &mut Vec<u8>, text: &str) {
    if needs_escape(text.as_bytes()) {
        let _ = serde_json::to_writer(&mut *buf, text);
    } else {
        buf.push(b'"');
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'"');
    }
}

fn key(buf: &mut Vec<u8>, key: &[u8]) {
    buf.extend_from_slice(key);
}

/// Appends `n` in decimal, without going through `core::fmt`.
pub(crate) fn decimal(buf: &mut Vec<u8>, n: u64) {
    buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `n` (below 1000) in decimal, a byte at a time: a copy of a few bytes of unknown
/// length would be a call.
fn small_decimal(buf: &mut Vec<u8>, n: u16) {
    if n >= 100 {
        buf.push(b'0' + (n / 100 % 10) as u8);
    }
    if n >= 10 {
        buf.push(b'0' + (n / 10 % 10) as u8);
    }
    buf.push(b'0' + (n % 10) as u8);
}

fn ip(buf: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                small_decimal(buf, u16::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(buf, "{v6}");
        }
    }
}

/// Appends `event` as JSON.
pub(crate) fn write_event(buf: &mut Vec<u8>, event: &AuditEvent) {
    key(buf, b"{\"id\":\"");
    let mut id = [0u8; 36];
    buf.extend_from_slice(event.id.hyphenated().encode_lower(&mut id).as_bytes());
    key(buf, b"\",\"timestamp\":\"");
    buf.extend_from_slice(&format_rfc3339_millis(event.timestamp));
    key(buf, b"\",\"type\":");
    string(buf, &event.event_type);
    key(buf, b",\"actor\":");
    match &event.actor {
        Actor::User { id, wallet } => {
            key(buf, b"{\"kind\":\"user\",\"id\":");
            string(buf, id);
            if let Some(wallet) = wallet {
                key(buf, b",\"wallet\":");
                let _ = serde_json::to_writer(&mut *buf, wallet);
            }
            buf.push(b'}');
        }
        Actor::Wallet { address } => {
            key(buf, b"{\"kind\":\"wallet\",\"address\":");
            let _ = serde_json::to_writer(&mut *buf, address);
            buf.push(b'}');
        }
        Actor::Anonymous => key(buf, b"{\"kind\":\"anonymous\"}"),
    }
    if let Some(address) = event.source_ip {
        key(buf, b",\"source_ip\":\"");
        ip(buf, address);
        buf.push(b'"');
    }
    if let Some(request_id) = &event.request_id {
        key(buf, b",\"request_id\":");
        string(buf, request_id);
    }
    if let Some(method) = &event.method {
        key(buf, b",\"method\":");
        string(buf, method);
    }
    if let Some(route) = &event.route {
        key(buf, b",\"route\":");
        string(buf, route);
    }
    key(buf, b",\"resource\":");
    string(buf, &event.resource);
    key(buf, b",\"action\":");
    string(buf, &event.action);
    key(buf, b",\"outcome\":\"");
    buf.extend_from_slice(event.outcome.as_str().as_bytes());
    buf.push(b'"');
    if let Some(status) = event.status {
        key(buf, b",\"status\":");
        if status < 1000 {
            small_decimal(buf, status);
        } else {
            decimal(buf, u64::from(status));
        }
    }
    if let Some(reason) = &event.reason {
        key(buf, b",\"reason\":");
        string(buf, reason);
    }
    if let Some(latency) = event.latency_ms {
        key(buf, b",\"latency_ms\":");
        let _ = serde_json::to_writer(&mut *buf, &latency);
    }
    if !event.metadata.is_empty() {
        key(buf, b",\"metadata\":");
        let _ = serde_json::to_writer(&mut *buf, &event.metadata);
    }
    buf.push(b'}');
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde_json::json;
    use streamgate_core::EthAddress;

    use super::*;
    use crate::event::Outcome;

    fn same(event: &AuditEvent) {
        let mut fast = Vec::new();
        write_event(&mut fast, event);
        let derived = serde_json::to_vec(event).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&fast),
            String::from_utf8_lossy(&derived)
        );
    }

    #[test]
    fn matches_the_serde_derive_byte_for_byte() {
        let wallet = EthAddress::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").unwrap();
        let t = UNIX_EPOCH + Duration::from_millis(1_764_127_025_123);
        let mut event = AuditEvent::new(
            t,
            "upload",
            Actor::user("u-1"),
            "upload_file",
            "f",
            Outcome::Success,
        );
        same(&event);
        event.actor = Actor::User {
            id: "u\"2\\\n\u{1}é".into(),
            wallet: Some(wallet),
        };
        event.source_ip = Some("2001:db8::1".parse().unwrap());
        event.request_id = Some("req\t1".into());
        event.method = Some("POST".into());
        event.route = Some("/items/{id}".into());
        event.resource = "/items/\r\n7\u{7f}".into();
        event.outcome = Outcome::Denied;
        event.status = Some(401);
        event.reason = Some("invalid_token".into());
        event.latency_ms = Some(0.123_456);
        event.metadata = json!({"a": [1, 2.5, null], "b": "x\ny"})
            .as_object()
            .unwrap()
            .clone();
        same(&event);
        event.actor = Actor::Wallet { address: wallet };
        event.latency_ms = Some(f64::NAN);
        event.source_ip = Some("203.0.113.9".parse().unwrap());
        same(&event);
        event.source_ip = Some("0.0.0.0".parse().unwrap());
        event.status = Some(0);
        same(&event);
        for status in [9, 10, 99, 100, 404, 999, 1000, u16::MAX] {
            event.status = Some(status);
            same(&event);
        }
        let mut digits = Vec::new();
        for n in [0, 7, 10, 65_535, u64::MAX] {
            digits.clear();
            decimal(&mut digits, n);
            assert_eq!(digits, n.to_string().as_bytes());
        }
        event.actor = Actor::Anonymous;
        event.timestamp = SystemTime::UNIX_EPOCH;
        same(&event);
    }

    #[test]
    fn escapes_exactly_what_serde_json_escapes() {
        let mut text = String::new();
        for c in (0u8..0x80).map(char::from).chain(['é', '\u{2028}', '😀']) {
            for at in 0..17 {
                text.clear();
                text.extend(std::iter::repeat_n('a', at));
                text.push(c);
                text.extend(std::iter::repeat_n('b', 16 - at));
                let mut fast = Vec::new();
                string(&mut fast, &text);
                assert_eq!(fast, serde_json::to_vec(&text).unwrap(), "{c:?} at {at}");
            }
        }
    }
}
