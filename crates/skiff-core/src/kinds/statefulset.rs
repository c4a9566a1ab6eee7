//! StatefulSets (`apps/v1`): pods with stable identities (`NAME-0`, `NAME-1`...) and storage
//! (a claim per pod from each of `volumeClaimTemplates`), created and updated in order.
//! Defaults (`SetDefaults_StatefulSet`, gates at 1.32's defaults), the strategy's preparation
//! (status reset), validation (`ValidateStatefulSet`,
//! `ValidateStatefulSetUpdate`, `ValidateStatefulSetStatusUpdate`) and the table
//! (`printStatefulSet`).

use super::persistentvolume::{check_quantities, milli, semantic};
use super::template::{self, WIDE_COLUMNS, count, default_field, go_int_or_string, non_negative, spec_mut};
use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, PERSISTENT_VOLUME_CLAIMS, Part, ResourceInfo, TypedSchema,
    roundtrip, schema_of,
};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::{meta, names};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct StatefulSets;

static INFO: ResourceInfo = ResourceInfo {
    group: "apps",
    version: "v1",
    plural: "statefulsets",
    singular: "statefulset",
    kind: "StatefulSet",
    namespaced: true,
    short_names: &["sts"],
    categories: &["all"],
    verbs: super::VERBS,
    subresources: &[
        ("scale", "autoscaling/v1/Scale", &["get", "patch", "update"]),
        ("status", "StatefulSet", &["get", "patch", "update"]),
    ],
};

/// Upstream's `statefulSetColumnDefinitions`: no SELECTOR column in `-o wide`.
static COLUMNS: [Column; 5] = [
    NAME_COLUMN,
    Column::new("Ready", 0, "Number of the pod with ready state"),
    AGE_COLUMN,
    WIDE_COLUMNS[0],
    WIDE_COLUMNS[1],
];

const RETENTION_POLICIES: &[&str] = &["Retain", "Delete"];
const MAX_UNAVAILABLE: &str = "/spec/updateStrategy/rollingUpdate/maxUnavailable";
/// What `ValidateStatefulSetUpdate` lets change (1.32; 1.33 added `revisionHistoryLimit`).
const MUTABLE: &[&str] =
    &["replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds"];
const SPEC_FIXED: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

fn claim_templates(obj: &Value) -> &[Value] {
    obj.pointer("/spec/volumeClaimTemplates").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The status of a new StatefulSet: Go's zero `StatefulSetStatus`, whose `replicas` and
/// `availableReplicas` are always written.
fn zero_status() -> Value {
    json!({"replicas": 0, "availableReplicas": 0})
}

/// `getIntOrPercentValue`: a percentage's number, else the integer (a string's `Atoi`, 0 when
/// it is none).
fn int_or_percent_value(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            match s.strip_suffix('%').filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
                Some(digits) => digits.parse().unwrap_or(0),
                None => s.parse().unwrap_or(0),
            }
        }
        _ => 0,
    }
}

/// `validateRollingUpdateStatefulSet`.
fn validate_rolling_update(obj: &Value, path: &Path, errs: &mut ErrorList) {
    non_negative(obj, "/spec/updateStrategy/rollingUpdate/partition", &path.child("partition"), errs);
    let Some(v) = obj.pointer(MAX_UNAVAILABLE).filter(|v| !v.is_null()) else { return };
    let p = path.child("maxUnavailable");
    // ValidatePositiveIntOrPercent, then IsNotMoreThan100Percent: upstream checks "cannot be 0"
    // between them, but it and "more than 100%" never both apply, so the order is the same
    template::positive_int_or_percent(obj, MAX_UNAVAILABLE, &p, true, errs);
    if int_or_percent_value(v) == 0 {
        errs.push(FieldError::invalid_go(&p, go_int_or_string(Some(v)), "cannot be 0"));
    }
}

