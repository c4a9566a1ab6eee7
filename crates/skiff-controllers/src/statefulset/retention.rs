//! `persistentVolumeClaimRetentionPolicy`: whether a replica's claims go with the set
//! (`whenDeleted: Delete`: the set owns them) or with a pod scaled away (`whenScaled: Delete`:
//! the condemned pod owns them), left to the garbage collector through owner references, as
//! upstream's `updateClaimOwnerRefForSetAndPod` sets them. `Retain` leaves them to the user.

use super::identity;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

const DELETE: &str = "Delete";

/// (whenDeleted deletes, whenScaled deletes).
fn policy(set: &StatefulSet) -> (bool, bool) {
    let p = set.spec.persistent_volume_claim_retention_policy.as_ref();
    let is = |v: Option<&String>| v.map(String::as_str) == Some(DELETE);
    (is(p.and_then(|p| p.when_deleted.as_ref())), is(p.and_then(|p| p.when_scaled.as_ref())))
}

/// Whether `ordinal` is one the set keeps.
pub fn in_range(set: &StatefulSet, ordinal: i32) -> bool {
    let start = identity::start(set);
    ordinal >= start && ordinal < start.saturating_add(identity::replicas(set))
}

/// Whether `claim` of replica `ordinal` is owned by an earlier pod of the replica than `pod`
/// (any, when the pod is yet to be made) while `whenScaled` deletes (upstream's `hasStaleOwnerRef`).
pub fn owned_by_another_pod(set: &StatefulSet, claim: &PersistentVolumeClaim, ordinal: i32, pod: Option<&Pod>) -> bool {
    let (_, when_scaled) = policy(set);
    let pod_name = identity::pod_name(set, ordinal);
    let pod_uid = pod.and_then(|p| p.metadata.uid.as_deref());
    when_scaled
        && claim
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|r| r.kind == "Pod" && r.name == pod_name && Some(r.uid.as_str()) != pod_uid)
}

fn reference(api_version: &str, kind: &str, name: Option<&String>, uid: Option<&String>) -> OwnerReference {
    OwnerReference {
        api_version: api_version.into(),
        kind: kind.into(),
        name: name.cloned().unwrap_or_default(),
        uid: uid.cloned().unwrap_or_default(),
        ..Default::default()
    }
}

/// Pure: the owner references `claim` of replica `ordinal` should have (its references to
/// anything else kept), or None when it has them already. `pod` is the replica's pod, if any.
pub fn owners(
    set: &StatefulSet,
    claim: &PersistentVolumeClaim,
    ordinal: i32,
    pod: Option<&Pod>,
) -> Option<Vec<OwnerReference>> {
    let (when_deleted, when_scaled) = policy(set);
    let scaled_away = !in_range(set, ordinal);
    let pod_name = identity::pod_name(set, ordinal);
    let set_uid = set.metadata.uid.as_deref().unwrap_or_default();
    let pod_uid = pod.and_then(|p| p.metadata.uid.as_deref());
    let want_set = when_deleted && !(when_scaled && scaled_away);
    let want_pod = when_scaled && scaled_away && pod_uid.is_some();
    let have = claim.metadata.owner_references.clone().unwrap_or_default();
    let is_set = |r: &OwnerReference| r.uid == set_uid;
    // Any incarnation of the replica's pod: a reference to one deleted since would take the claim with it.
    let is_pod = |r: &OwnerReference| r.kind == "Pod" && r.name == pod_name;
    let mut out: Vec<OwnerReference> = have.iter().filter(|r| !is_set(r) && !is_pod(r)).cloned().collect();
    if want_set {
        out.push(have.iter().find(|r| is_set(r)).cloned().unwrap_or_else(|| {
            reference("apps/v1", "StatefulSet", set.metadata.name.as_ref(), set.metadata.uid.as_ref())
        }));
    }
    if want_pod {
        let current = have.iter().find(|r| is_pod(r) && Some(r.uid.as_str()) == pod_uid).cloned();
        out.push(current.unwrap_or_else(|| {
            let p = pod.map(|p| &p.metadata);
            reference("v1", "Pod", p.and_then(|m| m.name.as_ref()), p.and_then(|m| m.uid.as_ref()))
        }));
    }
    let same = out.len() == have.len() && out.iter().all(|r| have.contains(r));
    (!same).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statefulset::identity::tests::web;
    use serde_json::json;

    fn pod(name: &str, uid: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "uid": uid}})).expect("pod")
    }

    fn uids(refs: Option<Vec<OwnerReference>>) -> Option<Vec<String>> {
        refs.map(|r| r.into_iter().map(|r| r.uid).collect())
    }

    #[test]
    fn owners_follow_the_policy() {
        let claim = |refs: serde_json::Value| -> PersistentVolumeClaim {
            serde_json::from_value(json!({"metadata": {"name": "www-web-2", "ownerReferences": refs}})).expect("claim")
        };
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "keep", "uid": "cm"});
        let plain = claim(json!([other]));
        let p2 = pod("web-2", "pod-2");
        let policy = |deleted: &str, scaled: &str, replicas: i32| {
            web(
                replicas,
                json!({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": deleted, "whenScaled": scaled}}),
            )
        };
        // Retain/Retain: nothing of ours.
        assert_eq!(owners(&policy("Retain", "Retain", 3), &plain, 2, Some(&p2)), None);
        let owned =
            claim(json!([other, {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "set-1"}]));
        assert_eq!(uids(owners(&policy("Retain", "Retain", 3), &owned, 2, Some(&p2))), Some(vec!["cm".into()]));
        // whenDeleted: the set owns every claim.
        assert_eq!(
            uids(owners(&policy("Delete", "Retain", 3), &plain, 2, Some(&p2))),
            Some(vec!["cm".into(), "set-1".into()])
        );
        assert_eq!(owners(&policy("Delete", "Retain", 3), &owned, 2, Some(&p2)), None);
        // whenScaled: the pod of a replica scaled away owns it; in range, nobody.
        assert_eq!(owners(&policy("Retain", "Delete", 3), &plain, 2, Some(&p2)), None);
        assert_eq!(
            uids(owners(&policy("Retain", "Delete", 2), &plain, 2, Some(&p2))),
            Some(vec!["cm".into(), "pod-2".into()])
        );
        assert_eq!(
            uids(owners(&policy("Delete", "Delete", 2), &owned, 2, Some(&p2))),
            Some(vec!["cm".into(), "pod-2".into()])
        );
        // A reference to an earlier pod of the replica is dropped when it is back in range.
        let by_old_pod = claim(json!([{"apiVersion": "v1", "kind": "Pod", "name": "web-2", "uid": "old"}]));
        assert_eq!(uids(owners(&policy("Retain", "Delete", 3), &by_old_pod, 2, Some(&p2))), Some(vec![]));
    }
}
