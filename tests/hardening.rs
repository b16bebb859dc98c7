//! `security.request_timeout`, `security.response_headers` and problem+json bodies for empty
//! error responses through the whole stack.

use std::time::Duration;

use axum::{Router, body::Body, response::IntoResponse, routing::get};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use streamgate::{Config, Stack};
use tower::ServiceExt;

async fn send(app: &Router, path: &str) -> (Response<()>, String) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        Response::from_parts(parts, ()),
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

fn stack(yaml: &str) -> Stack {
    Stack::from_config(&Config::from_yaml_str("hardening.yaml", yaml).unwrap()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_request_past_the_timeout_gets_503_problem_json_and_is_counted() {
    let stack = stack("security:\n  request_timeout: 250ms\n");
    let app = stack.apply(
        Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    "too late"
                }),
            )
            .route(
                "/quick",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    "in time"
                }),
            ),
    );
    let (quick, body) = send(&app, "/quick").await;
    assert_eq!((quick.status(), body.as_str()), (StatusCode::OK, "in time"));

    let started = tokio::time::Instant::now();
    let (slow, body) = send(&app, "/slow").await;
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    assert_eq!(slow.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(slow.headers()["content-type"], "application/problem+json");
    assert!(slow.headers().contains_key("x-request-id"));
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["title"], "Request Timed Out");
    assert_eq!(problem["detail"], "the request took longer than 250 ms");

    let (_, metrics) = send(&app, "/metrics").await;
    assert!(
        metrics.lines().any(
            |line| line.starts_with("http_server_request_duration_seconds_count{")
                && line.contains(r#"http_route="/slow""#)
                && line.contains(r#"http_response_status_code="503""#)
        ),
        "{metrics}"
    );
}

fn routes_with_bare_errors() -> Router {
    Router::new()
        .route("/items", get(|| async { "items" }))
        .route("/gone", get(|| async { StatusCode::GONE }))
        .route(
            "/teapot",
            get(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") }),
        )
}

#[tokio::test]
async fn empty_error_responses_get_a_problem_body_and_keep_their_headers() {
    let app = Stack::new("shop").apply(routes_with_bare_errors());
    for (path, status, title) in [
        ("/nowhere", StatusCode::NOT_FOUND, "Not Found"),
        ("/gone", StatusCode::GONE, "Gone"),
    ] {
        let (response, body) = send(&app, path).await;
        assert_eq!(response.status(), status, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert!(response.headers().contains_key("x-request-id"), "{path}");
        let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["status"], status.as_u16(), "{path}");
        assert_eq!(problem["title"], title, "{path}");
    }

    let request = Request::post("/items").body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET,HEAD");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["title"], "Method Not Allowed");

    // The admin routes too.
    for path in ["/metrics", "/health/live", "/health/ready"] {
        let request = Request::post(path).body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        assert!(response.headers().contains_key("allow"), "{path}");
    }

    // A body of its own, or a success, is left as it is.
    let (teapot, body) = send(&app, "/teapot").await;
    assert_eq!(teapot.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(body, "short and stout");
    assert_eq!(
        teapot.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let (_, body) = send(&app, "/items").await;
    assert_eq!(body, "items");
}

#[tokio::test]
async fn problem_bodies_can_be_turned_off() {
    let app = Stack::new("shop")
        .problem_bodies(false)
        .apply(routes_with_bare_errors());
    let (response, body) = send(&app, "/nowhere").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(!response.headers().contains_key("content-type"));
    assert_eq!(body, "");
}

#[tokio::test]
async fn security_headers_go_on_every_layered_response_unless_it_sets_its_own() {
    let stack = stack(
        "security:
  response_headers:
    enabled: true
    hsts: 365d
  rate_limiting:
    capacity: 1
    refill_rate: 1
",
    );
    let app = stack.apply(
        Router::new()
            .route("/items", get(|| async { "items" }))
            .route(
                "/page",
                get(|| async {
                    (
                        [("content-security-policy", "default-src 'self'")],
                        "<p>hi</p>",
                    )
                        .into_response()
                }),
            ),
    );
    let (items, _) = send(&app, "/items").await;
    let expected = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
    ];
    for (name, value) in expected {
        assert_eq!(items.headers()[name], value, "{name}");
    }
    // A refusal carries them too: the burst of one is spent.
    let (refused, _) = send(&app, "/page").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["x-content-type-options"], "nosniff");

    let page_app =
        self::stack("security:\n  response_headers: {enabled: true}\n").apply(Router::new().route(
            "/page",
            get(|| async {
                (
                    [("content-security-policy", "default-src 'self'")],
                    "<p>hi</p>",
                )
                    .into_response()
            }),
        ));
    let (page, _) = send(&page_app, "/page").await;
    assert_eq!(
        page.headers()["content-security-policy"],
        "default-src 'self'"
    );
    assert!(!page.headers().contains_key("strict-transport-security"));
    // The admin routes are left alone, and without the setting nothing is added.
    let (live, _) = send(&page_app, "/health/live").await;
    assert!(!live.headers().contains_key("x-frame-options"));
    let plain = Stack::new("shop").apply(Router::new().route("/items", get(|| async { "items" })));
    let (items, _) = send(&plain, "/items").await;
    assert!(!items.headers().contains_key("x-content-type-options"));
}

#[tokio::test]
async fn a_policy_that_cannot_be_a_header_is_refused_with_its_key() {
    let config = Config::from_yaml_str(
        "hardening.yaml",
        "security:\n  response_headers:\n    enabled: true\n    content_security_policy: \"default-src \\u0001\"\n",
    )
    .unwrap();
    let error = Stack::from_config(&config).unwrap_err().to_string();
    assert!(
        error.contains("security.response_headers: content_security_policy"),
        "{error}"
    );
    let error = Config::from_yaml_str("hardening.yaml", "security:\n  request_timeout: soon\n")
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("hardening.yaml:2"), "{error}");
    let zero =
        Config::from_yaml_str("hardening.yaml", "security:\n  request_timeout: 0s\n").unwrap();
    let error = Stack::from_config(&zero).unwrap_err().to_string();
    assert!(
        error.contains("security.request_timeout: a zero timeout"),
        "{error}"
    );
}

async fn send_with(app: &Router, request: Request<Body>) -> Response<()> {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, _) = response.into_parts();
    Response::from_parts(parts, ())
}

