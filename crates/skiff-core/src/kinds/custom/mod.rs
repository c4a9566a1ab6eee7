//! Custom resources: the kinds CustomResourceDefinitions add, one [`CustomKind`] per served
//! version, as apiextensions-apiserver serves them. Objects are JSON as sent (no typed struct):
//! decoding keeps ObjectMeta's fields and prunes what the version's schema does not know;
//! writes default and validate by the schema; they are stored in the storage version and read
//! through any served one (conversion `None`: only `apiVersion` changes, then the reading
//! version's schema prunes).
//!
//! The rest of the server holds kinds as `&'static dyn Kind`; a custom kind is made once per
//! distinct definition (`intern`) and kept for the life of the process, so a CRD updated N
//! times with N different specs costs N small kinds.

mod columns;
mod intern;
mod lists;
mod scale;

pub use intern::kinds_of;

use super::{Column, DecodeError, Kind, Part, ResourceInfo, TypedSchema, keep_status};
use crate::crd::{self, Schema};
use crate::field::{ErrorList, ErrorType, FieldError, Path};
use crate::meta;
use crate::status::ApiError;
use columns::Printer;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::schemars::generate::SchemaGenerator;
use scale::ScalePaths;
use serde_json::{Value, json};

/// Verbs of a custom resource whose definition is being deleted: no more creates.
const TERMINATING_VERBS: &[&str] = &["delete", "deletecollection", "get", "list", "watch"];

/// One served version of a CustomResourceDefinition.
pub struct CustomKind {
    info: &'static ResourceInfo,
    /// `group/version` objects are stored in.
    storage_api_version: &'static str,
    /// The version's `openAPIV3Schema`, defaults pruned (None: the CRD has none, which v1
    /// refuses; kept for objects of older definitions).
    schema: Option<Schema>,
    /// The storage version's schema, when it is another version's: what a write keeps.
    storage_schema: Option<Schema>,
    /// The schema's `x-kubernetes-validations`, compiled.
    rules: Option<crd::cel::Rules>,
    status_subresource: bool,
    scale: Option<ScalePaths>,
    printer: Printer,
    /// `selectableFields` as field-selector labels (`spec.color`), with their paths.
    selectable: Vec<(String, crate::jsonpath::JsonPath)>,
    /// The definition is being deleted.
    terminating: bool,
}

impl CustomKind {
    /// Whether `kind` is a custom resource's (a definition's, not one of the built-in table).
    pub fn is_custom(kind: &dyn Kind) -> bool {
        kind.custom().is_some()
    }

    /// The definition's schema for this version, if it has one.
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    fn typed_meta(&self, raw: &Value) -> Result<Value, DecodeError> {
        let (kind, version) = (self.info.kind, self.info.version);
        let md = raw.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let typed: ObjectMeta = serde_path_to_error::deserialize(&md).map_err(|e| {
            let path = e.path().to_string();
            DecodeError::Malformed(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: json: {} (field metadata.{path})",
                e.into_inner()
            ))
        })?;
        serde_json::to_value(typed).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    /// Scale replicas at the spec path must be a non-negative int32 (upstream's validator).
    fn validate_replicas(&self, obj: &Value) -> ErrorList {
        self.scale.as_ref().map(|s| s.validate(obj)).unwrap_or_default()
    }

