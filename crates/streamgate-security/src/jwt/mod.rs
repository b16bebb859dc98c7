//! JWT bearer tokens: keys per issuer, `kid` selection, algorithm checks, claim checks by our own
//! clock, a cache of verified tokens and a revocation list.
//!
//! ```
//! use jsonwebtoken::{EncodingKey, Header, encode};
//! use streamgate_security::{Issuer, JwtAuth, JwtKey};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let jwt = JwtAuth::builder()
//!     .issuer(Issuer::new("https://id.example.com").key(JwtKey::hmac(b"0123456789abcdef0123456789abcdef")))
//!     .build()
//!     .unwrap();
//! let claims = serde_json::json!({
//!     "iss": "https://id.example.com",
//!     "sub": "user-1",
//!     "exp": jwt.clock().unix_seconds() + 300,
//!     "roles": ["viewer"],
//! });
//! let token = encode(&Header::default(), &claims, &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef")).unwrap();
//! let context = jwt.verify(&token).await.unwrap();
//! assert_eq!(context.user_id(), "user-1");
//! assert!(context.has_role("viewer"));
//! # }
//! ```

mod cache;
mod claims;
mod issuer;
mod jwks;
mod keys;
#[cfg(feature = "ring")]
mod ring_provider;

use std::{
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde::Deserialize;
use serde_json::{Map, Value};
use streamgate_core::SecurityContext;
use tokio::time::Instant;

pub use claims::ClaimMapping;
pub use issuer::Issuer;
pub use jwks::{JwksFetch, JwksSource};
pub use keys::{JwtKey, MIN_HMAC_SECRET_BYTES};

use cache::{Lookup, TokenCache};
use issuer::IssuerKeys;

use crate::{AuthReason, Clock, ConfigError, RevocationList};

/// Verifies JWT bearer tokens into [`SecurityContext`]s. Cheap to clone.
///
/// Built by [`JwtAuth::builder`]; see the [module docs](self) for an example.
#[derive(Debug, Clone)]
pub struct JwtAuth {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    issuers: Vec<IssuerKeys>,
    leeway: u64,
    clock: Clock,
    cache: Option<TokenCache>,
    revocations: RevocationList,
}

/// Builds a [`JwtAuth`].
#[derive(Debug, Clone)]
#[must_use]
pub struct JwtAuthBuilder {
    issuers: Vec<Issuer>,
    leeway: Duration,
    cache_capacity: u64,
    clock: Option<Clock>,
    revocations: RevocationList,
}

/// What the cache knows about a token.
pub(crate) enum Cached {
    Hit(SecurityContext),
    Refused(AuthReason),
    Miss,
}

impl JwtAuth {
    /// Starts a configuration: no issuer, 60 s leeway, a cache of 10,000 verified tokens.
    pub fn builder() -> JwtAuthBuilder {
        JwtAuthBuilder {
            issuers: Vec::new(),
            leeway: Duration::from_secs(60),
            cache_capacity: 10_000,
            clock: None,
            revocations: RevocationList::new(),
        }
    }

    /// The clock `exp`, `nbf`, the cache and JWKS refreshes are judged by.
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// The revocation list consulted for every token.
    #[must_use]
    pub fn revocations(&self) -> &RevocationList {
        &self.inner.revocations
    }

    /// Verifies `token` (the compact serialization, without `Bearer `).
    ///
    /// # Errors
    /// Why the token is refused.
    pub async fn verify(&self, token: &str) -> Result<SecurityContext, AuthReason> {
        match self.cached(token.as_bytes()) {
            Cached::Hit(context) => Ok(context),
            Cached::Refused(reason) => Err(reason),
            Cached::Miss => self.verify_uncached(token).await,
        }
    }

    /// The cache's answer, revocation included.
    pub(crate) fn cached(&self, token: &[u8]) -> Cached {
        let Some(cache) = &self.inner.cache else {
            return Cached::Miss;
        };
        let key = cache.key(token);
        let now = Instant::now();
        let revocations = &self.inner.revocations;
        let lookup = cache.get(key, token, now, |entry| {
            if revocations.is_revoked(entry.token_id.as_deref(), entry.context.user_id()) {
                Cached::Refused(AuthReason::Revoked)
            } else {
                Cached::Hit(entry.context.clone())
            }
        });
        match lookup {
            Lookup::Hit(cached) => cached,
            Lookup::Expired => Cached::Refused(AuthReason::Expired),
            Lookup::Miss => Cached::Miss,
        }
    }

    /// Full verification; a success is cached.
    pub(crate) async fn verify_uncached(&self, token: &str) -> Result<SecurityContext, AuthReason> {
        let inner = &*self.inner;
        let parts = TokenParts::split(token)?;
        let header = parts.header()?;
        let alg = parse_algorithm(&header.alg)?;
        let issuer = self.select_issuer(&parts)?;
        if !issuer.allows(alg) {
            return Err(AuthReason::AlgorithmNotAllowed);
        }
        let key = issuer
            .key_for(header.kid.as_deref(), &inner.clock)
            .await
            .ok_or(AuthReason::UnknownKeyId)?;
        if !key.accepts(alg) {
            return Err(AuthReason::AlgorithmKeyMismatch);
        }
        let mut validation = Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| map_error(e.kind()))?
            .claims;

        let config = &issuer.issuer;
        if claims.get("iss").and_then(Value::as_str) != Some(config.name.as_str()) {
            return Err(AuthReason::WrongIssuer);
        }
        if !config.audiences.is_empty() && !audience_matches(claims.get("aud"), &config.audiences) {
            return Err(AuthReason::WrongAudience);
        }
        let now = inner.clock.unix_seconds();
        let exp = numeric_date(claims.get("exp"))?.ok_or(AuthReason::InvalidClaims)?;
        let valid_until = exp.saturating_add(inner.leeway);
        if now > valid_until {
            return Err(AuthReason::Expired);
        }
        if let Some(nbf) = numeric_date(claims.get("nbf"))?
            && nbf > now.saturating_add(inner.leeway)
        {
            return Err(AuthReason::NotYetValid);
        }
        let token_id = match claims.get("jti") {
            None => None,
            Some(Value::String(jti)) => Some(jti.as_str()),
            Some(_) => return Err(AuthReason::InvalidClaims),
        };
        let context = config.claims.context(
            &claims,
            &config.name,
            Some(UNIX_EPOCH + Duration::from_secs(exp)),
        )?;
        if inner.revocations.is_revoked(token_id, context.user_id()) {
            return Err(AuthReason::Revoked);
        }
        if let Some(cache) = &inner.cache {
            cache.insert(
                cache.key(token.as_bytes()),
                token.as_bytes(),
                context.clone(),
                inner.clock.instant_after(valid_until),
                token_id,
                Instant::now(),
            );
        }
        Ok(context)
    }

    fn select_issuer(&self, parts: &TokenParts<'_>) -> Result<&IssuerKeys, AuthReason> {
        let issuers = &self.inner.issuers;
        if let [only] = issuers.as_slice() {
            return Ok(only);
        }
        let iss = parts.unverified_issuer()?.ok_or(AuthReason::WrongIssuer)?;
        issuers
            .iter()
            .find(|i| i.issuer.name == iss)
            .ok_or(AuthReason::WrongIssuer)
    }
}

