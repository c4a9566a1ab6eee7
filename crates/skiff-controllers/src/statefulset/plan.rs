//! One round of the StatefulSet controller, decided by a pure function as upstream's
//! `updateStatefulSet` decides it:
//! 1. every ordinal in `[start, start+replicas)` gets its pod (its claims first), in order; a
//!    failed or finished pod is deleted to be made again; with `OrderedReady` nothing goes on
//!    past a replica that is missing, terminating, or not Running and Ready (and available);
//! 2. pods of ordinals past the end are deleted, highest first (`OrderedReady`: one at a time,
//!    each gone before the next, and only while every kept replica is healthy);
//! 3. `RollingUpdate`: the highest ordinal at or above `partition` not at the update revision is
//!    deleted (it comes back at the update revision), one at a time, each back and healthy first
//!    (or up to `maxUnavailable` at a time when it is set); `OnDelete`: only pods a user deletes.
//!
//! Below the partition, a pod that must be made again is made at the current revision.

use super::identity::{self, ordinal};
use super::retention;
use super::revision::Revision;
use crate::replicaset::{is_available, ready_since};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How soon a replica held back by a claim the garbage collector is about to delete looks again.
const STALE_CLAIM_RETRY: Duration = Duration::from_secs(2);

/// Why a pod is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// It failed, or its containers finished: it is made again.
    Failed,
    /// Its ordinal is past the end.
    ScaledDown,
    /// It is of an older revision than the update revision.
    Update,
}

/// What the round does, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create the replica's missing claims, then its pod.
    CreatePod {
        pod: Box<Pod>,
        claims: Vec<PersistentVolumeClaim>,
    },
    /// Create the claims a pending pod lacks (one deleted behind the set's back).
    CreateClaims {
        pod: String,
        claims: Vec<PersistentVolumeClaim>,
    },
    DeletePod {
        name: String,
        why: Why,
    },
    /// Give the pod back the labels that say who it is.
    Relabel {
        name: String,
        labels: BTreeMap<String, String>,
    },
    /// A claim's owner references, as the retention policy wants them.
    SetClaimOwners {
        claim: String,
        owners: Vec<OwnerReference>,
    },
    /// The replica cannot be made yet: its claim `claim` is being deleted.
    Blocked {
        pod: String,
        claim: String,
    },
}

/// A replica's claims, as the store has them.
enum Claims {
    /// Those to create.
    Missing(Vec<PersistentVolumeClaim>),
    /// One is being deleted: the replica waits until it is gone.
    Deleting(String),
    /// One is owned by an earlier pod of the replica (scaled away with `whenScaled: Delete`):
    /// the garbage collector is about to delete it, so the replica waits rather than reuse it
    /// (upstream's `PodClaimIsStale`).
    Stale,
}

#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub status: StatefulSetStatus,
    /// When to look again although nothing changes (a pod becoming available).
    pub requeue: Option<Duration>,
}

/// What the round is decided from.
pub struct Inputs<'a> {
    pub set: &'a StatefulSet,
    /// The set's pods.
    pub pods: &'a [Arc<Pod>],
    /// The claims of the set's namespace, by name.
    pub claims: &'a BTreeMap<String, Arc<PersistentVolumeClaim>>,
    pub current: &'a Revision,
    pub update: &'a Revision,
    pub collision_count: i32,
    pub now: Timestamp,
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && ready_since(pod).is_some()
}

fn healthy(pod: &Pod) -> bool {
    running_and_ready(pod) && !terminating(pod)
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// Upstream's `GetScaledValueFromIntOrPercent` rounding down, at least 1.
fn max_unavailable(value: &IntOrString, replicas: i32) -> i32 {
    let n = match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            i32::try_from(pct * i64::from(replicas) / 100).unwrap_or(1)
        }
    };
    n.max(1)
}

/// The round's bookkeeping: the steps so far and the set's facts.
struct Round<'a> {
    inputs: &'a Inputs<'a>,
    min_ready: i64,
    steps: Vec<Step>,
    requeue: Option<Duration>,
}

