//! What never reaches a sink: a header allowlist, and a denylist of key names applied inside
//! request-body excerpts (JSON and form bodies, even when cut off), metadata, and the path
//! parameters of a route (`/auth/reset/{token}` is recorded as `/auth/reset/[REDACTED]`).
//!
//! ```
//! use serde_json::json;
//! use streamgate_audit::Redaction;
//!
//! let redaction = Redaction::default();
//! let mut metadata = json!({"user": "ann", "password": "hunter2", "nested": {"api_key": "k"}});
//! redaction.redact_value(&mut metadata);
//! assert_eq!(metadata, json!({"user": "ann", "password": "[REDACTED]", "nested": {"api_key": "[REDACTED]"}}));
//! ```

use std::sync::Arc;

use http::{HeaderMap, HeaderName, header};
use serde_json::{Map, Value};

/// What redacted values are replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// The default denylist: a key is redacted when its name, lowercased with everything but letters
/// and digits removed, contains one of these.
pub const DEFAULT_DENIED_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "authorization",
    "cookie",
    "apikey",
    "accesskey",
    "privatekey",
    "jwt",
    "credential",
    "sessionid",
    "mnemonic",
    "seedphrase",
    "signature",
];

/// The default header allowlist.
pub const DEFAULT_ALLOWED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "user-agent",
    "accept",
    "accept-language",
    "origin",
];

/// The longest body excerpt kept by default, in bytes.
pub const DEFAULT_EXCERPT_BYTES: usize = 1024;

/// Redaction rules. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Redaction {
    inner: Arc<Rules>,
}

#[derive(Debug, Clone)]
struct Rules {
    allowed_headers: Vec<HeaderName>,
    denied_keys: Vec<String>,
    excerpt_bytes: usize,
}

impl Default for Redaction {
    fn default() -> Self {
        Self {
            inner: Arc::new(Rules {
                allowed_headers: DEFAULT_ALLOWED_HEADERS
                    .iter()
                    .map(|h| HeaderName::from_static(h))
                    .collect(),
                denied_keys: DEFAULT_DENIED_KEYS.iter().map(|k| normalize(k)).collect(),
                excerpt_bytes: DEFAULT_EXCERPT_BYTES,
            }),
        }
    }
}

