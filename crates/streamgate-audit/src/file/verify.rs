//! Verification of a log file or directory: the hash chain, the checkpoint signatures, the file
//! sequence and the signed head.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::file::{
    SigningKey,
    head::Head,
    naming::{self, HEAD_FILE, LogFile},
    record::{self, Line, checkpoint_message},
};

/// What is wrong with a log.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TamperKind {
    /// A record's content does not match its hash, is not a well-formed record, or does not
    /// chain to the record before it.
    Modified,
    /// Records are missing: the sequence jumps forward.
    Deleted,
    /// Records are out of order.
    Reordered,
    /// A log file between the first kept file and the newest is missing.
    MissingFile,
    /// The log ends before the position the signed head names, or a record is cut off.
    Truncated,
    /// A checkpoint or the head is not signed by the key.
    BadSignature,
    /// There is no head file next to the log.
    MissingHead,
    /// Records follow the position the signed head names (a crash between a write and the head
    /// update, or appended records).
    Unsigned,
    /// The log could not be read.
    Unreadable,
}

impl TamperKind {
    /// A short name: `modified`, `deleted`, `reordered`, `missing file`, `truncated`,
    /// `bad signature`, `missing head`, `unsigned`, `unreadable`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TamperKind::Modified => "modified",
            TamperKind::Deleted => "deleted",
            TamperKind::Reordered => "reordered",
            TamperKind::MissingFile => "missing file",
            TamperKind::Truncated => "truncated",
            TamperKind::BadSignature => "bad signature",
            TamperKind::MissingHead => "missing head",
            TamperKind::Unsigned => "unsigned",
            TamperKind::Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for TamperKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyFailure {
    /// What kind of problem.
    pub kind: TamperKind,
    /// The file it was found in.
    pub file: PathBuf,
    /// The 1-based line, when it is about one record.
    pub line: Option<usize>,
    /// The record's sequence number, when known.
    pub seq: Option<u64>,
    /// A sentence saying what was found.
    pub detail: String,
}

impl fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.kind)?;
        if let Some(seq) = self.seq {
            write!(f, " (record {seq})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

impl std::error::Error for VerifyFailure {}

/// What a successful verification covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Files checked.
    pub files: usize,
    /// Records checked (events, checkpoints and file starts).
    pub records: u64,
    /// Event records.
    pub events: u64,
    /// Signed checkpoints checked.
    pub checkpoints: u64,
    /// Whether the signed head was checked (a directory) or not (a single file).
    pub head_checked: bool,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// `n` and the noun, singular for one.
        fn counted<N: fmt::Display + PartialEq + From<u8>>(n: N, noun: &str) -> String {
            let plural = if n == N::from(1) { "" } else { "s" };
            format!("{n} {noun}{plural}")
        }
        write!(
            f,
            "OK: {}, {} ({}, {})",
            counted(self.files, "file"),
            counted(self.records, "record"),
            counted(self.events, "event"),
            counted(self.checkpoints, "signed checkpoint"),
        )?;
        if !self.head_checked {
            f.write_str("; single file: the signed head was not checked")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct StartFields {
    file: u64,
}

#[derive(Deserialize)]
struct CheckpointFields {
    sig: String,
}

fn fail(
    kind: TamperKind,
    file: &Path,
    line: Option<usize>,
    seq: Option<u64>,
    detail: impl Into<String>,
) -> VerifyFailure {
    VerifyFailure {
        kind,
        file: file.to_owned(),
        line,
        seq,
        detail: detail.into(),
    }
}

/// Where the chain stands between records.
struct Position {
    next_seq: u64,
    hash: [u8; 32],
}

struct Walk<'k> {
    key: &'k SigningKey,
    position: Option<Position>,
    report: VerifyReport,
    /// The hash of the record at the head's position, once passed.
    head_seq: Option<u64>,
    hash_at_head: Option<[u8; 32]>,
}

/// Verifies a log directory (chain, signatures, files, head) or a single log file (chain and
/// signatures) with `key`.
///
/// # Errors
/// The first problem found, with its file, line, record and kind.
pub fn verify_path(path: &Path, key: &SigningKey) -> Result<VerifyReport, VerifyFailure> {
    let meta = fs::metadata(path).map_err(|e| unreadable(path, &e))?;
    let mut walk = Walk::new(key);
    if meta.is_file() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let index = naming::parse_name(name).map(|(index, _)| index);
        walk.file(path, index, None)?;
        return Ok(walk.report);
    }
    let head = read_head(path, key)?;
    let files = head_files(
        path,
        &head,
        naming::list(path).map_err(|e| unreadable(path, &e))?,
    )?;
    walk.head_seq = Some(head.seq);
    for file in &files {
        walk.file(&file.path, Some(file.index), None)?;
    }
    walk.report.head_checked = true;
    match walk.against_head(path, &files, &head)? {
        0 => Ok(walk.report),
        after => Err(fail(
            TamperKind::Unsigned,
            &last_path(path, &files),
            None,
            Some(head.seq + 1),
            format!("{after} records follow the position the signed head names"),
        )),
    }
}

/// Where the file sink continues a log it reopens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resume {
    /// The oldest file kept.
    pub(crate) first_file: u64,
    /// The sequence number of the next record.
    pub(crate) next_seq: u64,
    /// The hash of the last record.
    pub(crate) hash: [u8; 32],
    /// Records the signed head did not cover: written before a crash, before the head caught up.
    pub(crate) unsigned: u64,
}

