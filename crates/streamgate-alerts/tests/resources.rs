//! The seed's resource alerts (high CPU, high memory, out of memory, disk full) under paused
//! tokio time, over a resource source the test sets, and once over the operating system's.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use streamgate_alerts::{
    AlertRule, AlertState, Alerts, Health, ResourceSource, Severity, Signal, SystemResources,
};
use streamgate_metrics::MetricsRecorder;

/// Resource readings the test sets.
#[derive(Debug, Clone, Default)]
struct Readings(Arc<Mutex<Values>>);

#[derive(Debug, Default)]
struct Values {
    cpu_time: Duration,
    resident: u64,
    disks: HashMap<PathBuf, f64>,
}

const LIMIT: u64 = 1 << 30;

impl Readings {
    fn use_cpu(&self, seconds: u64) {
        self.0.lock().unwrap().cpu_time += Duration::from_secs(seconds);
    }

    fn set_memory_share(&self, share: f64) {
        self.0.lock().unwrap().resident = (LIMIT as f64 * share) as u64;
    }

    fn set_disk(&self, path: &str, share: f64) {
        self.0.lock().unwrap().disks.insert(path.into(), share);
    }
}

impl ResourceSource for Readings {
    fn cpu_time(&self) -> Option<Duration> {
        Some(self.0.lock().unwrap().cpu_time)
    }

    fn cpus(&self) -> Option<f64> {
        Some(2.0)
    }

    fn resident_memory(&self) -> Option<u64> {
        Some(self.0.lock().unwrap().resident)
    }

    fn memory_limit(&self) -> Option<u64> {
        Some(LIMIT)
    }

    fn disk_usage(&self, path: &Path) -> Option<f64> {
        self.0.lock().unwrap().disks.get(path).copied()
    }
}

fn alerts(readings: &Readings, recorder: &MetricsRecorder) -> Alerts {
    Alerts::builder(recorder.clone())
        .rules(AlertRule::defaults("shop"))
        .rule(AlertRule::disk_full("DataDiskFull", "/data"))
        .resource_source(readings.clone())
        .build()
}

/// The active alerts as (id, state).
fn active(alerts: &Alerts) -> Vec<(String, AlertState)> {
    alerts
        .active()
        .into_iter()
        .map(|a| (a.id, a.state))
        .collect()
}

fn gauge_line<'a>(exposition: &'a str, series: &str) -> Option<&'a str> {
    exposition.lines().find(|line| line.starts_with(series))
}

#[tokio::test(start_paused = true)]
async fn cpu_usage_is_the_share_of_the_cpus_used_between_evaluations() {
    let recorder = MetricsRecorder::new();
    let readings = Readings::default();
    readings.set_memory_share(0.1);
    let alerts = alerts(&readings, &recorder);
    let step = Duration::from_secs(30);

    // The first evaluation has nothing to compare with.
    alerts.evaluate().await;
    assert!(alerts.active().is_empty());

    // 54 CPU seconds in 30 s on 2 CPUs: 90%.
    readings.use_cpu(54);
    tokio::time::advance(step).await;
    alerts.evaluate().await;
    assert_eq!(
        active(&alerts),
        [("HighCpuUsage".to_owned(), AlertState::Pending)]
    );
    assert_eq!(alerts.active()[0].value, 0.9);
    assert_eq!(
        gauge_line(&recorder.render(), "streamgate_process_cpu_usage_ratio "),
        Some("streamgate_process_cpu_usage_ratio 0.9")
    );

    // Held for five minutes: firing, a warning.
    for _ in 0..10 {
        readings.use_cpu(54);
        tokio::time::advance(step).await;
        alerts.evaluate().await;
    }
    assert_eq!(
        active(&alerts),
        [("HighCpuUsage".to_owned(), AlertState::Firing)]
    );
    assert_eq!(alerts.health(), Health::Degraded);

    // 30 CPU seconds in 30 s: 50%, resolved.
    readings.use_cpu(30);
    tokio::time::advance(step).await;
    let changed = alerts.evaluate().await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].state, AlertState::Resolved);
    assert_eq!(alerts.health(), Health::Healthy);
}

