//! The resource kinds skiff serves. Each kind is one module implementing [`Kind`]: how it is
//! decoded, defaulted, validated, selected by field and printed as a table.

pub mod admissionregistration;
pub mod certificates;
mod configmap;
mod controllerrevision;
mod cronjob;
pub mod custom;
pub mod customresourcedefinition;
mod daemonset;
mod deployment;
mod endpoints;
mod event;
mod hpa;
mod ingress;
mod job;
mod lease;
mod namespace;
mod networkpolicy;
mod node;
mod pdb;
pub mod persistentvolume;
pub mod persistentvolumeclaim;
mod pod;
mod rbac;
mod replicaset;
mod replicationcontroller;
pub mod review;
mod secret;
mod service;
mod serviceaccount;
mod statefulset;
pub mod storageclass;
mod template;

use crate::field::ErrorList;
use crate::meta;
use crate::status::ApiError;
use jiff::Timestamp;
use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use cronjob::parse_schedule;
pub use job::{CONTROLLER_UID_LABEL, JOB_NAME_LABEL};
pub use pod::{default_pull_policy, pod_status_reason};
pub use rbac::RBAC_GROUP;
pub use secret::docker_auths;
pub use service::{externally_accessible, validation::is_headless, wants_cluster_ip, wants_node_ports};

/// Static facts about a resource, as discovery reports them.
#[derive(Debug)]
pub struct ResourceInfo {
    /// The API group: `""` for the core group (served under `/api`), else under `/apis/GROUP`.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// What may be done to the resource (discovery reports them; other requests get 405).
    pub verbs: &'static [&'static str],
    /// Subresources: (name, response kind, verbs). The response kind is of the resource's own
    /// group version (`Pod`), or names its own (`autoscaling/v1/Scale`, `policy/v1/Eviction`).
    pub subresources: &'static [(&'static str, &'static str, &'static [&'static str])],
}

impl ResourceInfo {
    /// A subresource's response kind as (group, version, kind).
    pub fn response_kind(&self, kind: &'static str) -> (&'static str, &'static str, &'static str) {
        match kind.rsplit_once('/') {
            Some((gv, kind)) => match gv.split_once('/') {
                Some((group, version)) => (group, version, kind),
                None => ("", gv, kind),
            },
            None => (self.group, self.version, kind),
        }
    }

    /// `apiVersion` of the kind's objects: `v1`, `coordination.k8s.io/v1`.
    pub fn api_version(&self) -> String {
        group_version(self.group, self.version)
    }

    /// Where its resources are served: `/api/v1`, `/apis/coordination.k8s.io/v1`.
    pub fn path_prefix(&self) -> String {
        match self.group {
            "" => format!("/api/{}", self.version),
            g => format!("/apis/{g}/{}", self.version),
        }
    }

    /// The resource as upstream's errors name it: `pods`, `leases.coordination.k8s.io`.
    pub fn qualified_resource(&self) -> String {
        crate::status::qualified(self.plural, self.group)
    }

    /// The kind as upstream's Invalid errors name it: `Pod`, `Lease.coordination.k8s.io`.
    pub fn qualified_kind(&self) -> String {
        crate::status::qualified(self.kind, self.group)
    }

    pub fn not_found(&self, name: &str) -> ApiError {
        ApiError::NotFound { group: self.group.into(), resource: self.plural.into(), name: name.into() }
    }

    pub fn already_exists(&self, name: &str) -> ApiError {
        ApiError::AlreadyExists { group: self.group.into(), resource: self.plural.into(), name: name.into() }
    }

    pub fn conflict(&self, name: &str, why: impl Into<String>) -> ApiError {
        ApiError::Conflict {
            group: self.group.into(),
            resource: self.plural.into(),
            name: name.into(),
            why: why.into(),
        }
    }

    /// The usual optimistic-concurrency failure.
    pub fn stale(&self, name: &str) -> ApiError {
        self.conflict(name, crate::status::STALE)
    }

    pub fn invalid(&self, name: &str, errors: ErrorList) -> ApiError {
        ApiError::Invalid { group: self.group.into(), kind: self.kind.into(), name: name.into(), errors }
    }
}

/// `group/version`, or the version alone for the core group.
pub fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() { version.to_string() } else { format!("{group}/{version}") }
}