#[tokio::test]
async fn cors_preflights_are_answered_before_auth_and_limits_and_refusals_carry_the_headers() {
    let stack = stack(
        r#"
security:
  cors:
    allow_origins: ["https://app.example.com"]
  rate_limiting:
    capacity: 1
    refill_rate: 1
  auth:
    jwt:
      issuers:
        - issuer: https://id.example.com
          audiences: [shop]
          keys:
            - hmac_secret: a-cors-test-secret-of-32-bytes-at-least
    routes:
      - {route: /items, policy: authenticated}
    deny_unlisted: true
"#,
    );
    let app = stack.apply(Router::new().route("/items", get(|| async { "items" })));
    let origin = "https://app.example.com";
    for _ in 0..3 {
        let preflight = send_with(
            &app,
            Request::options("/items")
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(preflight.status(), StatusCode::OK);
        let headers = preflight.headers();
        assert_eq!(headers["access-control-allow-origin"], origin);
        assert!(
            headers["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
        assert_eq!(headers["access-control-max-age"], "600");
    }
    // Three preflights took nothing from the burst of one: the GET is refused by auth, not 429,
    // and the refusal is readable by the page.
    let refused = send_with(
        &app,
        Request::get("/items")
            .header("origin", origin)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()["access-control-allow-origin"], origin);
    assert!(
        refused.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("ratelimit")
    );
    let elsewhere = send_with(
        &app,
        Request::get("/items")
            .header("origin", "https://evil.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        !elsewhere
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let config = Config::from_yaml_str(
        "cors.yaml",
        "security:\n  cors:\n    allow_origins: [\"*\"]\n    allow_credentials: true\n",
    )
    .unwrap();
    let error = Stack::from_config(&config).unwrap_err().to_string();
    assert!(
        error.contains("security.cors: allow_credentials"),
        "{error}"
    );
}
