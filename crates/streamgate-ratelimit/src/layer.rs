//! [`RateLimitLayer`] and its builder.

use std::{fmt, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{HeaderValue, Method};
use metrics::Counter;
use smallvec::SmallVec;
use streamgate_core::MetricsHandle;
use tower_layer::Layer;

use crate::{
    Gcra, MemoryStore, Policy, PolicyId, Quota, RateLimitStore, policy::StatusPredicate, response,
    service::RateLimit,
};

pub(crate) const REQUESTS: &str = "streamgate_ratelimit_requests_total";
pub(crate) const STORE_ERRORS: &str = "streamgate_ratelimit_store_errors_total";

/// What the layer does when its store cannot decide (a shared store unreachable).
///
/// In configuration: `fail_mode: open` or `closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailMode {
    /// Let the request through (the default).
    #[default]
    Open,
    /// Answer 503 with a problem+json body.
    Closed,
}

/// An invalid rate-limit configuration, found when the layer is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfigError {
    message: String,
    key: Option<String>,
}

impl RateLimitConfigError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            key: None,
        }
    }

    /// The error is about `key` of the configuration section (`refill_rate`, `policies.login`).
    pub(crate) fn at(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The key of [`RateLimitConfig`](crate::RateLimitConfig) the error is about, as a dotted
    /// path inside the section (`refill_rate`, `policies.login.count_status`), when it is known:
    /// a configuration loader places the error at that key's line.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What is wrong, without the key (`Display` writes `key: message`).
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RateLimitConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{key}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for RateLimitConfigError {}

/// A policy as the layer runs it: metric handles registered, header text and 429 body ready.
pub(crate) struct PolicyState {
    pub(crate) id: PolicyId,
    pub(crate) name: Arc<str>,
    pub(crate) quota: Quota,
    pub(crate) gcra: Gcra,
    pub(crate) key: crate::KeyExtractor,
    pub(crate) counts: Option<Arc<StatusPredicate>>,
    pub(crate) shadow: bool,
    pub(crate) allowed: Counter,
    pub(crate) limited: Counter,
    pub(crate) shadowed: Counter,
    pub(crate) reject_body: Bytes,
    /// The start of the policy's `RateLimit` value, `"<name>";r=`.
    pub(crate) value_prefix: Box<[u8]>,
}

impl PolicyState {
    /// The store check of this policy for `key`: an outcome-based policy only peeks before the
    /// response (the response decides whether it counts), any other consumes.
    pub(crate) fn check(&self, key: crate::RateLimitKey, cost: u32) -> crate::Check {
        if self.counts.is_some() {
            crate::Check::peek(self.id, key, self.gcra, cost)
        } else {
            crate::Check::consume(self.id, key, self.gcra, cost)
        }
    }
}

/// Which policies apply to a route, at what cost.
pub(crate) struct Plan {
    pub(crate) exempt: bool,
    pub(crate) cost: u32,
    pub(crate) policies: SmallVec<[usize; 4]>,
    pub(crate) policy_header: Option<HeaderValue>,
    pub(crate) has_outcome: bool,
}

/// Everything a [`RateLimit`] service reads, shared by all its clones.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn RateLimitStore>,
    pub(crate) policies: Vec<PolicyState>,
    pub(crate) plans: Vec<Plan>,
    pub(crate) routes: hashbrown::HashMap<Box<str>, usize, foldhash::fast::RandomState>,
    pub(crate) exempt_methods: SmallVec<[Method; 2]>,
    pub(crate) headers: bool,
    pub(crate) legacy_headers: bool,
    pub(crate) shadow: bool,
    pub(crate) fail_mode: FailMode,
    pub(crate) store_errors_allowed: Counter,
    pub(crate) store_errors_rejected: Counter,
    /// Charges for outcome-based policies the store failed to make after the response.
    pub(crate) store_errors_unrecorded: Counter,
    pub(crate) store_error_log: streamgate_core::LogLimiter,
    pub(crate) shadow_log: streamgate_core::LogLimiter,
}

impl Drop for Shared {
    /// Frees the policies' names in the store, so a rebuilt layer may use them again.
    fn drop(&mut self) {
        for policy in &self.policies {
            self.store.unregister_policy(policy.id);
        }
    }
}

