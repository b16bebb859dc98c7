//! One YAML file for the whole stack, with the seed's top level (`monitoring`, `optimization`,
//! `security`).
//!
//! ```
//! use streamgate::Config;
//!
//! let config = Config::from_yaml_str("streamgate.yaml", r#"
//! monitoring:
//!   metrics:
//!     service_name: upload
//!     window: 5m
//! security:
//!   trusted_proxies: ["10.0.0.0/8"]
//! "#).unwrap();
//! assert_eq!(config.monitoring.metrics.service_name, "upload");
//!
//! let error = Config::from_yaml_str("streamgate.yaml", "monitoring:\n  metrics:\n    sevice_name: x\n")
//!     .unwrap_err();
//! assert!(error.to_string().starts_with("streamgate.yaml:3:5: monitoring.metrics: unknown field `sevice_name`"));
//! ```
//!
//! Keys are snake_case; durations are written `"500ms"`, `"30s"`, `"5m"`, `"30d"`; unknown keys are
//! rejected with the file, line, column and key, and so is a value that a layer refuses when
//! [`Stack::from_config`](crate::Stack::from_config) builds it (`streamgate.yaml:5:3:
//! security.cors: ...`, or the environment variable that set it). Every key can be overridden by
//! an environment variable: `STREAMGATE__` followed by the key path in upper case joined by `__`,
//! for example `STREAMGATE__MONITORING__METRICS__SERVICE_NAME=upload`. Values are read as YAML
//! scalars.
//! The config only drives the layers' builders; each layer can be built in code as well.
//!
//! The sections of layers behind a cargo feature (`security.auth`, `security.rate_limiting`,
//! `security.audit_logging`) are known to every build. In a build without the feature, such a
//! section is accepted when it says `enabled: false` (or is empty) and otherwise fails with the
//! key and the feature to turn on, for example
//! ``streamgate.yaml:16:3: security: `security.rate_limiting` needs the `ratelimit` cargo feature ...``.

use std::{fmt, path::Path, time::Duration};

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::config_origin::{Origin, within};

/// The environment variable prefix of single-key overrides.
pub const ENV_PREFIX: &str = "STREAMGATE__";

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Config {
    /// Metrics and alerts.
    pub monitoring: MonitoringConfig,
    /// The response cache.
    pub optimization: OptimizationConfig,
    /// Client addresses and the security layers.
    pub security: SecurityConfig,
    /// Where each key was set, for the errors found when the layers are built.
    #[serde(skip)]
    pub(crate) origin: Origin,
}

/// `monitoring`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
// Without `alerts`, the private unit field is the section's guard, not a non-exhaustive marker.
#[cfg_attr(not(feature = "alerts"), allow(clippy::manual_non_exhaustive))]
pub struct MonitoringConfig {
    /// `monitoring.metrics`.
    pub metrics: MetricsConfig,
    /// `monitoring.alerts`: the rules evaluated over the metrics window (by default the seed's
    /// error-rate and latency rules, logged) and where alerts go.
    #[cfg(feature = "alerts")]
    pub alerts: streamgate_alerts::AlertsConfig,
    /// `monitoring.alerts` in a build without the `alerts` feature: rejected unless it says
    /// `enabled: false`.
    #[cfg(not(feature = "alerts"))]
    #[serde(rename = "alerts", deserialize_with = "compiled_out::alerts")]
    compiled_out_alerts: (),
}

/// `optimization`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct OptimizationConfig {
    /// `optimization.cache`: the seed's `max_size` (10,000) and `ttl` (5m), the route templates
    /// to cache and, for several replicas, `redis` (`url`, `prefix`, `timeout`): the Redis store
    /// they share (the `redis` cargo feature; without it a `redis` section is refused). Without
    /// routes nothing is cached.
    #[cfg(feature = "cache")]
    pub cache: streamgate_cache::CacheConfig,
    /// `optimization.cache` in a build without the `cache` feature: rejected unless it says
    /// `enabled: false`.
    #[cfg(not(feature = "cache"))]
    #[serde(rename = "cache", deserialize_with = "compiled_out::cache")]
    compiled_out_cache: (),
}

