//! MutatingWebhookConfigurations and ValidatingWebhookConfigurations: the v1 defaults of each
//! webhook (`SetDefaults_{Mutating,Validating}Webhook`, `SetDefaults_Rule`,
//! `SetDefaults_ServiceReference`), `Validate{Mutating,Validating}WebhookConfiguration[Update]`
//! (an update keeps only the rules the stored object already met: no side effects, a known
//! review version, unique names, strict label values, and recompiles match conditions only
//! when they changed), the strategies (generation counts `webhooks`) and `printers.go`'s table.

use super::rules::{
    FAILURE_POLICIES, MATCH_POLICIES, go_slice, has_invalid_label_value, list_at, match_conditions,
    rule_with_operations, selector_errors, str_at, strings_at,
};
use super::{GROUP, webhooks};
use crate::crd::cel::untyped::Declarations;
use crate::field::{ErrorList, FieldError, Path};
use crate::kinds::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of, typed,
};
use crate::{meta, names};
use jiff::Timestamp;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};
use std::collections::BTreeSet;

pub struct MutatingWebhookConfigurations;
pub struct ValidatingWebhookConfigurations;

static MUTATING_INFO: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: "v1",
    plural: super::MUTATING_WEBHOOK_CONFIGURATIONS,
    singular: "mutatingwebhookconfiguration",
    kind: "MutatingWebhookConfiguration",
    namespaced: false,
    short_names: &[],
    categories: &["api-extensions"],
    verbs: crate::kinds::VERBS,
    subresources: &[],
};

static VALIDATING_INFO: ResourceInfo = ResourceInfo {
    plural: super::VALIDATING_WEBHOOK_CONFIGURATIONS,
    singular: "validatingwebhookconfiguration",
    kind: "ValidatingWebhookConfiguration",
    ..MUTATING_INFO
};

static COLUMNS: [Column; 3] = [
    NAME_COLUMN,
    Column {
        data_type: "integer",
        ..Column::new("Webhooks", 0, "Webhooks indicates the number of webhooks registered in this configuration")
    },
    AGE_COLUMN,
];

const SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun", "Some", "Unknown"];
const NO_SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
const REINVOCATION_POLICIES: &[&str] = &["IfNeeded", "Never"];
/// `AcceptedAdmissionReviewVersions`.
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];

/// The rules a write is held to (upstream's `validationOptions`): all of them on create; on
/// update, those the stored object met.
struct Options {
    ignore_match_conditions: bool,
    require_no_side_effects: bool,
    require_recognized_review_version: bool,
    require_unique_names: bool,
    allow_invalid_label_values: bool,
}

const CREATE: Options = Options {
    ignore_match_conditions: false,
    require_no_side_effects: true,
    require_recognized_review_version: true,
    require_unique_names: true,
    allow_invalid_label_values: false,
};

/// The options of an update from `old` to `new`.
fn update_options(old: &Value, new: &Value) -> Options {
    let (old_hooks, new_hooks) = (webhooks(old), webhooks(new));
    let mut names = BTreeSet::new();
    Options {
        ignore_match_conditions: old_hooks.len() == new_hooks.len()
            && old_hooks.iter().zip(new_hooks).all(|(o, n)| o.get("matchConditions") == n.get("matchConditions")),
        require_no_side_effects: old_hooks
            .iter()
            .all(|h| str_at(h, "sideEffects").is_some_and(|s| NO_SIDE_EFFECTS.contains(&s))),
        require_recognized_review_version: old_hooks.iter().all(|h| {
            let versions = strings_at(h, "admissionReviewVersions");
            versions.is_empty() || versions.iter().any(|v| REVIEW_VERSIONS.contains(v))
        }),
        require_unique_names: old_hooks.iter().all(|h| names.insert(str_at(h, "name").unwrap_or_default())),
        allow_invalid_label_values: old_hooks
            .iter()
            .any(|h| has_invalid_label_value(h, "namespaceSelector") || has_invalid_label_value(h, "objectSelector")),
    }
}

