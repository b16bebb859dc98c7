//! The file sink's writer side.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read as _, Seek as _, SeekFrom, Write as _},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::{
    clock::{AuditClock, format_rfc3339_millis, rfc3339_string, unix_day},
    event::AuditEvent,
    file::{
        SigningKey,
        head::Head,
        naming::{self, LogFile},
        query::FileQuery,
        record::{self, GENESIS},
        verify::{self, VerifyFailure},
    },
    sink::{AuditQuery, AuditSink, SinkError, SinkFuture},
};

/// The default size at which a file is rotated: 64 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// The default longest time between replacements of the signed head under continuous load.
pub const DEFAULT_HEAD_INTERVAL: Duration = Duration::from_millis(100);
/// The default retention: 30 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// Where and how the file sink writes. See the [module docs](crate::file).
#[derive(Debug, Clone)]
#[must_use]
pub struct FileSinkConfig {
    dir: PathBuf,
    key: SigningKey,
    max_file_bytes: u64,
    rotate_daily: bool,
    retention: Option<Duration>,
    checkpoint_every: u64,
    checkpoint_interval: Duration,
    clock: AuditClock,
    sync: bool,
    head_interval: Duration,
}

impl FileSinkConfig {
    /// Logs into directory `dir` (created if missing), signing with `key`.
    pub fn new(dir: impl Into<PathBuf>, key: SigningKey) -> Self {
        Self {
            dir: dir.into(),
            key,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            rotate_daily: true,
            retention: Some(DEFAULT_RETENTION),
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            clock: AuditClock::new(),
            sync: false,
            head_interval: DEFAULT_HEAD_INTERVAL,
        }
    }

    /// Rotates when a file reaches `bytes` (default 64 MiB).
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.max_file_bytes = bytes.max(1024);
        self
    }

    /// Whether a new file starts at each UTC midnight (default `true`).
    pub fn rotate_daily(mut self, on: bool) -> Self {
        self.rotate_daily = on;
        self
    }

    /// Removes files whose every record is older than `retention` (default 30 days); `None`
    /// keeps everything.
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        self.retention = retention;
        self
    }

    /// Writes a signed checkpoint after every `records` records (default 1000).
    pub fn checkpoint_every(mut self, records: u64) -> Self {
        self.checkpoint_every = records.max(1);
        self
    }

    /// Writes a signed checkpoint when this long has passed since the last one and records
    /// were written (default 60 s).
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval;
        self
    }

    /// The clock for file names, rotation, checkpoints and retention.
    pub fn clock(mut self, clock: AuditClock) -> Self {
        self.clock = clock;
        self
    }

    /// How often, at most, the signed head is replaced while the writer is kept busy (default
    /// 100 ms). It is replaced after a batch when this long has passed since it last was, and
    /// always when the writer has written everything queued, on a flush, a new file and close;
    /// zero replaces it after every batch. Replacing it costs far more than writing a small
    /// batch (a new file and a rename), so under load this keeps that cost off most batches;
    /// the price is that after a crash up to this long of records may follow the head, which
    /// `verify` reports as records after the head.
    pub fn head_interval(mut self, interval: Duration) -> Self {
        self.head_interval = interval;
        self
    }

    /// Whether every batch is synced to disk (`fsync`) before the head moves (default `false`:
    /// the operating system writes it back).
    pub fn sync(mut self, on: bool) -> Self {
        self.sync = on;
        self
    }
}

#[derive(Debug, Clone, Copy)]
struct Chain {
    /// The sequence number of the next record.
    next_seq: u64,
    /// The hash of the last record.
    hash: [u8; 32],
    since_checkpoint: u64,
    last_checkpoint: SystemTime,
}

#[derive(Debug, Clone)]
struct FileMeta {
    index: u64,
    day: u64,
    path: PathBuf,
    /// Bytes on disk.
    len: u64,
}

#[derive(Debug, Clone)]
struct Snapshot {
    meta: FileMeta,
    chain: Chain,
}