fn normalize(key: &str) -> String {
    key.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Headers that are never recorded, whatever the allowlist says.
fn always_denied_header(name: &HeaderName) -> bool {
    name == header::AUTHORIZATION
        || name == header::COOKIE
        || name == header::SET_COOKIE
        || name == header::PROXY_AUTHORIZATION
}

impl Redaction {
    /// Also records header `name` at the `request` level (never `Authorization`, `Cookie`,
    /// `Set-Cookie`, `Proxy-Authorization`, nor a name the denylist matches).
    #[must_use]
    pub fn allow_header(mut self, name: HeaderName) -> Self {
        Arc::make_mut(&mut self.inner).allowed_headers.push(name);
        self
    }

    /// Records no header at all.
    #[must_use]
    pub fn no_headers(mut self) -> Self {
        Arc::make_mut(&mut self.inner).allowed_headers.clear();
        self
    }

    /// Also redacts keys whose normalized name contains `word`.
    #[must_use]
    pub fn deny_key(mut self, word: &str) -> Self {
        let word = normalize(word);
        if !word.is_empty() {
            Arc::make_mut(&mut self.inner).denied_keys.push(word);
        }
        self
    }

    /// Keeps at most `bytes` of a request body (default 1024).
    #[must_use]
    pub fn excerpt_bytes(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.inner).excerpt_bytes = bytes;
        self
    }

    /// The excerpt limit in bytes.
    #[must_use]
    pub fn excerpt_limit(&self) -> usize {
        self.inner.excerpt_bytes
    }

    /// Whether a key named `key` is redacted.
    #[must_use]
    pub fn is_denied_key(&self, key: &str) -> bool {
        let mut buf = [0u8; 64];
        let mut len = 0;
        let mut long = None;
        for c in key.bytes().filter(u8::is_ascii_alphanumeric) {
            if len < buf.len() {
                buf[len] = c.to_ascii_lowercase();
                len += 1;
            } else {
                long = Some(normalize(key));
                break;
            }
        }
        let normalized = match &long {
            Some(text) => text.as_bytes(),
            None => &buf[..len],
        };
        self.inner
            .denied_keys
            .iter()
            .any(|word| contains(normalized, word.as_bytes()))
    }

    /// Replaces the value of every denied key, at any depth, with `"[REDACTED]"`.
    pub fn redact_value(&self, value: &mut Value) {
        match value {
            Value::Object(map) => self.redact_map(map),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_value(v)),
            _ => {}
        }
    }

    /// Like [`redact_value`](Self::redact_value), for a map.
    pub fn redact_map(&self, map: &mut Map<String, Value>) {
        for (key, value) in map.iter_mut() {
            if self.is_denied_key(key) {
                *value = Value::String(REDACTED.to_owned());
            } else {
                self.redact_value(value);
            }
        }
    }

    /// The allowlisted headers of a request, values cut to 256 bytes.
    pub(crate) fn headers(&self, headers: &HeaderMap) -> Map<String, Value> {
        let mut out = Map::new();
        for name in &self.inner.allowed_headers {
            if always_denied_header(name) || self.is_denied_key(name.as_str()) {
                continue;
            }
            if let Some(value) = headers.get(name) {
                let bytes = value.as_bytes();
                let text = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).into_owned();
                out.insert(name.as_str().to_owned(), Value::String(text));
            }
        }
        out
    }

    /// A redacted excerpt of a request body of type `content_type`: JSON and form bodies are
    /// kept with denied keys redacted; other types, and a body sent as JSON that is not JSON
    /// (where a key could hide outside quotes), are not kept (`None`).
    pub(crate) fn excerpt(&self, content_type: Option<&str>, bytes: &[u8]) -> Option<String> {
        let essence = content_type?
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let out = if essence == "application/json" || essence.ends_with("+json") {
            self.redact_json_excerpt(bytes)?
        } else if essence == "application/x-www-form-urlencoded" {
            self.redact_form_excerpt(bytes)
        } else {
            return None;
        };
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    fn redact_form_excerpt(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        for (i, pair) in bytes.split(|b| *b == b'&').enumerate() {
            if i > 0 {
                out.push(b'&');
            }
            let key = pair.split(|b| *b == b'=').next().unwrap_or_default();
            let decoded = percent_decode(key);
            if !self.is_denied_key(&decoded) {
                out.extend_from_slice(pair);
            } else if key.len() == pair.len() || !is_plain_key(&decoded) {
                // A field without `=`, or a "key" that is not a name (a JSON body sent as a
                // form): the secret may be in the key itself.
                out.extend_from_slice(REDACTED.as_bytes());
            } else {
                out.extend_from_slice(key);
                out.extend_from_slice(b"=");
                out.extend_from_slice(REDACTED.as_bytes());
            }
        }
        out
    }

    /// Copies a JSON text, possibly cut off anywhere, replacing the value of every denied key;
    /// `None` when the text is not JSON: a bare word where a key belongs (`{password: 1}`) or a
    /// bare token that is neither a number nor `true`, `false` or `null` (`password=1`).
    fn redact_json_excerpt(&self, input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len() + 16);
        let mut stack: Vec<u8> = Vec::new();
        // What JSON allows next; anything else means the text is not JSON.
        let mut expect = Next::Value;
        let mut i = 0;
        while i < input.len() {
            let c = input[i];
            let inside = stack.last().copied();
            match (c, expect) {
                (c, _) if c.is_ascii_whitespace() => {}
                (b'{' | b'[', Next::Value) => {
                    stack.push(c);
                    expect = if c == b'{' { Next::Key } else { Next::Value };
                }
                (b'}', Next::Key | Next::CommaOrEnd) if inside == Some(b'{') => {
                    stack.pop();
                    expect = Next::CommaOrEnd;
                }
                (b']', Next::Value | Next::CommaOrEnd) if inside == Some(b'[') => {
                    stack.pop();
                    expect = Next::CommaOrEnd;
                }
                (b',', Next::CommaOrEnd) if inside.is_some() => {
                    expect = if inside == Some(b'{') {
                        Next::Key
                    } else {
                        Next::Value
                    };
                }
                (b':', Next::Colon) => expect = Next::Value,
                (b'"', Next::Key) => {
                    let end = string_end(input, i);
                    let token = &input[i..end];
                    out.extend_from_slice(token);
                    i = end;
                    expect = Next::Colon;
                    if self.is_denied_key(&decode_json_string(token)) {
                        // Copy up to the colon, then replace the whole value.
                        let mut j = end;
                        while j < input.len() && input[j].is_ascii_whitespace() {
                            j += 1;
                        }
                        match input.get(j) {
                            Some(b':') => out.push(b':'),
                            Some(_) => return None,
                            None => return Some(out),
                        }
                        j += 1;
                        while j < input.len() && input[j].is_ascii_whitespace() {
                            j += 1;
                        }
                        out.push(b'"');
                        out.extend_from_slice(REDACTED.as_bytes());
                        out.push(b'"');
                        i = value_end(input, j);
                        expect = Next::CommaOrEnd;
                    }
                    continue;
                }
                (b'"', Next::Value) => {
                    let end = string_end(input, i);
                    out.extend_from_slice(&input[i..end]);
                    i = end;
                    expect = Next::CommaOrEnd;
                    continue;
                }
                (_, Next::Value) => {
                    let end = bare_token_end(input, i);
                    let token = &input[i..end];
                    if end == i || !is_scalar_prefix(token) {
                        return None;
                    }
                    out.extend_from_slice(token);
                    i = end;
                    expect = Next::CommaOrEnd;
                    continue;
                }
                // A second value after the whole text, a key without quotes, a value where a
                // key, a colon or a comma belongs: not JSON, and a key could hide there.
                _ => return None,
            }
            out.push(c);
            i += 1;
        }
        Some(out)
    }
}

