//! The NodeRestriction admission plugin, on whenever the Node authorizer is: a node's creates,
//! updates and deletes (and its evictions and TokenRequests, which are not stored) are checked
//! by `skiff_core::node_restriction` against the objects they touch, looked up here, and
//! refused with upstream's Forbidden (`admission.NewForbidden`). Other users, and the server's
//! own writes, pass.

use super::{ObjectRef, Registry, WriteOptions};
use serde_json::Value;
use skiff_core::auth::UserInfo;
use skiff_core::auth::node_graph::MIRROR_POD_ANNOTATION;
use skiff_core::field::go_quote;
use skiff_core::kinds::{self, Kind, Part};
use skiff_core::node_restriction::{self as rules, Operation, Refusal};
use skiff_core::{ApiError, meta};

/// `admission.NewForbidden`: the resource (without subresource) and name, then why.
fn forbidden(kind: &dyn Kind, name: &str, reason: &str) -> ApiError {
    ApiError::Forbidden(format!("{} {} is forbidden: {reason}", kind.info().qualified_resource(), go_quote(name)))
}

fn refused(kind: &dyn Kind, name: &str, refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Forbidden(reason) => forbidden(kind, name, &reason),
        Refusal::NotFound { resource, name } => {
            ApiError::NotFound { group: String::new(), resource: resource.into(), name }
        }
    }
}

/// The node `user` is, when NodeRestriction is on and applies: Ok(None) for everyone else, a
/// refusal for a node it cannot name.
fn node_of<'u>(
    registry: &Registry,
    user: Option<&'u UserInfo>,
    kind: &dyn Kind,
    name: &str,
) -> Result<Option<&'u str>, ApiError> {
    if !registry.node_restriction {
        return Ok(None);
    }
    match user.and_then(UserInfo::node_name) {
        Some("") => {
            let who = user.map(|u| u.name.as_str()).unwrap_or_default();
            Err(forbidden(kind, name, &format!("could not determine node from user {}", go_quote(who))))
        }
        node => Ok(node),
    }
}

fn is(kind: &dyn Kind, group: &str, plural: &str) -> bool {
    let info = kind.info();
    info.group == group && info.plural == plural
}

/// A create's name as admission reports it: the object's, its generateName, or `Unknown`.
fn create_name(obj: &Value) -> &str {
    let generate = obj.pointer("/metadata/generateName").and_then(Value::as_str).unwrap_or_default();
    [meta::name(obj), generate].into_iter().find(|n| !n.is_empty()).unwrap_or("Unknown")
}

/// A create of `obj` (defaulted, not yet validated) in `namespace`.
pub(super) async fn admit_create(
    registry: &Registry,
    kind: &dyn Kind,
    namespace: &str,
    obj: &Value,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    let name = create_name(obj);
    let Some(node) = node_of(registry, opts.user.as_deref(), kind, name)? else { return Ok(()) };
    let decided = if is(kind, "", "pods") {
        // The Node's uid is only compared for a mirror pod (anything else is refused first).
        let mirror = meta::str_map(obj, "annotations").contains_key(MIRROR_POD_ANNOTATION);
        let uid = match mirror {
            false => None,
            true => match registry.get(ObjectRef { kind: kinds::NODES, namespace: "", name: node }).await {
                Ok(n) => Some(meta::uid(&n).to_string()),
                Err(ApiError::NotFound { .. }) => None,
                Err(e) => {
                    return Err(forbidden(kind, name, &format!("error looking up node {node} to verify uid: {e}")));
                }
            },
        };
        rules::pod_create(node, obj, uid.as_deref())
    } else if is(kind, "", "nodes") {
        rules::node_write(node, Operation::Create, meta::name(obj), None, Some(obj))
    } else if is(kind, "coordination.k8s.io", "leases") {
        rules::lease(node, namespace, meta::name(obj))
    } else if is(kind, "certificates.k8s.io", "certificatesigningrequests") {
        rules::csr_create(node, obj)
    } else {
        Ok(())
    };
    decided.map_err(|r| refused(kind, name, r))
}

