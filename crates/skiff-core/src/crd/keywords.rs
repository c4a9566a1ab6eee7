//! The keyword rules a CRD schema must follow besides being structural (upstream's
//! `ValidateCustomResourceDefinitionOpenAPISchema`): no unsupported keywords, no defaults in
//! resource metadata, valid `x-kubernetes-*` list and map types. Properties are walked in schema
//! order (upstream: Go map order).

use super::schema::{Items, Schema, SchemaOrBool};
use super::structural::go_strings;
use crate::field::{BadValue, ErrorList, FieldError, Path};
use serde_json::Value;

const TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];
const META_FIELDS: [&str; 3] = ["metadata", "kind", "apiVersion"];

/// What the walk knows about where it is (upstream's `specStandardValidatorV3`).
#[derive(Clone)]
pub(crate) struct Rules {
    pub allow_defaults: bool,
    pub disallow_defaults_reason: String,
    pub inside_resource_meta: bool,
    pub require_valid_property_type: bool,
    pub require_atomic_set_type: bool,
    pub require_map_list_keys_map_set: bool,
}

impl Rules {
    fn forbid_defaults(&self, reason: &str) -> Rules {
        Rules { allow_defaults: false, disallow_defaults_reason: reason.to_string(), ..self.clone() }
    }
}

/// The keyword errors of `s` (and everything below it) under `path`.
pub(crate) fn check(s: &Schema, path: &Path, rules: &Rules, is_root: bool, errs: &mut ErrorList) {
    let forbid =
        |errs: &mut ErrorList, key: &str, detail: &str| errs.push(FieldError::forbidden(&path.child(key), detail));
    if rules.require_valid_property_type && !s.type_.is_empty() && !TYPES.contains(&s.type_.as_str()) {
        errs.push(FieldError::not_supported(&path.child("type"), s.type_.as_str(), TYPES));
    }
    if s.default.is_some() && !rules.allow_defaults {
        let mut detail = "must not be set".to_string();
        if !rules.disallow_defaults_reason.is_empty() {
            detail = format!("{detail} {}", rules.disallow_defaults_reason);
        }
        forbid(errs, "default", &detail);
    }
    if !s.id.is_empty() {
        forbid(errs, "id", "id is not supported");
    }
    if s.additional_items.is_some() {
        forbid(errs, "additionalItems", "additionalItems is not supported");
    }
    if !s.pattern_properties.is_empty() {
        forbid(errs, "patternProperties", "patternProperties is not supported");
    }
    if !s.definitions.is_empty() {
        forbid(errs, "definitions", "definitions is not supported");
    }
    if s.dependencies.is_some() {
        forbid(errs, "dependencies", "dependencies is not supported");
    }
    if s.reference.is_some() {
        forbid(errs, "$ref", "$ref is not supported");
    }
    if s.type_ == "null" {
        forbid(errs, "type", "type cannot be set to null, use nullable as an alternative");
    }
    if matches!(&s.items, Some(Items::Array(list)) if !list.is_empty()) {
        forbid(errs, "items", "items must be a schema object and not an array");
    }
    if rules.inside_resource_meta && s.x_embedded_resource {
        forbid(errs, "x-kubernetes-embedded-resource", "must not be used inside of resource meta");
    }
    if s.unique_items {
        forbid(errs, "uniqueItems", "uniqueItems cannot be set to true since the runtime complexity becomes quadratic");
    }
    if let Some(extra) = &s.additional_properties {
        if !s.properties.is_empty() && (!extra.allows() || matches!(extra, SchemaOrBool::Schema(_))) {
            forbid(errs, "additionalProperties", "additionalProperties and properties are mutual exclusive");
        }
        let sub = if rules.inside_resource_meta {
            rules.forbid_defaults("inside additionalProperties applying to object metadata")
        } else {
            rules.clone()
        };
        if let Some(extra) = extra.schema() {
            check(extra, &path.child("additionalProperties"), &sub, false, errs);
        }
    }
    for (k, prop) in &s.properties {
        let mut sub = rules.clone();
        if (is_root || s.x_embedded_resource) && META_FIELDS.contains(&k.as_str()) {
            sub.inside_resource_meta = true;
            if is_root {
                sub = sub.forbid_defaults(&format!("in top-level {k}"));
            }
        }
        check(prop, &path.child("properties").key(k), &sub, false, errs);
    }
    if let Some(not) = &s.not {
        check(not, &path.child("not"), rules, false, errs);
    }
    for (key, list) in [("allOf", &s.all_of), ("oneOf", &s.one_of), ("anyOf", &s.any_of)] {
        for (i, branch) in list.iter().enumerate() {
            check(branch, &path.child(key).index(i), rules, false, errs);
        }
    }
    for (k, def) in &s.definitions {
        check(def, &path.child("definitions").key(k), rules, false, errs);
    }
    match &s.items {
        Some(Items::Schema(item)) => check(item, &path.child("items"), rules, false, errs),
        Some(Items::Array(list)) => {
            for (i, item) in list.iter().enumerate() {
                check(item, &path.child("items").index(i), rules, false, errs);
            }
        }
        None => {}
    }
    for (k, dep) in s.dependencies.iter().flatten() {
        if let Some(dep) = dep {
            check(dep, &path.child("dependencies").key(k), rules, false, errs);
        }
    }
    extensions(s, path, rules, errs);
}

