//! Rotation by day (paused time), retention, and the query API over the file sink.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use streamgate_audit::{
    Actor, AuditClock, AuditEvent, AuditLogger, AuditSink, FileSink, FileSinkConfig, Outcome,
    TamperKind, verify_path,
};

const DAY: Duration = Duration::from_secs(86_400);

fn log_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    names.sort();
    names
}

fn logger(dir: &std::path::Path, clock: AuditClock) -> AuditLogger {
    let sink = FileSink::open(FileSinkConfig::new(dir, common::key()).clock(clock)).unwrap();
    AuditLogger::builder().sink(sink).clock(clock).start()
}

async fn log(logger: &AuditLogger, actor: &str, kind: &'static str, resource: &str) {
    logger
        .log_event(kind, actor, "act", resource, Outcome::Success, json!(null))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_new_file_starts_at_utc_midnight() {
    let dir = tempfile::tempdir().unwrap();
    // 2024-10-03T23:59:30Z
    let start = UNIX_EPOCH + DAY * 20_000 - Duration::from_secs(30);
    let clock = AuditClock::starting_at(start);
    let logger = logger(dir.path(), clock);
    for i in 0..3 {
        log(&logger, "u1", "test", &format!("before-{i}")).await;
    }
    logger.flush().await;
    tokio::time::advance(Duration::from_secs(60)).await;
    for i in 0..3 {
        log(&logger, "u1", "test", &format!("after-{i}")).await;
    }
    logger.shutdown().await;
    assert_eq!(
        log_files(dir.path()),
        [
            "audit-00000001-20241003T235930Z.jsonl",
            "audit-00000002-20241004T000030Z.jsonl"
        ]
    );
    let events = common::events(dir.path());
    assert_eq!(events.len(), 6);
    assert_eq!(events[0]["timestamp"], "2024-10-03T23:59:30.000Z");
    assert_eq!(events[3]["timestamp"], "2024-10-04T00:00:30.000Z");
    assert_eq!(verify_path(dir.path(), &common::key()).unwrap().files, 2);
}

#[tokio::test(start_paused = true)]
async fn retention_removes_old_files_and_what_remains_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let start = UNIX_EPOCH + DAY * 20_000 + Duration::from_secs(3600);
    let clock = AuditClock::starting_at(start);
    let logger = logger(dir.path(), clock);
    log(&logger, "u1", "test", "day-0").await;
    logger.flush().await;
    tokio::time::advance(DAY * 2).await;
    log(&logger, "u1", "test", "day-2").await;
    logger.flush().await;
    tokio::time::advance(DAY * 40).await;
    assert_eq!(log_files(dir.path()).len(), 2);
    // Day 42: a new file starts, and the retention (30 days) removes the file of day 0, whose
    // records all precede day 2; the file of day 2 holds records up to day 42, so it stays.
    log(&logger, "u1", "test", "day-42").await;
    logger.shutdown().await;
    let files = log_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].starts_with("audit-00000002-"));
    let report = verify_path(dir.path(), &common::key()).unwrap();
    assert_eq!(report.events, 2);
    let resources: Vec<_> = common::events(dir.path())
        .iter()
        .map(|e| e["resource"].clone())
        .collect();
    assert_eq!(resources, [json!("day-2"), json!("day-42")]);
}

#[tokio::test(start_paused = true)]
async fn a_log_reopens_after_retention_even_with_a_file_an_interrupted_purge_left() {
    let dir = tempfile::tempdir().unwrap();
    let clock = AuditClock::starting_at(UNIX_EPOCH + DAY * 20_000 + Duration::from_secs(3600));
    let first = logger(dir.path(), clock);
    log(&first, "u1", "test", "day-0").await;
    first.flush().await;
    tokio::time::advance(DAY * 2).await;
    log(&first, "u1", "test", "day-2").await;
    first.flush().await;
    let oldest = dir.path().join(&log_files(dir.path())[0]);
    let saved = std::fs::read(&oldest).unwrap();
    tokio::time::advance(DAY * 40).await;
    log(&first, "u1", "test", "day-42").await;
    first.shutdown().await;
    assert!(!oldest.exists());
    // A crash after the head moved its first file forward, before the file was removed.
    std::fs::write(&oldest, saved).unwrap();
    verify_path(dir.path(), &common::key()).unwrap();
    let restarted = logger(dir.path(), clock);
    log(&restarted, "u1", "test", "restarted").await;
    restarted.shutdown().await;
    assert_eq!(verify_path(dir.path(), &common::key()).unwrap().events, 3);
}