/// The path segments of one route that hold a parameter the denylist names, found once from
/// the route's template (`/auth/reset/{token}`, or `:token` and `*rest` from other routers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathSecrets {
    /// The indices, in the template split at `/`, of segments holding a denied parameter
    /// (ascending).
    segments: Box<[usize]>,
    /// The index of the template's catch-all segment, if it has one: the path's segments from
    /// there on are that one parameter.
    rest: Option<usize>,
    /// How many segments the template has.
    len: usize,
}

impl PathSecrets {
    /// The denied parameters of `template`; `None` when it has none (the usual route).
    pub(crate) fn of(template: &str, redaction: &Redaction) -> Option<Self> {
        let mut segments = Vec::new();
        let mut rest = None;
        let mut len = 0;
        for (i, segment) in template.split('/').enumerate() {
            len = i + 1;
            let mut denied = false;
            for (name, catch_all) in params(segment) {
                if catch_all {
                    rest = Some(i);
                }
                denied |= redaction.is_denied_key(name);
            }
            if denied {
                segments.push(i);
            }
        }
        (!segments.is_empty()).then(|| Self {
            segments: segments.into(),
            rest,
            len,
        })
    }

    /// `path` with every segment holding a denied parameter replaced by [`REDACTED`] (a denied
    /// catch-all by one marker). A path whose segments do not line up with the template's is
    /// cut at its first denied segment (or its last segment, when shorter), to fail closed.
    pub(crate) fn redact(&self, path: &str) -> String {
        let count = path.split('/').count();
        let aligned = match self.rest {
            Some(rest) => count > rest,
            None => count == self.len,
        };
        // From this segment on the path is one marker.
        let cut = if aligned {
            self.rest.filter(|rest| self.segments.contains(rest))
        } else {
            Some(self.segments[0].min(count - 1))
        };
        let mut out = String::with_capacity(path.len());
        for (i, segment) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            if cut == Some(i) {
                out.push_str(REDACTED);
                break;
            }
            if self.segments.contains(&i) {
                out.push_str(REDACTED);
            } else {
                out.push_str(segment);
            }
        }
        out
    }
}

