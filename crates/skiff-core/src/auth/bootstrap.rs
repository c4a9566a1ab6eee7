//! The default ClusterRoles and ClusterRoleBindings kube-apiserver 1.32 reconciles at start
//! (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`, default feature gates): the
//! user-facing `admin`/`edit`/`view` (aggregated), discovery and self-review roles, the
//! components' roles, and ([`controller_roles`], `controller_policy.go`) the
//! `system:controller:<account>` role of each controller skiff runs, bound to the ServiceAccount
//! `kube-system/<account>` it acts as (kube-controller-manager's
//! `--use-service-account-credentials`; its shared watch caches read as
//! `system:kube-controller-manager`). Rules are sorted as upstream's rule builder sorts them.
//! Where a skiff controller writes differently from upstream's (a merge patch where upstream
//! updates), its role has one more rule, marked `skiff:`; `ingress-status-controller` is skiff's
//! own. `system:skiff-node-network` is what the node agent's network plane reads;
//! `system:skiff-node-storage` is what its local-path provisioner reads and writes.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::auth::RBAC_GROUP;
use crate::auth::user::{
    ALL_AUTHENTICATED, ALL_SERVICE_ACCOUNTS_GROUP, ALL_UNAUTHENTICATED, KUBE_CONTROLLER_MANAGER, KUBE_PROXY,
    KUBE_SCHEDULER, MONITORING_GROUP, SKIFF_NODE_NETWORK, SKIFF_NODE_STORAGE, SYSTEM_PRIVILEGED_GROUP,
};

