//! The audit layer: records requests by policy, with the actor the inner security layer leaves
//! in the response extensions.

use std::{
    borrow::Cow,
    net::IpAddr,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use axum::body::Body;
use http::{Method, Request, Response, header, uri::PathAndQuery};
use serde_json::{Map, Value};
use streamgate_core::{ClientIp, SecurityContext, peer_addr};
use tokio::time::Instant;
use tower_http::request_id::RequestId;
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    body::{Capture, ExcerptBody},
    capture::{PathText, RequestIdText, RouteCapture, RouteKept, RouteMemo, RouteSource},
    event::{AuditReason, default_reason, is_security_status},
    future::ResponseFuture,
    http_record::HttpRecord,
    logger::AuditLogger,
    policy::{AuditPolicy, Level, METHOD_SLOTS, PreDecision, method_slot},
    redact::{PathSecrets, Redaction},
};

/// Records requests into an [`AuditLogger`] by an [`AuditPolicy`].
///
/// Place it inside the request-id and client-ip layers and outside the security, rate-limit and
/// validation layers, added with `Router::layer` so the route template is known. Response bodies
/// pass through untouched; request bodies (axum's `Body`) are wrapped, keeping their type, only
/// for requests that may be recorded at [`Level::Request`]. See the [crate docs](crate) for an
/// example.
#[derive(Debug, Clone)]
pub struct AuditLayer {
    config: Arc<Config>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) logger: AuditLogger,
    policy: AuditPolicy,
    redaction: Redaction,
}

impl AuditLayer {
    /// Records into `logger` with the default policy and redaction.
    #[must_use]
    pub fn new(logger: AuditLogger) -> Self {
        Self {
            config: Arc::new(Config {
                logger,
                policy: AuditPolicy::default(),
                redaction: Redaction::default(),
            }),
        }
    }

    /// Uses `policy`.
    #[must_use]
    pub fn policy(mut self, policy: AuditPolicy) -> Self {
        Arc::make_mut(&mut self.config).policy = policy;
        self
    }

    /// Uses `redaction` for headers, body excerpts and path parameters.
    #[must_use]
    pub fn redaction(mut self, redaction: Redaction) -> Self {
        Arc::make_mut(&mut self.config).redaction = redaction;
        self
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;

    fn layer(&self, inner: S) -> Audit<S> {
        Audit {
            inner,
            scope: Arc::new(Scope {
                config: self.config.clone(),
                route: RouteMemo::default(),
                pre: std::array::from_fn(|_| OnceLock::new()),
                secrets: OnceLock::new(),
            }),
        }
    }
}

/// The audit service; made by [`AuditLayer`].
#[derive(Debug, Clone)]
pub struct Audit<S> {
    inner: S,
    scope: Arc<Scope>,
}

/// What the clones of one service share: the layer's settings and the route memo (axum gives
/// each route its own service, so its requests share their route).
#[derive(Debug)]
pub(crate) struct Scope {
    config: Arc<Config>,
    route: RouteMemo,
    /// The policy's pre-decision for the memo's route, by method slot, made at its first
    /// request with that method.
    pre: [OnceLock<PreDecision>; METHOD_SLOTS],
    /// The denied parameters of the memo's route (usually none), found at its first recorded
    /// request.
    secrets: OnceLock<Option<PathSecrets>>,
}

impl Scope {
    /// What a request whose route is `source` keeps of it, and the policy's pre-decision
    /// (remembered for the memo's route and the standard methods).
    #[inline]
    fn pre_decide(&self, method: &Method, source: RouteSource<'_>) -> (RouteKept, PreDecision) {
        let route = self.route.keep(source);
        let policy = &self.config.policy;
        let pre = match (&route, method_slot(method)) {
            (RouteKept::Memo, Some(slot)) => {
                *self.pre[slot].get_or_init(|| policy.pre_decide(method, source.as_str()))
            }
            _ => policy.pre_decide(method, source.as_str()),
        };
        (route, pre)
    }

