//! DaemonSets (`apps/v1`): one pod from a template on every eligible node.

use super::template::{self, WIDE_COLUMNS, count, default_field, non_negative, spec_mut};
use super::{AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of};
use crate::field::{ErrorList, FieldError, Path};
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct DaemonSets;

static INFO: ResourceInfo = ResourceInfo {
    group: "apps",
    version: "v1",
    plural: "daemonsets",
    singular: "daemonset",
    kind: "DaemonSet",
    namespaced: true,
    short_names: &["ds"],
    categories: &["all"],
    verbs: super::VERBS,
    subresources: &[("status", "DaemonSet", &["get", "patch", "update"])],
};

static COLUMNS: [Column; 11] = [
    NAME_COLUMN,
    Column::new(
        "Desired",
        0,
        "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    Column::new(
        "Current",
        0,
        "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/",
    ),
    Column::new(
        "Ready",
        0,
        "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.",
    ),
    Column::new("Up-to-date", 0, "The total number of nodes that are running updated daemon pod"),
    Column::new(
        "Available",
        0,
        "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
    ),
    Column::new(
        "Node Selector",
        0,
        "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/",
    ),
    AGE_COLUMN,
    WIDE_COLUMNS[0],
    WIDE_COLUMNS[1],
    WIDE_COLUMNS[2],
];

const STRATEGIES: &[&str] = &["OnDelete", "RollingUpdate"];

/// `labels.FormatLabels`: `k=v` pairs sorted, or `<none>`.
fn node_selector(obj: &Value) -> String {
    let pairs: Vec<String> = obj
        .pointer("/spec/template/spec/nodeSelector")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if pairs.is_empty() { "<none>".into() } else { pairs.join(",") }
}

impl Kind for DaemonSets {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<DaemonSet>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<DaemonSet>(raw)
    }
    /// apps/v1 `SetDefaults_DaemonSet`.
    fn default(&self, obj: &mut Value) {
        let spec = spec_mut(obj);
        if !spec.get("updateStrategy").is_some_and(Value::is_object) {
            spec["updateStrategy"] = json!({});
        }
        let strategy = &mut spec["updateStrategy"];
        if strategy.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
            strategy["type"] = json!("RollingUpdate");
        }
        if strategy["type"] == "RollingUpdate" {
            if !strategy.get("rollingUpdate").is_some_and(Value::is_object) {
                strategy["rollingUpdate"] = json!({});
            }
            for (field, default) in [("maxUnavailable", 1), ("maxSurge", 0)] {
                default_field(&mut strategy["rollingUpdate"], field, json!(default));
            }
        }
        default_field(spec, "revisionHistoryLimit", json!(10));
        template::default(obj, "/spec/template");
    }
    /// Upstream's `ValidateDaemonSet`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let spec = Path::new("spec");
        let selector = template::validate_selector(obj, "daemonset", &mut errs);
        let tmpl = obj.pointer("/spec/template").unwrap_or(&Value::Null);
        errs.extend(template::validate_for_replicas(tmpl, &selector, &spec.child("template"), "DaemonSet"));
        non_negative(obj, "/spec/minReadySeconds", &spec.child("minReadySeconds"), &mut errs);
        non_negative(obj, "/spec/templateGeneration", &spec.child("templateGeneration"), &mut errs);
        non_negative(obj, "/spec/revisionHistoryLimit", &spec.child("revisionHistoryLimit"), &mut errs);
        let strategy = spec.child("updateStrategy");
        match obj.pointer("/spec/updateStrategy/type").and_then(Value::as_str).unwrap_or("") {
            "OnDelete" => {}
            "RollingUpdate" => template::validate_rolling_update(
                obj,
                "/spec/updateStrategy/rollingUpdate",
                &strategy.child("rollingUpdate"),
                &mut errs,
            ),
            other => errs.push(FieldError::not_supported(&strategy.child("type"), other, STRATEGIES)),
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
        let [containers, images, selector] = template::wide_cells(obj, "/spec/template", "/spec/selector");
        vec![
            json!(meta::name(obj)),
            json!(count(obj, "/status/desiredNumberScheduled")),
            json!(count(obj, "/status/currentNumberScheduled")),
            json!(count(obj, "/status/numberReady")),
            json!(count(obj, "/status/updatedNumberScheduled")),
            json!(count(obj, "/status/numberAvailable")),
            json!(node_selector(obj)),
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

    #[test]
    fn defaults_and_rules_as_apps_v1() {
        let mut ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"metadata": {"labels": {"app": "agent"}},
            "spec": {"nodeSelector": {"disk": "ssd"}, "containers": [{"name": "a", "image": "busybox"}]}}}});
        DaemonSets.default(&mut ds);
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert!(DaemonSets.validate(&ds).is_empty());
        assert_eq!(node_selector(&ds), "disk=ssd");
        ds["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        let errs: Vec<String> = DaemonSets.validate(&ds).iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet is not Supported"
            ]
        );
    }
}
