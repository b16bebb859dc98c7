//! Rate-limit keys and how a request is mapped to one.
//!
//! ```
//! use std::net::IpAddr;
//! use streamgate_ratelimit::RateLimitKey;
//!
//! // IPv6 clients are keyed by their /64 by default: one subscriber, one bucket.
//! let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
//! let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
//! assert_eq!(RateLimitKey::from_ip(a, 64), RateLimitKey::from_ip(b, 64));
//! assert_ne!(RateLimitKey::from_ip(a, 128), RateLimitKey::from_ip(b, 128));
//!
//! // User ids and API keys are hashed: the raw value is never stored.
//! let key = RateLimitKey::user("user-42");
//! assert!(!format!("{key:?}").contains("user-42"));
//! ```
//!
//! A key is 16 bytes and `Copy`: building one never allocates. Addresses are stored as they
//! are; strings (user ids, API keys, custom values) as 104 bits of their SHA3-256 digest, the
//! same in every process, so replicas sharing a store agree on keys.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    sync::Arc,
};

use http::{Extensions, HeaderMap, HeaderName, Method, Uri};
use sha3::{Digest, Sha3_256};
use streamgate_core::{ClientIp, SecurityContext, peer_addr};

const KIND_SHIFT: u32 = 56;
const DATA_MASK: u64 = (1 << 40) - 1;

const KIND_IPV4: u64 = 1;
const KIND_IPV6: u64 = 2;
const KIND_HASHED: u64 = 3;
const KIND_GLOBAL: u64 = 4;
const KIND_UNKNOWN_CLIENT: u64 = 5;

/// Where a rate-limit bucket belongs: a client address, a hashed id, or everyone.
///
/// 16 bytes, `Copy`, never holding a raw user id or credential. `Debug` and `Display` show the
/// kind and a hex form, safe to log.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimitKey {
    hi: u64,
    lo: u64,
}

impl RateLimitKey {
    /// The key of an IP address; IPv6 addresses are cut to their first `v6_prefix` bits
    /// (64 keys a subscriber's /64 as one client). IPv4-mapped IPv6 addresses count as IPv4.
    #[must_use]
    pub fn from_ip(ip: IpAddr, v6_prefix: u8) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self {
                hi: KIND_IPV4 << KIND_SHIFT,
                lo: u64::from(u32::from(v4)),
            },
            IpAddr::V6(v6) => Self::from_ipv6(v6, v6_prefix.min(128)),
        }
    }

    fn from_ipv6(ip: Ipv6Addr, prefix: u8) -> Self {
        let bits = u128::from(ip);
        let masked = if prefix == 0 {
            0
        } else {
            bits & (u128::MAX << (128 - u32::from(prefix)))
        };
        if prefix <= 64 {
            Self {
                hi: (KIND_IPV6 << KIND_SHIFT) | u64::from(prefix),
                lo: (masked >> 64) as u64,
            }
        } else {
            let mut bytes = [0u8; 17];
            bytes[..16].copy_from_slice(&masked.to_be_bytes());
            bytes[16] = prefix;
            Self::hashed(b"ipv6", &bytes)
        }
    }

    /// The key of an authenticated user (from `SecurityContext::user_id`), hashed.
    #[must_use]
    pub fn user(user_id: &str) -> Self {
        Self::hashed(b"user", user_id.as_bytes())
    }

    /// The key of an API key or other credential, hashed.
    #[must_use]
    pub fn api_key(credential: &[u8]) -> Self {
        Self::hashed(b"api-key", credential)
    }

    /// The key of any other value (a tenant id, a wallet address), hashed.
    #[must_use]
    pub fn from_bytes(value: &[u8]) -> Self {
        Self::hashed(b"custom", value)
    }

    /// The one key every request shares (a global limit).
    #[must_use]
    pub fn global() -> Self {
        Self {
            hi: KIND_GLOBAL << KIND_SHIFT,
            lo: 0,
        }
    }

    /// The shared key of requests whose client address is unknown (no `ClientIp`, no peer
    /// address). Sharing one bucket keeps them limited.
    #[must_use]
    pub fn unknown_client() -> Self {
        Self {
            hi: KIND_UNKNOWN_CLIENT << KIND_SHIFT,
            lo: 0,
        }
    }

    fn hashed(namespace: &[u8], value: &[u8]) -> Self {
        let mut hasher = Sha3_256::new();
        hasher.update(namespace);
        hasher.update([0u8]);
        hasher.update(value);
        let digest = hasher.finalize();
        let mut hi = [0u8; 8];
        let mut lo = [0u8; 8];
        hi.copy_from_slice(&digest[..8]);
        lo.copy_from_slice(&digest[8..16]);
        Self {
            hi: (KIND_HASHED << KIND_SHIFT) | (u64::from_be_bytes(hi) & DATA_MASK),
            lo: u64::from_be_bytes(lo),
        }
    }

    /// The key as two words; the top 8 bits of the first name the kind, bits 40..56 are zero
    /// (the in-memory store puts the policy there).
    #[must_use]
    pub fn to_words(self) -> [u64; 2] {
        [self.hi, self.lo]
    }

    fn kind_name(self) -> &'static str {
        match self.hi >> KIND_SHIFT {
            KIND_IPV4 => "ipv4",
            KIND_IPV6 => "ipv6",
            KIND_HASHED => "hashed",
            KIND_GLOBAL => "global",
            KIND_UNKNOWN_CLIENT => "unknown-client",
            _ => "other",
        }
    }
}

