//! StorageClasses (`storage.k8s.io/v1`): the kinds of storage a cluster provisions, named by
//! PersistentVolumeClaims. Defaults and validation are upstream's (`SetDefaults_StorageClass`,
//! `ValidateStorageClass`, `ValidateStorageClassUpdate`); the default class is the one annotated
//! `storageclass.kubernetes.io/is-default-class: "true"` (or the beta annotation).

use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of, typed,
};
use crate::field::{ErrorList, FieldError, Path};
use crate::{meta, names};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::TopologySelectorTerm;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub const GROUP: &str = "storage.k8s.io";
pub const DEFAULT_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
pub const BETA_DEFAULT_ANNOTATION: &str = "storageclass.beta.kubernetes.io/is-default-class";

pub struct StorageClasses;

static INFO: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: "v1",
    plural: "storageclasses",
    singular: "storageclass",
    kind: "StorageClass",
    namespaced: false,
    short_names: &["sc"],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[],
};

static COLUMNS: [Column; 6] = [
    NAME_COLUMN,
    Column::new("Provisioner", 0, "provisioner indicates the type of the provisioner."),
    Column::new(
        "ReclaimPolicy",
        0,
        "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.",
    ),
    Column::new(
        "VolumeBindingMode",
        0,
        "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.",
    ),
    Column::new("AllowVolumeExpansion", 0, "allowVolumeExpansion shows whether the storage class allow volume expand."),
    AGE_COLUMN,
];

/// Upstream's sorted lists, as its `NotSupported` errors name them.
const RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];
/// `maxProvisionerParameterLen` and `maxProvisionerParameterSize` (256 kB).
const MAX_PARAMETERS: usize = 512;
const MAX_PARAMETERS_BYTES: usize = 256 * 1024;

/// Whether `class` is marked the cluster's default (upstream's `IsDefaultAnnotation`: the value
/// must be exactly `"true"`).
pub fn is_default(class: &Value) -> bool {
    let annotations = meta::str_map(class, "annotations");
    [DEFAULT_ANNOTATION, BETA_DEFAULT_ANNOTATION]
        .iter()
        .any(|a| annotations.get(*a).map(String::as_str) == Some("true"))
}

/// The default class among `classes`, as the DefaultStorageClass admission picks it: the newest
/// marked one, the first by name among equally new ones.
pub fn default_class(classes: &[Value]) -> Option<&Value> {
    let created = |c: &Value| crate::time::parse(c.pointer("/metadata/creationTimestamp").and_then(Value::as_str));
    classes
        .iter()
        .filter(|c| is_default(c))
        .min_by(|a, b| created(b).cmp(&created(a)).then(meta::name(a).cmp(meta::name(b))))
}

/// Whether `class` lets bound claims grow (`allowVolumeExpansion: true`).
pub fn allows_expansion(class: &Value) -> bool {
    class.get("allowVolumeExpansion").and_then(Value::as_bool) == Some(true)
}

impl Kind for StorageClasses {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<StorageClass>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<StorageClass>(raw)
    }
    /// `SetDefaults_StorageClass`.
    fn default(&self, obj: &mut Value) {
        let mut class: StorageClass = typed(obj);
        class.reclaim_policy.get_or_insert_with(|| "Delete".into());
        class.volume_binding_mode.get_or_insert_with(|| "Immediate".into());
        if let Ok(v) = serde_json::to_value(&class) {
            *obj = v;
        }
    }
    /// Upstream's `ValidateStorageClass`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, false, false);
        let class: StorageClass = typed(obj);
        let provisioner = Path::new("provisioner");
        if class.provisioner.is_empty() {
            errs.push(FieldError::required(&provisioner, ""));
        } else {
            let msgs = names::qualified_name(&class.provisioner.to_lowercase());
            errs.extend(names::invalid_all(&provisioner, &class.provisioner, msgs));
        }
        errs.extend(validate_parameters(class.parameters.as_ref()));
        if let Some(p) = class.reclaim_policy.as_deref().filter(|p| !p.is_empty() && !RECLAIM_POLICIES.contains(p)) {
            errs.push(FieldError::not_supported(&Path::new("reclaimPolicy"), p, RECLAIM_POLICIES));
        }
        match class.volume_binding_mode.as_deref() {
            None => errs.push(FieldError::required(&Path::new("volumeBindingMode"), "")),
            Some(m) if !BINDING_MODES.contains(&m) => {
                errs.push(FieldError::not_supported(&Path::new("volumeBindingMode"), m, BINDING_MODES))
            }
            Some(_) => {}
        }
        errs.extend(validate_topologies(class.allowed_topologies.as_deref().unwrap_or_default()));
        errs
    }
    /// The new class's own validation, then upstream's `ValidateStorageClassUpdate`.
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        let (o, n): (StorageClass, StorageClass) = (typed(old), typed(new));
        // Go's DeepEqual: a nil map and an empty one differ, so compare as written.
        if o.parameters != n.parameters {
            errs.push(FieldError::forbidden(&Path::new("parameters"), "updates to parameters are forbidden."));
        }
        if o.provisioner != n.provisioner {
            errs.push(FieldError::forbidden(&Path::new("provisioner"), "updates to provisioner are forbidden."));
        }
        if o.reclaim_policy.unwrap_or_default() != n.reclaim_policy.unwrap_or_default() {
            errs.push(FieldError::forbidden(&Path::new("reclaimPolicy"), "updates to reclaimPolicy are forbidden."));
        }
        if o.volume_binding_mode != n.volume_binding_mode {
            // A nil pointer is reported as the string "null", as Go's field errors do.
            let value = n.volume_binding_mode.unwrap_or_else(|| "null".into());
            errs.push(FieldError::invalid(&Path::new("volumeBindingMode"), value, "field is immutable"));
        }
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    /// Upstream's `printStorageClass`.
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let class: StorageClass = typed(obj);
        let mut name = meta::name(obj).to_string();
        if is_default(obj) {
            name.push_str(" (default)");
        }
        vec![
            json!(name),
            json!(class.provisioner),
            json!(class.reclaim_policy.unwrap_or_else(|| "Delete".into())),
            json!(class.volume_binding_mode.unwrap_or_else(|| "Immediate".into())),
            json!(class.allow_volume_expansion.unwrap_or(false)),
            json!(meta::age(obj, now)),
        ]
    }
}

