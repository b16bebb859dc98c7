//! Single flight: concurrent misses of one key send one request on; the others wait for its
//! answer to be stored.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::watch;

use crate::key::CacheKey;

/// The keys being fetched now.
#[derive(Debug, Default)]
pub(crate) struct Flights(Arc<Mutex<HashMap<CacheKey, watch::Receiver<()>>>>);

/// What a miss does: fetch (and hold the flight until it ends), or wait for the one fetching.
pub(crate) enum Turn {
    Lead(Flight),
    Wait(watch::Receiver<()>),
}

/// The flight of one key; dropping it (the fetch ended, or was cancelled) wakes the waiters.
pub(crate) struct Flight {
    flights: Arc<Mutex<HashMap<CacheKey, watch::Receiver<()>>>>,
    key: CacheKey,
    _done: watch::Sender<()>,
}

impl Flights {
    pub(crate) fn join(&self, key: &CacheKey) -> Turn {
        let mut flights = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waiting) = flights.get(key) {
            return Turn::Wait(waiting.clone());
        }
        let (done, waiting) = watch::channel(());
        flights.insert(key.clone(), waiting);
        Turn::Lead(Flight {
            flights: self.0.clone(),
            key: key.clone(),
            _done: done,
        })
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// Waits until the flight `waiting` belongs to has ended.
pub(crate) async fn landed(mut waiting: watch::Receiver<()>) {
    // The sender never sends: `changed` returns once it is dropped.
    while waiting.changed().await.is_ok() {}
}
