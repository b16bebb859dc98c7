//! The `security.auth` part of the configuration file, deserialized with serde and turned into the
//! typed builders of this crate. Unknown keys are refused.
//!
//! ```
//! use streamgate_security::config::AuthConfig;
//!
//! let yaml_as_json = serde_json::json!({
//!     "sources": ["jwt", "api_key"],
//!     "jwt": {
//!         "leeway": "30s",
//!         "issuers": [{
//!             "issuer": "https://id.example.com",
//!             "audiences": ["items-api"],
//!             "algorithms": ["HS256"],
//!             "keys": [{"kid": "k1", "hmac_secret": "a-32-byte-or-longer-random-secret"}],
//!             "claims": {"roles": "realm_access.roles"}
//!         }]
//!     },
//!     "api_keys": {
//!         "header": "x-api-key",
//!         "keys": [{
//!             "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
//!             "principal": "billing-job",
//!             "roles": ["billing"]
//!         }]
//!     },
//!     "roles": [
//!         {"name": "viewer", "permissions": ["items:read"]},
//!         {"name": "editor", "inherits": ["viewer"], "permissions": ["items:write"]}
//!     ],
//!     "routes": [
//!         {"route": "/items/{id}", "policy": {"permission": "items:read"}},
//!         {"route": "/items", "method": "POST", "policy": {"any": [{"role": "editor"}, {"role": "admin"}]}}
//!     ],
//!     "deny_unlisted": true
//! });
//! let config: AuthConfig = serde_json::from_value(yaml_as_json).unwrap();
//! let setup = config.build().unwrap();
//! let _layer = setup.layer; // SecurityContextLayer, for Router::layer
//! let _routes = setup.routes.unwrap(); // AuthorizeLayer with the route table, for Router::layer
//! ```

use std::{path::PathBuf, time::Duration};

use http::{HeaderName, Method};
use serde::{Deserialize, Deserializer};
use streamgate_core::{MetricsHandle, SecurityContext, TrustedProxies};

use crate::{
    ApiKeys, AuthorizeLayer, ClaimMapping, ConfigError, GatewayHeaders, Issuer, JwksSource,
    JwtAuth, JwtKey, Policy, Rbac, Role, RouteTable, SecurityContextLayer, jsonwebtoken::Algorithm,
};

/// Authentication and authorization settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The order sources are tried in (default: `jwt`, `api_key`, `gateway`, those configured).
    #[serde(default)]
    pub sources: Vec<SourceName>,
    /// JWT bearer tokens.
    pub jwt: Option<JwtConfig>,
    /// API keys.
    pub api_keys: Option<ApiKeysConfig>,
    /// Trusted gateway headers.
    pub gateway: Option<GatewayConfig>,
    /// Let requests without a credential through without a context.
    #[serde(default)]
    pub allow_anonymous: bool,
    /// The role table.
    #[serde(default)]
    pub roles: Vec<RoleConfig>,
    /// The per-route policy table.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Refuse matched routes the table does not list.
    #[serde(default)]
    pub deny_unlisted: bool,
}

/// A credential source.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceName {
    /// `jwt`
    Jwt,
    /// `api_key`
    ApiKey,
    /// `gateway`
    Gateway,
}

/// JWT settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Trusted issuers.
    pub issuers: Vec<IssuerConfig>,
    /// Clock skew tolerated for `exp` / `nbf` (default `60s`).
    #[serde(default, deserialize_with = "duration")]
    pub leeway: Option<Duration>,
    /// Verified tokens kept (default 10,000).
    pub cache_capacity: Option<u64>,
    /// Also read the token from this cookie (unsafe methods then need a same-origin request).
    pub cookie: Option<String>,
}

/// One issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` value.
    pub issuer: String,
    /// Accepted `aud` values (empty: `aud` is not checked).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Accepted algorithms, e.g. `RS256` (default: each key's family).
    pub algorithms: Option<Vec<Algorithm>>,
    /// Static keys.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// A JWKS.
    pub jwks: Option<JwksConfig>,
    /// Claim paths.
    #[serde(default)]
    pub claims: ClaimsConfig,
}

