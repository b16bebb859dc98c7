//! `optimization.cache` in the YAML file.

use std::{collections::BTreeMap, fmt, time::Duration};

use http::{HeaderName, HeaderValue};
use serde::Deserialize;
use streamgate_core::MetricsHandle;

use crate::{CacheLayer, CacheLayerBuilder, CacheRoute};

/// `optimization.cache`: the seed's `max_size` and `ttl`, the routes to cache and, for several
/// replicas, the Redis store they share.
///
/// ```
/// use streamgate_cache::CacheConfig;
/// use streamgate_core::MetricsHandle;
///
/// let config: CacheConfig = serde_yaml_ng::from_str(r#"
/// ttl: 5m
/// routes:
///   /files/{id}: {}                    # private, 5 minutes
///   /catalog: { ttl: 30s, shared: true }
/// "#).unwrap();
/// let layer = config.builder(MetricsHandle::global()).unwrap().build();
/// assert_eq!(layer.entry_count(), Some(0));
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Whether the routes below are cached (default true; without routes nothing is).
    pub enabled: bool,
    /// At most this many entries (default 10,000, the seed's).
    pub max_size: u64,
    /// The TTL of a route that names none (default 5m, the seed's).
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Bodies larger than this are not stored (default 1 MiB).
    pub max_body_bytes: usize,
    /// Request headers whose values are part of the key (default `accept`, `accept-encoding`).
    pub vary: Vec<String>,
    /// Route template -> how it is cached.
    pub routes: BTreeMap<String, CacheRouteConfig>,
    /// Keep entries on a Redis server shared by replicas instead of in this process's memory
    /// (default: absent, in memory). Needs the `redis` cargo feature; without it a `redis`
    /// section is refused with the key and the feature to turn on.
    #[cfg_attr(not(feature = "redis"), serde(deserialize_with = "redis_compiled_out"))]
    pub redis: Option<CacheRedisConfig>,
    /// Paths requested on start and on a schedule to fill the cache (the seed's warming);
    /// see [`CacheWarmer`](crate::CacheWarmer).
    pub warm: CacheWarmConfig,
}

/// `optimization.cache.warm`: what [`CacheWarmer`](crate::CacheWarmer) requests, and how often.
///
/// ```yaml
/// warm:
///   paths: ["/catalog", "/files/popular?limit=20"]
///   interval: 1h        # the seed's schedule; also once on start
///   headers:            # what the warming requests send (default `accept: "*/*"`): the
///     accept: application/json      # values of the vary headers your clients send
///     accept-encoding: gzip
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CacheWarmConfig {
    /// Paths (with their query) to request; none by default, and then nothing is warmed.
    pub paths: Vec<String>,
    /// How often they are requested again (default 1h); at least a second.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// The headers warming requests send (default `accept: "*/*"`), see
    /// [`CacheWarmer::headers`](crate::CacheWarmer::headers).
    pub headers: BTreeMap<String, String>,
}

impl Default for CacheWarmConfig {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            interval: Duration::from_secs(3600),
            headers: BTreeMap::from([("accept".to_owned(), "*/*".to_owned())]),
        }
    }
}

impl CacheWarmConfig {
    /// [`headers`](Self::headers) as header names and values.
    ///
    /// # Errors
    /// Naming a header whose name or value is not valid.
    pub fn header_values(&self) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
        self.headers
            .iter()
            .map(|(name, value)| {
                let parsed_name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("warm.headers: {name:?} is not a header name"))?;
                let parsed_value = HeaderValue::from_str(value)
                    .map_err(|_| format!("warm.headers: the value of {name:?} is not valid"))?;
                Ok((parsed_name, parsed_value))
            })
            .collect()
    }
}

/// `optimization.cache.redis`: the shared store ([`RedisCacheStore`](crate::store), feature
/// `redis`).
///
/// ```yaml
/// redis:
///   url: redis://127.0.0.1:6379   # or set STREAMGATE__OPTIMIZATION__CACHE__REDIS__URL
///   prefix: streamgate:cache      # replicas that share entries use the same prefix
///   timeout: 100ms                # each call, connecting included; then a miss
///   local_ttl: 2s                 # a copy in memory in front of Redis (TieredCacheStore)
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheRedisConfig {
    /// The server, `redis://[user:password@]host:port[/db]`. A URL that carries a password is
    /// better given by environment variable than written in the file.
    pub url: String,
    /// The prefix of every key (default `streamgate:cache`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// The bound on each call, connecting included (default 100ms).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Keep a copy of what Redis answers in this process's memory for at most this long
    /// ([`TieredCacheStore`](crate::TieredCacheStore), up to `max_size` entries): hot entries
    /// skip the round trip and survive a Redis outage, at the price of serving an entry another
    /// replica invalidated for up to this long. Default: absent, no local copy.
    #[serde(default, with = "humantime_serde")]
    pub local_ttl: Option<Duration>,
}

