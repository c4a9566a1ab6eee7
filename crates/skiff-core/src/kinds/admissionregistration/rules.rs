//! What webhooks and policies share: the checks of rules (`validateRuleWithOperations`,
//! `validateResources`, `validateNamedRuleWithOperations`), of `MatchResources`
//! (`validateMatchResources`) and of `matchConditions` (`validateMatchConditions`), with their
//! v1 defaults (`SetDefaults_Rule`, `SetDefaults_MatchResources`), and the small readers the
//! kinds use on their JSON.

use crate::crd::cel::untyped::{Declarations, Expect, check_admission_expression};
use crate::field::{BadValue, ErrorList, FieldError, Path, go_quote};
use crate::names;
use k8s_openapi::api::admissionregistration::v1::{MatchResources, NamedRuleWithOperations};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;
use std::collections::BTreeSet;

/// Upstream's sorted lists, as its `NotSupported` errors name them.
pub(super) const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
pub(super) const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
/// `validateMatchConditions`' limit.
const MAX_MATCH_CONDITIONS: usize = 64;

/// The string at `key`, when there is one.
pub(super) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The list at `key` (none when absent).
pub(super) fn list_at<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The strings of the list at `key`.
pub(super) fn strings_at<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    list_at(v, key).iter().map(|s| s.as_str().unwrap_or_default()).collect()
}

/// A Go slice of strings as `%#v` prints it: `[]string{"*", "apps"}`.
pub(super) fn go_slice(type_name: &str, items: &[&str]) -> BadValue {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    BadValue::Go(format!("[]{type_name}{{{}}}", quoted.join(", ")))
}

/// `ValidateLabelSelector` of the selector at `key` of `v`, if there is one (`strict`: label
/// values in expressions are checked too).
pub(super) fn selector_errors(v: &Value, key: &str, strict: bool, path: &Path) -> ErrorList {
    match v.get(key).filter(|s| !s.is_null()) {
        Some(s) => crate::selector::validate_api_with(s, &path.child(key), !strict),
        None => Vec::new(),
    }
}

/// Whether the selector at `key` has a label value `ValidateLabelSelector` would refuse when
/// strict (`LabelSelectorHasInvalidLabelValue`).
pub(super) fn has_invalid_label_value(v: &Value, key: &str) -> bool {
    list_at(v.get(key).unwrap_or(&Value::Null), "matchExpressions")
        .iter()
        .flat_map(|e| strings_at(e, "values"))
        .any(|value| !names::label_value(value).is_empty())
}

/// `SetDefaults_Rule`: every rule applies to all scopes unless it says.
pub(super) fn default_scope(scope: &mut Option<String>) {
    scope.get_or_insert_with(|| "*".into());
}

/// `SetDefaults_MatchResources` (and the rules' defaults within).
pub(super) fn default_match_resources(m: &mut MatchResources) {
    m.match_policy.get_or_insert_with(|| "Equivalent".into());
    m.namespace_selector.get_or_insert_with(LabelSelector::default);
    m.object_selector.get_or_insert_with(LabelSelector::default);
    let rules = m.resource_rules.iter_mut().chain(m.exclude_resource_rules.iter_mut()).flatten();
    rules.for_each(|r: &mut NamedRuleWithOperations| default_scope(&mut r.scope));
}

fn has_wildcard(items: &[&str]) -> bool {
    items.contains(&"*")
}

