//! The cluster zone's records, as the Kubernetes DNS specification names them, from Services and
//! their EndpointSlices: pure, so every name is table-tested without a socket.
//!
//! Every address is answered in its family: A for IPv4, AAAA for IPv6; a name that has
//! addresses of the other family only has no data (NOERROR), not NXDOMAIN.
//!
//! - `SVC.NS.svc.ZONE`: A/AAAA of the cluster IPs (both for a dual-stack Service); for a headless
//!   Service, of every ready endpoint (from the IPv4 and IPv6 slices); for an ExternalName one,
//!   CNAME to its name.
//! - `_PORT._PROTO.SVC.NS.svc.ZONE`: SRV per named port (to the Service, or to each ready
//!   endpoint of a headless one: its hostname, else its address with dashes).
//! - `HOST.SVC.NS.svc.ZONE`: a headless Service's endpoint by its hostname, else by its address
//!   with dashes (`10-42-0-8`, `fd00-42--8`: the SRV targets), in each family.
//! - `A-B-C-D.NS.pod.ZONE`: A of that address; `FD00-42--5.NS.pod.ZONE`: AAAA of `fd00:42::5`
//!   (CoreDNS's "pods insecure": a label with three dashes and no `--` is IPv4, any other has
//!   dashes for colons).
//! - `D.C.B.A.in-addr.arpa`, `<32 nibbles>.ip6.arpa`: PTR of a cluster IP or of a headless
//!   endpoint (to its `HOST.SVC...` name).

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One record of an answer (names are lowercased, fully qualified, with the trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Ptr(String),
    Srv { port: u16, target: String },
}

/// What a question gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Records(Vec<Record>),
    /// The name exists, with no record of the type asked for.
    NoData,
    NxDomain,
    /// Not in the cluster zone nor a reverse name of ours: forward it.
    NotOurs,
    /// In the zone, but the node has not read the Services yet: no answer to cache.
    NotReady,
}

/// The record types the zone answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    A,
    Aaaa,
    Srv,
    Ptr,
    Cname,
    Other,
}

/// What a Service contributes.
#[derive(Debug, Clone, Default)]
struct Entry {
    /// `spec.clusterIPs` (or `clusterIP` alone, for an object written before the list).
    cluster_ips: Vec<IpAddr>,
    external_name: Option<String>,
    /// Named ports: (name, protocol lowercased, port).
    ports: Vec<(String, String, u16)>,
    /// A headless Service's ready endpoints, both families: (address, hostname).
    endpoints: Vec<(IpAddr, Option<String>)>,
    headless: bool,
}

/// The cluster zone at one moment.
#[derive(Debug, Clone)]
pub struct Zone {
    /// `cluster.local.`
    domain: String,
    /// By (namespace, name).
    services: BTreeMap<(String, String), Entry>,
    /// Reverse names: address → the name it belongs to.
    reverse: BTreeMap<IpAddr, String>,
    /// Built from every Service (false: the node is still listing them).
    listed: bool,
}

