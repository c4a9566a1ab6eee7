//! What the node's local-path provisioner does, decided from the cluster's claims, volumes and
//! classes (pure): a directory and a PersistentVolume for each claim handed to it and placed on
//! this node, and the directory and volume gone once a `Delete` volume of its is released.

use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference, PersistentVolume,
    PersistentVolumeClaim, PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The provisioner's name, in StorageClasses' `provisioner`.
pub const PROVISIONER: &str = skiff_core::storage_class::PROVISIONER;
/// The claim annotations that hand a claim to a provisioner (the binder sets them).
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// The node a claim's volume is to be on (set by the scheduler, or the binder for `Immediate`).
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The annotation upstream's external provisioners put on the volumes they make.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// Nodes' hostname label, which a local volume's node affinity names.
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// What to do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Make `dir`, then the volume (its claimRef names the claim).
    Provision { dir: PathBuf, volume: Box<PersistentVolume>, claim: ObjectReference },
    /// The claim cannot be provisioned here: why, as a `ProvisioningFailed` event.
    Refuse { claim: ObjectReference, message: String },
    /// Remove `dir`, then delete volume `name`.
    Delete { dir: PathBuf, name: String },
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// A reference to `claim` (events, claimRef).
pub fn reference(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: claim.metadata.namespace.clone(),
        name: claim.metadata.name.clone(),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// The directory of a claim's volume under `root`: `pvc-UID_NAMESPACE_NAME`, as k3s's
/// local-path provisioner names it (an operator finds the claim from the directory).
pub fn directory(root: &Path, claim: &PersistentVolumeClaim) -> PathBuf {
    let m = &claim.metadata;
    root.join(format!(
        "pvc-{}_{}_{}",
        m.uid.as_deref().unwrap_or_default(),
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default()
    ))
}

/// Whether `volume` is one this node's provisioner made: by its annotation, on this node, in
/// a directory right under `root` (never anything else: its directory gets removed).
fn ours<'a>(volume: &'a PersistentVolume, node: &str, root: &Path) -> Option<&'a Path> {
    if annotation(&volume.metadata, PROVISIONED_BY) != Some(PROVISIONER) {
        return None;
    }
    let spec = volume.spec.as_ref()?;
    let on_node = spec.node_affinity.as_ref().and_then(|a| a.required.as_ref()).is_some_and(|r| {
        r.node_selector_terms
            .iter()
            .flat_map(|t| t.match_expressions.iter().flatten())
            .any(|e| e.key == HOSTNAME_LABEL && e.operator == "In" && e.values.iter().flatten().any(|v| v == node))
    });
    let path = Path::new(spec.host_path.as_ref()?.path.as_str());
    let under_root = path.parent() == Some(root)
        && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("pvc-") && !n.contains('/'));
    (on_node && under_root).then_some(path)
}

/// The access modes a directory on one node can honour (as k3s's local-path provisioner).
const MODES: &[&str] = &["ReadWriteOnce", "ReadWriteOncePod"];

