//! The bounded queue between the request path and the background writer.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use metrics::Counter;
use tokio::sync::{Notify, futures::OwnedNotified, oneshot};

use crate::{event::AuditEvent, http_record::HttpRecord};

/// One queued event: built by `log_event`/`record`, or a request's record that the writer
/// turns into an event.
// Both variants are a few hundred bytes; boxing either would allocate per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Entry {
    Event(AuditEvent),
    Http(HttpRecord),
}

/// What enqueuing does when the queue is full.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Wait for room (backpressure on the request path; nothing is lost).
    #[default]
    Block,
    /// Drop the oldest queued event to make room, counted in `streamgate_audit_dropped_total`.
    DropOldest,
}

// The entry comes back by value when the queue is full; boxing it would allocate per event.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Push {
    Done,
    Full(Entry),
    Closed,
}

/// The most events the writer hands to its sinks at once: bounds the events it keeps for reuse.
pub(crate) const MAX_BATCH: usize = 4096;

struct State {
    events: VecDeque<Entry>,
    closed: bool,
    /// The writer has ended: nothing will answer a flush any more.
    gone: bool,
    flushes: Vec<oneshot::Sender<()>>,
}

/// What [`Queue::take`] found besides the entries.
pub(crate) struct Taken {
    /// Flush requests to answer once the entries are written.
    pub(crate) flushes: Vec<oneshot::Sender<()>>,
    /// The queue is closed.
    pub(crate) closed: bool,
}

/// The queue, shared by every producer and the writer.
pub(crate) struct Queue {
    state: Mutex<State>,
    capacity: usize,
    when_full: WhenFull,
    /// Wakes the writer (one permit is stored when it is busy).
    pub(crate) wake_writer: Notify,
    /// Ends the writer's linger early: a flush was asked for, the logger is shutting down, or
    /// the queue holds a full batch (or is full).
    pub(crate) urgent: Notify,
    /// The queue length at which the writer is woken from its linger.
    urgent_len: usize,
    /// Wakes producers waiting for room.
    space: Arc<Notify>,
    dropped: Counter,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("capacity", &self.capacity)
            .field("when_full", &self.when_full)
            .finish_non_exhaustive()
    }
}

impl Queue {
    pub(crate) fn new(capacity: usize, when_full: WhenFull, dropped: Counter) -> Self {
        Self {
            state: Mutex::new(State {
                events: VecDeque::with_capacity(capacity.min(65_536)),
                closed: false,
                gone: false,
                flushes: Vec::new(),
            }),
            capacity: capacity.max(1),
            when_full,
            wake_writer: Notify::new(),
            urgent: Notify::new(),
            urgent_len: capacity.clamp(1, MAX_BATCH),
            space: Arc::new(Notify::new()),
            dropped,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enqueues without waiting.
    pub(crate) fn try_push(&self, event: Entry) -> Push {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            self.dropped.increment(1);
            return Push::Closed;
        }
        if state.events.len() >= self.capacity {
            match self.when_full {
                WhenFull::Block => return Push::Full(event),
                WhenFull::DropOldest => {
                    state.events.pop_front();
                    self.dropped.increment(1);
                }
            }
        }
        let was_empty = state.events.is_empty();
        state.events.push_back(event);
        let batch_full = state.events.len() == self.urgent_len;
        drop(state);
        if was_empty {
            self.wake_writer.notify_one();
        }
        if batch_full {
            self.urgent.notify_one();
        }
        Push::Done
    }

    /// A future that completes when the writer has taken events; `enable` it, retry, then await.
    pub(crate) fn space_notified(&self) -> OwnedNotified {
        self.space.clone().notified_owned()
    }

    /// Enqueues, waiting for room in `Block` mode. Returns `false` when the logger is shut down.
    pub(crate) async fn push(&self, mut event: Entry) -> bool {
        loop {
            match self.try_push(event) {
                Push::Done => return true,
                Push::Closed => return false,
                Push::Full(back) => event = back,
            }
            let notified = self.space_notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_push(event) {
                Push::Done => return true,
                Push::Closed => return false,
                Push::Full(back) => event = back,
            }
            notified.await;
        }
    }

    /// Moves every queued entry into `into` (which must be empty) and returns the pending flush
    /// requests and whether the queue is closed.
    pub(crate) fn take(&self, into: &mut VecDeque<Entry>) -> Taken {
        let mut state = self.lock();
        std::mem::swap(&mut state.events, into);
        let flushes = std::mem::take(&mut state.flushes);
        let closed = state.closed;
        drop(state);
        if !into.is_empty() {
            self.space.notify_waiters();
        }
        Taken { flushes, closed }
    }

    /// Asks the writer to write everything queued so far; resolves when it has.
    pub(crate) fn request_flush(&self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut state = self.lock();
        if state.gone {
            // Nothing is left to write; the dropped sender answers at once.
            return rx;
        }
        state.flushes.push(tx);
        drop(state);
        self.wake_writer.notify_one();
        self.urgent.notify_one();
        rx
    }

    /// Refuses new events from now on and wakes the writer to drain the rest.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.wake_writer.notify_one();
        self.urgent.notify_one();
        self.space.notify_waiters();
    }

    /// Closes the queue for good when the writer is gone: the queued entries are dropped and
    /// counted, with `in_flight` more the writer had taken but not written; waiting producers
    /// and flushes are released. Returns how many were dropped.
    pub(crate) fn abandon(&self, in_flight: usize) -> usize {
        let mut state = self.lock();
        state.closed = true;
        state.gone = true;
        let events = std::mem::take(&mut state.events);
        let flushes = std::mem::take(&mut state.flushes);
        drop(state);
        // Dropping a flush's sender ends its wait.
        drop(flushes);
        let dropped = events.len() + in_flight;
        self.dropped.increment(dropped as u64);
        self.space.notify_waiters();
        dropped
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().events.len()
    }
}
