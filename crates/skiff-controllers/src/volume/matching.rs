//! Which volume a claim may have, shared by the binder and the scheduler (upstream's
//! `FindMatchingVolume` and the binder's access-mode index): a volume reserved for the claim
//! first, else the smallest Available one of the claim's class that is big enough, offers the
//! access modes, matches the selector and the volume mode, and is reserved for no one else.

use super::node_affinity::volume_fits_node;
use super::{AVAILABLE, capacity, claim_class, name, requested, uid, volume_class, volume_phase};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};
use skiff_core::selector::LabelSelector;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// Why a volume a claim names by `volumeName` cannot be its (upstream's words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("the volume is marked for deletion {0:?}")]
    Deleting(String),
    #[error("requested PV is too small")]
    TooSmall,
    #[error("storageClassName does not match")]
    Class,
    #[error("incompatible volumeMode")]
    VolumeMode,
    #[error("incompatible accessMode")]
    AccessMode,
}

fn access_modes(modes: Option<&Vec<String>>) -> BTreeSet<&str> {
    modes.into_iter().flatten().map(String::as_str).collect()
}

fn claim_modes(claim: &PersistentVolumeClaim) -> BTreeSet<&str> {
    access_modes(claim.spec.as_ref().and_then(|s| s.access_modes.as_ref()))
}

fn volume_modes(volume: &PersistentVolume) -> BTreeSet<&str> {
    access_modes(volume.spec.as_ref().and_then(|s| s.access_modes.as_ref()))
}

/// Whether the volume offers every access mode the claim asks for.
pub fn has_access_modes(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    claim_modes(claim).is_subset(&volume_modes(volume))
}

/// Whether claim and volume differ in `volumeMode` (unset is `Filesystem`).
pub fn volume_mode_mismatch(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let claim_mode = claim.spec.as_ref().and_then(|s| s.volume_mode.as_deref()).unwrap_or("Filesystem");
    let volume_mode = volume.spec.as_ref().and_then(|s| s.volume_mode.as_deref()).unwrap_or("Filesystem");
    claim_mode != volume_mode
}

/// Whether the volume's claimRef names the claim (by namespace and name, and by uid if it has one).
pub fn is_bound_to_claim(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(r) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else { return false };
    r.name.as_deref() == claim.metadata.name.as_deref()
        && r.namespace.as_deref() == claim.metadata.namespace.as_deref()
        && r.uid.as_deref().is_none_or(|u| u.is_empty() || u == uid(&claim.metadata))
}

fn attributes_class(name: Option<&String>) -> bool {
    name.is_some_and(|n| !n.is_empty())
}

/// The volume for `claim` among `volumes` (upstream's `FindMatchingVolume`). `node` is the
/// scheduler's candidate (volumes must fit it, and offer the access modes); without one (the
/// binder), a claim that waits for its first consumer gets only a volume reserved for it.
pub fn find_matching<'a>(
    claim: &PersistentVolumeClaim,
    volumes: impl IntoIterator<Item = &'a Arc<PersistentVolume>>,
    node: Option<&Node>,
    excluded: &HashSet<String>,
    delay_binding: bool,
) -> Option<&'a Arc<PersistentVolume>> {
    let spec = claim.spec.clone().unwrap_or_default();
    // VolumeAttributesClass is off by default in 1.32: such claims and volumes never bind.
    if attributes_class(spec.volume_attributes_class_name.as_ref()) {
        return None;
    }
    let wanted = requested(claim);
    let class = claim_class(claim);
    let selector =
        spec.selector.as_ref().map(|s| LabelSelector::from_api(&serde_json::to_value(s).unwrap_or_default()));
    let mut smallest: Option<(&Arc<PersistentVolume>, i128)> = None;
    for volume in volumes {
        let vspec = volume.spec.clone().unwrap_or_default();
        if excluded.contains(name(&volume.metadata))
            || (vspec.claim_ref.is_some() && !is_bound_to_claim(volume, claim))
            || capacity(volume) < wanted
            || volume_mode_mismatch(claim, volume)
            || attributes_class(vspec.volume_attributes_class_name.as_ref())
            || volume.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        let fits_node = node.is_none_or(|n| volume_fits_node(volume, n));
        if is_bound_to_claim(volume, claim) {
            // Reserved for this claim: it or nothing (on this node).
            return fits_node.then_some(volume);
        }
        if node.is_none() && delay_binding {
            continue;
        }
        let labels = volume.metadata.labels.clone().unwrap_or_default();
        if volume_phase(volume) != AVAILABLE
            || selector.as_ref().is_some_and(|s| !s.matches(&labels))
            || volume_class(volume) != class
            || !fits_node
            || (node.is_some() && !has_access_modes(claim, volume))
        {
            continue;
        }
        let size = capacity(volume);
        if smallest.is_none_or(|(_, s)| size < s) {
            smallest = Some((volume, size));
        }
    }
    smallest.map(|(v, _)| v)
}