/// `monitoring.metrics`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// Whether the metrics layer and `/metrics` are on (default true).
    pub enabled: bool,
    /// The `service_name` label (default `unknown_service`).
    pub service_name: String,
    /// How often histogram samples are folded into their buckets (default 10s).
    #[serde(with = "humantime_serde")]
    pub collection_interval: Duration,
    /// The sliding window of `error_rate`, `success_rate` and the alert evaluator (default 5m).
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Route templates not recorded (`/metrics`, `/health/live` and `/health/ready` never are).
    pub exclude_routes: Vec<String>,
    /// Also record request and response body sizes (default false).
    pub record_body_sizes: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            service_name: "unknown_service".to_owned(),
            collection_interval: Duration::from_secs(10),
            window: Duration::from_secs(300),
            exclude_routes: Vec::new(),
            record_body_sizes: false,
        }
    }
}

/// `security`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct SecurityConfig {
    /// Networks (CIDR or single addresses) whose forwarding header is believed.
    pub trusted_proxies: Vec<String>,
    /// The one header the trusted proxies write the client's address to: `x-forwarded-for`
    /// (the default; nginx, AWS ALB, most load balancers) or `forwarded` (RFC 7239). The other
    /// header is never read, so a client cannot forge it through a proxy that passes it on.
    pub forwarded_header: streamgate_core::ForwardingHeader,
    /// How long a request may take before it is answered 503 (default: unbounded). See
    /// [`hardening`](crate::SecureHeaders) for where it sits.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Option<Duration>,
    /// The security headers added to responses (default: off).
    pub response_headers: crate::ResponseHeadersConfig,
    /// Which browser origins may call the service (default: absent, no CORS headers).
    pub cors: Option<crate::CorsConfig>,
    /// `security.auth`: credential sources (JWT, API keys, gateway headers), roles and the
    /// per-route policy table. Absent: no security context layer.
    #[cfg(feature = "security")]
    pub auth: Option<streamgate_security::config::AuthConfig>,
    /// `security.rate_limiting`: the seed's `capacity` / `refill_rate` default policy (1000 and
    /// 100/s per client IP), named policies and per-route settings. Policies keyed by user run
    /// inside the security layer, the others outside it.
    #[cfg(feature = "ratelimit")]
    pub rate_limiting: streamgate_ratelimit::RateLimitConfig,
    /// `security.audit_logging`: where audit events go and how long they are kept.
    #[cfg(feature = "audit")]
    pub audit_logging: AuditLoggingConfig,
    /// `security.auth` in a build without the `security` feature: rejected when present.
    #[cfg(not(feature = "security"))]
    #[serde(rename = "auth", deserialize_with = "compiled_out::auth")]
    compiled_out_auth: (),
    /// `security.rate_limiting` in a build without the `ratelimit` feature: rejected unless it
    /// says `enabled: false`.
    #[cfg(not(feature = "ratelimit"))]
    #[serde(
        rename = "rate_limiting",
        deserialize_with = "compiled_out::rate_limiting"
    )]
    compiled_out_rate_limiting: (),
    /// `security.audit_logging` in a build without the `audit` feature: rejected unless it says
    /// `enabled: false`.
    #[cfg(not(feature = "audit"))]
    #[serde(
        rename = "audit_logging",
        deserialize_with = "compiled_out::audit_logging"
    )]
    compiled_out_audit_logging: (),
}

/// The sections of layers a build left out. The keys are always known, so the shipped
/// `streamgate.yaml` does not fail with "unknown field"; a section that would turn the missing
/// layer on fails with the key and the cargo feature that builds it.
#[cfg(not(all(
    feature = "security",
    feature = "ratelimit",
    feature = "audit",
    feature = "alerts",
    feature = "cache"
)))]
#[allow(
    dead_code,
    reason = "each function is used only when its feature is off"
)]
mod compiled_out {
    use serde::{Deserialize, Deserializer, de::Error};
    use serde_yaml_ng::Value;

