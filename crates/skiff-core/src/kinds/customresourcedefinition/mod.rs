//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`): the kinds users add, as Kubernetes
//! 1.32's apiextensions-apiserver serves them: v1 defaults (`SetDefaults_CustomResourceDefinition`),
//! the registry strategy (status reset on create, `storedVersions` kept up to date), validation
//! (`ValidateCustomResourceDefinition*`, see [`validation`]), the cleanup finalizer and
//! `Terminating` condition of a deletion, and helpers the controllers and the custom kinds use.

mod conditions;
mod conversion;
mod fold;
mod ratchet;
mod validation;
mod version;

#[cfg(test)]
mod tests;

pub use conditions::{condition, condition_is_true, set_condition};

use super::{
    CREATED_AT_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, Part, ResourceInfo, TypedSchema, keep_status, roundtrip,
    schema_of, typed,
};
use crate::field::ErrorList;
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionStatus,
};
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub const GROUP: &str = "apiextensions.k8s.io";
/// The finalizer a deletion adds; the cleanup controller removes it once the custom resources
/// are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
/// Condition types, in the order upstream's controllers first set them.
pub const NAMES_ACCEPTED: &str = "NamesAccepted";
pub const ESTABLISHED: &str = "Established";
pub const TERMINATING: &str = "Terminating";

pub struct CustomResourceDefinitions;

static INFO: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: "v1",
    plural: "customresourcedefinitions",
    singular: "customresourcedefinition",
    kind: "CustomResourceDefinition",
    namespaced: false,
    short_names: &["crd", "crds"],
    categories: &["api-extensions"],
    verbs: super::VERBS,
    subresources: &[("status", "CustomResourceDefinition", &["get", "patch", "update"])],
};

/// Upstream serves CRDs with the default table convertor.
static COLUMNS: [Column; 2] = [NAME_COLUMN, CREATED_AT_COLUMN];

/// The storage version: the first version marked `storage: true`.
pub fn storage_version(crd: &Value) -> Option<&str> {
    versions(crd)
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name").and_then(Value::as_str))
}

/// The names of the versions marked `served: true`, in spec order.
pub fn served_versions(crd: &Value) -> Vec<&str> {
    versions(crd)
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect()
}

/// The `spec.versions` entry named `name`.
pub fn version<'a>(crd: &'a Value, name: &str) -> Option<&'a Value> {
    versions(crd).find(|v| v.get("name").and_then(Value::as_str) == Some(name))
}

fn versions(crd: &Value) -> impl Iterator<Item = &Value> {
    crd.pointer("/spec/versions").and_then(Value::as_array).into_iter().flatten()
}

/// `SetDefaults_CustomResourceDefinition` (with the spec's and the service reference's), as
/// every decoded v1 body gets them.
fn set_defaults(crd: &mut CustomResourceDefinition) {
    let names = &mut crd.spec.names;
    if names.singular.as_deref().unwrap_or_default().is_empty() && !names.kind.is_empty() {
        names.singular = Some(names.kind.to_lowercase());
    }
    if names.list_kind.as_deref().unwrap_or_default().is_empty() && !names.kind.is_empty() {
        names.list_kind = Some(format!("{}List", names.kind));
    }
    let conversion =
        crd.spec.conversion.get_or_insert_with(|| CustomResourceConversion { strategy: "None".into(), webhook: None });
    if let Some(service) =
        conversion.webhook.as_mut().and_then(|w| w.client_config.as_mut()).and_then(|c| c.service.as_mut())
    {
        service.port.get_or_insert(443);
    }
    // Upstream's status is a struct, not a pointer: it and its accepted names always exist.
    let status = crd.status.get_or_insert_with(empty_status);
    status.accepted_names.get_or_insert_with(Default::default);
    if status.stored_versions.as_ref().is_none_or(Vec::is_empty)
        && let Some(v) = crd.spec.versions.iter().find(|v| v.storage)
    {
        status.stored_versions = Some(vec![v.name.clone()]);
    }
}

/// The status of a new definition: names not yet accepted (upstream's zero value serializes
/// `plural` and `kind` empty), no conditions.
fn empty_status() -> CustomResourceDefinitionStatus {
    CustomResourceDefinitionStatus {
        accepted_names: Some(CustomResourceDefinitionNames::default()),
        ..Default::default()
    }
}

/// Add the storage version to `status.storedVersions` unless it is there (the strategy never
/// removes one: that is the status writer's job once nothing is stored in it).
fn record_storage_version(crd: &mut CustomResourceDefinition) {
    let Some(storage) = crd.spec.versions.iter().find(|v| v.storage).map(|v| v.name.clone()) else { return };
    let status = crd.status.get_or_insert_with(empty_status);
    let stored = status.stored_versions.get_or_insert_with(Vec::new);
    if !stored.contains(&storage) {
        stored.push(storage);
    }
}

fn write_back(crd: &CustomResourceDefinition, obj: &mut Value) {
    if let Ok(v) = serde_json::to_value(crd) {
        *obj = v;
    }
}

impl Kind for CustomResourceDefinitions {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<CustomResourceDefinition>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<CustomResourceDefinition>(raw)
    }
    fn default(&self, obj: &mut Value) {
        let mut crd: CustomResourceDefinition = typed(obj);
        set_defaults(&mut crd);
        write_back(&crd, obj);
    }
    /// `PrepareForCreate`: the status starts empty but for the storage version. (The registry
    /// sets `generation: 1` for every kind.)
    fn prepare_create(&self, obj: &mut Value) {
        let mut crd: CustomResourceDefinition = typed(obj);
        crd.status = Some(empty_status());
        record_storage_version(&mut crd);
        write_back(&crd, obj);
    }
    /// `PrepareForUpdate`: the old status, plus a new storage version. (The registry bumps the
    /// generation when the spec changed.)
    fn prepare_update(&self, old: &Value, new: &mut Value) {
        keep_status(old, new);
        let mut crd: CustomResourceDefinition = typed(new);
        record_storage_version(&mut crd);
        write_back(&crd, new);
    }
    /// The status strategy keeps the old spec only: upstream resets the metadata against the
    /// new object itself (`ResetObjectMetaForStatus(&new, &new)`), so labels, annotations and
    /// finalizers written through `/status` stay; the cleanup controller removes its finalizer
    /// that way.
    fn prepare_status_update(&self, old: &Value, new: &mut Value) {
        match old.get("spec") {
            Some(spec) => new["spec"] = spec.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("spec");
                }
            }
        }
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        validation::validate_create(obj)
    }
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        validation::validate_update(old, new)
    }
    fn validate_part_update(&self, part: Part, old: &Value, new: &Value) -> ErrorList {
        match part {
            Part::Status => validation::validate_status_update(new),
            Part::Main | Part::Named(_) => validation::validate_update(old, new),
        }
    }
    fn deletion_finalizers(&self) -> &'static [&'static str] {
        &[CLEANUP_FINALIZER]
    }
    fn mark_terminating(&self, obj: &mut Value) {
        set_condition(
            obj,
            TERMINATING,
            "True",
            "InstanceDeletionPending",
            "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
            Timestamp::now(),
        );
    }
    /// Upstream's `ObjectMetaFieldsSet(meta, true)`: `metadata.namespace` is selectable (and
    /// empty) although CRDs are cluster-scoped.
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "metadata.name" => Some(meta::name(obj).to_string()),
            "metadata.namespace" => Some(meta::namespace(obj).to_string()),
            _ => None,
        }
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, _now: Timestamp) -> Vec<Value> {
        vec![json!(meta::name(obj)), json!(super::created_at(obj))]
    }
}
