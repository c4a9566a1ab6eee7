//! What the service proxy must do, from a snapshot of Services and EndpointSlices: per Service
//! port and address family, the addresses it answers on and the endpoints its traffic goes to
//! (a dual-stack Service is served in both families' tables, each from its own slices). Pure.

use crate::net::cidr::{Cidr, Family};
use crate::service_view::Snapshot;
use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    fn parse(s: Option<&str>) -> Option<Protocol> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One endpoint of a Service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    pub ip: IpAddr,
    pub port: u16,
    /// On this node (what `Local` traffic policies keep).
    pub local: bool,
}

/// One port of one Service, as the proxy serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// `NAMESPACE/NAME/PROTOCOL/PORTNAME`: unique, stable, names its chains.
    pub id: String,
    pub protocol: Protocol,
    pub cluster_ip: Option<IpAddr>,
    pub port: u16,
    pub node_port: Option<u16>,
    /// LoadBalancer ingress and external IPs: served like the cluster IP, as external traffic.
    pub external_ips: Vec<IpAddr>,
    /// `loadBalancerSourceRanges`: who may reach the load-balancer addresses (of
    /// `external_ips`, those in `load_balancer_ips`); empty: anyone.
    pub source_ranges: Vec<Cidr>,
    pub load_balancer_ips: Vec<IpAddr>,
    /// Where traffic to the cluster IP goes (`internalTrafficPolicy: Local` keeps local ones).
    pub internal: Vec<Target>,
    /// `internalTrafficPolicy: Local`: `internal` holds this node's endpoints only.
    pub internal_local: bool,
    /// Where external traffic goes (`externalTrafficPolicy: Local` keeps local ones).
    pub external: Vec<Target>,
    /// `externalTrafficPolicy: Local`: external traffic keeps its source (no masquerade).
    pub external_local: bool,
    /// Some endpoint exists somewhere (with a Local policy and none here, traffic is dropped,
    /// as another node may serve it; with none at all, it is refused).
    pub has_endpoints: bool,
    /// `sessionAffinity: ClientIP`: a client keeps its endpoint for this long after its last
    /// connection.
    pub affinity: Option<std::time::Duration>,
}

