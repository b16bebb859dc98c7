//! A local [`MemoryCacheStore`] in front of a shared store.

use std::{sync::Arc, time::Duration};

use super::{CacheStore, Generation, Lookup, MemoryCacheStore, StoreFuture};
use crate::{CacheKey, CachedResponse};

/// A short-lived copy in this process's memory in front of a shared store (Redis): a hot entry
/// is served without a round trip, and while the shared store fails, what this replica holds is
/// still served (the architecture's "fall back to local state").
///
/// Lookups try the local copy first, then the shared store, whose hits are copied locally for
/// at most `local_ttl` (and never past their own freshness). Stores and invalidations go to
/// both; a response the shared store could not keep is still kept locally. The price is
/// staleness across replicas: an invalidation made through another replica reaches this one's
/// copies only when they expire, so keep `local_ttl` short (a second or a few).
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use streamgate_cache::{CacheLayer, CacheRoute, CacheStore, MemoryCacheStore, TieredCacheStore};
///
/// // Here the shared store is another memory store; in production, a RedisCacheStore.
/// let shared: Arc<dyn CacheStore> = Arc::new(MemoryCacheStore::new(10_000, Duration::from_secs(60)));
/// let store = TieredCacheStore::new(shared, 1_000, Duration::from_secs(2));
/// let layer = CacheLayer::builder()
///     .route("/items/{id}", CacheRoute::ttl(Duration::from_secs(60)))
///     .store(Arc::new(store))
///     .build();
/// # let _ = layer;
/// ```
#[derive(Debug, Clone)]
pub struct TieredCacheStore {
    local: MemoryCacheStore,
    shared: Arc<dyn CacheStore>,
    local_ttl: Duration,
}

impl TieredCacheStore {
    /// `shared` behind a local copy of at most `local_entries` entries, each kept at most
    /// `local_ttl`.
    #[must_use]
    pub fn new(shared: Arc<dyn CacheStore>, local_entries: u64, local_ttl: Duration) -> Self {
        Self {
            local: MemoryCacheStore::new(local_entries, local_ttl),
            shared,
            local_ttl,
        }
    }
}

impl CacheStore for TieredCacheStore {
    fn lookup(&self, key: &CacheKey) -> StoreFuture<Lookup> {
        let mut local = self.local.lookup(key);
        if let Some(Ok(Lookup::Hit(hit))) = local.take_ready() {
            return StoreFuture::ready(Ok(Lookup::Hit(hit)));
        }
        let shared = self.shared.lookup(key);
        let (copies, key, cap) = (self.local.clone(), key.clone(), self.local_ttl);
        StoreFuture::boxed(async move {
            let found = shared.await?;
            if let Lookup::Hit(hit) = &found {
                let remaining = hit.remaining().min(cap);
                copies.keep_aged(key, hit.shared_response(), hit.age(), remaining);
            }
            Ok(found)
        })
    }

    fn store(
        &self,
        key: CacheKey,
        response: Arc<CachedResponse>,
        ttl: Duration,
        seen: Option<Generation>,
    ) -> StoreFuture<bool> {
        let shared = self.shared.store(key.clone(), response.clone(), ttl, seen);
        let (copies, cap) = (self.local.clone(), self.local_ttl);
        StoreFuture::boxed(async move {
            let kept = shared.await;
            // Refused because the path changed since the lookup: the response may be stale.
            if !matches!(kept, Ok(false)) {
                copies.keep_aged(key, response, Duration::ZERO, ttl.min(cap));
            }
            kept
        })
    }

    fn invalidate(&self, path: &str) -> StoreFuture<()> {
        let mut local = self.local.invalidate(path);
        let shared = self.shared.invalidate(path);
        StoreFuture::boxed(async move {
            let local = local.take_ready().unwrap_or(Ok(()));
            shared.await.and(local)
        })
    }

    fn health(&self) -> StoreFuture<()> {
        self.shared.health()
    }

    fn generation(&self, path: &str) -> StoreFuture<Generation> {
        self.shared.generation(path)
    }
}
