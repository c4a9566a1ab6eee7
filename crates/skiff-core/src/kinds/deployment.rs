//! Deployments (`apps/v1`): replicas of a pod template rolled out through ReplicaSets.

use super::template::{self, WIDE_COLUMNS, count, default_field, non_negative, spec_mut};
use super::{AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of};
use crate::field::{ErrorList, FieldError, Path};
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct Deployments;

static INFO: ResourceInfo = ResourceInfo {
    group: "apps",
    version: "v1",
    plural: "deployments",
    singular: "deployment",
    kind: "Deployment",
    namespaced: true,
    short_names: &["deploy"],
    categories: &["all"],
    verbs: super::VERBS,
    subresources: &[
        ("scale", "autoscaling/v1/Scale", &["get", "patch", "update"]),
        ("status", "Deployment", &["get", "patch", "update"]),
    ],
};

static COLUMNS: [Column; 8] = [
    NAME_COLUMN,
    Column::new("Ready", 0, "Number of the pod with ready state"),
    Column::new(
        "Up-to-date",
        0,
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
    ),
    Column::new(
        "Available",
        0,
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
    ),
    AGE_COLUMN,
    WIDE_COLUMNS[0],
    WIDE_COLUMNS[1],
    WIDE_COLUMNS[2],
];

const STRATEGIES: &[&str] = &["Recreate", "RollingUpdate"];

impl Kind for Deployments {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<Deployment>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<Deployment>(raw)
    }
    /// apps/v1 `SetDefaults_Deployment`.
    fn default(&self, obj: &mut Value) {
        let spec = spec_mut(obj);
        default_field(spec, "replicas", json!(1));
        if !spec.get("strategy").is_some_and(Value::is_object) {
            spec["strategy"] = json!({});
        }
        let strategy = &mut spec["strategy"];
        if strategy.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
            strategy["type"] = json!("RollingUpdate");
        }
        if strategy["type"] == "RollingUpdate" {
            if !strategy.get("rollingUpdate").is_some_and(Value::is_object) {
                strategy["rollingUpdate"] = json!({});
            }
            for field in ["maxUnavailable", "maxSurge"] {
                default_field(&mut strategy["rollingUpdate"], field, json!("25%"));
            }
        }
        default_field(spec, "revisionHistoryLimit", json!(10));
        default_field(spec, "progressDeadlineSeconds", json!(600));
        template::default(obj, "/spec/template");
    }
    /// Upstream's `ValidateDeployment`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let spec = Path::new("spec");
        non_negative(obj, "/spec/replicas", &spec.child("replicas"), &mut errs);
        let selector = template::validate_selector(obj, "deployment", &mut errs);
        let tmpl = obj.pointer("/spec/template").unwrap_or(&Value::Null);
        errs.extend(template::validate_for_replicas(tmpl, &selector, &spec.child("template"), "ReplicaSet"));
        let strategy = spec.child("strategy");
        match obj.pointer("/spec/strategy/type").and_then(Value::as_str).unwrap_or("") {
            "Recreate" if obj.pointer("/spec/strategy/rollingUpdate").is_some_and(|r| !r.is_null()) => {
                errs.push(FieldError::forbidden(
                    &strategy.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
            "Recreate" => {}
            "RollingUpdate" => {
                template::validate_rolling_update(
                    obj,
                    "/spec/strategy/rollingUpdate",
                    &strategy.child("rollingUpdate"),
                    &mut errs,
                );
            }
            other => errs.push(FieldError::not_supported(&strategy.child("type"), other, STRATEGIES)),
        }
        non_negative(obj, "/spec/minReadySeconds", &spec.child("minReadySeconds"), &mut errs);
        non_negative(obj, "/spec/revisionHistoryLimit", &spec.child("revisionHistoryLimit"), &mut errs);
        if let Some(deadline) = obj.pointer("/spec/progressDeadlineSeconds").and_then(Value::as_i64) {
            non_negative(obj, "/spec/progressDeadlineSeconds", &spec.child("progressDeadlineSeconds"), &mut errs);
            if deadline <= count(obj, "/spec/minReadySeconds") {
                errs.push(FieldError::invalid(
                    &spec.child("progressDeadlineSeconds"),
                    deadline,
                    "must be greater than minReadySeconds",
                ));
            }
        }
        errs
    }
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        template::validate_selector_unchanged(old, new, &mut errs);
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let ready = format!("{}/{}", count(obj, "/status/readyReplicas"), count(obj, "/spec/replicas"));
        let [containers, images, selector] = template::wide_cells(obj, "/spec/template", "/spec/selector");
        vec![
            json!(meta::name(obj)),
            json!(ready),
            json!(count(obj, "/status/updatedReplicas")),
            json!(count(obj, "/status/availableReplicas")),
            json!(meta::age(obj, now)),
            containers,
            images,
            selector,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(spec: Value) -> Value {
        let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"}, "spec": spec});
        Deployments.default(&mut obj);
        obj
    }

    fn web() -> Value {
        json!({"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}})
    }

    fn errors(obj: &Value) -> Vec<String> {
        Deployments.validate(obj).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_as_apps_v1() {
        let d = deployment(web());
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(
            (d["spec"]["revisionHistoryLimit"].clone(), d["spec"]["progressDeadlineSeconds"].clone()),
            (json!(10), json!(600))
        );
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert!(errors(&d).is_empty(), "{:?}", errors(&d));
        let recreate = deployment(json!({"strategy": {"type": "Recreate"}}));
        assert!(recreate["spec"]["strategy"].get("rollingUpdate").is_none());
    }

    #[test]
    fn validation_as_upstream() {
        let mut spec = web();
        spec["replicas"] = json!(-1);
        spec["template"]["metadata"]["labels"] = json!({"app": "api"});
        spec["minReadySeconds"] = json!(700);
        assert_eq!(
            errors(&deployment(spec)),
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\"}: `selector` does not match template `labels`",
                "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
            ]
        );
        let mut spec = web();
        spec["strategy"] = json!({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}});
        assert_eq!(
            errors(&deployment(spec)),
            ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]
        );
        let mut spec = web();
        spec["strategy"] = json!({"type": "BlueGreen"});
        assert_eq!(
            errors(&deployment(spec)),
            ["spec.strategy.type: Unsupported value: \"BlueGreen\": supported values: \"Recreate\", \"RollingUpdate\""]
        );
        let d = deployment(web());
        let mut moved = d.clone();
        moved["spec"]["selector"] = json!({"matchLabels": {"app": "web", "v": "2"}});
        moved["spec"]["template"]["metadata"]["labels"]["v"] = json!("2");
        let errs: Vec<String> = Deployments.validate_update(&d, &moved).iter().map(ToString::to_string).collect();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].ends_with("field is immutable"), "{errs:?}");
    }

    #[test]
    fn table_row_as_kubectl_prints_it() {
        let mut d = deployment(web());
        d["spec"]["replicas"] = json!(3);
        d["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        d["status"] = json!({"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2});
        let now: Timestamp = "2026-01-01T00:02:00Z".parse().expect("time");
        assert_eq!(
            Deployments.cells(&d, now),
            [
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("2m"),
                json!("nginx"),
                json!("nginx"),
                json!("app=web")
            ]
        );
    }
}