/// `validateParameters`: at most 512 of them, 256 kB in all, no empty key.
fn validate_parameters(params: Option<&BTreeMap<String, String>>) -> ErrorList {
    let path = Path::new("parameters");
    let params = params.into_iter().flatten();
    if params.clone().count() > MAX_PARAMETERS {
        return vec![FieldError::too_long(&path, MAX_PARAMETERS)];
    }
    let mut errs = Vec::new();
    let mut total = 0;
    for (k, v) in params {
        if k.is_empty() {
            errs.push(FieldError::invalid(&path, k.as_str(), "field can not be empty."));
        }
        total += k.len() + v.len();
    }
    if total > MAX_PARAMETERS_BYTES {
        errs.push(FieldError::too_long(&path, MAX_PARAMETERS_BYTES));
    }
    errs
}

/// One term's expressions as key → values, as upstream compares terms.
type RawTerm = BTreeMap<String, BTreeSet<String>>;

/// `validateAllowedTopologies`: each term (`ValidateTopologySelectorTerm`), and no two alike.
/// Upstream compares each term with a list that starts with one empty entry per term, so an
/// empty term is reported as a duplicate that many times; that is kept.
fn validate_topologies(terms: &[TopologySelectorTerm]) -> ErrorList {
    let mut errs = Vec::new();
    let mut seen: Vec<RawTerm> = vec![RawTerm::new(); terms.len()];
    for (i, term) in terms.iter().enumerate() {
        let path = Path::new("allowedTopologies").index(i);
        let raw = validate_topology_term(term, &path, &mut errs);
        for _ in seen.iter().filter(|t| **t == raw) {
            errs.push(FieldError::duplicate(&path.child("matchLabelExpressions"), ""));
        }
        seen.push(raw);
    }
    errs
}

