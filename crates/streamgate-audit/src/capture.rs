//! What the layer copies from a request, cheaply: the matched route and the request id inline
//! (no allocation, no shared reference count touched on every request), and the method's text.

use std::borrow::Cow;

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

/// The matched route: short templates copied inline, longer ones shared.
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

/// The longest request id recorded; longer ones (client-chosen) are cut.
const MAX_REQUEST_ID: usize = 64;

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
        text.bytes[..len].copy_from_slice(&value[..len]);
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