impl Zone {
    /// The zone `domain` (e.g. `cluster.local`) from `services` and their slices.
    pub fn build(domain: &str, services: &[impl Borrow<Service>], slices: &[impl Borrow<EndpointSlice>]) -> Zone {
        let domain = format!("{}.", domain.trim_end_matches('.').to_lowercase());
        let mut zone = Zone { domain, services: BTreeMap::new(), reverse: BTreeMap::new(), listed: true };
        for svc in services.iter().map(Borrow::borrow) {
            let (Some(ns), Some(name)) = (svc.metadata.namespace.clone(), svc.metadata.name.clone()) else { continue };
            let spec = svc.spec.clone().unwrap_or_default();
            let headless = spec.cluster_ip.as_deref() == Some("None");
            let listed = (spec.cluster_ips.clone().filter(|ips| !ips.is_empty()))
                .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]));
            let mut cluster_ips: Vec<IpAddr> = Vec::new();
            for ip in listed.iter().flatten().filter_map(|ip| address(ip)) {
                if !cluster_ips.contains(&ip) {
                    cluster_ips.push(ip);
                }
            }
            let entry = Entry {
                cluster_ips,
                external_name: (spec.type_.as_deref() == Some("ExternalName"))
                    .then(|| spec.external_name.clone())
                    .flatten()
                    .map(|n| format!("{}.", n.trim_end_matches('.').to_lowercase())),
                ports: (spec.ports.iter().flatten())
                    .filter_map(|p| {
                        let name = p.name.clone().filter(|n| !n.is_empty())?;
                        let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into()).to_lowercase();
                        Some((name, proto, u16::try_from(p.port).ok()?))
                    })
                    .collect(),
                endpoints: Vec::new(),
                headless,
            };
            for ip in &entry.cluster_ips {
                zone.reverse.insert(*ip, format!("{name}.{ns}.svc.{}", zone.domain));
            }
            zone.services.insert((ns, name), entry);
        }
        for slice in slices.iter().map(Borrow::borrow) {
            let labels = slice.metadata.labels.as_ref();
            let Some(svc) = labels.and_then(|l| l.get("kubernetes.io/service-name")) else { continue };
            let Some(ns) = slice.metadata.namespace.clone() else { continue };
            let Some(entry) = zone.services.get_mut(&(ns.clone(), svc.clone())) else { continue };
            if !entry.headless {
                continue;
            }
            for e in slice.endpoints.iter().flatten() {
                // Not ready is not published (unless the Service publishes every address, which
                // the endpoints controller then marks ready).
                if e.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                    continue;
                }
                let hostname = e.hostname.clone().map(|h| h.to_lowercase());
                // IPv4 and IPv6 slices alike (FQDN ones hold no addresses).
                for ip in e.addresses.iter().filter_map(|a| address(a)) {
                    if !entry.endpoints.iter().any(|(seen, _)| *seen == ip) {
                        entry.endpoints.push((ip, hostname.clone()));
                    }
                    let label = hostname.clone().unwrap_or_else(|| endpoint_label(&ip));
                    zone.reverse.insert(ip, format!("{label}.{svc}.{ns}.svc.{}", zone.domain));
                }
            }
            entry.endpoints.sort();
        }
        zone
    }

    /// The answer to `name` (lowercased, fully qualified) of type `kind`.
    /// The zone before the node has listed the Services: its names answer [`Answer::NotReady`]
    /// (a server failure, which resolvers retry), never a negative answer they would cache.
    pub fn unlisted(domain: &str) -> Zone {
        let mut zone = Zone::build(domain, &[] as &[Service], &[] as &[EndpointSlice]);
        zone.listed = false;
        zone
    }

    pub fn answer(&self, name: &str, kind: Type) -> Answer {
        if let Some(reverse) = name.strip_suffix(".in-addr.arpa.") {
            return self.answer_reverse(reverse_v4(reverse), kind);
        }
        if let Some(reverse) = name.strip_suffix(".ip6.arpa.") {
            return self.answer_reverse(reverse_v6(reverse), kind);
        }
        let Some(rel) = name.strip_suffix(&self.domain).and_then(|r| r.strip_suffix('.')) else {
            return if name == self.domain { Answer::NoData } else { Answer::NotOurs };
        };
        if !self.listed {
            return Answer::NotReady;
        }
        let labels: Vec<&str> = rel.split('.').collect();
        match labels.as_slice() {
            [svc, ns, "svc"] => self.service(ns, svc, kind),
            [host, svc, ns, "svc"] if !host.starts_with('_') => self.endpoint_host(ns, svc, host, kind),
            [port, proto, svc, ns, "svc"] if port.starts_with('_') && proto.starts_with('_') => {
                self.srv(ns, svc, &port[1..], &proto[1..], kind)
            }
            [addr, _ns, "pod"] => match pod_address(addr) {
                Some(ip) => addresses(kind, [ip]),
                None => Answer::NxDomain,
            },
            // `svc.ZONE`, `NS.svc.ZONE`, `pod.ZONE`: names that exist, with no records.
            ["svc"] | [_, "svc"] | ["pod"] | [_, "pod"] => Answer::NoData,
            _ => Answer::NxDomain,
        }
    }

    fn service(&self, ns: &str, svc: &str, kind: Type) -> Answer {
        let Some(e) = self.services.get(&(ns.to_string(), svc.to_string())) else { return Answer::NxDomain };
        if let Some(target) = &e.external_name {
            // A CNAME answers every type (the resolver follows it).
            return Answer::Records(vec![Record::Cname(target.clone())]);
        }
        if e.headless {
            addresses(kind, e.endpoints.iter().map(|(ip, _)| *ip))
        } else {
            addresses(kind, e.cluster_ips.clone())
        }
    }

    fn endpoint_host(&self, ns: &str, svc: &str, host: &str, kind: Type) -> Answer {
        let Some(e) = self.services.get(&(ns.to_string(), svc.to_string())) else { return Answer::NxDomain };
        // By hostname, or (without one) by the dashed address its SRV target names.
        let named = |ip: &IpAddr, h: &Option<String>| match h {
            Some(h) => h == host,
            None => endpoint_label(ip) == host,
        };
        let found: Vec<IpAddr> = e.endpoints.iter().filter(|(ip, h)| named(ip, h)).map(|(ip, _)| *ip).collect();
        if found.is_empty() { Answer::NxDomain } else { addresses(kind, found) }
    }

    fn srv(&self, ns: &str, svc: &str, port: &str, proto: &str, kind: Type) -> Answer {
        let Some(e) = self.services.get(&(ns.to_string(), svc.to_string())) else { return Answer::NxDomain };
        let Some((_, _, number)) = e.ports.iter().find(|(n, p, _)| n == port && p == proto) else {
            return Answer::NxDomain;
        };
        let service_name = format!("{svc}.{ns}.svc.{}", self.domain);
        let records = if e.headless {
            // A dual-stack endpoint with a hostname is one target (CoreDNS drops duplicates).
            let mut records: Vec<Record> = Vec::new();
            for (ip, host) in &e.endpoints {
                let label = host.clone().unwrap_or_else(|| endpoint_label(ip));
                let srv = Record::Srv { port: *number, target: format!("{label}.{service_name}") };
                if !records.contains(&srv) {
                    records.push(srv);
                }
            }
            records
        } else {
            vec![Record::Srv { port: *number, target: service_name }]
        };
        only(kind, Type::Srv, records)
    }

    fn answer_reverse(&self, ip: Option<IpAddr>, kind: Type) -> Answer {
        match ip.and_then(|ip| self.reverse.get(&ip)) {
            Some(name) => only(kind, Type::Ptr, vec![Record::Ptr(name.clone())]),
            None => Answer::NotOurs,
        }
    }
}