fn default_prefix() -> String {
    "streamgate:cache".to_owned()
}

fn default_timeout() -> Duration {
    Duration::from_millis(100)
}

/// `redis` in a build without the `redis` feature: accepted only when null.
#[cfg(not(feature = "redis"))]
fn redis_compiled_out<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<CacheRedisConfig>, D::Error> {
    match Option::<CacheRedisConfig>::deserialize(deserializer)? {
        None => Ok(None),
        Some(_) => Err(serde::de::Error::custom(
            "`optimization.cache.redis` needs the `redis` cargo feature (of streamgate, or of \
             streamgate-cache), which this build leaves out (or remove the section)",
        )),
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_size: 10_000,
            ttl: Duration::from_secs(300),
            max_body_bytes: 1024 * 1024,
            vary: vec!["accept".to_owned(), "accept-encoding".to_owned()],
            routes: BTreeMap::new(),
            redis: None,
            warm: CacheWarmConfig::default(),
        }
    }
}

/// One route of `optimization.cache.routes`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CacheRouteConfig {
    /// Its TTL (default the section's `ttl`).
    #[serde(with = "humantime_serde")]
    pub ttl: Option<Duration>,
    /// One entry for every caller instead of one per authenticated user (default false).
    pub shared: bool,
}

/// A value of `optimization.cache` the types could not check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfigError(String);

impl fmt::Display for CacheConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CacheConfigError {}

