//! Queries over a log directory: a scan of the files that can hold the requested time range.

use std::{
    cmp::Ordering,
    collections::BinaryHeap,
    fs, io,
    path::PathBuf,
    time::{Duration, SystemTime},
};

use crate::{
    event::AuditEvent,
    file::{naming, record},
    sink::{AuditQuery, QueryFuture, SinkError, TimeRange},
};

/// How long an event may wait in the queue before it is written; files created this long after
/// the end of a range are not read for it.
const WRITE_DELAY_GRACE: Duration = Duration::from_secs(3600);

/// Answers the seed's queries from a log directory. Cheap to clone.
///
/// Every record of a file was written before the next file was created, so files whose
/// successor was created before the range starts are skipped, as are files created well after
/// it ends; the rest are scanned.
#[derive(Debug, Clone)]
pub struct FileQuery {
    dir: PathBuf,
}

impl FileQuery {
    /// A reader over `dir`.
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The `limit` oldest events within `range` that `keep` accepts, oldest first. Blocking.
    ///
    /// Events are stamped when their request arrived and written when it ends, so a file is not
    /// in time order: matches are kept in a bounded heap, and the scan stops at the first file
    /// created too long after the newest kept event to hold an older one.
    ///
    /// # Errors
    /// When the directory or a file cannot be read.
    pub fn scan(
        &self,
        range: &TimeRange,
        limit: usize,
        keep: impl Fn(&AuditEvent) -> bool,
    ) -> io::Result<Vec<AuditEvent>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let files = naming::list(&self.dir)?;
        let mut oldest = Oldest::new(limit);
        for (i, file) in files.iter().enumerate() {
            if files
                .get(i + 1)
                .is_some_and(|next| next.created_before() <= range.start)
            {
                continue;
            }
            if file.created > range.end + WRITE_DELAY_GRACE {
                break;
            }
            if oldest
                .newest_kept()
                .is_some_and(|newest| file.created > newest + WRITE_DELAY_GRACE)
            {
                break;
            }
            let bytes = match fs::read(&file.path) {
                Ok(bytes) => bytes,
                // Removed by retention since it was listed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for line in bytes.split(|b| *b == b'\n') {
                let Some(parsed) = record::parse(line) else {
                    continue;
                };
                if parsed.kind != "event" {
                    continue;
                }
                let Some(json) = record::event_json(parsed.fields) else {
                    continue;
                };
                let Ok(event) = serde_json::from_slice::<AuditEvent>(json) else {
                    continue;
                };
                if range.contains(&event.timestamp) && keep(&event) {
                    oldest.offer(event);
                }
            }
        }
        Ok(oldest.into_sorted())
    }

    async fn scan_blocking(
        &self,
        range: TimeRange,
        limit: usize,
        keep: impl Fn(&AuditEvent) -> bool + Send + 'static,
    ) -> Result<Vec<AuditEvent>, SinkError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.scan(&range, limit, keep))
            .await
            .map_err(|e| SinkError::with_source("audit query task failed", e))?
            .map_err(|e| SinkError::with_source("audit query failed", e))
    }
}

impl AuditQuery for FileQuery {
    fn events_by_actor<'a>(
        &'a self,
        actor: &'a str,
        range: TimeRange,
        limit: usize,
    ) -> QueryFuture<'a> {
        let actor = actor.to_owned();
        Box::pin(self.scan_blocking(range, limit, move |e| e.actor.matches(&actor)))
    }

    fn events_by_type<'a>(
        &'a self,
        event_type: &'a str,
        range: TimeRange,
        limit: usize,
    ) -> QueryFuture<'a> {
        let event_type = event_type.to_owned();
        Box::pin(self.scan_blocking(range, limit, move |e| e.event_type == event_type))
    }
}

/// The `limit` oldest events offered, in a max-heap so the newest kept one is dropped first.
struct Oldest {
    limit: usize,
    /// How many events were offered: ties in time keep the order they were read in.
    offered: u64,
    heap: BinaryHeap<ByTime>,
}

struct ByTime {
    timestamp: SystemTime,
    order: u64,
    event: AuditEvent,
}

impl Ord for ByTime {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.timestamp, self.order).cmp(&(other.timestamp, other.order))
    }
}

impl PartialOrd for ByTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ByTime {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ByTime {}

impl Oldest {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            offered: 0,
            heap: BinaryHeap::with_capacity(limit.min(1024) + 1),
        }
    }

    /// The time of the newest event kept, once `limit` are kept (before that any event is
    /// kept, however new).
    fn newest_kept(&self) -> Option<SystemTime> {
        if self.heap.len() < self.limit {
            return None;
        }
        self.heap.peek().map(|e| e.timestamp)
    }

    fn offer(&mut self, event: AuditEvent) {
        if self
            .newest_kept()
            .is_some_and(|newest| event.timestamp >= newest)
        {
            return;
        }
        self.heap.push(ByTime {
            timestamp: event.timestamp,
            order: self.offered,
            event,
        });
        self.offered += 1;
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }

    /// The events kept, oldest first.
    fn into_sorted(self) -> Vec<AuditEvent> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|e| e.event)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(resource: &str, secs: u64) -> AuditEvent {
        AuditEvent::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            "t",
            crate::event::Actor::user("u"),
            "a",
            resource,
            crate::event::Outcome::Success,
        )
    }

    fn resources(events: &[AuditEvent]) -> Vec<&str> {
        events.iter().map(|e| e.resource.as_str()).collect()
    }

    #[test]
    fn the_oldest_are_kept_whatever_the_order_read() {
        let mut oldest = Oldest::new(2);
        for (resource, secs) in [("c", 30), ("a", 10), ("d", 40), ("b", 20), ("b2", 20)] {
            oldest.offer(event(resource, secs));
        }
        assert_eq!(resources(&oldest.into_sorted()), ["a", "b"]);
        let mut all = Oldest::new(10);
        for (resource, secs) in [("c", 30), ("a", 10), ("b", 20)] {
            all.offer(event(resource, secs));
        }
        assert_eq!(resources(&all.into_sorted()), ["a", "b", "c"]);
    }
}
