//! The default ClusterRoles and ClusterRoleBindings kube-apiserver 1.32 reconciles at start
//! (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`, default feature gates): the
//! user-facing `admin`/`edit`/`view` (aggregated), discovery and self-review roles, and the
//! components' roles. Rules are sorted as upstream's rule builder sorts them. The per-controller
//! `system:controller:*` roles are not here: skiff's controller manager runs as one identity.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::auth::RBAC_GROUP;
use crate::auth::user::{
    ALL_AUTHENTICATED, ALL_SERVICE_ACCOUNTS_GROUP, ALL_UNAUTHENTICATED, KUBE_CONTROLLER_MANAGER, KUBE_PROXY,
    KUBE_SCHEDULER, MONITORING_GROUP, SYSTEM_PRIVILEGED_GROUP,
};

/// Marks the defaults, so the API server knows which objects it owns.
pub const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");
/// The API server puts back missing rules and subjects at start unless this is `"false"`.
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
pub const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
pub const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
pub const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ_WRITE: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

const CORE: &str = "";
const APPS: &str = "apps";
const AUTHENTICATION: &str = "authentication.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTOSCALING: &str = "autoscaling";
const BATCH: &str = "batch";
const CERTIFICATES: &str = "certificates.k8s.io";
const COORDINATION: &str = "coordination.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const EXTENSIONS: &str = "extensions";
const NETWORKING: &str = "networking.k8s.io";
const POLICY: &str = "policy";
const STORAGE: &str = "storage.k8s.io";

fn sorted(v: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    out.sort();
    out
}

/// A resource rule (upstream's `NewRule(verbs).Groups(..).Resources(..)`).
fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: sorted(verbs),
        api_groups: Some(sorted(groups)),
        resources: Some(sorted(resources)),
        ..Default::default()
    }
}

fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule { resource_names: Some(sorted(names)), ..rule(verbs, groups, resources) }
}

fn urls(verbs: &[&str], paths: &[&str]) -> PolicyRule {
    PolicyRule { verbs: sorted(verbs), non_resource_urls: Some(sorted(paths)), ..Default::default() }
}

/// Components record events in both event APIs.
fn events() -> PolicyRule {
    rule(&["create", "update", "patch"], &[CORE, "events.k8s.io"], &["events"])
}

fn metadata(name: &str, extra_label: Option<&str>) -> ObjectMeta {
    let mut labels = BTreeMap::from([(BOOTSTRAP_LABEL.0.to_string(), BOOTSTRAP_LABEL.1.to_string())]);
    if let Some(key) = extra_label {
        labels.insert(key.to_string(), "true".to_string());
    }
    ObjectMeta {
        name: Some(name.to_string()),
        labels: Some(labels),
        annotations: Some(BTreeMap::from([(AUTOUPDATE_ANNOTATION.to_string(), "true".to_string())])),
        ..Default::default()
    }
}

fn role(name: &str, label: Option<&str>, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole { metadata: metadata(name, label), rules: Some(rules), aggregation_rule: None }
}

/// A role whose rules the aggregation controller fills from roles labelled `selects`.
fn aggregated(name: &str, label: Option<&str>, selects: &str) -> ClusterRole {
    let selector = LabelSelector {
        match_labels: Some(BTreeMap::from([(selects.to_string(), "true".to_string())])),
        ..Default::default()
    };
    ClusterRole {
        metadata: metadata(name, label),
        rules: None,
        aggregation_rule: Some(AggregationRule { cluster_role_selectors: Some(vec![selector]) }),
    }
}

