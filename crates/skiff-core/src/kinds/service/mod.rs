//! Services (core/v1): defaulting (`SetDefaults_Service`), validation (`validation`), and what an
//! update carries over from the live object: the cluster IPs and node ports the API server
//! allocated, when the new version leaves them out (upstream's `patchAllocatedValues`). The
//! allocation itself needs the store: it is the API server's (`skiff-apiserver/src/services`).

pub mod validation;

use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, VERBS, keep_status, roundtrip,
    schema_of, typed,
};
use crate::field::ErrorList;
use crate::meta;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ClientIPConfig, Service, ServiceSpec, SessionAffinityConfig};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};

/// `sessionAffinityConfig.clientIP.timeoutSeconds` unless set: three hours.
const CLIENT_IP_TIMEOUT: i32 = 10800;

/// Reachable from outside the cluster: node ports, a load balancer, or external IPs.
pub fn externally_accessible(spec: &ServiceSpec) -> bool {
    matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"))
        || (spec.type_.as_deref() == Some("ClusterIP") && spec.external_ips.as_ref().is_some_and(|e| !e.is_empty()))
}

/// Whether the service gets node ports (NodePort, and LoadBalancer unless told not to).
pub fn wants_node_ports(spec: &ServiceSpec) -> bool {
    match spec.type_.as_deref() {
        Some("NodePort") => true,
        Some("LoadBalancer") => spec.allocate_load_balancer_node_ports != Some(false),
        _ => false,
    }
}

/// Whether the service gets a cluster IP from the service range.
pub fn wants_cluster_ip(spec: &ServiceSpec) -> bool {
    spec.type_.as_deref() != Some("ExternalName") && !validation::is_headless(spec)
}

fn with_service(obj: &mut Value, f: impl FnOnce(&mut Service)) {
    let mut svc: Service = typed(obj);
    f(&mut svc);
    if let Ok(v) = serde_json::to_value(&svc) {
        *obj = v;
    }
}

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
    verbs: VERBS,
    subresources: &[
        ("status", "Service", &["get", "patch", "update"]),
        ("proxy", "ServiceProxyOptions", &["create", "delete", "get", "patch", "update"]),
    ],
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
    /// `SetDefaults_Service`, and `clusterIPs` from `clusterIP` (upstream's strategy).
    fn default(&self, obj: &mut Value) {
        with_service(obj, |svc| {
            let spec = svc.spec.get_or_insert_with(Default::default);
            let affinity = spec.session_affinity.get_or_insert_with(|| "None".into());
            if affinity.is_empty() {
                *affinity = "None".into();
            }
            match spec.session_affinity.as_deref() {
                Some("None") => spec.session_affinity_config = None,
                Some("ClientIP") => {
                    let timeout = (spec.session_affinity_config.as_ref())
                        .and_then(|c| c.client_ip.as_ref())
                        .and_then(|c| c.timeout_seconds);
                    if timeout.is_none() {
                        spec.session_affinity_config = Some(SessionAffinityConfig {
                            client_ip: Some(ClientIPConfig { timeout_seconds: Some(CLIENT_IP_TIMEOUT) }),
                        });
                    }
                }
                _ => {}
            }
            if spec.type_.as_deref().is_none_or(str::is_empty) {
                spec.type_ = Some("ClusterIP".into());
            }
            for p in spec.ports.iter_mut().flatten() {
                if p.protocol.as_deref().is_none_or(str::is_empty) {
                    p.protocol = Some("TCP".into());
                }
                let unset = match &p.target_port {
                    None => true,
                    Some(IntOrString::Int(n)) => *n == 0,
                    Some(IntOrString::String(s)) => s.is_empty(),
                };
                if unset {
                    p.target_port = Some(IntOrString::Int(p.port));
                }
            }
            if externally_accessible(spec) && spec.external_traffic_policy.as_deref().is_none_or(str::is_empty) {
                spec.external_traffic_policy = Some("Cluster".into());
            }
            if spec.internal_traffic_policy.is_none()
                && matches!(spec.type_.as_deref(), Some("ClusterIP" | "NodePort" | "LoadBalancer"))
            {
                spec.internal_traffic_policy = Some("Cluster".into());
            }
            if spec.type_.as_deref() == Some("LoadBalancer") && spec.allocate_load_balancer_node_ports.is_none() {
                spec.allocate_load_balancer_node_ports = Some(true);
            }
        });
    }
    /// A new service has no load balancer yet; `clusterIPs` from `clusterIP` for a client that
    /// only knows the singular field (upstream's `normalizeClusterIPs` on create).
    fn prepare_create(&self, obj: &mut Value) {
        with_service(obj, |svc| {
            let spec = svc.spec.get_or_insert_with(Default::default);
            if let Some(ip) = spec.cluster_ip.clone().filter(|ip| !ip.is_empty())
                && spec.cluster_ips.as_ref().is_none_or(Vec::is_empty)
            {
                spec.cluster_ips = Some(vec![ip]);
            }
        });
        obj["status"] = json!({"loadBalancer": {}});
    }
    /// The status stays; allocated addresses and ports the new version leaves out stay too;
    /// what a new type has no use for goes.
    fn prepare_update(&self, old: &Value, new: &mut Value) {
        keep_status(old, new);
        let old: Service = typed(old);
        let old_spec = old.spec.unwrap_or_default();
        with_service(new, |svc| {
            let spec = svc.spec.get_or_insert_with(Default::default);
            carry_allocated(&old_spec, spec);
        });
    }
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate_with(obj, true, crate::names::dns1035_label);
        errs.extend(validation::validate(&typed(obj)));
        errs
    }
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let mut errs = validation::validate_update(&typed(old), &typed(new));
        errs.extend(self.validate(new));
        errs
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