/// An internal `apps.RollingUpdateStatefulSetStrategy` as Go's `%#v` prints it (a set
/// `maxUnavailable` is a pointer, printed as an address upstream: elided here).
fn go_rolling_update(ru: &Value) -> BadValue {
    if ru.get("maxUnavailable").is_some_and(|v| !v.is_null()) {
        return BadValue::Go("apps.RollingUpdateStatefulSetStrategy{...}".into());
    }
    let partition = ru.get("partition").and_then(Value::as_i64).unwrap_or(0);
    BadValue::Go(format!(
        "apps.RollingUpdateStatefulSetStrategy{{Partition:{partition}, MaxUnavailable:(*intstr.IntOrString)(nil)}}"
    ))
}

/// An internal `apps.StatefulSetUpdateStrategy` as `%#v` prints it (a set `rollingUpdate` is a
/// pointer: elided).
fn go_update_strategy(strategy: Option<&Value>) -> BadValue {
    let strategy = strategy.unwrap_or(&Value::Null);
    if strategy.get("rollingUpdate").is_some_and(|v| !v.is_null()) {
        return BadValue::Go("apps.StatefulSetUpdateStrategy{...}".into());
    }
    let ty = crate::field::go_quote(strategy.get("type").and_then(Value::as_str).unwrap_or_default());
    BadValue::Go(format!(
        "apps.StatefulSetUpdateStrategy{{Type:{ty}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}"
    ))
}

