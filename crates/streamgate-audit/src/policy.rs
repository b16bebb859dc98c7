//! Which requests the layer records, and how much: first-matching rules over route, method and
//! outcome, each giving a [`Level`].
//!
//! ```
//! use http::Method;
//! use streamgate_audit::{AuditPolicy, Level, Outcome, Rule};
//!
//! // Record every request to /files, with a body excerpt for uploads; otherwise the defaults.
//! let policy = AuditPolicy::default()
//!     .prepend(Rule::route_prefix("/files").methods([Method::POST]).level(Level::Request))
//!     .prepend(Rule::route_prefix("/files").level(Level::Metadata))
//!     // and failed reads of reports, too
//!     .rule(Rule::route_prefix("/reports").outcomes([Outcome::Failure, Outcome::Error]).level(Level::Metadata));
//! assert_eq!(policy.decide(&Method::GET, "/files/{id}", 200).0, Level::Metadata);
//! assert_eq!(policy.decide(&Method::GET, "/items/{id}", 200).0, Level::None);
//! assert_eq!(policy.decide(&Method::GET, "/items/{id}", 401).0, Level::Metadata);
//! ```

use std::{borrow::Cow, sync::Arc};

use http::Method;

use crate::event::{Outcome, event_type, is_security_status};

/// How much of a request is recorded.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Not recorded.
    None,
    /// Who, what, when, where and the outcome.
    Metadata,
    /// As `Metadata`, plus allowlisted headers and a bounded, redacted body excerpt.
    Request,
}

#[derive(Debug, Clone)]
enum RouteMatch {
    Any,
    Exact(String),
    Prefix(String),
}

impl RouteMatch {
    /// The route's second byte (after the leading `/`), which rejects most routes at once.
    fn key_byte(&self) -> Option<u8> {
        match self {
            RouteMatch::Any => None,
            RouteMatch::Exact(p) | RouteMatch::Prefix(p) => p.as_bytes().get(1).copied(),
        }
    }

    #[inline]
    fn matches(&self, route: &str) -> bool {
        match self {
            RouteMatch::Any => true,
            RouteMatch::Exact(r) => r == route,
            RouteMatch::Prefix(p) => {
                let (route, p) = (route.as_bytes(), p.as_bytes());
                // A plain loop: prefixes are short and most differ at their second byte.
                route.len() >= p.len()
                    && route.iter().zip(p).all(|(a, b)| a == b)
                    && (p.last() == Some(&b'/') || route.len() == p.len() || route[p.len()] == b'/')
            }
        }
    }
}

#[derive(Debug, Clone)]
enum MethodMatch {
    Any,
    Unsafe,
    List(Vec<Method>),
}

/// The methods with their own bit in [`Index::by_method`]; others are matched rule by rule.
const INDEXED_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];

/// How many methods have a slot ([`method_slot`]).
pub(crate) const METHOD_SLOTS: usize = INDEXED_METHODS.len();

/// The position of `method` in [`INDEXED_METHODS`].
#[inline]
pub(crate) fn method_slot(method: &Method) -> Option<usize> {
    Some(match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::CONNECT => 8,
        _ => return None,
    })
}

impl MethodMatch {
    #[inline]
    fn matches(&self, method: &Method) -> bool {
        match self {
            MethodMatch::Any => true,
            MethodMatch::Unsafe => !method.is_safe(),
            MethodMatch::List(list) => list.contains(method),
        }
    }
}

/// One rule: which requests (route, method, outcome) and at what [`Level`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Rule {
    key_byte: Option<u8>,
    route: RouteMatch,
    methods: MethodMatch,
    outcomes: Option<Vec<Outcome>>,
    level: Level,
    event_type: Option<Cow<'static, str>>,
}

impl Rule {
    /// Every route and method, at `Metadata` until [`level`](Self::level) says otherwise.
    pub fn any() -> Self {
        Self {
            key_byte: None,
            route: RouteMatch::Any,
            methods: MethodMatch::Any,
            outcomes: None,
            level: Level::Metadata,
            event_type: None,
        }
    }

    /// Exactly the route template `route` (`/items/{id}`).
    pub fn route(route: impl Into<String>) -> Self {
        Self::any().with_route(RouteMatch::Exact(route.into()))
    }

