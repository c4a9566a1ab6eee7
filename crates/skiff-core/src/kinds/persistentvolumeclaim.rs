//! PersistentVolumeClaims (core/v1): a namespace's request for storage, bound to one volume.
//! Defaults (`SetDefaults_PersistentVolumeClaim[Spec]`), the strategy's preparation (status
//! reset, disabled fields dropped, `dataSource` and `dataSourceRef` kept in step), validation
//! (`ValidatePersistentVolumeClaim`), update rules (`ValidatePersistentVolumeClaimUpdate`: the
//! spec is fixed but for a bound claim's storage request) and the table
//! (`printPersistentVolumeClaim`). The admission plugins for claims (default class, protection
//! finalizer, resize) need the store: they are the API server's.

use super::persistentvolume::{
    BETA_CLASS_ANNOTATION, VOLUME_MODES, access_modes_cell, basic_quantity, check_quantities, class_name, milli,
    semantic, validate_access_modes,
};
use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, Part, ResourceInfo, TypedSchema, keep_status, roundtrip,
    schema_of, typed,
};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::{go_diff, meta, names, selector};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, TypedLocalObjectReference, TypedObjectReference,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct PersistentVolumeClaims;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    plural: "persistentvolumeclaims",
    singular: "persistentvolumeclaim",
    kind: "PersistentVolumeClaim",
    namespaced: true,
    short_names: &["pvc"],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[("status", "PersistentVolumeClaim", &["get", "patch", "update"])],
};

static COLUMNS: [Column; 9] = [
    NAME_COLUMN,
    Column::new("Status", 0, "phase represents the current phase of PersistentVolumeClaim."),
    Column::new("Volume", 0, "volumeName is the binding reference to the PersistentVolume backing this claim."),
    Column::new("Capacity", 0, "capacity represents the actual resources of the underlying volume."),
    Column::new(
        "Access Modes",
        0,
        "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1",
    ),
    Column::new("StorageClass", 0, "StorageClass of the pvc"),
    Column::new("VolumeAttributesClass", 0, "VolumeAttributesClass of the pvc"),
    AGE_COLUMN,
    Column::new(
        "VolumeMode",
        1,
        "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.",
    ),
];

/// The finalizer the StorageObjectInUseProtection admission puts on every claim.
pub const PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";
/// The resize states a claim's `status.allocatedResourceStatuses` may hold (sorted).
const RESIZE_STATUSES: &[&str] = &[
    "ControllerResizeFailed",
    "ControllerResizeInProgress",
    "NodeResizeFailed",
    "NodeResizeInProgress",
    "NodeResizePending",
];
const SPEC_FIXED: &str =
    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";
const VAC_GATED: &str = "update is forbidden when the VolumeAttributesClass feature gate is disabled";

/// The claim's class: the beta annotation first, then `storageClassName` (upstream's
/// `GetPersistentVolumeClaimClass`).
pub fn class_of(claim: &Value) -> String {
    match meta::str_map(claim, "annotations").get(BETA_CLASS_ANNOTATION) {
        Some(c) => c.clone(),
        None => claim.pointer("/spec/storageClassName").and_then(Value::as_str).unwrap_or_default().to_string(),
    }
}

/// Whether the claim names a class at all, even `""` (upstream's `PersistentVolumeClaimHasClass`).
pub fn names_class(claim: &Value) -> bool {
    meta::str_map(claim, "annotations").contains_key(BETA_CLASS_ANNOTATION)
        || claim.pointer("/spec/storageClassName").is_some_and(|v| !v.is_null())
}

/// The storage the claim requests, in thousandths of a byte.
pub fn requested_storage(claim: &Value) -> i128 {
    let q = claim.pointer("/spec/resources/requests/storage").and_then(Value::as_str).unwrap_or("0");
    milli(&Quantity(q.to_string()))
}

/// How a claim's spec may be validated, by what its stored version already holds
/// (`ValidationOptionsForPersistentVolumeClaim`; recovery from expansion failure is on in 1.32,
/// volume attributes classes are off).
#[derive(Default, Clone, Copy)]
struct Options {
    allow_invalid_selector_values: bool,
    allow_invalid_api_group: bool,
}