fn view_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            &[CORE],
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            READ,
            &[CORE],
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        // reading namespaces in a namespace means reading that one: a hint of where one has access
        rule(READ, &[CORE], &["namespaces"]),
        rule(READ, &[DISCOVERY], &["endpointslices"]),
        rule(
            READ,
            &[APPS],
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ],
        ),
        rule(READ, &[AUTOSCALING], &["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
        rule(READ, &[BATCH], &["jobs", "cronjobs", "cronjobs/status", "jobs/status"]),
        rule(
            READ,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(READ, &[POLICY], &["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        rule(READ, &[NETWORKING], &["networkpolicies", "ingresses", "ingresses/status"]),
    ]
}

/// `edit` adds writes and the escalating reads (secrets, exec, attach, port-forward, proxy); it
/// leaves out what controls the namespace itself (quota, limits, status, RBAC).
fn edit_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            &[CORE],
            &["pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"],
        ),
        rule(&["impersonate"], &[CORE], &["serviceaccounts"]),
        rule(WRITE, &[CORE], &["pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"]),
        rule(&["create"], &[CORE], &["pods/eviction"]),
        rule(
            WRITE,
            &[CORE],
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "events",
            ],
        ),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
        rule(
            WRITE,
            &[APPS],
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(WRITE, &[AUTOSCALING], &["horizontalpodautoscalers"]),
        rule(WRITE, &[BATCH], &["jobs", "cronjobs"]),
        rule(
            WRITE,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(WRITE, &[POLICY], &["poddisruptionbudgets"]),
        rule(WRITE, &[NETWORKING], &["networkpolicies", "ingresses"]),
    ]
}

/// What a node agent needs; upstream narrows it further with the Node authorizer and the
/// NodeRestriction admission plugin (a node's own objects only).
fn node_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews", "localsubjectaccessreviews"]),
        rule(READ, &[CORE], &["services"]),
        rule(&["create", "get", "list", "watch"], &[CORE], &["nodes"]),
        rule(&["update", "patch"], &[CORE], &["nodes/status"]),
        rule(&["update", "patch"], &[CORE], &["nodes"]),
        rule(&["create", "update", "patch"], &[CORE], &["events"]),
        rule(READ, &[CORE], &["pods"]),
        rule(&["create", "delete"], &[CORE], &["pods"]),
        rule(&["update", "patch"], &[CORE], &["pods/status"]),
        rule(&["create"], &[CORE], &["pods/eviction"]),
        rule(READ, &[CORE], &["secrets", "configmaps"]),
        rule(&["get"], &[CORE], &["persistentvolumeclaims", "persistentvolumes"]),
        rule(&["get"], &[CORE], &["endpoints"]),
        rule(&["create", "get", "list", "watch"], &[CERTIFICATES], &["certificatesigningrequests"]),
        rule(&["get", "create", "update", "patch", "delete"], &[COORDINATION], &["leases"]),
        rule(&["get"], &[STORAGE], &["volumeattachments"]),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
        rule(&["get", "update", "patch"], &[CORE], &["persistentvolumeclaims/status"]),
        rule(READ, &[STORAGE], &["csidrivers"]),
        rule(&["get", "create", "update", "patch", "delete"], &[STORAGE], &["csinodes"]),
        rule(READ, &["node.k8s.io"], &["runtimeclasses"]),
    ]
}

fn scheduler_rules() -> Vec<PolicyRule> {
    vec![
        events(),
        // leader election: create any lease, then only its own
        rule(&["create"], &[COORDINATION], &["leases"]),
        named(&["get", "update"], &[COORDINATION], &["leases"], &["kube-scheduler"]),
        rule(READ, &[CORE], &["nodes"]),
        rule(&["get", "list", "watch", "delete"], &[CORE], &["pods"]),
        rule(&["create"], &[CORE], &["pods/binding", "bindings"]),
        rule(&["patch", "update"], &[CORE], &["pods/status"]),
        rule(READ, &[CORE], &["replicationcontrollers", "services"]),
        rule(READ, &[APPS, EXTENSIONS], &["replicasets"]),
        rule(READ, &[APPS], &["statefulsets"]),
        rule(READ, &[POLICY], &["poddisruptionbudgets"]),
        rule(READ, &[CORE], &["persistentvolumeclaims", "persistentvolumes"]),
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        rule(READ, &[STORAGE], &["csinodes"]),
        rule(READ, &[CORE], &["namespaces"]),
        rule(READ, &[STORAGE], &["csidrivers"]),
        rule(READ, &[STORAGE], &["csistoragecapacities"]),
    ]
}

