//! The Node authorizer's graph (upstream's `plugin/pkg/auth/authorizer/node/graph.go` and
//! `graph_populator.go`): which node each bound pod is on, and the objects each pod lets its
//! node read. A node reaches an object when a pod on it names the object (node <- pod <-
//! secret, configmap, serviceaccount, persistentvolumeclaim) or is the object (node <- pod),
//! and a PersistentVolume when its `spec.claimRef` names a claim it reaches (node <- pod <-
//! persistentvolumeclaim <- persistentvolume). As upstream, that edge comes from the volume
//! alone: a claim's `spec.volumeName` adds nothing. skiff serves no VolumeAttachments,
//! ResourceClaims or ResourceSlices, so nothing reaches those: their requests are refused as
//! upstream refuses an unrelated object.
//!
//! Kept as counts rather than upstream's general graph: every path through a pod is one pod
//! long, so "is there a path" is "does a pod on that node grant it"; a volume's path is its
//! claim's, looked up when asked (so pods and volumes may arrive in any order).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{PersistentVolume, Pod};

use crate::auth::pod_references;

/// The kinds of vertex a path starts from (upstream's `vertexType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vertex {
    Pod,
    Secret,
    ConfigMap,
    PersistentVolumeClaim,
    PersistentVolume,
    ServiceAccount,
    ResourceClaim,
    VolumeAttachment,
    ResourceSlice,
}

/// An object: its vertex type, namespace (empty for cluster-scoped ones) and name.
type Object = (Vertex, String, String);

/// The annotation that makes a pod a node's mirror of a static pod.
pub const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// One bound pod as the graph holds it.
#[derive(Debug, Clone)]
struct Bound {
    node: String,
    uid: String,
    /// What the pod grants its node, itself first.
    grants: Vec<Object>,
}

/// Which nodes reach which objects, through the pods bound to them.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// Bound pods by (namespace, name).
    pods: HashMap<(String, String), Bound>,
    /// For each object, how many of each node's pods grant it.
    reach: HashMap<Object, HashMap<String, usize>>,
    /// The claim (namespace, name) each PersistentVolume's claimRef names, by volume name.
    volumes: HashMap<String, (String, String)>,
}

impl Graph {
    /// A pod was added or changed (upstream's `updatePod`). An unbound pod is not in the graph
    /// yet; a bound one is (re)read only when its node or uid changed, since everything it
    /// references is immutable once it is bound.
    pub fn set_pod(&mut self, pod: &Pod) {
        let md = &pod.metadata;
        let (namespace, name) = (md.namespace.clone().unwrap_or_default(), md.name.clone().unwrap_or_default());
        let node = pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
        if node.is_empty() {
            return;
        }
        let uid = md.uid.clone().unwrap_or_default();
        let key = (namespace, name);
        if self.pods.get(&key).is_some_and(|b| b.node == node && b.uid == uid) {
            return;
        }
        self.remove_pod(&key.0, &key.1);
        let bound = Bound { grants: grants(&key.0, &key.1, pod), node, uid };
        for object in &bound.grants {
            *self.reach.entry(object.clone()).or_default().entry(bound.node.clone()).or_default() += 1;
        }
        self.pods.insert(key, bound);
    }

    /// A pod was deleted (upstream's `deletePod`): its node no longer reaches what it granted.
    pub fn remove_pod(&mut self, namespace: &str, name: &str) {
        let Some(bound) = self.pods.remove(&(namespace.to_string(), name.to_string())) else { return };
        for object in bound.grants {
            let Some(nodes) = self.reach.get_mut(&object) else { continue };
            if let Some(n) = nodes.get_mut(&bound.node) {
                *n -= 1;
                if *n == 0 {
                    nodes.remove(&bound.node);
                }
            }
            if nodes.is_empty() {
                self.reach.remove(&object);
            }
        }
    }

    /// A PersistentVolume was added or changed (upstream's `AddPV`): it serves the claim its
    /// `spec.claimRef` names, or none without one (an unbound volume reaches no node).
    pub fn set_volume(&mut self, pv: &PersistentVolume) {
        let name = pv.metadata.name.clone().unwrap_or_default();
        let claim = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        match claim {
            Some(c) if !name.is_empty() => {
                let claim = (c.namespace.clone().unwrap_or_default(), c.name.clone().unwrap_or_default());
                self.volumes.insert(name, claim);
            }
            _ => self.remove_volume(&name),
        }
    }

    /// A PersistentVolume was deleted (upstream's `DeletePV`).
    pub fn remove_volume(&mut self, name: &str) {
        self.volumes.remove(name);
    }

