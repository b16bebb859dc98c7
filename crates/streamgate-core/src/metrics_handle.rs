//! Where a layer sends its own metrics: a given recorder, or the process's global one.
//!
//! Layers register their handles once, when they are built, and record through the held handles
//! on the request path.
//!
//! ```
//! use streamgate_core::MetricsHandle;
//!
//! // Without a recorder the layer records into whatever global recorder is installed.
//! let handle = MetricsHandle::global();
//! handle.describe_counter("streamgate_example_events_total", "Events seen by the example.");
//! let events = handle.counter("streamgate_example_events_total", &[("outcome", "ok")]);
//! events.increment(1);
//! ```

use std::{fmt, sync::Arc};

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder};

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// A recorder handle for a layer's own metrics. Cheap to clone.
///
/// Give every layer of one test the same recorder (for example
/// `streamgate_metrics::MetricsRecorder` or `metrics_util`'s `DebuggingRecorder`) and tests share
/// no process-global state.
#[derive(Clone, Default)]
pub struct MetricsHandle {
    recorder: Option<Arc<dyn Recorder + Send + Sync>>,
}

impl fmt::Debug for MetricsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsHandle")
            .field("global", &self.recorder.is_none())
            .finish()
    }
}

impl MetricsHandle {
    /// Records into the global recorder installed at the time handles are registered.
    #[must_use]
    pub fn global() -> Self {
        Self::default()
    }

    /// Records into `recorder`.
    #[must_use]
    pub fn new(recorder: impl Recorder + Send + Sync + 'static) -> Self {
        Self {
            recorder: Some(Arc::new(recorder)),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&dyn Recorder) -> T) -> T {
        match &self.recorder {
            Some(recorder) => f(recorder.as_ref()),
            None => metrics::with_recorder(f),
        }
    }

    fn key(name: &'static str, labels: &[(&'static str, &str)]) -> Key {
        let labels: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label::new(*k, (*v).to_owned()))
            .collect();
        Key::from_parts(name, labels)
    }

    /// Registers the counter `name` with `labels`.
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        let key = Self::key(name, labels);
        self.with(|r| r.register_counter(&key, &METADATA))
    }

    /// Registers the gauge `name` with `labels`.
    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        let key = Self::key(name, labels);
        self.with(|r| r.register_gauge(&key, &METADATA))
    }

    /// Registers the histogram `name` with `labels`.
    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, &str)]) -> Histogram {
        let key = Self::key(name, labels);
        self.with(|r| r.register_histogram(&key, &METADATA))
    }

    /// Sets the HELP text of a counter.
    pub fn describe_counter(&self, name: &'static str, help: &'static str) {
        self.with(|r| r.describe_counter(name.into(), None, help.into()));
    }

    /// Sets the HELP text of a gauge.
    pub fn describe_gauge(&self, name: &'static str, help: &'static str) {
        self.with(|r| r.describe_gauge(name.into(), None, help.into()));
    }

    /// Sets the HELP text of a histogram.
    pub fn describe_histogram(&self, name: &'static str, help: &'static str) {
        self.with(|r| r.describe_histogram(name.into(), None, help.into()));
    }
}
