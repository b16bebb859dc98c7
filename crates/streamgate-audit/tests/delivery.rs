//! Acceptance 4 and delivery: bounded queue, block vs drop_oldest, retries with backoff,
//! flush on shutdown, metrics.

mod common;

use std::time::Duration;

use common::MemorySink;
use serde_json::json;
use streamgate_audit::{
    AuditEvent, AuditLogger, AuditSink, DROPPED_TOTAL, EVENTS_TOTAL, Outcome, QUEUED,
    SINK_ERRORS_TOTAL, SinkError, SinkFuture, WhenFull,
};
use tokio::time::Instant;

async fn log(logger: &AuditLogger, i: usize) {
    logger
        .log_event(
            "test",
            "user-1",
            "act",
            format!("r-{i}"),
            Outcome::Success,
            json!({"i": i}),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn drop_oldest_counts_exactly_what_it_dropped() {
    let (metrics, snapshot) = common::metrics();
    let (sink, gate) = MemorySink::stalled();
    let logger = AuditLogger::builder()
        .sink(sink.clone())
        .capacity(100)
        .when_full(WhenFull::DropOldest)
        .metrics(metrics)
        .start();
    log(&logger, 0).await;
    // Let the writer take the first event and stall in the sink.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    for i in 1..1000 {
        log(&logger, i).await;
    }
    assert_eq!(logger.queued(), 100);
    gate.add_permits(1_000_000);
    logger.shutdown().await;
    let written = sink.taken();
    let counters = common::Counters::read(&snapshot);
    let dropped = counters.get(DROPPED_TOTAL, &[]);
    assert_eq!(written.len(), 101);
    assert_eq!(dropped, 1000 - written.len() as u64);
    // What survived is the first (already taken) and the newest 100, in order.
    let resources: Vec<String> = written.iter().map(|e| e.resource.clone()).collect();
    assert_eq!(resources[0], "r-0");
    assert_eq!(resources[1], "r-900");
    assert_eq!(resources[100], "r-999");
    assert_eq!(counters.get(EVENTS_TOTAL, &[("sink", "memory")]), 101);
}

#[tokio::test]
async fn block_mode_waits_for_room_and_loses_nothing() {
    let (metrics, snapshot) = common::metrics();
    let (sink, gate) = MemorySink::stalled();
    let logger = AuditLogger::builder()
        .sink(sink.clone())
        .capacity(10)
        .when_full(WhenFull::Block)
        .metrics(metrics)
        .start();
    let producer = tokio::spawn({
        let logger = logger.clone();
        async move {
            for i in 0..1000 {
                log(&logger, i).await;
            }
        }
    });
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    assert!(
        !producer.is_finished(),
        "the producer must be held back by the full queue"
    );
    assert_eq!(logger.queued(), 10);
    gate.add_permits(1_000_000);
    producer.await.unwrap();
    logger.shutdown().await;
    let written = sink.taken();
    assert_eq!(written.len(), 1000);
    for (i, event) in written.iter().enumerate() {
        assert_eq!(event.resource, format!("r-{i}"));
    }
    let counters = common::Counters::read(&snapshot);
    assert_eq!(counters.get(DROPPED_TOTAL, &[]), 0);
    assert_eq!(counters.get(EVENTS_TOTAL, &[("sink", "memory")]), 1000);
}

#[tokio::test(start_paused = true)]
async fn a_failing_sink_is_retried_with_backoff_and_events_wait() {
    let (metrics, snapshot) = common::metrics();
    let sink = MemorySink::failing(3);
    let logger = AuditLogger::builder()
        .sink(sink.clone())
        .retry_backoff(Duration::from_millis(100), Duration::from_secs(1))
        .metrics(metrics)
        .start();
    for i in 0..5 {
        log(&logger, i).await;
    }
    logger.shutdown().await;
    let attempts = sink.attempts.lock().unwrap().clone();
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps,
        [
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400)
        ]
    );
    let written = sink.taken();
    assert_eq!(written.len(), 5, "each event written exactly once");
    let counters = common::Counters::read(&snapshot);
    assert_eq!(counters.get(SINK_ERRORS_TOTAL, &[("sink", "memory")]), 3);
    assert_eq!(counters.get(EVENTS_TOTAL, &[("sink", "memory")]), 5);
}

