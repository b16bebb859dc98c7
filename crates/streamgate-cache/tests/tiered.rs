//! `TieredCacheStore`: a local copy in front of a shared store, on tokio's paused clock (the
//! shared store here is another memory store, or one that always fails).

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use axum::{Router, extract::Path, routing::get};
use common::{header, send};
use streamgate_cache::{
    CacheKey, CacheLayer, CacheRoute, CacheStore, CachedResponse, Generation, Lookup,
    MemoryCacheStore, StoreError, StoreFuture, TieredCacheStore,
};

const TTL: Duration = Duration::from_secs(60);
const LOCAL_TTL: Duration = Duration::from_secs(2);

/// A replica: its own local copies in front of `shared`, a handler that counts its calls.
fn replica(shared: &Arc<dyn CacheStore>, calls: &Arc<AtomicU32>) -> Router {
    let store = TieredCacheStore::new(shared.clone(), 100, LOCAL_TTL);
    let calls = calls.clone();
    Router::new()
        .route(
            "/items/{id}",
            get(move |Path(id): Path<u32>| {
                let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
                async move { format!("item {id}, call {call}") }
            })
            .post(|| async { "written" }),
        )
        .layer(
            CacheLayer::builder()
                .route("/items/{id}", CacheRoute::ttl(TTL).shared())
                .store(Arc::new(store))
                .build(),
        )
}

#[tokio::test(start_paused = true)]
async fn a_copy_serves_until_its_local_ttl_then_the_shared_store_decides() {
    let shared: Arc<dyn CacheStore> = Arc::new(MemoryCacheStore::new(100, TTL));
    let calls = Arc::new(AtomicU32::new(0));
    let (a, b) = (replica(&shared, &calls), replica(&shared, &calls));

    assert_eq!(
        header(&send(&a, "GET", "/items/1", &[]).await, "x-cache"),
        "MISS"
    );
    tokio::time::advance(Duration::from_secs(5)).await;
    // B finds it in the shared store, with its age, and copies it.
    let from_shared = send(&b, "GET", "/items/1", &[]).await;
    assert_eq!(header(&from_shared, "x-cache"), "HIT");
    assert_eq!(header(&from_shared, "age"), "5");
    assert_eq!(from_shared.body, "item 1, call 1");

    // The shared entry goes (another replica's write, say): B's copy still answers...
    assert!(matches!(shared.invalidate("/items/1").await, Ok(())));
    let from_copy = send(&b, "GET", "/items/1", &[]).await;
    assert_eq!(header(&from_copy, "x-cache"), "HIT");
    assert_eq!(from_copy.body, "item 1, call 1");
    // ...until its local TTL passes.
    tokio::time::advance(LOCAL_TTL).await;
    let refetched = send(&b, "GET", "/items/1", &[]).await;
    assert_eq!(header(&refetched, "x-cache"), "MISS");
    assert_eq!(refetched.body, "item 1, call 2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // A write through a replica clears its own copy and the shared entry at once.
    send(&a, "GET", "/items/2", &[]).await;
    send(&a, "POST", "/items/2", &[]).await;
    let after_write = send(&a, "GET", "/items/2", &[]).await;
    assert_eq!(header(&after_write, "x-cache"), "MISS");
}

/// A shared store that can be taken down.
#[derive(Debug)]
struct Flaky {
    inner: MemoryCacheStore,
    down: AtomicBool,
}

impl Flaky {
    fn refuse<T>(&self) -> Option<StoreFuture<T>> {
        self.down
            .load(Ordering::SeqCst)
            .then(|| StoreFuture::ready(Err(StoreError::new("connection refused"))))
    }
}

impl CacheStore for Flaky {
    fn lookup(&self, key: &CacheKey) -> StoreFuture<Lookup> {
        self.refuse().unwrap_or_else(|| self.inner.lookup(key))
    }

    fn store(
        &self,
        key: CacheKey,
        response: Arc<CachedResponse>,
        ttl: Duration,
        seen: Option<Generation>,
    ) -> StoreFuture<bool> {
        self.refuse()
            .unwrap_or_else(|| self.inner.store(key, response, ttl, seen))
    }

    fn invalidate(&self, path: &str) -> StoreFuture<()> {
        self.refuse().unwrap_or_else(|| self.inner.invalidate(path))
    }
}

#[tokio::test(start_paused = true)]
async fn while_the_shared_store_is_down_the_copies_still_answer() {
    let flaky = Arc::new(Flaky {
        inner: MemoryCacheStore::new(100, TTL),
        down: AtomicBool::new(false),
    });
    let shared: Arc<dyn CacheStore> = flaky.clone();
    let calls = Arc::new(AtomicU32::new(0));
    let app = replica(&shared, &calls);
    send(&app, "GET", "/items/1", &[]).await;

    flaky.down.store(true, Ordering::SeqCst);
    let from_copy = send(&app, "GET", "/items/1", &[]).await;
    assert_eq!(header(&from_copy, "x-cache"), "HIT");
    assert_eq!(from_copy.body, "item 1, call 1");
    // Past the copy's lifetime the failing store is a miss: the handler answers, uncached.
    tokio::time::advance(LOCAL_TTL).await;
    let uncached = send(&app, "GET", "/items/1", &[]).await;
    assert_eq!(header(&uncached, "x-cache"), "MISS");
    assert_eq!(uncached.body, "item 1, call 2");
    assert_eq!(
        send(&app, "GET", "/items/1", &[]).await.body,
        "item 1, call 3",
        "nothing is kept from a lookup that failed"
    );

    flaky.down.store(false, Ordering::SeqCst);
    let back = send(&app, "GET", "/items/1", &[]).await;
    assert_eq!(
        header(&back, "x-cache"),
        "HIT",
        "the shared entry is still fresh"
    );
    assert_eq!(back.body, "item 1, call 1");
}