/// The defaults of every webhook of `obj` (a mutating one's too when `mutating`). A missing
/// `sideEffects` stays missing: v1 has no default, and validation says it is required.
fn set_defaults(obj: &mut Value, mutating: bool) {
    let Some(hooks) = obj.get_mut("webhooks").and_then(Value::as_array_mut) else { return };
    for hook in hooks {
        let no_side_effects = hook.get("sideEffects").is_none_or(Value::is_null);
        // A validating webhook is a mutating one without `reinvocationPolicy`.
        let mut h: MutatingWebhook = typed(hook);
        h.failure_policy.get_or_insert_with(|| "Fail".into());
        h.match_policy.get_or_insert_with(|| "Equivalent".into());
        h.namespace_selector.get_or_insert_with(LabelSelector::default);
        h.object_selector.get_or_insert_with(LabelSelector::default);
        h.timeout_seconds.get_or_insert(10);
        if mutating {
            h.reinvocation_policy.get_or_insert_with(|| "Never".into());
        }
        for rule in h.rules.iter_mut().flatten() {
            super::rules::default_scope(&mut rule.scope);
        }
        if let Some(service) = h.client_config.service.as_mut() {
            service.port.get_or_insert(443);
        }
        if let Ok(mut v) = serde_json::to_value(&h) {
            if no_side_effects && let Some(o) = v.as_object_mut() {
                o.remove("sideEffects");
            }
            *hook = v;
        }
    }
}

/// `validate{Mutating,Validating}WebhookConfiguration`.
fn validate(obj: &Value, mutating: bool, opts: &Options) -> ErrorList {
    let mut errs = meta::validate(obj, false, false);
    let mut names = BTreeSet::new();
    for (i, hook) in webhooks(obj).iter().enumerate() {
        let path = Path::new("webhooks").index(i);
        errs.extend(webhook(hook, mutating, opts, &path));
        errs.extend(review_versions(
            &strings_at(hook, "admissionReviewVersions"),
            opts.require_recognized_review_version,
            &path.child("admissionReviewVersions"),
        ));
        let name = str_at(hook, "name").unwrap_or_default();
        if opts.require_unique_names && !name.is_empty() && !names.insert(name) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        }
    }
    errs
}

