//! Verified tokens, so a repeated token skips signature verification.
//!
//! Keyed by a seeded 64-bit hash of the token's last bytes, which lie in its signature (the part
//! that differs between any two tokens a server issues); the entry keeps the whole token, compared
//! on a hit, so a key collision can never lend one token's identity to another. Only verified
//! tokens are inserted, so a client cannot crowd one key with forged tokens either. Each entry is valid until
//! the token's `exp` plus leeway by the layer's [`Clock`](crate::Clock), kept as the tokio
//! [`Instant`] at which that clock passes it: a hit reads the clock once and compares, and paused
//! tokio time expires it in tests (moka's TTLs run on their own clock, which tests cannot move).
//!
//! The map is split into shards behind read-write locks: a hit is one uncontended read lock, one
//! hash-map probe, one comparison of the token and one reference-count increment (the context). A full shard first drops expired entries,
//! then an arbitrary one (the keys are random hashes, so this is random eviction).

use std::{
    collections::HashMap,
    hash::{BuildHasher, BuildHasherDefault, Hasher},
    sync::{PoisonError, RwLock},
};

use foldhash::fast::RandomState;
use streamgate_core::SecurityContext;
use tokio::time::Instant;

const SHARDS: usize = 16;

/// How many of the token's last bytes are hashed into its key.
const KEY_BYTES: usize = 32;

#[derive(Debug)]
pub(crate) struct CachedToken {
    token: Box<[u8]>,
    pub(crate) context: SecurityContext,
    /// From this instant on the token is refused (its `exp` + leeway has passed).
    pub(crate) expires_at: Instant,
    pub(crate) token_id: Option<Box<str>>,
}

pub(crate) enum Lookup<T> {
    /// What the caller made of the live entry.
    Hit(T),
    Expired,
    Miss,
}

/// The keys are already seeded hashes: use them as they are.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type Shard = RwLock<HashMap<u64, CachedToken, BuildHasherDefault<PassThrough>>>;

#[derive(Debug)]
pub(crate) struct TokenCache {
    shards: Box<[Shard]>,
    per_shard: usize,
    hasher: RandomState,
}

impl TokenCache {
    pub(crate) fn new(capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::default(),
        }
    }

    pub(crate) fn key(&self, token: &[u8]) -> u64 {
        let tail = &token[token.len().saturating_sub(KEY_BYTES)..];
        self.hasher.hash_one(tail)
    }

    fn shard(&self, key: u64) -> &Shard {
        // The high bits pick the shard; the map uses all of them.
        &self.shards[(key >> 60) as usize % SHARDS]
    }

    /// Looks `token` up at `now`; a live entry is handed to `hit` under the shard's
    /// read lock, an expired one is removed.
    pub(crate) fn get<T>(
        &self,
        key: u64,
        token: &[u8],
        now: Instant,
        hit: impl FnOnce(&CachedToken) -> T,
    ) -> Lookup<T> {
        let shard = self.shard(key);
        {
            let map = shard.read().unwrap_or_else(PoisonError::into_inner);
            match map.get(&key) {
                Some(entry) if *entry.token == *token => {
                    if now < entry.expires_at {
                        return Lookup::Hit(hit(entry));
                    }
                }
                _ => return Lookup::Miss,
            }
        }
        let mut map = shard.write().unwrap_or_else(PoisonError::into_inner);
        if map
            .get(&key)
            .is_some_and(|entry| *entry.token == *token && now >= entry.expires_at)
        {
            map.remove(&key);
        }
        Lookup::Expired
    }

    pub(crate) fn insert(
        &self,
        key: u64,
        token: &[u8],
        context: SecurityContext,
        expires_at: Instant,
        token_id: Option<&str>,
        now: Instant,
    ) {
        let entry = CachedToken {
            token: token.into(),
            context,
            expires_at,
            token_id: token_id.map(Into::into),
        };
        let mut map = self
            .shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.per_shard && !map.contains_key(&key) {
            map.retain(|_, cached| cached.expires_at > now);
            if map.len() >= self.per_shard
                && let Some(victim) = map.keys().next().copied()
            {
                map.remove(&victim);
            }
        }
        map.insert(key, entry);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> SecurityContext {
        SecurityContext::builder("u").build()
    }

    /// `seconds` after a fixed start.
    fn at(start: Instant, seconds: u64) -> Instant {
        start + std::time::Duration::from_secs(seconds)
    }

    #[test]
    fn size_stays_bounded_and_expired_entries_go_first() {
        let start = Instant::now();
        let cache = TokenCache::new(32);
        for i in 0..1000 {
            let token = format!("token-{i}");
            let token = token.as_bytes();
            cache.insert(
                cache.key(token),
                token,
                context(),
                at(start, 100),
                None,
                start,
            );
        }
        assert!(cache.len() <= 32, "{}", cache.len());
        let token = b"fresh";
        let now = at(start, 200);
        cache.insert(
            cache.key(token),
            token,
            context(),
            at(start, 500),
            None,
            now,
        );
        let get = |now| cache.get(cache.key(token), token, now, |entry| entry.expires_at);
        assert!(matches!(get(now), Lookup::Hit(end) if end == at(start, 500)));
        assert!(matches!(get(at(start, 499)), Lookup::Hit(_)));
        assert!(matches!(get(at(start, 500)), Lookup::Expired));
        assert!(matches!(get(now), Lookup::Miss));
    }

    #[test]
    fn another_token_with_the_same_key_is_a_miss() {
        let start = Instant::now();
        let cache = TokenCache::new(8);
        cache.insert(7, b"real-token", context(), at(start, 100), None, start);
        assert!(matches!(
            cache.get(7, b"forged-token", start, |_| ()),
            Lookup::Miss
        ));
        assert!(matches!(
            cache.get(7, b"real-token", start, |_| ()),
            Lookup::Hit(())
        ));
    }

    #[test]
    fn tokens_sharing_their_tail_are_told_apart() {
        let cache = TokenCache::new(8);
        let tail = [b'x'; KEY_BYTES];
        let one = [b"header-one.payload.".as_slice(), &tail].concat();
        let two = [b"header-two.payload.".as_slice(), &tail].concat();
        assert_eq!(cache.key(&one), cache.key(&two));
        let start = Instant::now();
        cache.insert(
            cache.key(&one),
            &one,
            context(),
            at(start, 100),
            None,
            start,
        );
        assert!(matches!(
            cache.get(cache.key(&two), &two, start, |_| ()),
            Lookup::Miss
        ));
        assert!(matches!(
            cache.get(cache.key(&one), &one, start, |_| ()),
            Lookup::Hit(())
        ));
    }
}
