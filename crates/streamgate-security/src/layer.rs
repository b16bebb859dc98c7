//! [`SecurityContextLayer`]: turns the request's credential into a [`SecurityContext`].

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use axum_core::body::Body;
use http::{Request, Response};
use pin_project_lite::pin_project;
use streamgate_core::{MetricsHandle, SecurityContext};
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    ApiKeys, AuthDecision, AuthReason, AuthSource, GatewayHeaders, JwtAuth,
    credentials::{Bearer, bearer, cookie, same_origin, token_in_query},
    jwt::Cached,
    metrics::DecisionCounters,
    rejection::refusal,
};

/// Verifies the request's credential and inserts the [`SecurityContext`] into the request
/// extensions; the context is also left in the response extensions for the layers outside (audit,
/// metrics), and so is an [`AuthDecision`] when the request was refused or let through without a
/// credential.
///
/// Sources are tried in the order they were added; the first source whose credential the request
/// carries decides (an invalid credential is refused, never passed on to the next source). Without
/// any credential the request is refused with 401, unless [`allow_anonymous`] lets it through
/// without a context for the route layers to judge.
///
/// See the [crate docs](crate) for an example.
///
/// [`allow_anonymous`]: SecurityContextLayerBuilder::allow_anonymous
#[derive(Debug, Clone)]
pub struct SecurityContextLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    sources: Vec<Source>,
    gateway: Option<GatewayHeaders>,
    anonymous: bool,
    counters: DecisionCounters,
}

#[derive(Debug)]
enum Source {
    Jwt {
        auth: JwtAuth,
        cookie: Option<String>,
    },
    ApiKey(ApiKeys),
    Gateway,
}

/// Builds a [`SecurityContextLayer`].
#[derive(Debug)]
#[must_use]
pub struct SecurityContextLayerBuilder {
    sources: Vec<Source>,
    gateway: Option<GatewayHeaders>,
    anonymous: bool,
    metrics: MetricsHandle,
}

impl SecurityContextLayer {
    /// Starts a layer with no credential source.
    pub fn builder() -> SecurityContextLayerBuilder {
        SecurityContextLayerBuilder {
            sources: Vec::new(),
            gateway: None,
            anonymous: false,
            metrics: MetricsHandle::global(),
        }
    }
}

impl SecurityContextLayerBuilder {
    /// Accepts JWT bearer tokens from `Authorization: Bearer`.
    pub fn jwt(mut self, auth: JwtAuth) -> Self {
        self.sources.push(Source::Jwt { auth, cookie: None });
        self
    }

    /// Accepts JWTs from `Authorization: Bearer` and, failing that, from cookie `name`.
    ///
    /// A cookie is sent by the browser on its own, so a cookie-borne token is accepted on an
    /// unsafe method (POST, PUT, ...) only when the request is same-origin: `Sec-Fetch-Site` is
    /// `same-origin` or `none`, or `Origin` names the request's host (Go 1.25's
    /// `CrossOriginProtection` scheme, like tower-http's CSRF layer). Cross-site requests get 403
    /// with a problem+json body (reason `csrf_rejected`) and no `WWW-Authenticate` challenge.
    pub fn jwt_with_cookie(mut self, auth: JwtAuth, name: impl Into<String>) -> Self {
        self.sources.push(Source::Jwt {
            auth,
            cookie: Some(name.into()),
        });
        self
    }

    /// Accepts the API keys of `keys`, read from their header.
    pub fn api_keys(mut self, keys: ApiKeys) -> Self {
        self.sources.push(Source::ApiKey(keys));
        self
    }

    /// Accepts identity headers from trusted gateways. From other peers these headers are removed
    /// from the request, whatever source authenticates it.
    pub fn gateway(mut self, gateway: GatewayHeaders) -> Self {
        self.gateway = Some(gateway);
        self.sources.push(Source::Gateway);
        self
    }

    /// Lets requests without any credential through without a context (default: refuse with
    /// 401). Invalid credentials are refused either way.
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.anonymous = allow;
        self
    }

    /// Where `streamgate_auth_decisions_total` is recorded (default: the global recorder).
    pub fn metrics(mut self, metrics: MetricsHandle) -> Self {
        self.metrics = metrics;
        self
    }

    /// Finishes the layer.
    pub fn build(self) -> SecurityContextLayer {
        SecurityContextLayer {
            shared: Arc::new(Shared {
                sources: self.sources,
                gateway: self.gateway,
                anonymous: self.anonymous,
                counters: DecisionCounters::new(self.metrics),
            }),
        }
    }
}

impl<S> Layer<S> for SecurityContextLayer {
    type Service = SecurityContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityContextService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`SecurityContextLayer`].
#[derive(Debug)]
pub struct SecurityContextService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for SecurityContextService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// What the synchronous part of authentication decided.
enum Step {
    Pass(SecurityContext, AuthSource),
    Anonymous,
    Refuse(AuthDecision, bool),
    Verify(JwtAuth, Vec<u8>),
}