/// Rate limits requests by key under one or more named policies.
///
/// Cheap to clone. Built with [`RateLimitLayer::builder`]; see the [crate docs](crate) for an
/// example. Add it with axum's `Router::layer` or `route_layer` so the route template is known
/// for per-route policies; place it twice (IP-keyed outside the security layer, user-keyed
/// inside it) to protect both the credential check and each user's quota.
#[derive(Clone)]
pub struct RateLimitLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.shared.policies.iter().map(|p| &*p.name).collect();
        f.debug_struct("RateLimitLayer")
            .field("policies", &names)
            .field("store", &self.shared.store)
            .field("shadow", &self.shared.shadow)
            .finish()
    }
}

impl RateLimitLayer {
    /// A layer with one policy applied to every route.
    ///
    /// # Panics
    /// When the policy's name is not valid (see [`Policy`]).
    #[must_use]
    pub fn new(policy: Policy) -> Self {
        match Self::builder().policy(policy).build() {
            Ok(layer) => layer,
            Err(error) => panic!("invalid rate-limit policy: {error}"),
        }
    }

    /// A builder with no policies, an in-memory store of 100,000 keys and the IETF headers on.
    pub fn builder() -> RateLimitLayerBuilder {
        RateLimitLayerBuilder {
            policies: Vec::new(),
            route_uses: Vec::new(),
            costs: Vec::new(),
            exempt_routes: Vec::new(),
            exempt_methods: SmallVec::new(),
            store: None,
            max_keys: 100_000,
            sweep_interval: Duration::from_secs(10),
            metrics: MetricsHandle::global(),
            headers: true,
            legacy_headers: false,
            shadow: false,
            fail_mode: FailMode::Open,
        }
    }

    /// The id under which the store knows the policy `name` (to inspect or drive a store
    /// directly, in tests and tools).
    #[must_use]
    pub fn policy_id(&self, name: &str) -> Option<PolicyId> {
        self.shared
            .policies
            .iter()
            .find(|policy| &*policy.name == name)
            .map(|policy| policy.id)
    }

    /// The store the layer decides with.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn RateLimitStore> {
        &self.shared.store
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, self.shared.clone())
    }
}

#[derive(Debug, Clone)]
enum Scope {
    Everywhere,
    Route(String),
    Named,
}

/// Builds a [`RateLimitLayer`].
#[must_use]
pub struct RateLimitLayerBuilder {
    policies: Vec<(Policy, Scope)>,
    route_uses: Vec<(String, String)>,
    costs: Vec<(String, u32)>,
    exempt_routes: Vec<String>,
    exempt_methods: SmallVec<[Method; 2]>,
    store: Option<Arc<dyn RateLimitStore>>,
    max_keys: usize,
    sweep_interval: Duration,
    metrics: MetricsHandle,
    headers: bool,
    legacy_headers: bool,
    shadow: bool,
    fail_mode: FailMode,
}