#[tokio::test(start_paused = true)]
async fn the_queued_gauge_shows_the_backlog_while_a_sink_fails() {
    let (metrics, snapshot) = common::metrics();
    let sink = MemorySink::failing(3);
    let logger = AuditLogger::builder()
        .sink(sink.clone())
        .retry_backoff(Duration::from_millis(100), Duration::from_secs(1))
        .metrics(metrics)
        .start();
    for i in 0..5 {
        log(&logger, i).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        common::gauge(&snapshot, QUEUED),
        Some(5.0),
        "taken, failing"
    );
    for i in 5..7 {
        log(&logger, i).await;
    }
    // The second attempt fails at 100 ms and sees the two new events waiting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(common::gauge(&snapshot, QUEUED), Some(7.0));
    logger.shutdown().await;
    assert_eq!(sink.taken().len(), 7);
    assert_eq!(common::gauge(&snapshot, QUEUED), Some(0.0), "all written");
}

#[tokio::test(start_paused = true)]
async fn backoff_is_capped() {
    let sink = MemorySink::failing(6);
    let logger = AuditLogger::builder()
        .sink(sink.clone())
        .retry_backoff(Duration::from_millis(100), Duration::from_millis(500))
        .start();
    log(&logger, 0).await;
    logger.shutdown().await;
    let attempts = sink.attempts.lock().unwrap().clone();
    let gaps: Vec<u128> = attempts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis())
        .collect();
    assert_eq!(gaps, [100, 200, 400, 500, 500, 500]);
}

#[tokio::test]
async fn shutdown_writes_everything_queued_and_refuses_later_events() {
    let (metrics, snapshot) = common::metrics();
    let sink = MemorySink::default();
    let logger = AuditLogger::builder()
        .sink(sink.clone())
        .metrics(metrics)
        .start();
    for i in 0..10_000 {
        log(&logger, i).await;
    }
    logger.shutdown().await;
    assert_eq!(sink.taken().len(), 10_000);
    let late = logger
        .log_event(
            "test",
            "user-1",
            "act",
            "late",
            Outcome::Success,
            json!(null),
        )
        .await;
    assert!(late.is_err());
    let counters = common::Counters::read(&snapshot);
    assert_eq!(counters.get(DROPPED_TOTAL, &[]), 1);
    // A second shutdown returns at once.
    logger.shutdown().await;
}

#[tokio::test]
async fn events_reach_every_sink() {
    let (a, b) = (MemorySink::default(), MemorySink::default());
    let logger = AuditLogger::builder()
        .sink(a.clone())
        .sink(b.clone())
        .sink(streamgate_audit::TracingSink::new())
        .start();
    for i in 0..3 {
        log(&logger, i).await;
    }
    logger.flush().await;
    assert_eq!(a.taken().len(), 3);
    assert_eq!(b.taken(), a.taken());
    logger.shutdown().await;
}

/// Lets the writer task run until it waits again.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_writer_lingers_to_gather_a_batch() {
    let sink = MemorySink::default();
    let logger = AuditLogger::builder()
        .sink(sink.clone())
        .batch_linger(Duration::from_millis(5))
        .start();
    // An idle writer writes a lone event at once...
    log(&logger, 0).await;
    settle().await;
    assert_eq!(sink.batches(), [1]);
    // ...then lets the next ones gather for its linger and writes them together.
    for i in 1..=10 {
        log(&logger, i).await;
    }
    settle().await;
    assert_eq!(sink.batches(), [1], "nothing is written during the linger");
    tokio::time::sleep(Duration::from_millis(4)).await;
    settle().await;
    assert_eq!(sink.batches(), [1]);
    tokio::time::sleep(Duration::from_millis(2)).await;
    settle().await;
    assert_eq!(sink.batches(), [1, 10]);
    logger.shutdown().await;
    let resources: Vec<String> = sink.taken().into_iter().map(|e| e.resource).collect();
    let expected: Vec<String> = (0..=10).map(|i| format!("r-{i}")).collect();
    assert_eq!(resources, expected);
}

