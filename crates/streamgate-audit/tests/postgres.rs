//! The PostgreSQL sink against a real server (issue 7, acceptance 3 and 4). Set
//! `STREAMGATE_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without it
//! these tests print that they skipped.
#![cfg(feature = "postgres")]

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, SystemTime},
};

use serde_json::json;
use streamgate_audit::{
    Actor, AuditEvent, AuditLogger, AuditQuery, AuditSink, DROPPED_TOTAL, Outcome, TamperKind,
    WhenFull,
    postgres::{PostgresSink, PostgresSinkConfig, verify_postgres},
};
use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    sync::Notify,
};

fn url() -> Option<String> {
    match std::env::var("STREAMGATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!(
                "skipped: STREAMGATE_TEST_POSTGRES_URL is not set (a PostgreSQL URL such as postgres://postgres@127.0.0.1:5432/test)"
            );
            None
        }
    }
}

/// A table of its own for each test, dropped first if a previous run left it.
async fn fresh_table(url: &str, name: &str) -> String {
    let table = format!("audit_test_{name}");
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; DROP TABLE IF EXISTS {table}_heads;"
        ))
        .await
        .unwrap();
    table
}

async fn sql(url: &str, statement: &str) -> u64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client.execute(statement, &[]).await.unwrap()
}

