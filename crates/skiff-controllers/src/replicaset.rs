//! The ReplicaSet controller: keeps `spec.replicas` pods from the template running, adopting
//! matching orphans and releasing pods that no longer match, and reports what it sees in
//! `status` (with a `ReplicaFailure` condition while creates or deletes fail). What to do is
//! decided by the pure [`plan`] and [`with_failure`]; [`run_for`] watches the objects and pods
//! and carries plans out. As upstream's, it keeps ReplicationControllers too: any
//! [`Replicated`] kind, each object read as the ReplicaSet it stands for
//! ([`crate::replicationcontroller`]); [`run`] keeps the ReplicaSets.

use crate::identity::Identity;
use crate::informers::Informers;
use crate::owner::{controller_of, controller_reference, object_reference};
use crate::work::{self, Key};
use jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde::de::DeserializeOwned;
use serde_json::json;
use skiff_client::events::{Recorder, Type};
use skiff_core::selector::LabelSelector;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// The most pods one round creates or deletes (upstream's `burstReplicas`).
const BURST: usize = 500;
/// How long a round waits for the watch cache to show its own creates and deletes, so the next
/// round does not count them twice (upstream's expectations).
const SETTLE: Duration = Duration::from_secs(5);
/// Every ReplicaSet is looked at again this often, whatever the events.
const RESYNC: Duration = Duration::from_secs(30);

/// The condition a failed create or delete sets (upstream's `ReplicaSetReplicaFailure`, and
/// `ReplicationControllerReplicaFailure`).
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// A kind the controller keeps: ReplicaSets, and ReplicationControllers (upstream's replication
/// controller is the ReplicaSet controller over RCs converted to ReplicaSets). Pods it makes and
/// adopts are owned by the object itself; its status, the same fields in both kinds, is written
/// back to it.
pub trait Replicated:
    Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
    /// The kind, as the controller's log lines name it.
    const KIND_NAME: &'static str;
    /// Who the controller acts as.
    const IDENTITY: Identity;
    /// The component its events come from.
    const COMPONENT: &'static str;
    /// The object as the ReplicaSet it stands for: its metadata, replicas, minReadySeconds,
    /// selector, template and status.
    fn as_replica_set(&self) -> Cow<'_, ReplicaSet>;
}

impl Replicated for ReplicaSet {
    const KIND_NAME: &'static str = "ReplicaSet";
    const IDENTITY: Identity = crate::identity::REPLICASET;
    const COMPONENT: &'static str = "replicaset-controller";
    fn as_replica_set(&self) -> Cow<'_, ReplicaSet> {
        Cow::Borrowed(self)
    }
}

/// What one round does to one ReplicaSet.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Matching pods with no controller: take them (add our controller reference).
    pub adopt: Vec<String>,
    /// Our pods that no longer match the selector: let them go.
    pub release: Vec<String>,
    /// New pods to create from the template.
    pub create: usize,
    /// Our pods to delete, the ones upstream would delete first.
    pub delete: Vec<String>,
    pub status: ReplicaSetStatus,
    /// When to look again although nothing changes (a pod becoming available after minReadySeconds).
    pub requeue: Option<Duration>,
}

fn labels(meta: &ObjectMeta) -> BTreeMap<String, String> {
    meta.labels.clone().unwrap_or_default()
}

fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("");
    pod.metadata.deletion_timestamp.is_none() && phase != "Succeeded" && phase != "Failed"
}

/// When the pod became Ready, if it is.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(ready.last_transition_time.as_ref().map_or(Timestamp::UNIX_EPOCH, |t| t.0))
}

/// Ready for at least `min_ready` seconds at `now`.
pub fn is_available(pod: &Pod, min_ready: i64, now: Timestamp) -> bool {
    ready_since(pod).is_some_and(|t| min_ready == 0 || t.as_second() + min_ready <= now.as_second())
}

/// Upstream's `ActivePodsWithRanks` order: the pod to delete first sorts first (unscheduled,
/// then pending, not ready, ready for less time, restarted more, newer).
fn deletion_order(pod: &Pod) -> impl Ord {
    let assigned = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    let phase = match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => 0,
        Some("Running") => 2,
        _ => 1,
    };
    let ready = ready_since(pod);
    let restarts: i32 = (pod.status.as_ref().and_then(|s| s.container_statuses.as_ref()).into_iter().flatten())
        .map(|c| c.restart_count)
        .sum();
    let created = pod.metadata.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second());
    (
        assigned,
        phase,
        ready.is_some(),
        std::cmp::Reverse(ready.map_or(0, |t| t.as_second())),
        std::cmp::Reverse(restarts),
        std::cmp::Reverse(created),
    )
}