/// One key: exactly one of the key fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The `kid` tokens name it by.
    pub kid: Option<String>,
    /// An HMAC secret written in the file (prefer `hmac_secret_env`).
    pub hmac_secret: Option<String>,
    /// The environment variable holding an HMAC secret.
    pub hmac_secret_env: Option<String>,
    /// A PEM file with an RSA public key.
    pub rsa_pem_file: Option<PathBuf>,
    /// A PEM file with an EC public key.
    pub ec_pem_file: Option<PathBuf>,
    /// A PEM file with an Ed25519 public key.
    pub ed25519_pem_file: Option<PathBuf>,
    /// Restrict the key to one algorithm.
    pub algorithm: Option<Algorithm>,
}

/// A JWKS source: `url` or `file`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksConfig {
    /// The JWKS URL.
    pub url: Option<String>,
    /// A JWKS file.
    pub file: Option<PathBuf>,
    /// Accept plain `http` to a non-loopback host.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// Shortest time between fetches (default `60s`).
    #[serde(default, deserialize_with = "duration")]
    pub refresh_interval: Option<Duration>,
    /// Time limit of one fetch (default `5s`).
    #[serde(default, deserialize_with = "duration")]
    pub timeout: Option<Duration>,
}

/// Claim paths (dotted).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsConfig {
    /// Default `sub`.
    pub subject: Option<String>,
    /// Default `roles`.
    pub roles: Option<String>,
    /// Default `permissions`.
    pub permissions: Option<String>,
    /// Default `scope`.
    pub scopes: Option<String>,
    /// Default `wallet`.
    pub wallet: Option<String>,
    /// Refuse tokens without a wallet.
    #[serde(default)]
    pub require_wallet: bool,
}

/// API keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeysConfig {
    /// The header (default `x-api-key`).
    pub header: Option<String>,
    /// The keys, by SHA-256.
    pub keys: Vec<ApiKeyConfig>,
}

/// One API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Lowercase hex SHA-256 of the key.
    pub sha256: String,
    /// The principal's id.
    pub principal: String,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Permissions.
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// Trusted gateway headers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Networks (CIDR or addresses) whose connections may set the headers.
    pub trusted_proxies: Vec<String>,
    /// Default `x-user-id`.
    pub user_header: Option<String>,
    /// Default `x-roles`.
    pub roles_header: Option<String>,
    /// Default `x-permissions`.
    pub permissions_header: Option<String>,
    /// Default `x-wallet-address`.
    pub wallet_header: Option<String>,
}

/// One role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// The role's name.
    pub name: String,
    /// Permissions it grants.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Roles it inherits.
    #[serde(default)]
    pub inherits: Vec<String>,
}

/// One row of the route table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The route template, as axum reports it (`/items/{id}`).
    pub route: String,
    /// Only this method (default: every method).
    pub method: Option<String>,
    /// Who may use it.
    pub policy: PolicyConfig,
}

/// A policy: `public`, `authenticated`, `{role: x}`, `{permission: x}`, `{any: [...]}`,
/// `{all: [...]}`. The same shape reads from YAML, JSON or TOML.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum PolicyConfig {
    /// Anyone.
    Public,
    /// Any authenticated principal.
    Authenticated,
    /// A role.
    Role(String),
    /// A permission.
    Permission(String),
    /// At least one of.
    Any(Vec<PolicyConfig>),
    /// Every one of.
    All(Vec<PolicyConfig>),
}

impl<'de> Deserialize<'de> for PolicyConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PolicyVisitor)
    }
}

/// Reads a policy written as a word or as a map with exactly one key.
struct PolicyVisitor;

const POLICY_SHAPES: &str =
    "`public`, `authenticated`, or a map with one key: role, permission, any or all";

impl<'de> serde::de::Visitor<'de> for PolicyVisitor {
    type Value = PolicyConfig;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(POLICY_SHAPES)
    }

    fn visit_str<E: serde::de::Error>(self, word: &str) -> Result<PolicyConfig, E> {
        match word {
            "public" => Ok(PolicyConfig::Public),
            "authenticated" => Ok(PolicyConfig::Authenticated),
            other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
        }
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<PolicyConfig, A::Error> {
        use serde::de::Error;
        let Some(key) = map.next_key::<String>()? else {
            return Err(A::Error::custom(format!(
                "an empty map is not a policy; expected {POLICY_SHAPES}"
            )));
        };
        let policy = match key.as_str() {
            "role" => PolicyConfig::Role(map.next_value()?),
            "permission" => PolicyConfig::Permission(map.next_value()?),
            "any" => PolicyConfig::Any(map.next_value()?),
            "all" => PolicyConfig::All(map.next_value()?),
            other => {
                return Err(A::Error::unknown_field(
                    other,
                    &["role", "permission", "any", "all"],
                ));
            }
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(A::Error::custom(format!(
                "a policy map has exactly one key; `{extra}` is one too many (combine with any / all)"
            )));
        }
        Ok(policy)
    }
}

