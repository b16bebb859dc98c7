//! The client's IP address: the connection's peer, or behind trusted proxies the nearest address
//! that no trusted proxy vouches for.
//!
//! ```
//! use std::net::{IpAddr, SocketAddr};
//! use http::HeaderMap;
//! use streamgate_core::{ClientIp, TrustedProxies};
//!
//! let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
//! let mut headers = HeaderMap::new();
//! // The client forged the first hop; the proxy appended the address it really saw.
//! headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
//!
//! let peer: IpAddr = "10.1.2.3".parse().unwrap();
//! let ip = ClientIp::resolve(&headers, peer, &proxies);
//! assert_eq!(ip.0, "203.0.113.9".parse::<IpAddr>().unwrap());
//!
//! // The same headers straight from an untrusted peer are ignored.
//! let peer: IpAddr = "198.51.100.7".parse().unwrap();
//! assert_eq!(ClientIp::resolve(&headers, peer, &proxies).0, peer);
//! ```
//!
//! [`ClientIpLayer`] resolves the address once per request and stores it in the request
//! extensions, where the rate-limit and audit layers read it. The peer address comes from axum's
//! `ConnectInfo<SocketAddr>` (serve with `into_make_service_with_connect_info`) or from a
//! [`PeerAddr`] extension that any hyper or tower server can insert.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    task::{Context, Poll},
};

use axum::extract::{ConnectInfo, connect_info::MockConnectInfo};
use axum_core::{
    extract::FromRequestParts,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, Request, StatusCode, request::Parts};
use ipnet::{IpNet, Ipv4Net};
use tower_layer::Layer;

use crate::Problem;

/// The connection's peer address, for servers other than axum's `serve` to put in the request
/// extensions. axum's `ConnectInfo<SocketAddr>` is read as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The resolved IP address of the client that sent a request.
///
/// Read it as an extractor in a handler, or from the request extensions in a layer placed inside
/// [`ClientIpLayer`]. IPv4-mapped IPv6 addresses are reported as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// The networks whose connections are trusted to report the client's address, and the one
/// header they report it in ([`ForwardingHeader`], `X-Forwarded-For` unless set otherwise).
///
/// Cheap to clone. The empty list (the default) trusts no one: the peer address is the client.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Arc<[IpNet]>,
    header: ForwardingHeader,
}

/// The header in which trusted proxies report the client's address.
///
/// Only this header is read; the other is ignored, whatever it says. A proxy appends the address
/// it saw to the header it writes and passes every other header through untouched, so reading a
/// header the proxy does not write lets the client choose its own address: nginx
/// (`$proxy_add_x_forwarded_for`) and AWS ALB append to `X-Forwarded-For` and forward a client's
/// `Forwarded` header as it came. Pick [`Forwarded`](Self::Forwarded) only when every trusted
/// proxy appends to `Forwarded`.
///
/// Deserializes from `x-forwarded-for` or `forwarded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ForwardingHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

impl ForwardingHeader {
    /// The header's name as written in configuration: `x-forwarded-for` or `forwarded`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
        }
    }
}

impl fmt::Display for ForwardingHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A forwarding header name that is neither `x-forwarded-for` nor `forwarded`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidForwardingHeader {
    name: String,
}

impl fmt::Display for InvalidForwardingHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a forwarding header (expected `x-forwarded-for` or `forwarded`)",
            self.name
        )
    }
}

impl std::error::Error for InvalidForwardingHeader {}

impl std::str::FromStr for ForwardingHeader {
    type Err = InvalidForwardingHeader;

    /// Parses `x-forwarded-for` or `forwarded`, in any case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("x-forwarded-for") {
            Ok(Self::XForwardedFor)
        } else if name.eq_ignore_ascii_case("forwarded") {
            Ok(Self::Forwarded)
        } else {
            Err(InvalidForwardingHeader {
                name: name.to_owned(),
            })
        }
    }
}

/// A trusted-proxy entry that is neither an IP address nor a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidNetwork {
    entry: String,
}

impl fmt::Display for InvalidNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an IP address or CIDR network (expected e.g. `10.0.0.0/8` or `::1`)",
            self.entry
        )
    }
}

impl std::error::Error for InvalidNetwork {}

