//! UUIDv7 event ids without a system call per id: the timestamp comes from the event, the 74
//! random bits from a per-thread generator seeded once from the operating system.

use std::cell::Cell;

use uuid::{Builder, Uuid};

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let (high, low) = Uuid::new_v4().as_u64_pair();
    high ^ low.rotate_left(32)
}

/// One step of wyrand: a counter advanced by an odd constant, then mixed.
fn next(state: &Cell<u64>) -> u64 {
    let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
    state.set(s);
    let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
    ((t >> 64) as u64) ^ (t as u64)
}

/// A version 7 UUID for an event at `unix_millis`.
pub(crate) fn new_v7(unix_millis: u64) -> Uuid {
    let (a, b) = STATE.with(|state| (next(state), next(state)));
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&a.to_le_bytes());
    random[8..].copy_from_slice(&b.to_le_bytes()[..2]);
    Builder::from_unix_timestamp_millis(unix_millis, &random).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_unique_and_carry_the_time() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = new_v7(1_764_127_025_123);
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
            assert_eq!((secs, nanos / 1_000_000), (1_764_127_025, 123));
            assert!(seen.insert(id));
        }
    }
}
