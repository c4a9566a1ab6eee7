//! HTTP plumbing shared by the handlers: content negotiation, body decoding, Status responses.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use skiff_core::ApiError;

/// Upstream's limit on request bodies.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// A handler error: rendered as a `Status` object.
pub struct Failure(pub ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.0.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let status = self.0.to_status();
        let retry = status.pointer("/details/retryAfterSeconds").and_then(Value::as_u64);
        let mut resp = json(code, &status, &[]);
        if let Some(seconds) = retry {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        resp
    }
}

/// A JSON response with optional `Warning` headers.
pub fn json(code: StatusCode, body: &Value, warnings: &[String]) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

/// How the client wants objects: as they are, or as a meta.k8s.io Table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Object,
    Table(&'static str),
    /// `PartialObjectMetadata` (lists: `PartialObjectMetadataList`), for metadata-only clients.
    Metadata(&'static str),
}

/// The `PartialObjectMetadata` form of an object.
pub fn partial_metadata(obj: &Value, api_version: &str) -> Value {
    serde_json::json!({"kind": "PartialObjectMetadata", "apiVersion": api_version,
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({}))})
}

/// Read the Accept header the way the apiserver negotiates it (first acceptable entry wins).
pub fn negotiate(headers: &HeaderMap) -> Result<Output, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(Output::Object);
    }
    for entry in accept.split(',') {
        let params: Vec<String> = entry.split(';').map(|p| p.trim().replace(' ', "")).collect();
        let media = params.first().map(String::as_str).unwrap_or("");
        let has = |p: &str| params.iter().any(|x| x == p);
        if !matches!(media, "application/json" | "*/*" | "application/*") {
            continue;
        }
        if (has("as=PartialObjectMetadata") || has("as=PartialObjectMetadataList")) && has("g=meta.k8s.io") {
            if has("v=v1") {
                return Ok(Output::Metadata("meta.k8s.io/v1"));
            }
            if has("v=v1beta1") {
                return Ok(Output::Metadata("meta.k8s.io/v1beta1"));
            }
            continue;
        }
        if has("as=Table") && has("g=meta.k8s.io") {
            if has("v=v1") {
                return Ok(Output::Table("meta.k8s.io/v1"));
            }
            if has("v=v1beta1") {
                return Ok(Output::Table("meta.k8s.io/v1beta1"));
            }
            continue;
        }
        if params.iter().any(|p| p.starts_with("as=")) {
            continue;
        }
        return Ok(Output::Object);
    }
    Err(ApiError::NotAcceptable(format!(
        "only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io (got {accept:?})"
    )))
}

/// `body`, keeping `guard` alive until the body has been sent (or dropped): what a request
/// holds (an in-flight seat, a connection's activity count) lasts as long as its response.
pub fn hold_until_sent<G: Send + Unpin + 'static>(body: Body, guard: G) -> Body {
    Body::new(Holding { body, _guard: guard })
}

struct Holding<G> {
    body: Body,
    _guard: G,
}

impl<G: Unpin> http_body::Body for Holding<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Beyond this, an oversized body is not even drained: the connection is dropped.
const MAX_DRAIN: usize = 64 * 1024 * 1024;

/// A request announcing a body over [`MAX_BODY`] that the client has not started to send: over
/// HTTP/2, or over HTTP/1.1 waiting for `100 Continue` (as curl does for large bodies). Refused
/// from its Content-Length; nothing of the body is ever read.
pub fn refuse_oversized(req: &axum::extract::Request) -> Result<(), ApiError> {
    let length = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let waits = req.version() == axum::http::Version::HTTP_2
        || req.headers().get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if waits && length.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ApiError::RequestEntityTooLarge(format!("Request entity too large: limit is {MAX_BODY}")));
    }
    Ok(())
}