/// Pure: the round for `rs`, given every pod in its namespace, at `now`.
pub fn plan(rs: &ReplicaSet, pods: &[Arc<Pod>], now: Timestamp) -> Plan {
    let spec = rs.spec.clone();
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let selector = LabelSelector::from_api(&serde_json::to_value(&spec.selector).unwrap_or_default());
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let mut out = Plan::default();
    let mut ours: Vec<&Pod> = Vec::new();
    for pod in pods {
        let matches = !selector.is_empty() && selector.matches(&labels(&pod.metadata));
        match controller_of(&pod.metadata) {
            Some(r) if r.uid == uid => {
                if matches {
                    ours.push(pod);
                } else {
                    out.release.push(pod.metadata.name.clone().unwrap_or_default());
                }
            }
            Some(_) => {}
            None if matches && !deleting && pod.metadata.deletion_timestamp.is_none() => {
                out.adopt.push(pod.metadata.name.clone().unwrap_or_default());
                ours.push(pod);
            }
            None => {}
        }
    }
    let mut active: Vec<&Pod> = ours.iter().copied().filter(|p| is_active(p)).collect();
    let wanted = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
    if !deleting {
        if active.len() < wanted {
            out.create = (wanted - active.len()).min(BURST);
        } else if active.len() > wanted {
            active.sort_by_key(|p| deletion_order(p));
            let excess = (active.len() - wanted).min(BURST);
            out.delete = active[..excess].iter().map(|p| p.metadata.name.clone().unwrap_or_default()).collect();
        }
    }
    let active: Vec<&Pod> = ours.iter().copied().filter(|p| is_active(p)).collect();
    let min_ready = i64::from(spec.min_ready_seconds.unwrap_or(0));
    let template_labels = spec.template.as_ref().map(|t| labels(t.metadata.as_ref().unwrap_or(&ObjectMeta::default())));
    let fully = active
        .iter()
        .filter(|p| {
            let l = labels(&p.metadata);
            template_labels.iter().flatten().all(|(k, v)| l.get(k) == Some(v))
        })
        .count();
    let ready = active.iter().filter(|p| ready_since(p).is_some()).count();
    let available = active.iter().filter(|p| is_available(p, min_ready, now)).count();
    if available < ready {
        // A pod becomes available minReadySeconds after it became ready: look again then.
        out.requeue = Some(Duration::from_secs(u64::try_from(min_ready).unwrap_or(0).max(1)));
    }
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    out.status = ReplicaSetStatus {
        replicas: count(active.len()),
        fully_labeled_replicas: Some(count(fully)),
        ready_replicas: Some(count(ready)),
        available_replicas: Some(count(available)),
        observed_generation: rs.metadata.generation,
        conditions: rs.status.as_ref().and_then(|s| s.conditions.clone()),
        ..Default::default()
    };
    out
}

/// Pure: `status` (a [`plan`]'s) after the round's creates and deletes, which failed with
/// `failure` (the error's message) or went through. As upstream's `calculateStatus`: the first
/// failure sets `ReplicaFailure` (`FailedCreate` when pods were missing, `FailedDelete` when
/// there were too many), one already there is kept, and a round that goes through removes it.
pub fn with_failure(
    mut status: ReplicaSetStatus,
    plan: &Plan,
    failure: Option<&str>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let mut conditions = status.conditions.take().unwrap_or_default();
    let existing = conditions.iter().position(|c| c.type_.as_deref() == Some(REPLICA_FAILURE));
    match (failure, existing) {
        (Some(message), None) => {
            let reason = if plan.create > 0 {
                Some("FailedCreate")
            } else if !plan.delete.is_empty() {
                Some("FailedDelete")
            } else {
                None
            };
            conditions.push(ReplicaSetCondition {
                type_: Some(REPLICA_FAILURE.into()),
                status: Some("True".into()),
                reason: reason.map(String::from),
                message: Some(message.into()),
                last_transition_time: Some(Time(now)),
            });
        }
        (None, Some(i)) => {
            conditions.remove(i);
        }
        _ => {}
    }
    status.conditions = (!conditions.is_empty()).then_some(conditions);
    status
}

