//! The whole check of a CRD's `openAPIV3Schema` (upstream's
//! `validateCustomResourceDefinitionValidation`), in upstream's order: the status-subresource
//! root rules, `nullable` at the root, the structural rules (sorted) or, if structural, the
//! defaults, then the keyword rules; conversion errors only when nothing else failed.

use super::embedded::validate_embedded_resources;
use super::gofmt;
use super::keywords::{self, Rules};
use super::prune::prune;
use super::schema::Schema;
use super::structural::validate_structural;
use super::validate::{deep_equal, validate};
use crate::field::{BadValue, ErrorList, FieldError, Path};

/// How strict the check is. Creation uses [`CheckOptions::default`]; an update may relax a
/// `require_*` rule the stored CRD already broke (upstream's ratcheting).
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The version has the status subresource: the root may only use a few keywords.
    pub status_subresource: bool,
    /// Defaults are allowed (false when `spec.preserveUnknownFields` is true).
    pub allow_defaults: bool,
    pub require_structural: bool,
    pub require_pruned_defaults: bool,
    pub require_valid_property_type: bool,
    pub require_atomic_set_type: bool,
    pub require_map_list_keys_map_set_validation: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            status_subresource: false,
            allow_defaults: true,
            require_structural: true,
            require_pruned_defaults: true,
            require_valid_property_type: true,
            require_atomic_set_type: true,
            require_map_list_keys_map_set_validation: true,
        }
    }
}

/// The fields allowed at the root with the status subresource, as upstream lists them.
const ROOT_FIELDS: &str = "[Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example XPreserveUnknownFields XValidations]";

/// Check `schema` (the `openAPIV3Schema` at `base`, e.g. `spec.validation.openAPIV3Schema`).
pub fn check_schema(schema: &Schema, base: &Path, opts: &CheckOptions) -> ErrorList {
    let mut errs = Vec::new();
    if opts.status_subresource {
        errs.extend(status_root(schema, base));
    }
    if schema.nullable {
        errs.push(FieldError::forbidden(&base.child("nullable"), "nullable cannot be true at the root"));
    }
    let mut conversion = None;
    if opts.require_structural {
        if let Some(why) = schema.conversion_error() {
            conversion = Some(FieldError::invalid(base, "", why));
        } else {
            let structural = validate_structural(schema, base);
            if structural.is_empty() {
                defaults(schema, base, true, false, opts, &mut errs);
            } else {
                errs.extend(structural);
            }
        }
    }
    let rules = Rules {
        allow_defaults: opts.allow_defaults,
        disallow_defaults_reason: String::new(),
        inside_resource_meta: false,
        require_valid_property_type: opts.require_valid_property_type,
        require_atomic_set_type: opts.require_atomic_set_type,
        require_map_list_keys_map_set: opts.require_map_list_keys_map_set_validation,
    };
    keywords::check(schema, base, &rules, true, &mut errs);
    if errs.is_empty() {
        errs.extend(conversion);
    }
    errs
}

/// With the status subresource, the first field set (in upstream's field order) decides.
fn status_root(s: &Schema, base: &Path) -> Option<FieldError> {
    enum Rule {
        Allowed,
        Type,
        Denied,
    }
    use Rule::*;
    let fields = [
        (!s.id.is_empty(), Denied),
        (!s.schema_uri.is_empty(), Denied),
        (s.reference.is_some(), Denied),
        (!s.description.is_empty(), Allowed),
        (!s.type_.is_empty(), Type),
        (s.nullable, Denied),
        (!s.format.is_empty(), Allowed),
        (!s.title.is_empty(), Allowed),
        (s.default.is_some(), Denied),
        (s.maximum.is_some() || s.exclusive_maximum || s.minimum.is_some() || s.exclusive_minimum, Allowed),
        (s.max_length.is_some() || s.min_length.is_some() || !s.pattern.is_empty(), Allowed),
        (s.max_items.is_some() || s.min_items.is_some() || s.unique_items || s.multiple_of.is_some(), Allowed),
        (!s.enum_values.is_empty() || s.max_properties.is_some() || s.min_properties.is_some(), Denied),
        (!s.required.is_empty() || s.items.is_some(), Allowed),
        (!s.all_of.is_empty() || !s.one_of.is_empty() || !s.any_of.is_empty() || s.not.is_some(), Denied),
        (!s.properties.is_empty(), Allowed),
        (s.additional_properties.is_some() || !s.pattern_properties.is_empty() || s.dependencies.is_some(), Denied),
        (s.additional_items.is_some() || !s.definitions.is_empty(), Denied),
        (s.external_docs.is_some() || s.example.is_some() || s.x_preserve_unknown_fields.is_some(), Allowed),
        (
            s.x_embedded_resource
                || s.x_int_or_string
                || !s.x_list_map_keys.is_empty()
                || s.x_list_type.is_some()
                || s.x_map_type.is_some(),
            Denied,
        ),
    ];
    for (set, rule) in fields {
        match (set, rule) {
            (false, _) | (true, Allowed) => {}
            (true, Type) if s.type_ == "object" => {}
            (true, Type) => {
                return Some(FieldError::invalid(
                    &base.child("type"),
                    s.type_.as_str(),
                    r#"only "object" is allowed as the type at the root of the schema if the status subresource is enabled"#,
                ));
            }
            (true, Denied) => {
                // Upstream prints the whole Go struct (with pointer addresses); not reproducible.
                return Some(FieldError::invalid_go(
                    base,
                    BadValue::Go("apiextensions.JSONSchemaProps{…}".into()),
                    format!(
                        "only {ROOT_FIELDS} fields are allowed at the root of the schema if the status subresource is enabled"
                    ),
                ));
            }
        }
    }
    None
}

/// Defaults must validate against their own node and be pruned (upstream's `ValidateDefaults`).
/// The root counts as an embedded resource.
fn defaults(s: &Schema, path: &Path, root: bool, inside_meta: bool, opts: &CheckOptions, errs: &mut ErrorList) {
    let embedded = root || s.x_embedded_resource;
    let inside_meta = inside_meta && !embedded;
    if let Some(d) = &s.default {
        let at = path.child("default");
        if inside_meta {
            // Upstream also checks the surrounding object's metadata here; not modelled.
            errs.extend(validate(s, d, &at));
        } else {
            if opts.require_pruned_defaults {
                let mut pruned = d.clone();
                prune(&mut pruned, s, embedded);
                if !deep_equal(&pruned, d) {
                    errs.push(FieldError::invalid_go(&at, gofmt::bad_value(d), "must not have unknown fields"));
                }
            }
            let meta = validate_embedded_resources(s, d, &at, embedded);
            if meta.is_empty() {
                errs.extend(validate(s, d, &at));
            } else {
                errs.extend(meta);
            }
        }
    }
    if let Some(items) = s.items_schema() {
        defaults(items, &path.child("items"), false, inside_meta, opts, errs);
    }
    for (k, prop) in &s.properties {
        let sub_meta = inside_meta || (embedded && ["metadata", "apiVersion", "kind"].contains(&k.as_str()));
        defaults(prop, &path.child("properties").key(k), false, sub_meta, opts, errs);
    }
}
