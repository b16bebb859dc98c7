//! What the StreamGate layers share.
//!
//! - [`Problem`]: RFC 9457 `application/problem+json` error responses, the one error body of
//!   every layer.
//! - [`ClientIp`], [`TrustedProxies`], [`ClientIpLayer`]: the client address, resolved from the
//!   connection and, behind trusted proxies, from the one [`ForwardingHeader`] they write
//!   (`X-Forwarded-For` by default, or RFC 7239 `Forwarded`).
//! - [`SecurityContext`]: the authenticated principal that the security layer leaves for the others.
//! - [`EthAddress`]: Ethereum addresses with EIP-55 checksums.
//! - [`route_label`]: the matched route template or `unmatched`, for labels and policies.
//! - [`request_id_layer`]: `x-request-id` set and propagated.
//! - [`MetricsHandle`]: where a layer registers its own metrics (a given recorder or the global one).
//! - [`AuditReason`]: the short reason a layer leaves on its response for the audit layer.
//! - [`LogLimiter`]: at most one log line per interval for a failure that repeats on every request.
//! - [`store`]: the error and the future of a layer's store (rate-limit buckets, cached responses).
//! - `redis` (feature `redis`): the connection the shared Redis stores use.
//!
//! ```
//! use std::net::SocketAddr;
//! use axum::{Router, routing::get, extract::connect_info::MockConnectInfo, body::Body};
//! use http::Request;
//! use streamgate_core::{ClientIp, ClientIpLayer, TrustedProxies, request_id_layer};
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let app = Router::new()
//!     .route("/ip", get(|ClientIp(ip): ClientIp| async move { ip.to_string() }))
//!     .layer(ClientIpLayer::new(TrustedProxies::parse(["127.0.0.1"]).unwrap()))
//!     .layer(request_id_layer())
//!     .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 5000))));
//! let response = app
//!     .oneshot(Request::get("/ip").header("x-forwarded-for", "203.0.113.7").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```

pub mod audit_reason;
pub mod client_ip;
pub mod eth_address;
pub mod log_limit;
pub mod metrics_handle;
pub mod problem;
#[cfg(feature = "redis")]
pub mod redis;
pub mod request_id;
pub mod route;
pub mod security_context;
pub mod store;

#[doc(inline)]
pub use audit_reason::AuditReason;
#[doc(inline)]
pub use client_ip::{
    ClientIp, ClientIpLayer, ClientIpService, ForwardingHeader, InvalidForwardingHeader,
    InvalidNetwork, MissingPeerAddr, PeerAddr, TrustedProxies, client_ip, peer_addr,
};
#[doc(inline)]
pub use eth_address::{EthAddress, EthAddressError};
#[doc(inline)]
pub use log_limit::LogLimiter;
#[doc(inline)]
pub use metrics_handle::MetricsHandle;
#[doc(inline)]
pub use problem::{PROBLEM_JSON, Problem};
#[doc(inline)]
pub use request_id::{MakeUuidV4, REQUEST_ID_HEADER, RequestIdLayer, request_id, request_id_layer};
#[doc(inline)]
pub use route::{RouteTemplate, UNMATCHED_ROUTE, route_label, route_label_from};
#[doc(inline)]
pub use security_context::{MissingSecurityContext, SecurityContext, SecurityContextBuilder};
