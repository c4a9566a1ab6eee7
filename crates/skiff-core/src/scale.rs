//! The `scale` subresource (`autoscaling/v1` Scale) of the kinds that have replicas: their
//! `spec.replicas`, `status.replicas` and `spec.selector`, read and written as one small object.

use crate::field::{FieldError, Path};
use crate::meta;
use crate::selector::LabelSelector;
use crate::status::ApiError;
use serde_json::{Value, json};

/// The Scale of `obj`, as upstream's `scaleFromDeployment` (and ReplicaSet's, StatefulSet's) make it.
pub fn of(obj: &Value) -> Value {
    let md = obj.get("metadata").cloned().unwrap_or_default();
    let mut metadata = json!({});
    for field in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(v) = md.get(field) {
            metadata[field] = v.clone();
        }
    }
    let selector = obj.pointer("/spec/selector").map(LabelSelector::from_api).unwrap_or_default().to_string();
    let mut status = json!({"replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0)});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": metadata,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)}, "status": status})
}

/// The replica count a written Scale asks for (`ValidateScale`), checked against the object it
/// scales: a resourceVersion in the Scale must be the object's.
pub fn requested(scale: &Value, current: &Value, stale: impl FnOnce(&str) -> ApiError) -> Result<i64, ApiError> {
    let name = meta::name(current);
    let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
    if replicas < 0 {
        let err =
            FieldError::invalid(&Path::new("spec").child("replicas"), replicas, "must be greater than or equal to 0");
        return Err(ApiError::Invalid {
            group: "autoscaling".into(),
            kind: "Scale".into(),
            name: name.into(),
            errors: vec![err],
        });
    }
    let wanted = meta::resource_version(scale);
    if !wanted.is_empty() && wanted != meta::resource_version(current) {
        return Err(stale(name));
    }
    Ok(replicas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({"metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7",
            "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"a": "b"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}})
    }

    #[test]
    fn scale_of_a_deployment() {
        assert_eq!(
            of(&deployment()),
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7",
                    "creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=web"}})
        );
    }

    #[test]
    fn written_scales_are_checked() {
        let info = |n: &str| ApiError::Conflict {
            group: "apps".into(),
            resource: "deployments".into(),
            name: n.into(),
            why: crate::status::STALE.into(),
        };
        let d = deployment();
        assert_eq!(requested(&json!({"spec": {"replicas": 5}}), &d, info), Ok(5));
        assert_eq!(requested(&json!({"metadata": {"resourceVersion": "7"}, "spec": {"replicas": 0}}), &d, info), Ok(0));
        let stale = requested(&json!({"metadata": {"resourceVersion": "6"}, "spec": {"replicas": 1}}), &d, info);
        assert_eq!(stale.map_err(|e| e.code()), Err(409));
        let negative = requested(&json!({"spec": {"replicas": -1}}), &d, info).expect_err("negative");
        assert_eq!(
            negative.to_string(),
            "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
    }
}
