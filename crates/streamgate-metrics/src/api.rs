//! The seed's programmatic API: counters, gauges, histograms and timers by name and tags, and
//! error and success rates per service over the sliding window.
//!
//! Each call looks its series up by name and tags. On a hot path, hold a handle instead
//! ([`MetricsRecorder::counter`] and friends): recording through a held handle is a few atomic
//! operations.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder};

use crate::{MetricsRecorder, names};

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

fn key(name: &str, tags: &[(&str, &str)]) -> Key {
    let labels: Vec<Label> = tags
        .iter()
        .map(|(k, v)| Label::new((*k).to_owned(), (*v).to_owned()))
        .collect();
    Key::from_parts(name.to_owned(), labels)
}

impl MetricsRecorder {
    /// A counter handle for `name` with `tags` as labels.
    pub fn counter(&self, name: &str, tags: &[(&str, &str)]) -> Counter {
        self.register_counter(&key(name, tags), &METADATA)
    }

    /// A gauge handle for `name` with `tags` as labels.
    pub fn gauge(&self, name: &str, tags: &[(&str, &str)]) -> Gauge {
        self.register_gauge(&key(name, tags), &METADATA)
    }

    /// A histogram handle for `name` with `tags` as labels.
    pub fn histogram(&self, name: &str, tags: &[(&str, &str)]) -> Histogram {
        self.register_histogram(&key(name, tags), &METADATA)
    }

    /// Adds one to the counter `name` (end counter names in `_total`).
    pub fn increment_counter(&self, name: &str, tags: &[(&str, &str)]) {
        self.counter(name, tags).increment(1);
    }

    /// Sets the gauge `name` to `value`.
    pub fn set_gauge(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        self.gauge(name, tags).set(value);
    }

    /// Records `value` into the histogram `name`.
    pub fn record_histogram(&self, name: &str, value: f64, tags: &[(&str, &str)]) {
        self.histogram(name, tags).record(value);
    }

    /// Records `duration` in seconds into the histogram `name` (end it in `_seconds`).
    pub fn record_timer(&self, name: &str, duration: Duration, tags: &[(&str, &str)]) {
        self.histogram(name, tags).record(duration.as_secs_f64());
    }

    /// The share of `service`'s HTTP requests in the window whose status is an error (by default
    /// 5xx), or `None` when it served none in the window.
    #[must_use]
    pub fn error_rate(&self, service: &str) -> Option<f64> {
        let (errors, total) = self.request_outcomes(service);
        (total > 0).then(|| errors as f64 / total as f64)
    }

    /// The share of `service`'s HTTP requests in the window that were not errors, or `None` when
    /// it served none in the window.
    #[must_use]
    pub fn success_rate(&self, service: &str) -> Option<f64> {
        self.error_rate(service).map(|rate| 1.0 - rate)
    }

    /// (errors, total) of `service`'s requests in the window.
    fn request_outcomes(&self, service: &str) -> (u64, u64) {
        let (mut errors, mut total) = (0, 0);
        let is_error = &self.inner.error_statuses;
        self.inner.window.visit_histograms(|key, histogram| {
            if key.name() != names::HTTP_SERVER_REQUEST_DURATION {
                return;
            }
            let mut of_service = false;
            let mut status = None;
            for label in key.labels() {
                match label.key() {
                    names::SERVICE_LABEL => of_service = label.value() == service,
                    names::STATUS_LABEL => status = label.value().parse::<u16>().ok(),
                    _ => {}
                }
            }
            if !of_service {
                return;
            }
            let count = histogram.in_window().count();
            total += count;
            if status.is_some_and(is_error) {
                errors += count;
            }
        });
        (errors, total)
    }
}

/// Whether `key` is named `name` and carries every label of `want`.
fn key_matches(key: &Key, name: &str, want: &[(&str, &str)]) -> bool {
    key.name() == name
        && want.iter().all(|(k, v)| {
            key.labels()
                .any(|label| label.key() == *k && label.value() == *v)
        })
}

impl MetricsRecorder {
    /// The increments during the window of every counter named `name` whose labels include
    /// `labels`, added up; `None` when there is no such counter (as Prometheus's `increase` of
    /// a series that does not exist is empty, not 0).
    #[must_use]
    pub fn window_counter_sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<u64> {
        let mut sum = None;
        self.inner.window.visit_counters(|key, counter| {
            if key_matches(key, name, labels) {
                *sum.get_or_insert(0) += counter.in_window();
            }
        });
        sum
    }

    /// The current values of every gauge named `name` whose labels include `labels`, added up;
    /// `None` when there is no such gauge.
    #[must_use]
    pub fn gauge_sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut sum = None;
        self.inner.window.visit_gauges(|key, value| {
            if key_matches(key, name, labels) {
                *sum.get_or_insert(0.0) += value;
            }
        });
        sum
    }

    /// The `q` quantile (0 to 1) during the window of every histogram named `name` whose labels
    /// include `labels`, their buckets merged (as Prometheus's `histogram_quantile` over a `sum`),
    /// or `None` without observations in the window. Series whose bucket bounds differ from the
    /// first matching one's are left out.
    #[must_use]
    pub fn window_quantile(&self, name: &str, labels: &[(&str, &str)], q: f64) -> Option<f64> {
        let mut merged: Option<crate::window::BucketCounts> = None;
        self.inner.window.visit_histograms(|key, histogram| {
            if !key_matches(key, name, labels) {
                return;
            }
            let counts = histogram.in_window();
            match &mut merged {
                Some(total) if total.bounds == counts.bounds => {
                    for (sum, count) in total.counts.iter_mut().zip(&counts.counts) {
                        *sum += count;
                    }
                }
                Some(_) => {}
                None => merged = Some(counts),
            }
        });
        merged?.quantile(q)
    }
}
