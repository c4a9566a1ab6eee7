//! OpenAPI v2 and v3 documents for the served kinds, generated from k8s-openapi's typed structs
//! (`schemas`), with their operations (`paths`). kubectl reads them for `explain` (v3 since 1.27;
//! v2 with `--output plaintext-openapiv2`), for client-side validation (v2, when the server does
//! not advertise `fieldValidation`, or for a `List`), and to learn that the PATCH operation takes
//! `fieldValidation` (v3, then v2) so validation is left to the server.
//!
//! v2 is served as gnostic's protobuf (`gnostic`, what kubectl asks for) or JSON; v3 as JSON. The
//! built-in kinds' documents are built once, on first use; an [`OpenApi`] handle adds the custom
//! resources' (`custom`) whenever the set of CustomResourceDefinitions changes, building the new
//! documents aside and then swapping them in, so that requests never wait for a build. Each
//! document is served with an ETag; the v3 group document's URL carries its hash, so clients may
//! cache it for good.

mod build;
mod custom;
mod gnostic;
mod paths;
mod schemas;

use crate::http::Failure;
use axum::response::{IntoResponse, Response};
use build::{BASE, Built};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;
use sha2::Digest;
use skiff_core::ApiError;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

pub const V2_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    #[error(transparent)]
    Encode(#[from] gnostic::EncodeError),
    #[error("OpenAPI document: {0}")]
    Json(#[from] serde_json::Error),
    #[error("OpenAPI v2: {0:?} is taken")]
    Taken(String),
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
    v2_json: Arc<Cached>,
    v2_protobuf: Arc<Cached>,
    v3_root: Arc<Cached>,
    /// One v3 document per group version, by its path under `/openapi/v3/` (`api/v1`,
    /// `apis/coordination.k8s.io/v1`).
    v3: Vec<(String, Arc<Cached>)>,
}

/// The OpenAPI documents served: the built-in kinds' and the established custom resources'.
/// Cheap to clone; clones share the documents.
#[derive(Clone, Default)]
pub struct OpenApi {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The documents with custom resources; `None` while there are none (the built-in ones are
    /// served).
    current: RwLock<Option<Arc<Documents>>>,
    /// What `current` was built from; held during a build, so that builds run one at a time.
    built: Mutex<Built>,
    /// For [`OpenApi::publish`]: the CRDs to build next, and whether a build is under way.
    pending: Mutex<(Option<Vec<Value>>, bool)>,
}

impl OpenApi {
    pub fn new() -> Self {
        Self::default()
    }

    /// Publish the custom resources of `crds` (CustomResourceDefinition objects as stored): the
    /// served versions of the established ones not being deleted. Nothing happens when they are
    /// what the documents already say; else the documents are built in the caller's thread (the
    /// group versions and versions that changed, then the v2 document put together) and then
    /// replace the old ones: requests meanwhile get the old ones.
    pub fn set_custom_resources(&self, crds: &[Value]) {
        let versions = custom::served_versions(crds);
        let mut built = self.inner.built.lock().unwrap_or_else(PoisonError::into_inner);
        if built.versions == versions {
            return;
        }
        let (documents, next) = if versions.is_empty() {
            (None, Built::default())
        } else {
            let Ok(base) = BASE.as_ref() else { return };
            match build::build_custom(base, &versions, &built) {
                Ok((documents, next)) => (Some(Arc::new(documents)), next),
                Err(e) => {
                    tracing::warn!(error = %e, "OpenAPI documents with custom resources not built");
                    return;
                }
            }
        };
        *self.inner.current.write().unwrap_or_else(PoisonError::into_inner) = documents;
        *built = next;
    }

    /// [`Self::set_custom_resources`] on tokio's blocking pool, for callers that must not wait
    /// (inline without a runtime). Builds run one after the other; CRDs published while one runs
    /// are built next, and only the latest of them.
    pub fn publish(&self, crds: &[Value]) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return self.set_custom_resources(crds);
        };
        {
            let mut pending = self.inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.0 = Some(crds.to_vec());
            if pending.1 {
                return;
            }
            pending.1 = true;
        }
        let this = self.clone();
        runtime.spawn_blocking(move || {
            loop {
                let next = {
                    let mut pending = this.inner.pending.lock().unwrap_or_else(PoisonError::into_inner);
                    let next = pending.0.take();
                    // Cleared under the same lock as the check in `publish`: no set is left behind.
                    pending.1 = next.is_some();
                    next
                };
                let Some(crds) = next else { break };
                // A panic must not leave later sets waiting for a build that is over.
                let build = std::panic::AssertUnwindSafe(|| this.set_custom_resources(&crds));
                if std::panic::catch_unwind(build).is_err() {
                    tracing::error!("OpenAPI documents with custom resources: build panicked");
                }
            }
        });
    }

    /// `respond` with the documents, or a 500 Status if they could not be built.
    fn with_documents(&self, respond: impl FnOnce(&Documents) -> Response) -> Response {
        let current = self.inner.current.read().unwrap_or_else(PoisonError::into_inner).clone();
        match (current, BASE.as_ref()) {
            (Some(d), _) => respond(&d),
            (None, Ok(base)) => respond(&base.documents),
            (None, Err(e)) => Failure(ApiError::Internal(e.to_string())).into_response(),
        }
    }

    /// `GET /openapi/v2`.
    pub fn v2(&self, headers: &HeaderMap) -> Response {
        self.with_documents(|d| {
            let doc = if wants_protobuf(headers) { &d.v2_protobuf } else { &d.v2_json };
            doc.respond(headers, false)
        })
    }

    /// `GET /openapi/v3`: where each group version's document is.
    pub fn v3_root(&self, headers: &HeaderMap) -> Response {
        self.with_documents(|d| d.v3_root.respond(headers, false))
    }

    /// `GET /openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`: `path` is what follows
    /// `/openapi/v3/`, `query` the raw query string.
    pub fn v3_group_version(&self, path: &str, headers: &HeaderMap, query: Option<&str>) -> Response {
        self.with_documents(|d| {
            let Some((_, doc)) = d.v3.iter().find(|(p, _)| p == path) else {
                return Failure(ApiError::NoResource).into_response();
            };
            let mut params = query.into_iter().flat_map(|q| form_urlencoded::parse(q.as_bytes()));
            let immutable = params.any(|(k, v)| k == "hash" && v == doc.hash);
            doc.respond(headers, immutable)
        })
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

#[cfg(test)]
mod tests;