impl TrustedProxies {
    /// Trusts no proxy.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts the given networks.
    ///
    /// A network inside `::ffff:0:0/96` (IPv4-mapped IPv6, such as `::ffff:10.0.0.0/104`) is
    /// stored as the IPv4 network it maps (`10.0.0.0/8`), since peers and hops are compared as
    /// IPv4. An IPv6 network that contains the whole mapped range (`::/0`, `::/80`) also
    /// contains every IPv4 address.
    #[must_use]
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            networks: networks.into_iter().map(canonical_network).collect(),
            header: ForwardingHeader::default(),
        }
    }

    /// Reads the client's address from `header` instead of `X-Forwarded-For`; the other
    /// forwarding header is then ignored. See [`ForwardingHeader`] for which to pick.
    #[must_use]
    pub fn with_header(mut self, header: ForwardingHeader) -> Self {
        self.header = header;
        self
    }

    /// The header the client's address is read from.
    #[must_use]
    pub fn header(&self) -> ForwardingHeader {
        self.header
    }

    /// Parses networks written as CIDR (`10.0.0.0/8`, `fd00::/8`) or single addresses.
    ///
    /// # Errors
    /// Returns the first entry that is neither.
    pub fn parse<I, S>(entries: I) -> Result<Self, InvalidNetwork>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut networks = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            let network = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| InvalidNetwork {
                    entry: entry.to_owned(),
                })?;
            networks.push(network);
        }
        Ok(Self::new(networks))
    }

    /// Whether `ip` belongs to a trusted network. An IPv4-mapped IPv6 address is checked as the
    /// IPv4 address it maps.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|net| match (net, ip) {
            // An IPv6 network wider than /96 that holds the mapped range holds every IPv4
            // address; narrower mapped networks were made IPv4 by `canonical_network`.
            (IpNet::V6(v6), IpAddr::V4(v4)) => v6.contains(&v4.to_ipv6_mapped()),
            _ => net.contains(&ip),
        })
    }

    /// Whether no proxy is trusted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

/// The IPv4 network of an IPv6 network inside `::ffff:0:0/96`; any other network as it is.
fn canonical_network(network: IpNet) -> IpNet {
    match network {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.network().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(network, IpNet::V4),
            None => network,
        },
        _ => network,
    }
}

impl ClientIp {
    /// Resolves the client address of a request that arrived from `peer`.
    ///
    /// From an untrusted peer, forwarding headers are ignored and the peer is the client. From a
    /// trusted proxy, the hops of the one header the proxies write ([`TrustedProxies::header`],
    /// `X-Forwarded-For` by default; the other header is never read) are walked from the right,
    /// skipping trusted addresses; the first untrusted hop is the client. A hop
    /// that is not an address (`unknown`, an obfuscated name, garbage) ends the walk at the last
    /// trusted hop; when every hop is trusted, the leftmost is the client. Empty list elements
    /// (`a, , b`, allowed by RFC 9110 §5.6.1) are skipped. The walk reads the header lazily from
    /// the right and looks at no more than 32 hops: after that many trusted hops, the last of
    /// them is the client.
    #[must_use]
    pub fn resolve(headers: &HeaderMap, peer: IpAddr, trusted: &TrustedProxies) -> Self {
        let peer = peer.to_canonical();
        if !trusted.contains(peer) {
            return Self(peer);
        }
        let mut nearest = peer;
        let walk = |hop: Option<IpAddr>| -> Option<IpAddr> {
            match hop {
                Some(ip) if trusted.contains(ip) => {
                    nearest = ip;
                    None
                }
                Some(ip) => Some(ip),
                None => Some(nearest),
            }
        };
        let found = match trusted.header {
            ForwardingHeader::XForwardedFor => {
                x_forwarded_for_hops(headers).take(MAX_HOPS).find_map(walk)
            }
            ForwardingHeader::Forwarded => forwarded_hops(headers).take(MAX_HOPS).find_map(walk),
        };
        Self(found.unwrap_or(nearest))
    }
}

/// The most hops of a forwarding header that [`ClientIp::resolve`] looks at, counted from the
/// right (the nearest proxy first). Real chains have a handful of proxies; the bound keeps a huge
/// header from costing more than a few parsed addresses.
const MAX_HOPS: usize = 32;

