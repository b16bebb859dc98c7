//! Every way a JSON body can be rejected: status, problem+json body, pointers with wire names.

mod common;

use axum::body::Body;
use bytes::Bytes;
use common::{json_post, orders_app, send};
use http::Request;
use serde_json::{Value, json};

const VALID: &str = r#"{"displayName": "Ada", "items": [{"name": "pen"}], "quantity": 2}"#;

fn deep(levels: usize) -> String {
    format!(
        r#"{{"displayName": "Ada", "items": [], "quantity": 1, "x": {}{}}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

struct Row {
    name: &'static str,
    request: Request<Body>,
    status: u16,
    code: &'static str,
}

fn rows() -> Vec<Row> {
    let row = |name, request, status, code| Row {
        name,
        request,
        status,
        code,
    };
    vec![
        row(
            "malformed JSON",
            json_post(r#"{"displayName": "Ada", "items": [}"#),
            400,
            "malformed",
        ),
        row(
            "wrong type",
            json_post(r#"{"displayName": "Ada", "items": [], "quantity": "SECRET-INPUT"}"#),
            422,
            "wrong_type",
        ),
        row(
            "missing field",
            json_post(r#"{"displayName": "Ada", "items": []}"#),
            422,
            "missing_field",
        ),
        row(
            "unknown field",
            json_post(r#"{"displayName": "Ada", "items": [], "quantity": 1, "admin": true}"#),
            422,
            "unknown_field",
        ),
        row(
            "wrong content type",
            Request::post("/orders")
                .header("content-type", "text/plain")
                .body(Body::from(VALID))
                .unwrap(),
            415,
            "unsupported_media_type",
        ),
        row(
            "no content type",
            Request::post("/orders").body(Body::from(VALID)).unwrap(),
            415,
            "unsupported_media_type",
        ),
        row(
            "oversized body",
            json_post(format!(
                r#"{{"displayName": "{}", "items": [], "quantity": 1}}"#,
                "a".repeat(70_000)
            )),
            413,
            "payload_too_large",
        ),
        row(
            "invalid UTF-8",
            json_post(Bytes::from_static(
                b"{\"displayName\": \"Ad\xff\xfe\", \"items\": [], \"quantity\": 1}",
            )),
            400,
            "invalid_utf8",
        ),
        row(
            "nested 10,000 levels deep",
            json_post(deep(10_000)),
            400,
            "too_deep",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn each_rejection_has_its_status_and_a_problem_body() {
    for row in rows() {
        let (status, content_type, body) = send(orders_app(), row.request).await;
        assert_eq!(status, row.status, "{}: {body}", row.name);
        assert_eq!(content_type, "application/problem+json", "{}", row.name);
        assert_eq!(body["status"], row.status, "{}", row.name);
        assert_eq!(body["code"], row.code, "{}", row.name);
        assert!(
            body["type"].as_str().unwrap().starts_with("https://"),
            "{}",
            row.name
        );
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{}",
            row.name
        );
        assert!(
            !body.to_string().contains("SECRET-INPUT"),
            "{}: echoed input",
            row.name
        );
        if row.status == 422 {
            let errors = body["errors"].as_array().unwrap();
            assert_eq!(errors.len(), 1, "{}", row.name);
            for member in ["pointer", "code", "message"] {
                assert!(errors[0][member].is_string(), "{}: {member}", row.name);
            }
        }
    }
}

#[tokio::test]
async fn each_422_points_at_the_field() {
    let cases = [
        (
            r#"{"displayName": "Ada", "items": [], "quantity": "SECRET-INPUT"}"#,
            json!({"pointer": "/quantity", "code": "invalid_type", "message": "expected u32"}),
        ),
        (
            r#"{"displayName": "Ada", "items": []}"#,
            json!({"pointer": "/quantity", "code": "missing_field", "message": "is required"}),
        ),
        (
            r#"{"displayName": "Ada", "items": [], "quantity": 1, "admin": true}"#,
            json!({"pointer": "/admin", "code": "unknown_field",
                   "message": "is not allowed; expected one of `displayName`, `items`, `quantity`"}),
        ),
    ];
    for (input, expected) in cases {
        let (_, _, body) = send(orders_app(), json_post(input)).await;
        assert_eq!(body["errors"], json!([expected]), "{input}");
    }
}

#[tokio::test]
async fn malformed_json_reports_line_and_column() {
    let (status, _, body) = send(orders_app(), json_post("{\n  \"displayName\": ,\n}")).await;
    assert_eq!(status, 400);
    assert_eq!(body["line"], 2);
    assert_eq!(body["column"], 18);
    assert_eq!(body["detail"], "the body is not valid JSON: expected value");
}

#[tokio::test]
async fn nested_list_element_points_at_its_index() {
    let input = r#"{"displayName": "Ada", "items": [{"name": "a"}, {"name": "b"}, {"name": ""}], "quantity": 1}"#;
    let (status, _, body) = send(orders_app(), json_post(input)).await;
    assert_eq!(status, 422);
    assert_eq!(body["code"], "rule_failed");
    assert_eq!(body["errors"][0]["pointer"], "/items/2/name");
    assert_eq!(body["errors"][0]["code"], "length");
    assert_eq!(
        body["errors"][0]["message"],
        "length must be between 1 and 10"
    );
}

#[tokio::test]
async fn renamed_field_uses_its_wire_name_for_rules_and_types() {
    let rule = r#"{"displayName": "Al", "items": [], "quantity": 1}"#;
    let (status, _, body) = send(orders_app(), json_post(rule)).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["pointer"], "/displayName");
    assert_eq!(body["errors"][0]["code"], "length");

    let wrong_type = r#"{"displayName": 42, "items": [], "quantity": 1}"#;
    let (status, _, body) = send(orders_app(), json_post(wrong_type)).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["pointer"], "/displayName");
    assert_eq!(body["errors"][0]["code"], "invalid_type");

    let nested_type =
        r#"{"displayName": "Ada", "items": [{"name": "a"}, {"name": []}], "quantity": 1}"#;
    let (_, _, body) = send(orders_app(), json_post(nested_type)).await;
    assert_eq!(body["errors"][0]["pointer"], "/items/1/name");
}

#[tokio::test]
async fn several_failures_are_listed_sorted_by_pointer() {
    let input = r#"{"displayName": "Al", "items": [{"name": ""}], "quantity": 1}"#;
    let (_, _, body) = send(orders_app(), json_post(input)).await;
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/displayName", "/items/0/name"]);
    assert_eq!(body["detail"], "2 fields are invalid");
    assert_eq!(body["errors_total"], 2);
}

#[tokio::test]
async fn a_long_list_of_failures_is_cut_and_counted() {
    let n = 5_000;
    let items = vec![r#"{"name": ""}"#; n].join(",");
    let input = format!(r#"{{"displayName": "Al", "items": [{items}], "quantity": 1}}"#);
    let (status, _, body) = send(orders_app(), json_post(input)).await;
    assert_eq!(status, 422);
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), streamgate_validate::MAX_FIELD_ERRORS);
    assert_eq!(body["errors_total"], n + 1);
    assert_eq!(body["detail"], format!("{} fields are invalid", n + 1));
    // Indices in numeric order: the first items, not /items/0, /items/1, /items/10, ...
    let pointers: Vec<&str> = errors
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers[..4],
        [
            "/displayName",
            "/items/0/name",
            "/items/1/name",
            "/items/2/name"
        ]
    );
    assert_eq!(pointers[99], "/items/98/name");
    assert!(body.to_string().len() < 16 * 1024);
}

#[tokio::test]
async fn sanitizing_runs_before_validation() {
    // Three visible characters after trimming and control stripping: passes `min = 3` only
    // because sanitizing ran first; two after: fails.
    let (status, _, body) = send(
        orders_app(),
        json_post("{\"displayName\": \"  Ada\\u0007 \", \"items\": [], \"quantity\": 1}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, Value::String("Ada x1".into()));
    let (status, _, _) = send(
        orders_app(),
        json_post(r#"{"displayName": "  Al   ", "items": [], "quantity": 1}"#),
    )
    .await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn deep_nesting_is_400_wherever_it_is() {
    let top = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    for input in [top, objects, deep(129)] {
        let (status, _, body) = send(orders_app(), json_post(input)).await;
        assert_eq!(status, 400);
        assert_eq!(body["code"], "too_deep");
    }
    // Within the limit the same shape is an ordinary, accepted unknown-free body.
    let (status, _, _) = send(orders_app(), json_post(VALID)).await;
    assert_eq!(status, 200);
}

/// The limit is the deepest nesting serde_json reads: 127 levels pass the depth check (the
/// object and 126 arrays), 128 do not, and the message says where the limit is.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_depth_limit_is_the_one_the_message_names() {
    let (_, _, body) = send(orders_app(), json_post(deep(126))).await;
    assert_ne!(body["code"], "too_deep", "{body}");
    let (status, _, body) = send(orders_app(), json_post(deep(127))).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "too_deep");
    assert_eq!(
        body["detail"],
        "the body nests arrays or objects deeper than 127 levels"
    );
}
