//! The process's resources for the seed's resource alerts (CPU, memory, disk), read from the
//! operating system at each evaluation and exported as gauges.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::Duration,
};

use metrics::Gauge;
use streamgate_metrics::MetricsRecorder;
use tokio::time::Instant;

/// `streamgate_process_cpu_usage_ratio`.
pub const CPU_USAGE: &str = "streamgate_process_cpu_usage_ratio";
/// `streamgate_process_memory_usage_ratio`.
pub const MEMORY_USAGE: &str = "streamgate_process_memory_usage_ratio";
/// `streamgate_disk_usage_ratio{path}`.
pub const DISK_USAGE: &str = "streamgate_disk_usage_ratio";

/// Where the resource alerts' readings come from: [`SystemResources`] reads the operating
/// system; tests and other platforms can give their own.
///
/// Every method answers `None` when the reading is not available here; a rule without data does
/// not fire.
pub trait ResourceSource: fmt::Debug + Send + Sync + 'static {
    /// The CPU time the process has used so far (user and system, every thread).
    fn cpu_time(&self) -> Option<Duration>;
    /// How many CPUs the process may use (its affinity and its cgroup's quota).
    fn cpus(&self) -> Option<f64>;
    /// The process's resident memory, in bytes.
    fn resident_memory(&self) -> Option<u64>;
    /// The most memory the process may have, in bytes: its cgroup's limit when it has one,
    /// else the machine's memory.
    fn memory_limit(&self) -> Option<u64>;
    /// The used share (0 to 1) of the filesystem holding `path`, as `df` counts it: space
    /// reserved for the superuser is not available.
    fn disk_usage(&self, path: &Path) -> Option<f64>;
}

/// The operating system's readings: CPU time from `CLOCK_PROCESS_CPUTIME_ID`, the CPU count
/// from [`std::thread::available_parallelism`], memory from `/proc` and the cgroup files
/// (Linux), disk space from `statvfs` (Unix).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResources;

impl ResourceSource for SystemResources {
    fn cpu_time(&self) -> Option<Duration> {
        #[cfg(unix)]
        {
            let time =
                nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID).ok()?;
            let seconds = u64::try_from(time.tv_sec()).ok()?;
            let nanos = u32::try_from(time.tv_nsec()).ok()?;
            Some(Duration::new(seconds, nanos))
        }
        #[cfg(not(unix))]
        None
    }

    fn cpus(&self) -> Option<f64> {
        std::thread::available_parallelism()
            .ok()
            .map(|n| n.get() as f64)
    }

    fn resident_memory(&self) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        resident_from_status(&status)
    }

    fn memory_limit(&self) -> Option<u64> {
        let machine = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| machine_memory(&text));
        let cgroup = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|text| cgroup_limit(&text, |path| std::fs::read_to_string(path).ok()));
        match (cgroup, machine) {
            (Some(cgroup), Some(machine)) => Some(cgroup.min(machine)),
            (limit, None) | (None, limit) => limit,
        }
    }

    fn disk_usage(&self, path: &Path) -> Option<f64> {
        // `fsblkcnt_t` is 32 bits on some Unix targets and 64 on Linux.
        #[cfg(unix)]
        #[allow(clippy::useless_conversion)]
        {
            let stats = nix::sys::statvfs::statvfs(path).ok()?;
            used_share(
                u64::from(stats.blocks()),
                u64::from(stats.blocks_free()),
                u64::from(stats.blocks_available()),
            )
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
    }
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_from_status(status: &str) -> Option<u64> {
    kib_field(status, "VmRSS:")
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn machine_memory(meminfo: &str) -> Option<u64> {
    kib_field(meminfo, "MemTotal:")
}

/// A `Name:   1234 kB` line's value in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The memory limit of the process's cgroup, from `/proc/self/cgroup`'s text; `read` reads a
/// file under `/sys/fs/cgroup`. cgroup v2's `memory.max` (`max`: no limit), else v1's
/// `memory.limit_in_bytes`. Inside a container the cgroup's path may not be mounted as named:
/// the root of the mount is tried after it.
fn cgroup_limit(cgroups: &str, read: impl Fn(&Path) -> Option<String>) -> Option<u64> {
    let root = Path::new("/sys/fs/cgroup");
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        let candidates: [PathBuf; 2] = if controllers.is_empty() {
            [
                root.join(relative).join("memory.max"),
                root.join("memory.max"),
            ]
        } else if controllers.split(',').any(|c| c == "memory") {
            [
                root.join("memory")
                    .join(relative)
                    .join("memory.limit_in_bytes"),
                root.join("memory").join("memory.limit_in_bytes"),
            ]
        } else {
            continue;
        };
        if let Some(text) = candidates.iter().find_map(|file| read(file)) {
            // `max` (v2), or v1's "no limit" (a number near 2^63), means none.
            return text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&limit| limit < 1 << 62);
        }
    }
    None
}

