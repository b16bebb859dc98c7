//! The serde form of the layer's configuration (the `security.rate_limiting` part of the YAML
//! file); it only drives [`RateLimitLayerBuilder`].
//!
//! ```
//! use streamgate_ratelimit::RateLimitConfig;
//!
//! let config: RateLimitConfig = serde_json::from_value(serde_json::json!({
//!     "capacity": 1000,
//!     "refill_rate": 100,
//!     "policies": {
//!         "login-failures": { "capacity": 5, "refill_rate": 1, "per": "3m", "count_status": [401] }
//!     },
//!     "routes": {
//!         "/login": { "policies": ["login-failures"] },
//!         "/health": { "exempt": true },
//!         "/upload": { "cost": 10 }
//!     }
//! }))
//! .unwrap();
//! let layer = config.builder().unwrap().build().unwrap();
//! # let _ = layer;
//! ```
//!
//! Top-level `capacity` / `refill_rate` (per second) / `key` make the default policy `default`
//! that applies to every route (the seed's keys; defaults 1000, 100, `ip`); set `capacity: 0` to
//! have none. Unknown keys are rejected.
//!
//! Limits live in process unless `redis` names a server, whose store replicas share (the
//! crate's `redis` feature; see [`RateLimitConfig::store`]):
//!
//! ```yaml
//! redis:
//!   url: redis://redis:6379
//!   prefix: streamgate:ratelimit   # the default
//!   timeout: 50ms                  # the default; bounds every call
//!   fallback_to_memory: false      # true: decide in process while Redis fails
//! fail_mode: open                  # without a fallback: let requests through (open) or 503 (closed)
//! ```

use std::{collections::BTreeMap, time::Duration};

use http::{Method, StatusCode};
use serde::Deserialize;

use crate::{
    FailMode, KeyExtractor, Policy, Quota, RateLimitConfigError, RateLimitLayer,
    RateLimitLayerBuilder, RateLimitStore,
};

/// How requests are keyed, in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyKind {
    /// Client IP (IPv6 by /64).
    #[default]
    Ip,
    /// User id when authenticated, else client IP.
    User,
    /// One key for everyone.
    Global,
}

/// The rate-limit section of the configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Whether the layer is on (the facade skips it when off).
    pub enabled: bool,
    /// Burst of the default policy; 0 for no default policy.
    pub capacity: u32,
    /// Refill of the default policy, per second.
    pub refill_rate: u32,
    /// Key of the default policy.
    pub key: KeyKind,
    /// Cap on keys in the in-memory store.
    pub max_keys: usize,
    /// How often idle keys are dropped (`"10s"` in the file).
    #[serde(deserialize_with = "duration")]
    pub sweep_interval: Duration,
    /// Shadow mode for every policy.
    pub shadow: bool,
    /// Send `X-RateLimit-*` too.
    pub legacy_headers: bool,
    /// Methods never limited (`OPTIONS`).
    pub exempt_methods: Vec<String>,
    /// Named policies, applied to routes by name.
    pub policies: BTreeMap<String, PolicyConfig>,
    /// Route template -> what applies there.
    pub routes: BTreeMap<String, RouteConfig>,
    /// The Redis server replicas share limits through; `None` (the default) keeps them in
    /// process.
    pub redis: Option<RedisConfig>,
    /// What a request gets when the store cannot decide (default `open`).
    pub fail_mode: FailMode,
}

/// The shared Redis store, in configuration (`redis:`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// The server (`redis://host:6379`).
    pub url: String,
    /// The prefix of every key (default `streamgate:ratelimit`).
    #[serde(default = "default_redis_prefix")]
    pub prefix: String,
    /// The bound on every call, connecting included (default `50ms`).
    #[serde(default = "default_redis_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Decide in process while Redis fails or is slow, instead of applying `fail_mode`
    /// (default false).
    #[serde(default)]
    pub fallback_to_memory: bool,
}

fn default_redis_prefix() -> String {
    "streamgate:ratelimit".to_owned()
}

fn default_redis_timeout() -> Duration {
    Duration::from_millis(50)
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            capacity: 1000,
            refill_rate: 100,
            key: KeyKind::Ip,
            max_keys: 100_000,
            sweep_interval: Duration::from_secs(10),
            shadow: false,
            legacy_headers: false,
            exempt_methods: Vec::new(),
            policies: BTreeMap::new(),
            routes: BTreeMap::new(),
            redis: None,
            fail_mode: FailMode::Open,
        }
    }
}

