//! CustomResourceDefinition schemas, as Kubernetes 1.32's apiextensions-apiserver applies them:
//! parsing an `openAPIV3Schema` once into a [`Schema`] tree, checking it (structural, keyword and
//! default rules, [`check_schema`]), and using it on custom resources: [`validate`],
//! [`prune`], [`apply_defaults`], list-type uniqueness and embedded resources. Pure: no IO.
//!
//! A custom resource is handled as upstream's decoder and strategy do: [`prune`] (keeping the
//! root's meta fields), [`prune_nulls`], [`apply_defaults`], then [`validate_object`].

pub mod cel;
mod check;
mod default;
mod embedded;
pub mod formats;
mod gofmt;
mod keywords;
mod listtype;
mod pattern;
mod prune;
mod schema;
mod structural;
mod validate;

pub use check::{CheckOptions, check_schema};
pub use default::apply_defaults;
pub use embedded::validate_embedded_resources;
pub use listtype::validate_list_sets_and_maps;
pub use pattern::{GoRegex, PatternError};
pub use prune::{prune, prune_nulls};
pub use schema::{Dependencies, Items, ParseError, Schema, SchemaOrBool, parse};
pub use structural::validate_structural;
pub use validate::validate;

use crate::field::{ErrorList, Path};
use serde_json::Value;

/// A whole custom resource against its version's schema, in upstream's order: the schema,
/// embedded resources, then set and map lists (TypeMeta and ObjectMeta are the caller's).
pub fn validate_object(schema: &Schema, obj: &Value) -> ErrorList {
    let root = Path::default();
    let mut errs = validate(schema, obj, &root);
    errs.extend(validate_embedded_resources(schema, obj, &root, false));
    errs.extend(validate_list_sets_and_maps(schema, obj, &root));
    errs
}

impl Schema {
    /// Prune every `default` against its own node (upstream's `PruneDefaults` at CRD load), so
    /// that defaulting never adds fields pruning would drop. Defaults inside resource metadata
    /// are left as written, as upstream leaves them.
    pub fn prune_defaults(&mut self) {
        self.prune_defaults_at(true, false);
    }

    fn prune_defaults_at(&mut self, root: bool, inside_meta: bool) {
        let embedded = root || self.x_embedded_resource;
        let inside_meta = inside_meta && !embedded;
        if !inside_meta && let Some(d) = self.default.take() {
            let mut d = d;
            let snapshot = self.clone();
            prune(&mut d, &snapshot, embedded);
            self.default = Some(d);
        }
        if let Some(Items::Schema(items)) = &mut self.items {
            items.prune_defaults_at(false, inside_meta);
        }
        if let Some(SchemaOrBool::Schema(extra)) = &mut self.additional_properties {
            extra.prune_defaults_at(false, inside_meta);
        }
        for (k, prop) in &mut self.properties {
            let meta = inside_meta || (embedded && ["metadata", "apiVersion", "kind"].contains(&k.as_str()));
            prop.prune_defaults_at(false, meta);
        }
    }
}

#[cfg(test)]
mod tests;
