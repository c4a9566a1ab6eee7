//! `persistentVolumeClaim` volumes: the directory on this node that a claim's bound volume is
//! (pure), and the link that puts it at the volume's place in the pod directory, so containers
//! bind it as any other volume. A link, never a mount: tearing the pod directory down removes
//! the link and can never reach the data.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Volume};
use std::path::{Path, PathBuf};

/// The claims the pod's volumes name.
pub fn named(volumes: &[Volume]) -> Vec<(&str, &str)> {
    volumes
        .iter()
        .filter_map(|v| Some((v.name.as_str(), v.persistent_volume_claim.as_ref()?.claim_name.as_str())))
        .collect()
}

/// Why a claim's volume cannot be mounted: the text after `MountVolume.SetUp failed for
/// volume "NAME" : ` in the kubelet's `FailedMount` event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("persistentvolumeclaim \"{0}\" not found")]
    ClaimNotFound(String),
    #[error("PVC {namespace}/{name} has non-bound phase ({phase:?}) or empty pvc.Spec.VolumeName ({volume:?})")]
    NotBound { namespace: String, name: String, phase: String, volume: String },
    #[error("persistentvolume \"{0}\" not found")]
    VolumeNotFound(String),
    #[error("pvc.Spec.VolumeName {volume} and pv.Spec.ClaimRef {namespace}/{name} (uid {uid}) mismatch")]
    Mismatch { volume: String, namespace: String, name: String, uid: String },
    #[error("persistentvolume \"{0}\": only hostPath and local volumes can be mounted on this node")]
    Unsupported(String),
    #[error("creating {}: {}", .0.display(), .1)]
    Create(PathBuf, String),
    /// A provisioned directory removed behind the node's back: said, never remade empty.
    #[error("hostPath type check failed: {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
}

/// Where claim `namespace/name`'s data is on the node, from the claim and its volume as the API
/// server has them (None: not found); a `DirectoryOrCreate` hostPath volume's directory is made
/// here, as a hostPath volume's is.
pub fn host_path(
    namespace: &str,
    name: &str,
    claim: Option<&PersistentVolumeClaim>,
    volume: Option<&PersistentVolume>,
) -> Result<PathBuf, ClaimError> {
    let Some(claim) = claim else {
        return Err(ClaimError::ClaimNotFound(name.into()));
    };
    let volume_name = claim.spec.as_ref().and_then(|s| s.volume_name.clone()).unwrap_or_default();
    let phase = claim.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_default();
    if phase != "Bound" || volume_name.is_empty() {
        return Err(ClaimError::NotBound {
            namespace: namespace.into(),
            name: name.into(),
            phase,
            volume: volume_name,
        });
    }
    let Some(volume) = volume else {
        return Err(ClaimError::VolumeNotFound(volume_name));
    };
    let spec = volume.spec.clone().unwrap_or_default();
    let claim_ref = spec.claim_ref.clone().unwrap_or_default();
    if claim_ref.uid.is_some() && claim_ref.uid != claim.metadata.uid {
        return Err(ClaimError::Mismatch {
            volume: volume_name,
            namespace: claim_ref.namespace.unwrap_or_default(),
            name: claim_ref.name.unwrap_or_default(),
            uid: claim_ref.uid.unwrap_or_default(),
        });
    }
    let path = match (&spec.host_path, &spec.local) {
        (Some(h), _) => PathBuf::from(&h.path),
        (None, Some(l)) => PathBuf::from(&l.path),
        (None, None) => return Err(ClaimError::Unsupported(volume_name)),
    };
    let create = spec.host_path.as_ref().and_then(|h| h.type_.as_deref()) == Some("DirectoryOrCreate");
    if create && !path.exists() {
        std::fs::create_dir_all(&path).map_err(|e| ClaimError::Create(path.clone(), e.to_string()))?;
    }
    if !path.is_dir() {
        return Err(ClaimError::NotADirectory(path));
    }
    Ok(path)
}

/// Make `link` (the volume's place in the pod directory) point at `target`, replacing a link
/// to anything else. Only a link is ever replaced.
pub fn link(link: &Path, target: &Path) -> std::io::Result<()> {
    if let Ok(current) = std::fs::read_link(link) {
        if current == target {
            return Ok(());
        }
        std::fs::remove_file(link)?;
    }
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::os::unix::fs::symlink(target, link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(phase: &str, volume: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({"metadata": {"name": "data", "namespace": "ns", "uid": "u1"},
            "spec": {"volumeName": volume}, "status": {"phase": phase}}))
        .expect("test fixture")
    }

    fn volume(path: &str, uid: &str) -> PersistentVolume {
        serde_json::from_value(json!({"metadata": {"name": "pv1"},
            "spec": {"hostPath": {"path": path, "type": "Directory"}, "claimRef": {"namespace": "ns", "name": "data", "uid": uid}}}))
        .expect("test fixture")
    }

    #[test]
    fn a_bound_claim_leads_to_its_volume_directory() {
        let dir = tempfile::tempdir().expect("test fixture");
        let path = dir.path().to_str().expect("test fixture");
        let found = host_path("ns", "data", Some(&claim("Bound", "pv1")), Some(&volume(path, "u1")));
        assert_eq!(found, Ok(dir.path().into()));
    }

    #[test]
    fn each_reason_a_claim_cannot_be_mounted_is_said() {
        let dir = tempfile::tempdir().expect("test fixture");
        let path = dir.path().to_str().expect("test fixture");
        let said = |r: Result<PathBuf, ClaimError>| r.map_err(|e| e.to_string());
        assert_eq!(said(host_path("ns", "data", None, None)), Err("persistentvolumeclaim \"data\" not found".into()));
        assert_eq!(
            said(host_path("ns", "data", Some(&claim("Pending", "")), None)),
            Err("PVC ns/data has non-bound phase (\"Pending\") or empty pvc.Spec.VolumeName (\"\")".into())
        );
        assert_eq!(
            said(host_path("ns", "data", Some(&claim("Bound", "pv1")), None)),
            Err("persistentvolume \"pv1\" not found".into())
        );
        let other = said(host_path("ns", "data", Some(&claim("Bound", "pv1")), Some(&volume(path, "u2"))));
        assert_eq!(other, Err("pvc.Spec.VolumeName pv1 and pv.Spec.ClaimRef ns/data (uid u2) mismatch".into()));
        let gone = host_path("ns", "data", Some(&claim("Bound", "pv1")), Some(&volume("/nonexistent/pvc-x", "u1")));
        assert_eq!(said(gone), Err("hostPath type check failed: /nonexistent/pvc-x is not a directory".into()));
    }

    #[test]
    fn the_link_points_at_the_volume_and_follows_it() {
        let dir = tempfile::tempdir().expect("test fixture");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).expect("test fixture");
        std::fs::create_dir_all(&b).expect("test fixture");
        let l = dir.path().join("pod/volumes/data");
        link(&l, &a).expect("test fixture");
        link(&l, &a).expect("test fixture");
        assert_eq!(std::fs::read_link(&l).expect("test fixture"), a);
        link(&l, &b).expect("test fixture");
        assert_eq!(std::fs::read_link(&l).expect("test fixture"), b);
        // A directory in the way is not a link: left alone, and the error says so.
        let d = dir.path().join("pod/volumes/real");
        std::fs::create_dir_all(&d).expect("test fixture");
        assert!(link(&d, &a).is_err());
    }
}
