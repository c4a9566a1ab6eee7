//! JSON → CEL values, typed by the schema as upstream's `UnstructuredToVal` types them:
//! `integer` is `int` and `number` is `double` whatever the JSON looks like, strings of format
//! `byte`/`duration`/`date`/`date-time` become bytes/durations/timestamps, objects with
//! `additionalProperties` are maps keyed by the raw keys, other objects expose their declared
//! properties only, under their escaped names (null fields are absent), and at a resource root
//! only `apiVersion`, `kind`, `metadata.name` and `metadata.generateName` are visible. Nodes
//! without a usable type are left out, as upstream leaves them out of CEL.
//!
//! Strings borrow from the JSON, so copying a converted value (which the interpreter does for
//! each element it iterates) never copies string bytes.

use super::MAX_VALUE_DEPTH;
use super::escape::escape;
use crate::crd::Schema;
use cel::common::types::{
    CelBool, CelBytes, CelDouble, CelDuration, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp,
};
use cel::common::value::Val;
use serde_json::Value;
use std::collections::HashMap;

/// A converted value.
pub(super) type CelVal<'v> = Box<dyn Val + 'v>;

/// Why a value cannot be converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// Deeper than [`MAX_VALUE_DEPTH`]: refused rather than risk the stack.
    #[error("object nested deeper than {MAX_VALUE_DEPTH} levels")]
    TooDeep,
}

/// Whether the node has a type CEL can see (upstream's `SchemaDeclType` is not nil).
pub(super) fn has_decl_type(s: &Schema) -> bool {
    decl_type_at(s, 0)
}

fn decl_type_at(s: &Schema, depth: usize) -> bool {
    if depth > MAX_VALUE_DEPTH {
        return false;
    }
    if s.x_int_or_string || s.x_embedded_resource {
        return true;
    }
    match s.type_.as_str() {
        "array" => s.items_schema().is_some_and(|i| decl_type_at(i, depth + 1)),
        "object" => match s.additional_schema() {
            Some(extra) if s.properties.is_empty() => decl_type_at(extra, depth + 1),
            _ => true,
        },
        "integer" | "number" | "boolean" | "string" => true,
        _ => false,
    }
}

/// `value` as CEL sees it at a node of schema `s`; `root` marks a resource root (the custom
/// resource itself, or an embedded resource). `None` when the node has no CEL type.
pub(super) fn to_cel<'v>(value: &'v Value, s: &Schema, root: bool) -> Result<Option<CelVal<'v>>, ValueError> {
    convert(value, s, root, 0)
}

fn convert<'v>(value: &'v Value, s: &Schema, root: bool, depth: usize) -> Result<Option<CelVal<'v>>, ValueError> {
    if depth > MAX_VALUE_DEPTH {
        return Err(ValueError::TooDeep);
    }
    if !decl_type_at(s, depth) && !root {
        return Ok(None);
    }
    let v: CelVal<'v> = match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => number(n, s),
        Value::String(text) => string(text, s),
        Value::Array(items) => {
            let Some(item_schema) = s.items_schema() else { return Ok(None) };
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match convert(item, item_schema, item_schema.x_embedded_resource, depth + 1)? {
                    Some(v) => out.push(v),
                    None => return Ok(None),
                }
            }
            Box::new(CelList::from(out))
        }
        Value::Object(map) => {
            let resource = root || s.x_embedded_resource;
            match s.additional_schema() {
                Some(extra) if s.properties.is_empty() && !resource => {
                    let mut out = HashMap::with_capacity(map.len());
                    for (k, v) in map {
                        if let Some(v) = convert(v, extra, extra.x_embedded_resource, depth + 1)? {
                            out.insert(CelMapKey::String(CelString::from(k.as_str())), v);
                        }
                    }
                    Box::new(CelMap::from(out))
                }
                _ => object(map, s, resource, depth)?,
            }
        }
    };
    Ok(Some(v))
}

fn object<'v>(
    map: &'v serde_json::Map<String, Value>,
    s: &Schema,
    resource: bool,
    depth: usize,
) -> Result<CelVal<'v>, ValueError> {
    let mut out: HashMap<CelMapKey<'v>, CelVal<'v>> = HashMap::new();
    for (k, v) in map {
        if v.is_null() {
            continue;
        }
        if resource && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            if let Some(meta) = resource_meta(k, v) {
                out.insert(key(k), meta);
            }
            continue;
        }
        let (Some(prop), Some(name)) = (s.property(k), escape(k)) else { continue };
        if let Some(v) = convert(v, prop, prop.x_embedded_resource, depth + 1)? {
            out.insert(key(&name), v);
        }
    }
    Ok(Box::new(CelMap::from(out)))
}

fn key<'v>(name: &str) -> CelMapKey<'v> {
    CelMapKey::String(CelString::from(name.to_string()))
}

/// `apiVersion`, `kind` and `metadata` at a resource root: strings, and the two names of
/// the metadata, as upstream's `WithTypeAndObjectMeta` declares them.
fn resource_meta<'v>(k: &str, v: &'v Value) -> Option<CelVal<'v>> {
    match (k, v) {
        ("apiVersion" | "kind", Value::String(s)) => Some(Box::new(CelString::from(s.as_str()))),
        ("metadata", Value::Object(meta)) => {
            let mut out: HashMap<CelMapKey<'v>, CelVal<'v>> = HashMap::new();
            for name in ["name", "generateName"] {
                if let Some(Value::String(s)) = meta.get(name) {
                    out.insert(key(name), Box::new(CelString::from(s.as_str())));
                }
            }
            Some(Box::new(CelMap::from(out)))
        }
        _ => None,
    }
}

fn number<'v>(n: &serde_json::Number, s: &Schema) -> CelVal<'v> {
    let integral = n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64));
    match (s.type_.as_str(), integral) {
        // int-or-string and integer nodes hold ints; anything else numeric is a double.
        ("integer" | "", Some(i)) => Box::new(CelInt::from(i)),
        _ => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
    }
}

fn string<'v>(text: &'v str, s: &Schema) -> CelVal<'v> {
    if s.type_ == "string" {
        match s.format.as_str() {
            "byte" => {
                use base64::Engine as _;
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text) {
                    return Box::new(CelBytes::from(bytes));
                }
            }
            "duration" => {
                if let Some(d) = super::library::time::parse_duration(text) {
                    return Box::new(CelDuration::from(d));
                }
            }
            "date" => {
                if let Some(t) = super::library::time::parse_date(text) {
                    return Box::new(CelTimestamp::from(t));
                }
            }
            "date-time" | "datetime" => {
                if let Some(t) = super::library::time::parse_timestamp(text) {
                    return Box::new(CelTimestamp::from(t));
                }
            }
            _ => {}
        }
    }
    Box::new(CelString::from(text))
}
