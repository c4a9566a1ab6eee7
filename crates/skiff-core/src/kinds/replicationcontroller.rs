//! ReplicationControllers (core/v1): ReplicaSets' predecessor, a number of pods from one
//! template selected by a plain label map, kept by the replication controller (the ReplicaSet
//! controller run over them). Still served: kubectl's default prune set and `get all` include them.

use super::template::{self, WIDE_COLUMNS, count, default_field, non_negative, spec_mut};
use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, Part, ResourceInfo, TypedSchema, roundtrip, schema_of,
};
use crate::field::{ErrorList, FieldError, Path};
use crate::meta;
use crate::selector::LabelSelector;
use crate::status::ApiError;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ReplicationController;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct ReplicationControllers;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    plural: "replicationcontrollers",
    singular: "replicationcontroller",
    kind: "ReplicationController",
    namespaced: true,
    short_names: &["rc"],
    categories: &["all"],
    verbs: super::VERBS,
    subresources: &[
        ("scale", "autoscaling/v1/Scale", &["get", "patch", "update"]),
        ("status", "ReplicationController", &["get", "patch", "update"]),
    ],
};

/// A count column: upstream's printer types them `integer`.
const fn integer(name: &'static str, description: &'static str) -> Column {
    Column { data_type: "integer", ..Column::new(name, 0, description) }
}

/// Upstream's `replicationControllerColumnDefinitions`.
static COLUMNS: [Column; 8] = [
    NAME_COLUMN,
    integer(
        "Desired",
        "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
    ),
    integer(
        "Current",
        "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller",
    ),
    integer("Ready", "The number of ready replicas for this replication controller."),
    AGE_COLUMN,
    WIDE_COLUMNS[0],
    WIDE_COLUMNS[1],
    Column::new(
        "Selector",
        1,
        "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
    ),
];

/// The selector: `spec.selector`, a map of labels every pod must have (`labels.Set.AsSelector`).
fn selector(obj: &Value) -> LabelSelector {
    LabelSelector::from_api(&json!({"matchLabels": obj.pointer("/spec/selector")}))
}

/// Upstream's `ValidateReplicationControllerSpec`.
fn validate_spec(obj: &Value, errs: &mut ErrorList) {
    let spec = Path::new("spec");
    non_negative(obj, "/spec/minReadySeconds", &spec.child("minReadySeconds"), errs);
    let selector = selector(obj);
    if selector.is_empty() {
        errs.push(FieldError::required(&spec.child("selector"), ""));
    }
    non_negative(obj, "/spec/replicas", &spec.child("replicas"), errs);
    let tmpl = obj.pointer("/spec/template").unwrap_or(&Value::Null);
    errs.extend(template::validate_for_replicas(tmpl, &selector, &spec.child("template"), "ReplicationController"));
}