impl Options {
    fn for_update(old: &PersistentVolumeClaimSpec) -> Self {
        let groups = old.data_source.as_ref().is_some_and(|d| d.api_group.is_some())
            || old.data_source_ref.as_ref().is_some_and(|d| d.api_group.is_some());
        let selector = old.selector.as_ref().and_then(|s| serde_json::to_value(s).ok());
        let invalid = selector.is_some_and(|s| !selector::validate_api_with(&s, &Path::default(), false).is_empty());
        Options { allow_invalid_selector_values: invalid, allow_invalid_api_group: groups }
    }
}

fn with_claim(obj: &mut Value, f: impl FnOnce(&mut PersistentVolumeClaim)) {
    let mut pvc: PersistentVolumeClaim = typed(obj);
    f(&mut pvc);
    if let Ok(v) = serde_json::to_value(&pvc) {
        *obj = v;
    }
}

/// `DropDisabledFields`, `EnforceDataSourceBackwardsCompatibility` and `NormalizeDataSources`
/// of a spec being written over `old` (None on create).
fn prepare_spec(spec: &mut PersistentVolumeClaimSpec, old: Option<&PersistentVolumeClaimSpec>) {
    if old.is_none_or(|o| o.volume_attributes_class_name.is_none()) {
        spec.volume_attributes_class_name = None;
    }
    // CrossNamespaceVolumeDataSource is off: a namespaced reference goes, unless kept from before.
    let namespaced =
        spec.data_source_ref.as_ref().is_some_and(|r| r.namespace.as_deref().is_some_and(|n| !n.is_empty()));
    if namespaced && old.is_none_or(|o| o.data_source_ref.is_none()) {
        spec.data_source_ref = None;
    }
    // Only claims and snapshots were ever sources in `dataSource`; others are silently dropped.
    let in_use = old.is_some_and(|o| o.data_source.is_some() || o.data_source_ref.is_some());
    if !in_use && spec.data_source_ref.is_none() && !spec.data_source.as_ref().is_some_and(is_claim_or_snapshot) {
        spec.data_source = None;
    }
    normalize_sources(spec);
}

fn is_claim_or_snapshot(d: &TypedLocalObjectReference) -> bool {
    match d.api_group.as_deref().unwrap_or_default() {
        "" => d.kind == "PersistentVolumeClaim",
        "snapshot.storage.k8s.io" => d.kind == "VolumeSnapshot",
        _ => false,
    }
}

/// `NormalizeDataSources`: each of `dataSource` and `dataSourceRef` filled from the other.
fn normalize_sources(spec: &mut PersistentVolumeClaimSpec) {
    if let (Some(d), None) = (&spec.data_source, &spec.data_source_ref) {
        let r = TypedObjectReference {
            api_group: d.api_group.clone(),
            kind: d.kind.clone(),
            name: d.name.clone(),
            namespace: None,
        };
        spec.data_source_ref = Some(r);
    } else if let (None, Some(r)) = (&spec.data_source, &spec.data_source_ref)
        && r.namespace.as_deref().is_none_or(str::is_empty)
    {
        let d =
            TypedLocalObjectReference { api_group: r.api_group.clone(), kind: r.kind.clone(), name: r.name.clone() };
        spec.data_source = Some(d);
    }
}

/// `validateDataSource` and `validateDataSourceRef`: name and kind, a core kind only for
/// claims, a valid API group and namespace.
fn validate_source(
    api_group: Option<&str>,
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    allow_invalid_group: bool,
    path: &Path,
    errs: &mut ErrorList,
) {
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    if kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    }
    let group = api_group.unwrap_or_default();
    if group.is_empty() && kind != "PersistentVolumeClaim" {
        errs.push(FieldError::invalid(
            path,
            kind,
            "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
        ));
    }
    if !group.is_empty() && !allow_invalid_group {
        errs.extend(names::invalid_all(&path.child("apiGroup"), group, names::dns1123_subdomain(group)));
    }
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        errs.extend(names::invalid_all(&path.child("namespace"), ns, names::dns1123_label(ns)));
    }
}

