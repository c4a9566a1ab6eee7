//! The Deployment controller: rolls a Deployment's pod template out through ReplicaSets, one per
//! template (named by the template's hash), scaling the new one up and the old ones down within
//! `maxSurge`/`maxUnavailable` (or all old ones first, for `Recreate`), keeping
//! `revisionHistoryLimit` old ones for `kubectl rollout undo`, and reporting progress in the
//! Available and Progressing conditions as `kubectl rollout status` reads them. [`rollout`] is
//! pure; [`run`] watches Deployments and ReplicaSets and carries its decisions out.

use crate::informers::Informers;
use crate::owner::{controller_reference, is_controlled_by, object_reference};
use crate::template_fields;
use crate::work::{self, Key};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use skiff_client::events::{Recorder, Type};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const RESYNC: Duration = Duration::from_secs(30);

/// Upstream's `rand.SafeEncodeString` alphabet: no vowels, no look-alikes.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The `pod-template-hash` of a template (its hash label left out) and collision count: an
/// FNV-1a of its canonical JSON, written as upstream writes its hashes.
pub fn template_hash(template: &PodTemplateSpec, collisions: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(&comparable(template)).unwrap_or_default();
    if let Some(c) = collisions {
        bytes.extend_from_slice(&c.to_le_bytes());
    }
    let hash = bytes.iter().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193));
    hash.to_string().bytes().map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()])).collect()
}

/// A template as Go compares it (upstream's `EqualIgnoreHash`): the hash label aside, and in the
/// form of [`template_fields::normalize`], where the zero values that Go cannot tell from a
/// field left out (`stdin: false`, `workingDir: ""`, empty maps and lists, which a Go client's
/// non-pointer fields write and a JSON client leaves out) are gone, so a template read back from
/// a ReplicaSet (`rollout undo`) is the same, while a pointer set to zero
/// (`allowPrivilegeEscalation: false`, `terminationGracePeriodSeconds: 0`) is a change.
pub(crate) fn comparable(template: &PodTemplateSpec) -> serde_json::Value {
    let mut t = template.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(TEMPLATE_HASH_LABEL);
    }
    template_fields::normalize(serde_json::to_value(&t).unwrap_or_default())
}

/// Whether a ReplicaSet's template is the Deployment's (upstream's `EqualIgnoreHash`).
fn same_template(rs: &ReplicaSet, template: &PodTemplateSpec) -> bool {
    comparable(&rs.spec.template.clone().unwrap_or_default()) == comparable(template)
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).and_then(|r| r.parse().ok()).unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

fn status_of(rs: &ReplicaSet) -> (i32, i32, i32) {
    let s = rs.status.clone().unwrap_or_default();
    (s.replicas, s.ready_replicas.unwrap_or(0), s.available_replicas.unwrap_or(0))
}

/// A count or a percentage of `total`, rounded up (surge) or down (unavailable).
fn resolve(v: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match v {
        None => 0,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let scaled = i64::from(total) * pct;
            let n = if round_up { (scaled + 99) / 100 } else { scaled / 100 };
            i32::try_from(n).unwrap_or(0)
        }
    }
}

