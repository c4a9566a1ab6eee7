//! The Node authorizer: what a node agent (`system:node:NAME` in `system:nodes`) may do, as
//! kube-apiserver 1.32 decides it (`plugin/pkg/auth/authorizer/node/node_authorizer.go`, its
//! AuthorizeNodeWithSelectors gate on as 1.32's default). Secrets, ConfigMaps, claims and
//! volumes are read only when the graph links them to the node through one of its pods;
//! service-account tokens only for an account such a pod runs as; its own Lease, CSINode and
//! Node by name; pods through the graph or a `spec.nodeName=NODE` selector. Everything else is
//! decided by the `system:node` ClusterRole's rules. It never denies outright: a refusal is
//! NoOpinion with upstream's reason, so later authorizers (RBAC) may still allow.

use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::auth::decision::{Decision, Verdict};
use crate::auth::node_graph::{Graph, Vertex};
use crate::auth::quote;
use crate::auth::request::Attributes;
use crate::auth::rules::rule_allows;
use crate::auth::user::UserInfo;
use crate::selector::FieldSelector;

/// The namespace of the nodes' heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

const COORDINATION: &str = "coordination.k8s.io";
const STORAGE: &str = "storage.k8s.io";
const RESOURCE: &str = "resource.k8s.io";

/// What `SelfSubjectRulesReview` gets for a node: its permissions are not enumerable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node authorizer does not support user rule resolution")]
pub struct NoRuleResolution;

/// The Node authorizer with the rules every node holds (upstream's `NodeRules`).
#[derive(Debug, Clone, Default)]
pub struct NodeAuthorizer {
    rules: Vec<PolicyRule>,
}

fn allow() -> Verdict {
    Verdict { decision: Decision::Allow, reason: String::new() }
}

fn no(reason: impl Into<String>) -> Verdict {
    Verdict { decision: Decision::NoOpinion, reason: reason.into() }
}

impl NodeAuthorizer {
    pub fn new(rules: Vec<PolicyRule>) -> Self {
        NodeAuthorizer { rules }
    }

    /// `RulesFor`: a node's rules are incomplete, and say why; other users' are not this
    /// authorizer's to tell.
    pub fn rules_for(&self, user: &UserInfo) -> Result<(), NoRuleResolution> {
        match user.node_name() {
            Some(_) => Err(NoRuleResolution),
            None => Ok(()),
        }
    }

    /// The decision for `attrs`, with `graph` as it stands.
    pub fn authorize(&self, graph: &Graph, attrs: &Attributes) -> Verdict {
        let Some(node) = attrs.user.node_name() else { return no("") };
        if node.is_empty() {
            return no(format!("unknown node for user {}", quote(&attrs.user.name)));
        }
        let r = &attrs.request;
        if r.is_resource_request {
            let check = Check { graph, node, attrs };
            match (r.api_group.as_str(), r.resource.as_str()) {
                ("", "secrets") => return check.read_namespaced(Vertex::Secret),
                ("", "configmaps") => return check.read_namespaced(Vertex::ConfigMap),
                ("", "persistentvolumeclaims") if r.subresource == "status" => {
                    return check.status_update(Vertex::PersistentVolumeClaim);
                }
                ("", "persistentvolumeclaims") => return check.get(Vertex::PersistentVolumeClaim),
                ("", "persistentvolumes") => return check.get(Vertex::PersistentVolume),
                (RESOURCE, "resourceclaims") => return check.get(Vertex::ResourceClaim),
                (STORAGE, "volumeattachments") => return check.get(Vertex::VolumeAttachment),
                ("", "serviceaccounts") => return check.create_token(),
                (COORDINATION, "leases") => return check.own_object("a node lease", Some(NODE_LEASE_NAMESPACE)),
                (STORAGE, "csinodes") => return check.own_object("a CSINode", None),
                (RESOURCE, "resourceslices") => return check.resource_slice(),
                ("", "nodes") => return check.node(),
                ("", "pods") => return check.pod(),
                _ => {}
            }
        }
        // Not subdivided: the same for every node.
        if self.rules.iter().any(|rule| rule_allows(r, rule)) { allow() } else { no("") }
    }
}