/// An update of `part` of `current` (stored) to `new` (as written, before the kind's
/// preparation).
pub(super) fn admit_update(
    registry: &Registry,
    r: ObjectRef<'_>,
    part: Part,
    current: &Value,
    new: &Value,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    let Some(node) = node_of(registry, opts.user.as_deref(), r.kind, r.name)? else { return Ok(()) };
    let decided = if is(r.kind, "", "pods") {
        match part {
            Part::Main => rules::pod_update(node),
            Part::Status => rules::pod_status(node, current, new),
            Part::Named(sub) => rules::pod_subresource(sub),
        }
    } else if is(r.kind, "", "nodes") {
        rules::node_write(node, Operation::Update, r.name, Some(current), Some(new))
    } else if is(r.kind, "coordination.k8s.io", "leases") {
        rules::lease(node, r.namespace, r.name)
    } else {
        Ok(())
    };
    decided.map_err(|refusal| refused(r.kind, r.name, refusal))
}

/// A delete of `r` by `user`: of a pod, only one bound to the node (as the pod now is).
pub(crate) async fn admit_delete(
    registry: &Registry,
    r: ObjectRef<'_>,
    user: Option<&UserInfo>,
) -> Result<(), ApiError> {
    let Some(node) = node_of(registry, user, r.kind, r.name)? else { return Ok(()) };
    let decided = if is(r.kind, "", "pods") {
        rules::pod_delete(node, &pod(registry, r.namespace, r.name).await?)
    } else if is(r.kind, "", "nodes") {
        rules::node_write(node, Operation::Delete, r.name, None, None)
    } else if is(r.kind, "coordination.k8s.io", "leases") {
        rules::lease(node, r.namespace, r.name)
    } else {
        Ok(())
    };
    decided.map_err(|refusal| refused(r.kind, r.name, refusal))
}

/// The pod as the plugin's lister finds it: its NotFound names the resource singular.
async fn pod(registry: &Registry, namespace: &str, name: &str) -> Result<Value, ApiError> {
    match registry.get(ObjectRef { kind: kinds::PODS, namespace, name }).await {
        Err(ApiError::NotFound { .. }) => {
            Err(ApiError::NotFound { group: String::new(), resource: "pod".into(), name: name.into() })
        }
        found => found,
    }
}

/// `pods/NAME/eviction` by `user`: only of a pod bound to the node.
pub(crate) async fn admit_eviction(
    registry: &Registry,
    namespace: &str,
    name: &str,
    user: Option<&UserInfo>,
) -> Result<(), ApiError> {
    let Some(node) = node_of(registry, user, kinds::PODS, name)? else { return Ok(()) };
    rules::pod_eviction(node, &pod(registry, namespace, name).await?).map_err(|r| refused(kinds::PODS, name, r))
}

