//! The audit layer: records requests by policy, with the actor the inner security layer leaves
//! in the response extensions.

use std::{
    borrow::Cow,
    net::IpAddr,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{body::Body, extract::MatchedPath};
use http::{Method, Request, Response, header, uri::PathAndQuery};
use serde_json::{Map, Value};
use streamgate_core::{ClientIp, RouteTemplate, SecurityContext, UNMATCHED_ROUTE, peer_addr};
use tokio::time::Instant;
use tower_http::request_id::RequestId;
use tower_layer::Layer;
use tower_service::Service;

use crate::{
    body::{Capture, ExcerptBody},
    event::{Actor, AuditEvent, AuditReason, Outcome, default_reason},
    future::ResponseFuture,
    logger::AuditLogger,
    policy::{AuditPolicy, Level, PreDecision},
    redact::Redaction,
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

    /// Uses `redaction` for headers and body excerpts.
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
            config: self.config.clone(),
        }
    }
}

/// The audit service; made by [`AuditLayer`].
#[derive(Debug, Clone)]
pub struct Audit<S> {
    inner: S,
    config: Arc<Config>,
}

/// Route templates up to this long are copied inline rather than shared.
const INLINE_ROUTE: usize = 48;

/// The matched route: short templates copied inline (no reference count to touch on every
/// request), longer ones shared.
#[derive(Debug)]
enum RouteCapture {
    Inline { len: u8, bytes: [u8; INLINE_ROUTE] },
    Matched(MatchedPath),
    Template(RouteTemplate),
    Unmatched,
}

impl RouteCapture {
    fn of(extensions: &http::Extensions) -> Self {
        if let Some(matched) = extensions.get::<MatchedPath>() {
            Self::copy_or(matched.as_str(), || RouteCapture::Matched(matched.clone()))
        } else if let Some(template) = extensions.get::<RouteTemplate>() {
            Self::copy_or(&template.0, || RouteCapture::Template(template.clone()))
        } else {
            RouteCapture::Unmatched
        }
    }

    fn copy_or(text: &str, shared: impl FnOnce() -> Self) -> Self {
        if text.len() <= INLINE_ROUTE {
            let mut bytes = [0u8; INLINE_ROUTE];
            bytes[..text.len()].copy_from_slice(text.as_bytes());
            RouteCapture::Inline {
                len: text.len() as u8,
                bytes,
            }
        } else {
            shared()
        }
    }

    fn as_str(&self) -> &str {
        match self {
            RouteCapture::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or(UNMATCHED_ROUTE)
            }
            RouteCapture::Matched(m) => m.as_str(),
            RouteCapture::Template(t) => &t.0,
            RouteCapture::Unmatched => UNMATCHED_ROUTE,
        }
    }
}

/// The longest request id recorded; longer ones (client-chosen) are cut.
const MAX_REQUEST_ID: usize = 64;

/// A request id copied inline: cloning the header value would allocate for generated ids.
#[derive(Debug)]
struct RequestIdText {
    len: u8,
    bytes: [u8; MAX_REQUEST_ID],
}

impl RequestIdText {
    fn new(value: &http::HeaderValue) -> Self {
        let mut text = Self {
            len: 0,
            bytes: [0; MAX_REQUEST_ID],
        };
        let value = value.as_bytes();
        let len = value.len().min(MAX_REQUEST_ID);
        text.bytes[..len].copy_from_slice(&value[..len]);
        text.len = len as u8;
        text
    }

    /// The id, when it is visible ASCII (checked only for requests that are recorded).
    fn as_str(&self) -> Option<&str> {
        let bytes = &self.bytes[..usize::from(self.len)];
        if bytes.iter().fold(true, |ok, b| ok & b.is_ascii_graphic()) {
            std::str::from_utf8(bytes).ok()
        } else {
            None
        }
    }
}

