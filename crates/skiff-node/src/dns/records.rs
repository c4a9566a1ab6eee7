//! The cluster zone's records, as the Kubernetes DNS specification names them, from Services and
//! their EndpointSlices: pure, so every name is table-tested without a socket.
//!
//! - `SVC.NS.svc.ZONE`: A of the cluster IP; for a headless Service, A of every ready endpoint;
//!   for an ExternalName one, CNAME to its name.
//! - `_PORT._PROTO.SVC.NS.svc.ZONE`: SRV per named port (to the Service, or to each ready
//!   endpoint of a headless one).
//! - `HOST.SVC.NS.svc.ZONE`: a headless Service's endpoint that has a hostname.
//! - `A-B-C-D.NS.pod.ZONE`: A of that address (CoreDNS's "pods insecure").
//! - `D.C.B.A.in-addr.arpa`: PTR of a cluster IP or of a named headless endpoint.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// One record of an answer (names are lowercased, fully qualified, with the trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    A(Ipv4Addr),
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
    cluster_ip: Option<Ipv4Addr>,
    external_name: Option<String>,
    /// Named ports: (name, protocol lowercased, port).
    ports: Vec<(String, String, u16)>,
    /// A headless Service's ready endpoints: (address, hostname).
    endpoints: Vec<(Ipv4Addr, Option<String>)>,
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
    reverse: BTreeMap<Ipv4Addr, String>,
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
            let entry = Entry {
                cluster_ip: spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok()),
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
            if let Some(ip) = entry.cluster_ip {
                zone.reverse.insert(ip, format!("{name}.{ns}.svc.{}", zone.domain));
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
                for ip in e.addresses.iter().filter_map(|a| a.parse::<Ipv4Addr>().ok()) {
                    if !entry.endpoints.iter().any(|(seen, _)| *seen == ip) {
                        entry.endpoints.push((ip, hostname.clone()));
                    }
                    if let Some(h) = &hostname {
                        zone.reverse.insert(ip, format!("{h}.{svc}.{ns}.svc.{}", zone.domain));
                    }
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
            return self.answer_reverse(reverse, kind);
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
            [addr, _ns, "pod"] => match addr.replace('-', ".").parse::<Ipv4Addr>() {
                Ok(ip) => only(kind, Type::A, vec![Record::A(ip)]),
                Err(_) => Answer::NxDomain,
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
        let addresses: Vec<Record> = if e.headless {
            e.endpoints.iter().map(|(ip, _)| Record::A(*ip)).collect()
        } else {
            e.cluster_ip.into_iter().map(Record::A).collect()
        };
        only(kind, Type::A, addresses)
    }

    fn endpoint_host(&self, ns: &str, svc: &str, host: &str, kind: Type) -> Answer {
        let Some(e) = self.services.get(&(ns.to_string(), svc.to_string())) else { return Answer::NxDomain };
        let found: Vec<Record> =
            e.endpoints.iter().filter(|(_, h)| h.as_deref() == Some(host)).map(|(ip, _)| Record::A(*ip)).collect();
        if found.is_empty() { Answer::NxDomain } else { only(kind, Type::A, found) }
    }

    fn srv(&self, ns: &str, svc: &str, port: &str, proto: &str, kind: Type) -> Answer {
        let Some(e) = self.services.get(&(ns.to_string(), svc.to_string())) else { return Answer::NxDomain };
        let Some((_, _, number)) = e.ports.iter().find(|(n, p, _)| n == port && p == proto) else {
            return Answer::NxDomain;
        };
        let service_name = format!("{svc}.{ns}.svc.{}", self.domain);
        let records = if e.headless {
            (e.endpoints.iter())
                .map(|(ip, host)| {
                    let label = host.clone().unwrap_or_else(|| ip.to_string().replace('.', "-"));
                    Record::Srv { port: *number, target: format!("{label}.{service_name}") }
                })
                .collect()
        } else {
            vec![Record::Srv { port: *number, target: service_name }]
        };
        only(kind, Type::Srv, records)
    }

    fn answer_reverse(&self, reverse: &str, kind: Type) -> Answer {
        let octets: Vec<&str> = reverse.split('.').collect();
        let ip = (octets.len() == 4)
            .then(|| format!("{}.{}.{}.{}", octets[3], octets[2], octets[1], octets[0]))
            .and_then(|s| s.parse::<Ipv4Addr>().ok());
        match ip.and_then(|ip| self.reverse.get(&ip)) {
            Some(name) => only(kind, Type::Ptr, vec![Record::Ptr(name.clone())]),
            None => Answer::NotOurs,
        }
    }
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