/// One named policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Burst (bucket capacity).
    pub capacity: u32,
    /// Units refilled per `per`.
    pub refill_rate: u32,
    /// The refill period (`"1s"`, the default, `"5m"`, `"1h"`, `"1d"` in the file).
    #[serde(default = "one_second", deserialize_with = "duration")]
    pub per: Duration,
    /// How requests are keyed.
    #[serde(default)]
    pub key: KeyKind,
    /// When set, only responses with these statuses count (outcome-based).
    #[serde(default)]
    pub count_status: Vec<u16>,
    /// Count and log only.
    #[serde(default)]
    pub shadow: bool,
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

fn duration<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// What applies to one route template.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteConfig {
    /// Named policies applied on top of the default one.
    pub policies: Vec<String>,
    /// Quota units a request costs (default 1); at most the capacity of every policy on the
    /// route, or building the layer fails.
    pub cost: Option<u32>,
    /// Never limited.
    pub exempt: bool,
}

/// Parses `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"1d"`.
///
/// # Errors
/// When the text is not a whole number followed by one of those units.
pub fn parse_duration(text: &str) -> Result<Duration, RateLimitConfigError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || {
        RateLimitConfigError::new(format!(
            "{text:?} is not a duration (expected e.g. \"500ms\", \"30s\", \"5m\", \"1h\", \"1d\")"
        ))
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let seconds = |factor: u64| number.checked_mul(factor).map(Duration::from_secs);
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        _ => None,
    }
    .ok_or_else(bad)
}

#[cfg(feature = "redis")]
fn redis_store(
    config: &RedisConfig,
    max_keys: usize,
    metrics: &streamgate_core::MetricsHandle,
) -> Result<std::sync::Arc<dyn RateLimitStore>, RateLimitConfigError> {
    let mut builder = crate::RedisStore::builder(config.url.as_str())
        .prefix(config.prefix.as_str())
        .timeout(config.timeout)
        .metrics(metrics.clone());
    if config.fallback_to_memory {
        builder = builder.fallback(crate::MemoryStore::builder().max_keys(max_keys).build());
    }
    let store = builder
        .build()
        .map_err(|e| RateLimitConfigError::new(e.to_string()).at("redis"))?;
    Ok(std::sync::Arc::new(store))
}

#[cfg(not(feature = "redis"))]
fn redis_store(
    _config: &RedisConfig,
    _max_keys: usize,
    _metrics: &streamgate_core::MetricsHandle,
) -> Result<std::sync::Arc<dyn RateLimitStore>, RateLimitConfigError> {
    Err(RateLimitConfigError::new(
        "this build has no Redis store (turn on StreamGate's `redis` feature)",
    )
    .at("redis"))
}

fn extractor(kind: KeyKind) -> KeyExtractor {
    match kind {
        KeyKind::Ip => KeyExtractor::ip(),
        KeyKind::User => KeyExtractor::user_or_ip(),
        KeyKind::Global => KeyExtractor::global(),
    }
}

fn quota(
    name: &str,
    capacity: u32,
    refill: u32,
    per: Duration,
) -> Result<Quota, RateLimitConfigError> {
    if capacity == 0 || refill == 0 || per.as_nanos() < u128::from(refill) {
        return Err(RateLimitConfigError::new(format!(
            "rate-limit policy {name:?} needs capacity > 0 and a refill_rate > 0 per a positive period"
        )));
    }
    Ok(Quota::with_period(refill, per).burst(capacity))
}

impl RateLimitConfig {
    /// Splits the policies by where they belong in the stack: the first half holds the policies
    /// keyed by client IP or global (placed outside the security layer, so a flood is refused
    /// before any credential is verified), the second those keyed by user (placed inside it,
    /// where the user is known). Route costs and exemptions go to both halves, and so does a
    /// route's policy name that no policy defines, so that building either half names it.
    #[must_use]
    pub fn split_by_key(&self) -> (Self, Self) {
        let half = |by_user: bool| {
            let mut part = self.clone();
            if (self.key == KeyKind::User) != by_user {
                part.capacity = 0;
            }
            part.policies
                .retain(|_, policy| (policy.key == KeyKind::User) == by_user);
            for route in part.routes.values_mut() {
                route.policies.retain(|name| {
                    part.policies.contains_key(name)
                        || (name != "default" && !self.policies.contains_key(name))
                });
            }
            part
        };
        (half(false), half(true))
    }

    /// Checks what no single half of [`split_by_key`](Self::split_by_key) can: that every
    /// policy a route names is defined (a misspelled name would leave the route unlimited).
    /// [`builder`](Self::builder) checks it too.
    ///
    /// # Errors
    /// Naming the route and the undefined policy.
    pub fn check(&self) -> Result<(), RateLimitConfigError> {
        for (route, settings) in &self.routes {
            for name in &settings.policies {
                let defined =
                    self.policies.contains_key(name) || (name == "default" && self.capacity > 0);
                if !defined {
                    return Err(RateLimitConfigError::new(format!(
                        "route {route:?} uses rate-limit policy {name:?}, which is not defined"
                    ))
                    .at("routes"));
                }
            }
        }
        Ok(())
    }