/// `ValidateStatefulSetSpec`. Upstream validates the template's labels and annotations but not
/// its pod spec (`ValidatePodTemplateSpecForStatefulSet`), nor the claim templates.
fn validate_spec(obj: &Value, errs: &mut ErrorList) {
    let spec = Path::new("spec");
    let policy = spec.child("podManagementPolicy");
    match obj.pointer("/spec/podManagementPolicy").and_then(Value::as_str).unwrap_or("") {
        "" => errs.push(FieldError::required(&policy, "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(&policy, other, "must be 'OrderedReady' or 'Parallel'")),
    }
    let strategy = spec.child("updateStrategy");
    let rolling = obj.pointer("/spec/updateStrategy/rollingUpdate").filter(|r| !r.is_null());
    match obj.pointer("/spec/updateStrategy/type").and_then(Value::as_str).unwrap_or("") {
        "" => errs.push(FieldError::required(&strategy, "")),
        "OnDelete" => {
            if let Some(ru) = rolling {
                errs.push(FieldError::invalid_go(
                    &strategy.child("rollingUpdate"),
                    go_rolling_update(ru),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if rolling.is_some() {
                validate_rolling_update(obj, &strategy.child("rollingUpdate"), errs);
            }
        }
        _ => errs.push(FieldError::invalid_go(
            &strategy,
            go_update_strategy(obj.pointer("/spec/updateStrategy")),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    let retention = spec.child("persistentVolumeClaimRetentionPolicy");
    if let Some(p) = obj.pointer("/spec/persistentVolumeClaimRetentionPolicy").filter(|p| !p.is_null()) {
        for field in ["whenDeleted", "whenScaled"] {
            let v = p.get(field).and_then(Value::as_str).unwrap_or("");
            if !RETENTION_POLICIES.contains(&v) {
                errs.push(FieldError::not_supported(&retention.child(field), v, RETENTION_POLICIES));
            }
        }
    }
    non_negative(obj, "/spec/replicas", &spec.child("replicas"), errs);
    non_negative(obj, "/spec/minReadySeconds", &spec.child("minReadySeconds"), errs);
    non_negative(obj, "/spec/ordinals/start", &spec.child("ordinals").child("start"), errs);
    let selector = template::validate_selector(obj, "statefulset", errs);
    // ValidatePodTemplateSpecForStatefulSet
    let tmpl = obj.pointer("/spec/template").unwrap_or(&Value::Null);
    let path = spec.child("template");
    let labels = template::labels(tmpl);
    if !selector.is_empty() && !selector.matches(&labels) {
        errs.push(FieldError::invalid_go(
            &path.child("metadata").child("labels"),
            BadValue::string_map(&labels),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(names::validate_labels(Some(&labels), &path.child("labels")));
    errs.extend(names::validate_annotations(Some(&meta::str_map(tmpl, "annotations")), &path.child("annotations")));
    let restart = tmpl.pointer("/spec/restartPolicy").and_then(Value::as_str).unwrap_or("");
    if restart != "Always" {
        errs.push(FieldError::not_supported(&path.child("spec").child("restartPolicy"), restart, &["Always"]));
    }
    if tmpl.pointer("/spec/activeDeadlineSeconds").is_some_and(|d| !d.is_null()) {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
}

/// The spec but for what may change, as Go's semantic equality compares it (quantities by value).
fn fixed_part(obj: &Value) -> Value {
    let mut spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(s) = spec.as_object_mut() {
        for field in MUTABLE {
            s.remove(*field);
        }
    }
    let mut spec = semantic(&spec);
    let claims = spec.get_mut("volumeClaimTemplates").and_then(Value::as_array_mut).into_iter().flatten();
    for claim in claims {
        for list in ["/spec/resources/requests", "/spec/resources/limits"] {
            let quantities =
                claim.pointer_mut(list).and_then(Value::as_object_mut).into_iter().flat_map(|m| m.values_mut());
            for q in quantities {
                *q = json!(milli(&Quantity(q.as_str().unwrap_or_default().to_string())).to_string());
            }
        }
    }
    spec
}

/// `ValidateStatefulSetStatus`, and `ValidateStatefulSetStatusUpdate`'s collision count.
fn validate_status_update(old: &Value, new: &Value) -> ErrorList {
    let mut errs = Vec::new();
    let status = Path::new("status");
    let counts =
        ["replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas", "observedGeneration"];
    for field in counts.into_iter().chain(["collisionCount"]) {
        non_negative(new, &format!("/status/{field}"), &status.child(field), &mut errs);
    }
    let n = |field: &str| count(new, &format!("/status/{field}"));
    let replicas = n("replicas");
    for field in ["readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"] {
        if n(field) > replicas {
            errs.push(FieldError::invalid(&status.child(field), n(field), "cannot be greater than status.replicas"));
        }
    }
    if n("availableReplicas") > n("readyReplicas") {
        errs.push(FieldError::invalid(
            &status.child("availableReplicas"),
            n("availableReplicas"),
            "cannot be greater than status.readyReplicas",
        ));
    }
    let collisions = |obj: &Value| obj.pointer("/status/collisionCount").and_then(Value::as_i64);
    // `IsDecremented`: lower, or gone
    if let Some(before) = collisions(old)
        && collisions(new).is_none_or(|now| now < before)
    {
        let now = collisions(new).unwrap_or(0);
        errs.push(FieldError::invalid(&status.child("collisionCount"), now, "cannot be decremented"));
    }
    errs
}

impl Kind for StatefulSets {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<StatefulSet>(g)
    }
    /// The claim templates' quantities must parse, as upstream's decoder insists.
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        let maps: Vec<String> = (0..claim_templates(raw).len())
            .flat_map(|i| ["requests", "limits"].map(|l| format!("/spec/volumeClaimTemplates/{i}/spec/resources/{l}")))
            .collect();
        check_quantities(raw, "StatefulSet", &maps.iter().map(String::as_str).collect::<Vec<_>>())?;
        roundtrip::<StatefulSet>(raw)
    }
    /// apps/v1 `SetDefaults_StatefulSet` (with StatefulSetAutoDeletePVC; MaxUnavailableStatefulSet
    /// is off, so `maxUnavailable` has no default), the template's and each claim template's
    /// defaults (`SetDefaults_PersistentVolumeClaim[Spec]`, as the generated defaulter runs them),
    /// and the fields Go always writes: `serviceName` (no `omitempty` in 1.32), and the status's
    /// `replicas` and `availableReplicas`.
    fn default(&self, obj: &mut Value) {
        let spec = spec_mut(obj);
        if spec.get("podManagementPolicy").and_then(Value::as_str).is_none_or(str::is_empty) {
            spec["podManagementPolicy"] = json!("OrderedReady");
        }
        if !spec.get("updateStrategy").is_some_and(Value::is_object) {
            spec["updateStrategy"] = json!({});
        }
        let strategy = &mut spec["updateStrategy"];
        if strategy.get("type").and_then(Value::as_str).is_none_or(str::is_empty) {
            strategy["type"] = json!("RollingUpdate");
            default_field(strategy, "rollingUpdate", json!({}));
        }
        if strategy["type"] == "RollingUpdate" && strategy.get("rollingUpdate").is_some_and(Value::is_object) {
            default_field(&mut strategy["rollingUpdate"], "partition", json!(0));
        }
        if !spec.get("persistentVolumeClaimRetentionPolicy").is_some_and(Value::is_object) {
            spec["persistentVolumeClaimRetentionPolicy"] = json!({});
        }
        let retention = &mut spec["persistentVolumeClaimRetentionPolicy"];
        for field in ["whenDeleted", "whenScaled"] {
            if retention.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
                retention[field] = json!("Retain");
            }
        }
        default_field(spec, "replicas", json!(1));
        default_field(spec, "revisionHistoryLimit", json!(10));
        default_field(spec, "serviceName", json!(""));
        for claim in spec.get_mut("volumeClaimTemplates").and_then(Value::as_array_mut).into_iter().flatten() {
            PERSISTENT_VOLUME_CLAIMS.default(claim);
        }
        template::default(obj, "/spec/template");
        if !obj.get("status").is_some_and(Value::is_object) {
            obj["status"] = json!({});
        }
        for field in ["replicas", "availableReplicas"] {
            default_field(&mut obj["status"], field, json!(0));
        }
    }
    /// Upstream's `PrepareForCreate`: no status but the zero one. skiff serves `maxUnavailable`
    /// (upstream's MaxUnavailableStatefulSet gate, off there) without defaulting it, so a set
    /// without one reads as upstream's.
    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = zero_status();
    }
    /// Upstream's `ValidateStatefulSet`: since 1.27 the name must be a DNS label (pods' hostnames
    /// are made from it).
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, true);
        validate_spec(obj, &mut errs);
        errs
    }
    /// `ValidateStatefulSetUpdate`: the metadata (the name is not checked again: it cannot
    /// change), the spec, and no change to it but in the fields that may change.
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let mut errs = meta::validate(new, true, false);
        validate_spec(new, &mut errs);
        if fixed_part(old) != fixed_part(new) {
            errs.push(FieldError::forbidden(&Path::new("spec"), SPEC_FIXED));
        }
        errs
    }
    fn validate_part_update(&self, part: Part, old: &Value, new: &Value) -> ErrorList {
        match part {
            Part::Status => validate_status_update(old, new),
            _ => self.validate_update(old, new),
        }
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    /// Upstream's `printStatefulSet`: READY is ready of desired.
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let ready = format!("{}/{}", count(obj, "/status/readyReplicas"), count(obj, "/spec/replicas"));
        let [containers, images, _] = template::wide_cells(obj, "/spec/template", "/spec/selector");
        vec![json!(meta::name(obj)), json!(ready), json!(meta::age(obj, now)), containers, images]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> Value {
        json!({"serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]})
    }

    /// A StatefulSet as a create makes it: decoded, defaulted, prepared.
    fn sts(spec: Value) -> Value {
        let raw = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default"}, "spec": spec});
        let mut obj = StatefulSets.normalize(&raw).expect("decodes");
        StatefulSets.default(&mut obj);
        StatefulSets.prepare_create(&mut obj);
        obj
    }

    fn errors(errs: ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults_as_apps_v1() {
        let s = sts(web());
        assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(s["spec"]["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
        assert_eq!(
            s["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!((s["spec"]["replicas"].clone(), s["spec"]["revisionHistoryLimit"].clone()), (json!(1), json!(10)));
        assert_eq!(s["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(
            s["spec"]["volumeClaimTemplates"],
            json!([{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                    "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"}}])
        );
        assert_eq!(s["status"], json!({"replicas": 0, "availableReplicas": 0}));
        assert!(errors(StatefulSets.validate(&s)).is_empty(), "{:?}", errors(StatefulSets.validate(&s)));
        // without a service name, Go writes it empty
        let mut spec = web();
        spec.as_object_mut().expect("spec").remove("serviceName");
        assert_eq!(sts(spec)["spec"]["serviceName"], "");
    }

    #[test]
    fn strategies_default_as_upstream() {
        // OnDelete gets no rollingUpdate; RollingUpdate without one keeps none
        let mut spec = web();
        spec["updateStrategy"] = json!({"type": "OnDelete"});
        assert_eq!(sts(spec)["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
        let mut spec = web();
        spec["updateStrategy"] = json!({"type": "RollingUpdate"});
        assert_eq!(sts(spec)["spec"]["updateStrategy"], json!({"type": "RollingUpdate"}));
        // a given retention policy half is kept, the other defaulted; Parallel is kept
        let mut spec = web();
        spec["persistentVolumeClaimRetentionPolicy"] = json!({"whenScaled": "Delete"});
        spec["podManagementPolicy"] = json!("Parallel");
        let s = sts(spec);
        assert_eq!(
            s["spec"]["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Delete"})
        );
        assert_eq!(s["spec"]["podManagementPolicy"], "Parallel");
        // maxUnavailable is served, not defaulted.
        let mut spec = web();
        spec["updateStrategy"] = json!({"rollingUpdate": {"maxUnavailable": 2}});
        let mut s = sts(spec);
        StatefulSets.prepare_create(&mut s);
        assert_eq!(
            s["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}})
        );
        assert!(sts(web()).pointer(MAX_UNAVAILABLE).is_none());
    }

    #[test]
    fn claim_template_quantities_must_parse() {
        let mut spec = web();
        spec["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = json!("lots");
        let raw = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"}, "spec": spec});
        let err = StatefulSets.normalize(&raw).expect_err("bad quantity");
        assert!(
            err.to_string().starts_with("StatefulSet in version \"v1\" cannot be handled as a StatefulSet: quantities"),
            "{err}"
        );
    }

    #[test]
    fn validation_as_upstream() {
        let mut s = sts(web());
        s["metadata"]["name"] = json!("web.v1");
        s["spec"]["podManagementPolicy"] = json!("Random");
        s["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] = json!("Keep");
        s["spec"]["replicas"] = json!(-1);
        s["spec"]["minReadySeconds"] = json!(-2);
        s["spec"]["ordinals"] = json!({"start": -3});
        s["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(-4);
        s["spec"]["template"]["metadata"]["labels"] = json!({"app": "api"});
        s["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        s["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        assert_eq!(
            errors(StatefulSets.validate(&s)),
            [
                "metadata.name: Invalid value: \"web.v1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
                "spec.updateStrategy.rollingUpdate.partition: Invalid value: -4: must be greater than or equal to 0",
                "spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: \"Keep\": supported values: \"Retain\", \"Delete\"",
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.minReadySeconds: Invalid value: -2: must be greater than or equal to 0",
                "spec.ordinals.start: Invalid value: -3: must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\"}: `selector` does not match template `labels`",
                "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in StatefulSet is not Supported",
            ]
        );
        // the pod spec and the claim templates are not validated (as upstream)
        let mut spec = web();
        spec["template"]["spec"]["containers"][0]["name"] = json!("Not_A_Name");
        spec["volumeClaimTemplates"][0]["spec"] = json!({});
        assert!(errors(StatefulSets.validate(&sts(spec))).is_empty());
        let mut spec = web();
        spec["selector"] = json!({});
        assert_eq!(
            errors(StatefulSets.validate(&sts(spec))),
            [
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for statefulset"
            ]
        );
    }

    #[test]
    fn update_strategies_as_upstream() {
        let strategy = |s: Value| {
            let mut obj = sts(web());
            obj["spec"]["updateStrategy"] = s;
            errors(StatefulSets.validate(&obj))
        };
        assert!(strategy(json!({"type": "OnDelete"})).is_empty());
        assert_eq!(
            strategy(json!({"type": "OnDelete", "rollingUpdate": {"partition": 1}})),
            [
                "spec.updateStrategy.rollingUpdate: Invalid value: apps.RollingUpdateStatefulSetStrategy{Partition:1, MaxUnavailable:(*intstr.IntOrString)(nil)}: only allowed for updateStrategy 'RollingUpdate'"
            ]
        );
        assert_eq!(
            strategy(json!({"type": "BlueGreen"})),
            [
                "spec.updateStrategy: Invalid value: apps.StatefulSetUpdateStrategy{Type:\"BlueGreen\", RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}: must be 'RollingUpdate' or 'OnDelete'"
            ]
        );
        assert_eq!(strategy(json!({})), ["spec.updateStrategy: Required value"]);
        // maxUnavailable, where an old object kept it
        let unavailable = |v: Value| strategy(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": v}}));
        assert!(unavailable(json!("50%")).is_empty());
        assert!(unavailable(json!(2)).is_empty());
        assert_eq!(
            unavailable(json!(0)),
            [
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: cannot be 0"
            ]
        );
        assert_eq!(
            unavailable(json!("150%")),
            [
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%"
            ]
        );
        assert_eq!(
            unavailable(json!("x")),
            [
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}: cannot be 0",
            ]
        );
    }

    #[test]
    fn only_some_of_the_spec_may_change() {
        let old = sts(web());
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(5);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        new["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        new["spec"]["persistentVolumeClaimRetentionPolicy"] = json!({"whenDeleted": "Delete", "whenScaled": "Delete"});
        new["spec"]["minReadySeconds"] = json!(10);
        new["spec"]["ordinals"] = json!({"start": 1});
        assert!(errors(StatefulSets.validate_update(&old, &new)).is_empty());
        // the same storage request written another way is no change
        let mut same = old.clone();
        same["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] = json!("1024Mi");
        assert!(errors(StatefulSets.validate_update(&old, &same)).is_empty());
        let fixed = format!("spec: Forbidden: {SPEC_FIXED}");
        for (field, value) in [
            ("/spec/volumeClaimTemplates/0/spec/resources/requests/storage", json!("2Gi")),
            ("/spec/serviceName", json!("other")),
            ("/spec/podManagementPolicy", json!("Parallel")),
            ("/spec/revisionHistoryLimit", json!(3)),
        ] {
            let mut changed = old.clone();
            *changed.pointer_mut(field).expect(field) = value;
            assert_eq!(errors(StatefulSets.validate_update(&old, &changed)), [fixed.as_str()], "{field}");
        }
        // the selector too (and the template must still match it)
        let mut moved = old.clone();
        moved["spec"]["selector"] = json!({"matchLabels": {"app": "web", "v": "2"}});
        moved["spec"]["template"]["metadata"]["labels"]["v"] = json!("2");
        assert_eq!(errors(StatefulSets.validate_update(&old, &moved)), [fixed]);
        assert!(SPEC_FIXED.ends_with("'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
    }

    #[test]
    fn status_updates_as_upstream() {
        let old = sts(web());
        let mut new = old.clone();
        new["status"] = json!({"replicas": 2, "readyReplicas": 2, "availableReplicas": 1, "collisionCount": 1});
        assert!(StatefulSets.validate_part_update(Part::Status, &old, &new).is_empty());
        let mut bad = new.clone();
        bad["status"] = json!({"replicas": 1, "readyReplicas": 2, "currentReplicas": -1, "availableReplicas": 2, "collisionCount": 0});
        assert_eq!(
            errors(StatefulSets.validate_part_update(Part::Status, &new, &bad)),
            [
                "status.currentReplicas: Invalid value: -1: must be greater than or equal to 0",
                "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
                "status.availableReplicas: Invalid value: 2: cannot be greater than status.replicas",
                "status.collisionCount: Invalid value: 0: cannot be decremented",
            ]
        );
    }

    #[test]
    fn table_row_as_kubectl_prints_it() {
        let mut s = sts(web());
        s["spec"]["replicas"] = json!(3);
        s["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        s["status"]["readyReplicas"] = json!(2);
        let now: Timestamp = "2026-01-01T00:02:00Z".parse().expect("time");
        assert_eq!(
            StatefulSets.cells(&s, now),
            [json!("web"), json!("2/3"), json!("2m"), json!("nginx"), json!("nginx")]
        );
        let names: Vec<&str> = StatefulSets.columns().iter().map(|c| c.name).collect();
        assert_eq!(names, ["Name", "Ready", "Age", "Containers", "Images"]);
    }
}
