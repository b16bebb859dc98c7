//! The process recorder: one `metrics` recorder that feeds both the Prometheus exposition and
//! the windowed store read in-process.

use std::{fmt, sync::Arc, time::Duration};

use metrics::{
    Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SetRecorderError, SharedString,
    Unit,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use crate::{
    buckets::{BucketTable, valid_bounds},
    fanout::FanoutPair,
    window::WindowedStore,
};

/// Which response statuses count as errors for [`MetricsRecorder::error_rate`].
type ErrorStatuses = dyn Fn(u16) -> bool + Send + Sync;

/// The process-wide metrics recorder.
///
/// A fanout of metrics-exporter-prometheus's recorder (rendered at `/metrics`) and
/// a windowed store of ours (read by [`snapshot`](Self::snapshot),
/// [`error_rate`](Self::error_rate) and the alert evaluator). Cheap to clone: clones share all
/// state. Give each test its own recorder and they share nothing; call
/// [`install_global`](Self::install_global) once to also receive the `metrics` macros.
///
/// ```
/// use streamgate_metrics::MetricsRecorder;
///
/// let recorder = MetricsRecorder::new();
/// recorder.increment_counter("uploads_total", &[("service", "upload")]);
/// assert!(recorder.render().contains("uploads_total{service=\"upload\"} 1"));
/// ```
#[derive(Clone)]
pub struct MetricsRecorder {
    pub(crate) inner: Arc<RecorderInner>,
}

pub(crate) struct RecorderInner {
    fanout: FanoutPair<PrometheusRecorder, WindowedStore>,
    prometheus: PrometheusHandle,
    pub(crate) window: WindowedStore,
    pub(crate) error_statuses: Box<ErrorStatuses>,
    process: metrics_process::Collector,
}

impl fmt::Debug for MetricsRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsRecorder").finish_non_exhaustive()
    }
}

impl Default for MetricsRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsRecorder {
    /// A recorder with the default window (five minutes), buckets and error statuses (5xx).
    #[must_use]
    pub fn new() -> Self {
        Self::builder()
            .build()
            .expect("the default metrics configuration is valid")
    }

    /// Configures a recorder.
    pub fn builder() -> MetricsRecorderBuilder {
        MetricsRecorderBuilder::default()
    }

    /// Installs this recorder as the process's global `metrics` recorder, so the `metrics`
    /// macros (`counter!`, `histogram!`, ...) in any crate record into it.
    ///
    /// # Errors
    /// When a global recorder is already installed.
    pub fn install_global(&self) -> Result<(), SetRecorderError<Self>> {
        metrics::set_global_recorder(self.clone())
    }

    /// The Prometheus text exposition of every metric, process metrics refreshed first.
    #[must_use]
    pub fn render(&self) -> String {
        metrics::with_local_recorder(self, || self.inner.process.collect());
        self.inner.prometheus.render()
    }

    /// Drains histogram samples into their buckets; call it every few seconds (the stack's
    /// [`spawn_upkeep`](Self::spawn_upkeep) does) so memory stays flat between scrapes.
    pub fn run_upkeep(&self) {
        self.inner.prometheus.run_upkeep();
    }

    /// Runs [`run_upkeep`](Self::run_upkeep) every `period` on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn_upkeep(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let recorder = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                recorder.run_upkeep();
            }
        })
    }
}

impl MetricsRecorder {
    /// A histogram registered in both halves separately, for the metrics layer: it records into
    /// the windowed half with the time it has already read.
    pub(crate) fn split_histogram(
        &self,
        key: &Key,
        metadata: &Metadata<'_>,
    ) -> (Histogram, Arc<crate::window::WindowedHistogram>) {
        (
            self.inner.fanout.first.register_histogram(key, metadata),
            self.inner.window.histogram(key),
        )
    }
}

impl Recorder for MetricsRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.fanout.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.fanout.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.fanout.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.inner.fanout.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.inner.fanout.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.inner.fanout.register_histogram(key, metadata)
    }
}

/// Why a recorder configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricsConfigError {
    /// Bucket bounds must be finite and strictly increasing, at least one.
    InvalidBuckets(String),
    /// The window must be longer than zero and have at least one slot.
    InvalidWindow,
}

