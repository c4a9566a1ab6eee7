//! core/v1 Endpoints and discovery.k8s.io/v1 EndpointSlices: where a Service's traffic goes,
//! written by the endpoints controller from its pods (and readable by anyone, as kube-proxy and
//! DNS read them). Validation and Table columns as upstream's.

use super::{
    AGE_COLUMN, Column, DecodeError, Kind, NAME_COLUMN, ResourceInfo, TypedSchema, roundtrip, schema_of, typed,
};
use crate::field::{ErrorList, FieldError, Path};
use crate::{meta, names};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::schemars::generate::SchemaGenerator;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;
/// How many entries a Table cell lists before `+ N more...`.
const SHOWN: usize = 3;

pub struct EndpointsKind;
pub struct EndpointSlices;

static ENDPOINTS_INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    plural: "endpoints",
    singular: "endpoints",
    kind: "Endpoints",
    namespaced: true,
    short_names: &["ep"],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[],
};

static SLICE_INFO: ResourceInfo = ResourceInfo {
    group: "discovery.k8s.io",
    version: "v1",
    plural: "endpointslices",
    singular: "endpointslice",
    kind: "EndpointSlice",
    namespaced: true,
    short_names: &[],
    categories: &[],
    verbs: super::VERBS,
    subresources: &[],
};

static ENDPOINTS_COLUMNS: [Column; 3] = [
    NAME_COLUMN,
    Column::new(
        "Endpoints",
        0,
        "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.",
    ),
    AGE_COLUMN,
];

static SLICE_COLUMNS: [Column; 5] = [
    NAME_COLUMN,
    Column::new(
        "AddressType",
        0,
        "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.",
    ),
    Column::new(
        "Ports",
        0,
        "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.",
    ),
    Column::new(
        "Endpoints",
        0,
        "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.",
    ),
    AGE_COLUMN,
];

/// `a,b,c + N more...`, or `empty` when there is nothing.
fn list_with_more(items: impl Iterator<Item = String>, empty: &str) -> String {
    let all: Vec<String> = items.collect();
    let shown = all.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(",");
    match all.len() {
        0 => empty.to_string(),
        n if n > SHOWN => format!("{shown} + {} more...", n - SHOWN),
        _ => shown,
    }
}

fn validate_port(name: Option<&str>, protocol: Option<&str>, port: Option<i32>, named: bool, path: &Path) -> ErrorList {
    let mut errs = Vec::new();
    match name.filter(|n| !n.is_empty()) {
        Some(n) => errs.extend(names::invalid_all(&path.child("name"), n, names::dns1123_label(n))),
        None if named => errs.push(FieldError::required(&path.child("name"), "")),
        None => {}
    }
    match protocol {
        None | Some("") => errs.push(FieldError::required(&path.child("protocol"), "")),
        Some(p) if !PROTOCOLS.contains(&p) => {
            errs.push(FieldError::not_supported(&path.child("protocol"), p, PROTOCOLS))
        }
        _ => {}
    }
    if let Some(p) = port.filter(|p| !(1..=65535).contains(p)) {
        errs.push(FieldError::invalid(&path.child("port"), p, "must be between 1 and 65535, inclusive"));
    }
    errs
}

