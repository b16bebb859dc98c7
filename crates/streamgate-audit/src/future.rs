//! The audit layer's response future.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::Response;
use pin_project_lite::pin_project;
use tokio::sync::futures::OwnedNotified;

use crate::{
    layer::Pending,
    queue::{Entry, Push, Queue},
};

pin_project! {
    /// The response future of [`Audit`](crate::Audit): the inner future, then (when the policy
    /// records the request) the enqueuing of its event, which waits for room only in `Block` mode.
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
        waiting: Option<Box<Waiting<B>>>,
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("audited", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

struct Waiting<B> {
    queue: Arc<Queue>,
    response: Option<Response<B>>,
    event: Option<Entry>,
    notified: Option<Pin<Box<OwnedNotified>>>,
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn passthrough(inner: F) -> Self {
        Self {
            inner,
            pending: None,
            waiting: None,
        }
    }

    pub(crate) fn audited(inner: F, pending: Pending) -> Self {
        Self {
            inner,
            pending: Some(pending),
            waiting: None,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(waiting) = this.waiting.as_mut() {
            return waiting.poll(cx).map(Ok);
        }
        let response = ready!(this.inner.poll(cx))?;
        // Finished in place: moving the pending request out would copy it.
        let Some(pending) = this.pending.as_mut() else {
            return Poll::Ready(Ok(response));
        };
        if pending.skips(response.status().as_u16()) {
            *this.pending = None;
            return Poll::Ready(Ok(response));
        }
        let Some(record) = pending.finish(&response) else {
            *this.pending = None;
            return Poll::Ready(Ok(response));
        };
        let queue = pending.logger().queue();
        match queue.try_push(Entry::Http(record)) {
            Push::Done | Push::Closed => {
                *this.pending = None;
                Poll::Ready(Ok(response))
            }
            Push::Full(event) => {
                let queue = queue.clone();
                *this.pending = None;
                // The rare path (a full queue in block mode) is boxed to keep the future small.
                let waiting = this.waiting.insert(Box::new(Waiting {
                    queue,
                    response: Some(response),
                    event: Some(event),
                    notified: None,
                }));
                waiting.poll(cx).map(Ok)
            }
        }
    }
}

impl<B> Waiting<B> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Response<B>> {
        loop {
            match &mut self.notified {
                Some(notified) => {
                    ready!(notified.as_mut().poll(cx));
                    self.notified = None;
                }
                None => {
                    let mut notified = Box::pin(self.queue.space_notified());
                    notified.as_mut().enable();
                    let Some(event) = self.event.take() else {
                        return Poll::Ready(self.take_response());
                    };
                    match self.queue.try_push(event) {
                        Push::Done | Push::Closed => return Poll::Ready(self.take_response()),
                        Push::Full(event) => {
                            self.event = Some(event);
                            self.notified = Some(notified);
                        }
                    }
                }
            }
        }
    }

    fn take_response(&mut self) -> Response<B> {
        self.response
            .take()
            .unwrap_or_else(|| unreachable!("the response is taken once"))
    }
}