/// maxSurge and maxUnavailable as counts (both 0 is 1 unavailable, as upstream).
pub fn surge_and_unavailable(d: &Deployment) -> (i32, i32) {
    let spec = d.spec.clone();
    let replicas = spec.replicas.unwrap_or(1);
    let rolling = spec.strategy.and_then(|s| s.rolling_update).unwrap_or_default();
    let surge = resolve(rolling.max_surge.as_ref(), replicas, true);
    let unavailable = resolve(rolling.max_unavailable.as_ref(), replicas, false);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

/// One rollout step for a Deployment.
#[derive(Debug, Default)]
pub struct Step {
    /// The new ReplicaSet to create.
    pub create: Option<ReplicaSet>,
    /// ReplicaSets to scale: (name, replicas, annotations to set).
    pub scale: Vec<(String, i32, BTreeMap<String, String>)>,
    /// Old ReplicaSets past the history limit.
    pub delete: Vec<String>,
    pub status: DeploymentStatus,
    /// The revision the Deployment is at (its own `deployment.kubernetes.io/revision`).
    pub revision: String,
    /// Look again this soon, although nothing changes (a progress deadline).
    pub requeue: Option<Duration>,
    /// Events to record: (type, reason, message).
    pub events: Vec<(Type, &'static str, String)>,
}

fn condition(ty: &str, status: &str, reason: &str, message: String, now: Timestamp) -> DeploymentCondition {
    DeploymentCondition {
        type_: Some(ty.into()),
        status: Some(status.into()),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Put `new` in `conditions`, keeping the old transition time when the status did not change
/// (and the update time too when nothing did).
fn set_condition(conditions: &mut Vec<DeploymentCondition>, mut new: DeploymentCondition) {
    if let Some(old) = conditions.iter().find(|c| c.type_ == new.type_)
        && old.status == new.status
    {
        new.last_transition_time = old.last_transition_time.clone();
        if old.reason == new.reason && old.message == new.message {
            new.last_update_time = old.last_update_time.clone();
        }
    }
    conditions.retain(|c| c.type_ != new.type_);
    conditions.push(new);
}

/// Pure: the step for `d` given the ReplicaSets it controls, at `now`.
pub fn rollout(d: &Deployment, owned: &[Arc<ReplicaSet>], now: Timestamp) -> Step {
    let spec = d.spec.clone();
    let name = d.metadata.name.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let (surge, unavailable) = surge_and_unavailable(d);
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let paused = spec.paused == Some(true);
    let collisions = d.status.as_ref().and_then(|s| s.collision_count);
    let mut step = Step::default();

    let max_revision = owned.iter().map(|rs| revision(rs)).max().unwrap_or(0);
    let new_rs = owned.iter().find(|rs| same_template(rs, &spec.template)).cloned();
    let old: Vec<Arc<ReplicaSet>> =
        owned.iter().filter(|rs| new_rs.as_ref().is_none_or(|n| n.metadata.uid != rs.metadata.uid)).cloned().collect();
    let old_total: i32 = old.iter().map(|rs| spec_replicas(rs)).sum();
    let old_pods: i32 = old.iter().map(|rs| status_of(rs).0).sum();

    // What the new ReplicaSet should have now.
    let new_current = new_rs.as_ref().map_or(0, |rs| spec_replicas(rs));
    let new_target = if paused {
        new_current
    } else if recreate {
        if old_total > 0 || old_pods > 0 { new_current } else { replicas }
    } else {
        let room = replicas + surge - (old_total + new_current);
        if new_current > replicas {
            replicas
        } else if room > 0 {
            (new_current + room).min(replicas)
        } else {
            new_current
        }
    };
    let annotations = |revision: i64| -> BTreeMap<String, String> {
        BTreeMap::from([
            (REVISION.to_string(), revision.to_string()),
            (DESIRED_REPLICAS.to_string(), replicas.to_string()),
            (MAX_REPLICAS.to_string(), (replicas + surge).to_string()),
        ])
    };
    let new_name;
    match &new_rs {
        None if !paused => {
            let hash = template_hash(&spec.template, collisions);
            new_name = format!("{name}-{hash}");
            let mut template = spec.template.clone();
            let tmeta = template.metadata.get_or_insert_with(Default::default);
            tmeta.labels.get_or_insert_with(Default::default).insert(TEMPLATE_HASH_LABEL.into(), hash.clone());
            let mut selector: LabelSelector = spec.selector.clone();
            selector.match_labels.get_or_insert_with(Default::default).insert(TEMPLATE_HASH_LABEL.into(), hash);
            let mut rs_annotations = d.metadata.annotations.clone().unwrap_or_default();
            rs_annotations.retain(|k, _| !k.starts_with("kubectl.kubernetes.io/last-applied-configuration"));
            rs_annotations.extend(annotations(max_revision + 1));
            step.create = Some(ReplicaSet {
                metadata: ObjectMeta {
                    name: Some(new_name.clone()),
                    namespace: d.metadata.namespace.clone(),
                    labels: tmeta.labels.clone(),
                    annotations: Some(rs_annotations),
                    owner_references: Some(vec![controller_reference(d)]),
                    ..Default::default()
                },
                spec: ReplicaSetSpec {
                    replicas: Some(new_target),
                    min_ready_seconds: spec.min_ready_seconds,
                    selector,
                    template: Some(template),
                },
                status: None,
            });
            step.events.push((
                Type::Normal,
                "ScalingReplicaSet",
                format!("Scaled up replica set {new_name} from 0 to {new_target}"),
            ));
        }
        None => new_name = String::new(),
        Some(rs) => {
            new_name = rs.metadata.name.clone().unwrap_or_default();
            // A rollback to an old template makes that ReplicaSet the newest revision again.
            let mut wanted = BTreeMap::new();
            let current = revision(rs);
            if current < max_revision || current == 0 {
                wanted = annotations(max_revision + 1);
                let mut history: Vec<String> = rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(REVISION_HISTORY))
                    .map(|h| h.split(',').map(String::from).collect())
                    .unwrap_or_default();
                if current > 0 {
                    history.push(current.to_string());
                    wanted.insert(REVISION_HISTORY.into(), history.join(","));
                }
            }
            if new_target != new_current || !wanted.is_empty() {
                if new_target != new_current {
                    let verb = if new_target > new_current { "up" } else { "down" };
                    step.events.push((
                        Type::Normal,
                        "ScalingReplicaSet",
                        format!("Scaled {verb} replica set {new_name} from {new_current} to {new_target}"),
                    ));
                }
                step.scale.push((new_name.clone(), new_target, wanted));
            }
        }
    }

    // Old ReplicaSets go down: all at once for Recreate, within maxUnavailable otherwise.
    if !paused {
        let (new_spec, _, new_available) =
            new_rs.as_ref().map_or((new_target, 0, 0), |rs| (spec_replicas(rs), 0, status_of(rs).2));
        let mut old_sorted = old.clone();
        old_sorted.sort_by_key(|rs| (revision(rs), rs.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second())));
        let mut budget = if recreate {
            i32::MAX
        } else {
            let all_pods = old_total + new_spec;
            let min_available = replicas - unavailable;
            let new_unavailable = new_spec - new_available;
            all_pods - min_available - new_unavailable
        };
        // First the old pods that are not available anyway, then available ones while enough stay.
        let mut targets: BTreeMap<String, i32> = BTreeMap::new();
        for rs in &old_sorted {
            if budget <= 0 {
                break;
            }
            let unhealthy = (spec_replicas(rs) - status_of(rs).2).max(0);
            let down = unhealthy.min(budget);
            if down > 0 {
                targets.insert(rs.metadata.name.clone().unwrap_or_default(), spec_replicas(rs) - down);
                budget -= down;
            }
        }
        if !recreate {
            let available: i32 = owned.iter().map(|rs| status_of(rs).2).sum();
            let mut extra = available - (replicas - unavailable);
            for rs in &old_sorted {
                let rs_name = rs.metadata.name.clone().unwrap_or_default();
                let now_at = targets.get(&rs_name).copied().unwrap_or(spec_replicas(rs));
                if extra <= 0 || budget <= 0 || now_at == 0 {
                    continue;
                }
                let down = now_at.min(extra).min(budget);
                targets.insert(rs_name, now_at - down);
                extra -= down;
                budget -= down;
            }
        } else {
            for rs in &old_sorted {
                targets.insert(rs.metadata.name.clone().unwrap_or_default(), 0);
            }
        }
        for rs in &old_sorted {
            let rs_name = rs.metadata.name.clone().unwrap_or_default();
            if let Some(&to) = targets.get(&rs_name)
                && to != spec_replicas(rs)
            {
                step.events.push((
                    Type::Normal,
                    "ScalingReplicaSet",
                    format!("Scaled down replica set {rs_name} from {} to {to}", spec_replicas(rs)),
                ));
                step.scale.push((rs_name, to, BTreeMap::new()));
            }
        }
    }

    // History: old ReplicaSets with nothing left, oldest first, past the limit.
    let limit = usize::try_from(spec.revision_history_limit.unwrap_or(10)).unwrap_or(10);
    let mut empty: Vec<&Arc<ReplicaSet>> = old
        .iter()
        .filter(|rs| spec_replicas(rs) == 0 && status_of(rs).0 == 0 && rs.metadata.deletion_timestamp.is_none())
        .collect();
    empty.sort_by_key(|rs| revision(rs));
    if empty.len() > limit {
        step.delete =
            empty[..empty.len() - limit].iter().map(|rs| rs.metadata.name.clone().unwrap_or_default()).collect();
    }

    // Status, from what the ReplicaSets report.
    let sum = |f: fn(&ReplicaSet) -> i32| owned.iter().map(|rs| f(rs)).sum::<i32>();
    let total = sum(|rs| status_of(rs).0);
    let ready = sum(|rs| status_of(rs).1);
    let available = sum(|rs| status_of(rs).2);
    let updated = new_rs.as_ref().map_or(0, |rs| status_of(rs).0);
    let mut conditions = d.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default();
    let (status, reason, message) = if available >= replicas - unavailable {
        ("True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    } else {
        ("False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")
    };
    set_condition(&mut conditions, condition("Available", status, reason, message.into(), now));
    let complete = updated == replicas && available == replicas && total == replicas && new_target == replicas;
    let previous = d.status.clone().unwrap_or_default();
    let moved = previous.replicas != Some(total)
        || previous.updated_replicas != Some(updated)
        || previous.available_replicas != Some(available)
        || previous.ready_replicas != Some(ready)
        || !step.scale.is_empty();
    let deadline = spec.progress_deadline_seconds.map(i64::from);
    let progressing = conditions.iter().find(|c| c.type_.as_deref() == Some("Progressing")).cloned();
    if paused {
        set_condition(
            &mut conditions,
            condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused".into(), now),
        );
    } else if complete {
        let message = format!("ReplicaSet \"{new_name}\" has successfully progressed.");
        set_condition(&mut conditions, condition("Progressing", "True", "NewReplicaSetAvailable", message, now));
    } else if step.create.is_some() {
        let message = format!("Created new replica set \"{new_name}\"");
        set_condition(&mut conditions, condition("Progressing", "True", "NewReplicaSetCreated", message, now));
    } else if moved || progressing.is_none() {
        let message = format!("ReplicaSet \"{new_name}\" is progressing.");
        let mut c = condition("Progressing", "True", "ReplicaSetUpdated", message, now);
        // Progress moves the deadline even if the words stay the same.
        let keep_transition = progressing
            .as_ref()
            .filter(|p| p.status.as_deref() == Some("True"))
            .and_then(|p| p.last_transition_time.clone());
        if let Some(t) = keep_transition {
            c.last_transition_time = Some(t);
        }
        conditions.retain(|c| c.type_.as_deref() != Some("Progressing"));
        conditions.push(c);
    } else if let (Some(deadline), Some(p)) = (deadline, progressing.as_ref())
        && p.reason.as_deref() != Some("ProgressDeadlineExceeded")
    {
        let since = p.last_update_time.as_ref().map_or(now, |t| t.0);
        let due = since.as_second() + deadline;
        if due <= now.as_second() {
            let message = format!("ReplicaSet \"{new_name}\" has timed out progressing.");
            set_condition(&mut conditions, condition("Progressing", "False", "ProgressDeadlineExceeded", message, now));
        } else {
            step.requeue = Some(Duration::from_secs(u64::try_from(due - now.as_second()).unwrap_or(1).max(1)));
        }
    }
    if !complete
        && !paused
        && step.requeue.is_none()
        && let Some(deadline) = deadline
    {
        step.requeue = Some(Duration::from_secs(u64::try_from(deadline).unwrap_or(600).max(1)));
    }
    // Conditions in upstream's order: Available, then Progressing.
    conditions.sort_by_key(|c| if c.type_.as_deref() == Some("Available") { 0 } else { 1 });
    step.status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(total),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        unavailable_replicas: Some((replicas - available).max(0)).filter(|n| *n > 0),
        conditions: Some(conditions),
        collision_count: collisions,
        ..Default::default()
    };
    step.revision = match &step.create {
        Some(_) => (max_revision + 1).to_string(),
        None => new_rs
            .as_ref()
            .map(|rs| {
                let r = revision(rs);
                if r < max_revision || r == 0 { max_revision + 1 } else { r }
            })
            .unwrap_or(max_revision)
            .to_string(),
    };
    step
}

struct Ctx {
    client: kube::Client,
    deployments: Store<Deployment>,
    replicasets: Store<ReplicaSet>,
    recorder: Recorder,
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, kube::Error> {
    let Some(d) = ctx.deployments.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return Ok(None) };
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let owned: Vec<Arc<ReplicaSet>> = work::in_namespace(&ctx.replicasets, &key.namespace)
        .into_iter()
        .filter(|rs| is_controlled_by(&rs.metadata, &uid))
        .collect();
    let step = rollout(&d, &owned, Timestamp::now());
    let rsapi = Api::<ReplicaSet>::namespaced(ctx.client.clone(), &key.namespace);
    if let Some(rs) = &step.create {
        match rsapi.create(&PostParams::default(), rs).await {
            Ok(_) => {}
            // A ReplicaSet of that name with another template: count the collision, try again.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let collisions = d.status.as_ref().and_then(|s| s.collision_count).unwrap_or(0) + 1;
                let api = Api::<Deployment>::namespaced(ctx.client.clone(), &key.namespace);
                let patch = json!({"status": {"collisionCount": collisions}});
                api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await?;
                return Ok(Some(Duration::from_millis(100)));
            }
            Err(e) => return Err(e),
        }
    }
    for (name, replicas, annotations) in &step.scale {
        let mut patch = json!({"spec": {"replicas": replicas}});
        if !annotations.is_empty() {
            patch["metadata"] = json!({"annotations": annotations});
        }
        rsapi.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    for name in &step.delete {
        match rsapi.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    for (ty, reason, message) in &step.events {
        ctx.recorder.object(object_reference(d.as_ref()), *ty, reason, message).await;
    }
    let api = Api::<Deployment>::namespaced(ctx.client.clone(), &key.namespace);
    let revision_now = d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION)).cloned();
    if revision_now.as_deref() != Some(step.revision.as_str()) && step.revision != "0" {
        let patch = json!({"metadata": {"annotations": {REVISION: step.revision}}});
        api.patch(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    }
    if d.status.as_ref() != Some(&step.status) {
        let patch = json!({"status": step.status});
        match api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            other => drop(other?),
        }
    }
    let acted = step.create.is_some() || !step.scale.is_empty() || !step.delete.is_empty();
    Ok(if acted { Some(Duration::from_millis(500)) } else { step.requeue })
}

/// Run the Deployment controller until the process stops.
pub async fn run(informers: &Informers) {
    let (queue, deployments, replicasets) = work::watch_owned::<Deployment, ReplicaSet>(informers, RESYNC).await;
    let client = informers.client_as(crate::identity::DEPLOYMENT);
    let ctx =
        Ctx { recorder: Recorder::new(client.clone(), "deployment-controller", ""), client, deployments, replicasets };
    work::drive(queue, "Deployment", |key| {
        let ctx = &ctx;
        async move { reconcile(ctx, &key).await }
    })
    .await;
}

#[cfg(test)]
mod tests;
