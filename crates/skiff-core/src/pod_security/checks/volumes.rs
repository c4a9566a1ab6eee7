//! Checks on a pod's volume types: baseline forbids hostPath volumes; restricted allows only
//! the types that cannot reach the node's or the network's storage directly.

use super::{PodView, Violation, join_quote, pluralize};
use k8s_openapi::api::core::v1::Volume;
use std::collections::BTreeSet;

/// No hostPath volumes.
pub(super) fn host_path(pod: &PodView<'_>) -> Option<Violation> {
    let bad: Vec<&str> =
        (pod.spec.volumes.iter().flatten()).filter(|v| v.host_path.is_some()).map(|v| v.name.as_str()).collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "hostPath volumes",
        detail: format!("{} {}", pluralize("volume", "volumes", bad.len()), join_quote(&bad)),
    })
}

/// Only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and
/// secret volumes.
pub(super) fn restricted(pod: &PodView<'_>) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for v in pod.spec.volumes.iter().flatten() {
        if let Some(kind) = restricted_type(v) {
            bad.push(v.name.as_str());
            types.insert(kind);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<&str> = types.into_iter().collect();
    Some(Violation {
        reason: "restricted volume types",
        detail: format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("restricted volume type", "restricted volume types", types.len()),
            join_quote(&types)
        ),
    })
}

/// The type of a volume restricted pods may not use, as upstream names it (`unknown` for a type
/// it does not list, such as `image`); None for the allowed ones.
fn restricted_type(v: &Volume) -> Option<&'static str> {
    let allowed = v.config_map.is_some()
        || v.csi.is_some()
        || v.downward_api.is_some()
        || v.empty_dir.is_some()
        || v.ephemeral.is_some()
        || v.persistent_volume_claim.is_some()
        || v.projected.is_some()
        || v.secret.is_some();
    if allowed {
        return None;
    }
    let named = [
        (v.host_path.is_some(), "hostPath"),
        (v.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (v.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
        (v.git_repo.is_some(), "gitRepo"),
        (v.nfs.is_some(), "nfs"),
        (v.iscsi.is_some(), "iscsi"),
        (v.glusterfs.is_some(), "glusterfs"),
        (v.rbd.is_some(), "rbd"),
        (v.flex_volume.is_some(), "flexVolume"),
        (v.cinder.is_some(), "cinder"),
        (v.cephfs.is_some(), "cephfs"),
        (v.flocker.is_some(), "flocker"),
        (v.fc.is_some(), "fc"),
        (v.azure_file.is_some(), "azureFile"),
        (v.vsphere_volume.is_some(), "vsphereVolume"),
        (v.quobyte.is_some(), "quobyte"),
        (v.azure_disk.is_some(), "azureDisk"),
        (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (v.portworx_volume.is_some(), "portworxVolume"),
        (v.scale_io.is_some(), "scaleIO"),
        (v.storageos.is_some(), "storageos"),
    ];
    Some(named.into_iter().find(|(set, _)| *set).map_or("unknown", |(_, name)| name))
}