/// Two lists alike, an absent one as good as an empty one (Go's nil and empty slices).
fn same(a: &Option<Vec<String>>, b: &Option<Vec<String>>) -> bool {
    a.as_deref().unwrap_or_default() == b.as_deref().unwrap_or_default()
}

/// Not ExternalName: a service with a `clusterIP` value (an address, or `None`).
fn needs_cluster_ip(spec: &ServiceSpec) -> bool {
    spec.type_.as_deref() != Some("ExternalName")
}

/// What an update carries over from the stored service, as upstream's storage does before it
/// allocates: `patchAllocatedValues` (what the API server allocated stays when an update, such
/// as a `kubectl replace` or an apply from a file without them, leaves it out),
/// `normalizeClusterIPs` (`clusterIP` and `clusterIPs` kept in step for clients that only know
/// one of them) and the address and port parts of `dropTypeDependentFields`.
fn carry_allocated(old: &ServiceSpec, new: &mut ServiceSpec) {
    let empty = |ip: &Option<String>| ip.as_deref().is_none_or(str::is_empty);
    let none_or_empty = |ips: &Option<Vec<String>>| ips.as_ref().is_none_or(Vec::is_empty);
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        if empty(&new.cluster_ip) {
            new.cluster_ip = old.cluster_ip.clone();
        }
        if none_or_empty(&new.cluster_ips) && !none_or_empty(&old.cluster_ips) {
            new.cluster_ips = old.cluster_ips.clone();
        }
    }
    // An old client's update: the plural field left out, the singular one unchanged.
    if !none_or_empty(&old.cluster_ips) && none_or_empty(&new.cluster_ips) && old.cluster_ip == new.cluster_ip {
        new.cluster_ips = old.cluster_ips.clone();
    }
    if old.cluster_ip != new.cluster_ip && same(&new.cluster_ips, &old.cluster_ips) {
        if !empty(&old.cluster_ip) && empty(&new.cluster_ip) {
            // Cleared by a client that only knows `clusterIP`: clear both.
            new.cluster_ips = None;
        } else {
            // Changed likewise: validation says it may not change.
            new.cluster_ips = new.cluster_ip.clone().map(|ip| vec![ip]);
        }
    }
    // To ExternalName: the addresses and families go (and are released), unless the update
    // names values of its own, which validation refuses.
    if needs_cluster_ip(old) && !needs_cluster_ip(new) {
        if same(&new.cluster_ips, &old.cluster_ips) {
            new.cluster_ip = None;
            new.cluster_ips = None;
        }
        if same(&new.ip_families, &old.ip_families) {
            new.ip_families = None;
        }
        if new.ip_family_policy == old.ip_family_policy {
            new.ip_family_policy = None;
        }
    }
    if wants_node_ports(new) {
        let old_ports = old.ports.clone().unwrap_or_default();
        for p in new.ports.iter_mut().flatten() {
            if p.node_port.is_none_or(|n| n == 0) {
                // The same port (by name, else by number and protocol) keeps its node port.
                p.node_port = old_ports
                    .iter()
                    .find(|o| match (&o.name, &p.name) {
                        (Some(a), Some(b)) if !a.is_empty() => a == b,
                        _ => o.port == p.port && o.protocol == p.protocol,
                    })
                    .and_then(|o| o.node_port);
            }
        }
    }
    // A service no longer reachable from outside drops what only such services have.
    if externally_accessible(old)
        && !externally_accessible(new)
        && new.external_traffic_policy == old.external_traffic_policy
    {
        new.external_traffic_policy = None;
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
    }

    /// As a create leaves it before validation: defaulted and prepared.
    fn defaulted(v: Value) -> Value {
        let mut obj = Services.normalize(&v).expect("decodes");
        Services.default(&mut obj);
        Services.prepare_create(&mut obj);
        obj
    }

    fn messages(obj: &Value) -> Vec<String> {
        Services.validate(obj).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn defaults_as_upstream() {
        let obj = defaulted(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}));
        assert_eq!(
            obj["spec"],
            json!({"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                "selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]})
        );
        let obj = defaulted(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "clusterIP": "10.43.0.9",
                "ports": [{"port": 80, "targetPort": "http"}]}}));
        assert_eq!(obj["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(obj["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(obj["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 10800);
        assert_eq!(obj["spec"]["clusterIPs"], json!(["10.43.0.9"]));
        assert_eq!(obj["spec"]["ports"][0]["targetPort"], "http");
        assert!(messages(&obj).is_empty(), "{:?}", messages(&obj));
    }

    #[test]
    fn validation_speaks_upstreams_words() {
        let obj = defaulted(json!({"metadata": {"name": "1web", "namespace": "default"},
            "spec": {"ports": [{"port": 80}, {"port": 80, "name": "b"}, {"port": 0, "protocol": "HTTP", "name": "c"}]}}));
        assert_eq!(
            messages(&obj),
            [
                "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                "spec.ports[0].name: Required value",
                "spec.ports[2].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[2].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.ports[2].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}",
            ]
        );
        let obj = defaulted(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"ports": [{"port": 80, "nodePort": 30080}]}}));
        assert_eq!(messages(&obj), ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]);
        let obj = defaulted(json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {}}));
        assert_eq!(messages(&obj), ["spec.ports: Required value"]);
        let obj =
            defaulted(json!({"metadata": {"name": "db", "namespace": "default"}, "spec": {"type": "ExternalName"}}));
        assert_eq!(messages(&obj), ["spec.externalName: Required value"]);
        let obj = defaulted(json!({"metadata": {"name": "db", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com."}}));
        assert!(messages(&obj).is_empty(), "{:?}", messages(&obj));
        let headless = defaulted(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "None", "type": "NodePort"}}));
        assert_eq!(
            messages(&headless),
            ["spec.clusterIP: Invalid value: \"None\": may not be set to 'None' for NodePort services"]
        );
    }

    #[test]
    fn updates_keep_allocated_values_and_may_not_move_the_cluster_ip() {
        let old = json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.7", "clusterIPs": ["10.43.0.7"],
                "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "externalTrafficPolicy": "Cluster",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080}]},
            "status": {"loadBalancer": {}}});
        // A replace from the original file: no IP, no node port.
        let mut new = defaulted(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80}]}}));
        Services.prepare_update(&old, &mut new);
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.43.0.7"]));
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
        assert_eq!(new["status"], json!({"loadBalancer": {}}));
        assert!(Services.validate_update(&old, &new).is_empty());
        let mut moved = new.clone();
        moved["spec"]["clusterIP"] = json!("10.43.0.8");
        moved["spec"]["clusterIPs"] = json!(["10.43.0.8"]);
        let errs: Vec<String> = Services.validate_update(&old, &moved).iter().map(|e| e.to_string()).collect();
        assert_eq!(errs, ["spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.8\"}: may not change once set"]);
        // Back to ClusterIP: the node port and the external policy go.
        let mut internal = defaulted(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 80}]}}));
        Services.prepare_update(&old, &mut internal);
        assert_eq!(internal["spec"]["ports"][0].get("nodePort"), None);
        assert!(
            Services.validate_update(&old, &internal).is_empty(),
            "{:?}",
            Services.validate_update(&old, &internal)
        );
    }

    fn service(spec: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    fn update_errors(old: &Value, new: &Value) -> Vec<String> {
        Services.validate_update(old, new).iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn cluster_ips_and_families_are_checked_as_upstream() {
        let ok = defaulted(service(json!({"clusterIP": "10.43.0.9", "clusterIPs": ["10.43.0.9", "fd00::9"],
            "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack", "ports": [{"port": 80}]})));
        assert!(messages(&ok).is_empty(), "{:?}", messages(&ok));
        // clusterIPs alone, from a client that knows the plural field only.
        let plural = defaulted(service(json!({"clusterIPs": ["10.43.0.9"], "ports": [{"port": 80}]})));
        assert_eq!(
            messages(&plural),
            [
                "spec.clusterIPs: Invalid value: []string{\"10.43.0.9\"}: must be empty when `clusterIP` is not specified"
            ]
        );
        let unsynced =
            defaulted(service(json!({"clusterIP": "10.43.0.9", "clusterIPs": ["10.43.0.8"], "ports": [{"port": 80}]})));
        assert_eq!(
            messages(&unsynced),
            ["spec.clusterIPs: Invalid value: []string{\"10.43.0.8\"}: first value must match `clusterIP`"]
        );
        let two_v4 = defaulted(service(json!({"clusterIP": "10.43.0.9", "clusterIPs": ["10.43.0.9", "10.43.0.8"],
            "ports": [{"port": 80}]})));
        assert_eq!(
            messages(&two_v4),
            [
                "spec.clusterIPs: Invalid value: []string{\"10.43.0.9\", \"10.43.0.8\"}: may specify no more than one IP for each IP family"
            ]
        );
        let crossed = defaulted(service(json!({"clusterIP": "fd00::9", "clusterIPs": ["fd00::9", "10.43.0.9"],
            "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]})));
        assert_eq!(
            messages(&crossed),
            [
                "spec.clusterIPs[0]: Invalid value: \"fd00::9\": expected an IPv4 value as indicated by `ipFamilies[0]`",
                "spec.clusterIPs[1]: Invalid value: \"10.43.0.9\": expected an IPv6 value as indicated by `ipFamilies[1]`",
            ]
        );
        let families =
            defaulted(service(json!({"ipFamilies": ["IPv4", "IPv4", "IPv5"], "ipFamilyPolicy": "DualStack",
            "ports": [{"port": 80}]})));
        assert_eq!(
            messages(&families),
            [
                "spec.ipFamilies[1]: Duplicate value: \"IPv4\"",
                "spec.ipFamilies[2]: Unsupported value: \"IPv5\": supported values: \"IPv4\", \"IPv6\"",
                "spec.ipFamilyPolicy: Unsupported value: \"DualStack\": supported values: \"PreferDualStack\", \"RequireDualStack\", \"SingleStack\"",
            ]
        );
        let none_first = defaulted(service(json!({"clusterIP": "None", "clusterIPs": ["None", "10.43.0.9"]})));
        assert_eq!(
            messages(&none_first),
            [
                "spec.clusterIPs: Invalid value: []string{\"None\", \"10.43.0.9\"}: 'None' must be the first and only value"
            ]
        );
        let bad = defaulted(service(json!({"clusterIP": "10.43.0.9", "clusterIPs": ["10.43.0.9", "fd00::zz"],
            "ports": [{"port": 80}]})));
        assert_eq!(
            messages(&bad),
            [
                "spec.clusterIPs[1]: Invalid value: \"fd00::zz\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
            ]
        );
    }

    #[test]
    fn upgrades_and_downgrades_keep_the_primary() {
        let single = service(json!({"type": "ClusterIP", "clusterIP": "10.43.0.7", "clusterIPs": ["10.43.0.7"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}));
        let mut dual = single.clone();
        dual["spec"]["clusterIPs"] = json!(["10.43.0.7", "fd00::7"]);
        dual["spec"]["ipFamilies"] = json!(["IPv4", "IPv6"]);
        dual["spec"]["ipFamilyPolicy"] = json!("PreferDualStack");
        assert!(update_errors(&single, &dual).is_empty(), "{:?}", update_errors(&single, &dual));
        // Down again: only with SingleStack.
        assert!(update_errors(&dual, &single).is_empty(), "{:?}", update_errors(&dual, &single));
        let mut half = single.clone();
        half["spec"]["ipFamilyPolicy"] = json!("PreferDualStack");
        assert_eq!(
            update_errors(&dual, &half),
            [
                "spec.ipFamilyPolicy: Invalid value: \"PreferDualStack\": must be set to 'SingleStack' when releasing the secondary clusterIP",
                "spec.ipFamilyPolicy: Invalid value: \"PreferDualStack\": must be set to 'SingleStack' when releasing the secondary ipFamily",
            ]
        );
        // The primary family may not change, nor the primary address.
        let mut v6 = single.clone();
        v6["spec"]["clusterIP"] = json!("fd00::7");
        v6["spec"]["clusterIPs"] = json!(["fd00::7", "10.43.0.7"]);
        v6["spec"]["ipFamilies"] = json!(["IPv6", "IPv4"]);
        v6["spec"]["ipFamilyPolicy"] = json!("PreferDualStack");
        assert_eq!(
            update_errors(&single, &v6),
            [
                "spec.clusterIPs[0]: Invalid value: []string{\"fd00::7\", \"10.43.0.7\"}: may not change once set",
                "spec.ipFamilies[0]: Invalid value: []string{\"fd00::7\", \"10.43.0.7\"}: may not change once set",
            ]
        );
        let mut swapped = single.clone();
        swapped["spec"]["ipFamilies"] = json!(["IPv6"]);
        let errs = update_errors(&single, &swapped);
        assert!(
            errs.contains(
                &"spec.ipFamilies[0]: Invalid value: []core.IPFamily{\"IPv6\"}: may not change once set".to_string()
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn updates_carry_dual_stack_addresses_and_drop_them_for_external_name() {
        let old: Service = typed(&service(json!({"type": "ClusterIP", "clusterIP": "10.43.0.7",
            "clusterIPs": ["10.43.0.7", "fd00::7"], "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack",
            "ports": [{"port": 80}]})));
        let old = old.spec.unwrap_or_default();
        // An old client sends `clusterIP` alone: both addresses stay.
        let mut new =
            ServiceSpec { type_: Some("ClusterIP".into()), cluster_ip: Some("10.43.0.7".into()), ..Default::default() };
        carry_allocated(&old, &mut new);
        assert_eq!(new.cluster_ips, Some(vec!["10.43.0.7".to_string(), "fd00::7".to_string()]));
        // Families and policy are the allocator's to default (from the stored policy).
        assert_eq!(new.ip_families, None);
        // To ExternalName with everything else as it was: the address fields go.
        let mut external = old.clone();
        external.type_ = Some("ExternalName".into());
        external.external_name = Some("db.example.com".into());
        carry_allocated(&old, &mut external);
        assert_eq!((external.cluster_ip, external.cluster_ips), (None, None));
        assert_eq!((external.ip_families, external.ip_family_policy), (None, None));
    }
}
