//! Kubernetes' protobuf request encoding, for the few objects stock kubectl sends that way
//! (`kubectl create namespace` and `kubectl create secret` use the typed client, which encodes
//! bodies as protobuf).
//! The envelope is `k8s\0` + `runtime.Unknown{typeMeta, raw}`; `raw` is the object's message.

use serde_json::{Map, Value, json};
use skiff_core::ApiError;

const MAGIC: &[u8] = b"k8s\0";

fn unsupported(what: &str) -> ApiError {
    ApiError::UnsupportedMediaType(format!(
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({what})"
    ))
}

/// One decoded field: varints and length-delimited payloads (fixed-width ones are skipped).
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, ApiError> {
    let bad = || ApiError::BadRequest("malformed protobuf body".into());
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let tag = varint(buf, &mut pos).ok_or_else(bad)?;
        let (num, wire) = (tag >> 3, tag & 7);
        match wire {
            0 => {
                let v = varint(buf, &mut pos).ok_or_else(bad)?;
                out.push((num, Field::Varint(v)));
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos).ok_or_else(bad)?).map_err(|_| bad())?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len()).ok_or_else(bad)?;
                out.push((num, Field::Bytes(&buf[pos..end])));
                pos = end;
            }
            1 => pos = pos.checked_add(8).filter(|e| *e <= buf.len()).ok_or_else(bad)?,
            5 => pos = pos.checked_add(4).filter(|e| *e <= buf.len()).ok_or_else(bad)?,
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

fn text(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| ApiError::BadRequest("malformed protobuf body: invalid UTF-8".into()))
}

/// A protobuf map (repeated key=1/value=2 entries), each value turned into JSON by `value`.
fn map_of(entries: &[&[u8]], value: impl Fn(&[u8]) -> Result<Value, ApiError>) -> Result<Value, ApiError> {
    let mut m = Map::new();
    for e in entries {
        let (mut k, mut v) = (String::new(), value(&[])?);
        for (n, f) in fields(e)? {
            match (n, f) {
                (1, Field::Bytes(b)) => k = text(b)?,
                (2, Field::Bytes(b)) => v = value(b)?,
                _ => {}
            }
        }
        m.insert(k, v);
    }
    Ok(Value::Object(m))
}

fn string_map(entries: &[&[u8]]) -> Result<Value, ApiError> {
    map_of(entries, |b| Ok(json!(text(b)?)))
}

/// `map<string, bytes>`: the values base64-encoded, as JSON carries them.
fn bytes_map(entries: &[&[u8]]) -> Result<Value, ApiError> {
    use base64::Engine;
    map_of(entries, |b| Ok(json!(base64::engine::general_purpose::STANDARD.encode(b))))
}

