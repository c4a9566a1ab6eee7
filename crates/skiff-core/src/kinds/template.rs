//! What workloads (Deployments, ReplicaSets, DaemonSets, Jobs, CronJobs) share: their pod
//! template (defaulted and validated as a pod spec is, at its own path), their selector, the
//! `IntOrString` fields of their update strategies, and the CONTAINERS/IMAGES/SELECTOR columns of
//! `-o wide`.

use super::pod::{default_spec, validate_spec};
use super::{Column, typed};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::names;
use crate::selector::{self, LabelSelector};
use k8s_openapi::api::core::v1::PodSpec;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Default the pod template at `pointer` (`/spec/template`) as every pod spec is defaulted.
pub(crate) fn default(obj: &mut Value, pointer: &str) {
    let Some(template) = obj.pointer_mut(pointer).filter(|t| t.is_object()) else { return };
    let mut spec: PodSpec = typed(template.get("spec").unwrap_or(&Value::Null));
    default_spec(&mut spec);
    if let Ok(v) = serde_json::to_value(&spec) {
        template["spec"] = v;
    }
}

/// The object's `spec`, made an object if it is missing (the defaulters write into it).
pub(crate) fn spec_mut(obj: &mut Value) -> &mut Value {
    if !obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"] = json!({});
    }
    &mut obj["spec"]
}

/// Set `field` of the object `obj` to `value` unless it is set already (a defaulter's step).
pub(crate) fn default_field(obj: &mut Value, field: &str, value: Value) {
    if obj.get(field).is_none_or(Value::is_null) {
        obj[field] = value;
    }
}