/// An address as the API spells it, IPv4-mapped IPv6 ones as IPv4 (as Go reads them).
fn address(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// A name's addresses as the records of the type asked for: A for the IPv4 ones, AAAA for the
/// IPv6 ones; none of that family (or another type) is no data.
fn addresses(kind: Type, ips: impl IntoIterator<Item = IpAddr>) -> Answer {
    let ips = ips.into_iter();
    match kind {
        Type::A => only(kind, Type::A, ips.filter_map(|ip| v4(ip).map(Record::A)).collect()),
        Type::Aaaa => only(kind, Type::Aaaa, ips.filter_map(|ip| v6(ip).map(Record::Aaaa)).collect()),
        _ => Answer::NoData,
    }
}

fn v4(ip: IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(_) => None,
    }
}

fn v6(ip: IpAddr) -> Option<Ipv6Addr> {
    match ip {
        IpAddr::V6(ip) => Some(ip),
        IpAddr::V4(_) => None,
    }
}

/// The address a `pod` label names, as CoreDNS's kubernetes plugin reads it: three dashes and
/// no `--` is IPv4 (`10-42-0-5`), anything else has dashes for colons (`fd00-42--5`).
fn pod_address(label: &str) -> Option<IpAddr> {
    let spelled = if label.matches('-').count() == 3 && !label.contains("--") {
        label.replace('-', ".")
    } else {
        label.replace('-', ":")
    };
    address(&spelled)
}

/// An endpoint's label when it has no hostname, as CoreDNS makes it: the address with dashes for
/// dots or colons (and a `0` after a trailing dash, which a label cannot end with).
fn endpoint_label(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(ip) => ip.to_string().replace('.', "-"),
        IpAddr::V6(ip) => {
            let label = ip.to_string().replace(':', "-");
            if label.ends_with('-') { format!("{label}0") } else { label }
        }
    }
}

/// The address of an `in-addr.arpa` name (without the suffix): four octets, reversed.
fn reverse_v4(reverse: &str) -> Option<IpAddr> {
    let octets: Vec<&str> = reverse.split('.').collect();
    let [d, c, b, a] = octets.as_slice() else { return None };
    format!("{a}.{b}.{c}.{d}").parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The address of an `ip6.arpa` name (without the suffix): 32 hex nibbles, least significant
/// first (RFC 3596).
fn reverse_v6(reverse: &str) -> Option<IpAddr> {
    let nibbles: Vec<&str> = reverse.split('.').collect();
    if nibbles.len() != 32 {
        return None;
    }
    let mut bits: u128 = 0;
    for n in nibbles.iter().rev() {
        let [digit] = n.as_bytes() else { return None };
        bits = (bits << 4) | u128::from(char::from(*digit).to_digit(16)?);
    }
    Some(Ipv6Addr::from(bits).to_canonical())
}

/// `records` if they are of the type asked for; otherwise the name exists with no data.
fn only(kind: Type, of: Type, records: Vec<Record>) -> Answer {
    match (kind == of, records.is_empty()) {
        (true, false) => Answer::Records(records),
        _ => Answer::NoData,
    }
}

#[cfg(test)]
mod tests;
