//! PersistentVolumes (core/v1): a piece of storage the cluster offers, bound to at most one
//! claim. Defaults (`SetDefaults_PersistentVolume` and its sources'), the strategy's status on
//! create (Pending, with its transition time), validation (`ValidatePersistentVolumeSpec` for
//! the common fields and the sources skiff's nodes mount: `hostPath`, `local`, `nfs`, `csi`),
//! update rules (`ValidatePersistentVolumeUpdate`) and the table (`printPersistentVolume`).
//! What PersistentVolumeClaims share with volumes (access modes, quantities, class names) is
//! here too.

use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, Part, ResourceInfo, TypedSchema, roundtrip, schema_of, typed,
};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::{go_diff, meta, names, quantity};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, NodeSelectorRequirement, PersistentVolume, PersistentVolumeSpec, SecretReference,
    VolumeNodeAffinity,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

pub struct PersistentVolumes;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    plural: "persistentvolumes",
    singular: "persistentvolume",
    kind: "PersistentVolume",
    namespaced: false,
    short_names: &["pv"],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[("status", "PersistentVolume", &["get", "patch", "update"])],
};

static COLUMNS: [Column; 11] = [
    NAME_COLUMN,
    Column::new(
        "Capacity",
        0,
        "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity",
    ),
    Column::new(
        "Access Modes",
        0,
        "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes",
    ),
    Column::new(
        "Reclaim Policy",
        0,
        "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming",
    ),
    Column::new(
        "Status",
        0,
        "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase",
    ),
    Column::new(
        "Claim",
        0,
        "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding",
    ),
    Column::new("StorageClass", 0, "StorageClass of the pv"),
    Column::new("VolumeAttributesClass", 0, "VolumeAttributesClass of the pv"),
    Column::new(
        "Reason",
        0,
        "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
    ),
    AGE_COLUMN,
    Column::new(
        "VolumeMode",
        1,
        "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.",
    ),
];

