//! The StatefulSet controller: replicas with stable identities (`NAME-0..N-1`, a DNS name under
//! the governing headless Service, one claim per `volumeClaimTemplates` entry that outlives its
//! pods), made, removed and updated in order as [`plan`] decides; the template's history kept
//! as ControllerRevisions (`kubectl rollout history|undo sts`) as [`revision`] decides; claims
//! handed to the garbage collector as the retention policy says ([`retention`]). [`run`] watches
//! StatefulSets, their pods and revisions, and carries the decisions out.

pub mod identity;
pub mod plan;
pub mod retention;
pub mod revision;

use crate::informers::Informers;
use crate::owner::{controller_of, controller_reference, object_reference};
use crate::work::{self, Key};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use plan::{Inputs, Step, Why};
use revision::Update;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use skiff_client::events::{Recorder, Type};
use skiff_core::selector::LabelSelector;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

const RESYNC: Duration = Duration::from_secs(30);
/// How long a round waits for the pod cache to show its own creates and deletes.
const SETTLE: Duration = Duration::from_secs(5);
/// How often a replica that cannot be made yet (its claim is being deleted) is looked at.
const BLOCKED_RETRY: Duration = Duration::from_secs(2);
/// Name collisions a round tries before a revision's creation gives up until the next.
const COLLISIONS: i32 = 10;

struct Ctx {
    client: kube::Client,
    sets: Store<StatefulSet>,
    pods: Store<Pod>,
    revisions: Store<ControllerRevision>,
    claims: Store<PersistentVolumeClaim>,
    recorder: Recorder,
}

fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn exists_already(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}

/// Upstream's `ClaimPods`/`ClaimRevisions`: of `candidates`, the set's own, after adopting the
/// orphans that match its selector (and `member`) and releasing its own that no longer do.
async fn claim_objects<K>(
    api: &Api<K>,
    set: &StatefulSet,
    candidates: Vec<Arc<K>>,
    member: impl Fn(&K) -> bool,
) -> Result<Vec<Arc<K>>, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug,
{
    let uid = set.metadata.uid.clone().unwrap_or_default();
    let spec = set.spec.clone();
    let selector = LabelSelector::from_api(&serde_json::to_value(&spec.selector).unwrap_or_default());
    let adopting = set.metadata.deletion_timestamp.is_none();
    let mut ours = Vec::new();
    for obj in candidates {
        let meta = obj.meta();
        let labels = meta.labels.clone().unwrap_or_default();
        let matches = !selector.is_empty() && selector.matches(&labels) && member(&obj);
        let name = meta.name.clone().unwrap_or_default();
        let rv = meta.resource_version.clone();
        match controller_of(meta) {
            Some(r) if r.uid == uid && matches => ours.push(obj),
            Some(r) if r.uid == uid => {
                let refs: Vec<_> = meta.owner_references.iter().flatten().filter(|r| r.uid != uid).cloned().collect();
                let refs = if refs.is_empty() { serde_json::Value::Null } else { json!(refs) };
                let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": rv}});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?;
            }
            None if matches && adopting && meta.deletion_timestamp.is_none() => {
                let mut refs = meta.owner_references.clone().unwrap_or_default();
                refs.push(controller_reference(set));
                let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": rv}});
                ours.push(Arc::new(api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?));
            }
            _ => {}
        }
    }
    Ok(ours)
}

