//! LIST: every page read at one revision (the first page's), resourceVersion and
//! resourceVersionMatch as upstream, continue tokens in upstream's format, and the response
//! encoded as it is read, up to a hundred objects (or 256 KiB of large ones) at a time: a list costs
//! memory for what is in flight, not for the whole collection.

use crate::http::{self, Output};
use crate::query::Query;
use crate::registry::{self, ListRequest, Registry};
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use skiff_core::kinds::Kind;
use skiff_core::{ApiError, table};
use skiff_store::Revision;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Objects read, encoded and sent at a time: what one list in flight holds...
const CHUNK: usize = 100;
/// ... or fewer when they are large: about this many bytes...
const CHUNK_BYTES: usize = 256 << 10;
/// ... which the first chunk, this small, finds out.
const FIRST_CHUNK: usize = 10;

/// Continue tokens, upstream's format: unpadded URL-safe base64 of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":KEY}`, where KEY is the key the next page starts at
/// (relative to the list's key prefix) and N the revision every page reads at; N = -1 continues
/// at the latest revision (what a 410 for a compacted token offers).
fn encode_continue(rev: i64, start: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"v": "meta.k8s.io/v1", "rv": rev, "start": start}).to_string())
}

/// A continue token's revision (`None`: the latest) and start key, or upstream's 400.
pub fn decode_continue(token: &str) -> Result<(Option<Revision>, String), ApiError> {
    use base64::Engine;
    let bad = |why: String| ApiError::BadRequest(format!("invalid continue token: continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => at,
            _ => token.len(),
        };
        bad(format!("illegal base64 data at input byte {at}"))
    })?;
    let v: Value = serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))?;
    match v.get("v").and_then(Value::as_str).unwrap_or_default() {
        "meta.k8s.io/v1" => {}
        other => return Err(bad(format!("server does not recognize this encoded version {other}"))),
    }
    let start = v.get("start").and_then(Value::as_str).unwrap_or_default();
    if start.is_empty() {
        return Err(bad("encoded start key empty (version meta.k8s.io/v1)".into()));
    }
    // Upstream refuses a key that path cleaning would change (`..`, `//`, `./`).
    if start.split('/').any(|seg| seg == "." || seg == "..") || start.contains("//") {
        return Err(bad(start.to_string()));
    }
    match v.get("rv").and_then(Value::as_i64) {
        Some(-1) => Ok((None, start.to_string())),
        Some(rv) if rv > 0 => Ok((Some(rv as Revision), start.to_string())),
        _ => Err(bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into())),
    }
}

/// Where a list reads, from its resourceVersion, resourceVersionMatch, limit and continue (the
/// combinations upstream forbids were refused when the query was parsed).
pub fn list_revision(q: &Query) -> Result<(ListAt, Option<String>), ApiError> {
    let rv = q.resource_version.as_deref();
    if let Some(token) = &q.continue_token {
        let (revision, start) = decode_continue(token)?;
        if rv.is_some_and(|rv| rv != "0") {
            return Err(ApiError::BadRequest("specifying resource version is not allowed when using continue".into()));
        }
        return Ok((revision.map_or(ListAt::Latest, ListAt::Exact), Some(start)));
    }
    let at = match rv {
        None | Some("0") => ListAt::Latest,
        Some(rv) => {
            let n = registry::parse_resource_version(rv)?;
            match q.resource_version_match.as_deref() {
                Some("Exact") => ListAt::Exact(n),
                // A limit without a match asks for that exact revision (the legacy paging rule).
                None if q.limit.is_some() => ListAt::Exact(n),
                _ => ListAt::NotOlderThan(n),
            }
        }
    };
    Ok((at, None))
}

/// The revision a list reads at.
#[derive(Debug)]
pub enum ListAt {
    Latest,
    /// The latest, once the store has reached this revision.
    NotOlderThan(Revision),
    Exact(Revision),
}

