//! `security.cors`: which browser origins may call the service, checked when the configuration is
//! read (tower-http's `CorsLayer` would panic at the first request on a combination the CORS
//! protocol forbids).
//!
//! ```yaml
//! security:
//!   cors:
//!     allow_origins: ["https://app.example.com"]   # or ["*"] for any origin
//!     allow_credentials: false                      # cookies / Authorization from the browser
//!     # defaults: allow_methods GET, POST, PUT, PATCH, DELETE; allow_headers authorization,
//!     # content-type; expose_headers x-request-id and the rate-limit headers; max_age 10m
//! ```

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// `security.cors`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CorsConfig {
    /// Origins allowed to call (`https://app.example.com`: no path, no wildcard inside; case and
    /// a default port do not matter), or `["*"]` for any.
    pub allow_origins: Vec<String>,
    /// Methods a preflight allows (default `GET`, `POST`, `PUT`, `PATCH`, `DELETE`).
    #[serde(default = "default_methods")]
    pub allow_methods: Vec<String>,
    /// Request headers a preflight allows (default `authorization`, `content-type`).
    #[serde(default = "default_allow_headers")]
    pub allow_headers: Vec<String>,
    /// Response headers scripts may read (default `x-request-id`, `ratelimit`,
    /// `ratelimit-policy`, `retry-after`).
    #[serde(default = "default_expose_headers")]
    pub expose_headers: Vec<String>,
    /// Whether the browser may send credentials (cookies, `Authorization`); not with `"*"` in
    /// any of the lists.
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long a browser may keep a preflight's answer (default 10m).
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub max_age: Duration,
}

fn default_methods() -> Vec<String> {
    ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .map(str::to_owned)
        .to_vec()
}

fn default_allow_headers() -> Vec<String> {
    ["authorization", "content-type"]
        .map(str::to_owned)
        .to_vec()
}

fn default_expose_headers() -> Vec<String> {
    [
        "x-request-id",
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn default_max_age() -> Duration {
    Duration::from_secs(600)
}

impl CorsConfig {
    /// Origins allowed to call, with the other settings at their defaults.
    #[must_use]
    pub fn allow(origins: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            allow_origins: origins.into_iter().map(Into::into).collect(),
            allow_methods: default_methods(),
            allow_headers: default_allow_headers(),
            expose_headers: default_expose_headers(),
            allow_credentials: false,
            max_age: default_max_age(),
        }
    }

    /// tower-http's layer for this configuration.
    ///
    /// # Errors
    /// No origin, an origin that is not `scheme://host[:port]`, `"*"` among other origins or with
    /// `allow_credentials`, or a method or header name that is not one.
    pub fn layer(&self) -> Result<CorsLayer, String> {
        let origin = if self.allow_origins.iter().any(|o| o == "*") {
            if self.allow_origins.len() > 1 {
                return Err("allow_origins: \"*\" allows every origin; list no other".to_owned());
            }
            if self.allow_credentials {
                return Err(
                    "allow_credentials: browsers refuse credentials with allow_origins [\"*\"]; list the origins"
                        .to_owned(),
                );
            }
            AllowOrigin::any()
        } else if self.allow_origins.is_empty() {
            return Err("allow_origins: name at least one origin, or \"*\"".to_owned());
        } else {
            let origins = self
                .allow_origins
                .iter()
                .map(|origin| origin_value(origin))
                .collect::<Result<Vec<_>, _>>()?;
            AllowOrigin::list(origins)
        };
        if self.allow_credentials {
            for (key, values) in [
                ("allow_methods", &self.allow_methods),
                ("allow_headers", &self.allow_headers),
                ("expose_headers", &self.expose_headers),
            ] {
                if values.iter().any(|value| value == "*") {
                    return Err(format!(
                        "{key}: browsers refuse credentials with \"*\" (it would not mean every \
                         one); list them"
                    ));
                }
            }
        }
        let methods = self
            .allow_methods
            .iter()
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("allow_methods: {m:?} is not a method"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CorsLayer::new()
            .allow_origin(origin)
            .allow_methods(methods)
            .allow_headers(header_names("allow_headers", &self.allow_headers)?)
            .expose_headers(header_names("expose_headers", &self.expose_headers)?)
            .allow_credentials(self.allow_credentials)
            .max_age(self.max_age))
    }
}

/// An origin as browsers send it (`scheme://host[:port]`, nothing after), written as they write
/// it: scheme and host in lower case, without the scheme's default port. Browsers' `Origin` is
/// compared with it byte for byte, so `https://App.example.com:443` must become
/// `https://app.example.com` to ever match.
fn origin_value(origin: &str) -> Result<HeaderValue, String> {
    let bad = || format!("allow_origins: {origin:?} is not an origin (scheme://host[:port])");
    let uri: http::Uri = origin.parse().map_err(|_| bad())?;
    let whole = uri.path_and_query().is_none_or(|p| p.as_str() == "/") && !origin.ends_with('/');
    let (Some(scheme), Some(authority), true) = (uri.scheme_str(), uri.authority(), whole) else {
        return Err(bad());
    };
    if authority.as_str().contains('@') {
        return Err(format!(
            "allow_origins: {origin:?} has a user in it, which an origin never has"
        ));
    }
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    };
    let port = authority
        .port_u16()
        .filter(|port| Some(*port) != default_port)
        .map_or_else(String::new, |port| format!(":{port}"));
    let host = authority.host().to_ascii_lowercase();
    HeaderValue::from_str(&format!("{scheme}://{host}{port}")).map_err(|_| bad())
}