/// `validate{Mutating,Validating}Webhook`, in upstream's order.
fn webhook(hook: &Value, mutating: bool, opts: &Options, path: &Path) -> ErrorList {
    let mut errs = fully_qualified_name(str_at(hook, "name").unwrap_or_default(), &path.child("name"));
    for (i, rule) in list_at(hook, "rules").iter().enumerate() {
        errs.extend(rule_with_operations(rule, &path.child("rules").index(i)));
    }
    if let Some(p) = str_at(hook, "failurePolicy").filter(|p| !FAILURE_POLICIES.contains(p)) {
        errs.push(FieldError::not_supported(&path.child("failurePolicy"), p, FAILURE_POLICIES));
    }
    if let Some(p) = str_at(hook, "matchPolicy").filter(|p| !MATCH_POLICIES.contains(p)) {
        errs.push(FieldError::not_supported(&path.child("matchPolicy"), p, MATCH_POLICIES));
    }
    let allowed = if opts.require_no_side_effects { NO_SIDE_EFFECTS } else { SIDE_EFFECTS };
    match str_at(hook, "sideEffects") {
        None => errs.push(FieldError::required(
            &path.child("sideEffects"),
            format!("must specify one of {}", allowed.join(", ")),
        )),
        Some(s) if !allowed.contains(&s) => {
            errs.push(FieldError::not_supported(&path.child("sideEffects"), s, allowed))
        }
        Some(_) => {}
    }
    if let Some(t) = hook.get("timeoutSeconds").and_then(Value::as_i64).filter(|t| !(1..=30).contains(t)) {
        errs.push(FieldError::invalid(
            &path.child("timeoutSeconds"),
            t,
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    for key in ["namespaceSelector", "objectSelector"] {
        errs.extend(selector_errors(hook, key, !opts.allow_invalid_label_values, path));
    }
    if mutating && let Some(p) = str_at(hook, "reinvocationPolicy").filter(|p| !REINVOCATION_POLICIES.contains(p)) {
        errs.push(FieldError::not_supported(&path.child("reinvocationPolicy"), p, REINVOCATION_POLICIES));
    }
    errs.extend(client_config(hook.get("clientConfig").unwrap_or(&Value::Null), &path.child("clientConfig")));
    if !opts.ignore_match_conditions {
        // Webhooks have no params; the authorizer is theirs.
        let decls = Declarations { params: false, authorizer: true, variables: None };
        errs.extend(match_conditions(list_at(hook, "matchConditions"), &decls, &path.child("matchConditions")));
    }
    errs
}

/// `IsFullyQualifiedName`: a DNS subdomain of at least three segments.
fn fully_qualified_name(name: &str, path: &Path) -> ErrorList {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let msgs = names::dns1123_subdomain(name);
    if !msgs.is_empty() {
        return vec![FieldError::invalid(path, name, msgs.join(","))];
    }
    if name.split('.').count() < 3 {
        return vec![FieldError::invalid(
            path,
            name,
            "should be a domain with at least three segments separated by dots",
        )];
    }
    Vec::new()
}

/// Exactly one of `url` and `service`, each checked as apiserver's `ValidateWebhookURL`
/// (https only) and `ValidateWebhookService` do. The CA bundle is not checked (upstream's
/// webhook validation does not: a bad one fails the calls).
fn client_config(cc: &Value, path: &Path) -> ErrorList {
    match (str_at(cc, "url"), cc.get("service").filter(|s| !s.is_null())) {
        (Some(u), None) => crate::webhook_config::validate_url(u, &path.child("url")),
        (None, Some(s)) => service(s, &path.child("service")),
        _ => vec![FieldError::required(path, "exactly one of url or service is required")],
    }
}

/// `ValidateWebhookService`: name, namespace, port, then the path, each of whose segments must
/// be a DNS subdomain (one trailing slash allowed).
fn service(s: &Value, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    if str_at(s, "name").unwrap_or_default().is_empty() {
        errs.push(FieldError::required(&path.child("name"), "service name is required"));
    }
    if str_at(s, "namespace").unwrap_or_default().is_empty() {
        errs.push(FieldError::required(&path.child("namespace"), "service namespace is required"));
    }
    let port = s.get("port").and_then(Value::as_i64).unwrap_or(443);
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid(
            &path.child("port"),
            port,
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    errs.extend(crate::webhook_config::validate_service_path(str_at(s, "path"), &path.child("path")));
    errs
}

/// `validateAdmissionReviewVersions`.
fn review_versions(versions: &[&str], require_recognized: bool, path: &Path) -> ErrorList {
    if versions.is_empty() {
        return vec![FieldError::required(path, format!("must specify one of {}", REVIEW_VERSIONS.join(", ")))];
    }
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, v) in versions.iter().enumerate() {
        if !seen.insert(*v) {
            errs.push(FieldError::invalid(&path.index(i), *v, "duplicate version"));
            continue;
        }
        errs.extend(names::invalid_all(&path.index(i), v, names::dns1035_label(v)));
    }
    if require_recognized && !versions.iter().any(|v| REVIEW_VERSIONS.contains(v)) {
        errs.push(FieldError::invalid_go(
            path,
            go_slice("string", versions),
            format!("must include at least one of {}", REVIEW_VERSIONS.join(", ")),
        ));
    }
    errs
}

/// `printMutatingWebhook` / `printValidatingWebhook`.
fn cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![json!(meta::name(obj)), json!(webhooks(obj).len()), json!(meta::age(obj, now))]
}

/// `sideEffects` has no v1 default: a body without it must keep saying so to validation.
fn keep_missing_side_effects(raw: &Value, mut canonical: Value) -> Value {
    let raw_hooks = webhooks(raw);
    if let Some(hooks) = canonical.get_mut("webhooks").and_then(Value::as_array_mut) {
        for (hook, raw_hook) in hooks.iter_mut().zip(raw_hooks) {
            if raw_hook.get("sideEffects").is_none_or(Value::is_null)
                && let Some(o) = hook.as_object_mut()
            {
                o.remove("sideEffects");
            }
        }
    }
    canonical
}

/// Upstream's strategies count a change of `webhooks` (Go's `reflect.DeepEqual`).
fn webhooks_changed(old: &Value, new: &Value) -> bool {
    old.get("webhooks") != new.get("webhooks")
}

impl Kind for MutatingWebhookConfigurations {
    fn info(&self) -> &'static ResourceInfo {
        &MUTATING_INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<MutatingWebhookConfiguration>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<MutatingWebhookConfiguration>(raw).map(|c| keep_missing_side_effects(raw, c))
    }
    fn default(&self, obj: &mut Value) {
        set_defaults(obj, true);
    }
    fn changes_generation(&self, old: &Value, new: &Value) -> bool {
        webhooks_changed(old, new)
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        validate(obj, true, &CREATE)
    }
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        validate(new, true, &update_options(old, new))
    }
    fn shapes(&self) -> &dyn crate::schema::Shapes {
        &super::SHAPES
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        cells(obj, now)
    }
}

impl Kind for ValidatingWebhookConfigurations {
    fn info(&self) -> &'static ResourceInfo {
        &VALIDATING_INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<ValidatingWebhookConfiguration>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<ValidatingWebhookConfiguration>(raw).map(|c| keep_missing_side_effects(raw, c))
    }
    fn default(&self, obj: &mut Value) {
        set_defaults(obj, false);
    }
    fn changes_generation(&self, old: &Value, new: &Value) -> bool {
        webhooks_changed(old, new)
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        validate(obj, false, &CREATE)
    }
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        validate(new, false, &update_options(old, new))
    }
    fn shapes(&self) -> &dyn crate::schema::Shapes {
        &super::SHAPES
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        cells(obj, now)
    }
}
