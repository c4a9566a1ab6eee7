//! WATCH: newline-delimited JSON events with Kubernetes' resourceVersion semantics, selector
//! transitions (an object leaving the selection is DELETED, entering it is ADDED), bookmarks,
//! timeouts, and Table rendering of each event when asked.

use crate::http::Output;
use crate::registry::{self, Registry};
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use jiff::Timestamp;
use serde_json::{Map, Value, json};
use skiff_core::ApiError;
use skiff_core::kinds::Kind;
use skiff_core::selector::{FieldSelector, LabelSelector};
use skiff_core::table::{self, IncludeObject};
use skiff_store::{EventType, KeyValue, Revision, StoreError, WatchItem};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

pub struct WatchRequest {
    pub kind: &'static dyn Kind,
    pub namespace: Option<String>,
    pub resource_version: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub timeout: Option<Duration>,
    pub bookmarks: bool,
    /// `sendInitialEvents`: true sends the current state whatever the resourceVersion, then a
    /// bookmark annotated `k8s.io/initial-events-end`; false sends no current state at all.
    pub send_initial_events: Option<bool>,
    pub output: Output,
    pub include: IncludeObject,
    pub bookmark_interval: Duration,
}

fn expired(requested: Revision, oldest: Revision) -> Value {
    ApiError::Expired(format!("too old resource version: {requested} ({oldest})")).to_status()
}

/// Serves one watch; the response streams until timeout, shutdown or client disconnect.
pub async fn serve(reg: &Registry, w: WatchRequest, shutdown: watch::Receiver<bool>) -> Result<Response, ApiError> {
    let store = reg.store().clone();
    let prefix = crate::registry::key_prefix(w.kind, w.namespace.as_deref());
    // Unset or "0" (or sendInitialEvents): start with the current state as synthetic ADDED events.
    let (initial, start) = match (w.send_initial_events, w.resource_version.as_deref()) {
        (Some(true), _) | (None, None | Some("0")) => {
            reg.list(w.kind, w.namespace.as_deref(), &w.labels, &w.fields).await?
        }
        (Some(false), None | Some("0")) => {
            let (_, rev) = reg.list(w.kind, w.namespace.as_deref(), &w.labels, &w.fields).await?;
            (vec![], rev)
        }
        (_, Some(rv)) => {
            let rev = registry::parse_resource_version(rv)?;
            reg.wait_for_revision(rev).await?;
            (vec![], rev)
        }
    };
    // Reject unknown field selectors up front (list does the same).
    registry::matches(w.kind, &json!({}), &LabelSelector::default(), &w.fields)?;

    // Few lines buffered: a client that does not read holds the watch where it is (the store
    // keeps its place), not a growing queue of encoded objects.
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let stream = match store.watch(&prefix, start).await {
        Ok(s) => Some(s),
        Err(StoreError::Compacted { requested, compacted }) => {
            let ev = json!({"type": "ERROR", "object": expired(requested, compacted)});
            let _ = tx.send(Ok(line(&ev))).await;
            None
        }
        Err(e) => return Err(ApiError::Internal(e.to_string())),
    };
    if let Some(stream) = stream {
        let timeout = w.timeout.unwrap_or_else(|| Duration::from_secs(1800 + rand::random_range(0..1800)));
        tokio::spawn(pump(w, initial, start, stream, tx, timeout, shutdown));
    }
    let body = Body::from_stream(ReceiverStream::new(rx));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-cache, private")],
        body,
    )
        .into_response())
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

struct Encoder {
    output: Output,
    include: IncludeObject,
    kind: &'static dyn Kind,
    headers_sent: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, obj: Value) -> Bytes {
        let object = match self.output {
            Output::Object => obj,
            Output::Metadata(api_version) => crate::http::partial_metadata(&obj, api_version),
            Output::Table(api_version) => {
                let mut t =
                    table::table(self.kind, &[obj], Map::new(), self.include, !self.headers_sent, Timestamp::now());
                t["apiVersion"] = json!(api_version);
                self.headers_sent = true;
                t
            }
        };
        line(&json!({"type": kind, "object": object}))
    }
}

fn decode_at(kind: &dyn Kind, kv: &KeyValue) -> Option<Value> {
    registry::decode(kind, kv).ok()
}

async fn pump(
    w: WatchRequest,
    initial: Vec<Value>,
    start: Revision,
    mut stream: skiff_store::WatchStream,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut enc = Encoder { output: w.output, include: w.include, kind: w.kind, headers_sent: false };
    for obj in initial {
        if tx.send(Ok(enc.event("ADDED", obj))).await.is_err() {
            return;
        }
    }
    if w.send_initial_events == Some(true) {
        let obj = json!({"kind": w.kind.info().kind, "apiVersion": w.kind.info().api_version(), "metadata": {"resourceVersion": start.to_string(),
            "annotations": {"k8s.io/initial-events-end": "true"}}});
        if tx.send(Ok(line(&json!({"type": "BOOKMARK", "object": obj})))).await.is_err() {
            return;
        }
    }
    let matches = |obj: &Value| registry::matches(w.kind, obj, &w.labels, &w.fields).unwrap_or(false);
    let mut last = start;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let every = w.bookmark_interval.max(Duration::from_millis(100));
    let mut bookmark = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        let next = tokio::select! {
            _ = &mut deadline => return,
            _ = shutdown.changed() => return,
            _ = bookmark.tick(), if w.bookmarks => {
                let obj = json!({"kind": w.kind.info().kind, "apiVersion": w.kind.info().api_version(), "metadata": {"resourceVersion": last.to_string()}});
                let ev = line(&json!({"type": "BOOKMARK", "object": obj}));
                if tx.send(Ok(ev)).await.is_err() { return; }
                continue;
            }
            n = stream.next() => n,
        };
        let event = match next {
            None => return,
            Some(Err(StoreError::Compacted { requested, compacted })) => {
                // Fell behind what the store keeps: the client lists again.
                let _ = tx.send(Ok(line(&json!({"type": "ERROR", "object": expired(requested, compacted)})))).await;
                return;
            }
            Some(Err(e)) => {
                let status = ApiError::Internal(e.to_string()).to_status();
                let _ = tx.send(Ok(line(&json!({"type": "ERROR", "object": status})))).await;
                return;
            }
            Some(Ok(WatchItem::Progress(revision))) => {
                // Everything up to here is delivered: what the next bookmark says.
                last = revision;
                continue;
            }
            Some(Ok(WatchItem::Event(e))) => e,
        };
        last = event.revision();
        let Some(obj) = decode_at(w.kind, &event.kv) else {
            continue;
        };
        let now_matches = matches(&obj);
        let was_matching = event.prev.as_ref().and_then(|p| decode_at(w.kind, p)).is_some_and(|p| matches(&p));
        let kind = match (event.kind, was_matching, now_matches) {
            (EventType::Created, _, true) => "ADDED",
            (EventType::Updated, true, true) => "MODIFIED",
            (EventType::Updated, false, true) => "ADDED",
            (EventType::Updated, true, false) => "DELETED",
            (EventType::Deleted, _, true) => "DELETED",
            _ => continue,
        };
        if tx.send(Ok(enc.event(kind, obj))).await.is_err() {
            return;
        }
    }
}
