//! [`Stack`]: every layer, in the order ARCHITECTURE.md gives, plus the admin routes.

#[cfg(feature = "metrics")]
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};
use std::time::Duration;

use axum::{Router, routing::get};
use streamgate_core::{ClientIpLayer, TrustedProxies, request_id_layer};

#[cfg(feature = "metrics")]
use crate::MetricsConfig;
use crate::{
    Config, ConfigError, READY_PATH, hardening, problem_bodies::ProblemBodiesLayer,
    ready::Readiness,
};
use axum::error_handling::HandleErrorLayer;
#[cfg(feature = "metrics")]
use streamgate_metrics::{MetricsLayer, MetricsRecorder, metrics_route};
use tower::{ServiceBuilder, timeout::TimeoutLayer, util::MapResponseLayer};
use tower_layer::Identity;

/// The path of the Prometheus scrape endpoint that [`Stack::apply`] mounts.
pub const METRICS_PATH: &str = "/metrics";
/// The liveness probe path.
pub const LIVE_PATH: &str = "/health/live";
/// The path of the active alerts (JSON) that [`Stack::apply`] mounts when alerts are on.
pub const ALERTS_PATH: &str = "/alerts";

/// Every StreamGate layer, applied to an axum [`Router`] in the order the layers depend on:
///
/// 1. request id (`x-request-id`), then metrics: they see every request, rejections included;
/// 2. client IP resolution (trusted proxies);
/// 3. the inner layers, in the order of `docs/architecture.md`, then the validation settings
///    that the `Valid<T>` extractors read; innermost, a problem+json body for an error response
///    that has none (see [`problem_bodies`](Self::problem_bodies));
///
/// plus the admin routes `/metrics`, `/health/live` and `/health/ready` (see
/// [`readiness_check`](Self::readiness_check)).
///
/// The layers are added inside the router (`Router::layer`), so axum's matched route template is
/// known to every one of them. Apply the stack after adding all routes (and any fallback).
///
/// The admin routes sit beside the user's routes, not under them: they get only the request id
/// layer and problem bodies. Authentication, authorization, rate limits and the audit trail
/// never refuse or record a liveness probe or a scrape, and the metrics layer does not count
/// them.
#[derive(Debug, Clone)]
#[must_use]
pub struct Stack {
    service_name: String,
    trusted_proxies: TrustedProxies,
    request_ids: bool,
    /// Whether empty error responses get a problem+json body.
    problem_bodies: bool,
    /// The checks of `/health/ready` besides the rate-limit stores'.
    readiness: Readiness,
    /// `security.request_timeout`.
    request_timeout: Option<Duration>,
    /// `security.response_headers`.
    secure_headers: Option<std::sync::Arc<crate::SecureHeaders>>,
    /// `security.cors`.
    cors: Option<tower_http::cors::CorsLayer>,
    #[cfg(feature = "validate")]
    validation: bool,
    #[cfg(feature = "audit")]
    audit: Option<(streamgate_audit::AuditLayer, streamgate_audit::AuditLogger)>,
    /// Rate limits keyed by client IP (outside the security layer) and by user (inside it).
    #[cfg(feature = "ratelimit")]
    rate_limits: [Option<streamgate_ratelimit::RateLimitLayer>; 2],
    /// Whether `rate_limits[0]` is the seed's default, rebuilt when the recorder changes so its
    /// metrics land where `/metrics` renders.
    #[cfg(feature = "ratelimit")]
    default_rate_limit: bool,
    #[cfg(feature = "security")]
    security: Option<streamgate_security::SecurityContextLayer>,
    #[cfg(feature = "security")]
    authorize: Option<streamgate_security::AuthorizeLayer>,
    #[cfg(feature = "cache")]
    cache: Option<streamgate_cache::CacheLayer>,
    /// `optimization.cache.warm`: the paths [`Stack::spawn_cache_warming`] requests.
    #[cfg(feature = "cache")]
    cache_warm: streamgate_cache::CacheWarmConfig,
    #[cfg(feature = "metrics")]
    recorder: MetricsRecorder,
    #[cfg(feature = "metrics")]
    upkeep_started: Arc<AtomicBool>,
    #[cfg(feature = "metrics")]
    metrics: MetricsConfig,
    /// The alert rules and their evaluator; `default_alerts` when they are the seed's rules
    /// with the log handler, rebuilt when the recorder changes.
    #[cfg(feature = "alerts")]
    alerts: Option<streamgate_alerts::Alerts>,
    #[cfg(feature = "alerts")]
    default_alerts: bool,
    #[cfg(feature = "alerts")]
    evaluator_started: Arc<AtomicBool>,
    /// Set once `ServiceStopped` is announced.
    #[cfg(feature = "alerts")]
    stopped: Arc<AtomicBool>,
}

impl Stack {
    /// A stack for the service `service_name` (the `service_name` metric label) with the
    /// embedded defaults: in-process state, no trusted proxies.
    pub fn new(service_name: impl Into<String>) -> Self {
        let stack = Self::without_rate_limits(service_name);
        #[cfg(feature = "ratelimit")]
        let stack = stack.default_rate_limit();
        #[cfg(feature = "alerts")]
        let stack = stack.default_alerts();
        stack
    }

