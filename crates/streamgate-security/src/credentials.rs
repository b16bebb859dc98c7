//! Reading credentials off a request: the bearer token, the session cookie and its CSRF check,
//! and the query-string token that is never accepted.

use http::{HeaderMap, Method, Request, Uri, header};

/// What the `Authorization` lines of a request say about a bearer token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Bearer<'a> {
    /// No line holds a bearer token.
    Absent,
    /// One line, `Authorization: Bearer <token>` (scheme case-insensitive), as bytes: the cache
    /// hashes and compares bytes, and only a token that reaches full verification is checked
    /// for UTF-8.
    Token(&'a [u8]),
    /// Several lines, one of them a bearer token: which one is meant is ambiguous (a client's
    /// line and a proxy's, or two tokens), so none is used.
    Ambiguous,
}

pub(crate) fn bearer(headers: &HeaderMap) -> Bearer<'_> {
    let mut lines = headers.get_all(header::AUTHORIZATION).iter();
    let Some(first) = lines.next() else {
        return Bearer::Absent;
    };
    let first = bearer_token(first.as_bytes());
    let mut several = false;
    let mut any = first.is_some();
    for line in lines {
        several = true;
        any |= bearer_token(line.as_bytes()).is_some();
    }
    match (first, several, any) {
        (_, true, true) => Bearer::Ambiguous,
        (Some(token), false, _) => Bearer::Token(token),
        _ => Bearer::Absent,
    }
}

fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// The value of cookie `name`.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').as_bytes())
        .filter(|value| !value.is_empty())
}

/// Whether a request that authenticates with a cookie may proceed: safe methods always, unsafe
/// ones only when the browser says the request is same-origin (`Sec-Fetch-Site`) or `Origin`
/// names the request's own host. A request with neither header is not from a browser that could
/// be tricked and passes (the scheme of Go 1.25's `CrossOriginProtection`).
pub(crate) fn same_origin<B>(request: &Request<B>) -> bool {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return true;
    }
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(host) = request
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
    else {
        return false;
    };
    origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .is_some_and(|(_, authority)| authority == host)
}

/// Whether the query string carries a bearer token as RFC 6750 section 2.3 names it
/// (`access_token=`), which is refused. Other names (`token`, `code`) belong to the application:
/// an e-mail verification link's `?token=` is not a credential.
pub(crate) fn token_in_query(uri: &Uri) -> bool {
    uri.query().is_some_and(|query| {
        query.split('&').any(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            key.eq_ignore_ascii_case("access_token")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri("/x");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_others_ignored() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "bearer abc.def.ghi".parse().unwrap());
        assert_eq!(bearer(&headers), Bearer::Token(&b"abc.def.ghi"[..]));
        headers.insert(header::AUTHORIZATION, "Basic dXNlcjpwYXNz".parse().unwrap());
        assert_eq!(bearer(&headers), Bearer::Absent);
        assert_eq!(bearer(&HeaderMap::new()), Bearer::Absent);
    }

    #[test]
    fn several_authorization_lines_with_a_bearer_token_are_ambiguous() {
        for lines in [
            ["Bearer good.token.here", "Bearer garbage"],
            ["Basic dXNlcjpwYXNz", "Bearer good.token.here"],
            ["Bearer good.token.here", "Basic dXNlcjpwYXNz"],
        ] {
            let mut headers = HeaderMap::new();
            for line in lines {
                headers.append(header::AUTHORIZATION, line.parse().unwrap());
            }
            assert_eq!(bearer(&headers), Bearer::Ambiguous, "{lines:?}");
        }
        let mut headers = HeaderMap::new();
        headers.append(header::AUTHORIZATION, "Basic a".parse().unwrap());
        headers.append(header::AUTHORIZATION, "Basic b".parse().unwrap());
        assert_eq!(bearer(&headers), Bearer::Absent, "no bearer token at all");
    }

    #[test]
    fn cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; session=tok; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, "session"), Some(&b"tok"[..]));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn cross_site_unsafe_requests_are_refused() {
        assert!(same_origin(&request(
            Method::GET,
            &[("sec-fetch-site", "cross-site")]
        )));
        assert!(!same_origin(&request(
            Method::POST,
            &[("sec-fetch-site", "cross-site")]
        )));
        assert!(same_origin(&request(
            Method::POST,
            &[("sec-fetch-site", "same-origin")]
        )));
        assert!(same_origin(&request(
            Method::POST,
            &[("origin", "https://app.example"), ("host", "app.example")]
        )));
        assert!(!same_origin(&request(
            Method::POST,
            &[("origin", "https://evil.example"), ("host", "app.example")]
        )));
    }

    #[test]
    fn query_tokens_are_noticed() {
        assert!(token_in_query(&"/a?access_token=x".parse().unwrap()));
        assert!(token_in_query(&"/a?page=2&Access_Token=x".parse().unwrap()));
        assert!(!token_in_query(&"/a?page=2".parse().unwrap()));
        assert!(!token_in_query(&"/verify-email?token=x".parse().unwrap()));
    }
}