impl PolicyConfig {
    fn policy(&self) -> Policy {
        match self {
            PolicyConfig::Public => Policy::Public,
            PolicyConfig::Authenticated => Policy::Authenticated,
            PolicyConfig::Role(role) => Policy::role(role.clone()),
            PolicyConfig::Permission(permission) => Policy::permission(permission.clone()),
            PolicyConfig::Any(list) => Policy::any(list.iter().map(Self::policy)),
            PolicyConfig::All(list) => Policy::all(list.iter().map(Self::policy)),
        }
    }
}

/// What [`AuthConfig::build`] makes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AuthSetup {
    /// The authentication layer.
    pub layer: SecurityContextLayer,
    /// The role table (for [`Rbac::require`] on single routes).
    pub rbac: Rbac,
    /// The route-table layer, when routes are configured or unlisted routes are denied.
    pub routes: Option<AuthorizeLayer>,
    /// The JWT verifier (its revocation list, its clock), when JWTs are configured.
    pub jwt: Option<JwtAuth>,
}

impl AuthConfig {
    /// Builds with the global metrics recorder.
    ///
    /// # Errors
    /// The first setting that cannot be used, named.
    pub fn build(&self) -> Result<AuthSetup, ConfigError> {
        self.build_with(MetricsHandle::global())
    }

    /// Builds, recording decisions into `metrics`.
    ///
    /// # Errors
    /// The first setting that cannot be used, named.
    pub fn build_with(&self, metrics: MetricsHandle) -> Result<AuthSetup, ConfigError> {
        let jwt = self.jwt.as_ref().map(JwtConfig::build).transpose()?;
        let api_keys = self
            .api_keys
            .as_ref()
            .map(ApiKeysConfig::build)
            .transpose()?;
        let gateway = self
            .gateway
            .as_ref()
            .map(GatewayConfig::build)
            .transpose()?;
        // Without an explicit order: JWT, then API keys, then gateway headers, those configured.
        let order = if self.sources.is_empty() {
            [
                (SourceName::Jwt, jwt.is_some()),
                (SourceName::ApiKey, api_keys.is_some()),
                (SourceName::Gateway, gateway.is_some()),
            ]
            .into_iter()
            .filter_map(|(source, configured)| configured.then_some(source))
            .collect()
        } else {
            self.sources.clone()
        };
        let mut builder = SecurityContextLayer::builder()
            .allow_anonymous(self.allow_anonymous)
            .metrics(metrics.clone());
        for source in order {
            builder = match source {
                SourceName::Jwt => match (&jwt, self.jwt.as_ref().and_then(|j| j.cookie.clone())) {
                    (Some(jwt), Some(cookie)) => builder.jwt_with_cookie(jwt.clone(), cookie),
                    (Some(jwt), None) => builder.jwt(jwt.clone()),
                    (None, _) => return Err(missing("jwt")),
                },
                SourceName::ApiKey => {
                    builder.api_keys(api_keys.clone().ok_or_else(|| missing("api_keys"))?)
                }
                SourceName::Gateway => {
                    builder.gateway(gateway.clone().ok_or_else(|| missing("gateway"))?)
                }
            };
        }
        let mut roles = Rbac::builder();
        for role in &self.roles {
            let mut built = Role::new(role.name.clone()).permissions(role.permissions.clone());
            for parent in &role.inherits {
                built = built.inherits(parent.clone());
            }
            roles = roles.role(built);
        }
        let rbac = roles.build()?;
        let routes = if self.routes.is_empty() && !self.deny_unlisted {
            None
        } else {
            let mut table = RouteTable::new().deny_unlisted(self.deny_unlisted);
            for row in &self.routes {
                table = match &row.method {
                    Some(method) => {
                        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                            .map_err(|_| {
                                ConfigError::new(format!(
                                    "route `{}`: `{method}` is not an HTTP method",
                                    row.route
                                ))
                            })?;
                        table.route_method(method, row.route.clone(), row.policy.policy())
                    }
                    None => table.route(row.route.clone(), row.policy.policy()),
                };
            }
            Some(rbac.route_table(table).metrics(metrics))
        };
        Ok(AuthSetup {
            layer: builder.build(),
            rbac,
            routes,
            jwt,
        })
    }
}