/// Serve a LIST: errors found before the first object (bad options, an expired or future
/// revision) are a Status; after that the body streams.
pub async fn serve(
    reg: &Registry,
    kind: &'static dyn Kind,
    ns: Option<&str>,
    q: &Query,
    output: Output,
) -> Result<Response, ApiError> {
    let (at, start) = list_revision(q)?;
    let revision = match at {
        ListAt::Latest => None,
        ListAt::NotOlderThan(n) => {
            reg.wait_for_revision(n).await?;
            None
        }
        ListAt::Exact(n) => {
            reg.wait_for_revision(n).await?;
            Some(n)
        }
    };
    let limit = q.limit.unwrap_or(0);
    let chunk =
        move |taken: usize, per_chunk: usize| if limit == 0 { per_chunk } else { (limit - taken).min(per_chunk) };
    let req = ListRequest {
        kind,
        namespace: ns,
        labels: &q.labels,
        fields: &q.fields,
        revision,
        start: start.as_deref(),
        limit: chunk(0, FIRST_CHUNK),
    };
    let mut encoder = Encoder { kind, output, include: q.include_object, now: Timestamp::now(), written: 0 };
    let mut out = encoder.opening();
    let first = match reg.visit_page(&req, |obj| encoder.item(&mut out, obj)).await {
        Err(ApiError::Expired(_)) if q.continue_token.is_some() => {
            // Upstream's answer: a token that continues at the latest revision instead.
            let continue_token = encode_continue(-1, start.as_deref().unwrap_or_default());
            return Err(ApiError::ContinueExpired { continue_token });
        }
        other => other?,
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let (reg, ns) = (reg.clone(), ns.map(String::from));
    let (labels, fields) = (q.labels.clone(), q.fields.clone());
    tokio::spawn(async move {
        let mut per_chunk = chunk_for(&first, out.len());
        let revision = first.revision;
        let mut taken = first.matched;
        let mut next = first.next_start;
        if tx.send(Ok(Bytes::from(out))).await.is_err() {
            return;
        }
        // The later pages of this response, at the first one's revision.
        while limit == 0 || taken < limit {
            let Some(start) = next.take() else { break };
            let req = ListRequest {
                kind,
                namespace: ns.as_deref(),
                labels: &labels,
                fields: &fields,
                revision: Some(revision),
                start: Some(&start),
                limit: chunk(taken, per_chunk),
            };
            let mut out = Vec::new();
            let page = match reg.visit_page(&req, |obj| encoder.item(&mut out, obj)).await {
                Ok(p) => p,
                Err(e) => {
                    // Too late for a Status: the client sees the body cut short.
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            taken += page.matched;
            per_chunk = chunk_for(&page, out.len());
            next = page.next_start;
            if tx.send(Ok(Bytes::from(out))).await.is_err() {
                return;
            }
        }
        let mut meta = Map::new();
        meta.insert("resourceVersion".into(), json!(revision.to_string()));
        if let Some(start) = next {
            meta.insert("continue".into(), json!(encode_continue(revision as i64, &start)));
        }
        let _ = tx.send(Ok(encoder.end(meta))).await;
    });
    let body = Body::from_stream(ReceiverStream::new(rx));
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Objects per chunk after `page`, which read its objects and encoded `encoded` bytes: as many
/// as fit in [`CHUNK_BYTES`] at that page's size per object (stored or encoded, the larger).
fn chunk_for(page: &registry::PageEnd, encoded: usize) -> usize {
    let each = page.read_bytes.max(encoded) / page.read.max(1);
    registry::objects_within(CHUNK_BYTES, each, CHUNK)
}

/// Writes a list response in pieces: the opening with the kind (and a Table's columns), the
/// items, then the list metadata last (JSON objects are unordered, and only the end of the
/// list knows its continue token).
struct Encoder {
    kind: &'static dyn Kind,
    output: Output,
    include: table::IncludeObject,
    now: Timestamp,
    /// Items written so far.
    written: usize,
}

impl Encoder {
    /// The opening: the kind (and a Table's columns), up to the items array's bracket.
    fn opening(&self) -> Vec<u8> {
        let (head, items) = match self.output {
            Output::Object => (
                json!({"kind": format!("{}List", self.kind.info().kind), "apiVersion": self.kind.info().api_version()}),
                "items",
            ),
            Output::Metadata(api_version) => {
                (json!({"kind": "PartialObjectMetadataList", "apiVersion": api_version}), "items")
            }
            Output::Table(api_version) => {
                let columns: Vec<Value> = self.kind.columns().iter().map(|c| c.to_json()).collect();
                (json!({"kind": "Table", "apiVersion": api_version, "columnDefinitions": columns}), "rows")
            }
        };
        let mut out = serde_json::to_vec(&head).unwrap_or_default();
        // The opening object without its closing brace, then the items array.
        out.pop();
        out.extend_from_slice(format!(",\"{items}\":[").as_bytes());
        out
    }

    /// Append one object, as the output asks for it.
    fn item(&mut self, out: &mut Vec<u8>, mut obj: Value) -> Result<(), ApiError> {
        if self.written > 0 {
            out.push(b',');
        }
        self.written += 1;
        let written = match self.output {
            Output::Object => {
                if let Some(fields) = obj.as_object_mut() {
                    // Upstream's list items carry kind and apiVersion only at the top.
                    fields.remove("kind");
                    fields.remove("apiVersion");
                }
                serde_json::to_writer(&mut *out, &obj)
            }
            Output::Metadata(api_version) => {
                serde_json::to_writer(&mut *out, &http::partial_metadata(&obj, api_version))
            }
            Output::Table(_) => serde_json::to_writer(&mut *out, &table::row(self.kind, &obj, self.include, self.now)),
        };
        written.map_err(|e| ApiError::Internal(format!("encoding a list item: {e}")))
    }

    /// The end: the items array closed, then the list metadata.
    fn end(&self, meta: Map<String, Value>) -> Bytes {
        let mut out = b"],\"metadata\":".to_vec();
        let _ = serde_json::to_writer(&mut out, &meta);
        out.push(b'}');
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_a_hundred_objects_or_about_256_kib_of_large_ones() {
        let page =
            |read, read_bytes| registry::PageEnd { revision: 1, next_start: None, matched: read, read, read_bytes };
        assert_eq!(chunk_for(&page(100, 100 * 1024), 100 * 1500), CHUNK, "small pods");
        assert_eq!(chunk_for(&page(100, 100 * 65536), 100 * 70000), 3, "64 KiB objects, 68 KiB encoded");
        assert_eq!(chunk_for(&page(100, 100 * 65536), 100 * 200), 4, "a Table: the stored size counts");
        assert_eq!(chunk_for(&page(1, 3 << 20), 100), 1, "never less than one");
        assert_eq!(chunk_for(&page(0, 0), 20), CHUNK, "an empty page");
    }

    #[test]
    fn continue_tokens_round_trip_and_bad_ones_get_upstream_errors() {
        let token = encode_continue(42, "default/web\0");
        assert_eq!(decode_continue(&token).expect("decode"), (Some(42), "default/web\0".to_string()));
        assert_eq!(decode_continue(&encode_continue(-1, "a\0")).expect("latest"), (None, "a\0".to_string()));
        let forged = |v: Value| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        for (token, why) in [
            ("!!!".to_string(), "illegal base64 data at input byte 0"),
            (forged(json!("x")), "continue key is not valid"),
            (forged(json!({"v": "v2", "rv": 1, "start": "a"})), "does not recognize this encoded version v2"),
            (forged(json!({"v": "meta.k8s.io/v1", "rv": 1, "start": ""})), "encoded start key empty"),
            (forged(json!({"v": "meta.k8s.io/v1", "rv": 0, "start": "a"})), "incorrect encoded start resourceVersion"),
            (forged(json!({"v": "meta.k8s.io/v1", "rv": 3, "start": "../x"})), "not valid: ../x"),
        ] {
            match decode_continue(&token) {
                Err(ApiError::BadRequest(m)) => {
                    assert!(m.starts_with("invalid continue token: continue key is not valid: "), "{m}");
                    assert!(m.contains(why), "{m}");
                }
                other => panic!("{token}: {other:?}"),
            }
        }
    }

    #[test]
    fn list_revisions_follow_upstream_semantics() {
        let at = |query: &str| list_revision(&Query::parse(Some(query)).expect("query")).map(|(at, _)| at);
        assert!(matches!(at(""), Ok(ListAt::Latest)));
        assert!(matches!(at("resourceVersion=0&limit=5"), Ok(ListAt::Latest)));
        assert!(matches!(at("resourceVersion=7"), Ok(ListAt::NotOlderThan(7))));
        assert!(matches!(at("resourceVersion=7&limit=5"), Ok(ListAt::Exact(7))), "the legacy paging rule");
        assert!(matches!(at("resourceVersion=7&resourceVersionMatch=Exact"), Ok(ListAt::Exact(7))));
        let token = encode_continue(9, "b\0");
        assert!(matches!(at(&format!("continue={token}")), Ok(ListAt::Exact(9))));
        match at(&format!("continue={token}&resourceVersion=3")) {
            Err(ApiError::BadRequest(m)) => {
                assert_eq!(m, "specifying resource version is not allowed when using continue")
            }
            other => panic!("{:?}", other.is_ok()),
        }
        match at("resourceVersion=abc") {
            Err(ApiError::BadRequest(m)) => assert_eq!(
                m,
                "invalid resource version: resourceVersion: Invalid value: \"abc\": strconv.ParseUint: parsing \"abc\": invalid syntax"
            ),
            other => panic!("{:?}", other.is_ok()),
        }
        assert!(
            matches!(at("resourceVersion=99999999999999999999"), Err(ApiError::BadRequest(m)) if m.ends_with("value out of range"))
        );
    }

    #[test]
    fn streamed_lists_are_one_json_document_in_every_output() {
        let kind = skiff_core::kinds::PODS;
        let pod = |n: &str| {
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": n, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x"}]}})
        };
        for output in [Output::Object, Output::Metadata("meta.k8s.io/v1"), Output::Table("meta.k8s.io/v1")] {
            let mut e =
                Encoder { kind, output, include: table::IncludeObject::Metadata, now: Timestamp::now(), written: 0 };
            // The opening (as when the first page matched nothing), then items in two pieces.
            let mut body = e.opening();
            let mut piece = Vec::new();
            e.item(&mut piece, pod("a")).expect("a");
            e.item(&mut piece, pod("b")).expect("b");
            body.extend_from_slice(&piece);
            let mut piece = Vec::new();
            e.item(&mut piece, pod("c")).expect("c");
            body.extend_from_slice(&piece);
            let mut meta = Map::new();
            meta.insert("resourceVersion".into(), json!("7"));
            body.extend_from_slice(&e.end(meta));
            let doc: Value =
                serde_json::from_slice(&body).unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&body)));
            let key = if matches!(output, Output::Table(_)) { "rows" } else { "items" };
            assert_eq!(doc[key].as_array().map(Vec::len), Some(3), "{doc}");
            assert_eq!(doc["metadata"]["resourceVersion"], "7");
            if matches!(output, Output::Object) {
                assert_eq!((doc["kind"].as_str(), doc["items"][0].get("kind")), (Some("PodList"), None));
            }
        }
    }
}