/// `(used) / (used + available)`, as `df` computes its `Use%`.
fn used_share(blocks: u64, free: u64, available: u64) -> Option<f64> {
    let used = blocks.saturating_sub(free);
    let usable = used.saturating_add(available);
    (usable > 0).then(|| used as f64 / usable as f64)
}

/// The resource readings of one [`Alerts`](crate::Alerts): the source, the last CPU mark (the
/// usage is the CPU time used between two evaluations) and the gauges they are exported as,
/// each registered at its first reading (an alerts without resource rules exports none, and
/// none shows a 0 it never read).
#[derive(Debug)]
pub(crate) struct Resources {
    source: Arc<dyn ResourceSource>,
    cpu: Mutex<Option<CpuMark>>,
    recorder: MetricsRecorder,
    cpu_gauge: OnceLock<Gauge>,
    memory_gauge: OnceLock<Gauge>,
    disk_gauges: Mutex<HashMap<PathBuf, Gauge>>,
    /// Paths whose disk could not be read, each logged once.
    unreadable_disks: Mutex<HashSet<PathBuf>>,
}

#[derive(Debug, Clone, Copy)]
struct CpuMark {
    at: Instant,
    cpu_time: Duration,
    /// The usage between this mark and the one before it.
    usage: Option<f64>,
}

impl Resources {
    pub(crate) fn new(source: Arc<dyn ResourceSource>, recorder: &MetricsRecorder) -> Self {
        use metrics::Recorder as _;
        for (name, help) in [
            (
                CPU_USAGE,
                "Share of the CPUs available to the process that it used between the last two alert evaluations.",
            ),
            (
                MEMORY_USAGE,
                "Resident memory of the process as a share of its memory limit (its cgroup's, else the machine's).",
            ),
            (
                DISK_USAGE,
                "Used share of the filesystem holding path, as df counts it.",
            ),
        ] {
            recorder.describe_gauge(name.into(), None, help.into());
        }
        Self {
            source,
            cpu: Mutex::new(None),
            cpu_gauge: OnceLock::new(),
            memory_gauge: OnceLock::new(),
            recorder: recorder.clone(),
            disk_gauges: Mutex::new(HashMap::new()),
            unreadable_disks: Mutex::new(HashSet::new()),
        }
    }

    /// The share of the available CPUs the process used since the previous call at an earlier
    /// instant; `None` at the first call. A second call at the same instant (two rules in one
    /// evaluation) answers what the first did.
    pub(crate) fn cpu_usage(&self, now: Instant) -> Option<f64> {
        let mut mark = self.cpu.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = *mark
            && now <= last.at
        {
            return last.usage;
        }
        let cpu_time = self.source.cpu_time()?;
        let usage = mark.and_then(|last| {
            let wall = now.duration_since(last.at).as_secs_f64();
            let used = cpu_time.saturating_sub(last.cpu_time).as_secs_f64();
            let cpus = self.source.cpus()?.max(1.0);
            Some((used / (wall * cpus)).clamp(0.0, 1.0))
        });
        *mark = Some(CpuMark {
            at: now,
            cpu_time,
            usage,
        });
        if let Some(usage) = usage {
            self.cpu_gauge
                .get_or_init(|| self.recorder.gauge(CPU_USAGE, &[]))
                .set(usage);
        }
        usage
    }

    /// Resident memory as a share of the memory limit.
    pub(crate) fn memory_usage(&self) -> Option<f64> {
        let resident = self.source.resident_memory()?;
        let limit = self.source.memory_limit().filter(|&limit| limit > 0)?;
        let usage = resident as f64 / limit as f64;
        self.memory_gauge
            .get_or_init(|| self.recorder.gauge(MEMORY_USAGE, &[]))
            .set(usage);
        Some(usage)
    }

