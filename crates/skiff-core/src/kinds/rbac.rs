//! `rbac.authorization.k8s.io/v1`: Roles and RoleBindings (namespaced), ClusterRoles and
//! ClusterRoleBindings. What is stored and how it is checked, as Kubernetes 1.32 does:
//! defaulting (`pkg/apis/rbac/v1/defaults.go`), validation (`pkg/apis/rbac/validation`, run as
//! the registry strategies run it) and Table columns (`printRoleBinding`,
//! `printClusterRoleBinding`; Roles and ClusterRoles have no printer upstream, so they get the
//! default convertor's `Created At`). Who may do what with them is `crate::auth`'s concern.

use super::{
    AGE_COLUMN, CREATED_AT_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, created_at,
    roundtrip, schema_of, typed,
};
use crate::field::{BadValue, ErrorList, FieldError, Path, go_quote};
use crate::{meta, names, selector};
use jiff::Timestamp;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

/// The API group, also the only `roleRef.apiGroup` and the `apiGroup` of User and Group subjects.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const USER: &str = "User";
const GROUP: &str = "Group";
const SERVICE_ACCOUNT: &str = "ServiceAccount";
/// In upstream's order (not sorted).
const SUBJECT_KINDS: &[&str] = &[SERVICE_ACCOUNT, USER, GROUP];

pub struct Roles;
pub struct ClusterRoles;
pub struct RoleBindings;
pub struct ClusterRoleBindings;

const fn info(plural: &'static str, singular: &'static str, kind: &'static str, namespaced: bool) -> ResourceInfo {
    ResourceInfo {
        group: RBAC_GROUP,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names: &[],
        categories: &[],
        verbs: super::VERBS,
        subresources: &[],
    }
}

static ROLE: ResourceInfo = info("roles", "role", "Role", true);
static CLUSTER_ROLE: ResourceInfo = info("clusterroles", "clusterrole", "ClusterRole", false);
static ROLE_BINDING: ResourceInfo = info("rolebindings", "rolebinding", "RoleBinding", true);
static CLUSTER_ROLE_BINDING: ResourceInfo =
    info("clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", false);

static ROLE_COLUMNS: [Column; 2] = [NAME_COLUMN, CREATED_AT_COLUMN];

/// The ROLE column's description is `rbac/v1beta1`'s doc of `roleRef`, as upstream's printer takes it.
static ROLE_BINDING_COLUMNS: [Column; 6] = [
    NAME_COLUMN,
    Column::new(
        "Role",
        0,
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    ),
    AGE_COLUMN,
    Column::new("Users", 1, "Users in the roleBinding"),
    Column::new("Groups", 1, "Groups in the roleBinding"),
    Column::new("ServiceAccounts", 1, "ServiceAccounts in the roleBinding"),
];

static CLUSTER_ROLE_BINDING_COLUMNS: [Column; 6] = [
    NAME_COLUMN,
    Column::new(
        "Role",
        0,
        "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    ),
    AGE_COLUMN,
    Column::new("Users", 1, "Users in the clusterRoleBinding"),
    Column::new("Groups", 1, "Groups in the clusterRoleBinding"),
    Column::new("ServiceAccounts", 1, "ServiceAccounts in the clusterRoleBinding"),
];

/// A `[]string` as Go's `%#v` prints it: `[]string{"/healthz", "/api"}`.
fn string_slice(values: &[String]) -> BadValue {
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    BadValue::Go(format!("[]string{{{}}}", quoted.join(", ")))
}

/// The internal `rbac.RoleRef` as Go's `%#v` prints it, the value of `cannot change roleRef`.
fn role_ref_value(r: &RoleRef) -> BadValue {
    BadValue::Go(format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        go_quote(r.api_group.as_deref().unwrap_or_default()),
        go_quote(&r.kind),
        go_quote(&r.name)
    ))
}

fn rules_of(obj: &Value) -> Vec<PolicyRule> {
    typed(&obj["rules"])
}

fn role_ref_of(obj: &Value) -> RoleRef {
    typed(&obj["roleRef"])
}

fn subjects_of(obj: &Value) -> Vec<Subject> {
    typed(&obj["subjects"])
}