async fn count(url: &str, table: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

fn config(url: &str, table: &str, instance: &str) -> PostgresSinkConfig {
    PostgresSinkConfig::new(url, instance, common::key()).table(table)
}

#[tokio::test]
async fn events_land_queries_answer_in_time_order_and_the_chain_verifies() {
    let Some(url) = url() else { return };
    let table = fresh_table(&url, "land").await;
    let sink = PostgresSink::new(config(&url, &table, "replica-a")).unwrap();
    sink.health().check().await.unwrap();
    let logger = AuditLogger::builder().sink(sink).start();
    let begin = SystemTime::now() - Duration::from_secs(1);
    for i in 0..40 {
        let actor = if i % 4 == 0 { "alice" } else { "bob" };
        let kind = if i % 2 == 0 {
            "authentication"
        } else {
            "data_modification"
        };
        logger
            .log_event(
                kind,
                actor,
                "act",
                format!("r-{i}"),
                Outcome::Success,
                json!({"i": i, "password": "x"}),
            )
            .await
            .unwrap();
    }
    let all = begin..SystemTime::now() + Duration::from_secs(60);
    let alice = logger
        .events_by_actor("alice", all.clone(), 100)
        .await
        .unwrap();
    assert_eq!(alice.len(), 10);
    assert!(alice.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    assert_eq!(alice[0].resource, "r-0");
    assert_eq!(alice[0].metadata["password"], "[REDACTED]");
    assert_eq!(
        logger
            .events_by_actor("bob", all.clone(), 7)
            .await
            .unwrap()
            .len(),
        7
    );
    assert_eq!(
        logger
            .events_by_type("authentication", all, 100)
            .await
            .unwrap()
            .len(),
        20
    );
    logger.shutdown().await;

    // A second replica keeps its own chain in the same table.
    let logger = AuditLogger::builder()
        .sink(PostgresSink::new(config(&url, &table, "replica-b")).unwrap())
        .start();
    logger
        .log_event(
            "admin",
            "root",
            "restart",
            "svc",
            Outcome::Success,
            json!(null),
        )
        .await
        .unwrap();
    logger.shutdown().await;
    assert_eq!(count(&url, &table).await, 41);

    let report = verify_postgres(&url, &table, "replica-a", &common::key())
        .await
        .unwrap();
    assert_eq!(report.events, 40);
    assert_eq!(
        verify_postgres(&url, &table, "replica-b", &common::key())
            .await
            .unwrap()
            .events,
        1
    );

    // Tampering is named.
    let changed = sql(&url, &format!("UPDATE {table} SET event = replace(event, 'r-7', 'r-9') WHERE instance_id = 'replica-a' AND seq = 7")).await;
    assert_eq!(changed, 1);
    let failure = verify_postgres(&url, &table, "replica-a", &common::key())
        .await
        .unwrap_err();
    assert_eq!(
        (failure.kind, failure.seq),
        (TamperKind::Modified, Some(7)),
        "{failure}"
    );
    sql(
        &url,
        &format!("DELETE FROM {table} WHERE instance_id = 'replica-b'"),
    )
    .await;
    let failure = verify_postgres(&url, &table, "replica-b", &common::key())
        .await
        .unwrap_err();
    assert_eq!(failure.kind, TamperKind::Truncated, "{failure}");
}

#[tokio::test]
async fn retention_removes_old_events_and_the_rest_verifies() {
    let Some(url) = url() else { return };
    let table = fresh_table(&url, "retention").await;
    let now = SystemTime::now();
    let logger = AuditLogger::builder()
        .sink(PostgresSink::new(config(&url, &table, "r1").retention(None)).unwrap())
        .start();
    for days_ago in [40u64, 35, 31, 2, 1] {
        let event = AuditEvent::new(
            now - Duration::from_secs(days_ago * 86_400),
            "test",
            Actor::user("u1"),
            "act",
            format!("{days_ago}-days-ago"),
            Outcome::Success,
        );
        logger.record(event).await.unwrap();
    }
    logger.shutdown().await;
    assert_eq!(count(&url, &table).await, 5);

    // The next start applies the 30-day retention when it first connects.
    let logger = AuditLogger::builder()
        .sink(PostgresSink::new(config(&url, &table, "r1")).unwrap())
        .start();
    logger
        .log_event("test", "u1", "act", "now", Outcome::Success, json!(null))
        .await
        .unwrap();
    let events = logger
        .events_by_actor(
            "u1",
            now - Duration::from_secs(100 * 86_400)..now + Duration::from_secs(60),
            100,
        )
        .await
        .unwrap();
    let resources: Vec<&str> = events.iter().map(|e| e.resource.as_str()).collect();
    assert_eq!(resources, ["2-days-ago", "1-days-ago", "now"]);
    logger.shutdown().await;
    assert_eq!(
        verify_postgres(&url, &table, "r1", &common::key())
            .await
            .unwrap()
            .events,
        3
    );
    // Deleting the oldest kept event is not mistaken for retention: the head names it.
    sql(&url, &format!("DELETE FROM {table} WHERE instance_id = 'r1' AND seq = (SELECT min(seq) FROM {table} WHERE instance_id = 'r1')")).await;
    let failure = verify_postgres(&url, &table, "r1", &common::key())
        .await
        .unwrap_err();
    assert_eq!(failure.kind, TamperKind::Deleted, "{failure}");
}

/// A TCP proxy in front of the server that can pass or refuse connections (cutting the open
/// ones).
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Notify::new());
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            loop {
                let (mut client, _) = listener.accept().await.unwrap();
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let cut = cut2.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        () = cut.notified() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// `url` with its host and port replaced by the proxy's.
    fn url(&self, url: &str) -> String {
        let config: tokio_postgres::Config = url.parse().unwrap();
        let user = config.get_user().unwrap_or("postgres");
        let db = config.get_dbname().unwrap_or("test");
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }
}

fn target(url: &str) -> String {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("127.0.0.1:{port}")
}

async fn outage(mode: WhenFull) -> (u64, i64, u64) {
    let url = url().unwrap();
    let name = if mode == WhenFull::Block {
        "outage_block"
    } else {
        "outage_drop"
    };
    let table = fresh_table(&url, name).await;
    let proxy = Proxy::start(target(&url)).await;
    let (metrics, snapshot) = common::metrics();
    let sink = PostgresSink::new(
        config(&proxy.url(&url), &table, "r1").timeout(Duration::from_millis(500)),
    )
    .unwrap();
    let logger = AuditLogger::builder()
        .sink(sink)
        .capacity(if mode == WhenFull::Block { 10_000 } else { 10 })
        .when_full(mode)
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(100))
        .metrics(metrics)
        .start();
    let logged = AtomicU64::new(0);
    for i in 0..20 {
        logger
            .log_event(
                "test",
                "u1",
                "act",
                format!("before-{i}"),
                Outcome::Success,
                json!(null),
            )
            .await
            .unwrap();
        logged.fetch_add(1, Ordering::SeqCst);
        logger.flush().await;
    }
    logger.flush().await;
    assert_eq!(count(&url, &table).await, 20);

    proxy.down();
    // During the outage the request path keeps going: events queue (or the oldest are dropped).
    for i in 0..50 {
        logger
            .log_event(
                "test",
                "u1",
                "act",
                format!("during-{i}"),
                Outcome::Success,
                json!(null),
            )
            .await
            .unwrap();
        logged.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
    }
    assert_eq!(
        count(&url, &table).await,
        20,
        "nothing is written while the database is unreachable"
    );
    proxy.up();
    logger.shutdown().await;
    let dropped = common::Counters::read(&snapshot).get(DROPPED_TOTAL, &[]);
    let stored = count(&url, &table).await;
    verify_postgres(&url, &table, "r1", &common::key())
        .await
        .unwrap();
    (logged.load(Ordering::SeqCst), stored, dropped)
}