    /// Installs the seed's alert rules for the service, logged, over the current recorder.
    #[cfg(feature = "alerts")]
    fn default_alerts(mut self) -> Self {
        let alerts = streamgate_alerts::AlertsConfig::default()
            .build(self.recorder.clone(), &self.service_name)
            .expect("the seed's default alert rules are valid")
            .build();
        self.alerts = Some(alerts);
        self.default_alerts = true;
        self
    }

    /// Installs the seed's default rate limit, recording into the current recorder.
    #[cfg(feature = "ratelimit")]
    fn default_rate_limit(mut self) -> Self {
        let layer = streamgate_ratelimit::RateLimitConfig::default()
            .builder()
            .and_then(|builder| builder.metrics(self.layer_metrics()).build())
            .expect("the seed's default rate limit is valid");
        self.rate_limits[0] = Some(layer);
        self.default_rate_limit = true;
        self
    }

    fn without_rate_limits(service_name: impl Into<String>) -> Self {
        Self {
            service_name: service_name.into(),
            trusted_proxies: TrustedProxies::none(),
            request_ids: true,
            problem_bodies: true,
            readiness: Readiness::default(),
            request_timeout: None,
            secure_headers: None,
            cors: None,
            #[cfg(feature = "validate")]
            validation: true,
            #[cfg(feature = "audit")]
            audit: None,
            #[cfg(feature = "ratelimit")]
            rate_limits: [None, None],
            #[cfg(feature = "ratelimit")]
            default_rate_limit: false,
            #[cfg(feature = "security")]
            security: None,
            #[cfg(feature = "security")]
            authorize: None,
            #[cfg(feature = "cache")]
            cache: None,
            #[cfg(feature = "cache")]
            cache_warm: streamgate_cache::CacheWarmConfig::default(),
            #[cfg(feature = "metrics")]
            recorder: MetricsRecorder::new(),
            #[cfg(feature = "metrics")]
            upkeep_started: Arc::new(AtomicBool::new(false)),
            #[cfg(feature = "metrics")]
            metrics: MetricsConfig::default(),
            #[cfg(feature = "alerts")]
            alerts: None,
            #[cfg(feature = "alerts")]
            default_alerts: false,
            #[cfg(feature = "alerts")]
            evaluator_started: Arc::new(AtomicBool::new(false)),
            #[cfg(feature = "alerts")]
            stopped: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A stack configured by `config` (see [`Config`]).
    ///
    /// # Errors
    /// A [`ConfigError`] when a value the types cannot check is wrong (a trusted proxy that is
    /// not a network, a zero timeout, a CORS origin that is not one), naming the file, line and
    /// column of its section (or the environment variable that set it) when `config` was read
    /// from YAML.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let trusted = TrustedProxies::parse(&config.security.trusted_proxies)
            .map_err(|e| config.error_at("security.trusted_proxies", e))?
            .with_header(config.security.forwarded_header);
        let metrics = &config.monitoring.metrics;
        let mut stack =
            Self::without_rate_limits(metrics.service_name.clone()).trusted_proxies(trusted);
        if config
            .security
            .request_timeout
            .is_some_and(|timeout| timeout.is_zero())
        {
            return Err(config.error_at(
                "security.request_timeout",
                "a zero timeout would refuse every request; remove the key for none",
            ));
        }
        stack.request_timeout = config.security.request_timeout;
        stack.secure_headers = crate::SecureHeaders::from_config(&config.security.response_headers)
            .map_err(|e| config.error_at("security.response_headers", e))?
            .map(std::sync::Arc::new);
        stack.cors = match &config.security.cors {
            Some(cors) => Some(
                cors.layer()
                    .map_err(|e| config.error_at("security.cors", e))?,
            ),
            None => None,
        };
        #[cfg(feature = "metrics")]
        let stack = {
            let slots = 30;
            let recorder = MetricsRecorder::builder()
                .window(metrics.window, slots)
                .build()
                .map_err(|e| config.error_at("monitoring.metrics", e))?;
            let mut stack = stack.metrics_recorder(recorder);
            stack.metrics = metrics.clone();
            stack
        };
        #[cfg(feature = "alerts")]
        let stack = {
            let alerts = &config.monitoring.alerts;
            let mut stack = stack;
            if alerts.enabled {
                let built = alerts
                    .build(stack.recorder.clone(), &metrics.service_name)
                    .map_err(|e| config.error_at("monitoring.alerts", e))?;
                stack.alerts = Some(built.build());
            }
            stack
        };
        #[cfg(feature = "cache")]
        let stack = {
            let cache = &config.optimization.cache;
            let mut stack = stack;
            if cache.is_active() {
                let layer = cache
                    .builder(stack.layer_metrics())
                    .map_err(|e| config.error_at("optimization.cache", e))?
                    .build();
                #[cfg(feature = "alerts")]
                if let Some(alerts) = &stack.alerts
                    && config.monitoring.alerts.default_rules
                {
                    alerts.add_rule(cache_eviction_rule(cache.max_size));
                }
                stack.cache = Some(layer);
                stack.cache_warm = cache.warm.clone();
            }
            stack
        };
        #[cfg(feature = "ratelimit")]
        let stack = {
            let limits = &config.security.rate_limiting;
            let mut stack = stack;
            if limits.enabled {
                let fail = |e: streamgate_ratelimit::RateLimitConfigError| {
                    let key = e.key().map_or_else(
                        || "security.rate_limiting".to_owned(),
                        |key| format!("security.rate_limiting.{key}"),
                    );
                    config.error_at(&key, e.message())
                };
                limits.check().map_err(fail)?;
                // One store for both halves: on Redis, one connection.
                let store = limits.store(&stack.layer_metrics()).map_err(fail)?;
                let (by_ip, by_user) = limits.split_by_key();
                for (slot, part) in [by_ip, by_user].into_iter().enumerate() {
                    if !part.has_policies() {
                        continue;
                    }
                    let layer = part
                        .builder()
                        .and_then(|builder| {
                            let builder = builder.metrics(stack.layer_metrics());
                            match &store {
                                Some(store) => builder.store(store.clone()),
                                None => builder,
                            }
                            .build()
                        })
                        .map_err(fail)?;
                    stack.rate_limits[slot] = Some(layer);
                }
            }
            stack
        };
        #[cfg(feature = "security")]
        let stack = match &config.security.auth {
            None => stack,
            Some(auth) => {
                let setup = auth
                    .build_with(stack.layer_metrics())
                    .map_err(|e| config.error_at("security.auth", e))?;
                let stack = stack.security(setup.layer);
                match setup.routes {
                    Some(routes) => stack.authorize(routes),
                    None => stack,
                }
            }
        };
        // Last: nothing after it can fail, so a refused configuration never starts and drops
        // an audit writer.
        #[cfg(feature = "audit")]
        let stack = {
            let audit = &config.security.audit_logging;
            if audit.enabled {
                let mut stack = stack;
                let fail = |message: String| config.error_at("security.audit_logging", message);
                let logger =
                    audit_logger(audit, stack.layer_metrics(), &mut stack.readiness, fail)?;
                // The seed's `Disk full`, for the disk the audit trail needs room on.
                #[cfg(feature = "alerts")]
                if let Some(alerts) = &stack.alerts
                    && config.monitoring.alerts.default_rules
                    && audit.sink == crate::AuditSinkKind::File
                {
                    alerts.add_rule(streamgate_alerts::AlertRule::disk_full(
                        "AuditDiskFull",
                        &audit.dir,
                    ));
                }
                stack.audit(logger)
            } else {
                stack
            }
        };
        Ok(stack)
    }

    /// The proxies whose forwarding header ([`TrustedProxies::header`], `X-Forwarded-For` by
    /// default) is believed.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Whether `x-request-id` is set and propagated (default true).
    pub fn request_ids(mut self, enabled: bool) -> Self {
        self.request_ids = enabled;
        self
    }

    /// Whether an error response without a body (axum's 404 for an unknown route, its 405, a
    /// handler's bare `StatusCode`) gets a problem+json body titled by its status, its other
    /// headers kept (default true). Responses with a body or a content type are never touched.
    pub fn problem_bodies(mut self, enabled: bool) -> Self {
        self.problem_bodies = enabled;
        self
    }

    /// Records requests into `logger` by the default policy (authentication and authorization
    /// outcomes, data changes, security refusals; plain reads are not recorded). For another
    /// policy, build the layer yourself and use [`Stack::audit_layer`].
    #[cfg(feature = "audit")]
    pub fn audit(self, logger: streamgate_audit::AuditLogger) -> Self {
        let layer = streamgate_audit::AuditLayer::new(logger.clone());
        self.audit_layer(layer, logger)
    }

    /// Records requests with `layer`, whose logger is `logger` (kept for
    /// [`Stack::audit_logger`]).
    #[cfg(feature = "audit")]
    pub fn audit_layer(
        mut self,
        layer: streamgate_audit::AuditLayer,
        logger: streamgate_audit::AuditLogger,
    ) -> Self {
        self.audit = Some((layer, logger));
        self
    }

    /// Call when the server has stopped (after axum's graceful shutdown): tells the alert
    /// handlers `ServiceStopped` (the seed's info alert), then flushes every queued audit event
    /// and closes the audit sinks ([`AuditLogger::shutdown`](streamgate_audit::AuditLogger::shutdown),
    /// which waits for a failing sink: bound it with `tokio::time::timeout` if need be). Later
    /// calls announce nothing and return once the audit trail is closed.
    pub async fn shutdown(&self) {
        #[cfg(feature = "alerts")]
        if let Some(alerts) = &self.alerts
            && !self.stopped.swap(true, Ordering::AcqRel)
        {
            alerts
                .announce("ServiceStopped", format!("{} stopped", self.service_name))
                .await;
        }
        #[cfg(feature = "audit")]
        if let Some((_, logger)) = &self.audit {
            logger.shutdown().await;
        }
    }

    /// The audit logger, for the seed's queries and for `shutdown().await` (which flushes every
    /// queued event) when the server stops; [`Stack::shutdown`] does that.
    #[cfg(feature = "audit")]
    #[must_use]
    pub fn audit_logger(&self) -> Option<&streamgate_audit::AuditLogger> {
        self.audit.as_ref().map(|(_, logger)| logger)
    }

    /// Limits requests by client IP (or globally) before credentials are verified; replaces the
    /// seed's default (1000 requests burst, 100/s per client IP).
    #[cfg(feature = "ratelimit")]
    pub fn rate_limit(mut self, layer: streamgate_ratelimit::RateLimitLayer) -> Self {
        self.rate_limits[0] = Some(layer);
        self.default_rate_limit = false;
        self
    }

    /// A [`RateLimiter`](streamgate_ratelimit::RateLimiter) for service code (the seed's
    /// `Allow(identifier)`), deciding where the stack's rate limits decide: on the shared Redis
    /// store when `security.rate_limiting.redis` is set, so replicas share its quota; in the
    /// stack's in-memory store otherwise (its keys count toward `max_keys`), or in one of its own
    /// when the stack has no rate limit. Its decisions are counted at `/metrics`.
    ///
    /// # Errors
    /// When `name` is invalid or already names a policy or limiter on that store.
    #[cfg(feature = "ratelimit")]
    pub fn rate_limiter(
        &self,
        name: &str,
        quota: streamgate_ratelimit::Quota,
    ) -> Result<streamgate_ratelimit::RateLimiter, streamgate_ratelimit::RateLimitConfigError> {
        let builder =
            streamgate_ratelimit::RateLimiter::builder(name, quota).metrics(self.layer_metrics());
        match self.rate_limits.iter().flatten().next() {
            Some(layer) => builder.store(layer.store().clone()),
            None => builder,
        }
        .build()
    }

    /// Limits requests by user, inside the security layer where the user is known.
    #[cfg(feature = "ratelimit")]
    pub fn user_rate_limit(mut self, layer: streamgate_ratelimit::RateLimitLayer) -> Self {
        self.rate_limits[1] = Some(layer);
        self
    }

    /// Removes both rate limits.
    #[cfg(feature = "ratelimit")]
    pub fn no_rate_limits(mut self) -> Self {
        self.rate_limits = [None, None];
        self.default_rate_limit = false;
        self
    }

    /// Verifies credentials and puts a `SecurityContext` into every request (default: no
    /// security context layer). Build the layer with the same metrics handle as the stack's
    /// ([`Stack::layer_metrics`]) to see its decisions at `/metrics`.
    #[cfg(feature = "security")]
    pub fn security(mut self, layer: streamgate_security::SecurityContextLayer) -> Self {
        self.security = Some(layer);
        self
    }

    /// Caches the responses of the routes `layer` names, inside the security, user rate-limit
    /// and authorization layers (default: no cache). Build it with [`Stack::layer_metrics`] to
    /// see its metrics at `/metrics`.
    #[cfg(feature = "cache")]
    pub fn cache(mut self, layer: streamgate_cache::CacheLayer) -> Self {
        self.cache = Some(layer);
        self
    }

    /// Checks each route's policy (`RouteTable`) after the security context is known.
    #[cfg(feature = "security")]
    pub fn authorize(mut self, layer: streamgate_security::AuthorizeLayer) -> Self {
        self.authorize = Some(layer);
        self
    }

    /// Where the layers record their own metrics: the stack's recorder.
    ///
    /// The handle records into the recorder the stack has now: a layer built with it keeps
    /// recording there. Call [`Stack::metrics_recorder`] before building layers with this handle,
    /// or their metrics go to a recorder that `/metrics` does not render.
    #[must_use]
    pub fn layer_metrics(&self) -> streamgate_core::MetricsHandle {
        #[cfg(feature = "metrics")]
        let handle = streamgate_core::MetricsHandle::new(self.recorder.clone());
        #[cfg(not(feature = "metrics"))]
        let handle = streamgate_core::MetricsHandle::global();
        handle
    }

    /// Whether the validation settings layer runs (default true). Without it, `Valid<T>`
    /// extractors still validate, with the default depth limit and the global metrics recorder.
    #[cfg(feature = "validate")]
    pub fn validation(mut self, enabled: bool) -> Self {
        self.validation = enabled;
        self
    }

    /// Turns the metrics layer and `/metrics` on or off (default on).
    #[cfg(feature = "metrics")]
    pub fn metrics(mut self, enabled: bool) -> Self {
        self.metrics.enabled = enabled;
        self
    }

    /// Records into `recorder` instead of a recorder of the stack's own.
    ///
    /// The seed's default rate limit is rebuilt to record into `recorder` (its counts start
    /// afresh). Layers built earlier with [`Stack::layer_metrics`] keep recording into the
    /// previous recorder: call this first.
    #[cfg(feature = "metrics")]
    pub fn metrics_recorder(mut self, recorder: MetricsRecorder) -> Self {
        self.recorder = recorder;
        #[cfg(feature = "ratelimit")]
        if self.default_rate_limit {
            self = self.default_rate_limit();
        }
        #[cfg(feature = "alerts")]
        if self.default_alerts {
            self = self.default_alerts();
        }
        self
    }

    /// Evaluates `alerts` (built over [`Stack::recorder`]) and serves them at `/alerts`; replaces
    /// the seed's rules (error rate above 10% / 5%, p99 latency above 5 s / 2 s, logged).
    #[cfg(feature = "alerts")]
    pub fn alerts(mut self, alerts: streamgate_alerts::Alerts) -> Self {
        self.alerts = Some(alerts);
        self.default_alerts = false;
        self
    }

    /// Evaluates no alert rule and serves no `/alerts`.
    #[cfg(feature = "alerts")]
    pub fn no_alerts(mut self) -> Self {
        self.alerts = None;
        self.default_alerts = false;
        self
    }

    /// The alerts the stack evaluates: add rules and handlers, report values, resolve, list.
    #[cfg(feature = "alerts")]
    #[must_use]
    pub fn alerting(&self) -> Option<&streamgate_alerts::Alerts> {
        self.alerts.as_ref()
    }

    /// The stack's alert rules as a Prometheus rule file (see
    /// [`prometheus_rules`](streamgate_alerts::prometheus_rules)), over the metrics window, for
    /// Prometheus to evaluate across every replica's series. `None` when alerts are off.
    ///
    /// # Errors
    /// When a rule cannot be written in PromQL (a name Prometheus refuses).
    #[cfg(feature = "alerts")]
    pub fn prometheus_rules(
        &self,
    ) -> Option<Result<streamgate_alerts::PrometheusRules, streamgate_alerts::PrometheusRulesError>>
    {
        let alerts = self.alerts.as_ref()?;
        Some(streamgate_alerts::prometheus_rules(
            &self.service_name,
            &alerts.rules(),
            self.metrics.window,
        ))
    }

    /// Also records request and response body sizes.
    #[cfg(feature = "metrics")]
    pub fn record_body_sizes(mut self, enabled: bool) -> Self {
        self.metrics.record_body_sizes = enabled;
        self
    }

    /// The process recorder the stack records into (for `snapshot`, `error_rate`, the seed's API).
    #[cfg(feature = "metrics")]
    #[must_use]
    pub fn recorder(&self) -> &MetricsRecorder {
        &self.recorder
    }

    /// The service name.
    #[must_use]
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// Wraps every route of `router` (and its fallback) in the stack's layers and adds the admin
    /// routes beside them.
    ///
    /// The layers are composed into one tower stack and added with a single `Router::layer`
    /// call: axum boxes and clones the service of each layer it is given per request, so one
    /// composed layer costs that once instead of once per layer.
    ///
    /// The admin routes (`/health/live`, `/health/ready`, `/metrics` when metrics are on,
    /// `/alerts` when alerts are) are mounted on a router of their own that gets only the request
    /// id layer and problem bodies (a `POST /metrics` is a problem+json 405), then merged with
    /// the layered user routes; the user's fallback (or axum's 404) keeps every layer.
    ///
    /// Inside a tokio runtime, the first call also starts the recorder's upkeep task and the alert
    /// evaluator.
    ///
    /// # Panics
    /// When `router` already has a route at one of the admin paths.
    pub fn apply<S>(&self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let admin = Router::new()
            .route(LIVE_PATH, get(|| async { "ok" }))
            .route(READY_PATH, self.readiness().route());
        #[cfg(feature = "metrics")]
        let admin = if self.metrics.enabled {
            admin.route(METRICS_PATH, metrics_route(self.recorder.clone()))
        } else {
            admin
        };
        #[cfg(feature = "alerts")]
        let admin = match &self.alerts {
            Some(alerts) => {
                self.start_evaluator(alerts);
                admin.route(ALERTS_PATH, streamgate_alerts::alerts_route(alerts.clone()))
            }
            None => admin,
        };
        let admin = admin.layer(
            ServiceBuilder::new()
                .option_layer(self.request_ids.then(request_id_layer))
                .option_layer(self.problem_bodies.then_some(ProblemBodiesLayer)),
        );
        // `admin` has axum's default fallback, so `merge` keeps the fallback of `other`: the
        // user's, with every layer.
        admin.merge(self.layered(router))
    }

    /// The cache warmer `optimization.cache.warm` describes, over `app` (the router
    /// [`apply`](Self::apply) returned, with its state): `warm().await` fills the cache on
    /// demand. `None` without a cache or without paths to warm.
    ///
    /// Warming requests go through every layer, as a client's would, without credentials and
    /// without a client address: rate limits count them under the one key of unknown clients.
    #[cfg(feature = "cache")]
    pub fn cache_warmer(&self, app: Router) -> Option<streamgate_cache::CacheWarmer<Router>> {
        if self.cache.is_none() || self.cache_warm.paths.is_empty() {
            return None;
        }
        // The headers were checked when the cache layer was built from the configuration.
        let headers = self.cache_warm.header_values().unwrap_or_default();
        Some(
            streamgate_cache::CacheWarmer::with_metrics(
                app,
                self.cache_warm.paths.iter().cloned(),
                &self.layer_metrics(),
            )
            .headers(headers),
        )
    }

    /// Starts warming the cache (see [`cache_warmer`](Self::cache_warmer)): now, then every
    /// `optimization.cache.warm.interval` (hourly by default), until the task is aborted.
    /// Call it inside the runtime, after [`apply`](Self::apply).
    #[cfg(feature = "cache")]
    pub fn spawn_cache_warming(&self, app: Router) -> Option<tokio::task::JoinHandle<()>> {
        let warmer = self.cache_warmer(app)?;
        #[cfg(feature = "alerts")]
        if let Some(alerts) = self.alerts.clone() {
            // The seed's info alert `Cache warmed`, after each round.
            return Some(warmer.spawn_then(self.cache_warm.interval, move |report| {
                let alerts = alerts.clone();
                async move {
                    let summary = format!(
                        "cache warmed: {} of {} paths stored",
                        report.stored(),
                        report.paths.len()
                    );
                    alerts.announce("CacheWarmed", summary).await;
                }
            }));
        }
        Some(warmer.spawn(self.cache_warm.interval))
    }

    /// Answers 503 problem+json to a request still running after `timeout` (its handler's
    /// future is dropped). It bounds the handler (inside the cache and the validation settings,
    /// innermost); every layer outside it, metrics and audit included, sees and records the 503.
    ///
    /// A zero `timeout` turns the timeout off (it would refuse every request).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Answers CORS preflights and adds the CORS headers to the layered routes' responses
    /// (refusals included, so browsers can read them). It sits outside every other layer but
    /// the security headers: a preflight carries no credentials and is answered before the
    /// request id, metrics, audit, rate limits and security context see it. Build the layer with [`CorsConfig::layer`](crate::CorsConfig::layer)
    /// to have a configuration browsers would refuse reported instead of panicking.
    pub fn cors(mut self, layer: tower_http::cors::CorsLayer) -> Self {
        self.cors = Some(layer);
        self
    }

    /// Adds `headers` to every response of the layered routes that does not set them itself,
    /// refusals (401, 403, 429) included.
    pub fn secure_headers(mut self, headers: crate::SecureHeaders) -> Self {
        self.secure_headers = Some(std::sync::Arc::new(headers));
        self
    }

    /// Adds a check to the readiness probe `/health/ready` (a database the service needs, say):
    /// the probe answers 503 while it fails or takes longer than
    /// [`CHECK_TIMEOUT`](crate::CHECK_TIMEOUT). A check of the same name is replaced.
    ///
    /// The stack checks its shared engines itself: each rate-limit store (a Redis store pings
    /// its server, `ratelimit_store`), the audit queue (`audit_queue`: not ready once nine
    /// tenths full, when the writer has fallen behind), the response cache's store
    /// (`cache_store`) and the PostgreSQL audit sink (`audit_sink`).
    pub fn readiness_check<F, Fut, E>(mut self, name: &str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        self.readiness.add(name, check);
        self
    }

    /// The probe's checks: the rate-limit stores' (one per store), then the others.
    fn readiness(&self) -> Readiness {
        #[cfg_attr(not(feature = "ratelimit"), allow(unused_mut))]
        let mut readiness = Readiness::default();
        #[cfg(feature = "ratelimit")]
        {
            let mut stores: Vec<&std::sync::Arc<dyn streamgate_ratelimit::RateLimitStore>> =
                Vec::new();
            for layer in self.rate_limits.iter().flatten() {
                if !stores
                    .iter()
                    .any(|known| std::sync::Arc::ptr_eq(known, layer.store()))
                {
                    stores.push(layer.store());
                }
            }
            for (index, store) in stores.into_iter().enumerate() {
                let name = match index {
                    0 => "ratelimit_store".to_owned(),
                    n => format!("ratelimit_store_{}", n + 1),
                };
                let store = store.clone();
                readiness.add(&name, move || {
                    let store = store.clone();
                    async move { store.health().await }
                });
            }
        }
        #[cfg(feature = "audit")]
        if let Some((_, logger)) = &self.audit {
            let logger = logger.clone();
            readiness.add("audit_queue", move || {
                let (queued, capacity) = (logger.queued(), logger.capacity());
                // Nine tenths full: the writer is behind (a sink failing), and soon requests
                // wait for room (block) or events are dropped (drop_oldest).
                let ready = queued.saturating_mul(10) < capacity.saturating_mul(9);
                std::future::ready(if ready {
                    Ok(())
                } else {
                    Err(format!(
                        "{queued} of {capacity} audit events wait for the writer"
                    ))
                })
            });
        }
        #[cfg(feature = "cache")]
        if let Some(cache) = &self.cache {
            let cache = cache.clone();
            readiness.add("cache_store", move || {
                let cache = cache.clone();
                async move { cache.health().await }
            });
        }
        readiness.extend(&self.readiness);
        readiness
    }

    /// The layers in one composed `Router::layer`, with the opt-in ones (timeout, CORS, security
    /// headers) added by layer calls of their own only when they are on: an `Either` for each in
    /// the composed stack made every request's nested future larger and cost about 600
    /// instructions per request with all three off.
    fn layered<S>(&self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let router = match self.request_timeout {
            Some(timeout) => router.layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(hardening::timed_out(timeout)))
                    .layer(TimeoutLayer::new(timeout)),
            ),
            None => router,
        };
        let router = router.layer(
            ServiceBuilder::new()
                .option_layer(self.request_ids.then(request_id_layer))
                .layer(self.metrics_layer())
                .layer(ClientIpLayer::new(self.trusted_proxies.clone()))
                .layer(self.audit_request_layer())
                .layer(self.rate_limit_layer(0))
                .layer(self.security_context_layer())
                .layer(self.rate_limit_layer(1))
                .layer(self.authorize_layer())
                .layer(self.cache_layer())
                .layer(self.validation_layer())
                .option_layer(self.problem_bodies.then_some(ProblemBodiesLayer)),
        );
        let router = match &self.cors {
            Some(cors) => router.layer(cors.clone()),
            None => router,
        };
        match &self.secure_headers {
            Some(headers) => router.layer(MapResponseLayer::new(hardening::add_absent(headers))),
            None => router,
        }
    }

    /// The security context, then the per-route policy table.
    #[cfg(feature = "audit")]
    fn audit_request_layer(&self) -> tower::util::Either<streamgate_audit::AuditLayer, Identity> {
        tower::util::option_layer(self.audit.as_ref().map(|(layer, _)| layer.clone()))
    }

    #[cfg(not(feature = "audit"))]
    fn audit_request_layer(&self) -> Identity {
        Identity::new()
    }

    #[cfg(feature = "ratelimit")]
    fn rate_limit_layer(
        &self,
        slot: usize,
    ) -> tower::util::Either<streamgate_ratelimit::RateLimitLayer, Identity> {
        tower::util::option_layer(self.rate_limits[slot].clone())
    }

    #[cfg(not(feature = "ratelimit"))]
    fn rate_limit_layer(&self, _slot: usize) -> Identity {
        Identity::new()
    }

    #[cfg(feature = "security")]
    fn security_context_layer(
        &self,
    ) -> tower::util::Either<streamgate_security::SecurityContextLayer, Identity> {
        tower::util::option_layer(self.security.clone())
    }

    #[cfg(not(feature = "security"))]
    fn security_context_layer(&self) -> Identity {
        Identity::new()
    }

    #[cfg(feature = "security")]
    fn authorize_layer(
        &self,
    ) -> tower::util::Either<streamgate_security::AuthorizeLayer, Identity> {
        tower::util::option_layer(self.authorize.clone())
    }

    #[cfg(not(feature = "security"))]
    fn authorize_layer(&self) -> Identity {
        Identity::new()
    }

    /// The response cache, inside the authorization layers: a caller is authorized before a
    /// cached answer is returned.
    #[cfg(feature = "cache")]
    fn cache_layer(&self) -> tower::util::Either<streamgate_cache::CacheLayer, Identity> {
        tower::util::option_layer(self.cache.clone())
    }

    #[cfg(not(feature = "cache"))]
    fn cache_layer(&self) -> Identity {
        Identity::new()
    }

    /// Hands the `Valid<T>` extractors their settings and metrics handle.
    #[cfg(feature = "validate")]
    fn validation_layer(
        &self,
    ) -> tower::util::Either<streamgate_validate::ValidationLayer, Identity> {
        tower::util::option_layer(
            self.validation
                .then(|| streamgate_validate::ValidationLayer::new().metrics(self.layer_metrics())),
        )
    }

    #[cfg(not(feature = "validate"))]
    fn validation_layer(&self) -> Identity {
        Identity::new()
    }

    #[cfg(feature = "metrics")]
    fn metrics_layer(&self) -> MetricsLayer {
        self.start_upkeep();
        let mut layer = MetricsLayer::new(self.recorder.clone())
            .service_name(self.service_name.clone())
            .enabled(self.metrics.enabled)
            .exclude_route(METRICS_PATH)
            .exclude_route(LIVE_PATH)
            .exclude_route(READY_PATH)
            .record_body_sizes(self.metrics.record_body_sizes);
        for route in &self.metrics.exclude_routes {
            layer = layer.exclude_route(route.clone());
        }
        layer
    }

    #[cfg(not(feature = "metrics"))]
    fn metrics_layer(&self) -> Identity {
        Identity::new()
    }

    /// Starts the alert evaluator once, inside a tokio runtime.
    #[cfg(feature = "alerts")]
    fn start_evaluator(&self, alerts: &streamgate_alerts::Alerts) {
        if tokio::runtime::Handle::try_current().is_ok()
            && !self.evaluator_started.swap(true, Ordering::AcqRel)
        {
            // The seed's info alert `Service started`, then the evaluator.
            let announcing = alerts.clone();
            let summary = format!("{} started", self.service_name);
            tokio::spawn(async move {
                announcing.announce("ServiceStarted", summary).await;
            });
            drop(alerts.spawn());
        }
    }

    #[cfg(feature = "metrics")]
    fn start_upkeep(&self) {
        if tokio::runtime::Handle::try_current().is_ok()
            && !self.upkeep_started.swap(true, Ordering::AcqRel)
        {
            let period = self
                .metrics
                .collection_interval
                .max(Duration::from_millis(100));
            drop(self.recorder.spawn_upkeep(period));
        }
    }
}