fn missing(section: &str) -> ConfigError {
    ConfigError::new(format!(
        "`sources` lists `{section}` but the `{section}` section is missing"
    ))
}

impl JwtConfig {
    fn build(&self) -> Result<JwtAuth, ConfigError> {
        let mut builder = JwtAuth::builder();
        if let Some(leeway) = self.leeway {
            builder = builder.leeway(leeway);
        }
        if let Some(capacity) = self.cache_capacity {
            builder = builder.cache_capacity(capacity);
        }
        for issuer in &self.issuers {
            builder = builder.issuer(issuer.build()?);
        }
        builder.build()
    }
}

impl IssuerConfig {
    fn build(&self) -> Result<Issuer, ConfigError> {
        let named = |e: ConfigError| ConfigError::new(format!("issuer `{}`: {e}", self.issuer));
        let mut issuer = Issuer::new(self.issuer.clone());
        for audience in &self.audiences {
            issuer = issuer.audience(audience.clone());
        }
        if let Some(algorithms) = &self.algorithms {
            issuer = issuer.algorithms(algorithms.iter().copied());
        }
        for key in &self.keys {
            issuer = issuer.key(key.build().map_err(named)?);
        }
        if let Some(jwks) = &self.jwks {
            issuer = issuer.jwks(jwks.build().map_err(named)?);
        }
        let claims = &self.claims;
        let mut mapping = ClaimMapping::default().require_wallet(claims.require_wallet);
        if let Some(path) = &claims.subject {
            mapping = mapping.subject(path);
        }
        if let Some(path) = &claims.roles {
            mapping = mapping.roles(path);
        }
        if let Some(path) = &claims.permissions {
            mapping = mapping.permissions(path);
        }
        if let Some(path) = &claims.scopes {
            mapping = mapping.scopes(path);
        }
        if let Some(path) = &claims.wallet {
            mapping = mapping.wallet(path);
        }
        Ok(issuer.claims(mapping))
    }
}

impl KeyConfig {
    fn build(&self) -> Result<JwtKey, ConfigError> {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|e| {
                ConfigError::new(format!("cannot read key file {}: {e}", path.display()))
            })
        };
        let sources = [
            self.hmac_secret.is_some(),
            self.hmac_secret_env.is_some(),
            self.rsa_pem_file.is_some(),
            self.ec_pem_file.is_some(),
            self.ed25519_pem_file.is_some(),
        ];
        if sources.iter().filter(|set| **set).count() != 1 {
            return Err(ConfigError::new(
                "a key needs exactly one of `hmac_secret`, `hmac_secret_env`, `rsa_pem_file`, \
                 `ec_pem_file`, `ed25519_pem_file`",
            ));
        }
        let mut key = if let Some(secret) = &self.hmac_secret {
            JwtKey::hmac(secret)
        } else if let Some(name) = &self.hmac_secret_env {
            let secret = std::env::var(name).map_err(|_| {
                ConfigError::new(format!(
                    "environment variable `{name}` (HMAC secret) is not set"
                ))
            })?;
            JwtKey::hmac(secret)
        } else if let Some(path) = &self.rsa_pem_file {
            JwtKey::rsa_pem(read(path)?)?
        } else if let Some(path) = &self.ec_pem_file {
            JwtKey::ec_pem(read(path)?)?
        } else if let Some(path) = &self.ed25519_pem_file {
            JwtKey::ed25519_pem(read(path)?)?
        } else {
            unreachable!("exactly one key source was checked above")
        };
        if let Some(kid) = &self.kid {
            key = key.with_kid(kid.clone());
        }
        if let Some(algorithm) = self.algorithm {
            key = key.with_algorithm(algorithm);
        }
        Ok(key)
    }
}

impl JwksConfig {
    fn build(&self) -> Result<JwksSource, ConfigError> {
        let mut source = match (&self.url, &self.file) {
            (Some(url), None) => JwksSource::url(url, self.allow_plain_http)?,
            (None, Some(file)) => JwksSource::file(file),
            _ => {
                return Err(ConfigError::new(
                    "a JWKS needs exactly one of `url` and `file`",
                ));
            }
        };
        if let Some(interval) = self.refresh_interval {
            source = source.refresh_interval(interval);
        }
        if let Some(timeout) = self.timeout {
            source = source.timeout(timeout);
        }
        Ok(source)
    }
}