#[tokio::test]
async fn an_outage_in_block_mode_loses_nothing_and_writes_each_event_once() {
    if url().is_none() {
        return;
    }
    let (logged, stored, dropped) = outage(WhenFull::Block).await;
    assert_eq!((logged, stored, dropped), (70, 70, 0));
}

#[tokio::test]
async fn an_outage_in_drop_oldest_mode_counts_what_it_dropped() {
    if url().is_none() {
        return;
    }
    let (logged, stored, dropped) = outage(WhenFull::DropOldest).await;
    assert!(dropped > 0);
    assert_eq!(stored as u64 + dropped, logged);
}

#[tokio::test]
async fn the_command_verifies_a_chain_in_the_database() {
    let Some(url) = url() else { return };
    let table = fresh_table(&url, "command").await;
    let logger = AuditLogger::builder()
        .sink(PostgresSink::new(config(&url, &table, "cli")).unwrap())
        .start();
    for i in 0..5 {
        logger
            .log_event(
                "test",
                "u1",
                "act",
                format!("r-{i}"),
                Outcome::Success,
                json!(null),
            )
            .await
            .unwrap();
    }
    logger.shutdown().await;
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_streamgate-audit"))
            .args(["verify", &url, "--instance", "cli", "--table", &table])
            .args(["--key-hex", &hex::encode([0x5a; 32])])
            .output()
            .unwrap()
    };
    let ok = run();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("OK"));
    sql(&url, &format!("DELETE FROM {table} WHERE seq = 2")).await;
    let bad = run();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("deleted"));
}

