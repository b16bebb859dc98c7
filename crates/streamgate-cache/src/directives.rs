//! The `Cache-Control` directives the cache acts on (RFC 9111 §5.2).

use std::time::Duration;

use http::{HeaderMap, header::CACHE_CONTROL};

/// What a request's or a response's `Cache-Control` says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Directives {
    pub(crate) no_store: bool,
    pub(crate) no_cache: bool,
    pub(crate) private: bool,
    pub(crate) max_age: Option<Duration>,
    pub(crate) s_maxage: Option<Duration>,
}

impl Directives {
    /// The directives of every `Cache-Control` line in `headers`; unknown ones are ignored.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut directives = Self::default();
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(text) = value.to_str() else {
                // Unreadable: the safe reading is "do not store".
                directives.no_store = true;
                continue;
            };
            for directive in text.split(',') {
                let (name, argument) = match directive.split_once('=') {
                    Some((name, argument)) => {
                        (name.trim(), Some(argument.trim().trim_matches('"')))
                    }
                    None => (directive.trim(), None),
                };
                let seconds = || {
                    argument
                        .and_then(|a| a.parse::<u64>().ok())
                        .map(Duration::from_secs)
                };
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => directives.no_store = true,
                    "no-cache" => directives.no_cache = true,
                    "private" => directives.private = true,
                    // A malformed age is treated as 0, which RFC 9111 §4.2.1 asks for.
                    "max-age" => directives.max_age = Some(seconds().unwrap_or_default()),
                    "s-maxage" => directives.s_maxage = Some(seconds().unwrap_or_default()),
                    _ => {}
                }
            }
        }
        directives
    }

    /// How long a shared cache may keep the response: `s-maxage`, else `max-age`.
    pub(crate) fn lifetime(self) -> Option<Duration> {
        self.s_maxage.or(self.max_age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn of(value: &str) -> Directives {
        let mut headers = HeaderMap::new();
        headers.insert(CACHE_CONTROL, HeaderValue::from_str(value).unwrap());
        Directives::of(&headers)
    }

    #[test]
    fn reads_the_directives_it_acts_on() {
        let d = of("public, Max-Age=60, s-maxage=\"30\"");
        assert_eq!(d.max_age, Some(Duration::from_secs(60)));
        assert_eq!(d.lifetime(), Some(Duration::from_secs(30)));
        assert!(of("no-store").no_store);
        assert!(of("private, max-age=5").private);
        assert!(of("no-cache").no_cache);
        assert_eq!(of("max-age=soon").max_age, Some(Duration::ZERO));
        assert_eq!(Directives::of(&HeaderMap::new()), Directives::default());
    }
}
