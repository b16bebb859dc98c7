//! What a cached response is stored under.

use std::{borrow::Cow, sync::Arc};

use http::{HeaderMap, HeaderName, HeaderValue, Request};

/// What a response is stored under: the request target, the caller's scope and the values of
/// the varying headers.
///
/// Made by the layer for each `GET` of a cached route; a [`CacheStore`](crate::CacheStore)
/// reads it to find or file an entry. Two requests have equal keys exactly when one may be
/// answered with the other's response.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    path: Box<str>,
    query: Option<Box<str>>,
    /// The user id a private entry belongs to; `None` for anonymous callers and shared routes.
    scope: Option<Arc<str>>,
    vary: Box<[Option<HeaderValue>]>,
}

impl CacheKey {
    pub(crate) fn new<B>(
        request: &Request<B>,
        scope: Option<Arc<str>>,
        vary: &[HeaderName],
    ) -> Self {
        let uri = request.uri();
        Self {
            path: uri.path().into(),
            query: uri.query().map(Into::into),
            scope,
            vary: vary
                .iter()
                .map(|name| vary_value(request.headers(), name))
                .collect(),
        }
    }

    /// The request's path as sent. Entries are kept by it, since the router picks a route by it
    /// (`/users/%6De` may reach `/users/{id}` where `/users/me` is a route of its own); its
    /// [normal form](normalized_path) is the unit of invalidation
    /// ([`CacheStore::invalidate`](crate::CacheStore::invalidate)).
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The request's query, without the `?`.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The user id of a private entry; `None` for anonymous callers and shared routes.
    #[must_use]
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The request's values of the layer's `vary` headers, in the layer's order (`None` where
    /// the request lacks the header; a header sent on several lines is one value, its lines
    /// joined by `, ` as RFC 9110 reads them).
    #[must_use]
    pub fn vary(&self) -> &[Option<HeaderValue>] {
        &self.vary
    }

    /// Whether the entry belongs to one user.
    #[must_use]
    pub fn is_private(&self) -> bool {
        self.scope.is_some()
    }
}

/// The value of `name` in `headers`, several lines joined by `, `: `Accept: a` and `Accept: b`
/// on two lines mean `Accept: a, b`, and must not share an entry with `Accept: a` alone.
fn vary_value(headers: &HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(first.clone());
    };
    let mut joined = first.as_bytes().to_vec();
    for value in std::iter::once(second).chain(values) {
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(value.as_bytes());
    }
    // Valid values joined by `, ` are a valid value.
    HeaderValue::from_bytes(&joined).ok()
}

/// `path` with the percent-encodings RFC 3986 (section 6.2.2) says mean the same as other text
/// made the same: an encoded unreserved character (`%61`) decoded (`a`), the hex digits of the
/// others in upper case (`%2f` to `%2F`). Invalidation and generations go by it: a write to
/// `/items/a` removes the entry of `/items/%61` too, and a store compares its entries' paths in
/// this form with the path it is given. Borrows when there is nothing to change.
#[must_use]
pub fn normalized_path(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some((hex(*bytes.get(i + 1)?)?, hex(*bytes.get(i + 2)?)?)))
            .flatten();
        match escaped {
            Some((high, low)) => {
                let byte = high << 4 | low;
                if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                    out.push(char::from(byte));
                } else {
                    out.push('%');
                    out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                    out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
                }
                i += 3;
            }
            None => {
                // A path is ASCII (http's `Uri` checks it): each byte is a character.
                out.push(char::from(bytes[i]));
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|value| value as u8)
}

#[cfg(test)]
mod tests {
    use super::normalized_path;

    #[test]
    fn encoded_unreserved_characters_are_decoded_and_other_escapes_upper_cased() {
        for (path, normalized) in [
            ("/items/a", "/items/a"),
            ("/items/%61", "/items/a"),
            ("/items/%41%7e%2D%2e%5F", "/items/A~-._"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%20b", "/a%20b"),
            ("/a%3a", "/a%3A"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/bad%zz/%4", "/bad%zz/%4"),
            ("/end%", "/end%"),
        ] {
            assert_eq!(normalized_path(path), normalized, "{path}");
        }
    }
}
