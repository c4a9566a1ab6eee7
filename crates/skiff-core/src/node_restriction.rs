//! The NodeRestriction admission plugin's decisions (`plugin/pkg/admission/noderestriction/
//! admission.go` at release-1.32), pure: what a node may write once the Node authorizer let the
//! request through. Its own Node (no taints, config source or restricted labels of its own
//! choosing), its own Lease, mirror pods bound to it that reference nothing, the status, eviction
//! and deletion of pods bound to it, tokens bound to such a pod, and kubelet CSRs in its own
//! name. Each refusal is upstream's reason; the API server looks the objects up and words the
//! Forbidden around it. skiff serves no PersistentVolumeClaims, CSINodes or ResourceSlices, so
//! their rules are not here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1::PodSpec;
use serde_json::Value;

use crate::auth::node::NODE_LEASE_NAMESPACE;
use crate::auth::node_graph::MIRROR_POD_ANNOTATION;
use crate::auth::{pod_references, quote};
use crate::kinds::certificates::{request, signers};
use crate::meta;

/// A write's operation, as admission names it in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        })
    }
}

/// Why a node's write is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `admission.NewForbidden`: the reason that follows `is forbidden: `.
    Forbidden(String),
    /// An object the check needed is not there: the lister's NotFound (singular resource),
    /// returned as it is.
    NotFound { resource: &'static str, name: String },
}

fn forbidden(reason: impl Into<String>) -> Refusal {
    Refusal::Forbidden(reason.into())
}

/// Kubernetes' label namespaces a node may not set on itself unless the kubelet may.
const KUBERNETES_DOMAINS: [&str; 2] = ["kubernetes.io", "k8s.io"];
/// Labels only an administrator may set on a node, for workloads to trust.
const NODE_RESTRICTION_DOMAIN: &str = "node-restriction.kubernetes.io";
/// The labels a kubelet sets on its own Node (`k8s.io/kubelet/pkg/apis`)...
const KUBELET_LABELS: [&str; 11] = [
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
/// ... and the label namespaces it may use freely.
const KUBELET_DOMAINS: [&str; 2] = ["kubelet.kubernetes.io", "node.kubernetes.io"];

/// `example.com` of `example.com/name`; empty without a prefix.
fn label_domain(key: &str) -> &str {
    key.split_once('/').map_or("", |(d, _)| d)
}

/// `domain` is one of `domains` or a subdomain of one.
fn in_domains(domain: &str, domains: &[&str]) -> bool {
    domains.iter().any(|d| domain == *d || domain.strip_suffix(d).is_some_and(|rest| rest.ends_with('.')))
}

/// The labels of `new` a node may not add, change or remove relative to `old`, sorted.
pub fn forbidden_labels(new: &BTreeMap<String, String>, old: &BTreeMap<String, String>) -> Vec<String> {
    let mut modified: BTreeSet<&String> = new.iter().filter(|(k, v)| old.get(*k) != Some(v)).map(|(k, _)| k).collect();
    modified.extend(old.iter().filter(|(k, v)| new.get(*k) != Some(v)).map(|(k, _)| k));
    modified
        .into_iter()
        .filter(|key| {
            let domain = label_domain(key);
            let restricted = in_domains(domain, &[NODE_RESTRICTION_DOMAIN]);
            let kubelet = KUBELET_LABELS.contains(&key.as_str()) || in_domains(domain, &KUBELET_DOMAINS);
            restricted || (in_domains(domain, &KUBERNETES_DOMAINS) && !kubelet)
        })
        .cloned()
        .collect()
}

fn node_name_of(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or_default()
}

/// A field that is absent, null or empty (Go's semantic equality does not tell them apart).
fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
}