impl Round<'_> {
    fn look_again(&mut self, after: Duration) {
        self.requeue = Some(self.requeue.map_or(after, |r| r.min(after)));
    }

    /// Ready for minReadySeconds; if only ready, look again when it will be available.
    fn available(&mut self, pod: &Pod) -> bool {
        if is_available(pod, self.min_ready, self.inputs.now) {
            return true;
        }
        if let Some(since) = ready_since(pod) {
            let left = (since.as_second() + self.min_ready - self.inputs.now.as_second()).max(1);
            self.look_again(Duration::from_secs(u64::try_from(left).unwrap_or(1)));
        }
        false
    }

    /// Healthy and available: what a rolling update waits for before the next pod.
    fn settled(&mut self, pod: &Pod) -> bool {
        healthy(pod) && self.available(pod)
    }

    /// The replica's claims that do not exist yet, or the one being deleted that holds it back.
    fn missing_claims(&self, ordinal: i32, pod: Option<&Pod>) -> Claims {
        let mut out = Vec::new();
        for mut claim in identity::claims(self.inputs.set, ordinal) {
            let name = claim.metadata.name.clone().unwrap_or_default();
            match self.inputs.claims.get(&name) {
                Some(c) if c.metadata.deletion_timestamp.is_some() => return Claims::Deleting(name),
                Some(c) if retention::owned_by_another_pod(self.inputs.set, c, ordinal, pod) => return Claims::Stale,
                Some(_) => {}
                None => {
                    if let Some(owners) = retention::owners(self.inputs.set, &claim, ordinal, pod) {
                        claim.metadata.owner_references = (!owners.is_empty()).then_some(owners);
                    }
                    out.push(claim);
                }
            }
        }
        Claims::Missing(out)
    }

    /// The replica's existing claims whose owners the retention policy changes.
    fn fix_claim_owners(&mut self, ordinal: i32, pod: &Pod) {
        for claim in identity::claims(self.inputs.set, ordinal) {
            let name = claim.metadata.name.clone().unwrap_or_default();
            let Some(have) = self.inputs.claims.get(&name) else { continue };
            if let Some(owners) = retention::owners(self.inputs.set, have, ordinal, Some(pod)) {
                self.steps.push(Step::SetClaimOwners { claim: name, owners });
            }
        }
    }

    /// Step 1 for one kept ordinal; false stops the round (`OrderedReady`).
    fn replica(&mut self, ordinal: i32, pod: Option<&Pod>, monotonic: bool) -> bool {
        let Inputs { set, current, update, .. } = *self.inputs;
        let Some(pod) = pod else {
            let rolling = set.spec.update_strategy.as_ref();
            let partition = rolling
                .filter(|s| s.type_.as_deref() == Some("RollingUpdate"))
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0);
            let at = if ordinal < identity::start(set).saturating_add(partition) { current } else { update };
            let pod_name = identity::pod_name(set, ordinal);
            match self.missing_claims(ordinal, None) {
                Claims::Missing(claims) => {
                    let pod = identity::new_pod(set, &at.template, &at.name, ordinal);
                    self.steps.push(Step::CreatePod { pod: Box::new(pod), claims });
                }
                Claims::Deleting(claim) => self.steps.push(Step::Blocked { pod: pod_name, claim }),
                Claims::Stale => self.look_again(STALE_CLAIM_RETRY),
            }
            return !monotonic;
        };
        if matches!(phase(pod), "Failed" | "Succeeded") {
            if !terminating(pod) {
                self.steps.push(Step::DeletePod { name: name(pod), why: Why::Failed });
            }
            return !monotonic;
        }
        if phase(pod) == "Pending" {
            match self.missing_claims(ordinal, Some(pod)) {
                Claims::Missing(claims) if claims.is_empty() => {}
                Claims::Missing(claims) => self.steps.push(Step::CreateClaims { pod: name(pod), claims }),
                Claims::Deleting(claim) => self.steps.push(Step::Blocked { pod: name(pod), claim }),
                // An earlier pod's reference on a claim of a live pod: fix_claim_owners drops it.
                Claims::Stale => {}
            }
        }
        if monotonic && (terminating(pod) || !running_and_ready(pod) || !self.available(pod)) {
            return false;
        }
        if !identity::identity_matches(set, pod) {
            let mut labels = pod.metadata.labels.clone().unwrap_or_default();
            labels.extend(identity::identity_labels(set, ordinal));
            self.steps.push(Step::Relabel { name: name(pod), labels });
        }
        self.fix_claim_owners(ordinal, pod);
        true
    }
}

