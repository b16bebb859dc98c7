//! The key table of one shard of the in-memory store: a theoretical arrival time (TAT) per key,
//! in 64-byte buckets of three slots, so that finding a key reads one cache line.
//!
//! A slot holds the key's 64-bit hash, 32 more bits of an independently seeded hash (the
//! check), and its TAT: 20 bytes, so three fit in a cache line with a 4-byte count to spare. A
//! key is known by these 96 bits, not by its 16 bytes (two keys are confused only if both hashes
//! agree: with a million keys tracked, a new key has less than one chance in 10^22 of it). The hash
//! picks the key's home bucket; when the home bucket is full the key goes to the next bucket with
//! a free slot, and every bucket it passed over counts it (its `overflow`), as in folly's F14
//! tables. A lookup reads the home bucket and goes on only while the bucket it read has passed
//! keys on: at the load the store runs at (at most 3/4 of the slots), about 85% of keys are in
//! their home bucket. Removing a key frees its slot and uncounts it from the buckets it passed, so
//! removals need no tombstones and never move other keys.
//!
//! The table grows by doubling up to the size its shard's cap needs, and no further: buckets are
//! picked by multiplying the hash by the bucket count (not by masking), so the count need not be
//! a power of two.

/// Slots per bucket.
const SLOTS: usize = 3;
/// A hash of zero marks a free slot; keys never hash to it (see [`KeyHash::new`]).
const FREE: u64 = 0;
/// Buckets of a table's first allocation.
const MIN_BUCKETS: usize = 4;

/// A key as the table knows it: its hash (never zero) and its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct KeyHash {
    hash: u64,
    check: u32,
}

impl KeyHash {
    /// A key's hash and check, from two independently seeded hashers.
    pub(super) fn new(hash: u64, check: u32) -> Self {
        Self {
            hash: hash.max(1),
            check,
        }
    }

    /// The hash (its low bits pick the shard; the table uses its high bits).
    pub(super) fn hash(self) -> u64 {
        self.hash
    }
}

/// One cache line: three slots and how many keys passed over this bucket.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    hashes: [u64; SLOTS],
    tats: [u64; SLOTS],
    checks: [u32; SLOTS],
    /// Keys whose probe passed over this bucket because it was full (saturates; see
    /// [`Table::uncount`]).
    overflow: u32,
}

const _: () = assert!(size_of::<Bucket>() == 64);

impl Bucket {
    const EMPTY: Self = Self {
        hashes: [FREE; SLOTS],
        tats: [0; SLOTS],
        checks: [0; SLOTS],
        overflow: 0,
    };

    #[inline]
    fn position(&self, key: KeyHash) -> Option<usize> {
        (0..SLOTS).find(|&slot| self.hashes[slot] == key.hash && self.checks[slot] == key.check)
    }

    fn free_slot(&self) -> Option<usize> {
        self.hashes.iter().position(|&hash| hash == FREE)
    }
}

/// The keys of one shard and their TATs.
pub(super) struct Table {
    buckets: Box<[Bucket]>,
    len: usize,
}

/// The bucket whose slots a hash prefers: the hash's high bits scaled to the bucket count.
#[inline]
fn home(hash: u64, buckets: usize) -> usize {
    // The product of a u64 and a usize shifted right by 64 is below `buckets`, so it fits.
    ((u128::from(hash) * buckets as u128) >> 64) as usize
}

#[inline]
fn next(index: usize, buckets: usize) -> usize {
    if index + 1 == buckets { 0 } else { index + 1 }
}

/// The most keys `buckets` buckets hold (3/4 of their slots).
fn max_len(buckets: usize) -> usize {
    buckets * SLOTS * 3 / 4
}

/// The fewest buckets that hold `keys` keys.
pub(super) fn buckets_for(keys: usize) -> usize {
    (keys * 4).div_ceil(SLOTS * 3).max(1)
}

