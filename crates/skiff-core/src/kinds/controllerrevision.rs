//! ControllerRevisions (`apps/v1`): immutable snapshots of state (a StatefulSet's or DaemonSet's
//! pod template, as a patch) that their controllers keep for rollouts and rollbacks. Validation
//! (`ValidateControllerRevision`, `ValidateControllerRevisionUpdate`) and the table
//! (`printControllerRevision`).

use super::template::non_negative;
use super::{AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct ControllerRevisions;

static INFO: ResourceInfo = ResourceInfo {
    group: "apps",
    version: "v1",
    plural: "controllerrevisions",
    singular: "controllerrevision",
    kind: "ControllerRevision",
    namespaced: true,
    short_names: &[],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[],
};

/// Upstream's `controllerRevisionColumnDefinition`.
static COLUMNS: [Column; 4] = [
    NAME_COLUMN,
    Column::new("Controller", 0, "Controller of the object"),
    Column::new("Revision", 0, "Revision indicates the revision of the state represented by Data."),
    AGE_COLUMN,
];

/// The revision's `data`, when it has any (JSON `null` is none, as upstream's conversion makes it nil).
fn data(obj: &Value) -> Option<&Value> {
    obj.get("data").filter(|d| !d.is_null())
}

/// The internal object `data` decodes to (a `*runtime.Unknown` holding the JSON) as Go's `%#v`
/// prints it: the bytes are the JSON as skiff writes it, compact.
fn go_data(d: Option<&Value>) -> BadValue {
    let Some(d) = d else { return BadValue::Json(json!("null")) };
    let raw = serde_json::to_vec(d).unwrap_or_default();
    let bytes: Vec<String> = raw.iter().map(|b| format!("{b:#x}")).collect();
    BadValue::Go(format!(
        "runtime.Unknown{{TypeMeta:runtime.TypeMeta{{APIVersion:\"\", Kind:\"\"}}, Raw:[]uint8{{{}}}, ContentEncoding:\"\", ContentType:\"application/json\"}}",
        bytes.join(", ")
    ))
}

/// `metav1.GetControllerOf` as `formatResourceName(groupKind, name, true)` prints it:
/// `statefulset.apps/web`; `<none>` without a controller.
fn controller_cell(obj: &Value) -> String {
    let refs = obj.pointer("/metadata/ownerReferences").and_then(Value::as_array).into_iter().flatten();
    let Some(owner) = refs.into_iter().find(|r| r.get("controller").and_then(Value::as_bool) == Some(true)) else {
        return "<none>".into();
    };
    let field = |f: &str| owner.get(f).and_then(Value::as_str).unwrap_or_default();
    let group = field("apiVersion").split_once('/').map_or("", |(g, _)| g);
    let (kind, name) = (field("kind"), field("name"));
    match (group, kind) {
        ("", "") => name.to_string(),
        ("", kind) => format!("{}/{name}", kind.to_lowercase()),
        (group, kind) => format!("{}.{}/{name}", kind.to_lowercase(), group.to_lowercase()),
    }
}

impl Kind for ControllerRevisions {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<ControllerRevision>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<ControllerRevision>(raw)
    }
    /// Upstream's `ValidateControllerRevision`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        if data(obj).is_none() {
            errs.push(FieldError::required(&Path::new("data"), "data is mandatory"));
        }
        non_negative(obj, "/revision", &Path::new("revision"), &mut errs);
        errs
    }
    /// `ValidateControllerRevisionUpdate`: valid, and the data as it was.
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        if data(old) != data(new) {
            errs.push(FieldError::invalid_go(&Path::new("data"), go_data(data(new)), "field is immutable"));
        }
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let revision = obj.get("revision").and_then(Value::as_i64).unwrap_or(0);
        vec![json!(meta::name(obj)), json!(controller_cell(obj)), json!(revision), json!(meta::age(obj, now))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revision(data: Value, number: i64) -> Value {
        let raw = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": "web-5d4f8b7c9", "namespace": "default"}, "data": data, "revision": number});
        ControllerRevisions.normalize(&raw).expect("decodes")
    }

    fn errors(errs: ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn validation_as_upstream() {
        let r = revision(json!({"spec": {"template": {"$patch": "replace"}}}), 1);
        assert!(ControllerRevisions.validate(&r).is_empty());
        assert_eq!(
            errors(ControllerRevisions.validate(&revision(Value::Null, -1))),
            [
                "data: Required value: data is mandatory",
                "revision: Invalid value: -1: must be greater than or equal to 0"
            ]
        );
        let mut missing = r.clone();
        missing.as_object_mut().expect("object").remove("data");
        assert_eq!(errors(ControllerRevisions.validate(&missing)), ["data: Required value: data is mandatory"]);
    }

    #[test]
    fn data_is_immutable() {
        let old = revision(json!({"a": 1}), 1);
        let mut renumbered = old.clone();
        renumbered["revision"] = json!(2);
        renumbered["metadata"]["labels"] = json!({"x": "y"});
        assert!(ControllerRevisions.validate_update(&old, &renumbered).is_empty());
        let mut changed = old.clone();
        changed["data"] = json!({});
        assert_eq!(
            errors(ControllerRevisions.validate_update(&old, &changed)),
            [
                "data: Invalid value: runtime.Unknown{TypeMeta:runtime.TypeMeta{APIVersion:\"\", Kind:\"\"}, Raw:[]uint8{0x7b, 0x7d}, ContentEncoding:\"\", ContentType:\"application/json\"}: field is immutable"
            ]
        );
    }

    #[test]
    fn table_row_names_the_controller() {
        let mut r = revision(json!({}), 3);
        r["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        let now: Timestamp = "2026-01-01T00:00:30Z".parse().expect("time");
        assert_eq!(
            ControllerRevisions.cells(&r, now),
            [json!("web-5d4f8b7c9"), json!("<none>"), json!(3), json!("30s")]
        );
        r["metadata"]["ownerReferences"] = json!([
            {"apiVersion": "v1", "kind": "Pod", "name": "other", "uid": "u0"},
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u1", "controller": true}]);
        assert_eq!(ControllerRevisions.cells(&r, now)[1], json!("statefulset.apps/web"));
        r["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ReplicationController", "name": "rc", "uid": "u2", "controller": true}]);
        assert_eq!(ControllerRevisions.cells(&r, now)[1], json!("replicationcontroller/rc"));
    }
}
