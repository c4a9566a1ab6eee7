//! HorizontalPodAutoscalers (`autoscaling/v2`): keep a scalable workload's replicas where its
//! pods' resource use meets a target (the controller is `skiff_controllers::hpa`).

use super::template::{default_field, spec_mut};
use super::{AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of};
use crate::field::{ErrorList, FieldError, Path};
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct HorizontalPodAutoscalers;

static INFO: ResourceInfo = ResourceInfo {
    group: "autoscaling",
    version: "v2",
    plural: "horizontalpodautoscalers",
    singular: "horizontalpodautoscaler",
    kind: "HorizontalPodAutoscaler",
    namespaced: true,
    short_names: &["hpa"],
    categories: &["all"],
    verbs: super::VERBS,
    subresources: &[("status", "HorizontalPodAutoscaler", &["get", "patch", "update"])],
};

static COLUMNS: [Column; 7] = [
    NAME_COLUMN,
    Column::new("Reference", 0, "The scale target of the autoscaler."),
    Column::new("Targets", 0, "The current and target values of the metrics."),
    Column::new("MinPods", 0, "The lower limit for the number of replicas."),
    Column::new("MaxPods", 0, "The upper limit for the number of replicas."),
    Column::new("Replicas", 0, "The current number of replicas."),
    AGE_COLUMN,
];

const METRIC_TYPES: &[&str] = &["ContainerResource", "External", "Object", "Pods", "Resource"];
const TARGET_TYPES: &[&str] = &["AverageValue", "Utilization", "Value"];

impl Kind for HorizontalPodAutoscalers {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<HorizontalPodAutoscaler>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<HorizontalPodAutoscaler>(raw)
    }
    /// `SetDefaults_HorizontalPodAutoscaler`: one replica at least, and 80% CPU when no metric
    /// is named.
    fn default(&self, obj: &mut Value) {
        let spec = spec_mut(obj);
        default_field(spec, "minReplicas", json!(1));
        if spec.get("metrics").and_then(Value::as_array).is_none_or(|m| m.is_empty()) {
            spec["metrics"] = json!([{"type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]);
        }
    }
    /// Upstream's `ValidateHorizontalPodAutoscaler`, for what skiff acts on.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let spec = Path::new("spec");
        let target = spec.child("scaleTargetRef");
        for field in ["kind", "name"] {
            if obj.pointer(&format!("/spec/scaleTargetRef/{field}")).and_then(Value::as_str).is_none_or(str::is_empty) {
                errs.push(FieldError::required(&target.child(field), ""));
            }
        }
        let min = obj.pointer("/spec/minReplicas").and_then(Value::as_i64).unwrap_or(1);
        let max = obj.pointer("/spec/maxReplicas").and_then(Value::as_i64).unwrap_or(0);
        if min < 1 {
            errs.push(FieldError::invalid(&spec.child("minReplicas"), min, "must be greater than or equal to 1"));
        }
        if max < 1 {
            errs.push(FieldError::invalid(&spec.child("maxReplicas"), max, "must be greater than 0"));
        } else if max < min {
            errs.push(FieldError::invalid(
                &spec.child("maxReplicas"),
                max,
                "must be greater than or equal to `minReplicas`",
            ));
        }
        for (i, m) in obj.pointer("/spec/metrics").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let mp = spec.child("metrics").index(i);
            match m.get("type").and_then(Value::as_str) {
                None | Some("") => {
                    errs.push(FieldError::required(&mp.child("type"), "must specify a metric source type"))
                }
                Some(t) if !METRIC_TYPES.contains(&t) => {
                    errs.push(FieldError::not_supported(&mp.child("type"), t, METRIC_TYPES))
                }
                Some("Resource") => {
                    let rp = mp.child("resource");
                    if m.pointer("/resource/name").and_then(Value::as_str).is_none_or(str::is_empty) {
                        errs.push(FieldError::required(&rp.child("name"), "must specify a resource name"));
                    }
                    let tp = rp.child("target");
                    match m.pointer("/resource/target/type").and_then(Value::as_str) {
                        None | Some("") => {
                            errs.push(FieldError::required(&tp.child("type"), "must specify a metric target type"))
                        }
                        Some(t) if !TARGET_TYPES.contains(&t) => {
                            errs.push(FieldError::not_supported(&tp.child("type"), t, TARGET_TYPES))
                        }
                        Some("Utilization") => {
                            let u = m.pointer("/resource/target/averageUtilization").and_then(Value::as_i64);
                            match u {
                                None => errs.push(FieldError::required(
                                    &tp.child("averageUtilization"),
                                    "must set either a target raw value or a target utilization",
                                )),
                                Some(u) if u <= 0 => errs.push(FieldError::invalid(
                                    &tp.child("averageUtilization"),
                                    u,
                                    "must be greater than 0",
                                )),
                                Some(_) => {}
                            }
                        }
                        Some(_) => {}
                    }
                }
                Some(_) => {}
            }
        }
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let reference = format!(
            "{}/{}",
            obj.pointer("/spec/scaleTargetRef/kind").and_then(Value::as_str).unwrap_or(""),
            obj.pointer("/spec/scaleTargetRef/name").and_then(Value::as_str).unwrap_or("")
        );
        let int = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        vec![
            json!(meta::name(obj)),
            json!(reference),
            json!(targets(obj)),
            json!(int("/spec/minReplicas").max(1)),
            json!(int("/spec/maxReplicas")),
            json!(int("/status/currentReplicas")),
            json!(meta::age(obj, now)),
        ]
    }
}

