//! The changes the binder, the scheduler and the protection controllers make to volumes and
//! claims, as pure edits of the version they read: each returns the object to write (an update
//! that carries the read resourceVersion, so a racing writer makes it fail) or None when there
//! is nothing to change. A run loop applies the next edit to what the previous write returned.

use super::{
    BETA_STORAGE_PROVISIONER, BIND_COMPLETED, BOUND_BY_CONTROLLER, SELECTED_NODE, STORAGE_PROVISIONER, annotation,
    claim_phase, has_annotation, uid, volume_phase,
};
use crate::owner::object_reference;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

fn annotate(meta: &mut ObjectMeta, key: &str, value: &str) {
    meta.annotations.get_or_insert_default().insert(key.to_string(), value.to_string());
}

/// The volume's claimRef set to the claim (kind, namespace, name, uid, apiVersion,
/// resourceVersion), marked bound by the controller unless it already named the claim.
pub fn volume_bound_to(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> Option<PersistentVolume> {
    let mut next = volume.clone();
    let mut dirty = false;
    let current = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    let named = current.is_some_and(|r| {
        r.name.as_deref() == claim.metadata.name.as_deref()
            && r.namespace.as_deref() == claim.metadata.namespace.as_deref()
            && r.uid.as_deref().is_none_or(|u| u.is_empty() || u == uid(&claim.metadata))
    });
    let exact = current.is_some_and(|r| named && r.uid.as_deref().unwrap_or_default() == uid(&claim.metadata));
    if !exact {
        next.spec.get_or_insert_default().claim_ref = Some(object_reference(claim));
        dirty = true;
    }
    if !named && !has_annotation(&next.metadata, BOUND_BY_CONTROLLER) {
        annotate(&mut next.metadata, BOUND_BY_CONTROLLER, "yes");
        dirty = true;
    }
    dirty.then_some(next)
}

/// The volume in `phase` with `message` (an empty one cleared), unless it is in that phase.
pub fn volume_with_phase(volume: &PersistentVolume, phase: &str, message: &str) -> Option<PersistentVolume> {
    if volume_phase(volume) == phase {
        return None;
    }
    let mut next = volume.clone();
    let status = next.status.get_or_insert_default();
    status.phase = Some(phase.to_string());
    status.message = (!message.is_empty()).then(|| message.to_string());
    Some(next)
}

/// The volume's binding rolled back: a binding the controller made is removed, a user's
/// reservation kept with its uid cleared (it waits for a claim of that name again).
pub fn volume_unbound(volume: &PersistentVolume) -> PersistentVolume {
    let mut next = volume.clone();
    if has_annotation(&volume.metadata, BOUND_BY_CONTROLLER) {
        if let Some(spec) = next.spec.as_mut() {
            spec.claim_ref = None;
        }
        if let Some(annotations) = next.metadata.annotations.as_mut() {
            annotations.remove(BOUND_BY_CONTROLLER);
        }
        if next.metadata.annotations.as_ref().is_some_and(|a| a.is_empty()) {
            next.metadata.annotations = None;
        }
    } else if let Some(r) = next.spec.as_mut().and_then(|s| s.claim_ref.as_mut()) {
        r.uid = None;
    }
    next
}

/// The claim's volumeName set, marked bound by the controller when it did not name the volume,
/// and bind-completed.
pub fn claim_bound_to(claim: &PersistentVolumeClaim, volume: &str) -> Option<PersistentVolumeClaim> {
    let mut next = claim.clone();
    let mut dirty = false;
    if super::claim_volume(claim) != volume {
        next.spec.get_or_insert_default().volume_name = Some(volume.to_string());
        if !has_annotation(&next.metadata, BOUND_BY_CONTROLLER) {
            annotate(&mut next.metadata, BOUND_BY_CONTROLLER, "yes");
        }
        dirty = true;
    }
    if !has_annotation(&next.metadata, BIND_COMPLETED) {
        annotate(&mut next.metadata, BIND_COMPLETED, "yes");
        dirty = true;
    }
    dirty.then_some(next)
}

/// The claim's status in `phase`: with the volume's access modes and, when it becomes bound,
/// its capacity; without a volume, neither.
pub fn claim_with_status(
    claim: &PersistentVolumeClaim,
    phase: &str,
    volume: Option<&PersistentVolume>,
) -> Option<PersistentVolumeClaim> {
    let mut next = claim.clone();
    let becoming = claim_phase(claim) != phase;
    let status = next.status.get_or_insert_default();
    status.phase = Some(phase.to_string());
    match volume {
        None => {
            status.access_modes = None;
            status.capacity = None;
        }
        Some(v) => {
            let spec = v.spec.clone().unwrap_or_default();
            status.access_modes = spec.access_modes;
            // Only when it becomes bound: a later difference may be a resize in progress.
            let size = spec.capacity.as_ref().and_then(|c| c.get("storage"));
            let current = status.capacity.as_ref().and_then(|c| c.get("storage"));
            if becoming && size.is_some() && size != current {
                status.capacity = spec.capacity;
            }
        }
    }
    (next.status != claim.status).then_some(next)
}

/// The claim handed to `provisioner` (both annotations), and placed on `node` if given.
pub fn claim_handed_to(
    claim: &PersistentVolumeClaim,
    provisioner: &str,
    node: Option<&str>,
) -> Option<PersistentVolumeClaim> {
    let mut next = claim.clone();
    if annotation(&claim.metadata, STORAGE_PROVISIONER) != Some(provisioner) {
        annotate(&mut next.metadata, BETA_STORAGE_PROVISIONER, provisioner);
        annotate(&mut next.metadata, STORAGE_PROVISIONER, provisioner);
    }
    if let Some(node) = node {
        annotate(&mut next.metadata, SELECTED_NODE, node);
    }
    (next.metadata.annotations != claim.metadata.annotations).then_some(next)
}

/// The claim placed on `node` (the scheduler's choice for a claim that waited for its pod).
pub fn claim_on_node(claim: &PersistentVolumeClaim, node: &str) -> Option<PersistentVolumeClaim> {
    if annotation(&claim.metadata, SELECTED_NODE) == Some(node) {
        return None;
    }
    let mut next = claim.clone();
    annotate(&mut next.metadata, SELECTED_NODE, node);
    Some(next)
}

/// The claim given the default class (it named none).
pub fn claim_with_class(claim: &PersistentVolumeClaim, class: &str) -> PersistentVolumeClaim {
    let mut next = claim.clone();
    next.spec.get_or_insert_default().storage_class_name = Some(class.to_string());
    next
}

/// The object with `finalizer` added, unless it has it.
pub fn with_finalizer<K: Resource + Clone>(obj: &K, finalizer: &str) -> Option<K> {
    if obj.meta().finalizers.iter().flatten().any(|f| f == finalizer) {
        return None;
    }
    let mut next = obj.clone();
    next.meta_mut().finalizers.get_or_insert_default().push(finalizer.to_string());
    Some(next)
}

/// The object without `finalizer`, if it has it.
pub fn without_finalizer<K: Resource + Clone>(obj: &K, finalizer: &str) -> Option<K> {
    if !obj.meta().finalizers.iter().flatten().any(|f| f == finalizer) {
        return None;
    }
    let mut next = obj.clone();
    if let Some(f) = next.meta_mut().finalizers.as_mut() {
        f.retain(|f| f != finalizer);
    }
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{claim, volume};
    use super::super::{AVAILABLE, BOUND, LOST};
    use super::*;
    use serde_json::json;

    #[test]
    fn binding_a_volume_records_the_claim_and_keeps_the_version_read() {
        let c = claim("c", json!({}));
        let v = volume_bound_to(&volume("v", json!({})), &c).expect("changed");
        let r = v.spec.as_ref().and_then(|s| s.claim_ref.clone()).expect("claimRef");
        assert_eq!(
            (r.kind.as_deref(), r.api_version.as_deref(), r.namespace.as_deref(), r.name.as_deref()),
            (Some("PersistentVolumeClaim"), Some("v1"), Some("ns"), Some("c"))
        );
        assert_eq!((r.uid.as_deref(), r.resource_version.as_deref()), (Some("uid-c"), Some("10")));
        assert_eq!(annotation(&v.metadata, BOUND_BY_CONTROLLER), Some("yes"));
        // The update carries the version read: a racing writer makes it conflict.
        assert_eq!(v.metadata.resource_version.as_deref(), Some("5"));
        assert_eq!(volume_bound_to(&v, &c), None);
        // A user's reservation by name gets the uid, not the controller's mark.
        let reserved = volume("r", json!({"claimRef": {"namespace": "ns", "name": "c"}}));
        let r = volume_bound_to(&reserved, &c).expect("changed");
        assert_eq!(annotation(&r.metadata, BOUND_BY_CONTROLLER), None);
    }

    #[test]
    fn binding_a_claim() {
        let c = claim_bound_to(&claim("c", json!({})), "v").expect("changed");
        assert_eq!(super::super::claim_volume(&c), "v");
        assert_eq!(annotation(&c.metadata, BIND_COMPLETED), Some("yes"));
        assert_eq!(annotation(&c.metadata, BOUND_BY_CONTROLLER), Some("yes"));
        assert_eq!(claim_bound_to(&c, "v"), None);
        // Asked for by name: bind-completed only.
        let named = claim_bound_to(&claim("c", json!({"volumeName": "v"})), "v").expect("changed");
        assert_eq!(annotation(&named.metadata, BOUND_BY_CONTROLLER), None);
    }

    #[test]
    fn claim_status_follows_the_volume() {
        let v = volume("v", json!({"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}));
        let bound = claim_with_status(&claim("c", json!({})), BOUND, Some(&v)).expect("changed");
        let status = bound.status.clone().expect("status");
        assert_eq!(status.phase.as_deref(), Some(BOUND));
        assert_eq!(status.access_modes, Some(vec!["ReadWriteOnce".to_string(), "ReadOnlyMany".to_string()]));
        assert_eq!(status.capacity.and_then(|c| c.get("storage").cloned()).map(|q| q.0), Some("5Gi".into()));
        assert_eq!(claim_with_status(&bound, BOUND, Some(&v)), None);
        let lost = claim_with_status(&bound, LOST, None).expect("changed").status.expect("status");
        assert_eq!((lost.capacity, lost.access_modes), (None, None));
    }

    #[test]
    fn unbinding() {
        let c = claim("c", json!({}));
        let by_us = volume_bound_to(&volume("v", json!({})), &c).expect("bound");
        let undone = volume_unbound(&by_us);
        assert_eq!(undone.spec.as_ref().and_then(|s| s.claim_ref.clone()), None);
        assert_eq!(undone.metadata.annotations, None);
        let by_user = volume("v", json!({"claimRef": {"namespace": "ns", "name": "c", "uid": "uid-c"}}));
        let kept = volume_unbound(&by_user).spec.and_then(|s| s.claim_ref).expect("still reserved");
        assert_eq!((kept.name.as_deref(), kept.uid), (Some("c"), None));
        assert_eq!(volume_with_phase(&volume("v", json!({})), AVAILABLE, ""), None);
    }

    #[test]
    fn handing_over_and_finalizers() {
        let c = claim("c", json!({}));
        let handed = claim_handed_to(&c, "p", Some("n1")).expect("changed");
        assert_eq!(annotation(&handed.metadata, STORAGE_PROVISIONER), Some("p"));
        assert_eq!(annotation(&handed.metadata, BETA_STORAGE_PROVISIONER), Some("p"));
        assert_eq!(annotation(&handed.metadata, SELECTED_NODE), Some("n1"));
        assert_eq!(claim_handed_to(&handed, "p", None), None);
        assert_eq!(claim_on_node(&handed, "n1"), None);
        let f = with_finalizer(&c, "x").expect("added");
        assert_eq!(with_finalizer(&f, "x"), None);
        assert_eq!(without_finalizer(&f, "x").and_then(|c| c.metadata.finalizers), Some(vec![]));
    }
}