/// What an API error says: a Status's message (`pods "web-x" is forbidden: ...`), as upstream
/// words the errors it reports.
fn error_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// A new pod for `rs` from its template, owned by `owner` (the API server completes the name).
fn new_pod(rs: &ReplicaSet, owner: &OwnerReference) -> Pod {
    let template: PodTemplateSpec = rs.spec.template.clone().unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", rs.metadata.name.clone().unwrap_or_default())),
            namespace: rs.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

struct Ctx<K: Replicated> {
    client: kube::Client,
    objects: Store<K>,
    pods: Store<Pod>,
    recorder: Recorder,
}

/// Wait (a little) until the pod cache agrees with `settled`.
async fn settle(pods: &Store<Pod>, settled: impl Fn(&Store<Pod>) -> bool) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    while !settled(pods) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Create and delete what `plan` says: the names of the pods created, and the first failure.
/// Creates go as upstream's slow start: 1, 2, 4 ... pods at a time, stopping at the first failure.
async fn manage<K: Replicated>(
    ctx: &Ctx<K>,
    api: &Api<Pod>,
    (rs, plan): (&ReplicaSet, &Plan),
    owner: &OwnerReference,
    about: &ObjectReference,
) -> (Vec<String>, Result<(), kube::Error>) {
    let mut created = Vec::new();
    let mut batch = 1;
    while created.len() < plan.create {
        let n = batch.min(plan.create - created.len());
        let pod = new_pod(rs, owner);
        let params = PostParams::default();
        let results = futures::future::join_all((0..n).map(|_| api.create(&params, &pod))).await;
        let mut failed = None;
        for result in results {
            match result {
                Ok(pod) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let message = format!("Created pod: {name}");
                    ctx.recorder.object(about.clone(), Type::Normal, "SuccessfulCreate", &message).await;
                    created.push(name);
                }
                Err(e) => {
                    let message = format!("Error creating: {}", error_message(&e));
                    ctx.recorder.object(about.clone(), Type::Warning, "FailedCreate", &message).await;
                    failed = failed.or(Some(e));
                }
            }
        }
        if let Some(e) = failed {
            return (created, Err(e));
        }
        batch *= 2;
    }
    let deleted = work::delete_pods(api, &plan.delete, &ctx.recorder, about).await;
    (created, deleted)
}

async fn reconcile<K: Replicated>(ctx: &Ctx<K>, key: &Key) -> Result<Option<Duration>, kube::Error> {
    let Some(obj) = ctx.objects.get(&ObjectRef::new(&key.name).within(&key.namespace)) else {
        return Ok(None);
    };
    let rs = obj.as_replica_set();
    let pods = work::in_namespace(&ctx.pods, &key.namespace);
    let now = Timestamp::now();
    let plan = plan(&rs, &pods, now);
    let api = Api::<Pod>::namespaced(ctx.client.clone(), &key.namespace);
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let owner = controller_reference(obj.as_ref());
    for name in &plan.adopt {
        let Some(pod) = pods.iter().find(|p| p.metadata.name.as_deref() == Some(name)) else { continue };
        let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
        refs.push(owner.clone());
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": pod.metadata.resource_version}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    for name in &plan.release {
        let Some(pod) = pods.iter().find(|p| p.metadata.name.as_deref() == Some(name)) else { continue };
        let refs: Vec<_> = pod.metadata.owner_references.iter().flatten().filter(|r| r.uid != uid).cloned().collect();
        let refs = if refs.is_empty() { serde_json::Value::Null } else { json!(refs) };
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": pod.metadata.resource_version}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    let about = object_reference(obj.as_ref());
    let (created, outcome) = manage(ctx, &api, (&rs, &plan), &owner, &about).await;
    settle(&ctx.pods, |s| {
        created.iter().all(|n| s.get(&ObjectRef::new(n).within(&key.namespace)).is_some())
            && (outcome.is_err()
                || plan.delete.iter().all(|n| {
                    s.get(&ObjectRef::new(n).within(&key.namespace))
                        .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
                }))
    })
    .await;
    let failure = outcome.as_ref().err().map(error_message);
    let status = with_failure(plan.status.clone(), &plan, failure.as_deref(), now);
    if rs.status.as_ref() != Some(&status) {
        let objects = Api::<K>::namespaced(ctx.client.clone(), &key.namespace);
        let patch = json!({"status": status});
        match objects.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            other => drop(other?),
        }
    }
    outcome?;
    // Something was created or deleted: look again once the pods have moved on.
    let again = (!created.is_empty() || !plan.delete.is_empty()).then_some(Duration::from_secs(1));
    Ok(again.or(plan.requeue))
}

/// Run the controller of `K` until the process stops, as `K`'s identity.
pub async fn run_for<K: Replicated>(informers: &Informers) {
    let (queue, objects, pods) = work::watch_owned::<K, Pod>(informers, RESYNC).await;
    let client = informers.client_as(K::IDENTITY);
    let ctx = Ctx { recorder: Recorder::new(client.clone(), K::COMPONENT, ""), client, objects, pods };
    work::drive(queue, K::KIND_NAME, |key| {
        let ctx = &ctx;
        async move { reconcile(ctx, &key).await }
    })
    .await;
}

/// Run the ReplicaSet controller until the process stops.
pub async fn run(informers: &Informers) {
    run_for::<ReplicaSet>(informers).await;
}

#[cfg(test)]
mod tests;
