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

/// The route of the first request a service saw. Axum gives each route its own copy of a
/// layer's service, and every request of a route the same shared `MatchedPath`, so the service
/// compares a request's route with this one (by address, then by text) instead of copying it.
#[derive(Debug, Default)]
pub(crate) struct RouteMemo(OnceLock<MemoRoute>);

#[derive(Debug)]
enum MemoRoute {
    Matched(MatchedPath),
    Template(RouteTemplate),
}

impl MemoRoute {
    fn source(&self) -> RouteSource<'_> {
        match self {
            MemoRoute::Matched(matched) => RouteSource::Matched(matched),
            MemoRoute::Template(template) => RouteSource::Template(template),
        }
    }
}

impl RouteMemo {
    /// What a request whose route is `source` keeps.
    #[inline]
    pub(crate) fn keep(&self, source: RouteSource<'_>) -> RouteKept {
        match source {
            RouteSource::Matched(matched) => {
                if self.remembers(matched.as_str(), || MemoRoute::Matched(matched.clone())) {
                    RouteKept::Memo
                } else {
                    RouteKept::Matched(matched.clone())
                }
            }
            RouteSource::Template(template) => {
                if self.remembers(&template.0, || MemoRoute::Template(template.clone())) {
                    RouteKept::Memo
                } else {
                    RouteKept::Template(template.clone())
                }
            }
            RouteSource::Unmatched => RouteKept::Unmatched,
        }
    }

    /// Whether the memo holds `text`; the first route seen is remembered.
    #[inline]
    fn remembers(&self, text: &str, remember: impl FnOnce() -> MemoRoute) -> bool {
        let remembered = self.0.get_or_init(remember).source().as_str();
        std::ptr::eq(remembered, text) || remembered == text
    }

    /// The route `kept` stands for.
    pub(crate) fn source<'a>(&'a self, kept: &'a RouteKept) -> RouteSource<'a> {
        match kept {
            RouteKept::Memo => self
                .0
                .get()
                .map_or(RouteSource::Unmatched, MemoRoute::source),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_memo_keeps_its_first_route_and_copies_no_other() {
        let memo = RouteMemo::default();
        let first = RouteTemplate(Arc::from("/items/{id}"));
        let same_text = RouteTemplate(Arc::from("/items/{id}"));
        let other = RouteTemplate(Arc::from("/users/{id}"));
        for template in [&first, &same_text, &first] {
            let kept = memo.keep(RouteSource::Template(template));
            assert!(matches!(kept, RouteKept::Memo));
            assert_eq!(memo.source(&kept).as_str(), "/items/{id}");
        }
        let kept = memo.keep(RouteSource::Template(&other));
        assert!(matches!(kept, RouteKept::Template(_)));
        assert_eq!(memo.source(&kept).as_str(), "/users/{id}");
        let kept = memo.keep(RouteSource::Unmatched);
        assert_eq!(memo.source(&kept).as_str(), UNMATCHED_ROUTE);
    }

    #[test]
    fn paths_and_request_ids_are_copied_whole_or_cut() {
        for path in ["/", "/items/7", &"/x".repeat(32), &"/y".repeat(33)] {
            assert_eq!(PathText::new(path).as_str(), path);
        }
        let uuid = HeaderValue::from_static("0b9c3d64-1f0e-4a8e-9a57-2f0d1c3b4a5e");
        assert_eq!(
            RequestIdText::new(&uuid).as_str(),
            Some("0b9c3d64-1f0e-4a8e-9a57-2f0d1c3b4a5e")
        );
        let long = "r".repeat(100);
        let long = HeaderValue::from_str(&long).unwrap();
        assert_eq!(
            RequestIdText::new(&long).as_str(),
            Some(&"r".repeat(64)[..])
        );
        let short = HeaderValue::from_static("abc");
        assert_eq!(RequestIdText::new(&short).as_str(), Some("abc"));
    }
}
