//! Who is calling, and may they: credentials (JWT bearer tokens, API keys, trusted gateway
//! headers) turned into a [`SecurityContext`], and role-based access control on routes.
//!
//! ```
//! use axum::{Router, body::Body, routing::{get, post}};
//! use http::{Request, StatusCode};
//! use jsonwebtoken::{EncodingKey, Header, encode};
//! use streamgate_security::{
//!     Authenticated, Issuer, JwtAuth, JwtKey, Policy, Rbac, Role, SecurityContextLayer,
//! };
//! use tower::ServiceExt;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! const SECRET: &[u8] = b"a-32-byte-or-longer-random-secret";
//!
//! let jwt = JwtAuth::builder()
//!     .issuer(Issuer::new("https://id.example.com").audience("items").key(JwtKey::hmac(SECRET)))
//!     .build()
//!     .unwrap();
//! let rbac = Rbac::builder()
//!     .role(Role::new("viewer").permissions(["items:read"]))
//!     .role(Role::new("editor").inherits("viewer").permissions(["items:write"]))
//!     .build()
//!     .unwrap();
//!
//! let app = Router::new()
//!     .route("/items", post(|| async { "created" }))
//!     .route_layer(rbac.require(Policy::permission("items:write")))
//!     .route("/me", get(|Authenticated(me): Authenticated| async move { me.user_id().to_owned() }))
//!     .layer(SecurityContextLayer::builder().jwt(jwt.clone()).build());
//!
//! let token = encode(
//!     &Header::default(),
//!     &serde_json::json!({
//!         "iss": "https://id.example.com", "aud": "items", "sub": "alice",
//!         "exp": jwt.clock().unix_seconds() + 600, "roles": ["viewer"],
//!     }),
//!     &EncodingKey::from_secret(SECRET),
//! )
//! .unwrap();
//! let call = |method: &str, path: &str, token: Option<&str>| {
//!     let mut request = Request::builder().method(method).uri(path);
//!     if let Some(token) = token {
//!         request = request.header("authorization", format!("Bearer {token}"));
//!     }
//!     app.clone().oneshot(request.body(Body::empty()).unwrap())
//! };
//!
//! assert_eq!(call("GET", "/me", Some(&token)).await.unwrap().status(), StatusCode::OK);
//! assert_eq!(call("GET", "/me", None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
//! // A viewer may read but not write.
//! assert_eq!(call("POST", "/items", Some(&token)).await.unwrap().status(), StatusCode::FORBIDDEN);
//! # }
//! ```
//!
//! # Pieces
//! - [`SecurityContextLayer`]: tries the configured sources in order, inserts the
//!   [`SecurityContext`] into the request extensions and leaves it in the response extensions (an
//!   [`AuthDecision`] instead when refused or anonymous). Refusals are 401 with `WWW-Authenticate: Bearer` (and
//!   `error="invalid_token"` when a credential was given) and a problem+json body that names the
//!   reason, never the credential.
//! - [`JwtAuth`]: issuers with HMAC / RSA / EC / Ed25519 keys or a JWKS ([`JwksSource`]); the
//!   `kid` picks the key and the key fixes the algorithm family; `alg: none` never passes; `exp` /
//!   `nbf` with leeway by the layer's [`Clock`] (tokio time, so tests can move it); `iss` and
//!   `aud` allowlists; [`ClaimMapping`]; a cache of verified tokens; a [`RevocationList`].
//! - [`ApiKeys`] (stored as SHA-256 hashes) and [`GatewayHeaders`] (trusted proxies only).
//! - RBAC: [`Rbac`] (roles, permissions, inheritance), [`Policy`], [`RouteTable`], and the
//!   [`AuthorizeLayer`]s made by [`require_role`], [`require_permission`], [`require_any`],
//!   [`require_all`], [`Rbac::require`] and [`Rbac::route_table`].
//! - [`Authenticated`] / [`MaybeAuthenticated`] extractors and [`testing`] helpers.
//! - `streamgate_auth_decisions_total{source,decision,reason}` counts every decision.
//! - [`config::AuthConfig`]: the same, from the configuration file (serde, unknown keys refused).

mod api_key;
mod clock;
pub mod config;
mod credentials;
mod error;
mod extract;
mod gateway;
pub mod jwt;
mod layer;
mod metrics;
mod rbac;
mod reason;
mod rejection;
mod revocation;
pub mod testing;

#[doc(inline)]
pub use api_key::ApiKeys;
#[doc(inline)]
pub use clock::Clock;
#[doc(inline)]
pub use error::ConfigError;
#[doc(inline)]
pub use extract::{Authenticated, MaybeAuthenticated, Unauthenticated};
#[doc(inline)]
pub use gateway::GatewayHeaders;
/// The JWT library, for [`Algorithm`](jsonwebtoken::Algorithm) and minting test tokens.
pub use jsonwebtoken;
#[doc(inline)]
pub use jwt::{
    ClaimMapping, Issuer, JwksFetch, JwksSource, JwtAuth, JwtAuthBuilder, JwtKey,
    MIN_HMAC_SECRET_BYTES,
};
#[doc(inline)]
pub use layer::{
    ResponseFuture, SecurityContextLayer, SecurityContextLayerBuilder, SecurityContextService,
};
pub use metrics::AUTH_DECISIONS_TOTAL;
#[doc(inline)]
pub use rbac::{
    Authorize, AuthorizeFuture, AuthorizeLayer, Policy, Rbac, RbacBuilder, Role, RouteTable,
    require_all, require_any, require_permission, require_role,
};
#[doc(inline)]
pub use reason::{AuthDecision, AuthReason, AuthSource, Decision};
#[doc(inline)]
pub use revocation::RevocationList;
pub use streamgate_core::SecurityContext;