    fn with_route(mut self, route: RouteMatch) -> Self {
        self.key_byte = route.key_byte();
        self.route = route;
        self
    }

    /// Route templates under `prefix`, segment-wise: `/admin` matches `/admin` and `/admin/users`,
    /// not `/administrators`.
    pub fn route_prefix(prefix: impl Into<String>) -> Self {
        Self::any().with_route(RouteMatch::Prefix(prefix.into()))
    }

    /// Only these methods.
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = MethodMatch::List(methods.into_iter().collect());
        self
    }

    /// Only methods that are not safe (anything but GET, HEAD, OPTIONS, TRACE).
    pub fn unsafe_methods(mut self) -> Self {
        self.methods = MethodMatch::Unsafe;
        self
    }

    /// Only these outcomes (decided when the response is known).
    pub fn outcomes(mut self, outcomes: impl IntoIterator<Item = Outcome>) -> Self {
        self.outcomes = Some(outcomes.into_iter().collect());
        self
    }

    /// The level of matching requests.
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// The event type recorded for matching requests (default `http_request`).
    pub fn event_type(mut self, event_type: impl Into<Cow<'static, str>>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    #[inline(always)]
    fn matches_request(&self, method: &Method, route: &str) -> bool {
        if let Some(key) = self.key_byte
            && route.as_bytes().get(1) != Some(&key)
        {
            return false;
        }
        self.matches_rest(method, route)
    }

    fn matches_rest(&self, method: &Method, route: &str) -> bool {
        self.methods.matches(method) && self.route.matches(route)
    }
}

/// The first-matching rule list. Cheap to clone.
///
/// The default follows the seed: admin routes (`/admin`), authentication routes (`/auth`,
/// `/login`, `/logout`, `/token`, `/oauth`, `/session`) and every non-safe method at `Metadata`;
/// plain reads are not recorded; and the security outcomes 401, 403, 413, 415, 422 and 429 are
/// always recorded at least at `Metadata` (see [`security_floor`](Self::security_floor)).
///
/// A request that no rule records is recorded only if refused; such requests are not timed
/// (their events have no `latency_ms`) and take their actor from the response, which keeps the
/// layer's cost on plain reads to a few lookups and copies.
#[derive(Debug, Clone)]
pub struct AuditPolicy {
    inner: Arc<Rules>,
}

#[derive(Debug, Clone)]
struct Rules {
    rules: Vec<Rule>,
    /// Each rule's route key byte (0: none), scanned first: most rules are rejected by it
    /// without touching the rule itself.
    keys: Vec<u8>,
    /// Bit sets of the rules that can match a route byte and a method (up to 64 rules).
    index: Option<Box<Index>>,
    fallback: Level,
    security_floor: bool,
}

/// Which rules can match, as bit sets (bit `i`: rule `i`), built with the rules: a request's
/// candidates are `by_byte[second route byte] & by_method[method]`, so a request no rule can
/// match (a plain read under the default policy) is decided by one AND.
#[derive(Debug, Clone)]
struct Index {
    by_byte: [u64; 256],
    by_method: [u64; INDEXED_METHODS.len()],
}

impl Index {
    fn new(rules: &[Rule]) -> Option<Box<Self>> {
        if rules.len() > 64 {
            return None;
        }
        let mut index = Box::new(Index {
            by_byte: [0; 256],
            by_method: [0; INDEXED_METHODS.len()],
        });
        for (i, rule) in rules.iter().enumerate() {
            let bit = 1u64 << i;
            for (byte, set) in index.by_byte.iter_mut().enumerate() {
                if rule.key_byte.is_none_or(|key| usize::from(key) == byte) {
                    *set |= bit;
                }
            }
            for (method, set) in INDEXED_METHODS.iter().zip(&mut index.by_method) {
                if rule.methods.matches(method) {
                    *set |= bit;
                }
            }
        }
        Some(index)
    }

    /// The rules that may match, or `None` for a method without a bit.
    #[inline]
    fn candidates(&self, method: &Method, second: u8) -> Option<u64> {
        Some(self.by_byte[usize::from(second)] & self.by_method[method_slot(method)?])
    }
}

