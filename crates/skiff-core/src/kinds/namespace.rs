//! Namespaces.

use super::{AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of};
use crate::field::ErrorList;
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct Namespaces;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    plural: "namespaces",
    singular: "namespace",
    kind: "Namespace",
    namespaced: false,
    short_names: &["ns"],
    categories: &[],
    verbs: &["create", "delete", "get", "list", "patch", "update", "watch"],
    subresources: &[("status", "Namespace", &["get", "patch", "update"]), ("finalize", "Namespace", &["update"])],
};

static COLUMNS: [Column; 3] = [NAME_COLUMN, Column::new("Status", 0, "The status of the namespace"), AGE_COLUMN];

/// The label the NamespaceLifecycle admission sets on every namespace.
pub const NAME_LABEL: &str = "kubernetes.io/metadata.name";

impl Kind for Namespaces {
    /// A deleted namespace stays (Terminating) until the namespace controller has emptied it.
    fn finalized_by_controller(&self) -> bool {
        true
    }
    fn mark_terminating(&self, obj: &mut Value) {
        obj["status"]["phase"] = json!("Terminating");
    }

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<Namespace>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<Namespace>(raw)
    }
    fn default(&self, obj: &mut Value) {
        let name = meta::name(obj).to_string();
        let md = meta::metadata_mut(obj);
        if !md.get("labels").is_some_and(Value::is_object) {
            md.insert("labels".into(), json!({}));
        }
        md["labels"][NAME_LABEL] = json!(name);
    }
    fn prepare_create(&self, obj: &mut Value) {
        obj["spec"] = json!({"finalizers": ["kubernetes"]});
        obj["status"] = json!({"phase": "Active"});
    }
    fn prepare_update(&self, old: &Value, new: &mut Value) {
        new["status"] = old["status"].clone();
        new["spec"] = old["spec"].clone();
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        meta::validate(obj, false, true)
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "metadata.name" => Some(meta::name(obj).into()),
            "status.phase" => Some(obj.pointer("/status/phase").and_then(Value::as_str).unwrap_or("").into()),
            _ => None,
        }
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        vec![
            json!(meta::name(obj)),
            json!(obj.pointer("/status/phase").and_then(Value::as_str).unwrap_or("")),
            json!(meta::age(obj, now)),
        ]
    }
}