/// The controller manager's own identity: enough to start, watch everything and make the
/// service accounts upstream's controllers then run as (their `system:controller:*` roles are
/// not here).
fn controller_manager_rules() -> Vec<PolicyRule> {
    vec![
        events(),
        rule(&["create"], &[COORDINATION], &["leases"]),
        named(&["get", "update"], &[COORDINATION], &["leases"], &["kube-controller-manager"]),
        rule(&["create"], &[CORE], &["secrets", "serviceaccounts"]),
        rule(&["delete"], &[CORE], &["secrets"]),
        rule(&["get"], &[CORE], &["namespaces", "secrets", "serviceaccounts", "configmaps"]),
        rule(&["update"], &[CORE], &["secrets", "serviceaccounts"]),
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        // every shared informer
        rule(&["list", "watch"], &["*"], &["*"]),
        rule(&["create"], &[CORE], &["serviceaccounts/token"]),
    ]
}

fn approver(name: &str, signer: &str) -> ClusterRole {
    role(name, None, vec![named(&["approve"], &[CERTIFICATES], &["signers"], &[signer])])
}

/// Upstream's default ClusterRoles (aggregated ones with empty rules: run
/// [`crate::auth::aggregate::aggregate`] over them with the stored roles).
pub fn cluster_roles() -> Vec<ClusterRole> {
    let health = ["/livez", "/readyz", "/healthz", "/version", "/version/"];
    vec![
        // anything at all
        role("cluster-admin", None, vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])]),
        // enough to tell the server is up and to negotiate API versions
        role(
            "system:discovery",
            None,
            vec![urls(
                &["get"],
                &[
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                ],
            )],
        ),
        role(
            "system:monitoring",
            None,
            vec![urls(
                &["get"],
                &["/metrics", "/metrics/slis", "/livez", "/readyz", "/healthz", "/livez/*", "/readyz/*", "/healthz/*"],
            )],
        ),
        // what a user needs to learn about themselves (`kubectl auth can-i`, `auth whoami`)
        role(
            "system:basic-user",
            None,
            vec![
                rule(&["create"], &[AUTHORIZATION], &["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                rule(&["create"], &[AUTHENTICATION], &["selfsubjectreviews"]),
            ],
        ),
        role("system:public-info-viewer", None, vec![urls(&["get"], &health)]),
        aggregated("admin", None, AGGREGATE_TO_ADMIN),
        aggregated("edit", Some(AGGREGATE_TO_ADMIN), AGGREGATE_TO_EDIT),
        aggregated("view", Some(AGGREGATE_TO_EDIT), AGGREGATE_TO_VIEW),
        role(
            "system:aggregate-to-admin",
            Some(AGGREGATE_TO_ADMIN),
            vec![
                rule(&["create"], &[AUTHORIZATION], &["localsubjectaccessreviews"]),
                rule(READ_WRITE, &[RBAC_GROUP], &["roles", "rolebindings"]),
            ],
        ),
        role("system:aggregate-to-edit", Some(AGGREGATE_TO_EDIT), edit_rules()),
        role("system:aggregate-to-view", Some(AGGREGATE_TO_VIEW), view_rules()),
        role("system:node", None, node_rules()),
        role(
            "system:node-proxier",
            None,
            vec![
                rule(&["list", "watch"], &[CORE], &["services", "endpoints"]),
                rule(READ, &[CORE], &["nodes"]),
                events(),
                rule(&["list", "watch"], &[DISCOVERY], &["endpointslices"]),
            ],
        ),
        role("system:kube-scheduler", None, scheduler_rules()),
        role(
            "system:volume-scheduler",
            None,
            vec![
                rule(&["get", "list", "watch", "update", "patch"], &[CORE], &["persistentvolumes"]),
                rule(READ, &[STORAGE], &["storageclasses"]),
                rule(&["get", "list", "watch", "update", "patch"], &[CORE], &["persistentvolumeclaims"]),
            ],
        ),
        role("system:kube-controller-manager", None, controller_manager_rules()),
        role("system:kube-dns", None, vec![rule(&["list", "watch"], &[CORE], &["endpoints", "services"])]),
        // token and access reviews for servers that delegate authentication and authorization
        role(
            "system:auth-delegator",
            None,
            vec![
                rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
                rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
            ],
        ),
        role(
            "system:service-account-issuer-discovery",
            None,
            vec![urls(&["get"], &["/.well-known/openid-configuration", "/openid/v1/jwks"])],
        ),
        role(
            "system:node-bootstrapper",
            None,
            vec![rule(&["create", "get", "list", "watch"], &[CERTIFICATES], &["certificatesigningrequests"])],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            None,
            vec![rule(&["create"], &[CERTIFICATES], &["certificatesigningrequests/nodeclient"])],
        ),
        role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            None,
            vec![rule(&["create"], &[CERTIFICATES], &["certificatesigningrequests/selfnodeclient"])],
        ),
        approver("system:certificates.k8s.io:kube-apiserver-client-approver", "kubernetes.io/kube-apiserver-client"),
        approver(
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            "kubernetes.io/kube-apiserver-client-kubelet",
        ),
        approver("system:certificates.k8s.io:kubelet-serving-approver", "kubernetes.io/kubelet-serving"),
        approver("system:certificates.k8s.io:legacy-unknown-approver", "kubernetes.io/legacy-unknown"),
    ]
}