    /// Whether `node` reaches the object (upstream's `hasPathFrom`).
    pub fn has_path(&self, vertex: Vertex, namespace: &str, name: &str, node: &str) -> bool {
        if vertex == Vertex::PersistentVolume {
            // Cluster-scoped: reached through the claim it is bound to, if any.
            return namespace.is_empty()
                && self
                    .volumes
                    .get(name)
                    .is_some_and(|(ns, claim)| self.has_path(Vertex::PersistentVolumeClaim, ns, claim, node));
        }
        self.reach.get(&(vertex, namespace.to_string(), name.to_string())).is_some_and(|nodes| nodes.contains_key(node))
    }

    /// How many bound pods the graph holds.
    pub fn pods(&self) -> usize {
        self.pods.len()
    }

    /// How many PersistentVolumes with a claimRef the graph holds.
    pub fn volumes(&self) -> usize {
        self.volumes.len()
    }
}

/// What pod `namespace/name` lets its node reach: itself, and unless it is a mirror pod (which a
/// node makes itself, so it must grant nothing) what its spec names.
fn grants(namespace: &str, name: &str, pod: &Pod) -> Vec<Object> {
    let object = |vertex, n: &str| (vertex, namespace.to_string(), n.to_string());
    let mut out = vec![object(Vertex::Pod, name)];
    let mirror = pod.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION));
    let Some(spec) = pod.spec.as_ref().filter(|_| !mirror) else { return out };
    let refs = pod_references::of(name, spec);
    out.extend(refs.service_account.iter().map(|sa| object(Vertex::ServiceAccount, sa)));
    out.extend(refs.secrets.iter().map(|s| object(Vertex::Secret, s)));
    out.extend(refs.config_maps.iter().map(|c| object(Vertex::ConfigMap, c)));
    out.extend(refs.claims.iter().map(|c| object(Vertex::PersistentVolumeClaim, c)));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn pod(namespace: &str, name: &str, uid: &str, node: &str, spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        spec["nodeName"] = json!(node);
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c", "image": "busybox"}]);
        }
        serde_json::from_value(json!({"metadata": {"namespace": namespace, "name": name, "uid": uid}, "spec": spec}))
            .expect("pod")
    }

    /// PersistentVolume `name`, bound by claimRef to `claim` (namespace, name) if any.
    pub(crate) fn volume(name: &str, claim: Option<(&str, &str)>) -> PersistentVolume {
        let claim_ref = claim.map(|(ns, c)| json!({"kind": "PersistentVolumeClaim", "namespace": ns, "name": c}));
        serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "hostPath": {"path": "/data"}, "claimRef": claim_ref}}))
        .expect("persistentvolume")
    }

    #[test]
    fn a_node_reaches_what_its_pods_name() {
        let mut g = Graph::default();
        g.set_pod(&pod(
            "shop",
            "web",
            "u1",
            "n1",
            json!({"serviceAccountName": "app", "volumes": [{"name": "s", "secret": {"secretName": "tls"}},
                {"name": "c", "configMap": {"name": "conf"}}, {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}),
        ));
        g.set_pod(&pod("shop", "db", "u2", "n2", json!({"volumes": [{"name": "s", "secret": {"secretName": "db"}}]})));
        for (vertex, name) in [
            (Vertex::Pod, "web"),
            (Vertex::Secret, "tls"),
            (Vertex::ConfigMap, "conf"),
            (Vertex::PersistentVolumeClaim, "data"),
            (Vertex::ServiceAccount, "app"),
        ] {
            assert!(g.has_path(vertex, "shop", name, "n1"), "{vertex:?} {name}");
            assert!(!g.has_path(vertex, "shop", name, "n2"), "{vertex:?} {name} from n2");
            assert!(!g.has_path(vertex, "other", name, "n1"), "{vertex:?} {name} in another namespace");
        }
        assert!(g.has_path(Vertex::Secret, "shop", "db", "n2"));
        assert!(!g.has_path(Vertex::Secret, "shop", "db", "n1"));
        // The type matters: a Secret named like a ConfigMap is not reached.
        assert!(!g.has_path(Vertex::Secret, "shop", "conf", "n1"));
        assert!(!g.has_path(Vertex::Pod, "shop", "web", "n3"));
        assert_eq!(g.pods(), 2);
    }

    #[test]
    fn deleting_a_pod_takes_its_grants_unless_another_pod_grants_them() {
        let mut g = Graph::default();
        let spec = json!({"volumes": [{"name": "s", "secret": {"secretName": "shared"}}]});
        g.set_pod(&pod("ns", "a", "u1", "n1", spec.clone()));
        g.set_pod(&pod("ns", "b", "u2", "n1", spec));
        g.remove_pod("ns", "a");
        assert!(g.has_path(Vertex::Secret, "ns", "shared", "n1"), "b still names it");
        assert!(!g.has_path(Vertex::Pod, "ns", "a", "n1"));
        g.remove_pod("ns", "b");
        assert!(!g.has_path(Vertex::Secret, "ns", "shared", "n1"));
        assert!(g.reach.is_empty() && g.pods.is_empty());
        g.remove_pod("ns", "never");
    }

    #[test]
    fn pods_enter_when_bound_and_are_read_again_only_when_node_or_uid_change() {
        let mut g = Graph::default();
        g.set_pod(&pod("ns", "p", "u1", "", json!({"volumes": [{"name": "s", "secret": {"secretName": "s1"}}]})));
        assert_eq!(g.pods(), 0, "not bound yet");
        g.set_pod(&pod("ns", "p", "u1", "n1", json!({"volumes": [{"name": "s", "secret": {"secretName": "s1"}}]})));
        assert!(g.has_path(Vertex::Secret, "ns", "s1", "n1"));
        // Same node and uid: nothing is read again (references are immutable once bound).
        g.set_pod(&pod("ns", "p", "u1", "n1", json!({"volumes": [{"name": "s", "secret": {"secretName": "s2"}}]})));
        assert!(g.has_path(Vertex::Secret, "ns", "s1", "n1") && !g.has_path(Vertex::Secret, "ns", "s2", "n1"));
        // Recreated under the same name on another node.
        g.set_pod(&pod("ns", "p", "u2", "n2", json!({"volumes": [{"name": "s", "secret": {"secretName": "s2"}}]})));
        assert!(!g.has_path(Vertex::Secret, "ns", "s1", "n1") && !g.has_path(Vertex::Pod, "ns", "p", "n1"));
        assert!(g.has_path(Vertex::Secret, "ns", "s2", "n2") && g.has_path(Vertex::Pod, "ns", "p", "n2"));
    }

    #[test]
    fn a_mirror_pod_grants_only_itself() {
        let mut g = Graph::default();
        let mut p = pod("ns", "static", "u1", "n1", json!({"volumes": [{"name": "s", "secret": {"secretName": "s"}}]}));
        p.metadata.annotations = Some([(MIRROR_POD_ANNOTATION.to_string(), "x".to_string())].into());
        g.set_pod(&p);
        assert!(g.has_path(Vertex::Pod, "ns", "static", "n1"));
        assert!(!g.has_path(Vertex::Secret, "ns", "s", "n1"));
    }

    #[test]
    fn a_node_reaches_the_volume_bound_to_its_pods_claim() {
        let mut g = Graph::default();
        let claim = |c: &str| json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": c}}]});
        // The volume may arrive before the pod that reaches it.
        g.set_volume(&volume("pv-data", Some(("shop", "data"))));
        g.set_volume(&volume("pv-logs", Some(("shop", "logs"))));
        g.set_volume(&volume("pv-free", None));
        g.set_pod(&pod("shop", "web", "u1", "n1", claim("data")));
        g.set_pod(&pod("shop", "db", "u2", "n2", claim("logs")));
        assert!(g.has_path(Vertex::PersistentVolume, "", "pv-data", "n1"));
        assert!(!g.has_path(Vertex::PersistentVolume, "", "pv-data", "n2"), "another node's volume");
        assert!(g.has_path(Vertex::PersistentVolume, "", "pv-logs", "n2"));
        assert!(!g.has_path(Vertex::PersistentVolume, "", "pv-logs", "n1"));
        assert!(!g.has_path(Vertex::PersistentVolume, "", "pv-free", "n1"), "unbound");
        assert!(!g.has_path(Vertex::PersistentVolume, "", "pv-none", "n1"), "not in the graph");
        // Cluster-scoped: a namespace names no volume, and a claim's name is not a volume's.
        assert!(!g.has_path(Vertex::PersistentVolume, "shop", "pv-data", "n1"));
        assert!(!g.has_path(Vertex::PersistentVolume, "", "data", "n1"));
        assert_eq!(g.volumes(), 2);

        // The claimRef moves to a claim in another namespace: the old claim's node loses it.
        g.set_volume(&volume("pv-data", Some(("other", "data"))));
        assert!(!g.has_path(Vertex::PersistentVolume, "", "pv-data", "n1"));
        g.set_pod(&pod("other", "job", "u3", "n2", claim("data")));
        assert!(g.has_path(Vertex::PersistentVolume, "", "pv-data", "n2"));
        // Released: no claimRef, no node.
        g.set_volume(&volume("pv-data", None));
        assert!(!g.has_path(Vertex::PersistentVolume, "", "pv-data", "n2"));
        assert_eq!(g.volumes(), 1);

        // The pod goes: its node no longer reaches the claim, nor the volume through it.
        g.remove_pod("shop", "db");
        assert!(!g.has_path(Vertex::PersistentVolume, "", "pv-logs", "n2"));
        g.remove_volume("pv-logs");
        g.remove_volume("pv-never");
        assert_eq!(g.volumes(), 0);
    }
}
