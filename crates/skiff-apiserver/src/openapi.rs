//! OpenAPI v2 and v3 documents for the served kinds, generated from k8s-openapi's typed structs
//! (`schemas`), with their operations (`paths`). kubectl reads them for `explain` (v3 since 1.27;
//! v2 with `--output plaintext-openapiv2`), for client-side validation (v2, when the server does
//! not advertise `fieldValidation`, or for a `List`), and to learn that the PATCH operation takes
//! `fieldValidation` (v3, then v2) so validation is left to the server.
//!
//! v2 is served as gnostic's protobuf (`gnostic`, what kubectl asks for) or JSON; v3 as JSON. The
//! documents are built once, on first use, and served with an ETag; the v3 group document's URL
//! carries its hash, so clients may cache it for good.

mod gnostic;
mod paths;
mod schemas;

use crate::http::Failure;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use schemas::Flavor;
use serde_json::{Value, json};
use sha2::Digest;
use skiff_core::ApiError;
use skiff_core::kinds;
use std::sync::LazyLock;

pub const V2_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    #[error(transparent)]
    Encode(#[from] gnostic::EncodeError),
    #[error("OpenAPI document: {0}")]
    Json(#[from] serde_json::Error),
}

/// One served representation with its hash.
struct Cached {
    body: Bytes,
    content_type: &'static str,
    hash: String,
}

impl Cached {
    fn new(body: Vec<u8>, content_type: &'static str) -> Self {
        let hash = sha2::Sha256::digest(&body).iter().map(|b| format!("{b:02X}")).collect();
        Cached { body: body.into(), content_type, hash }
    }

    fn etag(&self) -> String {
        format!("\"{}\"", self.hash)
    }

    /// 304 when the client already has this version; `immutable` for URLs naming the hash.
    fn respond(&self, headers: &HeaderMap, immutable: bool) -> Response {
        let etag = self.etag();
        let cache = if immutable { "public, immutable" } else { "no-cache, private" };
        let fresh = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
        let mut resp = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (StatusCode::OK, self.body.clone()).into_response()
        };
        let h = resp.headers_mut();
        if !fresh {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        }
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
        resp
    }
}

struct Documents {
    v2_json: Cached,
    v2_protobuf: Cached,
    v3_root: Cached,
    /// One v3 document per group version, by its path under `/openapi/v3/` (`api/v1`,
    /// `apis/coordination.k8s.io/v1`).
    v3: Vec<(String, Cached)>,
}

static DOCUMENTS: LazyLock<Result<Documents, OpenApiError>> = LazyLock::new(build);

fn info() -> Value {
    json!({"title": "Kubernetes", "version": format!("v1.{}.0", crate::discovery::KUBE_MINOR)})
}

/// The v2 document as JSON: every served kind.
fn v2_document() -> Value {
    let g = schemas::generate(Flavor::V2, kinds::all());
    json!({"swagger": "2.0", "info": info(), "paths": paths::paths(Flavor::V2, &g), "definitions": g.definitions})
}

/// The v3 document of one group version.
fn v3_document(group: &str, version: &str) -> Value {
    let served: Vec<_> = kinds::in_group_version(group, version).collect();
    let g = schemas::generate(Flavor::V3, &served);
    json!({"openapi": "3.0.0", "info": info(), "paths": paths::paths(Flavor::V3, &g),
        "components": {"schemas": g.definitions}})
}

/// A group version's path under `/openapi/v3/`, as its discovery path: `api/v1`, `apis/G/V`.
fn v3_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

fn build() -> Result<Documents, OpenApiError> {
    let v2 = v2_document();
    let v2_protobuf = Cached::new(gnostic::encode_document(&v2)?, V2_CONTENT_TYPE);
    let v2_json = Cached::new(serde_json::to_vec(&v2)?, "application/json");
    let mut v3 = Vec::new();
    let mut root = serde_json::Map::new();
    for (group, versions) in kinds::groups() {
        for version in versions {
            let path = v3_path(group, version);
            let doc = Cached::new(serde_json::to_vec(&v3_document(group, version))?, "application/json");
            root.insert(path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)}));
            v3.push((path, doc));
        }
    }
    let v3_root = Cached::new(serde_json::to_vec(&json!({"paths": root}))?, "application/json");
    Ok(Documents { v2_json, v2_protobuf, v3_root, v3 })
}

/// `respond` with the documents, or a 500 Status if they could not be built.
fn with_documents(respond: impl FnOnce(&Documents) -> Response) -> Response {
    match DOCUMENTS.as_ref() {
        Ok(d) => respond(d),
        Err(e) => Failure(ApiError::Internal(e.to_string())).into_response(),
    }
}

/// kubectl asks for `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`; anything else
/// gets JSON, as upstream does.
fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("com.github.proto-openapi.spec.v2"))
}

/// `GET /openapi/v2`.
pub async fn v2(headers: HeaderMap) -> Response {
    with_documents(|d| {
        let doc = if wants_protobuf(&headers) { &d.v2_protobuf } else { &d.v2_json };
        doc.respond(&headers, false)
    })
}

/// `GET /openapi/v3`: where each group version's document is.
pub async fn v3_root(headers: HeaderMap) -> Response {
    with_documents(|d| d.v3_root.respond(&headers, false))
}

/// `GET /openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`.
pub async fn v3_group_version(Path(path): Path<String>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    with_documents(|d| {
        let Some((_, doc)) = d.v3.iter().find(|(p, _)| *p == path) else {
            return Failure(ApiError::NoResource).into_response();
        };
        let mut params = query.as_deref().into_iter().flat_map(|q| form_urlencoded::parse(q.as_bytes()));
        let immutable = params.any(|(k, v)| k == "hash" && v == doc.hash);
        doc.respond(&headers, immutable)
    })
}

#[cfg(test)]
mod tests;
