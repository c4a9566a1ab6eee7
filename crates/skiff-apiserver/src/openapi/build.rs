//! Building the documents: the built-in kinds' once ([`BASE`]), and those with custom resources
//! from them whenever the CRDs change. The v2 document (JSON and protobuf) is kept in encoded
//! parts so that custom resources' entries are appended to the built-in ones without encoding
//! those again, and each custom group version's v3 document and each version's v2 entries are
//! kept with what they were built from, so that a change rebuilds only what it touches.

use super::custom::{self, CustomVersion, Part};
use super::schemas::Flavor;
use super::{Cached, Documents, OpenApiError, V2_CONTENT_TYPE, gnostic, paths, schemas};
use serde_json::{Map, Value, json};
use skiff_core::kinds;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

/// The built-in kinds' documents, and the pieces the documents with custom resources are made of.
pub(super) struct Base {
    pub documents: Arc<Documents>,
    v2: V2Parts,
    /// The v3 index's entries.
    v3_index: Map<String, Value>,
}

pub(super) static BASE: LazyLock<Result<Base, OpenApiError>> = LazyLock::new(build_base);

fn info() -> Value {
    json!({"title": "Kubernetes", "version": format!("v1.{}.0", crate::discovery::KUBE_MINOR)})
}

/// The v2 document as JSON: every served kind.
pub(super) fn v2_document() -> Value {
    let g = schemas::generate(Flavor::V2, kinds::all());
    json!({"swagger": "2.0", "info": info(), "paths": paths::paths(Flavor::V2, &g.served, &g.meta),
        "definitions": g.definitions})
}

/// The v3 document of one group version.
pub(super) fn v3_document(group: &str, version: &str) -> Value {
    let served: Vec<_> = kinds::in_group_version(group, version).collect();
    let g = schemas::generate(Flavor::V3, &served);
    json!({"openapi": "3.0.0", "info": info(), "paths": paths::paths(Flavor::V3, &g.served, &g.meta),
        "components": {"schemas": g.definitions}})
}

/// A group version's path under `/openapi/v3/`, as its discovery path: `api/v1`, `apis/G/V`.
fn v3_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

fn json_cached(doc: &Value) -> Result<Arc<Cached>, OpenApiError> {
    Ok(Arc::new(Cached::new(serde_json::to_vec(doc)?, "application/json")))
}

fn index_entry(path: &str, doc: &Cached) -> Value {
    json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)})
}

fn build_base() -> Result<Base, OpenApiError> {
    let v2 = V2Parts::new(&v2_document())?;
    let v2_protobuf = Arc::new(Cached::new(v2.protobuf.finish(), V2_CONTENT_TYPE));
    let v2_json = Arc::new(Cached::new(v2.json.finish(), "application/json"));
    let mut v3 = Vec::new();
    let mut v3_index = Map::new();
    for (group, versions) in kinds::groups() {
        for version in versions {
            let path = v3_path(group, version);
            let doc = json_cached(&v3_document(group, version))?;
            v3_index.insert(path.clone(), index_entry(&path, &doc));
            v3.push((path, doc));
        }
    }
    let v3_root = json_cached(&json!({"paths": v3_index}))?;
    let documents = Arc::new(Documents { v2_json, v2_protobuf, v3_root, v3 });
    Ok(Base { documents, v2, v3_index })
}

/// What the current documents were built from, and their pieces, for the next build.
#[derive(Default)]
pub(super) struct Built {
    pub versions: Vec<CustomVersion>,
    /// Custom group versions' v3 documents, by path, with the versions they describe.
    v3: HashMap<String, (Vec<CustomVersion>, Arc<Cached>)>,
    /// Each version's v2 entries, by its kind's definition name; `None` if they could not be
    /// encoded.
    v2: HashMap<String, (CustomVersion, Option<Arc<Encoded>>)>,
}

/// The built-in documents with `versions` added (ordered by group version, as
/// [`custom::served_versions`] returns them), reusing `previous`'s pieces where the versions are
/// the same. A version whose names are taken, or that cannot be encoded, is left out with a
/// warning rather than failing the whole document.
pub(super) fn build_custom(
    base: &Base,
    versions: &[CustomVersion],
    previous: &Built,
) -> Result<(Documents, Built), OpenApiError> {
    let mut next = Built { versions: versions.to_vec(), ..Built::default() };
    let mut v3 = base.documents.v3.clone();
    let mut v3_index = base.v3_index.clone();
    for group_version in versions.chunk_by(|a, b| a.group == b.group && a.version == b.version) {
        let path = group_version[0].v3_path();
        // A built-in group version keeps its own document.
        if v3.iter().any(|(p, _)| *p == path) {
            tracing::warn!(%path, "OpenAPI v3: custom resources in a built-in group version not published");
            continue;
        }
        let doc = match previous.v3.get(&path) {
            Some((built_from, doc)) if built_from == group_version => doc.clone(),
            _ => json_cached(&custom::v3_document(&group_version.iter().collect::<Vec<_>>()))?,
        };
        v3_index.insert(path.clone(), index_entry(&path, &doc));
        next.v3.insert(path.clone(), (group_version.to_vec(), doc.clone()));
        v3.push((path, doc));
    }

    let mut v2 = base.v2.clone();
    let mut scale = false;
    for v in versions {
        let name = v.definition_name();
        let encoded = match previous.v2.get(&name) {
            Some((built_from, encoded)) if built_from == v => encoded.clone(),
            _ => match Encoded::new(&custom::part(Flavor::V2, v)) {
                Ok(encoded) => Some(Arc::new(encoded)),
                Err(e) => {
                    tracing::warn!(group = %v.group, version = %v.version, kind = %v.kind, error = %e,
                        "OpenAPI v2: custom resource not published");
                    None
                }
            },
        };
        if let Some(encoded) = &encoded {
            match v2.add(encoded) {
                Ok(()) => scale |= v.scale,
                Err(e) => tracing::warn!(group = %v.group, version = %v.version, kind = %v.kind, error = %e,
                    "OpenAPI v2: custom resource not published"),
            }
        }
        next.v2.insert(name, (v.clone(), encoded));
    }
    let definitions =
        custom::meta_definitions(Flavor::V2, scale).into_iter().filter(|(name, _)| !v2.names.contains(name)).collect();
    v2.add(&Encoded::new(&Part { definitions, paths: Map::new() })?)?;

    let documents = Documents {
        v2_json: Arc::new(Cached::new(v2.json.finish(), "application/json")),
        v2_protobuf: Arc::new(Cached::new(v2.protobuf.finish(), V2_CONTENT_TYPE)),
        v3_root: json_cached(&json!({"paths": v3_index}))?,
        v3,
    };
    Ok((documents, next))
}