impl fmt::Display for RateLimitKey {
    /// `kind:hex`, for store key names and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{:010x}{:016x}",
            self.kind_name(),
            self.hi & DATA_MASK,
            self.lo
        )
    }
}

impl fmt::Debug for RateLimitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RateLimitKey({self})")
    }
}

/// The parts of a request a key is taken from (for [`KeyExtractor::custom`]).
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) extensions: &'a Extensions,
}

impl<'a> RequestInfo<'a> {
    /// A view of a request's head.
    #[must_use]
    pub fn new(
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        extensions: &'a Extensions,
    ) -> Self {
        Self {
            method,
            uri,
            headers,
            extensions,
        }
    }

    /// A view of `request`'s head.
    #[must_use]
    pub fn of<B>(request: &'a http::Request<B>) -> Self {
        Self::new(
            request.method(),
            request.uri(),
            request.headers(),
            request.extensions(),
        )
    }

    /// The request method.
    #[must_use]
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request URI.
    #[must_use]
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The request headers.
    #[must_use]
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// The request extensions (`ClientIp`, `SecurityContext`, ...).
    #[must_use]
    pub fn extensions(&self) -> &'a Extensions {
        self.extensions
    }

    /// The client's IP address: core's `ClientIp` when a `ClientIpLayer` ran, else the peer
    /// address of the connection.
    #[must_use]
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.extensions
            .get::<ClientIp>()
            .map(|ip| ip.0)
            .or_else(|| peer_addr(self.extensions).map(|peer| peer.ip()))
    }
}

type CustomFn = dyn Fn(&RequestInfo<'_>) -> Option<RateLimitKey> + Send + Sync;

/// How a policy picks the key of a request.
///
/// Client addresses come from core's `ClientIp` (put there by `ClientIpLayer`, which applies
/// the trusted proxies), else from the connection's peer address. A request with neither shares
/// [`RateLimitKey::unknown_client`].
#[derive(Clone)]
pub struct KeyExtractor {
    kind: ExtractorKind,
    v6_prefix: u8,
}

#[derive(Clone)]
enum ExtractorKind {
    Ip,
    UserOrIp,
    ApiKey(HeaderName),
    Global,
    Custom(Arc<CustomFn>),
}

impl fmt::Debug for KeyExtractor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            ExtractorKind::Ip => "ip".to_owned(),
            ExtractorKind::UserOrIp => "user-or-ip".to_owned(),
            ExtractorKind::ApiKey(header) => format!("api-key({header})"),
            ExtractorKind::Global => "global".to_owned(),
            ExtractorKind::Custom(_) => "custom".to_owned(),
        };
        f.debug_struct("KeyExtractor")
            .field("kind", &kind)
            .field("v6_prefix", &self.v6_prefix)
            .finish()
    }
}

