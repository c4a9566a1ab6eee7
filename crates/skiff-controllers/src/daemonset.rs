//! The DaemonSet controller: one pod from the template on every node the template selects
//! (`nodeSelector`, taints it tolerates), none elsewhere; a rolling update replaces the pods of
//! an older template `maxUnavailable` nodes at a time (`OnDelete`: only when a pod is deleted).
//! Pods are made for their node (`nodeName`), with the tolerations upstream gives daemon pods.
//! [`plan`] is pure; [`run`] watches DaemonSets, nodes and pods.

use crate::deployment::template_hash;
use crate::informers::Informers;
use crate::owner::{controller_reference, is_controlled_by, object_reference};
use crate::replicaset::{is_available, ready_since};
use crate::work::{self, Key};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::json;
use skiff_client::events::{Recorder, Type};
use std::sync::Arc;
use std::time::Duration;

/// The label that says which template a daemon pod was made from.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";
const RESYNC: Duration = Duration::from_secs(30);

/// The tolerations every daemon pod gets (upstream's `AddOrUpdateDaemonPodTolerations`).
fn daemon_tolerations() -> Vec<Toleration> {
    let t = |key: &str, effect: &str| Toleration {
        key: Some(key.into()),
        operator: Some("Exists".into()),
        effect: Some(effect.into()),
        ..Default::default()
    };
    vec![
        t("node.kubernetes.io/not-ready", "NoExecute"),
        t("node.kubernetes.io/unreachable", "NoExecute"),
        t("node.kubernetes.io/disk-pressure", "NoSchedule"),
        t("node.kubernetes.io/memory-pressure", "NoSchedule"),
        t("node.kubernetes.io/pid-pressure", "NoSchedule"),
        t("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
}

fn tolerated(taint: &Taint, tolerations: &[Toleration]) -> bool {
    tolerations.iter().any(|t| {
        let key = t.key.as_deref().is_none_or(|k| k.is_empty() || k == taint.key);
        let effect = t.effect.as_deref().is_none_or(|e| e.is_empty() || e == taint.effect);
        let value = t.operator.as_deref() == Some("Exists")
            || t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("");
        key && effect && value
    })
}

/// Whether the daemon pod template runs on `node`: its node selector matches and every
/// NoSchedule/NoExecute taint is tolerated.
pub fn eligible(ds: &DaemonSet, node: &Node) -> bool {
    let spec = ds.spec.template.spec.clone().unwrap_or_default();
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selected = spec.node_selector.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let mut tolerations = spec.tolerations.unwrap_or_default();
    tolerations.extend(daemon_tolerations());
    let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    let tolerates = taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .all(|t| tolerated(t, &tolerations));
    selected && tolerates
}

/// What one round does to one DaemonSet.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Nodes to make a pod for.
    pub create: Vec<String>,
    /// Pods to delete (on nodes they should not be on, extra, failed, or of an old template).
    pub delete: Vec<String>,
    pub status: DaemonSetStatus,
}

/// Pure: the round for `ds`, given every node and its pods, at `now`.
pub fn plan(ds: &DaemonSet, nodes: &[Arc<Node>], pods: &[Arc<Pod>], now: Timestamp) -> Plan {
    let mut out = Plan::default();
    let hash = template_hash(&ds.spec.template, None);
    let min_ready = i64::from(ds.spec.min_ready_seconds.unwrap_or(0));
    let on_delete = ds.spec.update_strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("OnDelete");
    let node_of = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
    let live: Vec<&Arc<Pod>> = pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
    let (mut desired, mut current, mut misscheduled, mut ready, mut updated, mut available) = (0, 0, 0, 0, 0, 0);
    let mut old_pods: Vec<&Arc<Pod>> = Vec::new();
    let mut unavailable_now = 0;
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut mine: Vec<&&Arc<Pod>> = live.iter().filter(|p| node_of(p) == name).collect();
        // A failed daemon pod is replaced.
        for p in mine.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")) {
            out.delete.push(p.metadata.name.clone().unwrap_or_default());
        }
        mine.retain(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Failed"));
        if !eligible(ds, node) {
            if !mine.is_empty() {
                misscheduled += 1;
            }
            out.delete.extend(mine.iter().map(|p| p.metadata.name.clone().unwrap_or_default()));
            continue;
        }
        desired += 1;
        match mine.as_slice() {
            [] => out.create.push(name),
            [first, rest @ ..] => {
                current += 1;
                // One pod per node: the oldest stays.
                out.delete.extend(rest.iter().map(|p| p.metadata.name.clone().unwrap_or_default()));
                let is_updated = first.metadata.labels.as_ref().and_then(|l| l.get(REVISION_HASH_LABEL)) == Some(&hash);
                if ready_since(first).is_some() {
                    ready += 1;
                }
                if is_available(first, min_ready, now) {
                    available += 1;
                } else {
                    unavailable_now += 1;
                }
                if is_updated {
                    updated += 1;
                } else {
                    old_pods.push(first);
                }
            }
        }
    }
    // Rolling update: replace old pods while at most maxUnavailable nodes lack an available pod.
    if !on_delete {
        let rolling = ds.spec.update_strategy.as_ref().and_then(|s| s.rolling_update.clone()).unwrap_or_default();
        let max_unavailable = match rolling.max_unavailable {
            Some(IntOrString::Int(n)) => n,
            Some(IntOrString::String(s)) => {
                let pct: i32 = s.trim_end_matches('%').parse().unwrap_or(0);
                (desired * pct / 100).max(1)
            }
            None => 1,
        };
        let missing = i32::try_from(out.create.len()).unwrap_or(0);
        let mut budget = max_unavailable - unavailable_now - missing;
        // Old pods that are not available anyway go first.
        old_pods.sort_by_key(|p| is_available(p, min_ready, now));
        for p in old_pods {
            if !is_available(p, min_ready, now) {
                out.delete.push(p.metadata.name.clone().unwrap_or_default());
            } else if budget > 0 {
                out.delete.push(p.metadata.name.clone().unwrap_or_default());
                budget -= 1;
            }
        }
    }
    out.delete.sort();
    out.delete.dedup();
    out.status = DaemonSetStatus {
        desired_number_scheduled: desired,
        current_number_scheduled: current,
        number_misscheduled: misscheduled,
        number_ready: ready,
        updated_number_scheduled: Some(updated),
        number_available: Some(available),
        number_unavailable: Some(desired - available).filter(|n| *n > 0),
        observed_generation: ds.metadata.generation,
        ..Default::default()
    };
    out
}