/// Checks a log directory the file sink is about to continue, cheaply: the head's signature,
/// that every file from the head's first file on is present, and the chain from the head's
/// file to the end of the log, which must pass the head's record with the hash it names.
/// `files` are the directory's log files, the last one read up to `last_len` bytes (what
/// follows is a cut-off record the caller removes). `None` when there is no log yet.
///
/// Records after the head's position are accepted (a crash between writing them and moving
/// the head leaves them) and counted in [`Resume::unsigned`].
pub(crate) fn resume(
    dir: &Path,
    key: &SigningKey,
    files: Vec<LogFile>,
    last_len: usize,
) -> Result<Option<Resume>, VerifyFailure> {
    let head = match Head::read(dir) {
        Ok(None) if files.is_empty() => return Ok(None),
        Ok(None) => return resume_without_head(dir, key, &files, last_len),
        _ => read_head(dir, key)?,
    };
    let files = head_files(dir, &head, files)?;
    let mut walk = Walk::new(key);
    walk.head_seq = Some(head.seq);
    let count = files.len();
    for (i, file) in files.iter().enumerate() {
        if file.index >= head.last_file {
            let limit = (i + 1 == count).then_some(last_len);
            walk.file(&file.path, Some(file.index), limit)?;
        }
    }
    let unsigned = walk.against_head(dir, &files, &head)?;
    Ok(walk.position.map(|position| Resume {
        first_file: head.first_file,
        next_seq: position.next_seq,
        hash: position.hash,
        unsigned,
    }))
}

/// A log without a head is continued only in the state a crash during the very first open
/// leaves: file 1 holding nothing but its file start record.
fn resume_without_head(
    dir: &Path,
    key: &SigningKey,
    files: &[LogFile],
    last_len: usize,
) -> Result<Option<Resume>, VerifyFailure> {
    let missing = || {
        fail(
            TamperKind::MissingHead,
            &dir.join(HEAD_FILE),
            None,
            None,
            "there is no signed head next to the log files",
        )
    };
    let [only] = files else {
        return Err(missing());
    };
    if only.index != 1 {
        return Err(missing());
    }
    let mut walk = Walk::new(key);
    walk.file(&only.path, Some(1), Some(last_len))?;
    match walk.position {
        Some(position) if walk.report.records == 1 && position.next_seq == 1 => Ok(Some(Resume {
            first_file: 1,
            next_seq: 1,
            hash: position.hash,
            unsigned: 1,
        })),
        _ => Err(missing()),
    }
}

fn unreadable(path: &Path, error: &std::io::Error) -> VerifyFailure {
    fail(TamperKind::Unreadable, path, None, None, error.to_string())
}

