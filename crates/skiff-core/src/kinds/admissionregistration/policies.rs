//! ValidatingAdmissionPolicies: v1 defaults (`failurePolicy: Fail`, the `matchConstraints`'
//! MatchResources defaults), `ValidateValidatingAdmissionPolicy[Update]` with every CEL
//! expression compiled as upstream's compilers do (`crd::cel::untyped`: match conditions
//! without `variables`, the rest composed with the variables before them), the `/status`
//! subresource (`ValidateValidatingAdmissionPolicyStatusUpdate`) and the strategies: a create
//! starts with an empty status, an update keeps the status, a status write keeps the spec, and
//! the generation counts the spec (the registry's default).

use super::GROUP;
use super::rules::{FAILURE_POLICIES, default_match_resources, list_at, match_conditions, match_resources, str_at};
use crate::crd::cel::untyped::{Declarations, Expect, ExprType, check_admission_expression};
use crate::field::{BadValue, ErrorList, FieldError, Path, go_quote};
use crate::kinds::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, Part, ResourceInfo, TypedSchema, roundtrip, schema_of, typed,
};
use crate::{meta, names};
use jiff::Timestamp;
use k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy;
use k8s_openapi::schemars::generate::SchemaGenerator;
use regex::Regex;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::LazyLock;

pub struct ValidatingAdmissionPolicies;

static INFO: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: "v1",
    plural: super::VALIDATING_ADMISSION_POLICIES,
    singular: "validatingadmissionpolicy",
    kind: "ValidatingAdmissionPolicy",
    namespaced: false,
    short_names: &[],
    categories: &["api-extensions"],
    verbs: crate::kinds::VERBS,
    subresources: &[("status", "ValidatingAdmissionPolicy", &["get", "patch", "update"])],
};

static COLUMNS: [Column; 4] = [
    NAME_COLUMN,
    Column {
        data_type: "integer",
        ..Column::new(
            "Validations",
            0,
            "Validations indicates the number of validation rules defined in this configuration",
        )
    },
    Column::new("ParamKind", 0, "ParamKind specifies the kind of resources used to parameterize this policy"),
    AGE_COLUMN,
];

/// `supportedValidationPolicyReason`, sorted.
const REASONS: &[&str] = &["Forbidden", "Invalid", "RequestEntityTooLarge"];
const MAX_AUDIT_ANNOTATIONS: usize = 20;
const MAX_VALUE_EXPRESSION_BYTES: usize = 5 * 1024;
const CONDITION_STATUSES: &[&str] = &["False", "True", "Unknown"];
const CONDITION_REASON_FMT: &str = "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?";
const MAX_CONDITION_REASON: usize = 1024;
const MAX_CONDITION_MESSAGE: usize = 32 * 1024;
/// CEL's reserved words, which no variable may be named.
const CEL_RESERVED: &str = "true false null in as break const continue else for function if import let loop package \
    namespace return var void while";

static CONDITION_REASON: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(&format!("^{CONDITION_REASON_FMT}$")).ok());

/// `SetDefaults_ValidatingAdmissionPolicySpec` and the MatchResources defaults. The spec is a
/// struct upstream, so a policy without one gets `{failurePolicy: Fail}`.
fn set_defaults(obj: &mut Value) {
    let mut policy: ValidatingAdmissionPolicy = typed(obj);
    let spec = policy.spec.get_or_insert_with(Default::default);
    spec.failure_policy.get_or_insert_with(|| "Fail".into());
    if let Some(m) = spec.match_constraints.as_mut() {
        default_match_resources(m);
    }
    if let Ok(v) = serde_json::to_value(&policy) {
        *obj = v;
    }
}

