//! The signed head: the newest position and hash of the log and the range of files kept, stored
//! beside the log in `head.json` and replaced atomically (write a temporary file, then rename).

use std::{fs, io, io::Write as _, path::Path};

use serde::{Deserialize, Serialize};

use crate::file::{SigningKey, naming::HEAD_FILE};

/// The head file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    pub(crate) version: u32,
    /// The oldest file kept (older ones were purged by retention).
    pub(crate) first_file: u64,
    /// The newest file.
    pub(crate) last_file: u64,
    /// The sequence number of the newest record.
    pub(crate) seq: u64,
    /// Its hash, hex.
    pub(crate) hash: String,
    /// When the head was written.
    pub(crate) updated: String,
    /// HMAC-SHA256 over the fields above, hex.
    pub(crate) sig: String,
}

impl Head {
    fn message(&self) -> Vec<u8> {
        format!(
            "streamgate-audit/head/v{}\n{}\n{}\n{}\n{}\n{}",
            self.version, self.first_file, self.last_file, self.seq, self.hash, self.updated
        )
        .into_bytes()
    }

    pub(crate) fn new(
        first_file: u64,
        last_file: u64,
        seq: u64,
        hash: String,
        updated: String,
        key: &SigningKey,
    ) -> Self {
        let mut head = Head {
            version: 1,
            first_file,
            last_file,
            seq,
            hash,
            updated,
            sig: String::new(),
        };
        head.sig = key.sign(&head.message());
        head
    }

    pub(crate) fn signature_ok(&self, key: &SigningKey) -> bool {
        key.verify(&self.message(), &self.sig)
    }

    /// Reads `dir/head.json`; `Ok(None)` when there is none.
    pub(crate) fn read(dir: &Path) -> io::Result<Option<Head>> {
        match fs::read(dir.join(HEAD_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces `dir/head.json` atomically.
    pub(crate) fn write(&self, dir: &Path, sync: bool) -> io::Result<()> {
        let tmp = dir.join(".head.json.tmp");
        let mut file = fs::File::create(&tmp)?;
        let mut bytes = serde_json::to_vec(self).map_err(io::Error::other)?;
        bytes.push(b'\n');
        file.write_all(&bytes)?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, dir.join(HEAD_FILE))
    }
}
