//! Upstream's `ValidateCustomResourceDefinition`, `ValidateCustomResourceDefinitionUpdate` and
//! `ValidateUpdateCustomResourceDefinitionStatus`, on the internal view of the definition (see
//! [`super::fold`]), errors in upstream's order and words.

use super::conversion;
use super::fold::Internal;
use super::ratchet::{Strictness, any_node};
use super::version::{self, Place};
use crate::crd::{self, Schema};
use crate::field::{BadValue, ErrorList, FieldError, Path, go_quote};
use crate::go_url as url;
use crate::kinds::typed;
use crate::{meta, names};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
};
use serde_json::Value;

const SCOPES: &[&str] = &["Cluster", "Namespaced"];
const APPROVAL_ANNOTATION: &str = "api-approved.kubernetes.io";

/// A new definition.
pub(super) fn validate_create(obj: &Value) -> ErrorList {
    let crd: CustomResourceDefinition = typed(obj);
    let mut errs = metadata_create(obj, &crd.spec);
    errs.extend(spec(&crd.spec, &Strictness::create()));
    errs.extend(status_and_stored_versions(&crd));
    errs.extend(approval(obj, None));
    errs.extend(preserve_unknown_fields(&crd, None));
    errs
}

/// An update of the definition: every rule, as strict as the stored definition allows, and
/// the fields that may not change.
pub(super) fn validate_update(old_obj: &Value, obj: &Value) -> ErrorList {
    let (old, crd): (CustomResourceDefinition, CustomResourceDefinition) = (typed(old_obj), typed(obj));
    let strict = Strictness::update(old_obj, &old);
    let mut errs = meta::validate_with(obj, false, names::dns1123_subdomain);
    errs.extend(spec(&crd.spec, &strict));
    let (s, o) = (Path::new("spec"), &old.spec);
    let mut immutable = |path: Path, new: &str, old: &str| {
        if new != old {
            errs.push(FieldError::invalid(&path, new, "field is immutable"));
        }
    };
    if strict.require_immutable_names {
        immutable(s.child("scope"), &crd.spec.scope, &o.scope);
        immutable(s.child("names").child("kind"), &crd.spec.names.kind, &o.names.kind);
    }
    immutable(s.child("group"), &crd.spec.group, &o.group);
    immutable(s.child("names").child("plural"), &crd.spec.names.plural, &o.names.plural);
    errs.extend(status_and_stored_versions(&crd));
    errs.extend(approval(obj, Some(old_obj)));
    errs.extend(preserve_unknown_fields(&crd, Some(&old)));
    errs
}

/// A write of `/status`: metadata and the accepted names only (stored versions are trimmed
/// this way, so they are not checked against the versions here).
pub(super) fn validate_status_update(obj: &Value) -> ErrorList {
    let crd: CustomResourceDefinition = typed(obj);
    let mut errs = meta::validate_with(obj, false, names::dns1123_subdomain);
    errs.extend(accepted_names(&crd));
    errs
}

