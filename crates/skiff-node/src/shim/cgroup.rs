//! The cgroups of a pod's containers, in every hierarchy (v1 and v2): their paths, whether the
//! OOM killer acted in one, and their removal once empty. Used by the shim (per attempt), the
//! build-step helper and the agent (per pod); no libcontainer.

use std::path::{Path, PathBuf};

/// Whether the kernel's OOM killer acted in the container's memory cgroup (v1 or v2).
pub fn oom_killed(cgroup: &str) -> bool {
    let rel = cgroup.trim_start_matches('/');
    let candidates: [PathBuf; 2] = [
        Path::new("/sys/fs/cgroup/memory").join(rel).join("memory.oom_control"),
        Path::new("/sys/fs/cgroup").join(rel).join("memory.events"),
    ];
    candidates.iter().any(|p| {
        std::fs::read_to_string(p).is_ok_and(|text| {
            text.lines()
                .any(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse::<u64>().ok()).unwrap_or(0) > 0)
        })
    })
}

/// The cgroup of one container of a pod (relative to each hierarchy's root).
pub fn cgroup_path(pod_uid: &str, container: &str) -> String {
    format!("/skiff/pod{pod_uid}/{container}")
}

/// Remove the pod's (empty, by now) cgroups in every hierarchy, v1 and v2.
pub fn remove_cgroups(pod_uid: &str) {
    remove_cgroup_tree(&format!("skiff/pod{pod_uid}"));
}

/// Remove the (empty) cgroup `rel` and its child cgroups in every hierarchy, v1 and v2.
pub fn remove_cgroup_tree(rel: &str) {
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(entries.flatten().map(|e| e.path()));
    }
    for root in roots {
        let pod = root.join(rel);
        if let Ok(children) = std::fs::read_dir(&pod) {
            for c in children.flatten().filter(|c| c.path().is_dir()) {
                let _ = std::fs::remove_dir(c.path());
            }
        }
        let _ = std::fs::remove_dir(&pod);
    }
}
