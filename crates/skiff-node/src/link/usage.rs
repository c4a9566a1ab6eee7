//! This node's resource usage (`metrics.k8s.io`, `kubectl top`), from the cgroups of its pods'
//! containers (v1 here, v2 elsewhere) and from /proc: CPU counters sampled twice and the rate
//! between them; memory as the working set (usage less inactive file pages), as the kubelet's
//! summary API computes it. The previous sample is kept, so only the first request waits for a
//! second one; nothing runs in the background.

use skiff_nodeapi::{ContainerUsage, NodeUsage, PodUsage, Usage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shortest window a rate is measured over, and the longest an old sample is used for.
const MIN_WINDOW: Duration = Duration::from_secs(1);
const MAX_WINDOW: Duration = Duration::from_secs(60);

/// CPU counters at one moment (nanoseconds of CPU time), and memory then.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    node_cpu: u64,
    node_memory: u64,
    /// By (pod UID, container): CPU time and working set.
    containers: BTreeMap<(String, String), (u64, u64)>,
}

/// Samples this node's usage when asked; keeps the latest sample for the next request.
#[derive(Debug, Default)]
pub struct Sampler {
    last: Mutex<Option<Sample>>,
}

impl Sampler {
    /// The usage of the node and of the pods under `pods_root` now.
    pub async fn usage(&self, pods_root: &Path) -> NodeUsage {
        let kept = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let previous = match kept.filter(|s| (MIN_WINDOW..=MAX_WINDOW).contains(&s.at.elapsed())) {
            Some(s) => s,
            None => {
                let first = sample(pods_root);
                tokio::time::sleep(MIN_WINDOW).await;
                first
            }
        };
        let now = sample(pods_root);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(now.clone());
        rates(&previous, &now)
    }
}

/// The usage between two samples: CPU rates, memory as of the later one.
fn rates(before: &Sample, now: &Sample) -> NodeUsage {
    let seconds = now.at.duration_since(before.at).as_secs_f64().max(1e-3);
    let rate = |a: u64, b: u64| (b.saturating_sub(a) as f64 / seconds) as u64;
    let mut pods: BTreeMap<&str, Vec<ContainerUsage>> = BTreeMap::new();
    for ((uid, name), (cpu, memory)) in &now.containers {
        // A container new since the first sample has no rate yet: it shows once it has one.
        let Some((cpu_before, _)) = before.containers.get(&(uid.clone(), name.clone())) else { continue };
        let usage = Usage { cpu_nanocores: rate(*cpu_before, *cpu), memory_bytes: *memory };
        pods.entry(uid).or_default().push(ContainerUsage { name: name.clone(), usage });
    }
    NodeUsage {
        timestamp: jiff::Timestamp::now(),
        window_seconds: seconds,
        node: Usage { cpu_nanocores: rate(before.node_cpu, now.node_cpu), memory_bytes: now.node_memory },
        pods: pods.into_iter().map(|(uid, containers)| PodUsage { uid: uid.to_string(), containers }).collect(),
    }
}

/// Where the cgroups are: v1 controllers (`cpuacct`, `memory`) or the v2 unified root.
enum Hierarchy {
    V1,
    V2,
}

impl Hierarchy {
    fn detect() -> Hierarchy {
        if Path::new("/sys/fs/cgroup/cpuacct/cpuacct.usage").exists() { Hierarchy::V1 } else { Hierarchy::V2 }
    }

    /// The directory holding the pods' cgroups, for CPU.
    fn pods(&self) -> PathBuf {
        match self {
            Hierarchy::V1 => PathBuf::from("/sys/fs/cgroup/cpuacct/skiff"),
            Hierarchy::V2 => PathBuf::from("/sys/fs/cgroup/skiff"),
        }
    }

