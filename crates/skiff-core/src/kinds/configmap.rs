//! core/v1 ConfigMaps: keys that are valid file names, at most 1 MiB, `immutable`.

use super::{AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of};
use crate::field::{ErrorList, FieldError, Path};
use crate::{meta, names};
use base64::Engine;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Map, Value, json};

pub struct ConfigMaps;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    plural: "configmaps",
    singular: "configmap",
    kind: "ConfigMap",
    namespaced: true,
    short_names: &["cm"],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[],
};

static COLUMNS: [Column; 3] = [
    NAME_COLUMN,
    Column::new(
        "Data",
        0,
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.",
    ),
    AGE_COLUMN,
];

/// The most a ConfigMap's data and binaryData may hold together (upstream's `MaxSecretSize`).
const MAX_TOTAL_BYTES: usize = 1024 * 1024;
const LOCKED: &str = "field is immutable when `immutable` is set";

fn entries<'a>(obj: &'a Value, field: &str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    obj.get(field).and_then(Value::as_object).into_iter().flat_map(Map::iter)
}

impl Kind for ConfigMaps {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<ConfigMap>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<ConfigMap>(raw)
    }
    /// Upstream's `ValidateConfigMap`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let binary = obj.get("binaryData").and_then(Value::as_object);
        let mut total = 0;
        for (key, value) in entries(obj, "data") {
            let path = Path::new("data").key(key);
            errs.extend(names::config_key(key).into_iter().map(|m| FieldError::invalid(&path, key.as_str(), m)));
            if binary.is_some_and(|b| b.contains_key(key)) {
                errs.push(FieldError::invalid(&path, key.as_str(), "duplicate of key present in binaryData"));
            }
            total += value.as_str().map_or(0, str::len);
        }
        for (key, value) in entries(obj, "binaryData") {
            let path = Path::new("binaryData").key(key);
            errs.extend(names::config_key(key).into_iter().map(|m| FieldError::invalid(&path, key.as_str(), m)));
            let encoded = value.as_str().unwrap_or_default();
            total += base64::engine::general_purpose::STANDARD.decode(encoded).map_or(encoded.len(), |b| b.len());
        }
        if total > MAX_TOTAL_BYTES {
            errs.push(FieldError::too_long(&Path::whole_object(), MAX_TOTAL_BYTES));
        }
        errs
    }
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let mut errs = Vec::new();
        if old.get("immutable").and_then(Value::as_bool) == Some(true) {
            if new.get("immutable").and_then(Value::as_bool) != Some(true) {
                errs.push(FieldError::forbidden(&Path::new("immutable"), LOCKED));
            }
            for field in ["data", "binaryData"] {
                if old.get(field) != new.get(field) {
                    errs.push(FieldError::forbidden(&Path::new(field), LOCKED));
                }
            }
        }
        errs.extend(self.validate(new));
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let count = entries(obj, "data").count() + entries(obj, "binaryData").count();
        vec![json!(meta::name(obj)), json!(count), json!(meta::age(obj, now))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(old: Option<Value>, new: Value) -> Vec<String> {
        let mut obj =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}});
        obj.as_object_mut().expect("object").extend(new.as_object().cloned().unwrap_or_default());
        let errs = match old {
            Some(o) => {
                let mut old = obj.clone();
                old.as_object_mut().expect("object").extend(o.as_object().cloned().unwrap_or_default());
                ConfigMaps.validate_update(&old, &obj)
            }
            None => ConfigMaps.validate(&obj),
        };
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn keys_duplicates_and_size_as_upstream() {
        assert!(errors(None, json!({"data": {"a.conf": "x", "B_2": "y"}, "binaryData": {"bin": "AAE="}})).is_empty());
        assert_eq!(
            errors(None, json!({"data": {"a/b": "x", "dup": "y"}, "binaryData": {"dup": "AA=="}})),
            [
                "data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "data[dup]: Invalid value: \"dup\": duplicate of key present in binaryData",
            ]
        );
        let big = "x".repeat(MAX_TOTAL_BYTES);
        assert_eq!(
            errors(None, json!({"data": {"a": big, "b": "y"}})),
            ["[]: Too long: may not be more than 1048576 bytes"]
        );
    }

    #[test]
    fn immutable_maps_keep_their_data() {
        let old = json!({"immutable": true, "data": {"a": "1"}});
        assert!(errors(Some(old.clone()), json!({"immutable": true, "data": {"a": "1"}})).is_empty());
        assert_eq!(
            errors(Some(old), json!({"data": {"a": "2"}})),
            [
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set",
            ]
        );
    }

    #[test]
    fn table_counts_both_kinds_of_data() {
        let obj = json!({"metadata": {"name": "c", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "data": {"a": "1"}, "binaryData": {"b": "AA=="}});
        let now: Timestamp = "2026-01-01T00:00:05Z".parse().expect("time");
        assert_eq!(ConfigMaps.cells(&obj, now), [json!("c"), json!(2), json!("5s")]);
    }
}