/// `ValidatePersistentVolumeClaimSpec`.
fn validate_spec(spec: &PersistentVolumeClaimSpec, opts: Options, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    if modes.is_empty() {
        errs.push(FieldError::required(&path.child("accessModes"), "at least 1 access mode is required"));
    }
    if let Some(s) = spec.selector.as_ref().and_then(|s| serde_json::to_value(s).ok()) {
        errs.extend(selector::validate_api_with(&s, &path.child("selector"), opts.allow_invalid_selector_values));
    }
    validate_access_modes(modes, &path.child("accessModes"), &mut errs);
    let storage = path.child("resources").key("storage");
    match spec.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("storage")) {
        None => errs.push(FieldError::required(&storage, "")),
        Some(q) if milli(q) <= 0 => errs.push(FieldError::invalid(&storage, q.0.as_str(), "must be greater than zero")),
        Some(_) => {}
    }
    if let Some(c) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        class_name(c, &path.child("storageClassName"), &mut errs);
    }
    if let Some(m) = spec.volume_mode.as_deref().filter(|m| !VOLUME_MODES.contains(m)) {
        errs.push(FieldError::not_supported(&path.child("volumeMode"), m, VOLUME_MODES));
    }
    if let Some(d) = &spec.data_source {
        let p = path.child("dataSource");
        validate_source(d.api_group.as_deref(), &d.kind, &d.name, None, opts.allow_invalid_api_group, &p, &mut errs);
    }
    if let Some(r) = &spec.data_source_ref {
        let (group, ns) = (r.api_group.as_deref(), r.namespace.as_deref());
        let p = path.child("dataSourceRef");
        validate_source(group, &r.kind, &r.name, ns, opts.allow_invalid_api_group, &p, &mut errs);
    }
    // Upstream reports the path `spec.dataSource` as a Go struct value.
    let source_path = BadValue::Go("field.Path{...}".into());
    match (&spec.data_source, &spec.data_source_ref) {
        (Some(_), Some(r)) if r.namespace.as_deref().is_some_and(|n| !n.is_empty()) => errs.push(
            FieldError::invalid_go(path, source_path, "may not be specified when dataSourceRef.namespace is specified"),
        ),
        // (a namespaced reference was the arm above)
        (Some(d), Some(r)) if d.api_group != r.api_group || d.kind != r.kind || d.name != r.name => {
            errs.push(FieldError::invalid_go(path, source_path, "must match dataSourceRef"))
        }
        _ => {}
    }
    errs
}

/// `ValidatePersistentVolumeClaim`: metadata and spec.
fn validate_claim(obj: &Value, opts: Options) -> ErrorList {
    let mut errs = meta::validate(obj, true, false);
    let pvc: PersistentVolumeClaim = typed(obj);
    errs.extend(validate_spec(&pvc.spec.unwrap_or_default(), opts, &Path::new("spec")));
    errs
}

/// The rest of `ValidatePersistentVolumeClaimUpdate`: the spec stays as created, but for the
/// volume name (set once), a bound claim's storage request (never below its capacity) and a
/// class given to a claim that had none.
fn validate_spec_update(old: &Value, new: &Value) -> ErrorList {
    let mut errs = Vec::new();
    let (mut old_spec, mut new_spec) =
        (old.get("spec").cloned().unwrap_or_else(|| json!({})), new.get("spec").cloned().unwrap_or_else(|| json!({})));
    let (old_ann, new_ann) = (meta::str_map(old, "annotations"), meta::str_map(new, "annotations"));
    let (old_beta, new_beta) = (old_ann.get(BETA_CLASS_ANNOTATION), new_ann.get(BETA_CLASS_ANNOTATION));
    let class = |s: &Value| s.get("storageClassName").and_then(Value::as_str).map(String::from);
    let (old_class, new_class) = (class(&old_spec), class(&new_spec));
    if old_spec.get("volumeName").and_then(Value::as_str).unwrap_or_default().is_empty() {
        set(&mut old_spec, "volumeName", new_spec.get("volumeName").cloned());
    }
    // The class may move from the beta annotation to the field, or be set where none was.
    let from_annotation = old_beta.is_some()
        && old_class.is_none()
        && new_class.as_ref().is_some_and(|c| Some(c) == old_beta)
        && new_beta.is_none_or(|b| Some(b) == old_beta);
    if from_annotation {
        set(&mut new_spec, "storageClassName", None);
    } else {
        let (new_value, old_value) = (new_beta.cloned().unwrap_or_default(), old_beta.cloned().unwrap_or_default());
        if new_value != old_value {
            let path = Path::new("metadata").child("annotations").child(BETA_CLASS_ANNOTATION);
            errs.push(FieldError::invalid(&path, new_value, "field is immutable"));
        }
        if new_class.is_some() && old_class.is_none() && old_beta.is_none_or(|b| Some(b) == new_class.as_ref()) {
            set(&mut new_spec, "storageClassName", old_spec.get("storageClassName").cloned());
        }
    }
    let bound = new.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
    if bound && let Some(requests) = new_spec.pointer_mut("/resources/requests").and_then(Value::as_object_mut) {
        match old.pointer("/spec/resources/requests/storage") {
            Some(q) => requests.insert("storage".into(), q.clone()),
            None => requests.remove("storage"),
        };
    }
    set(&mut new_spec, "volumeAttributesClassName", old_spec.get("volumeAttributesClassName").cloned());
    if comparable(&old_spec) != comparable(&new_spec) {
        let diff = go_diff::diff("core.PersistentVolumeClaimSpec", &old_spec, &new_spec);
        errs.push(FieldError::forbidden(&Path::new("spec"), format!("{SPEC_FIXED}\n{diff}")));
    }
    let capacity = old.pointer("/status/capacity/storage").and_then(Value::as_str).unwrap_or("0");
    let (old_size, new_size) = (requested_storage(old), requested_storage(new));
    // With RecoverVolumeExpansionFailure a request may shrink, but not to the capacity.
    if new_size < old_size && new_size <= milli(&Quantity(capacity.to_string())) {
        let path = Path::new("spec").child("resources").child("requests").child("storage");
        errs.push(FieldError::forbidden(&path, "field can not be less than status.capacity"));
    }
    // A nil pointer is reported as the string "null", as Go's field errors do.
    let mode = |v: &Value| v.pointer("/spec/volumeMode").cloned().unwrap_or_else(|| json!("null"));
    if mode(old) != mode(new) {
        errs.push(FieldError::invalid(&Path::new("volumeMode"), mode(new), "field is immutable"));
    }
    let vac = |v: &Value| v.pointer("/spec/volumeAttributesClassName").cloned();
    if vac(old) != vac(new) {
        errs.push(FieldError::forbidden(&Path::new("spec").child("volumeAttributesClassName"), VAC_GATED));
    }
    errs
}

