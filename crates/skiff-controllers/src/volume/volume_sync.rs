//! What the binder does about one volume (upstream's `syncVolume`), pure: a volume no claim
//! holds is `Available`; one whose claim is gone is `Released` and reclaimed by its policy;
//! one its claim holds is `Bound`; one whose claim went to another volume is given up.
//! Reclaiming: `Retain` keeps it `Released`; `Delete` is the provisioner's job when one made
//! it (or a CSI driver's), and otherwise fails, as skiff has no in-tree deleters; `Recycle`
//! fails (no recycler either).

use super::matching::volume_mode_mismatch;
use super::{
    AVAILABLE, BOUND, FAILED, Note, PROVISIONED_BY, RELEASED, annotation, claim_volume, has_annotation, name, uid,
    volume_phase,
};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

#[derive(Debug, Clone, PartialEq)]
pub enum VolumeStep {
    /// The volume in `phase` with `message`, unless already in it; `on_change` is recorded
    /// only when the phase changes.
    Phase { phase: &'static str, message: String, on_change: Option<Note> },
    /// Roll the binding back (a controller's binding removed, a user's uid cleared).
    Unbind,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumePlan {
    /// Carried out in order, each on what the previous write returned.
    pub steps: Vec<VolumeStep>,
    pub volume_events: Vec<Note>,
    pub claim_events: Vec<Note>,
    /// Sync the claim the volume names now (it has a binding to finish).
    pub sync_claim: bool,
}

fn phase(phase: &'static str) -> VolumeStep {
    VolumeStep::Phase { phase, message: String::new(), on_change: None }
}

fn failed(reason: &'static str, message: String) -> VolumeStep {
    VolumeStep::Phase { phase: FAILED, message: message.clone(), on_change: Some(Note::warning(reason, message)) }
}

fn steps(steps: Vec<VolumeStep>) -> VolumePlan {
    VolumePlan { steps, ..Default::default() }
}

/// `claim` is the claim the volume's claimRef names, if it exists with that uid (the caller
/// asks the API server before believing a cache that lacks it).
pub fn sync_volume(volume: &PersistentVolume, claim: Option<&PersistentVolumeClaim>) -> VolumePlan {
    let Some(reference) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return steps(vec![phase(AVAILABLE)]);
    };
    let wanted_uid = reference.uid.as_deref().unwrap_or_default();
    if wanted_uid.is_empty() {
        // Reserved for a claim by name: the claim's sync binds it.
        return VolumePlan { steps: vec![phase(AVAILABLE)], sync_claim: true, ..Default::default() };
    }
    let Some(claim) = claim.filter(|c| uid(&c.metadata) == wanted_uid) else {
        return release(volume);
    };
    let bound_to = claim_volume(claim);
    if bound_to.is_empty() {
        if volume_mode_mismatch(claim, volume) {
            let (claim_name, volume_name) = (name(&claim.metadata), name(&volume.metadata));
            return VolumePlan {
                volume_events: vec![Note::warning(
                    "VolumeMismatch",
                    format!(
                        "Cannot bind PersistentVolume to requested PersistentVolumeClaim {claim_name:?} due to incompatible volumeMode."
                    ),
                )],
                claim_events: vec![Note::warning(
                    "VolumeMismatch",
                    format!(
                        "Cannot bind PersistentVolume {volume_name:?} to requested PersistentVolumeClaim due to incompatible volumeMode."
                    ),
                )],
                ..Default::default()
            };
        }
        // The binding is half done (the volume side): the claim's sync finishes it.
        return VolumePlan { sync_claim: true, ..Default::default() };
    }
    if bound_to == name(&volume.metadata) {
        return steps(vec![phase(BOUND)]);
    }
    // The claim went to another volume.
    if has_annotation(&volume.metadata, PROVISIONED_BY) && policy(volume) == "Delete" {
        return release(volume);
    }
    steps(vec![VolumeStep::Unbind, phase(AVAILABLE)])
}

fn policy(volume: &PersistentVolume) -> &str {
    volume.spec.as_ref().and_then(|s| s.persistent_volume_reclaim_policy.as_deref()).unwrap_or("Retain")
}

/// Released (a `Failed` one stays so, for the user to see), then reclaimed.
fn release(volume: &PersistentVolume) -> VolumePlan {
    let mut plan = VolumePlan::default();
    if !matches!(volume_phase(volume), RELEASED | FAILED) {
        plan.steps.push(phase(RELEASED));
    }
    plan.steps.extend(reclaim(volume));
    plan
}

fn reclaim(volume: &PersistentVolume) -> Option<VolumeStep> {
    match policy(volume) {
        "Retain" => None,
        "Recycle" => Some(failed("VolumeFailedRecycle", "No recycler plugin found for the volume!".into())),
        "Delete" => {
            match annotation(&volume.metadata, PROVISIONED_BY) {
                // A provisioner outside (skiff's own among them) deletes what it made.
                Some(p) if !p.is_empty() && !p.starts_with("kubernetes.io/") => return None,
                Some(p) if !p.is_empty() => {
                    return Some(failed("VolumeFailedDelete", format!("no volume plugin matched name: {p}")));
                }
                _ => {}
            }
            if volume.spec.as_ref().is_some_and(|s| s.csi.is_some()) {
                return None; // its CSI driver's
            }
            let why = format!(
                "error getting deleter volume plugin for volume {:?}: no deletable volume plugin matched",
                name(&volume.metadata)
            );
            Some(failed("VolumeFailedDelete", why))
        }
        _ => Some(failed("VolumeUnknownReclaimPolicy", "Volume has unrecognized PersistentVolumeReclaimPolicy".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::LOCAL_PATH;
    use super::super::fixtures::{claim, volume};
    use super::*;
    use serde_json::json;

    fn held(by: &str, extra: serde_json::Value) -> PersistentVolume {
        let mut spec = json!({"claimRef": {"namespace": "ns", "name": by, "uid": format!("uid-{by}")}});
        spec.as_object_mut().expect("object").extend(extra.as_object().cloned().unwrap_or_default());
        volume("v", spec)
    }

    fn bound_claim(to: &str) -> PersistentVolumeClaim {
        claim("c", json!({"volumeName": to}))
    }

    #[test]
    fn unused_and_reserved_volumes_are_available() {
        assert_eq!(sync_volume(&volume("v", json!({})), None), steps(vec![phase(AVAILABLE)]));
        let reserved = volume("v", json!({"claimRef": {"namespace": "ns", "name": "c"}}));
        let plan = sync_volume(&reserved, None);
        assert_eq!((plan.steps, plan.sync_claim), (vec![phase(AVAILABLE)], true));
    }

    #[test]
    fn a_volume_whose_claim_is_gone_is_released_and_reclaimed() {
        // Retain: Released, nothing else.
        assert_eq!(sync_volume(&held("c", json!({})), None).steps, [phase(RELEASED)]);
        // A claim of that name but another uid is another claim.
        let other = claim("c", json!({"volumeName": "v"}));
        let mut v = held("c", json!({}));
        if let Some(r) = v.spec.as_mut().and_then(|s| s.claim_ref.as_mut()) {
            r.uid = Some("older".into());
        }
        assert_eq!(sync_volume(&v, Some(&other)).steps, [phase(RELEASED)]);
        // Delete, made by a provisioner: the provisioner deletes it.
        let mut made = held("c", json!({"persistentVolumeReclaimPolicy": "Delete"}));
        made.metadata.annotations = Some([(PROVISIONED_BY.to_string(), LOCAL_PATH.to_string())].into());
        assert_eq!(sync_volume(&made, None).steps, [phase(RELEASED)]);
        // Delete, made by hand: no deleter.
        let manual = held("c", json!({"persistentVolumeReclaimPolicy": "Delete"}));
        let why = "error getting deleter volume plugin for volume \"v\": no deletable volume plugin matched";
        assert_eq!(sync_volume(&manual, None).steps, [phase(RELEASED), failed("VolumeFailedDelete", why.into())]);
        // Recycle: no recycler.
        let recycle = held("c", json!({"persistentVolumeReclaimPolicy": "Recycle"}));
        let why = "No recycler plugin found for the volume!";
        assert_eq!(sync_volume(&recycle, None).steps, [phase(RELEASED), failed("VolumeFailedRecycle", why.into())]);
        // Failed stays Failed (no Released over it).
        let mut failed_already = manual.clone();
        failed_already.status = Some(k8s_openapi::api::core::v1::PersistentVolumeStatus {
            phase: Some(FAILED.into()),
            ..Default::default()
        });
        assert_eq!(sync_volume(&failed_already, None).steps.len(), 1);
    }

    #[test]
    fn bound_half_bound_and_given_up() {
        let v = held("c", json!({}));
        assert_eq!(sync_volume(&v, Some(&bound_claim("v"))).steps, [phase(BOUND)]);
        // The claim does not name it yet: its sync finishes the binding.
        let plan = sync_volume(&v, Some(&claim("c", json!({}))));
        assert_eq!((plan.steps.len(), plan.sync_claim), (0, true));
        // The claim went elsewhere: a user's reservation is kept, the uid cleared.
        assert_eq!(sync_volume(&v, Some(&bound_claim("w"))).steps, [VolumeStep::Unbind, phase(AVAILABLE)]);
        let mut made = held("c", json!({"persistentVolumeReclaimPolicy": "Delete"}));
        made.metadata.annotations = Some([(PROVISIONED_BY.to_string(), "example.com/p".to_string())].into());
        assert_eq!(sync_volume(&made, Some(&bound_claim("w"))).steps, [phase(RELEASED)]);
        let mismatch = sync_volume(&held("c", json!({"volumeMode": "Block"})), Some(&claim("c", json!({}))));
        assert_eq!((mismatch.volume_events.len(), mismatch.claim_events.len()), (1, 1));
    }
}