/// Upstream's `computeReplicaStatus` and `completeRollingUpdate`.
fn status(inputs: &Inputs, min_ready: i64) -> StatefulSetStatus {
    let Inputs { set, pods, current, update, now, .. } = *inputs;
    let (mut replicas, mut ready, mut available, mut at_current, mut at_update) = (0, 0, 0, 0, 0);
    for pod in pods {
        replicas += 1;
        if running_and_ready(pod) {
            ready += 1;
            if is_available(pod, min_ready, now) {
                available += 1;
            }
        }
        if !terminating(pod) {
            at_current += i32::from(identity::revision(pod) == current.name);
            at_update += i32::from(identity::revision(pod) == update.name);
        }
    }
    let rolling = set.spec.update_strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("RollingUpdate");
    let mut current_revision = current.name.clone();
    if rolling && at_update == replicas && ready == replicas {
        (at_current, current_revision) = (at_update, update.name.clone());
    }
    StatefulSetStatus {
        observed_generation: set.metadata.generation,
        replicas,
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        current_replicas: Some(at_current),
        updated_replicas: Some(at_update),
        current_revision: Some(current_revision),
        update_revision: Some(update.name.clone()),
        collision_count: Some(inputs.collision_count),
        conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
    }
}

/// Pure: the round for the set.
pub fn plan(inputs: &Inputs) -> Plan {
    let set = inputs.set;
    let spec = set.spec.clone();
    let min_ready = i64::from(spec.min_ready_seconds.unwrap_or(0));
    let mut round = Round { inputs, min_ready, steps: Vec::new(), requeue: None };
    let status = status(inputs, min_ready);
    if set.metadata.deletion_timestamp.is_some() {
        return Plan { status, ..Default::default() };
    }
    let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
    let (start, count) = (identity::start(set), identity::replicas(set));
    let by_ordinal: BTreeMap<i32, &Pod> = inputs.pods.iter().filter_map(|p| Some((ordinal(p)?, p.as_ref()))).collect();
    let end = start.saturating_add(count);
    let kept: Vec<(i32, Option<&Pod>)> = (start..end).map(|o| (o, by_ordinal.get(&o).copied())).collect();
    // Highest ordinal first; a name without one last.
    let mut condemned: Vec<&Pod> = inputs
        .pods
        .iter()
        .map(AsRef::as_ref)
        .filter(|p| ordinal(p).is_none_or(|o| !retention::in_range(set, o)))
        .collect();
    condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(p).unwrap_or(-1)));
    let first_unhealthy_condemned = condemned.iter().rev().find(|p| !healthy(p)).map(|p| name(p));
    let done = |round: Round| Plan { steps: round.steps, status: status.clone(), requeue: round.requeue };
    // A replica Ready but not yet available counts once it is: look again then.
    for pod in inputs.pods.iter().filter(|p| running_and_ready(p)) {
        round.available(pod);
    }

    for (ordinal, pod) in &kept {
        if !round.replica(*ordinal, *pod, monotonic) {
            return done(round);
        }
    }
    for pod in &condemned {
        if let Some(o) = ordinal(pod) {
            round.fix_claim_owners(o, pod);
        }
    }
    for pod in &condemned {
        if terminating(pod) {
            if monotonic {
                return done(round);
            }
            continue;
        }
        let first = first_unhealthy_condemned.as_deref() == Some(name(pod).as_str());
        if monotonic && !first && (!running_and_ready(pod) || !round.available(pod)) {
            return done(round);
        }
        round.steps.push(Step::DeletePod { name: name(pod), why: Why::ScaledDown });
        if monotonic {
            return done(round);
        }
    }
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    if strategy.type_.as_deref() == Some("OnDelete") {
        return done(round);
    }
    let rolling = strategy.rolling_update.unwrap_or_default();
    let update_min = usize::try_from(rolling.partition.unwrap_or(0)).unwrap_or(0);
    let outdated = |pod: &Pod| identity::revision(pod) != inputs.update.name && !terminating(pod);
    if let Some(limit) = rolling.max_unavailable.as_ref() {
        let limit = max_unavailable(limit, count);
        let unavailable = kept.iter().filter(|(_, p)| p.is_none_or(|p| !round.settled(p))).count();
        let mut budget = usize::try_from(limit).unwrap_or(1).saturating_sub(unavailable);
        for (_, pod) in kept.iter().skip(update_min).rev() {
            if budget == 0 {
                break;
            }
            if let Some(pod) = pod.filter(|p| outdated(p)) {
                round.steps.push(Step::DeletePod { name: name(pod), why: Why::Update });
                budget -= 1;
            }
        }
        return done(round);
    }
    for (_, pod) in kept.iter().skip(update_min).rev() {
        let Some(pod) = pod else { break };
        if outdated(pod) {
            round.steps.push(Step::DeletePod { name: name(pod), why: Why::Update });
            break;
        }
        if !round.settled(pod) {
            break;
        }
    }
    done(round)
}

#[cfg(test)]
mod tests;
