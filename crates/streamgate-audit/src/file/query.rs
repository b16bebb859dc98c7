//! Queries over a log directory: a scan of the files that can hold the requested time range.

use std::{fs, io, path::PathBuf, time::Duration};

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

    /// Events within `range` that `keep` accepts, oldest first, at most `limit`. Blocking.
    ///
    /// # Errors
    /// When the directory or a file cannot be read.
    pub fn scan(
        &self,
        range: &TimeRange,
        limit: usize,
        keep: impl Fn(&AuditEvent) -> bool,
    ) -> io::Result<Vec<AuditEvent>> {
        let files = naming::list(&self.dir)?;
        let mut out = Vec::new();
        for (i, file) in files.iter().enumerate() {
            if out.len() >= limit {
                break;
            }
            if files
                .get(i + 1)
                .is_some_and(|next| next.created < range.start)
            {
                continue;
            }
            if file.created > range.end + WRITE_DELAY_GRACE {
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
                    out.push(event);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
        }
        out.sort_by_key(|e| e.timestamp);
        Ok(out)
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
