//! What the layers' stores share: the error of a store call and the future a store returns,
//! ready at once for an in-process store and boxed for a networked one.
//!
//! ```
//! use streamgate_core::store::{StoreError, StoreFuture};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // An in-process store answers at once: the layer takes the answer without polling or boxing.
//! let mut answer = StoreFuture::ready(Ok(7));
//! assert_eq!(answer.take_ready().unwrap().unwrap(), 7);
//!
//! // A networked store answers later.
//! let later: StoreFuture<u32> = StoreFuture::boxed(async { Err(StoreError::new("unreachable")) });
//! assert_eq!(later.await.unwrap_err().to_string(), "unreachable");
//! # }
//! ```

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

/// A store could not answer (a shared store unreachable, too slow, or holding what it cannot
/// read). The layer decides what the request gets, and counts it.
#[derive(Debug)]
pub struct StoreError {
    message: Box<str>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error with a message (never a key or a secret).
    #[must_use]
    pub fn new(message: impl Into<Box<str>>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by `source`.
    #[must_use]
    pub fn with_source(
        message: impl Into<Box<str>>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

/// The future a store returns: ready at once (in process, no allocation) or boxed (networked).
pub struct StoreFuture<T> {
    state: State<T>,
}

type Pending<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send>>;

enum State<T> {
    Ready(Option<Result<T, StoreError>>),
    Pending(Pending<T>),
}

impl<T> fmt::Debug for StoreFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Ready(_) => "ready",
            State::Pending(_) => "pending",
        };
        f.debug_struct("StoreFuture")
            .field("state", &state)
            .finish()
    }
}

impl<T> StoreFuture<T> {
    /// An answer known now.
    #[must_use]
    pub fn ready(result: Result<T, StoreError>) -> Self {
        Self {
            state: State::Ready(Some(result)),
        }
    }

    /// An answer that comes later.
    #[must_use]
    pub fn boxed(future: impl Future<Output = Result<T, StoreError>> + Send + 'static) -> Self {
        Self {
            state: State::Pending(Box::pin(future)),
        }
    }

    /// Takes the answer if it is known without waiting.
    pub fn take_ready(&mut self) -> Option<Result<T, StoreError>> {
        match &mut self.state {
            State::Ready(result) => result.take(),
            State::Pending(_) => None,
        }
    }
}

// The ready value is moved out, never pinned in place.
impl<T> Unpin for StoreFuture<T> {}

impl<T> Future for StoreFuture<T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().state {
            State::Ready(result) => {
                Poll::Ready(result.take().unwrap_or_else(|| {
                    Err(StoreError::new("store future polled after completion"))
                }))
            }
            State::Pending(future) => future.as_mut().poll(cx),
        }
    }
}
