//! Acceptance 3: (roles, route policy) -> 200 or 403, with inheritance and deny-by-default.

mod common;

use axum::{
    Router,
    routing::{get, post},
};
use common::*;
use http::{StatusCode, header::WWW_AUTHENTICATE};
use streamgate_core::{MetricsHandle, SecurityContext};
use streamgate_metrics::MetricsRecorder;
use streamgate_security::{
    AuthDecision, AuthReason, Policy, Rbac, Role, RouteTable, require_all, require_any,
    require_permission, require_role,
    testing::{InjectContextLayer, with_context},
};
use tower::ServiceExt;

fn rbac() -> Rbac {
    Rbac::builder()
        .role(Role::new("viewer").permissions(["items:read"]))
        .role(
            Role::new("editor")
                .inherits("viewer")
                .permissions(["items:write"]),
        )
        .role(
            Role::new("admin")
                .inherits("editor")
                .permissions(["items:delete", "users:manage"]),
        )
        .role(Role::new("auditor").permissions(["audit:read"]))
        .build()
        .unwrap()
}

fn table(deny_unlisted: bool) -> RouteTable {
    RouteTable::new()
        .route("/health", Policy::Public)
        .route("/items/{id}", Policy::permission("items:read"))
        .route_method(
            http::Method::POST,
            "/items",
            Policy::permission("items:write"),
        )
        .route("/items", Policy::Authenticated)
        .route("/admin/users", Policy::role("admin"))
        .route(
            "/reports",
            Policy::any([Policy::role("auditor"), Policy::permission("users:manage")]),
        )
        .route(
            "/audit/export",
            Policy::all([Policy::role("auditor"), Policy::permission("items:read")]),
        )
        // GET-only rows: HEAD runs the GET handler, so it takes the GET policy...
        .route_method(http::Method::GET, "/summary", Policy::role("auditor"))
        // ...unless HEAD has its own.
        .route_method(http::Method::GET, "/status", Policy::role("admin"))
        .route_method(http::Method::HEAD, "/status", Policy::Authenticated)
        .deny_unlisted(deny_unlisted)
}

fn app(
    context: Option<SecurityContext>,
    deny_unlisted: bool,
    recorder: &MetricsRecorder,
) -> Router {
    let ok = || async { "ok" };
    let router = Router::new()
        .route("/health", get(ok))
        .route("/items/{id}", get(ok))
        .route("/items", post(ok).get(ok))
        .route("/admin/users", get(ok))
        .route("/reports", get(ok))
        .route("/audit/export", get(ok))
        .route("/summary", get(ok))
        .route("/status", get(ok))
        .route("/unlisted", get(ok))
        .layer(
            rbac()
                .route_table(table(deny_unlisted))
                .metrics(MetricsHandle::new(recorder.clone())),
        );
    match context {
        Some(context) => router.layer(InjectContextLayer::new(context)),
        None => router.layer(InjectContextLayer::anonymous()),
    }
}

fn user(roles: &[&str]) -> Option<SecurityContext> {
    Some(
        SecurityContext::builder("u")
            .roles(roles.iter().copied())
            .build(),
    )
}