/// Upstream's 405 for a verb a resource does not serve.
pub fn verb_not_supported(info: &ResourceInfo, verb: &str) -> ApiError {
    ApiError::MethodNotSupported(format!("{verb} is not supported on resources of kind {:?}", info.plural))
}

pub const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
/// A resource that is served for reading only.
pub const READ_VERBS: &[&str] = &["get", "list", "watch"];

/// One column of a `Table`.
#[derive(Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    /// The column's `type`: `string`, or `date` for upstream's default `Created At`.
    pub data_type: &'static str,
    pub format: &'static str,
    pub priority: u8,
    pub description: &'static str,
}

impl Column {
    pub const fn new(name: &'static str, priority: u8, description: &'static str) -> Self {
        Column { name, data_type: "string", format: "", priority, description }
    }
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "type": self.data_type, "format": self.format, "description": self.description, "priority": self.priority})
    }
}

pub const NAME_COLUMN: Column = Column {
    name: "Name",
    data_type: "string",
    format: "name",
    priority: 0,
    description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
};
pub const AGE_COLUMN: Column = Column::new(
    "Age",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
);

/// The second column of upstream's default table convertor (`rest.NewDefaultTableConvertor`),
/// for kinds with no printer of their own (Roles, ClusterRoles): the creation time in RFC 3339.
pub const CREATED_AT_COLUMN: Column = Column { name: "Created At", data_type: "date", ..AGE_COLUMN };

/// A `Created At` cell: `metadata.creationTimestamp` in UTC, Go's zero time when absent.
pub fn created_at(obj: &Value) -> String {
    crate::time::parse(obj.pointer("/metadata/creationTimestamp").and_then(Value::as_str))
        .map_or_else(|| "0001-01-01T00:00:00Z".to_string(), crate::time::rfc3339)
}

/// Why a request body could not be decoded as the kind.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{0}")]
    Malformed(String),
}

/// Which part of an object a write replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The object itself: everything but its status.
    Main,
    /// The `status` subresource.
    Status,
    /// Another subresource that replaces one part of the object (`pods/ephemeralcontainers`).
    Named(&'static str),
}

/// Carry the old status over to an update of the main resource, as every kind does.
pub fn keep_status(old: &Value, new: &mut Value) {
    if let Some(status) = old.get("status") {
        new["status"] = status.clone();
    } else if let Some(o) = new.as_object_mut() {
        o.remove("status");
    }
}

/// A status write: `new` becomes `old` with `new`'s status (none if it has none) and
/// resourceVersion, as every kind's status subresource takes it.
pub fn status_only(old: &Value, new: &mut Value) {
    let mut merged = old.clone();
    match new.get("status").cloned() {
        Some(s) => merged["status"] = s,
        None => {
            if let Some(o) = merged.as_object_mut() {
                o.remove("status");
            }
        }
    }
    merged["metadata"]["resourceVersion"] = new["metadata"]["resourceVersion"].clone();
    *new = merged;
}