/// `validateValidatingAdmissionPolicy`; `old`: the stored policy of an update.
fn validate(obj: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = meta::validate(obj, false, false);
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::new("spec");
    match str_at(spec, "failurePolicy") {
        None => errs.push(FieldError::required(&path.child("failurePolicy"), "")),
        Some(p) if !FAILURE_POLICIES.contains(&p) => {
            errs.push(FieldError::not_supported(&path.child("failurePolicy"), p, FAILURE_POLICIES))
        }
        Some(_) => {}
    }
    let param_kind = spec.get("paramKind").filter(|p| !p.is_null());
    if let Some(pk) = param_kind {
        errs.extend(validate_param_kind(pk, &path.child("paramKind")));
    }
    match spec.get("matchConstraints").filter(|m| !m.is_null()) {
        None => errs.push(FieldError::required(&path.child("matchConstraints"), "")),
        Some(m) => {
            errs.extend(match_resources(m, &path.child("matchConstraints")));
            // At least one rule, to give the expressions a type.
            if list_at(m, "resourceRules").is_empty() {
                errs.push(FieldError::required(&path.child("matchConstraints").child("resourceRules"), ""));
            }
        }
    }
    let params = param_kind.is_some();
    // Match conditions are recompiled only if they or the paramKind changed.
    let ignore_match_conditions = old.is_some_and(|o| {
        let o = o.get("spec").unwrap_or(&Value::Null);
        o.get("paramKind") == spec.get("paramKind") && o.get("matchConditions") == spec.get("matchConditions")
    });
    if !ignore_match_conditions {
        let decls = Declarations { params, authorizer: true, variables: None };
        errs.extend(match_conditions(list_at(spec, "matchConditions"), &decls, &path.child("matchConditions")));
    }
    // Variables compose: each expression sees the variables compiled before it.
    let composed = !list_at(spec, "variables").is_empty();
    let mut vars: Vec<(String, ExprType)> = Vec::new();
    for (i, v) in list_at(spec, "variables").iter().enumerate() {
        errs.extend(validate_variable(v, params, &mut vars, &path.child("variables").index(i)));
    }
    let decls = |authorizer: bool| Declarations { params, authorizer, variables: composed.then_some(vars.as_slice()) };
    let validations = list_at(spec, "validations");
    let annotations = list_at(spec, "auditAnnotations");
    if validations.is_empty() && annotations.is_empty() {
        let why = "validations or auditAnnotations must contain at least one item";
        errs.push(FieldError::required(&path.child("validations"), why));
        errs.push(FieldError::required(&path.child("auditAnnotations"), why));
        return errs;
    }
    for (i, v) in validations.iter().enumerate() {
        errs.extend(validate_validation(v, &decls(true), &decls(false), &path.child("validations").index(i)));
    }
    if spec.get("auditAnnotations").is_some_and(Value::is_array) {
        let at = path.child("auditAnnotations");
        if annotations.len() > MAX_AUDIT_ANNOTATIONS {
            errs.push(FieldError::invalid_go(
                &at,
                go_audit_annotations(annotations),
                format!("must not have more than {MAX_AUDIT_ANNOTATIONS} auditAnnotations"),
            ));
        }
        let mut keys = BTreeSet::new();
        for (i, a) in annotations.iter().enumerate() {
            errs.extend(validate_audit_annotation(obj, a, &decls(true), &at.index(i)));
            let key = str_at(a, "key").unwrap_or_default();
            if !keys.insert(key) {
                errs.push(FieldError::duplicate(&at.index(i).child("key"), key));
            }
        }
    }
    errs
}

/// `validateParamKind`.
fn validate_param_kind(pk: &Value, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let at = path.child("apiVersion");
    let api_version = str_at(pk, "apiVersion").unwrap_or_default();
    if api_version.is_empty() {
        errs.push(FieldError::required(&at, ""));
    } else if api_version.matches('/').count() > 1 {
        errs.push(FieldError::invalid(&at, api_version, format!("unexpected GroupVersion string: {api_version}")));
    } else {
        // `parseGroupVersion`: "/" is the empty group version.
        let (group, version) = match api_version.split_once('/') {
            _ if api_version == "/" => ("", ""),
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        if !group.is_empty() {
            let msgs = names::dns1123_subdomain(group);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(&at, group, msgs.join(",")));
            }
        }
        if version.is_empty() {
            errs.push(FieldError::invalid(&at, api_version, "version must be specified"));
        } else {
            let msgs = names::dns1035_label(version);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(&at, version, msgs.join(",")));
            }
        }
    }
    let kind = str_at(pk, "kind").unwrap_or_default();
    if kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    } else {
        let msgs = names::dns1035_label(&kind.to_lowercase());
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("kind"),
                kind,
                format!("may have mixed case, but should otherwise match: {}", msgs.join(",")),
            ));
        }
    }
    errs
}

/// `isCELIdentifier`.
fn is_cel_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !CEL_RESERVED.split_whitespace().any(|w| w == name)
}

