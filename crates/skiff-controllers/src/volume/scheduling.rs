//! The scheduler's volume binding (upstream's `VolumeBinding` plugin), pure. Before any node:
//! every claim a pod names must exist, not be lost nor being deleted, and be bound unless its
//! class waits for its first consumer ([`pod_claims`]). Per node: bound claims' volumes must
//! fit the node; each waiting claim needs a volume on it (a static one, reserved for the claim
//! when chosen) or a class that can provision there ([`place`]). Once the node is chosen the
//! scheduler reserves the static volumes and marks the others' claims with the node
//! ([`Placement::writes`]), and binds the pod only when every claim is bound.

use super::edits::{claim_on_node, volume_bound_to};
use super::matching::{find_matching, is_bound_to_claim};
use super::node_affinity::{topology_allows, volume_fits_node};
use super::{
    BIND_COMPLETED, BOUND, LOST, NO_PROVISIONER, SELECTED_NODE, annotation, claim_class, claim_names, claim_phase,
    claim_volume, find_class, has_annotation, is_delay_binding, name, requested, volume_class,
};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use std::collections::HashSet;
use std::sync::Arc;

/// Why no node can take the pod, whatever the node (the scheduler's PreFilter wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unschedulable {
    #[error("persistentvolumeclaim {0:?} not found")]
    NotFound(String),
    #[error("persistentvolumeclaim {claim:?} bound to non-existent persistentvolume {volume:?}")]
    Lost { claim: String, volume: String },
    #[error("persistentvolumeclaim {0:?} is being deleted")]
    Deleting(String),
    #[error("pod has unbound immediate PersistentVolumeClaims")]
    UnboundImmediate,
}

/// Why one node cannot take the pod's volumes (upstream's conflict reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Conflict {
    /// A bound claim's volume is for other nodes.
    NodeAffinity,
    /// A waiting claim finds no volume here and its class cannot make one here (or it is
    /// already placed on another node).
    Bind,
    /// A bound claim's volume does not exist.
    VolumeMissing,
}

impl Conflict {
    pub fn text(self) -> &'static str {
        match self {
            Conflict::NodeAffinity => "node(s) had volume node affinity conflict",
            Conflict::Bind => "node(s) didn't find available persistent volumes to bind",
            Conflict::VolumeMissing => "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)",
        }
    }
}

/// A pod's claims, sorted as volume binding needs them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodClaims {
    /// Bound (volumeName set and the binding completed).
    pub bound: Vec<Arc<PersistentVolumeClaim>>,
    /// Not bound, of a class that waits for its first consumer: this pod.
    pub waiting: Vec<Arc<PersistentVolumeClaim>>,
    /// A bound claim whose phase is not `Bound` yet (the binder writes the status right after
    /// the binding): the pod waits the moment, rather than reach its node before it and fail
    /// its mount (skiff's choice; upstream's kubelet retries the mount).
    pub settling: bool,
}

impl PodClaims {
    /// Whether the pod may be bound to a node now (every claim bound).
    pub fn all_bound(&self) -> bool {
        self.waiting.is_empty() && !self.settling
    }

    /// The claims placed on a node that is gone count as not placed (they are placed again,
    /// their annotation rewritten): a volume cannot be made on a missing node.
    pub fn forget_gone_nodes(mut self, nodes: &[Arc<Node>]) -> PodClaims {
        for claim in &mut self.waiting {
            let gone = annotation(&claim.metadata, SELECTED_NODE)
                .is_some_and(|p| !nodes.iter().any(|n| name(&n.metadata) == p));
            if gone {
                let mut fresh = claim.as_ref().clone();
                if let Some(a) = fresh.metadata.annotations.as_mut() {
                    a.remove(SELECTED_NODE);
                }
                *claim = Arc::new(fresh);
            }
        }
        self
    }
}

fn fully_bound(claim: &PersistentVolumeClaim) -> bool {
    !claim_volume(claim).is_empty() && has_annotation(&claim.metadata, BIND_COMPLETED)
}

/// The pod's claims (`claims`: those of its namespace), or why no node can take it.
pub fn pod_claims(
    pod: &Pod,
    claims: &[Arc<PersistentVolumeClaim>],
    classes: &[Arc<StorageClass>],
) -> Result<PodClaims, Unschedulable> {
    let mut found = Vec::new();
    for wanted in claim_names(pod) {
        let Some(claim) = claims.iter().find(|c| name(&c.metadata) == wanted) else {
            return Err(Unschedulable::NotFound(wanted.to_string()));
        };
        if claim_phase(claim) == LOST {
            return Err(Unschedulable::Lost { claim: wanted.to_string(), volume: claim_volume(claim).to_string() });
        }
        if claim.metadata.deletion_timestamp.is_some() {
            return Err(Unschedulable::Deleting(wanted.to_string()));
        }
        found.push(claim.clone());
    }
    let mut sorted = PodClaims::default();
    for claim in found {
        if fully_bound(&claim) {
            sorted.settling |= claim_phase(&claim) != BOUND;
            sorted.bound.push(claim);
        } else if is_delay_binding(&claim, classes) && claim_volume(&claim).is_empty() {
            sorted.waiting.push(claim);
        } else {
            // Immediate (or asked for a volume by name): the binder's, not the scheduler's.
            return Err(Unschedulable::UnboundImmediate);
        }
    }
    Ok(sorted)
}