    /// Accepts the section at `key` only when it is empty or, when `has_enabled`, says `enabled: false`.
    fn check<'de, D: Deserializer<'de>>(
        deserializer: D,
        key: &str,
        feature: &str,
        has_enabled: bool,
    ) -> Result<(), D::Error> {
        let value = Value::deserialize(deserializer)?;
        let off = match &value {
            Value::Null => true,
            Value::Mapping(map) if has_enabled => {
                map.get("enabled").and_then(Value::as_bool) == Some(false)
            }
            _ => false,
        };
        if off {
            return Ok(());
        }
        let hint = if has_enabled {
            " (or set `enabled: false`)"
        } else {
            " (or remove the section)"
        };
        Err(D::Error::custom(format!(
            "`{key}` needs the `{feature}` cargo feature of streamgate, which this build leaves out{hint}"
        )))
    }

    pub(super) fn auth<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
        check(deserializer, "security.auth", "security", false)
    }

    pub(super) fn rate_limiting<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<(), D::Error> {
        check(deserializer, "security.rate_limiting", "ratelimit", true)
    }

    pub(super) fn audit_logging<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<(), D::Error> {
        check(deserializer, "security.audit_logging", "audit", true)
    }

    pub(super) fn alerts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
        check(deserializer, "monitoring.alerts", "alerts", true)
    }

    pub(super) fn cache<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
        check(deserializer, "optimization.cache", "cache", true)
    }
}

/// Where audit events are written.
#[cfg(feature = "audit")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditSinkKind {
    /// Structured `tracing` events (target `streamgate::audit`); needs no setup.
    #[default]
    Tracing,
    /// Hash-chained, signed JSON-lines files in `dir`, verifiable with `streamgate-audit verify`;
    /// the signing key (hex, at least 16 bytes) is read from the variable `key_env`.
    File,
    /// A PostgreSQL table that replicas share (`postgres`), one hash chain and signed head per
    /// instance, signed with the key in `key_env`; needs the `postgres` feature.
    Postgres,
}

/// `security.audit_logging.postgres`: the database of the `postgres` sink.
#[cfg(feature = "audit")]
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditPostgresConfig {
    /// The database (`postgres://user@host/db`; no TLS: a local socket, a sidecar or a trusted
    /// network).
    pub url: String,
    /// This replica's id, which should survive restarts (a StatefulSet pod name): its chain,
    /// head and retention are its own. Default: the `HOSTNAME` variable, else the host's name.
    #[serde(default)]
    pub instance: Option<String>,
    /// The events table (default `audit_events`; heads go to `<table>_heads`).
    #[serde(default = "default_audit_table")]
    pub table: String,
}

#[cfg(feature = "audit")]
fn default_audit_table() -> String {
    "audit_events".to_owned()
}

/// `security.audit_logging`.
#[cfg(feature = "audit")]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AuditLoggingConfig {
    /// Whether requests are audited (default true, as in the seed).
    pub enabled: bool,
    /// The sink (default `tracing`).
    pub sink: AuditSinkKind,
    /// The directory of the file sink (default `audit`).
    pub dir: std::path::PathBuf,
    /// The environment variable holding the file and PostgreSQL sinks' signing key, hex (default
    /// `STREAMGATE_AUDIT_KEY`). Keys never live in the configuration file.
    pub key_env: String,
    /// A file holding the signing key, hex (a mounted secret); when set, it is read instead of
    /// `key_env`.
    pub key_file: Option<std::path::PathBuf>,
    /// How long the file and PostgreSQL sinks keep events (default 30d).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// The database of the `postgres` sink.
    pub postgres: Option<AuditPostgresConfig>,
    /// Events the queue holds before `when_full` applies (default 65536).
    pub queue_capacity: usize,
    /// What a full queue does: `block` (default, nothing is lost) or `drop_oldest` (counted in
    /// `streamgate_audit_dropped_total`).
    pub when_full: AuditWhenFull,
}

/// `security.audit_logging.when_full`.
#[cfg(feature = "audit")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditWhenFull {
    /// Requests wait for room: nothing is lost.
    #[default]
    Block,
    /// The oldest queued event is dropped and counted.
    DropOldest,
}

#[cfg(feature = "audit")]
impl Default for AuditLoggingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sink: AuditSinkKind::Tracing,
            dir: "audit".into(),
            key_env: "STREAMGATE_AUDIT_KEY".to_owned(),
            key_file: None,
            retention: Duration::from_secs(30 * 86_400),
            postgres: None,
            queue_capacity: 65_536,
            when_full: AuditWhenFull::Block,
        }
    }
}

