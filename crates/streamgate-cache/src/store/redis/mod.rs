//! The shared store for several replicas: entries on Redis, expiring by Redis's own clock
//! (feature `redis`).
//!
//! ```no_run
//! use std::{sync::Arc, time::Duration};
//! use streamgate_cache::{CacheLayer, CacheRoute, RedisCacheStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisCacheStore::builder("redis://127.0.0.1:6379")
//!     .prefix("files:cache")
//!     .timeout(Duration::from_millis(100))
//!     .build()?;
//! let layer = CacheLayer::builder()
//!     .route("/files/{id}", CacheRoute::ttl(Duration::from_secs(30)))
//!     .store(Arc::new(store))
//!     .build();
//! # let _ = layer; Ok(()) }
//! ```
//!
//! See [`RedisCacheStore`] for how entries are kept, found and invalidated.

mod codec;

use std::{
    fmt,
    hash::{BuildHasher, RandomState},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use redis::{Script, Value};
use streamgate_core::redis::RedisConnection;

use self::codec::TAG_LEN;
use super::{CacheStore, Generation, Lookup, StoreError, StoreFuture};
use crate::{CacheKey, CachedResponse, Hit};

/// How long a new generation lives at least: a response fetched across an invalidation whose
/// lookup found no generation is refused for this long.
const INVALIDATION_FENCE: Duration = Duration::from_secs(60);

/// Builds a [`RedisCacheStore`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisCacheStoreBuilder {
    url: String,
    prefix: String,
    timeout: Duration,
}

impl RedisCacheStoreBuilder {
    /// The prefix of every key (default `streamgate:cache`). Replicas that share entries use
    /// the same prefix and cache the same routes with the same `vary` headers.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The bound on each call, connecting included (default 100 ms; a lookup carries a whole
    /// body).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the store. It connects on its first call (or [`RedisCacheStore::health`]).
    ///
    /// # Errors
    /// When the URL is not a Redis URL.
    pub fn build(self) -> Result<RedisCacheStore, StoreError> {
        Ok(RedisCacheStore {
            inner: Arc::new(Inner {
                connection: RedisConnection::open(&self.url, self.timeout)?,
                lookup: Script::new(include_str!("lookup.lua")),
                store: Script::new(include_str!("store.lua")),
                invalidate: Script::new(include_str!("invalidate.lua")),
                prefix: self.prefix,
            }),
        })
    }
}

struct Inner {
    connection: RedisConnection,
    lookup: Script,
    store: Script,
    invalidate: Script,
    prefix: String,
}

/// A [`CacheStore`] on Redis, shared by replicas: a response one replica stores is a hit on
/// every other, and a write through any replica invalidates its path for all.
///
/// - **Expiry and age:** an entry is set with Redis's own expiry (`SET ... PX ttl`); a lookup
///   reads its remaining time (`PTTL`) in the same script. Freshness (`Cache-Status: ttl=`) is
///   that remaining time and `Age` is the TTL minus it, so replicas agree whatever their clocks
///   say: no wall-clock time is compared between machines.
/// - **Invalidation: a generation per path.** Each path has a generation key holding a random
///   64-bit number, and each entry starts with the generation it was stored under. A lookup
///   serves an entry only when its tag is the path's current generation; invalidating a path
///   sets a new generation (one O(1) script, whatever the number of entries, users and queries
///   under the path), and the old entries, never served again, expire on their own or are
///   overwritten. A lookup that misses returns the generation it saw and the store script keeps
///   the response only if the generation is still that one, so a response fetched before a
///   write and stored after it (on any replica) is refused rather than served stale. A set of
///   entry keys per path deleted by a script was the alternative: it frees memory at once, but
///   costs one deletion per entry and an index to prune, and cannot refuse a late store.
/// - **Entries:** a compact length-prefixed binary form (status, headers without `Set-Cookie`,
///   body), not base64 in JSON; key names are SHA-256 digests, so user ids, queries and header
///   values never appear in them.
/// - **Failures:** every call (connecting included) is bounded by the timeout (default 100 ms).
///   An error or timeout is returned to the layer, which serves a lookup error as a miss and
///   leaves the response unstored, and counts it (see [`store`](crate::store)). A broken
///   connection is dropped and made again on a later call, at most every 100 ms.
///
/// Single flight stays per process: concurrent misses of one key on one replica send one
/// request on, but each replica sends its own.
///
/// Cheap to clone; clones share one multiplexed connection.
///
/// # Redis Cluster is not supported
///
/// The store speaks to the one server its URL names and does not follow cluster redirects. (A
/// path's keys share a hash tag, so its scripts would stay within one slot.)
#[derive(Clone)]
pub struct RedisCacheStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisCacheStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCacheStore")
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.connection.timeout())
            .finish_non_exhaustive()
    }
}

impl RedisCacheStore {
    /// A builder for the server at `url` (`redis://127.0.0.1:6379`).
    pub fn builder(url: impl Into<String>) -> RedisCacheStoreBuilder {
        RedisCacheStoreBuilder {
            url: url.into(),
            prefix: "streamgate:cache".to_owned(),
            timeout: Duration::from_millis(100),
        }
    }

