//! `metrics.k8s.io/v1beta1`: NodeMetrics and PodMetrics, as metrics-server serves them, read
//! from the nodes themselves (`NodeLink::usage`: their pods' cgroups), so `kubectl top node` and
//! `kubectl top pod [--containers] [-l ...]` work with no add-on. Read-only, not stored: the
//! group is listed in discovery beside the stored kinds' groups.

use crate::AppState;
use crate::http::Failure;
use crate::query::Query;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use skiff_core::ApiError;
use skiff_core::kinds::{NODES, PODS};
use skiff_core::selector::{FieldSelector, LabelSelector};
use skiff_nodeapi::{NodeUsage, Usage};
use std::collections::HashMap;
use std::sync::Arc;

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";

/// The group's resources: (plural, singular, kind, namespaced).
const RESOURCES: [(&str, &str, &str, bool); 2] =
    [("nodes", "", "NodeMetrics", false), ("pods", "", "PodMetrics", true)];

/// `/apis/metrics.k8s.io/v1beta1`.
pub fn resource_list() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(plural, singular, kind, namespaced)| {
            json!({"name": plural, "singularName": singular, "namespaced": namespaced, "kind": kind, "verbs": ["get", "list"]})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{GROUP}/{VERSION}"), "resources": resources})
}

/// The group in an aggregated discovery document.
pub fn aggregated() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(plural, singular, kind, namespaced)| {
            json!({"resource": plural, "responseKind": {"group": GROUP, "version": VERSION, "kind": kind},
                "scope": if *namespaced { "Namespaced" } else { "Cluster" }, "singularResource": singular,
                "verbs": ["get", "list"]})
        })
        .collect();
    json!({"metadata": {"name": GROUP, "creationTimestamp": null},
        "versions": [{"version": VERSION, "resources": resources, "freshness": "Current"}]})
}

/// `GET /apis/metrics.k8s.io/v1beta1/...`.
pub async fn handle(State(state): State<Arc<AppState>>, Path(rest): Path<String>, RawQuery(raw): RawQuery) -> Response {
    match serve(&state, &rest, raw.as_deref()).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => Failure(e).into_response(),
    }
}

async fn serve(state: &AppState, rest: &str, raw: Option<&str>) -> Result<Value, ApiError> {
    let query = Query::parse(raw)?;
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["nodes"] => Ok(list("NodeMetricsList", nodes(state, None, &query.labels).await?)),
        ["nodes", name] => one(nodes(state, Some(name), &query.labels).await?, "nodemetrics", name),
        ["pods"] => Ok(list("PodMetricsList", pods(state, None, None, &query.labels).await?)),
        ["namespaces", ns, "pods"] => Ok(list("PodMetricsList", pods(state, Some(ns), None, &query.labels).await?)),
        ["namespaces", ns, "pods", name] => {
            one(pods(state, Some(ns), Some(name), &query.labels).await?, "podmetrics", name)
        }
        _ => Err(ApiError::NoResource),
    }
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": format!("{GROUP}/{VERSION}"), "metadata": {}, "items": items})
}

fn one(mut items: Vec<Value>, resource: &str, name: &str) -> Result<Value, ApiError> {
    items.pop().ok_or_else(|| ApiError::NotFound { group: GROUP.into(), resource: resource.into(), name: name.into() })
}

/// CPU in nanocores and memory in KiB, as metrics-server writes quantities.
fn usage(u: &Usage) -> Value {
    json!({"cpu": format!("{}n", u.cpu_nanocores), "memory": format!("{}Ki", u.memory_bytes / 1024)})
}

fn window(u: &NodeUsage) -> String {
    format!("{}s", u.window_seconds.round() as u64)
}

/// The usage of each node (or only `name`) whose agent answers.
async fn usages(state: &AppState, name: Option<&str>) -> Result<Vec<(Value, NodeUsage)>, ApiError> {
    let (nodes, _) = state.registry.list(NODES, None, &LabelSelector::default(), &FieldSelector::default()).await?;
    let mut out = Vec::new();
    for node in nodes {
        let node_name = skiff_core::meta::name(&node).to_string();
        if name.is_some_and(|n| n != node_name) {
            continue;
        }
        let Ok(link) = crate::nodes::for_node(state, &node_name).await else { continue };
        match link.usage(&node_name).await {
            Ok(u) => out.push((node, u)),
            Err(e) => tracing::debug!(node = %node_name, error = %e, "a node's usage"),
        }
    }
    Ok(out)
}

async fn nodes(state: &AppState, name: Option<&str>, labels: &LabelSelector) -> Result<Vec<Value>, ApiError> {
    let mut items = Vec::new();
    for (node, u) in usages(state, name).await? {
        if !labels.matches(&string_map(&node["metadata"]["labels"])) {
            continue;
        }
        items.push(json!({"metadata": {"name": node["metadata"]["name"], "labels": node["metadata"]["labels"],
            "creationTimestamp": u.timestamp.to_string()},
            "timestamp": u.timestamp.to_string(), "window": window(&u), "usage": usage(&u.node)}));
    }
    Ok(items)
}

async fn pods(
    state: &AppState,
    namespace: Option<&str>,
    name: Option<&str>,
    labels: &LabelSelector,
) -> Result<Vec<Value>, ApiError> {
    let (pods, _) = state.registry.list(PODS, namespace, labels, &FieldSelector::default()).await?;
    let by_uid: HashMap<&str, &Value> = pods
        .iter()
        .filter(|p| name.is_none_or(|n| skiff_core::meta::name(p) == n))
        .filter_map(|p| Some((p["metadata"]["uid"].as_str()?, p)))
        .collect();
    let mut items = Vec::new();
    for (_, u) in usages(state, None).await? {
        for pod in &u.pods {
            let Some(p) = by_uid.get(pod.uid.as_str()) else { continue };
            let containers: Vec<Value> =
                pod.containers.iter().map(|c| json!({"name": c.name, "usage": usage(&c.usage)})).collect();
            let md = &p["metadata"];
            items.push(json!({"metadata": {"name": md["name"], "namespace": md["namespace"], "labels": md["labels"],
                "creationTimestamp": u.timestamp.to_string()},
                "timestamp": u.timestamp.to_string(), "window": window(&u), "containers": containers}));
        }
    }
    Ok(items)
}

fn string_map(v: &Value) -> std::collections::BTreeMap<String, String> {
    v.as_object()
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}
