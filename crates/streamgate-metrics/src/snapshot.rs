//! A point-in-time copy of every series in the windowed store.

use std::collections::BTreeMap;

use metrics::Key;
use serde::Serialize;

use crate::{MetricsRecorder, window::BucketCounts};

/// Every counter, gauge and histogram at one moment, sorted by name and labels.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Counters.
    pub counters: Vec<CounterSnapshot>,
    /// Gauges.
    pub gauges: Vec<GaugeSnapshot>,
    /// Histograms.
    pub histograms: Vec<HistogramSnapshot>,
}

/// Labels of one series.
pub type Labels = BTreeMap<String, String>;

/// One counter series.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CounterSnapshot {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Total since start.
    pub value: u64,
    /// Increments during the window.
    pub window_value: u64,
}

/// One gauge series.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct GaugeSnapshot {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Current value.
    pub value: f64,
}

/// Quantiles estimated from bucket counts, as Prometheus's `histogram_quantile` does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Quantiles {
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
}

impl Quantiles {
    fn of(buckets: &BucketCounts) -> Self {
        Self {
            p50: buckets.quantile(0.5),
            p90: buckets.quantile(0.9),
            p95: buckets.quantile(0.95),
            p99: buckets.quantile(0.99),
        }
    }
}

/// One histogram series.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HistogramSnapshot {
    /// Metric name.
    pub name: String,
    /// Labels.
    pub labels: Labels,
    /// Observations since start.
    pub count: u64,
    /// Sum of observations since start.
    pub sum: f64,
    /// Quantiles since start.
    pub quantiles: Quantiles,
    /// Observations during the window.
    pub window_count: u64,
    /// Quantiles during the window.
    pub window_quantiles: Quantiles,
}

fn labels_of(key: &Key) -> Labels {
    key.labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect()
}

fn matches(name: &str, labels: &Labels, want_name: &str, want: &[(&str, &str)]) -> bool {
    name == want_name
        && want
            .iter()
            .all(|(k, v)| labels.get(*k).is_some_and(|value| value == v))
}

impl MetricsSnapshot {
    /// The first counter named `name` whose labels include `labels`.
    #[must_use]
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Option<&CounterSnapshot> {
        self.counters
            .iter()
            .find(|c| matches(&c.name, &c.labels, name, labels))
    }

    /// The first gauge named `name` whose labels include `labels`.
    #[must_use]
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<&GaugeSnapshot> {
        self.gauges
            .iter()
            .find(|g| matches(&g.name, &g.labels, name, labels))
    }

    /// The first histogram named `name` whose labels include `labels`.
    #[must_use]
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Option<&HistogramSnapshot> {
        self.histograms
            .iter()
            .find(|h| matches(&h.name, &h.labels, name, labels))
    }
}

impl MetricsRecorder {
    /// Every counter, gauge and histogram now, with totals, window values and quantiles.
    #[must_use]
    pub fn snapshot(&self) -> MetricsSnapshot {
        let window = &self.inner.window;
        let mut snapshot = MetricsSnapshot::default();
        window.visit_counters(|key, counter| {
            snapshot.counters.push(CounterSnapshot {
                name: key.name().to_owned(),
                labels: labels_of(key),
                value: counter.total(),
                window_value: counter.in_window(),
            });
        });
        window.visit_gauges(|key, value| {
            snapshot.gauges.push(GaugeSnapshot {
                name: key.name().to_owned(),
                labels: labels_of(key),
                value,
            });
        });
        window.visit_histograms(|key, histogram| {
            let totals = histogram.totals();
            let in_window = histogram.in_window();
            snapshot.histograms.push(HistogramSnapshot {
                name: key.name().to_owned(),
                labels: labels_of(key),
                count: totals.count(),
                sum: histogram.sum(),
                quantiles: Quantiles::of(&totals),
                window_count: in_window.count(),
                window_quantiles: Quantiles::of(&in_window),
            });
        });
        let order = |a: (&String, &Labels), b: (&String, &Labels)| a.cmp(&b);
        snapshot
            .counters
            .sort_by(|a, b| order((&a.name, &a.labels), (&b.name, &b.labels)));
        snapshot
            .gauges
            .sort_by(|a, b| order((&a.name, &a.labels), (&b.name, &b.labels)));
        snapshot
            .histograms
            .sort_by(|a, b| order((&a.name, &a.labels), (&b.name, &b.labels)));
        snapshot
    }
}