impl Rules {
    fn new(rules: Vec<Rule>, fallback: Level, security_floor: bool) -> Self {
        let mut this = Self {
            rules,
            keys: Vec::new(),
            index: None,
            fallback,
            security_floor,
        };
        this.index();
        this
    }

    fn index(&mut self) {
        self.keys = self.rules.iter().map(|r| r.key_byte.unwrap_or(0)).collect();
        self.index = Index::new(&self.rules);
    }
}

/// What can be decided before the response: the most a request may be recorded at, and which
/// rule decides it when the status does not matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PreDecision {
    /// The highest level any response could give (`None`: skip the request entirely).
    pub(crate) max: Level,
    /// Whether only the security floor can record this request (no rule records it whatever
    /// its status).
    pub(crate) floor_only: bool,
    resolved: Resolved,
}

/// The rules matched so far by [`AuditPolicy::pre_decide`], in order.
struct Found {
    max: Level,
    fallback: Level,
    first_conditional: Option<u32>,
    resolved: Option<Resolved>,
}

impl Found {
    fn new(fallback: Level) -> Self {
        Self {
            max: Level::None,
            fallback,
            first_conditional: None,
            resolved: None,
        }
    }

    /// Adds matching rule `i`; `true` when it decides whatever the status (stop looking).
    #[inline]
    fn add(&mut self, i: usize, rule: &Rule) -> bool {
        // Rule positions fit: a policy has far fewer than 2^32 rules.
        let i = i as u32;
        self.max = self.max.max(rule.level);
        if rule.outcomes.is_none() {
            self.resolved = Some(match self.first_conditional {
                Some(first) => Resolved::FromRule(first),
                None => Resolved::Rule(i),
            });
            return true;
        }
        self.first_conditional.get_or_insert(i);
        false
    }

