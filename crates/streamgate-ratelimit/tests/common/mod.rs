//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use http::{Request, Response};
use http_body_util::BodyExt;
use streamgate_core::{MetricsHandle, PeerAddr};
use streamgate_metrics::MetricsRecorder;

/// A GET request from `ip`.
pub fn get_from(path: &str, ip: &str) -> Request<Body> {
    let mut request = Request::get(path).body(Body::empty()).unwrap();
    let ip: IpAddr = ip.parse().unwrap();
    request
        .extensions_mut()
        .insert(PeerAddr(SocketAddr::new(ip, 40_000)));
    request
}

/// The body of a response as JSON.
pub async fn json_body(response: Response<Body>) -> serde_json::Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// A header as a string.
pub fn header<'a>(response: &'a Response<Body>, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .unwrap()
}

/// A recorder handle for a layer and the recorder to read what it recorded.
pub fn recorder() -> (MetricsHandle, MetricsRecorder) {
    let recorder = MetricsRecorder::new();
    (MetricsHandle::new(recorder.clone()), recorder)
}

/// The value of the counter `name` with exactly `labels`, 0 when absent.
pub fn counter(recorder: &MetricsRecorder, name: &str, labels: &[(&str, &str)]) -> u64 {
    recorder
        .snapshot()
        .counter(name, labels)
        .map_or(0, |counter| counter.value)
}

/// The value of the gauge `name` (no labels).
pub fn gauge(recorder: &MetricsRecorder, name: &str) -> Option<f64> {
    recorder
        .snapshot()
        .gauge(name, &[])
        .map(|gauge| gauge.value)
}