/// Behaviour of one kind. Objects travel as JSON values in their canonical (typed round-trip) form.
pub trait Kind: Send + Sync {
    fn info(&self) -> &'static ResourceInfo;
    /// Decode through the typed struct and back, giving the canonical form.
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError>;
    /// Defaults for every written object (create, update, patch, apply, status), as upstream's
    /// defaulting functions run on every decoded body: a field a write drops comes back.
    fn default(&self, _obj: &mut Value) {}
    /// What only a create sets, after [`Kind::default`]: server-owned fields (status reset,
    /// phase) and what admission adds on create.
    fn prepare_create(&self, _obj: &mut Value) {}
    /// On update of the main resource: carry over what the main resource may not change (status).
    fn prepare_update(&self, old: &Value, new: &mut Value) {
        keep_status(old, new);
    }
    /// On update of the status subresource: everything but status comes from the old object.
    fn prepare_status_update(&self, old: &Value, new: &mut Value) {
        status_only(old, new);
    }
    /// The subresources written like `Part::Named` (their name, as in `info().subresources`).
    fn part(&self, _subresource: &str) -> Option<Part> {
        None
    }
    /// The grace period a delete of `obj` gets (`requested`: the client's), during which the
    /// object stays with a deletionTimestamp; 0 deletes at once unless finalizers hold it.
    fn deletion_grace_seconds(&self, _obj: &Value, _requested: Option<i64>) -> i64 {
        0
    }
    /// Whether a deleted object stays until a controller finalizes it (namespaces: until what
    /// they hold is gone), finalizers or not.
    fn finalized_by_controller(&self) -> bool {
        false
    }
    /// The custom resource kind this is, if it is one (made from a CustomResourceDefinition).
    fn custom(&self) -> Option<&custom::CustomKind> {
        None
    }
    /// The list and map types server-side apply and managedFields follow in the kind's objects:
    /// the built-in table, unless the kind has its own (a custom resource's schema markers).
    fn shapes(&self) -> &dyn crate::schema::Shapes {
        &crate::schema::BUILT_IN
    }
    /// Whether a request with `verb` is served: what discovery lists (`info().verbs`), unless
    /// the kind knows better (a terminating definition's objects list fewer verbs than they take).
    fn serves_verb(&self, verb: &str) -> bool {
        self.info().verbs.contains(&verb)
    }
    /// The error for a request whose verb the kind does not serve (`info().verbs`).
    fn verb_refused(&self, verb: &str) -> ApiError {
        verb_not_supported(self.info(), verb)
    }
    /// Whether an update changes what `metadata.generation` counts (the spec, for most kinds).
    fn changes_generation(&self, old: &Value, new: &Value) -> bool {
        new.get("spec") != old.get("spec")
    }
    /// Finalizers a delete adds when it starts (a CustomResourceDefinition's cleanup of its
    /// objects), before the object may go.
    fn deletion_finalizers(&self) -> &'static [&'static str] {
        &[]
    }
    /// What a deletion that starts marks on the object (a Namespace's `Terminating` phase, a
    /// CRD's `Terminating` condition).
    fn mark_terminating(&self, _obj: &mut Value) {}
    /// The object as stored: a kind served in several versions keeps one (custom resources
    /// are written in their storage version).
    fn to_stored(&self, _obj: &mut Value) {}
    /// A stored object as this kind serves it (a custom resource read through another version).
    fn to_served(&self, _obj: &mut Value) {}
    /// The `autoscaling/v1` Scale of `obj`, for kinds with a `scale` subresource.
    fn scale(&self, obj: &Value) -> Result<Value, ApiError> {
        Ok(crate::scale::of(obj))
    }
    /// Set the replicas a Scale asked for on `obj`.
    fn set_replicas(&self, obj: &mut Value, replicas: i64) -> Result<(), ApiError> {
        obj["spec"]["replicas"] = json!(replicas);
        Ok(())
    }
    /// On update of a `Part::Named` subresource: everything but that part comes from the old object.
    fn prepare_part_update(&self, _part: &str, _old: &Value, _new: &mut Value) {}
    fn validate(&self, obj: &Value) -> ErrorList;
    fn validate_update(&self, _old: &Value, new: &Value) -> ErrorList {
        self.validate(new)
    }
    /// Validation of an update of `part`: a kind whose parts may change different fields
    /// (CSRs' `status` and `approval`) checks each by its own rules.
    fn validate_part_update(&self, _part: Part, old: &Value, new: &Value) -> ErrorList {
        self.validate_update(old, new)
    }
    /// The value of a field selector field; `None` when the field is not selectable.
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "metadata.name" => Some(meta::name(obj).to_string()),
            "metadata.namespace" if self.info().namespaced => Some(meta::namespace(obj).to_string()),
            _ => None,
        }
    }
    fn columns(&self) -> &'static [Column];
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value>;
    /// Add the kind's typed schema (k8s-openapi's) to `g`; its definition name and type facts,
    /// from which the OpenAPI documents and the protobuf table are made.
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema;
}

/// What a kind's typed struct says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedSchema {
    /// The definition name, `io.k8s.api.core.v1.Pod`.
    pub name: String,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
}

/// [`Kind::schema`] for the kind whose typed struct is `T`.
pub(crate) fn schema_of<T: k8s_openapi::Resource + JsonSchema>(g: &mut SchemaGenerator) -> TypedSchema {
    g.subschema_for::<T>();
    TypedSchema { name: T::schema_name().into_owned(), group: T::GROUP, version: T::VERSION, kind: T::KIND }
}