fn header_names(key: &str, names: &[String]) -> Result<Vec<HeaderName>, String> {
    names
        .iter()
        .map(|name| {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{key}: {name:?} is not a header name"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_browsers_would_refuse_is_refused_here() {
        let error = |config: CorsConfig| config.layer().unwrap_err();
        assert!(error(CorsConfig::allow(Vec::<String>::new())).contains("at least one origin"));
        assert!(error(CorsConfig::allow(["*", "https://a.example"])).contains("list no other"));
        let mut credentials = CorsConfig::allow(["*"]);
        credentials.allow_credentials = true;
        assert!(error(credentials).contains("allow_credentials"));
        for origin in [
            "https://a.example/",
            "https://a.example/app",
            "a.example",
            "*.example",
        ] {
            assert!(
                error(CorsConfig::allow([origin])).contains("is not an origin"),
                "{origin}"
            );
        }
        let mut methods = CorsConfig::allow(["https://a.example"]);
        methods.allow_methods = vec!["GE T".to_owned()];
        assert!(error(methods).contains("allow_methods"));
        assert!(
            CorsConfig::allow(["https://a.example:8443", "http://localhost:3000"])
                .layer()
                .is_ok()
        );
        assert!(error(CorsConfig::allow(["https://user@a.example"])).contains("has a user"));
        for key in ["allow_methods", "allow_headers", "expose_headers"] {
            let mut wildcard = CorsConfig::allow(["https://a.example"]);
            wildcard.allow_credentials = true;
            let list = match key {
                "allow_methods" => &mut wildcard.allow_methods,
                "allow_headers" => &mut wildcard.allow_headers,
                _ => &mut wildcard.expose_headers,
            };
            *list = vec!["*".to_owned()];
            let message = error(wildcard);
            assert!(message.starts_with(key), "{key}: {message}");
        }
    }

    #[test]
    fn origins_are_written_as_browsers_send_them() {
        for (configured, sent) in [
            ("https://App.Example.com", "https://app.example.com"),
            ("HTTPS://a.example:443", "https://a.example"),
            ("http://a.example:80", "http://a.example"),
            ("http://a.example:8080", "http://a.example:8080"),
            ("https://a.example:80", "https://a.example:80"),
            ("http://[::1]:3000", "http://[::1]:3000"),
        ] {
            assert_eq!(origin_value(configured).unwrap(), sent, "{configured}");
        }
    }
}