/// ObjectMeta with upstream's name function: a DNS subdomain that is `plural.group`. The
/// function runs on the name and on `generateName`, each extra message after its field's.
fn metadata_create(obj: &Value, spec: &CustomResourceDefinitionSpec) -> ErrorList {
    let mut errs = meta::validate_with(obj, false, names::dns1123_subdomain);
    let required = format!("{}.{}", spec.names.plural, spec.group);
    let md = Path::new("metadata");
    let generate_name = obj.pointer("/metadata/generateName").and_then(Value::as_str).unwrap_or_default();
    for (field, value, after) in
        [("name", meta::name(obj), &["name"][..]), ("generateName", generate_name, &["name", "generateName"][..])]
    {
        if value.is_empty() || value == required {
            continue;
        }
        let at = errs.iter().rposition(|e| after.iter().any(|f| e.field == md.child(f))).map_or(0, |i| i + 1);
        let err = FieldError::invalid(&md.child(field), value, r#"must be spec.names.plural+"."+spec.group"#);
        errs.insert(at, err);
    }
    errs
}

/// `validateCustomResourceDefinitionSpec`.
fn spec(spec: &CustomResourceDefinitionSpec, strict: &Strictness) -> ErrorList {
    let mut errs = Vec::new();
    let path = Path::new("spec");
    let view = Internal::new(spec);
    let preserve = spec.preserve_unknown_fields == Some(true);
    let group = path.child("group");
    if spec.group.is_empty() {
        errs.push(FieldError::required(&group, ""));
    } else if let msgs @ [_, ..] = names::dns1123_subdomain(&spec.group).as_slice() {
        errs.push(FieldError::invalid(&group, spec.group.as_str(), msgs.join(",")));
    } else if !spec.group.contains('.') {
        errs.push(FieldError::invalid(&group, spec.group.as_str(), "should be a domain with at least one dot"));
    }
    let scope = path.child("scope");
    if spec.scope.is_empty() {
        errs.push(FieldError::required(&scope, ""));
    } else if !SCOPES.contains(&spec.scope.as_str()) {
        errs.push(FieldError::not_supported(&scope, spec.scope.as_str(), SCOPES));
    }

    let mut check = strict.check.clone();
    // Pruning needs structural schemas.
    if !preserve {
        check.require_structural = true;
    }
    let versions = path.child("versions");
    let schema_path = |i: usize| versions.index(i).child("schema").child("openAPIV3Schema");
    let has_schema = |i: usize| view.version_validation(i).is_some_and(|v| v.open_api_v3_schema.is_some());
    if view.validation().and_then(|v| v.open_api_v3_schema.as_ref()).is_none() {
        for i in 0..view.versions.len() {
            if has_schema(i) {
                continue;
            }
            if strict.require_open_api_schema {
                errs.push(FieldError::required(&schema_path(i), "schemas are required"));
            } else if !preserve && view.versions[i].served {
                errs.push(FieldError::required(&schema_path(i), "because otherwise all fields are pruned"));
            }
        }
    }
    let schemas: Vec<Schema> = spec
        .versions
        .iter()
        .filter_map(|v| version::schema_value(v.schema.as_ref()))
        .filter_map(|v| crd::parse(&v).ok())
        .collect();
    let any = |pred: &dyn Fn(&Schema) -> bool| schemas.iter().any(|s| any_node(s, pred));
    if check.allow_defaults && any(&|s| s.default.is_some()) {
        check.require_structural = true;
        if preserve {
            let detail = "must be false in order to use defaults in the schema";
            errs.push(FieldError::invalid(&path.child("preserveUnknownFields"), true, detail));
        }
    }
    if any(&has_kubernetes_extensions) {
        check.require_structural = true;
    }

    let mut unique = true;
    for (i, v) in spec.versions.iter().enumerate() {
        if spec.versions[..i].iter().any(|w| w.name == v.name) {
            unique = false;
        }
        let at = versions.index(i);
        if let msgs @ [_, ..] = names::dns1035_label(&v.name).as_slice() {
            errs.push(FieldError::invalid(&at.child("name"), v.name.as_str(), msgs.join(",")));
        }
        let deprecation = at.child("deprecationWarning");
        for why in version::deprecation_warning(v.deprecated == Some(true), v.deprecation_warning.as_deref()) {
            errs.push(FieldError::invalid(&deprecation, v.deprecation_warning.as_deref().unwrap_or_default(), why));
        }
        errs.extend(version::validate_validation(
            view.version_validation(i),
            view.status_enabled(i),
            &check,
            &at.child("schema"),
        ));
        errs.extend(version::validate_subresources(view.version_subresources(i), &at.child("subresources")));
        for (j, c) in view.version_columns(i).iter().enumerate() {
            errs.extend(version::validate_column(c, &at.child("additionalPrinterColumns").index(j)));
        }
        let fields = view.version_selectable_fields(i);
        errs.extend(version::validate_selectable(fields, view.version_validation(i), &at, Place::Version));
    }
    // (Upstream's checks that top-level and per-version fields exclude each other, or differ,
    // cannot fail for a v1 definition: the conversion produced exactly one of them.)
    if !unique {
        errs.push(FieldError::invalid_go(&versions, view.go_versions(), "must contain unique version names"));
    }
    if spec.versions.iter().filter(|v| v.storage).count() != 1 {
        let detail = "must have exactly one version marked as storage version";
        errs.push(FieldError::invalid_go(&versions, view.go_versions(), detail));
    }
    // The internal `spec.version` is the first version's name.
    if let Some(first) = spec.versions.first()
        && let msgs @ [_, ..] = names::dns1035_label(&first.name).as_slice()
    {
        errs.push(FieldError::invalid(&path.child("version"), first.name.as_str(), msgs.join(",")));
    }

    let names_path = path.child("names");
    let n = &spec.names;
    for (field, value) in [
        ("plural", n.plural.as_str()),
        ("singular", n.singular.as_deref().unwrap_or_default()),
        ("kind", n.kind.as_str()),
        ("listKind", n.list_kind.as_deref().unwrap_or_default()),
    ] {
        if value.is_empty() {
            errs.push(FieldError::required(&names_path.child(field), ""));
        }
    }
    errs.extend(validate_names(n, &names_path));

    errs.extend(version::validate_validation(
        view.validation(),
        view.any_status_enabled(),
        &check,
        &path.child("validation"),
    ));
    errs.extend(version::validate_subresources(view.subresources(), &path.child("subresources")));
    for (j, c) in view.columns().iter().enumerate() {
        errs.extend(version::validate_column(c, &path.child("additionalPrinterColumns").index(j)));
    }
    errs.extend(version::validate_selectable(view.selectable_fields(), view.validation(), &path, Place::Top));
    errs.extend(conversion::validate(
        spec.conversion.as_ref(),
        preserve,
        strict.require_recognized_review_version,
        strict.allow_invalid_ca_bundle,
        &path.child("conversion"),
    ));
    errs
}

/// `schemaHasKubernetesExtensions`: any `x-kubernetes-*` keyword makes a schema structural.
fn has_kubernetes_extensions(s: &Schema) -> bool {
    s.x_embedded_resource
        || s.x_preserve_unknown_fields.is_some()
        || s.x_int_or_string
        || !s.x_list_map_keys.is_empty()
        || s.x_list_type.is_some()
        || s.x_validations.as_ref().and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

/// `ValidateCustomResourceDefinitionNames` (the required ones are the spec's business).
fn validate_names(n: &CustomResourceDefinitionNames, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let label = |field: &Path, value: &str, errs: &mut ErrorList| {
        if let msgs @ [_, ..] = names::dns1035_label(value).as_slice() {
            errs.push(FieldError::invalid(field, value, msgs.join(",")));
        }
    };
    let mixed_case = |field: &str, value: &str, errs: &mut ErrorList| {
        if let msgs @ [_, ..] = names::dns1035_label(&value.to_lowercase()).as_slice() {
            let detail = format!("may have mixed case, but should otherwise match: {}", msgs.join(","));
            errs.push(FieldError::invalid(&path.child(field), value, detail));
        }
    };
    let singular = n.singular.as_deref().unwrap_or_default();
    let list_kind = n.list_kind.as_deref().unwrap_or_default();
    if !n.plural.is_empty() {
        label(&path.child("plural"), &n.plural, &mut errs);
    }
    if !singular.is_empty() {
        label(&path.child("singular"), singular, &mut errs);
    }
    if !n.kind.is_empty() {
        mixed_case("kind", &n.kind, &mut errs);
    }
    if !list_kind.is_empty() {
        mixed_case("listKind", list_kind, &mut errs);
    }
    for (i, s) in n.short_names.iter().flatten().enumerate() {
        label(&path.child("shortNames").index(i), s, &mut errs);
    }
    if !n.kind.is_empty() && n.kind == list_kind {
        errs.push(FieldError::invalid(&path.child("listKind"), list_kind, "kind and listKind may not be the same"));
    }
    for (i, c) in n.categories.iter().flatten().enumerate() {
        label(&path.child("categories").index(i), c, &mut errs);
    }
    errs
}

/// `ValidateCustomResourceDefinitionStatus`: the accepted names.
fn accepted_names(crd: &CustomResourceDefinition) -> ErrorList {
    let names = crd.status.as_ref().and_then(|s| s.accepted_names.clone()).unwrap_or_default();
    validate_names(&names, &Path::new("status").child("acceptedNames"))
}

fn status_and_stored_versions(crd: &CustomResourceDefinition) -> ErrorList {
    let mut errs = accepted_names(crd);
    errs.extend(stored_versions(crd));
    errs
}

/// `ValidateCustomResourceDefinitionStoredVersions`: at least one, the storage version among
/// them, and none that is not a version. (Upstream reports the strays in map order; here in
/// list order, each at its last index as upstream's map keeps it.)
fn stored_versions(crd: &CustomResourceDefinition) -> ErrorList {
    let path = Path::new("status").child("storedVersions");
    let stored = crd.status.as_ref().and_then(|s| s.stored_versions.as_ref());
    let value = || match stored {
        None => BadValue::Go("[]string(nil)".into()),
        Some(list) => {
            let quoted: Vec<String> = list.iter().map(|s| go_quote(s)).collect();
            BadValue::Go(format!("[]string{{{}}}", quoted.join(", ")))
        }
    };
    let stored = stored.map(Vec::as_slice).unwrap_or_default();
    if stored.is_empty() {
        return vec![FieldError::invalid_go(&path, value(), "must have at least one stored version")];
    }
    let mut errs = Vec::new();
    let mut left: Vec<(&str, usize)> = Vec::new();
    for (i, v) in stored.iter().enumerate() {
        match left.iter_mut().find(|(name, _)| name == v) {
            Some(entry) => entry.1 = i,
            None => left.push((v, i)),
        }
    }
    for v in &crd.spec.versions {
        let found = left.iter().position(|(name, _)| *name == v.name);
        if v.storage && found.is_none() {
            errs.push(FieldError::invalid_go(&path, value(), format!("must have the storage version {}", v.name)));
        }
        if let Some(at) = found {
            left.remove(at);
        }
    }
    left.sort_by_key(|(_, i)| *i);
    for (v, i) in left {
        errs.push(FieldError::invalid(&path.index(i), v, "must appear in spec.versions"));
    }
    errs
}

/// The state of the approval annotation (`GetAPIApprovalState`).
#[derive(PartialEq)]
enum Approval {
    Invalid,
    Approved,
    Bypassed,
    Missing,
}

fn approval_state(obj: &Value) -> Approval {
    let annotation = meta::str_map(obj, "annotations").remove(APPROVAL_ANNOTATION).unwrap_or_default();
    if annotation.is_empty() {
        Approval::Missing
    } else if annotation.starts_with("unapproved") {
        Approval::Bypassed
    } else if url::parse_request_uri(&annotation).is_ok_and(|u| !u.host.is_empty() && !u.scheme.is_empty()) {
        Approval::Approved
    } else {
        Approval::Invalid
    }
}

/// `validateAPIApproval`: definitions in `k8s.io` and `kubernetes.io` groups need an approval
/// annotation; an update that leaves its state as it was passes.
fn approval(obj: &Value, old: Option<&Value>) -> ErrorList {
    let group = obj.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
    let protected = ["k8s.io", "kubernetes.io"].iter().any(|g| group == *g || group.ends_with(&format!(".{g}")));
    if !protected {
        return Vec::new();
    }
    let state = approval_state(obj);
    if old.is_some_and(|o| approval_state(o) == state) {
        return Vec::new();
    }
    let path = Path::new("metadata").child("annotations").key(APPROVAL_ANNOTATION);
    let q = go_quote(APPROVAL_ANNOTATION);
    let value = meta::str_map(obj, "annotations").remove(APPROVAL_ANNOTATION).unwrap_or_default();
    match state {
        Approval::Approved | Approval::Bypassed => Vec::new(),
        Approval::Missing => vec![FieldError::required(
            &path,
            format!(
                "protected groups must have approval annotation {q}, see https://github.com/kubernetes/enhancements/pull/1111"
            ),
        )],
        Approval::Invalid => vec![FieldError::invalid(
            &path,
            value,
            format!(
                "protected groups must have approval annotation {q} with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111"
            ),
        )],
    }
}

/// `validatePreserveUnknownFields`: v1 refuses `true` unless the stored definition has it.
fn preserve_unknown_fields(crd: &CustomResourceDefinition, old: Option<&CustomResourceDefinition>) -> ErrorList {
    if old.is_some_and(|o| o.spec.preserve_unknown_fields == Some(true))
        || crd.spec.preserve_unknown_fields != Some(true)
    {
        return Vec::new();
    }
    vec![FieldError::invalid(
        &Path::new("spec").child("preserveUnknownFields"),
        true,
        "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
    )]
}