/// Create, update or delete of Node `name` (the object's, on create) by `node`; `old` is the
/// stored Node on update, `new` the written one on create and update.
pub fn node_write(
    node: &str,
    op: Operation,
    name: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Result<(), Refusal> {
    if name != node {
        return Err(forbidden(format!("node {} is not allowed to modify node {}", quote(node), quote(name))));
    }
    let Some(new) = new else { return Ok(()) };
    let config_source = present(new.pointer("/spec/configSource"));
    match (op, old) {
        (Operation::Create, _) => {
            // A node reads what its spec names: a config source it chose would widen that.
            if config_source.is_some() {
                return Err(forbidden(format!(
                    "node {} is not allowed to create pods with a non-nil configSource",
                    quote(node)
                )));
            }
            let labels = forbidden_labels(&meta::labels(new), &BTreeMap::new());
            if !labels.is_empty() {
                return Err(forbidden(format!(
                    "node {} is not allowed to set the following labels: {}",
                    quote(node),
                    labels.join(", ")
                )));
            }
        }
        (Operation::Update, Some(old)) => {
            if config_source.is_some() && config_source != present(old.pointer("/spec/configSource")) {
                return Err(forbidden(format!(
                    "node {} is not allowed to update configSource to a new non-nil configSource",
                    quote(node)
                )));
            }
            // Its taints keep workloads away: a node may not lift them.
            if present(new.pointer("/spec/taints")) != present(old.pointer("/spec/taints")) {
                return Err(forbidden(format!("node {} is not allowed to modify taints", quote(node))));
            }
            let labels = forbidden_labels(&meta::labels(new), &meta::labels(old));
            if !labels.is_empty() {
                return Err(forbidden(format!("is not allowed to modify labels: {}", labels.join(", "))));
            }
        }
        _ => {}
    }
    Ok(())
}

/// A write of pod subresource `subresource` other than status and eviction.
pub fn pod_subresource(subresource: &str) -> Result<(), Refusal> {
    Err(forbidden(format!(
        "unexpected pod subresource {}, only 'status' and 'eviction' are allowed",
        quote(subresource)
    )))
}

/// An update of a pod itself (not its status): nodes only create and delete mirror pods.
pub fn pod_update(node: &str) -> Result<(), Refusal> {
    Err(forbidden(format!(
        "unexpected operation {}, node {} can only create and delete mirror pods",
        quote(&Operation::Update.to_string()),
        quote(node)
    )))
}

/// A delete of `existing`: only of a pod bound to the node.
pub fn pod_delete(node: &str, existing: &Value) -> Result<(), Refusal> {
    if node_name_of(existing) != node {
        return Err(forbidden(format!("node {} can only delete pods with spec.nodeName set to itself", quote(node))));
    }
    Ok(())
}

/// An eviction of `existing`: only of a pod bound to the node.
pub fn pod_eviction(node: &str, existing: &Value) -> Result<(), Refusal> {
    if node_name_of(existing) != node {
        return Err(forbidden(format!("node {node} can only evict pods with spec.nodeName set to itself")));
    }
    Ok(())
}

/// A status update from `old` to `new`: a pod bound to the node, its labels and resource
/// claim statuses untouched.
pub fn pod_status(node: &str, old: &Value, new: &Value) -> Result<(), Refusal> {
    if node_name_of(old) != node {
        return Err(forbidden(format!(
            "node {} can only update pod status for pods with spec.nodeName set to itself",
            quote(node)
        )));
    }
    if meta::labels(old) != meta::labels(new) {
        return Err(forbidden(format!("node {} cannot update labels through pod status", quote(node))));
    }
    let claims = |p: &Value| -> Vec<(Value, Value)> {
        let statuses = p.pointer("/status/resourceClaimStatuses").and_then(Value::as_array);
        statuses.into_iter().flatten().map(|s| (s["name"].clone(), s["resourceClaimName"].clone())).collect()
    };
    if claims(old) != claims(new) {
        return Err(forbidden(format!("node {} cannot update resource claim statues", quote(node))));
    }
    Ok(())
}

/// A create of `pod` by the node: only a mirror pod bound to it, owned by its Node (whose uid
/// is `node_uid`, None when there is no such Node), referencing no other object.
pub fn pod_create(node: &str, pod: &Value, node_uid: Option<&str>) -> Result<(), Refusal> {
    let q = quote(node);
    let annotations = meta::str_map(pod, "annotations");
    if !annotations.contains_key(MIRROR_POD_ANNOTATION) {
        return Err(forbidden(format!(
            "pod does not have {} annotation, node {q} can only create mirror pods",
            quote(MIRROR_POD_ANNOTATION)
        )));
    }
    if node_name_of(pod) != node {
        return Err(forbidden(format!("node {q} can only create pods with spec.nodeName set to itself")));
    }
    let owners = pod.pointer("/metadata/ownerReferences").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let owner = match owners {
        [] => return Err(forbidden(format!("node {q} can only create pods with an owner reference set to itself"))),
        [one] => one,
        _ => {
            return Err(forbidden(format!(
                "node {q} can only create pods with a single owner reference set to itself"
            )));
        }
    };
    let text = |f: &str| owner.get(f).and_then(Value::as_str).unwrap_or_default();
    if text("apiVersion") != "v1" || text("kind") != "Node" || text("name") != node {
        return Err(forbidden(format!("node {q} can only create pods with an owner reference set to itself")));
    }
    if owner.get("controller").and_then(Value::as_bool) != Some(true) {
        return Err(forbidden(format!(
            "node {q} can only create pods with a controller owner reference set to itself"
        )));
    }
    if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
        return Err(forbidden(format!("node {q} must not set blockOwnerDeletion on an owner reference")));
    }
    let Some(node_uid) = node_uid else {
        return Err(Refusal::NotFound { resource: "node", name: node.to_string() });
    };
    if text("uid") != node_uid {
        return Err(forbidden(format!("node {node} UID mismatch: expected {} got {node_uid}", text("uid"))));
    }
    // A pod the node makes must not give it anything to read.
    let spec: PodSpec = serde_json::from_value(pod.get("spec").cloned().unwrap_or_default()).unwrap_or_default();
    let refs = pod_references::of(meta::name(pod), &spec);
    let named = |what: &str| forbidden(format!("node {q} can not create pods that reference {what}"));
    if refs.service_account.is_some() {
        return Err(named("a service account"));
    }
    if refs.has_secrets() {
        return Err(named("secrets"));
    }
    if refs.has_config_maps() {
        return Err(named("configmaps"));
    }
    let volumes = spec.volumes.iter().flatten();
    let sources = volumes.clone().filter_map(|v| v.projected.as_ref()).flat_map(|p| p.sources.iter().flatten());
    if sources.clone().any(|s| s.cluster_trust_bundle.is_some()) {
        return Err(named("clustertrustbundles"));
    }
    if volumes.clone().any(|v| v.persistent_volume_claim.is_some()) {
        return Err(named("persistentvolumeclaims"));
    }
    Ok(())
}

