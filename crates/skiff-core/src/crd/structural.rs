//! Whether a schema is structural (upstream's `ValidateStructural`: invariants and completeness):
//! every node has a type (except int-or-string and preserve-unknown-fields ones), value
//! validations (`allOf`, `anyOf`, `oneOf`, `not`) only restrict what the structure already
//! specifies, metadata is left alone, and patterns compile. Errors are sorted by their text, as
//! upstream sorts them.

use super::gofmt;
use super::schema::{Schema, SchemaOrBool, has_validations};
use crate::field::{ErrorList, FieldError, Path};

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

/// The structural violations of `s`, under `base` (the `openAPIV3Schema` path), sorted.
pub fn validate_structural(s: &Schema, base: &Path) -> ErrorList {
    let mut errs = Vec::new();
    invariants(s, Level::Root, base, &mut errs);
    value_completeness(s, Some(s), base, base, &mut errs);
    errs.sort_by_cached_key(ToString::to_string);
    errs
}

fn int_or_string_any_of(any_of: &[Schema]) -> bool {
    matches!(any_of, [a, b] if a.is_only_type("integer") && b.is_only_type("string"))
}

fn invariants(s: &Schema, lvl: Level, path: &Path, errs: &mut ErrorList) {
    if s.type_ == "array" && s.items_schema().is_none() {
        errs.push(FieldError::required(&path.child("items"), "must be specified"));
    }
    if let Some(items) = s.items_schema() {
        invariants(items, Level::Item, &path.child("items"), errs);
    }
    for (k, prop) in &s.properties {
        invariants(prop, Level::Field, &path.child("properties").key(k), errs);
    }
    if let Some(extra) = &s.additional_properties {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(&path.child("additionalProperties"), "must not be used at the root"));
        }
        if let Some(extra) = extra.schema() {
            invariants(extra, Level::Field, &path.child("additionalProperties"), errs);
        }
    }
    let preserve = s.preserves_unknown_fields();
    if s.x_int_or_string && preserve {
        errs.push(FieldError::invalid(
            &path.child("x-kubernetes-preserve-unknown-fields"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if s.x_int_or_string && s.x_embedded_resource {
        errs.push(FieldError::invalid(
            &path.child("x-kubernetes-embedded-resource"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = int_or_string_any_of(&s.any_of);
    let skip_first_all_of_any_of = s.all_of.first().is_some_and(|a| int_or_string_any_of(&a.any_of));
    value_validation(s, skip_any_of, skip_first_all_of_any_of, path, errs);

    let check_metadata = lvl == Level::Root || s.x_embedded_resource;
    let type_path = path.child("type");
    if s.x_embedded_resource && s.type_ != "object" {
        let detail = "must be object if x-kubernetes-embedded-resource is true";
        errs.push(if s.type_.is_empty() {
            FieldError::required(&type_path, detail)
        } else {
            FieldError::invalid(&type_path, s.type_.as_str(), detail)
        });
    } else if s.type_.is_empty() && !s.x_int_or_string && !preserve {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(&type_path, detail));
    }
    if s.x_embedded_resource && s.additional_properties.is_some() {
        errs.push(FieldError::forbidden(
            &path.child("additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !s.type_.is_empty() && s.type_ != "object" {
        errs.push(FieldError::invalid(&type_path, s.type_.as_str(), "must be object at the root"));
    }
    for key in ["kind", "apiVersion"] {
        if let Some(p) = s.property(key)
            && check_metadata
            && p.type_ != "string"
        {
            let at = path.child("properties").key(key).child("type");
            errs.push(FieldError::invalid(&at, p.type_.as_str(), "must be string"));
        }
    }
    if let Some(meta) = s.property("metadata") {
        metadata(meta, check_metadata, lvl, &path.child("properties").key("metadata"), errs);
    }
    if s.x_embedded_resource && !preserve && s.properties.is_empty() {
        errs.push(FieldError::required(
            &path.child("properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// Root metadata may only be an object restricting `name` and `generateName`.
fn metadata(m: &Schema, check: bool, lvl: Level, path: &Path, errs: &mut ErrorList) {
    if check && m.type_ != "object" {
        errs.push(FieldError::invalid(&path.child("type"), m.type_.as_str(), "must be object"));
    }
    if lvl != Level::Root {
        return;
    }
    let name = m.property("name").is_some();
    let generate = m.property("generateName").is_some();
    let only_names = (name && generate && m.properties.len() == 2) || ((name || generate) && m.properties.len() == 1);
    let mut rest = Schema {
        type_: String::new(),
        default: None,
        properties: if only_names { Vec::new() } else { m.properties.clone() },
        ..m.clone()
    };
    // The conversion upstream compares against drops these.
    rest.example = None;
    rest.external_docs = None;
    if !rest.is_structurally_empty() {
        errs.push(FieldError::forbidden(
            path,
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
}

fn value_validation(v: &Schema, skip_any_of: bool, skip_first_all_of_any_of: bool, path: &Path, errs: &mut ErrorList) {
    if !skip_any_of {
        for (i, s) in v.any_of.iter().enumerate() {
            nested(s, false, &path.child("anyOf").index(i), errs);
        }
    }
    for (i, s) in v.all_of.iter().enumerate() {
        nested(s, skip_first_all_of_any_of && i == 0, &path.child("allOf").index(i), errs);
    }
    for (i, s) in v.one_of.iter().enumerate() {
        nested(s, false, &path.child("oneOf").index(i), errs);
    }
    if let Some(not) = &v.not {
        nested(not, false, &path.child("not"), errs);
    }
    if let Some(Err(why)) = &v.pattern_regex {
        errs.push(FieldError::invalid(
            &path.child("pattern"),
            v.pattern.as_str(),
            format!("must be a valid regular expression, but isn't: {why}"),
        ));
    }
}

/// A schema under a logical junctor: only value validations are allowed.
fn nested(v: &Schema, skip_any_of: bool, path: &Path, errs: &mut ErrorList) {
    value_validation(v, skip_any_of, false, path, errs);
    if let Some(items) = v.items_schema() {
        nested(items, false, &path.child("items"), errs);
    }
    for (k, prop) in &v.properties {
        nested(prop, false, &path.child("properties").key(k), errs);
    }
    let forbid =
        |errs: &mut ErrorList, key: &str, detail: &str| errs.push(FieldError::forbidden(&path.child(key), detail));
    if !v.type_.is_empty() {
        forbid(errs, "type", "must be empty to be structural");
    }
    if matches!(v.additional_properties, Some(SchemaOrBool::Schema(_) | SchemaOrBool::Bool(true))) {
        forbid(errs, "additionalProperties", "must be undefined to be structural");
    }
    if v.default.is_some() {
        forbid(errs, "default", "must be undefined to be structural");
    }
    if !v.title.is_empty() {
        forbid(errs, "title", "must be empty to be structural");
    }
    if !v.description.is_empty() {
        forbid(errs, "description", "must be empty to be structural");
    }
    if v.nullable {
        forbid(errs, "nullable", "must be false to be structural");
    }
    if v.preserves_unknown_fields() {
        forbid(errs, "x-kubernetes-preserve-unknown-fields", "must be false to be structural");
    }
    if v.x_embedded_resource {
        forbid(errs, "x-kubernetes-embedded-resource", "must be false to be structural");
    }
    if v.x_int_or_string {
        forbid(errs, "x-kubernetes-int-or-string", "must be false to be structural");
    }
    if !v.x_list_map_keys.is_empty() {
        forbid(errs, "x-kubernetes-list-map-keys", "must be empty to be structural");
    }
    if v.x_list_type.is_some() {
        forbid(errs, "x-kubernetes-list-type", "must be undefined to be structural");
    }
    if v.x_map_type.is_some() {
        forbid(errs, "x-kubernetes-map-type", "must be undefined to be structural");
    }
    if has_validations(&v.x_validations) {
        forbid(errs, "x-kubernetes-validations", "must be empty to be structural");
    }
    if v.property("metadata").is_some() {
        errs.push(FieldError::forbidden(
            &path.child("properties").key("metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// Completeness: what the root's value validations name must exist in the structure. (Upstream
/// checks the root node's junctors only.)
fn value_completeness(v: &Schema, s: Option<&Schema>, s_path: &Path, v_path: &Path, errs: &mut ErrorList) {
    let Some(s) = s else {
        errs.push(because(s_path, v_path));
        return;
    };
    if let Some(not) = &v.not {
        nested_completeness(not, Some(s), s_path, &v_path.child("not"), errs);
    }
    for (key, list) in [("allOf", &v.all_of), ("anyOf", &v.any_of), ("oneOf", &v.one_of)] {
        for (i, branch) in list.iter().enumerate() {
            nested_completeness(branch, Some(s), s_path, &v_path.child(key).index(i), errs);
        }
    }
}

fn nested_completeness(v: &Schema, s: Option<&Schema>, s_path: &Path, v_path: &Path, errs: &mut ErrorList) {
    let Some(s) = s else {
        errs.push(because(s_path, v_path));
        return;
    };
    value_completeness(v, Some(s), s_path, v_path, errs);
    if let Some(items) = v.items_schema() {
        nested_completeness(items, s.items_schema(), &s_path.child("items"), &v_path.child("items"), errs);
    }
    for (k, prop) in &v.properties {
        let sp = s_path.child("properties").key(k);
        let vp = v_path.child("properties").key(k);
        match s.property(k) {
            Some(sf) => nested_completeness(prop, Some(sf), &sp, &vp, errs),
            None => errs.push(because(&sp, &vp)),
        }
    }
}

fn because(s_path: &Path, v_path: &Path) -> FieldError {
    FieldError::required(s_path, format!("because it is defined in {v_path}"))
}

/// `x-kubernetes-list-map-keys` and similar string lists as `%#v` shows them.
pub(crate) fn go_strings(items: &[String]) -> crate::field::BadValue {
    gofmt::string_slice(items)
}