#[tokio::test(start_paused = true)]
async fn memory_near_the_limit_warns_then_is_critical() {
    let recorder = MetricsRecorder::new();
    let readings = Readings::default();
    let alerts = alerts(&readings, &recorder);
    let minute = Duration::from_secs(60);

    readings.set_memory_share(0.85);
    alerts.evaluate().await;
    assert_eq!(
        active(&alerts),
        [("HighMemoryUsage".to_owned(), AlertState::Pending)]
    );
    for _ in 0..5 {
        tokio::time::advance(minute).await;
        alerts.evaluate().await;
    }
    assert_eq!(
        active(&alerts),
        [("HighMemoryUsage".to_owned(), AlertState::Firing)]
    );

    // 97%: out of memory within a minute, critical; the warning stays.
    readings.set_memory_share(0.97);
    alerts.evaluate().await;
    tokio::time::advance(minute).await;
    alerts.evaluate().await;
    let critical = alerts.by_level(Severity::Critical);
    assert_eq!(critical.len(), 1);
    assert_eq!(critical[0].id, "OutOfMemory");
    assert_eq!(critical[0].state, AlertState::Firing);
    assert_eq!(
        critical[0].summary,
        "shop uses more than 95% of its memory limit"
    );
    assert_eq!(alerts.health(), Health::Unhealthy);
    let exposition = recorder.render();
    let line = gauge_line(&exposition, "streamgate_process_memory_usage_ratio ").unwrap();
    let share: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((share - 0.97).abs() < 1e-6, "{line}");
}

#[tokio::test(start_paused = true)]
async fn a_full_disk_is_critical() {
    let recorder = MetricsRecorder::new();
    let readings = Readings::default();
    readings.set_memory_share(0.1);
    let alerts = alerts(&readings, &recorder);

    readings.set_disk("/data", 0.90);
    alerts.evaluate().await;
    assert!(alerts.active().is_empty());

    readings.set_disk("/data", 0.97);
    alerts.evaluate().await;
    tokio::time::advance(Duration::from_secs(60)).await;
    let fired = alerts.evaluate().await;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].id, "DataDiskFull");
    assert_eq!(fired[0].severity, Severity::Critical);
    assert_eq!(
        fired[0].summary,
        "the disk holding /data is more than 95% full"
    );
    assert_eq!(
        gauge_line(
            &recorder.render(),
            "streamgate_disk_usage_ratio{path=\"/data\"}"
        ),
        Some("streamgate_disk_usage_ratio{path=\"/data\"} 0.97")
    );
}

#[tokio::test(start_paused = true)]
async fn the_operating_systems_readings_reach_the_rules() {
    let recorder = MetricsRecorder::new();
    let here = std::env::current_dir().unwrap();
    let alerts = Alerts::builder(recorder.clone())
        .rules(AlertRule::defaults("shop"))
        .rule(
            // Any disk is more than 0% used: this one fires, with the real share.
            AlertRule::new("DiskUsed", Signal::DiskUsage { path: here.clone() }).above(0.0),
        )
        .resource_source(SystemResources)
        .build();
    alerts.evaluate().await;
    tokio::time::advance(Duration::from_secs(30)).await;
    alerts.evaluate().await;

    let fired = alerts.firing();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].id, "DiskUsed");
    assert!(fired[0].value > 0.0 && fired[0].value <= 1.0);

    // Paused time moved 30 s while the test used milliseconds of CPU: far below 80%.
    let exposition = recorder.render();
    let cpu: f64 = gauge_line(&exposition, "streamgate_process_cpu_usage_ratio ")
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .expect("the CPU gauge is exported");
    assert!((0.0..0.8).contains(&cpu), "{cpu}");
    #[cfg(target_os = "linux")]
    {
        let memory: f64 = gauge_line(&exposition, "streamgate_process_memory_usage_ratio ")
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
            .expect("the memory gauge is exported");
        assert!(memory > 0.0 && memory < 0.8, "{memory}");
    }
}

#[tokio::test(start_paused = true)]
async fn without_resource_rules_no_resource_gauge_is_exported() {
    let recorder = MetricsRecorder::new();
    let readings = Readings::default();
    let alerts = Alerts::builder(recorder.clone())
        .rule(
            AlertRule::new(
                "Errors",
                Signal::ErrorRate {
                    service: "shop".into(),
                },
            )
            .above(0.1),
        )
        .resource_source(readings.clone())
        .build();
    alerts.evaluate().await;
    tokio::time::advance(Duration::from_secs(30)).await;
    alerts.evaluate().await;
    let exposition = recorder.render();
    for name in [
        "streamgate_process_cpu_usage_ratio",
        "streamgate_process_memory_usage_ratio",
        "streamgate_disk_usage_ratio",
    ] {
        assert!(!exposition.contains(name), "{name} in\n{exposition}");
    }
}