/// `ValidatePolicyRule`: verbs always; URLs only in cluster roles and never with resources;
/// otherwise API groups and resources.
fn validate_rule(rule: &PolicyRule, namespaced: bool, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    if rule.verbs.is_empty() {
        errs.push(FieldError::required(&path.child("verbs"), "verbs must contain at least one value"));
    }
    let listed = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if let Some(urls) = rule.non_resource_urls.as_deref().filter(|u| !u.is_empty()) {
        let up = path.child("nonResourceURLs");
        if namespaced {
            errs.push(FieldError::invalid_go(
                &up,
                string_slice(urls),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if listed(&rule.api_groups) || listed(&rule.resources) || listed(&rule.resource_names) {
            errs.push(FieldError::invalid_go(
                &up,
                string_slice(urls),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if !listed(&rule.api_groups) {
        errs.push(FieldError::required(&path.child("apiGroups"), "resource rules must supply at least one api group"));
    }
    if !listed(&rule.resources) {
        errs.push(FieldError::required(&path.child("resources"), "resource rules must supply at least one resource"));
    }
    errs
}

/// `ValidateRole` and `ValidateClusterRole`: names as path segments, every rule, and a cluster
/// role's aggregation rule. `allow_invalid_values` is `AllowInvalidLabelValueInSelector`.
fn validate_role(obj: &Value, namespaced: bool, allow_invalid_values: bool) -> ErrorList {
    let mut errs = meta::validate_with(obj, namespaced, names::path_segment_name);
    for (i, rule) in rules_of(obj).iter().enumerate() {
        errs.extend(validate_rule(rule, namespaced, &Path::new("rules").index(i)));
    }
    if namespaced {
        return errs;
    }
    let Some(aggregation) = obj.get("aggregationRule").filter(|a| !a.is_null()) else { return errs };
    let path = Path::new("aggregationRule").child("clusterRoleSelectors");
    let selectors = aggregation.get("clusterRoleSelectors").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    if selectors.is_empty() {
        errs.push(FieldError::required(
            &path,
            "at least one clusterRoleSelector required if aggregationRule is non-nil",
        ));
    }
    for (i, sel) in selectors.iter().enumerate() {
        let sp = path.index(i);
        errs.extend(selector::validate_api_with(sel, &sp, allow_invalid_values));
        // Upstream also converts the selector, which fails exactly where strict validation does,
        // and reports the nil selector it got back as "null".
        if !selector::validate_api_with(sel, &sp, false).is_empty() {
            errs.push(FieldError::invalid(&sp, "null", "invalid label selector."));
        }
    }
    errs
}

/// `hasInvalidLabelValueInLabelSelector`: whether a stored cluster role's aggregation selectors
/// are themselves invalid, so an update may keep them.
fn has_invalid_selector(obj: &Value) -> bool {
    let selectors = obj.pointer("/aggregationRule/clusterRoleSelectors").and_then(Value::as_array);
    selectors.into_iter().flatten().any(|s| !selector::validate_api_with(s, &Path::default(), false).is_empty())
}

/// `ValidateRoleBindingSubject`.
fn validate_subject(subject: &Subject, namespaced: bool, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let name = subject.name.as_str();
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    let api_group = subject.api_group.as_deref().unwrap_or_default();
    match subject.kind.as_str() {
        SERVICE_ACCOUNT => {
            if !name.is_empty() {
                errs.extend(names::invalid_all(&path.child("name"), name, names::dns1123_subdomain(name)));
            }
            if !api_group.is_empty() {
                errs.push(FieldError::not_supported(&path.child("apiGroup"), api_group, &[""]));
            }
            if !namespaced && subject.namespace.as_deref().is_none_or(str::is_empty) {
                errs.push(FieldError::required(&path.child("namespace"), ""));
            }
        }
        USER | GROUP => {
            if api_group != RBAC_GROUP {
                errs.push(FieldError::not_supported(&path.child("apiGroup"), api_group, &[RBAC_GROUP]));
            }
        }
        other => errs.push(FieldError::not_supported(&path.child("kind"), other, SUBJECT_KINDS)),
    }
    errs
}

/// `ValidateRoleBinding` and `ValidateClusterRoleBinding`: a RoleBinding may reference a Role or
/// a ClusterRole, a ClusterRoleBinding a ClusterRole only.
fn validate_binding(obj: &Value, namespaced: bool) -> ErrorList {
    let mut errs = meta::validate_with(obj, namespaced, names::path_segment_name);
    let role_ref = role_ref_of(obj);
    let rp = Path::new("roleRef");
    let api_group = role_ref.api_group.as_deref().unwrap_or_default();
    if api_group != RBAC_GROUP {
        errs.push(FieldError::not_supported(&rp.child("apiGroup"), api_group, &[RBAC_GROUP]));
    }
    let kinds: &[&str] = if namespaced { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
    if !kinds.contains(&role_ref.kind.as_str()) {
        errs.push(FieldError::not_supported(&rp.child("kind"), role_ref.kind.as_str(), kinds));
    }
    let name = role_ref.name.as_str();
    if name.is_empty() {
        errs.push(FieldError::required(&rp.child("name"), ""));
    } else {
        errs.extend(names::invalid_all(&rp.child("name"), name, names::path_segment_name(name)));
    }
    for (i, subject) in subjects_of(obj).iter().enumerate() {
        errs.extend(validate_subject(subject, namespaced, &Path::new("subjects").index(i)));
    }
    errs
}

/// Upstream's strategy: `ValidateRoleBinding`, then `ValidateRoleBindingUpdate`, which validates
/// the binding again (each error is listed twice; the Status message names it once) and refuses
/// a new roleRef: a binding's grant is changed by replacing the binding.
fn validate_binding_update(old: &Value, new: &Value, namespaced: bool) -> ErrorList {
    let once = validate_binding(new, namespaced);
    let mut errs = once.clone();
    errs.extend(once);
    let role_ref = role_ref_of(new);
    if role_ref_of(old) != role_ref {
        errs.push(FieldError::invalid_go(&Path::new("roleRef"), role_ref_value(&role_ref), "cannot change roleRef"));
    }
    errs
}

/// `SetDefaults_RoleBinding`, `SetDefaults_ClusterRoleBinding` and `SetDefaults_Subject`: the
/// roleRef's group, and each subject's group by its kind.
fn default_binding(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    let role_ref = o.entry("roleRef").or_insert_with(|| json!({}));
    if role_ref.is_null() {
        *role_ref = json!({});
    }
    if let Some(r) = role_ref.as_object_mut()
        && r.get("apiGroup").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        r.insert("apiGroup".into(), json!(RBAC_GROUP));
    }
    for subject in o.get_mut("subjects").and_then(Value::as_array_mut).into_iter().flatten() {
        let Some(s) = subject.as_object_mut() else { continue };
        if !s.get("apiGroup").and_then(Value::as_str).is_none_or(str::is_empty) {
            continue;
        }
        match s.get("kind").and_then(Value::as_str) {
            Some(USER | GROUP) => {
                s.insert("apiGroup".into(), json!(RBAC_GROUP));
            }
            // Upstream's empty group is left out of the JSON (`omitempty`).
            Some(SERVICE_ACCOUNT) => {
                s.remove("apiGroup");
            }
            _ => {}
        }
    }
}

/// `printRoleBinding`/`printClusterRoleBinding` with the wide columns (`rbac.SubjectsStrings`).
fn binding_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let role_ref = role_ref_of(obj);
    let (mut users, mut groups, mut accounts) = (Vec::new(), Vec::new(), Vec::new());
    for s in subjects_of(obj) {
        match s.kind.as_str() {
            USER => users.push(s.name),
            GROUP => groups.push(s.name),
            SERVICE_ACCOUNT => accounts.push(format!("{}/{}", s.namespace.unwrap_or_default(), s.name)),
            _ => {}
        }
    }
    vec![
        json!(meta::name(obj)),
        json!(format!("{}/{}", role_ref.kind, role_ref.name)),
        json!(meta::age(obj, now)),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(accounts.join(", ")),
    ]
}

impl Kind for Roles {
    fn info(&self) -> &'static ResourceInfo {
        &ROLE
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<Role>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<Role>(raw)
    }
    /// `ValidateRole`.
    fn validate(&self, obj: &Value) -> ErrorList {
        validate_role(obj, true, false)
    }
    /// `ValidateRole`, then `ValidateRoleUpdate`, which validates it again.
    fn validate_update(&self, _old: &Value, new: &Value) -> ErrorList {
        let once = validate_role(new, true, false);
        [once.clone(), once].concat()
    }
    fn columns(&self) -> &'static [Column] {
        &ROLE_COLUMNS
    }
    fn cells(&self, obj: &Value, _now: Timestamp) -> Vec<Value> {
        vec![json!(meta::name(obj)), json!(created_at(obj))]
    }
}

impl Kind for ClusterRoles {
    fn info(&self) -> &'static ResourceInfo {
        &CLUSTER_ROLE
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<ClusterRole>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<ClusterRole>(raw)
    }
    /// `ValidateClusterRole`.
    fn validate(&self, obj: &Value) -> ErrorList {
        validate_role(obj, false, false)
    }
    /// `ValidateClusterRole`, then `ValidateClusterRoleUpdate`, which validates it again;
    /// invalid selector values are kept when the stored aggregation rule has invalid selectors.
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let once = validate_role(new, false, has_invalid_selector(old));
        [once.clone(), once].concat()
    }
    fn columns(&self) -> &'static [Column] {
        &ROLE_COLUMNS
    }
    fn cells(&self, obj: &Value, _now: Timestamp) -> Vec<Value> {
        vec![json!(meta::name(obj)), json!(created_at(obj))]
    }
}

impl Kind for RoleBindings {
    fn info(&self) -> &'static ResourceInfo {
        &ROLE_BINDING
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<RoleBinding>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<RoleBinding>(raw)
    }
    fn default(&self, obj: &mut Value) {
        default_binding(obj);
    }
    /// `ValidateRoleBinding`.
    fn validate(&self, obj: &Value) -> ErrorList {
        validate_binding(obj, true)
    }
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        validate_binding_update(old, new, true)
    }
    fn columns(&self) -> &'static [Column] {
        &ROLE_BINDING_COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        binding_cells(obj, now)
    }
}

