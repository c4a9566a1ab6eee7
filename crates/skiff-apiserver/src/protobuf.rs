//! Kubernetes' protobuf request bodies (`application/vnd.kubernetes.protobuf`), for every served
//! kind: client-go's typed clients send them (`kubectl create namespace`, `create secret`,
//! `debug --copy-to`), and so do Go controllers.
//!
//! The envelope is `k8s\0` + `runtime.Unknown{typeMeta, raw}`; `raw` is the object's message,
//! decoded by a table of message descriptors (`table.rs`) into the JSON the object's Go JSON
//! encoding gives. The table is generated (`generate`, a test) from k8s-pb's prost attributes
//! (field numbers and types) and the served OpenAPI schemas (JSON names, inline structs,
//! required fields), for every message reachable from a served kind; no kind has code here.
//!
//! Zero values: Go writes every non-pointer field whether set or not, and a pointer field only
//! when set, so the wire cannot tell an unset `int32` from an explicit `0`. Numbers and booleans
//! are kept (dropping them would lose a meaningful `runAsUser: 0` or `enableServiceLinks: false`);
//! empty strings are dropped unless the schema requires the field, and an empty Time is `null`.

mod decode;
mod descriptor;
#[cfg(test)]
mod generate;
mod special;
#[rustfmt::skip]
mod table;
#[cfg(test)]
mod tests;
pub(crate) mod wire;

use serde_json::{Map, Value};
use skiff_core::ApiError;
use wire::{LEN, Reader, WireError};

const MAGIC: &[u8] = b"k8s\0";

/// `runtime.Unknown`: the type and the object's bytes.
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
}

fn type_meta(data: &[u8], u: &mut Unknown<'_>) -> Result<(), WireError> {
    let mut r = Reader::new(data);
    while !r.is_empty() {
        match r.key("TypeMeta")? {
            (1, LEN) => u.api_version = String::from_utf8_lossy(r.len_delimited()?).into_owned(),
            (2, LEN) => u.kind = String::from_utf8_lossy(r.len_delimited()?).into_owned(),
            (1, wire) => return Err(WireError::WrongWireType { wire, field: "APIVersion" }),
            (2, wire) => return Err(WireError::WrongWireType { wire, field: "Kind" }),
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(())
}

fn envelope(data: &[u8]) -> Result<Unknown<'_>, WireError> {
    let mut u = Unknown { api_version: String::new(), kind: String::new(), raw: &[] };
    let mut r = Reader::new(data);
    while !r.is_empty() {
        match r.key("Unknown")? {
            (1, LEN) => type_meta(r.len_delimited()?, &mut u)?,
            (2, LEN) => u.raw = r.len_delimited()?,
            (1, wire) => return Err(WireError::WrongWireType { wire, field: "TypeMeta" }),
            (2, wire) => return Err(WireError::WrongWireType { wire, field: "Raw" }),
            // contentEncoding and contentType are empty for objects.
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(u)
}

/// Decode a protobuf request body into the JSON form of the object.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let inner = body.strip_prefix(MAGIC).ok_or_else(|| {
        ApiError::BadRequest(
            "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]".into(),
        )
    })?;
    let u = envelope(inner).map_err(|e| ApiError::BadRequest(format!("the object provided is unrecognized: {e}")))?;
    if u.kind.is_empty() {
        return Err(ApiError::BadRequest("Object 'Kind' is missing in the protobuf body".into()));
    }
    let Some(&(_, _, index)) = table::KINDS.iter().find(|(v, k, _)| *v == u.api_version && *k == u.kind) else {
        return Err(ApiError::BadRequest(format!(
            "no kind {:?} is registered for version {:?} in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
            u.kind, u.api_version
        )));
    };
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), u.api_version.clone().into());
    obj.insert("kind".into(), u.kind.clone().into());
    decode::message(index, u.raw, &mut obj, 0).map_err(|e| {
        let version = u.api_version.rsplit('/').next().unwrap_or_default();
        ApiError::BadRequest(format!("{k} in version {version:?} cannot be handled as a {k}: {e}", k = u.kind))
    })?;
    Ok(Value::Object(obj))
}