impl CacheConfig {
    /// Whether this section caches anything.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.enabled && !self.routes.is_empty()
    }

    /// The layer's builder as this section describes it, recording into `metrics`.
    ///
    /// # Errors
    /// A `vary` entry that is not a header name, a zero TTL, a `redis` URL that is not a Redis
    /// URL or, in a build without the `redis` feature, a `redis` section; a warming path that
    /// does not start with `/`, an interval under a second, or a warming header that is not
    /// valid.
    pub fn builder(&self, metrics: MetricsHandle) -> Result<CacheLayerBuilder, CacheConfigError> {
        if let Some(path) =
            self.warm.paths.iter().find(|path| {
                !path.starts_with('/') || path.parse::<http::uri::PathAndQuery>().is_err()
            })
        {
            return Err(CacheConfigError(format!(
                "warm.paths: `{path}` is not a path (it must start with `/`)"
            )));
        }
        if !self.warm.paths.is_empty() && self.warm.interval < Duration::from_secs(1) {
            return Err(CacheConfigError("warm.interval: at least 1s".to_owned()));
        }
        self.warm.header_values().map_err(CacheConfigError)?;
        let vary = self
            .vary
            .iter()
            .map(|name| {
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| CacheConfigError(format!("vary: `{name}` is not a header name")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut builder = CacheLayer::builder()
            .max_entries(self.max_size)
            .max_body_bytes(self.max_body_bytes)
            .vary(vary)
            .metrics(metrics);
        for (template, route) in &self.routes {
            if !template.starts_with('/') {
                // axum's templates all start with `/`: this one would never match.
                return Err(CacheConfigError(format!(
                    "routes: `{template}` is not a route template (it must start with `/`)"
                )));
            }
            let ttl = route.ttl.unwrap_or(self.ttl);
            if ttl.is_zero() {
                let whose = if route.ttl.is_some() {
                    format!("routes: `{template}`: its ttl")
                } else {
                    "ttl".to_owned()
                };
                return Err(CacheConfigError(format!("{whose} must be above 0")));
            }
            let settings = CacheRoute::ttl(ttl);
            let settings = if route.shared {
                settings.shared()
            } else {
                settings
            };
            builder = builder.route(template.clone(), settings);
        }
        match &self.redis {
            None => Ok(builder),
            Some(redis) => redis.store(builder, self.max_size),
        }
    }
}

impl CacheRedisConfig {
    /// `builder` with the Redis store this section describes.
    #[cfg(feature = "redis")]
    fn store(
        &self,
        builder: CacheLayerBuilder,
        local_entries: u64,
    ) -> Result<CacheLayerBuilder, CacheConfigError> {
        if self.timeout.is_zero() {
            return Err(CacheConfigError(
                "redis: a zero timeout would fail every call".to_owned(),
            ));
        }
        let store = crate::RedisCacheStore::builder(self.url.as_str())
            .prefix(self.prefix.as_str())
            .timeout(self.timeout)
            .build()
            .map_err(|error| CacheConfigError(format!("redis: {error}")))?;
        let store: std::sync::Arc<dyn crate::CacheStore> = match self.local_ttl {
            Some(local_ttl) if !local_ttl.is_zero() => std::sync::Arc::new(
                crate::TieredCacheStore::new(std::sync::Arc::new(store), local_entries, local_ttl),
            ),
            _ => std::sync::Arc::new(store),
        };
        Ok(builder.store(store))
    }

    #[cfg(not(feature = "redis"))]
    fn store(&self, _: CacheLayerBuilder, _: u64) -> Result<CacheLayerBuilder, CacheConfigError> {
        Err(CacheConfigError(
            "redis: the Redis store needs the `redis` cargo feature".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARED: &str = "routes:\n  /items/{id}: {}\nredis:\n  url: redis://127.0.0.1:6379\n";

    #[test]
    fn route_templates_and_ttls_that_could_not_work_are_named() {
        let error = |yaml: &str| {
            let config: CacheConfig = serde_yaml_ng::from_str(yaml).unwrap();
            config
                .builder(MetricsHandle::global())
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(
            error("routes:\n  files/{id}: {}\n").as_deref(),
            Some("routes: `files/{id}` is not a route template (it must start with `/`)")
        );
        assert_eq!(
            error("ttl: 0s\nroutes:\n  /files/{id}: {}\n").as_deref(),
            Some("ttl must be above 0"),
            "the section's ttl, which the route takes"
        );
        assert_eq!(
            error("routes:\n  /files/{id}: {ttl: 0s}\n").as_deref(),
            Some("routes: `/files/{id}`: its ttl must be above 0")
        );
        assert_eq!(error("routes:\n  /files/{id}: {ttl: 5s}\n"), None);
    }

    #[test]
    #[cfg(not(feature = "redis"))]
    fn a_redis_section_without_the_feature_names_the_feature() {
        let error = serde_yaml_ng::from_str::<CacheConfig>(SHARED).unwrap_err();
        assert!(error.location().is_some(), "{error}");
        assert!(
            error.to_string().contains("`redis` cargo feature"),
            "{error}"
        );
        let config: CacheConfig = serde_yaml_ng::from_str("redis: null\n").unwrap();
        assert_eq!(config.redis, None);
    }

    #[test]
    #[cfg(feature = "redis")]
    fn a_redis_section_builds_the_redis_store() {
        let config: CacheConfig = serde_yaml_ng::from_str(SHARED).unwrap();
        let redis = config.redis.as_ref().unwrap();
        assert_eq!(redis.prefix, "streamgate:cache");
        assert_eq!(redis.timeout, Duration::from_millis(100));
        let layer = config.builder(MetricsHandle::global()).unwrap().build();
        assert_eq!(layer.entry_count(), None, "not the memory store");
        assert!(
            !format!("{layer:?}").contains("TieredCacheStore"),
            "{layer:?}"
        );

        let tiered: CacheConfig =
            serde_yaml_ng::from_str(&format!("{SHARED}  local_ttl: 2s\n")).unwrap();
        assert_eq!(
            tiered.redis.as_ref().unwrap().local_ttl,
            Some(Duration::from_secs(2))
        );
        let layer = tiered.builder(MetricsHandle::global()).unwrap().build();
        assert!(
            format!("{layer:?}").contains("TieredCacheStore"),
            "{layer:?}"
        );

        let mut bad = config.clone();
        bad.redis.as_mut().unwrap().url = "http://127.0.0.1".to_owned();
        let error = bad.builder(MetricsHandle::global()).unwrap_err();
        assert!(
            error.to_string().starts_with("redis: invalid Redis URL"),
            "{error}"
        );

        let mut zero = config.clone();
        zero.redis.as_mut().unwrap().timeout = Duration::ZERO;
        let error = zero.builder(MetricsHandle::global()).unwrap_err();
        assert!(error.to_string().contains("zero timeout"), "{error}");

        let error = serde_yaml_ng::from_str::<CacheConfig>("redis: {uri: x}\n").unwrap_err();
        assert!(error.to_string().contains("unknown field `uri`"), "{error}");
    }
}