/// The hash-chained JSON-lines sink. See the [module docs](crate::file).
///
/// It writes with blocking file I/O from the logger's background task: one `write` per batch
/// into the page cache (plus an `fsync` when [`sync`](FileSinkConfig::sync) is on) and the head
/// file's replacement, so the runtime thread is held for the length of those calls only.
#[derive(Debug)]
pub struct FileSink {
    config: FileSinkConfig,
    file: File,
    meta: FileMeta,
    chain: Chain,
    committed: Snapshot,
    first_file: u64,
    needs_rollback: bool,
    /// The last hash an event record ended with, and its hex (the next record's `prev`).
    last_hex: ([u8; 32], [u8; 64]),
    /// Records were committed after the head was last replaced.
    head_stale: bool,
    /// When the head was last replaced.
    head_written: SystemTime,
    buf: Vec<u8>,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).open(path)
}

impl FileSink {
    /// Opens (or creates) the log in the configured directory. An existing log is continued in
    /// a new file anchored to its last complete record.
    ///
    /// Before continuing a log, it is checked against its signed head, without reading the
    /// whole log: the head's signature, every file from the head's first file to its last, and
    /// the chain from the head's file to the end, which must pass the head's record unchanged.
    /// Records that follow the head (a crash before the head caught up) are accepted; a record
    /// cut off at the end of the last file (a crash in the middle of a write) is removed. Either
    /// repair is noted in the new file's start record (`"recovered"`) and logged.
    ///
    /// # Errors
    /// When the directory or its files cannot be read or written, and (with
    /// [`io::ErrorKind::InvalidData`]) when the existing log fails that check: log files
    /// without a head, a head that is not signed by the key, a missing file, a log that ends
    /// before the head's record or a record that does not match. Continuing would sign a new
    /// head over the damage, so the sink refuses: run `streamgate-audit verify <dir>` and move
    /// the damaged files aside.
    pub fn open(config: FileSinkConfig) -> io::Result<Self> {
        fs::create_dir_all(&config.dir)?;
        let mut files = naming::list(&config.dir)?;
        // A crash while a file was being started leaves it empty or holding part of its first
        // record; a crash in the middle of a write leaves part of a record at its end.
        let mut discard = Vec::new();
        let mut last_len = 0;
        while let Some(last) = files.last() {
            let (len, complete) = complete_len(&last.path)?;
            if complete > 0 {
                last_len = complete;
                break;
            }
            discard.push((last.index, last.path.clone(), len));
            files.pop();
        }
        let last = files.last().map(|f| (f.index, f.path.clone()));
        let resume = verify::resume(&config.dir, &config.key, files, to_usize(last_len)?)
            .map_err(|failure| refuse(&config.dir, &failure))?;
        let mut torn: Vec<(u64, u64)> = Vec::new();
        for (index, path, len) in discard {
            fs::remove_file(&path)?;
            if len > 0 {
                torn.push((index, len));
            }
        }
        if let Some((index, path)) = &last {
            let len = fs::metadata(path)?.len();
            if len > last_len {
                OpenOptions::new()
                    .write(true)
                    .open(path)?
                    .set_len(last_len)?;
                torn.push((*index, len - last_len));
            }
        }
        let now = config.clock.now();
        let (first_file, index, next_seq, hash, unsigned) = match (resume, &last) {
            (Some(r), Some((last_index, _))) => {
                (r.first_file, last_index + 1, r.next_seq, r.hash, r.unsigned)
            }
            _ => (1, 1, 0, GENESIS, 0),
        };
        let recovered = recovery_note(unsigned, &torn);
        if !recovered.is_empty() {
            tracing::warn!(
                dir = %config.dir.display(),
                unsigned_records = unsigned,
                cut_off_bytes = torn.iter().map(|(_, bytes)| bytes).sum::<u64>(),
                "audit log reopened after a crash: records after the signed head are signed now, a cut-off record was removed; noted in the new file's start record"
            );
        }
        let chain = Chain {
            next_seq,
            hash,
            since_checkpoint: 0,
            last_checkpoint: now,
        };
        let (file, meta) = create_file(&config.dir, index, now)?;
        let mut sink = Self {
            committed: Snapshot {
                meta: meta.clone(),
                chain,
            },
            config,
            file,
            meta,
            chain,
            first_file,
            needs_rollback: false,
            last_hex: ([0; 32], record::hex64(&[0; 32])),
            head_stale: false,
            head_written: now,
            buf: Vec::with_capacity(1 << 20),
        };
        let ts = format_rfc3339_millis(now);
        sink.chain.hash = record::file_start(
            &mut sink.buf,
            sink.chain.next_seq,
            &hash,
            index,
            &ts,
            &recovered,
        );
        sink.chain.next_seq += 1;
        sink.commit(now)?;
        Ok(sink)
    }

