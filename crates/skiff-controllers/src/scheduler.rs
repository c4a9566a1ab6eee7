//! A minimal scheduler (runs in `skiff server`): binds each pending pod to a Ready node that fits
//! it — `nodeName` honoured as given, `nodeSelector` matched against node labels, cpu and memory
//! requests against what is left of the node's allocatable, its claims' volumes
//! ([`crate::volume::scheduling`]) — or marks it Unschedulable with the scheduler's own message.
//! A pod whose claims wait for their first consumer gets their volumes placed on the chosen node
//! (static volumes reserved, the others' claims marked with the node for their provisioner) and
//! is bound once every claim is bound, quietly Pending meanwhile. Pods, nodes and storage come
//! from the shared watch caches, so a new pod is bound without a round of LISTs; a binding the
//! cache has not seen yet is refused by the API server (the pod is already bound), never done
//! twice.

use crate::informers::Informers;
use crate::volume::scheduling::{Conflict, Placement, PodClaims, place, pod_claims};
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use skiff_client::events::{Recorder, Type};
use skiff_core::host_ports::{conflicts, mappings};
use skiff_core::quantity::parse_milli;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Why a node cannot take a pod (the scheduler's wording, for the FailedScheduling message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Misfit {
    NotReady,
    Unschedulable,
    Selector,
    Cpu,
    Memory,
    Pods,
    Ports,
    Volumes(Conflict),
}

impl Misfit {
    fn text(self) -> &'static str {
        match self {
            Misfit::NotReady => "node(s) had untolerated taint {node.kubernetes.io/not-ready: }",
            Misfit::Unschedulable => "node(s) were unschedulable",
            Misfit::Selector => "node(s) didn't match Pod's node affinity/selector",
            Misfit::Cpu => "Insufficient cpu",
            Misfit::Memory => "Insufficient memory",
            Misfit::Pods => "Too many pods",
            Misfit::Ports => "node(s) didn't have free ports for the requested pod ports",
            Misfit::Volumes(c) => c.text(),
        }
    }
}

/// The pod's requests: (millicores, bytes), as the scheduler sums them (init containers: the max).
pub fn requests(pod: &Pod) -> (i128, i128) {
    let Some(spec) = &pod.spec else { return (0, 0) };
    let of = |c: &k8s_openapi::api::core::v1::Container, k: &str| {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|m| m.get(k))
            .and_then(|q| parse_milli(&q.0))
            .unwrap_or(0)
    };
    let sum = |k: &str| spec.containers.iter().map(|c| of(c, k)).sum::<i128>();
    let init_max = |k: &str| spec.init_containers.iter().flatten().map(|c| of(c, k)).max().unwrap_or(0);
    (sum("cpu").max(init_max("cpu")), (sum("memory").max(init_max("memory"))) / 1000)
}