    /// A container's CPU time (ns) and working set (bytes), from its cgroup `rel` (`podUID/name`).
    fn container(&self, rel: &Path) -> Option<(u64, u64)> {
        let read = |p: PathBuf| std::fs::read_to_string(p).ok();
        let stat = |text: &str, key: &str| {
            text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse::<u64>().ok())
        };
        match self {
            Hierarchy::V1 => {
                let cpu = read(self.pods().join(rel).join("cpuacct.usage"))?.trim().parse().ok()?;
                let memory = Path::new("/sys/fs/cgroup/memory/skiff").join(rel);
                let used: u64 = read(memory.join("memory.usage_in_bytes"))?.trim().parse().ok()?;
                let inactive = read(memory.join("memory.stat")).and_then(|s| stat(&s, "total_inactive_file"));
                Some((cpu, used.saturating_sub(inactive.unwrap_or(0))))
            }
            Hierarchy::V2 => {
                let dir = self.pods().join(rel);
                let cpu = stat(&read(dir.join("cpu.stat"))?, "usage_usec")? * 1000;
                let used: u64 = read(dir.join("memory.current"))?.trim().parse().ok()?;
                let inactive = read(dir.join("memory.stat")).and_then(|s| stat(&s, "inactive_file"));
                Some((cpu, used.saturating_sub(inactive.unwrap_or(0))))
            }
        }
    }
}

/// The node's and its containers' counters now. Only pods with a directory under `pods_root`
/// count: another agent on the same machine (tests run several) has cgroups beside ours.
fn sample(pods_root: &Path) -> Sample {
    let hierarchy = Hierarchy::detect();
    let mut containers = BTreeMap::new();
    for pod in std::fs::read_dir(pods_root).into_iter().flatten().flatten() {
        let uid = pod.file_name().to_string_lossy().into_owned();
        let cgroup = format!("pod{uid}");
        for c in std::fs::read_dir(hierarchy.pods().join(&cgroup)).into_iter().flatten().flatten() {
            if !c.path().is_dir() {
                continue;
            }
            let name = c.file_name().to_string_lossy().into_owned();
            if let Some(counters) = hierarchy.container(&Path::new(&cgroup).join(&name)) {
                containers.insert((uid.clone(), name), counters);
            }
        }
    }
    let (node_cpu, node_memory) = machine();
    Sample { at: Instant::now(), node_cpu, node_memory, containers }
}

/// The machine's busy CPU time (ns, from /proc/stat) and memory in use (MemTotal less
/// MemAvailable).
fn machine() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("cpu "))
        .map(|l| l.split_whitespace().filter_map(|v| v.parse().ok()).collect())
        .unwrap_or_default();
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    let busy: u64 = ticks.iter().enumerate().filter(|(i, _)| !matches!(i, 3 | 4)).take(6).map(|(_, v)| v).sum();
    let per_tick = 1_000_000_000
        / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().unwrap_or(100).max(1) as u64;
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |key: &str| {
        meminfo.lines().find_map(|l| l.strip_prefix(key)?.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
    };
    let used = kib("MemTotal:").unwrap_or(0).saturating_sub(kib("MemAvailable:").unwrap_or(0)) * 1024;
    (busy * per_tick, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, secs: u64, node_cpu: u64, containers: &[(&str, u64, u64)]) -> Sample {
        Sample {
            at: start + Duration::from_secs(secs),
            node_cpu,
            node_memory: 1 << 30,
            containers: containers.iter().map(|(n, c, m)| (("u1".to_string(), n.to_string()), (*c, *m))).collect(),
        }
    }

    #[test]
    fn rates_are_cpu_time_over_the_window_and_new_containers_wait_for_a_second_sample() {
        let t0 = Instant::now();
        let before = at(t0, 0, 0, &[("web", 1_000_000_000, 10)]);
        let now = at(t0, 2, 3_000_000_000, &[("web", 1_500_000_000, 20), ("new", 5, 30)]);
        let u = rates(&before, &now);
        assert_eq!(u.window_seconds, 2.0);
        assert_eq!(u.node, Usage { cpu_nanocores: 1_500_000_000, memory_bytes: 1 << 30 });
        assert_eq!(u.pods.len(), 1);
        assert_eq!(
            u.pods[0].containers,
            [ContainerUsage { name: "web".into(), usage: Usage { cpu_nanocores: 250_000_000, memory_bytes: 20 } }]
        );
    }

    #[test]
    fn the_machine_has_busy_time_and_memory() {
        let (cpu, memory) = machine();
        assert!(cpu > 0 && memory > 0, "{cpu} {memory}");
    }
}