/// A configuration that could not be read, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    source_name: String,
    line: Option<usize>,
    column: Option<usize>,
    message: String,
}

impl ConfigError {
    pub(crate) fn new(source_name: &str, message: impl Into<String>) -> Self {
        Self {
            source_name: source_name.to_owned(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub(crate) fn at(
        source_name: &str,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Self {
            source_name: source_name.to_owned(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
        }
    }

    fn from_yaml(source_name: &str, error: &serde_yaml_ng::Error) -> Self {
        let location = error.location();
        let mut message = error.to_string();
        // The YAML error repeats the location at the end; it is in the prefix already.
        if let Some(at) = message.find(" at line ") {
            message.truncate(at);
        }
        Self {
            source_name: source_name.to_owned(),
            line: location.as_ref().map(serde_yaml_ng::Location::line),
            column: location.as_ref().map(serde_yaml_ng::Location::column),
            message,
        }
    }

    /// The file (or environment variable) the error is in.
    #[must_use]
    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// The 1-based line, when known.
    #[must_use]
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What is wrong, starting with the key path.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "{}:{line}:{column}: {}", self.source_name, self.message)
            }
            _ => write!(f, "{}: {}", self.source_name, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads `path`, then applies `STREAMGATE__...` overrides from the environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file, line and key (or the environment variable).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::new(&name, format!("cannot read: {error}")))?;
        Self::from_yaml_str_with_env(&name, &text, env_overrides(std::env::vars_os())?)
    }

    /// Parses YAML text; `source_name` is what errors call it. No environment overrides.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the source, line and key.
    pub fn from_yaml_str(source_name: &str, text: &str) -> Result<Self, ConfigError> {
        Self::from_yaml_str_with_env(source_name, text, std::iter::empty())
    }

    /// Parses YAML text, then applies the overrides among `vars` (pairs of name and value, for
    /// example `std::env::vars()`).
    ///
    /// A value is read as a YAML scalar (`true`, `10`, `5m`); where that does not fit the key and
    /// the text as a string does (`service_name` given as `2048`, `null` or `api: v2`), it is
    /// taken as written.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the source, line and key, or the environment variable.
    pub fn from_yaml_str_with_env(
        source_name: &str,
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        // An empty file is an empty mapping: every default.
        let text = if text.trim().is_empty() { "{}" } else { text };
        let mut config: Self = serde_yaml_ng::from_str(text)
            .map_err(|error| ConfigError::from_yaml(source_name, &error))?;
        let mut origin = Origin::new(source_name, text);
        config.origin = origin.clone();
        let overrides: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX))
            .collect();
        if overrides.is_empty() {
            config.check()?;
            return Ok(config);
        }
        // Every variable goes into the tree before it is read once, so that their order does not
        // matter (a section half set by one variable is whole once the next is in).
        let mut tree: Value = serde_yaml_ng::from_str(text)
            .map_err(|error| ConfigError::from_yaml(source_name, &error))?;
        let mut applied = Vec::with_capacity(overrides.len());
        for (name, value) in &overrides {
            let keys: Vec<String> = name[ENV_PREFIX.len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect();
            let typed: Value =
                serde_yaml_ng::from_str(value).unwrap_or_else(|_| Value::String(value.clone()));
            let as_written = (typed != Value::String(value.clone())).then(|| value.clone());
            set_path(&mut tree, &keys, typed).map_err(|message| ConfigError::new(name, message))?;
            applied.push(Applied {
                name,
                path: keys.join("."),
                keys,
                as_written,
            });
        }
        let mut config = loop {
            let error = match serde_path_to_error::deserialize::<_, Self>(tree.clone()) {
                Ok(config) => break config,
                Err(error) => error,
            };
            let at = error.path().to_string();
            // A value read as a number or a boolean where the key takes text: take it as
            // written, and read again.
            if let Some(variable) = applied
                .iter_mut()
                .find(|a| a.path == at && a.as_written.is_some())
            {
                let text = variable.as_written.take().unwrap_or_default();
                set_path(&mut tree, &variable.keys, Value::String(text))
                    .map_err(|message| ConfigError::new(variable.name, message))?;
                continue;
            }
            // The variable that set this key or one inside it (by name, whatever the order),
            // else one that set the section around it; without one the file is at fault.
            let blamed = applied
                .iter()
                .filter(|a| within(&a.path, &at))
                .chain(applied.iter().filter(|a| within(&at, &a.path)))
                .map(|a| a.name)
                .min();
            let message = error.into_inner().to_string();
            return Err(match blamed {
                Some(name) => ConfigError::new(name, message),
                None => ConfigError::new(source_name, message),
            });
        };
        for variable in &applied {
            origin.overridden(&variable.path, variable.name);
        }
        config.origin = origin;
        // A key a variable set is that variable's fault; any other the file's, at its line.
        config.check()?;
        Ok(config)
    }

