//! The innermost layer of the [`Stack`](crate::Stack): a problem+json body for an error response
//! that has none.
//!
//! axum answers an unknown route with an empty 404 and a method the route lacks with an empty
//! 405, and a handler may return a bare `StatusCode`. Every other refusal of the stack is
//! problem+json (RFC 9457), so these get a body too, titled by their status, their headers
//! (`Allow`) kept. A response with a body or a content type is never touched; a success is
//! passed on after one comparison, in place.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use axum::{
    body::HttpBody,
    response::{IntoResponse, Response},
};
use http::{Request, header};
use pin_project_lite::pin_project;
use streamgate_core::Problem;
use tower_layer::Layer;
use tower_service::Service;

/// Makes [`ProblemBodies`] services.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProblemBodiesLayer;

impl<S> Layer<S> for ProblemBodiesLayer {
    type Service = ProblemBodies<S>;

    fn layer(&self, inner: S) -> ProblemBodies<S> {
        ProblemBodies { inner }
    }
}

/// Gives the inner service's empty error responses a problem+json body.
#[derive(Debug, Clone)]
pub(crate) struct ProblemBodies<S> {
    inner: S,
}

impl<S, ReqBody> Service<Request<ReqBody>> for ProblemBodies<S>
where
    S: Service<Request<ReqBody>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ProblemBodiesFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        ProblemBodiesFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`ProblemBodies`].
    pub(crate) struct ProblemBodiesFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, E> Future for ProblemBodiesFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut output = ready!(self.project().inner.poll(cx));
        if let Ok(response) = &mut output
            && is_empty_error(response)
        {
            give_problem_body(response);
        }
        Poll::Ready(output)
    }
}

/// Whether `response` is an error (4xx or 5xx) with no body and no content type.
#[inline]
fn is_empty_error(response: &Response) -> bool {
    let status = response.status();
    (status.is_client_error() || status.is_server_error())
        && !response.headers().contains_key(header::CONTENT_TYPE)
        && response.body().size_hint().exact() == Some(0)
}

/// Replaces the empty body of `response` with a problem+json one titled by its status.
#[cold]
fn give_problem_body(response: &mut Response) {
    let (problem, body) = Problem::new(response.status()).into_response().into_parts();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    if let Some(content_type) = problem.headers.get(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, content_type.clone());
    }
    *response.body_mut() = body;
}