/// The finalizer the StorageObjectInUseProtection admission puts on every volume.
pub const PROTECTION_FINALIZER: &str = "kubernetes.io/pv-protection";
/// Upstream's sorted lists, as its `NotSupported` errors name them.
pub(super) const ACCESS_MODES: &[&str] = &["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
pub(super) const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
const RECLAIM_POLICIES: &[&str] = &["Delete", "Recycle", "Retain"];
const HOST_PATH_TYPES: &[&str] =
    &["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"];
/// The old way to name a volume's or claim's class, read before `storageClassName`.
pub(super) const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";
const MOUNT_OPTIONS_ANNOTATION: &str = "volume.beta.kubernetes.io/mount-options";
/// `resource.Quantity`'s format, which upstream's decoding enforces.
const QUANTITY_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// The volume sources in the order upstream checks them (the second one found is the error).
const SOURCES: &[&str] = &[
    "hostPath",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "flocker",
    "nfs",
    "rbd",
    "quobyte",
    "cephfs",
    "iscsi",
    "cinder",
    "fc",
    "flexVolume",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "scaleIO",
    "local",
    "storageos",
    "csi",
];
/// The sources whose plugins take mount options (`checkMountOption`).
const MOUNT_OPTION_SOURCES: &[&str] = &[
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "glusterfs",
    "nfs",
    "rbd",
    "quobyte",
    "iscsi",
    "cinder",
    "cephfs",
    "azureFile",
    "vsphereVolume",
    "azureDisk",
    "photonPersistentDisk",
];
/// Node label keys a volume's node affinity may move from (beta) to (GA) after creation.
const BETA_TO_GA_LABELS: &[(&str, &str)] = &[
    ("failure-domain.beta.kubernetes.io/zone", "topology.kubernetes.io/zone"),
    ("failure-domain.beta.kubernetes.io/region", "topology.kubernetes.io/region"),
    ("beta.kubernetes.io/os", "kubernetes.io/os"),
    ("beta.kubernetes.io/arch", "kubernetes.io/arch"),
    ("beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type"),
];

/// A quantity's value in thousandths (0 when it does not parse: decoding refused those).
pub(super) fn milli(q: &Quantity) -> i128 {
    quantity::parse_milli(&q.0).unwrap_or(0)
}

/// `Quantity.Value()`: the value rounded up to an integer.
fn int_value(q: &Quantity) -> i128 {
    let m = milli(q);
    if m >= 0 { (m + 999) / 1000 } else { m / 1000 }
}

/// Decoding: every quantity at `pointers` (maps of them) must parse, as upstream's decoder
/// insists, else the body is refused as the kind's decode error.
pub(super) fn check_quantities(obj: &Value, kind: &str, pointers: &[&str]) -> Result<(), DecodeError> {
    for p in pointers {
        let values = obj.pointer(p).and_then(Value::as_object).into_iter().flat_map(Map::values);
        for v in values {
            if v.as_str().and_then(quantity::parse_milli).is_none() {
                return Err(DecodeError::Malformed(format!(
                    "{kind} in version \"v1\" cannot be handled as a {kind}: {QUANTITY_ERROR}"
                )));
            }
        }
    }
    Ok(())
}

/// `validateBasicResource`: a quantity whose integer value is negative is no quantity.
pub(super) fn basic_quantity(q: &Quantity, path: &Path, errs: &mut ErrorList) {
    if int_value(q) < 0 {
        errs.push(FieldError::invalid(path, json!(int_value(q) as i64), "must be a valid resource quantity"));
    }
}

/// `validateBasicResource` and `ValidatePositiveQuantityValue` of one quantity.
pub(super) fn positive_quantity(q: &Quantity, path: &Path, errs: &mut ErrorList) {
    basic_quantity(q, path, errs);
    if milli(q) <= 0 {
        errs.push(FieldError::invalid(path, q.0.as_str(), "must be greater than zero"));
    }
}

/// Each access mode supported, and ReadWriteOncePod alone.
pub(super) fn validate_access_modes(modes: &[String], path: &Path, errs: &mut ErrorList) {
    let (mut once_pod, mut others) = (false, false);
    for m in modes {
        if !ACCESS_MODES.contains(&m.as_str()) {
            errs.push(FieldError::not_supported(path, m.as_str(), ACCESS_MODES));
        } else if m == "ReadWriteOncePod" {
            once_pod = true;
        } else {
            others = true;
        }
    }
    if once_pod && others {
        errs.push(FieldError::forbidden(path, "may not use ReadWriteOncePod with other access modes"));
    }
}

/// `GetAccessModesAsString`: `RWO,ROX,RWX,RWOP`, in that order whatever the list's.
pub(super) fn access_modes_cell(modes: &[String]) -> String {
    let abbreviations =
        [("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP")];
    let held: Vec<&str> = abbreviations.iter().filter(|(m, _)| modes.iter().any(|x| x == m)).map(|(_, a)| *a).collect();
    held.join(",")
}

/// `ValidateClassName` of a non-empty class name.
pub(super) fn class_name(name: &str, path: &Path, errs: &mut ErrorList) {
    errs.extend(names::invalid_all(path, name, names::dns1123_subdomain(name)));
}

/// A map of quantities as Go's `%#v` starts it (its quantities elided).
pub(super) fn resource_list(list: Option<&BTreeMap<String, Quantity>>) -> BadValue {
    match list {
        None => BadValue::Go("core.ResourceList(nil)".into()),
        Some(l) => {
            let entries: Vec<String> =
                l.keys().map(|k| format!("{}:resource.Quantity{{...}}", crate::field::go_quote(k))).collect();
            BadValue::Go(format!("core.ResourceList{{{}}}", entries.join(", ")))
        }
    }
}

/// Strip what Go's semantic equality ignores (nulls, empty lists) before comparing two values.
pub(super) fn semantic(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null() && !v.as_array().is_some_and(Vec::is_empty))
                .map(|(k, v)| (k.clone(), semantic(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(semantic).collect()),
        other => other.clone(),
    }
}

fn with_volume(obj: &mut Value, f: impl FnOnce(&mut PersistentVolume)) {
    let mut pv: PersistentVolume = typed(obj);
    f(&mut pv);
    if let Ok(v) = serde_json::to_value(&pv) {
        *obj = v;
    }
}

/// The volume's source fields (a Go `PersistentVolumeSource`) as JSON.
fn source_of(spec: &Value) -> Value {
    let fields = SOURCES.iter().filter_map(|s| Some((s.to_string(), spec.get(*s).filter(|v| !v.is_null())?.clone())));
    Value::Object(fields.collect())
}

/// The status a new volume starts with (the strategy's `PrepareForCreate`).
fn prepare_status(obj: &mut Value, now: Timestamp) {
    obj["status"] = json!({"phase": "Pending", "lastPhaseTransitionTime": crate::time::rfc3339(now)});
}

/// `SetDefaults_PersistentVolume` and the defaults of the volume sources it holds.
fn default_volume(pv: &mut PersistentVolume) {
    let status = pv.status.get_or_insert_with(Default::default);
    if status.phase.as_deref().is_none_or(str::is_empty) {
        status.phase = Some("Pending".into());
    }
    let spec = pv.spec.get_or_insert_with(Default::default);
    let policy = spec.persistent_volume_reclaim_policy.get_or_insert_with(String::new);
    if policy.is_empty() {
        *policy = "Retain".into();
    }
    spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
    if let Some(h) = spec.host_path.as_mut() {
        h.type_.get_or_insert_with(String::new);
    }
    let fill = |field: &mut Option<String>, value: &str| {
        if field.as_deref().is_none_or(str::is_empty) {
            *field = Some(value.into());
        }
    };
    if let Some(r) = spec.rbd.as_mut() {
        fill(&mut r.pool, "rbd");
        fill(&mut r.user, "admin");
        fill(&mut r.keyring, "/etc/ceph/keyring");
    }
    if let Some(i) = spec.iscsi.as_mut() {
        fill(&mut i.iscsi_interface, "default");
    }
    if let Some(a) = spec.azure_disk.as_mut() {
        a.caching_mode.get_or_insert_with(|| "ReadWrite".into());
        a.kind.get_or_insert_with(|| "Shared".into());
        a.fs_type.get_or_insert_with(|| "ext4".into());
        a.read_only.get_or_insert(false);
    }
    if let Some(s) = spec.scale_io.as_mut() {
        fill(&mut s.storage_mode, "ThinProvisioned");
        fill(&mut s.fs_type, "xfs");
    }
}

/// Whether Go's `path.Clean` makes this path `/` (the whole host).
fn cleans_to_root(p: &str) -> bool {
    let mut depth = 0usize;
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => depth = depth.saturating_sub(1),
            _ => depth += 1,
        }
    }
    p.starts_with('/') && depth == 0
}