#[tokio::test(start_paused = true)]
async fn housekeeping_applies_retention_without_new_events() {
    let dir = tempfile::tempdir().unwrap();
    let start = UNIX_EPOCH + DAY * 20_000;
    let clock = AuditClock::starting_at(start);
    let sink = FileSink::open(
        FileSinkConfig::new(dir.path(), common::key())
            .clock(clock)
            .retention(Some(DAY * 3)),
    )
    .unwrap();
    let logger = AuditLogger::builder()
        .sink(sink)
        .clock(clock)
        .maintenance_interval(Duration::from_secs(3600))
        .start();
    for day in 0..3 {
        log(&logger, "u1", "test", &format!("day-{day}")).await;
        logger.flush().await;
        tokio::time::advance(DAY).await;
    }
    assert_eq!(log_files(dir.path()).len(), 3);
    // Day 5 + housekeeping: files whose successor started before day 2 go.
    tokio::time::advance(DAY * 2).await;
    tokio::time::sleep(Duration::from_secs(7200)).await;
    logger.flush().await;
    let files = log_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    logger.shutdown().await;
    verify_path(dir.path(), &common::key()).unwrap();
}

/// Logs alice's event (large enough to fill a 1 KiB file) at X.500 of a whole second X, then
/// bob's at X.900, which starts a second file named X.000.
async fn two_files_in_one_second(logger: &AuditLogger, dir: &std::path::Path) {
    tokio::time::advance(Duration::from_millis(500)).await;
    let padding = "x".repeat(1500);
    logger
        .log_event(
            "t",
            "alice",
            "a",
            "A",
            Outcome::Success,
            json!({"pad": padding}),
        )
        .await
        .unwrap();
    logger.flush().await;
    tokio::time::advance(Duration::from_millis(400)).await;
    log(logger, "bob", "t", "B").await;
    logger.flush().await;
    assert_eq!(log_files(dir).len(), 2, "the second event starts a file");
}

/// File names keep whole seconds: a file created at X.900 is named X.000, and still the file
/// before it, with an event at X.500, is read for a range starting at X.400.
#[tokio::test(start_paused = true)]
async fn a_query_reads_a_file_whose_successor_was_created_in_the_same_second() {
    let dir = tempfile::tempdir().unwrap();
    let start = UNIX_EPOCH + DAY * 20_000;
    let clock = AuditClock::starting_at(start);
    let sink = FileSink::open(
        FileSinkConfig::new(dir.path(), common::key())
            .clock(clock)
            .max_file_bytes(1024),
    )
    .unwrap();
    let logger = AuditLogger::builder().sink(sink).clock(clock).start();
    two_files_in_one_second(&logger, dir.path()).await;
    let range = start + Duration::from_millis(400)..start + Duration::from_secs(10);
    let found = logger.events_by_actor("alice", range, 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].resource, "A");
    logger.shutdown().await;
}

