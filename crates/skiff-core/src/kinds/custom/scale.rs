//! A custom resource's `scale` subresource: the `autoscaling/v1` Scale read from and written to
//! the paths the version's `subresources.scale` names (upstream's `customresource/etcd.go`).

use super::invalid_at;
use crate::field::ErrorList;
use crate::jsonpath::JsonPath;
use crate::status::ApiError;
use serde_json::{Value, json};

/// `specReplicasPath`, `statusReplicasPath`, `labelSelectorPath` (each `.a.b` under the object).
pub(super) struct ScalePaths {
    spec: String,
    status: String,
    selector: Option<String>,
}

/// The object's fields along a simple `.a.b.c` path.
fn fields(path: &str) -> Vec<&str> {
    path.trim_start_matches('.').split('.').filter(|s| !s.is_empty()).collect()
}

fn read<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    JsonPath::parse(path).ok().and_then(|p| p.first(obj))
}

impl ScalePaths {
    /// From a version's `subresources.scale`, if it has one.
    pub(super) fn new(scale: Option<&Value>) -> Option<ScalePaths> {
        let scale = scale?.as_object()?;
        let text = |f: &str| scale.get(f).and_then(Value::as_str).map(str::to_string);
        Some(ScalePaths {
            spec: text("specReplicasPath").unwrap_or_default(),
            status: text("statusReplicasPath").unwrap_or_default(),
            selector: text("labelSelectorPath").filter(|s| !s.is_empty()),
        })
    }

    /// The Scale of `obj`: 0 replicas when the spec path holds none yet, so that `kubectl
    /// scale` can set them (upstream's GET answers 500 then; its updates start from 0 too).
    pub(super) fn scale_of(&self, obj: &Value) -> Result<Value, ApiError> {
        let replicas = read(obj, &self.spec).and_then(Value::as_i64).unwrap_or(0);
        let md = obj.get("metadata").cloned().unwrap_or_default();
        let mut metadata = json!({});
        for field in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
            if let Some(v) = md.get(field) {
                metadata[field] = v.clone();
            }
        }
        let mut status = json!({"replicas": read(obj, &self.status).and_then(Value::as_i64).unwrap_or(0)});
        if let Some(selector) = self.selector.as_deref().and_then(|p| read(obj, p)).and_then(Value::as_str) {
            status["selector"] = json!(selector);
        }
        Ok(json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": metadata,
            "spec": {"replicas": replicas}, "status": status}))
    }

    /// Write `replicas` at the spec path, making the objects on the way.
    pub(super) fn set_replicas(&self, obj: &mut Value, replicas: i64) -> Result<(), ApiError> {
        let path = fields(&self.spec);
        let Some((last, parents)) = path.split_last() else {
            return Err(ApiError::BadRequest(format!("the spec replicas field {:?} cannot be empty", self.spec)));
        };
        let mut at = obj;
        for p in parents {
            if !at.get(*p).is_some_and(Value::is_object) {
                at[*p] = json!({});
            }
            at = &mut at[*p];
        }
        at[*last] = json!(replicas);
        Ok(())
    }

    /// The spec replicas, when present, must be a non-negative int32.
    pub(super) fn validate(&self, obj: &Value) -> ErrorList {
        let Some(v) = read(obj, &self.spec) else {
            return vec![];
        };
        match v.as_i64() {
            Some(n) if n < 0 => vec![invalid_at(&self.spec, n, "should be a non-negative integer")],
            Some(n) if n > i64::from(i32::MAX) => {
                vec![invalid_at(&self.spec, n, "should be less than or equal to 2147483647")]
            }
            Some(_) => vec![],
            None => vec![invalid_at(
                &self.spec,
                v.clone(),
                &format!(
                    ".{} accessor error: {v} is of the type {}, expected int64",
                    fields(&self.spec).join("."),
                    go_type(v)
                ),
            )],
        }
    }
}

/// The Go type an unstructured value decodes to, as accessor errors name it.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::Null => "<nil>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> ScalePaths {
        ScalePaths::new(Some(&json!({"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector"})))
        .expect("paths")
    }

    #[test]
    fn scale_reads_and_writes_the_named_paths() {
        let p = paths();
        let mut obj = json!({"metadata": {"name": "w", "namespace": "d", "uid": "u", "resourceVersion": "7", "labels": {}},
            "spec": {"replicas": 2}, "status": {"replicas": 1, "selector": "app=w"}});
        assert_eq!(
            p.scale_of(&obj).expect("scale"),
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": "w", "namespace": "d", "uid": "u", "resourceVersion": "7"},
                "spec": {"replicas": 2}, "status": {"replicas": 1, "selector": "app=w"}})
        );
        p.set_replicas(&mut obj, 5).expect("set");
        assert_eq!(obj["spec"]["replicas"], 5);
        let mut bare = json!({"metadata": {"name": "w"}});
        assert_eq!(p.scale_of(&bare).expect("scale")["spec"]["replicas"], 0);
        p.set_replicas(&mut bare, 1).expect("set");
        assert_eq!(bare["spec"]["replicas"], 1);
    }

    #[test]
    fn spec_replicas_must_be_a_non_negative_int32() {
        let p = paths();
        let errs = |obj: Value| p.validate(&obj).iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            errs(json!({"spec": {"replicas": -1}})),
            [".spec.replicas: Invalid value: -1: should be a non-negative integer"]
        );
        assert_eq!(
            errs(json!({"spec": {"replicas": 3_000_000_000_i64}})),
            [".spec.replicas: Invalid value: 3000000000: should be less than or equal to 2147483647"]
        );
        assert!(errs(json!({"spec": {"replicas": 3}})).is_empty());
        assert!(errs(json!({"spec": {}})).is_empty());
    }
}