    /// A reader over this sink's directory.
    #[must_use]
    pub fn reader(&self) -> FileQuery {
        FileQuery::new(self.config.dir.clone())
    }

    fn append_event(&mut self, event: &AuditEvent) {
        if self.last_hex.0 != self.chain.hash {
            self.last_hex = (self.chain.hash, record::hex64(&self.chain.hash));
        }
        let start = record::begin_hex(
            &mut self.buf,
            self.chain.next_seq,
            &self.last_hex.1,
            "event",
        );
        self.buf.extend_from_slice(b",\"event\":");
        crate::event_json::write_event(&mut self.buf, event);
        let (hash, hex) = record::finish_hex(&mut self.buf, start);
        self.chain.hash = hash;
        self.last_hex = (hash, hex);
        self.chain.next_seq += 1;
        self.chain.since_checkpoint += 1;
    }

    fn append_checkpoint(&mut self, now: SystemTime) {
        let ts = format_rfc3339_millis(now);
        self.chain.hash = record::checkpoint(
            &mut self.buf,
            self.chain.next_seq,
            &self.chain.hash,
            &ts,
            &self.config.key,
        );
        self.chain.next_seq += 1;
        self.chain.since_checkpoint = 0;
        self.chain.last_checkpoint = now;
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf)?;
            self.meta.len += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Ends the current file with a checkpoint and starts the next one.
    fn rotate(&mut self, now: SystemTime) -> io::Result<()> {
        self.append_checkpoint(now);
        self.flush_buf()?;
        if self.config.sync {
            self.file.sync_data()?;
        }
        let (file, meta) = create_file(&self.config.dir, self.meta.index + 1, now)?;
        self.file = file;
        self.meta = meta;
        let ts = format_rfc3339_millis(now);
        self.chain.hash = record::file_start(
            &mut self.buf,
            self.chain.next_seq,
            &self.chain.hash,
            self.meta.index,
            &ts,
            b"",
        );
        self.chain.next_seq += 1;
        Ok(())
    }

    /// Writes what is buffered and moves the signed head to it.
    fn commit(&mut self, now: SystemTime) -> io::Result<()> {
        self.commit_records(now, true)
    }

    /// Writes what is buffered; moves the signed head to it when `head` is set or the head is
    /// due (see [`FileSinkConfig::head_interval`]).
    fn commit_records(&mut self, now: SystemTime, head: bool) -> io::Result<()> {
        self.flush_buf()?;
        if self.config.sync {
            self.file.sync_data()?;
        }
        let due = now
            .duration_since(self.head_written)
            .map_or(true, |since| since >= self.config.head_interval);
        if head || due {
            self.write_head(now)?;
        } else {
            self.head_stale = true;
        }
        self.committed = Snapshot {
            meta: self.meta.clone(),
            chain: self.chain,
        };
        Ok(())
    }