/// Read a body of at most [`MAX_BODY`] bytes. An oversized one is read to its end (up to
/// [`MAX_DRAIN`]) before the 413 goes out, so HTTP/1.1 clients see the answer, not a reset.
pub async fn read_body(mut body: Body) -> Result<Bytes, ApiError> {
    // A Content-Length past what is worth draining is refused before anything is read (an
    // HTTP/1.1 client still writing its body may see a reset rather than the answer).
    if http_body::Body::size_hint(&body).lower() > MAX_DRAIN as u64 {
        return Err(ApiError::RequestEntityTooLarge(format!("Request entity too large: limit is {MAX_BODY}")));
    }
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::BadRequest(format!("reading request body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        total += data.len();
        if total <= MAX_BODY {
            buf.extend_from_slice(&data);
        } else if total > MAX_DRAIN {
            break;
        }
    }
    if total > MAX_BODY {
        return Err(ApiError::RequestEntityTooLarge(format!("Request entity too large: limit is {MAX_BODY}")));
    }
    Ok(Bytes::from(buf))
}

/// Parse a JSON, YAML or Kubernetes protobuf body into a value.
pub fn parse_body(bytes: &[u8], content_type: &str, yaml_ok: bool) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    let base = content_type.split(';').next().unwrap_or("").trim();
    let is_yaml = base.ends_with("yaml");
    if base == "application/vnd.kubernetes.protobuf" {
        return crate::protobuf::decode(bytes);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => Ok(v),
        Err(e) if !(is_yaml || yaml_ok) => Err(ApiError::BadRequest(format!("error decoding JSON body: {e}"))),
        Err(_) => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| ApiError::BadRequest("error decoding YAML body: not UTF-8".into()))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::BadRequest(format!("error decoding YAML body: {e}")))
        }
    }
}

/// An object body (POST, PUT) in one of the media types upstream decodes objects from; any other
/// is 415 before the bytes are looked at.
pub fn object_body(bytes: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let base = content_type.split(';').next().unwrap_or("").trim();
    if !matches!(base, "application/json" | "application/yaml" | "application/vnd.kubernetes.protobuf") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {base:?})"
        )));
    }
    parse_body(bytes, content_type, false)
}

/// The fields a JSON body names twice in one object (`metadata.name`, `spec.containers[0].image`),
/// which `serde_json` would silently settle for the last: strict decoding refuses them, as
/// upstream's. Other media types: none found.
pub fn duplicate_fields(bytes: &[u8], content_type: &str) -> Vec<String> {
    let base = content_type.split(';').next().unwrap_or("").trim();
    if base != "application/json" {
        return vec![];
    }
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    // A body that does not parse fails on its own path with its own error.
    let _ =
        serde::de::DeserializeSeed::deserialize(duplicates::Walk { path: String::new(), found: &mut found }, &mut de);
    found
}

mod duplicates {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::collections::HashSet;
    use std::fmt;

    /// Visits a JSON value, noting repeated keys with their paths.
    pub struct Walk<'a> {
        pub path: String,
        pub found: &'a mut Vec<String>,
    }

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
                if !seen.insert(key) {
                    self.found.push(path.clone());
                }
                map.next_value_seed(Walk { path, found: self.found })?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            while seq.next_element_seed(Walk { path: format!("{}[{i}]", self.path), found: self.found })?.is_some() {
                i += 1;
            }
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_none<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
}

pub fn content_type(headers: &HeaderMap) -> &str {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> Result<Output, ApiError> {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
        negotiate(&h)
    }

    #[test]
    fn negotiates_kubectl_accept_headers() {
        let get = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(accept(get).ok(), Some(Output::Table("meta.k8s.io/v1")));
        assert_eq!(accept("application/json, */*").ok(), Some(Output::Object));
        let meta = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
        assert_eq!(accept(meta).ok(), Some(Output::Metadata("meta.k8s.io/v1")));
        assert_eq!(accept("application/vnd.kubernetes.protobuf,application/json").ok(), Some(Output::Object));
        assert!(accept("application/vnd.kubernetes.protobuf").is_err());
    }

    #[test]
    fn parses_json_and_yaml_bodies() {
        assert_eq!(parse_body(b"{\"a\":1}", "application/json", false).ok(), Some(serde_json::json!({"a": 1})));
        assert_eq!(parse_body(b"a: 1\n", "application/yaml", false).ok(), Some(serde_json::json!({"a": 1})));
        assert!(matches!(parse_body(b"{", "application/json", false), Err(ApiError::BadRequest(_))));
        let xml = object_body(b"<pod/>", "application/xml");
        assert!(matches!(xml, Err(ApiError::UnsupportedMediaType(_))), "{xml:?}");
        assert!(matches!(object_body(b"{}", "text/plain"), Err(ApiError::UnsupportedMediaType(_))));
        assert!(object_body(b"{}", "application/json; charset=utf-8").is_ok());
        let body =
            br#"{"metadata": {"name": "a", "name": "b"}, "spec": {"containers": [{"image": "x", "image": "y"}]}}"#;
        assert_eq!(duplicate_fields(body, "application/json"), ["metadata.name", "spec.containers[0].image"]);
        assert!(duplicate_fields(br#"{"a": 1, "b": {"a": 2}}"#, "application/json").is_empty());
        assert!(matches!(parse_body(b"x", "application/vnd.kubernetes.protobuf", false), Err(ApiError::BadRequest(_))));
    }
}
