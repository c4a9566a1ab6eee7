//! Services, served for reading only until skiff routes them: `kubectl get services` and
//! `kubectl cluster-info` (which lists them) answer truthfully, and a create is refused with a
//! clear 405 instead of storing a Service that no proxy would ever serve.

use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, READ_VERBS, ResourceInfo, TypedSchema, roundtrip, schema_of,
    typed,
};
use crate::field::ErrorList;
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

pub struct Services;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    plural: "services",
    singular: "service",
    kind: "Service",
    namespaced: true,
    short_names: &["svc"],
    categories: &["all"],
    verbs: READ_VERBS,
    subresources: &[],
};

static COLUMNS: [Column; 7] = [
    NAME_COLUMN,
    Column::new("Type", 0, "The type of the service."),
    Column::new("Cluster-IP", 0, "The cluster IP of the service."),
    Column::new("External-IP", 0, "The external IP of the service."),
    Column::new("Port(s)", 0, "The ports of the service."),
    AGE_COLUMN,
    Column::new("Selector", 1, "The selector of the service."),
];

impl Kind for Services {
    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<Service>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<Service>(raw)
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        meta::validate(obj, true, false)
    }
    fn columns(&self) -> &'static [Column] {
        &COLUMNS
    }
    /// Upstream's `printService`.
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let svc: Service = typed(obj);
        let spec = svc.spec.unwrap_or_default();
        let none = || "<none>".to_string();
        let kind = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
        let cluster_ip = spec.cluster_ip.clone().filter(|s| !s.is_empty()).unwrap_or_else(none);
        let external = match kind.as_str() {
            "ExternalName" => spec.external_name.clone().unwrap_or_else(none),
            "LoadBalancer" => {
                let ingress = svc.status.and_then(|s| s.load_balancer).and_then(|l| l.ingress).unwrap_or_default();
                let ips: Vec<String> = ingress.iter().filter_map(|i| i.ip.clone().or(i.hostname.clone())).collect();
                if ips.is_empty() { "<pending>".into() } else { ips.join(",") }
            }
            _ => spec.external_ips.clone().filter(|e| !e.is_empty()).map(|e| e.join(",")).unwrap_or_else(none),
        };
        let ports: Vec<String> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| {
                let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
                match p.node_port {
                    Some(n) => format!("{}:{n}/{proto}", p.port),
                    None => format!("{}/{proto}", p.port),
                }
            })
            .collect();
        let selector: Vec<String> = spec.selector.iter().flatten().map(|(k, v)| format!("{k}={v}")).collect();
        vec![
            json!(meta::name(obj)),
            json!(kind),
            json!(cluster_ip),
            json!(external),
            json!(if ports.is_empty() { none() } else { ports.join(",") }),
            json!(meta::age(obj, now)),
            json!(if selector.is_empty() { none() } else { selector.join(",") }),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_row_as_upstream_prints_it() {
        let obj = json!({"metadata": {"name": "kube-dns", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"clusterIP": "10.43.0.10", "selector": {"k8s-app": "kube-dns"},
                "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}});
        let row = Services.cells(&obj, "2026-01-01T00:05:00Z".parse().expect("ts"));
        assert_eq!(
            row,
            [
                json!("kube-dns"),
                json!("ClusterIP"),
                json!("10.43.0.10"),
                json!("<none>"),
                json!("53/UDP,53/TCP"),
                json!("5m"),
                json!("k8s-app=kube-dns")
            ]
        );
        assert_eq!(Services.info().verbs, ["get", "list", "watch"]);
    }
}
