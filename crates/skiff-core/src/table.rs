//! Server-side printing: `Table` objects (meta.k8s.io/v1) for any served kind.

use crate::kinds::Kind;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// What each row's `object` carries, from the `includeObject` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s {
            None | Some("") | Some("Metadata") => Some(IncludeObject::Metadata),
            Some("None") => Some(IncludeObject::None),
            Some("Object") => Some(IncludeObject::Object),
            Some(_) => None,
        }
    }
}

/// One row of a Table: the kind's cells for `obj`, with the object as `include` asks.
pub fn row(kind: &dyn Kind, obj: &Value, include: IncludeObject, now: Timestamp) -> Value {
    let mut row = json!({"cells": kind.cells(obj, now)});
    let object = match include {
        IncludeObject::None => None,
        IncludeObject::Object => Some(obj.clone()),
        IncludeObject::Metadata => Some(json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
        })),
    };
    if let Some(o) = object {
        row["object"] = o;
    }
    if kind.info().kind == "Pod" {
        match obj.pointer("/status/phase").and_then(Value::as_str) {
            Some("Succeeded") => {
                row["conditions"] = json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
            }
            Some("Failed") => {
                row["conditions"] =
                    json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}])
            }
            _ => {}
        }
    }
    row
}

/// A Table of `objects`. `list_meta` is the list's metadata (resourceVersion, continue); with
/// `headers == false` the column definitions are left out (watch events after the first).
pub fn table(
    kind: &dyn Kind,
    objects: &[Value],
    list_meta: Map<String, Value>,
    include: IncludeObject,
    headers: bool,
    now: Timestamp,
) -> Value {
    let columns: Vec<Value> = if headers { kind.columns().iter().map(|c| c.to_json()).collect() } else { vec![] };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": objects.iter().map(|o| row(kind, o, include, now)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::PODS;

    #[test]
    fn pod_table_has_upstream_columns_and_object() {
        let kind = PODS;
        let pod = json!({"metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}, "status": {"phase": "Pending"}});
        let t =
            table(kind, &[pod], Map::new(), IncludeObject::Metadata, true, "2026-01-01T00:00:14Z".parse().expect("ts"));
        let names: Vec<&str> =
            t["columnDefinitions"].as_array().expect("cols").iter().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(
            names,
            ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]
        );
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web", "0/1", "Pending", "0", "14s", "<none>", "<none>", "<none>", "<none>"])
        );
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "default");
    }
}