    /// The used share of the filesystem holding `path`.
    /// The used share of the filesystem holding `path`. A path that cannot be read (a typo, a
    /// volume not mounted) gives no data, so its rule cannot fire: that is logged, once per path.
    pub(crate) fn disk_usage(&self, path: &Path) -> Option<f64> {
        let usage = self.source.disk_usage(path);
        let mut gauges = self
            .disk_gauges
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(usage) = usage else {
            if !gauges.contains_key(path)
                && self
                    .unreadable_disks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(path.to_owned())
            {
                tracing::warn!(
                    path = %path.display(),
                    "cannot read the disk space of this path: alert rules on its disk usage have no data and cannot fire"
                );
            }
            return None;
        };
        gauges
            .entry(path.to_owned())
            .or_insert_with(|| {
                self.recorder
                    .gauge(DISK_USAGE, &[("path", &path.to_string_lossy())])
            })
            .set(usage);
        Some(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resident_and_machine_memory() {
        let status = "Name:\tserver\nVmPeak:\t  900 kB\nVmRSS:\t   2048 kB\nThreads:\t4\n";
        assert_eq!(resident_from_status(status), Some(2048 * 1024));
        let meminfo = "MemTotal:       24576000 kB\nMemFree:        1000 kB\n";
        assert_eq!(machine_memory(meminfo), Some(24_576_000 * 1024));
        assert_eq!(resident_from_status("Name: x\n"), None);
    }

    #[test]
    fn finds_the_cgroup_memory_limit() {
        let files = |answers: &'static [(&'static str, &'static str)]| {
            move |path: &Path| {
                answers
                    .iter()
                    .find(|(file, _)| Path::new(file) == path)
                    .map(|(_, text)| (*text).to_owned())
            }
        };
        // cgroup v2, the process's own group.
        let v2 = files(&[(
            "/sys/fs/cgroup/system.slice/app.service/memory.max",
            "536870912\n",
        )]);
        assert_eq!(
            cgroup_limit("0::/system.slice/app.service\n", v2),
            Some(536_870_912)
        );
        // v2 in a container: the group's path is not mounted, the root is.
        let root = files(&[("/sys/fs/cgroup/memory.max", "1073741824\n")]);
        assert_eq!(
            cgroup_limit("0::/kubepods/pod1/abc\n", root),
            Some(1_073_741_824)
        );
        // No limit.
        let unlimited = files(&[("/sys/fs/cgroup/memory.max", "max\n")]);
        assert_eq!(cgroup_limit("0::/\n", unlimited), None);
        // cgroup v1, and its "no limit" value.
        let v1 = files(&[(
            "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
            "268435456\n",
        )]);
        let v1_text = "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n";
        assert_eq!(cgroup_limit(v1_text, v1), Some(268_435_456));
        let v1_none = files(&[(
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "9223372036854771712\n",
        )]);
        assert_eq!(cgroup_limit("4:memory:/\n", v1_none), None);
        assert_eq!(cgroup_limit("", files(&[])), None);
    }

    #[test]
    fn disk_usage_counts_as_df_does() {
        // 100 blocks, 30 free, of which 25 available to users: 70 used of 95 usable.
        let share = used_share(100, 30, 25).unwrap();
        assert!((share - 70.0 / 95.0).abs() < 1e-12, "{share}");
        assert_eq!(used_share(0, 0, 0), None);
    }

    /// Log lines written by the `fmt` subscriber under test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_unreadable_disk_gives_no_data_and_is_logged_once() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let recorder = MetricsRecorder::new();
        tracing::subscriber::with_default(subscriber, || {
            let resources = Resources::new(Arc::new(SystemResources), &recorder);
            for _ in 0..3 {
                assert_eq!(resources.disk_usage(Path::new("/no/such/volume")), None);
            }
        });
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            logs.matches("cannot read the disk space").count(),
            1,
            "{logs}"
        );
        assert!(logs.contains("/no/such/volume"), "{logs}");
        assert!(!recorder.render().contains(DISK_USAGE));
    }

    #[test]
    fn the_system_answers_here() {
        let system = SystemResources;
        assert!(system.cpus().is_some_and(|cpus| cpus >= 1.0));
        #[cfg(unix)]
        {
            let before = system.cpu_time().unwrap();
            let mut x = 0u64;
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_millis(30) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            assert!(system.cpu_time().unwrap() > before);
            let share = system.disk_usage(Path::new(".")).unwrap();
            assert!((0.0..=1.0).contains(&share), "{share}");
        }
        #[cfg(target_os = "linux")]
        {
            let resident = system.resident_memory().unwrap();
            let limit = system.memory_limit().unwrap();
            assert!(resident > 0 && resident < limit, "{resident} of {limit}");
        }
    }
}
