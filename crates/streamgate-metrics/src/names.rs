//! Metric and label names, following OpenTelemetry's HTTP server semantic conventions in
//! Prometheus form.

/// Histogram of request durations in seconds; its `_count` is the request count.
pub const HTTP_SERVER_REQUEST_DURATION: &str = "http_server_request_duration_seconds";
/// Gauge of requests being served.
pub const HTTP_SERVER_ACTIVE_REQUESTS: &str = "http_server_active_requests";
/// Histogram of request body sizes in bytes (opt-in).
pub const HTTP_SERVER_REQUEST_BODY_SIZE: &str = "http_server_request_body_size_bytes";
/// Histogram of response body sizes in bytes (opt-in).
pub const HTTP_SERVER_RESPONSE_BODY_SIZE: &str = "http_server_response_body_size_bytes";

/// Gauge at 1 for each service a metrics layer records in this process (label
/// [`SERVICE_LABEL`]): summed across a fleet's replicas, the replicas up.
pub const SERVICE_INFO: &str = "streamgate_service_info";

/// The request method label; methods outside RFC 9110 and PATCH are [`OTHER_METHOD`].
pub const METHOD_LABEL: &str = "http_request_method";
/// The route template label (`/items/{id}` or `unmatched`).
pub const ROUTE_LABEL: &str = "http_route";
/// The response status code label.
pub const STATUS_LABEL: &str = "http_response_status_code";
/// The service name label.
pub const SERVICE_LABEL: &str = "service_name";
/// The method label value of a method that is not a known one.
pub const OTHER_METHOD: &str = "_OTHER";