/// The daemon pod for `node`.
fn new_pod(ds: &DaemonSet, node: &str) -> Pod {
    let template = ds.spec.template.clone();
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.into(), template_hash(&template, None));
    let mut spec = template.spec.unwrap_or_default();
    spec.node_name = Some(node.into());
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for t in daemon_tolerations() {
        if !tolerations.iter().any(|have| have.key == t.key && have.effect == t.effect) {
            tolerations.push(t);
        }
    }
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ds.metadata.name.clone().unwrap_or_default())),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            owner_references: Some(vec![controller_reference(ds)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

struct Ctx {
    client: kube::Client,
    daemonsets: Store<DaemonSet>,
    pods: Store<Pod>,
    nodes: Store<Node>,
    recorder: Recorder,
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, kube::Error> {
    let Some(ds) = ctx.daemonsets.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return Ok(None) };
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let pods: Vec<Arc<Pod>> = work::in_namespace(&ctx.pods, &key.namespace)
        .into_iter()
        .filter(|p| is_controlled_by(&p.metadata, &uid))
        .collect();
    let plan = plan(&ds, &ctx.nodes.state(), &pods, Timestamp::now());
    let api = Api::<Pod>::namespaced(ctx.client.clone(), &key.namespace);
    for node in &plan.create {
        let pod = api.create(&PostParams::default(), &new_pod(&ds, node)).await?;
        let message = format!("Created pod: {}", pod.metadata.name.unwrap_or_default());
        ctx.recorder.object(object_reference(ds.as_ref()), Type::Normal, "SuccessfulCreate", &message).await;
    }
    work::delete_pods(&api, &plan.delete, &ctx.recorder, &object_reference(ds.as_ref())).await?;
    if ds.status.as_ref() != Some(&plan.status) {
        let dsapi = Api::<DaemonSet>::namespaced(ctx.client.clone(), &key.namespace);
        let patch = json!({"status": plan.status});
        match dsapi.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            other => drop(other?),
        }
    }
    let acted = !plan.create.is_empty() || !plan.delete.is_empty();
    Ok(acted.then_some(Duration::from_secs(1)))
}

/// Run the DaemonSet controller until the process stops.
pub async fn run(informers: &Informers) {
    let (queue, daemonsets, pods) = work::watch_owned::<DaemonSet, Pod>(informers, RESYNC).await;
    let client = informers.client_as(crate::identity::DAEMONSET);
    // A node that comes, goes or changes its labels or taints: every DaemonSet looks again.
    let (q, sets) = (queue.clone(), daemonsets.clone());
    let nodes = informers
        .watch(move |_: &Node| {
            sets.state().iter().for_each(|ds| q.add(Key::of(ds.as_ref())));
        })
        .await;
    let ctx =
        Ctx { recorder: Recorder::new(client.clone(), "daemonset-controller", ""), client, daemonsets, pods, nodes };
    work::drive(queue, "DaemonSet", |key| {
        let ctx = &ctx;
        async move { reconcile(ctx, &key).await }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSpec, PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ds(selector: serde_json::Value, max_unavailable: i32) -> DaemonSet {
        serde_json::from_value(json!({"metadata": {"name": "agent", "namespace": "default", "uid": "ds-1"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable}},
                "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"nodeSelector": selector,
                    "containers": [{"name": "a", "image": "busybox"}]}}}}))
        .expect("ds")
    }

    fn node(name: &str, labels: &[(&str, &str)], taint: Option<&str>) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: taint.map(|k| vec![Taint { key: k.into(), effect: "NoSchedule".into(), ..Default::default() }]),
                ..Default::default()
            }),
            status: None,
        })
    }

    fn pod(name: &str, node: &str, hash: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(REVISION_HASH_LABEL.to_string(), hash.to_string())].into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::core::v1::PodSpec { node_name: Some(node.into()), ..Default::default() }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                conditions: ready.then(|| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(Timestamp::UNIX_EPOCH)),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn one_pod_per_selected_untainted_node() {
        let d = ds(json!({"disk": "ssd"}), 1);
        let nodes = [
            node("a", &[("disk", "ssd")], None),
            node("b", &[("disk", "hdd")], None),
            node("c", &[("disk", "ssd")], Some("dedicated")),
        ];
        let hash = template_hash(&d.spec.template, None);
        let pods = [pod("on-b", "b", &hash, true)];
        let p = plan(&d, &nodes, &pods, Timestamp::now());
        assert_eq!(p.create, ["a"]);
        assert_eq!(p.delete, ["on-b"], "b is not selected");
        assert_eq!((p.status.desired_number_scheduled, p.status.number_misscheduled), (1, 1));
        // Unschedulable nodes are tolerated, as upstream's daemon pods tolerate them.
        let cordoned = node("d", &[("disk", "ssd")], Some("node.kubernetes.io/unschedulable"));
        assert!(eligible(&d, &cordoned));
    }

    #[test]
    fn rolling_updates_replace_max_unavailable_nodes_at_a_time() {
        let d = ds(json!({}), 1);
        let nodes = [node("a", &[], None), node("b", &[], None), node("c", &[], None)];
        let pods = [pod("pa", "a", "old", true), pod("pb", "b", "old", true), pod("pc", "c", "old", true)];
        let p = plan(&d, &nodes, &pods, Timestamp::now());
        assert_eq!(p.delete.len(), 1, "{:?}", p.delete);
        assert_eq!(p.status.updated_number_scheduled, Some(0));
        // With a node still waiting for its new pod, no other old pod goes.
        let hash = template_hash(&d.spec.template, None);
        let pods = [pod("pb", "b", "old", true), pod("pc", "c", "old", true), pod("new-a", "a", &hash, false)];
        let p = plan(&d, &nodes, &pods, Timestamp::now());
        assert!(p.delete.is_empty() && p.create.is_empty());
    }
}
