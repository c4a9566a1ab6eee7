//! The per-version parts of a definition, checked where they sit (top level or in a version):
//! the schema, the subresources, the printer columns and the selectable fields; and a
//! version's deprecation warning.

use crate::crd::{self, CheckOptions, Schema};
use crate::field::{ErrorList, FieldError, Path};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceSubresources, CustomResourceValidation, SelectableField,
};
use serde_json::Value;

/// `MaxSelectableFields`.
const MAX_SELECTABLE_FIELDS: usize = 8;
/// Upstream's sorted sets, as its messages list them.
const COLUMN_TYPES: &str = "boolean,date,integer,number,string";
const COLUMN_FORMATS: &str = "byte,date,date-time,double,float,int32,int64,password";

/// One `openAPIV3Schema` (at `base`, e.g. `spec.validation.openAPIV3Schema`): structural,
/// default and keyword rules.
pub(super) fn validate_schema(schema: &Value, base: &Path, opts: &CheckOptions) -> ErrorList {
    match crd::parse(schema) {
        Ok(s) => {
            let mut errs = crd::check_schema(&s, base, opts);
            // Rules compile against a structural schema only, as upstream's do.
            if crd::validate_structural(&s, base).is_empty() {
                errs.extend(crd::cel::check(&s, base));
            }
            errs
        }
        // A normalized definition always parses; this only reports corrupt input.
        Err(e) => vec![FieldError::invalid(base, "", e.to_string())],
    }
}

/// The schema of a `CustomResourceValidation`, as the JSON the schema tools read.
pub(super) fn schema_value(validation: Option<&CustomResourceValidation>) -> Option<Value> {
    let props = validation?.open_api_v3_schema.as_ref()?;
    serde_json::to_value(props).ok()
}

/// `validateCustomResourceDefinitionValidation`: nothing without a schema.
pub(super) fn validate_validation(
    validation: Option<&CustomResourceValidation>,
    status_enabled: bool,
    opts: &CheckOptions,
    path: &Path,
) -> ErrorList {
    match schema_value(validation) {
        None => Vec::new(),
        Some(schema) => {
            let opts = CheckOptions { status_subresource: status_enabled, ..opts.clone() };
            validate_schema(&schema, &path.child("openAPIV3Schema"), &opts)
        }
    }
}

/// `validateDeprecationWarning`: the problems, each reported as its own error.
pub(super) fn deprecation_warning(deprecated: bool, warning: Option<&str>) -> Vec<String> {
    let Some(w) = warning else { return Vec::new() };
    if !deprecated {
        return vec!["can only be set for deprecated versions".into()];
    }
    let mut out = Vec::new();
    if w.len() > 256 {
        out.push("must be <= 256 characters long".into());
    }
    if w.is_empty() {
        out.push("must not be an empty string".into());
    }
    // Go's IsPrint comes first and excludes every control character, so upstream's
    // "control character" message is never reached.
    if let Some((i, _)) = w.char_indices().find(|(_, c)| !is_print(*c)) {
        out.push(format!("must only contain printable UTF-8 characters; non-printable character found at index {i}"));
    }
    out
}

/// Go's `unicode.IsPrint`, approximately: no controls, no spaces but U+0020, no format characters.
fn is_print(c: char) -> bool {
    let format = matches!(c, '\u{ad}' | '\u{600}'..='\u{605}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{feff}');
    !c.is_control() && (c == ' ' || !c.is_whitespace()) && !format
}

/// `ValidateCustomResourceDefinitionSubresources`: the scale paths.
pub(super) fn validate_subresources(sub: Option<&CustomResourceSubresources>, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let Some(scale) = sub.and_then(|s| s.scale.as_ref()) else { return errs };
    let under = |value: &str, field: &str, prefixes: &[&str], detail: &str, errs: &mut ErrorList| {
        let at = path.child("scale").child(field);
        let simple = simple_json_path(value, &at);
        if !simple.is_empty() {
            errs.extend(simple);
        } else if !prefixes.iter().any(|p| value.starts_with(p)) {
            errs.push(FieldError::invalid(&at, value, detail));
        }
    };
    for (field, value, prefix, detail) in [
        ("specReplicasPath", &scale.spec_replicas_path, ".spec.", "should be a json path under .spec"),
        ("statusReplicasPath", &scale.status_replicas_path, ".status.", "should be a json path under .status"),
    ] {
        if value.is_empty() {
            errs.push(FieldError::required(&path.child("scale").child(field), ""));
        } else {
            under(value, field, &[prefix], detail, &mut errs);
        }
    }
    if let Some(selector) = scale.label_selector_path.as_deref().filter(|s| !s.is_empty()) {
        let detail = "should be a json path under either .spec or .status";
        under(selector, "labelSelectorPath", &[".spec.", ".status."], detail, &mut errs);
    }
    errs
}

/// `validateSimpleJSONPath` (its dot-notation check can never fail).
fn simple_json_path(s: &str, path: &Path) -> ErrorList {
    if s.is_empty() {
        vec![FieldError::invalid(path, s, "must not be empty")]
    } else if !s.starts_with('.') {
        vec![FieldError::invalid(path, s, "must be a simple json path starting with .")]
    } else {
        Vec::new()
    }
}