fn user(name: &str) -> Subject {
    Subject { kind: "User".into(), name: name.into(), api_group: Some(RBAC_GROUP.into()), namespace: None }
}

fn group(name: &str) -> Subject {
    Subject { kind: "Group".into(), name: name.into(), api_group: Some(RBAC_GROUP.into()), namespace: None }
}

fn service_account(namespace: &str, name: &str) -> Subject {
    Subject { kind: "ServiceAccount".into(), name: name.into(), api_group: None, namespace: Some(namespace.into()) }
}

/// Upstream's default ClusterRoleBindings, each named after its ClusterRole.
pub fn cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    [
        ("cluster-admin", vec![group(SYSTEM_PRIVILEGED_GROUP)]),
        ("system:monitoring", vec![group(MONITORING_GROUP)]),
        ("system:discovery", vec![group(ALL_AUTHENTICATED)]),
        ("system:basic-user", vec![group(ALL_AUTHENTICATED)]),
        ("system:public-info-viewer", vec![group(ALL_AUTHENTICATED), group(ALL_UNAUTHENTICATED)]),
        ("system:node-proxier", vec![user(KUBE_PROXY)]),
        ("system:kube-controller-manager", vec![user(KUBE_CONTROLLER_MANAGER)]),
        ("system:kube-dns", vec![service_account("kube-system", "kube-dns")]),
        ("system:kube-scheduler", vec![user(KUBE_SCHEDULER)]),
        ("system:volume-scheduler", vec![user(KUBE_SCHEDULER)]),
        // Nodes are authorized by the node authorizer since 1.7; upstream keeps this binding
        // with no subjects so reconciliation removes the old `system:nodes` subject.
        ("system:node", vec![]),
        ("system:service-account-issuer-discovery", vec![group(ALL_SERVICE_ACCOUNTS_GROUP)]),
    ]
    .into_iter()
    .map(|(name, subjects)| ClusterRoleBinding {
        metadata: metadata(name, None),
        role_ref: RoleRef { api_group: Some(RBAC_GROUP.into()), kind: "ClusterRole".into(), name: name.into() },
        subjects: (!subjects.is_empty()).then_some(subjects),
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::aggregate::aggregate;
    use crate::auth::authorize::authorize;
    use crate::auth::escalation::confirm_no_escalation;
    use crate::auth::rbac::tests::{binding, request, role_ref, subject};
    use crate::auth::rbac::{Authorizer, Snapshot};
    use crate::auth::request::RequestInfo;
    use crate::auth::user::{UserInfo, node_username};

    fn defaults_with(role_bindings: Vec<k8s_openapi::api::rbac::v1::RoleBinding>) -> Authorizer {
        Authorizer::new(Snapshot {
            cluster_roles: aggregate(cluster_roles()),
            cluster_role_bindings: cluster_role_bindings(),
            role_bindings,
            ..Default::default()
        })
    }

    #[test]
    fn objects_are_well_formed() {
        let roles = cluster_roles();
        let names: Vec<&str> = roles.iter().filter_map(|r| r.metadata.name.as_deref()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicate role names");
        for r in &roles {
            let labels = r.metadata.labels.as_ref().expect("labels");
            assert_eq!(labels.get(BOOTSTRAP_LABEL.0).map(String::as_str), Some(BOOTSTRAP_LABEL.1));
            let annotations = r.metadata.annotations.as_ref().expect("annotations");
            assert_eq!(annotations.get(AUTOUPDATE_ANNOTATION).map(String::as_str), Some("true"));
            for rule in r.rules.iter().flatten() {
                let mut verbs = rule.verbs.clone();
                verbs.sort();
                assert_eq!(verbs, rule.verbs, "{:?}", r.metadata.name);
                assert!(!rule.verbs.is_empty());
            }
        }
        for b in cluster_role_bindings() {
            assert!(names.contains(&b.role_ref.name.as_str()), "{} binds a missing role", b.role_ref.name);
            assert_eq!(b.metadata.name.as_deref(), Some(b.role_ref.name.as_str()));
            assert_eq!(
                b.metadata.labels.as_ref().and_then(|l| l.get(BOOTSTRAP_LABEL.0)).map(String::as_str),
                Some("rbac-defaults")
            );
            assert!(b.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(AUTOUPDATE_ANNOTATION)));
        }
        // upstream's labels chain the user-facing roles: view -> edit -> admin
        let label_of = |name: &str| -> Vec<String> {
            let r = roles.iter().find(|r| r.metadata.name.as_deref() == Some(name)).expect(name);
            r.metadata.labels.clone().unwrap_or_default().into_keys().filter(|k| k.starts_with("rbac.")).collect()
        };
        assert_eq!(label_of("view"), [AGGREGATE_TO_EDIT]);
        assert_eq!(label_of("edit"), [AGGREGATE_TO_ADMIN]);
        assert!(label_of("admin").is_empty());
    }

    #[test]
    fn view_edit_admin_in_one_namespace() {
        let rbac = defaults_with(vec![
            binding("team", "jane", role_ref("ClusterRole", "view"), vec![subject("User", "jane", "")]),
            binding("team", "ed", role_ref("ClusterRole", "edit"), vec![subject("User", "ed", "")]),
            binding("team", "ann", role_ref("ClusterRole", "admin"), vec![subject("User", "ann", "")]),
        ]);
        let auth = |name: &str| UserInfo::new(name, &[ALL_AUTHENTICATED]);
        let (jane, ed, ann) = (auth("jane"), auth("ed"), auth("ann"));
        let can = |u: &UserInfo, verb: &str, group: &str, resource: &str, ns: &str| {
            authorize(&rbac, &request(u, verb, group, resource, ns, "x")).allowed()
        };
        assert!(can(&jane, "get", "", "pods", "team"));
        assert!(can(&jane, "list", "", "pods/log", "team"));
        assert!(can(&jane, "watch", "apps", "deployments", "team"));
        assert!(can(&jane, "get", "discovery.k8s.io", "endpointslices", "team"));
        assert!(!can(&jane, "delete", "", "pods", "team"));
        assert!(!can(&jane, "create", "", "pods/exec", "team"));
        assert!(!can(&jane, "get", "", "secrets", "team"));
        assert!(!can(&jane, "get", "", "pods", "default"));

        assert!(can(&ed, "create", "", "pods/exec", "team"));
        assert!(can(&ed, "get", "", "secrets", "team"));
        assert!(can(&ed, "patch", "apps", "deployments/scale", "team"));
        assert!(can(&ed, "create", "", "serviceaccounts/token", "team"));
        assert!(can(&ed, "get", "", "pods", "team"), "edit includes view");
        assert!(!can(&ed, "create", RBAC_GROUP, "rolebindings", "team"));
        assert!(!can(&ed, "update", "", "resourcequotas", "team"));

        assert!(can(&ann, "create", RBAC_GROUP, "rolebindings", "team"));
        assert!(can(&ann, "delete", "batch", "jobs", "team"), "admin includes edit");
        assert!(!can(&ann, "delete", "", "namespaces", "team"));
        assert!(!can(&ann, "list", "", "nodes", ""));

        // an admin may grant edit in their namespace (they hold it), not cluster-admin
        let edit_rules = rbac.role_ref_rules(&role_ref("ClusterRole", "edit"), "team").expect("edit").to_vec();
        assert_eq!(confirm_no_escalation(&rbac, &ann, "team", &edit_rules), Ok(()));
        let admin_all =
            rbac.role_ref_rules(&role_ref("ClusterRole", "cluster-admin"), "").expect("cluster-admin").to_vec();
        assert!(confirm_no_escalation(&rbac, &ann, "team", &admin_all).is_err());
        assert!(confirm_no_escalation(&rbac, &ed, "team", &edit_rules).is_ok());
        let admin_rules = rbac.role_ref_rules(&role_ref("ClusterRole", "admin"), "team").expect("admin").to_vec();
        assert!(confirm_no_escalation(&rbac, &ed, "team", &admin_rules).is_err());
    }

    #[test]
    fn discovery_and_self_reviews() {
        let rbac = defaults_with(vec![]);
        let path = |u: &UserInfo, p: &str| {
            let attrs = RequestInfo { verb: "get".into(), path: p.into(), ..Default::default() }.with_user(u.clone());
            authorize(&rbac, &attrs).allowed()
        };
        let jane = UserInfo::new("jane", &[ALL_AUTHENTICATED]);
        for p in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps/v1",
            "/openapi/v2",
            "/openapi/v3/apis/apps/v1",
            "/version",
            "/healthz",
            "/livez",
        ] {
            assert!(path(&jane, p), "{p}");
        }
        assert!(!path(&jane, "/metrics"));
        let anon = UserInfo::anonymous();
        for (p, want) in
            [("/healthz", true), ("/version", true), ("/readyz", true), ("/api", false), ("/openapi/v2", false)]
        {
            assert_eq!(path(&anon, p), want, "{p}");
        }
        let monitor = UserInfo::new("prom", &[MONITORING_GROUP]);
        assert!(path(&monitor, "/metrics") && path(&monitor, "/readyz/etcd"));
        assert!(
            authorize(&rbac, &request(&jane, "create", AUTHORIZATION, "selfsubjectaccessreviews", "", "")).allowed()
        );
        assert!(authorize(&rbac, &request(&jane, "create", AUTHENTICATION, "selfsubjectreviews", "", "")).allowed());
        assert!(
            !authorize(&rbac, &request(&anon, "create", AUTHORIZATION, "selfsubjectrulesreviews", "", "")).allowed()
        );
        let sa = UserInfo::service_account("default", "app", "");
        assert!(path(&sa, "/openid/v1/jwks"));
        assert!(!authorize(&rbac, &request(&sa, "list", "", "pods", "default", "")).allowed());
    }

    #[test]
    fn components() {
        let rbac = defaults_with(vec![]);
        let scheduler = UserInfo::new(KUBE_SCHEDULER, &[ALL_AUTHENTICATED]);
        let lease = |u: &UserInfo, verb: &str, name: &str| {
            authorize(&rbac, &request(u, verb, COORDINATION, "leases", "kube-system", name)).allowed()
        };
        assert!(authorize(&rbac, &request(&scheduler, "create", "", "pods/binding", "default", "web")).allowed());
        assert!(lease(&scheduler, "update", "kube-scheduler"));
        assert!(!lease(&scheduler, "update", "kube-controller-manager"));
        assert!(!authorize(&rbac, &request(&scheduler, "create", "", "pods", "default", "")).allowed());
        let kcm = UserInfo::new(KUBE_CONTROLLER_MANAGER, &[ALL_AUTHENTICATED]);
        assert!(lease(&kcm, "get", "kube-controller-manager"));
        assert!(authorize(&rbac, &request(&kcm, "watch", "apps", "deployments", "", "")).allowed());
        // nodes hold nothing through RBAC until a node authorizer or binding grants it
        let node = UserInfo::new(node_username("n1"), &["system:nodes", ALL_AUTHENTICATED]);
        assert!(!authorize(&rbac, &request(&node, "get", "", "pods", "default", "web")).allowed());
        let masters = UserInfo::new("admin", &[SYSTEM_PRIVILEGED_GROUP]);
        assert_eq!(
            rbac.authorize(&request(&masters, "delete", "", "nodes", "", "n1")).reason,
            r#"RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters""#
        );
    }
}