/// Marks the defaults, so the API server knows which objects it owns.
pub const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");
/// The API server puts back missing rules and subjects at start unless this is `"false"`.
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
pub const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
pub const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
pub const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";
/// A controller's role is this and its account's name (upstream's `saRolePrefix`).
pub const CONTROLLER_ROLE_PREFIX: &str = "system:controller:";
/// Where the controllers' ServiceAccounts are.
pub const CONTROLLER_NAMESPACE: &str = "kube-system";

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
const CUSTOM_METRICS: &str = "custom.metrics.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const EXTENSIONS: &str = "extensions";
const EXTERNAL_METRICS: &str = "external.metrics.k8s.io";
const METRICS: &str = "metrics.k8s.io";
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
pub fn node_rules() -> Vec<PolicyRule> {
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

/// The controller manager's own identity: enough to start, lead, watch everything (the shared
/// caches) and make the service accounts its controllers then act as (their
/// `system:controller:*` roles: [`controller_roles`]).
fn controller_manager_rules() -> Vec<PolicyRule> {
    vec![
        events(),
        rule(&["create"], &[COORDINATION], &["leases"]),
        named(&["get", "update"], &[COORDINATION], &["leases"], &["kube-controller-manager"]),
        // skiff: its leader election's Lease is `kube-system/skiff-controller-manager`
        named(&["get", "update"], &[COORDINATION], &["leases"], &["skiff-controller-manager"]),
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

/// A controller's role, `system:controller:<account>`.
fn controller(account: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    role(&format!("{CONTROLLER_ROLE_PREFIX}{account}"), None, rules)
}

/// Upstream's `system:controller:*` roles (release-1.32 `controller_policy.go`; the rules as
/// `testdata/controller-roles.yaml` has them) of the controllers skiff runs, and skiff's
/// `ingress-status-controller`. A `skiff:` rule is one skiff's controller needs beyond
/// upstream's: each is a `patch` where upstream's controller updates (skiff writes statuses and
/// annotations as merge patches), no more than the `update` the role already holds.
pub fn controller_roles() -> Vec<ClusterRole> {
    let pods = &["pods"];
    vec![
        controller(
            "certificate-controller",
            vec![
                rule(&["delete", "get", "list", "watch"], &[CERTIFICATES], &["certificatesigningrequests"]),
                rule(
                    &["update"],
                    &[CERTIFICATES],
                    &["certificatesigningrequests/approval", "certificatesigningrequests/status"],
                ),
                named(&["approve"], &[CERTIFICATES], &["signers"], &["kubernetes.io/kube-apiserver-client-kubelet"]),
                named(
                    &["sign"],
                    &[CERTIFICATES],
                    &["signers"],
                    &[
                        "kubernetes.io/legacy-unknown",
                        "kubernetes.io/kube-apiserver-client",
                        "kubernetes.io/kube-apiserver-client-kubelet",
                        "kubernetes.io/kubelet-serving",
                    ],
                ),
                rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
                events(),
            ],
        ),
        // full permissions on ClusterRoles, so it may write any rules into them
        controller(
            "clusterrole-aggregation-controller",
            vec![rule(&["escalate", "get", "list", "watch", "update", "patch"], &[RBAC_GROUP], &["clusterroles"])],
        ),
        controller(
            "cronjob-controller",
            vec![
                rule(&["get", "list", "watch", "update"], &[BATCH], &["cronjobs"]),
                rule(&["get", "list", "watch", "create", "update", "delete", "patch"], &[BATCH], &["jobs"]),
                rule(&["update"], &[BATCH], &["cronjobs/status"]),
                rule(&["update"], &[BATCH], &["cronjobs/finalizers"]),
                rule(&["list", "watch", "delete"], &[CORE], pods),
                events(),
                // skiff: cronjob.rs merge-patches the status
                rule(&["patch"], &[BATCH], &["cronjobs/status"]),
            ],
        ),
        controller(
            "daemon-set-controller",
            vec![
                rule(READ, &[EXTENSIONS, APPS], &["daemonsets"]),
                rule(&["update"], &[EXTENSIONS, APPS], &["daemonsets/status"]),
                rule(&["update"], &[EXTENSIONS, APPS], &["daemonsets/finalizers"]),
                rule(&["list", "watch"], &[CORE], &["nodes"]),
                rule(&["list", "watch", "create", "delete", "patch"], &[CORE], pods),
                rule(&["create"], &[CORE], &["pods/binding"]),
                rule(
                    &["get", "list", "watch", "create", "delete", "update", "patch"],
                    &[APPS],
                    &["controllerrevisions"],
                ),
                events(),
                // skiff: daemonset.rs merge-patches the status
                rule(&["patch"], &[APPS], &["daemonsets/status"]),
            ],
        ),
        controller(
            "deployment-controller",
            vec![
                rule(&["get", "list", "watch", "update"], &[EXTENSIONS, APPS], &["deployments"]),
                rule(&["update"], &[EXTENSIONS, APPS], &["deployments/status"]),
                rule(&["update"], &[EXTENSIONS, APPS], &["deployments/finalizers"]),
                rule(
                    &["get", "list", "watch", "create", "update", "patch", "delete"],
                    &[APPS, EXTENSIONS],
                    &["replicasets"],
                ),
                // upstream: "update" until kubernetes/kubernetes#36897 is resolved
                rule(&["get", "list", "watch", "update"], &[CORE], pods),
                events(),
                // skiff: deployment.rs merge-patches the revision annotation and the status
                rule(&["patch"], &[APPS], &["deployments", "deployments/status"]),
            ],
        ),
        controller(
            "disruption-controller",
            vec![
                rule(READ, &[EXTENSIONS, APPS], &["deployments"]),
                rule(READ, &[APPS, EXTENSIONS], &["replicasets"]),
                rule(READ, &[CORE], &["replicationcontrollers"]),
                rule(READ, &[POLICY], &["poddisruptionbudgets"]),
                rule(READ, &[APPS], &["statefulsets"]),
                rule(&["update"], &[POLICY], &["poddisruptionbudgets/status"]),
                rule(&["patch", "update"], &[CORE], &["pods/status"]),
                rule(&["get"], &["*"], &["*/scale"]),
                events(),
                // skiff: disruption.rs merge-patches the status
                rule(&["patch"], &[POLICY], &["poddisruptionbudgets/status"]),
            ],
        ),
        controller(
            "endpoint-controller",
            vec![
                rule(READ, &[CORE], &["services", "pods"]),
                rule(&["get", "list", "watch", "create", "update", "delete"], &[CORE], &["endpoints"]),
                rule(&["create"], &[CORE], &["endpoints/restricted"]),
                events(),
            ],
        ),
        controller(
            "endpointslice-controller",
            vec![
                rule(READ, &[CORE], &["services", "pods", "nodes"]),
                // to own its slices with blockOwnerDeletion (OwnerReferencesPermissionEnforcement)
                rule(&["update"], &[CORE], &["services/finalizers"]),
                rule(&["get", "list", "watch", "create", "update", "delete"], &[DISCOVERY], &["endpointslices"]),
                events(),
            ],
        ),
        // skiff's volume::resize: expands local-path volumes (no glusterfs, so not its rules)
        controller(
            "expand-controller",
            vec![
                rule(&["get", "list", "watch", "update", "patch"], &[CORE], &["persistentvolumes"]),
                rule(&["update", "patch"], &[CORE], &["persistentvolumeclaims/status"]),
                rule(&["get", "list", "watch"], &[CORE], &["persistentvolumeclaims"]),
                rule(&["get", "list", "watch"], &[STORAGE], &["storageclasses"]),
                events(),
            ],
        ),
        // list and watch everything, get owners, patch owner references and finalizers, delete
        controller(
            "generic-garbage-collector",
            vec![rule(&["get", "list", "watch", "patch", "update", "delete"], &["*"], &["*"]), events()],
        ),
        controller(
            "horizontal-pod-autoscaler",
            vec![
                rule(READ, &[AUTOSCALING], &["horizontalpodautoscalers"]),
                rule(&["update"], &[AUTOSCALING], &["horizontalpodautoscalers/status"]),
                rule(&["get", "update"], &["*"], &["*/scale"]),
                rule(&["list", "watch"], &[CORE], pods),
                // resource, custom and external metrics
                rule(&["list", "watch"], &[METRICS], pods),
                rule(READ, &[CUSTOM_METRICS], &["*"]),
                rule(READ, &[EXTERNAL_METRICS], &["*"]),
                events(),
                // skiff: hpa.rs merge-patches the status, and the target's `scale` (the kinds
                // it scales: Deployments and ReplicaSets)
                rule(&["patch"], &[AUTOSCALING], &["horizontalpodautoscalers/status"]),
                rule(&["patch"], &[APPS], &["deployments/scale", "replicasets/scale"]),
            ],
        ),
        // skiff's own (upstream has no such controller; an ingress controller writes this
        // status): the Ingresses of skiff's class get the nodes' addresses
        controller("ingress-status-controller", vec![rule(&["patch"], &[NETWORKING], &["ingresses/status"])]),
        controller(
            "job-controller",
            vec![
                rule(&["get", "list", "watch", "update", "patch"], &[BATCH], &["jobs"]),
                rule(&["update"], &[BATCH], &["jobs/status"]),
                rule(&["update"], &[BATCH], &["jobs/finalizers"]),
                rule(&["list", "watch", "create", "delete", "patch"], &[CORE], pods),
                events(),
                // skiff: job.rs merge-patches the status
                rule(&["patch"], &[BATCH], &["jobs/status"]),
            ],
        ),
        // binds claims to volumes, provisions through the classes' provisioners, reclaims
        controller(
            "persistent-volume-binder",
            vec![
                rule(&["get", "list", "watch", "update", "create", "delete"], &[CORE], &["persistentvolumes"]),
                rule(&["update"], &[CORE], &["persistentvolumes/status"]),
                rule(&["get", "list", "watch", "update"], &[CORE], &["persistentvolumeclaims"]),
                rule(&["update"], &[CORE], &["persistentvolumeclaims/status"]),
                rule(&["list", "watch", "get", "create", "delete"], &[CORE], pods),
                // upstream: for glusterfs
                rule(READ, &[STORAGE], &["storageclasses"]),
                rule(&["get", "create", "update", "delete"], &[CORE], &["endpoints"]),
                rule(&["get", "create", "delete"], &[CORE], &["services"]),
                rule(&["get"], &[CORE], &["secrets"]),
                // upstream: for openstack
                rule(&["get", "list"], &[CORE], &["nodes"]),
                // the recycler watches its pod's events
                rule(&["watch"], &[CORE], &["events"]),
                events(),
            ],
        ),
        // removes `kubernetes.io/pv-protection` from a volume no claim is bound to
        controller(
            "pv-protection-controller",
            vec![rule(&["get", "list", "watch", "update"], &[CORE], &["persistentvolumes"]), events()],
        ),
        // removes `kubernetes.io/pvc-protection` from a claim no pod uses
        controller(
            "pvc-protection-controller",
            vec![
                rule(&["get", "list", "watch", "update"], &[CORE], &["persistentvolumeclaims"]),
                rule(&["list", "watch", "get"], &[CORE], pods),
                events(),
            ],
        ),
        controller(
            "replicaset-controller",
            vec![
                rule(&["get", "list", "watch", "update"], &[APPS, EXTENSIONS], &["replicasets"]),
                rule(&["update"], &[APPS, EXTENSIONS], &["replicasets/status"]),
                rule(&["update"], &[APPS, EXTENSIONS], &["replicasets/finalizers"]),
                rule(&["list", "watch", "patch", "create", "delete"], &[CORE], pods),
                events(),
                // skiff: replicaset.rs merge-patches the status
                rule(&["patch"], &[APPS], &["replicasets/status"]),
            ],
        ),
        controller(
            "replication-controller",
            vec![
                // upstream: 1.0 controllers needed get, update, so without these old controllers
                // break on new servers
                rule(&["get", "list", "watch", "update"], &[CORE], &["replicationcontrollers"]),
                rule(&["update"], &[CORE], &["replicationcontrollers/status"]),
                rule(&["update"], &[CORE], &["replicationcontrollers/finalizers"]),
                rule(&["list", "watch", "patch", "create", "delete"], &[CORE], pods),
                events(),
                // skiff: replicaset.rs (which keeps ReplicationControllers too) merge-patches the status
                rule(&["patch"], &[CORE], &["replicationcontrollers/status"]),
            ],
        ),
        // every namespace's kube-root-ca.crt
        controller("root-ca-cert-publisher", vec![rule(&["create", "update"], &[CORE], &["configmaps"]), events()]),
        // every namespace's default ServiceAccount
        controller("service-account-controller", vec![rule(&["create"], &[CORE], &["serviceaccounts"]), events()]),
        // LoadBalancer Services' status
        controller(
            "service-controller",
            vec![
                rule(READ, &[CORE], &["services"]),
                rule(&["patch", "update"], &[CORE], &["services/status"]),
                rule(&["list", "watch"], &[CORE], &["nodes"]),
                events(),
            ],
        ),
        controller(
            "statefulset-controller",
            vec![
                rule(&["list", "watch"], &[CORE], pods),
                rule(READ, &[APPS], &["statefulsets"]),
                rule(&["update"], &[APPS], &["statefulsets/status"]),
                rule(&["update"], &[APPS], &["statefulsets/finalizers"]),
                rule(&["get", "create", "delete", "update", "patch"], &[CORE], pods),
                rule(
                    &["get", "create", "delete", "update", "patch", "list", "watch"],
                    &[APPS],
                    &["controllerrevisions"],
                ),
                rule(&["get", "create"], &[CORE], &["persistentvolumeclaims"]),
                events(),
                // StatefulSetAutoDeletePVC (on in 1.32): the claims' owner references, and
                // claims deleted by the retention policy
                rule(&["update", "delete"], &[CORE], &["persistentvolumeclaims"]),
                // skiff: statefulset.rs merge-patches the status and the claims' owner references
                rule(&["patch"], &[APPS], &["statefulsets/status"]),
                rule(&["patch"], &[CORE], &["persistentvolumeclaims"]),
            ],
        ),
        // a finished Job's ttlSecondsAfterFinished (skiff's job.rs carries it out)
        controller(
            "ttl-after-finished-controller",
            vec![rule(&["get", "list", "watch", "delete"], &[BATCH], &["jobs"]), events()],
        ),
    ]
}

/// Upstream's ClusterRoleBinding of each [`controller_roles`] role to its ServiceAccount
/// (`kube-system/<account>`), named as the role.
pub fn controller_role_bindings() -> Vec<ClusterRoleBinding> {
    controller_roles()
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .filter_map(|name| {
            let account = name.strip_prefix(CONTROLLER_ROLE_PREFIX)?.to_string();
            Some(binding(&name, vec![service_account(CONTROLLER_NAMESPACE, &account)]))
        })
        .collect()
}

/// What the node agent's network plane reads, as `system:skiff-node-network`: skiff's
/// counterpart of kube-proxy's `system:node-proxier`, with what k3s's `system:k3s-controller`
/// holds for its NetworkPolicy controller and an ingress controller's role holds. Reads only,
/// through watch caches (list and watch); it writes nothing (an Ingress's status is the
/// controller manager's `ingress-status-controller`).
fn node_network_rules() -> Vec<PolicyRule> {
    vec![
        // the service view (`service_view.rs`), which the service proxy, the cluster DNS and
        // the ingress route by
        rule(&["list", "watch"], &[CORE], &["services"]),
        rule(&["list", "watch"], &[DISCOVERY], &["endpointslices"]),
        // NetworkPolicies (`net/policy`): the policies, the pods and namespaces they select
        rule(&["list", "watch"], &[NETWORKING], &["networkpolicies"]),
        rule(&["list", "watch"], &[CORE], &["pods", "namespaces"]),
        // the ingress (`ingress/`): skiff's class's Ingresses and their TLS Secrets (it watches
        // `type=kubernetes.io/tls` only, which RBAC cannot narrow to)
        rule(&["list", "watch"], &[NETWORKING], &["ingresses", "ingressclasses"]),
        rule(&["list", "watch"], &[CORE], &["secrets"]),
    ]
}

/// What the node agent's local-path provisioner does, as `system:skiff-node-storage` (k3s's
/// `local-path-provisioner-role`): it watches claims of its classes, makes and deletes their
/// volumes (a directory on a node, a PersistentVolume pinned to that node) and records events.
fn node_storage_rules() -> Vec<PolicyRule> {
    vec![
        rule(&["get", "list", "watch", "create", "update", "patch", "delete"], &[CORE], &["persistentvolumes"]),
        rule(&["get", "update", "patch"], &[CORE], &["persistentvolumes/status"]),
        rule(&["get", "list", "watch", "update", "patch"], &[CORE], &["persistentvolumeclaims"]),
        rule(READ, &[STORAGE], &["storageclasses"]),
        // which node a WaitForFirstConsumer claim's pod went to, and its labels for affinity
        rule(READ, &[CORE], &["nodes"]),
        events(),
    ]
}

fn approver(name: &str, signer: &str) -> ClusterRole {
    role(name, None, vec![named(&["approve"], &[CERTIFICATES], &["signers"], &[signer])])
}

/// Upstream's default ClusterRoles (aggregated ones with empty rules: run
/// [`crate::auth::aggregate::aggregate`] over them with the stored roles), the controllers'
/// ([`controller_roles`]), `system:skiff-node-network` and `system:skiff-node-storage`.
pub fn cluster_roles() -> Vec<ClusterRole> {
    let health = ["/livez", "/readyz", "/healthz", "/version", "/version/"];
    let mut roles = vec![
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
        // for an external provisioner to bind as it chooses
        role(
            "system:persistent-volume-provisioner",
            None,
            vec![
                rule(&["get", "list", "watch", "create", "delete"], &[CORE], &["persistentvolumes"]),
                // update: to lock claims by annotation
                rule(&["get", "list", "watch", "update"], &[CORE], &["persistentvolumeclaims"]),
                rule(READ, &[STORAGE], &["storageclasses"]),
                // provisioning's success and failure events
                rule(&["watch"], &[CORE], &["events"]),
                events(),
            ],
        ),
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
        role(SKIFF_NODE_NETWORK, None, node_network_rules()),
        role(SKIFF_NODE_STORAGE, None, node_storage_rules()),
    ];
    roles.extend(controller_roles());
    roles
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

/// A bootstrap ClusterRoleBinding named as the ClusterRole it binds `subjects` to.
fn binding(name: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: metadata(name, None),
        role_ref: RoleRef { api_group: Some(RBAC_GROUP.into()), kind: "ClusterRole".into(), name: name.into() },
        subjects: (!subjects.is_empty()).then_some(subjects),
    }
}

/// Upstream's default ClusterRoleBindings, each named after its ClusterRole, the controllers'
/// ([`controller_role_bindings`]), `system:skiff-node-network`'s and `system:skiff-node-storage`'s.
pub fn cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    let mut bindings: Vec<ClusterRoleBinding> = [
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
        (SKIFF_NODE_NETWORK, vec![user(SKIFF_NODE_NETWORK)]),
        (SKIFF_NODE_STORAGE, vec![user(SKIFF_NODE_STORAGE)]),
    ]
    .into_iter()
    .map(|(name, subjects)| binding(name, subjects))
    .collect();
    bindings.extend(controller_role_bindings());
    bindings
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
        assert!(can(&jane, "list", "", "replicationcontrollers", "team"));
        assert!(can(&jane, "get", "", "replicationcontrollers/scale", "team"));
        assert!(!can(&jane, "patch", "", "replicationcontrollers/scale", "team"));
        assert!(!can(&jane, "delete", "", "pods", "team"));
        assert!(!can(&jane, "create", "", "pods/exec", "team"));
        assert!(!can(&jane, "get", "", "secrets", "team"));
        assert!(!can(&jane, "get", "", "pods", "default"));

        assert!(can(&ed, "create", "", "pods/exec", "team"));
        assert!(can(&ed, "get", "", "secrets", "team"));
        assert!(can(&ed, "patch", "apps", "deployments/scale", "team"));
        assert!(can(&ed, "delete", "", "replicationcontrollers", "team"));
        assert!(can(&ed, "patch", "", "replicationcontrollers/scale", "team"));
        assert!(!can(&ed, "update", "", "replicationcontrollers/status", "team"));
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
        // skiff's leader election (leader.rs): get, create, then update its own Lease
        assert!(lease(&kcm, "get", "skiff-controller-manager"));
        assert!(lease(&kcm, "create", ""));
        assert!(lease(&kcm, "update", "skiff-controller-manager"));
        assert!(!lease(&kcm, "update", "kube-scheduler"));
        assert!(authorize(&rbac, &request(&kcm, "watch", "apps", "deployments", "", "")).allowed());
        assert!(authorize(&rbac, &request(&kcm, "list", "", "secrets", "", "")).allowed());
        // the caches read; the controllers write, each as its account
        assert!(!authorize(&rbac, &request(&kcm, "create", "", "pods", "default", "")).allowed());
        assert!(!authorize(&rbac, &request(&kcm, "patch", "apps", "replicasets/status", "default", "web")).allowed());
        // nodes hold nothing through RBAC until a node authorizer or binding grants it
        let node = UserInfo::new(node_username("n1"), &["system:nodes", ALL_AUTHENTICATED]);
        assert!(!authorize(&rbac, &request(&node, "get", "", "pods", "default", "web")).allowed());
        let masters = UserInfo::new("admin", &[SYSTEM_PRIVILEGED_GROUP]);
        assert_eq!(
            rbac.authorize(&request(&masters, "delete", "", "nodes", "", "n1")).reason,
            r#"RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters""#
        );
    }

    /// The user a controller acts as: its ServiceAccount in kube-system.
    fn controller_user(account: &str) -> UserInfo {
        UserInfo::service_account(CONTROLLER_NAMESPACE, account, "")
    }

    #[test]
    fn controllers_do_their_jobs_only() {
        let rbac = defaults_with(vec![]);
        // (account, verb, group, resource, namespace, name, allowed): what each of skiff's
        // controllers does (the call in its code), and something outside its job
        let cases = [
            ("replicaset-controller", "create", "", "pods", "shop", "", true),
            ("replicaset-controller", "patch", "", "pods", "shop", "web-1", true),
            ("replicaset-controller", "delete", "", "pods", "shop", "web-1", true),
            ("replicaset-controller", "patch", "apps", "replicasets/status", "shop", "web", true),
            ("replicaset-controller", "create", "", "events", "shop", "", true),
            ("replicaset-controller", "patch", "", "events", "shop", "web.1", true),
            ("replicaset-controller", "delete", "apps", "deployments", "shop", "web", false),
            ("replicaset-controller", "patch", "apps", "replicasets", "shop", "web", false),
            ("replicaset-controller", "get", "", "secrets", "shop", "token", false),
            ("replicaset-controller", "patch", "", "replicationcontrollers/status", "shop", "web", false),
            ("replication-controller", "create", "", "pods", "shop", "", true),
            ("replication-controller", "patch", "", "pods", "shop", "web-1", true),
            ("replication-controller", "delete", "", "pods", "shop", "web-1", true),
            ("replication-controller", "patch", "", "replicationcontrollers/status", "shop", "web", true),
            ("replication-controller", "update", "", "replicationcontrollers/finalizers", "shop", "web", true),
            ("replication-controller", "create", "", "events", "shop", "", true),
            ("replication-controller", "patch", "", "replicationcontrollers", "shop", "web", false),
            ("replication-controller", "patch", "apps", "replicasets/status", "shop", "web", false),
            ("replication-controller", "get", "", "secrets", "shop", "token", false),
            ("deployment-controller", "create", "apps", "replicasets", "shop", "", true),
            ("deployment-controller", "patch", "apps", "replicasets", "shop", "web-5d4f", true),
            ("deployment-controller", "delete", "apps", "replicasets", "shop", "web-5d4f", true),
            ("deployment-controller", "patch", "apps", "deployments", "shop", "web", true),
            ("deployment-controller", "patch", "apps", "deployments/status", "shop", "web", true),
            ("deployment-controller", "create", "", "pods", "shop", "", false),
            ("deployment-controller", "delete", "apps", "deployments", "shop", "web", false),
            ("job-controller", "create", "", "pods", "shop", "", true),
            ("job-controller", "delete", "", "pods", "shop", "pi-x", true),
            ("job-controller", "patch", "batch", "jobs/status", "shop", "pi", true),
            ("job-controller", "delete", "batch", "jobs", "shop", "pi", false),
            ("job-controller", "create", "batch", "cronjobs", "shop", "", false),
            ("ttl-after-finished-controller", "delete", "batch", "jobs", "shop", "pi", true),
            ("ttl-after-finished-controller", "delete", "", "pods", "shop", "pi-x", false),
            ("cronjob-controller", "create", "batch", "jobs", "shop", "", true),
            ("cronjob-controller", "delete", "batch", "jobs", "shop", "hello-1", true),
            ("cronjob-controller", "patch", "batch", "cronjobs/status", "shop", "hello", true),
            ("cronjob-controller", "create", "", "pods", "shop", "", false),
            ("daemon-set-controller", "create", "", "pods", "shop", "", true),
            ("daemon-set-controller", "delete", "", "pods", "shop", "agent-x", true),
            ("daemon-set-controller", "patch", "apps", "daemonsets/status", "shop", "agent", true),
            ("daemon-set-controller", "patch", "", "nodes", "", "n1", false),
            ("disruption-controller", "patch", "policy", "poddisruptionbudgets/status", "shop", "web", true),
            ("disruption-controller", "get", "apps", "deployments/scale", "shop", "web", true),
            ("disruption-controller", "delete", "", "pods", "shop", "web-1", false),
            ("horizontal-pod-autoscaler", "get", "apps", "deployments/scale", "shop", "web", true),
            ("horizontal-pod-autoscaler", "patch", "apps", "deployments/scale", "shop", "web", true),
            ("horizontal-pod-autoscaler", "patch", "apps", "replicasets/scale", "shop", "web", true),
            ("horizontal-pod-autoscaler", "list", "", "pods", "shop", "", true),
            ("horizontal-pod-autoscaler", "list", "metrics.k8s.io", "pods", "shop", "", true),
            ("horizontal-pod-autoscaler", "patch", AUTOSCALING, "horizontalpodautoscalers/status", "shop", "web", true),
            ("horizontal-pod-autoscaler", "patch", "apps", "deployments", "shop", "web", false),
            ("horizontal-pod-autoscaler", "patch", "apps", "statefulsets/scale", "shop", "db", false),
            ("endpoint-controller", "create", "", "endpoints", "shop", "", true),
            ("endpoint-controller", "update", "", "endpoints", "shop", "web", true),
            ("endpoint-controller", "delete", "", "endpoints", "shop", "web", true),
            ("endpoint-controller", "create", DISCOVERY, "endpointslices", "shop", "", false),
            ("endpointslice-controller", "create", DISCOVERY, "endpointslices", "shop", "", true),
            ("endpointslice-controller", "update", DISCOVERY, "endpointslices", "shop", "web-x", true),
            ("endpointslice-controller", "delete", DISCOVERY, "endpointslices", "shop", "web-x", true),
            ("endpointslice-controller", "update", "", "endpoints", "shop", "web", false),
            ("service-controller", "patch", "", "services/status", "shop", "web", true),
            ("service-controller", "patch", "", "services", "shop", "web", false),
            ("ingress-status-controller", "patch", NETWORKING, "ingresses/status", "shop", "web", true),
            ("ingress-status-controller", "patch", NETWORKING, "ingresses", "shop", "web", false),
            ("ingress-status-controller", "patch", "", "services/status", "shop", "web", false),
            ("clusterrole-aggregation-controller", "patch", RBAC_GROUP, "clusterroles", "", "admin", true),
            ("clusterrole-aggregation-controller", "escalate", RBAC_GROUP, "clusterroles", "", "admin", true),
            ("clusterrole-aggregation-controller", "create", RBAC_GROUP, "clusterrolebindings", "", "", false),
            ("service-account-controller", "create", "", "serviceaccounts", "shop", "", true),
            ("service-account-controller", "create", "", "configmaps", "shop", "", false),
            ("root-ca-cert-publisher", "create", "", "configmaps", "shop", "", true),
            ("root-ca-cert-publisher", "update", "", "configmaps", "shop", "kube-root-ca.crt", true),
            ("root-ca-cert-publisher", "create", "", "serviceaccounts", "shop", "", false),
            ("root-ca-cert-publisher", "get", "", "secrets", "shop", "token", false),
            ("certificate-controller", "update", CERTIFICATES, "certificatesigningrequests/status", "", "r", true),
            ("certificate-controller", "create", CERTIFICATES, "certificatesigningrequests", "", "", false),
            ("generic-garbage-collector", "get", "apps", "replicasets", "shop", "web-5d4f", true),
            ("generic-garbage-collector", "patch", "", "pods", "shop", "web-1", true),
            ("generic-garbage-collector", "delete", "", "secrets", "shop", "token", true),
            ("generic-garbage-collector", "watch", "", "configmaps", "", "", true),
            ("generic-garbage-collector", "create", "", "pods", "shop", "", false),
            ("persistent-volume-binder", "create", "", "persistentvolumes", "", "", true),
            ("persistent-volume-binder", "update", "", "persistentvolumeclaims/status", "shop", "data", true),
            ("persistent-volume-binder", "update", "", "persistentvolumes/status", "", "pvc-1", true),
            ("persistent-volume-binder", "list", STORAGE, "storageclasses", "", "", true),
            ("persistent-volume-binder", "delete", "", "persistentvolumeclaims", "shop", "data", false),
            ("pv-protection-controller", "update", "", "persistentvolumes", "", "pvc-1", true),
            ("expand-controller", "update", "", "persistentvolumes", "", "pvc-1", true),
            ("expand-controller", "update", "", "persistentvolumeclaims/status", "shop", "data", true),
            ("expand-controller", "update", "", "persistentvolumeclaims", "shop", "data", false),
            ("pv-protection-controller", "update", "", "persistentvolumeclaims", "shop", "data", false),
            ("pvc-protection-controller", "update", "", "persistentvolumeclaims", "shop", "data", true),
            ("pvc-protection-controller", "list", "", "pods", "shop", "", true),
            ("pvc-protection-controller", "delete", "", "persistentvolumeclaims", "shop", "data", false),
            ("statefulset-controller", "create", "", "pods", "shop", "", true),
            ("statefulset-controller", "patch", "", "pods", "shop", "db-0", true),
            ("statefulset-controller", "update", "apps", "statefulsets/status", "shop", "db", true),
            ("statefulset-controller", "patch", "apps", "statefulsets/status", "shop", "db", true),
            ("statefulset-controller", "create", "apps", "controllerrevisions", "shop", "", true),
            ("statefulset-controller", "patch", "apps", "controllerrevisions", "shop", "db-5d4f", true),
            ("statefulset-controller", "create", "", "persistentvolumeclaims", "shop", "", true),
            ("statefulset-controller", "update", "", "persistentvolumeclaims", "shop", "data-db-0", true),
            ("statefulset-controller", "delete", "", "persistentvolumeclaims", "shop", "data-db-0", true),
            ("statefulset-controller", "update", "apps", "statefulsets", "shop", "db", false),
            ("statefulset-controller", "patch", "", "persistentvolumeclaims", "shop", "data-db-0", true),
            ("statefulset-controller", "patch", "apps", "statefulsets", "shop", "db", false),
            ("statefulset-controller", "create", "apps", "deployments", "shop", "", false),
        ];
        for (account, verb, group, resource, ns, name, want) in cases {
            let u = controller_user(account);
            let got = authorize(&rbac, &request(&u, verb, group, resource, ns, name)).allowed();
            assert_eq!(got, want, "{account} {verb} {group}/{resource} {ns}/{name}");
        }
        // the signer's status write is checked as `sign` on its signer (csr_admission)
        let signer = |verb: &str, name: &str| {
            let u = controller_user("certificate-controller");
            authorize(&rbac, &request(&u, verb, CERTIFICATES, "signers", "", name)).allowed()
        };
        assert!(signer("sign", "kubernetes.io/kube-apiserver-client"));
        assert!(signer("sign", "kubernetes.io/kubelet-serving"));
        assert!(!signer("sign", "example.com/other"));
        assert!(!signer("approve", "kubernetes.io/kube-apiserver-client"));
        // the same account in another namespace, or a user of that name, is not the controller
        let elsewhere = UserInfo::service_account("shop", "replicaset-controller", "");
        assert!(!authorize(&rbac, &request(&elsewhere, "create", "", "pods", "shop", "")).allowed());
    }

    #[test]
    fn node_network_reads_what_it_routes() {
        let rbac = defaults_with(vec![]);
        let net = UserInfo::new(SKIFF_NODE_NETWORK, &[ALL_AUTHENTICATED]);
        let can = |verb: &str, group: &str, resource: &str, ns: &str, name: &str| {
            authorize(&rbac, &request(&net, verb, group, resource, ns, name)).allowed()
        };
        for (group, resource) in [
            ("", "services"),
            (DISCOVERY, "endpointslices"),
            (NETWORKING, "networkpolicies"),
            ("", "pods"),
            ("", "namespaces"),
            (NETWORKING, "ingresses"),
            (NETWORKING, "ingressclasses"),
            ("", "secrets"),
        ] {
            assert!(can("list", group, resource, "", ""), "list {group}/{resource}");
            assert!(can("watch", group, resource, "", ""), "watch {group}/{resource}");
        }
        assert!(!can("create", "", "pods", "shop", ""));
        assert!(!can("get", "", "secrets", "shop", "tls"));
        assert!(!can("patch", NETWORKING, "ingresses/status", "shop", "web"));
        assert!(!can("update", DISCOVERY, "endpointslices", "shop", "web-x"));
        assert!(!can("list", "", "nodes", "", ""));
        assert!(!can("list", "", "configmaps", "", ""));
    }

    #[test]
    fn node_storage_provisions_volumes_only() {
        let rbac = defaults_with(vec![]);
        let storage = UserInfo::new(SKIFF_NODE_STORAGE, &[ALL_AUTHENTICATED]);
        let can = |verb: &str, group: &str, resource: &str, ns: &str, name: &str| {
            authorize(&rbac, &request(&storage, verb, group, resource, ns, name)).allowed()
        };
        for verb in ["get", "list", "watch", "create", "update", "patch", "delete"] {
            assert!(can(verb, "", "persistentvolumes", "", "pvc-1"), "{verb} persistentvolumes");
        }
        assert!(can("patch", "", "persistentvolumes/status", "", "pvc-1"));
        for verb in ["get", "list", "watch", "update", "patch"] {
            assert!(can(verb, "", "persistentvolumeclaims", "shop", "data"), "{verb} persistentvolumeclaims");
        }
        assert!(can("watch", STORAGE, "storageclasses", "", ""));
        assert!(can("get", "", "nodes", "", "n1"));
        assert!(can("create", "events.k8s.io", "events", "shop", ""));
        assert!(can("patch", "", "events", "shop", "data.1"));
        assert!(!can("delete", "", "persistentvolumeclaims", "shop", "data"));
        assert!(!can("create", "", "pods", "kube-system", ""));
        assert!(!can("update", STORAGE, "storageclasses", "", "local-path"));
        assert!(!can("get", "", "secrets", "shop", "token"));
        assert!(!can("patch", "", "nodes", "", "n1"));
    }

    #[test]
    fn every_role_has_its_binding() {
        // upstream's roles for users and components to bind as they choose
        let unbound = [
            "admin",
            "edit",
            "view",
            "system:aggregate-to-admin",
            "system:aggregate-to-edit",
            "system:aggregate-to-view",
            "system:auth-delegator",
            "system:persistent-volume-provisioner",
            "system:node-bootstrapper",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            "system:certificates.k8s.io:kube-apiserver-client-approver",
            "system:certificates.k8s.io:kube-apiserver-client-kubelet-approver",
            "system:certificates.k8s.io:kubelet-serving-approver",
            "system:certificates.k8s.io:legacy-unknown-approver",
        ];
        let bindings = cluster_role_bindings();
        let names: Vec<&str> = bindings.iter().filter_map(|b| b.metadata.name.as_deref()).collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "duplicate binding names");
        for r in cluster_roles() {
            let name = r.metadata.name.as_deref().expect("name");
            assert_eq!(names.contains(&name), !unbound.contains(&name), "{name}: binding");
        }
        // each controller's role is bound to its account, and only to it
        let controllers = controller_roles();
        let accounts: Vec<&str> = controllers
            .iter()
            .filter_map(|r| r.metadata.name.as_deref()?.strip_prefix(CONTROLLER_ROLE_PREFIX))
            .collect();
        assert_eq!(
            accounts,
            [
                "certificate-controller",
                "clusterrole-aggregation-controller",
                "cronjob-controller",
                "daemon-set-controller",
                "deployment-controller",
                "disruption-controller",
                "endpoint-controller",
                "endpointslice-controller",
                "expand-controller",
                "generic-garbage-collector",
                "horizontal-pod-autoscaler",
                "ingress-status-controller",
                "job-controller",
                "persistent-volume-binder",
                "pv-protection-controller",
                "pvc-protection-controller",
                "replicaset-controller",
                "replication-controller",
                "root-ca-cert-publisher",
                "service-account-controller",
                "service-controller",
                "statefulset-controller",
                "ttl-after-finished-controller",
            ]
        );
        for r in &controllers {
            let name = r.metadata.name.as_deref().expect("name");
            let account = name.strip_prefix(CONTROLLER_ROLE_PREFIX).expect("prefix");
            let b = bindings.iter().find(|b| b.metadata.name.as_deref() == Some(name)).expect(name);
            assert_eq!(b.subjects.as_deref(), Some(&[service_account(CONTROLLER_NAMESPACE, account)][..]), "{name}");
            assert_eq!(b.role_ref.name, name);
        }
        let net = bindings.iter().find(|b| b.metadata.name.as_deref() == Some(SKIFF_NODE_NETWORK)).expect("network");
        assert_eq!(net.subjects.as_deref(), Some(&[user(SKIFF_NODE_NETWORK)][..]));
        let storage =
            bindings.iter().find(|b| b.metadata.name.as_deref() == Some(SKIFF_NODE_STORAGE)).expect("storage");
        assert_eq!(storage.subjects.as_deref(), Some(&[user(SKIFF_NODE_STORAGE)][..]));
    }
}