/// Reads the head of the log directory `dir` and checks its signature.
fn read_head(dir: &Path, key: &SigningKey) -> Result<Head, VerifyFailure> {
    let head_path = dir.join(HEAD_FILE);
    let head = match Head::read(dir) {
        Ok(Some(head)) => head,
        Ok(None) => {
            return Err(fail(
                TamperKind::MissingHead,
                &head_path,
                None,
                None,
                "there is no signed head next to the log",
            ));
        }
        Err(e) => {
            return Err(fail(
                TamperKind::Modified,
                &head_path,
                None,
                None,
                format!("the head is not readable: {e}"),
            ));
        }
    };
    if !head.signature_ok(key) {
        return Err(fail(
            TamperKind::BadSignature,
            &head_path,
            None,
            None,
            "the head's signature does not match its content (or the key is wrong)",
        ));
    }
    Ok(head)
}

/// The files of `files` the head keeps (older ones are left by an interrupted retention purge),
/// checked to run without a gap from the head's first file to at least its last.
fn head_files(dir: &Path, head: &Head, files: Vec<LogFile>) -> Result<Vec<LogFile>, VerifyFailure> {
    let files: Vec<LogFile> = files
        .into_iter()
        .filter(|f| f.index >= head.first_file)
        .collect();
    let mut expected = head.first_file;
    for file in &files {
        if file.index != expected {
            return Err(fail(
                TamperKind::MissingFile,
                &file.path,
                None,
                None,
                format!(
                    "log file {expected} is missing (the next file present is {})",
                    file.index
                ),
            ));
        }
        expected += 1;
    }
    if expected <= head.last_file {
        return Err(fail(
            TamperKind::MissingFile,
            dir,
            None,
            None,
            format!(
                "log file {expected} is missing; the signed head names file {} as the newest",
                head.last_file
            ),
        ));
    }
    Ok(files)
}

fn last_path(dir: &Path, files: &[LogFile]) -> PathBuf {
    files
        .last()
        .map_or_else(|| dir.to_owned(), |f| f.path.clone())
}

impl<'k> Walk<'k> {
    fn new(key: &'k SigningKey) -> Self {
        Walk {
            key,
            position: None,
            report: VerifyReport::default(),
            head_seq: None,
            hash_at_head: None,
        }
    }

    /// Checks where the walk ended against the signed head: the log must reach the head's
    /// record and that record must be the one signed. Returns how many records follow it.
    fn against_head(
        &self,
        dir: &Path,
        files: &[LogFile],
        head: &Head,
    ) -> Result<u64, VerifyFailure> {
        let last_file = last_path(dir, files);
        let last_seq = self.position.as_ref().map(|p| p.next_seq.saturating_sub(1));
        match last_seq {
            Some(last) if last < head.seq => Err(fail(
                TamperKind::Truncated,
                &last_file,
                None,
                Some(last),
                format!(
                    "the log ends at record {last} but the signed head names record {}",
                    head.seq
                ),
            )),
            None => Err(fail(
                TamperKind::Truncated,
                dir,
                None,
                None,
                "the log has no records but has a signed head",
            )),
            _ if self.hash_at_head != record::parse_hex32(head.hash.as_bytes()) => Err(fail(
                TamperKind::Modified,
                &last_file,
                None,
                Some(head.seq),
                "the record at the signed head's position is not the one that was signed",
            )),
            Some(last) => Ok(last - head.seq),
        }
    }