/// The integer at `pointer`, 0 when absent (a status count).
pub(crate) fn count(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// The template's labels.
pub(crate) fn labels(template: &Value) -> BTreeMap<String, String> {
    string_map(template.pointer("/metadata/labels"))
}

/// Upstream's `ValidatePodTemplateSpec`, for the template at `path`.
pub(crate) fn validate(template: &Value, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    errs.extend(names::validate_labels(Some(&labels(template)), &path.child("labels")));
    let annotations = string_map(template.pointer("/metadata/annotations"));
    errs.extend(names::validate_annotations(Some(&annotations), &path.child("annotations")));
    let spec: PodSpec = typed(template.get("spec").unwrap_or(&Value::Null));
    errs.extend(validate_spec(&spec, &path.child("spec")));
    if spec.ephemeral_containers.as_ref().is_some_and(|e| !e.is_empty()) {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// Upstream's `ValidatePodTemplateSpecForReplicaSet` (ReplicaSets, Deployments; DaemonSets say
/// `owner` DaemonSet): the selector must select the template's labels, and the pods always restart.
pub(crate) fn validate_for_replicas(template: &Value, selector: &LabelSelector, path: &Path, owner: &str) -> ErrorList {
    let mut errs = Vec::new();
    if !template.is_object() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let labels = labels(template);
    if !selector.is_empty() && !selector.matches(&labels) {
        errs.push(FieldError::invalid_go(
            &path.child("metadata").child("labels"),
            BadValue::string_map(&labels),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate(template, path));
    let restart = template.pointer("/spec/restartPolicy").and_then(Value::as_str).unwrap_or("");
    if restart != "Always" {
        errs.push(FieldError::not_supported(&path.child("spec").child("restartPolicy"), restart, &["Always"]));
    }
    if template.pointer("/spec/activeDeadlineSeconds").is_some_and(|d| !d.is_null()) {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {owner} is not Supported"),
        ));
    }
    errs
}

/// A required, non-empty selector (`spec.selector` of the apps kinds), validated; the parsed
/// selector (empty when missing or invalid, so nothing more is checked against it).
pub(crate) fn validate_selector(obj: &Value, kind: &str, errs: &mut ErrorList) -> LabelSelector {
    let path = Path::new("spec").child("selector");
    let Some(sel) = obj.pointer("/spec/selector").filter(|s| !s.is_null()) else {
        errs.push(FieldError::required(&path, ""));
        return LabelSelector::default();
    };
    let invalid = selector::validate_api(sel, &path);
    let parsed = LabelSelector::from_api(sel);
    if parsed.is_empty() && invalid.is_empty() {
        errs.push(FieldError::invalid_go(
            &path,
            go_label_selector(sel),
            format!("empty selector is invalid for {kind}"),
        ));
    }
    let ok = invalid.is_empty();
    errs.extend(invalid);
    if ok { parsed } else { LabelSelector::default() }
}

/// `spec.selector` may not change (apps/v1).
pub(crate) fn validate_selector_unchanged(old: &Value, new: &Value, errs: &mut ErrorList) {
    let (o, n) = (old.pointer("/spec/selector"), new.pointer("/spec/selector"));
    if o != n {
        let value = n.map_or(BadValue::Json(Value::Null), go_label_selector);
        errs.push(FieldError::invalid_go(&Path::new("spec").child("selector"), value, "field is immutable"));
    }
}

/// A `*metav1.LabelSelector` as Go's `%#v` prints it in field errors.
fn go_label_selector(sel: &Value) -> BadValue {
    let labels = sel.get("matchLabels").and_then(Value::as_object).filter(|m| !m.is_empty());
    let labels = match labels {
        Some(m) => match BadValue::string_map(&string_map(Some(&Value::Object(m.clone())))) {
            BadValue::Go(s) => s,
            BadValue::Json(v) => v.to_string(),
        },
        None => "map[string]string(nil)".into(),
    };
    let exprs = sel.get("matchExpressions").and_then(Value::as_array).filter(|e| !e.is_empty());
    let exprs = match exprs {
        Some(list) => {
            let items: Vec<String> = list
                .iter()
                .map(|e| {
                    let values: Vec<String> = e["values"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| crate::field::go_quote(v.as_str().unwrap_or_default()))
                        .collect();
                    let values = if values.is_empty() {
                        "[]string(nil)".into()
                    } else {
                        format!("[]string{{{}}}", values.join(", "))
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{values}}}",
                        crate::field::go_quote(e["key"].as_str().unwrap_or_default()),
                        crate::field::go_quote(e["operator"].as_str().unwrap_or_default()),
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
        None => "[]v1.LabelSelectorRequirement(nil)".into(),
    };
    BadValue::Go(format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}"))
}

/// `ValidateNonnegativeField`.
pub(crate) fn non_negative(obj: &Value, pointer: &str, path: &Path, errs: &mut ErrorList) {
    if let Some(n) = obj.pointer(pointer).and_then(Value::as_i64).filter(|n| *n < 0) {
        errs.push(FieldError::invalid(path, n, "must be greater than or equal to 0"));
    }
}

/// An `IntOrString` as Go's `%#v` prints it (its `String` method has a pointer receiver).
pub(crate) fn go_int_or_string(v: Option<&Value>) -> BadValue {
    BadValue::Go(match v {
        Some(Value::String(s)) => {
            format!("intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}", crate::field::go_quote(s))
        }
        Some(Value::Number(n)) => format!("intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:\"\"}}"),
        _ => "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}".into(),
    })
}

/// The value of an `IntOrString` that is a count or a percentage (`25%` → 25); None if malformed.
fn int_or_percent(v: Option<&Value>) -> Option<i64> {
    match v {
        None | Some(Value::Null) => Some(0),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.strip_suffix('%').and_then(|p| p.parse().ok()),
        _ => None,
    }
}

/// `ValidatePositiveIntOrPercent` of the field at `pointer`, and `IsNotMoreThan100Percent`
/// when `at_most_100`.
pub(crate) fn positive_int_or_percent(
    obj: &Value,
    pointer: &str,
    path: &Path,
    at_most_100: bool,
    errs: &mut ErrorList,
) {
    let v = obj.pointer(pointer);
    match v {
        Some(Value::String(s)) => {
            let digits = s.strip_suffix('%').filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
            if digits.is_none() {
                errs.push(FieldError::invalid_go(
                    path,
                    go_int_or_string(v),
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ));
            } else if at_most_100 && int_or_percent(v).is_some_and(|p| p > 100) {
                errs.push(FieldError::invalid_go(path, go_int_or_string(v), "must not be greater than 100%"));
            }
        }
        Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n < 0) => {
            errs.push(FieldError::invalid_go(path, go_int_or_string(v), "must be greater than or equal to 0"));
        }
        _ => {}
    }
}

/// A rolling update's `maxUnavailable` and `maxSurge` (Deployments, DaemonSets): each a count or
/// percentage, not both 0, `maxUnavailable` at most 100%.
pub(crate) fn validate_rolling_update(obj: &Value, pointer: &str, path: &Path, errs: &mut ErrorList) {
    let unavailable = format!("{pointer}/maxUnavailable");
    let surge = format!("{pointer}/maxSurge");
    positive_int_or_percent(obj, &unavailable, &path.child("maxUnavailable"), true, errs);
    positive_int_or_percent(obj, &surge, &path.child("maxSurge"), false, errs);
    if int_or_percent(obj.pointer(&unavailable)) == Some(0) && int_or_percent(obj.pointer(&surge)) == Some(0) {
        errs.push(FieldError::invalid_go(
            &path.child("maxUnavailable"),
            go_int_or_string(obj.pointer(&unavailable)),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
}

/// The `-o wide` columns every workload adds.
pub(crate) const WIDE_COLUMNS: [Column; 3] = [
    Column::new("Containers", 1, "Names of each container in the template."),
    Column::new("Images", 1, "Images referenced by each container in the template."),
    Column::new(
        "Selector",
        1,
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
    ),
];

/// CONTAINERS, IMAGES and SELECTOR of a workload whose template is at `template` and selector
/// at `selector` (an API selector object).
pub(crate) fn wide_cells(obj: &Value, template: &str, selector: &str) -> [Value; 3] {
    let selector = obj.pointer(selector).map(LabelSelector::from_api).unwrap_or_default();
    wide_cells_with(obj, template, &selector)
}

/// [`wide_cells`] with the selector already parsed (a ReplicationController's is a map).
pub(crate) fn wide_cells_with(obj: &Value, template: &str, selector: &LabelSelector) -> [Value; 3] {
    let containers: Vec<&Value> =
        obj.pointer(&format!("{template}/spec/containers")).and_then(Value::as_array).into_iter().flatten().collect();
    let field = |f: &str| containers.iter().map(|c| c[f].as_str().unwrap_or_default()).collect::<Vec<_>>().join(",");
    let selector = if selector.is_empty() { "<none>".to_string() } else { selector.to_string() };
    [json!(field("name")), json!(field("image")), json!(selector)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(f: impl FnOnce(&mut ErrorList)) -> Vec<String> {
        let mut errs = Vec::new();
        f(&mut errs);
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn templates_get_pod_spec_defaults_but_not_a_pods_own() {
        let mut obj = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx",
            "ports": [{"containerPort": 80}]}]}}}});
        default(&mut obj, "/spec/template");
        let spec = &obj["spec"]["template"]["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
        assert!(spec.get("enableServiceLinks").is_none(), "SetDefaults_Pod is the pod's");
    }

    #[test]
    fn replica_templates_are_selected_and_always_restart() {
        let template = json!({"metadata": {"labels": {"app": "other"}},
            "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Always",
                "terminationMessagePolicy": "File"}]}});
        let selector = LabelSelector::from_api(&json!({"matchLabels": {"app": "web"}}));
        let path = Path::new("spec").child("template");
        let errs: Vec<String> =
            validate_for_replicas(&template, &selector, &path, "ReplicaSet").iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            [
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`",
                "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"",
            ]
        );
    }

    #[test]
    fn selectors_are_required_non_empty_and_immutable() {
        assert_eq!(
            errors(|e| {
                validate_selector(&json!({"spec": {}}), "deployment", e);
            }),
            ["spec.selector: Required value"]
        );
        assert_eq!(
            errors(|e| {
                validate_selector(&json!({"spec": {"selector": {}}}), "deployment", e);
            }),
            [
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
            ]
        );
        let old = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}}});
        let new = json!({"spec": {"selector": {"matchLabels": {"app": "b"}}}});
        assert_eq!(
            errors(|e| validate_selector_unchanged(&old, &new, e)),
            [
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"b\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
            ]
        );
    }

    #[test]
    fn rolling_update_bounds() {
        let path = Path::new("spec").child("strategy").child("rollingUpdate");
        let ru = |u: Value, s: Value| json!({"ru": {"maxUnavailable": u, "maxSurge": s}});
        assert!(errors(|e| validate_rolling_update(&ru(json!("25%"), json!(1)), "/ru", &path, e)).is_empty());
        assert_eq!(
            errors(|e| validate_rolling_update(&ru(json!(0), json!("0%")), "/ru", &path, e)),
            [
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0"
            ]
        );
        assert_eq!(
            errors(|e| validate_rolling_update(&ru(json!("150%"), json!("x")), "/ru", &path, e)),
            [
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%",
                "spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            ]
        );
    }

    #[test]
    fn wide_cells_name_containers_images_and_the_selector() {
        let obj = json!({"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx"}, {"name": "log", "image": "busybox"}]}}}});
        assert_eq!(
            wide_cells(&obj, "/spec/template", "/spec/selector"),
            [json!("web,log"), json!("nginx,busybox"), json!("app=web")]
        );
    }
}
