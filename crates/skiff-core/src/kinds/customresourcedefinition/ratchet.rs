//! How strict validation is (upstream's `validationOptions`): everything on create; on update a
//! rule the stored definition already broke is not enforced, so that old definitions stay
//! writable (`requireStructuralSchema(oldSpec)` and its kin).

use super::conditions::condition_is_true;
use super::conversion::{ca_bundle_errors, has_accepted_review_version_or_none};
use crate::crd::{self, CheckOptions, Items, Schema};
use crate::field::Path;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

const TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

#[derive(Debug, Clone)]
pub(super) struct Strictness {
    /// The schema rules (`status_subresource` is set per place).
    pub check: CheckOptions,
    pub require_open_api_schema: bool,
    pub require_recognized_review_version: bool,
    /// `scope` and `names.kind` may not change (the old definition is Established).
    pub require_immutable_names: bool,
    pub allow_invalid_ca_bundle: bool,
}

impl Strictness {
    /// `ValidateCustomResourceDefinition`'s options. A CA bundle is not checked before the
    /// definition is established.
    pub fn create() -> Self {
        Strictness {
            check: CheckOptions::default(),
            require_open_api_schema: true,
            require_recognized_review_version: true,
            require_immutable_names: false,
            allow_invalid_ca_bundle: true,
        }
    }

    /// `ValidateCustomResourceDefinitionUpdate`'s options, from the stored definition.
    pub fn update(old_obj: &Value, old: &CustomResourceDefinition) -> Self {
        let schemas: Vec<Schema> = old
            .spec
            .versions
            .iter()
            .filter_map(|v| v.schema.as_ref()?.open_api_v3_schema.as_ref())
            .filter_map(|p| crd::parse(&serde_json::to_value(p).ok()?).ok())
            .collect();
        let any = |pred: &dyn Fn(&Schema) -> bool| schemas.iter().any(|s| any_node(s, pred));
        let established = condition_is_true(old_obj, super::ESTABLISHED);
        let client =
            old.spec.conversion.as_ref().and_then(|c| c.webhook.as_ref()).and_then(|w| w.client_config.as_ref());
        let bundle = client.and_then(|c| c.ca_bundle.as_ref()).map(|b| b.0.as_slice()).unwrap_or_default();
        Strictness {
            check: CheckOptions {
                status_subresource: false,
                allow_defaults: true,
                require_structural: !schemas.iter().any(non_structural),
                require_pruned_defaults: !schemas.iter().any(unpruned_defaults),
                require_valid_property_type: !any(&|s| !s.type_.is_empty() && !TYPES.contains(&s.type_.as_str())),
                require_atomic_set_type: !any(&non_atomic_set),
                require_map_list_keys_map_set_validation: !any(&invalid_map_list),
            },
            require_open_api_schema: old
                .spec
                .versions
                .iter()
                .all(|v| v.schema.as_ref().is_some_and(|s| s.open_api_v3_schema.is_some())),
            require_recognized_review_version: old.spec.conversion.as_ref().is_none_or(|c| {
                has_accepted_review_version_or_none(c.webhook.as_ref().map(|w| w.conversion_review_versions.as_slice()))
            }),
            require_immutable_names: established,
            // Only an established definition whose bundle was valid (or absent) must keep a valid one.
            allow_invalid_ca_bundle: !established
                || (!bundle.is_empty() && !ca_bundle_errors(bundle, &Path::default()).is_empty()),
        }
    }
}

/// `SchemaHas`: whether `pred` holds anywhere in the tree.
pub(super) fn any_node(s: &Schema, pred: &dyn Fn(&Schema) -> bool) -> bool {
    pred(s) || s.children().any(|c| any_node(c, pred))
}

/// `schemaIsNonStructural`.
fn non_structural(s: &Schema) -> bool {
    s.conversion_error().is_some() || !crd::validate_structural(s, &Path::default()).is_empty()
}

/// `schemaHasUnprunedDefaults`: a structural schema some default of which pruning changes.
fn unpruned_defaults(s: &Schema) -> bool {
    if !s.has_defaults() || non_structural(s) {
        return false;
    }
    let mut pruned = s.clone();
    pruned.prune_defaults();
    let (mut before, mut after) = (Vec::new(), Vec::new());
    defaults(s, &mut before);
    defaults(&pruned, &mut after);
    before != after
}

fn defaults<'a>(s: &'a Schema, out: &mut Vec<Option<&'a Value>>) {
    out.push(s.default.as_ref());
    for c in s.children() {
        defaults(c, out);
    }
}

/// `hasNonAtomicSetType`: a set whose object or list items are not atomic.
fn non_atomic_set(s: &Schema) -> bool {
    let Some(Items::Schema(item)) = &s.items else { return false };
    if s.x_list_type.as_deref() != Some("set") {
        return false;
    }
    match item.type_.as_str() {
        "array" => item.x_list_type.as_deref().is_some_and(|t| t != "atomic"),
        "object" => item.x_map_type.as_deref() != Some("atomic"),
        _ => false,
    }
}

/// `hasInvalidMapListKeysMapSet`: nullable set or map items, or map keys that are neither
/// required nor defaulted, or nullable.
fn invalid_map_list(s: &Schema) -> bool {
    let (Some(item), Some(list_type)) = (s.items_schema(), s.x_list_type.as_deref()) else { return false };
    if list_type != "set" && list_type != "map" {
        return false;
    }
    item.nullable
        || (list_type == "map"
            && s.x_list_map_keys.iter().any(|k| {
                item.property(k).is_some_and(|p| (!item.required.contains(k) && p.default.is_none()) || p.nullable)
            }))
}
