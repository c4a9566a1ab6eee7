//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and Kubernetes' strategic
//! merge patch with its `$patch`, `$setElementOrder`, `$deleteFromPrimitiveList` and
//! `$retainKeys` directives.

use crate::ApiError;
use crate::schema::{self, MergeStrategy};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

/// Apply a JSON, merge or strategic patch to `current` (an object of kind `kind`).
pub fn apply(kind: &str, patch_type: PatchType, current: &Value, patch: &Value) -> Result<Value, ApiError> {
    match patch_type {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
                ApiError::BadRequest(format!("the server rejected our request due to an error in our request: {e}"))
            })?;
            let mut doc = current.clone();
            json_patch::patch(&mut doc, &ops).map_err(|e| {
                ApiError::Unprocessable(format!(
                    "the server rejected our request due to an error in our request: {kind} {:?}: {e}",
                    crate::meta::name(current)
                ))
            })?;
            Ok(doc)
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::BadRequest("merge patch must be a JSON object".into()));
            }
            let mut doc = current.clone();
            json_patch::merge(&mut doc, patch);
            Ok(doc)
        }
        PatchType::Strategic => {
            let (Value::Object(cur), Value::Object(p)) = (current, patch) else {
                return Err(ApiError::BadRequest("strategic merge patch must be a JSON object".into()));
            };
            merge_map(cur, p, "").map(Value::Object).map_err(|e| ApiError::BadRequest(e.to_string()))
        }
        PatchType::Apply => Err(ApiError::Internal("apply patches are handled by server-side apply".into())),
    }
}

/// Why a strategic merge patch does not apply to the object: a 400, in the API server's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum StrategicError {
    /// A `$patch` other than `replace`, `delete` or `merge`.
    #[error("Unknown patch type: {0}")]
    UnknownDirective(String),
    /// An element of a list merged by key that is not an object.
    #[error("{path}: list element is not an object")]
    NotAnObject { path: String },
    /// An element of a list merged by key that lacks the key.
    #[error("map: {element} does not contain declared merge key: {key}")]
    MissingMergeKey { element: Value, key: &'static str },
}

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVES: &str = "$deleteFromPrimitiveList/";

/// Remove directives from a value that is inserted as new (no original to merge with).
fn strip(v: &Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                return None;
            }
            let out: Map<String, Value> = m
                .iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .filter_map(|(k, v)| if v.is_null() { None } else { strip(v).map(|s| (k.clone(), s)) })
                .collect();
            Some(Value::Object(out))
        }
        Value::Array(a) => Some(Value::Array(a.iter().filter_map(strip).collect())),
        other => Some(other.clone()),
    }
}

fn merge_map(
    original: &Map<String, Value>,
    patch: &Map<String, Value>,
    path: &str,
) -> Result<Map<String, Value>, StrategicError> {
    match patch.get(DIRECTIVE).and_then(Value::as_str) {
        Some("replace") => {
            return match strip(&Value::Object(patch.clone())) {
                Some(Value::Object(m)) => Ok(m),
                _ => Ok(Map::new()),
            };
        }
        Some("delete") => return Ok(Map::new()),
        Some("merge") | None => {}
        Some(other) => return Err(StrategicError::UnknownDirective(other.to_string())),
    }
    let mut result = original.clone();
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        let child = schema::join(path, k);
        if v.is_null() {
            result.remove(k);
            continue;
        }
        match (result.get(k), v) {
            (Some(Value::Object(o)), Value::Object(p)) => {
                if p.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                    result.remove(k);
                } else {
                    let merged = merge_map(o, p, &child)?;
                    result.insert(k.clone(), Value::Object(merged));
                }
            }
            (Some(Value::Array(o)), Value::Array(p)) => {
                let merged = merge_list(o, p, &child)?;
                result.insert(k.clone(), Value::Array(merged));
            }
            (_, v) => match strip(v) {
                Some(s) => {
                    result.insert(k.clone(), s);
                }
                None => {
                    result.remove(k);
                }
            },
        }
    }
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(DELETE_PRIMITIVES) {
            let remove = v.as_array().cloned().unwrap_or_default();
            if let Some(Value::Array(list)) = result.get_mut(field) {
                list.retain(|x| !remove.contains(x));
            }
        }
    }
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix(SET_ORDER) {
            let order = v.as_array().cloned().unwrap_or_default();
            let key = match schema::merge_strategy(&schema::join(path, field)) {
                MergeStrategy::MergeByKey(key) => Some(key),
                _ => None,
            };
            if let Some(Value::Array(list)) = result.get_mut(field) {
                reorder(list, &order, key);
            }
        }
    }
    if let Some(keep) = patch.get(RETAIN_KEYS).and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        result.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(result)
}

fn key_of<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_object().and_then(|m| m.get(key))
}

