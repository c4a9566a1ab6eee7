//! Reading and checking `metadata` of objects held as JSON.

use crate::field::{ErrorList, FieldError, Path};
use crate::names;
use serde_json::Value;
use std::collections::BTreeMap;

pub fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

pub fn namespace(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("")
}

pub fn uid(obj: &Value) -> &str {
    obj.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("")
}

pub fn resource_version(obj: &Value) -> &str {
    obj.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("")
}

/// The AGE column: time since `metadata.creationTimestamp`.
pub fn age(obj: &Value, now: jiff::Timestamp) -> String {
    crate::time::since(crate::time::parse(obj.pointer("/metadata/creationTimestamp").and_then(Value::as_str)), now)
}

pub fn str_map(obj: &Value, field: &str) -> BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    str_map(obj, "labels")
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

/// Mutable access to `metadata`, creating it when absent.
pub fn metadata_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Default::default());
    }
    match obj.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

/// `ValidateObjectMeta`: name (as DNS subdomain, or label for `label_names` kinds), labels, annotations.
pub fn validate(obj: &Value, namespaced: bool, label_names: bool) -> ErrorList {
    let rule = if label_names { names::dns1123_label } else { names::dns1123_subdomain };
    validate_with(obj, namespaced, rule)
}

/// [`validate`] with the kind's own name rule (Services: `names::dns1035_label`).
pub fn validate_with(obj: &Value, namespaced: bool, name_rule: fn(&str) -> Vec<String>) -> ErrorList {
    let path = Path::new("metadata");
    let mut errs = Vec::new();
    let n = name(obj);
    if n.is_empty() {
        errs.push(FieldError::required(&path.child("name"), "name or generateName is required"));
    } else {
        errs.extend(names::invalid_all(&path.child("name"), n, name_rule(n)));
    }
    // A generated name is the prefix plus five characters: the prefix must make a valid name with a
    // trailing dash allowed (upstream masks it before checking).
    let prefix = obj.pointer("/metadata/generateName").and_then(Value::as_str).unwrap_or("");
    if !prefix.is_empty() {
        let masked = match prefix.strip_suffix('-') {
            Some(head) => format!("{head}a"),
            None => prefix.to_string(),
        };
        errs.extend(names::invalid_all(&path.child("generateName"), prefix, name_rule(&masked)));
    }
    let ns = namespace(obj);
    if namespaced {
        if ns.is_empty() {
            errs.push(FieldError::required(&path.child("namespace"), ""));
        } else {
            errs.extend(names::invalid_all(&path.child("namespace"), ns, names::dns1123_label(ns)));
        }
    } else if !ns.is_empty() {
        errs.push(FieldError::forbidden(&path.child("namespace"), "not allowed on this type"));
    }
    let labels = labels(obj);
    errs.extend(names::validate_labels(Some(&labels), &path.child("labels")));
    let annotations = str_map(obj, "annotations");
    errs.extend(names::validate_annotations(Some(&annotations), &path.child("annotations")));
    errs
}

/// Fields present in `raw` that the typed decode dropped: the unknown fields strict decoding rejects.
pub fn unknown_fields(raw: &Value, canonical: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_unknown(raw, canonical, "", &mut out);
    out
}

fn walk_unknown(raw: &Value, canon: &Value, prefix: &str, out: &mut Vec<String>) {
    match (raw, canon) {
        (Value::Object(r), Value::Object(c)) => {
            for (k, v) in r {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                match c.get(k) {
                    Some(cv) => walk_unknown(v, cv, &p, out),
                    None if v.is_null() => {}
                    // Free-form maps (labels, fieldsV1, ...) round-trip whole, so a missing key is unknown.
                    None => out.push(p),
                }
            }
        }
        (Value::Array(r), Value::Array(c)) => {
            for (i, (rv, cv)) in r.iter().zip(c).enumerate() {
                walk_unknown(rv, cv, &format!("{prefix}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_unknown_fields_with_paths() {
        let raw = json!({"spec": {"foo": 1, "containers": [{"name": "a", "bogus": true}], "n": null}});
        let canon = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(unknown_fields(&raw, &canon), vec!["spec.foo", "spec.containers[0].bogus"]);
    }

    #[test]
    fn metadata_validation() {
        let obj = json!({"metadata": {"name": "Bad_Name", "namespace": "default", "labels": {"a": "-"}}});
        let errs = validate(&obj, true, false);
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].field.as_str(), "metadata.name");
        assert_eq!(errs[1].field.as_str(), "metadata.labels");
        let ok = json!({"metadata": {"name": "web-x1z2q", "generateName": "web-", "namespace": "default"}});
        assert!(validate(&ok, true, false).is_empty());
        let long = json!({"metadata": {"name": "w", "generateName": "w".repeat(300), "namespace": "default"}});
        let errs = validate(&long, true, false);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            format!(
                "metadata.generateName: Invalid value: \"{}\": must be no more than 253 characters",
                "w".repeat(300)
            )
        );
    }
}