    /// Upstream's validator: metadata, the schema, scale replicas, then the CEL rules unless
    /// the object is already invalid in a way they cannot be run on (`old`: on update).
    fn validate_with(&self, obj: &Value, old: Option<&Value>) -> ErrorList {
        let mut errs = meta::validate(obj, self.info.namespaced, false);
        if let Some(schema) = &self.schema {
            errs.extend(crd::validate_object(schema, obj));
        }
        errs.extend(self.validate_replicas(obj));
        let (Some(schema), Some(rules)) = (&self.schema, &self.rules) else {
            return errs;
        };
        if rules.is_empty() {
            return errs;
        }
        let blocking = errs.iter().any(|e| {
            matches!(
                e.kind,
                ErrorType::NotSupported
                    | ErrorType::Required
                    | ErrorType::TooLong
                    | ErrorType::TooMany
                    | ErrorType::TypeInvalid
            )
        });
        if blocking {
            errs.push(FieldError::invalid(
                &Path::new("<nil>"),
                Value::Null,
                "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ));
        } else {
            errs.extend(rules.validate(schema, obj, old));
        }
        errs
    }
}

impl Kind for CustomKind {
    fn info(&self) -> &'static ResourceInfo {
        self.info
    }

    fn custom(&self) -> Option<&CustomKind> {
        Some(self)
    }

    /// The schema's list and map markers (`lists`).
    fn shapes(&self) -> &dyn crate::schema::Shapes {
        self
    }

    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        if !raw.is_object() {
            let (kind, version) = (self.info.kind, self.info.version);
            return Err(DecodeError::Malformed(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: the object is not a JSON object"
            )));
        }
        let mut obj = raw.clone();
        obj["metadata"] = self.typed_meta(raw)?;
        if let Some(schema) = &self.schema {
            crd::prune(&mut obj, schema, true);
            crd::prune_nulls(&mut obj, schema);
        }
        Ok(obj)
    }

    fn default(&self, obj: &mut Value) {
        if let Some(schema) = &self.schema {
            crd::apply_defaults(obj, schema);
        }
    }

    fn prepare_create(&self, obj: &mut Value) {
        if self.status_subresource
            && let Some(o) = obj.as_object_mut()
        {
            o.remove("status");
        }
    }

    /// Without the status subresource, status is an ordinary field the main resource writes.
    fn prepare_update(&self, old: &Value, new: &mut Value) {
        if self.status_subresource {
            keep_status(old, new);
        }
    }

    /// Anything but metadata counts (status too, without the status subresource).
    fn changes_generation(&self, old: &Value, new: &Value) -> bool {
        let content = |o: &Value| {
            let mut o = o.as_object().cloned().unwrap_or_default();
            o.remove("metadata");
            o
        };
        content(old) != content(new)
    }

    fn validate(&self, obj: &Value) -> ErrorList {
        self.validate_with(obj, None)
    }

    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        self.validate_with(new, Some(old))
    }

    fn validate_part_update(&self, _part: Part, old: &Value, new: &Value) -> ErrorList {
        self.validate_with(new, Some(old))
    }

    /// Discovery lists fewer verbs while the definition terminates, but only creates are
    /// refused: finalizers must still be removable (upstream's behaviour).
    fn serves_verb(&self, verb: &str) -> bool {
        !(self.terminating && verb == "create")
    }

    fn verb_refused(&self, verb: &str) -> ApiError {
        if self.terminating && verb == "create" {
            return ApiError::MethodNotSupported(
                "create not allowed while custom resource definition is terminating".into(),
            );
        }
        super::verb_not_supported(self.info, verb)
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "metadata.name" => Some(meta::name(obj).to_string()),
            "metadata.namespace" if self.info.namespaced => Some(meta::namespace(obj).to_string()),
            _ => {
                let (_, path) = self.selectable.iter().find(|(label, _)| label == field)?;
                Some(match path.first(obj) {
                    Some(Value::String(s)) => s.clone(),
                    Some(v @ (Value::Bool(_) | Value::Number(_))) => v.to_string(),
                    _ => String::new(),
                })
            }
        }
    }

    fn columns(&self) -> &'static [Column] {
        self.printer.columns
    }

    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        self.printer.cells(obj, now)
    }

    /// Custom kinds are published from their definitions, not a typed struct: nothing is added.
    fn schema(&self, _g: &mut SchemaGenerator) -> TypedSchema {
        let reversed: Vec<&str> = self.info.group.rsplit('.').collect();
        TypedSchema {
            name: format!("{}.{}.{}", reversed.join("."), self.info.version, self.info.kind),
            group: self.info.group,
            version: self.info.version,
            kind: self.info.kind,
        }
    }

    /// Conversion `None`: only `apiVersion` changes, then the storage version's schema prunes
    /// what it does not know.
    fn to_stored(&self, obj: &mut Value) {
        obj["apiVersion"] = json!(self.storage_api_version);
        if let Some(schema) = &self.storage_schema {
            crd::prune(obj, schema, true);
        }
    }

    /// As upstream's decoder reads storage: defaults of the version the object was stored in
    /// (when it is this one or the storage version), then this version's schema prunes.
    fn to_served(&self, obj: &mut Value) {
        let own = self.info.api_version();
        let stored = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
        if stored == own {
            if let Some(schema) = &self.schema {
                crd::apply_defaults(obj, schema);
            }
        } else if stored == self.storage_api_version
            && let Some(schema) = &self.storage_schema
        {
            crd::apply_defaults(obj, schema);
        }
        obj["apiVersion"] = json!(own);
        if let Some(schema) = &self.schema {
            crd::prune(obj, schema, true);
        }
    }

    fn scale(&self, obj: &Value) -> Result<Value, ApiError> {
        match &self.scale {
            Some(paths) => paths.scale_of(obj),
            None => Err(ApiError::NoResource),
        }
    }

    fn set_replicas(&self, obj: &mut Value, replicas: i64) -> Result<(), ApiError> {
        match &self.scale {
            Some(paths) => paths.set_replicas(obj, replicas),
            None => Err(ApiError::NoResource),
        }
    }
}

/// The field path a scale path names, as upstream's validator prints it (`.spec.replicas`).
fn literal_path(path: &str) -> Path {
    Path::new(path)
}

/// An Invalid error at a scale path.
fn invalid_at(path: &str, value: impl Into<Value>, detail: &str) -> FieldError {
    FieldError::invalid(&literal_path(path), value, detail)
}

#[cfg(test)]
mod tests;
