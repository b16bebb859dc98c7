//! Helpers for a service's own handler tests: put a [`SecurityContext`] on a request without
//! minting tokens.
//!
//! ```
//! use axum::{Router, body::Body, routing::get};
//! use http::Request;
//! use streamgate_core::SecurityContext;
//! use streamgate_security::{Authenticated, require_role, testing::{InjectContextLayer, with_context}};
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let app = Router::new()
//!     .route("/admin", get(|Authenticated(c): Authenticated| async move { c.user_id().to_owned() }))
//!     .route_layer(require_role("admin"));
//!
//! // Per request:
//! let admin = SecurityContext::builder("alice").roles(["admin"]).build();
//! let request = with_context(Request::get("/admin").body(Body::empty()).unwrap(), admin.clone());
//! assert_eq!(app.clone().oneshot(request).await.unwrap().status(), 200);
//!
//! // Or for every request of a router:
//! let app = app.layer(InjectContextLayer::new(SecurityContext::builder("bob").build()));
//! let response = app.oneshot(Request::get("/admin").body(Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(response.status(), 403);
//! # }
//! ```

use std::task::{Context, Poll};

use http::Request;
use streamgate_core::SecurityContext;
use tower_layer::Layer;
use tower_service::Service;

/// Puts `context` in the request's extensions, as [`SecurityContextLayer`] does.
///
/// [`SecurityContextLayer`]: crate::SecurityContextLayer
#[must_use]
pub fn with_context<B>(mut request: Request<B>, context: SecurityContext) -> Request<B> {
    request.extensions_mut().insert(context);
    request
}

/// A layer that gives every request the same context (or none).
#[derive(Debug, Clone)]
pub struct InjectContextLayer {
    context: Option<SecurityContext>,
}

impl InjectContextLayer {
    /// Every request gets `context`.
    #[must_use]
    pub fn new(context: SecurityContext) -> Self {
        Self {
            context: Some(context),
        }
    }

    /// Requests are left unauthenticated (a context already there is removed).
    #[must_use]
    pub fn anonymous() -> Self {
        Self { context: None }
    }
}

impl<S> Layer<S> for InjectContextLayer {
    type Service = InjectContext<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InjectContext {
            inner,
            context: self.context.clone(),
        }
    }
}

/// The service made by [`InjectContextLayer`].
#[derive(Debug, Clone)]
pub struct InjectContext<S> {
    inner: S,
    context: Option<SecurityContext>,
}

impl<S, B> Service<Request<B>> for InjectContext<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        match &self.context {
            Some(context) => {
                request.extensions_mut().insert(context.clone());
            }
            None => {
                request.extensions_mut().remove::<SecurityContext>();
            }
        }
        self.inner.call(request)
    }
}