/// The non-empty elements of every line of `name`, from the right: the last line's last element
/// first.
fn elements_from_right(
    headers: &HeaderMap,
    name: impl http::header::AsHeaderName,
) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .iter()
        .rev()
        .flat_map(|value| value.as_bytes().rsplit(|byte| *byte == b','))
        // An element that is not text is not an address; the elements beside it (the address a
        // proxy appended to a line a client forged) are still read.
        .map(|element| std::str::from_utf8(element).unwrap_or("\u{0}"))
        .map(str::trim)
        .filter(|element| !element.is_empty())
}

/// The hops of every `X-Forwarded-For` line, from the right; `None` for a hop that is not an
/// address.
fn x_forwarded_for_hops(headers: &HeaderMap) -> impl Iterator<Item = Option<IpAddr>> + '_ {
    elements_from_right(headers, "x-forwarded-for").map(parse_node)
}

/// The `for=` nodes of every RFC 7239 `Forwarded` line, from the right. Elements and pairs are
/// split outside quoted strings only: a client that gets a proxy to copy `host="a, for=6.6.6.6"`
/// into the header does not add a hop.
fn forwarded_hops(headers: &HeaderMap) -> impl Iterator<Item = Option<IpAddr>> + '_ {
    headers
        .get_all(http::header::FORWARDED)
        .iter()
        .rev()
        .flat_map(|value| split_unquoted(value.as_bytes(), b',').into_iter().rev())
        .map(<[u8]>::trim_ascii)
        .filter(|element| !element.is_empty())
        .map(|element| {
            split_unquoted(element, b';')
                .into_iter()
                .filter_map(|pair| {
                    let at = pair.iter().position(|byte| *byte == b'=')?;
                    Some((pair[..at].trim_ascii(), pair[at + 1..].trim_ascii()))
                })
                .find(|(key, _)| key.eq_ignore_ascii_case(b"for"))
                .and_then(|(_, value)| parse_node(&unquote(value)?))
        })
}

/// The pieces of `text` between the `separator`s outside a quoted string (`"..."`, in which `\`
/// escapes the next byte). An unterminated quote runs to the end.
fn split_unquoted(text: &[u8], separator: u8) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &byte) in text.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && byte == b'\\' {
            escaped = true;
        } else if byte == b'"' {
            quoted = !quoted;
        } else if byte == separator && !quoted {
            pieces.push(&text[start..i]);
            start = i + 1;
        }
    }
    pieces.push(&text[start..]);
    pieces
}

/// A parameter value as text: a token as it is, a quoted string without its quotes and escapes;
/// `None` for an unterminated quoted string or bytes that are not text.
fn unquote(value: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    let Some(quoted) = value.strip_prefix(b"\"") else {
        return std::str::from_utf8(value)
            .ok()
            .map(std::borrow::Cow::Borrowed);
    };
    let mut out = Vec::with_capacity(quoted.len());
    let mut bytes = quoted.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'\\' => out.push(*bytes.next()?),
            b'"' => {
                // The closing quote ends the value.
                return bytes
                    .as_slice()
                    .is_empty()
                    .then(|| String::from_utf8(out).ok())
                    .flatten()
                    .map(std::borrow::Cow::Owned);
            }
            _ => out.push(byte),
        }
    }
    None
}

/// Parses `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]` or `[::1]:80`, and RFC 7239's obfuscated
/// ports (`1.2.3.4:_hidden`, `[::1]:_p1`).
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    let host = match node.rsplit_once(':') {
        Some((host, port)) if is_obfuscated_port(port) => host,
        _ => node,
    };
    let ip = match host.strip_prefix('[') {
        Some(bracketed) => bracketed.strip_suffix(']')?.parse::<IpAddr>().ok()?,
        None => host.parse::<std::net::Ipv4Addr>().ok()?.into(),
    };
    Some(ip.to_canonical())
}

/// RFC 7239's `obfport`: `_` followed by letters, digits, `.`, `_` or `-`.
fn is_obfuscated_port(port: &str) -> bool {
    port.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    })
}

