//! Histogram bucket bounds, shared by the Prometheus exposition and the windowed store so that
//! quantiles read in-process agree with what Prometheus computes.

use std::sync::Arc;

/// The duration buckets, in seconds, of OpenTelemetry's HTTP server semantic conventions.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Size buckets, in bytes, for metrics whose names end in `_bytes`.
pub const SIZE_BUCKETS: [f64; 8] = [
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
];

/// Which bounds a histogram gets: an exact name, then a name suffix, then the default.
#[derive(Debug, Clone)]
pub(crate) struct BucketTable {
    default: Arc<[f64]>,
    exact: Vec<(String, Arc<[f64]>)>,
    suffix: Vec<(String, Arc<[f64]>)>,
}

impl Default for BucketTable {
    fn default() -> Self {
        Self {
            default: DURATION_BUCKETS.into(),
            exact: Vec::new(),
            suffix: vec![("_bytes".to_owned(), SIZE_BUCKETS.into())],
        }
    }
}

impl BucketTable {
    pub(crate) fn set_default(&mut self, bounds: &[f64]) {
        self.default = bounds.into();
    }

    pub(crate) fn set_exact(&mut self, name: &str, bounds: &[f64]) {
        self.exact.retain(|(n, _)| n != name);
        self.exact.push((name.to_owned(), bounds.into()));
    }

    pub(crate) fn set_suffix(&mut self, suffix: &str, bounds: &[f64]) {
        self.suffix.retain(|(s, _)| s != suffix);
        self.suffix.push((suffix.to_owned(), bounds.into()));
    }

    pub(crate) fn for_name(&self, name: &str) -> Arc<[f64]> {
        if let Some((_, bounds)) = self.exact.iter().find(|(n, _)| n == name) {
            return bounds.clone();
        }
        if let Some((_, bounds)) = self.suffix.iter().find(|(s, _)| name.ends_with(s.as_str())) {
            return bounds.clone();
        }
        self.default.clone()
    }

    pub(crate) fn default_bounds(&self) -> &[f64] {
        &self.default
    }

    pub(crate) fn exact_entries(&self) -> impl Iterator<Item = (&str, &[f64])> {
        self.exact.iter().map(|(n, b)| (n.as_str(), &b[..]))
    }

    pub(crate) fn suffix_entries(&self) -> impl Iterator<Item = (&str, &[f64])> {
        self.suffix.iter().map(|(s, b)| (s.as_str(), &b[..]))
    }
}

/// Whether bounds are usable: at least one, finite, strictly increasing.
pub(crate) fn valid_bounds(bounds: &[f64]) -> bool {
    !bounds.is_empty()
        && bounds.iter().all(|b| b.is_finite())
        && bounds.windows(2).all(|pair| pair[0] < pair[1])
}
