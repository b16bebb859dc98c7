//! Log file names: `audit-<index, 8 digits>-<creation time, YYYYMMDDTHHMMSSZ>.jsonl`. The index
//! increases by one per file, so a missing file shows as a gap.

use std::{
    io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use crate::clock::{format_rfc3339_millis, parse_rfc3339};

/// The head file's name inside the log directory.
pub(crate) const HEAD_FILE: &str = "head.json";

/// One log file of a directory.
#[derive(Debug, Clone)]
pub(crate) struct LogFile {
    pub(crate) index: u64,
    /// The creation time its name gives, to the second (rounded down).
    pub(crate) created: SystemTime,
    pub(crate) path: PathBuf,
}

impl LogFile {
    /// The latest instant the file may have been created: its name keeps whole seconds, so a
    /// file named `...T120000Z` was created before 12:00:01. Every record of the file before it
    /// was written (and stamped) before then.
    pub(crate) fn created_before(&self) -> SystemTime {
        self.created + Duration::from_secs(1)
    }
}

pub(crate) fn file_name(index: u64, created: SystemTime) -> String {
    let ts = format_rfc3339_millis(created);
    let compact: String = ts[..19]
        .iter()
        .filter(|b| b.is_ascii_digit() || **b == b'T')
        .map(|b| char::from(*b))
        .collect();
    format!("audit-{index:08}-{compact}Z.jsonl")
}

pub(crate) fn parse_name(name: &str) -> Option<(u64, SystemTime)> {
    let rest = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    let (index, stamp) = rest.split_once('-')?;
    if index.len() < 8 || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Checked byte by byte before slicing: a name with multi-byte characters in these
    // positions must not be cut inside a character.
    let b = stamp.as_bytes();
    let digits_ok = b
        .iter()
        .enumerate()
        .all(|(i, c)| matches!(i, 8 | 15) || c.is_ascii_digit());
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !digits_ok {
        return None;
    }
    let text = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &stamp[0..4],
        &stamp[4..6],
        &stamp[6..8],
        &stamp[9..11],
        &stamp[11..13],
        &stamp[13..15]
    );
    Some((index.parse().ok()?, parse_rfc3339(&text)?))
}

/// The log files of `dir`, by index.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<LogFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some((index, created)) = name.to_str().and_then(parse_name) {
            files.push(LogFile {
                index,
                created,
                path: entry.path(),
            });
        }
    }
    files.sort_by_key(|f| f.index);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn names_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_764_127_025);
        let name = file_name(12, t);
        assert_eq!(name, "audit-00000012-20251126T031705Z.jsonl");
        assert_eq!(parse_name(&name), Some((12, t)));
        assert_eq!(parse_name("head.json"), None);
    }

    #[test]
    fn names_with_other_characters_are_not_log_files() {
        // 'é' is two bytes: the stamp is 16 bytes long, but byte 6 starts a character.
        assert_eq!(
            parse_name("audit-00000001-202\u{e9}112T031705Z.jsonl"),
            None
        );
        assert_eq!(
            parse_name("audit-00000001-2025112\u{e9}T03170Z.jsonl"),
            None
        );
        assert_eq!(parse_name("audit-00000001-2025+126T031705Z.jsonl"), None);
    }
}
