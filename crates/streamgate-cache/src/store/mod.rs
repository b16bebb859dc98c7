//! Where cached responses live: the [`CacheStore`] trait, the in-process [`MemoryCacheStore`]
//! (the default) and, with the `redis` feature, the `RedisCacheStore` that replicas share.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use streamgate_cache::{CacheLayer, CacheRoute, CacheStore, MemoryCacheStore};
//!
//! // What `CacheLayer::builder()` uses when given no store: moka, 10,000 entries.
//! let store: Arc<dyn CacheStore> =
//!     Arc::new(MemoryCacheStore::new(10_000, Duration::from_secs(60)));
//! let layer = CacheLayer::builder()
//!     .route("/items/{id}", CacheRoute::ttl(Duration::from_secs(60)))
//!     .store(store)
//!     .build();
//! assert_eq!(layer.entry_count(), Some(0));
//! ```
//!
//! The layer asks a store three things: [`lookup`](CacheStore::lookup) a key (a fresh
//! [`Hit`], with its age and remaining freshness, or a miss),
//! [`store`](CacheStore::store) a response for a TTL, and [`invalidate`](CacheStore::invalidate)
//! every entry of a path. The memory store answers at once (a ready [`StoreFuture`]: no
//! allocation, no boxed future); a networked store answers later and the layer waits.
//!
//! A store's failure never fails a request: a lookup that fails is a miss (the request is sent
//! on and its response is not stored), a store or an invalidation that fails leaves the cache as
//! it was. The layer counts each failure in
//! `streamgate_cache_store_errors_total{operation}` (`lookup`, `store`, `invalidate`) and logs
//! at most one line a second about them.

mod memory;
#[cfg(feature = "redis")]
mod redis;
mod tiered;

use std::{fmt, sync::Arc, time::Duration};

use crate::{CacheKey, CachedResponse, Hit};

#[cfg(feature = "redis")]
#[doc(inline)]
pub use self::redis::{RedisCacheStore, RedisCacheStoreBuilder};
#[doc(inline)]
pub use memory::MemoryCacheStore;
/// A store could not answer (a shared store unreachable, too slow, or holding an entry it
/// cannot read).
#[doc(inline)]
pub use streamgate_core::store::StoreError;
/// The future a store returns: ready at once (in memory) or boxed (networked).
#[doc(inline)]
pub use streamgate_core::store::StoreFuture;
#[doc(inline)]
pub use tiered::TieredCacheStore;

/// Where cached responses live: in process ([`MemoryCacheStore`]) or shared by replicas
/// (`RedisCacheStore`, feature `redis`).
///
/// Object safe: the layer holds an `Arc<dyn CacheStore>`, so a store is chosen at run time
/// without changing the layer's type. Freshness is the store's to judge: a lookup returns only
/// responses still fresh, with their age and remaining lifetime.
pub trait CacheStore: Send + Sync + fmt::Debug + 'static {
    /// The fresh response stored under `key`, or a miss with the path's [`Generation`], which
    /// the layer hands back to [`store`](Self::store).
    fn lookup(&self, key: &CacheKey) -> StoreFuture<Lookup>;

    /// Keeps `response` under `key`, fresh for `ttl`. With `seen` (the generation of the lookup
    /// that missed), a store that keeps generations does not keep the response when the key's
    /// path was invalidated since that lookup (the response may predate the change); `None`
    /// keeps it regardless. Resolves to whether the response was kept.
    fn store(
        &self,
        key: CacheKey,
        response: Arc<CachedResponse>,
        ttl: Duration,
        seen: Option<Generation>,
    ) -> StoreFuture<bool>;

    /// Removes (or makes unreachable) every entry whose key's path has this
    /// [normal form](crate::normalized_path), whoever stored it. The layer gives the normal form.
    fn invalidate(&self, path: &str) -> StoreFuture<()>;

    /// The path's current [`Generation`], for a request that skips the lookup
    /// (`Cache-Control: no-cache`) but whose answer is stored: handed back to
    /// [`store`](Self::store), it keeps a response fetched across an invalidation out. The
    /// default, for a store that keeps no generations, is [`Generation::default`].
    fn generation(&self, _path: &str) -> StoreFuture<Generation> {
        StoreFuture::ready(Ok(Generation::default()))
    }

    /// How many entries the store holds now, when it can say cheaply (a shared store may not).
    fn entry_count(&self) -> Option<u64> {
        None
    }

    /// An estimate of [`entry_count`](Self::entry_count) cheap enough for the request path (the
    /// `streamgate_cache_entries` gauge, set after each store); by default the count itself.
    fn entry_estimate(&self) -> Option<u64> {
        self.entry_count()
    }

    /// Whether the store answers now, for a readiness probe: a shared store asks its server.
    /// The default (a store in process) is always ready.
    fn health(&self) -> StoreFuture<()> {
        StoreFuture::ready(Ok(()))
    }
}

/// What a [`CacheStore::lookup`] found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Lookup {
    /// A fresh response.
    Hit(Hit),
    /// Nothing fresh. The generation of the key's path as the store saw it; the default when
    /// the store keeps none.
    Miss(Generation),
}

/// The version of a path's entries in a store that keeps one (the Redis store): invalidating
/// the path gives it a new generation, so that a response fetched before the invalidation is
/// not stored after it. Opaque to the layer, which only hands it back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Generation(u64);

impl Generation {
    /// The generation numbered `number` (0: the path had none).
    #[must_use]
    pub fn new(number: u64) -> Self {
        Self(number)
    }

    /// Its number.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}
