//! A JSON OpenAPI v2 document → gnostic's `openapi_v2.Document` protobuf, the form kubectl asks
//! for. One generic walk over the JSON, steered by a table of gnostic's messages (field numbers
//! as in gnostic-models `openapiv2/OpenAPIv2.proto`), covering the messages a Kubernetes document
//! uses (`Response.schema` is always a `Schema`, never a `FileSchema`). No crate carries these
//! messages, and generating code from the .proto would need `protoc` at build time for a dozen
//! messages. A key the table does not know is an error, so nothing is dropped silently; the
//! encoder returns errors, never panics, whatever the JSON.
//!
//! A document may also be encoded in [`Parts`]: a message's encoding is the concatenation of its
//! fields, so the `paths` and `definitions` entries of custom resources are appended to the
//! built-in ones without encoding those again.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("OpenAPI v2 encoding: unknown key {key:?} in {message}")]
    UnknownKey { message: &'static str, key: String },
    #[error("OpenAPI v2 encoding: {what} expected at {key:?}, got {got}")]
    Type { what: &'static str, key: String, got: String },
}

/// How one JSON value becomes a protobuf field.
#[derive(Clone, Copy)]
enum Enc {
    Str,
    Bool,
    Double,
    Int,
    /// Any JSON value, as gnostic's `Any{yaml}` (JSON is YAML).
    Any,
    Msg(&'static Msg),
    /// A JSON array, one field occurrence per element; a lone value counts as one element.
    Repeated(&'static Enc),
    /// A message whose field `n` carries the value (gnostic's `TypeItem`, `ItemsItem`).
    Wrap(u32, &'static Enc),
    /// A oneof: a message with the one field the value selects.
    Choice(fn(&Value) -> (u32, Enc)),
}

struct Msg {
    name: &'static str,
    fields: &'static [(&'static str, u32, Enc)],
    /// Field of `repeated NamedAny vendor_extension` for `x-` keys.
    ext: Option<u32>,
    /// Field of `repeated Named*{1 name, 2 value}` for every other key (maps such as
    /// `definitions`, `properties`, `paths`, `responses`).
    rest: Option<(u32, &'static Enc)>,
}

const fn msg(name: &'static str, fields: &'static [(&'static str, u32, Enc)], ext: Option<u32>) -> Msg {
    Msg { name, fields, ext, rest: None }
}

const fn map(name: &'static str, rest: (u32, &'static Enc), ext: Option<u32>) -> Msg {
    Msg { name, fields: &[], ext, rest: Some(rest) }
}

const STRS: Enc = Enc::Repeated(&Enc::Str);
const ANYS: Enc = Enc::Repeated(&Enc::Any);

static DOCUMENT: Msg = msg(
    "Document",
    &[
        ("swagger", 1, Enc::Str),
        ("info", 2, Enc::Msg(&INFO)),
        ("host", 3, Enc::Str),
        ("basePath", 4, Enc::Str),
        ("schemes", 5, STRS),
        ("consumes", 6, STRS),
        ("produces", 7, STRS),
        ("paths", 8, Enc::Msg(&PATHS)),
        ("definitions", 9, Enc::Msg(&DEFINITIONS)),
    ],
    Some(16),
);
static INFO: Msg =
    msg("Info", &[("title", 1, Enc::Str), ("version", 2, Enc::Str), ("description", 3, Enc::Str)], Some(7));
static PATHS: Msg = map("Paths", (2, &Enc::Msg(&PATH_ITEM)), Some(1));
static DEFINITIONS: Msg = map("Definitions", (1, &Enc::Msg(&SCHEMA)), None);
static PROPERTIES: Msg = map("Properties", (1, &Enc::Msg(&SCHEMA)), None);
static PATH_ITEM: Msg = msg(
    "PathItem",
    &[
        ("$ref", 1, Enc::Str),
        ("get", 2, Enc::Msg(&OPERATION)),
        ("put", 3, Enc::Msg(&OPERATION)),
        ("post", 4, Enc::Msg(&OPERATION)),
        ("delete", 5, Enc::Msg(&OPERATION)),
        ("options", 6, Enc::Msg(&OPERATION)),
        ("head", 7, Enc::Msg(&OPERATION)),
        ("patch", 8, Enc::Msg(&OPERATION)),
        ("parameters", 9, Enc::Repeated(&Enc::Choice(parameters_item))),
    ],
    Some(10),
);
static OPERATION: Msg = msg(
    "Operation",
    &[
        ("tags", 1, STRS),
        ("summary", 2, Enc::Str),
        ("description", 3, Enc::Str),
        ("operationId", 5, Enc::Str),
        ("produces", 6, STRS),
        ("consumes", 7, STRS),
        ("parameters", 8, Enc::Repeated(&Enc::Choice(parameters_item))),
        ("responses", 9, Enc::Msg(&RESPONSES)),
        ("schemes", 10, STRS),
        ("deprecated", 11, Enc::Bool),
    ],
    Some(13),
);
static RESPONSES: Msg = map("Responses", (1, &Enc::Choice(response_value)), Some(2));
static RESPONSE: Msg =
    msg("Response", &[("description", 1, Enc::Str), ("schema", 2, Enc::Wrap(1, &Enc::Msg(&SCHEMA)))], Some(5));
static JSON_REFERENCE: Msg = msg("JsonReference", &[("$ref", 1, Enc::Str), ("description", 2, Enc::Str)], None);
static BODY_PARAMETER: Msg = msg(
    "BodyParameter",
    &[
        ("description", 1, Enc::Str),
        ("name", 2, Enc::Str),
        ("in", 3, Enc::Str),
        ("required", 4, Enc::Bool),
        ("schema", 5, Enc::Msg(&SCHEMA)),
    ],
    Some(6),
);
/// Query and formData parameters share one numbering; header and path parameters another.
static QUERY_PARAMETER: Msg = msg(
    "QueryParameterSubSchema",
    &[
        ("required", 1, Enc::Bool),
        ("in", 2, Enc::Str),
        ("description", 3, Enc::Str),
        ("name", 4, Enc::Str),
        ("allowEmptyValue", 5, Enc::Bool),
        ("type", 6, Enc::Str),
        ("format", 7, Enc::Str),
        ("collectionFormat", 9, Enc::Str),
        ("default", 10, Enc::Any),
        ("uniqueItems", 20, Enc::Bool),
        ("enum", 21, ANYS),
    ],
    Some(23),
);
static PATH_PARAMETER: Msg = msg(
    "PathParameterSubSchema",
    &[
        ("required", 1, Enc::Bool),
        ("in", 2, Enc::Str),
        ("description", 3, Enc::Str),
        ("name", 4, Enc::Str),
        ("type", 5, Enc::Str),
        ("format", 6, Enc::Str),
        ("collectionFormat", 8, Enc::Str),
        ("default", 9, Enc::Any),
        ("uniqueItems", 19, Enc::Bool),
        ("enum", 20, ANYS),
    ],
    Some(22),
);
static SCHEMA: Msg = msg(
    "Schema",
    &[
        ("$ref", 1, Enc::Str),
        ("format", 2, Enc::Str),
        ("title", 3, Enc::Str),
        ("description", 4, Enc::Str),
        ("default", 5, Enc::Any),
        ("multipleOf", 6, Enc::Double),
        ("maximum", 7, Enc::Double),
        ("exclusiveMaximum", 8, Enc::Bool),
        ("minimum", 9, Enc::Double),
        ("exclusiveMinimum", 10, Enc::Bool),
        ("maxLength", 11, Enc::Int),
        ("minLength", 12, Enc::Int),
        ("pattern", 13, Enc::Str),
        ("maxItems", 14, Enc::Int),
        ("minItems", 15, Enc::Int),
        ("uniqueItems", 16, Enc::Bool),
        ("maxProperties", 17, Enc::Int),
        ("minProperties", 18, Enc::Int),
        ("required", 19, STRS),
        ("enum", 20, ANYS),
        ("additionalProperties", 21, Enc::Choice(additional_properties)),
        ("type", 22, Enc::Wrap(1, &STRS)),
        ("items", 23, Enc::Wrap(1, &Enc::Repeated(&Enc::Msg(&SCHEMA)))),
        ("allOf", 24, Enc::Repeated(&Enc::Msg(&SCHEMA))),
        ("properties", 25, Enc::Msg(&PROPERTIES)),
        ("discriminator", 26, Enc::Str),
        ("readOnly", 27, Enc::Bool),
        ("example", 30, Enc::Any),
    ],
    Some(31),
);

/// `ParametersItem{1 Parameter, 2 JsonReference}`.
fn parameters_item(v: &Value) -> (u32, Enc) {
    if v.get("$ref").is_some() { (2, Enc::Msg(&JSON_REFERENCE)) } else { (1, Enc::Choice(parameter)) }
}

/// `Parameter{1 BodyParameter, 2 NonBodyParameter}`.
fn parameter(v: &Value) -> (u32, Enc) {
    if v["in"] == "body" { (1, Enc::Msg(&BODY_PARAMETER)) } else { (2, Enc::Choice(non_body_parameter)) }
}

/// `NonBodyParameter{1 header, 2 formData, 3 query, 4 path}`.
fn non_body_parameter(v: &Value) -> (u32, Enc) {
    match v["in"].as_str() {
        Some("header") => (1, Enc::Msg(&PATH_PARAMETER)),
        Some("formData") => (2, Enc::Msg(&QUERY_PARAMETER)),
        Some("path") => (4, Enc::Msg(&PATH_PARAMETER)),
        _ => (3, Enc::Msg(&QUERY_PARAMETER)),
    }
}

/// `ResponseValue{1 Response, 2 JsonReference}`.
fn response_value(v: &Value) -> (u32, Enc) {
    if v.get("$ref").is_some() { (2, Enc::Msg(&JSON_REFERENCE)) } else { (1, Enc::Msg(&RESPONSE)) }
}

/// `AdditionalPropertiesItem{1 Schema, 2 bool}`.
fn additional_properties(v: &Value) -> (u32, Enc) {
    if v.is_boolean() { (2, Enc::Bool) } else { (1, Enc::Msg(&SCHEMA)) }
}

/// Encode a whole document (the server encodes [`Parts`]).
#[cfg(test)]
pub fn encode_document(doc: &Value) -> Result<Vec<u8>, EncodeError> {
    Ok(Parts::encode(doc)?.finish())
}

/// An encoded document split in three: its `paths` and `definitions` messages' contents (the
/// `Named*` entries), and every other field.
#[derive(Clone, Debug, Default)]
pub struct Parts {
    rest: Vec<u8>,
    paths: Option<Vec<u8>>,
    definitions: Option<Vec<u8>>,
}

impl Parts {
    pub fn encode(doc: &Value) -> Result<Self, EncodeError> {
        let obj = doc.as_object().ok_or_else(|| type_error("object", DOCUMENT.name, doc))?;
        let mut parts = Parts::default();
        for (key, value) in obj {
            match key.as_str() {
                "paths" => encode_msg(&PATHS, value, parts.paths.get_or_insert_default())?,
                "definitions" => encode_msg(&DEFINITIONS, value, parts.definitions.get_or_insert_default())?,
                _ => encode_entry(&DOCUMENT, key, value, &mut parts.rest)?,
            }
        }
        Ok(parts)
    }

    /// Add `other`'s paths and definitions (its other fields are not added: a document has one
    /// `swagger`, one `info`).
    pub fn append(&mut self, other: &Parts) {
        if let Some(p) = &other.paths {
            self.paths.get_or_insert_default().extend_from_slice(p);
        }
        if let Some(d) = &other.definitions {
            self.definitions.get_or_insert_default().extend_from_slice(d);
        }
    }

    /// The `Document` message.
    pub fn finish(&self) -> Vec<u8> {
        let len =
            self.rest.len() + self.paths.as_ref().map_or(0, Vec::len) + self.definitions.as_ref().map_or(0, Vec::len);
        let mut out = Vec::with_capacity(len + 16);
        out.extend_from_slice(&self.rest);
        if let Some(p) = &self.paths {
            bytes(8, p, &mut out);
        }
        if let Some(d) = &self.definitions {
            bytes(9, d, &mut out);
        }
        out
    }
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn tag(field: u32, wire: u8, out: &mut Vec<u8>) {
    varint(u64::from(field) << 3 | u64::from(wire), out);
}

fn bytes(field: u32, payload: &[u8], out: &mut Vec<u8>) {
    tag(field, 2, out);
    varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

fn type_error(what: &'static str, key: &str, got: &Value) -> EncodeError {
    let mut got = got.to_string();
    got.truncate(80);
    EncodeError::Type { what, key: key.to_string(), got }
}

fn encode(field: u32, enc: &Enc, key: &str, v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match enc {
        Enc::Str => bytes(field, v.as_str().ok_or_else(|| type_error("string", key, v))?.as_bytes(), out),
        Enc::Bool => {
            tag(field, 0, out);
            varint(u64::from(v.as_bool().ok_or_else(|| type_error("boolean", key, v))?), out);
        }
        Enc::Int => {
            tag(field, 0, out);
            // int64 is written as its two's complement in a varint.
            varint(v.as_i64().ok_or_else(|| type_error("integer", key, v))? as u64, out);
        }
        Enc::Double => {
            tag(field, 1, out);
            out.extend_from_slice(&v.as_f64().ok_or_else(|| type_error("number", key, v))?.to_le_bytes());
        }
        Enc::Any => {
            // Any{2 yaml}
            let mut any = Vec::new();
            bytes(2, v.to_string().as_bytes(), &mut any);
            bytes(field, &any, out);
        }
        Enc::Msg(m) => {
            let mut inner = Vec::new();
            encode_msg(m, v, &mut inner)?;
            bytes(field, &inner, out);
        }
        Enc::Repeated(each) => match v {
            Value::Array(items) => {
                for item in items {
                    encode(field, each, key, item, out)?;
                }
            }
            single => encode(field, each, key, single, out)?,
        },
        Enc::Wrap(n, inner_enc) => {
            let mut inner = Vec::new();
            encode(*n, inner_enc, key, v, &mut inner)?;
            bytes(field, &inner, out);
        }
        Enc::Choice(select) => {
            let (n, chosen) = select(v);
            let mut inner = Vec::new();
            encode(n, &chosen, key, v, &mut inner)?;
            bytes(field, &inner, out);
        }
    }
    Ok(())
}

fn encode_msg(m: &Msg, v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let obj = v.as_object().ok_or_else(|| type_error("object", m.name, v))?;
    for (key, value) in obj {
        encode_entry(m, key, value, out)?;
    }
    Ok(())
}

/// One key of message `m`'s JSON object.
fn encode_entry(m: &Msg, key: &str, value: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if let Some((_, n, enc)) = m.fields.iter().find(|(k, _, _)| *k == key) {
        return encode(*n, enc, key, value, out);
    }
    // Named{1 name, 2 value}: NamedAny for extensions, NamedSchema/NamedPathItem/... for maps.
    let (n, enc) = match (m.ext, m.rest) {
        (Some(ext), _) if key.starts_with("x-") => (ext, &Enc::Any),
        (_, Some((n, enc))) => (n, enc),
        _ => return Err(EncodeError::UnknownKey { message: m.name, key: key.to_string() }),
    };
    let mut named = Vec::new();
    bytes(1, key.as_bytes(), &mut named);
    encode(2, enc, key, value, &mut named)?;
    bytes(n, &named, out);
    Ok(())
}