    /// An error about the key `key` (`security.cors`), placed where it was set: the file's line
    /// and column, or the environment variable.
    pub(crate) fn error_at(&self, key: &str, message: impl fmt::Display) -> ConfigError {
        self.origin.error(key, message)
    }

    /// Checks what the types alone cannot, each error placed where its key was set (the
    /// variable, or the file's line).
    fn check(&self) -> Result<(), ConfigError> {
        let fail = |key: &str, message: &dyn fmt::Display| self.error_at(key, message);
        streamgate_core::TrustedProxies::parse(&self.security.trusted_proxies)
            .map_err(|e| fail("security.trusted_proxies", &e))?;
        if self.monitoring.metrics.window.is_zero() {
            return Err(fail(
                "monitoring.metrics.window",
                &"must be longer than zero",
            ));
        }
        if self.monitoring.metrics.service_name.trim().is_empty() {
            return Err(fail(
                "monitoring.metrics.service_name",
                &"must name the service (it labels every series and alert)",
            ));
        }
        if self.monitoring.metrics.collection_interval.is_zero() {
            return Err(fail(
                "monitoring.metrics.collection_interval",
                &"must be longer than zero",
            ));
        }
        #[cfg(feature = "alerts")]
        if self.monitoring.alerts.enabled && self.monitoring.alerts.check_interval.is_zero() {
            return Err(fail(
                "monitoring.alerts.check_interval",
                &"must be longer than zero",
            ));
        }
        Ok(())
    }
}

/// One `STREAMGATE__` variable put into the configuration tree.
struct Applied<'a> {
    name: &'a str,
    /// The keys of the path it sets, outermost first.
    keys: Vec<String>,
    /// The same, dotted (`security.cors.allow_origins`).
    path: String,
    /// Its text, while the tree holds it read as YAML (`10`, `true`) and the text itself might
    /// be what the key takes.
    as_written: Option<String>,
}

/// The `STREAMGATE__` variables among `vars`, as text. Variables of other programs that are not
/// UTF-8 are skipped.
///
/// # Errors
/// A [`ConfigError`] naming a `STREAMGATE__` variable whose name or value is not UTF-8.
fn env_overrides(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut overrides = Vec::new();
    for (name, value) in vars {
        let shown = name.to_string_lossy();
        if !shown.starts_with(ENV_PREFIX) {
            continue;
        }
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            return Err(ConfigError::new(
                &shown,
                "the environment variable is not valid UTF-8",
            ));
        };
        overrides.push((name.to_owned(), value.to_owned()));
    }
    Ok(overrides)
}