/// `validateRuleWithOperations` (with `validateRule`, subresources allowed) of the rule `rule`.
pub(super) fn rule_with_operations(rule: &Value, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let operations = strings_at(rule, "operations");
    let ops = path.child("operations");
    if operations.is_empty() {
        errs.push(FieldError::required(&ops, ""));
    }
    if operations.len() > 1 && has_wildcard(&operations) {
        errs.push(FieldError::invalid_go(
            &ops,
            go_slice("admissionregistration.OperationType", &operations),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, op) in operations.iter().enumerate() {
        if !OPERATIONS.contains(op) {
            errs.push(FieldError::not_supported(&ops.index(i), *op, OPERATIONS));
        }
    }
    let groups = strings_at(rule, "apiGroups");
    let groups_path = path.child("apiGroups");
    if groups.is_empty() {
        errs.push(FieldError::required(&groups_path, ""));
    }
    if groups.len() > 1 && has_wildcard(&groups) {
        errs.push(FieldError::invalid_go(
            &groups_path,
            go_slice("string", &groups),
            "if '*' is present, must not specify other API groups",
        ));
    }
    let versions = strings_at(rule, "apiVersions");
    let versions_path = path.child("apiVersions");
    if versions.is_empty() {
        errs.push(FieldError::required(&versions_path, ""));
    }
    if versions.len() > 1 && has_wildcard(&versions) {
        errs.push(FieldError::invalid_go(
            &versions_path,
            go_slice("string", &versions),
            "if '*' is present, must not specify other API versions",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v.is_empty() {
            errs.push(FieldError::required(&versions_path.index(i), ""));
        }
    }
    errs.extend(resources(&strings_at(rule, "resources"), &path.child("resources")));
    if let Some(scope) = str_at(rule, "scope").filter(|s| !SCOPES.contains(s)) {
        errs.push(FieldError::not_supported(&path.child("scope"), scope, SCOPES));
    }
    errs
}

/// `validateResources`. Both conflict checks depend on order as upstream's do: `x/*` and `*/y`
/// only flag the entries after them, and only the last entry without a slash counts against `*`.
fn resources(resources: &[&str], path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    if resources.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    let mut wildcard_subresources = BTreeSet::new();
    let mut wildcard_resources = BTreeSet::new();
    let (mut double, mut single, mut plain) = (false, false, false);
    for (i, res_sub) in resources.iter().enumerate() {
        if res_sub.is_empty() {
            errs.push(FieldError::required(&path.index(i), ""));
            continue;
        }
        double |= *res_sub == "*/*";
        single |= *res_sub == "*";
        let Some((res, sub)) = res_sub.split_once('/') else {
            plain = *res_sub != "*";
            continue;
        };
        if wildcard_subresources.contains(res) {
            errs.push(FieldError::invalid(
                &path.index(i),
                *res_sub,
                format!("if '{res}/*' is present, must not specify {res_sub}"),
            ));
        }
        if wildcard_resources.contains(sub) {
            errs.push(FieldError::invalid(
                &path.index(i),
                *res_sub,
                format!("if '*/{sub}' is present, must not specify {res_sub}"),
            ));
        }
        if sub == "*" {
            wildcard_subresources.insert(res);
        }
        if res == "*" {
            wildcard_resources.insert(sub);
        }
    }
    if resources.len() > 1 && double {
        errs.push(FieldError::invalid_go(
            path,
            go_slice("string", resources),
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single && plain {
        errs.push(FieldError::invalid_go(
            path,
            go_slice("string", resources),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    errs
}

/// `validateNamedRuleWithOperations`: resource names are path segments, each once.
fn named_rule(rule: &Value, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    let names_path = path.child("resourceNames");
    for (i, name) in strings_at(rule, "resourceNames").into_iter().enumerate() {
        errs.extend(names::invalid_all(&names_path.index(i), name, names::path_segment_name(name)));
        if !seen.insert(name) {
            errs.push(FieldError::duplicate(&names_path.index(i), name));
        }
    }
    errs.extend(rule_with_operations(rule, path));
    errs
}

/// `validateMatchResources` of `m` at `path` (selectors checked strictly: the type came after
/// issue #99139).
pub(super) fn match_resources(m: &Value, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    match str_at(m, "matchPolicy") {
        None => errs.push(FieldError::required(&path.child("matchPolicy"), "")),
        Some(p) if !MATCH_POLICIES.contains(&p) => {
            errs.push(FieldError::not_supported(&path.child("matchPolicy"), p, MATCH_POLICIES))
        }
        Some(_) => {}
    }
    for key in ["namespaceSelector", "objectSelector"] {
        if m.get(key).is_none_or(Value::is_null) {
            errs.push(FieldError::required(&path.child(key), ""));
        } else {
            errs.extend(selector_errors(m, key, true, path));
        }
    }
    for key in ["resourceRules", "excludeResourceRules"] {
        for (i, rule) in list_at(m, key).iter().enumerate() {
            errs.extend(named_rule(rule, &path.child(key).index(i)));
        }
    }
    errs
}

/// `validateMatchConditions`: at most 64, each with a boolean expression (compiled with
/// `decls`) and a qualified name, no name twice.
pub(super) fn match_conditions(conditions: &[Value], decls: &Declarations<'_>, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    if conditions.len() > MAX_MATCH_CONDITIONS {
        errs.push(FieldError::too_many(path, conditions.len(), MAX_MATCH_CONDITIONS));
    }
    let mut seen = BTreeSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let at = path.index(i);
        let expression = str_at(c, "expression").unwrap_or_default().trim();
        if expression.is_empty() {
            errs.push(FieldError::required(&at.child("expression"), ""));
        } else if let Err(e) = check_admission_expression(expression, decls, Expect::Bool) {
            errs.push(FieldError::invalid(&at.child("expression"), expression, e.to_string()));
        }
        let name = str_at(c, "name").unwrap_or_default();
        if name.is_empty() {
            errs.push(FieldError::required(&at.child("name"), ""));
        } else {
            errs.extend(names::invalid_all(&at.child("name"), name, names::qualified_name(name)));
            if !seen.insert(name) {
                errs.push(FieldError::duplicate(&at.child("name"), name));
            }
        }
    }
    errs
}