/// The seed's `Cache eviction rate high`: the in-memory store evicted more entries within the
/// metrics window than it can hold, so its working set does not fit.
#[cfg(all(feature = "alerts", feature = "cache"))]
fn cache_eviction_rule(max_size: u64) -> streamgate_alerts::AlertRule {
    use streamgate_alerts::{AlertRule, Severity, Signal};
    AlertRule::new(
        "CacheEvictionRateHigh",
        Signal::CounterIncrease {
            name: "streamgate_cache_evictions_total".to_owned(),
            labels: std::collections::BTreeMap::new(),
        },
    )
    .above(max_size as f64)
    .for_duration(Duration::from_secs(60))
    .severity(Severity::Warning)
    .summary(format!(
        "the response cache evicted more than its {max_size} entries within the window: its working set does not fit"
    ))
}

/// Starts the audit logger `config` describes; `fail` places an error at its section.
#[cfg(feature = "audit")]
fn audit_logger(
    config: &crate::AuditLoggingConfig,
    metrics: streamgate_core::MetricsHandle,
    readiness: &mut Readiness,
    fail: impl Fn(String) -> ConfigError,
) -> Result<streamgate_audit::AuditLogger, ConfigError> {
    use streamgate_audit::{AuditLogger, FileSink, FileSinkConfig, TracingSink, WhenFull};

    if tokio::runtime::Handle::try_current().is_err() {
        return Err(fail(
            "the audit writer runs on tokio: build the stack inside the runtime".to_owned(),
        ));
    }
    let builder = AuditLogger::builder()
        .capacity(config.queue_capacity.max(1))
        .when_full(match config.when_full {
            crate::AuditWhenFull::Block => WhenFull::Block,
            crate::AuditWhenFull::DropOldest => WhenFull::DropOldest,
        })
        .metrics(metrics);
    let builder = match config.sink {
        crate::AuditSinkKind::Tracing => builder.sink(TracingSink::new()),
        crate::AuditSinkKind::File => {
            let key = audit_signing_key(config).map_err(&fail)?;
            let sink_config =
                FileSinkConfig::new(config.dir.clone(), key).retention(Some(config.retention));
            let sink = FileSink::open(sink_config)
                .map_err(|e| fail(format!("cannot open {}: {e}", config.dir.display())))?;
            builder.sink(sink)
        }
        crate::AuditSinkKind::Postgres => {
            builder.sink(postgres_audit_sink(config, readiness).map_err(&fail)?)
        }
    };
    Ok(builder.start())
}