/// `validatePathNoBacksteps`.
fn no_backsteps(p: &str, path: &Path, errs: &mut ErrorList) {
    if p.split('/').any(|s| s == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
}

fn validate_source(name: &str, spec: &PersistentVolumeSpec, path: &Path, errs: &mut ErrorList) {
    match name {
        "hostPath" => {
            let Some(h) = &spec.host_path else { return };
            if h.path.is_empty() {
                errs.push(FieldError::required(&path.child("path"), ""));
                return;
            }
            no_backsteps(&h.path, &path.child("path"), errs);
            if let Some(t) = h.type_.as_deref().filter(|t| !HOST_PATH_TYPES.contains(t)) {
                errs.push(FieldError::not_supported(&path.child("type"), t, HOST_PATH_TYPES));
            }
        }
        "local" => {
            let Some(l) = &spec.local else { return };
            if l.path.is_empty() {
                errs.push(FieldError::required(&path.child("path"), ""));
                return;
            }
            no_backsteps(&l.path, &path.child("path"), errs);
        }
        "nfs" => {
            let Some(n) = &spec.nfs else { return };
            if n.server.is_empty() {
                errs.push(FieldError::required(&path.child("server"), ""));
            }
            if n.path.is_empty() {
                errs.push(FieldError::required(&path.child("path"), ""));
            }
            if !n.path.starts_with('/') {
                errs.push(FieldError::invalid(&path.child("path"), n.path.as_str(), "must be an absolute path"));
            }
        }
        "csi" => {
            if let Some(c) = &spec.csi {
                validate_csi(c, path, errs);
            }
        }
        _ => {}
    }
}

/// `validateCSIPersistentVolumeSource`.
fn validate_csi(c: &CSIPersistentVolumeSource, path: &Path, errs: &mut ErrorList) {
    let driver = path.child("driver");
    if c.driver.is_empty() {
        errs.push(FieldError::required(&driver, ""));
    }
    if c.driver.len() > 63 {
        errs.push(FieldError::too_long(&driver, 63));
    }
    errs.extend(names::invalid_all(&driver, &c.driver, names::dns1123_subdomain(&c.driver.to_lowercase())));
    if c.volume_handle.is_empty() {
        errs.push(FieldError::required(&path.child("volumeHandle"), ""));
    }
    let refs = [
        ("controllerPublishSecretRef", &c.controller_publish_secret_ref),
        ("controllerExpandSecretRef", &c.controller_expand_secret_ref),
        ("nodePublishSecretRef", &c.node_publish_secret_ref),
        ("nodeExpandSecretRef", &c.node_expand_secret_ref),
    ];
    for (field, r) in refs {
        if let Some(r) = r {
            secret_reference(r, &path.child(field), errs);
        }
    }
}

/// `validatePVSecretReference`.
fn secret_reference(r: &SecretReference, path: &Path, errs: &mut ErrorList) {
    match r.name.as_deref().unwrap_or_default() {
        "" => errs.push(FieldError::required(&path.child("name"), "")),
        n => errs.extend(names::invalid_all(&path.child("name"), n, names::dns1123_subdomain(n))),
    }
    match r.namespace.as_deref().unwrap_or_default() {
        "" => errs.push(FieldError::required(&path.child("namespace"), "")),
        n => errs.extend(names::invalid_all(&path.child("namespace"), n, names::dns1123_label(n))),
    }
}

/// `validateVolumeNodeAffinity` (`ValidateNodeSelector` of `required`).
fn validate_node_affinity(a: &VolumeNodeAffinity, allow_invalid_values: bool, path: &Path, errs: &mut ErrorList) {
    let Some(required) = &a.required else {
        errs.push(FieldError::required(&path.child("required"), "must specify required node constraints"));
        return;
    };
    let terms = path.child("required").child("nodeSelectorTerms");
    if required.node_selector_terms.is_empty() {
        errs.push(FieldError::required(&terms, "must have at least one node selector term"));
        return;
    }
    for (i, term) in required.node_selector_terms.iter().enumerate() {
        let tp = terms.index(i);
        for (j, req) in term.match_expressions.iter().flatten().enumerate() {
            node_requirement(req, allow_invalid_values, &tp.child("matchExpressions").index(j), errs);
        }
        for (j, req) in term.match_fields.iter().flatten().enumerate() {
            node_field_requirement(req, &tp.child("matchFields").index(j), errs);
        }
    }
}

/// `ValidateNodeSelectorRequirement`.
fn node_requirement(req: &NodeSelectorRequirement, allow_invalid_values: bool, path: &Path, errs: &mut ErrorList) {
    let values = req.values.as_deref().unwrap_or_default();
    let vp = path.child("values");
    match req.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => {
            errs.push(FieldError::required(&vp, "must be specified when `operator` is 'In' or 'NotIn'"))
        }
        "Exists" | "DoesNotExist" if !values.is_empty() => {
            errs.push(FieldError::forbidden(&vp, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        }
        "Gt" | "Lt" if values.len() != 1 => {
            errs.push(FieldError::required(&vp, "must be specified single value when `operator` is 'Lt' or 'Gt'"))
        }
        "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
        other => errs.push(FieldError::invalid(&path.child("operator"), other, "not a valid selector operator")),
    }
    errs.extend(names::invalid_all(&path.child("key"), &req.key, names::qualified_name(&req.key)));
    if !allow_invalid_values {
        for (i, v) in values.iter().enumerate() {
            errs.extend(names::invalid_all(&vp.index(i), v, names::label_value(v)));
        }
    }
}

/// `ValidateNodeFieldSelectorRequirement`: only `metadata.name`, with one value.
fn node_field_requirement(req: &NodeSelectorRequirement, path: &Path, errs: &mut ErrorList) {
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" | "NotIn" if values.len() != 1 => errs.push(FieldError::required(
            &path.child("values"),
            "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
        )),
        "In" | "NotIn" => {}
        other => errs.push(FieldError::invalid(&path.child("operator"), other, "not a valid selector operator")),
    }
    if req.key != "metadata.name" {
        errs.push(FieldError::invalid(&path.child("key"), req.key.as_str(), "not a valid field selector key"));
    } else {
        for (i, v) in values.iter().enumerate() {
            errs.extend(names::invalid_all(&path.child("values").index(i), v, names::dns1123_subdomain(v)));
        }
    }
}

