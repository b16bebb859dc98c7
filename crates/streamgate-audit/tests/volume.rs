//! Acceptance 3: 200,000 requests through the layer into the file sink, then a graceful
//! shutdown: exactly 200,000 event records, and the log verifies.

mod common;

use std::{convert::Infallible, time::Instant};

use axum::body::Body;
use http::{Request, Response};
use streamgate_audit::{
    AuditLayer, AuditLogger, AuditPolicy, FileSink, FileSinkConfig, Level, verify_path,
};
use tower::{Service, ServiceBuilder, ServiceExt};

const REQUESTS: usize = 200_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_thousand_events_all_written_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let (metrics, snapshot) = common::metrics();
    let sink = FileSink::open(
        FileSinkConfig::new(dir.path(), common::key()).max_file_bytes(16 * 1024 * 1024),
    )
    .unwrap();
    let logger = AuditLogger::builder()
        .sink(sink)
        .capacity(8192)
        .metrics(metrics)
        .start();
    let mut service = ServiceBuilder::new()
        .layer(
            AuditLayer::new(logger.clone()).policy(AuditPolicy::record_everything(Level::Metadata)),
        )
        .service_fn(|_request: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        });
    let started = Instant::now();
    for i in 0..REQUESTS {
        let request = Request::post(if i % 2 == 0 { "/items" } else { "/items/7" })
            .body(Body::empty())
            .unwrap();
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    logger.shutdown().await;
    let written = started.elapsed();

    let counters = common::Counters::read(&snapshot);
    assert_eq!(
        counters.get(streamgate_audit::EVENTS_TOTAL, &[("sink", "file")]),
        REQUESTS as u64
    );
    assert_eq!(counters.get(streamgate_audit::DROPPED_TOTAL, &[]), 0);
    // `verify` counts the event records (checkpoints and file starts apart) as it checks them.
    let report = verify_path(dir.path(), &common::key()).unwrap();
    assert_eq!(report.events, REQUESTS as u64);
    assert!(report.files >= 2, "rotated by size: {report}");
    eprintln!(
        "{REQUESTS} requests written in {written:?}; verified in {:?}: {report}",
        started.elapsed() - written
    );
}