/// `validateVariable`; the variable joins `vars` (its type `dyn` if it does not compile).
fn validate_variable(v: &Value, params: bool, vars: &mut Vec<(String, ExprType)>, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let name = str_at(v, "name").unwrap_or_default();
    if name.trim().is_empty() {
        errs.push(FieldError::required(&path.child("name"), "name is not specified"));
    } else if !is_cel_identifier(name) {
        errs.push(FieldError::invalid(&path.child("name"), name, "name is not a valid CEL identifier"));
    }
    let expression = str_at(v, "expression").unwrap_or_default();
    if expression.trim().is_empty() {
        errs.push(FieldError::required(&path.child("expression"), "expression is not specified"));
        return errs;
    }
    let decls = Declarations { params, authorizer: true, variables: Some(vars.as_slice()) };
    let ty = match check_admission_expression(expression, &decls, Expect::Any) {
        Ok(t) => t,
        Err(e) => {
            errs.push(FieldError::invalid(&path.child("expression"), expression, e.to_string()));
            ExprType::dynamic()
        }
    };
    vars.push((name.to_string(), ty));
    errs
}

/// `validateValidation`: the expression (a bool), its message expression (a string, no
/// authorizer), message and reason.
fn validate_validation(
    v: &Value,
    decls: &Declarations<'_>,
    message_decls: &Declarations<'_>,
    path: &Path,
) -> ErrorList {
    let mut errs = Vec::new();
    let expression = str_at(v, "expression").unwrap_or_default();
    if expression.trim().is_empty() {
        errs.push(FieldError::required(&path.child("expression"), "expression is not specified"));
    } else if let Err(e) = check_admission_expression(expression, decls, Expect::Bool) {
        errs.push(FieldError::invalid(&path.child("expression"), expression, e.to_string()));
    }
    let message_expression = str_at(v, "messageExpression").unwrap_or_default();
    if !message_expression.is_empty() && message_expression.trim().is_empty() {
        errs.push(FieldError::invalid(
            &path.child("messageExpression"),
            message_expression,
            "must be non-empty if specified",
        ));
    } else if !message_expression.trim().is_empty()
        && let Err(e) = check_admission_expression(message_expression, message_decls, Expect::String)
    {
        errs.push(FieldError::invalid(&path.child("messageExpression"), message_expression, e.to_string()));
    }
    let message = str_at(v, "message").unwrap_or_default();
    if !message.is_empty() && message.trim().is_empty() {
        errs.push(FieldError::invalid(&path.child("message"), message, "message must be non-empty if specified"));
    } else if message.trim().contains(['\n', '\r']) {
        errs.push(FieldError::invalid(&path.child("message"), message, "message must not contain line breaks"));
    }
    if let Some(reason) = str_at(v, "reason").filter(|r| !REASONS.contains(r)) {
        errs.push(FieldError::not_supported(&path.child("reason"), reason, REASONS));
    }
    errs
}

/// `validateAuditAnnotation`: `<policy name>/<key>` must be a qualified name; the value
/// expression (at most 5 KiB, trimmed) a string or null.
fn validate_audit_annotation(obj: &Value, a: &Value, decls: &Declarations<'_>, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let key = str_at(a, "key").unwrap_or_default();
    let name = meta::name(obj);
    if name.is_empty() {
        errs.push(FieldError::invalid(&path.child("key"), key, "requires metadata.name be non-empty"));
    } else {
        let full = format!("{name}/{key}");
        errs.extend(names::invalid_all(&path.child("key"), &full, names::qualified_name(&full)));
    }
    let value = str_at(a, "valueExpression").unwrap_or_default();
    let at = path.child("valueExpression");
    let trimmed = value.trim();
    if trimmed.is_empty() {
        errs.push(FieldError::required(&at, "valueExpression is not specified"));
    } else if trimmed.len() > MAX_VALUE_EXPRESSION_BYTES {
        errs.push(FieldError::required(&at, format!("must not exceed {MAX_VALUE_EXPRESSION_BYTES} bytes in length")));
    } else if let Err(e) = check_admission_expression(trimmed, decls, Expect::StringOrNull) {
        errs.push(FieldError::invalid(&at, value, e.to_string()));
    }
    errs
}

/// `[]admissionregistration.AuditAnnotation{...}` as Go's `%#v` prints it.
fn go_audit_annotations(annotations: &[Value]) -> BadValue {
    let items: Vec<String> = annotations
        .iter()
        .map(|a| {
            format!(
                "admissionregistration.AuditAnnotation{{Key:{}, ValueExpression:{}}}",
                go_quote(str_at(a, "key").unwrap_or_default()),
                go_quote(str_at(a, "valueExpression").unwrap_or_default())
            )
        })
        .collect();
    BadValue::Go(format!("[]admissionregistration.AuditAnnotation{{{}}}", items.join(", ")))
}