impl Kind for EndpointsKind {
    fn info(&self) -> &'static ResourceInfo {
        &ENDPOINTS_INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<Endpoints>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<Endpoints>(raw)
    }
    /// Upstream's `ValidateEndpoints`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let eps: Endpoints = typed(obj);
        for (i, ss) in eps.subsets.iter().flatten().enumerate() {
            let path = Path::new("subsets").index(i);
            let lists = [("addresses", &ss.addresses), ("notReadyAddresses", &ss.not_ready_addresses)];
            for (field, addresses) in lists {
                for (j, a) in addresses.iter().flatten().enumerate() {
                    if a.ip.parse::<IpAddr>().is_err() {
                        let detail = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
                        errs.push(FieldError::invalid(&path.child(field).index(j).child("ip"), a.ip.as_str(), detail));
                    }
                }
            }
            let ports = ss.ports.clone().unwrap_or_default();
            for (j, p) in ports.iter().enumerate() {
                let pp = path.child("ports").index(j);
                errs.extend(validate_port(
                    p.name.as_deref(),
                    p.protocol.as_deref(),
                    Some(p.port),
                    ports.len() > 1,
                    &pp,
                ));
            }
        }
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &ENDPOINTS_COLUMNS
    }
    /// Upstream's `formatEndpoints`: the ready addresses with each port.
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let eps: Endpoints = typed(obj);
        let subsets = eps.subsets.unwrap_or_default();
        let listed = if subsets.is_empty() {
            "<none>".to_string()
        } else {
            let mut all = Vec::new();
            for ss in &subsets {
                let addresses = ss.addresses.clone().unwrap_or_default();
                match ss.ports.as_ref().filter(|p| !p.is_empty()) {
                    None => all.extend(addresses.iter().map(|a| a.ip.clone())),
                    Some(ports) => {
                        for p in ports {
                            all.extend(addresses.iter().map(|a| join_host_port(&a.ip, p.port)));
                        }
                    }
                }
            }
            list_with_more(all.into_iter(), "")
        };
        vec![json!(meta::name(obj)), json!(listed), json!(meta::age(obj, now))]
    }
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