/// The set's update revision, made or renumbered as [`revision::update`] says, and the
/// collision count its name took.
async fn update_revision(
    api: &Api<ControllerRevision>,
    set: &StatefulSet,
    revisions: &[Arc<ControllerRevision>],
) -> Result<(Arc<ControllerRevision>, i32), kube::Error> {
    let mut collisions = set.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0);
    let mut wanted = match revision::update(set, revisions) {
        Update::Latest(r) => return Ok((r, collisions)),
        Update::Renumber(r, number) => {
            let name = r.metadata.name.clone().unwrap_or_default();
            let patch = json!({"revision": number});
            return Ok((Arc::new(api.patch(&name, &PatchParams::default(), &Patch::Merge(patch)).await?), collisions));
        }
        Update::Create(r) => *r,
    };
    let template = set.spec.template.clone();
    let mut attempts = 0;
    loop {
        match api.create(&PostParams::default(), &wanted).await {
            Ok(made) => return Ok((Arc::new(made), collisions)),
            Err(e) if exists_already(&e) && attempts < COLLISIONS => {
                attempts += 1;
                let name = wanted.metadata.name.clone().unwrap_or_default();
                let existing = api.get(&name).await?;
                // One of an earlier set of the same name (not yet collected) is a collision too.
                let ours = controller_of(&existing.metadata).is_some_and(|r| Some(&r.uid) == set.metadata.uid.as_ref());
                if ours && revision::holds(&existing, &template) {
                    return Ok((Arc::new(existing), collisions));
                }
                collisions += 1;
                wanted = revision::new(set, wanted.revision.unwrap_or(1), collisions);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Carries out one round's steps, in order, stopping at the first failure.
async fn carry_out(ctx: &Ctx, set: &StatefulSet, steps: &[Step]) -> Result<(), kube::Error> {
    let ns = set.metadata.namespace.clone().unwrap_or_default();
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let reference = object_reference(set);
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns);
    let claims = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns);
    let event = |kind, reason: &'static str, message: String| {
        let reference = reference.clone();
        async move { ctx.recorder.object(reference, kind, reason, &message).await }
    };
    let create_claims = |list: &'_ [PersistentVolumeClaim], pod: String| {
        let (claims, event, set_name) = (&claims, &event, &set_name);
        let list = list.to_vec();
        async move {
            for claim in list {
                let name = claim.metadata.name.clone().unwrap_or_default();
                match claims.create(&PostParams::default(), &claim).await {
                    Ok(_) => {
                        let m = format!("create Claim {name} Pod {pod} in StatefulSet {set_name} success");
                        event(Type::Normal, "SuccessfulCreate", m).await;
                    }
                    Err(e) if exists_already(&e) => {}
                    Err(e) => {
                        let m =
                            format!("create Claim {name} for Pod {pod} in StatefulSet {set_name} failed error: {e}");
                        event(Type::Warning, "FailedCreate", m).await;
                        return Err(e);
                    }
                }
            }
            Ok::<_, kube::Error>(())
        }
    };
    for step in steps {
        match step {
            Step::CreatePod { pod, claims } => {
                let name = pod.metadata.name.clone().unwrap_or_default();
                create_claims(claims, name.clone()).await?;
                match pods.create(&PostParams::default(), pod).await {
                    Ok(_) => {
                        let m = format!("create Pod {name} in StatefulSet {set_name} successful");
                        event(Type::Normal, "SuccessfulCreate", m).await;
                    }
                    Err(e) if exists_already(&e) => {}
                    Err(e) => {
                        let m = format!("create Pod {name} in StatefulSet {set_name} failed error: {e}");
                        event(Type::Warning, "FailedCreate", m).await;
                        return Err(e);
                    }
                }
            }
            Step::CreateClaims { pod, claims } => create_claims(claims, pod.clone()).await?,
            Step::DeletePod { name, why } => {
                if *why == Why::Failed {
                    let m = format!("StatefulSet {ns}/{set_name} is recreating failed Pod {name}");
                    event(Type::Warning, "RecreatingFailedPod", m).await;
                }
                match pods.delete(name, &DeleteParams::background()).await {
                    Ok(_) => {
                        let m = format!("delete Pod {name} in StatefulSet {set_name} successful");
                        event(Type::Normal, "SuccessfulDelete", m).await;
                    }
                    Err(e) if is_gone(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Step::Relabel { name, labels } => {
                let patch = json!({"metadata": {"labels": labels}});
                match pods.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await {
                    Ok(_) => {
                        let m = format!("update Pod {name} in StatefulSet {set_name} successful");
                        event(Type::Normal, "SuccessfulUpdate", m).await;
                    }
                    Err(e) if is_gone(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Step::SetClaimOwners { claim, owners } => {
                let rv = ctx
                    .claims
                    .get(&ObjectRef::new(claim).within(&ns))
                    .and_then(|c| c.metadata.resource_version.clone());
                let owners = if owners.is_empty() { serde_json::Value::Null } else { json!(owners) };
                let patch = json!({"metadata": {"ownerReferences": owners, "resourceVersion": rv}});
                match claims.patch(claim, &PatchParams::default(), &Patch::Merge(patch)).await {
                    Ok(_) => {}
                    Err(e) if is_gone(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Step::Blocked { pod, claim } => {
                // upstream's wording for the error that holds the replica back
                let m =
                    format!("create Pod {pod} in StatefulSet {set_name} failed error: pvc {claim} is being deleted");
                event(Type::Warning, "FailedCreate", m).await;
            }
        }
    }
    Ok(())
}

/// Wait (a little) until the pod cache shows what `steps` did, so the next round does not do it twice.
async fn settle(ctx: &Ctx, ns: &str, steps: &[Step]) {
    let shown = |step: &Step| match step {
        Step::CreatePod { pod, .. } => {
            ctx.pods.get(&ObjectRef::new(pod.metadata.name.as_deref().unwrap_or_default()).within(ns)).is_some()
        }
        Step::DeletePod { name, .. } => {
            ctx.pods.get(&ObjectRef::new(name).within(ns)).is_none_or(|p| p.metadata.deletion_timestamp.is_some())
        }
        _ => true,
    };
    let deadline = tokio::time::Instant::now() + SETTLE;
    while !steps.iter().all(shown) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, kube::Error> {
    let Some(set) = ctx.sets.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return Ok(None) };
    let ns = key.namespace.as_str();
    let pods_api = Api::<Pod>::namespaced(ctx.client.clone(), ns);
    let revisions_api = Api::<ControllerRevision>::namespaced(ctx.client.clone(), ns);
    let pods =
        claim_objects(&pods_api, &set, work::in_namespace(&ctx.pods, ns), |p| identity::is_member(&set, p)).await?;
    let mut revisions = claim_objects(&revisions_api, &set, work::in_namespace(&ctx.revisions, ns), |_| true).await?;
    let (update, collision_count) = update_revision(&revisions_api, &set, &revisions).await?;
    revisions.retain(|r| r.metadata.name != update.metadata.name);
    revisions.push(update.clone());
    let current_name = set.status.as_ref().and_then(|s| s.current_revision.clone()).unwrap_or_default();
    let current = revision::by_name(&revisions).get(current_name.as_str()).map_or(update.clone(), |r| Arc::clone(r));
    let claims: BTreeMap<String, Arc<PersistentVolumeClaim>> =
        work::in_namespace(&ctx.claims, ns).into_iter().filter_map(|c| Some((c.metadata.name.clone()?, c))).collect();
    let (current, update) = (revision::of(&current), revision::of(&update));
    let inputs = Inputs {
        set: &set,
        pods: &pods,
        claims: &claims,
        current: &current,
        update: &update,
        collision_count,
        now: Timestamp::now(),
    };
    let plan = plan::plan(&inputs);
    // The status and history are written whatever the steps did (upstream's performUpdate).
    let carried = carry_out(ctx, &set, &plan.steps).await;
    // History: what no pod, nor the current or update revision, is at, past the limit.
    let mut live: BTreeSet<&str> = pods.iter().map(|p| identity::revision(p)).collect();
    live.extend([current.name.as_str(), update.name.as_str()]);
    for name in revision::to_delete(&set, &revisions, &live) {
        match revisions_api.delete(&name, &DeleteParams::background()).await {
            Err(e) if !is_gone(&e) => return Err(e),
            _ => {}
        }
    }
    if set.status.as_ref() != Some(&plan.status) {
        let api = Api::<StatefulSet>::namespaced(ctx.client.clone(), ns);
        let patch = json!({"status": plan.status});
        match api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Err(e) if is_gone(&e) => {}
            other => drop(other?),
        }
    }
    carried?;
    settle(ctx, ns, &plan.steps).await;
    let blocked = plan.steps.iter().any(|s| matches!(s, Step::Blocked { .. }));
    Ok(if blocked { Some(BLOCKED_RETRY) } else { plan.requeue })
}

/// Run the StatefulSet controller until the process stops.
pub async fn run(informers: &Informers) {
    let (queue, sets, pods) = work::watch_owned::<StatefulSet, Pod>(informers, RESYNC).await;
    // An orphan named as a set's replica: that set may adopt it.
    let q = queue.clone();
    informers
        .watch(move |p: &Pod| {
            let parent = p.metadata.name.as_deref().and_then(identity::parent_and_ordinal);
            if let (None, Some((parent, _))) = (controller_of(&p.metadata), parent) {
                q.add(Key { namespace: p.metadata.namespace.clone().unwrap_or_default(), name: parent.into() });
            }
        })
        .await;
    let q = queue.clone();
    let revisions = informers
        .watch(move |r: &ControllerRevision| {
            if let Some(owner) = controller_of(&r.metadata).filter(|o| o.kind == "StatefulSet") {
                q.add(Key { namespace: r.metadata.namespace.clone().unwrap_or_default(), name: owner.name.clone() });
            }
        })
        .await;
    let claims = informers.watch(|_: &PersistentVolumeClaim| {}).await;
    let client = informers.client_as(crate::identity::STATEFULSET);
    let recorder = Recorder::new(client.clone(), "statefulset-controller", "");
    let ctx = Ctx { client, sets, pods, revisions, claims, recorder };
    work::drive(queue, "StatefulSet", |key| {
        let ctx = &ctx;
        async move { reconcile(ctx, &key).await }
    })
    .await;
}