/// Whether any of the affinity's label values is invalid (such a stored volume keeps them).
fn has_invalid_values(a: Option<&VolumeNodeAffinity>) -> bool {
    let terms = a.and_then(|a| a.required.as_ref()).map(|r| r.node_selector_terms.as_slice()).unwrap_or_default();
    terms
        .iter()
        .flat_map(|t| t.match_expressions.iter().flatten())
        .any(|r| r.values.iter().flatten().any(|v| !names::label_value(v).is_empty()))
}

/// `ValidatePersistentVolumeSpec` (not inline).
fn validate_spec(spec: &PersistentVolumeSpec, allow_invalid_values: bool, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    if modes.is_empty() {
        errs.push(FieldError::required(&path.child("accessModes"), ""));
    }
    validate_access_modes(modes, &path.child("accessModes"), &mut errs);
    let capacity = path.child("capacity");
    let held = spec.capacity.as_ref().map_or(0, BTreeMap::len);
    if held == 0 {
        errs.push(FieldError::required(&capacity, ""));
    }
    if !spec.capacity.as_ref().is_some_and(|c| c.contains_key("storage")) || held > 1 {
        let value = resource_list(spec.capacity.as_ref());
        let supported = "supported values: \"storage\"";
        errs.push(FieldError {
            kind: crate::field::ErrorType::NotSupported,
            field: capacity.clone(),
            value: Some(value),
            detail: supported.into(),
        });
    }
    for (r, q) in spec.capacity.iter().flatten() {
        positive_quantity(q, &capacity.key(r), &mut errs);
    }
    if let Some(p) = spec.persistent_volume_reclaim_policy.as_deref().filter(|p| !p.is_empty())
        && !RECLAIM_POLICIES.contains(&p)
    {
        errs.push(FieldError::not_supported(&path.child("persistentVolumeReclaimPolicy"), p, RECLAIM_POLICIES));
    }
    if let Some(a) = &spec.node_affinity {
        validate_node_affinity(a, allow_invalid_values, &path.child("nodeAffinity"), &mut errs);
    }
    let value = serde_json::to_value(spec).unwrap_or_default();
    let mut count = 0;
    for name in SOURCES.iter().filter(|s| value.get(**s).is_some_and(|v| !v.is_null())) {
        // Upstream counts a flexVolume without asking whether another came first.
        if *name != "flexVolume" && count > 0 {
            let reported = if *name == "cephfs" { "cephFS" } else { *name };
            errs.push(FieldError::forbidden(&path.child(reported), "may not specify more than 1 volume type"));
            continue;
        }
        count += 1;
        validate_source(name, spec, &path.child(name), &mut errs);
        if *name == "local" && spec.node_affinity.is_none() {
            errs.push(FieldError::required(&path.child("nodeAffinity"), "Local volume requires node affinity"));
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    let policy = spec.persistent_volume_reclaim_policy.as_deref();
    if spec.host_path.as_ref().is_some_and(|h| cleans_to_root(&h.path)) && policy == Some("Recycle") {
        errs.push(FieldError::forbidden(
            &path.child("persistentVolumeReclaimPolicy"),
            "may not be 'recycle' for a hostPath mount of '/'",
        ));
    }
    if let Some(c) = spec.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        class_name(c, &path.child("storageClassName"), &mut errs);
    }
    if let Some(m) = spec.volume_mode.as_deref().filter(|m| !VOLUME_MODES.contains(m)) {
        errs.push(FieldError::not_supported(&path.child("volumeMode"), m, VOLUME_MODES));
    }
    errs
}

/// `ValidatePersistentVolume`: metadata and spec.
fn validate_volume(obj: &Value, allow_invalid_values: bool) -> ErrorList {
    let mut errs = meta::validate(obj, false, false);
    let pv: PersistentVolume = typed(obj);
    errs.extend(validate_spec(&pv.spec.unwrap_or_default(), allow_invalid_values, &Path::new("spec")));
    errs
}

/// `checkMountOption`: the old mount-options annotation, only for sources that take options.
fn validate_mount_options(obj: &Value) -> ErrorList {
    let spec = obj.get("spec").cloned().unwrap_or_default();
    let takes_options = MOUNT_OPTION_SOURCES.iter().any(|s| spec.get(*s).is_some_and(|v| !v.is_null()));
    if takes_options || !meta::str_map(obj, "annotations").contains_key(MOUNT_OPTIONS_ANNOTATION) {
        return vec![];
    }
    let path = Path::new("metadata").child("annotations").child(MOUNT_OPTIONS_ANNOTATION);
    vec![FieldError::forbidden(&path, "may not specify mount options for this volume type")]
}

/// The rest of `ValidatePersistentVolumeUpdate`: the source and volume mode are fixed, and the
/// node affinity once set (but for beta node labels moving to their GA names).
fn validate_spec_update(old: &Value, new: &Value) -> ErrorList {
    let mut errs = Vec::new();
    let (o, n): (PersistentVolume, PersistentVolume) = (typed(old), typed(new));
    let (os, ns) = (o.spec.unwrap_or_default(), n.spec.unwrap_or_default());
    let (oj, mut nj) = (old.get("spec").cloned().unwrap_or_default(), new.get("spec").cloned().unwrap_or_default());
    // A CSI volume may be given the secret to expand with later.
    let expand_ref = |s: &PersistentVolumeSpec| s.csi.as_ref().map(|c| c.controller_expand_secret_ref.is_some());
    if expand_ref(&os) == Some(false)
        && expand_ref(&ns) == Some(true)
        && let Some(csi) = nj.get_mut("csi").and_then(Value::as_object_mut)
    {
        csi.remove("controllerExpandSecretRef");
    }
    let (old_source, new_source) = (source_of(&oj), source_of(&nj));
    if semantic(&old_source) != semantic(&new_source) {
        let diff = go_diff::diff("core.PersistentVolumeSource", &old_source, &new_source);
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("persistentvolumesource"),
            format!("spec.persistentvolumesource is immutable after creation\n{diff}"),
        ));
    }
    if os.volume_mode != ns.volume_mode {
        // A nil pointer is reported as the string "null", as Go's field errors do.
        let value = ns.volume_mode.unwrap_or_else(|| "null".into());
        errs.push(FieldError::invalid(&Path::new("volumeMode"), value, "field is immutable"));
    }
    if let Some(old_affinity) = &os.node_affinity
        && !same_affinity(old_affinity, ns.node_affinity.as_ref())
    {
        let value = match ns.node_affinity {
            Some(_) => BadValue::Go("core.VolumeNodeAffinity{...}".into()),
            None => BadValue::Json(json!("null")),
        };
        errs.push(FieldError::invalid_go(
            &Path::new("nodeAffinity"),
            value,
            "field is immutable, except for updating from beta label to GA",
        ));
    }
    if os.volume_attributes_class_name != ns.volume_attributes_class_name {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("volumeAttributesClassName"),
            "update is forbidden when the VolumeAttributesClass feature gate is disabled",
        ));
    }
    errs
}