/// What the request told us, kept until the response decides whether to record it.
#[derive(Debug)]
pub(crate) struct Pending {
    config: Arc<Config>,
    pre: PreDecision,
    /// When the request arrived; `None` for requests only the security floor can record.
    start: Option<Instant>,
    method: Method,
    path: Option<PathAndQuery>,
    route: RouteCapture,
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
        let pre = self.config.policy.pre_decide(
            request.method(),
            streamgate_core::route_label_from(extensions),
        );
        if pre.max == Level::None {
            return ResponseFuture::passthrough(self.inner.call(request));
        }
        let route = RouteCapture::of(extensions);
        // A plain read under the default policy: recorded only if refused, so it is not timed
        // (the clock read would be most of its cost) and its actor comes from the response.
        let floor_only = self.config.policy.floor_only(pre);
        let mut pending = Pending {
            config: self.config.clone(),
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
        let request = if pre.max == Level::Request {
            let redaction = &self.config.redaction;
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
        } else {
            request
        };
        ResponseFuture::audited(self.inner.call(request), pending)
    }
}

fn method_text(method: &Method) -> Cow<'static, str> {
    match *method {
        Method::GET => Cow::Borrowed("GET"),
        Method::POST => Cow::Borrowed("POST"),
        Method::PUT => Cow::Borrowed("PUT"),
        Method::PATCH => Cow::Borrowed("PATCH"),
        Method::DELETE => Cow::Borrowed("DELETE"),
        Method::HEAD => Cow::Borrowed("HEAD"),
        Method::OPTIONS => Cow::Borrowed("OPTIONS"),
        _ => Cow::Owned(method.as_str().to_owned()),
    }
}

impl Pending {
    pub(crate) fn logger(&self) -> &AuditLogger {
        &self.config.logger
    }

    /// The event for this response, when the policy records it.
    pub(crate) fn finish<B>(&mut self, response: &Response<B>) -> Option<AuditEvent> {
        let status = response.status().as_u16();
        let (level, event_type) =
            self.config
                .policy
                .decide_after(self.pre, &self.method, self.route.as_str(), status);
        if level == Level::None {
            return None;
        }
        let extensions = response.extensions();
        let actor = extensions
            .get::<SecurityContext>()
            .or(self.actor.as_ref())
            .map_or(Actor::Anonymous, Actor::from);
        let clock = self.config.logger.clock();
        let action = method_text(&self.method);
        let mut event = AuditEvent::new(
            self.start
                .map_or_else(|| clock.now(), |start| clock.at(start)),
            event_type,
            actor,
            action.clone(),
            self.path.as_ref().map_or("/", PathAndQuery::path),
            Outcome::from_status(status),
        );
        event.source_ip = self.source_ip;
        event.request_id = self
            .request_id
            .as_ref()
            .and_then(RequestIdText::as_str)
            .map(str::to_owned);
        event.method = Some(action);
        event.route = Some(self.route.as_str().to_owned());
        event.status = Some(status);
        event.reason = extensions
            .get::<AuditReason>()
            .map(|r| Cow::Owned(r.as_str().to_owned()))
            .or_else(|| default_reason(status).map(Cow::Borrowed));
        event.latency_ms = self
            .start
            .map(|start| start.elapsed().as_secs_f64() * 1000.0);
        if level == Level::Request
            && let Some(detail) = self.request.take()
        {
            let (bytes, seen) = detail.capture.take();
            let mut metadata = Map::new();
            if !detail.headers.is_empty() {
                metadata.insert("headers".to_owned(), Value::Object(detail.headers));
            }
            metadata.insert("body_bytes".to_owned(), Value::from(seen));
            if let Some(excerpt) = self
                .config
                .redaction
                .excerpt(detail.content_type.as_deref(), &bytes)
            {
                metadata.insert("body_excerpt".to_owned(), Value::String(excerpt));
                if seen > bytes.len() as u64 {
                    metadata.insert("body_truncated".to_owned(), Value::Bool(true));
                }
            }
            event.metadata = metadata;
        }
        Some(event)
    }
}