/// What a node needs done for the pod's waiting claims.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    /// Static volumes for claims: each volume reserved for its claim.
    pub reserve: Vec<(Arc<PersistentVolume>, Arc<PersistentVolumeClaim>)>,
    /// Claims whose volume the class's provisioner is to make on the node.
    pub provision: Vec<Arc<PersistentVolumeClaim>>,
}

impl Placement {
    /// The updates that make the placement on `node` (volumes' claimRefs, claims' selected
    /// node); what is already so is left out.
    pub fn writes(&self, node: &str) -> (Vec<PersistentVolume>, Vec<PersistentVolumeClaim>) {
        let volumes = self.reserve.iter().filter_map(|(v, c)| volume_bound_to(v, c)).collect();
        let claims = self.provision.iter().filter_map(|c| claim_on_node(c, node)).collect();
        (volumes, claims)
    }
}

/// Whether the pod's volumes can be on `node`, and how (upstream's `FindPodVolumes`).
pub fn place(
    claims: &PodClaims,
    node: &Node,
    volumes: &[Arc<PersistentVolume>],
    classes: &[Arc<StorageClass>],
) -> Result<Placement, Conflict> {
    for claim in &claims.bound {
        let Some(volume) = volumes.iter().find(|v| name(&v.metadata) == claim_volume(claim)) else {
            return Err(Conflict::VolumeMissing);
        };
        if !volume_fits_node(volume, node) {
            return Err(Conflict::NodeAffinity);
        }
    }
    let mut placement = Placement::default();
    let mut to_match = Vec::new();
    for claim in &claims.waiting {
        match annotation(&claim.metadata, SELECTED_NODE) {
            Some(n) if Some(n) != node.metadata.name.as_deref() => return Err(Conflict::Bind),
            Some(_) => placement.provision.push(claim.clone()),
            None => to_match.push(claim.clone()),
        }
    }
    // Smallest requests first, so each gets the smallest volume that fits.
    to_match.sort_by_key(|c| requested(c));
    let mut chosen = HashSet::new();
    for claim in to_match {
        let class = claim_class(&claim);
        let candidates = volumes.iter().filter(|v| volume_class(v) == class || is_bound_to_claim(v, &claim));
        match find_matching(&claim, candidates, Some(node), &chosen, true) {
            Some(volume) => {
                chosen.insert(name(&volume.metadata).to_string());
                placement.reserve.push((volume.clone(), claim));
            }
            None => placement.provision.push(claim),
        }
    }
    for claim in &placement.provision {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let can = find_class(classes, claim_class(claim)).is_some_and(|c| {
            !c.provisioner.is_empty()
                && c.provisioner != NO_PROVISIONER
                && topology_allows(c.allowed_topologies.as_deref(), &labels)
        });
        if !can {
            return Err(Conflict::Bind);
        }
    }
    Ok(placement)
}

#[cfg(test)]
mod tests {
    use super::super::LOCAL_PATH;
    use super::super::fixtures::{claim, class, node, on_node, pod, volume};
    use super::*;
    use serde_json::json;

    fn bound(name: &str, volume: &str) -> Arc<PersistentVolumeClaim> {
        let mut c = claim(name, json!({"volumeName": volume}));
        c.metadata.annotations = Some([(BIND_COMPLETED.to_string(), "yes".to_string())].into());
        if let Some(s) = c.status.as_mut() {
            s.phase = Some(BOUND.into());
        }
        Arc::new(c)
    }

    fn classes() -> Vec<Arc<StorageClass>> {
        vec![
            Arc::new(class("wait", LOCAL_PATH, Some("WaitForFirstConsumer"))),
            Arc::new(class("manual", NO_PROVISIONER, Some("WaitForFirstConsumer"))),
            Arc::new(class("now", LOCAL_PATH, Some("Immediate"))),
        ]
    }

