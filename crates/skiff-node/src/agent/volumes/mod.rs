//! The volumes whose files the agent writes itself (ConfigMap, Secret, downward API, projected):
//! which they are, what they read, where they live. [`payload`] makes their files (pure),
//! [`atomic`] writes them with the `..data` swap, [`tokens`] says which service-account tokens
//! projections need and when to ask again. Secret, projected and downward API volumes
//! (and `emptyDir.medium: Memory`) live on a tmpfs, so a Secret never touches the disk; the
//! worker mounts it through its `MemoryVolumes` seam. Containers bind each volume's directory
//! (`container::prepare`), read-only for these kinds. A `persistentVolumeClaim` volume is a link
//! there to its bound volume's directory ([`claims`]).

pub(crate) mod atomic;
pub(crate) mod claims;
pub(crate) mod payload;
pub(crate) mod tokens;

use crate::agent::env::Referenced;
use crate::pod_dir::PodDir;
use k8s_openapi::api::core::v1::{Pod, Volume};
use nix::mount::{MntFlags, MsFlags};
use std::path::{Path, PathBuf};

/// Where volume `name` of the pod lives on the node.
pub fn dir(pod: &PodDir, name: &str) -> PathBuf {
    pod.root().join("volumes").join(name)
}

/// Whether the agent writes `v`'s files (and containers mount it read-only).
pub fn is_written(v: &Volume) -> bool {
    v.config_map.is_some() || v.secret.is_some() || v.downward_api.is_some() || v.projected.is_some()
}

/// Whether `v` lives on a tmpfs, and at most how many bytes (`emptyDir.sizeLimit`).
pub fn in_memory(v: &Volume) -> Option<Option<u64>> {
    if v.secret.is_some() || v.projected.is_some() || v.downward_api.is_some() {
        return Some(None);
    }
    let empty = v.empty_dir.as_ref().filter(|e| e.medium.as_deref() == Some("Memory"))?;
    let limit = empty.size_limit.as_ref().and_then(|q| skiff_core::quantity::bytes(&q.0)).filter(|b| *b > 0);
    Some(limit.map(|b| b as u64))
}

/// The pod's volumes the agent writes.
pub fn written(pod: &Pod) -> Vec<&Volume> {
    pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()).filter(|v| is_written(v)).collect()
}

/// Mount a tmpfs of at most `size` bytes at `dir` (made if missing), unless one is there. Root.
pub fn mount_tmpfs(dir: &Path, size: Option<u64>) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if skiff_image::overlay::is_mount_point(dir) {
        return Ok(());
    }
    let options = match size {
        Some(bytes) => format!("mode=0755,size={bytes}"),
        None => "mode=0755".to_string(),
    };
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    nix::mount::mount(Some("tmpfs"), dir, Some("tmpfs"), flags, Some(options.as_str())).map_err(std::io::Error::from)
}

/// Unmount every tmpfs under the pod's volumes (lazily, as the root filesystems).
pub fn unmount_all(pod: &PodDir) {
    let prefix = format!("{}/", pod.root().join("volumes").display());
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return };
    for target in info.lines().filter_map(|l| l.split(' ').nth(4)).filter(|t| t.starts_with(&prefix)) {
        if let Err(e) = nix::mount::umount2(target, MntFlags::MNT_DETACH) {
            tracing::warn!(target, error = %e, "unmounting a memory-backed volume");
        }
    }
}

/// The Secrets and ConfigMaps the pod's volumes read, by name.
pub fn referenced(pod: &Pod) -> Referenced {
    let mut r = Referenced::default();
    for v in written(pod) {
        r.config_maps.extend(v.config_map.as_ref().map(|c| c.name.clone()));
        r.secrets.extend(v.secret.as_ref().and_then(|s| s.secret_name.clone()));
        for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            r.config_maps.extend(source.config_map.as_ref().map(|c| c.name.clone()));
            r.secrets.extend(source.secret.as_ref().map(|s| s.name.clone()));
        }
    }
    r.deduplicated()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_is_written_read_and_kept_in_memory() {
        let pod: Pod = serde_json::from_value(json!({"spec": {"containers": [], "volumes": [
            {"name": "a", "configMap": {"name": "cfg"}},
            {"name": "b", "secret": {"secretName": "db"}},
            {"name": "c", "projected": {"sources": [{"secret": {"name": "tls"}}, {"configMap": {"name": "cfg"}}]}},
            {"name": "d", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
            {"name": "e", "emptyDir": {}}
        ]}}))
        .expect("pod");
        let names: Vec<&str> = written(&pod).iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let r = referenced(&pod);
        assert_eq!((r.secrets, r.config_maps), (vec!["db".into(), "tls".into()], vec!["cfg".into()]));
        let volumes = pod.spec.and_then(|s| s.volumes).expect("volumes");
        let memory: Vec<Option<Option<u64>>> = volumes.iter().map(in_memory).collect();
        assert_eq!(memory, [None, Some(None), Some(None), Some(Some(1 << 20)), None]);
    }
}