fn set_path(tree: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("names no key".to_owned());
    };
    let mut node = tree;
    for key in parents {
        if node.is_null() {
            *node = Value::Mapping(serde_yaml_ng::Mapping::new());
        }
        let Value::Mapping(map) = node else {
            return Err(format!("`{key}` is inside a value that is not a mapping"));
        };
        node = map.entry(Value::String(key.clone())).or_insert(Value::Null);
    }
    if node.is_null() {
        *node = Value::Mapping(serde_yaml_ng::Mapping::new());
    }
    let Value::Mapping(map) = node else {
        return Err(format!("`{last}` is inside a value that is not a mapping"));
    };
    map.insert(Value::String(last.clone()), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(not(feature = "ratelimit"))]
    fn a_rate_limit_section_without_its_feature_names_the_feature() {
        let text = "security:\n  rate_limiting:\n    enabled: true\n    capacity: 5\n";
        let error = Config::from_yaml_str("s.yaml", text).unwrap_err();
        assert_eq!(error.line(), Some(2), "{error}");
        assert!(
            error
                .message()
                .starts_with("security: `security.rate_limiting` needs")
                && error.message().contains("`ratelimit` cargo feature"),
            "{error}"
        );
        let text = "security:\n  rate_limiting:\n    enabled: false\n    capacity: 5\n";
        Config::from_yaml_str("s.yaml", text).unwrap();
    }

    #[test]
    #[cfg(all(feature = "cache", not(feature = "redis")))]
    fn a_cache_redis_section_without_the_redis_feature_names_the_feature() {
        let text = "optimization:\n  cache:\n    ttl: 1m\n    redis: {url: \"redis://x\"}\n";
        let error = Config::from_yaml_str("s.yaml", text).unwrap_err();
        assert_eq!(error.line(), Some(3), "{error}");
        assert!(
            error.message().starts_with(
                "optimization.cache: `optimization.cache.redis` needs the `redis` cargo feature"
            ),
            "{error}"
        );
        Config::from_yaml_str("s.yaml", "optimization:\n  cache:\n    redis: null\n").unwrap();
    }

    #[test]
    #[cfg(not(feature = "audit"))]
    fn an_audit_section_without_its_feature_names_the_feature() {
        let error = Config::from_yaml_str("s.yaml", "security:\n  audit_logging: {sink: file}\n")
            .unwrap_err();
        assert!(error.message().contains("`audit` cargo feature"), "{error}");
        Config::from_yaml_str("s.yaml", "security:\n  audit_logging: {enabled: false}\n").unwrap();
    }

    #[test]
    #[cfg(not(feature = "security"))]
    fn an_auth_section_without_its_feature_names_the_feature() {
        let text = "security:\n  auth:\n    allow_anonymous: true\n";
        let error = Config::from_yaml_str("s.yaml", text).unwrap_err();
        assert!(
            error.message().contains("`security` cargo feature"),
            "{error}"
        );
    }

    #[test]
    #[cfg(not(all(feature = "ratelimit", feature = "audit")))]
    fn the_shipped_file_names_the_missing_feature() {
        let text = include_str!("../streamgate.yaml");
        let error = Config::from_yaml_str("streamgate.yaml", text).unwrap_err();
        assert!(error.message().contains("cargo feature"), "{error}");
        assert!(!error.message().contains("unknown field"), "{error}");
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let config = Config::from_yaml_str("empty.yaml", "").unwrap();
        assert_eq!(config.monitoring, MonitoringConfig::default());
        assert!(config.security.trusted_proxies.is_empty());
        assert_eq!(config.monitoring.metrics.window, Duration::from_secs(300));
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "monitoring:\n  metrics:\n    enabled: true\n    windw: 5m\n";
        let error = Config::from_yaml_str("conf/streamgate.yaml", text).unwrap_err();
        assert_eq!(error.line(), Some(4));
        let shown = error.to_string();
        assert!(
            shown
                .starts_with("conf/streamgate.yaml:4:5: monitoring.metrics: unknown field `windw`"),
            "{shown}"
        );
    }

    #[test]
    fn bad_duration_is_located() {
        let text = "monitoring:\n  metrics:\n    window: five minutes\n";
        let error = Config::from_yaml_str("s.yaml", text).unwrap_err();
        assert_eq!(error.line(), Some(3), "{error}");
        assert!(
            error.message().contains("monitoring.metrics.window"),
            "{error}"
        );
    }

    #[test]
    fn durations_are_humane() {
        let text = "monitoring:\n  metrics:\n    window: 90s\n    collection_interval: 500ms\n";
        let config = Config::from_yaml_str("s.yaml", text).unwrap();
        assert_eq!(config.monitoring.metrics.window, Duration::from_secs(90));
        assert_eq!(
            config.monitoring.metrics.collection_interval,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn environment_overrides_single_keys() {
        let vars = [
            (
                "STREAMGATE__MONITORING__METRICS__SERVICE_NAME".to_owned(),
                "upload".to_owned(),
            ),
            (
                "STREAMGATE__MONITORING__METRICS__RECORD_BODY_SIZES".to_owned(),
                "true".to_owned(),
            ),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let text = "monitoring:\n  metrics:\n    service_name: shop\n";
        let config = Config::from_yaml_str_with_env("s.yaml", text, vars).unwrap();
        assert_eq!(config.monitoring.metrics.service_name, "upload");
        assert!(config.monitoring.metrics.record_body_sizes);
    }

    #[test]
    fn environment_override_of_unknown_key_names_the_variable() {
        let vars = [(
            "STREAMGATE__MONITORING__METRICS__SERVISE".to_owned(),
            "x".to_owned(),
        )];
        let error = Config::from_yaml_str_with_env("s.yaml", "", vars).unwrap_err();
        assert_eq!(
            error.source_name(),
            "STREAMGATE__MONITORING__METRICS__SERVISE"
        );
        assert!(
            error.message().contains("unknown field `servise`"),
            "{error}"
        );
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn string_keys_take_values_that_read_as_other_yaml_as_written() {
        for value in ["2048", "null", "api: v2", "true", "~", "[a]"] {
            let vars = env(&[("STREAMGATE__MONITORING__METRICS__SERVICE_NAME", value)]);
            let config = Config::from_yaml_str_with_env("s.yaml", "", vars)
                .unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert_eq!(config.monitoring.metrics.service_name, value);
        }
        let vars = env(&[("STREAMGATE__SECURITY__TRUSTED_PROXIES", "[\"10.0.0.0/8\"]")]);
        let config = Config::from_yaml_str_with_env("s.yaml", "", vars).unwrap();
        assert_eq!(config.security.trusted_proxies, ["10.0.0.0/8"]);
    }

    #[test]
    fn a_bad_typed_override_names_the_variable() {
        let vars = env(&[(
            "STREAMGATE__MONITORING__METRICS__RECORD_BODY_SIZES",
            "maybe",
        )]);
        let error = Config::from_yaml_str_with_env("s.yaml", "", vars).unwrap_err();
        assert_eq!(
            error.source_name(),
            "STREAMGATE__MONITORING__METRICS__RECORD_BODY_SIZES"
        );

        let vars = env(&[("STREAMGATE__MONITORING__METRICS__WINDOW", "0s")]);
        let error = Config::from_yaml_str_with_env("s.yaml", "", vars).unwrap_err();
        assert_eq!(
            error.to_string(),
            "STREAMGATE__MONITORING__METRICS__WINDOW: monitoring.metrics.window: must be longer than zero"
        );

        let vars = env(&[("STREAMGATE__SECURITY__TRUSTED_PROXIES", "[ten]")]);
        let error = Config::from_yaml_str_with_env("s.yaml", "", vars).unwrap_err();
        assert_eq!(error.source_name(), "STREAMGATE__SECURITY__TRUSTED_PROXIES");
    }

    #[test]
    fn the_order_of_the_variables_does_not_matter() {
        let origins = (
            "STREAMGATE__SECURITY__CORS__ALLOW_ORIGINS",
            "[\"https://a.example\"]",
        );
        let credentials = ("STREAMGATE__SECURITY__CORS__ALLOW_CREDENTIALS", "true");
        for vars in [[origins, credentials], [credentials, origins]] {
            let config = Config::from_yaml_str_with_env("s.yaml", "", env(&vars)).unwrap();
            let cors = config.security.cors.unwrap();
            assert!(cors.allow_credentials);
            assert_eq!(cors.allow_origins, ["https://a.example"]);
        }
        // Alone, the second leaves the section without its origins: that variable is named.
        let error = Config::from_yaml_str_with_env("s.yaml", "", env(&[credentials])).unwrap_err();
        assert_eq!(
            error.source_name(),
            "STREAMGATE__SECURITY__CORS__ALLOW_CREDENTIALS"
        );
        assert!(error.to_string().contains("allow_origins"), "{error}");
        // Text that reads as a number, where the key takes text, is taken as written, whatever
        // else is set.
        let vars = env(&[
            ("STREAMGATE__MONITORING__METRICS__WINDOW", "2m"),
            ("STREAMGATE__MONITORING__METRICS__SERVICE_NAME", "2048"),
        ]);
        let config = Config::from_yaml_str_with_env("s.yaml", "", vars).unwrap();
        assert_eq!(config.monitoring.metrics.service_name, "2048");
        assert_eq!(config.monitoring.metrics.window, Duration::from_secs(120));
    }

    #[test]
    fn a_file_error_stays_the_files_unless_a_variable_fixes_it() {
        let text = "monitoring:\n  metrics:\n    window: 0s\n";
        let vars = env(&[("STREAMGATE__MONITORING__METRICS__SERVICE_NAME", "shop")]);
        let error = Config::from_yaml_str_with_env("s.yaml", text, vars).unwrap_err();
        assert_eq!(error.source_name(), "s.yaml");
        let vars = env(&[("STREAMGATE__MONITORING__METRICS__WINDOW", "1m")]);
        let config = Config::from_yaml_str_with_env("s.yaml", text, vars).unwrap();
        assert_eq!(config.monitoring.metrics.window, Duration::from_secs(60));
    }

    #[test]
    fn zero_intervals_and_an_empty_service_name_are_refused_at_their_key() {
        let error = Config::from_yaml_str(
            "s.yaml",
            "monitoring:\n  metrics:\n    collection_interval: 0s\n",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "s.yaml:3:5: monitoring.metrics.collection_interval: must be longer than zero"
        );
        let error = Config::from_yaml_str(
            "s.yaml",
            "monitoring:\n  metrics:\n    service_name: \"\"\n",
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("s.yaml:3:5: monitoring.metrics.service_name: must name the service"),
            "{error}"
        );
        #[cfg(feature = "alerts")]
        {
            let text = "monitoring:\n  alerts:\n    check_interval: 0s\n";
            let error = Config::from_yaml_str("s.yaml", text).unwrap_err();
            assert_eq!(
                error.to_string(),
                "s.yaml:3:5: monitoring.alerts.check_interval: must be longer than zero"
            );
            let text = "monitoring:\n  alerts:\n    enabled: false\n    check_interval: 0s\n";
            Config::from_yaml_str("s.yaml", text).expect("alerts off: the interval is unused");
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_variables_are_skipped_unless_they_are_ours() {
        use std::{ffi::OsString, os::unix::ffi::OsStringExt};
        let bad = || OsString::from_vec(vec![b'x', 0xff]);
        let name = |n: &str| OsString::from(n);
        let vars = vec![
            (name("OTHER"), bad()),
            (OsString::from_vec(b"OTHER_\xff".to_vec()), name("x")),
            (
                name("STREAMGATE__MONITORING__METRICS__ENABLED"),
                name("false"),
            ),
        ];
        let overrides = env_overrides(vars).unwrap();
        assert_eq!(
            overrides,
            env(&[("STREAMGATE__MONITORING__METRICS__ENABLED", "false")])
        );

        let vars = vec![(name("STREAMGATE__MONITORING__METRICS__SERVICE_NAME"), bad())];
        let error = env_overrides(vars).unwrap_err();
        assert_eq!(
            error.source_name(),
            "STREAMGATE__MONITORING__METRICS__SERVICE_NAME"
        );
        assert!(error.message().contains("UTF-8"), "{error}");
    }

    #[test]
    fn forwarded_header_defaults_to_x_forwarded_for() {
        use streamgate_core::ForwardingHeader;
        let config = Config::from_yaml_str("s.yaml", "security:\n  trusted_proxies: []\n").unwrap();
        assert_eq!(
            config.security.forwarded_header,
            ForwardingHeader::XForwardedFor
        );
        let text =
            "security:\n  trusted_proxies: [\"10.0.0.0/8\"]\n  forwarded_header: forwarded\n";
        let config = Config::from_yaml_str("s.yaml", text).unwrap();
        assert_eq!(
            config.security.forwarded_header,
            ForwardingHeader::Forwarded
        );
        let text = "security:\n  forwarded_header: x-real-ip\n";
        let error = Config::from_yaml_str("s.yaml", text).unwrap_err();
        assert_eq!(error.line(), Some(2), "{error}");
    }

    #[test]
    fn invalid_trusted_proxy_is_named() {
        let error = Config::from_yaml_str("s.yaml", "security:\n  trusted_proxies: [\"ten\"]\n")
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("security.trusted_proxies: `ten`"),
            "{error}"
        );
    }
}