#[tokio::test]
async fn the_health_check_follows_the_database() {
    let Some(url) = url() else { return };
    let proxy = Proxy::start(target(&url)).await;
    let sink = PostgresSink::new(
        config(&proxy.url(&url), "audit_test_health", "h").timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let health = sink.health();
    health.check().await.unwrap();
    proxy.down();
    let started = std::time::Instant::now();
    assert!(health.check().await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "decided within the timeout"
    );
    proxy.up();
    health.check().await.unwrap();
}

#[tokio::test]
async fn nul_characters_are_stored_replaced_and_later_events_still_flush() {
    let Some(url) = url() else { return };
    let table = fresh_table(&url, "nul").await;
    let sink = PostgresSink::new(config(&url, &table, "n")).unwrap();
    let logger = AuditLogger::builder()
        .sink(sink)
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .start();
    let begin = SystemTime::now() - Duration::from_secs(1);
    logger
        .log_event(
            "auth\0entication",
            "evil\0user",
            "login",
            "/login",
            Outcome::Failure,
            json!({"name\0": "a\0b"}),
        )
        .await
        .unwrap();
    logger
        .log_event(
            "authentication",
            "later-user",
            "login",
            "/login",
            Outcome::Success,
            json!({}),
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), logger.flush())
        .await
        .expect("the batch with NUL characters was written");
    assert_eq!(count(&url, &table).await, 2);
    let all = begin..SystemTime::now() + Duration::from_secs(60);
    // The columns hold U+FFFD; a lookup with the original value finds the event.
    let found = logger
        .events_by_actor("evil\0user", all.clone(), 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    // The stored event keeps the original text (JSON escapes NUL as \u0000).
    assert_eq!(found[0].metadata["name\0"], "a\0b");
    assert_eq!(
        logger
            .events_by_type("auth\u{FFFD}entication", all, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    logger.shutdown().await;
    verify_postgres(&url, &table, "n", &common::key())
        .await
        .unwrap();
}

/// A user id or event type longer than an index entry can hold is written (cut in its indexed
/// column, whole in the event) instead of failing its batch for ever, and queries still tell
/// apart two long ids that share their start.
#[tokio::test]
async fn long_actors_and_types_are_written_and_found_exactly() {
    let Some(url) = url() else { return };
    let table = fresh_table(&url, "long").await;
    let sink = PostgresSink::new(config(&url, &table, "l")).unwrap();
    let reader = sink.reader();
    let logger = AuditLogger::builder()
        .sink(sink)
        .retry_backoff(Duration::from_millis(10), Duration::from_millis(50))
        .start();
    let begin = SystemTime::now() - Duration::from_secs(1);
    // Multi-byte characters, so that the cut falls inside one.
    let shared = "é".repeat(1500);
    let (first, second) = (format!("{shared}-first"), format!("{shared}-second"));
    // Event types are `&'static str` (the application's own names).
    let long_type: &'static str = Box::leak("t".repeat(3000).into_boxed_str());
    // Three by the first before one by the second: a limit of 2 must still find the second's.
    for actor in [&first, &first, &first, &second] {
        logger
            .log_event(
                "login",
                actor.as_str(),
                "act",
                "r",
                Outcome::Success,
                json!({}),
            )
            .await
            .unwrap();
    }
    logger
        .log_event(long_type, "alice", "act", "r", Outcome::Success, json!({}))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), logger.flush())
        .await
        .expect("the long values were written");
    assert_eq!(count(&url, &table).await, 5);
    let all = begin..SystemTime::now() + Duration::from_secs(60);
    let found = reader
        .events_by_actor(&second, all.clone(), 2)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].actor, Actor::user(second.clone()));
    let typed = reader.events_by_type(long_type, all, 10).await.unwrap();
    assert_eq!(typed.len(), 1);
    assert_eq!(typed[0].event_type, long_type);
    logger.shutdown().await;
    verify_postgres(&url, &table, "l", &common::key())
        .await
        .unwrap();
}

/// Stored times are whole milliseconds; a range bound inside a millisecond is compared as the
/// file sink compares it.
#[tokio::test]
async fn range_bounds_inside_a_millisecond_are_exact() {
    let Some(url) = url() else { return };
    let table = fresh_table(&url, "bounds").await;
    let mut sink = PostgresSink::new(config(&url, &table, "b")).unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_000);
    let event = AuditEvent::new(at, "test", Actor::user("ada"), "act", "r", Outcome::Success);
    sink.write(&[event]).await.unwrap();
    let reader = sink.reader();
    let micros = Duration::from_micros;
    for (range, expected) in [
        (at..at + micros(1), 1),
        (at - micros(400)..at + micros(400), 1),
        (at + micros(400)..at + Duration::from_secs(10), 0),
        (at - Duration::from_secs(10)..at, 0),
        (at - Duration::from_secs(10)..at + micros(400), 1),
    ] {
        let found = reader
            .events_by_actor("ada", range.clone(), 10)
            .await
            .unwrap();
        assert_eq!(found.len(), expected, "{range:?}");
    }
}