/// Whether `node` can take `pod`, given the pods already bound to it.
pub fn fits<B: Borrow<Pod>>(pod: &Pod, node: &Node, bound: &[B]) -> Result<(), Misfit> {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    if !ready {
        return Err(Misfit::NotReady);
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        return Err(Misfit::Unschedulable);
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector = pod.spec.as_ref().and_then(|s| s.node_selector.clone()).unwrap_or_default();
    if selector.iter().any(|(k, v)| labels.get(k) != Some(v)) {
        return Err(Misfit::Selector);
    }
    let alloc = node.status.as_ref().and_then(|s| s.allocatable.clone()).unwrap_or_default();
    let get = |k: &str| alloc.get(k).and_then(|q| parse_milli(&q.0));
    let (cpu, mem) = requests(pod);
    let (used_cpu, used_mem) = bound.iter().map(|p| requests(p.borrow())).fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    if get("cpu").is_some_and(|a| used_cpu + cpu > a) {
        return Err(Misfit::Cpu);
    }
    if get("memory").is_some_and(|a| used_mem + mem > a / 1000) {
        return Err(Misfit::Memory);
    }
    if get("pods").is_some_and(|a| (bound.len() as i128 + 1) * 1000 > a) {
        return Err(Misfit::Pods);
    }
    let wanted = mappings(pod);
    let taken: Vec<_> = bound.iter().flat_map(|p| mappings(p.borrow())).collect();
    if wanted.iter().any(|w| taken.iter().any(|t| conflicts(w, t))) {
        return Err(Misfit::Ports);
    }
    Ok(())
}

/// The FailedScheduling message: "0/1 nodes are available: 1 Insufficient memory."
pub fn unschedulable_message(total: usize, misfits: &[Misfit]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for m in misfits {
        *counts.entry(m.text()).or_default() += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(t, n)| format!("{n} {t}")).collect();
    format!("0/{total} nodes are available: {}.", parts.join(", "))
}

/// The FailedScheduling message when no node could be tried (a claim missing, say):
/// "0/1 nodes are available: persistentvolumeclaim \"data\" not found."
pub fn prefilter_message(total: usize, reason: &impl std::fmt::Display) -> String {
    format!("0/{total} nodes are available: {reason}.")
}

fn is_terminal(p: &Pod) -> bool {
    matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// Run until the process ends.
pub async fn run(informers: Arc<Informers>) {
    let client = informers.client_as(crate::identity::Identity::Scheduler);
    let recorder = Recorder::new(client.clone(), "default-scheduler", "");
    // Every pod or node event wakes the loop (the shared caches are driven by tasks of their
    // own, so a long round never leaves them behind); wake-ups during a round coalesce into one
    // more round.
    let wake = Arc::new(Notify::new());
    let w = wake.clone();
    let nodes = informers.watch(move |_: &Node| w.notify_one()).await;
    let w = wake.clone();
    let pods = informers.watch(move |_: &Pod| w.notify_one()).await;
    // A claim bound, a volume made, a class added: pods waiting on them may go on.
    let w = wake.clone();
    let claims = informers.watch(move |_: &PersistentVolumeClaim| w.notify_one()).await;
    let w = wake.clone();
    let volumes = informers.watch(move |_: &PersistentVolume| w.notify_one()).await;
    let w = wake.clone();
    let classes = informers.watch(move |_: &StorageClass| w.notify_one()).await;
    let storage = Storage { claims, volumes, classes };
    loop {
        schedule_pending(&client, &recorder, pods.state(), &nodes.state(), &storage).await;
        // Or retry the unschedulable ones in a while.
        let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
    }
}

/// The caches volume binding reads.
struct Storage {
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
}

/// Bind the unbound pods among `all` to the best of `nodes`, or say why none fits.
async fn schedule_pending(
    client: &kube::Client,
    recorder: &Recorder,
    all: Vec<Arc<Pod>>,
    nodes: &[Arc<Node>],
    storage: &Storage,
) {
    // Cheap when nothing waits (every pod event wakes the loop): only pointers are copied.
    let node_of = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
    let pending: Vec<&Arc<Pod>> = all.iter().filter(|p| node_of(p).is_empty() && !is_terminal(p)).collect();
    if pending.is_empty() {
        return;
    }
    // What each node already runs, once per round.
    let mut bound: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
    for p in all.iter().filter(|p| !is_terminal(p)) {
        let node = node_of(p);
        if !node.is_empty() {
            bound.entry(node).or_default().push(p.clone());
        }
    }
    tracing::debug!(pending = pending.len(), "scheduling pending pods");
    let (claims, volumes, classes) = (storage.claims.state(), storage.volumes.state(), storage.classes.state());
    for pod in pending {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let scheduler = pod.spec.as_ref().and_then(|s| s.scheduler_name.clone()).unwrap_or_default();
        if !scheduler.is_empty() && scheduler != "default-scheduler" {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = pod.metadata.name.clone().unwrap_or_default();
        let in_namespace: Vec<Arc<PersistentVolumeClaim>> = match crate::volume::claim_names(pod).next() {
            Some(_) => {
                claims.iter().filter(|c| c.metadata.namespace.as_deref() == Some(ns.as_str())).cloned().collect()
            }
            None => Vec::new(),
        };
        let pod_volumes = match pod_claims(pod, &in_namespace, &classes) {
            Ok(v) => v.forget_gone_nodes(nodes),
            Err(why) => {
                unschedulable(client, recorder, pod, prefilter_message(nodes.len(), &why)).await;
                continue;
            }
        };
        let mut misfits = Vec::new();
        let mut best: Option<(&Node, usize, Placement)> = None;
        for node in nodes.iter().map(|n| n.as_ref()) {
            let on_node = node.metadata.name.as_ref().and_then(|n| bound.get(n)).map(Vec::as_slice).unwrap_or_default();
            let fit = fits(pod, node, on_node).and_then(|()| volumes_fit(&pod_volumes, node, &volumes, &classes));
            match fit {
                Ok(p) if best.as_ref().is_none_or(|(_, n, _)| on_node.len() < *n) => {
                    best = Some((node, on_node.len(), p))
                }
                Ok(_) => {}
                Err(m) => misfits.push(m),
            }
        }
        match best {
            Some((node, _, placement)) => {
                let node_name = node.metadata.name.clone().unwrap_or_default();
                if !pod_volumes.all_bound() {
                    // Volumes first: bound (by the binder, the provisioner) before the pod is.
                    place_volumes(client, &placement, &node_name).await;
                    continue;
                }
                let binding = Binding {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(ns.clone()),
                        ..Default::default()
                    },
                    target: ObjectReference {
                        kind: Some("Node".into()),
                        name: Some(node_name.clone()),
                        ..Default::default()
                    },
                };
                let data = serde_json::to_vec(&binding).unwrap_or_default();
                let req = http::Request::post(format!("/api/v1/namespaces/{ns}/pods/{name}/binding"))
                    .header("content-type", "application/json")
                    .body(data)
                    .map_err(kube::Error::HttpError);
                let bound_now = match req {
                    Ok(req) => client.request::<serde_json::Value>(req).await,
                    Err(e) => Err(e),
                };
                match bound_now {
                    Ok(_) => {
                        tracing::debug!(pod = %name, node = %node_name, "bound");
                        let msg = format!("Successfully assigned {ns}/{name} to {node_name}");
                        recorder.pod(pod, None, Type::Normal, "Scheduled", &msg).await;
                        // Later pods of this round see it as bound (the cache catches up soon).
                        bound.entry(node_name).or_default().push(pod.clone());
                    }
                    Err(e) => tracing::debug!(pod = %name, error = %e, "binding"),
                }
            }
            None => unschedulable(client, recorder, pod, unschedulable_message(nodes.len(), &misfits)).await,
        }
    }
}

/// Whether the pod's volumes can be on `node`, and what placing them there takes.
fn volumes_fit(
    claims: &PodClaims,
    node: &Node,
    volumes: &[Arc<PersistentVolume>],
    classes: &[Arc<StorageClass>],
) -> Result<Placement, Misfit> {
    place(claims, node, volumes, classes).map_err(Misfit::Volumes)
}

/// Reserve the placement's static volumes and mark its other claims with `node`; each write
/// an update of the version cached (the binder may be writing the same objects). A failure is
/// tried again next round, from fresher caches.
async fn place_volumes(client: &kube::Client, placement: &Placement, node: &str) {
    let (volumes, claims) = placement.writes(node);
    let pp = PostParams::default();
    for volume in volumes {
        let name = volume.metadata.name.clone().unwrap_or_default();
        if let Err(e) = Api::<PersistentVolume>::all(client.clone()).replace(&name, &pp, &volume).await {
            tracing::debug!(volume = name, error = %e, "reserving a volume");
        }
    }
    for claim in claims {
        let (ns, name) =
            (claim.metadata.namespace.clone().unwrap_or_default(), claim.metadata.name.clone().unwrap_or_default());
        if let Err(e) = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns).replace(&name, &pp, &claim).await
        {
            tracing::debug!(claim = name, error = %e, "selecting a node for a claim");
        }
    }
}

/// Say why the pod waits (once per message: the condition remembers the last one).
async fn unschedulable(client: &kube::Client, recorder: &Recorder, pod: &Pod, msg: String) {
    let already = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "PodScheduled" && c.message.as_deref() == Some(&msg)));
    if already {
        return;
    }
    recorder.pod(pod, None, Type::Warning, "FailedScheduling", &msg).await;
    let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let now = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or(jiff::Timestamp::now()).to_string();
    let patch = serde_json::json!({ "status": { "phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": msg, "lastTransitionTime": now,
    }]}});
    let _ = api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: bool, labels: &[(&str, &str)], cpu: &str, memory: &str) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "n", "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>() },
            "status": {
                "allocatable": { "cpu": cpu, "memory": memory, "pods": "110" },
                "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }],
            },
        }))
        .expect("node")
    }

    fn pod(selector: &[(&str, &str)], cpu: &str, memory: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "p" },
            "spec": {
                "nodeSelector": selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<std::collections::BTreeMap<_, _>>(),
                "containers": [{ "name": "c", "resources": { "requests": { "cpu": cpu, "memory": memory } } }],
            },
        }))
        .expect("pod")
    }

    #[test]
    fn fits_checks_readiness_selector_and_resources() {
        let n = node(true, &[("disk", "ssd")], "2", "1Gi");
        assert_eq!(fits(&pod(&[], "500m", "256Mi"), &n, &[] as &[Pod]), Ok(()));
        assert_eq!(fits(&pod(&[("disk", "hdd")], "1m", "1"), &n, &[] as &[Pod]), Err(Misfit::Selector));
        assert_eq!(fits(&pod(&[], "3", "1"), &n, &[] as &[Pod]), Err(Misfit::Cpu));
        let big = pod(&[], "1", "768Mi");
        assert_eq!(fits(&pod(&[], "100m", "512Mi"), &n, &[big]), Err(Misfit::Memory));
        assert_eq!(fits(&pod(&[], "1m", "1"), &node(false, &[], "2", "1Gi"), &[] as &[Pod]), Err(Misfit::NotReady));
    }

    #[test]
    fn fits_checks_host_ports() {
        let n = node(true, &[], "2", "1Gi");
        let with_port = |port: i32| {
            let mut p = pod(&[], "1m", "1");
            if let Some(spec) = p.spec.as_mut() {
                spec.containers[0].ports = Some(vec![k8s_openapi::api::core::v1::ContainerPort {
                    container_port: 80,
                    host_port: Some(port),
                    ..Default::default()
                }]);
            }
            p
        };
        assert_eq!(fits(&with_port(8080), &n, &[with_port(8080)]), Err(Misfit::Ports));
        assert_eq!(fits(&with_port(8080), &n, &[with_port(8081)]), Ok(()));
    }

    #[test]
    fn unschedulable_message_counts_reasons() {
        assert_eq!(unschedulable_message(1, &[Misfit::Memory]), "0/1 nodes are available: 1 Insufficient memory.");
        let volumes = [Misfit::Volumes(Conflict::NodeAffinity), Misfit::Volumes(Conflict::NodeAffinity), Misfit::Cpu];
        assert_eq!(
            unschedulable_message(3, &volumes),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had volume node affinity conflict."
        );
        let missing = crate::volume::scheduling::Unschedulable::NotFound("data".into());
        assert_eq!(
            prefilter_message(2, &missing),
            "0/2 nodes are available: persistentvolumeclaim \"data\" not found."
        );
    }

    #[test]
    fn volumes_filter_nodes() {
        let claim: PersistentVolumeClaim = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "data", "namespace": "ns", "annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
            "spec": {"volumeName": "local"},
            "status": {"phase": "Bound"},
        }))
        .expect("claim");
        let volume: PersistentVolume = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "local"},
            "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "disk", "operator": "In", "values": ["ssd"]}
            ]}]}}},
        }))
        .expect("volume");
        let claims = PodClaims { bound: vec![Arc::new(claim)], ..Default::default() };
        let volumes = [Arc::new(volume)];
        let fit = |labels: &[(&str, &str)]| volumes_fit(&claims, &node(true, labels, "1", "1Gi"), &volumes, &[]).err();
        assert_eq!(fit(&[("disk", "ssd")]), None);
        assert_eq!(fit(&[("disk", "hdd")]), Some(Misfit::Volumes(Conflict::NodeAffinity)));
    }
}