/// A write of a Lease named `name` (the object's, on create) in `namespace`: only the node's
/// own, in the node lease namespace.
pub fn lease(node: &str, namespace: &str, name: &str) -> Result<(), Refusal> {
    if namespace != NODE_LEASE_NAMESPACE {
        return Err(forbidden(format!(
            "can only access leases in the {} system namespace",
            quote(NODE_LEASE_NAMESPACE)
        )));
    }
    if name != node {
        return Err(forbidden("can only access node lease with the same name as the requesting node"));
    }
    Ok(())
}

/// The pod a node's TokenRequest must be bound to (its `spec.boundObjectRef`): its name, to
/// look up.
pub fn token_pod(bound_object_ref: Option<&Value>) -> Result<(&str, &str), Refusal> {
    let text = |f: &str| bound_object_ref.and_then(|r| r.get(f)).and_then(Value::as_str).unwrap_or_default();
    if bound_object_ref.is_none_or(Value::is_null)
        || text("apiVersion") != "v1"
        || text("kind") != "Pod"
        || text("name").is_empty()
    {
        return Err(forbidden("node requested token not bound to a pod"));
    }
    if text("uid").is_empty() {
        return Err(forbidden("node requested token with a pod binding without a uid"));
    }
    Ok((text("name"), text("uid")))
}

/// The bound pod as stored (`uid` from the request): the same pod, on the node.
pub fn token_bound_to(node: &str, uid: &str, pod: &Value) -> Result<(), Refusal> {
    if uid != meta::uid(pod) {
        return Err(forbidden(format!(
            "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
        )));
    }
    if node_name_of(pod) != node {
        return Err(forbidden("node requested token bound to a pod scheduled on a different node"));
    }
    Ok(())
}

