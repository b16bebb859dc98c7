//! Inputs written to look like serde's own error text: the problem body never repeats them, and
//! the pointer is the field's or a generic one.

mod common;

use axum::{Router, body::Body, extract::Path, routing::get};
use common::send;
use http::Request;
use serde::Deserialize;
use streamgate_validate::{
    Sanitize, Valid, ValidationFailure, WireNames, from_json_slice, urlencoded::from_urlencoded,
};
use validator::Validate;

#[derive(Debug, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
struct Account {
    #[validate(length(min = 1))]
    email: String,
    kind: Option<Kind>,
}
impl Sanitize for Account {}
impl WireNames for Account {}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Alpha,
    Beta,
}

const PAYLOAD: &str = "SECRET-TOKEN";

fn body_of(failure: &ValidationFailure) -> String {
    String::from_utf8(failure.to_problem().to_json()).unwrap()
}

fn assert_not_echoed(body: &str) {
    for part in [PAYLOAD, "<img", "<script>", "sk_live", "onerror", "<b>"] {
        assert!(!body.contains(part), "{part} echoed in {body}");
    }
}

#[test]
fn well_formed_input_is_accepted() {
    let account = from_json_slice::<Account>(br#"{"email":"a","kind":"beta"}"#).unwrap();
    assert!(matches!(account.kind, Some(Kind::Beta)));
}

#[test]
fn json_unknown_field_that_imitates_serde_is_not_echoed() {
    let input = format!(
        r#"{{"email":"a","x`, expected `<img src=x onerror=alert(document.cookie)> {PAYLOAD}":1}}"#
    );
    let failure = from_json_slice::<Account>(input.as_bytes()).unwrap_err();
    let body = body_of(&failure);
    assert_not_echoed(&body);
    let error = &failure.errors()[0];
    assert_eq!(error.code(), "unknown_field");
    assert_eq!(error.pointer(), "/*");
    assert_eq!(
        error.message(),
        "is not allowed; expected `email` or `kind`"
    );
}

#[test]
fn json_unknown_variant_that_imitates_serde_is_not_echoed() {
    let input = format!(
        r#"{{"email":"a","kind":"zz`, expected <script>alert(1)</script> sk_live_123 {PAYLOAD}"}}"#
    );
    let failure = from_json_slice::<Account>(input.as_bytes()).unwrap_err();
    assert_not_echoed(&body_of(&failure));
    let error = &failure.errors()[0];
    assert_eq!(error.code(), "unknown_variant");
    assert_eq!(error.pointer(), "/kind");
    assert_eq!(error.message(), "expected `alpha` or `beta`");
}

#[test]
fn query_unknown_variant_and_field_that_imitate_serde_are_not_echoed() {
    let failure = from_urlencoded::<Account>(
        b"email=a&kind=zz%60%2C%20expected%20%3Cb%3Ehi%3C%2Fb%3E%20SECRET-TOKEN",
    )
    .unwrap_err();
    assert_not_echoed(&body_of(&failure));
    assert_eq!(failure.errors()[0].pointer(), "/kind");
    assert_eq!(failure.errors()[0].message(), "expected `alpha` or `beta`");

    let failure =
        from_urlencoded::<Account>(b"email=a&x%60%2C%20expected%20%60%3Cb%3ESECRET-TOKEN=1")
            .unwrap_err();
    assert_not_echoed(&body_of(&failure));
    assert_eq!(failure.errors()[0].pointer(), "/*");
    assert_eq!(failure.errors()[0].code(), "unknown_field");
}

#[derive(Debug, Deserialize, Validate)]
struct KindPath {
    kind: Kind,
}
impl Sanitize for KindPath {}
impl WireNames for KindPath {}

#[tokio::test]
async fn path_unknown_variant_that_imitates_serde_is_not_echoed() {
    let app = Router::new().route(
        "/kinds/{kind}",
        get(|Valid(Path(path)): Valid<Path<KindPath>>| async move { format!("{:?}", path.kind) }),
    );
    let uri = "/kinds/zz%60%2C%20expected%20%3Cscript%3Ealert(1)%3C%2Fscript%3E%20SECRET-TOKEN";
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let (status, _, body) = send(app, request).await;
    assert_eq!(status, 422);
    assert_not_echoed(&body.to_string());
    // axum reports this error without the parameter's name: the pointer is the whole path.
    assert_eq!(body["errors"][0]["pointer"], "");
    assert_eq!(body["errors"][0]["message"], "expected `alpha` or `beta`");
}