/// The parameters of one template segment, with whether each is a catch-all: `{name}` and
/// `{*name}` (axum; `{{` and `}}` are literal braces), or a whole segment `:name` or `*name`.
fn params(segment: &str) -> impl Iterator<Item = (&str, bool)> {
    let colon_style = segment
        .strip_prefix(':')
        .map(|name| (name, false))
        .or_else(|| segment.strip_prefix('*').map(|name| (name, true)));
    let mut braces = segment;
    let braced = std::iter::from_fn(move || {
        loop {
            let open = braces.find('{')?;
            if braces[open + 1..].starts_with('{') {
                braces = &braces[open + 2..];
                continue;
            }
            let inner = &braces[open + 1..];
            let close = inner.find('}')?;
            braces = &inner[close + 1..];
            let name = &inner[..close];
            return Some(match name.strip_prefix('*') {
                Some(name) => (name, true),
                None => (name, false),
            });
        }
    });
    colon_style.into_iter().chain(braced)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The index just past the string starting at `start` (a `"`), or the end of the input.
fn string_end(input: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < input.len() {
        match input[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    input.len()
}

/// Whether a form field's key looks like a name (`api_key`, `user[password]`), not like text
/// that could hold a value.
fn is_plain_key(key: &str) -> bool {
    key.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']'))
}

/// What a JSON text allows at a point of [`Redaction::redact_json_excerpt`]'s scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// A value (or, just inside `[`, the end of the array).
    Value,
    /// A key (or, just inside `{`, the end of the object).
    Key,
    /// The colon after a key.
    Colon,
    /// A comma or the end of the container; at the top level, nothing more.
    CommaOrEnd,
}

/// The index just past the bare (unquoted) token starting at `start`.
fn bare_token_end(input: &[u8], start: usize) -> usize {
    input[start..]
        .iter()
        .position(|b| b.is_ascii_whitespace() || b"{}[],:\"".contains(b))
        .map_or(input.len(), |n| start + n)
}

/// Whether a bare token is a JSON number or `true`, `false` or `null`, or the start of one
/// where the excerpt was cut.
fn is_scalar_prefix(token: &[u8]) -> bool {
    token
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        || [&b"true"[..], b"false", b"null"]
            .iter()
            .any(|literal| literal.starts_with(token))
}

/// The index just past the JSON value starting at `start`, or the end of the input.
fn value_end(input: &[u8], start: usize) -> usize {
    match input.get(start) {
        None => start,
        Some(b'"') => string_end(input, start),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while i < input.len() {
                match input[i] {
                    b'"' => {
                        i = string_end(input, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            input.len()
        }
        Some(_) => {
            let mut i = start;
            while i < input.len() && !matches!(input[i], b',' | b'}' | b']') {
                i += 1;
            }
            i
        }
    }
}

/// The text of the JSON string token `token` (quotes included, maybe unterminated), with escapes
/// decoded, so that `"pass\u0077ord"` is seen as `password`.
fn decode_json_string(token: &[u8]) -> String {
    let body = token.strip_prefix(b"\"").unwrap_or(token);
    let body = body.strip_suffix(b"\"").unwrap_or(body);
    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' && i + 1 < body.len() {
            match body[i + 1] {
                b'u' if i + 6 <= body.len() => {
                    let hex = std::str::from_utf8(&body[i + 2..i + 6]).unwrap_or("");
                    if let Some(c) = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
                        out.push(c);
                    }
                    i += 6;
                    continue;
                }
                other => out.push(char::from(other)),
            }
            i += 2;
        } else {
            out.push(char::from(body[i]));
            i += 1;
        }
    }
    out
}

fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(input: &str) -> String {
        Redaction::default()
            .excerpt(Some("application/json"), input.as_bytes())
            .unwrap()
    }

    #[test]
    fn denied_keys_are_matched_loosely() {
        let r = Redaction::default();
        for key in [
            "password",
            "Password",
            "new_password",
            "X-Api-Key",
            "access_token",
            "clientSecret",
            "set-cookie",
            "pwd",
            "aws_access_key_id",
            "id_jwt",
        ] {
            assert!(r.is_denied_key(key), "{key}");
        }
        for key in ["email", "name", "author", "id"] {
            assert!(!r.is_denied_key(key), "{key}");
        }
        assert!(r.clone().deny_key("ssn").is_denied_key("user_SSN"));
    }

    #[test]
    fn denied_path_parameters_are_redacted_by_their_template() {
        let r = Redaction::default();
        let redact = |template: &str, path: &str| {
            PathSecrets::of(template, &r).map_or_else(|| path.to_owned(), |s| s.redact(path))
        };
        for template in [
            "/items/{id}",
            "/files/{*path}",
            "/static",
            "/{{token}}/x",
            "/",
        ] {
            assert_eq!(PathSecrets::of(template, &r), None, "{template}");
        }
        assert_eq!(
            redact("/auth/reset/{token}", "/auth/reset/S3CR3T"),
            "/auth/reset/[REDACTED]"
        );
        assert_eq!(
            redact(
                "/users/{id}/keys/{api_key}/rotate",
                "/users/7/keys/S3CR3T/rotate"
            ),
            "/users/7/keys/[REDACTED]/rotate"
        );
        assert_eq!(
            redact("/s/{session_id}.json", "/s/S3CR3T.json"),
            "/s/[REDACTED]"
        );
        assert_eq!(redact("/t/:token/x", "/t/S3CR3T/x"), "/t/[REDACTED]/x");
        assert_eq!(
            redact("/{secret}/files/{*rest}", "/S3CR3T/files/a/b"),
            "/[REDACTED]/files/a/b"
        );
        assert_eq!(
            redact("/share/{*token}", "/share/S3/CR/3T"),
            "/share/[REDACTED]"
        );
        assert_eq!(
            redact("/share/*token", "/share/S3/CR3T"),
            "/share/[REDACTED]"
        );
        // A path that does not line up with its template is cut at the first denied segment.
        assert_eq!(
            redact("/auth/reset/{token}", "/auth/reset/S3CR3T/"),
            "/auth/reset/[REDACTED]"
        );
        assert_eq!(
            redact("/auth/reset/{token}/x", "/auth/S3CR3T"),
            "/auth/[REDACTED]"
        );
        assert_eq!(
            PathSecrets::of("/pin/{pin}", &r.clone().deny_key("pin"))
                .unwrap()
                .redact("/pin/1234"),
            "/pin/[REDACTED]"
        );
    }

    #[test]
    fn complete_json_is_redacted_at_any_depth() {
        let out = json(
            r#"{"email":"a@b.c","password":"hunter2","profile":{"token":{"v":"t0k"},"tags":["x"]},"list":[{"secret":[1,{"a":"s3"}]}]}"#,
        );
        assert_eq!(
            out,
            r#"{"email":"a@b.c","password":"[REDACTED]","profile":{"token":"[REDACTED]","tags":["x"]},"list":[{"secret":"[REDACTED]"}]}"#
        );
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["email"], "a@b.c");
    }

    #[test]
    fn cut_off_json_is_redacted() {
        for input in [
            r#"{"email":"a","password":"hunter"#,
            r#"{"email":"a","password" : "hunter2""#,
            r#"{"password":{"nested":"hunter2"#,
            r#"{"pass\u0077ord":"hunter2"}"#,
            r#"{"a":"x\"password\":\"y","password":"hunter2"}"#,
        ] {
            let out = json(input);
            assert!(!out.contains("hunter"), "{input} -> {out}");
            assert!(out.contains(REDACTED), "{input} -> {out}");
        }
        // A value that merely looks like a key is left alone.
        assert_eq!(json(r#"["password","x"]"#), r#"["password","x"]"#);
    }

    #[test]
    fn form_bodies_are_redacted() {
        let out = Redaction::default()
            .excerpt(
                Some("application/x-www-form-urlencoded"),
                b"user=ann&pass%77ord=hunter2&api_key=k",
            )
            .unwrap();
        assert_eq!(out, "user=ann&pass%77ord=[REDACTED]&api_key=[REDACTED]");
    }

    #[test]
    fn a_json_body_sent_as_a_form_does_not_leak() {
        let form = |body: &str| {
            Redaction::default()
                .excerpt(Some("application/x-www-form-urlencoded"), body.as_bytes())
                .unwrap()
        };
        assert_eq!(
            form(r#"{"user":"ann","password":"hunter2"}"#),
            REDACTED,
            "a field without `=`"
        );
        assert_eq!(
            form(r#"{"password":"hun=ter2"}"#),
            REDACTED,
            "a key with quotes"
        );
        assert_eq!(form("password&x=1"), "[REDACTED]&x=1");
    }

    #[test]
    fn a_body_sent_as_json_that_is_not_json_is_not_kept() {
        let excerpt =
            |body: &str| Redaction::default().excerpt(Some("application/json"), body.as_bytes());
        for body in [
            r#"{user: "ann", password: "hunter2"}"#,
            r#"{"user": "ann", password: "hunter2"}"#,
            "password=hunter2",
            "hunter2",
            r#"{"a": hunter2}"#,
            r#"{"user" "password": "hunter2"}"#,
            r#"{"a": "x" "password": "hunter2"}"#,
            r#"["x" "password", "hunter2"]"#,
            r#"{"a": 1} {"password": "hunter2"}"#,
            r#"{"password" "hunter2"}"#,
            r#"{"a":: "hunter2"}"#,
        ] {
            assert_eq!(excerpt(body), None, "{body}");
        }
        // Numbers, literals and a literal cut off by the excerpt bound are JSON.
        for body in [
            r#"{"a": -1.5e+3, "b": [true, false, null]}"#,
            r#"{"a": 1, "b": tr"#,
            "  [1, 2]  ",
        ] {
            assert_eq!(excerpt(body).as_deref(), Some(body), "{body}");
        }
    }

    #[test]
    fn other_bodies_are_not_kept() {
        assert_eq!(
            Redaction::default().excerpt(Some("text/plain"), b"password=1"),
            None
        );
        assert_eq!(Redaction::default().excerpt(None, b"{}"), None);
    }

    proptest::proptest! {
        /// Whatever the nesting and wherever the body is cut, no piece of a denied key's value
        /// appears in the excerpt.
        #[test]
        fn cut_json_never_leaks_a_denied_value(
            fields in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["password", "name", "api_key", "email", "nested", "token", "list"]),
                    "[FGHIJKLMNOPQSUVWXYZ]{12}",
                    0u8..3,
                ),
                1..8,
            ),
            cut in 0usize..400,
        ) {
            // Denied values are upper case without the letters of `[REDACTED]`; everything else
            // the generator writes is lower case.
            let mut object = serde_json::Map::new();
            let mut secrets = Vec::new();
            for (key, value, shape) in fields {
                let denied = Redaction::default().is_denied_key(key);
                let value = if denied { value } else { value.to_lowercase() };
                if denied {
                    secrets.push(value.clone());
                }
                let value = match shape {
                    0 => serde_json::json!(value),
                    1 => serde_json::json!({"inner": value, "more": [value]}),
                    _ => serde_json::json!([value, {"k": value}]),
                };
                object.insert(key.to_owned(), value);
            }
            let text = serde_json::Value::Object(object).to_string();
            let cut = cut.min(text.len());
            let out = json(&text[..cut]);
            for secret in &secrets {
                for window in secret.as_bytes().windows(4) {
                    let window = std::str::from_utf8(window).unwrap();
                    proptest::prop_assert!(!out.contains(window), "{} leaked from {}", window, &text[..cut]);
                }
            }
        }
    }

    #[test]
    fn credential_headers_are_never_kept() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer abc".parse().unwrap());
        headers.insert("cookie", "sid=1".parse().unwrap());
        headers.insert("x-api-key", "k".parse().unwrap());
        headers.insert("user-agent", "curl".parse().unwrap());
        let r = Redaction::default()
            .allow_header(header::AUTHORIZATION)
            .allow_header(HeaderName::from_static("x-api-key"));
        let kept = r.headers(&headers);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept["user-agent"], "curl");
    }
}