/// One node's request, being decided.
struct Check<'a> {
    graph: &'a Graph,
    node: &'a str,
    attrs: &'a Attributes,
}

impl Check<'_> {
    fn verb(&self) -> &str {
        &self.attrs.request.verb
    }

    fn subresource(&self) -> &str {
        &self.attrs.request.subresource
    }

    /// Whether the request's field selector requires `field` to be this node's name.
    fn selects_node(&self, field: &str) -> bool {
        FieldSelector::parse(&self.attrs.request.field_selector)
            .is_ok_and(|s| s.0.iter().any(|(k, eq, v)| k == field && *eq && v == self.node))
    }

    /// `authorizeReadNamespacedObject`: get, list and watch of one named object.
    fn read_namespaced(&self, vertex: Vertex) -> Verdict {
        if !matches!(self.verb(), "get" | "list" | "watch") {
            return no("can only read resources of this type");
        }
        if !self.subresource().is_empty() {
            return no("cannot read subresource");
        }
        if self.attrs.request.namespace.is_empty() {
            return no("can only read namespaced object of this type");
        }
        self.related(vertex)
    }

    /// `authorizeGet`: a get of one related object.
    fn get(&self, vertex: Vertex) -> Verdict {
        if self.verb() != "get" {
            return no("can only get individual resources of this type");
        }
        if !self.subresource().is_empty() {
            return no("cannot get subresource");
        }
        self.related(vertex)
    }

    /// `authorizeStatusUpdate`: the status of a related object.
    fn status_update(&self, vertex: Vertex) -> Verdict {
        if !matches!(self.verb(), "update" | "patch") {
            return no("can only get/update/patch this type");
        }
        if self.subresource() != "status" {
            return no("can only update status subresource");
        }
        self.related(vertex)
    }

    /// `authorize`: the named object must be reachable from the node.
    fn related(&self, vertex: Vertex) -> Verdict {
        let r = &self.attrs.request;
        if r.name.is_empty() {
            return no("No Object name found");
        }
        self.path(vertex, &r.namespace, &r.name)
    }

    fn path(&self, vertex: Vertex, namespace: &str, name: &str) -> Verdict {
        if self.graph.has_path(vertex, namespace, name, self.node) {
            allow()
        } else {
            no(format!("no relationship found between node '{}' and this object", self.node))
        }
    }

    /// `authorizeCreateToken`: a token of an account one of the node's pods runs as.
    fn create_token(&self) -> Verdict {
        let r = &self.attrs.request;
        if self.verb() != "create" || r.name.is_empty() {
            return no("can only create tokens for individual service accounts");
        }
        if self.subresource() != "token" {
            return no("can only create token subresource of serviceaccount");
        }
        self.path(Vertex::ServiceAccount, &r.namespace, &r.name)
    }

    /// `authorizeLease` and `authorizeCSINode`: the object named as the node, in `namespace`
    /// if one is required. A create's name is not known yet: NodeRestriction checks it.
    fn own_object(&self, what: &str, namespace: Option<&str>) -> Verdict {
        let r = &self.attrs.request;
        if !matches!(self.verb(), "get" | "create" | "update" | "patch" | "delete") {
            return no(format!("can only get, create, update, patch, or delete {what}"));
        }
        match namespace {
            Some(ns) if r.namespace != ns => {
                return no(format!("can only access leases in the {} system namespace", quote(ns)));
            }
            None if !self.subresource().is_empty() => return no("cannot authorize CSINode subresources"),
            _ => {}
        }
        if self.verb() != "create" && r.name != self.node {
            let kind = if namespace.is_some() { "node lease" } else { "CSINode" };
            return no(format!("can only access {kind} with the same name as the requesting node"));
        }
        allow()
    }

    /// `authorizeResourceSlice`: the node's own slices (by the graph, or by a `nodeName`
    /// selector for collections); creates are NodeRestriction's to check.
    fn resource_slice(&self) -> Verdict {
        if !self.subresource().is_empty() {
            return no("cannot authorize ResourceSlice subresources");
        }
        match self.verb() {
            "create" => allow(),
            "get" | "update" | "patch" | "delete" => self.related(Vertex::ResourceSlice),
            "watch" | "list" | "deletecollection" if self.selects_node("nodeName") => allow(),
            "watch" | "list" | "deletecollection" => {
                no("can only list/watch/deletecollection resourceslices with nodeName field selector")
            }
            _ => no(
                "only the following verbs are allowed for a ResourceSlice: get, watch, list, create, update, patch, delete, deletecollection",
            ),
        }
    }

    /// `authorizeNode`: reads of its own Node only (by name, so before it exists too); writes
    /// are NodeRestriction's to check.
    fn node(&self) -> Verdict {
        let name = &self.attrs.request.name;
        match (self.subresource(), self.verb()) {
            ("", "create" | "update" | "patch") => allow(),
            ("", "get" | "list" | "watch") if name == self.node => allow(),
            ("", "get" | "list" | "watch") if name.is_empty() => {
                no(format!("node '{}' cannot read all nodes, only its own Node object", self.node))
            }
            ("", "get" | "list" | "watch") => {
                no(format!("node '{}' cannot read '{name}', only its own Node object", self.node))
            }
            ("status", "update" | "patch") => allow(),
            _ => no(""),
        }
    }

    /// `authorizePod`: a pod on the node, or the node's pods by field selector; writes are
    /// NodeRestriction's to check.
    fn pod(&self) -> Verdict {
        match (self.subresource(), self.verb()) {
            ("", "get") => self.get(Vertex::Pod),
            ("", "list" | "watch") if self.selects_node("spec.nodeName") => allow(),
            ("", "list" | "watch") if !self.attrs.request.name.is_empty() => self.related(Vertex::Pod),
            ("", "list" | "watch") => no("can only list/watch pods with spec.nodeName field selector"),
            ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => allow(),
            _ => no(""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::bootstrap::node_rules;
    use crate::auth::node_graph::tests::{pod, volume};
    use crate::auth::request::request_info;
    use crate::auth::user::{ALL_AUTHENTICATED, NODES_GROUP};
    use serde_json::json;

    fn graph() -> Graph {
        let mut g = Graph::default();
        let volumes = |secret: &str, cm: &str, claim: &str| {
            json!({"serviceAccountName": "app", "volumes": [{"name": "s", "secret": {"secretName": secret}},
                {"name": "c", "configMap": {"name": cm}}, {"name": "d", "persistentVolumeClaim": {"claimName": claim}}]})
        };
        g.set_pod(&pod("shop", "web", "u1", "n1", volumes("tls", "conf", "data")));
        g.set_pod(&pod("shop", "db", "u2", "n2", volumes("db-password", "db-conf", "db-data")));
        g.set_volume(&volume("pv-data", Some(("shop", "data"))));
        g.set_volume(&volume("pv-db", Some(("shop", "db-data"))));
        g.set_volume(&volume("pv1", None));
        g
    }

    fn node(name: &str) -> UserInfo {
        UserInfo::new(format!("system:node:{name}"), &[NODES_GROUP, ALL_AUTHENTICATED])
    }

    /// The verdict for `user` asking `method path?query`.
    fn ask(user: &UserInfo, method: &str, path: &str, query: &[(&str, &str)]) -> Verdict {
        let attrs = request_info(method, path, query).expect("request").with_user(user.clone());
        NodeAuthorizer::new(node_rules()).authorize(&graph(), &attrs)
    }

    const UNRELATED: &str = "no relationship found between node 'n1' and this object";

    #[test]
    fn secrets_and_configmaps_of_its_pods_only() {
        let n1 = node("n1");
        for (method, path, query, want) in [
            ("GET", "/api/v1/namespaces/shop/secrets/tls", &[][..], ""),
            ("GET", "/api/v1/namespaces/shop/configmaps/conf", &[], ""),
            ("GET", "/api/v1/namespaces/shop/secrets", &[("fieldSelector", "metadata.name=tls")], ""),
            ("GET", "/api/v1/namespaces/shop/secrets", &[("fieldSelector", "metadata.name=tls"), ("watch", "1")], ""),
            ("GET", "/api/v1/namespaces/shop/secrets/db-password", &[], UNRELATED),
            ("GET", "/api/v1/namespaces/shop/configmaps/db-conf", &[], UNRELATED),
            ("GET", "/api/v1/namespaces/other/secrets/tls", &[], UNRELATED),
            ("GET", "/api/v1/namespaces/shop/secrets", &[], "No Object name found"),
            ("GET", "/api/v1/secrets", &[], "can only read namespaced object of this type"),
            ("PUT", "/api/v1/namespaces/shop/secrets/tls", &[], "can only read resources of this type"),
            ("DELETE", "/api/v1/namespaces/shop/secrets/tls", &[], "can only read resources of this type"),
            ("POST", "/api/v1/namespaces/shop/secrets", &[], "can only read resources of this type"),
            ("GET", "/api/v1/namespaces/shop/secrets/tls/status", &[], "cannot read subresource"),
        ] {
            let v = ask(&n1, method, path, query);
            assert_eq!((v.allowed(), v.reason.as_str()), (want.is_empty(), want), "{method} {path} {query:?}");
        }
        assert!(ask(&node("n2"), "GET", "/api/v1/namespaces/shop/secrets/db-password", &[]).allowed());
    }

    #[test]
    fn pods_by_graph_or_node_selector() {
        let n1 = node("n1");
        let all = "can only list/watch pods with spec.nodeName field selector";
        for (method, path, query, allowed, reason) in [
            ("GET", "/api/v1/pods", &[("fieldSelector", "spec.nodeName=n1")][..], true, ""),
            ("GET", "/api/v1/pods", &[("fieldSelector", "spec.nodeName==n1"), ("watch", "true")], true, ""),
            (
                "GET",
                "/api/v1/namespaces/shop/pods",
                &[("fieldSelector", "status.phase=Running,spec.nodeName=n1")],
                true,
                "",
            ),
            ("GET", "/api/v1/namespaces/shop/pods/web", &[], true, ""),
            ("GET", "/api/v1/namespaces/shop/pods", &[("fieldSelector", "metadata.name=web")], true, ""),
            ("GET", "/api/v1/pods", &[], false, all),
            ("GET", "/api/v1/pods", &[("fieldSelector", "spec.nodeName=n2")], false, all),
            ("GET", "/api/v1/pods", &[("fieldSelector", "spec.nodeName!=n1")], false, all),
            ("GET", "/api/v1/watch/pods", &[("fieldSelector", "spec.nodeName=n1")], false, all),
            ("GET", "/api/v1/namespaces/shop/pods/db", &[], false, UNRELATED),
            ("GET", "/api/v1/namespaces/shop/pods", &[("fieldSelector", "metadata.name=db")], false, UNRELATED),
            // writes are allowed here and narrowed by NodeRestriction
            ("POST", "/api/v1/namespaces/shop/pods", &[], true, ""),
            ("DELETE", "/api/v1/namespaces/shop/pods/db", &[], true, ""),
            ("PATCH", "/api/v1/namespaces/shop/pods/db/status", &[], true, ""),
            ("PUT", "/api/v1/namespaces/shop/pods/web/status", &[], true, ""),
            ("POST", "/api/v1/namespaces/shop/pods/db/eviction", &[], true, ""),
            // nothing else, and not by the node rules either
            ("PATCH", "/api/v1/namespaces/shop/pods/web", &[], false, ""),
            ("GET", "/api/v1/namespaces/shop/pods/web/status", &[], false, ""),
            ("GET", "/api/v1/namespaces/shop/pods/web/log", &[], false, ""),
            ("POST", "/api/v1/namespaces/shop/pods/web/exec", &[], false, ""),
            ("DELETE", "/api/v1/namespaces/shop/pods", &[("fieldSelector", "spec.nodeName=n1")], false, ""),
        ] {
            let v = ask(&n1, method, path, query);
            assert_eq!((v.allowed(), v.reason.as_str()), (allowed, reason), "{method} {path} {query:?}");
        }
    }

    #[test]
    fn its_own_node_by_name() {
        let n1 = node("n1");
        for (method, path, query, allowed, reason) in [
            ("GET", "/api/v1/nodes/n1", &[][..], true, ""),
            ("GET", "/api/v1/nodes", &[("fieldSelector", "metadata.name=n1")], true, ""),
            ("GET", "/api/v1/nodes", &[("fieldSelector", "metadata.name=n1"), ("watch", "1")], true, ""),
            ("GET", "/api/v1/nodes/n2", &[], false, "node 'n1' cannot read 'n2', only its own Node object"),
            ("GET", "/api/v1/nodes", &[], false, "node 'n1' cannot read all nodes, only its own Node object"),
            ("POST", "/api/v1/nodes", &[], true, ""),
            ("PATCH", "/api/v1/nodes/n2", &[], true, ""),
            ("PUT", "/api/v1/nodes/n2/status", &[], true, ""),
            ("DELETE", "/api/v1/nodes/n1", &[], false, ""),
            ("GET", "/api/v1/nodes/n1/status", &[], false, ""),
            ("GET", "/api/v1/nodes/n1/proxy/metrics", &[], false, ""),
        ] {
            let v = ask(&n1, method, path, query);
            assert_eq!((v.allowed(), v.reason.as_str()), (allowed, reason), "{method} {path} {query:?}");
        }
    }

    #[test]
    fn tokens_for_the_accounts_of_its_pods() {
        let n1 = node("n1");
        assert!(ask(&n1, "POST", "/api/v1/namespaces/shop/serviceaccounts/app/token", &[]).allowed());
        let v = ask(&n1, "POST", "/api/v1/namespaces/shop/serviceaccounts/default/token", &[]);
        assert_eq!(v.reason, UNRELATED);
        let v = ask(&n1, "POST", "/api/v1/namespaces/other/serviceaccounts/app/token", &[]);
        assert_eq!(v.reason, UNRELATED);
        for (method, path, reason) in [
            (
                "GET",
                "/api/v1/namespaces/shop/serviceaccounts/app",
                "can only create tokens for individual service accounts",
            ),
            (
                "GET",
                "/api/v1/namespaces/shop/serviceaccounts",
                "can only create tokens for individual service accounts",
            ),
            (
                "POST",
                "/api/v1/namespaces/shop/serviceaccounts",
                "can only create tokens for individual service accounts",
            ),
            (
                "PUT",
                "/api/v1/namespaces/shop/serviceaccounts/app/token",
                "can only create tokens for individual service accounts",
            ),
            (
                "POST",
                "/api/v1/namespaces/shop/serviceaccounts/app/other",
                "can only create token subresource of serviceaccount",
            ),
        ] {
            let v = ask(&n1, method, path, &[]);
            assert_eq!((v.allowed(), v.reason.as_str()), (false, reason), "{method} {path}");
        }
    }

    #[test]
    fn leases_csinodes_claims_and_slices() {
        let n1 = node("n1");
        let lease = |ns: &str, name: &str| format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}");
        for (method, path, query, allowed, reason) in [
            ("PUT", lease("kube-node-lease", "n1"), &[][..], true, ""),
            ("GET", lease("kube-node-lease", "n1"), &[], true, ""),
            ("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases".into(), &[], true, ""),
            (
                "PUT",
                lease("kube-node-lease", "n2"),
                &[],
                false,
                "can only access node lease with the same name as the requesting node",
            ),
            (
                "PUT",
                lease("kube-system", "n1"),
                &[],
                false,
                r#"can only access leases in the "kube-node-lease" system namespace"#,
            ),
            (
                "GET",
                "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases".into(),
                &[],
                false,
                "can only get, create, update, patch, or delete a node lease",
            ),
            ("GET", "/apis/storage.k8s.io/v1/csinodes/n1".into(), &[], true, ""),
            ("POST", "/apis/storage.k8s.io/v1/csinodes".into(), &[], true, ""),
            (
                "PUT",
                "/apis/storage.k8s.io/v1/csinodes/n2".into(),
                &[],
                false,
                "can only access CSINode with the same name as the requesting node",
            ),
            (
                "GET",
                "/apis/storage.k8s.io/v1/csinodes".into(),
                &[],
                false,
                "can only get, create, update, patch, or delete a CSINode",
            ),
            (
                "GET",
                "/apis/storage.k8s.io/v1/csinodes/n1/status".into(),
                &[],
                false,
                "cannot authorize CSINode subresources",
            ),
            ("GET", "/api/v1/namespaces/shop/persistentvolumeclaims/data".into(), &[], true, ""),
            ("PATCH", "/api/v1/namespaces/shop/persistentvolumeclaims/data/status".into(), &[], true, ""),
            (
                "GET",
                "/api/v1/namespaces/shop/persistentvolumeclaims/data/status".into(),
                &[],
                false,
                "can only get/update/patch this type",
            ),
            (
                "GET",
                "/api/v1/namespaces/shop/persistentvolumeclaims".into(),
                &[],
                false,
                "can only get individual resources of this type",
            ),
            ("GET", "/api/v1/namespaces/shop/persistentvolumeclaims/db-data".into(), &[], false, UNRELATED),
            // a volume through the claim it is bound to
            ("GET", "/api/v1/persistentvolumes/pv-data".into(), &[], true, ""),
            ("GET", "/api/v1/persistentvolumes/pv-db".into(), &[], false, UNRELATED),
            ("GET", "/api/v1/persistentvolumes/pv1".into(), &[], false, UNRELATED),
            (
                "GET",
                "/api/v1/persistentvolumes".into(),
                &[("fieldSelector", "metadata.name=pv-data")],
                false,
                "can only get individual resources of this type",
            ),
            (
                "PUT",
                "/api/v1/persistentvolumes/pv-data/status".into(),
                &[],
                false,
                "can only get individual resources of this type",
            ),
            ("GET", "/api/v1/persistentvolumes/pv-data/status".into(), &[], false, "cannot get subresource"),
            ("GET", "/apis/storage.k8s.io/v1/volumeattachments/va".into(), &[], false, UNRELATED),
            (
                "GET",
                "/apis/resource.k8s.io/v1beta1/resourceslices".into(),
                &[("fieldSelector", "nodeName=n1")],
                true,
                "",
            ),
            (
                "GET",
                "/apis/resource.k8s.io/v1beta1/resourceslices".into(),
                &[],
                false,
                "can only list/watch/deletecollection resourceslices with nodeName field selector",
            ),
            ("POST", "/apis/resource.k8s.io/v1beta1/resourceslices".into(), &[], true, ""),
            ("GET", "/apis/resource.k8s.io/v1beta1/resourceslices/s".into(), &[], false, UNRELATED),
        ] {
            let v = ask(&n1, method, &path, query);
            assert_eq!((v.allowed(), v.reason.as_str()), (allowed, reason), "{method} {path} {query:?}");
        }
        assert!(ask(&node("n2"), "GET", "/api/v1/persistentvolumes/pv-db", &[]).allowed());
    }

    #[test]
    fn the_rest_by_the_node_rules_and_only_for_nodes() {
        let n1 = node("n1");
        assert!(ask(&n1, "GET", "/api/v1/services", &[]).allowed());
        assert!(ask(&n1, "POST", "/api/v1/namespaces/shop/events", &[]).allowed());
        assert!(ask(&n1, "POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests", &[]).allowed());
        assert_eq!(ask(&n1, "GET", "/api/v1/namespaces", &[]), no(""));
        assert_eq!(ask(&n1, "DELETE", "/api/v1/namespaces/shop/services/web", &[]), no(""));
        assert_eq!(ask(&n1, "GET", "/healthz", &[]), no(""));
        // Not a node: no opinion, no reason.
        let jane = UserInfo::new("jane", &[ALL_AUTHENTICATED]);
        assert_eq!(ask(&jane, "GET", "/api/v1/namespaces/shop/secrets/tls", &[]), no(""));
        let named_only = UserInfo::new("system:node:n1", &[ALL_AUTHENTICATED]);
        assert_eq!(ask(&named_only, "GET", "/api/v1/namespaces/shop/secrets/tls", &[]), no(""));
        let nameless = UserInfo::new("system:node:", &[NODES_GROUP]);
        assert_eq!(ask(&nameless, "GET", "/api/v1/services", &[]), no(r#"unknown node for user "system:node:""#));
        let authz = NodeAuthorizer::new(node_rules());
        assert_eq!(
            authz.rules_for(&n1).map_err(|e| e.to_string()),
            Err("node authorizer does not support user rule resolution".into())
        );
        assert_eq!(authz.rules_for(&jane), Ok(()));
    }
}
