//! Route layers that enforce a [`Policy`] or a [`RouteTable`].

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use axum_core::body::Body;
use http::{Request, Response};
use pin_project_lite::pin_project;
use streamgate_core::{MetricsHandle, SecurityContext, UNMATCHED_ROUTE, route_label_from};
use tower_layer::Layer;
use tower_service::Service;

use super::{Policy, Rbac, RouteTable};
use crate::{AuthDecision, AuthReason, AuthSource, metrics::DecisionCounters, rejection::refusal};

#[derive(Debug, Clone)]
enum Rule {
    Fixed(Policy),
    Table(RouteTable),
}

#[derive(Debug, Clone)]
struct Shared {
    rule: Rule,
    rbac: Rbac,
    counters: DecisionCounters,
}

impl Shared {
    fn judge<B>(&self, request: &Request<B>) -> Result<(), AuthReason> {
        let context = request.extensions().get::<SecurityContext>();
        match &self.rule {
            Rule::Fixed(policy) => policy.evaluate(context, &self.rbac),
            Rule::Table(table) => {
                let template = route_label_from(request.extensions());
                match table.policy(request.method(), template) {
                    Some(policy) => policy.evaluate(context, &self.rbac),
                    None if table.denies_unlisted() && template != UNMATCHED_ROUTE => {
                        Err(AuthReason::RouteNotListed)
                    }
                    None => Ok(()),
                }
            }
        }
    }
}

/// Enforces one [`Policy`] on the routes it wraps; add it with axum's `route_layer` after
/// (inside) [`SecurityContextLayer`](crate::SecurityContextLayer).
///
/// A request without a principal where one is needed gets 401; a principal without the role or
/// permission gets 403 with `WWW-Authenticate: Bearer error="insufficient_scope"`.
///
/// ```
/// use axum::{Router, routing::{get, delete}};
/// use streamgate_security::{Rbac, Role, require_permission, require_role};
///
/// let rbac = Rbac::builder()
///     .role(Role::new("admin").permissions(["items:delete"]))
///     .build()
///     .unwrap();
/// let app: Router = Router::new()
///     .route("/items/{id}", delete(|| async { "deleted" }))
///     .route_layer(rbac.require(streamgate_security::Policy::permission("items:delete")))
///     .route("/reports", get(|| async { "reports" }).route_layer(require_role("auditor")));
/// # let _ = app;
/// ```
#[derive(Debug, Clone)]
pub struct AuthorizeLayer {
    shared: Arc<Shared>,
}

impl AuthorizeLayer {
    fn with(rule: Rule, rbac: Rbac) -> Self {
        Self {
            shared: Arc::new(Shared {
                rule,
                rbac,
                counters: DecisionCounters::new(MetricsHandle::global()),
            }),
        }
    }

    /// Enforces `policy`, resolving roles with `rbac`.
    #[must_use]
    pub fn policy(policy: Policy, rbac: Rbac) -> Self {
        Self::with(Rule::Fixed(policy), rbac)
    }

    /// Enforces the route table (with axum's `Router::layer`, so the route template is known).
    #[must_use]
    pub fn table(table: RouteTable, rbac: Rbac) -> Self {
        Self::with(Rule::Table(table), rbac)
    }

    /// Where `streamgate_auth_decisions_total` is recorded (default: the global recorder).
    #[must_use]
    pub fn metrics(mut self, metrics: MetricsHandle) -> Self {
        Arc::make_mut(&mut self.shared).counters = DecisionCounters::new(metrics);
        self
    }
}

impl Rbac {
    /// A layer enforcing `policy` with this role table.
    #[must_use]
    pub fn require(&self, policy: Policy) -> AuthorizeLayer {
        AuthorizeLayer::policy(policy, self.clone())
    }

    /// A layer enforcing `table` with this role table.
    #[must_use]
    pub fn route_table(&self, table: RouteTable) -> AuthorizeLayer {
        AuthorizeLayer::table(table, self.clone())
    }
}

/// Requires `role` as the context lists it (no inheritance: use [`Rbac::require`] for that).
#[must_use]
pub fn require_role(role: impl Into<String>) -> AuthorizeLayer {
    AuthorizeLayer::policy(Policy::role(role), Rbac::default())
}

/// Requires `permission` among the context's permissions or scopes (no role table: use
/// [`Rbac::require`] to grant it through roles).
#[must_use]
pub fn require_permission(permission: impl Into<String>) -> AuthorizeLayer {
    AuthorizeLayer::policy(Policy::permission(permission), Rbac::default())
}

/// Requires at least one of `policies`.
#[must_use]
pub fn require_any(policies: impl IntoIterator<Item = Policy>) -> AuthorizeLayer {
    AuthorizeLayer::policy(Policy::any(policies), Rbac::default())
}

/// Requires every one of `policies`.
#[must_use]
pub fn require_all(policies: impl IntoIterator<Item = Policy>) -> AuthorizeLayer {
    AuthorizeLayer::policy(Policy::all(policies), Rbac::default())
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`AuthorizeLayer`].
#[derive(Debug)]
pub struct Authorize<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for Authorize<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for Authorize<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Body>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = AuthorizeFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.shared.judge(&request) {
            Ok(()) => {
                self.shared
                    .counters
                    .record(AuthDecision::new(AuthSource::Rbac, AuthReason::Ok));
                AuthorizeFuture {
                    kind: Kind::Inner {
                        future: self.inner.call(request),
                    },
                }
            }
            Err(reason) => {
                let decision = AuthDecision::new(AuthSource::Rbac, reason);
                self.shared.counters.record(decision);
                let token_given = request.extensions().get::<SecurityContext>().is_some();
                AuthorizeFuture {
                    kind: Kind::Refused {
                        response: Some(refusal(decision, token_given).map(ResBody::from)),
                    },
                }
            }
        }
    }
}

pin_project! {
    /// The response future of [`Authorize`].
    pub struct AuthorizeFuture<F, ResBody> {
        #[pin]
        kind: Kind<F, ResBody>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, ResBody> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<ResBody>> },
    }
}

impl<F, ResBody> std::fmt::Debug for AuthorizeFuture<F, ResBody> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizeFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for AuthorizeFuture<F, ResBody>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => Poll::Ready(ready!(future.poll(cx))),
            KindProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("AuthorizeFuture polled after completion"))),
        }
    }
}