    /// Walks the records of one file; with `limit`, only its first `limit` bytes.
    fn file(
        &mut self,
        path: &Path,
        index: Option<u64>,
        limit: Option<usize>,
    ) -> Result<(), VerifyFailure> {
        let mut bytes = fs::read(path).map_err(|e| unreadable(path, &e))?;
        if let Some(limit) = limit {
            bytes.truncate(limit);
        }
        self.report.files += 1;
        if bytes.is_empty() {
            return Err(fail(
                TamperKind::Truncated,
                path,
                None,
                None,
                "the file is empty",
            ));
        }
        let cut_off = bytes.last() != Some(&b'\n');
        let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
        for (i, raw) in lines.iter().enumerate() {
            let lineno = i + 1;
            if cut_off && i + 1 == lines.len() {
                return Err(fail(
                    TamperKind::Truncated,
                    path,
                    Some(lineno),
                    None,
                    "the last record of the file is cut off",
                ));
            }
            let Some(line) = record::parse(raw) else {
                return Err(fail(
                    TamperKind::Modified,
                    path,
                    Some(lineno),
                    None,
                    "not a well-formed record",
                ));
            };
            let seq = Some(line.seq);
            if !line.hash_ok {
                return Err(fail(
                    TamperKind::Modified,
                    path,
                    Some(lineno),
                    seq,
                    "the record's content does not match its hash",
                ));
            }
            if i == 0 {
                self.file_start(path, index, &line)?;
            } else if line.kind == "file_start" {
                return Err(fail(
                    TamperKind::Modified,
                    path,
                    Some(lineno),
                    seq,
                    "a file start record in the middle of a file",
                ));
            }
            if let Some(position) = &self.position {
                if line.seq != position.next_seq {
                    let expected = position.next_seq;
                    let later = lines[i + 1..]
                        .iter()
                        .filter_map(|l| record::parse(l))
                        .any(|l| l.seq == expected);
                    return Err(if line.seq < expected || later {
                        fail(
                            TamperKind::Reordered,
                            path,
                            Some(lineno),
                            seq,
                            format!("record {} comes where record {expected} should", line.seq),
                        )
                    } else {
                        fail(
                            TamperKind::Deleted,
                            path,
                            Some(lineno),
                            seq,
                            if line.seq - 1 == expected {
                                format!("record {expected} is missing")
                            } else {
                                format!("records {expected} to {} are missing", line.seq - 1)
                            },
                        )
                    });
                }
                if line.prev != position.hash {
                    return Err(fail(
                        TamperKind::Modified,
                        path,
                        Some(lineno),
                        seq,
                        "the record does not chain to the one before it (that record was changed or replaced)",
                    ));
                }
            }
            if line.kind == "checkpoint" {
                let fields: Option<CheckpointFields> = serde_json::from_slice(raw).ok();
                let signed = fields.is_some_and(|f| {
                    self.key
                        .verify(&checkpoint_message(line.seq, &line.prev), &f.sig)
                });
                if !signed {
                    return Err(fail(
                        TamperKind::BadSignature,
                        path,
                        Some(lineno),
                        seq,
                        "the checkpoint's signature does not match the chain before it: records before it were changed and rehashed (or the key is wrong)",
                    ));
                }
                self.report.checkpoints += 1;
            } else if line.kind == "event" {
                self.report.events += 1;
            }
            if self.head_seq == Some(line.seq) {
                self.hash_at_head = Some(line.hash);
            }
            let Some(next_seq) = line.seq.checked_add(1) else {
                return Err(fail(
                    TamperKind::Modified,
                    path,
                    Some(lineno),
                    seq,
                    "the record's sequence number is the largest possible, which no log reaches",
                ));
            };
            self.report.records += 1;
            self.position = Some(Position {
                next_seq,
                hash: line.hash,
            });
        }
        Ok(())
    }

    fn file_start(
        &mut self,
        path: &Path,
        index: Option<u64>,
        line: &Line<'_>,
    ) -> Result<(), VerifyFailure> {
        if line.kind != "file_start" {
            return Err(fail(
                TamperKind::Modified,
                path,
                Some(1),
                Some(line.seq),
                "the file does not begin with its file start record (records were removed from its beginning)",
            ));
        }
        let body = [&b"{\"x\":0"[..], line.fields, b"}"].concat();
        let fields: Option<StartFields> = serde_json::from_slice(&body).ok();
        if let (Some(expected), Some(fields)) = (index, &fields)
            && fields.file != expected
        {
            return Err(fail(
                TamperKind::Modified,
                path,
                Some(1),
                Some(line.seq),
                format!(
                    "the file start names file {} but the file is number {expected}",
                    fields.file
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::VerifyReport;

    #[test]
    fn the_report_counts_in_words() {
        let mut report = VerifyReport {
            files: 1,
            records: 4,
            events: 2,
            checkpoints: 1,
            head_checked: true,
        };
        assert_eq!(
            report.to_string(),
            "OK: 1 file, 4 records (2 events, 1 signed checkpoint)"
        );
        report.files = 3;
        report.checkpoints = 0;
        report.head_checked = false;
        assert_eq!(
            report.to_string(),
            "OK: 3 files, 4 records (2 events, 0 signed checkpoints); single file: the signed head was not checked"
        );
    }
}
