//! What the binder does about one claim (upstream's `syncClaim`), pure. A claim not yet bound
//! gets the best volume, or is handed to its class's provisioner, or waits (for its first
//! consumer, for a volume, for its class); a bound one keeps its volume, or is `Lost` when
//! the volume is gone or bound elsewhere.

use super::matching::{best_match, is_bound_to_claim, satisfies};
use super::placement::local_volume_node;
use super::{
    BIND_COMPLETED, BOUND_BY_CONTROLLER, LOCAL_PATH, LOST, Note, PENDING, SELECTED_NODE, annotation, claim_class,
    claim_has_class, claim_names, claim_volume, default_class, find_class, has_annotation, is_delay_binding,
    is_terminated, name, uid,
};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use std::sync::Arc;

/// What the binder reads besides the claim (from the caches).
pub struct View<'a> {
    pub volumes: &'a [Arc<PersistentVolume>],
    pub classes: &'a [Arc<StorageClass>],
    pub nodes: &'a [Arc<Node>],
    /// Every claim (where local volumes are already placed).
    pub claims: &'a [Arc<PersistentVolumeClaim>],
    /// The pods of the claim's namespace (who waits for it).
    pub pods: &'a [Arc<Pod>],
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClaimAction {
    None,
    /// Bind the claim and this volume: the volume's claimRef, its phase, the claim's
    /// volumeName and annotations, its phase (in that order).
    Bind(Arc<PersistentVolume>),
    /// The claim's status in `phase`, without a volume's modes and capacity; `on_change` is
    /// recorded only if the phase changes.
    Phase {
        phase: &'static str,
        on_change: Option<Note>,
    },
    /// The claim named no class: give it the default one.
    AssignClass(String),
    /// Hand the claim to `provisioner` (and place it on `node`), then record `ExternalProvisioning`.
    Provision {
        provisioner: String,
        node: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimPlan {
    pub action: ClaimAction,
    /// Recorded about the claim whatever the action does.
    pub events: Vec<Note>,
}

fn plan(action: ClaimAction, events: Vec<Note>) -> ClaimPlan {
    ClaimPlan { action, events }
}

pub fn sync_claim(claim: &PersistentVolumeClaim, view: &View) -> ClaimPlan {
    if has_annotation(&claim.metadata, BIND_COMPLETED) { bound(claim, view) } else { unbound(claim, view) }
}

fn unbound(claim: &PersistentVolumeClaim, view: &View) -> ClaimPlan {
    let pending = |events| plan(ClaimAction::Phase { phase: PENDING, on_change: None }, events);
    let wanted = claim_volume(claim);
    if wanted.is_empty() {
        let delay = is_delay_binding(claim, view.classes);
        if let Some(volume) = best_match(claim, view.volumes, delay) {
            return plan(ClaimAction::Bind(volume.clone()), vec![]);
        }
        if !claim_has_class(claim)
            && let Some(class) = default_class(view.classes)
        {
            return plan(ClaimAction::AssignClass(name(&class.metadata).to_string()), vec![]);
        }
        if delay && !has_annotation(&claim.metadata, SELECTED_NODE) {
            return pending(vec![waiting_for_consumer(claim, view.pods)]);
        }
        if !claim_class(claim).is_empty() {
            return provision(claim, view);
        }
        let why = "no persistent volumes available for this claim and no storage class is set";
        return pending(vec![Note::normal("FailedBinding", why)]);
    }
    let Some(volume) = view.volumes.iter().find(|v| name(&v.metadata) == wanted) else {
        // Asked for a volume that does not exist (yet).
        return pending(vec![]);
    };
    if volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_none() {
        return match satisfies(volume, claim) {
            Ok(()) => plan(ClaimAction::Bind(volume.clone()), vec![]),
            Err(e) => pending(vec![Note::warning(
                "VolumeMismatch",
                format!("Cannot bind to requested volume {wanted:?}: {e}"),
            )]),
        };
    }
    if is_bound_to_claim(volume, claim) {
        return plan(ClaimAction::Bind(volume.clone()), vec![]);
    }
    let taken = Note::warning("FailedBinding", format!("volume {wanted:?} already bound to a different claim."));
    if has_annotation(&claim.metadata, BOUND_BY_CONTROLLER) {
        // Only a user removing bind-completed gets here: leave it as it is.
        return plan(ClaimAction::None, vec![taken]);
    }
    pending(vec![taken])
}

/// `WaitForFirstConsumer`, or `WaitForPodScheduled` when pods using it wait for the scheduler.
fn waiting_for_consumer(claim: &PersistentVolumeClaim, pods: &[Arc<Pod>]) -> Note {
    let claim_name = name(&claim.metadata);
    let waiting: Vec<&str> = pods
        .iter()
        .filter(|p| p.metadata.namespace == claim.metadata.namespace && !is_terminated(p))
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or_default().is_empty())
        .filter(|p| claim_names(p).any(|c| c == claim_name))
        .map(|p| name(&p.metadata))
        .collect();
    match waiting.as_slice() {
        [] => Note::normal("WaitForFirstConsumer", "waiting for first consumer to be created before binding"),
        [one] => Note::normal("WaitForPodScheduled", format!("waiting for pod {one} to be scheduled")),
        many => Note::normal("WaitForPodScheduled", format!("waiting for pods {} to be scheduled", many.join(","))),
    }
}

/// Hand the claim to its class's provisioner (upstream's `provisionClaim`): skiff has no
/// in-tree volume plugins, so any `kubernetes.io/` provisioner is one that cannot be found.
fn provision(claim: &PersistentVolumeClaim, view: &View) -> ClaimPlan {
    let class_name = claim_class(claim);
    let failed = |why: String| plan(ClaimAction::None, vec![Note::warning("ProvisioningFailed", why)]);
    let Some(class) = find_class(view.classes, class_name) else {
        return failed(format!("storageclass.storage.k8s.io {class_name:?} not found"));
    };
    let provisioner = class.provisioner.clone();
    if provisioner.starts_with("kubernetes.io/") {
        return failed(format!("no volume plugin matched name: {provisioner}"));
    }
    // A local volume of an Immediate class is placed by the binder: now, or again if its node is gone.
    let placed = annotation(&claim.metadata, SELECTED_NODE);
    let gone = placed.is_some_and(|p| !view.nodes.iter().any(|n| name(&n.metadata) == p));
    let mut node = None;
    if provisioner == LOCAL_PATH && !is_delay_binding(claim, view.classes) && (placed.is_none() || gone) {
        match local_volume_node(class, view.nodes, view.volumes, view.claims) {
            Some(n) => node = Some(n),
            None => return failed(format!("no Ready, schedulable node to put a {LOCAL_PATH} volume on")),
        }
    }
    plan(ClaimAction::Provision { provisioner, node }, vec![])
}

fn bound(claim: &PersistentVolumeClaim, view: &View) -> ClaimPlan {
    let lost = |reason: &'static str, why: &str| {
        plan(ClaimAction::Phase { phase: LOST, on_change: Some(Note::warning(reason, why)) }, vec![])
    };
    let wanted = claim_volume(claim);
    if wanted.is_empty() {
        return lost("ClaimLost", "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!");
    }
    let Some(volume) = view.volumes.iter().find(|v| name(&v.metadata) == wanted) else {
        return lost("ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!");
    };
    match volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
        // Unbound meanwhile (or not yet seen bound): bind it again.
        None => plan(ClaimAction::Bind(volume.clone()), vec![]),
        // All is well; binding again changes nothing that is right.
        Some(r) if r.uid.as_deref().unwrap_or_default() == uid(&claim.metadata) => {
            plan(ClaimAction::Bind(volume.clone()), vec![])
        }
        Some(_) => lost("ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly"),
    }
}

#[cfg(test)]
mod tests;