    /// Replaces the signed head with the current position.
    fn write_head(&mut self, now: SystemTime) -> io::Result<()> {
        let head = Head::new(
            self.first_file,
            self.meta.index,
            self.chain.next_seq - 1,
            record::hex32(&self.chain.hash),
            rfc3339_string(now),
            &self.config.key,
        );
        head.write(&self.config.dir, self.config.sync)?;
        self.head_stale = false;
        self.head_written = now;
        Ok(())
    }

    /// Moves a head left behind by [`commit_records`](Self::commit_records) to the last record.
    fn catch_up_head(&mut self) -> io::Result<()> {
        if self.needs_rollback {
            self.rollback()?;
        }
        if self.head_stale {
            self.write_head(self.config.clock.now())?;
        }
        Ok(())
    }

    /// Undoes everything after the last commit, so a retried batch is written exactly once.
    fn rollback(&mut self) -> io::Result<()> {
        self.needs_rollback = true;
        self.buf.clear();
        if self.meta.index != self.committed.meta.index {
            for index in self.committed.meta.index + 1..=self.meta.index {
                if let Some(file) = naming::list(&self.config.dir)?
                    .into_iter()
                    .find(|f| f.index == index)
                {
                    fs::remove_file(file.path)?;
                }
            }
            self.file = open_append(&self.committed.meta.path)?;
        }
        self.file.set_len(self.committed.meta.len)?;
        self.meta = self.committed.meta.clone();
        self.chain = self.committed.chain;
        self.needs_rollback = false;
        Ok(())
    }

    fn write_batch(&mut self, events: &[AuditEvent]) -> io::Result<()> {
        if self.needs_rollback {
            self.rollback()?;
        }
        let now = self.config.clock.now();
        let first_index = self.meta.index;
        if self.config.rotate_daily && unix_day(now) != self.meta.day {
            self.rotate(now)?;
        }
        let max = self.config.max_file_bytes;
        let every = self.config.checkpoint_every;
        for event in events {
            if self.meta.len + self.buf.len() as u64 >= max {
                self.rotate(now)?;
            }
            self.append_event(event);
            if self.chain.since_checkpoint >= every {
                self.append_checkpoint(now);
            }
            if self.buf.len() >= 1 << 20 {
                self.flush_buf()?;
            }
        }
        if self.chain.since_checkpoint > 0 && self.checkpoint_due(now) {
            self.append_checkpoint(now);
        }
        self.commit_records(now, self.meta.index != first_index)?;
        if self.meta.index != first_index {
            // A new file started: older ones may have aged out.
            if let Err(error) = self.purge(now) {
                tracing::warn!(%error, "audit retention purge failed; it is retried on the next housekeeping");
            }
        }
        Ok(())
    }

    fn checkpoint_due(&self, now: SystemTime) -> bool {
        now.duration_since(self.chain.last_checkpoint)
            .is_ok_and(|d| d >= self.config.checkpoint_interval)
    }

    /// Checkpoints when due and applies retention.
    fn housekeeping(&mut self) -> io::Result<()> {
        if self.needs_rollback {
            self.rollback()?;
        }
        let now = self.config.clock.now();
        if self.chain.since_checkpoint > 0 && self.checkpoint_due(now) {
            self.append_checkpoint(now);
            self.commit(now)?;
        } else if self.head_stale {
            self.write_head(now)?;
        }
        self.purge(now)
    }