impl Table {
    /// An empty table; it allocates with its first key.
    pub(super) fn new() -> Self {
        Self {
            buckets: Box::new([]),
            len: 0,
        }
    }

    /// Keys in the table.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Bytes the table holds on the heap.
    pub(super) fn allocation_size(&self) -> usize {
        size_of_val(&*self.buckets)
    }

    /// The key's TAT, if the key is in the table.
    #[inline]
    pub(super) fn get_mut(&mut self, key: KeyHash) -> Option<&mut u64> {
        let buckets = self.buckets.len();
        if buckets == 0 {
            return None;
        }
        let mut index = home(key.hash, buckets);
        loop {
            let bucket = &self.buckets[index];
            if let Some(slot) = bucket.position(key) {
                return Some(&mut self.buckets[index].tats[slot]);
            }
            if bucket.overflow == 0 {
                return None;
            }
            index = next(index, buckets);
        }
    }

    /// Adds a key that is not in the table, growing it first when it is 3/4 full (to at most
    /// `max_buckets` buckets, unless that is too few to hold one more key).
    pub(super) fn insert(&mut self, key: KeyHash, tat: u64, max_buckets: usize) {
        if self.len >= max_len(self.buckets.len()) {
            self.grow(max_buckets);
        }
        self.place(key, tat);
        self.len += 1;
    }

    /// Puts the key in the first bucket from its home that has a free slot, counting it in the
    /// buckets before. The table always has a free slot (it is at most 3/4 full).
    fn place(&mut self, key: KeyHash, tat: u64) {
        let buckets = self.buckets.len();
        let mut index = home(key.hash, buckets);
        loop {
            let bucket = &mut self.buckets[index];
            if let Some(slot) = bucket.free_slot() {
                bucket.hashes[slot] = key.hash;
                bucket.checks[slot] = key.check;
                bucket.tats[slot] = tat;
                return;
            }
            bucket.overflow = bucket.overflow.saturating_add(1);
            index = next(index, buckets);
        }
    }

    fn grow(&mut self, max_buckets: usize) {
        let current = self.buckets.len();
        let buckets = (current * 2)
            .max(MIN_BUCKETS)
            .min(max_buckets)
            .max(current + 1);
        let old = std::mem::replace(&mut self.buckets, vec![Bucket::EMPTY; buckets].into());
        for bucket in &old {
            for slot in 0..SLOTS {
                if bucket.hashes[slot] != FREE {
                    let key = KeyHash {
                        hash: bucket.hashes[slot],
                        check: bucket.checks[slot],
                    };
                    self.place(key, bucket.tats[slot]);
                }
            }
        }
    }

