//! Reading a response body into memory up to a limit, without losing what does not fit.

use std::{
    collections::VecDeque,
    pin::Pin,
    task::{Context, Poll},
};

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body read as far as the cache could take it.
pub(crate) enum Collected {
    /// The whole body, within the limit and without trailers: it can be stored.
    Whole(Bytes),
    /// Too large, with trailers, or failed: the frames read so far, then the rest of the body
    /// (or its error), sent on as they came.
    Partial(Body),
}

/// Reads `body` until its end or until more than `limit` bytes arrived.
pub(crate) async fn collect_limited<B>(mut body: B, limit: usize) -> Collected
where
    B: HttpBody<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    if body.size_hint().lower() > limit as u64 {
        return Collected::Partial(Body::new(body));
    }
    let mut frames = VecDeque::new();
    let mut size = 0;
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                let is_data = frame.is_data();
                if let Some(data) = frame.data_ref() {
                    size += data.len();
                }
                frames.push_back(frame);
                if !is_data || size > limit {
                    return Collected::Partial(Body::new(Replay {
                        frames,
                        rest: Some(body),
                        error: None,
                    }));
                }
            }
            Some(Err(error)) => {
                return Collected::Partial(Body::new(Replay::<B> {
                    frames,
                    rest: None,
                    error: Some(error.into()),
                }));
            }
        }
    }
    let mut whole = BytesMut::with_capacity(size);
    for frame in frames {
        if let Ok(data) = frame.into_data() {
            whole.extend_from_slice(&data);
        }
    }
    Collected::Whole(whole.freeze())
}

/// Frames already read, then the rest of the body or the error that stopped the reading.
struct Replay<B> {
    frames: VecDeque<Frame<Bytes>>,
    rest: Option<B>,
    error: Option<BoxError>,
}

impl<B> HttpBody for Replay<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(error) = self.error.take() {
            return Poll::Ready(Some(Err(error)));
        }
        match self.rest.as_mut() {
            Some(rest) => Pin::new(rest).poll_frame(cx).map_err(Into::into),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let buffered: u64 = self
            .frames
            .iter()
            .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
            .sum();
        let Some(rest) = &self.rest else {
            return SizeHint::with_exact(buffered);
        };
        let inner = rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + buffered);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + buffered);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of the given chunks, one frame each, with no length known in advance.
    struct Chunks(VecDeque<Bytes>);

    impl HttpBody for Chunks {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
        }
    }

    fn chunks(parts: &[&'static str]) -> Chunks {
        Chunks(
            parts
                .iter()
                .map(|p| Bytes::from_static(p.as_bytes()))
                .collect(),
        )
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_whole() {
        match collect_limited(chunks(&["ab", "cd"]), 4).await {
            Collected::Whole(bytes) => assert_eq!(bytes, "abcd"),
            Collected::Partial(_) => panic!("fits"),
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_sent_on_whole() {
        let Collected::Partial(body) = collect_limited(chunks(&["ab", "cd", "ef"]), 3).await else {
            panic!("does not fit");
        };
        assert_eq!(body.collect().await.unwrap().to_bytes(), "abcdef");
    }
}
