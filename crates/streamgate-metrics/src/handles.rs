//! Metric handles cached per (method, route) and per status, so a request records through held
//! handles: one lock-free map read, no allocation, no registry lookup.

use std::{
    hash::Hash,
    sync::{Arc, OnceLock},
};

use arc_swap::ArcSwap;
use hashbrown::{Equivalent, HashMap};
use http::Method;
use metrics::{Gauge, Histogram, Key, Label, Level, Metadata, Recorder, SharedString};

use crate::{MetricsRecorder, names, window::WindowedHistogram};

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// The method labels, indexed by [`method_index`].
const METHODS: [&str; 10] = [
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    names::OTHER_METHOD,
];

/// The label index of a method; unknown methods share [`names::OTHER_METHOD`].
pub(crate) fn method_index(method: &Method) -> u8 {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::CONNECT => 5,
        Method::OPTIONS => 6,
        Method::TRACE => 7,
        Method::PATCH => 8,
        _ => 9,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RouteKey {
    method: u8,
    route: Box<str>,
}

#[derive(Hash)]
struct RouteKeyRef<'a> {
    method: u8,
    route: &'a str,
}

impl Equivalent<RouteKey> for RouteKeyRef<'_> {
    fn equivalent(&self, key: &RouteKey) -> bool {
        self.method == key.method && self.route == &*key.route
    }
}

type RouteMap = HashMap<RouteKey, Arc<RouteMetrics>, foldhash::fast::FixedState>;

/// What the layer records for one request once it has a status.
#[derive(Debug)]
pub(crate) struct StatusMetrics {
    status: u16,
    /// The duration histogram's two halves, recorded separately (see
    /// [`MetricsRecorder::split_histogram`]).
    pub(crate) duration: (Histogram, Arc<WindowedHistogram>),
    pub(crate) request_size: Option<Histogram>,
    pub(crate) response_size: Option<Histogram>,
}

/// The handles of one (method, route) pair.
#[derive(Debug)]
pub(crate) struct RouteMetrics {
    method: u8,
    pub(crate) excluded: bool,
    pub(crate) active: Gauge,
    recorder: MetricsRecorder,
    body_sizes: bool,
    /// Method, route template (also what `is` compares) and service name.
    labels: [Label; 3],
    /// The first status this route answered: most routes mostly answer one, found with one load.
    first_status: OnceLock<Arc<StatusMetrics>>,
    by_status: ArcSwap<Vec<Arc<StatusMetrics>>>,
}

/// What a [`MetricsLayer`](crate::MetricsLayer) is configured with.
#[derive(Debug, Clone)]
pub(crate) struct LayerConfig {
    pub(crate) recorder: MetricsRecorder,
    pub(crate) service: SharedString,
    pub(crate) excluded: Vec<String>,
    pub(crate) body_sizes: bool,
    pub(crate) enabled: bool,
}

/// The configuration and handle caches of one layer.
#[derive(Debug)]
pub(crate) struct HandleCache {
    config: LayerConfig,
    routes: ArcSwap<RouteMap>,
    /// Set once `streamgate_service_info` is at 1 for the service.
    announced: OnceLock<()>,
}

impl HandleCache {
    pub(crate) fn new(config: LayerConfig) -> Self {
        Self {
            config,
            routes: ArcSwap::from_pointee(RouteMap::default()),
            announced: OnceLock::new(),
        }
    }

    /// Sets `streamgate_service_info{service_name}` to 1, once (the layer is wrapping a service:
    /// the service is up). A disabled layer announces nothing.
    pub(crate) fn announce(&self) {
        if !self.config.enabled {
            return;
        }
        self.announced.get_or_init(|| {
            self.config
                .recorder
                .register_gauge(
                    &Key::from_parts(
                        names::SERVICE_INFO,
                        vec![Label::new(
                            names::SERVICE_LABEL,
                            self.config.service.clone(),
                        )],
                    ),
                    &METADATA,
                )
                .set(1.0);
        });
    }

    pub(crate) fn config(&self) -> &LayerConfig {
        &self.config
    }

    /// The handles of `(method, route)`, registered on first use.
    pub(crate) fn route(&self, method: u8, route: &str) -> Arc<RouteMetrics> {
        let lookup = RouteKeyRef { method, route };
        if let Some(found) = self.routes.load().get(&lookup) {
            return found.clone();
        }
        self.register_route(method, route)
    }

    #[cold]
    fn register_route(&self, method: u8, route: &str) -> Arc<RouteMetrics> {
        let config = &self.config;
        let labels = [
            Label::new(names::METHOD_LABEL, METHODS[usize::from(method)]),
            Label::new(names::ROUTE_LABEL, route.to_owned()),
            Label::new(names::SERVICE_LABEL, config.service.clone()),
        ];
        let excluded = !config.enabled || config.excluded.iter().any(|r| r == route);
        let active = if excluded {
            Gauge::noop()
        } else {
            config.recorder.register_gauge(
                &Key::from_parts(names::HTTP_SERVER_ACTIVE_REQUESTS, labels.to_vec()),
                &METADATA,
            )
        };
        let metrics = Arc::new(RouteMetrics {
            method,
            excluded,
            active,
            recorder: config.recorder.clone(),
            body_sizes: config.body_sizes,
            labels,
            first_status: OnceLock::new(),
            by_status: ArcSwap::from_pointee(Vec::new()),
        });
        let mut stored = metrics.clone();
        self.routes.rcu(|map| {
            let mut map = RouteMap::clone(map);
            stored = map
                .entry(RouteKey {
                    method,
                    route: route.into(),
                })
                .or_insert_with(|| metrics.clone())
                .clone();
            map
        });
        stored
    }
}

impl RouteMetrics {
    /// Whether these are the handles of `(method, route)`.
    pub(crate) fn is(&self, method: u8, route: &str) -> bool {
        self.method == method && self.labels[1].value() == route
    }

    /// The handles of `status` on `route`, registered on first use.
    pub(crate) fn status(&self, status: u16) -> Arc<StatusMetrics> {
        if let Some(first) = self.first_status.get()
            && first.status == status
        {
            return first.clone();
        }
        if let Some(found) = self.by_status.load().iter().find(|s| s.status == status) {
            return found.clone();
        }
        self.register_status(status)
    }

    #[cold]
    fn register_status(&self, status: u16) -> Arc<StatusMetrics> {
        let mut labels = self.labels.to_vec();
        labels.push(Label::new(names::STATUS_LABEL, status.to_string()));
        let histogram = |name: &'static str| {
            self.recorder
                .register_histogram(&Key::from_parts(name, labels.clone()), &METADATA)
        };
        let metrics = Arc::new(StatusMetrics {
            status,
            duration: self.recorder.split_histogram(
                &Key::from_parts(names::HTTP_SERVER_REQUEST_DURATION, labels.clone()),
                &METADATA,
            ),
            request_size: self
                .body_sizes
                .then(|| histogram(names::HTTP_SERVER_REQUEST_BODY_SIZE)),
            response_size: self
                .body_sizes
                .then(|| histogram(names::HTTP_SERVER_RESPONSE_BODY_SIZE)),
        });
        let _ = self.first_status.set(metrics.clone());
        self.by_status.rcu(|list| {
            let mut list = Vec::clone(list);
            if !list.iter().any(|s| s.status == status) {
                list.push(metrics.clone());
            }
            list
        });
        metrics
    }
}