/// Whether `new` is `old`, a beta node label key it named turned GA allowed.
fn same_affinity(old: &VolumeNodeAffinity, new: Option<&VolumeNodeAffinity>) -> bool {
    let Some(new) = new else { return false };
    let mut old = old.clone();
    let new_terms = new.required.as_ref().map(|r| r.node_selector_terms.as_slice()).unwrap_or_default();
    for (i, term) in old.required.iter_mut().flat_map(|r| r.node_selector_terms.iter_mut()).enumerate() {
        let new_exprs = new_terms.get(i).and_then(|t| t.match_expressions.as_deref()).unwrap_or_default();
        for (j, req) in term.match_expressions.iter_mut().flatten().enumerate() {
            if let Some(n) = new_exprs.get(j)
                && BETA_TO_GA_LABELS.iter().any(|(beta, ga)| *beta == req.key && *ga == n.key)
            {
                req.key = n.key.clone();
            }
        }
    }
    let as_json = |a: &VolumeNodeAffinity| semantic(&serde_json::to_value(a).unwrap_or_default());
    as_json(&old) == as_json(new)
}

impl Kind for PersistentVolumes {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<PersistentVolume>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        check_quantities(raw, "PersistentVolume", &["/spec/capacity"])?;
        roundtrip::<PersistentVolume>(raw)
    }
    fn default(&self, obj: &mut Value) {
        with_volume(obj, default_volume);
    }
    /// The strategy's `PrepareForCreate`: a new volume is Pending since now; a disabled field
    /// (`volumeAttributesClassName`, off by default in 1.32) is dropped.
    fn prepare_create(&self, obj: &mut Value) {
        prepare_status(obj, Timestamp::now());
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.remove("volumeAttributesClassName");
        }
    }
    fn prepare_update(&self, old: &Value, new: &mut Value) {
        super::keep_status(old, new);
        if old.pointer("/spec/volumeAttributesClassName").is_none()
            && let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.remove("volumeAttributesClassName");
        }
    }
    /// Everything but the status comes from the stored volume; a phase change is timed
    /// unless the writer timed it.
    fn prepare_status_update(&self, old: &Value, new: &mut Value) {
        super::status_only(old, new);
        time_phase_change(old, new, Timestamp::now());
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = validate_volume(obj, false);
        errs.extend(validate_mount_options(obj));
        errs
    }
    /// As upstream's strategy: the new volume's validation, then `ValidatePersistentVolumeUpdate`
    /// (which validates it again; the message shows each error once).
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let old_affinity = typed::<PersistentVolume>(old).spec.and_then(|s| s.node_affinity);
        let allow = has_invalid_values(old_affinity.as_ref());
        let mut errs = validate_volume(new, allow);
        errs.extend(validate_mount_options(new));
        errs.extend(validate_volume(new, allow));
        errs.extend(validate_spec_update(old, new));
        errs
    }
    /// `ValidatePersistentVolumeStatusUpdate` checks only metadata, which the registry keeps.
    fn validate_part_update(&self, part: Part, old: &Value, new: &Value) -> ErrorList {
        match part {
            Part::Status => vec![],
            _ => self.validate_update(old, new),
        }
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    /// Upstream's `printPersistentVolume`.
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let pv: PersistentVolume = typed(obj);
        let spec = pv.spec.unwrap_or_default();
        let status = pv.status.unwrap_or_default();
        let claim = spec.claim_ref.as_ref().map_or(String::new(), |c| {
            format!("{}/{}", c.namespace.as_deref().unwrap_or_default(), c.name.as_deref().unwrap_or_default())
        });
        let capacity = spec.capacity.as_ref().and_then(|c| c.get("storage")).map_or("0".to_string(), |q| q.0.clone());
        let phase = if meta::is_deleting(obj) { "Terminating".to_string() } else { status.phase.unwrap_or_default() };
        let class = match meta::str_map(obj, "annotations").get(BETA_CLASS_ANNOTATION) {
            Some(c) => c.clone(),
            None => spec.storage_class_name.clone().unwrap_or_default(),
        };
        vec![
            json!(meta::name(obj)),
            json!(capacity),
            json!(access_modes_cell(spec.access_modes.as_deref().unwrap_or_default())),
            json!(spec.persistent_volume_reclaim_policy.unwrap_or_default()),
            json!(phase),
            json!(claim),
            json!(class),
            json!(spec.volume_attributes_class_name.unwrap_or_else(|| "<unset>".into())),
            json!(status.reason.unwrap_or_default()),
            json!(meta::age(obj, now)),
            json!(spec.volume_mode.unwrap_or_else(|| "<unset>".into())),
        ]
    }
}

