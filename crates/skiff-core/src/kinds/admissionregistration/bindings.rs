//! ValidatingAdmissionPolicyBindings: v1 defaults (the MatchResources defaults, only when
//! `matchResources` is set; none for `paramRef.parameterNotFoundAction` or
//! `validationActions`), `ValidateValidatingAdmissionPolicyBinding` (an update is checked as a
//! create) and `printers.go`'s table, whose PARAMREF column prints a selector as Go's
//! `LabelSelector.String()` does.

use super::GROUP;
use super::rules::{default_match_resources, go_slice, list_at, match_resources, selector_errors, str_at, strings_at};
use crate::field::{ErrorList, FieldError, Path};
use crate::kinds::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of, typed,
};
use crate::{meta, names};
use jiff::Timestamp;
use k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};
use std::collections::BTreeSet;

pub struct ValidatingAdmissionPolicyBindings;

static INFO: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: "v1",
    plural: super::VALIDATING_ADMISSION_POLICY_BINDINGS,
    singular: "validatingadmissionpolicybinding",
    kind: "ValidatingAdmissionPolicyBinding",
    namespaced: false,
    short_names: &[],
    categories: &["api-extensions"],
    verbs: crate::kinds::VERBS,
    subresources: &[],
};

static COLUMNS: [Column; 4] = [
    NAME_COLUMN,
    Column::new("PolicyName", 0, "PolicyName indicates the policy definition which the policy binding binded to"),
    Column::new("ParamRef", 0, "ParamRef indicates the param resource which sets the configration param"),
    AGE_COLUMN,
];

/// `validValidationActions`, sorted.
const VALIDATION_ACTIONS: &[&str] = &["Audit", "Deny", "Warn"];
/// `parameterNotFoundAction`'s values, in upstream's (unsorted) order.
const NOT_FOUND_ACTIONS: &[&str] = &["Deny", "Allow"];

fn set_defaults(obj: &mut Value) {
    let mut binding: ValidatingAdmissionPolicyBinding = typed(obj);
    if let Some(m) = binding.spec.match_resources.as_mut() {
        default_match_resources(m);
    }
    if let Ok(v) = serde_json::to_value(&binding) {
        *obj = v;
    }
}

/// `validateValidatingAdmissionPolicyBinding`.
fn validate(obj: &Value) -> ErrorList {
    let mut errs = meta::validate(obj, false, false);
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::new("spec");
    let policy = str_at(spec, "policyName").unwrap_or_default();
    if policy.is_empty() {
        errs.push(FieldError::required(&path.child("policyName"), ""));
    } else {
        errs.extend(names::invalid_all(&path.child("policyName"), policy, names::dns1123_subdomain(policy)));
    }
    if let Some(pr) = spec.get("paramRef").filter(|p| !p.is_null()) {
        errs.extend(validate_param_ref(pr, &path.child("paramRef")));
    }
    if let Some(m) = spec.get("matchResources").filter(|m| !m.is_null()) {
        errs.extend(match_resources(m, &path.child("matchResources")));
    }
    errs.extend(validation_actions(&strings_at(spec, "validationActions"), &path.child("validationActions")));
    errs
}

/// `validateParamRef`: a name or a selector, not both, and what to do when none is found.
fn validate_param_ref(pr: &Value, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let name = str_at(pr, "name").unwrap_or_default();
    let selector = pr.get("selector").filter(|s| !s.is_null());
    let exclusive = "name and selector are mutually exclusive";
    if !name.is_empty() {
        errs.extend(names::invalid_all(&path.child("name"), name, names::path_segment_name(name)));
        if selector.is_some() {
            errs.push(FieldError::forbidden(&path.child("name"), exclusive));
        }
    }
    if selector.is_some() {
        errs.extend(selector_errors(pr, "selector", true, path));
        if !name.is_empty() {
            errs.push(FieldError::forbidden(&path.child("selector"), exclusive));
        }
    }
    if name.is_empty() && selector.is_none() {
        errs.push(FieldError::required(path, "one of name or selector must be specified"));
    }
    match str_at(pr, "parameterNotFoundAction").filter(|a| !a.is_empty()) {
        None => errs.push(FieldError::required(&path.child("parameterNotFoundAction"), "")),
        Some(a) if !NOT_FOUND_ACTIONS.contains(&a) => {
            errs.push(FieldError::not_supported(&path.child("parameterNotFoundAction"), a, NOT_FOUND_ACTIONS))
        }
        Some(_) => {}
    }
    errs
}

/// `validateValidationActions`.
fn validation_actions(actions: &[&str], path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, a) in actions.iter().enumerate() {
        if !VALIDATION_ACTIONS.contains(a) {
            errs.push(FieldError::not_supported(&path.index(i), *a, VALIDATION_ACTIONS));
        }
        if !seen.insert(*a) {
            errs.push(FieldError::duplicate(&path.index(i), *a));
        }
    }
    if seen.contains("Deny") && seen.contains("Warn") {
        errs.push(FieldError::invalid_go(
            path,
            go_slice("admissionregistration.ValidationAction", actions),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    if seen.is_empty() {
        errs.push(FieldError::required(path, "at least one validation action is required"));
    }
    errs
}

/// The PARAMREF cell (`printValidatingAdmissionPolicyBinding`): `<namespace>/<name>`, `*/<name>`
/// without a namespace, else the selector, else `<unset>`.
fn param_ref_cell(obj: &Value) -> String {
    let Some(pr) = obj.pointer("/spec/paramRef").filter(|p| !p.is_null()) else { return "<unset>".into() };
    let name = str_at(pr, "name").unwrap_or_default();
    let namespace = str_at(pr, "namespace").unwrap_or_default();
    match pr.get("selector").filter(|s| !s.is_null()) {
        _ if !name.is_empty() && !namespace.is_empty() => format!("{namespace}/{name}"),
        _ if !name.is_empty() => format!("*/{name}"),
        Some(s) => go_label_selector(s),
        None => "<unset>".into(),
    }
}

/// The generated `String()` of a `metav1.LabelSelector`:
/// `&LabelSelector{MatchLabels:map[string]string{app: web,},MatchExpressions:[]LabelSelectorRequirement{...},}`.
fn go_label_selector(s: &Value) -> String {
    let mut labels: Vec<(&String, &str)> = s
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default()))
        .collect();
    labels.sort();
    let labels: String = labels.iter().map(|(k, v)| format!("{k}: {v},")).collect();
    let exprs: String = list_at(s, "matchExpressions")
        .iter()
        .map(|e| {
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                str_at(e, "key").unwrap_or_default(),
                str_at(e, "operator").unwrap_or_default(),
                strings_at(e, "values").join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )
}

impl Kind for ValidatingAdmissionPolicyBindings {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<ValidatingAdmissionPolicyBinding>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<ValidatingAdmissionPolicyBinding>(raw)
    }
    fn default(&self, obj: &mut Value) {
        set_defaults(obj);
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        validate(obj)
    }
    fn shapes(&self) -> &dyn crate::schema::Shapes {
        &super::SHAPES
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let policy = obj.pointer("/spec/policyName").and_then(Value::as_str).unwrap_or_default();
        vec![json!(meta::name(obj)), json!(policy), json!(param_ref_cell(obj)), json!(meta::age(obj, now))]
    }
}
