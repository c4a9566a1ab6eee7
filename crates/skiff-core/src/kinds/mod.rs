//! The resource kinds skiff serves. Each kind is one module implementing [`Kind`]: how it is
//! decoded, defaulted, validated, selected by field and printed as a table.

mod event;
mod namespace;
mod node;
mod pod;
mod secret;
mod service;

use crate::field::ErrorList;
use crate::meta;
use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub use pod::{default_pull_policy, pod_status_reason};
pub use secret::docker_auths;

/// Static facts about a resource, as discovery reports them.
#[derive(Debug)]
pub struct ResourceInfo {
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// What may be done to the resource (discovery reports them; other requests get 405).
    pub verbs: &'static [&'static str],
    /// Subresources: (name, response kind, verbs).
    pub subresources: &'static [(&'static str, &'static str, &'static [&'static str])],
}

pub const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
/// A resource that is served for reading only.
pub const READ_VERBS: &[&str] = &["get", "list", "watch"];

/// One column of a `Table`.
pub struct Column {
    pub name: &'static str,
    pub format: &'static str,
    pub priority: u8,
    pub description: &'static str,
}

impl Column {
    pub const fn new(name: &'static str, priority: u8, description: &'static str) -> Self {
        Column { name, format: "", priority, description }
    }
    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "type": "string", "format": self.format, "description": self.description, "priority": self.priority})
    }
}

pub const NAME_COLUMN: Column = Column {
    name: "Name",
    format: "name",
    priority: 0,
    description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
};
pub const AGE_COLUMN: Column = Column::new(
    "Age",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
);

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
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        match status {
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
    /// On update of a `Part::Named` subresource: everything but that part comes from the old object.
    fn prepare_part_update(&self, _part: &str, _old: &Value, _new: &mut Value) {}
    fn validate(&self, obj: &Value) -> ErrorList;
    fn validate_update(&self, _old: &Value, new: &Value) -> ErrorList {
        self.validate(new)
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
}

/// Decode `raw` as `T` and encode it again: the canonical JSON of the object.
pub(crate) fn roundtrip<T: DeserializeOwned + Serialize>(kind: &str, raw: &Value) -> Result<Value, DecodeError> {
    let typed: T = serde_path_to_error::deserialize(raw).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        DecodeError::Malformed(if path == "." {
            format!("{kind} in version \"v1\" cannot be handled as a {kind}: {inner}")
        } else {
            format!("{kind} in version \"v1\" cannot be handled as a {kind}: json: {inner} (field {path})")
        })
    })?;
    serde_json::to_value(&typed).map_err(|e| DecodeError::Malformed(e.to_string()))
}

pub(crate) fn typed<T: DeserializeOwned + Default>(obj: &Value) -> T {
    // Stored objects are canonical, so this only falls back for corrupt input.
    serde_json::from_value(obj.clone()).unwrap_or_default()
}

/// Every kind skiff serves, in discovery order.
pub fn all() -> &'static [&'static dyn Kind] {
    static ALL: [&dyn Kind; 6] =
        [&namespace::Namespaces, &node::Nodes, &pod::Pods, &event::Events, &secret::Secrets, &service::Services];
    &ALL
}

/// Look a kind up by plural, singular, kind name or short name (case-insensitive for kind).
pub fn by_resource(resource: &str) -> Option<&'static dyn Kind> {
    all().iter().copied().find(|k| k.info().plural == resource)
}

pub fn by_kind(kind: &str) -> Option<&'static dyn Kind> {
    all().iter().copied().find(|k| k.info().kind == kind)
}