fn header(name: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ConfigError::new(format!("`{name}` is not a header name")))
}

impl ApiKeysConfig {
    fn build(&self) -> Result<ApiKeys, ConfigError> {
        let mut keys = ApiKeys::new(header(self.header.as_deref().unwrap_or("x-api-key"))?);
        for key in &self.keys {
            let principal = SecurityContext::builder(key.principal.clone())
                .roles(key.roles.iter().cloned())
                .permissions(key.permissions.iter().cloned())
                .build();
            keys = keys
                .sha256_hex(&key.sha256, principal)
                .map_err(|e| ConfigError::new(format!("API key of `{}`: {e}", key.principal)))?;
        }
        Ok(keys)
    }
}

impl GatewayConfig {
    fn build(&self) -> Result<GatewayHeaders, ConfigError> {
        let trusted = TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| ConfigError::new(format!("gateway trusted_proxies: {e}")))?;
        let mut gateway = GatewayHeaders::new(trusted);
        if let Some(name) = &self.user_header {
            gateway = gateway.user_header(header(name)?);
        }
        if let Some(name) = &self.roles_header {
            gateway = gateway.roles_header(header(name)?);
        }
        if let Some(name) = &self.permissions_header {
            gateway = gateway.permissions_header(header(name)?);
        }
        if let Some(name) = &self.wallet_header {
            gateway = gateway.wallet_header(header(name)?);
        }
        Ok(gateway)
    }
}

/// `"500ms"`, `"30s"`, `"5m"`, `"1h"`, or a number of seconds.
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    let parse = |text: &str| -> Option<Duration> {
        let text = text.trim();
        let split = text.find(|c: char| !c.is_ascii_digit())?;
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().ok()?;
        match unit.trim() {
            "ms" => Some(Duration::from_millis(number)),
            "s" => Some(Duration::from_secs(number)),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            _ => None,
        }
    };
    match Option::<Raw>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Raw::Seconds(seconds)) => Ok(Some(Duration::from_secs(seconds))),
        Some(Raw::Text(text)) => parse(&text).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration (write e.g. `500ms`, `30s`, `5m`, `1h`)"
            ))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_keys_and_bad_durations_are_refused() {
        let err = serde_json::from_value::<AuthConfig>(json!({"jwt_typo": {}})).unwrap_err();
        assert!(err.to_string().contains("jwt_typo"), "{err}");
        let err = serde_json::from_value::<JwtConfig>(json!({"issuers": [], "leeway": "soon"}))
            .unwrap_err();
        assert!(err.to_string().contains("not a duration"), "{err}");
        let config: JwtConfig =
            serde_json::from_value(json!({"issuers": [], "leeway": "90s"})).unwrap();
        assert_eq!(config.leeway, Some(Duration::from_secs(90)));
        // Too large to be a duration: refused, not wrapped (or a panic in a debug build).
        for huge in ["307445734561825861m", "5124095576030432h"] {
            let err = serde_json::from_value::<JwtConfig>(json!({"issuers": [], "leeway": huge}))
                .unwrap_err();
            assert!(err.to_string().contains("not a duration"), "{err}");
        }
    }

    #[test]
    fn mixed_keys_are_refused_with_the_issuer_named() {
        let config: AuthConfig = serde_json::from_value(json!({
            "jwt": {"issuers": [{
                "issuer": "https://mixed.example",
                "keys": [
                    {"kid": "a", "hmac_secret": "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t"},
                    {"kid": "b", "rsa_pem_file": concat!(env!("CARGO_MANIFEST_DIR"), "/tests/keys/rsa_public.pem")}
                ]
            }]}
        }))
        .unwrap();
        let err = config.build().unwrap_err();
        assert!(err.to_string().contains("`https://mixed.example`"), "{err}");
    }

    #[test]
    fn sources_must_be_configured() {
        let config: AuthConfig = serde_json::from_value(json!({"sources": ["gateway"]})).unwrap();
        assert!(
            config
                .build()
                .unwrap_err()
                .to_string()
                .contains("`gateway`")
        );
    }
}