/// `serviceaccounts/ACCOUNT/token` by `user` with `spec.boundObjectRef` `bound`: only bound to
/// a pod on the node.
pub(crate) async fn admit_token_request(
    registry: &Registry,
    namespace: &str,
    account: &str,
    bound: Option<&Value>,
    user: Option<&UserInfo>,
) -> Result<(), ApiError> {
    let kind = kinds::SERVICE_ACCOUNTS;
    let Some(node) = node_of(registry, user, kind, account)? else { return Ok(()) };
    let (name, uid) = rules::token_pod(bound).map_err(|r| refused(kind, account, r))?;
    rules::token_bound_to(node, uid, &pod(registry, namespace, name).await?).map_err(|r| refused(kind, account, r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn node(name: &str) -> Arc<UserInfo> {
        Arc::new(UserInfo::new(format!("system:node:{name}"), &["system:nodes", "system:authenticated"]))
    }

    fn as_node(name: &str) -> WriteOptions {
        WriteOptions { field_manager: "kubelet".into(), user: Some(node(name)), ..Default::default() }
    }

    async fn setup() -> Registry {
        let mut registry = Registry::new(Arc::new(skiff_store::MemoryStore::new()));
        registry.restrict_nodes(true);
        let admin = WriteOptions { field_manager: "test".into(), ..Default::default() };
        for ns in ["shop", "kube-node-lease"] {
            registry.create(kinds::NAMESPACES, "", json!({"metadata": {"name": ns}}), &admin).await.expect("ns");
        }
        registry
            .create(kinds::SERVICE_ACCOUNTS, "shop", json!({"metadata": {"name": "default"}}), &admin)
            .await
            .expect("sa");
        for (name, node) in [("web", "n1"), ("db", "n2")] {
            let pod = json!({"metadata": {"name": name, "labels": {"app": name}},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}});
            registry.create(kinds::PODS, "shop", pod, &admin).await.expect("pod");
        }
        registry
    }

    fn pod_at(name: &str) -> ObjectRef<'_> {
        ObjectRef { kind: kinds::PODS, namespace: "shop", name }
    }

    #[tokio::test]
    async fn pod_status_only_of_its_own_pods() {
        let registry = setup().await;
        let status = json!({"status": {"phase": "Running"}});
        let patch = |name: &'static str, n: &'static str| {
            let registry = registry.clone();
            let status = status.clone();
            async move {
                registry
                    .patch(pod_at(name), skiff_core::patch::PatchType::Merge, &status, Part::Status, &as_node(n))
                    .await
            }
        };
        patch("web", "n1").await.expect("its own pod");
        let err = patch("db", "n1").await.expect_err("another node's pod");
        assert_eq!(
            err.to_string(),
            r#"pods "db" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself"#
        );
        assert_eq!(err.code(), 403);
        let relabel = json!({"metadata": {"labels": {"app": "x"}}});
        let err = registry
            .patch(pod_at("web"), skiff_core::patch::PatchType::Merge, &relabel, Part::Status, &as_node("n1"))
            .await
            .expect_err("labels");
        assert_eq!(err.to_string(), r#"pods "web" is forbidden: node "n1" cannot update labels through pod status"#);
        let err = registry
            .patch(pod_at("web"), skiff_core::patch::PatchType::Merge, &relabel, Part::Main, &as_node("n1"))
            .await
            .expect_err("the pod itself");
        assert_eq!(
            err.to_string(),
            r#"pods "web" is forbidden: unexpected operation "UPDATE", node "n1" can only create and delete mirror pods"#
        );
        // Not a node: not this plugin's business.
        let admin = WriteOptions { field_manager: "test".into(), ..Default::default() };
        registry
            .patch(pod_at("db"), skiff_core::patch::PatchType::Merge, &status, Part::Status, &admin)
            .await
            .expect("admin");
    }

    #[tokio::test]
    async fn deletes_evictions_and_tokens_for_its_pods() {
        let registry = setup().await;
        let n1 = node("n1");
        admit_delete(&registry, pod_at("web"), Some(&n1)).await.expect("its own");
        let err = admit_delete(&registry, pod_at("db"), Some(&n1)).await.expect_err("n2's");
        assert_eq!(
            err.to_string(),
            r#"pods "db" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself"#
        );
        let err = admit_delete(&registry, pod_at("gone"), Some(&n1)).await.expect_err("missing");
        assert_eq!((err.code(), err.to_string()), (404, r#"pod "gone" not found"#.to_string()));
        let err = admit_eviction(&registry, "shop", "db", Some(&n1)).await.expect_err("n2's");
        assert_eq!(
            err.to_string(),
            r#"pods "db" is forbidden: node n1 can only evict pods with spec.nodeName set to itself"#
        );
        admit_eviction(&registry, "shop", "web", Some(&n1)).await.expect("its own");

        let uid = |name: &str| {
            let registry = registry.clone();
            let name = name.to_string();
            async move { meta::uid(&registry.get(pod_at(&name)).await.expect("pod")).to_string() }
        };
        let bound = |name: &str, uid: &str| json!({"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid});
        let web = bound("web", &uid("web").await);
        admit_token_request(&registry, "shop", "default", Some(&web), Some(&n1)).await.expect("its pod");
        let db = bound("db", &uid("db").await);
        let err = admit_token_request(&registry, "shop", "default", Some(&db), Some(&n1)).await.expect_err("n2's pod");
        assert_eq!(
            err.to_string(),
            r#"serviceaccounts "default" is forbidden: node requested token bound to a pod scheduled on a different node"#
        );
        let err = admit_token_request(&registry, "shop", "default", None, Some(&n1)).await.expect_err("unbound");
        assert_eq!(
            err.to_string(),
            r#"serviceaccounts "default" is forbidden: node requested token not bound to a pod"#
        );
        // A user named as a node but without a name to identify it.
        let nameless = UserInfo::new("system:node:", &["system:nodes"]);
        let err = admit_delete(&registry, pod_at("web"), Some(&nameless)).await.expect_err("nameless");
        assert_eq!(err.to_string(), r#"pods "web" is forbidden: could not determine node from user "system:node:""#);
        // Off when the Node authorizer is not in the chain.
        let mut open = registry.clone();
        open.restrict_nodes(false);
        admit_delete(&open, pod_at("db"), Some(&n1)).await.expect("not restricted");
    }

    #[tokio::test]
    async fn its_own_node_and_lease() {
        let registry = setup().await;
        let n = |name: &str, labels: Value| json!({"metadata": {"name": name, "labels": labels}});
        registry
            .create(kinds::NODES, "", n("n1", json!({"kubernetes.io/hostname": "n1"})), &as_node("n1"))
            .await
            .expect("own");
        let err = registry.create(kinds::NODES, "", n("n2", json!({})), &as_node("n1")).await.expect_err("other");
        assert_eq!(err.to_string(), r#"nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2""#);
        let err = registry
            .create(kinds::NODES, "", n("n3", json!({"node-role.kubernetes.io/control-plane": ""})), &as_node("n3"))
            .await
            .expect_err("role label");
        assert_eq!(
            err.to_string(),
            r#"nodes "n3" is forbidden: node "n3" is not allowed to set the following labels: node-role.kubernetes.io/control-plane"#
        );
        let label = json!({"metadata": {"labels": {"node-restriction.kubernetes.io/pool": "a"}}});
        let at = ObjectRef { kind: kinds::NODES, namespace: "", name: "n1" };
        let err = registry
            .patch(at, skiff_core::patch::PatchType::Merge, &label, Part::Main, &as_node("n1"))
            .await
            .expect_err("restricted label");
        assert_eq!(
            err.to_string(),
            r#"nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool"#
        );
        let ok = json!({"metadata": {"labels": {"example.com/x": "y"}}});
        registry
            .patch(at, skiff_core::patch::PatchType::Merge, &ok, Part::Main, &as_node("n1"))
            .await
            .expect("free label");

        let leases = kinds::by_resource("coordination.k8s.io", "v1", "leases").expect("leases");
        let lease = |name: &str| json!({"metadata": {"name": name}, "spec": {"holderIdentity": name}});
        registry.create(leases, "kube-node-lease", lease("n1"), &as_node("n1")).await.expect("own lease");
        let err = registry.create(leases, "kube-node-lease", lease("n2"), &as_node("n1")).await.expect_err("other");
        assert_eq!(
            err.to_string(),
            r#"leases.coordination.k8s.io "n2" is forbidden: can only access node lease with the same name as the requesting node"#
        );
    }

    #[tokio::test]
    async fn mirror_pods_only() {
        let registry = setup().await;
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}});
        let err = registry.create(kinds::PODS, "shop", pod, &as_node("n1")).await.expect_err("not a mirror pod");
        assert_eq!(
            err.to_string(),
            r#"pods "p" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods"#
        );
        let owner = json!([{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "x", "controller": true}]);
        let mirror = json!({"metadata": {"name": "static-n1", "annotations": {"kubernetes.io/config.mirror": "h"}, "ownerReferences": owner},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}});
        let err = registry.create(kinds::PODS, "shop", mirror.clone(), &as_node("n1")).await.expect_err("no Node n1");
        assert_eq!((err.code(), err.to_string()), (404, r#"node "n1" not found"#.to_string()));
        let admin = WriteOptions { field_manager: "test".into(), ..Default::default() };
        let n1 = registry.create(kinds::NODES, "", json!({"metadata": {"name": "n1"}}), &admin).await.expect("node");
        let err = registry.create(kinds::PODS, "shop", mirror.clone(), &as_node("n1")).await.expect_err("stale uid");
        assert_eq!(
            err.to_string(),
            format!(r#"pods "static-n1" is forbidden: node n1 UID mismatch: expected x got {}"#, meta::uid(&n1))
        );
        let mut mirror = mirror;
        mirror["metadata"]["ownerReferences"][0]["uid"] = json!(meta::uid(&n1));
        registry.create(kinds::PODS, "shop", mirror, &as_node("n1")).await.expect("its mirror pod");
    }
}
