//! The request body wrapper that keeps the first bytes of a body as they stream through.

use std::{
    pin::Pin,
    sync::{Mutex, PoisonError},
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// The first `limit` bytes seen of a body, and how many bytes passed in all.
#[derive(Debug)]
pub(crate) struct Capture {
    limit: usize,
    state: Mutex<(Vec<u8>, u64)>,
}

impl Capture {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            state: Mutex::new((Vec::new(), 0)),
        }
    }

    fn record(&self, data: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let room = self.limit.saturating_sub(state.0.len());
        if room > 0 {
            let take = room.min(data.len());
            state.0.extend_from_slice(&data[..take]);
        }
        state.1 += data.len() as u64;
    }

    /// The kept bytes and the total seen so far.
    pub(crate) fn take(&self) -> (Vec<u8>, u64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (std::mem::take(&mut state.0), state.1)
    }
}

pin_project! {
    /// A request body that copies its first bytes into a [`Capture`] and passes every frame on
    /// unchanged; nothing is buffered beyond the excerpt.
    pub(crate) struct ExcerptBody<B> {
        #[pin]
        inner: B,
        capture: std::sync::Arc<Capture>,
    }
}

impl<B> ExcerptBody<B> {
    pub(crate) fn new(inner: B, capture: std::sync::Arc<Capture>) -> Self {
        Self { inner, capture }
    }
}

impl<B: Body<Data = Bytes>> Body for ExcerptBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            this.capture.record(data);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
