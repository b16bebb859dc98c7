//! The event of an HTTP request as the request path leaves it: copies and reference counts, no
//! text built. The background writer turns it into an [`AuditEvent`] (the id, the wall-clock
//! time, the strings), reusing the events of earlier batches so that it does not allocate.

use std::{borrow::Cow, net::IpAddr, time::Duration};

use http::Method;
use serde_json::{Map, Value};
use streamgate_core::SecurityContext;
use tokio::time::Instant;

use crate::{
    capture::{PathText, RequestIdText, RouteCapture, method_text},
    clock::AuditClock,
    event::{Actor, AuditEvent, Outcome},
    id,
};

/// A recorded request, waiting in the queue.
#[derive(Debug)]
pub(crate) struct HttpRecord {
    /// When the request arrived (or, for requests not timed, when its response was seen).
    pub(crate) at: Instant,
    pub(crate) latency: Option<Duration>,
    pub(crate) method: Method,
    /// The path without the query (`/` when the request had none), copied out of the request,
    /// with the route parameters the redaction denylist names replaced.
    pub(crate) path: PathText,
    pub(crate) route: RouteCapture,
    pub(crate) request_id: Option<RequestIdText>,
    pub(crate) source_ip: Option<IpAddr>,
    pub(crate) actor: Option<SecurityContext>,
    pub(crate) event_type: Cow<'static, str>,
    pub(crate) status: u16,
    pub(crate) reason: Option<Cow<'static, str>>,
    /// Headers and body excerpt, redacted (requests recorded at `Level::Request`).
    pub(crate) metadata: Option<Box<Map<String, Value>>>,
}

/// Replaces the text of `slot` with `text`, keeping its allocation.
fn set_text(slot: &mut Option<String>, text: Option<&str>) {
    match (slot.as_mut(), text) {
        (Some(old), Some(text)) => {
            old.clear();
            old.push_str(text);
        }
        (_, text) => *slot = text.map(str::to_owned),
    }
}

impl HttpRecord {
    /// The event, built into `event` (whose allocations are reused). Takes what it keeps from
    /// `self` rather than consuming it, so that the record is not copied out of the batch.
    pub(crate) fn fill(&mut self, clock: &AuditClock, event: &mut AuditEvent) {
        let millis = clock.unix_millis_at(self.at);
        event.id = id::new_v7(millis);
        event.timestamp = std::time::UNIX_EPOCH + Duration::from_millis(millis);
        event.event_type = std::mem::take(&mut self.event_type);
        match (&mut event.actor, self.actor.take()) {
            (Actor::User { id, wallet }, Some(context)) => {
                id.clear();
                id.push_str(context.user_id());
                *wallet = context.wallet().copied();
            }
            (actor, context) => *actor = context.as_ref().map_or(Actor::Anonymous, Actor::from),
        }
        event.source_ip = self.source_ip;
        set_text(
            &mut event.request_id,
            self.request_id.as_ref().and_then(RequestIdText::as_str),
        );
        let action = method_text(&self.method);
        event.method = Some(action.clone());
        event.action = action;
        set_text(&mut event.route, Some(self.route.as_str()));
        event.resource.clear();
        event.resource.push_str(self.path.as_str());
        event.outcome = Outcome::from_status(self.status);
        event.status = Some(self.status);
        event.reason = self.reason.take();
        event.latency_ms = self.latency.map(|d| d.as_secs_f64() * 1000.0);
        match self.metadata.take() {
            Some(metadata) => event.metadata = *metadata,
            None => event.metadata.clear(),
        }
    }

    /// The event, newly allocated (taking from `self` as [`fill`](Self::fill) does).
    pub(crate) fn take_event(&mut self, clock: &AuditClock) -> AuditEvent {
        let mut event = AuditEvent::new(
            std::time::UNIX_EPOCH,
            "",
            Actor::Anonymous,
            "",
            String::new(),
            Outcome::Success,
        );
        self.fill(clock, &mut event);
        event
    }
}
