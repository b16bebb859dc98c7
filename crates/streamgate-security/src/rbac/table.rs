//! The per-route policy table.

use std::collections::HashMap;

use http::Method;

use super::Policy;

/// Policies by route template (`/items/{id}`, as axum's `MatchedPath` reports it) and method.
///
/// ```
/// use http::Method;
/// use streamgate_security::{Policy, RouteTable};
///
/// let table = RouteTable::new()
///     .route("/health", Policy::Public)
///     .route("/items/{id}", Policy::permission("items:read"))
///     .route_method(Method::POST, "/items", Policy::role("editor"))
///     .deny_unlisted(true);
/// # let _ = table;
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct RouteTable {
    routes: HashMap<String, Entry>,
    deny_unlisted: bool,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    any_method: Option<Policy>,
    by_method: Vec<(Method, Policy)>,
}

impl RouteTable {
    /// An empty table that lets unlisted routes through.
    pub fn new() -> Self {
        Self::default()
    }

    /// The policy of every method of `template`.
    pub fn route(mut self, template: impl Into<String>, policy: Policy) -> Self {
        self.routes.entry(template.into()).or_default().any_method = Some(policy);
        self
    }

    /// The policy of `method` on `template`, ahead of the route's any-method policy.
    pub fn route_method(
        mut self,
        method: Method,
        template: impl Into<String>,
        policy: Policy,
    ) -> Self {
        self.routes
            .entry(template.into())
            .or_default()
            .by_method
            .push((method, policy));
        self
    }

    /// Refuses (403) every matched route the table does not list (default: let it through).
    /// Requests that matched no route pass, so they still get their 404.
    pub fn deny_unlisted(mut self, deny: bool) -> Self {
        self.deny_unlisted = deny;
        self
    }

    /// The policy for a request; `None` when the route is not listed.
    pub(crate) fn policy(&self, method: &Method, template: &str) -> Option<&Policy> {
        let entry = self.routes.get(template)?;
        entry
            .by_method
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, policy)| policy)
            .or(entry.any_method.as_ref())
    }

    pub(crate) fn denies_unlisted(&self) -> bool {
        self.deny_unlisted
    }
}