impl Default for KeyExtractor {
    /// [`KeyExtractor::ip`].
    fn default() -> Self {
        Self::ip()
    }
}

impl KeyExtractor {
    const DEFAULT_V6_PREFIX: u8 = 64;

    fn with_kind(kind: ExtractorKind) -> Self {
        Self {
            kind,
            v6_prefix: Self::DEFAULT_V6_PREFIX,
        }
    }

    /// The client IP address (IPv6 cut to its /64).
    #[must_use]
    pub fn ip() -> Self {
        Self::with_kind(ExtractorKind::Ip)
    }

    /// The user id of the `SecurityContext` in the request extensions, else the client IP. Place
    /// the layer inside the security layer for this.
    #[must_use]
    pub fn user_or_ip() -> Self {
        Self::with_kind(ExtractorKind::UserOrIp)
    }

    /// The value of an API-key header, hashed; else the client IP.
    ///
    /// # Security
    ///
    /// The header is keyed as the client sent it, before (or without) any check that the key
    /// is valid. A client that sends a different made-up value on every request gets a fresh
    /// bucket every time and is never limited; each such value also takes a slot in the store's
    /// key table, so a flood of them fills it and sends new clients to the shared overflow
    /// bucket. Do not use this extractor as the only limit on a client. Either:
    ///
    /// - key by the authenticated principal instead: place the layer inside the security layer
    ///   (which checks API keys with `streamgate_security::ApiKeys` and puts the key's
    ///   `SecurityContext` in the request) and use [`KeyExtractor::user_or_ip`] (`key: user` in
    ///   the configuration); only keys the server issued then get a bucket of their own, and an
    ///   unknown key is refused by the security layer; or
    /// - also apply a [`KeyExtractor::ip`] policy (in the same layer or an outer one), so that
    ///   rotating the header does not escape the per-address limit.
    #[must_use]
    pub fn api_key(header: HeaderName) -> Self {
        Self::with_kind(ExtractorKind::ApiKey(header))
    }

    /// One key for every request.
    #[must_use]
    pub fn global() -> Self {
        Self::with_kind(ExtractorKind::Global)
    }

    /// A key of your own; `None` exempts the request from the policy.
    #[must_use]
    pub fn custom<F>(f: F) -> Self
    where
        F: Fn(&RequestInfo<'_>) -> Option<RateLimitKey> + Send + Sync + 'static,
    {
        Self::with_kind(ExtractorKind::Custom(Arc::new(f)))
    }

    /// How many leading bits of an IPv6 address make the key (default 64; 128 keys each address).
    ///
    /// # Panics
    /// When `bits` is more than 128.
    #[must_use]
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        assert!(bits <= 128, "an IPv6 prefix has at most 128 bits");
        self.v6_prefix = bits;
        self
    }

    /// The key of a request, or `None` when the policy does not apply to it.
    #[must_use]
    pub fn extract(&self, request: &RequestInfo<'_>) -> Option<RateLimitKey> {
        match &self.kind {
            ExtractorKind::Ip => Some(self.ip_key(request)),
            ExtractorKind::UserOrIp => {
                Some(request.extensions.get::<SecurityContext>().map_or_else(
                    || self.ip_key(request),
                    |context| RateLimitKey::user(context.user_id()),
                ))
            }
            ExtractorKind::ApiKey(header) => Some(request.headers.get(header).map_or_else(
                || self.ip_key(request),
                |value| RateLimitKey::api_key(value.as_bytes()),
            )),
            ExtractorKind::Global => Some(RateLimitKey::global()),
            ExtractorKind::Custom(f) => f(request),
        }
    }