/// The binder's choice for `claim` (upstream's `findBestMatchForClaim`): volumes grouped by
/// their set of access modes, the groups that hold every mode the claim asks for searched
/// fewest modes first, each with [`find_matching`].
pub fn best_match<'a>(
    claim: &PersistentVolumeClaim,
    volumes: &'a [Arc<PersistentVolume>],
    delay_binding: bool,
) -> Option<&'a Arc<PersistentVolume>> {
    let wanted = claim_modes(claim);
    let mut sorted: Vec<&Arc<PersistentVolume>> = volumes.iter().collect();
    sorted.sort_by(|a, b| name(&a.metadata).cmp(name(&b.metadata)));
    let mut groups: Vec<BTreeSet<&str>> = sorted.iter().map(|v| volume_modes(v)).collect();
    groups.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    groups.dedup();
    let none = HashSet::new();
    groups.iter().filter(|g| wanted.is_subset(g)).find_map(|group| {
        let members = sorted.iter().copied().filter(|v| volume_modes(v) == *group);
        find_matching(claim, members, None, &none, delay_binding)
    })
}

/// Whether the volume a claim names by `volumeName` can be its (upstream's
/// `checkVolumeSatisfyClaim`).
pub fn satisfies(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> Result<(), Mismatch> {
    if volume.metadata.deletion_timestamp.is_some() {
        return Err(Mismatch::Deleting(name(&volume.metadata).to_string()));
    }
    if capacity(volume) < requested(claim) {
        return Err(Mismatch::TooSmall);
    }
    if volume_class(volume) != claim_class(claim) {
        return Err(Mismatch::Class);
    }
    if volume_mode_mismatch(claim, volume) {
        return Err(Mismatch::VolumeMode);
    }
    if !has_access_modes(claim, volume) {
        return Err(Mismatch::AccessMode);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{claim, node, on_node, volume};
    use super::*;
    use serde_json::json;

    fn pick(c: &PersistentVolumeClaim, volumes: &[Arc<PersistentVolume>]) -> Option<String> {
        best_match(c, volumes, false).map(|v| name(&v.metadata).to_string())
    }

    #[test]
    fn the_smallest_volume_that_fits() {
        let vols = [
            Arc::new(volume("big", json!({"capacity": {"storage": "10Gi"}}))),
            Arc::new(volume("small", json!({"capacity": {"storage": "512Mi"}}))),
            Arc::new(volume("right", json!({"capacity": {"storage": "2Gi"}}))),
        ];
        assert_eq!(pick(&claim("c", json!({})), &vols), Some("right".into()));
        assert_eq!(pick(&claim("c", json!({"resources": {"requests": {"storage": "20Gi"}}})), &vols), None);
    }

    #[test]
    fn class_modes_selector_and_volume_mode_must_match() {
        let vols = [
            Arc::new(volume("fast", json!({"storageClassName": "fast"}))),
            Arc::new(volume("rox", json!({"accessModes": ["ReadOnlyMany"]}))),
            Arc::new(volume("block", json!({"volumeMode": "Block"}))),
        ];
        // A claim of class "" takes only volumes of no class.
        assert_eq!(pick(&claim("c", json!({"storageClassName": ""})), &vols), None);
        assert_eq!(pick(&claim("c", json!({"storageClassName": "fast"})), &vols), Some("fast".into()));
        assert_eq!(pick(&claim("c", json!({"accessModes": ["ReadOnlyMany"]})), &vols), Some("rox".into()));
        assert_eq!(pick(&claim("c", json!({"volumeMode": "Block"})), &vols), Some("block".into()));
        let labelled = [Arc::new({
            let mut v = volume("gold", json!({}));
            v.metadata.labels = Some([("tier".to_string(), "gold".to_string())].into());
            v
        })];
        let want = |tier: &str| claim("c", json!({"selector": {"matchLabels": {"tier": tier}}}));
        assert_eq!(pick(&want("gold"), &labelled), Some("gold".into()));
        assert_eq!(pick(&want("silver"), &labelled), None);
    }

    #[test]
    fn fewest_extra_access_modes_first() {
        let vols = [
            Arc::new(volume(
                "many",
                json!({"accessModes": ["ReadWriteOnce", "ReadOnlyMany"], "capacity": {"storage": "1Gi"}}),
            )),
            Arc::new(volume("exact", json!({"capacity": {"storage": "5Gi"}}))),
        ];
        assert_eq!(pick(&claim("c", json!({})), &vols), Some("exact".into()));
    }

    #[test]
    fn reserved_volumes() {
        let mine = json!({"claimRef": {"namespace": "ns", "name": "c"}, "storageClassName": "other"});
        let theirs = json!({"claimRef": {"namespace": "ns", "name": "d", "uid": "uid-d"}});
        let mut reserved = volume("mine", mine);
        reserved.status = None; // not yet Available: still its own
        let vols = [Arc::new(volume("free", json!({}))), Arc::new(reserved), Arc::new(volume("theirs", theirs))];
        assert_eq!(pick(&claim("c", json!({})), &vols), Some("mine".into()));
        assert_eq!(pick(&claim("d", json!({})), &vols), Some("theirs".into()));
        // Reserved for the uid of an older claim of that name: not this one's.
        let stale = [Arc::new(volume("old", json!({"claimRef": {"namespace": "ns", "name": "e", "uid": "gone"}})))];
        assert_eq!(pick(&claim("e", json!({})), &stale), None);
        // A claim that waits for its consumer gets only what is reserved for it.
        assert_eq!(best_match(&claim("x", json!({})), &vols, true), None);
    }

    #[test]
    fn with_a_node_the_volume_must_fit_it() {
        let vols = [Arc::new(volume("local", json!({"nodeAffinity": on_node("a")})))];
        let c = claim("c", json!({}));
        let none = HashSet::new();
        let on = |n: &str| find_matching(&c, &vols, Some(&node(n)), &none, true).map(|v| name(&v.metadata).to_string());
        assert_eq!(on("a"), Some("local".into()));
        assert_eq!(on("b"), None);
        let taken: HashSet<String> = ["local".to_string()].into();
        assert_eq!(find_matching(&c, &vols, Some(&node("a")), &taken, true), None);
    }

    #[test]
    fn a_named_volume_must_satisfy_the_claim() {
        let c = claim("c", json!({"resources": {"requests": {"storage": "2Gi"}}}));
        assert_eq!(satisfies(&volume("v", json!({})), &c), Err(Mismatch::TooSmall));
        let big = |extra: serde_json::Value| {
            let mut spec = json!({"capacity": {"storage": "2Gi"}});
            spec.as_object_mut().expect("object").extend(extra.as_object().cloned().unwrap_or_default());
            volume("v", spec)
        };
        assert_eq!(satisfies(&big(json!({"storageClassName": "x"})), &c), Err(Mismatch::Class));
        assert_eq!(satisfies(&big(json!({"accessModes": ["ReadOnlyMany"]})), &c), Err(Mismatch::AccessMode));
        assert_eq!(satisfies(&big(json!({})), &c), Ok(()));
        assert_eq!(Mismatch::TooSmall.to_string(), "requested PV is too small");
    }
}