/// Definitions and paths to add to the v2 document, encoded.
pub(super) struct Encoded {
    names: Vec<String>,
    json: JsonParts,
    protobuf: gnostic::Parts,
}

impl Encoded {
    fn new(part: &Part) -> Result<Self, OpenApiError> {
        let doc = json!({"paths": part.paths, "definitions": part.definitions});
        Ok(Encoded {
            names: part.definitions.keys().chain(part.paths.keys()).cloned().collect(),
            json: JsonParts::encode(&doc)?,
            protobuf: gnostic::Parts::encode(&doc)?,
        })
    }
}

/// The v2 document as JSON and as protobuf, in parts.
#[derive(Clone)]
struct V2Parts {
    json: JsonParts,
    protobuf: gnostic::Parts,
    /// Names in `definitions` and `paths`, none of which may be added again.
    names: HashSet<String>,
}

impl V2Parts {
    fn new(doc: &Value) -> Result<Self, OpenApiError> {
        let names = ["definitions", "paths"]
            .iter()
            .filter_map(|k| doc.get(k).and_then(Value::as_object))
            .flat_map(|m| m.keys().cloned())
            .collect();
        Ok(V2Parts { json: JsonParts::encode(doc)?, protobuf: gnostic::Parts::encode(doc)?, names })
    }

    /// Add `part`'s definitions and paths, unless one of their names is taken.
    fn add(&mut self, part: &Encoded) -> Result<(), OpenApiError> {
        if let Some(taken) = part.names.iter().find(|n| self.names.contains(*n)) {
            return Err(OpenApiError::Taken(taken.clone()));
        }
        self.json.append(&part.json);
        self.protobuf.append(&part.protobuf);
        self.names.extend(part.names.iter().cloned());
        Ok(())
    }
}

/// A JSON document as the bytes of its `paths` entries, of its `definitions` entries, and of its
/// other entries, written as `serde_json::to_vec` writes them.
#[derive(Clone, Debug, Default)]
pub(super) struct JsonParts {
    rest: Vec<u8>,
    paths: Vec<u8>,
    definitions: Vec<u8>,
}

impl JsonParts {
    pub fn encode(doc: &Value) -> Result<Self, serde_json::Error> {
        let mut parts = JsonParts::default();
        for (key, value) in doc.as_object().into_iter().flatten() {
            match (key.as_str(), value) {
                ("paths", Value::Object(m)) => write_entries(&mut parts.paths, m)?,
                ("definitions", Value::Object(m)) => write_entries(&mut parts.definitions, m)?,
                _ => write_entries(&mut parts.rest, [(key, value)])?,
            }
        }
        Ok(parts)
    }

    /// Add `other`'s paths and definitions (not its other entries: a document has one of each).
    pub fn append(&mut self, other: &JsonParts) {
        for (to, from) in [(&mut self.paths, &other.paths), (&mut self.definitions, &other.definitions)] {
            if !to.is_empty() && !from.is_empty() {
                to.push(b',');
            }
            to.extend_from_slice(from);
        }
    }

    /// The document: its other entries, then `paths`, then `definitions`.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rest.len() + self.paths.len() + self.definitions.len() + 40);
        out.push(b'{');
        out.extend_from_slice(&self.rest);
        if !self.rest.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"paths\":{");
        out.extend_from_slice(&self.paths);
        out.extend_from_slice(b"},\"definitions\":{");
        out.extend_from_slice(&self.definitions);
        out.extend_from_slice(b"}}");
        out
    }
}

/// Append `"key":value` entries to the comma-separated `out`.
fn write_entries<'a>(
    out: &mut Vec<u8>,
    entries: impl IntoIterator<Item = (&'a String, &'a Value)>,
) -> Result<(), serde_json::Error> {
    for (key, value) in entries {
        if !out.is_empty() {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key)?;
        out.push(b':');
        serde_json::to_writer(&mut *out, value)?;
    }
    Ok(())
}
