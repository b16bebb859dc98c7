//! The security context and the route table, configured from YAML, through the whole stack.

mod support;

use axum::{Router, body::Body, routing::get};
use http::Request;
use streamgate::{Config, Stack, core::SecurityContext};
use support::{Served, test_token};

const CONFIG: &str = r#"
monitoring:
  metrics:
    service_name: files
security:
  auth:
    allow_anonymous: true
    jwt:
      issuers:
        - issuer: https://id.example.com
          audiences: [files]
          keys:
            - hmac_secret: a-test-secret-of-at-least-32-bytes!!
    roles:
      - name: viewer
        permissions: ["files:read"]
      - name: editor
        inherits: [viewer]
        permissions: ["files:write"]
    routes:
      - route: /files/{id}
        policy: {permission: "files:read"}
      - route: /files/{id}
        method: DELETE
        policy: {permission: "files:write"}
      - route: /whoami
        policy: authenticated
"#;

fn request(method: &str, path: &str, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn roles_from_a_token_decide_each_route() {
    let config = Config::from_yaml_str("security.yaml", CONFIG).unwrap();
    let stack = Stack::from_config(&config).unwrap();
    let routes = Router::new()
        .route(
            "/files/{id}",
            get(|| async { "file" }).delete(|| async { "deleted" }),
        )
        .route(
            "/whoami",
            get(|context: SecurityContext| async move { context.user_id().to_owned() }),
        );
    let served = Served::start(stack.apply(routes)).await;

    let anonymous = served.send(request("GET", "/files/1", None)).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    assert!(
        anonymous.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    let viewer = test_token("user-7", &["viewer"]);
    assert_eq!(
        served
            .send(request("GET", "/files/1", Some(&viewer)))
            .await
            .status,
        200
    );
    let denied = served
        .send(request("DELETE", "/files/1", Some(&viewer)))
        .await;
    assert_eq!(denied.status, 403);
    assert!(
        denied.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );
    assert_eq!(denied.headers["content-type"], "application/problem+json");
    assert!(!denied.body.contains(&viewer), "the token was echoed");

    let editor = test_token("user-7", &["editor"]);
    assert_eq!(
        served
            .send(request("DELETE", "/files/1", Some(&editor)))
            .await
            .status,
        200
    );
    let whoami = served.send(request("GET", "/whoami", Some(&editor))).await;
    assert_eq!(whoami.body, "user-7");

    let forged = served
        .send(request("GET", "/files/1", Some("eyJhbGciOiJub25lIn0.e30.")))
        .await;
    assert_eq!(forged.status, 401);
    assert!(
        forged.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    let metrics = served.get("/metrics").await.body;
    assert!(
        metrics.contains("streamgate_auth_decisions_total{"),
        "{metrics}"
    );
    let denied_series = metrics
        .lines()
        .find(|l| {
            l.starts_with("http_server_request_duration_seconds_count")
                && l.contains(r#"http_request_method="DELETE""#)
                && l.contains(r#"http_response_status_code="403""#)
        })
        .unwrap();
    assert!(denied_series.contains(r#"http_route="/files/{id}""#));
}

#[test]
fn a_bad_auth_section_is_located() {
    let text = "security:\n  auth:\n    jwt:\n      isuers: []\n";
    let error = Config::from_yaml_str("s.yaml", text).unwrap_err();
    assert_eq!(error.line(), Some(4), "{error}");
    assert!(
        error.to_string().contains("unknown field `isuers`"),
        "{error}"
    );
}