/// Decode `raw` as `T` and encode it again: the canonical JSON of the object.
pub(crate) fn roundtrip<T: k8s_openapi::Resource + DeserializeOwned + Serialize>(
    raw: &Value,
) -> Result<Value, DecodeError> {
    let (kind, version) = (T::KIND, T::VERSION);
    let typed: T = serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        DecodeError::Malformed(if path == "." {
            format!("{kind} in version \"{version}\" cannot be handled as a {kind}: {inner}")
        } else {
            format!("{kind} in version \"{version}\" cannot be handled as a {kind}: json: {inner} (field {path})")
        })
    })?;
    serde_json::to_value(&typed).map_err(|e| DecodeError::Malformed(e.to_string()))
}

pub(crate) fn typed<T: DeserializeOwned + Default>(obj: &Value) -> T {
    // Stored objects are canonical, so this only falls back for corrupt input.
    serde_json::from_value(obj.clone()).unwrap_or_default()
}

/// The kinds other code needs by name (the namespace controller, the scheduler's binding).
pub const NAMESPACES: &dyn Kind = &namespace::Namespaces;
pub const NODES: &dyn Kind = &node::Nodes;
pub const PODS: &dyn Kind = &pod::Pods;
pub const SERVICES: &dyn Kind = &service::Services;
pub const ENDPOINTS: &dyn Kind = &endpoints::EndpointsKind;
pub const SERVICE_ACCOUNTS: &dyn Kind = &serviceaccount::ServiceAccounts;
pub const ROLES: &dyn Kind = &rbac::Roles;
pub const CLUSTER_ROLES: &dyn Kind = &rbac::ClusterRoles;
pub const ROLE_BINDINGS: &dyn Kind = &rbac::RoleBindings;
pub const CLUSTER_ROLE_BINDINGS: &dyn Kind = &rbac::ClusterRoleBindings;
pub const PERSISTENT_VOLUMES: &dyn Kind = &persistentvolume::PersistentVolumes;
pub const PERSISTENT_VOLUME_CLAIMS: &dyn Kind = &persistentvolumeclaim::PersistentVolumeClaims;
pub const STORAGE_CLASSES: &dyn Kind = &storageclass::StorageClasses;
pub const CUSTOM_RESOURCE_DEFINITIONS: &dyn Kind = &customresourcedefinition::CustomResourceDefinitions;

/// Every kind skiff serves: the table discovery, OpenAPI, protobuf and routing read. Within a
/// group version, in discovery order.
pub fn all() -> &'static [&'static dyn Kind] {
    static ALL: [&dyn Kind; 43] = [
        NAMESPACES,
        NODES,
        PERSISTENT_VOLUME_CLAIMS,
        PERSISTENT_VOLUMES,
        PODS,
        &replicationcontroller::ReplicationControllers,
        &configmap::ConfigMaps,
        &event::Events,
        &secret::Secrets,
        SERVICE_ACCOUNTS,
        SERVICES,
        ENDPOINTS,
        &lease::Leases,
        &endpoints::EndpointSlices,
        &controllerrevision::ControllerRevisions,
        &daemonset::DaemonSets,
        &deployment::Deployments,
        &replicaset::ReplicaSets,
        &statefulset::StatefulSets,
        &review::SELF_SUBJECT_REVIEWS,
        &review::TOKEN_REVIEWS,
        &review::LOCAL_SUBJECT_ACCESS_REVIEWS,
        &review::SELF_SUBJECT_ACCESS_REVIEWS,
        &review::SELF_SUBJECT_RULES_REVIEWS,
        &review::SUBJECT_ACCESS_REVIEWS,
        &job::Jobs,
        &cronjob::CronJobs,
        &hpa::HorizontalPodAutoscalers,
        &certificates::CertificateSigningRequests,
        &ingress::IngressClasses,
        &ingress::Ingresses,
        &networkpolicy::NetworkPolicies,
        &pdb::PodDisruptionBudgets,
        CLUSTER_ROLE_BINDINGS,
        CLUSTER_ROLES,
        ROLE_BINDINGS,
        ROLES,
        STORAGE_CLASSES,
        CUSTOM_RESOURCE_DEFINITIONS,
        &admissionregistration::MutatingWebhookConfigurations,
        &admissionregistration::ValidatingAdmissionPolicies,
        &admissionregistration::ValidatingAdmissionPolicyBindings,
        &admissionregistration::ValidatingWebhookConfigurations,
    ];
    &ALL
}

/// The kind served as `resource` (its plural) in `group`/`version`.
pub fn by_resource(group: &str, version: &str, resource: &str) -> Option<&'static dyn Kind> {
    all().iter().copied().find(|k| {
        let i = k.info();
        i.group == group && i.version == version && i.plural == resource
    })
}