fn extensions(s: &Schema, path: &Path, rules: &Rules, errs: &mut ErrorList) {
    let type_path = path.child("type");
    let must_be = |errs: &mut ErrorList, detail: &str| {
        errs.push(if s.type_.is_empty() {
            FieldError::required(&type_path, detail)
        } else {
            FieldError::invalid(&type_path, s.type_.as_str(), detail)
        })
    };
    if s.x_preserve_unknown_fields == Some(false) {
        errs.push(FieldError::invalid(
            &path.child("x-kubernetes-preserve-unknown-fields"),
            false,
            "must be true or undefined",
        ));
    }
    if let Some(map_type) = &s.x_map_type {
        if s.type_ != "object" {
            must_be(errs, "must be object if x-kubernetes-map-type is specified");
        }
        if map_type != "atomic" && map_type != "granular" {
            errs.push(FieldError::not_supported(
                &path.child("x-kubernetes-map-type"),
                map_type.as_str(),
                &["atomic", "granular"],
            ));
        }
    }
    let list_type = s.x_list_type.as_deref();
    if list_type.is_some() && s.type_ != "array" {
        must_be(errs, "must be array if x-kubernetes-list-type is specified");
    } else if rules.require_atomic_set_type
        && list_type == Some("set")
        && let Some(item) = s.items_schema()
    {
        let detail = "must be atomic as item of a list with x-kubernetes-list-type=set";
        let shown = |v: &Option<String>| v.as_deref().map_or(Value::from("null"), Value::from);
        match item.type_.as_str() {
            "array" if item.x_list_type.as_deref().is_some_and(|t| t != "atomic") => {
                errs.push(FieldError::invalid(
                    &path.child("items").child("x-kubernetes-list-type"),
                    shown(&item.x_list_type),
                    detail,
                ));
            }
            // Upstream reports the item's list type here, not its map type.
            "object" if item.x_map_type.as_deref() != Some("atomic") => {
                errs.push(FieldError::invalid(
                    &path.child("items").child("x-kubernetes-map-type"),
                    shown(&item.x_list_type),
                    detail,
                ));
            }
            _ => {}
        }
    }
    if let Some(t) = list_type
        && !["atomic", "set", "map"].contains(&t)
    {
        errs.push(FieldError::not_supported(&path.child("x-kubernetes-list-type"), t, &["atomic", "set", "map"]));
    }
    if !s.x_list_map_keys.is_empty() {
        let detail = "must be map if x-kubernetes-list-map-keys is non-empty";
        match list_type {
            None => errs.push(FieldError::required(&path.child("x-kubernetes-list-type"), detail)),
            Some("map") => {}
            Some(t) => errs.push(FieldError::invalid(&path.child("x-kubernetes-list-type"), t, detail)),
        }
    }
    if list_type == Some("map") {
        list_map(s, path, errs);
    }
    if rules.require_map_list_keys_map_set {
        map_set(s, path, errs);
    }
}

fn list_map(s: &Schema, path: &Path, errs: &mut ErrorList) {
    let keys_path = path.child("x-kubernetes-list-map-keys");
    if s.x_list_map_keys.is_empty() {
        errs.push(FieldError::required(&keys_path, "must not be empty if x-kubernetes-list-type is map"));
    }
    match &s.items {
        None => {
            errs.push(FieldError::required(&path.child("items"), "must have a schema if x-kubernetes-list-type is map"))
        }
        Some(Items::Array(_)) => errs.push(FieldError::invalid_go(
            &path.child("items"),
            BadValue::Go("&apiextensions.JSONSchemaPropsOrArray{…}".into()),
            "must only have a single schema if x-kubernetes-list-type is map",
        )),
        Some(Items::Schema(item)) if item.type_ != "object" => errs.push(FieldError::invalid(
            &path.child("items").child("type"),
            item.type_.as_str(),
            "must be object if parent array's x-kubernetes-list-type is map",
        )),
        Some(Items::Schema(item)) => {
            let mut seen: Vec<&str> = Vec::new();
            for k in &s.x_list_map_keys {
                match item.property(k) {
                    Some(p) if p.type_ == "array" || p.type_ == "object" => errs.push(FieldError::invalid(
                        &path.child("items").child("properties").key(k).child("type"),
                        item.type_.as_str(),
                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                    )),
                    Some(_) => {}
                    None => errs.push(FieldError::invalid_go(
                        &keys_path,
                        go_strings(&s.x_list_map_keys),
                        "entries must all be names of item properties",
                    )),
                }
                if seen.contains(&k.as_str()) {
                    errs.push(FieldError::invalid_go(
                        &keys_path,
                        go_strings(&s.x_list_map_keys),
                        "must not contain duplicate entries",
                    ));
                }
                seen.push(k);
            }
        }
    }
}

/// Set and map list items may not be nullable; map keys need a default or must be required.
fn map_set(s: &Schema, path: &Path, errs: &mut ErrorList) {
    let (Some(item), Some(list_type)) = (s.items_schema(), s.x_list_type.as_deref()) else { return };
    if list_type != "set" && list_type != "map" {
        return;
    }
    if item.nullable {
        errs.push(FieldError::forbidden(
            &path.child("items").child("nullable"),
            format!("cannot be nullable when x-kubernetes-list-type is {list_type}"),
        ));
    }
    if list_type == "map" {
        for k in &s.x_list_map_keys {
            let Some(p) = item.property(k) else { continue };
            let at = path.child("items").child("properties").key(k);
            if !item.required.contains(k) && p.default.is_none() {
                errs.push(FieldError::required(
                    &at.child("default"),
                    "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                ));
            }
            if p.nullable {
                errs.push(FieldError::forbidden(
                    &at.child("nullable"),
                    "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                ));
            }
        }
    }
}