/// `ValidateCustomResourceColumnDefinition` (note the capitalized `JSONPath` in the path).
pub(super) fn validate_column(col: &CustomResourceColumnDefinition, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    if col.name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    let types_detail = format!("must be one of {COLUMN_TYPES}");
    if col.type_.is_empty() {
        errs.push(FieldError::required(&path.child("type"), types_detail));
    } else if !COLUMN_TYPES.split(',').any(|t| t == col.type_) {
        errs.push(FieldError::invalid(&path.child("type"), col.type_.as_str(), types_detail));
    }
    if let Some(f) = col.format.as_deref().filter(|f| !f.is_empty() && !COLUMN_FORMATS.split(',').any(|x| x == *f)) {
        errs.push(FieldError::invalid(&path.child("format"), f, format!("must be one of {COLUMN_FORMATS}")));
    }
    let json_path = path.child("JSONPath");
    if col.json_path.is_empty() {
        errs.push(FieldError::required(&json_path, ""));
    } else {
        errs.extend(simple_json_path(&col.json_path, &json_path));
    }
    errs
}

/// Where selectable fields sit, and what upstream says when there is no schema beside them.
pub(super) enum Place {
    /// The top of the spec: a `spec.validation` without a schema passes this check.
    Top,
    /// A version: its `schema.openAPIV3Schema` must be set (upstream also says so when the
    /// schema was moved to the top because all versions share it).
    Version,
}

/// The selectable fields at `base` (`spec` or `spec.versions[i]`) with the schema there.
pub(super) fn validate_selectable(
    fields: &[SelectableField],
    validation: Option<&CustomResourceValidation>,
    base: &Path,
    place: Place,
) -> ErrorList {
    if fields.is_empty() {
        return Vec::new();
    }
    let path = base.child("selectableFields");
    let missing = match place {
        Place::Top => {
            validation.is_none().then_some("selectableFields may only be set when validations.schema is included")
        }
        Place::Version => validation
            .and_then(|v| v.open_api_v3_schema.as_ref())
            .is_none()
            .then_some("selectableFields may only be set when version.schema.openAPIV3Schema is not included"),
    };
    if let Some(why) = missing {
        return vec![FieldError::invalid(&path, "", why)];
    }
    // Upstream dereferences a missing or unconvertible schema; reporting the conversion
    // error alone stands in for its panic.
    let schema = schema_value(validation).and_then(|v| crd::parse(&v).ok());
    let Some(schema) = schema else { return Vec::new() };
    if let Some(why) = schema.conversion_error() {
        return vec![FieldError::invalid(&base.child("schema.openAPIV3Schema"), "", why)];
    }
    selectable_fields(fields, &schema, &path)
}

/// `ValidateCustomResourceSelectableFields`.
fn selectable_fields(fields: &[SelectableField], schema: &Schema, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    let mut unique: Vec<String> = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let at = path.index(i).child("jsonPath");
        if f.json_path.is_empty() {
            errs.push(FieldError::required(&at, ""));
            continue;
        }
        let (root, field, found) = match field_path(&f.json_path, schema) {
            Ok(found) => found,
            Err(why) => {
                errs.push(FieldError::invalid(&at, f.json_path.as_str(), format!("is an invalid path: {why}")));
                continue;
            }
        };
        if root == "metadata" {
            errs.push(FieldError::invalid(&at, f.json_path.as_str(), "must not point to fields in metadata"));
        }
        if !found.is_some_and(|s| ["string", "boolean", "integer"].contains(&s.type_.as_str())) {
            errs.push(FieldError::invalid(
                &at,
                f.json_path.as_str(),
                "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.",
            ));
        }
        if unique.contains(&field) {
            errs.push(FieldError::duplicate(&at, f.json_path.as_str()));
        } else {
            unique.push(field);
        }
    }
    if unique.len() > MAX_SELECTABLE_FIELDS {
        errs.push(FieldError::too_many(path, unique.len(), MAX_SELECTABLE_FIELDS));
    }
    errs
}

/// Split a JSON path as upstream's scanner does: `.`, `[` and `]` alone, quoted strings whole,
/// everything else up to the next delimiter.
fn tokens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let b = rest.as_bytes();
        let end = if b[0] == b'\'' {
            (1..b.len()).find(|&i| b[i] == b'\'' && b[i - 1] != b'\\').map_or(b.len(), |i| i + 1)
        } else {
            match b.iter().position(|c| matches!(c, b'.' | b'[' | b']')) {
                Some(0) => 1,
                Some(i) => i,
                None => b.len(),
            }
        };
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

/// Why a selectable field's path is invalid (`cel.ValidFieldPath`'s errors).
#[derive(Debug, thiserror::Error)]
enum FieldPathError {
    #[error("array notation is not allowed")]
    ArrayNotation,
    #[error("unexpected end of JSON path")]
    UnexpectedEnd,
    #[error("does not refer to a valid field")]
    NotAField,
    #[error("expected [ or . but got: {0}")]
    Expected(String),
}

/// `cel.ValidFieldPath` without array notation: the path's first segment, the whole path as a
/// field path, and the schema it reaches (none under `additionalProperties: true`).
fn field_path<'s>(json_path: &str, schema: &'s Schema) -> Result<(String, String, Option<&'s Schema>), FieldPathError> {
    let mut node = Some(schema);
    let mut path = Path::default();
    let mut root = String::new();
    let mut toks = tokens(json_path).into_iter();
    while let Some(tok) = toks.next() {
        match tok {
            "[" => return Err(FieldPathError::ArrayNotation),
            "." => {
                let name = toks.next().ok_or(FieldPathError::UnexpectedEnd)?;
                let here = node.ok_or(FieldPathError::NotAField)?;
                if !here.properties.is_empty() {
                    path = path.child(name);
                    node = Some(here.property(name).ok_or(FieldPathError::NotAField)?);
                } else if here.additional_properties.is_some() {
                    path = path.key(name);
                    node = here.additional_schema();
                } else {
                    return Err(FieldPathError::NotAField);
                }
                if root.is_empty() {
                    root = path.as_str().to_string();
                }
            }
            other => return Err(FieldPathError::Expected(other.to_string())),
        }
    }
    Ok((root, path.as_str().to_string(), node))
}