fn merge_list(original: &[Value], patch: &[Value], path: &str) -> Result<Vec<Value>, StrategicError> {
    match schema::merge_strategy(path) {
        MergeStrategy::Replace => Ok(patch.iter().filter_map(strip).collect()),
        MergeStrategy::MergePrimitives => {
            let mut out = original.to_vec();
            for p in patch {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
            Ok(out)
        }
        MergeStrategy::MergeByKey(key) => {
            // `{"$patch": "replace"}` as an element replaces the whole list with the other elements.
            if patch.iter().any(|p| key_of(p, DIRECTIVE).and_then(Value::as_str) == Some("replace")) {
                return Ok(patch.iter().filter(|p| key_of(p, DIRECTIVE).is_none()).filter_map(strip).collect());
            }
            let mut out = original.to_vec();
            for p in patch {
                let Some(pm) = p.as_object() else {
                    return Err(StrategicError::NotAnObject { path: path.to_string() });
                };
                let Some(kv) = pm.get(key) else {
                    return Err(StrategicError::MissingMergeKey { element: p.clone(), key });
                };
                let pos = out.iter().position(|o| key_of(o, key) == Some(kv));
                match (pm.get(DIRECTIVE).and_then(Value::as_str), pos) {
                    (Some("delete"), Some(i)) => {
                        out.remove(i);
                    }
                    (Some("delete"), None) => {}
                    (_, Some(i)) => {
                        let merged = match &out[i] {
                            Value::Object(om) => merge_map(om, pm, path)?,
                            _ => pm.clone(),
                        };
                        out[i] = Value::Object(merged);
                    }
                    (_, None) => {
                        if let Some(s) = strip(p) {
                            out.push(s);
                        }
                    }
                }
            }
            Ok(out)
        }
    }
}

/// Order `list` as `order` says; elements the order does not name keep their relative place after.
fn reorder(list: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let ident = |v: &Value| match key {
        Some(k) => key_of(v, k).cloned(),
        None => Some(v.clone()),
    };
    let wanted: Vec<Option<Value>> = order.iter().map(ident).collect();
    let mut ordered = Vec::with_capacity(list.len());
    for w in &wanted {
        if let Some(i) = list.iter().position(|v| ident(v) == *w) {
            ordered.push(list.remove(i));
        }
    }
    ordered.append(list);
    *list = ordered;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(cur: Value, p: Value) -> Value {
        apply("Pod", PatchType::Strategic, &cur, &p).expect("patch applies")
    }

    #[test]
    fn kubectl_apply_patch_shape() {
        let live = json!({"metadata": {"labels": {"tier": "fe", "app": "web"}},
            "spec": {"containers": [
                {"name": "nginx", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}]},
                {"name": "side", "image": "busybox"}]}});
        let patch = json!({"metadata": {"labels": {"tier": null}},
            "spec": {"$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [{"$setElementOrder/env": [{"name": "B"}], "$setElementOrder/ports": [{"containerPort": 80}],
                    "env": [{"$patch": "delete", "name": "A"}], "image": "nginx:1.26", "name": "nginx",
                    "ports": [{"$patch": "delete", "containerPort": 443}]},
                    {"$patch": "delete", "name": "side"}]}});
        let out = smp(live, patch);
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        let cs = out["spec"]["containers"].as_array().expect("containers");
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0]["image"], "nginx:1.26");
        assert_eq!(cs[0]["env"], json!([{"name": "B", "value": "2"}]));
        assert_eq!(cs[0]["ports"], json!([{"containerPort": 80, "protocol": "TCP"}]));
    }

    #[test]
    fn merges_by_key_appends_and_orders() {
        let live = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        let patch = json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "b", "image": "y"}]}});
        let out = smp(live, patch);
        assert_eq!(out["spec"]["containers"], json!([{"name": "b", "image": "y"}, {"name": "a", "image": "x"}]));
    }

    #[test]
    fn atomic_lists_replace_and_primitive_sets_merge() {
        let live = json!({"metadata": {"finalizers": ["a"]}, "spec": {"tolerations": [{"key": "x"}], "containers": [{"name": "c", "args": ["1", "2"]}]}});
        let patch = json!({"metadata": {"finalizers": ["b"], "$deleteFromPrimitiveList/finalizers": ["a"]},
            "spec": {"tolerations": [{"key": "y"}], "containers": [{"name": "c", "args": ["3"]}]}});
        let out = smp(live, patch);
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "y"}]));
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["3"]));
    }

    #[test]
    fn replace_and_retain_keys_directives() {
        let live = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}], "nodeSelector": {"a": "1"}}});
        let patch = json!({"spec": {"nodeSelector": {"$patch": "replace", "b": "2"},
            "volumes": [{"name": "v", "hostPath": {"path": "/x"}, "$retainKeys": ["name", "hostPath"]}]}});
        let out = smp(live, patch);
        assert_eq!(out["spec"]["nodeSelector"], json!({"b": "2"}));
        assert_eq!(out["spec"]["volumes"], json!([{"name": "v", "hostPath": {"path": "/x"}}]));
    }

    #[test]
    fn missing_merge_key_is_an_error() {
        let err = apply(
            "Pod",
            PatchType::Strategic,
            &json!({"spec": {"containers": []}}),
            &json!({"spec": {"containers": [{"image": "x"}]}}),
        );
        assert_eq!(
            err,
            Err(ApiError::BadRequest(r#"map: {"image":"x"} does not contain declared merge key: name"#.into()))
        );
    }

    #[test]
    fn strategic_errors_keep_their_wording() {
        let cur = json!({"spec": {"containers": []}});
        let bad = |p: Value| apply("Pod", PatchType::Strategic, &cur, &p).expect_err("rejected").to_string();
        assert_eq!(bad(json!({"spec": {"$patch": "nope"}})), "Unknown patch type: nope");
        assert_eq!(bad(json!({"spec": {"containers": ["x"]}})), "spec.containers: list element is not an object");
    }

    #[test]
    fn json_and_merge_patches() {
        let cur = json!({"metadata": {"labels": {"a": "1"}}});
        let out =
            apply("Pod", PatchType::Json, &cur, &json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}]))
                .expect("json");
        assert_eq!(out["metadata"]["labels"], json!({"a": "1", "b": "2"}));
        let out = apply("Pod", PatchType::Merge, &cur, &json!({"metadata": {"labels": {"a": null}}})).expect("merge");
        assert_eq!(out["metadata"]["labels"], json!({}));
        assert!(
            apply("Pod", PatchType::Json, &cur, &json!([{"op": "test", "path": "/metadata/labels/a", "value": "9"}]))
                .is_err()
        );
    }
}