    #[test]
    fn claims_that_stop_every_node() {
        let p = pod("web", &["data"], "", "Pending");
        let err =
            |claims: &[Arc<PersistentVolumeClaim>]| pod_claims(&p, claims, &classes()).err().map(|e| e.to_string());
        assert_eq!(err(&[]), Some("persistentvolumeclaim \"data\" not found".into()));
        let mut deleting = claim("data", json!({"storageClassName": "wait"}));
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(err(&[Arc::new(deleting)]), Some("persistentvolumeclaim \"data\" is being deleted".into()));
        let unbound = |class: serde_json::Value| Arc::new(claim("data", class));
        let immediate = Some("pod has unbound immediate PersistentVolumeClaims".to_string());
        assert_eq!(err(&[unbound(json!({"storageClassName": "now"}))]), immediate);
        assert_eq!(err(&[unbound(json!({"storageClassName": ""}))]), immediate);
        assert_eq!(err(&[unbound(json!({"storageClassName": "missing"}))]), immediate);
        let mut lost = claim("data", json!({"volumeName": "gone"}));
        lost.status = Some(k8s_openapi::api::core::v1::PersistentVolumeClaimStatus {
            phase: Some(LOST.into()),
            ..Default::default()
        });
        assert_eq!(
            err(&[Arc::new(lost)]),
            Some("persistentvolumeclaim \"data\" bound to non-existent persistentvolume \"gone\"".into())
        );
        let ok = pod_claims(&p, &[unbound(json!({"storageClassName": "wait"}))], &classes()).expect("schedulable");
        assert_eq!((ok.bound.len(), ok.waiting.len(), ok.all_bound()), (0, 1, false));
        let ok = pod_claims(&p, &[bound("data", "v")], &classes()).expect("schedulable");
        assert!(ok.all_bound());
        // Bound a moment ago, its phase not written yet: the pod waits for it.
        let mut settling = (*bound("data", "v")).clone();
        settling.status.as_mut().expect("status").phase = Some("Pending".into());
        let ok = pod_claims(&p, &[Arc::new(settling)], &classes()).expect("schedulable");
        assert_eq!((ok.bound.len(), ok.settling, ok.all_bound()), (1, true, false));
    }

    #[test]
    fn bound_volumes_pin_the_pod_to_their_nodes() {
        let claims = PodClaims { bound: vec![bound("data", "v")], ..Default::default() };
        let volumes = [Arc::new(volume("v", json!({"nodeAffinity": on_node("a")})))];
        assert_eq!(place(&claims, &node("a"), &volumes, &classes()), Ok(Placement::default()));
        assert_eq!(place(&claims, &node("b"), &volumes, &classes()), Err(Conflict::NodeAffinity));
        assert_eq!(place(&claims, &node("a"), &[], &classes()), Err(Conflict::VolumeMissing));
        assert_eq!(Conflict::NodeAffinity.text(), "node(s) had volume node affinity conflict");
    }

    #[test]
    fn waiting_claims_take_a_local_volume_or_are_provisioned() {
        let waiting = Arc::new(claim("data", json!({"storageClassName": "manual"})));
        let claims = PodClaims { waiting: vec![waiting.clone()], ..Default::default() };
        let volumes =
            [Arc::new(volume("local-a", json!({"storageClassName": "manual", "nodeAffinity": on_node("a")})))];
        // A static volume on node a: reserved there; nothing on b and no provisioner.
        let on_a = place(&claims, &node("a"), &volumes, &classes()).expect("fits a");
        assert_eq!(on_a.reserve.len(), 1);
        let (reserve, mark) = on_a.writes("a");
        let r = reserve[0].spec.as_ref().and_then(|s| s.claim_ref.clone()).expect("claimRef");
        assert_eq!((r.name.as_deref(), mark.len()), (Some("data"), 0));
        assert_eq!(place(&claims, &node("b"), &volumes, &classes()), Err(Conflict::Bind));
        // A provisioning class: any node, the claim marked with it.
        let dynamic = PodClaims {
            waiting: vec![Arc::new(claim("data", json!({"storageClassName": "wait"})))],
            ..Default::default()
        };
        let on_b = place(&dynamic, &node("b"), &[], &classes()).expect("fits b");
        let (_, mark) = on_b.writes("b");
        assert_eq!(annotation(&mark[0].metadata, SELECTED_NODE), Some("b"));
        // Once marked, only that node (while it exists).
        let marked = PodClaims { waiting: mark.into_iter().map(Arc::new).collect(), ..Default::default() };
        assert_eq!(place(&marked, &node("a"), &[], &classes()), Err(Conflict::Bind));
        let moved = marked.clone().forget_gone_nodes(&[Arc::new(node("a"))]);
        let (_, mark) = place(&moved, &node("a"), &[], &classes()).expect("fits a").writes("a");
        assert_eq!(annotation(&mark[0].metadata, SELECTED_NODE), Some("a"));
        let again = place(&marked, &node("b"), &[], &classes()).expect("fits b");
        assert_eq!(again.writes("b"), (vec![], vec![]));
    }

    #[test]
    fn two_claims_of_a_pod_never_share_a_volume() {
        let a = Arc::new(claim("a", json!({"storageClassName": "manual"})));
        let b = Arc::new(claim("b", json!({"storageClassName": "manual"})));
        let claims = PodClaims { waiting: vec![a, b], ..Default::default() };
        let one = [Arc::new(volume("only", json!({"storageClassName": "manual", "nodeAffinity": on_node("a")})))];
        assert_eq!(place(&claims, &node("a"), &one, &classes()), Err(Conflict::Bind));
        let two = [
            one[0].clone(),
            Arc::new(volume("second", json!({"storageClassName": "manual", "nodeAffinity": on_node("a")}))),
        ];
        assert_eq!(place(&claims, &node("a"), &two, &classes()).map(|p| p.reserve.len()), Ok(2));
    }
}