    /// Removes the files whose newest record is older than the retention; the head moves its
    /// first file forward before any file is removed.
    fn purge(&mut self, now: SystemTime) -> io::Result<()> {
        let Some(retention) = self.config.retention else {
            return Ok(());
        };
        let Some(cutoff) = now.checked_sub(retention) else {
            return Ok(());
        };
        let files = naming::list(&self.config.dir)?;
        let mut doomed: Vec<LogFile> = Vec::new();
        for pair in files.windows(2) {
            // Every record of a file was written before the next file was created.
            if pair[0].index < self.meta.index && pair[1].created_before() <= cutoff {
                doomed.push(pair[0].clone());
            } else {
                break;
            }
        }
        let Some(last_doomed) = doomed.last() else {
            return Ok(());
        };
        let new_first = last_doomed.index + 1;
        if new_first > self.first_file {
            self.first_file = new_first;
            self.commit(now)?;
        }
        for file in doomed {
            fs::remove_file(&file.path)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.needs_rollback {
            self.rollback()?;
        }
        let now = self.config.clock.now();
        if self.chain.since_checkpoint > 0 {
            self.append_checkpoint(now);
        }
        self.commit(now)?;
        self.file.sync_all()
    }

    fn fail(&mut self, error: io::Error, what: &str) -> SinkError {
        if let Err(rollback) = self.rollback() {
            tracing::warn!(%rollback, "audit file sink could not undo a failed write yet");
        }
        SinkError::with_source(
            format!("audit file sink ({}): {what}", self.config.dir.display()),
            error,
        )
    }
}

impl AuditSink for FileSink {
    fn name(&self) -> &'static str {
        "file"
    }

    fn write<'a>(&'a mut self, events: &'a [AuditEvent]) -> SinkFuture<'a> {
        let result = self
            .write_batch(events)
            .map_err(|e| self.fail(e, "write failed"));
        Box::pin(async move { result })
    }

    fn flush(&mut self) -> SinkFuture<'_> {
        let result = self
            .catch_up_head()
            .map_err(|e| self.fail(e, "head update failed"));
        Box::pin(async move { result })
    }

    fn maintain(&mut self) -> SinkFuture<'_> {
        let result = self
            .housekeeping()
            .map_err(|e| self.fail(e, "housekeeping failed"));
        Box::pin(async move { result })
    }

    fn close(&mut self) -> SinkFuture<'_> {
        let result = self.finish().map_err(|e| self.fail(e, "close failed"));
        Box::pin(async move { result })
    }

    fn query(&self) -> Option<Arc<dyn AuditQuery>> {
        Some(Arc::new(self.reader()))
    }
}

fn create_file(dir: &Path, index: u64, now: SystemTime) -> io::Result<(File, FileMeta)> {
    let path = dir.join(naming::file_name(index, now));
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)?;
    Ok((
        file,
        FileMeta {
            index,
            day: unix_day(now),
            path,
            len: 0,
        },
    ))
}

/// The length of the file at `path`, and the length of its complete lines (up to and with its
/// last newline). Reads backwards from the end until it finds a newline.
fn complete_len(path: &Path) -> io::Result<(u64, u64)> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0; 8192];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..to_usize(end - start)?];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(part)?;
        if let Some(at) = part.iter().rposition(|b| *b == b'\n') {
            return Ok((len, start + at as u64 + 1));
        }
        end = start;
    }
    Ok((len, 0))
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large"))
}

/// The members the first file start after a reopen carries when the log needed repair:
/// `"recovered":{"unsigned_records":N,"cut_off":[{"file":I,"bytes":B}]}`, each part only when
/// there is something to say. Empty when nothing was repaired.
fn recovery_note(unsigned: u64, torn: &[(u64, u64)]) -> Vec<u8> {
    let mut members = Vec::new();
    if unsigned > 0 {
        members.push(format!("\"unsigned_records\":{unsigned}"));
    }
    if !torn.is_empty() {
        let cuts: Vec<String> = torn
            .iter()
            .map(|(file, bytes)| format!("{{\"file\":{file},\"bytes\":{bytes}}}"))
            .collect();
        members.push(format!("\"cut_off\":[{}]", cuts.join(",")));
    }
    if members.is_empty() {
        return Vec::new();
    }
    format!(",\"recovered\":{{{}}}", members.join(",")).into_bytes()
}

/// The error `open` returns for a log that fails its check.
fn refuse(dir: &Path, failure: &VerifyFailure) -> io::Error {
    let dir = dir.display();
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the audit log in {dir} was not continued: it failed its check against the signed head ({failure}). \
             Run `streamgate-audit verify {dir}` to see what is wrong, and move the damaged files \
             (and head.json) out of the directory before starting again"
        ),
    )
}
