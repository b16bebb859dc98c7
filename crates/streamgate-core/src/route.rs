//! The route label: the matched route template, never the raw path.
//!
//! ```
//! use axum::{Router, routing::get, extract::Request};
//! use streamgate_core::route_label;
//! # async fn demo() {
//! use tower::ServiceExt;
//!
//! let app = Router::new()
//!     .route("/items/{id}", get(|request: Request| async move { route_label(&request).to_owned() }));
//! let response = app
//!     .oneshot(Request::get("/items/7").body(axum::body::Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! # let _ = response;
//! # }
//! ```
//!
//! axum inserts `MatchedPath` while routing, so a layer added with `Router::layer` sees the
//! template; a layer wrapped around the whole router from outside does not. Routers other than
//! axum's can insert a [`RouteTemplate`] instead.

use axum::extract::MatchedPath;
use http::Request;

/// The label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// A route template inserted by routers other than axum's (axum's `MatchedPath` is read first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTemplate(pub std::sync::Arc<str>);

/// The matched route template of `request` (`/items/{id}`), or [`UNMATCHED_ROUTE`].
#[must_use]
pub fn route_label<B>(request: &Request<B>) -> &str {
    route_label_from(request.extensions())
}

/// Like [`route_label`], from the request's extensions.
#[must_use]
pub fn route_label_from(extensions: &http::Extensions) -> &str {
    if let Some(matched) = extensions.get::<MatchedPath>() {
        return matched.as_str();
    }
    extensions
        .get::<RouteTemplate>()
        .map_or(UNMATCHED_ROUTE, |template| &template.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{Router, body::Body, extract::Request, routing::get};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn label_of(path: &str) -> String {
        let app = Router::new()
            .route("/items/{id}", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(
                |request: Request, next: axum::middleware::Next| async move {
                    let label = route_label(&request).to_owned();
                    let _ = next.run(request).await;
                    label
                },
            ));
        let response = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn matched_route_is_the_template() {
        assert_eq!(label_of("/items/42").await, "/items/{id}");
    }

    #[tokio::test]
    async fn unmatched_path_is_unmatched() {
        assert_eq!(label_of("/secret/../etc/passwd").await, UNMATCHED_ROUTE);
    }

    #[test]
    fn route_template_extension_is_read() {
        let mut request = Request::new(());
        request
            .extensions_mut()
            .insert(RouteTemplate("/users/:id".into()));
        assert_eq!(route_label(&request), "/users/:id");
    }
}