/// The translations that `before` made and `after` no longer does, for connectionless
/// protocols (UDP, SCTP), whose tracked "connections" would otherwise keep going to an endpoint
/// that left: per Service address and port, each endpoint that is gone from it.
pub fn stale(before: &[Port], after: &[Port]) -> Vec<crate::net::conntrack::Stale> {
    let mut out = Vec::new();
    for old in before.iter().filter(|p| p.protocol != Protocol::Tcp) {
        let new = after.iter().find(|p| p.id == old.id);
        let still = |t: &Target| new.is_some_and(|n| n.internal.contains(t) || n.external.contains(t));
        let addresses: Vec<IpAddr> = old.cluster_ip.into_iter().chain(old.external_ips.iter().copied()).collect();
        for t in old.internal.iter().chain(&old.external).filter(|t| !still(t)) {
            for ip in &addresses {
                out.push(crate::net::conntrack::Stale {
                    protocol: old.protocol.number(),
                    service: std::net::SocketAddr::new(*ip, old.port),
                    endpoint: std::net::SocketAddr::new(t.ip, t.port),
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `sessionAffinityConfig.clientIP.timeoutSeconds`' default (three hours).
const DEFAULT_AFFINITY_SECONDS: i32 = 10800;

/// Every Service port the proxy serves in `family`'s table, in a stable order. `skip` are
/// addresses the node serves itself (the cluster DNS): never proxied.
pub fn ports(snapshot: &Snapshot, node_name: &str, skip: &[IpAddr], family: Family) -> Vec<Port> {
    let mut slices: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for s in &snapshot.slices {
        let ns = s.metadata.namespace.as_deref().unwrap_or_default();
        let Some(service) = s.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")) else {
            continue;
        };
        if s.address_type == family.name() {
            slices.entry((ns, service.as_str())).or_default().push(s);
        }
    }
    let mut out = Vec::new();
    for svc in &snapshot.services {
        let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
        let name = svc.metadata.name.as_deref().unwrap_or_default();
        let svc_slices = slices.get(&(ns, name)).map(Vec::as_slice).unwrap_or_default();
        out.extend(service_ports(svc, svc_slices, node_name, skip, family));
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn service_ports(
    svc: &Service,
    slices: &[&EndpointSlice],
    node_name: &str,
    skip: &[IpAddr],
    family: Family,
) -> Vec<Port> {
    let Some(spec) = &svc.spec else { return vec![] };
    let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    let kind = spec.type_.as_deref().unwrap_or("ClusterIP");
    if kind == "ExternalName" {
        return vec![];
    }
    // The addresses of this family (an old object may have only `clusterIP`).
    let of_family = |ip: &str| ip.parse::<IpAddr>().ok().filter(|ip| Family::of(*ip) == family);
    let cluster_ips = spec.cluster_ips.clone().unwrap_or_else(|| spec.cluster_ip.clone().into_iter().collect());
    let cluster_ip = cluster_ips.iter().find_map(|ip| of_family(ip));
    if cluster_ip.is_none() || cluster_ip.is_some_and(|ip| skip.contains(&ip)) {
        return vec![]; // Headless, of the other family, or served by the node itself.
    }
    let mut external_ips: Vec<IpAddr> = spec.external_ips.iter().flatten().filter_map(|ip| of_family(ip)).collect();
    let mut load_balancer_ips: Vec<IpAddr> = Vec::new();
    if kind == "LoadBalancer" {
        let ingress = svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|lb| lb.ingress.as_ref());
        load_balancer_ips.extend(ingress.into_iter().flatten().filter_map(|i| of_family(i.ip.as_deref()?)));
        external_ips.extend(&load_balancer_ips);
    }
    // The field, else the older annotation, as kube-proxy reads them.
    let annotation = svc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("service.beta.kubernetes.io/load-balancer-source-ranges"))
        .map(|v| v.split(',').map(|r| r.trim().to_string()).collect::<Vec<_>>());
    let ranges = spec.load_balancer_source_ranges.clone().filter(|r| !r.is_empty()).or(annotation).unwrap_or_default();
    // Each family's table gets that family's ranges (as kube-proxy splits them).
    let source_ranges: Vec<Cidr> = if kind == "LoadBalancer" {
        ranges.iter().filter_map(|r| Cidr::parse(r)).filter(|c| c.family() == family).collect()
    } else {
        vec![]
    };
    external_ips.sort();
    external_ips.dedup();
    let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        let config = spec.session_affinity_config.as_ref().and_then(|c| c.client_ip.as_ref());
        let seconds = config.and_then(|c| c.timeout_seconds).unwrap_or(DEFAULT_AFFINITY_SECONDS);
        std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(0))
    });
    let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
    let mut out = Vec::new();
    for p in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::parse(p.protocol.as_deref()) else { continue };
        let Ok(port) = u16::try_from(p.port) else { continue };
        let targets = targets(p, protocol, slices, node_name);
        let keep =
            |local_only: bool| -> Vec<Target> { targets.iter().filter(|t| !local_only || t.local).cloned().collect() };
        let node_port = matches!(kind, "NodePort" | "LoadBalancer")
            .then(|| p.node_port.and_then(|n| u16::try_from(n).ok()))
            .flatten();
        out.push(Port {
            id: format!("{ns}/{name}/{}/{}", protocol.name(), p.name.as_deref().unwrap_or_default()),
            protocol,
            cluster_ip,
            port,
            node_port,
            external_ips: external_ips.clone(),
            source_ranges: source_ranges.clone(),
            load_balancer_ips: load_balancer_ips.clone(),
            internal: keep(internal_local),
            internal_local,
            external: keep(external_local),
            has_endpoints: !targets.is_empty(),
            external_local,
            affinity,
        });
    }
    out
}

/// The endpoints of Service port `p`: the ready ones, or, when none is ready, the serving ones
/// that are terminating (so a rollout's last pods drain instead of refusing), as kube-proxy.
fn targets(p: &ServicePort, protocol: Protocol, slices: &[&EndpointSlice], node_name: &str) -> Vec<Target> {
    let want = p.name.as_deref().unwrap_or_default();
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    for slice in slices {
        let Some(port) = slice.ports.iter().flatten().find(|sp| {
            sp.name.as_deref().unwrap_or_default() == want && Protocol::parse(sp.protocol.as_deref()) == Some(protocol)
        }) else {
            continue;
        };
        let Some(number) = port.port.and_then(|n| u16::try_from(n).ok()) else { continue };
        for e in slice.endpoints.iter().flatten() {
            let (is_ready, serving, is_terminating) = conditions(e);
            let local = e.node_name.as_deref() == Some(node_name);
            for ip in e.addresses.iter().filter_map(|a| a.parse::<IpAddr>().ok()) {
                let t = Target { ip, port: number, local };
                if is_ready {
                    ready.push(t);
                } else if serving && is_terminating {
                    terminating.push(t);
                }
            }
        }
    }
    let mut chosen = if ready.is_empty() { terminating } else { ready };
    chosen.sort();
    chosen.dedup();
    chosen
}

/// (ready, serving, terminating), with upstream's defaults for missing conditions.
fn conditions(e: &Endpoint) -> (bool, bool, bool) {
    let c = e.conditions.as_ref();
    let ready = c.and_then(|c| c.ready).unwrap_or(true);
    let serving = c.and_then(|c| c.serving).unwrap_or(ready);
    let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
    (ready, serving, terminating)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::from([a, b, c, d])
    }

    fn snapshot(services: Vec<serde_json::Value>, slices: Vec<serde_json::Value>) -> Snapshot {
        Snapshot {
            services: services.into_iter().map(|s| Arc::new(serde_json::from_value(s).expect("svc"))).collect(),
            slices: slices.into_iter().map(|s| Arc::new(serde_json::from_value(s).expect("slice"))).collect(),
            listed: true,
        }
    }

    fn endpoint(ip: &str, ready: bool, terminating: bool, node: &str) -> serde_json::Value {
        json!({"addresses": [ip], "nodeName": node,
            "conditions": {"ready": ready, "serving": ready || terminating, "terminating": terminating}})
    }

    fn web(extra: serde_json::Value) -> serde_json::Value {
        let mut spec = json!({"clusterIP": "10.43.0.20", "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]});
        spec.as_object_mut().expect("obj").extend(extra.as_object().expect("obj").clone());
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
    }

    fn slice(endpoints: Vec<serde_json::Value>) -> serde_json::Value {
        json!({"metadata": {"name": "web-abc", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints})
    }

    #[test]
    fn ready_endpoints_and_the_draining_fallback() {
        let s = snapshot(
            vec![web(json!({}))],
            vec![slice(vec![
                endpoint("10.42.0.5", true, false, "n1"),
                endpoint("10.42.0.6", false, true, "n1"),
                endpoint("10.42.0.7", false, false, "n2"),
            ])],
        );
        let all = ports(&s, "n1", &[], Family::V4);
        assert_eq!(all.len(), 1);
        let p = &all[0];
        assert_eq!(p.id, "default/web/tcp/http");
        assert_eq!((p.cluster_ip, p.port, p.node_port), (Some(v4(10, 43, 0, 20)), 80, None));
        assert_eq!(p.internal, [Target { ip: v4(10, 42, 0, 5), port: 8080, local: true }]);
        // Nothing ready: the terminating pod that still serves.
        let s = snapshot(vec![web(json!({}))], vec![slice(vec![endpoint("10.42.0.6", false, true, "n1")])]);
        assert_eq!(ports(&s, "n1", &[], Family::V4)[0].internal[0].ip, v4(10, 42, 0, 6));
    }

    #[test]
    fn node_ports_load_balancers_and_local_policies() {
        let mut lb = web(json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
            "loadBalancerSourceRanges": ["192.0.2.0/24", "2001:db8::/32"],
            "ports": [{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}]}));
        lb["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}]}});
        let s = snapshot(
            vec![lb],
            vec![slice(vec![endpoint("10.42.0.5", true, false, "n1"), endpoint("10.42.1.5", true, false, "n2")])],
        );
        let p = &ports(&s, "n1", &[], Family::V4)[0];
        assert_eq!(p.node_port, Some(30080));
        assert_eq!(p.external_ips, [v4(192, 0, 2, 10)]);
        assert_eq!(p.source_ranges, [Cidr { network: v4(192, 0, 2, 0), prefix: 24 }]);
        assert_eq!(p.internal.len(), 2);
        assert_eq!(p.external.len(), 1, "externalTrafficPolicy: Local keeps this node's");
        assert!(p.external_local);
        assert_eq!(p.affinity, None);
        let sticky = snapshot(vec![web(json!({"sessionAffinity": "ClientIP"}))], vec![]);
        assert_eq!(ports(&sticky, "n1", &[], Family::V4)[0].affinity, Some(std::time::Duration::from_secs(10800)));
    }

    #[test]
    fn endpoints_gone_from_udp_ports_are_stale() {
        let dns = |endpoints: Vec<serde_json::Value>| {
            snapshot(
                vec![json!({"metadata": {"name": "dns", "namespace": "default"},
                    "spec": {"clusterIP": "10.43.0.53", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}})],
                vec![json!({"metadata": {"name": "dns-x", "namespace": "default",
                        "labels": {"kubernetes.io/service-name": "dns"}},
                    "addressType": "IPv4", "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}],
                    "endpoints": endpoints})],
            )
        };
        let before = ports(
            &dns(vec![endpoint("10.42.0.5", true, false, "n1"), endpoint("10.42.0.6", true, false, "n1")]),
            "n1",
            &[],
            Family::V4,
        );
        let after = ports(&dns(vec![endpoint("10.42.0.6", true, false, "n1")]), "n1", &[], Family::V4);
        let gone = stale(&before, &after);
        assert_eq!(gone.len(), 1);
        assert_eq!(
            (gone[0].service.to_string(), gone[0].endpoint.to_string()),
            ("10.43.0.53:53".into(), "10.42.0.5:5353".into())
        );
        assert!(stale(&after, &after).is_empty());
    }

    #[test]
    fn headless_external_name_and_skipped_addresses_are_not_proxied() {
        let s = snapshot(
            vec![
                web(json!({"clusterIP": "None"})),
                json!({"metadata": {"name": "mail", "namespace": "default"},
                    "spec": {"type": "ExternalName", "externalName": "mail.example.com"}}),
                json!({"metadata": {"name": "kube-dns", "namespace": "kube-system"},
                    "spec": {"clusterIP": "10.43.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}),
            ],
            vec![],
        );
        assert!(ports(&s, "n1", &[v4(10, 43, 0, 10)], Family::V4).is_empty());
    }

    #[test]
    fn a_dual_stack_service_is_served_in_each_family_from_its_own_slices() {
        let svc = web(json!({"clusterIPs": ["10.43.0.20", "fd00:43::20"], "ipFamilies": ["IPv4", "IPv6"],
            "externalIPs": ["192.0.2.10", "2001:db8::10"]}));
        let mut v6_slice = slice(vec![endpoint("fd00:42::5", true, false, "n1")]);
        v6_slice["addressType"] = json!("IPv6");
        v6_slice["metadata"]["name"] = json!("web-v6");
        let s = snapshot(vec![svc], vec![slice(vec![endpoint("10.42.0.5", true, false, "n1")]), v6_slice]);
        let four = &ports(&s, "n1", &[], Family::V4)[0];
        assert_eq!((four.cluster_ip, four.external_ips.clone()), (Some(v4(10, 43, 0, 20)), vec![v4(192, 0, 2, 10)]));
        assert_eq!(four.internal[0].ip, v4(10, 42, 0, 5));
        let six = &ports(&s, "n1", &[], Family::V6)[0];
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        assert_eq!((six.cluster_ip, six.external_ips.clone()), (Some(ip("fd00:43::20")), vec![ip("2001:db8::10")]));
        assert_eq!(six.internal, [Target { ip: ip("fd00:42::5"), port: 8080, local: true }]);
        // A single-stack IPv4 Service has nothing in the IPv6 table.
        let s = snapshot(vec![web(json!({}))], vec![]);
        assert!(ports(&s, "n1", &[], Family::V6).is_empty());
    }
}
