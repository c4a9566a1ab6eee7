//! Nodes.

use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of, typed,
};
use crate::field::ErrorList;
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct Nodes;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    plural: "nodes",
    singular: "node",
    kind: "Node",
    namespaced: false,
    short_names: &["no"],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[("status", "Node", &["get", "patch", "update"]), ("proxy", "NodeProxyOptions", &["get"])],
};

static COLUMNS: [Column; 10] = [
    NAME_COLUMN,
    Column::new("Status", 0, "The status of the node"),
    Column::new("Roles", 0, "The roles of the node"),
    AGE_COLUMN,
    Column::new("Version", 0, "Kubelet Version reported by the node."),
    Column::new("Internal-IP", 1, "List of internal IPs."),
    Column::new("External-IP", 1, "List of external IPs."),
    Column::new(
        "OS-Image",
        1,
        "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
    ),
    Column::new(
        "Kernel-Version",
        1,
        "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
    ),
    Column::new(
        "Container-Runtime",
        1,
        "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
    ),
];

impl Kind for Nodes {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<Node>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<Node>(raw)
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        meta::validate(obj, false, false)
    }
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "metadata.name" => Some(meta::name(obj).into()),
            "spec.unschedulable" => {
                Some(obj.pointer("/spec/unschedulable").and_then(Value::as_bool).unwrap_or(false).to_string())
            }
            _ => None,
        }
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let node: Node = typed(obj);
        let status = node.status.unwrap_or_default();
        let ready = status.conditions.iter().flatten().find(|c| c.type_ == "Ready").map(|c| c.status.as_str());
        let mut state = match ready {
            Some("True") => "Ready".to_string(),
            Some("False") => "NotReady".to_string(),
            _ => "Unknown".to_string(),
        };
        if node.spec.and_then(|s| s.unschedulable).unwrap_or(false) {
            state.push_str(",SchedulingDisabled");
        }
        let mut roles: Vec<String> = meta::labels(obj)
            .keys()
            .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/").filter(|r| !r.is_empty()).map(String::from))
            .collect();
        roles.sort();
        let roles = if roles.is_empty() { "<none>".to_string() } else { roles.join(",") };
        let addr = |t: &str| {
            status
                .addresses
                .iter()
                .flatten()
                .find(|a| a.type_ == t)
                .map(|a| a.address.clone())
                .unwrap_or_else(|| "<none>".into())
        };
        let info = status.node_info.unwrap_or_default();
        vec![
            json!(meta::name(obj)),
            json!(state),
            json!(roles),
            json!(meta::age(obj, now)),
            json!(info.kubelet_version),
            json!(addr("InternalIP")),
            json!(addr("ExternalIP")),
            json!(info.os_image),
            json!(info.kernel_version),
            json!(info.container_runtime_version),
        ]
    }
}
