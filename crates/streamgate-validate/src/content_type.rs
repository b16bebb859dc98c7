//! `Content-Type` checks of the body extractors.

use http::{HeaderMap, header};

use crate::failure::{FailureKind, ValidationFailure};

/// `application/json` or `application/<anything>+json`, parameters ignored.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|(kind, subtype)| {
        kind.eq_ignore_ascii_case("application")
            && (subtype.eq_ignore_ascii_case("json")
                || subtype.len() > 5
                    && subtype.is_char_boundary(subtype.len() - 5)
                    && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
    })
}

pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|(kind, subtype)| {
        kind.eq_ignore_ascii_case("application")
            && subtype.eq_ignore_ascii_case("x-www-form-urlencoded")
    })
}

fn media_type(headers: &HeaderMap) -> Option<(&str, &str)> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim();
    let (kind, subtype) = essence.split_once('/')?;
    Some((kind, subtype))
}

pub(crate) fn unsupported(headers: &HeaderMap, expected: &'static str) -> ValidationFailure {
    let detail = if headers.contains_key(header::CONTENT_TYPE) {
        format!("the Content-Type must be {expected}")
    } else {
        format!("the request has no Content-Type; it must be {expected}")
    };
    ValidationFailure::new(FailureKind::UnsupportedMediaType, detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        headers
    }

    #[test]
    fn json_media_types() {
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("Application/JSON; charset=utf-8")));
        assert!(is_json(&headers("application/merge-patch+json")));
        assert!(!is_json(&headers("text/json")));
        assert!(!is_json(&headers("application/jsonx")));
        assert!(!is_json(&HeaderMap::new()));
    }
}