/// The same rounding in retention: a file whose successor's name says X.000 may hold events up
/// to X.999, so at a cutoff of X.200 it stays.
#[tokio::test(start_paused = true)]
async fn retention_keeps_a_file_whose_successor_was_created_in_the_cutoffs_second() {
    let dir = tempfile::tempdir().unwrap();
    let start = UNIX_EPOCH + DAY * 20_000;
    let clock = AuditClock::starting_at(start);
    let sink = FileSink::open(
        FileSinkConfig::new(dir.path(), common::key())
            .clock(clock)
            .max_file_bytes(1024)
            .retention(Some(DAY)),
    )
    .unwrap();
    let logger = AuditLogger::builder()
        .sink(sink)
        .clock(clock)
        .maintenance_interval(Duration::from_millis(100))
        .start();
    two_files_in_one_second(&logger, dir.path()).await;
    // The cutoff reaches X.200: alice's event (X.500) is within the retention.
    tokio::time::advance(DAY - Duration::from_millis(700)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    logger.flush().await;
    assert_eq!(
        log_files(dir.path()).len(),
        2,
        "nothing within the retention goes"
    );
    // A second later it is outside, and its file goes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    logger.flush().await;
    assert_eq!(log_files(dir.path()).len(), 1);
    logger.shutdown().await;
    verify_path(dir.path(), &common::key()).unwrap();
}

#[tokio::test]
async fn queries_by_actor_and_type_answer_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let logger = logger(dir.path(), AuditClock::new());
    let begin = SystemTime::now() - Duration::from_secs(1);
    for i in 0..30 {
        let actor = if i % 3 == 0 { "alice" } else { "bob" };
        let kind = if i % 2 == 0 {
            "authentication"
        } else {
            "data_modification"
        };
        log(&logger, actor, kind, &format!("r-{i}")).await;
    }
    let all = begin..SystemTime::now() + Duration::from_secs(60);
    let alice = logger
        .events_by_actor("alice", all.clone(), 100)
        .await
        .unwrap();
    assert_eq!(alice.len(), 10);
    assert!(alice.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    assert_eq!(alice[0].resource, "r-0");
    assert_eq!(alice[9].resource, "r-27");
    let limited = logger.events_by_actor("bob", all.clone(), 5).await.unwrap();
    assert_eq!(limited.len(), 5);
    let auth = logger
        .events_by_type("authentication", all.clone(), 100)
        .await
        .unwrap();
    assert_eq!(auth.len(), 15);
    assert!(auth.iter().all(|e| e.event_type == "authentication"));
    let future = SystemTime::now() + DAY..SystemTime::now() + DAY * 2;
    assert!(
        logger
            .events_by_actor("alice", future, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        logger
            .events_by_actor("carol", all, 100)
            .await
            .unwrap()
            .is_empty()
    );
    logger.shutdown().await;
}

/// A slow request is stamped when it arrived but written when it ended, after newer events: a
/// limited query still answers the oldest matches.
#[tokio::test]
async fn a_limited_query_answers_the_oldest_matches_whatever_the_write_order() {
    let dir = tempfile::tempdir().unwrap();
    let logger = logger(dir.path(), AuditClock::new());
    let now = logger.clock().now();
    for (resource, age) in [("newest", 0), ("slow", 5), ("newer", 1), ("oldest", 9)] {
        let at = now - Duration::from_secs(age);
        let event = AuditEvent::new(at, "t", Actor::user("u"), "a", resource, Outcome::Success);
        logger.record(event).await.unwrap();
    }
    let all = now - Duration::from_secs(60)..now + Duration::from_secs(60);
    let resources = |events: Vec<AuditEvent>| -> Vec<String> {
        events.into_iter().map(|e| e.resource).collect()
    };
    let one = logger.events_by_actor("u", all.clone(), 1).await.unwrap();
    assert_eq!(resources(one), ["oldest"]);
    let two = logger.events_by_type("t", all.clone(), 2).await.unwrap();
    assert_eq!(resources(two), ["oldest", "slow"]);
    let every = logger.events_by_actor("u", all, 10).await.unwrap();
    assert_eq!(resources(every), ["oldest", "slow", "newer", "newest"]);
    logger.shutdown().await;
}

#[tokio::test]
async fn the_head_follows_on_flush_or_when_its_interval_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        FileSinkConfig::new(dir.path(), common::key()).head_interval(Duration::from_secs(3600));
    let mut sink = FileSink::open(config).unwrap();
    let event = AuditEvent::new(
        SystemTime::now(),
        "upload",
        Actor::user("u-1"),
        "upload_file",
        "f",
        Outcome::Success,
    );
    sink.write(std::slice::from_ref(&event)).await.unwrap();
    // Busy: the record is written but the head still names the one before it.
    let failure = verify_path(dir.path(), &common::key()).unwrap_err();
    assert_eq!(failure.kind, TamperKind::Unsigned, "{failure}");
    sink.flush().await.unwrap();
    assert_eq!(verify_path(dir.path(), &common::key()).unwrap().events, 1);

    // With no interval, every batch moves the head.
    let dir = tempfile::tempdir().unwrap();
    let config = FileSinkConfig::new(dir.path(), common::key()).head_interval(Duration::ZERO);
    let mut sink = FileSink::open(config).unwrap();
    sink.write(std::slice::from_ref(&event)).await.unwrap();
    assert_eq!(verify_path(dir.path(), &common::key()).unwrap().events, 1);
}