/// Everything to do for `node` (its volumes under `root`), given the cluster's state now.
pub fn actions(
    node: &str,
    root: &Path,
    claims: &[&PersistentVolumeClaim],
    volumes: &[&PersistentVolume],
    classes: &[&StorageClass],
) -> Vec<Action> {
    let mut out = Vec::new();
    let claimed: Vec<&str> =
        volumes.iter().filter_map(|v| v.spec.as_ref()?.claim_ref.as_ref()?.uid.as_deref()).collect();
    for claim in claims {
        let m = &claim.metadata;
        let handed = annotation(m, STORAGE_PROVISIONER).or_else(|| annotation(m, BETA_STORAGE_PROVISIONER));
        let spec = claim.spec.clone().unwrap_or_default();
        let bound = spec.volume_name.as_deref().is_some_and(|n| !n.is_empty());
        if handed != Some(PROVISIONER)
            || annotation(m, SELECTED_NODE) != Some(node)
            || bound
            || m.deletion_timestamp.is_some()
            || m.uid.as_deref().is_none_or(|uid| claimed.contains(&uid))
        {
            continue;
        }
        let modes = spec.access_modes.clone().unwrap_or_default();
        if let Some(bad) = modes.iter().find(|m| !MODES.contains(&m.as_str())) {
            out.push(Action::Refuse {
                claim: reference(claim),
                message: format!(
                    "the local-path provisioner keeps a volume on one node: it supports the access modes \
                     ReadWriteOnce and ReadWriteOncePod, not {bad}"
                ),
            });
            continue;
        }
        let class_name = spec.storage_class_name.clone().unwrap_or_default();
        let Some(class) = classes.iter().find(|c| c.metadata.name.as_deref() == Some(class_name.as_str())) else {
            out.push(Action::Refuse {
                claim: reference(claim),
                message: format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
            });
            continue;
        };
        let Some(size) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage"))
        else {
            continue; // Validation requires it.
        };
        let dir = directory(root, claim);
        let uid = m.uid.clone().unwrap_or_default();
        let volume = PersistentVolume {
            metadata: ObjectMeta {
                name: Some(format!("pvc-{uid}")),
                annotations: Some(BTreeMap::from([(PROVISIONED_BY.to_string(), PROVISIONER.to_string())])),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: Some(BTreeMap::from([("storage".to_string(), size.clone())])),
                access_modes: Some(modes),
                persistent_volume_reclaim_policy: Some(
                    class.reclaim_policy.clone().unwrap_or_else(|| "Delete".to_string()),
                ),
                storage_class_name: Some(class_name),
                volume_mode: spec.volume_mode.clone(),
                mount_options: class.mount_options.clone(),
                // `Directory`, not `DirectoryOrCreate`: a directory removed behind skiff's back
                // fails the mount instead of coming back empty.
                host_path: Some(HostPathVolumeSource {
                    path: dir.display().to_string(),
                    type_: Some("Directory".into()),
                }),
                node_affinity: Some(VolumeNodeAffinity {
                    required: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: Some(vec![NodeSelectorRequirement {
                                key: HOSTNAME_LABEL.into(),
                                operator: "In".into(),
                                values: Some(vec![node.to_string()]),
                            }]),
                            match_fields: None,
                        }],
                    }),
                }),
                claim_ref: Some(ObjectReference { resource_version: None, ..reference(claim) }),
                ..Default::default()
            }),
            status: None,
        };
        out.push(Action::Provision { dir, volume: Box::new(volume), claim: reference(claim) });
    }
    for volume in volumes {
        let Some(dir) = ours(volume, node, root) else { continue };
        let spec = volume.spec.as_ref();
        let phase = volume.status.as_ref().and_then(|s| s.phase.as_deref());
        let policy = spec.and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
        if phase == Some("Released") && policy == Some("Delete") && volume.metadata.deletion_timestamp.is_none() {
            out.push(Action::Delete { dir: dir.to_path_buf(), name: volume.metadata.name.clone().unwrap_or_default() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(extra: serde_json::Value) -> PersistentVolumeClaim {
        let mut c = json!({
            "metadata": {"name": "data", "namespace": "default", "uid": "u1", "annotations": {
                STORAGE_PROVISIONER: PROVISIONER, SELECTED_NODE: "n1"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                "resources": {"requests": {"storage": "1Gi"}}}
        });
        json_patch::merge(&mut c, &extra);
        serde_json::from_value(c).expect("valid test object")
    }

    fn class() -> StorageClass {
        serde_json::from_value(json!({"metadata": {"name": "local-path"}, "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"}))
        .expect("valid test object")
    }

    #[test]
    fn a_claim_placed_on_this_node_gets_a_directory_and_a_volume() {
        let (c, sc) = (claim(json!({})), class());
        let root = Path::new("/var/lib/skiff/storage");
        let actions = actions("n1", root, &[&c], &[], &[&sc]);
        let [Action::Provision { dir, volume, claim }] = actions.as_slice() else { panic!("{actions:?}") };
        assert_eq!(dir, Path::new("/var/lib/skiff/storage/pvc-u1_default_data"));
        assert_eq!(claim.name.as_deref(), Some("data"));
        let v = serde_json::to_value(volume).expect("valid test object");
        assert_eq!(v["metadata"]["name"], "pvc-u1");
        assert_eq!(v["metadata"]["annotations"][PROVISIONED_BY], PROVISIONER);
        assert_eq!(v["spec"]["capacity"]["storage"], "1Gi");
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        assert_eq!(
            v["spec"]["hostPath"],
            json!({"path": "/var/lib/skiff/storage/pvc-u1_default_data", "type": "Directory"})
        );
        assert_eq!(v["spec"]["claimRef"]["uid"], "u1");
        assert_eq!(
            v["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"],
            json!(["n1"])
        );
        // Once a volume names the claim, nothing more is done for it.
        let made = PersistentVolume::clone(volume);
        assert!(actions_for(&c, &made).is_empty());
    }

    fn actions_for(c: &PersistentVolumeClaim, v: &PersistentVolume) -> Vec<Action> {
        actions("n1", Path::new("/var/lib/skiff/storage"), &[c], &[v], &[&class()])
    }

    #[test]
    fn claims_for_another_node_provisioner_or_already_bound_are_left_alone() {
        let sc = class();
        let root = Path::new("/s");
        for c in [
            claim(json!({"metadata": {"annotations": {SELECTED_NODE: "n2"}}})),
            claim(json!({"metadata": {"annotations": {STORAGE_PROVISIONER: "other.io/x"}}})),
            claim(json!({"spec": {"volumeName": "pv1"}})),
            claim(json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})),
        ] {
            assert!(actions("n1", root, &[&c], &[], &[&sc]).is_empty(), "{c:?}");
        }
    }

    #[test]
    fn what_a_node_directory_cannot_honour_is_refused_with_a_reason() {
        let sc = class();
        let rwx = claim(json!({"spec": {"accessModes": ["ReadWriteMany"]}}));
        let a = actions("n1", Path::new("/s"), &[&rwx], &[], &[&sc]);
        assert!(matches!(&a[..], [Action::Refuse { message, .. }] if message.contains("not ReadWriteMany")), "{a:?}");
        let no_class = claim(json!({"spec": {"storageClassName": "fast"}}));
        let a = actions("n1", Path::new("/s"), &[&no_class], &[], &[&sc]);
        assert!(
            matches!(&a[..], [Action::Refuse { message, .. }] if message == "storageclass.storage.k8s.io \"fast\" not found")
        );
    }

    #[test]
    fn only_its_own_released_delete_volumes_are_removed() {
        let root = Path::new("/s");
        let volume = |name: &str, path: &str, node: &str, phase: &str, policy: &str, by: &str| -> PersistentVolume {
            serde_json::from_value(json!({
                "metadata": {"name": name, "annotations": {PROVISIONED_BY: by}},
                "spec": {"persistentVolumeReclaimPolicy": policy, "hostPath": {"path": path},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}}},
                "status": {"phase": phase}
            }))
            .expect("valid test object")
        };
        let vs = [
            volume("a", "/s/pvc-a_ns_x", "n1", "Released", "Delete", PROVISIONER),
            volume("b", "/s/pvc-b_ns_x", "n1", "Released", "Retain", PROVISIONER),
            volume("c", "/s/pvc-c_ns_x", "n1", "Bound", "Delete", PROVISIONER),
            volume("d", "/s/pvc-d_ns_x", "n2", "Released", "Delete", PROVISIONER),
            volume("e", "/s/pvc-e_ns_x", "n1", "Released", "Delete", "other.io/x"),
            volume("f", "/etc", "n1", "Released", "Delete", PROVISIONER),
            volume("g", "/s/../etc/pvc-g", "n1", "Released", "Delete", PROVISIONER),
        ];
        let refs: Vec<&PersistentVolume> = vs.iter().collect();
        let a = actions("n1", root, &[], &refs, &[]);
        assert_eq!(a, vec![Action::Delete { dir: "/s/pvc-a_ns_x".into(), name: "a".into() }]);
    }
}