/// `ValidateTopologySelectorTerm`: each requirement has values, none twice, a valid key, and
/// no key twice.
fn validate_topology_term(term: &TopologySelectorTerm, path: &Path, errs: &mut ErrorList) -> RawTerm {
    let mut raw = RawTerm::new();
    let exprs = path.child("matchLabelExpressions");
    for (i, req) in term.match_label_expressions.iter().flatten().enumerate() {
        let rp = exprs.index(i);
        let values = rp.child("values");
        if req.values.is_empty() {
            errs.push(FieldError::required(&values, ""));
        }
        let mut set = BTreeSet::new();
        for (j, v) in req.values.iter().enumerate() {
            if !set.insert(v.clone()) {
                errs.push(FieldError::duplicate(&values.index(j), v.as_str()));
            }
        }
        errs.extend(names::invalid_all(&rp.child("key"), &req.key, names::qualified_name(&req.key)));
        if raw.insert(req.key.clone(), set).is_some() {
            errs.push(FieldError::duplicate(&rp.child("key"), req.key.as_str()));
        }
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(extra: Value) -> Value {
        let mut obj = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "fast"}, "provisioner": "skiff.dev/local-path"});
        obj.as_object_mut().expect("object").extend(extra.as_object().cloned().unwrap_or_default());
        StorageClasses.default(&mut obj);
        obj
    }

    fn errors(errs: ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_as_upstream() {
        let obj = class(json!({}));
        assert_eq!(
            (obj["reclaimPolicy"].as_str(), obj["volumeBindingMode"].as_str()),
            (Some("Delete"), Some("Immediate"))
        );
        let kept = class(json!({"reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer"}));
        assert_eq!(kept["reclaimPolicy"], "Retain");
        assert_eq!(kept["volumeBindingMode"], "WaitForFirstConsumer");
    }

    #[test]
    fn validation_as_upstream() {
        assert!(StorageClasses.validate(&class(json!({}))).is_empty());
        assert_eq!(
            errors(StorageClasses.validate(&class(json!({"provisioner": "",
                "reclaimPolicy": "Recycle", "volumeBindingMode": "Later", "parameters": {"": "x"}})))),
            [
                "provisioner: Required value",
                "parameters: Invalid value: \"\": field can not be empty.",
                "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
                "volumeBindingMode: Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\"",
            ]
        );
        assert_eq!(
            errors(StorageClasses.validate(&class(json!({"provisioner": "a/b/c"})))),
            [
                "provisioner: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ]
        );
        let big: serde_json::Map<String, Value> = (0..513).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert_eq!(
            errors(StorageClasses.validate(&class(json!({"parameters": big})))),
            ["parameters: Too long: may not be more than 512 bytes"]
        );
    }

    #[test]
    fn allowed_topologies_as_upstream() {
        let term = json!({"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["a", "a"]},
            {"key": "topology.kubernetes.io/zone", "values": []}]});
        assert_eq!(
            errors(StorageClasses.validate(&class(json!({"allowedTopologies": [term]})))),
            [
                "allowedTopologies[0].matchLabelExpressions[0].values[1]: Duplicate value: \"a\"",
                "allowedTopologies[0].matchLabelExpressions[1].values: Required value",
                "allowedTopologies[0].matchLabelExpressions[1].key: Duplicate value: \"topology.kubernetes.io/zone\"",
            ]
        );
        let same = json!({"matchLabelExpressions": [{"key": "zone", "values": ["a"]}]});
        assert_eq!(
            errors(StorageClasses.validate(&class(json!({"allowedTopologies": [same, same]})))),
            ["allowedTopologies[1].matchLabelExpressions: Duplicate value: \"\""]
        );
        // an empty term matches upstream's placeholder entries, one per term
        assert_eq!(
            errors(StorageClasses.validate(&class(json!({"allowedTopologies": [{}, same]})))),
            [
                "allowedTopologies[0].matchLabelExpressions: Duplicate value: \"\"",
                "allowedTopologies[0].matchLabelExpressions: Duplicate value: \"\""
            ]
        );
    }

    #[test]
    fn updates_keep_what_provisioning_depends_on() {
        let old = class(json!({"parameters": {"a": "1"}}));
        let new = class(json!({"provisioner": "other.io/x", "parameters": {"a": "2"},
            "reclaimPolicy": "Retain", "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true}));
        assert_eq!(
            errors(StorageClasses.validate_update(&old, &new)),
            [
                "parameters: Forbidden: updates to parameters are forbidden.",
                "provisioner: Forbidden: updates to provisioner are forbidden.",
                "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden.",
                "volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable",
            ]
        );
        let expandable = class(json!({"parameters": {"a": "1"}, "allowVolumeExpansion": true}));
        assert!(StorageClasses.validate_update(&old, &expandable).is_empty());
    }

    #[test]
    fn default_class_and_table() {
        let mk = |name: &str, created: &str, value: &str| {
            class(json!({"metadata": {"name": name, "creationTimestamp": created,
                "annotations": {DEFAULT_ANNOTATION: value}}}))
        };
        let classes = [
            mk("old", "2026-01-01T00:00:00Z", "true"),
            mk("newer-b", "2026-01-02T00:00:00Z", "true"),
            mk("newer-a", "2026-01-02T00:00:00Z", "true"),
            mk("newest", "2026-01-03T00:00:00Z", "True"),
        ];
        assert_eq!(default_class(&classes).map(meta::name), Some("newer-a"));
        assert!(default_class(&classes[3..]).is_none());
        let now: Timestamp = "2026-01-01T00:00:30Z".parse().expect("time");
        assert_eq!(
            StorageClasses.cells(&classes[0], now),
            [
                json!("old (default)"),
                json!("skiff.dev/local-path"),
                json!("Delete"),
                json!("Immediate"),
                json!(false),
                json!("30s")
            ]
        );
        let beta = class(json!({"metadata": {"name": "b", "annotations": {BETA_DEFAULT_ANNOTATION: "true"}},
            "allowVolumeExpansion": true}));
        assert_eq!(StorageClasses.cells(&beta, now)[..1], [json!("b (default)")]);
        assert_eq!(StorageClasses.cells(&beta, now)[4], json!(true));
    }
}
