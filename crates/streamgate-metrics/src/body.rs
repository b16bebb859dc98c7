//! The response body of [`Metrics`](crate::Metrics): ends the request's measurement when the
//! body is finished or dropped.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::service::RequestGuard;

pin_project! {
    /// A response body that records its request when it ends or is dropped.
    pub struct MetricsBody<B> {
        #[pin]
        inner: B,
        guard: Option<RequestGuard>,
    }
}

impl<B> MetricsBody<B> {
    pub(crate) fn new(inner: B, guard: Option<RequestGuard>) -> Self {
        Self { inner, guard }
    }
}

impl<B> std::fmt::Debug for MetricsBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsBody").finish_non_exhaustive()
    }
}

impl<B: Body> Body for MetricsBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(guard), Some(data)) = (this.guard.as_mut(), frame.data_ref()) {
                    guard.response_bytes += data.remaining() as u64;
                }
            }
            // The body is complete: the request ends now, not when the connection drops it.
            None => drop(this.guard.take()),
            Some(Err(_)) => {}
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
