//! The `RateLimit` header value of a single policy, `"<name>";r=<remaining>;t=<seconds>`, built
//! without formatting machinery and remembered per thread.
//!
//! Most requests find their bucket full again (it refilled since the key's last request), so the
//! values a policy sends repeat: `r` is the burst less the cost and `t` the time one request's
//! units take to come back. Each thread remembers the last value of a few policies; a request that
//! would send the same one shares it (a reference count) instead of building and allocating its
//! own.

use std::cell::RefCell;

use bytes::Bytes;
use http::HeaderValue;

/// Room for the longest value: a 64-byte name in quotes, `;r=`, `;t=` and two 20-digit numbers.
const CAPACITY: usize = 112;
/// How many policies each thread remembers a value for (by policy id, direct-mapped).
const SLOTS: usize = 4;

/// The bytes of one value, owned by the `Bytes` made from it (one allocation in all).
struct Inline {
    len: usize,
    bytes: [u8; CAPACITY],
}

impl AsRef<[u8]> for Inline {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The last value built on this thread for a policy: (policy id, remaining, seconds, value).
type Slot = Option<(u32, u64, u64, HeaderValue)>;

thread_local! {
    static LAST: RefCell<[Slot; SLOTS]> = const { RefCell::new([None, None, None, None]) };
}

/// `prefix` is the policy's `"<name>";r=` (see [`prefix`]).
pub(crate) fn ratelimit_value(
    policy: u32,
    prefix: &[u8],
    remaining: u64,
    seconds: u64,
) -> Option<HeaderValue> {
    let index = policy as usize % SLOTS;
    let cached = LAST.try_with(|last| {
        let mut last = last.borrow_mut();
        let slot = &mut last[index];
        if let Some((id, r, t, value)) = slot
            && *id == policy
            && *r == remaining
            && *t == seconds
        {
            return Some(value.clone());
        }
        let value = build(prefix, remaining, seconds)?;
        *slot = Some((policy, remaining, seconds, value.clone()));
        Some(value)
    });
    // Only while the thread is being torn down: build without remembering.
    cached.unwrap_or_else(|_| build(prefix, remaining, seconds))
}

/// The start of a policy's value, `"<name>";r=`. Names are at most 64 printable characters.
pub(crate) fn prefix(name: &str) -> Box<[u8]> {
    [b"\"", name.as_bytes(), b"\";r="]
        .concat()
        .into_boxed_slice()
}

fn build(prefix: &[u8], remaining: u64, seconds: u64) -> Option<HeaderValue> {
    let mut numbers = itoa::Buffer::new();
    let mut value = Inline {
        len: 0,
        bytes: [0; CAPACITY],
    };
    let mut put = |part: &[u8]| {
        let end = value.len + part.len();
        value.bytes.get_mut(value.len..end)?.copy_from_slice(part);
        value.len = end;
        Some(())
    };
    put(prefix)?;
    put(numbers.format(remaining).as_bytes())?;
    put(b";t=")?;
    put(numbers.format(seconds).as_bytes())?;
    HeaderValue::from_maybe_shared(Bytes::from_owner(value)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_reuses_the_value() {
        let prefix = prefix("per-ip");
        let first = ratelimit_value(9, &prefix, 41, 3).unwrap();
        assert_eq!(first, r#""per-ip";r=41;t=3"#);
        let again = ratelimit_value(9, &prefix, 41, 3).unwrap();
        assert_eq!(again, first);
        assert_eq!(
            ratelimit_value(9, &prefix, 40, 3).unwrap(),
            r#""per-ip";r=40;t=3"#
        );
        // Another policy in the same slot gets its own value.
        let other = super::prefix("daily");
        assert_eq!(
            ratelimit_value(13, &other, 40, 3).unwrap(),
            r#""daily";r=40;t=3"#
        );
    }

    #[test]
    fn the_longest_value_fits() {
        let name = "n".repeat(64);
        let value = ratelimit_value(7, &prefix(&name), u64::MAX, u64::MAX).unwrap();
        assert_eq!(
            value.to_str().unwrap(),
            format!("\"{name}\";r={};t={}", u64::MAX, u64::MAX)
        );
    }
}
