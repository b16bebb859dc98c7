//! Sends every registration to both halves of the process recorder.
//!
//! `metrics_util::layers::Fanout` keeps `Box<dyn Recorder + Sync>`, which is not `Send`, so a
//! recorder built on it cannot be cloned into tasks and handlers. This pair does the same for
//! exactly two recorders, with one indirection less per record.

use std::sync::Arc;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// Two recorders that receive everything.
#[derive(Debug)]
pub(crate) struct FanoutPair<A, B> {
    pub(crate) first: A,
    pub(crate) second: B,
}

#[derive(Debug)]
struct Pair<T>(T, T);

impl CounterFn for Pair<Counter> {
    fn increment(&self, value: u64) {
        self.0.increment(value);
        self.1.increment(value);
    }

    fn absolute(&self, value: u64) {
        self.0.absolute(value);
        self.1.absolute(value);
    }
}

impl GaugeFn for Pair<Gauge> {
    fn increment(&self, value: f64) {
        self.0.increment(value);
        self.1.increment(value);
    }

    fn decrement(&self, value: f64) {
        self.0.decrement(value);
        self.1.decrement(value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
        self.1.set(value);
    }
}

impl HistogramFn for Pair<Histogram> {
    fn record(&self, value: f64) {
        self.0.record(value);
        self.1.record(value);
    }

    fn record_many(&self, value: f64, count: usize) {
        self.0.record_many(value, count);
        self.1.record_many(value, count);
    }
}

impl<A: Recorder, B: Recorder> Recorder for FanoutPair<A, B> {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.first
            .describe_counter(key.clone(), unit, description.clone());
        self.second.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.first
            .describe_gauge(key.clone(), unit, description.clone());
        self.second.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.first
            .describe_histogram(key.clone(), unit, description.clone());
        self.second.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(Pair(
            self.first.register_counter(key, metadata),
            self.second.register_counter(key, metadata),
        )))
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(Pair(
            self.first.register_gauge(key, metadata),
            self.second.register_gauge(key, metadata),
        )))
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Pair(
            self.first.register_histogram(key, metadata),
            self.second.register_histogram(key, metadata),
        )))
    }
}