/// The status strategy's transition time: kept while the phase stays, set to `now` when the
/// phase changes and the writer left the time as it was.
fn time_phase_change(old: &Value, new: &mut Value, now: Timestamp) {
    let phase = |v: &Value| v.pointer("/status/phase").cloned();
    let at = |v: &Value| v.pointer("/status/lastPhaseTransitionTime").cloned();
    let Some(status) = new.get_mut("status").and_then(Value::as_object_mut) else { return };
    let (old_at, new_at) = (at(old), status.get("lastPhaseTransitionTime").cloned());
    let new_phase = status.get("phase").cloned();
    if phase(old) == new_phase {
        if new_at.is_none()
            && let Some(t) = old_at
        {
            status.insert("lastPhaseTransitionTime".into(), t);
        }
    } else if new_at.is_none() || new_at == old_at {
        status.insert("lastPhaseTransitionTime".into(), json!(crate::time::rfc3339(now)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(spec: Value) -> Value {
        let mut obj =
            json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"}, "spec": spec});
        PersistentVolumes.default(&mut obj);
        obj
    }

    fn host_path(extra: Value) -> Value {
        let mut spec = json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/data/pv1"}});
        spec.as_object_mut().expect("object").extend(extra.as_object().cloned().unwrap_or_default());
        volume(spec)
    }

    fn errors(errs: ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_and_status_on_create() {
        let mut obj = volume(json!({"hostPath": {"path": "/x"}, "rbd": {"image": "i", "monitors": ["m"]}}));
        assert_eq!(obj["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(obj["spec"]["volumeMode"], "Filesystem");
        assert_eq!(obj["spec"]["hostPath"]["type"], "");
        assert_eq!(obj["spec"]["rbd"]["pool"], "rbd");
        assert_eq!(obj["spec"]["rbd"]["keyring"], "/etc/ceph/keyring");
        assert_eq!(obj["status"]["phase"], "Pending");
        obj["status"] = json!({"phase": "Bound"});
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        prepare_status(&mut obj, now);
        assert_eq!(obj["status"], json!({"phase": "Pending", "lastPhaseTransitionTime": "2026-01-01T00:00:00Z"}));
        let kept = volume(json!({"persistentVolumeReclaimPolicy": "Delete", "volumeMode": "Block"}));
        assert_eq!(
            (kept["spec"]["persistentVolumeReclaimPolicy"].as_str(), kept["spec"]["volumeMode"].as_str()),
            (Some("Delete"), Some("Block"))
        );
    }

    #[test]
    fn spec_validation_as_upstream() {
        assert!(PersistentVolumes.validate(&host_path(json!({}))).is_empty());
        assert_eq!(
            errors(PersistentVolumes.validate(&volume(json!({})))),
            [
                "spec.accessModes: Required value",
                "spec.capacity: Required value",
                "spec.capacity: Unsupported value: core.ResourceList(nil): supported values: \"storage\"",
                "spec: Required value: must specify a volume type",
            ]
        );
        assert_eq!(
            errors(PersistentVolumes.validate(&host_path(json!({"capacity": {"storage": "0"},
                "accessModes": ["ReadWriteOncePod", "ReadWriteOnce", "Sometimes"],
                "persistentVolumeReclaimPolicy": "Keep", "storageClassName": "Fast_One", "volumeMode": "Raw"})))),
            [
                "spec.accessModes: Unsupported value: \"Sometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
                "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
                "spec.capacity[storage]: Invalid value: \"0\": must be greater than zero",
                "spec.persistentVolumeReclaimPolicy: Unsupported value: \"Keep\": supported values: \"Delete\", \"Recycle\", \"Retain\"",
                "spec.storageClassName: Invalid value: \"Fast_One\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "spec.volumeMode: Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\"",
            ]
        );
        assert_eq!(
            errors(PersistentVolumes.validate(&host_path(json!({"capacity": {"storage": "-1Gi", "cpu": "1"}})))),
            [
                "spec.capacity: Unsupported value: core.ResourceList{\"cpu\":resource.Quantity{...}, \"storage\":resource.Quantity{...}}: supported values: \"storage\"",
                "spec.capacity[storage]: Invalid value: -1073741824: must be a valid resource quantity",
                "spec.capacity[storage]: Invalid value: \"-1Gi\": must be greater than zero",
            ]
        );
    }

    #[test]
    fn sources_as_upstream() {
        assert_eq!(
            errors(PersistentVolumes.validate(&host_path(json!({"hostPath": {"path": "/a/../b", "type": "Dir"},
                "nfs": {"server": "s", "path": "/x"}})))),
            [
                "spec.hostPath.path: Invalid value: \"/a/../b\": must not contain '..'",
                "spec.hostPath.type: Unsupported value: \"Dir\": supported values: \"\", \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\"",
                "spec.nfs: Forbidden: may not specify more than 1 volume type",
            ]
        );
        assert_eq!(
            errors(PersistentVolumes.validate(&host_path(json!({"hostPath": null, "local": {"path": ""}})))),
            [
                "spec.local.path: Required value",
                "spec.nodeAffinity: Required value: Local volume requires node affinity"
            ]
        );
        let affinity = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}]}]}});
        assert!(
            PersistentVolumes
                .validate(&host_path(
                    json!({"hostPath": null, "local": {"path": "/mnt/disk"}, "nodeAffinity": affinity})
                ))
                .is_empty()
        );
        let bad = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In"}, {"key": "a", "operator": "Near", "values": ["x y"]}],
            "matchFields": [{"key": "spec.nodeName", "operator": "In", "values": ["n"]}]}]}});
        assert_eq!(
            errors(PersistentVolumes.validate(&host_path(json!({"nodeAffinity": bad})))),
            [
                "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[1].operator: Invalid value: \"Near\": not a valid selector operator",
                "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[1].values[0]: Invalid value: \"x y\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                "spec.nodeAffinity.required.nodeSelectorTerms[0].matchFields[0].key: Invalid value: \"spec.nodeName\": not a valid field selector key",
            ]
        );
        assert_eq!(
            errors(
                PersistentVolumes
                    .validate(&host_path(json!({"nodeAffinity": {"required": {"nodeSelectorTerms": []}}})))
            ),
            ["spec.nodeAffinity.required.nodeSelectorTerms: Required value: must have at least one node selector term"]
        );
        assert_eq!(
            errors(
                PersistentVolumes.validate(&host_path(json!({"hostPath": null, "nfs": {"server": "", "path": "x"}})))
            ),
            ["spec.nfs.server: Required value", "spec.nfs.path: Invalid value: \"x\": must be an absolute path"]
        );
        assert_eq!(
            errors(
                PersistentVolumes
                    .validate(&host_path(json!({"hostPath": null, "csi": {"driver": "", "volumeHandle": "",
                "nodePublishSecretRef": {"name": "s"}}})))
            ),
            [
                "spec.csi.driver: Required value",
                "spec.csi.driver: Invalid value: \"\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "spec.csi.volumeHandle: Required value",
                "spec.csi.nodePublishSecretRef.namespace: Required value",
            ]
        );
        assert_eq!(
            errors(
                PersistentVolumes.validate(&host_path(
                    json!({"hostPath": {"path": "//"}, "persistentVolumeReclaimPolicy": "Recycle"})
                ))
            ),
            ["spec.persistentVolumeReclaimPolicy: Forbidden: may not be 'recycle' for a hostPath mount of '/'"]
        );
        let mut with_options = host_path(json!({}));
        with_options["metadata"]["annotations"] = json!({MOUNT_OPTIONS_ANNOTATION: "ro"});
        assert_eq!(
            errors(PersistentVolumes.validate(&with_options)),
            [
                "metadata.annotations.volume.beta.kubernetes.io/mount-options: Forbidden: may not specify mount options for this volume type"
            ]
        );
    }

    #[test]
    fn updates_keep_the_source_mode_and_affinity() {
        let old = host_path(json!({}));
        let mut new = host_path(json!({"hostPath": {"path": "/data/other"}, "volumeMode": "Block"}));
        new["metadata"] = old["metadata"].clone();
        let errs = errors(PersistentVolumes.validate_update(&old, &new));
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation\n  core.PersistentVolumeSource{\n"),
            "{}",
            errs[0]
        );
        assert!(errs[0].contains("- \t\tPath: \"/data/pv1\",\n+ \t\tPath: \"/data/other\","), "{}", errs[0]);
        assert_eq!(errs[1], "volumeMode: Invalid value: \"Block\": field is immutable");
        // status, claim, class and capacity may change
        let grown = host_path(json!({"capacity": {"storage": "2Gi"}, "storageClassName": "local",
            "claimRef": {"namespace": "default", "name": "data"}}));
        assert!(PersistentVolumes.validate_update(&old, &grown).is_empty());
        let zone = |key: &str| {
            host_path(json!({"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": key, "operator": "In", "values": ["z1"]}]}]}}}))
        };
        let beta = zone("failure-domain.beta.kubernetes.io/zone");
        assert!(PersistentVolumes.validate_update(&beta, &zone("topology.kubernetes.io/zone")).is_empty());
        assert_eq!(
            errors(PersistentVolumes.validate_update(&beta, &zone("example.com/zone"))),
            [
                "nodeAffinity: Invalid value: core.VolumeNodeAffinity{...}: field is immutable, except for updating from beta label to GA"
            ]
        );
        // a volume with no affinity may be given one
        assert!(PersistentVolumes.validate_update(&old, &beta).is_empty());
    }

    #[test]
    fn status_updates_time_phase_changes() {
        let now: Timestamp = "2026-01-02T00:00:00Z".parse().expect("time");
        let old = json!({"status": {"phase": "Pending", "lastPhaseTransitionTime": "2026-01-01T00:00:00Z"}});
        let mut same = json!({"status": {"phase": "Pending"}});
        time_phase_change(&old, &mut same, now);
        assert_eq!(same["status"]["lastPhaseTransitionTime"], "2026-01-01T00:00:00Z");
        let mut bound = json!({"status": {"phase": "Bound", "lastPhaseTransitionTime": "2026-01-01T00:00:00Z"}});
        time_phase_change(&old, &mut bound, now);
        assert_eq!(bound["status"]["lastPhaseTransitionTime"], "2026-01-02T00:00:00Z");
        assert!(PersistentVolumes.validate_part_update(Part::Status, &old, &bound).is_empty());
    }

    #[test]
    fn quantities_must_parse() {
        let raw = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "p"},
            "spec": {"capacity": {"storage": "lots"}}});
        let err = PersistentVolumes.normalize(&raw).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "PersistentVolume in version \"v1\" cannot be handled as a PersistentVolume: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn table_row_as_upstream() {
        let mut obj = host_path(json!({"accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadOnlyMany"],
            "storageClassName": "local-path", "claimRef": {"namespace": "default", "name": "data"}}));
        obj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        obj["status"] = json!({"phase": "Bound"});
        let now: Timestamp = "2026-01-01T00:02:00Z".parse().expect("time");
        assert_eq!(
            PersistentVolumes.cells(&obj, now),
            [
                json!("pv1"),
                json!("1Gi"),
                json!("RWO,ROX,RWX"),
                json!("Retain"),
                json!("Bound"),
                json!("default/data"),
                json!("local-path"),
                json!("<unset>"),
                json!(""),
                json!("2m"),
                json!("Filesystem"),
            ]
        );
        obj["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:01:00Z");
        obj["metadata"]["annotations"] = json!({BETA_CLASS_ANNOTATION: "old"});
        obj["spec"]["accessModes"] = json!(["ReadWriteOncePod"]);
        let cells = PersistentVolumes.cells(&obj, now);
        assert_eq!((&cells[2], &cells[4], &cells[6]), (&json!("RWOP"), &json!("Terminating"), &json!("old")));
        assert_eq!(COLUMNS.iter().map(|c| (c.name, c.priority)).collect::<Vec<_>>().last(), Some(&("VolumeMode", 1)));
    }
}