/// The TARGETS column: each resource metric as `cpu: 23%/50%` (`<unknown>` before the first
/// measurement), as upstream's printer.
fn targets(obj: &Value) -> String {
    let current = obj.pointer("/status/currentMetrics").and_then(Value::as_array);
    let parts: Vec<String> = obj
        .pointer("/spec/metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m["type"] == "Resource")
        .map(|m| {
            let name = m.pointer("/resource/name").and_then(Value::as_str).unwrap_or("");
            let now = current
                .into_iter()
                .flatten()
                .find(|c| c.pointer("/resource/name").and_then(Value::as_str) == Some(name))
                .and_then(|c| c.pointer("/resource/current/averageUtilization").and_then(Value::as_i64))
                .map_or("<unknown>".to_string(), |u| format!("{u}%"));
            match m.pointer("/resource/target/averageUtilization").and_then(Value::as_i64) {
                Some(t) => format!("{name}: {now}/{t}%"),
                None => {
                    let v = m.pointer("/resource/target/averageValue").and_then(Value::as_str).unwrap_or("");
                    format!("{name}: {now}/{v}")
                }
            }
        })
        .collect();
    if parts.is_empty() { "<none>".into() } else { parts.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa(spec: Value) -> Value {
        let mut obj = json!({"metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": spec});
        HorizontalPodAutoscalers.default(&mut obj);
        obj
    }

    #[test]
    fn defaults_validation_and_columns_as_upstream() {
        let ok = hpa(
            json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3}),
        );
        assert_eq!(ok["spec"]["minReplicas"], 1);
        assert_eq!(ok["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80);
        assert!(HorizontalPodAutoscalers.validate(&ok).is_empty());
        let bad = hpa(json!({"scaleTargetRef": {}, "minReplicas": 0, "maxReplicas": 0,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}}]}));
        let errs: Vec<String> = HorizontalPodAutoscalers.validate(&bad).iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "spec.scaleTargetRef.kind: Required value",
                "spec.scaleTargetRef.name: Required value",
                "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
                "spec.maxReplicas: Invalid value: 0: must be greater than 0",
                "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
            ]
        );
        let mut running = ok.clone();
        running["status"] = json!({"currentReplicas": 2, "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 23}}}]});
        let now: Timestamp = "2026-01-01T00:00:09Z".parse().expect("time");
        assert_eq!(
            HorizontalPodAutoscalers.cells(&running, now),
            [json!("web"), json!("Deployment/web"), json!("cpu: 23%/80%"), json!(1), json!(3), json!(2), json!("9s")]
        );
        assert_eq!(HorizontalPodAutoscalers.cells(&ok, now)[2], json!("cpu: <unknown>/80%"));
    }
}