impl Shared {
    fn step<B>(&self, request: &Request<B>) -> Step {
        let headers = request.headers();
        for source in &self.sources {
            match source {
                Source::Jwt { auth, cookie: name } => {
                    let (token, from_cookie) = match bearer(headers) {
                        Bearer::Token(token) => (token, false),
                        Bearer::Ambiguous => {
                            return Step::Refuse(
                                AuthDecision::new(AuthSource::Jwt, AuthReason::MalformedToken),
                                true,
                            );
                        }
                        Bearer::Absent => match name.as_deref().and_then(|n| cookie(headers, n)) {
                            Some(token) => (token, true),
                            None => continue,
                        },
                    };
                    if from_cookie && !same_origin(request) {
                        return Step::Refuse(
                            AuthDecision::new(AuthSource::Jwt, AuthReason::CsrfRejected),
                            true,
                        );
                    }
                    return match auth.cached(token) {
                        Cached::Hit(context) => Step::Pass(context, AuthSource::Jwt),
                        Cached::Refused(reason) => {
                            Step::Refuse(AuthDecision::new(AuthSource::Jwt, reason), true)
                        }
                        Cached::Miss => Step::Verify(auth.clone(), token.to_vec()),
                    };
                }
                Source::ApiKey(keys) => {
                    let Some(value) = headers.get(&keys.header) else {
                        continue;
                    };
                    return match keys.authenticate(value.as_bytes()) {
                        Ok(context) => Step::Pass(context, AuthSource::ApiKey),
                        Err(reason) => {
                            Step::Refuse(AuthDecision::new(AuthSource::ApiKey, reason), true)
                        }
                    };
                }
                Source::Gateway => {
                    let Some(gateway) = &self.gateway else {
                        continue;
                    };
                    // From untrusted peers the headers were removed before this point.
                    if !gateway.presents(headers) {
                        continue;
                    }
                    return match gateway.context(headers) {
                        Ok(context) => Step::Pass(context, AuthSource::Gateway),
                        Err(reason) => {
                            Step::Refuse(AuthDecision::new(AuthSource::Gateway, reason), false)
                        }
                    };
                }
            }
        }
        if token_in_query(request.uri()) {
            Step::Refuse(
                AuthDecision::new(AuthSource::None, AuthReason::TokenInQuery),
                false,
            )
        } else if self.anonymous {
            Step::Anonymous
        } else {
            Step::Refuse(
                AuthDecision::new(AuthSource::None, AuthReason::MissingCredentials),
                false,
            )
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for SecurityContextService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: Send + 'static,
    ResBody: From<Body> + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(gateway) = &self.shared.gateway
            && !gateway.peer_is_trusted(&request)
        {
            gateway.strip(request.headers_mut());
        }
        let kind = match self.shared.step(&request) {
            Step::Pass(context, source) => {
                let decision = AuthDecision::new(source, AuthReason::Ok);
                self.shared.counters.record(decision);
                request.extensions_mut().insert(context.clone());
                Kind::Inner {
                    future: self.inner.call(request),
                    context: Some(context),
                    decision,
                }
            }
            Step::Anonymous => {
                let decision = AuthDecision::new(AuthSource::None, AuthReason::Anonymous);
                self.shared.counters.record(decision);
                Kind::Inner {
                    future: self.inner.call(request),
                    context: None,
                    decision,
                }
            }
            Step::Refuse(decision, token_given) => {
                self.shared.counters.record(decision);
                Kind::Refused {
                    response: Some(refusal(decision, token_given).map(ResBody::from)),
                }
            }
            Step::Verify(auth, token) => {
                // The clone takes the place of the service that was driven to readiness.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                Kind::Verify {
                    future: Box::pin(verify_then_call(
                        inner,
                        self.shared.clone(),
                        auth,
                        token,
                        request,
                    )),
                }
            }
        };
        ResponseFuture { kind }
    }
}

async fn verify_then_call<S, B, ResBody>(
    mut inner: S,
    shared: Arc<Shared>,
    auth: JwtAuth,
    token: Vec<u8>,
    mut request: Request<B>,
) -> Result<Response<ResBody>, S::Error>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<Body>,
{
    let verified = match std::str::from_utf8(&token) {
        Ok(token) => auth.verify_uncached(token).await,
        Err(_) => Err(AuthReason::MalformedToken),
    };
    match verified {
        Ok(context) => {
            drop(token);
            let decision = AuthDecision::new(AuthSource::Jwt, AuthReason::Ok);
            shared.counters.record(decision);
            request.extensions_mut().insert(context.clone());
            let mut response = inner.call(request).await?;
            annotate(&mut response, Some(context), decision);
            Ok(response)
        }
        Err(reason) => {
            let decision = AuthDecision::new(AuthSource::Jwt, reason);
            shared.counters.record(decision);
            Ok(refusal(decision, true).map(ResBody::from))
        }
    }
}

/// Leaves the context (authenticated) or the decision (anonymous) in the response; an inner
/// layer's decision (an RBAC refusal) is kept.
fn annotate<ResBody>(
    response: &mut Response<ResBody>,
    context: Option<SecurityContext>,
    decision: AuthDecision,
) {
    let extensions = response.extensions_mut();
    if let Some(context) = context {
        extensions.insert(context);
    } else if extensions.get::<AuthDecision>().is_none() {
        extensions.insert(decision);
    }
}

type BoxedResponse<ResBody, E> = Pin<Box<dyn Future<Output = Result<Response<ResBody>, E>> + Send>>;

pin_project! {
    /// The response future of [`SecurityContextService`].
    pub struct ResponseFuture<F, ResBody, E> {
        #[pin]
        kind: Kind<F, ResBody, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, ResBody, E> {
        Inner {
            #[pin]
            future: F,
            context: Option<SecurityContext>,
            decision: AuthDecision,
        },
        Verify {
            future: BoxedResponse<ResBody, E>,
        },
        Refused {
            response: Option<Response<ResBody>>,
        },
    }
}

impl<F, ResBody, E> std::fmt::Debug for ResponseFuture<F, ResBody, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F, ResBody, E>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner {
                future,
                context,
                decision,
            } => {
                let mut response = ready!(future.poll(cx))?;
                annotate(&mut response, context.take(), *decision);
                Poll::Ready(Ok(response))
            }
            KindProj::Verify { future } => future.as_mut().poll(cx),
            KindProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("ResponseFuture polled after completion"))),
        }
    }
}