/// The peer address of the connection, from axum's `ConnectInfo<SocketAddr>` (or its
/// `MockConnectInfo` in tests) or [`PeerAddr`].
#[must_use]
pub fn peer_addr(extensions: &http::Extensions) -> Option<SocketAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
        .or_else(|| extensions.get::<PeerAddr>().map(|peer| peer.0))
        .or_else(|| {
            extensions
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|mock| mock.0)
        })
}

/// The request was served without a connection address, so no client IP can be known.
///
/// This is a server set-up error: serve with `into_make_service_with_connect_info::<SocketAddr>()`
/// or insert [`PeerAddr`]. It answers 500 with a problem+json body that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingPeerAddr(pub(crate) ());

impl MissingPeerAddr {
    const DETAIL: &'static str = "the server has no connection address for this request; serve with \
         `into_make_service_with_connect_info::<SocketAddr>()` or insert `PeerAddr`";
}

impl fmt::Display for MissingPeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::DETAIL)
    }
}

impl std::error::Error for MissingPeerAddr {}

impl IntoResponse for MissingPeerAddr {
    fn into_response(self) -> Response {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR)
            .with_title("Client address unavailable")
            .with_detail(Self::DETAIL)
            .into_response()
    }
}

/// The client IP of a request: what [`ClientIpLayer`] resolved, or else the peer address;
/// `None` when the server gave no connection address.
#[must_use]
pub fn client_ip(extensions: &http::Extensions) -> Option<ClientIp> {
    if let Some(ip) = extensions.get::<ClientIp>() {
        return Some(*ip);
    }
    peer_addr(extensions).map(|peer| ClientIp(peer.ip().to_canonical()))
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = MissingPeerAddr;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match client_ip(&parts.extensions) {
            Some(ip) => Ok(ip),
            None => {
                tracing::error!("{}", MissingPeerAddr::DETAIL);
                Err(MissingPeerAddr(()))
            }
        }
    }
}

/// Resolves [`ClientIp`] once per request for the layers inside it.
///
/// When the forwarding headers of a trusted proxy name another client, the layer inserts that
/// [`ClientIp`] into the request extensions; otherwise the client is the peer and nothing is
/// inserted (an insert costs an allocation, and most requests need none). Read the result with
/// [`client_ip`], which falls back to the peer address, or with the [`ClientIp`] extractor. A
/// request without a connection address has no client IP: [`client_ip`] returns `None` and the
/// extractor answers with [`MissingPeerAddr`].
#[derive(Debug, Clone, Default)]
pub struct ClientIpLayer {
    trusted: TrustedProxies,
}

impl ClientIpLayer {
    /// A layer that trusts the given proxies.
    #[must_use]
    pub fn new(trusted: TrustedProxies) -> Self {
        Self { trusted }
    }
}

impl<S> Layer<S> for ClientIpLayer {
    type Service = ClientIpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientIpService {
            inner,
            trusted: self.trusted.clone(),
        }
    }
}

/// The service made by [`ClientIpLayer`].
#[derive(Debug, Clone)]
pub struct ClientIpService<S> {
    inner: S,
    trusted: TrustedProxies,
}

