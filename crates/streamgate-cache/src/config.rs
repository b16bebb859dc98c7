//! `optimization.cache` in the YAML file.

use std::{collections::BTreeMap, fmt, time::Duration};

use http::HeaderName;
use serde::Deserialize;
use streamgate_core::MetricsHandle;

use crate::{CacheLayer, CacheLayerBuilder, CacheRoute};

/// `optimization.cache`: the seed's `max_size` and `ttl`, and the routes to cache.
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
    /// A `vary` entry that is not a header name, a zero TTL.
    pub fn builder(&self, metrics: MetricsHandle) -> Result<CacheLayerBuilder, CacheConfigError> {
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
            let ttl = route.ttl.unwrap_or(self.ttl);
            if ttl.is_zero() {
                return Err(CacheConfigError(format!(
                    "routes: `{template}`: the ttl must be above 0"
                )));
            }
            let settings = CacheRoute::ttl(ttl);
            let settings = if route.shared {
                settings.shared()
            } else {
                settings
            };
            builder = builder.route(template.clone(), settings);
        }
        Ok(builder)
    }
}