    fn finish(self) -> (Level, Resolved) {
        match self.resolved {
            Some(resolved) => (self.max, resolved),
            None => (
                self.max.max(self.fallback),
                self.first_conditional
                    .map_or(Resolved::Fallback, Resolved::FromRule),
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
    /// This rule (without an outcome condition) matches whatever the status.
    Rule(u32),
    /// No rule matches whatever the status: the fallback level.
    Fallback,
    /// The status decides, starting with this rule.
    FromRule(u32),
}

impl Default for AuditPolicy {
    fn default() -> Self {
        let mut rules = vec![Rule::route_prefix("/admin").event_type(event_type::ADMIN)];
        for prefix in ["/auth", "/login", "/logout", "/token", "/oauth", "/session"] {
            rules.push(Rule::route_prefix(prefix).event_type(event_type::AUTHENTICATION));
        }
        rules.push(
            Rule::any()
                .unsafe_methods()
                .event_type(event_type::DATA_MODIFICATION),
        );
        Self {
            inner: Arc::new(Rules::new(rules, Level::None, true)),
        }
    }
}

impl AuditPolicy {
    /// No rules, nothing recorded except the security outcomes (the floor stays on).
    #[must_use]
    pub fn empty() -> Self {
        Self {
            inner: Arc::new(Rules::new(Vec::new(), Level::None, true)),
        }
    }

    /// Every request at `level`.
    #[must_use]
    pub fn record_everything(level: Level) -> Self {
        Self::empty().fallback(level)
    }

    /// Adds `rule` after the existing ones.
    #[must_use]
    pub fn rule(mut self, rule: Rule) -> Self {
        let rules = Arc::make_mut(&mut self.inner);
        rules.rules.push(rule);
        rules.index();
        self
    }

    /// Adds `rule` before the existing ones (it wins over them).
    #[must_use]
    pub fn prepend(mut self, rule: Rule) -> Self {
        let rules = Arc::make_mut(&mut self.inner);
        rules.rules.insert(0, rule);
        rules.index();
        self
    }

    /// The level of requests no rule matches (default `None`).
    #[must_use]
    pub fn fallback(mut self, level: Level) -> Self {
        Arc::make_mut(&mut self.inner).fallback = level;
        self
    }

    /// Whether 401, 403, 413, 415, 422 and 429 are recorded at least at `Metadata` whatever the
    /// rules say (default `true`).
    #[must_use]
    pub fn security_floor(mut self, on: bool) -> Self {
        Arc::make_mut(&mut self.inner).security_floor = on;
        self
    }

    /// Before the response: the highest level this request could be recorded at.
    pub(crate) fn pre_decide(&self, method: &Method, route: &str) -> PreDecision {
        let rules = &*self.inner;
        let second = route.as_bytes().get(1).copied().unwrap_or(0);
        let (max, resolved) = match rules
            .index
            .as_ref()
            .and_then(|i| i.candidates(method, second))
        {
            Some(0) => (rules.fallback, Resolved::Fallback),
            Some(mut candidates) => {
                let mut found = Found::new(rules.fallback);
                while candidates != 0 {
                    let i = candidates.trailing_zeros() as usize;
                    candidates &= candidates - 1;
                    let rule = &rules.rules[i];
                    if rule.route.matches(route) && found.add(i, rule) {
                        break;
                    }
                }
                found.finish()
            }
            None => {
                let mut found = Found::new(rules.fallback);
                for (i, (&key, rule)) in rules.keys.iter().zip(&rules.rules).enumerate() {
                    if (key == 0 || key == second)
                        && rule.matches_rest(method, route)
                        && found.add(i, rule)
                    {
                        break;
                    }
                }
                found.finish()
            }
        };
        let floor_only = match resolved {
            Resolved::Rule(i) => rules.rules[i as usize].level == Level::None,
            Resolved::Fallback => rules.fallback == Level::None,
            Resolved::FromRule(_) => false,
        };
        let floor = if rules.security_floor {
            Level::Metadata
        } else {
            Level::None
        };
        PreDecision {
            max: max.max(floor),
            floor_only,
            resolved,
        }
    }

    /// After the response: the level and event type, continuing from `pre` (only rules with an
    /// outcome condition are evaluated again).
    pub(crate) fn decide_after<'r>(
        &self,
        pre: PreDecision,
        method: &Method,
        route: impl FnOnce() -> &'r str,
        status: u16,
    ) -> (Level, Cow<'static, str>) {
        let rules = &*self.inner;
        let (level, kind) = match pre.resolved {
            Resolved::Rule(i) => {
                let rule = &rules.rules[i as usize];
                (rule.level, rule.event_type.as_ref())
            }
            Resolved::Fallback => (rules.fallback, None),
            Resolved::FromRule(first) => {
                let route = route();
                let outcome = Outcome::from_status(status);
                rules.rules[first as usize..]
                    .iter()
                    .find(|rule| {
                        rule.matches_request(method, route)
                            && rule.outcomes.as_ref().is_none_or(|o| o.contains(&outcome))
                    })
                    .map_or((rules.fallback, None), |rule| {
                        (rule.level, rule.event_type.as_ref())
                    })
            }
        };
        self.finish_decision(level, kind, status)
    }

    fn finish_decision(
        &self,
        mut level: Level,
        kind: Option<&Cow<'static, str>>,
        status: u16,
    ) -> (Level, Cow<'static, str>) {
        let security = is_security_status(status);
        if security && self.inner.security_floor {
            level = level.max(Level::Metadata);
        }
        if level == Level::None {
            return (level, Cow::Borrowed(event_type::HTTP_REQUEST));
        }
        let kind = match status {
            401 => Cow::Borrowed(event_type::AUTHENTICATION),
            403 => Cow::Borrowed(event_type::AUTHORIZATION),
            _ if security => Cow::Borrowed(event_type::SECURITY),
            _ => kind
                .cloned()
                .unwrap_or(Cow::Borrowed(event_type::HTTP_REQUEST)),
        };
        (level, kind)
    }

    /// The level and event type of a request with response status `status`.
    #[must_use]
    pub fn decide(&self, method: &Method, route: &str, status: u16) -> (Level, Cow<'static, str>) {
        let rules = &*self.inner;
        let outcome = Outcome::from_status(status);
        let rule = rules.rules.iter().find(|rule| {
            rule.matches_request(method, route)
                && rule.outcomes.as_ref().is_none_or(|o| o.contains(&outcome))
        });
        let (level, kind) =
            rule.map_or((rules.fallback, None), |r| (r.level, r.event_type.as_ref()));
        self.finish_decision(level, kind, status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_follows_the_seed() {
        let p = AuditPolicy::default();
        assert_eq!(p.decide(&Method::GET, "/items/{id}", 200).0, Level::None);
        assert_eq!(
            p.pre_decide(&Method::GET, "/items/{id}").max,
            Level::Metadata
        );
        let (level, kind) = p.decide(&Method::POST, "/items", 201);
        assert_eq!(
            (level, kind.as_ref()),
            (Level::Metadata, "data_modification")
        );
        let (level, kind) = p.decide(&Method::GET, "/admin/users", 200);
        assert_eq!((level, kind.as_ref()), (Level::Metadata, "admin"));
        assert_eq!(
            p.decide(&Method::GET, "/administrators", 200).0,
            Level::None
        );
        assert_eq!(p.decide(&Method::POST, "/login", 200).1, "authentication");
        for (status, kind) in [
            (401, "authentication"),
            (403, "authorization"),
            (413, "security"),
            (415, "security"),
            (422, "security"),
            (429, "security"),
        ] {
            let (level, k) = p.decide(&Method::GET, "/items/{id}", status);
            assert_eq!((level, k.as_ref()), (Level::Metadata, kind), "{status}");
        }
    }

    #[test]
    fn the_two_step_decision_agrees_with_the_one_step_decision() {
        let policies = [
            AuditPolicy::default(),
            AuditPolicy::empty()
                .rule(
                    Rule::route_prefix("/a")
                        .outcomes([Outcome::Error])
                        .level(Level::Request),
                )
                .rule(
                    Rule::route_prefix("/a")
                        .methods([Method::GET])
                        .level(Level::None),
                )
                .rule(
                    Rule::any()
                        .outcomes([Outcome::Denied])
                        .level(Level::Request),
                )
                .fallback(Level::Metadata),
            // More rules than the index holds: decided rule by rule.
            (0..70).fold(AuditPolicy::default(), |policy, i| {
                policy.rule(Rule::route(format!("/r{i}")).level(Level::Request))
            }),
        ];
        let purge = Method::from_bytes(b"PURGE").unwrap();
        for policy in &policies {
            for method in [Method::GET, Method::POST, Method::DELETE, purge.clone()] {
                for route in [
                    "/a",
                    "/a/{id}",
                    "/admin",
                    "/login",
                    "/items/{id}",
                    "/ab",
                    "/r3",
                    "",
                ] {
                    let pre = policy.pre_decide(&method, route);
                    for status in [200, 204, 302, 400, 401, 403, 404, 413, 422, 429, 500, 503] {
                        let one = policy.decide(&method, route, status);
                        let two = policy.decide_after(pre, &method, || route, status);
                        assert!(one.0 <= pre.max, "{method} {route} {status}");
                        if pre.floor_only && !is_security_status(status) {
                            assert_eq!(one.0, Level::None, "{method} {route} {status}");
                        }
                        if one.0 != Level::None {
                            assert_eq!(one, two, "{method} {route} {status}");
                        } else {
                            assert_eq!(two.0, Level::None, "{method} {route} {status}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn first_matching_rule_wins_and_outcome_rules_wait_for_the_status() {
        let p = AuditPolicy::empty()
            .security_floor(false)
            .rule(Rule::route("/health").level(Level::None))
            .rule(Rule::any().outcomes([Outcome::Error]).level(Level::Request))
            .rule(Rule::any().methods([Method::DELETE]).level(Level::Metadata));
        assert_eq!(p.pre_decide(&Method::GET, "/health").max, Level::None);
        assert_eq!(p.pre_decide(&Method::GET, "/x").max, Level::Request);
        assert_eq!(p.decide(&Method::GET, "/x", 500).0, Level::Request);
        assert_eq!(p.decide(&Method::GET, "/x", 200).0, Level::None);
        assert_eq!(p.decide(&Method::DELETE, "/x", 200).0, Level::Metadata);
        assert_eq!(p.decide(&Method::GET, "/health", 401).0, Level::None);
    }
}
