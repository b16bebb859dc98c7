//! What the layer copies from a request, cheaply: the matched route (remembered by the route's
//! service) and the request id inline (no allocation, no shared reference count touched on
//! every request), the path of a recorded request, and the method's text.

use std::{borrow::Cow, sync::OnceLock};

use axum::extract::MatchedPath;
use http::{HeaderValue, Method};
use streamgate_core::{RouteTemplate, UNMATCHED_ROUTE};

/// Route templates up to this long are copied inline rather than shared.
const INLINE_ROUTE: usize = 48;

/// The matched route of a request, as found in its extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RouteSource<'a> {
    Matched(&'a MatchedPath),
    Template(&'a RouteTemplate),
    Unmatched,
}

impl<'a> RouteSource<'a> {
    /// Axum's matched path, else a [`RouteTemplate`], else none.
    pub(crate) fn of(extensions: &'a http::Extensions) -> Self {
        if let Some(matched) = extensions.get::<MatchedPath>() {
            RouteSource::Matched(matched)
        } else if let Some(template) = extensions.get::<RouteTemplate>() {
            RouteSource::Template(template)
        } else {
            RouteSource::Unmatched
        }
    }

    /// The route label (`UNMATCHED_ROUTE` when there is none).
    pub(crate) fn as_str(self) -> &'a str {
        match self {
            RouteSource::Matched(m) => m.as_str(),
            RouteSource::Template(t) => &t.0,
            RouteSource::Unmatched => UNMATCHED_ROUTE,
        }
    }
}

/// The matched route as a request keeps it until its response: usually nothing at all, the
/// route being the one its service remembers (see [`RouteMemo`]).
#[derive(Debug)]
pub(crate) enum RouteKept {
    /// The route in the service's memo.
    Memo,
    Matched(MatchedPath),
    Template(RouteTemplate),
    Unmatched,
}

/// The matched route of the first request a service saw. Axum gives each route its own copy of
/// a layer's service, and every request of a route the same shared `MatchedPath`, so the
/// service compares a request's route with this one (by address, then by text) instead of
/// copying it.
#[derive(Debug, Default)]
pub(crate) struct RouteMemo(OnceLock<MatchedPath>);

impl RouteMemo {
    /// What a request whose route is `source` keeps.
    #[inline]
    pub(crate) fn keep(&self, source: RouteSource<'_>) -> RouteKept {
        match source {
            RouteSource::Matched(matched) => {
                let memo = self.0.get_or_init(|| matched.clone());
                if std::ptr::eq(memo.as_str(), matched.as_str())
                    || memo.as_str() == matched.as_str()
                {
                    RouteKept::Memo
                } else {
                    RouteKept::Matched(matched.clone())
                }
            }
            RouteSource::Template(template) => RouteKept::Template(template.clone()),
            RouteSource::Unmatched => RouteKept::Unmatched,
        }
    }

    /// The route `kept` stands for.
    pub(crate) fn source<'a>(&'a self, kept: &'a RouteKept) -> RouteSource<'a> {
        match kept {
            RouteKept::Memo => self
                .0
                .get()
                .map_or(RouteSource::Unmatched, RouteSource::Matched),
            RouteKept::Matched(matched) => RouteSource::Matched(matched),
            RouteKept::Template(template) => RouteSource::Template(template),
            RouteKept::Unmatched => RouteSource::Unmatched,
        }
    }
}

/// The matched route in a recorded request's record: short templates copied inline, longer
/// ones shared.
#[derive(Debug)]
pub(crate) enum RouteCapture {
    Inline { len: u8, bytes: [u8; INLINE_ROUTE] },
    Matched(MatchedPath),
    Template(RouteTemplate),
    Unmatched,
}

impl RouteCapture {
    pub(crate) fn new(source: RouteSource<'_>) -> Self {
        let text = source.as_str();
        match source {
            RouteSource::Unmatched => RouteCapture::Unmatched,
            _ if text.len() <= INLINE_ROUTE => {
                let mut bytes = [0u8; INLINE_ROUTE];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                RouteCapture::Inline {
                    len: text.len() as u8,
                    bytes,
                }
            }
            RouteSource::Matched(m) => RouteCapture::Matched(m.clone()),
            RouteSource::Template(t) => RouteCapture::Template(t.clone()),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
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

/// Paths up to this long are copied inline into a recorded request's record.
const INLINE_PATH: usize = 64;

/// The path of a recorded request, copied out of the request.
///
/// The request's URI is a slice of the connection's read buffer: a record that kept a reference
/// to it until the writer runs would keep that buffer alive, so the server would allocate a new
/// one for the connection's next request (and free the old one on the writer's side). A copy,
/// inline when short, costs less than that.
#[derive(Debug)]
pub(crate) enum PathText {
    Inline { len: u8, bytes: [u8; INLINE_PATH] },
    Heap(Box<str>),
}

impl PathText {
    pub(crate) fn new(path: &str) -> Self {
        if path.len() <= INLINE_PATH {
            let mut bytes = [0u8; INLINE_PATH];
            bytes[..path.len()].copy_from_slice(path.as_bytes());
            PathText::Inline {
                len: path.len() as u8,
                bytes,
            }
        } else {
            PathText::Heap(path.into())
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            PathText::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or("/")
            }
            PathText::Heap(text) => text,
        }
    }
}

/// The longest request id recorded; longer ones (client-chosen) are cut.
const MAX_REQUEST_ID: usize = 64;

/// The length of a hyphenated UUID, the usual request id.
const UUID_LEN: usize = 36;

/// A request id copied inline: cloning the header value would allocate for generated ids.
#[derive(Debug)]
pub(crate) struct RequestIdText {
    len: u8,
    bytes: [u8; MAX_REQUEST_ID],
}

impl RequestIdText {
    pub(crate) fn new(value: &HeaderValue) -> Self {
        let mut text = Self {
            len: 0,
            bytes: [0; MAX_REQUEST_ID],
        };
        let value = value.as_bytes();
        let len = value.len().min(MAX_REQUEST_ID);
        match <&[u8; UUID_LEN]>::try_from(value) {
            // The usual id, a hyphenated UUID: a copy of known length, without a call.
            Ok(uuid) => text.bytes[..UUID_LEN].copy_from_slice(uuid),
            Err(_) => text.bytes[..len].copy_from_slice(&value[..len]),
        }
        text.len = len as u8;
        text
    }

    /// The id, when it is visible ASCII (checked only for requests that are recorded).
    pub(crate) fn as_str(&self) -> Option<&str> {
        let bytes = &self.bytes[..usize::from(self.len)];
        if bytes.iter().fold(true, |ok, b| ok & b.is_ascii_graphic()) {
            std::str::from_utf8(bytes).ok()
        } else {
            None
        }
    }
}

/// The method as recorded: static text for the standard methods.
pub(crate) fn method_text(method: &Method) -> Cow<'static, str> {
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