/// A create of CertificateSigningRequest `csr`: a kubelet client or serving certificate only
/// in the node's own name.
pub fn csr_create(node: &str, csr: &Value) -> Result<(), Refusal> {
    let signer = crate::kinds::certificates::signer_name(csr);
    if signer != signers::KUBELET_SERVING && signer != signers::KUBE_APISERVER_CLIENT_KUBELET {
        return Ok(());
    }
    let req = request::parse(&crate::kinds::certificates::request_pem(csr))
        .map_err(|e| forbidden(format!("unable to parse csr: {e}")))?;
    if req.common_name != crate::auth::user::node_username(node) {
        return Err(forbidden(format!("can only create a node CSR with CN=system:node:{node}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reason(r: Result<(), Refusal>) -> String {
        match r {
            Ok(()) => String::new(),
            Err(Refusal::Forbidden(s)) => s,
            Err(Refusal::NotFound { resource, name }) => format!("{resource} {name:?} not found"),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn which_labels_a_node_sets_on_itself() {
        let none = labels(&[]);
        let allowed = labels(&[
            ("kubernetes.io/hostname", "n1"),
            ("kubernetes.io/os", "linux"),
            ("beta.kubernetes.io/arch", "amd64"),
            ("topology.kubernetes.io/zone", "a"),
            ("node.kubernetes.io/instance-type", "big"),
            ("kubelet.kubernetes.io/x", ""),
            ("sub.node.kubernetes.io/y", ""),
            ("example.com/team", "blue"),
            ("plain", "yes"),
            ("notkubernetes.io/z", ""),
        ]);
        assert_eq!(forbidden_labels(&allowed, &none), Vec::<String>::new());
        let refused = labels(&[
            ("node-role.kubernetes.io/control-plane", ""),
            ("node-restriction.kubernetes.io/pool", "a"),
            ("x.node-restriction.kubernetes.io/pool", "a"),
            ("k8s.io/thing", ""),
            ("kubernetes.io/role", "x"),
            ("example.k8s.io/z", ""),
        ]);
        assert_eq!(
            forbidden_labels(&refused, &none),
            [
                "example.k8s.io/z",
                "k8s.io/thing",
                "kubernetes.io/role",
                "node-restriction.kubernetes.io/pool",
                "node-role.kubernetes.io/control-plane",
                "x.node-restriction.kubernetes.io/pool",
            ]
        );
        // Unchanged ones are fine; removing one is a change too.
        let old = labels(&[("node-role.kubernetes.io/worker", ""), ("kubernetes.io/role", "a")]);
        let new = labels(&[("node-role.kubernetes.io/worker", "")]);
        assert_eq!(forbidden_labels(&new, &old), ["kubernetes.io/role"]);
        assert_eq!(forbidden_labels(&old, &old), Vec::<String>::new());
    }

    #[test]
    fn its_own_node_only_without_new_taints_or_labels() {
        let n = |labels: Value, taints: Value| json!({"metadata": {"name": "n1", "labels": labels}, "spec": {"taints": taints}});
        let plain = n(json!({"kubernetes.io/hostname": "n1"}), Value::Null);
        assert_eq!(reason(node_write("n1", Operation::Create, "n1", None, Some(&plain))), "");
        assert_eq!(
            reason(node_write("n1", Operation::Update, "n2", None, None)),
            r#"node "n1" is not allowed to modify node "n2""#
        );
        assert_eq!(reason(node_write("n1", Operation::Delete, "n1", None, None)), "");
        let role = n(json!({"node-role.kubernetes.io/control-plane": "", "kubernetes.io/hostname": "n1"}), Value::Null);
        assert_eq!(
            reason(node_write("n1", Operation::Create, "n1", None, Some(&role))),
            r#"node "n1" is not allowed to set the following labels: node-role.kubernetes.io/control-plane"#
        );
        assert_eq!(
            reason(node_write("n1", Operation::Update, "n1", Some(&plain), Some(&role))),
            "is not allowed to modify labels: node-role.kubernetes.io/control-plane"
        );
        // An administrator's label stays when the node writes around it.
        assert_eq!(reason(node_write("n1", Operation::Update, "n1", Some(&role), Some(&role))), "");
        let tainted = n(json!({}), json!([{"key": "k", "effect": "NoSchedule"}]));
        let untainted = n(json!({}), json!([]));
        assert_eq!(
            reason(node_write("n1", Operation::Update, "n1", Some(&tainted), Some(&untainted))),
            r#"node "n1" is not allowed to modify taints"#
        );
        assert_eq!(
            reason(node_write("n1", Operation::Update, "n1", Some(&untainted), Some(&n(json!({}), Value::Null)))),
            ""
        );
        let mut configured = plain.clone();
        configured["spec"]["configSource"] = json!({"configMap": {"name": "c"}});
        assert_eq!(
            reason(node_write("n1", Operation::Create, "n1", None, Some(&configured))),
            r#"node "n1" is not allowed to create pods with a non-nil configSource"#
        );
        assert_eq!(
            reason(node_write("n1", Operation::Update, "n1", Some(&plain), Some(&configured))),
            r#"node "n1" is not allowed to update configSource to a new non-nil configSource"#
        );
        assert_eq!(reason(node_write("n1", Operation::Update, "n1", Some(&configured), Some(&configured))), "");
        assert_eq!(reason(node_write("n1", Operation::Update, "n1", Some(&configured), Some(&plain))), "");
    }

    fn pod(node: &str, labels: Value) -> Value {
        json!({"metadata": {"name": "p", "uid": "u1", "labels": labels}, "spec": {"nodeName": node, "containers": [{"name": "c"}]}})
    }

    #[test]
    fn pods_bound_to_it() {
        let mine = pod("n1", json!({"app": "a"}));
        let theirs = pod("n2", json!({"app": "a"}));
        assert_eq!(reason(pod_status("n1", &mine, &mine)), "");
        assert_eq!(
            reason(pod_status("n1", &theirs, &theirs)),
            r#"node "n1" can only update pod status for pods with spec.nodeName set to itself"#
        );
        assert_eq!(
            reason(pod_status("n1", &mine, &pod("n1", json!({"app": "b"})))),
            r#"node "n1" cannot update labels through pod status"#
        );
        assert_eq!(reason(pod_status("n1", &pod("n1", json!({})), &pod("n1", Value::Null))), "");
        let mut claimed = mine.clone();
        claimed["status"]["resourceClaimStatuses"] = json!([{"name": "gpu", "resourceClaimName": "p-gpu"}]);
        assert_eq!(reason(pod_status("n1", &mine, &claimed)), r#"node "n1" cannot update resource claim statues"#);
        assert_eq!(reason(pod_delete("n1", &mine)), "");
        assert_eq!(
            reason(pod_delete("n1", &theirs)),
            r#"node "n1" can only delete pods with spec.nodeName set to itself"#
        );
        assert_eq!(reason(pod_eviction("n1", &mine)), "");
        assert_eq!(reason(pod_eviction("n1", &theirs)), "node n1 can only evict pods with spec.nodeName set to itself");
        assert_eq!(
            reason(pod_update("n1")),
            r#"unexpected operation "UPDATE", node "n1" can only create and delete mirror pods"#
        );
        assert_eq!(
            reason(pod_subresource("ephemeralcontainers")),
            r#"unexpected pod subresource "ephemeralcontainers", only 'status' and 'eviction' are allowed"#
        );
    }

    #[test]
    fn mirror_pods_of_its_own_naming_nothing() {
        let mirror = |spec: Value| {
            let mut spec = spec;
            spec["containers"] = json!([{"name": "c", "image": "busybox"}]);
            json!({"metadata": {"name": "static-n1", "annotations": {MIRROR_POD_ANNOTATION: "hash"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "node-uid", "controller": true}]},
                "spec": spec})
        };
        let ok = mirror(json!({"nodeName": "n1"}));
        assert_eq!(reason(pod_create("n1", &ok, Some("node-uid"))), "");
        let cases = [
            (
                pod("n1", json!({})),
                r#"pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods"#,
            ),
            (mirror(json!({"nodeName": "n2"})), r#"node "n1" can only create pods with spec.nodeName set to itself"#),
            (
                mirror(json!({"nodeName": "n1", "serviceAccountName": "default"})),
                r#"node "n1" can not create pods that reference a service account"#,
            ),
            (
                mirror(json!({"nodeName": "n1", "volumes": [{"name": "s", "secret": {"secretName": "s"}}]})),
                r#"node "n1" can not create pods that reference secrets"#,
            ),
            (
                mirror(json!({"nodeName": "n1", "volumes": [{"name": "c", "configMap": {"name": "c"}}]})),
                r#"node "n1" can not create pods that reference configmaps"#,
            ),
            (
                mirror(
                    json!({"nodeName": "n1", "volumes": [{"name": "t", "projected": {"sources": [{"clusterTrustBundle": {"path": "x", "name": "b"}}]}}]}),
                ),
                r#"node "n1" can not create pods that reference clustertrustbundles"#,
            ),
            (
                mirror(
                    json!({"nodeName": "n1", "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "d"}}]}),
                ),
                r#"node "n1" can not create pods that reference persistentvolumeclaims"#,
            ),
        ];
        for (p, want) in cases {
            assert_eq!(reason(pod_create("n1", &p, Some("node-uid"))), want);
        }
        let with_owners = |owners: Value| {
            let mut p = ok.clone();
            p["metadata"]["ownerReferences"] = owners;
            reason(pod_create("n1", &p, Some("node-uid")))
        };
        let owner = json!({"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "node-uid", "controller": true});
        assert_eq!(with_owners(json!([])), r#"node "n1" can only create pods with an owner reference set to itself"#);
        assert_eq!(
            with_owners(json!([owner, owner])),
            r#"node "n1" can only create pods with a single owner reference set to itself"#
        );
        let mut other = owner.clone();
        other["name"] = json!("n2");
        assert_eq!(
            with_owners(json!([other])),
            r#"node "n1" can only create pods with an owner reference set to itself"#
        );
        let mut not_controller = owner.clone();
        not_controller["controller"] = json!(false);
        assert_eq!(
            with_owners(json!([not_controller])),
            r#"node "n1" can only create pods with a controller owner reference set to itself"#
        );
        let mut blocking = owner.clone();
        blocking["blockOwnerDeletion"] = json!(true);
        assert_eq!(
            with_owners(json!([blocking])),
            r#"node "n1" must not set blockOwnerDeletion on an owner reference"#
        );
        assert_eq!(reason(pod_create("n1", &ok, Some("other"))), "node n1 UID mismatch: expected node-uid got other");
        assert_eq!(pod_create("n1", &ok, None), Err(Refusal::NotFound { resource: "node", name: "n1".into() }));
    }

    #[test]
    fn its_own_lease_and_tokens_for_its_pods() {
        assert_eq!(reason(lease("n1", "kube-node-lease", "n1")), "");
        assert_eq!(
            reason(lease("n1", "kube-node-lease", "n2")),
            "can only access node lease with the same name as the requesting node"
        );
        assert_eq!(
            reason(lease("n1", "default", "n1")),
            r#"can only access leases in the "kube-node-lease" system namespace"#
        );

        let bound = json!({"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"});
        assert_eq!(token_pod(Some(&bound)), Ok(("p", "u1")));
        for r in [
            None,
            Some(json!(null)),
            Some(json!({"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u"})),
            Some(json!({"apiVersion": "v1", "kind": "Pod", "uid": "u"})),
        ] {
            assert_eq!(reason(token_pod(r.as_ref()).map(drop)), "node requested token not bound to a pod", "{r:?}");
        }
        let no_uid = json!({"apiVersion": "v1", "kind": "Pod", "name": "p"});
        assert_eq!(reason(token_pod(Some(&no_uid)).map(drop)), "node requested token with a pod binding without a uid");
        assert_eq!(reason(token_bound_to("n1", "u1", &pod("n1", json!({})))), "");
        assert_eq!(
            reason(token_bound_to("n1", "old", &pod("n1", json!({})))),
            "the UID in the bound object reference (old) does not match the UID in record. The object might have been deleted and then recreated"
        );
        assert_eq!(
            reason(token_bound_to("n1", "u1", &pod("n2", json!({})))),
            "node requested token bound to a pod scheduled on a different node"
        );
    }

    #[test]
    fn kubelet_csrs_in_its_own_name() {
        use base64::Engine;
        let csr = |cn: &str, signer: &str| {
            let pem = request::fixtures::csr(cn, &["system:nodes"]);
            json!({"spec": {"signerName": signer, "request": base64::engine::general_purpose::STANDARD.encode(pem)}})
        };
        assert_eq!(reason(csr_create("n1", &csr("system:node:n1", signers::KUBE_APISERVER_CLIENT_KUBELET))), "");
        assert_eq!(reason(csr_create("n1", &csr("system:node:n1", signers::KUBELET_SERVING))), "");
        assert_eq!(
            reason(csr_create("n1", &csr("system:node:n2", signers::KUBELET_SERVING))),
            "can only create a node CSR with CN=system:node:n1"
        );
        assert_eq!(
            reason(csr_create("n1", &csr("jane", signers::KUBE_APISERVER_CLIENT_KUBELET))),
            "can only create a node CSR with CN=system:node:n1"
        );
        assert_eq!(reason(csr_create("n1", &csr("jane", signers::KUBE_APISERVER_CLIENT))), "");
        let garbage = json!({"spec": {"signerName": signers::KUBELET_SERVING, "request": "bm90IHBlbQ=="}});
        assert_eq!(
            reason(csr_create("n1", &garbage)),
            "unable to parse csr: PEM block type must be CERTIFICATE REQUEST"
        );
    }
}