    fn ip_key(&self, request: &RequestInfo<'_>) -> RateLimitKey {
        request
            .client_ip()
            .map_or_else(RateLimitKey::unknown_client, |ip| {
                RateLimitKey::from_ip(ip, self.v6_prefix)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, SocketAddr};

    fn info_with(extensions: &Extensions, headers: &HeaderMap) -> Option<RateLimitKey> {
        let method = Method::GET;
        let uri = Uri::from_static("/");
        KeyExtractor::user_or_ip().extract(&RequestInfo::new(&method, &uri, headers, extensions))
    }

    #[test]
    fn user_key_beats_ip_and_ip_is_the_fallback() {
        let mut extensions = Extensions::new();
        extensions.insert(ClientIp("198.51.100.4".parse().unwrap()));
        let headers = HeaderMap::new();
        assert_eq!(
            info_with(&extensions, &headers),
            Some(RateLimitKey::from_ip("198.51.100.4".parse().unwrap(), 64))
        );
        extensions.insert(SecurityContext::builder("alice").build());
        assert_eq!(
            info_with(&extensions, &headers),
            Some(RateLimitKey::user("alice"))
        );
    }

    #[test]
    fn peer_address_when_no_client_ip() {
        let mut extensions = Extensions::new();
        extensions.insert(streamgate_core::PeerAddr(SocketAddr::from((
            [192, 0, 2, 1],
            80,
        ))));
        let method = Method::GET;
        let uri = Uri::from_static("/");
        let headers = HeaderMap::new();
        let info = RequestInfo::new(&method, &uri, &headers, &extensions);
        assert_eq!(
            KeyExtractor::ip().extract(&info),
            Some(RateLimitKey::from_ip(
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                64
            ))
        );
        let empty = Extensions::new();
        let info = RequestInfo::new(&method, &uri, &headers, &empty);
        assert_eq!(
            KeyExtractor::ip().extract(&info),
            Some(RateLimitKey::unknown_client())
        );
    }

    #[test]
    fn api_key_is_hashed_and_distinct_from_users() {
        let key = RateLimitKey::api_key(b"sk_live_secret");
        assert!(!key.to_string().contains("secret"));
        assert_ne!(key, RateLimitKey::user("sk_live_secret"));
        assert_eq!(key, RateLimitKey::api_key(b"sk_live_secret"));
    }

    #[test]
    fn mapped_ipv4_is_ipv4() {
        assert_eq!(
            RateLimitKey::from_ip("::ffff:192.0.2.9".parse().unwrap(), 64),
            RateLimitKey::from_ip("192.0.2.9".parse().unwrap(), 64)
        );
    }

    proptest! {
        #[test]
        fn ipv6_keys_are_equal_exactly_when_prefixes_are(a: u128, b: u128, prefix in 0u8..=128) {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            let ka = RateLimitKey::from_ip(IpAddr::V6(Ipv6Addr::from(a)), prefix);
            let kb = RateLimitKey::from_ip(IpAddr::V6(Ipv6Addr::from(b)), prefix);
            // IPv4-mapped addresses are keyed as IPv4: leave them out.
            prop_assume!(Ipv6Addr::from(a).to_ipv4_mapped().is_none());
            prop_assume!(Ipv6Addr::from(b).to_ipv4_mapped().is_none());
            prop_assert_eq!(ka == kb, a & mask == b & mask);
            prop_assert_eq!(ka.to_words()[0] & (0xFFFF << 40), 0);
        }

        #[test]
        fn distinct_ipv4_addresses_have_distinct_keys(a: u32, b: u32) {
            let ka = RateLimitKey::from_ip(IpAddr::V4(Ipv4Addr::from(a)), 64);
            let kb = RateLimitKey::from_ip(IpAddr::V4(Ipv4Addr::from(b)), 64);
            prop_assert_eq!(ka == kb, a == b);
        }
    }
}