/// The user-settable part of `ObjectMeta`.
fn object_meta(buf: &[u8]) -> Result<Value, ApiError> {
    let mut md = Map::new();
    let (mut labels, mut annotations, mut finalizers) = (vec![], vec![], vec![]);
    for (n, f) in fields(buf)? {
        match (n, f) {
            (1, Field::Bytes(b)) => {
                md.insert("name".into(), json!(text(b)?));
            }
            (2, Field::Bytes(b)) => {
                md.insert("generateName".into(), json!(text(b)?));
            }
            (3, Field::Bytes(b)) => {
                md.insert("namespace".into(), json!(text(b)?));
            }
            (6, Field::Bytes(b)) => {
                md.insert("resourceVersion".into(), json!(text(b)?));
            }
            (11, Field::Bytes(b)) => labels.push(b),
            (12, Field::Bytes(b)) => annotations.push(b),
            (14, Field::Bytes(b)) => finalizers.push(json!(text(b)?)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        md.insert("labels".into(), string_map(&labels)?);
    }
    if !annotations.is_empty() {
        md.insert("annotations".into(), string_map(&annotations)?);
    }
    if !finalizers.is_empty() {
        md.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(md))
}

fn namespace(raw: &[u8]) -> Result<Value, ApiError> {
    let mut obj = json!({"apiVersion": "v1", "kind": "Namespace"});
    for (n, f) in fields(raw)? {
        match (n, f) {
            (1, Field::Bytes(b)) => obj["metadata"] = object_meta(b)?,
            (2, Field::Bytes(b)) => {
                let mut fin = Vec::new();
                for (sn, sf) in fields(b)? {
                    if let (1, Field::Bytes(s)) = (sn, sf) {
                        fin.push(json!(text(s)?));
                    }
                }
                obj["spec"] = json!({"finalizers": fin});
            }
            _ => {}
        }
    }
    Ok(obj)
}

fn secret(raw: &[u8]) -> Result<Value, ApiError> {
    let mut obj = json!({"apiVersion": "v1", "kind": "Secret"});
    let (mut data, mut string_data) = (vec![], vec![]);
    for (n, f) in fields(raw)? {
        match (n, f) {
            (1, Field::Bytes(b)) => obj["metadata"] = object_meta(b)?,
            (2, Field::Bytes(b)) => data.push(b),
            (3, Field::Bytes(b)) => obj["type"] = json!(text(b)?),
            (4, Field::Bytes(b)) => string_data.push(b),
            (5, Field::Varint(v)) => obj["immutable"] = json!(v != 0),
            _ => {}
        }
    }
    if !data.is_empty() {
        obj["data"] = bytes_map(&data)?;
    }
    if !string_data.is_empty() {
        obj["stringData"] = string_map(&string_data)?;
    }
    Ok(obj)
}

/// Decode a protobuf request body into the JSON form of the object.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let inner = body.strip_prefix(MAGIC).ok_or_else(|| unsupported("protobuf body without the k8s envelope"))?;
    let (mut kind, mut raw) = (String::new(), None);
    for (n, f) in fields(inner)? {
        match (n, f) {
            (1, Field::Bytes(tm)) => {
                for (tn, tf) in fields(tm)? {
                    if let (2, Field::Bytes(k)) = (tn, tf) {
                        kind = text(k)?;
                    }
                }
            }
            (2, Field::Bytes(r)) => raw = Some(r),
            _ => {}
        }
    }
    let raw = raw.ok_or_else(|| ApiError::BadRequest("malformed protobuf body: no object".into()))?;
    match kind.as_str() {
        "Namespace" => namespace(raw),
        "Secret" => secret(raw),
        other => Err(unsupported(&format!("protobuf is accepted for Namespace and Secret only, got {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(num: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![num << 3 | 2, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_kubectl_create_namespace() {
        let label = [ld(1, b"team"), ld(2, b"a")].concat();
        let meta = [ld(1, b"team-a"), ld(11, &label)].concat();
        let ns = ld(1, &meta);
        let type_meta = [ld(1, b"v1"), ld(2, b"Namespace")].concat();
        let body = [MAGIC.to_vec(), ld(1, &type_meta), ld(2, &ns)].concat();
        let v = decode(&body).expect("decode");
        assert_eq!(v["metadata"]["name"], "team-a");
        assert_eq!(v["metadata"]["labels"]["team"], "a");
        assert!(decode(b"k8s\0\x0a\xff").is_err());
        assert!(matches!(decode(b"nope"), Err(ApiError::UnsupportedMediaType(_))));
    }

    #[test]
    fn decodes_kubectl_create_secret() {
        let meta = ld(1, &[ld(1, b"regcred"), ld(3, b"default")].concat());
        let data = ld(2, &[ld(1, b".dockerconfigjson"), ld(2, b"{\"auths\":{}}")].concat());
        let strings = ld(4, &[ld(1, b"user"), ld(2, b"me")].concat());
        let secret = [meta, data, ld(3, b"kubernetes.io/dockerconfigjson"), strings, vec![5 << 3, 1]].concat();
        let type_meta = [ld(1, b"v1"), ld(2, b"Secret")].concat();
        let body = [MAGIC.to_vec(), ld(1, &type_meta), ld(2, &secret)].concat();
        let v = decode(&body).expect("decode");
        assert_eq!(v["metadata"]["name"], "regcred");
        assert_eq!(v["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(v["data"][".dockerconfigjson"], "eyJhdXRocyI6e319");
        assert_eq!(v["stringData"]["user"], "me");
        assert_eq!(v["immutable"], true);
    }
}