/// A spec as Go's semantic equality sees it: quantities by their value (`1Gi` is `1024Mi`).
fn comparable(spec: &Value) -> Value {
    let mut spec = semantic(spec);
    for list in ["/resources/requests", "/resources/limits"] {
        for q in spec.pointer_mut(list).and_then(Value::as_object_mut).into_iter().flat_map(|m| m.values_mut()) {
            *q = json!(milli(&Quantity(q.as_str().unwrap_or_default().to_string())).to_string());
        }
    }
    spec
}

/// Set (or, with None, remove) a field of a spec object.
fn set(spec: &mut Value, field: &str, value: Option<Value>) {
    if let Some(o) = spec.as_object_mut() {
        match value {
            Some(v) => o.insert(field.into(), v),
            None => o.remove(field),
        };
    }
}

/// `validatePersistentVolumeClaimResourceKey`: a qualified name, and `storage` if a native one.
fn resource_key(key: &str, path: &Path) -> ErrorList {
    let errs = names::invalid_all(path, key, names::qualified_name(key));
    if !errs.is_empty() {
        return errs;
    }
    let native = !key.contains('/') || key.contains("kubernetes.io/");
    if native && key != "storage" {
        return vec![FieldError::not_supported(path, key, &["storage"])];
    }
    vec![]
}

/// `ValidatePersistentVolumeClaimStatusUpdate`, with recovery from expansion failure on.
fn validate_status_update(new: &Value) -> ErrorList {
    let mut errs = Vec::new();
    let pvc: PersistentVolumeClaim = typed(new);
    let spec = pvc.spec.unwrap_or_default();
    if spec.access_modes.as_deref().unwrap_or_default().is_empty() {
        errs.push(FieldError::required(&Path::new("Spec").child("accessModes"), ""));
    }
    let status = pvc.status.unwrap_or_default();
    let capacity = Path::new("status").child("capacity");
    for (r, q) in status.capacity.iter().flatten() {
        basic_quantity(q, &capacity.key(r), &mut errs);
    }
    let statuses = Path::new("status").child("allocatedResourceStatus");
    for (k, v) in status.allocated_resource_statuses.iter().flatten() {
        errs.extend(resource_key(k, &statuses));
        if !RESIZE_STATUSES.contains(&v.as_str()) {
            errs.push(FieldError::not_supported(&statuses, k.as_str(), RESIZE_STATUSES));
        }
    }
    let allocated = Path::new("status").child("allocatedResources");
    for (r, q) in status.allocated_resources.iter().flatten() {
        let key_errs = resource_key(r, &allocated);
        if !key_errs.is_empty() {
            errs.extend(key_errs);
            continue;
        }
        let before = errs.len();
        basic_quantity(q, &allocated.key(r), &mut errs);
        if errs.len() == before && milli(q) < 0 {
            errs.push(FieldError::invalid(&allocated.key(r), q.0.as_str(), "must be greater than or equal to 0"));
        }
    }
    errs
}

