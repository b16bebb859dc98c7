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
    ///
    /// A `GET` policy covers `HEAD` too unless `HEAD` has a policy of its own, as axum answers a
    /// `HEAD` request with the route's `GET` handler.
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

    /// The policy for a request; `None` when the route is not listed. `HEAD` without a policy of
    /// its own takes the `GET` policy: axum runs the `GET` handler for it.
    pub(crate) fn policy(&self, method: &Method, template: &str) -> Option<&Policy> {
        let entry = self.routes.get(template)?;
        let for_method = |wanted: &Method| {
            entry
                .by_method
                .iter()
                .find(|(m, _)| m == wanted)
                .map(|(_, policy)| policy)
        };
        let mut policy = for_method(method);
        if policy.is_none() && method == Method::HEAD {
            policy = for_method(&Method::GET);
        }
        policy.or(entry.any_method.as_ref())
    }

    pub(crate) fn denies_unlisted(&self) -> bool {
        self.deny_unlisted
    }
}