/// The API groups served, each with its versions, in the order of [`all`] (core first).
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    groups_of(all().iter().copied())
}

/// The API groups of `kinds`, each with its versions, in their order.
pub fn groups_of(kinds: impl Iterator<Item = &'static dyn Kind>) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for k in kinds {
        let i = k.info();
        match groups.iter_mut().find(|(g, _)| *g == i.group) {
            Some((_, versions)) if versions.contains(&i.version) => {}
            Some((_, versions)) => versions.push(i.version),
            None => groups.push((i.group, vec![i.version])),
        }
    }
    groups
}

/// The kinds served in `group`/`version`.
pub fn in_group_version(group: &str, version: &str) -> impl Iterator<Item = &'static dyn Kind> {
    all().iter().copied().filter(move |k| k.info().group == group && k.info().version == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table's group, version and kind are the typed struct's: what discovery says is what
    /// the OpenAPI documents and the protobuf table describe.
    #[test]
    fn every_kind_matches_its_typed_struct() {
        let mut g = SchemaGenerator::default();
        for k in all() {
            let (i, t) = (k.info(), k.schema(&mut g));
            assert_eq!((i.group, i.version, i.kind), (t.group, t.version, t.kind), "{}", i.plural);
        }
    }

    #[test]
    fn groups_and_names() {
        assert_eq!(
            groups(),
            [
                ("", vec!["v1"]),
                ("coordination.k8s.io", vec!["v1"]),
                ("discovery.k8s.io", vec!["v1"]),
                ("apps", vec!["v1"]),
                ("authentication.k8s.io", vec!["v1"]),
                ("authorization.k8s.io", vec!["v1"]),
                ("batch", vec!["v1"]),
                ("autoscaling", vec!["v2"]),
                ("certificates.k8s.io", vec!["v1"]),
                ("networking.k8s.io", vec!["v1"]),
                ("policy", vec!["v1"]),
                ("rbac.authorization.k8s.io", vec!["v1"]),
                ("storage.k8s.io", vec!["v1"]),
                ("apiextensions.k8s.io", vec!["v1"]),
                ("admissionregistration.k8s.io", vec!["v1"])
            ]
        );
        let rbac: Vec<&str> = in_group_version(RBAC_GROUP, "v1").map(|k| k.info().plural).collect();
        assert_eq!(rbac, ["clusterrolebindings", "clusterroles", "rolebindings", "roles"]);
        let core: Vec<&str> = in_group_version("", "v1").map(|k| k.info().plural).collect();
        assert!(core.windows(3).any(|w| w == ["secrets", "serviceaccounts", "services"]), "{core:?}");
        assert!(core.windows(4).any(|w| w == ["nodes", "persistentvolumeclaims", "persistentvolumes", "pods"]));
        let apps: Vec<&str> = in_group_version("apps", "v1").map(|k| k.info().plural).collect();
        assert_eq!(apps, ["controllerrevisions", "daemonsets", "deployments", "replicasets", "statefulsets"]);
        let storage: Vec<&str> = in_group_version("storage.k8s.io", "v1").map(|k| k.info().plural).collect();
        assert_eq!(storage, ["storageclasses"]);
        let networking: Vec<&str> = in_group_version("networking.k8s.io", "v1").map(|k| k.info().plural).collect();
        assert_eq!(networking, ["ingressclasses", "ingresses", "networkpolicies"]);
        let lease = by_resource("coordination.k8s.io", "v1", "leases").expect("leases");
        assert!(by_resource("", "v1", "leases").is_none());
        let i = lease.info();
        assert_eq!(
            (i.api_version(), i.path_prefix(), i.qualified_resource()),
            (
                "coordination.k8s.io/v1".into(),
                "/apis/coordination.k8s.io/v1".into(),
                "leases.coordination.k8s.io".into()
            )
        );
        assert_eq!(i.not_found("x").to_string(), "leases.coordination.k8s.io \"x\" not found");
        assert_eq!(PODS.info().not_found("x").to_string(), "pods \"x\" not found");
        assert_eq!(PODS.info().path_prefix(), "/api/v1");
        assert_eq!(PODS.info().response_kind("policy/v1/Eviction"), ("policy", "v1", "Eviction"));
        assert_eq!(PODS.info().response_kind("Pod"), ("", "v1", "Pod"));
    }
}