/// `validateValidatingAdmissionPolicyStatus`: the type checking warnings and the conditions.
/// (Upstream also parses each warning's `fieldRef` as a client-go JSONPath; that parser is
/// not ours, so only a missing one is refused.)
fn validate_status(obj: &Value) -> ErrorList {
    let mut errs = Vec::new();
    let status = obj.get("status").unwrap_or(&Value::Null);
    let warnings_path = Path::new("status").child("typeChecking").child("expressionWarnings");
    let warnings = list_at(status.get("typeChecking").unwrap_or(&Value::Null), "expressionWarnings");
    for (i, w) in warnings.iter().enumerate() {
        let at = warnings_path.index(i);
        if str_at(w, "warning").unwrap_or_default().is_empty() {
            errs.push(FieldError::required(&at.child("warning"), ""));
        }
        if str_at(w, "fieldRef").unwrap_or_default().trim().is_empty() {
            errs.push(FieldError::required(&at.child("fieldRef"), ""));
        }
    }
    errs.extend(validate_conditions(list_at(status, "conditions"), &Path::new("status").child("conditions")));
    errs
}

/// metav1 `ValidateConditions`.
fn validate_conditions(conditions: &[Value], path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let mut types = BTreeSet::new();
    for (i, c) in conditions.iter().enumerate() {
        let at = path.index(i);
        let type_ = str_at(c, "type").unwrap_or_default();
        if !types.insert(type_) {
            errs.push(FieldError::duplicate(&at.child("type"), type_));
        }
        errs.extend(names::invalid_all(&at.child("type"), type_, names::qualified_name(type_)));
        let status = str_at(c, "status").unwrap_or_default();
        if !CONDITION_STATUSES.contains(&status) {
            errs.push(FieldError::not_supported(&at.child("status"), status, CONDITION_STATUSES));
        }
        if let Some(g) = c.get("observedGeneration").and_then(Value::as_i64).filter(|g| *g < 0) {
            errs.push(FieldError::invalid(&at.child("observedGeneration"), g, "must be greater than or equal to zero"));
        }
        if str_at(c, "lastTransitionTime").is_none() {
            errs.push(FieldError::required(&at.child("lastTransitionTime"), "must be set"));
        }
        let reason = str_at(c, "reason").unwrap_or_default();
        if reason.is_empty() {
            errs.push(FieldError::required(&at.child("reason"), "must be set"));
        } else {
            if CONDITION_REASON.as_ref().is_some_and(|re| !re.is_match(reason)) {
                errs.push(FieldError::invalid(&at.child("reason"), reason, format!(
                    "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName',  or 'ReasonA,ReasonB',  or 'ReasonA:ReasonB', regex used for validation is '{CONDITION_REASON_FMT}')"
                )));
            }
            if reason.len() > MAX_CONDITION_REASON {
                errs.push(FieldError::too_long(&at.child("reason"), MAX_CONDITION_REASON));
            }
        }
        if str_at(c, "message").unwrap_or_default().len() > MAX_CONDITION_MESSAGE {
            errs.push(FieldError::too_long(&at.child("message"), MAX_CONDITION_MESSAGE));
        }
    }
    errs
}

/// `printValidatingAdmissionPolicy`.
fn param_kind_cell(obj: &Value) -> String {
    match obj.pointer("/spec/paramKind").filter(|p| !p.is_null()) {
        Some(pk) => {
            format!("{}/{}", str_at(pk, "apiVersion").unwrap_or_default(), str_at(pk, "kind").unwrap_or_default())
        }
        None => "<unset>".into(),
    }
}

impl Kind for ValidatingAdmissionPolicies {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<ValidatingAdmissionPolicy>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<ValidatingAdmissionPolicy>(raw)
    }
    fn default(&self, obj: &mut Value) {
        set_defaults(obj);
    }
    /// `PrepareForCreate`: the status starts empty (upstream's is a struct: `{}`).
    fn prepare_create(&self, obj: &mut Value) {
        obj["status"] = json!({});
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        validate(obj, None)
    }
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        validate(new, Some(old))
    }
    fn validate_part_update(&self, part: Part, old: &Value, new: &Value) -> ErrorList {
        match part {
            Part::Status => validate_status(new),
            Part::Main | Part::Named(_) => self.validate_update(old, new),
        }
    }
    fn shapes(&self) -> &dyn crate::schema::Shapes {
        &super::SHAPES
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let validations = obj.pointer("/spec/validations").and_then(Value::as_array).map_or(0, Vec::len);
        vec![json!(meta::name(obj)), json!(validations), json!(param_kind_cell(obj)), json!(meta::age(obj, now))]
    }
}
