//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use streamgate_audit::{FileSink, FileSinkConfig, SigningKey};
use streamgate_core::MetricsHandle;

pub fn key() -> SigningKey {
    SigningKey::new(&[0x5a; 32]).unwrap()
}

pub fn file_sink(dir: &Path) -> FileSink {
    FileSink::open(FileSinkConfig::new(dir, key())).unwrap()
}

pub fn metrics() -> (MetricsHandle, Snapshotter) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    (MetricsHandle::new(recorder), snapshotter)
}

/// Counter values read at one moment (a snapshot resets the debugging recorder's counters).
type Labels = Vec<(String, String)>;

pub struct Counters(Vec<(String, Labels, u64)>);

impl Counters {
    pub fn read(snapshotter: &Snapshotter) -> Self {
        Self(
            snapshotter
                .snapshot()
                .into_vec()
                .into_iter()
                .filter_map(|(key, _, _, value)| match value {
                    DebugValue::Counter(n) => {
                        let key = key.key();
                        let labels = key
                            .labels()
                            .map(|l| (l.key().to_owned(), l.value().to_owned()))
                            .collect();
                        Some((key.name().to_owned(), labels, n))
                    }
                    _ => None,
                })
                .collect(),
        )
    }

    /// The value of counter `name` with exactly `labels` (0 when absent).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.0
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && l.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map_or(0, |(_, _, v)| *v)
    }
}

/// The value of the unlabelled gauge `name` (`None` when never set).
pub fn gauge(snapshotter: &Snapshotter, name: &str) -> Option<f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .find_map(|(key, _, _, value)| match value {
            DebugValue::Gauge(value) if key.key().name() == name => Some(value.into_inner()),
            _ => None,
        })
}

/// Every line of every log file in `dir`, in file order.
pub fn log_lines(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The event objects of the log in `dir`.
pub fn events(dir: &Path) -> Vec<serde_json::Value> {
    log_lines(dir)
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "event")
        .map(|r| r["event"].clone())
        .collect()
}

use std::sync::{Arc, Mutex};

use streamgate_audit::{AuditEvent, AuditSink, SinkError, SinkFuture};
use tokio::sync::Semaphore;

/// Keeps what it is given, in memory. `gate` (when set) must hand out a permit per write: a
/// stalled sink until the test adds permits. `fail_first` writes fail before any succeeds.
#[derive(Clone, Default)]
pub struct MemorySink {
    pub events: Arc<Mutex<Vec<AuditEvent>>>,
    /// The size of each batch written, in order.
    pub batches: Arc<Mutex<Vec<usize>>>,
    pub attempts: Arc<Mutex<Vec<tokio::time::Instant>>>,
    pub gate: Option<Arc<Semaphore>>,
    pub fail_first: Arc<Mutex<usize>>,
}

impl MemorySink {
    pub fn stalled() -> (Self, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        (
            Self {
                gate: Some(gate.clone()),
                ..Self::default()
            },
            gate,
        )
    }

    pub fn failing(times: usize) -> Self {
        Self {
            fail_first: Arc::new(Mutex::new(times)),
            ..Self::default()
        }
    }

    pub fn taken(&self) -> Vec<AuditEvent> {
        self.events.lock().unwrap().clone()
    }

    pub fn batches(&self) -> Vec<usize> {
        self.batches.lock().unwrap().clone()
    }
}

impl AuditSink for MemorySink {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn write<'a>(&'a mut self, events: &'a [AuditEvent]) -> SinkFuture<'a> {
        Box::pin(async move {
            if let Some(gate) = &self.gate {
                gate.acquire().await.unwrap().forget();
            }
            self.attempts
                .lock()
                .unwrap()
                .push(tokio::time::Instant::now());
            {
                let mut fail = self.fail_first.lock().unwrap();
                if *fail > 0 {
                    *fail -= 1;
                    return Err(SinkError::new("the test sink is down"));
                }
            }
            self.events.lock().unwrap().extend_from_slice(events);
            self.batches.lock().unwrap().push(events.len());
            Ok(())
        })
    }
}
