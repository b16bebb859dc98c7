//! A deny-list of token ids (`jti`) and subjects, consulted on every request, cached tokens
//! included.
//!
//! ```
//! use streamgate_security::RevocationList;
//!
//! let revoked = RevocationList::new();
//! revoked.revoke_token_id("b4c1-77");
//! revoked.revoke_subject("user-13");
//! assert!(revoked.is_revoked(Some("b4c1-77"), "user-1"));
//! assert!(revoked.is_revoked(None, "user-13"));
//! assert!(!revoked.is_revoked(Some("other"), "user-1"));
//! ```

use std::{
    collections::HashSet,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

/// Revoked token ids and subjects. Cheap to clone; clones share the list, so the handle kept by an
/// admin endpoint revokes for the layer.
#[derive(Debug, Clone, Default)]
pub struct RevocationList {
    inner: Arc<Revoked>,
}

#[derive(Debug, Default)]
struct Revoked {
    any: AtomicBool,
    token_ids: RwLock<HashSet<String>>,
    subjects: RwLock<HashSet<String>>,
}

impl RevocationList {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses the token whose `jti` is `jti` from now on.
    pub fn revoke_token_id(&self, jti: impl Into<String>) {
        write(&self.inner.token_ids).insert(jti.into());
        self.inner.any.store(true, Ordering::Release);
    }

    /// Refuses every credential of `subject` from now on.
    pub fn revoke_subject(&self, subject: impl Into<String>) {
        write(&self.inner.subjects).insert(subject.into());
        self.inner.any.store(true, Ordering::Release);
    }

    /// Takes `subject` off the list.
    pub fn restore_subject(&self, subject: &str) {
        write(&self.inner.subjects).remove(subject);
    }

    /// Whether a credential with this `jti` and subject is revoked.
    #[must_use]
    pub fn is_revoked(&self, jti: Option<&str>, subject: &str) -> bool {
        if !self.inner.any.load(Ordering::Acquire) {
            return false;
        }
        if let Some(jti) = jti
            && read(&self.inner.token_ids).contains(jti)
        {
            return true;
        }
        read(&self.inner.subjects).contains(subject)
    }
}

fn read(lock: &RwLock<HashSet<String>>) -> std::sync::RwLockReadGuard<'_, HashSet<String>> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(lock: &RwLock<HashSet<String>>) -> std::sync::RwLockWriteGuard<'_, HashSet<String>> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