    /// Removes every key whose TAT `keep` rejects; returns how many.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) -> usize {
        let buckets = self.buckets.len();
        let mut removed = 0;
        for index in 0..buckets {
            for slot in 0..SLOTS {
                let bucket = &mut self.buckets[index];
                let hash = bucket.hashes[slot];
                if hash == FREE || keep(bucket.tats[slot]) {
                    continue;
                }
                bucket.hashes[slot] = FREE;
                self.uncount(hash, index);
                removed += 1;
            }
        }
        self.len -= removed;
        removed
    }

    /// A key with `hash` left bucket `at`: the buckets from its home up to `at` stop counting
    /// it. A saturated count stays saturated (lookups then go on a little further than needed).
    fn uncount(&mut self, hash: u64, at: usize) {
        let buckets = self.buckets.len();
        let mut index = home(hash, buckets);
        while index != at {
            let overflow = &mut self.buckets[index].overflow;
            if *overflow != u32::MAX {
                *overflow -= 1;
            }
            index = next(index, buckets);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn key(n: u64) -> KeyHash {
        // Spread over the whole range so that homes differ.
        KeyHash::new(n.wrapping_mul(0x9E37_79B9_7F4A_7C15), n as u32)
    }

    #[test]
    fn a_bucket_is_one_cache_line() {
        assert_eq!(size_of::<Bucket>(), 64);
        assert_eq!(align_of::<Bucket>(), 64);
    }

    #[test]
    fn keys_are_found_also_when_displaced_and_after_growth() {
        let mut table = Table::new();
        // Every key has the same home: all but three are displaced.
        let same_home = |n: u32| KeyHash::new(1 << 20, n);
        for n in 0..20 {
            table.insert(same_home(n), u64::from(n) + 100, 1000);
        }
        assert_eq!(table.len(), 20);
        for n in 0..20 {
            assert_eq!(
                table.get_mut(same_home(n)).copied(),
                Some(u64::from(n) + 100)
            );
        }
        assert_eq!(table.get_mut(same_home(20)), None);
        // Remove the keys of the home bucket: the displaced ones are still found.
        assert_eq!(table.retain(|tat| tat >= 103), 3);
        for n in 3..20 {
            assert_eq!(
                table.get_mut(same_home(n)).copied(),
                Some(u64::from(n) + 100)
            );
        }
        assert_eq!(table.retain(|_| false), 17);
        assert!(table.buckets.iter().all(|bucket| bucket.overflow == 0));
    }

    #[test]
    fn the_table_stops_growing_at_its_cap() {
        let cap = 1000;
        let mut table = Table::new();
        for n in 0..cap as u64 {
            table.insert(key(n), n, buckets_for(cap));
        }
        assert_eq!(table.buckets.len(), buckets_for(cap));
        assert!(table.len() <= max_len(table.buckets.len()));
        for n in 0..cap as u64 {
            assert_eq!(table.get_mut(key(n)).copied(), Some(n));
        }
    }

    #[test]
    fn the_check_tells_keys_of_one_hash_apart() {
        let mut table = Table::new();
        table.insert(KeyHash::new(7, 1), 10, 8);
        assert_eq!(table.get_mut(KeyHash::new(7, 2)), None);
        assert_eq!(table.get_mut(KeyHash::new(7, 1)).copied(), Some(10));
    }

    proptest! {
        /// Inserts, updates and removals agree with a map, and the overflow counts always equal
        /// the keys that passed over each bucket.
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0u8..3, 0u64..64, 0u64..100), 1..400)) {
            let mut table = Table::new();
            let mut model: HashMap<u64, u64> = HashMap::new();
            // Few distinct homes, so that buckets overflow often.
            let key = |n: u64| KeyHash::new((n % 5) << 61, n as u32);
            for (op, n, value) in ops {
                match op {
                    0 => {
                        match table.get_mut(key(n)) {
                            Some(tat) => *tat = value,
                            None => table.insert(key(n), value, 64),
                        }
                        model.insert(n, value);
                    }
                    1 => {
                        let removed = table.retain(|tat| tat >= value);
                        let before = model.len();
                        model.retain(|_, tat| *tat >= value);
                        prop_assert_eq!(removed, before - model.len());
                    }
                    _ => prop_assert_eq!(table.get_mut(key(n)).copied(), model.get(&n).copied()),
                }
                prop_assert_eq!(table.len(), model.len());
                let buckets = table.buckets.len();
                let mut passed = vec![0u32; buckets];
                for (index, bucket) in table.buckets.iter().enumerate() {
                    for slot in 0..SLOTS {
                        if bucket.hashes[slot] != FREE {
                            let mut at = home(bucket.hashes[slot], buckets);
                            while at != index {
                                passed[at] += 1;
                                at = next(at, buckets);
                            }
                        }
                    }
                }
                let counted: Vec<u32> = table.buckets.iter().map(|bucket| bucket.overflow).collect();
                prop_assert_eq!(counted, passed);
            }
            for (n, tat) in &model {
                prop_assert_eq!(table.get_mut(key(*n)).copied(), Some(*tat));
            }
        }
    }
}
