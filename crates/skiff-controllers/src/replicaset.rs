//! The ReplicaSet controller: keeps `spec.replicas` pods from the template running, adopting
//! matching orphans and releasing pods that no longer match, and reports what it sees in
//! `status`. What to do is decided by the pure [`plan`]; [`run`] watches ReplicaSets and pods and
//! carries plans out.

use crate::informers::Informers;
use crate::owner::{controller_of, controller_reference, object_reference};
use crate::work::{self, Key};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use skiff_client::events::{Recorder, Type};
use skiff_core::selector::LabelSelector;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The most pods one round creates or deletes (upstream's `burstReplicas`).
const BURST: usize = 500;
/// How long a round waits for the watch cache to show its own creates and deletes, so the next
/// round does not count them twice (upstream's expectations).
const SETTLE: Duration = Duration::from_secs(5);
/// Every ReplicaSet is looked at again this often, whatever the events.
const RESYNC: Duration = Duration::from_secs(30);

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

/// A new pod for `rs` from its template (the API server completes the name).
fn new_pod(rs: &ReplicaSet) -> Pod {
    let template: PodTemplateSpec = rs.spec.template.clone().unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", rs.metadata.name.clone().unwrap_or_default())),
            namespace: rs.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller_reference(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

struct Ctx {
    client: kube::Client,
    replicasets: Store<ReplicaSet>,
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

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, kube::Error> {
    let Some(rs) = ctx.replicasets.get(&ObjectRef::new(&key.name).within(&key.namespace)) else {
        return Ok(None);
    };
    let pods = work::in_namespace(&ctx.pods, &key.namespace);
    let plan = plan(&rs, &pods, Timestamp::now());
    let api = Api::<Pod>::namespaced(ctx.client.clone(), &key.namespace);
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    for name in &plan.adopt {
        let Some(pod) = pods.iter().find(|p| p.metadata.name.as_deref() == Some(name)) else { continue };
        let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
        refs.push(controller_reference(rs.as_ref()));
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
    // Slow start, as upstream: 1, 2, 4 ... pods at a time, stopping at the first failure.
    let mut created = Vec::new();
    let mut batch = 1;
    while created.len() < plan.create {
        let n = batch.min(plan.create - created.len());
        let pod = new_pod(&rs);
        let params = PostParams::default();
        let results = futures::future::join_all((0..n).map(|_| api.create(&params, &pod))).await;
        for result in results {
            match result {
                Ok(pod) => {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    ctx.recorder
                        .object(
                            object_reference(rs.as_ref()),
                            Type::Normal,
                            "SuccessfulCreate",
                            &format!("Created pod: {name}"),
                        )
                        .await;
                    created.push(name);
                }
                Err(e) => {
                    ctx.recorder
                        .object(
                            object_reference(rs.as_ref()),
                            Type::Warning,
                            "FailedCreate",
                            &format!("Error creating: {e}"),
                        )
                        .await;
                    settle(&ctx.pods, |s| {
                        created.iter().all(|n| s.get(&ObjectRef::new(n).within(&key.namespace)).is_some())
                    })
                    .await;
                    return Err(e);
                }
            }
        }
        batch *= 2;
    }
    work::delete_pods(&api, &plan.delete, &ctx.recorder, &object_reference(rs.as_ref())).await?;
    settle(&ctx.pods, |s| {
        created.iter().all(|n| s.get(&ObjectRef::new(n).within(&key.namespace)).is_some())
            && plan.delete.iter().all(|n| {
                s.get(&ObjectRef::new(n).within(&key.namespace)).is_none_or(|p| p.metadata.deletion_timestamp.is_some())
            })
    })
    .await;
    let changed = rs.status.as_ref() != Some(&plan.status);
    if changed {
        let rsapi = Api::<ReplicaSet>::namespaced(ctx.client.clone(), &key.namespace);
        let patch = json!({"status": plan.status});
        match rsapi.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            other => drop(other?),
        }
    }
    // Something was created or deleted: look again once the pods have moved on.
    let again = (!created.is_empty() || !plan.delete.is_empty()).then_some(Duration::from_secs(1));
    Ok(again.or(plan.requeue))
}

/// Run the ReplicaSet controller until the process stops.
pub async fn run(informers: &Informers) {
    let (queue, replicasets, pods) = work::watch_owned::<ReplicaSet, Pod>(informers, RESYNC).await;
    let client = informers.client_as(crate::identity::REPLICASET);
    let ctx = Ctx { recorder: Recorder::new(client.clone(), "replicaset-controller", ""), client, replicasets, pods };
    work::drive(queue, "ReplicaSet", |key| {
        let ctx = &ctx;
        async move { reconcile(ctx, &key).await }
    })
    .await;
}

#[cfg(test)]
mod tests;
