//! ReplicaSets (`apps/v1`): a number of pods from one template, kept by the ReplicaSet
//! controller; what Deployments roll out.

use super::template::{self, WIDE_COLUMNS, count, default_field, non_negative, spec_mut};
use super::{AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of};
use crate::field::{ErrorList, Path};
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct ReplicaSets;

static INFO: ResourceInfo = ResourceInfo {
    group: "apps",
    version: "v1",
    plural: "replicasets",
    singular: "replicaset",
    kind: "ReplicaSet",
    namespaced: true,
    short_names: &["rs"],
    categories: &["all"],
    verbs: super::VERBS,
    subresources: &[
        ("scale", "autoscaling/v1/Scale", &["get", "patch", "update"]),
        ("status", "ReplicaSet", &["get", "patch", "update"]),
    ],
};

static COLUMNS: [Column; 8] = [
    NAME_COLUMN,
    Column::new(
        "Desired",
        0,
        "Number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller",
    ),
    Column::new(
        "Current",
        0,
        "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset",
    ),
    Column::new("Ready", 0, "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."),
    AGE_COLUMN,
    WIDE_COLUMNS[0],
    WIDE_COLUMNS[1],
    WIDE_COLUMNS[2],
];

impl Kind for ReplicaSets {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<ReplicaSet>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<ReplicaSet>(raw)
    }
    /// apps/v1 `SetDefaults_ReplicaSet`.
    fn default(&self, obj: &mut Value) {
        default_field(spec_mut(obj), "replicas", json!(1));
        template::default(obj, "/spec/template");
    }
    /// Upstream's `ValidateReplicaSet` (whose empty-selector message names deployments).
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let spec = Path::new("spec");
        non_negative(obj, "/spec/replicas", &spec.child("replicas"), &mut errs);
        non_negative(obj, "/spec/minReadySeconds", &spec.child("minReadySeconds"), &mut errs);
        let selector = template::validate_selector(obj, "deployment", &mut errs);
        let tmpl = obj.pointer("/spec/template").unwrap_or(&Value::Null);
        errs.extend(template::validate_for_replicas(tmpl, &selector, &spec.child("template"), "ReplicaSet"));
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
            json!(count(obj, "/spec/replicas")),
            json!(count(obj, "/status/replicas")),
            json!(count(obj, "/status/readyReplicas")),
            json!(meta::age(obj, now)),
            containers,
            images,
            selector,
        ]
    }
}
