//! PodDisruptionBudgets (`policy/v1`): how many of a set of pods voluntary disruptions (evictions,
//! `kubectl drain`) may take down at once.

use super::template::positive_int_or_percent;
use super::{AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::{meta, selector};
use jiff::Timestamp;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct PodDisruptionBudgets;

static INFO: ResourceInfo = ResourceInfo {
    group: "policy",
    version: "v1",
    plural: "poddisruptionbudgets",
    singular: "poddisruptionbudget",
    kind: "PodDisruptionBudget",
    namespaced: true,
    short_names: &["pdb"],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[("status", "PodDisruptionBudget", &["get", "patch", "update"])],
};

static COLUMNS: [Column; 5] = [
    NAME_COLUMN,
    Column::new(
        "Min Available",
        0,
        "The minimum number of pods that must be available simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\".",
    ),
    Column::new(
        "Max Unavailable",
        0,
        "The maximum number of pods that may be unavailable simultaneously.  This can be either an integer or a string specifying a percentage, e.g. \"28%\".",
    ),
    Column::new("Allowed Disruptions", 0, "Calculated number of pods that may be disrupted at this time."),
    AGE_COLUMN,
];

const EVICTION_POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];

impl Kind for PodDisruptionBudgets {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<PodDisruptionBudget>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<PodDisruptionBudget>(raw)
    }
    /// Upstream's `ValidatePodDisruptionBudget`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let spec = Path::new("spec");
        let (min, max) = (obj.pointer("/spec/minAvailable"), obj.pointer("/spec/maxUnavailable"));
        if min.is_some_and(|v| !v.is_null()) && max.is_some_and(|v| !v.is_null()) {
            errs.push(FieldError::invalid_go(
                &spec,
                BadValue::Go("policy.PodDisruptionBudgetSpec{...}".into()),
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        positive_int_or_percent(obj, "/spec/minAvailable", &spec.child("minAvailable"), true, &mut errs);
        positive_int_or_percent(obj, "/spec/maxUnavailable", &spec.child("maxUnavailable"), true, &mut errs);
        if let Some(sel) = obj.pointer("/spec/selector").filter(|s| !s.is_null()) {
            errs.extend(selector::validate_api(sel, &spec.child("selector")));
        }
        if let Some(p) = obj.pointer("/spec/unhealthyPodEvictionPolicy").and_then(Value::as_str)
            && !EVICTION_POLICIES.contains(&p)
        {
            errs.push(FieldError::not_supported(&spec.child("unhealthyPodEvictionPolicy"), p, EVICTION_POLICIES));
        }
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let either = |p: &str| match obj.pointer(p) {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => "N/A".into(),
        };
        let allowed = obj.pointer("/status/disruptionsAllowed").and_then(Value::as_i64).unwrap_or(0);
        vec![
            json!(meta::name(obj)),
            json!(either("/spec/minAvailable")),
            json!(either("/spec/maxUnavailable")),
            json!(allowed),
            json!(meta::age(obj, now)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(spec: Value) -> Vec<String> {
        let obj = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec});
        PodDisruptionBudgets.validate(&obj).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn validation_and_columns_as_upstream() {
        assert!(errors(json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}})).is_empty());
        assert_eq!(
            errors(json!({"minAvailable": "50%", "maxUnavailable": 1})),
            [
                "spec: Invalid value: policy.PodDisruptionBudgetSpec{...}: minAvailable and maxUnavailable cannot be both set"
            ]
        );
        assert_eq!(
            errors(json!({"maxUnavailable": "150%"})),
            [
                "spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%"
            ]
        );
        let obj = json!({"metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"maxUnavailable": 1},
            "status": {"disruptionsAllowed": 1}});
        let now: Timestamp = "2026-01-01T00:00:09Z".parse().expect("time");
        assert_eq!(
            PodDisruptionBudgets.cells(&obj, now),
            [json!("p"), json!("N/A"), json!("1"), json!(1), json!("9s")]
        );
    }
}