#[tokio::test]
async fn route_table_decisions() {
    let recorder = MetricsRecorder::new();
    let cases: Vec<(Option<SecurityContext>, &str, &str, bool, u16)> = vec![
        // (principal, method, path, deny unlisted, expected status)
        (None, "GET", "/health", true, 200),
        (None, "GET", "/items/1", false, 401),
        (user(&["viewer"]), "GET", "/items/1", false, 200),
        (user(&["viewer"]), "POST", "/items", false, 403),
        (user(&["viewer"]), "GET", "/items", false, 200),
        (user(&["editor"]), "POST", "/items", false, 200),
        (user(&["editor"]), "GET", "/items/1", false, 200), // inherits viewer
        (user(&["admin"]), "GET", "/items/1", false, 200),  // admin > editor > viewer
        (user(&["admin"]), "POST", "/items", false, 200),
        (user(&["editor"]), "GET", "/admin/users", false, 403),
        (user(&["admin"]), "GET", "/admin/users", false, 200),
        (user(&["auditor"]), "GET", "/reports", false, 200),
        (user(&["admin"]), "GET", "/reports", false, 200), // via users:manage
        (user(&["editor"]), "GET", "/reports", false, 403),
        (user(&["auditor"]), "GET", "/audit/export", false, 403), // lacks items:read
        (
            user(&["auditor", "viewer"]),
            "GET",
            "/audit/export",
            false,
            200,
        ),
        (user(&["auditor"]), "GET", "/summary", false, 200),
        (user(&["viewer"]), "GET", "/summary", false, 403),
        (user(&["auditor"]), "HEAD", "/summary", false, 200),
        (user(&["viewer"]), "HEAD", "/summary", false, 403), // GET's policy, not unlisted
        (None, "HEAD", "/summary", false, 401),
        (user(&["viewer"]), "HEAD", "/status", false, 200), // HEAD's own policy
        (user(&["viewer"]), "GET", "/status", false, 403),
        (user(&[]), "GET", "/items/1", false, 403),
        (user(&["viewer"]), "GET", "/unlisted", false, 200),
        (user(&["admin"]), "GET", "/unlisted", true, 403), // deny by default
        (None, "GET", "/unlisted", true, 403),
        (user(&["admin"]), "GET", "/no-such-route", true, 404), // unmatched keeps its 404
        (
            Some(
                SecurityContext::builder("svc")
                    .permissions(["items:write"])
                    .build(),
            ),
            "POST",
            "/items",
            true,
            200,
        ),
        (
            Some(
                SecurityContext::builder("svc")
                    .scopes(["items:read"])
                    .build(),
            ),
            "GET",
            "/items/9",
            true,
            200,
        ),
    ];
    for (context, method, path, deny, expected) in cases {
        let label = format!("{context:?} {method} {path} deny_unlisted={deny}");
        let response = send(&app(context, deny, &recorder), method, path, &[]).await;
        assert_eq!(response.status().as_u16(), expected, "{label}");
        match expected {
            403 => {
                assert_eq!(
                    response.headers()[WWW_AUTHENTICATE],
                    "Bearer error=\"insufficient_scope\"",
                    "{label}"
                );
                let decision = response
                    .extensions()
                    .get::<AuthDecision>()
                    .copied()
                    .unwrap();
                // A response to HEAD has no body (axum drops it).
                if method != "HEAD" {
                    let body = body_json(response).await;
                    assert_eq!(body["reason"], decision.reason.as_str(), "{label}");
                    assert_eq!(body["status"], 403);
                }
            }
            401 => assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer", "{label}"),
            _ => {}
        }
    }
    let rendered = recorder.render();
    assert_eq!(
        decisions(&rendered, "rbac", "forbidden", "route_not_listed"),
        2
    );
    assert_eq!(decisions(&rendered, "rbac", "forbidden", "missing_role"), 4);
}

#[tokio::test]
async fn require_layers_on_routes() {
    let ok = || async { "ok" };
    let app = Router::new()
        .route("/admin", get(ok).route_layer(require_role("admin")))
        .route(
            "/write",
            get(ok).route_layer(require_permission("items:write")),
        )
        .route(
            "/either",
            get(ok).route_layer(require_any([Policy::role("a"), Policy::role("b")])),
        )
        .route(
            "/both",
            get(ok).route_layer(require_all([Policy::role("a"), Policy::role("b")])),
        )
        .route(
            "/inherited",
            get(ok).route_layer(rbac().require(Policy::role("viewer"))),
        );
    let call = |path: &'static str,
                roles: &'static [&'static str],
                permissions: &'static [&'static str]| {
        let app = app.clone();
        async move {
            let context = SecurityContext::builder("u")
                .roles(roles.iter().copied())
                .permissions(permissions.iter().copied())
                .build();
            let request = with_context(
                http::Request::get(path)
                    .body(axum::body::Body::empty())
                    .unwrap(),
                context,
            );
            app.oneshot(request).await.unwrap().status()
        }
    };
    assert_eq!(call("/admin", &["admin"], &[]).await, StatusCode::OK);
    assert_eq!(call("/admin", &["user"], &[]).await, StatusCode::FORBIDDEN);
    assert_eq!(call("/write", &[], &["items:write"]).await, StatusCode::OK);
    assert_eq!(
        call("/write", &[], &["items:read"]).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(call("/either", &["b"], &[]).await, StatusCode::OK);
    assert_eq!(call("/either", &["c"], &[]).await, StatusCode::FORBIDDEN);
    assert_eq!(call("/both", &["a"], &[]).await, StatusCode::FORBIDDEN);
    assert_eq!(call("/both", &["a", "b"], &[]).await, StatusCode::OK);
    assert_eq!(call("/inherited", &["admin"], &[]).await, StatusCode::OK);
    // Without the role table, `admin` is not `viewer`.
    let plain = Router::new().route("/v", get(ok).route_layer(require_role("viewer")));
    let request = with_context(
        http::Request::get("/v")
            .body(axum::body::Body::empty())
            .unwrap(),
        SecurityContext::builder("u").roles(["admin"]).build(),
    );
    assert_eq!(plain.clone().oneshot(request).await.unwrap().status(), 403);
    // No context at all: 401.
    let request = http::Request::get("/v")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = plain.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.extensions().get::<AuthDecision>().unwrap().reason,
        AuthReason::MissingCredentials
    );
}