impl fmt::Debug for RateLimitLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayerBuilder")
            .field("policies", &self.policies)
            .field("route_uses", &self.route_uses)
            .field("costs", &self.costs)
            .field("exempt_routes", &self.exempt_routes)
            .field("exempt_methods", &self.exempt_methods)
            .field("store", &self.store)
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl RateLimitLayerBuilder {
    /// Applies `policy` to every route. Several policies all have to pass.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policies.push((policy, Scope::Everywhere));
        self
    }

    /// Applies `policy` to the route template `route` only (`/login`, `/items/{id}`), on top of
    /// the policies of every route.
    pub fn route_policy(mut self, route: impl Into<String>, policy: Policy) -> Self {
        self.policies.push((policy, Scope::Route(route.into())));
        self
    }

    /// Defines `policy` without applying it; routes name it with [`Self::route_uses`] (the
    /// shape of the YAML config: route template -> policy name).
    pub fn define(mut self, policy: Policy) -> Self {
        self.policies.push((policy, Scope::Named));
        self
    }

    /// Applies the policy named `policy` (defined with any of the methods above) to `route`.
    pub fn route_uses(mut self, route: impl Into<String>, policy: impl Into<String>) -> Self {
        self.route_uses.push((route.into(), policy.into()));
        self
    }

    /// How many quota units a request to `route` costs (default 1). [`build`](Self::build)
    /// refuses a cost above the burst of a policy that applies to the route, as such a request
    /// could never pass.
    pub fn route_cost(mut self, route: impl Into<String>, cost: u32) -> Self {
        self.costs.push((route.into(), cost));
        self
    }

    /// Requests to `route` are not limited (health checks, metrics).
    pub fn exempt_route(mut self, route: impl Into<String>) -> Self {
        self.exempt_routes.push(route.into());
        self
    }

    /// Requests with `method` are not limited (for example `OPTIONS` preflights).
    pub fn exempt_method(mut self, method: Method) -> Self {
        self.exempt_methods.push(method);
        self
    }

    /// Decides with `store` instead of a new in-memory store (share one between layers, or use
    /// a shared store for several replicas).
    pub fn store(mut self, store: Arc<dyn RateLimitStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The cap on keys of the in-memory store the layer creates (default 100,000).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// How often the in-memory store the layer creates drops idle keys (default 10 s).
    pub fn sweep_interval(mut self, interval: Duration) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// Where metrics go (default: the global recorder).
    pub fn metrics(mut self, metrics: MetricsHandle) -> Self {
        self.metrics = metrics;
        self
    }

    /// Whether every response under a policy carries `RateLimit` and `RateLimit-Policy`
    /// (default on; a 429 always does).
    pub fn headers(mut self, on: bool) -> Self {
        self.headers = on;
        self
    }

    /// Also send `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (off by
    /// default), from the policy with the fewest units left.
    pub fn legacy_headers(mut self, on: bool) -> Self {
        self.legacy_headers = on;
        self
    }

    /// Shadow mode for every policy: count and log what would be limited, reject nothing.
    pub fn shadow(mut self, on: bool) -> Self {
        self.shadow = on;
        self
    }

    /// What to do when the store cannot decide (default [`FailMode::Open`]).
    pub fn fail_mode(mut self, mode: FailMode) -> Self {
        self.fail_mode = mode;
        self
    }

    /// Builds the layer.
    ///
    /// # Errors
    /// When no policy is given, a policy name is invalid or used twice, a route uses an
    /// undefined policy, a cost is zero or larger than the burst of a policy on its route, the
    /// in-memory store's cap is zero, or the store refuses a policy (another layer sharing the
    /// store already uses its name).
    pub fn build(self) -> Result<RateLimitLayer, RateLimitConfigError> {
        if self.policies.is_empty() {
            return Err(RateLimitConfigError::new(
                "a rate-limit layer needs at least one policy",
            ));
        }
        if self.store.is_none() && (self.max_keys == 0 || self.sweep_interval.is_zero()) {
            return Err(RateLimitConfigError::new(
                "the in-memory store needs max_keys > 0 and a positive sweep interval",
            ));
        }
        let store = self.store.clone().unwrap_or_else(|| {
            Arc::new(
                MemoryStore::builder()
                    .max_keys(self.max_keys)
                    .sweep_interval(self.sweep_interval)
                    .metrics(self.metrics.clone())
                    .build(),
            )
        });
        self.metrics.describe_counter(
            REQUESTS,
            "Requests decided by a rate-limit policy, by decision (allowed, limited, shadow).",
        );
        self.metrics.describe_counter(
            STORE_ERRORS,
            "Rate-limit store failures, by what the layer did (allowed, rejected, unrecorded).",
        );
        let mut policies = Vec::with_capacity(self.policies.len());
        for (policy, _) in &self.policies {
            if !Policy::valid_name(&policy.name) {
                return Err(RateLimitConfigError::new(format!(
                    "rate-limit policy name {:?} must be 1-64 printable ASCII characters without '\"' or '\\'",
                    policy.name
                )));
            }
            if policies
                .iter()
                .any(|existing: &PolicyState| existing.name == policy.name)
            {
                return Err(RateLimitConfigError::new(format!(
                    "rate-limit policy {:?} is defined twice",
                    policy.name
                )));
            }
            let id = PolicyId::next();
            let counter = |decision: &str| {
                self.metrics.counter(
                    REQUESTS,
                    &[("policy", &policy.name), ("decision", decision)],
                )
            };
            policies.push(PolicyState {
                id,
                name: policy.name.clone(),
                quota: policy.quota,
                gcra: policy.quota.gcra(),
                key: policy.key.clone(),
                counts: policy.counts.clone(),
                shadow: policy.shadow,
                allowed: counter("allowed"),
                limited: counter("limited"),
                shadowed: counter("shadow"),
                reject_body: response::problem_body(std::iter::once(&*policy.name)),
                value_prefix: crate::header_value::prefix(&policy.name),
            });
        }
        let index_of = |name: &str| policies.iter().position(|p| &*p.name == name);
        let everywhere: SmallVec<[usize; 4]> = self
            .policies
            .iter()
            .enumerate()
            .filter(|(_, (_, scope))| matches!(scope, Scope::Everywhere))
            .map(|(index, _)| index)
            .collect();
        let mut route_names: Vec<&str> = Vec::new();
        let mentioned = self
            .policies
            .iter()
            .filter_map(|(_, scope)| match scope {
                Scope::Route(route) => Some(route.as_str()),
                _ => None,
            })
            .chain(self.route_uses.iter().map(|(route, _)| route.as_str()))
            .chain(self.costs.iter().map(|(route, _)| route.as_str()))
            .chain(self.exempt_routes.iter().map(String::as_str));
        for route in mentioned {
            if !route_names.contains(&route) {
                route_names.push(route);
            }
        }
        let mut plans = vec![plan(&policies, everywhere.clone(), 1, false)?];
        let mut routes = hashbrown::HashMap::with_hasher(foldhash::fast::RandomState::default());
        for route in route_names {
            let mut members = everywhere.clone();
            for (index, (_, scope)) in self.policies.iter().enumerate() {
                if matches!(scope, Scope::Route(r) if r == route) {
                    members.push(index);
                }
            }
            for (_, name) in self.route_uses.iter().filter(|(r, _)| r == route) {
                let index = index_of(name).ok_or_else(|| {
                    RateLimitConfigError::new(format!(
                        "route {route:?} uses rate-limit policy {name:?}, which is not defined"
                    ))
                })?;
                if !members.contains(&index) {
                    members.push(index);
                }
            }
            let cost = self
                .costs
                .iter()
                .rev()
                .find(|(r, _)| r == route)
                .map_or(1, |(_, cost)| *cost);
            if cost == 0 {
                return Err(RateLimitConfigError::new(format!(
                    "route {route:?} has cost 0; exempt it instead"
                )));
            }
            let exempt = self.exempt_routes.iter().any(|r| r == route);
            if !exempt
                && let Some(policy) = members
                    .iter()
                    .map(|&index| &policies[index])
                    .find(|policy| cost > policy.quota.burst_size())
            {
                return Err(RateLimitConfigError::new(format!(
                    "route {route:?} costs {cost} units, more than the burst of {} of rate-limit \
                     policy {:?}, so no request to it could ever pass; lower the cost or raise \
                     the burst",
                    policy.quota.burst_size(),
                    &*policy.name,
                )));
            }
            routes.insert(route.into(), plans.len());
            plans.push(plan(&policies, members, cost, exempt)?);
        }
        // Registered last, once nothing else can fail; a refusal undoes this layer's earlier ones.
        for (index, policy) in policies.iter().enumerate() {
            if let Err(error) = store.register_policy(policy.id, &policy.name, &policy.quota) {
                for registered in &policies[..index] {
                    store.unregister_policy(registered.id);
                }
                return Err(RateLimitConfigError::new(error.to_string()));
            }
        }
        let store_error =
            |outcome: &str| self.metrics.counter(STORE_ERRORS, &[("outcome", outcome)]);
        Ok(RateLimitLayer {
            shared: Arc::new(Shared {
                store,
                plans,
                routes,
                exempt_methods: self.exempt_methods.clone(),
                headers: self.headers,
                legacy_headers: self.legacy_headers,
                shadow: self.shadow,
                fail_mode: self.fail_mode,
                store_errors_allowed: store_error("allowed"),
                store_errors_rejected: store_error("rejected"),
                store_errors_unrecorded: store_error("unrecorded"),
                store_error_log: streamgate_core::LogLimiter::new(Duration::from_secs(1)),
                shadow_log: streamgate_core::LogLimiter::new(Duration::from_secs(1)),
                policies,
            }),
        })
    }
}

fn plan(
    policies: &[PolicyState],
    members: SmallVec<[usize; 4]>,
    cost: u32,
    exempt: bool,
) -> Result<Plan, RateLimitConfigError> {
    let policy_header = if members.is_empty() {
        None
    } else {
        let text = members
            .iter()
            .map(|&index| response::policy_item(&policies[index].name, &policies[index].quota))
            .collect::<Vec<_>>()
            .join(", ");
        Some(HeaderValue::from_str(&text).map_err(|_| {
            RateLimitConfigError::new("a rate-limit policy name is not a valid header value")
        })?)
    };
    let has_outcome = members
        .iter()
        .any(|&index| policies[index].counts.is_some());
    Ok(Plan {
        exempt,
        cost,
        policies: members,
        policy_header,
        has_outcome,
    })
}