#[tokio::test(start_paused = true)]
async fn flush_and_shutdown_do_not_wait_for_the_linger() {
    let sink = MemorySink::default();
    let logger = AuditLogger::builder()
        .sink(sink.clone())
        .batch_linger(Duration::from_secs(3600))
        .start();
    log(&logger, 0).await;
    settle().await;
    assert_eq!(sink.batches(), [1]);
    // The writer now lingers for an hour; with the clock paused, any wait for it would move
    // the clock forward by that hour.
    let start = Instant::now();
    log(&logger, 1).await;
    log(&logger, 2).await;
    logger.flush().await;
    assert_eq!(sink.taken().len(), 3);
    assert_eq!(start.elapsed(), Duration::ZERO);
    log(&logger, 3).await;
    logger.shutdown().await;
    assert_eq!(sink.taken().len(), 4);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_ends_the_linger() {
    let (metrics, snapshot) = common::metrics();
    for when_full in [WhenFull::Block, WhenFull::DropOldest] {
        let sink = MemorySink::default();
        let logger = AuditLogger::builder()
            .sink(sink.clone())
            .capacity(8)
            .when_full(when_full)
            .batch_linger(Duration::from_secs(3600))
            .metrics(metrics.clone())
            .start();
        log(&logger, 0).await;
        settle().await;
        let start = Instant::now();
        for i in 1..=40 {
            log(&logger, i).await;
            // A request path that yields now and then, as a server does.
            if i % 4 == 0 {
                tokio::task::yield_now().await;
            }
        }
        settle().await;
        // Each time the queue filled up, the writer took it without waiting for its linger.
        assert_eq!(start.elapsed(), Duration::ZERO, "{when_full:?}");
        assert_eq!(sink.taken().len(), 41, "{when_full:?}");
        logger.shutdown().await;
        assert_eq!(sink.taken().len(), 41, "{when_full:?}");
        assert!(sink.batches()[1..].iter().all(|&n| n == 8), "{when_full:?}");
    }
    assert_eq!(
        common::Counters::read(&snapshot).get(DROPPED_TOTAL, &[]),
        0,
        "the writer kept up, so nothing was dropped"
    );
}

/// Panics on its first `panics` writes (half of them when called, half inside the future),
/// then writes to `inner`.
struct PanickingSink {
    panics: usize,
    inner: MemorySink,
}

impl AuditSink for PanickingSink {
    fn name(&self) -> &'static str {
        "panicking"
    }

    fn write<'a>(&'a mut self, events: &'a [AuditEvent]) -> SinkFuture<'a> {
        if self.panics > 0 {
            self.panics -= 1;
            if self.panics % 2 == 1 {
                panic!("the sink panicked when called");
            }
            return Box::pin(async { panic!("the sink panicked in its future") });
        }
        self.inner.write(events)
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_sink_is_retried_and_block_mode_does_not_hang() {
    let (metrics, snapshot) = common::metrics();
    let inner = MemorySink::default();
    let logger = AuditLogger::builder()
        .sink(PanickingSink {
            panics: 4,
            inner: inner.clone(),
        })
        .capacity(2)
        .retry_backoff(Duration::from_millis(100), Duration::from_secs(1))
        .metrics(metrics)
        .start();
    for i in 0..10 {
        tokio::time::timeout(Duration::from_secs(60), log(&logger, i))
            .await
            .expect("a producer in block mode must not wait forever");
    }
    logger.shutdown().await;
    let resources: Vec<String> = inner.taken().into_iter().map(|e| e.resource).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("r-{i}")).collect();
    assert_eq!(resources, expected);
    let counters = common::Counters::read(&snapshot);
    assert_eq!(counters.get(SINK_ERRORS_TOTAL, &[("sink", "panicking")]), 4);
    assert_eq!(counters.get(EVENTS_TOTAL, &[("sink", "panicking")]), 10);
    assert_eq!(counters.get(DROPPED_TOTAL, &[]), 0);
}

/// A write whose future panics when it is dropped: the panic comes out of the writer's own
/// code, after the sink call it guards has returned.
struct DropBomb;

impl std::future::Future for DropBomb {
    type Output = Result<(), SinkError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(Err(SinkError::new("down")))
    }
}

impl Drop for DropBomb {
    fn drop(&mut self) {
        panic!("the sink's future panicked when dropped");
    }
}

struct PanicsInTheWriter;

impl AuditSink for PanicsInTheWriter {
    fn name(&self) -> &'static str {
        "doomed"
    }

    fn write<'a>(&'a mut self, _events: &'a [AuditEvent]) -> SinkFuture<'a> {
        Box::pin(DropBomb)
    }
}

#[tokio::test(start_paused = true)]
async fn a_dead_writer_closes_the_logger_and_counts_what_it_lost() {
    let (metrics, snapshot) = common::metrics();
    let logger = AuditLogger::builder()
        .sink(PanicsInTheWriter)
        .capacity(2)
        .metrics(metrics)
        .start();
    log(&logger, 0).await;
    let mut refused = 0;
    for i in 1..6 {
        let result = tokio::time::timeout(
            Duration::from_secs(60),
            logger.log_event(
                "test",
                "user-1",
                "act",
                format!("r-{i}"),
                Outcome::Success,
                json!(null),
            ),
        )
        .await
        .expect("a producer in block mode must not wait for a dead writer");
        refused += usize::from(result.is_err());
    }
    assert!(refused > 0);
    tokio::time::timeout(Duration::from_secs(60), logger.flush())
        .await
        .unwrap();
    logger.shutdown().await;
    let counters = common::Counters::read(&snapshot);
    assert_eq!(
        counters.get(DROPPED_TOTAL, &[]),
        6,
        "every event is accounted for"
    );
}