    /// Pings the server within the timeout (readiness).
    ///
    /// # Errors
    /// When the server cannot be reached or does not answer in time.
    pub async fn health(&self) -> Result<(), StoreError> {
        self.inner.connection.ping().await
    }
}

impl Inner {
    async fn lookup(&self, generation: String, entry: String) -> Result<Lookup, StoreError> {
        let mut connection = self.connection.get().await?;
        let answer: Vec<Value> = self.connection.settle(
            self.lookup
                .key(generation)
                .key(entry)
                .invoke_async(&mut connection)
                .await,
        )?;
        let mut answer = answer.into_iter();
        match (answer.next(), answer.next(), answer.next(), answer.next()) {
            (None, ..) => Ok(Lookup::Miss(Generation::default())),
            (Some(Value::BulkString(tag)), None, None, None) => {
                Ok(Lookup::Miss(Generation::new(codec::parse_tag(&tag)?)))
            }
            (
                Some(Value::BulkString(tag)),
                Some(Value::BulkString(entry)),
                Some(Value::Int(left)),
                None,
            ) if entry.len() >= TAG_LEN => {
                let generation = Generation::new(codec::parse_tag(&tag)?);
                let Some(remaining) = u64::try_from(left)
                    .ok()
                    .filter(|&left| left > 0)
                    .map(Duration::from_millis)
                else {
                    return Ok(Lookup::Miss(generation));
                };
                let (response, ttl) = codec::decode(&Bytes::from(entry).slice(TAG_LEN..))?;
                let age = ttl.saturating_sub(remaining);
                Ok(Lookup::Hit(Hit::new(Arc::new(response), age, remaining)))
            }
            _ => Err(StoreError::new(
                "unexpected answer from the cache lookup script",
            )),
        }
    }

    async fn store(
        &self,
        (generation, entry): (String, String),
        seen: &str,
        ttl: Duration,
        payload: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection.get().await?;
        let kept: i64 = self.connection.settle(
            self.store
                .key(generation)
                .key(entry)
                .arg(seen)
                .arg(codec::tag(fresh_generation()))
                .arg(millis(ttl))
                .arg(payload)
                .invoke_async(&mut connection)
                .await,
        )?;
        Ok(kept == 1)
    }

    async fn generation(&self, generation: String) -> Result<Generation, StoreError> {
        let mut connection = self.connection.get().await?;
        let tag: Option<Vec<u8>> = self.connection.settle(
            redis::cmd("GET")
                .arg(generation)
                .query_async(&mut connection)
                .await,
        )?;
        match tag {
            None => Ok(Generation::default()),
            Some(tag) => Ok(Generation::new(codec::parse_tag(&tag)?)),
        }
    }

    async fn invalidate(&self, generation: String) -> Result<(), StoreError> {
        let mut connection = self.connection.get().await?;
        let _: i64 = self.connection.settle(
            self.invalidate
                .key(generation)
                .arg(codec::tag(fresh_generation()))
                .arg(millis(INVALIDATION_FENCE))
                .invoke_async(&mut connection)
                .await,
        )?;
        Ok(())
    }
}

impl CacheStore for RedisCacheStore {
    fn health(&self) -> StoreFuture<()> {
        let store = self.clone();
        StoreFuture::boxed(async move { store.health().await })
    }

    fn lookup(&self, key: &CacheKey) -> StoreFuture<Lookup> {
        let inner = self.inner.clone();
        let (generation, entry) = codec::keys(&inner.prefix, key);
        StoreFuture::boxed(async move {
            inner
                .connection
                .bounded(inner.lookup(generation, entry))
                .await
        })
    }

    fn store(
        &self,
        key: CacheKey,
        response: Arc<CachedResponse>,
        ttl: Duration,
        seen: Option<Generation>,
    ) -> StoreFuture<bool> {
        let inner = self.inner.clone();
        let keys = codec::keys(&inner.prefix, &key);
        let seen = match seen {
            None => "*".to_owned(),
            Some(generation) if generation == Generation::default() => String::new(),
            Some(generation) => codec::tag(generation.get()),
        };
        let payload = match codec::encode(&response, ttl) {
            Ok(payload) => payload,
            Err(error) => return StoreFuture::ready(Err(error)),
        };
        StoreFuture::boxed(async move {
            inner
                .connection
                .bounded(inner.store(keys, &seen, ttl, payload))
                .await
        })
    }

    fn invalidate(&self, path: &str) -> StoreFuture<()> {
        let inner = self.inner.clone();
        let generation = codec::generation_key(&inner.prefix, path);
        StoreFuture::boxed(
            async move { inner.connection.bounded(inner.invalidate(generation)).await },
        )
    }

    fn generation(&self, path: &str) -> StoreFuture<Generation> {
        let inner = self.inner.clone();
        let generation = codec::generation_key(&inner.prefix, path);
        StoreFuture::boxed(
            async move { inner.connection.bounded(inner.generation(generation)).await },
        )
    }
}

/// A TTL in whole milliseconds, at least one (Redis refuses `PX 0`).
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A new random generation, never 0 (0 stands for "none").
fn fresh_generation() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    // Keyed by random numbers the process drew, so replicas draw different sequences.
    RandomState::new()
        .hash_one(CALLS.fetch_add(1, Ordering::Relaxed))
        .max(1)
}
