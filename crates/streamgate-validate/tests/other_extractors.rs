//! `Valid<Query<T>>`, `Valid<Path<T>>`, `Valid<Form<T>>`, body limits, metrics and the failure
//! left for the audit layer.

mod common;

use std::borrow::Cow;

use axum::{
    Form, Json, Router,
    body::Body,
    extract::{Path, Query},
    routing::{get, post},
};
use common::{Order, json_post, read, send};
use http::Request;
use serde::Deserialize;
use streamgate_core::MetricsHandle;
use streamgate_metrics::MetricsRecorder;
use streamgate_validate::{
    FailureKind, Sanitize, Sanitizer, Valid, ValidationFailure, ValidationLayer, WireNames,
    camel_case, validate_slug,
};
use tower::ServiceExt;
use tower_http::limit::RequestBodyLimitLayer;
use validator::Validate;

#[derive(Deserialize, Validate)]
#[serde(rename_all = "camelCase")]
struct Search {
    #[validate(range(min = 1, max = 100))]
    page_size: u32,
    #[validate(length(max = 20))]
    text: Option<String>,
}
impl Sanitize for Search {
    fn sanitize(&mut self) {
        if let Some(text) = &mut self.text {
            Sanitizer::TEXT.apply(text);
        }
    }
}
impl WireNames for Search {
    fn wire_name(field: &str) -> Cow<'_, str> {
        camel_case(field)
    }
}

#[derive(Deserialize, Validate)]
struct ItemPath {
    #[validate(custom(function = "validate_slug"))]
    id: String,
    version: u16,
}
impl Sanitize for ItemPath {}
impl WireNames for ItemPath {}

fn app() -> Router {
    Router::new()
        .route(
            "/search",
            get(|Valid(Query(search)): Valid<Query<Search>>| async move {
                format!("{} {:?}", search.page_size, search.text)
            })
            .post(|Valid(Form(search)): Valid<Form<Search>>| async move {
                format!("{} {:?}", search.page_size, search.text)
            }),
        )
        .route(
            "/items/{id}/{version}",
            get(|Valid(Path(path)): Valid<Path<ItemPath>>| async move {
                format!("{}@{}", path.id, path.version)
            }),
        )
}

fn get_request(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn query_rules_and_types_point_at_wire_names() {
    let (status, _, body) = send(app(), get_request("/search?pageSize=10&text=%20hi%20")).await;
    assert_eq!((status, body.as_str().unwrap()), (200, "10 Some(\"hi\")"));

    let (status, content_type, body) = send(app(), get_request("/search?pageSize=500")).await;
    assert_eq!(status, 422);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["errors"][0]["pointer"], "/pageSize");
    assert_eq!(body["errors"][0]["code"], "range");

    let (status, _, body) = send(app(), get_request("/search?pageSize=SECRET")).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["pointer"], "/pageSize");
    assert!(!body.to_string().contains("SECRET"));

    let (status, _, body) = send(app(), get_request("/search")).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["pointer"], "/pageSize");
    assert_eq!(body["errors"][0]["code"], "missing_field");
}

#[tokio::test]
async fn path_parameters_are_validated_without_echo() {
    let (status, _, body) = send(app(), get_request("/items/pen-1/3")).await;
    assert_eq!((status, body.as_str().unwrap()), (200, "pen-1@3"));

    let (status, _, body) = send(app(), get_request("/items/pen%20one/3")).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["pointer"], "/id");
    assert_eq!(body["errors"][0]["code"], "charset");

    let (status, _, body) = send(app(), get_request("/items/pen/SECRET")).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["pointer"], "/version");
    assert_eq!(body["errors"][0]["message"], "expected u16");
    assert!(!body.to_string().contains("SECRET"));
}

#[tokio::test]
async fn form_bodies_need_their_content_type() {
    let form = |content_type: &str, body: &'static str| {
        Request::post("/search")
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap()
    };
    let (status, _, _) = send(
        app(),
        form("application/x-www-form-urlencoded", "pageSize=3&text=a"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _, body) = send(app(), form("application/json", "pageSize=3")).await;
    assert_eq!(status, 415);
    assert_eq!(body["code"], "unsupported_media_type");
    let (status, _, body) = send(
        app(),
        form("application/x-www-form-urlencoded", "pageSize=0"),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["pointer"], "/pageSize");
}

fn orders_behind_tower_http_limit() -> Router {
    Router::new()
        .route(
            "/orders",
            post(|Valid(Json(order)): Valid<Json<Order>>| async move { order.display_name }),
        )
        .layer(RequestBodyLimitLayer::new(64))
}

#[tokio::test]
async fn tower_http_body_limit_without_content_length_is_a_problem_413() {
    // In-process requests carry no Content-Length unless one is set: the body is read through
    // tower-http's `Limited` wrapper and runs over it.
    let streamed = json_post(vec![b' '; 100]);
    let (status, content_type, body) = send(orders_behind_tower_http_limit(), streamed).await;
    assert_eq!(status, 413);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["code"], "payload_too_large");

    // With a Content-Length over the limit tower-http answers itself, before any extractor.
    let mut declared = json_post(vec![b' '; 100]);
    declared
        .headers_mut()
        .insert("content-length", "100".parse().unwrap());
    let response = orders_behind_tower_http_limit()
        .oneshot(declared)
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn failures_are_counted_by_route_and_code_and_left_for_audit() {
    let recorder = MetricsRecorder::new();
    let app = common::orders_app()
        .route(
            "/search",
            get(|Valid(Query(search)): Valid<Query<Search>>| async move {
                search.page_size.to_string()
            }),
        )
        .layer(ValidationLayer::new().metrics(MetricsHandle::new(recorder.clone())));

    let response = app
        .clone()
        .oneshot(json_post(r#"{"displayName": 1}"#))
        .await
        .unwrap();
    let failure = response
        .extensions()
        .get::<ValidationFailure>()
        .cloned()
        .unwrap();
    assert_eq!(failure.kind(), FailureKind::WrongType);
    assert_eq!(failure.errors()[0].pointer(), "/displayName");
    let (status, _, _) = read(response).await;
    assert_eq!(status, 422);

    for _ in 0..2 {
        let _ = app.clone().oneshot(json_post("{")).await.unwrap();
    }
    let _ = app
        .clone()
        .oneshot(get_request("/search?pageSize=0"))
        .await
        .unwrap();
    let ok = app
        .oneshot(json_post(
            r#"{"displayName": "Ada", "items": [], "quantity": 1}"#,
        ))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.extensions().get::<ValidationFailure>().is_none());

    let text = recorder.render();
    assert!(
        text.contains("# HELP streamgate_validation_failures_total"),
        "{text}"
    );
    for line in [
        r#"streamgate_validation_failures_total{route="/orders",code="wrong_type"} 1"#,
        r#"streamgate_validation_failures_total{route="/orders",code="malformed"} 2"#,
        r#"streamgate_validation_failures_total{route="/search",code="rule_failed"} 1"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[tokio::test]
async fn the_layer_sets_the_depth_limit() {
    let app = common::orders_app().layer(ValidationLayer::new().max_depth(3));
    let body = r#"{"displayName": "Ada", "items": [{"name": "a"}], "quantity": 1, "x": [[[1]]]}"#;
    let (status, _, body) = send(app, json_post(body)).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "too_deep");
}