/// The signing key of the file and PostgreSQL sinks (hex): from `key_file` when set, else from
/// the variable `key_env`.
#[cfg(feature = "audit")]
fn audit_signing_key(
    config: &crate::AuditLoggingConfig,
) -> Result<streamgate_audit::SigningKey, String> {
    let (hex_key, origin) = match &config.key_file {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read key_file {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            std::env::var(&config.key_env).map_err(|_| {
                format!(
                    "the {} sink signs with a key from the environment variable {}, which is not set",
                    sink_name(config.sink),
                    config.key_env
                )
            })?,
            config.key_env.clone(),
        ),
    };
    let bytes = hex::decode(hex_key.trim()).map_err(|e| format!("{origin} is not hex: {e}"))?;
    streamgate_audit::SigningKey::new(&bytes).map_err(|e| format!("{origin}: {e}"))
}

#[cfg(feature = "audit")]
fn sink_name(sink: crate::AuditSinkKind) -> &'static str {
    match sink {
        crate::AuditSinkKind::Tracing => "tracing",
        crate::AuditSinkKind::File => "file",
        crate::AuditSinkKind::Postgres => "postgres",
    }
}

/// The PostgreSQL sink `postgres` describes, under this replica's instance id; its database is
/// checked by the readiness probe (`audit_sink`).
#[cfg(feature = "postgres")]
fn postgres_audit_sink(
    config: &crate::AuditLoggingConfig,
    readiness: &mut Readiness,
) -> Result<streamgate_audit::postgres::PostgresSink, String> {
    use streamgate_audit::postgres::{PostgresSink, PostgresSinkConfig};

    let database = config
        .postgres
        .as_ref()
        .ok_or("the postgres sink needs `postgres: {url: ...}`")?;
    let instance = match &database.instance {
        Some(instance) => instance.clone(),
        None => host_name().ok_or(
            "postgres.instance is not set and neither HOSTNAME nor the host's name gives one",
        )?,
    };
    let key = audit_signing_key(config)?;
    let sink_config = PostgresSinkConfig::new(database.url.as_str(), instance, key)
        .table(database.table.as_str())
        .retention(Some(config.retention));
    let sink = PostgresSink::new(sink_config).map_err(|e| format!("postgres: {e}"))?;
    let health = sink.health();
    readiness.add("audit_sink", move || {
        let health = health.clone();
        async move { health.check().await }
    });
    Ok(sink)
}

#[cfg(all(feature = "audit", not(feature = "postgres")))]
fn postgres_audit_sink(
    _config: &crate::AuditLoggingConfig,
    _readiness: &mut Readiness,
) -> Result<streamgate_audit::TracingSink, String> {
    Err("this build has no PostgreSQL sink (turn on StreamGate's `postgres` feature)".to_owned())
}

/// The `HOSTNAME` variable (a pod's name), else the kernel's host name.
#[cfg(feature = "postgres")]
fn host_name() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
}