    /// The recorded text of `path`, whose route is `source` (`kept` by the request): segments
    /// holding a parameter the redaction denylist names are replaced. The memo's route is looked
    /// at once; a path without a route is kept as it is.
    fn path_text(&self, path: &str, kept: &RouteKept, source: RouteSource<'_>) -> PathText {
        let redaction = &self.config.redaction;
        let found;
        let secrets = match (kept, source) {
            (_, RouteSource::Unmatched) => None,
            (RouteKept::Memo, _) => self
                .secrets
                .get_or_init(|| PathSecrets::of(source.as_str(), redaction))
                .as_ref(),
            _ => {
                found = PathSecrets::of(source.as_str(), redaction);
                found.as_ref()
            }
        };
        match secrets {
            None => PathText::new(path),
            Some(secrets) => PathText::new(&secrets.redact(path)),
        }
    }
}

/// What the request told us, kept until the response decides whether to record it.
#[derive(Debug)]
pub(crate) struct Pending {
    scope: Arc<Scope>,
    pre: PreDecision,
    /// When the request arrived; `None` for requests only the security floor can record.
    start: Option<Instant>,
    method: Method,
    path: Option<PathAndQuery>,
    route: RouteKept,
    request_id: Option<RequestIdText>,
    source_ip: Option<IpAddr>,
    actor: Option<SecurityContext>,
    request: Option<Box<RequestDetail>>,
}

#[derive(Debug)]
struct RequestDetail {
    headers: Map<String, Value>,
    content_type: Option<String>,
    capture: Arc<Capture>,
}

impl<S, ResBody> Service<Request<Body>> for Audit<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let extensions = request.extensions();
        let scope = &self.scope;
        let (route, pre) = scope.pre_decide(request.method(), RouteSource::of(extensions));
        if pre.max == Level::None {
            return ResponseFuture::passthrough(self.inner.call(request));
        }
        // A plain read under the default policy: recorded only if refused, so it is not timed
        // (the clock read would be most of its cost) and its actor comes from the response.
        let floor_only = pre.floor_only;
        let mut pending = Pending {
            scope: scope.clone(),
            pre,
            start: (!floor_only).then(Instant::now),
            method: request.method().clone(),
            path: request.uri().path_and_query().cloned(),
            route,
            request_id: extensions
                .get::<RequestId>()
                .map(|id| RequestIdText::new(id.header_value())),
            source_ip: extensions
                .get::<ClientIp>()
                .map(|ip| ip.0)
                .or_else(|| peer_addr(extensions).map(|addr| addr.ip().to_canonical())),
            actor: if floor_only {
                None
            } else {
                extensions.get::<SecurityContext>().cloned()
            },
            request: None,
        };
        if pre.max == Level::Request {
            let request = self.scope.config.capture_body(&mut pending, request);
            return ResponseFuture::audited(self.inner.call(request), pending);
        }
        // The request goes straight to the inner service: rebinding it would copy it.
        ResponseFuture::audited(self.inner.call(request), pending)
    }
}

impl Config {
    /// Keeps the allowlisted headers of a request that may be recorded at `Level::Request` and
    /// wraps its body to keep an excerpt.
    fn capture_body(&self, pending: &mut Pending, request: Request<Body>) -> Request<Body> {
        let redaction = &self.redaction;
        let capture = Arc::new(Capture::new(redaction.excerpt_limit()));
        pending.request = Some(Box::new(RequestDetail {
            headers: redaction.headers(request.headers()),
            content_type: request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            capture: capture.clone(),
        }));
        request.map(|body| Body::new(ExcerptBody::new(body, capture)))
    }
}

impl Pending {
    pub(crate) fn logger(&self) -> &AuditLogger {
        &self.scope.config.logger
    }

    /// Whether a response with `status` is certainly not recorded: only the security floor can
    /// record this request and `status` is not a security outcome (the usual plain read).
    #[inline]
    pub(crate) fn skips(&self, status: u16) -> bool {
        self.pre.floor_only && !is_security_status(status)
    }

    /// The record of this response, when the policy records it: only moves and copies, the
    /// event itself is built by the writer.
    pub(crate) fn finish<B>(&mut self, response: &Response<B>) -> Option<HttpRecord> {
        let status = response.status().as_u16();
        if self.skips(status) {
            return None;
        }
        let route = self.scope.route.source(&self.route);
        let (level, event_type) = self.scope.config.policy.decide_after(
            self.pre,
            &self.method,
            || route.as_str(),
            status,
        );
        if level == Level::None {
            return None;
        }
        let path = self.scope.path_text(
            self.path.as_ref().map_or("/", PathAndQuery::path),
            &self.route,
            route,
        );
        let route = RouteCapture::new(route);
        let extensions = response.extensions();
        let actor = match extensions.get::<SecurityContext>() {
            Some(context) => Some(context.clone()),
            None => self.actor.take(),
        };
        let (at, latency) = match self.start {
            Some(start) => {
                let now = Instant::now();
                (start, Some(now.saturating_duration_since(start)))
            }
            None => (Instant::now(), None),
        };
        let metadata = if level == Level::Request {
            self.request
                .take()
                .map(|detail| self.request_metadata(*detail))
        } else {
            None
        };
        Some(HttpRecord {
            at,
            latency,
            method: std::mem::take(&mut self.method),
            path,
            route,
            request_id: self.request_id.take(),
            source_ip: self.source_ip,
            actor,
            event_type,
            status,
            reason: extensions
                .get::<AuditReason>()
                .map(AuditReason::to_cow)
                .or_else(|| default_reason(status).map(Cow::Borrowed)),
            metadata,
        })
    }

    /// The headers and the redacted body excerpt of a request recorded at `Level::Request`.
    fn request_metadata(&self, detail: RequestDetail) -> Box<Map<String, Value>> {
        let (bytes, seen) = detail.capture.take();
        let mut metadata = Map::new();
        if !detail.headers.is_empty() {
            metadata.insert("headers".to_owned(), Value::Object(detail.headers));
        }
        metadata.insert("body_bytes".to_owned(), Value::from(seen));
        if let Some(excerpt) = self
            .scope
            .config
            .redaction
            .excerpt(detail.content_type.as_deref(), &bytes)
        {
            metadata.insert("body_excerpt".to_owned(), Value::String(excerpt));
            if seen > bytes.len() as u64 {
                metadata.insert("body_truncated".to_owned(), Value::Bool(true));
            }
        }
        Box::new(metadata)
    }
}