async fn session(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

fn event(actor: &str) -> AuditEvent {
    AuditEvent::new(
        SystemTime::now(),
        "test",
        Actor::user(actor),
        "act",
        "r",
        Outcome::Success,
    )
}

#[tokio::test]
async fn a_session_holding_the_table_makes_the_sink_fail_within_its_timeout() {
    let Some(url) = url() else { return };
    let table = fresh_table(&url, "lock").await;
    let mut first = PostgresSink::new(config(&url, &table, "a")).unwrap();
    first.write(&[event("u")]).await.unwrap();

    // Another session's uncommitted insert: a new replica must not wait on it (its setup skips
    // the DDL, whose CREATE INDEX IF NOT EXISTS would queue for a SHARE lock).
    let holder = session(&url).await;
    holder
        .batch_execute(&format!(
            "BEGIN; INSERT INTO {table} (instance_id, seq, id, ts, event_type, actor, event, prev, hash)
             VALUES ('z', 0, gen_random_uuid(), now(), 't', 'u', '{{}}', '', '')"
        ))
        .await
        .unwrap();
    let timeout = Duration::from_millis(500);
    let mut second = PostgresSink::new(config(&url, &table, "b").timeout(timeout)).unwrap();
    let started = std::time::Instant::now();
    second.write(&[event("u")]).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    holder.batch_execute("ROLLBACK").await.unwrap();

    // A session holding the table exclusively: each operation fails within the timeout.
    holder
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .unwrap();
    let mut third = PostgresSink::new(config(&url, &table, "c").timeout(timeout)).unwrap();
    let reader = third.reader();
    for _ in 0..2 {
        let started = std::time::Instant::now();
        assert!(third.write(&[event("u")]).await.is_err());
        assert!(second.write(&[event("u")]).await.is_err());
        assert!(third.maintain().await.is_err());
        let all = SystemTime::UNIX_EPOCH..SystemTime::now() + Duration::from_secs(60);
        assert!(reader.events_by_actor("u", all, 10).await.is_err());
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "took {:?}",
            started.elapsed()
        );
    }
    holder.batch_execute("ROLLBACK").await.unwrap();
    third.write(&[event("u")]).await.unwrap();
    second.write(&[event("u")]).await.unwrap();
    assert_eq!(count(&url, &table).await, 4);
    for instance in ["a", "b", "c"] {
        verify_postgres(&url, &table, instance, &common::key())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_event_id_is_stored_once_and_older_tables_get_the_unique_index() {
    let Some(url) = url() else { return };
    let table = fresh_table(&url, "unique").await;
    let mut first = PostgresSink::new(config(&url, &table, "a")).unwrap();
    let stored = event("u");
    first.write(std::slice::from_ref(&stored)).await.unwrap();
    // A table made before the index existed.
    sql(&url, &format!("DROP INDEX {table}_id")).await;
    let mut second = PostgresSink::new(config(&url, &table, "b")).unwrap();
    let err = second
        .write(std::slice::from_ref(&stored))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already stored"), "{err}");
    assert_eq!(count(&url, &table).await, 1);
    let indexes = sql(
        &url,
        &format!("SELECT 1 FROM pg_indexes WHERE indexname = '{table}_id'"),
    )
    .await;
    assert_eq!(indexes, 1);
    second.write(&[event("u")]).await.unwrap();
    first.write(&[event("u")]).await.unwrap();
    assert_eq!(count(&url, &table).await, 3);
    for instance in ["a", "b"] {
        verify_postgres(&url, &table, instance, &common::key())
            .await
            .unwrap();
    }
}