impl Kind for ClusterRoleBindings {
    fn info(&self) -> &'static ResourceInfo {
        &CLUSTER_ROLE_BINDING
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<ClusterRoleBinding>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<ClusterRoleBinding>(raw)
    }
    fn default(&self, obj: &mut Value) {
        default_binding(obj);
    }
    /// `ValidateClusterRoleBinding`.
    fn validate(&self, obj: &Value) -> ErrorList {
        validate_binding(obj, false)
    }
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        validate_binding_update(old, new, false)
    }
    fn columns(&self) -> &'static [Column] {
        &CLUSTER_ROLE_BINDING_COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        binding_cells(obj, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(errs: ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    /// `obj` decoded and defaulted as a write is.
    fn written(kind: &dyn Kind, obj: Value) -> Value {
        let mut obj = kind.normalize(&obj).expect("decodes");
        kind.default(&mut obj);
        obj
    }

    fn role(rules: Value) -> Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "r", "namespace": "default"}, "rules": rules})
    }

    fn cluster_role(rest: Value) -> Value {
        let mut obj =
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "cr"}});
        obj.as_object_mut().expect("object").extend(rest.as_object().cloned().unwrap_or_default());
        obj
    }

    fn role_binding(role_ref: Value, subjects: Value) -> Value {
        written(
            &RoleBindings,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "rb", "namespace": "default"}, "roleRef": role_ref, "subjects": subjects}),
        )
    }

    fn cluster_role_binding(role_ref: Value, subjects: Value) -> Value {
        written(
            &ClusterRoleBindings,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "crb"}, "roleRef": role_ref, "subjects": subjects}),
        )
    }

    #[test]
    fn rules_as_upstream_validates_them() {
        let ok = role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
            {"apiGroups": ["apps"], "resources": ["deployments/scale"], "resourceNames": ["web"], "verbs": ["*"]}]));
        assert!(Roles.validate(&written(&Roles, ok)).is_empty());
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "an empty rule",
                json!([{}]),
                vec![
                    "rules[0].verbs: Required value: verbs must contain at least one value",
                    "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                    "rules[0].resources: Required value: resource rules must supply at least one resource",
                ],
            ),
            (
                "resource names alone",
                json!([{"resourceNames": ["x"], "verbs": ["get"]}]),
                vec![
                    "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                    "rules[0].resources: Required value: resource rules must supply at least one resource",
                ],
            ),
            (
                "URLs in a namespaced role, with resources",
                json!([{"nonResourceURLs": ["/healthz", "/api/*"], "resources": ["pods"]}]),
                vec![
                    "rules[0].verbs: Required value: verbs must contain at least one value",
                    "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\", \"/api/*\"}: namespaced rules cannot apply to non-resource URLs",
                    "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\", \"/api/*\"}: rules cannot apply to both regular resources and non-resource URLs",
                ],
            ),
        ];
        for (name, rules, want) in cases {
            assert_eq!(strings(Roles.validate(&written(&Roles, role(rules)))), want, "{name}");
        }
        // Cluster roles may hold URL rules, but not mixed with resources.
        let urls = cluster_role(json!({"rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}));
        assert!(ClusterRoles.validate(&written(&ClusterRoles, urls)).is_empty());
        let mixed =
            cluster_role(json!({"rules": [{"nonResourceURLs": ["/metrics"], "apiGroups": [""], "verbs": ["get"]}]}));
        assert_eq!(
            strings(ClusterRoles.validate(&written(&ClusterRoles, mixed))),
            [
                "rules[0].nonResourceURLs: Invalid value: []string{\"/metrics\"}: rules cannot apply to both regular resources and non-resource URLs"
            ]
        );
    }

    #[test]
    fn names_are_path_segments() {
        let mut obj = role(json!([]));
        obj["metadata"]["name"] = json!("system:Controller_x");
        assert!(Roles.validate(&written(&Roles, obj.clone())).is_empty(), "colons and capitals are fine");
        obj["metadata"]["name"] = json!("a/b%c");
        assert_eq!(
            strings(Roles.validate(&written(&Roles, obj.clone()))),
            [
                "metadata.name: Invalid value: \"a/b%c\": may not contain '/'",
                "metadata.name: Invalid value: \"a/b%c\": may not contain '%'"
            ]
        );
        obj["metadata"]["name"] = json!("..");
        assert_eq!(
            strings(Roles.validate(&written(&Roles, obj))),
            ["metadata.name: Invalid value: \"..\": may not be '..'"]
        );
        let namespaced = cluster_role(json!({"metadata": {"name": "cr", "namespace": "default"}}));
        assert_eq!(
            strings(ClusterRoles.validate(&written(&ClusterRoles, namespaced))),
            ["metadata.namespace: Forbidden: not allowed on this type"]
        );
    }

    #[test]
    fn aggregation_rules_need_valid_selectors() {
        let with = |rule: Value| written(&ClusterRoles, cluster_role(json!({"aggregationRule": rule})));
        let ok =
            with(json!({"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate-to-edit": "true"}}]}));
        assert!(ClusterRoles.validate(&ok).is_empty());
        assert_eq!(
            strings(ClusterRoles.validate(&with(json!({})))),
            [
                "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"
            ]
        );
        let bad = with(json!({"clusterRoleSelectors": [{}, {"matchLabels": {"a/b/c": "x"}},
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["-bad"]}]}]}));
        let value_error = "aggregationRule.clusterRoleSelectors[2].matchExpressions[0].values[0]: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
        assert_eq!(
            strings(ClusterRoles.validate(&bad)),
            [
                "aggregationRule.clusterRoleSelectors[1].matchLabels: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                "aggregationRule.clusterRoleSelectors[1]: Invalid value: \"null\": invalid label selector.",
                value_error,
                "aggregationRule.clusterRoleSelectors[2]: Invalid value: \"null\": invalid label selector.",
            ]
        );
        // An update keeps the values a stored invalid selector has, but the selector still does
        // not convert; every error is listed twice, as upstream's update validation does.
        let stored = with(json!({"clusterRoleSelectors": [{"matchLabels": {"k": "-old"}}]}));
        let changed = with(
            json!({"clusterRoleSelectors": [{"matchExpressions": [{"key": "k", "operator": "In", "values": ["-new"]}]}]}),
        );
        let convert = "aggregationRule.clusterRoleSelectors[0]: Invalid value: \"null\": invalid label selector.";
        assert_eq!(strings(ClusterRoles.validate_update(&stored, &changed)), [convert, convert]);
        assert_eq!(strings(ClusterRoles.validate_update(&ok, &changed)).len(), 4);
    }

    #[test]
    fn bindings_default_their_groups() {
        let rb = role_binding(
            json!({"kind": "ClusterRole", "name": "view"}),
            json!([{"kind": "User", "name": "jane"}, {"kind": "Group", "name": "devs", "apiGroup": ""},
                {"kind": "ServiceAccount", "name": "app", "namespace": "default", "apiGroup": ""},
                {"kind": "Robot", "name": "r2"}]),
        );
        assert_eq!(rb["roleRef"], json!({"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "view"}));
        assert_eq!(
            rb["subjects"],
            json!([{"kind": "User", "name": "jane", "apiGroup": RBAC_GROUP},
                {"kind": "Group", "name": "devs", "apiGroup": RBAC_GROUP},
                {"kind": "ServiceAccount", "name": "app", "namespace": "default"},
                {"kind": "Robot", "name": "r2"}])
        );
        // A group that is given stays.
        let other = role_binding(
            json!({"apiGroup": "example.com", "kind": "Role", "name": "x"}),
            json!([{"kind": "User", "name": "u", "apiGroup": "example.com"}]),
        );
        assert_eq!(other["roleRef"]["apiGroup"], "example.com");
        assert_eq!(other["subjects"][0]["apiGroup"], "example.com");
    }

    #[test]
    fn role_bindings_as_upstream_validates_them() {
        let ok = role_binding(
            json!({"kind": "Role", "name": "pod-reader"}),
            json!([{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "app"}]),
        );
        assert!(RoleBindings.validate(&ok).is_empty(), "{:?}", strings(RoleBindings.validate(&ok)));
        let cases: Vec<(&str, Value, Value, Vec<&str>)> = vec![
            (
                "no roleRef",
                Value::Null,
                json!([]),
                vec![
                    "roleRef.kind: Unsupported value: \"\": supported values: \"Role\", \"ClusterRole\"",
                    "roleRef.name: Required value",
                ],
            ),
            (
                "a roleRef of another group and kind, named badly",
                json!({"apiGroup": "example.com", "kind": "Policy", "name": "a/b"}),
                json!([]),
                vec![
                    "roleRef.apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\"",
                    "roleRef.kind: Unsupported value: \"Policy\": supported values: \"Role\", \"ClusterRole\"",
                    "roleRef.name: Invalid value: \"a/b\": may not contain '/'",
                ],
            ),
            (
                "bad subjects",
                json!({"kind": "ClusterRole", "name": "view"}),
                json!([{"kind": "User", "name": ""}, {"kind": "Group", "name": "g", "apiGroup": "example.com"},
                    {"kind": "ServiceAccount", "name": "Bad_Name", "apiGroup": "v1"}, {"kind": "Robot", "name": "r2"}]),
                vec![
                    "subjects[0].name: Required value",
                    "subjects[1].apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\"",
                    "subjects[2].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                    "subjects[2].apiGroup: Unsupported value: \"v1\": supported values: \"\"",
                    "subjects[3].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
                ],
            ),
        ];
        for (name, role_ref, subjects, want) in cases {
            assert_eq!(strings(RoleBindings.validate(&role_binding(role_ref, subjects))), want, "{name}");
        }
    }

    #[test]
    fn cluster_role_bindings_reference_cluster_roles_and_namespaced_accounts() {
        let ok = cluster_role_binding(
            json!({"kind": "ClusterRole", "name": "cluster-admin"}),
            json!([{"kind": "Group", "name": "system:masters"},
                {"kind": "ServiceAccount", "name": "ctl", "namespace": "kube-system"}]),
        );
        assert!(ClusterRoleBindings.validate(&ok).is_empty());
        let bad = cluster_role_binding(
            json!({"kind": "Role", "name": "r"}),
            json!([{"kind": "ServiceAccount", "name": "ctl"}]),
        );
        assert_eq!(
            strings(ClusterRoleBindings.validate(&bad)),
            [
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "subjects[0].namespace: Required value",
            ]
        );
    }

    #[test]
    fn role_refs_cannot_change() {
        let old = role_binding(json!({"kind": "ClusterRole", "name": "view"}), json!([{"kind": "User", "name": "a"}]));
        let more = role_binding(
            json!({"kind": "ClusterRole", "name": "view", "apiGroup": RBAC_GROUP}),
            json!([{"kind": "User", "name": "a"}, {"kind": "User", "name": "b"}]),
        );
        assert!(RoleBindings.validate_update(&old, &more).is_empty(), "subjects may change");
        let edit = role_binding(json!({"kind": "ClusterRole", "name": "edit"}), json!([]));
        assert_eq!(
            strings(RoleBindings.validate_update(&old, &edit)),
            [
                "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
            ]
        );
        // Errors of the new binding come twice, before the roleRef's.
        let role = role_binding(json!({"kind": "Role", "name": ""}), json!([]));
        assert_eq!(
            strings(RoleBindings.validate_update(&old, &role)),
            [
                "roleRef.name: Required value",
                "roleRef.name: Required value",
                "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"\"}: cannot change roleRef",
            ]
        );
        let crb = cluster_role_binding(json!({"kind": "ClusterRole", "name": "view"}), json!([]));
        let changed = cluster_role_binding(json!({"kind": "ClusterRole", "name": "admin"}), json!([]));
        assert_eq!(strings(ClusterRoleBindings.validate_update(&crb, &changed)).len(), 1);
        assert!(ClusterRoleBindings.validate_update(&crb, &crb).is_empty());
    }

    #[test]
    fn tables_as_kubectl_shows_them() {
        let now: Timestamp = "2026-01-01T00:05:00Z".parse().expect("time");
        let mut rb = role_binding(
            json!({"kind": "ClusterRole", "name": "view"}),
            json!([{"kind": "User", "name": "jane"}, {"kind": "User", "name": "joe"}, {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "name": "app", "namespace": "web"}, {"kind": "ServiceAccount", "name": "bot"}]),
        );
        rb["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(
            RoleBindings.cells(&rb, now),
            [
                json!("rb"),
                json!("ClusterRole/view"),
                json!("5m"),
                json!("jane, joe"),
                json!("devs"),
                json!("web/app, /bot")
            ]
        );
        let names: Vec<(&str, u8)> = RoleBindings.columns().iter().map(|c| (c.name, c.priority)).collect();
        assert_eq!(names, [("Name", 0), ("Role", 0), ("Age", 0), ("Users", 1), ("Groups", 1), ("ServiceAccounts", 1)]);
        let crb = cluster_role_binding(json!({"kind": "ClusterRole", "name": "cluster-admin"}), json!(null));
        assert_eq!(
            ClusterRoleBindings.cells(&crb, now)[1..],
            [json!("ClusterRole/cluster-admin"), json!("<unknown>"), json!(""), json!(""), json!("")]
        );
        assert_eq!(ClusterRoleBindings.columns()[3].description, "Users in the clusterRoleBinding");

        let mut r = role(json!([]));
        r["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(Roles.cells(&r, now), [json!("r"), json!("2026-01-01T00:00:00Z")]);
        let columns: Vec<Value> = ClusterRoles.columns().iter().map(Column::to_json).collect();
        assert_eq!((columns[1]["name"].clone(), columns[1]["type"].clone()), (json!("Created At"), json!("date")));
        assert_eq!(ClusterRoles.cells(&cluster_role(json!({})), now)[1], json!("0001-01-01T00:00:00Z"));
    }

    #[test]
    fn discovery_facts() {
        let kinds: [&dyn Kind; 4] = [&Roles, &ClusterRoles, &RoleBindings, &ClusterRoleBindings];
        let facts: Vec<(String, bool, usize)> = kinds
            .iter()
            .map(|k| (k.info().qualified_resource(), k.info().namespaced, k.info().short_names.len()))
            .collect();
        assert_eq!(
            facts,
            [
                ("roles.rbac.authorization.k8s.io".to_string(), true, 0),
                ("clusterroles.rbac.authorization.k8s.io".to_string(), false, 0),
                ("rolebindings.rbac.authorization.k8s.io".to_string(), true, 0),
                ("clusterrolebindings.rbac.authorization.k8s.io".to_string(), false, 0),
            ]
        );
        assert!(kinds.iter().all(|k| k.info().verbs == super::super::VERBS && k.info().subresources.is_empty()));
    }
}