impl Kind for PersistentVolumeClaims {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<PersistentVolumeClaim>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        let maps =
            ["/spec/resources/requests", "/spec/resources/limits", "/status/capacity", "/status/allocatedResources"];
        check_quantities(raw, "PersistentVolumeClaim", &maps)?;
        roundtrip::<PersistentVolumeClaim>(raw)
    }
    /// `SetDefaults_PersistentVolumeClaim` and `SetDefaults_PersistentVolumeClaimSpec`.
    fn default(&self, obj: &mut Value) {
        with_claim(obj, |pvc| {
            let status = pvc.status.get_or_insert_with(Default::default);
            if status.phase.as_deref().is_none_or(str::is_empty) {
                status.phase = Some("Pending".into());
            }
            pvc.spec.get_or_insert_with(Default::default).volume_mode.get_or_insert_with(|| "Filesystem".into());
        });
    }
    fn prepare_create(&self, obj: &mut Value) {
        with_claim(obj, |pvc| {
            pvc.status = Some(k8s_openapi::api::core::v1::PersistentVolumeClaimStatus {
                phase: Some("Pending".into()),
                ..Default::default()
            });
            prepare_spec(pvc.spec.get_or_insert_with(Default::default), None);
        });
    }
    fn prepare_update(&self, old: &Value, new: &mut Value) {
        keep_status(old, new);
        let old_spec = typed::<PersistentVolumeClaim>(old).spec.unwrap_or_default();
        with_claim(new, |pvc| prepare_spec(pvc.spec.get_or_insert_with(Default::default), Some(&old_spec)));
    }
    /// Everything but the status comes from the stored claim; status fields of disabled
    /// features (volume attributes classes) are dropped unless already there.
    fn prepare_status_update(&self, old: &Value, new: &mut Value) {
        super::status_only(old, new);
        for field in ["currentVolumeAttributesClassName", "modifyVolumeStatus"] {
            if old.pointer(&format!("/status/{field}")).is_none()
                && let Some(s) = new.get_mut("status").and_then(Value::as_object_mut)
            {
                s.remove(field);
            }
        }
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        validate_claim(obj, Options::default())
    }
    /// As upstream's strategy: the new claim's validation, then
    /// `ValidatePersistentVolumeClaimUpdate` (which validates it again; the message shows each
    /// error once).
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let opts = Options::for_update(&typed::<PersistentVolumeClaim>(old).spec.unwrap_or_default());
        let mut errs = validate_claim(new, opts);
        errs.extend(validate_claim(new, opts));
        errs.extend(validate_spec_update(old, new));
        errs
    }
    fn validate_part_update(&self, part: Part, old: &Value, new: &Value) -> ErrorList {
        match part {
            Part::Status => validate_status_update(new),
            _ => self.validate_update(old, new),
        }
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    /// Upstream's `printPersistentVolumeClaim`: capacity and access modes once bound to a volume.
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let pvc: PersistentVolumeClaim = typed(obj);
        let spec = pvc.spec.unwrap_or_default();
        let status = pvc.status.unwrap_or_default();
        let volume = spec.volume_name.clone().unwrap_or_default();
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            let storage = status.capacity.as_ref().and_then(|c| c.get("storage"));
            (
                storage.map_or("0".to_string(), |q| q.0.clone()),
                access_modes_cell(status.access_modes.as_deref().unwrap_or_default()),
            )
        };
        let phase = if meta::is_deleting(obj) { "Terminating".to_string() } else { status.phase.unwrap_or_default() };
        vec![
            json!(meta::name(obj)),
            json!(phase),
            json!(volume),
            json!(capacity),
            json!(modes),
            json!(class_of(obj)),
            json!(spec.volume_attributes_class_name.unwrap_or_else(|| "<unset>".into())),
            json!(meta::age(obj, now)),
            json!(spec.volume_mode.unwrap_or_else(|| "<unset>".into())),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(spec: Value) -> Value {
        let mut base = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
        base.as_object_mut().expect("object").extend(spec.as_object().cloned().unwrap_or_default());
        let mut obj = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default"}, "spec": base});
        PersistentVolumeClaims.default(&mut obj);
        PersistentVolumeClaims.prepare_create(&mut obj);
        obj
    }

    fn errors(errs: ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn bound(mut obj: Value, capacity: &str) -> Value {
        obj["spec"]["volumeName"] = json!("pv1");
        obj["status"] = json!({"phase": "Bound", "capacity": {"storage": capacity}, "accessModes": ["ReadWriteOnce"]});
        obj
    }

    #[test]
    fn defaults_and_preparation() {
        let obj = claim(json!({"volumeAttributesClassName": "gold", "dataSource": {"kind": "Thing", "name": "x"}}));
        assert_eq!(obj["spec"]["volumeMode"], "Filesystem");
        assert_eq!(obj["status"], json!({"phase": "Pending"}));
        assert!(obj["spec"].get("volumeAttributesClassName").is_none());
        assert!(obj["spec"].get("dataSource").is_none(), "only claims and snapshots were sources");
        let cloned = claim(json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": "src"}}));
        assert_eq!(cloned["spec"]["dataSourceRef"], json!({"kind": "PersistentVolumeClaim", "name": "src"}));
        let populated = claim(json!({"dataSourceRef": {"apiGroup": "example.com", "kind": "Thing", "name": "x"}}));
        assert_eq!(populated["spec"]["dataSource"], json!({"apiGroup": "example.com", "kind": "Thing", "name": "x"}));
        let crossing =
            claim(json!({"dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "x", "namespace": "other"}}));
        assert!(crossing["spec"].get("dataSourceRef").is_none());
    }

    #[test]
    fn validation_as_upstream() {
        assert!(PersistentVolumeClaims.validate(&claim(json!({}))).is_empty());
        assert_eq!(
            errors(PersistentVolumeClaims.validate(&claim(json!({"accessModes": [], "resources": {},
                "storageClassName": "Bad!", "volumeMode": "Raw", "selector": {"matchLabels": {"a": "b c"}}})))),
            [
                "spec.accessModes: Required value: at least 1 access mode is required",
                "spec.selector.matchLabels: Invalid value: \"b c\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                "spec.resources[storage]: Required value",
                "spec.storageClassName: Invalid value: \"Bad!\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "spec.volumeMode: Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\"",
            ]
        );
        assert_eq!(
            errors(
                PersistentVolumeClaims.validate(&claim(json!({"accessModes": ["ReadWriteOncePod", "ReadOnlyMany"],
                "resources": {"requests": {"storage": "0"}}})))
            ),
            [
                "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
                "spec.resources[storage]: Invalid value: \"0\": must be greater than zero",
            ]
        );
        assert_eq!(
            errors(
                PersistentVolumeClaims
                    .validate(&claim(json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": "a"},
                "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "b"}})))
            ),
            ["spec: Invalid value: field.Path{...}: must match dataSourceRef"]
        );
        assert_eq!(
            errors(
                PersistentVolumeClaims
                    .validate(&claim(json!({"dataSourceRef": {"apiGroup": "Bad_Group", "kind": "", "name": ""}})))
            ),
            [
                "spec.dataSource.name: Required value",
                "spec.dataSource.kind: Required value",
                "spec.dataSource.apiGroup: Invalid value: \"Bad_Group\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "spec.dataSourceRef.name: Required value",
                "spec.dataSourceRef.kind: Required value",
                "spec.dataSourceRef.apiGroup: Invalid value: \"Bad_Group\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ]
        );
    }

    #[test]
    fn spec_is_fixed_after_creation() {
        let old = claim(json!({"storageClassName": "local-path"}));
        let mut new = old.clone();
        new["spec"]["storageClassName"] = json!("fast");
        new["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        let errs = errors(PersistentVolumeClaims.validate_update(&old, &new));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with(&format!("spec: Forbidden: {SPEC_FIXED}\n  core.PersistentVolumeClaimSpec{{\n")),
            "{}",
            errs[0]
        );
        assert!(
            errs[0].contains("- \tStorageClassName: \"local-path\",\n+ \tStorageClassName: \"fast\","),
            "{}",
            errs[0]
        );
        // volumeName once, and a class where there was none
        let mut named = claim(json!({}));
        named["spec"]["volumeName"] = json!("pv1");
        named["spec"]["storageClassName"] = json!("");
        assert!(PersistentVolumeClaims.validate_update(&claim(json!({})), &named).is_empty());
        let mut renamed = named.clone();
        renamed["spec"]["volumeName"] = json!("pv2");
        assert_eq!(errors(PersistentVolumeClaims.validate_update(&named, &renamed)).len(), 1);
        // an unbound claim may not grow
        let mut bigger = old.clone();
        bigger["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert_eq!(errors(PersistentVolumeClaims.validate_update(&old, &bigger)).len(), 1);
    }

    #[test]
    fn bound_claims_grow_but_not_below_capacity() {
        let old = bound(claim(json!({"resources": {"requests": {"storage": "2Gi"}}})), "1Gi");
        let resized = |size: &str| {
            let mut new = old.clone();
            new["spec"]["resources"]["requests"]["storage"] = json!(size);
            errors(PersistentVolumeClaims.validate_update(&old, &new))
        };
        assert!(resized("3Gi").is_empty());
        assert!(resized("1536Mi").is_empty(), "back towards the capacity, to recover from a failed expansion");
        assert_eq!(
            resized("1Gi"),
            ["spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"]
        );
        let mut block = old.clone();
        block["spec"]["volumeMode"] = json!("Block");
        let errs = errors(PersistentVolumeClaims.validate_update(&old, &block));
        assert_eq!(errs.last().map(String::as_str), Some("volumeMode: Invalid value: \"Block\": field is immutable"));
    }

    #[test]
    fn beta_class_annotation_moves_to_the_field() {
        let mut old = claim(json!({}));
        old["metadata"]["annotations"] = json!({BETA_CLASS_ANNOTATION: "slow"});
        let mut new = old.clone();
        new["spec"]["storageClassName"] = json!("slow");
        assert!(PersistentVolumeClaims.validate_update(&old, &new).is_empty());
        let mut changed = old.clone();
        changed["metadata"]["annotations"] = json!({BETA_CLASS_ANNOTATION: "fast"});
        assert_eq!(
            errors(PersistentVolumeClaims.validate_update(&old, &changed)),
            [
                "metadata.annotations.volume.beta.kubernetes.io/storage-class: Invalid value: \"fast\": field is immutable"
            ]
        );
    }

    #[test]
    fn status_updates_as_upstream() {
        let mut obj = bound(claim(json!({})), "1Gi");
        assert!(PersistentVolumeClaims.validate_part_update(Part::Status, &obj, &obj).is_empty());
        obj["status"]["allocatedResourceStatuses"] = json!({"storage": "Growing", "cpu": "NodeResizePending"});
        obj["status"]["allocatedResources"] = json!({"example.com/x": "-1"});
        assert_eq!(
            errors(PersistentVolumeClaims.validate_part_update(Part::Status, &obj, &obj)),
            [
                "status.allocatedResourceStatus: Unsupported value: \"cpu\": supported values: \"storage\"",
                "status.allocatedResourceStatus: Unsupported value: \"storage\": supported values: \"ControllerResizeFailed\", \"ControllerResizeInProgress\", \"NodeResizeFailed\", \"NodeResizeInProgress\", \"NodeResizePending\"",
                "status.allocatedResources[example.com/x]: Invalid value: -1: must be a valid resource quantity",
            ]
        );
    }

    #[test]
    fn classes_and_table() {
        let mut obj = claim(json!({"storageClassName": "local-path"}));
        assert!(names_class(&obj));
        assert_eq!(class_of(&obj), "local-path");
        assert!(!names_class(&claim(json!({}))));
        assert!(names_class(&claim(json!({"storageClassName": ""}))));
        obj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        let now: Timestamp = "2026-01-01T00:00:07Z".parse().expect("time");
        assert_eq!(
            PersistentVolumeClaims.cells(&obj, now),
            [
                json!("data"),
                json!("Pending"),
                json!(""),
                json!(""),
                json!(""),
                json!("local-path"),
                json!("<unset>"),
                json!("7s"),
                json!("Filesystem")
            ]
        );
        let b = bound(obj, "1Gi");
        assert_eq!(
            PersistentVolumeClaims.cells(&b, now)[1..5],
            [json!("Bound"), json!("pv1"), json!("1Gi"), json!("RWO")]
        );
        assert_eq!(requested_storage(&b), 1_073_741_824_000);
    }
}