    /// Whether any policy would apply (a default one or a named one).
    #[must_use]
    pub fn has_policies(&self) -> bool {
        self.capacity > 0 || !self.policies.is_empty()
    }

    /// The store `redis` describes, or `None` for the in-memory store the builder makes by
    /// itself. Build it once and hand it to every layer of the process (both halves of
    /// [`split_by_key`](Self::split_by_key)): clones share one connection.
    ///
    /// # Errors
    /// When the URL is not a Redis URL, or `redis` is set and the crate's `redis` feature is
    /// off.
    pub fn store(
        &self,
        metrics: &streamgate_core::MetricsHandle,
    ) -> Result<Option<std::sync::Arc<dyn RateLimitStore>>, RateLimitConfigError> {
        let Some(redis) = &self.redis else {
            return Ok(None);
        };
        if redis.timeout.is_zero() {
            return Err(
                RateLimitConfigError::new("a zero timeout would fail every call")
                    .at("redis.timeout"),
            );
        }
        redis_store(redis, self.max_keys, metrics).map(Some)
    }

    /// A builder set up as this configuration says; add a store or metrics handle before
    /// building.
    ///
    /// # Errors
    /// When a method, status or quota is invalid.
    pub fn builder(&self) -> Result<RateLimitLayerBuilder, RateLimitConfigError> {
        self.check()?;
        let mut builder = RateLimitLayer::builder()
            .max_keys(self.max_keys)
            .sweep_interval(self.sweep_interval)
            .shadow(self.shadow)
            .legacy_headers(self.legacy_headers)
            .fail_mode(self.fail_mode);
        if self.capacity > 0 {
            // With a capacity, only the refill rate can be wrong.
            let quota = quota(
                "default",
                self.capacity,
                self.refill_rate,
                Duration::from_secs(1),
            )
            .map_err(|e| e.at("refill_rate"))?;
            builder = builder.policy(Policy::new("default", quota).key(extractor(self.key)));
        }
        for method in &self.exempt_methods {
            let method =
                Method::from_bytes(method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                    RateLimitConfigError::new(format!("{method:?} is not an HTTP method"))
                        .at("exempt_methods")
                })?;
            builder = builder.exempt_method(method);
        }
        for (name, policy) in &self.policies {
            let quota = quota(name, policy.capacity, policy.refill_rate, policy.per)
                .map_err(|e| e.at(format!("policies.{name}")))?;
            let mut built = Policy::new(name.as_str(), quota)
                .key(extractor(policy.key))
                .shadow(policy.shadow);
            if !policy.count_status.is_empty() {
                let statuses = policy
                    .count_status
                    .iter()
                    .map(|code| {
                        StatusCode::from_u16(*code).map_err(|_| {
                            RateLimitConfigError::new(format!("{code} is not an HTTP status"))
                                .at(format!("policies.{name}.count_status"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                built = built.count_responses(move |status| statuses.contains(&status));
            }
            builder = builder.define(built);
        }
        for (route, settings) in &self.routes {
            for policy in &settings.policies {
                builder = builder.route_uses(route.as_str(), policy.as_str());
            }
            if let Some(cost) = settings.cost {
                builder = builder.route_cost(route.as_str(), cost);
            }
            if settings.exempt {
                builder = builder.exempt_route(route.as_str());
            }
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn bad_durations_are_rejected_while_reading() {
        let error = serde_json::from_value::<RateLimitConfig>(serde_json::json!({
            "policies": {"p": {"capacity": 1, "refill_rate": 1, "per": "soon"}}
        }))
        .unwrap_err();
        assert!(
            error.to_string().contains("\"soon\" is not a duration"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let error = serde_json::from_value::<RateLimitConfig>(serde_json::json!({"capacty": 5}))
            .unwrap_err();
        assert!(error.to_string().contains("capacty"), "{error}");
    }

    #[test]
    fn redis_settings_are_read_with_defaults() {
        let config: RateLimitConfig = serde_json::from_value(serde_json::json!({
            "redis": {"url": "redis://127.0.0.1:6379"},
            "fail_mode": "closed"
        }))
        .unwrap();
        let redis = config.redis.as_ref().unwrap();
        assert_eq!(redis.prefix, "streamgate:ratelimit");
        assert_eq!(redis.timeout, Duration::from_millis(50));
        assert!(!redis.fallback_to_memory);
        assert_eq!(config.fail_mode, FailMode::Closed);
        let error = serde_json::from_value::<RateLimitConfig>(serde_json::json!({
            "redis": {"url": "redis://127.0.0.1:6379", "timout": "1s"}
        }))
        .unwrap_err();
        assert!(error.to_string().contains("timout"), "{error}");
    }

    #[test]
    fn without_redis_the_store_is_the_layers_own() {
        let metrics = streamgate_core::MetricsHandle::global();
        assert!(
            RateLimitConfig::default()
                .store(&metrics)
                .unwrap()
                .is_none()
        );
    }

    #[cfg(feature = "redis")]
    #[test]
    fn redis_makes_a_shared_store_and_rejects_a_bad_url() {
        let metrics = streamgate_core::MetricsHandle::global();
        let mut config = RateLimitConfig {
            redis: Some(RedisConfig {
                url: "redis://127.0.0.1:6379".to_owned(),
                prefix: default_redis_prefix(),
                timeout: default_redis_timeout(),
                fallback_to_memory: true,
            }),
            ..RateLimitConfig::default()
        };
        let store = config.store(&metrics).unwrap().unwrap();
        assert!(format!("{store:?}").contains("RedisStore"), "{store:?}");
        config.redis.as_mut().unwrap().url = "http://not-redis".to_owned();
        let error = config.store(&metrics).unwrap_err();
        assert!(error.to_string().contains("invalid Redis URL"), "{error}");
        config.redis.as_mut().unwrap().timeout = Duration::ZERO;
        let error = config.store(&metrics).unwrap_err();
        assert!(error.to_string().contains("zero timeout"), "{error}");
    }

    #[cfg(not(feature = "redis"))]
    #[test]
    fn redis_without_the_feature_is_a_clear_error() {
        let config: RateLimitConfig = serde_json::from_value(serde_json::json!({
            "redis": {"url": "redis://127.0.0.1:6379"}
        }))
        .unwrap();
        let error = config
            .store(&streamgate_core::MetricsHandle::global())
            .unwrap_err();
        assert!(error.to_string().contains("`redis` feature"), "{error}");
    }

    #[test]
    fn seed_defaults() {
        let config = RateLimitConfig::default();
        assert_eq!((config.capacity, config.refill_rate), (1000, 100));
        let layer = config.builder().unwrap().build().unwrap();
        assert!(layer.policy_id("default").is_some());
    }

    #[test]
    fn undefined_route_policy_is_an_error() {
        let mut config = RateLimitConfig::default();
        config.routes.insert(
            "/login".to_owned(),
            RouteConfig {
                policies: vec!["nope".to_owned()],
                ..RouteConfig::default()
            },
        );
        let error = config.builder().unwrap_err();
        assert!(error.to_string().contains("nope"), "{error}");
    }

    #[test]
    fn a_route_naming_an_undefined_policy_fails_after_the_split_too() {
        let config: RateLimitConfig = serde_json::from_value(serde_json::json!({
            "policies": {"tight": {"capacity": 1, "refill_rate": 1, "per": "1h"}},
            "routes": {"/files": {"policies": ["tigth"]}}
        }))
        .unwrap();
        let error = config.check().unwrap_err();
        assert_eq!(error.key(), Some("routes"));
        assert_eq!(
            error.to_string(),
            "routes: route \"/files\" uses rate-limit policy \"tigth\", which is not defined"
        );
        let (by_ip, by_user) = config.split_by_key();
        for part in [by_ip, by_user] {
            let error = part.builder().unwrap_err();
            assert!(error.to_string().contains("tigth"), "{error}");
        }
    }

    #[test]
    fn split_puts_user_keyed_policies_inside_and_the_rest_outside() {
        let config: RateLimitConfig = serde_json::from_value(serde_json::json!({
            "capacity": 1000,
            "refill_rate": 100,
            "policies": {
                "daily-per-user": { "capacity": 10000, "refill_rate": 10000, "per": "1d", "key": "user" },
                "login": { "capacity": 5, "refill_rate": 1, "per": "1m", "count_status": [401] }
            },
            "routes": {
                "/login": { "policies": ["login", "daily-per-user"], "cost": 2 },
                "/health": { "exempt": true }
            }
        }))
        .unwrap();
        let (by_ip, by_user) = config.split_by_key();
        assert_eq!(by_ip.capacity, 1000);
        assert_eq!(by_ip.policies.keys().collect::<Vec<_>>(), ["login"]);
        assert_eq!(by_ip.routes["/login"].policies, ["login"]);
        assert_eq!(by_user.capacity, 0);
        assert_eq!(
            by_user.policies.keys().collect::<Vec<_>>(),
            ["daily-per-user"]
        );
        assert_eq!(by_user.routes["/login"].policies, ["daily-per-user"]);
        assert_eq!(by_user.routes["/login"].cost, Some(2));
        assert!(by_user.routes["/health"].exempt);
        assert!(by_ip.has_policies() && by_user.has_policies());
        by_ip.builder().unwrap().build().unwrap();
        by_user.builder().unwrap().build().unwrap();
    }
}
