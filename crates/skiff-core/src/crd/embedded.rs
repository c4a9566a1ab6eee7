//! Objects marked `x-kubernetes-embedded-resource` inside a custom resource (upstream's
//! `objectmeta.Validate`): they need `apiVersion` and `kind`, well formed, and sane metadata.
//! Metadata checks cover what the embedded object's JSON can show without a typed decode: it must
//! be an object, and its name, generateName, namespace, labels and annotations follow ObjectMeta's
//! rules (names as path segments).

use super::gofmt;
use super::schema::Schema;
use crate::field::{ErrorList, FieldError, Path};
use crate::names;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Check the embedded resources in `value` under `base`; with `is_resource_root` the value
/// itself is one (as for a default of an embedded-resource property).
pub fn validate_embedded_resources(schema: &Schema, value: &Value, base: &Path, is_resource_root: bool) -> ErrorList {
    let mut errs = Vec::new();
    walk(base, value, schema, is_resource_root, &mut errs);
    errs
}

fn walk(path: &Path, x: &Value, s: &Schema, embedded: bool, errs: &mut ErrorList) {
    match x {
        Value::Object(map) => {
            if embedded || s.x_embedded_resource {
                resource(path, map, errs);
            }
            for (k, v) in map {
                if let Some(prop) = s.property(k) {
                    walk(&path.child(k), v, prop, false, errs);
                } else if let Some(extra) = s.additional_schema() {
                    walk(&path.key(k), v, extra, false, errs);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = s.items_schema() {
                for (i, v) in items.iter().enumerate() {
                    walk(&path.index(i), v, item, false, errs);
                }
            }
        }
        _ => {}
    }
}

fn resource(path: &Path, x: &Map<String, Value>, errs: &mut ErrorList) {
    for key in ["apiVersion", "kind"] {
        if !x.contains_key(key) {
            errs.push(FieldError::required(&path.child(key), "must not be empty"));
        }
    }
    for (k, v) in x {
        let p = path.child(k);
        match (k.as_str(), v) {
            ("apiVersion" | "kind", Value::String(s)) if s.is_empty() => {
                errs.push(FieldError::invalid(&p, "", "must not be empty"));
            }
            // `ParseGroupVersion`: at most one slash.
            ("apiVersion", Value::String(s)) if s.matches('/').count() > 1 => {
                errs.push(FieldError::invalid(&p, s.as_str(), format!("unexpected GroupVersion string: {s}")));
            }
            ("apiVersion", Value::String(_)) => {}
            ("kind", Value::String(s)) => {
                let msgs = names::dns1035_label(&s.to_lowercase());
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        &p,
                        s.as_str(),
                        format!("may have mixed case, but should otherwise match: {}", msgs.join(",")),
                    ));
                }
            }
            ("apiVersion" | "kind", other) => {
                errs.push(FieldError::invalid_go(&p, gofmt::bad_value(other), "must be a string"));
            }
            ("metadata", Value::Object(meta)) => metadata(&p, meta, errs),
            ("metadata", other) => errs.push(FieldError::invalid_go(
                &p,
                gofmt::bad_value(other),
                format!("json: cannot unmarshal {} into Go value of type v1.ObjectMeta", json_kind(other)),
            )),
            _ => {}
        }
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        _ => "object",
    }
}

/// `ValidateObjectMeta` with path-segment names; an empty name is allowed.
fn metadata(path: &Path, meta: &Map<String, Value>, errs: &mut ErrorList) {
    let text = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or("");
    let generate = text("generateName");
    if !generate.is_empty() {
        for msg in ["/", "%"].iter().filter(|c| generate.contains(*c)).map(|c| format!("may not contain '{c}'")) {
            errs.push(FieldError::invalid(&path.child("generateName"), generate, msg));
        }
    }
    let name = text("name");
    if !name.is_empty() {
        errs.extend(names::invalid_all(&path.child("name"), name, names::path_segment_name(name)));
    }
    let ns = text("namespace");
    if !ns.is_empty() {
        errs.extend(names::invalid_all(&path.child("namespace"), ns, names::dns1123_label(ns)));
    }
    let map = |k: &str| -> BTreeMap<String, String> {
        meta.get(k)
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
            .unwrap_or_default()
    };
    errs.extend(names::validate_labels(Some(&map("labels")), &path.child("labels")));
    errs.extend(names::validate_annotations(Some(&map("annotations")), &path.child("annotations")));
}