impl Kind for EndpointSlices {
    fn info(&self) -> &'static ResourceInfo {
        &SLICE_INFO
    }
    fn schema(&self, g: &mut SchemaGenerator) -> TypedSchema {
        schema_of::<EndpointSlice>(g)
    }
    fn normalize(&self, raw: &Value) -> Result<Value, DecodeError> {
        roundtrip::<EndpointSlice>(raw)
    }
    /// Upstream's `ValidateEndpointSlice`.
    fn validate(&self, obj: &Value) -> ErrorList {
        let mut errs = meta::validate(obj, true, false);
        let slice: EndpointSlice = typed(obj);
        let address_type = slice.address_type.as_str();
        if address_type.is_empty() {
            errs.push(FieldError::required(&Path::new("addressType"), ""));
        } else if !ADDRESS_TYPES.contains(&address_type) {
            errs.push(FieldError::not_supported(&Path::new("addressType"), address_type, ADDRESS_TYPES));
        }
        let endpoints = slice.endpoints.clone().unwrap_or_default();
        if endpoints.len() > MAX_ENDPOINTS {
            errs.push(FieldError::too_many(&Path::new("endpoints"), endpoints.len(), MAX_ENDPOINTS));
        }
        for (i, e) in endpoints.iter().enumerate() {
            let path = Path::new("endpoints").index(i);
            if e.addresses.is_empty() {
                errs.push(FieldError::required(&path.child("addresses"), "must contain at least 1 address"));
            } else if e.addresses.len() > MAX_ADDRESSES {
                errs.push(FieldError::too_many(&path.child("addresses"), e.addresses.len(), MAX_ADDRESSES));
            }
            for (j, a) in e.addresses.iter().enumerate() {
                let ap = path.child("addresses").index(j);
                match address_type {
                    "IPv4" if a.parse::<Ipv4Addr>().is_err() => {
                        errs.push(FieldError::invalid(&ap, a.as_str(), "must be a valid IPv4 address"))
                    }
                    "IPv6" if a.parse::<Ipv6Addr>().is_err() => {
                        errs.push(FieldError::invalid(&ap, a.as_str(), "must be a valid IPv6 address"))
                    }
                    "FQDN" => errs.extend(names::invalid_all(&ap, a, names::dns1123_subdomain(a))),
                    _ => {}
                }
            }
            if let Some(n) = e.node_name.as_deref() {
                errs.extend(names::invalid_all(&path.child("nodeName"), n, names::dns1123_subdomain(n)));
            }
            if let Some(h) = e.hostname.as_deref() {
                errs.extend(names::invalid_all(&path.child("hostname"), h, names::dns1123_label(h)));
            }
        }
        let ports = slice.ports.clone().unwrap_or_default();
        if ports.len() > MAX_PORTS {
            errs.push(FieldError::too_many(&Path::new("ports"), ports.len(), MAX_PORTS));
        }
        let mut seen = HashSet::new();
        for (i, p) in ports.iter().enumerate() {
            let path = Path::new("ports").index(i);
            errs.extend(validate_port(p.name.as_deref(), p.protocol.as_deref(), p.port, false, &path));
            let name = p.name.clone().unwrap_or_default();
            if !seen.insert(name.clone()) {
                errs.push(FieldError::duplicate(&path.child("name"), name));
            }
        }
        errs
    }
    fn validate_update(&self, old: &Value, new: &Value) -> ErrorList {
        let mut errs = self.validate(new);
        if old.get("addressType") != new.get("addressType") {
            let value = new.get("addressType").cloned().unwrap_or(Value::Null);
            errs.push(FieldError::invalid(&Path::new("addressType"), value, "field is immutable"));
        }
        errs
    }
    fn columns(&self) -> &'static [Column] {
        &SLICE_COLUMNS
    }
    /// Upstream's `printEndpointSlice`.
    fn cells(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let slice: EndpointSlice = typed(obj);
        let ports = slice.ports.iter().flatten().map(|p| match (p.port, &p.name) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.clone(),
            (None, None) => "*".to_string(),
        });
        let addresses = slice.endpoints.iter().flatten().flat_map(|e| e.addresses.iter().cloned());
        vec![
            json!(meta::name(obj)),
            json!(slice.address_type),
            json!(list_with_more(ports, "<unset>")),
            json!(list_with_more(addresses, "<unset>")),
            json!(meta::age(obj, now)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_as_upstream_prints_them() {
        let eps = json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "subsets": [{"addresses": [{"ip": "10.42.0.5"}, {"ip": "10.42.0.6"}, {"ip": "10.42.0.7"}, {"ip": "10.42.0.8"}],
                "ports": [{"port": 80, "protocol": "TCP"}]}]});
        let now = "2026-01-01T00:01:00Z".parse().expect("ts");
        assert_eq!(EndpointsKind.cells(&eps, now)[1], json!("10.42.0.5:80,10.42.0.6:80,10.42.0.7:80 + 1 more..."));
        let none = json!({"metadata": {"name": "web"}});
        assert_eq!(EndpointsKind.cells(&none, now)[1], json!("<none>"));
        let slice = json!({"metadata": {"name": "web-abcde"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.42.0.5"]}], "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]});
        let row = EndpointSlices.cells(&slice, now);
        assert_eq!(row[1..4], [json!("IPv4"), json!("80"), json!("10.42.0.5")]);
        let empty = json!({"metadata": {"name": "web-x"}, "addressType": "IPv4", "endpoints": []});
        assert_eq!(EndpointSlices.cells(&empty, now)[2..4], [json!("<unset>"), json!("<unset>")]);
    }

    #[test]
    fn validation_as_upstream() {
        let slice = json!({"metadata": {"name": "web-abcde", "namespace": "default"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.42.0.300"]}, {"addresses": []}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "http", "port": 81, "protocol": "TCP"}]});
        let errs: Vec<String> = EndpointSlices.validate(&slice).iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errs,
            [
                "endpoints[0].addresses[0]: Invalid value: \"10.42.0.300\": must be a valid IPv4 address",
                "endpoints[1].addresses: Required value: must contain at least 1 address",
                "ports[1].name: Duplicate value: \"http\"",
            ]
        );
        let eps = json!({"metadata": {"name": "web", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "nope"}], "ports": [{"port": 80}, {"port": 81, "protocol": "TCP"}]}]});
        let errs: Vec<String> = EndpointsKind.validate(&eps).iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errs,
            [
                "subsets[0].addresses[0].ip: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "subsets[0].ports[0].name: Required value",
                "subsets[0].ports[0].protocol: Required value",
                "subsets[0].ports[1].name: Required value",
            ]
        );
    }
}