impl fmt::Display for MetricsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidBuckets(which) => write!(
                f,
                "histogram buckets for {which} must be finite and strictly increasing"
            ),
            Self::InvalidWindow => f.write_str("the metrics window must be longer than zero"),
        }
    }
}

impl std::error::Error for MetricsConfigError {}

/// Configures a [`MetricsRecorder`].
#[must_use]
pub struct MetricsRecorderBuilder {
    window: Duration,
    slots: u32,
    buckets: BucketTable,
    error_statuses: Box<ErrorStatuses>,
}

impl fmt::Debug for MetricsRecorderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsRecorderBuilder")
            .field("window", &self.window)
            .field("slots", &self.slots)
            .field("buckets", &self.buckets)
            .finish_non_exhaustive()
    }
}

impl Default for MetricsRecorderBuilder {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(300),
            slots: 30,
            buckets: BucketTable::default(),
            error_statuses: Box::new(|status| status >= 500),
        }
    }
}

impl MetricsRecorderBuilder {
    /// The sliding window of in-process reads (default five minutes), kept in `slots` slots
    /// (default 30): a reading covers between `window - window / slots` and `window` of history.
    pub fn window(mut self, window: Duration, slots: u32) -> Self {
        self.window = window;
        self.slots = slots;
        self
    }

    /// Which statuses are errors for [`MetricsRecorder::error_rate`] (default: 500-599).
    pub fn error_statuses(
        mut self,
        is_error: impl Fn(u16) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.error_statuses = Box::new(is_error);
        self
    }

    /// The buckets of every histogram not otherwise configured (default: the HTTP duration
    /// buckets, in seconds).
    pub fn default_buckets(mut self, bounds: &[f64]) -> Self {
        self.buckets.set_default(bounds);
        self
    }

    /// The buckets of one histogram, by its full name.
    pub fn buckets_for(mut self, name: &str, bounds: &[f64]) -> Self {
        self.buckets.set_exact(name, bounds);
        self
    }

    /// The buckets of histograms whose names end with `suffix` (default: `_bytes` gets size
    /// buckets).
    pub fn buckets_for_suffix(mut self, suffix: &str, bounds: &[f64]) -> Self {
        self.buckets.set_suffix(suffix, bounds);
        self
    }

    /// Builds the recorder.
    ///
    /// # Errors
    /// [`MetricsConfigError`] for unusable buckets or a zero window.
    pub fn build(self) -> Result<MetricsRecorder, MetricsConfigError> {
        if self.window.is_zero() || self.slots == 0 {
            return Err(MetricsConfigError::InvalidWindow);
        }
        let invalid = |which: &str| MetricsConfigError::InvalidBuckets(which.to_owned());
        if !valid_bounds(self.buckets.default_bounds()) {
            return Err(invalid("the default"));
        }
        let mut prometheus = PrometheusBuilder::new()
            .set_buckets(self.buckets.default_bounds())
            .map_err(|_| invalid("the default"))?;
        for (name, bounds) in self.buckets.exact_entries() {
            if !valid_bounds(bounds) {
                return Err(invalid(name));
            }
            prometheus = prometheus
                .set_buckets_for_metric(Matcher::Full(name.to_owned()), bounds)
                .map_err(|_| invalid(name))?;
        }
        for (suffix, bounds) in self.buckets.suffix_entries() {
            if !valid_bounds(bounds) {
                return Err(invalid(suffix));
            }
            prometheus = prometheus
                .set_buckets_for_metric(Matcher::Suffix(suffix.to_owned()), bounds)
                .map_err(|_| invalid(suffix))?;
        }
        let prometheus = prometheus.build_recorder();
        let handle = prometheus.handle();
        let window = WindowedStore::new(self.window, self.slots, self.buckets);
        let fanout = FanoutPair {
            first: prometheus,
            second: window.clone(),
        };
        let recorder = MetricsRecorder {
            inner: Arc::new(RecorderInner {
                fanout,
                prometheus: handle,
                window,
                error_statuses: self.error_statuses,
                process: metrics_process::Collector::default(),
            }),
        };
        metrics::with_local_recorder(&recorder, || recorder.inner.process.describe());
        Ok(recorder)
    }
}