impl JwtAuthBuilder {
    /// Trusts `issuer`.
    pub fn issuer(mut self, issuer: Issuer) -> Self {
        self.issuers.push(issuer);
        self
    }

    /// Clock skew tolerated for `exp` and `nbf` (default 60 s). The claims are whole seconds,
    /// so a fraction of a second counts as a whole one (`500ms` tolerates 1 s, not none).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How many verified tokens are kept (default 10,000; 0 turns the cache off).
    pub fn cache_capacity(mut self, capacity: u64) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// The clock to judge time by (default [`Clock::system`] when built).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The revocation list to consult (default an empty list of its own).
    pub fn revocations(mut self, revocations: RevocationList) -> Self {
        self.revocations = revocations;
        self
    }

    /// Checks the configuration and loads JWKS files.
    ///
    /// With the `ring` feature (default), the first build installs a ring-backed verifier as
    /// jsonwebtoken's process-wide crypto provider, unless the application installed one before.
    ///
    /// # Errors
    /// No issuer; an issuer twice; an issuer without keys; an issuer that mixes HMAC secrets with
    /// asymmetric keys (the message names it); an unreadable JWKS file.
    pub fn build(self) -> Result<JwtAuth, ConfigError> {
        if self.issuers.is_empty() {
            return Err(ConfigError::new(
                "JWT authentication needs at least one issuer",
            ));
        }
        #[cfg(feature = "ring")]
        ring_provider::install();
        let mut issuers: Vec<IssuerKeys> = Vec::with_capacity(self.issuers.len());
        for issuer in self.issuers {
            if issuers.iter().any(|i| i.issuer.name == issuer.name) {
                return Err(ConfigError::new(format!(
                    "issuer `{}` is configured twice",
                    issuer.name
                )));
            }
            issuers.push(IssuerKeys::new(issuer)?);
        }
        Ok(JwtAuth {
            inner: Arc::new(Inner {
                issuers,
                leeway: self
                    .leeway
                    .as_secs()
                    .saturating_add(u64::from(self.leeway.subsec_nanos() > 0)),
                clock: self.clock.unwrap_or_default(),
                cache: (self.cache_capacity > 0).then(|| TokenCache::new(self.cache_capacity)),
                revocations: self.revocations,
            }),
        })
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

struct TokenParts<'a> {
    header: &'a str,
    payload: &'a str,
}

impl<'a> TokenParts<'a> {
    fn split(token: &'a str) -> Result<Self, AuthReason> {
        let mut parts = token.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(header), Some(payload), Some(_signature), None) => Ok(Self { header, payload }),
            _ => Err(AuthReason::MalformedToken),
        }
    }

    fn header(&self) -> Result<RawHeader, AuthReason> {
        let bytes = URL_SAFE_NO_PAD
            .decode(self.header)
            .map_err(|_| AuthReason::MalformedToken)?;
        let header: RawHeader =
            serde_json::from_slice(&bytes).map_err(|_| AuthReason::MalformedToken)?;
        if header.crit.is_some() {
            // No critical header extension is understood here (RFC 7515 section 4.1.11).
            return Err(AuthReason::MalformedToken);
        }
        Ok(header)
    }

    fn unverified_issuer(&self) -> Result<Option<String>, AuthReason> {
        #[derive(Deserialize)]
        struct Peek {
            iss: Option<String>,
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(self.payload)
            .map_err(|_| AuthReason::MalformedToken)?;
        let peek: Peek = serde_json::from_slice(&bytes).map_err(|_| AuthReason::MalformedToken)?;
        Ok(peek.iss)
    }
}

fn parse_algorithm(alg: &str) -> Result<Algorithm, AuthReason> {
    if alg.eq_ignore_ascii_case("none") {
        return Err(AuthReason::AlgorithmNone);
    }
    alg.parse().map_err(|_| AuthReason::AlgorithmNotAllowed)
}

fn map_error(kind: &ErrorKind) -> AuthReason {
    match kind {
        ErrorKind::InvalidSignature => AuthReason::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat => AuthReason::AlgorithmKeyMismatch,
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => AuthReason::MalformedToken,
        _ => AuthReason::BadSignature,
    }
}

/// A JWT `NumericDate` (seconds, possibly fractional); absent is `None`.
fn numeric_date(value: Option<&Value>) -> Result<Option<u64>, AuthReason> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or(AuthReason::InvalidClaims),
        Some(_) => Err(AuthReason::InvalidClaims),
    }
}

fn audience_matches(aud: Option<&Value>, accepted: &[String]) -> bool {
    match aud {
        Some(Value::String(aud)) => accepted.iter().any(|a| a == aud),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| accepted.iter().any(|a| a == aud)),
        _ => false,
    }
}