impl<S, B> tower_service::Service<Request<B>> for ClientIpService<S>
where
    S: tower_service::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if !self.trusted.is_empty()
            && let Some(peer) = peer_addr(request.extensions())
        {
            let ip = ClientIp::resolve(request.headers(), peer.ip(), &self.trusted);
            if ip.0 != peer.ip().to_canonical() {
                request.extensions_mut().insert(ip);
            }
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse(["10.0.0.0/8", "fd00::/8"]).unwrap()
    }

    #[test]
    fn forged_x_forwarded_for_from_untrusted_peer_is_ignored() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1")]);
        let resolved = ClientIp::resolve(&h, ip("203.0.113.5"), &proxies());
        assert_eq!(resolved.0, ip("203.0.113.5"));
    }

    #[test]
    fn rightmost_untrusted_hop_from_trusted_proxy() {
        // client forged 6.6.6.6; 198.51.100.1 is what the outer proxy (10.0.0.2) saw.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.1, 10.0.0.2")]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &proxies());
        assert_eq!(resolved.0, ip("198.51.100.1"));
    }

    #[test]
    fn a_forged_element_that_is_not_text_spoils_only_itself() {
        // nginx appends the address it saw to the line the client sent, which held a byte
        // that is not visible ASCII: the appended address is still the client.
        for forged in [&b"\xff"[..], b"caf\xc3\xa9", b"1.1.1.1\x80"] {
            let mut line = forged.to_vec();
            line.extend_from_slice(b", 198.51.100.7");
            let mut h = HeaderMap::new();
            h.insert(
                "x-forwarded-for",
                http::HeaderValue::from_bytes(&line).unwrap(),
            );
            let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &proxies());
            assert_eq!(resolved.0, ip("198.51.100.7"), "{line:?}");
        }
        // The same element on the right: the walk stops there, at the nearest proxy.
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            http::HeaderValue::from_bytes(b"198.51.100.7, \xff").unwrap(),
        );
        assert_eq!(
            ClientIp::resolve(&h, ip("10.0.0.1"), &proxies()).0,
            ip("10.0.0.1")
        );
    }

    #[test]
    fn several_x_forwarded_for_lines_are_one_list() {
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &proxies());
        assert_eq!(resolved.0, ip("198.51.100.1"));
    }

    #[test]
    fn all_hops_trusted_gives_the_leftmost() {
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.2")]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &proxies());
        assert_eq!(resolved.0, ip("10.9.9.9"));
    }

    #[test]
    fn trusted_proxy_without_header_is_the_client() {
        let resolved = ClientIp::resolve(&HeaderMap::new(), ip("10.0.0.1"), &proxies());
        assert_eq!(resolved.0, ip("10.0.0.1"));
    }

    #[test]
    fn garbage_hop_stops_at_the_last_trusted_address() {
        let h = headers(&[("x-forwarded-for", "not-an-ip, 10.0.0.2")]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &proxies());
        assert_eq!(resolved.0, ip("10.0.0.2"));
    }

    fn forwarded_proxies() -> TrustedProxies {
        proxies().with_header(ForwardingHeader::Forwarded)
    }

    #[test]
    fn forwarded_with_ipv6_and_ports() {
        let h = headers(&[(
            "forwarded",
            r#"for=192.0.2.43:4711, For="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.1, for="[fd00::3]""#,
        )]);
        let resolved = ClientIp::resolve(&h, ip("fd00::1"), &forwarded_proxies());
        assert_eq!(resolved.0, ip("2001:db8:cafe::17"));
    }

    #[test]
    fn separators_inside_quoted_forwarded_values_split_nothing() {
        for (line, client) in [
            (r#"for=203.0.113.7;host="a, for=6.6.6.6""#, "203.0.113.7"),
            (
                r#"for=203.0.113.7;proto=https;host="evil.example,for=6.6.6.6""#,
                "203.0.113.7",
            ),
            (r#"host="x;for=6.6.6.6";for=203.0.113.7"#, "203.0.113.7"),
            (r#"for=203.0.113.7;ext="x,y""#, "203.0.113.7"),
            (r#"for=203.0.113.7;ext="a\"b, for=6.6.6.6""#, "203.0.113.7"),
            // An unterminated quote runs to the end: no hop hides in it.
            (r#"for=203.0.113.7;host="a, for=6.6.6.6"#, "203.0.113.7"),
        ] {
            let h = headers(&[("forwarded", line)]);
            let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &forwarded_proxies());
            assert_eq!(resolved.0, ip(client), "{line}");
        }
        // A `for` value whose quote is not closed is not an address: the walk stops there.
        let h = headers(&[("forwarded", r#"for="203.0.113.7"#)]);
        assert_eq!(
            ClientIp::resolve(&h, ip("10.0.0.1"), &forwarded_proxies()).0,
            ip("10.0.0.1")
        );
    }

    #[test]
    fn obfuscated_forwarded_ports_keep_their_address() {
        for (line, client) in [
            (r#"for="203.0.113.7:_hidden""#, "203.0.113.7"),
            (r#"for="[2001:db8::1]:_p1""#, "2001:db8::1"),
            (r#"for="[2001:db8::1]""#, "2001:db8::1"),
        ] {
            let h = headers(&[("forwarded", line)]);
            let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &forwarded_proxies());
            assert_eq!(resolved.0, ip(client), "{line}");
        }
        // An obfuscated node (not a port) still stops the walk.
        let h = headers(&[("forwarded", "for=_hidden, for=10.0.0.7")]);
        assert_eq!(
            ClientIp::resolve(&h, ip("10.0.0.1"), &forwarded_proxies()).0,
            ip("10.0.0.7")
        );
    }

    #[test]
    fn forged_forwarded_is_ignored_by_default() {
        // An nginx or ALB proxy appended the real client to X-Forwarded-For and passed the
        // client's own `Forwarded` through.
        let h = headers(&[
            ("forwarded", "for=192.0.2.60;proto=http"),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &proxies());
        assert_eq!(resolved.0, ip("198.51.100.1"));
        // Without X-Forwarded-For the proxy is the client; `Forwarded` still is not read.
        let h = headers(&[("forwarded", "for=192.0.2.60")]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &proxies());
        assert_eq!(resolved.0, ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_when_configured_and_x_forwarded_for_ignored() {
        let h = headers(&[
            ("forwarded", "for=192.0.2.60;proto=http"),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &forwarded_proxies());
        assert_eq!(resolved.0, ip("192.0.2.60"));
        let h = headers(&[("x-forwarded-for", "198.51.100.1")]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &forwarded_proxies());
        assert_eq!(resolved.0, ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_unknown_node_stops_the_walk() {
        let h = headers(&[("forwarded", "for=unknown, for=10.0.0.7")]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &forwarded_proxies());
        assert_eq!(resolved.0, ip("10.0.0.7"));
    }

    #[test]
    fn forwarding_header_parses_its_names() {
        assert_eq!(
            "X-Forwarded-For".parse::<ForwardingHeader>(),
            Ok(ForwardingHeader::XForwardedFor)
        );
        assert_eq!(
            "forwarded".parse::<ForwardingHeader>(),
            Ok(ForwardingHeader::Forwarded)
        );
        let err = "x-real-ip".parse::<ForwardingHeader>().unwrap_err();
        assert!(err.to_string().contains("`x-real-ip`"), "{err}");
    }

    #[test]
    fn ipv4_mapped_peer_is_reported_as_ipv4() {
        let resolved = ClientIp::resolve(&HeaderMap::new(), ip("::ffff:203.0.113.5"), &proxies());
        assert_eq!(resolved.0, ip("203.0.113.5"));
    }

    #[test]
    fn ipv4_mapped_trusted_networks_match_ipv4_and_mapped_peers() {
        let h = headers(&[("x-forwarded-for", "198.51.100.1")]);
        for entry in ["::ffff:10.0.0.0/104", "::ffff:10.0.0.1"] {
            let trusted = TrustedProxies::parse([entry]).unwrap();
            for peer in ["::ffff:10.0.0.1", "10.0.0.1"] {
                let resolved = ClientIp::resolve(&h, ip(peer), &trusted);
                assert_eq!(resolved.0, ip("198.51.100.1"), "{entry} with peer {peer}");
            }
        }
        let trusted = TrustedProxies::parse(["::ffff:10.0.0.0/104"]).unwrap();
        assert!(!trusted.contains(ip("11.0.0.1")));
        assert!(trusted.contains(ip("::ffff:10.200.0.1")));
    }

    #[test]
    fn ipv6_networks_holding_the_mapped_range_contain_ipv4() {
        let trusted = TrustedProxies::parse(["::/0"]).unwrap();
        assert!(trusted.contains(ip("203.0.113.5")));
        assert!(trusted.contains(ip("2001:db8::1")));
        let trusted = TrustedProxies::parse(["fd00::/8"]).unwrap();
        assert!(!trusted.contains(ip("203.0.113.5")));
        // An IPv4 network contains the mapped form of its addresses.
        let trusted = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        assert!(trusted.contains(ip("::ffff:10.1.2.3")));
    }

    #[test]
    fn empty_x_forwarded_for_elements_are_skipped() {
        let h = headers(&[("x-forwarded-for", "198.51.100.1, , 10.0.0.2,")]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &proxies());
        assert_eq!(resolved.0, ip("198.51.100.1"));
        let h = headers(&[("x-forwarded-for", "198.51.100.1"), ("x-forwarded-for", "")]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &proxies());
        assert_eq!(resolved.0, ip("198.51.100.1"));
        let h = headers(&[("forwarded", "for=192.0.2.60,, for=10.0.0.7")]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &forwarded_proxies());
        assert_eq!(resolved.0, ip("192.0.2.60"));
    }

    #[test]
    fn at_most_max_hops_are_examined() {
        // A long chain of trusted hops: the walk stops after MAX_HOPS of them.
        let hops: Vec<String> = (0..10_000)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        let value = format!("198.51.100.1, {}", hops.join(", "));
        let h = headers(&[("x-forwarded-for", &value)]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &proxies());
        assert_eq!(resolved.0, ip(&hops[hops.len() - MAX_HOPS]));
        // A short chain still reaches the client.
        let value = format!("198.51.100.1, {}", hops[..MAX_HOPS - 1].join(", "));
        let h = headers(&[("x-forwarded-for", &value)]);
        let resolved = ClientIp::resolve(&h, ip("10.0.0.1"), &proxies());
        assert_eq!(resolved.0, ip("198.51.100.1"));
    }

    #[test]
    fn invalid_network_is_named() {
        let err = TrustedProxies::parse(["10.0.0.0/8", "ten"]).unwrap_err();
        assert!(err.to_string().contains("`ten`"), "{err}");
    }

    #[tokio::test]
    async fn extractor_without_connection_address_is_a_clear_error() {
        let (mut parts, ()) = Request::new(()).into_parts();
        let rejection = ClientIp::from_request_parts(&mut parts, &())
            .await
            .unwrap_err();
        let response = rejection.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()["content-type"],
            crate::problem::PROBLEM_JSON
        );
    }

    async fn seen_through_layer(peer: &str, forwarded: Option<&str>) -> Option<ClientIp> {
        use tower::{ServiceBuilder, ServiceExt};
        let service = ServiceBuilder::new()
            .layer(ClientIpLayer::new(proxies()))
            .service_fn(|request: Request<()>| async move {
                Ok::<_, Infallible>(client_ip(request.extensions()))
            });
        let mut request = Request::new(());
        if let Some(forwarded) = forwarded {
            request
                .headers_mut()
                .insert("x-forwarded-for", forwarded.parse().unwrap());
        }
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip(peer), 4000)));
        service.oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn layer_resolves_forwarded_client_of_trusted_proxy() {
        let seen = seen_through_layer("10.0.0.1", Some("198.51.100.1")).await;
        assert_eq!(seen, Some(ClientIp(ip("198.51.100.1"))));
    }

    #[tokio::test]
    async fn layer_ignores_forwarded_header_of_untrusted_peer() {
        let seen = seen_through_layer("203.0.113.4", Some("198.51.100.1")).await;
        assert_eq!(seen, Some(ClientIp(ip("203.0.113.4"))));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_header_value() -> impl Strategy<Value = String> {
            // Printable ASCII, as header values are; commas, brackets, quotes and colons included.
            "[ -~]{0,80}"
        }

        proptest! {
            #[test]
            fn untrusted_peer_is_always_the_client(
                xff in any_header_value(),
                forwarded in any_header_value(),
                octets in any::<[u8; 4]>(),
            ) {
                prop_assume!(octets[0] != 10);
                let peer = IpAddr::from(octets);
                let h = headers(&[("x-forwarded-for", &xff), ("forwarded", &forwarded)]);
                prop_assert_eq!(ClientIp::resolve(&h, peer, &proxies()).0, peer);
            }

            #[test]
            fn trusted_peer_never_panics_and_answers_an_address_it_was_given(
                hops in proptest::collection::vec(any::<[u8; 4]>(), 0..6),
                junk in any_header_value(),
            ) {
                let list: Vec<String> = hops.iter().map(|o| IpAddr::from(*o).to_string()).collect();
                let value = format!("{junk},{}", list.join(","));
                let h = headers(&[("x-forwarded-for", &value)]);
                let peer = ip("10.0.0.1");
                let resolved = ClientIp::resolve(&h, peer, &proxies()).0;
                let given: Vec<IpAddr> = hops.iter().map(|o| IpAddr::from(*o)).collect();
                prop_assert!(resolved == peer || given.contains(&resolved) || junk.contains(&resolved.to_string()));
            }
        }
    }
}