/// Upstream's `ValidateReplicationControllerStatus`.
fn validate_status(obj: &Value) -> ErrorList {
    let mut errs = Vec::new();
    let status = Path::new("status");
    for field in ["replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration"] {
        non_negative(obj, &format!("/status/{field}"), &status.child(field), &mut errs);
    }
    let n = |field: &str| count(obj, &format!("/status/{field}"));
    for field in ["fullyLabeledReplicas", "readyReplicas", "availableReplicas"] {
        if n(field) > n("replicas") {
            errs.push(FieldError::invalid(&status.child(field), n(field), "cannot be greater than status.replicas"));
        }
    }
    if n("availableReplicas") > n("readyReplicas") {
        errs.push(FieldError::invalid(
            &status.child("availableReplicas"),
            n("availableReplicas"),
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}

impl Kind for ReplicationControllers {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<ReplicationController>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<ReplicationController>(raw)
    }
    /// core/v1 `SetDefaults_ReplicationController`: the selector, and the controller's labels,
    /// are the template's labels when unset; one replica.
    fn default(&self, obj: &mut Value) {
        let labels =
            obj.pointer("/spec/template/metadata/labels").filter(|l| l.as_object().is_some_and(|m| !m.is_empty()));
        if let Some(labels) = labels.cloned() {
            let spec = spec_mut(obj);
            if spec.get("selector").and_then(Value::as_object).is_none_or(serde_json::Map::is_empty) {
                spec["selector"] = labels.clone();
            }
            if meta::labels(obj).is_empty() {
                meta::metadata_mut(obj).insert("labels".into(), labels);
            }
        }
        default_field(spec_mut(obj), "replicas", json!(1));
        template::default(obj, "/spec/template");
    }
    /// Upstream's `PrepareForCreate`: the zero status.
    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({"replicas": 0});
    }
    /// Upstream's `ValidateReplicationController`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        validate_spec(obj, &mut errs);
        errs
    }
    /// Upstream's strategy runs `ValidateReplicationController` and then
    /// `ValidateReplicationControllerUpdate`, which validates the spec again: its errors are
    /// causes twice (the message words each once). The selector may change.
    fn validate_update(&self, _old: &Value, new: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        validate_spec(new, &mut errs);
        errs
    }
    fn validate_part_update(&self, part: Part, old: &Value, new: &Value) -> ErrorList {
        match part {
            Part::Status => validate_status(new),
            _ => self.validate_update(old, new),
        }
    }
    /// The Scale's selector is the map's, as a selector string.
    fn scale(&self, obj: &Value) -> Result<Value, ApiError> {
        let mut scale = crate::scale::of(obj);
        let selector = selector(obj).to_string();
        if let Some(status) = scale.get_mut("status").and_then(Value::as_object_mut) {
            if selector.is_empty() {
                status.remove("selector");
            } else {
                status.insert("selector".into(), json!(selector));
            }
        }
        Ok(scale)
    }
    /// Upstream's `ControllerToSelectableFields`: the metadata's, and `status.replicas`.
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "metadata.name" => Some(meta::name(obj).to_string()),
            "metadata.namespace" => Some(meta::namespace(obj).to_string()),
            "status.replicas" => Some(count(obj, "/status/replicas").to_string()),
            _ => None,
        }
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    /// Upstream's `printReplicationController`.
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let [containers, images, selector] = template::wide_cells_with(obj, "/spec/template", &selector(obj));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An RC as a create makes it: decoded, defaulted, prepared.
    fn rc(spec: Value) -> Value {
        let raw = json!({"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "web", "namespace": "default"}, "spec": spec});
        let mut obj = ReplicationControllers.normalize(&raw).expect("decodes");
        ReplicationControllers.default(&mut obj);
        ReplicationControllers.prepare_create(&mut obj);
        obj
    }

    fn web() -> Value {
        json!({"template": {"metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}})
    }

    fn errors(errs: ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_from_the_template() {
        let obj = rc(web());
        assert_eq!(obj["spec"]["selector"], json!({"app": "web", "tier": "front"}));
        assert_eq!(obj["metadata"]["labels"], json!({"app": "web", "tier": "front"}));
        assert_eq!(obj["spec"]["replicas"], 1);
        assert_eq!(obj["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(obj["status"], json!({"replicas": 0}));
        assert!(
            ReplicationControllers.validate(&obj).is_empty(),
            "{:?}",
            errors(ReplicationControllers.validate(&obj))
        );
        // what is set stays
        let mut spec = web();
        spec["selector"] = json!({"app": "web"});
        spec["replicas"] = json!(0);
        let mut obj = rc(spec);
        obj["metadata"]["labels"] = json!({"team": "a"});
        ReplicationControllers.default(&mut obj);
        assert_eq!(
            (&obj["spec"]["selector"], &obj["spec"]["replicas"], &obj["metadata"]["labels"]),
            (&json!({"app": "web"}), &json!(0), &json!({"team": "a"}))
        );
    }

    #[test]
    fn validation_as_upstream() {
        let mut spec = web();
        spec["selector"] = json!({"app": "other"});
        spec["replicas"] = json!(-1);
        spec["minReadySeconds"] = json!(-2);
        spec["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        spec["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        assert_eq!(
            errors(ReplicationControllers.validate(&rc(spec))),
            [
                "spec.minReadySeconds: Invalid value: -2: must be greater than or equal to 0",
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\", \"tier\":\"front\"}: `selector` does not match template `labels`",
                "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicationController is not Supported",
            ]
        );
        // no template labels: no selector to default, none to match
        let obj = rc(json!({}));
        assert_eq!(
            errors(ReplicationControllers.validate(&obj)),
            ["spec.selector: Required value", "spec.template: Required value"]
        );
    }

    #[test]
    fn updates_may_change_the_selector_and_repeat_spec_errors() {
        let old = rc(web());
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"app": "web"});
        assert!(ReplicationControllers.validate_update(&old, &new).is_empty());
        new["spec"]["replicas"] = json!(-1);
        assert_eq!(
            errors(ReplicationControllers.validate_update(&old, &new)),
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn status_is_validated_on_its_own() {
        let old = rc(web());
        let mut new = old.clone();
        new["status"] = json!({"replicas": 1, "fullyLabeledReplicas": 2, "readyReplicas": 1, "availableReplicas": 2,
            "observedGeneration": -1});
        assert_eq!(
            errors(ReplicationControllers.validate_part_update(Part::Status, &old, &new)),
            [
                "status.observedGeneration: Invalid value: -1: must be greater than or equal to 0",
                "status.fullyLabeledReplicas: Invalid value: 2: cannot be greater than status.replicas",
                "status.availableReplicas: Invalid value: 2: cannot be greater than status.replicas",
                "status.availableReplicas: Invalid value: 2: cannot be greater than readyReplicas",
            ]
        );
    }

    #[test]
    fn scale_selects_by_the_map() {
        let mut obj = rc(web());
        obj["metadata"]["resourceVersion"] = json!("4");
        obj["status"]["replicas"] = json!(1);
        let scale = ReplicationControllers.scale(&obj).expect("scale");
        assert_eq!(scale["spec"], json!({"replicas": 1}));
        assert_eq!(scale["status"], json!({"replicas": 1, "selector": "app=web,tier=front"}));
        assert_eq!(scale["metadata"]["resourceVersion"], "4");
    }

    #[test]
    fn fields_and_cells() {
        let mut obj = rc(web());
        obj["status"] = json!({"replicas": 3, "readyReplicas": 2});
        assert_eq!(ReplicationControllers.field_value(&obj, "status.replicas").as_deref(), Some("3"));
        assert_eq!(ReplicationControllers.field_value(&obj, "metadata.namespace").as_deref(), Some("default"));
        assert_eq!(ReplicationControllers.field_value(&obj, "spec.replicas"), None);
        let cells = ReplicationControllers.cells(&obj, Timestamp::now());
        assert_eq!(cells[..4], [json!("web"), json!(1), json!(3), json!(2)]);
        assert_eq!(cells[5..], [json!("nginx"), json!("nginx"), json!("app=web,tier=front")]);
        let names: Vec<&str> = ReplicationControllers.columns().iter().map(|c| c.name).collect();
        assert_eq!(names, ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]);
    }
}
