//! The endpoints controller (upstream's EndpointSlice and Endpoints controllers in one): the pods
//! a Service selects become its EndpointSlices (one set per address family of the Service, one
//! slice per port mapping, at most 100 endpoints each, owned by the Service) and its Endpoints
//! (the Service's primary family only), ready, serving and terminating as the pods are. The
//! service proxy and cluster DNS read them. Services without a selector are left to whoever
//! writes their endpoints.

use crate::informers::Informers;
use crate::owner::controller_reference;
use crate::work::{self, Key, Queue};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{self as discovery, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Upstream's `--max-endpoints-per-slice` default.
const PER_SLICE: usize = 100;
/// Everything is looked at again this often, whatever the events.
const RESYNC: Duration = Duration::from_secs(300);
/// Services reconciled at once (upstream's `--concurrent-service-endpoint-syncs`).
const WORKERS: usize = 5;

/// An IP family: a Service's `spec.ipFamilies` entry and an EndpointSlice's `addressType`
/// (the same words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    IPv4,
    IPv6,
}

impl Family {
    /// The API's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::IPv4 => "IPv4",
            Family::IPv6 => "IPv6",
        }
    }

    fn parse(s: &str) -> Option<Family> {
        match s {
            "IPv4" => Some(Family::IPv4),
            "IPv6" => Some(Family::IPv6),
            _ => None,
        }
    }

    /// The family of a canonical address (see [`canonical`]).
    fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() { Family::IPv4 } else { Family::IPv6 }
    }
}

/// An address as upstream re-spells it (Go's `net.IP.String()`): an IPv4-mapped IPv6 address is
/// the IPv4 one, IPv6 in RFC 5952 form. None if it is not an address.
fn canonical(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// The families the Service itself says: `spec.ipFamilies`, or for an object written before
/// there were any, its cluster IPs' (upstream's `getAddressTypesForService`). Empty for a
/// headless Service without ipFamilies.
fn declared_families(spec: &ServiceSpec) -> Vec<Family> {
    let declared: Vec<Family> = spec.ip_families.iter().flatten().filter_map(|f| Family::parse(f)).collect();
    let listed = if declared.is_empty() {
        let ips = spec.cluster_ips.iter().flatten().chain(spec.cluster_ip.iter());
        ips.filter_map(|ip| canonical(ip)).map(|ip| Family::of(&ip)).collect()
    } else {
        declared
    };
    let mut out: Vec<Family> = Vec::new();
    for f in listed {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// The families a Service's slices are made for, its primary family first: what it declares,
/// else IPv4 (upstream assumes both for a headless Service without ipFamilies, a left-over of
/// clusters upgraded to dual stack; skiff's API server gives every Service its families).
pub fn families(spec: &ServiceSpec) -> Vec<Family> {
    let declared = declared_families(spec);
    if declared.is_empty() { vec![Family::IPv4] } else { declared }
}

/// One pod's place behind a Service: where it is and how it stands.
#[derive(Debug, Clone, PartialEq)]
struct Backend {
    /// Every address of the pod (`status.podIPs`), canonical.
    ips: Vec<IpAddr>,
    /// Its address in the Endpoints object: the first of the Service's primary family.
    primary: Option<String>,
    pod: ObjectReference,
    node: Option<String>,
    hostname: Option<String>,
    ready: bool,
    serving: bool,
    terminating: bool,
}

impl Backend {
    /// The pod's addresses of `family` (in practice one), as a slice endpoint lists them.
    fn addresses(&self, family: Family) -> Vec<String> {
        self.ips.iter().filter(|ip| Family::of(ip) == family).map(IpAddr::to_string).collect()
    }
}

/// A Service's ports as one group of pods serves them (a named target port can differ by pod).
type Ports = Vec<discovery::EndpointPort>;

/// One EndpointSlice a Service should have.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredSlice {
    pub address_type: Family,
    pub ports: Ports,
    pub endpoints: Vec<discovery::Endpoint>,
}

/// What a Service's endpoints should be: its Endpoints, and its slices (each family's in turn,
/// the primary family's first).
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub endpoints: Endpoints,
    pub slices: Vec<DesiredSlice>,
}

fn is_ready(pod: &Pod) -> bool {
    pod.status.iter().flat_map(|s| s.conditions.iter().flatten()).any(|c| c.type_ == "Ready" && c.status == "True")
}

fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// A pod's addresses: `status.podIPs`, or `status.podIP` alone for a status written without the
/// list (the API server keeps `podIP` = `podIPs[0]`). Ones that do not parse are left out.
fn pod_ips(pod: &Pod) -> Vec<IpAddr> {
    let Some(status) = pod.status.as_ref() else { return Vec::new() };
    let listed: Vec<&str> = status.pod_ips.iter().flatten().map(|p| p.ip.as_str()).collect();
    let ips: Vec<&str> = if listed.is_empty() { status.pod_ip.iter().map(String::as_str).collect() } else { listed };
    ips.into_iter().filter_map(canonical).collect()
}

/// The slice port `port` is on `pod` (None: no pod to name a port, so only numbers resolve): a
/// target number as it is, a name by the pod's container ports; None if it does not resolve.
fn slice_port(port: &ServicePort, pod: Option<&Pod>) -> Option<discovery::EndpointPort> {
    let number = match port.target_port.as_ref() {
        None => port.port,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(name)) => {
            (pod?.spec.iter().flat_map(|s| s.containers.iter()))
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(name.as_str()) && p.protocol == port.protocol)?
                .container_port
        }
    };
    Some(discovery::EndpointPort {
        name: Some(port.name.clone().unwrap_or_default()),
        protocol: port.protocol.clone(),
        port: Some(number),
        app_protocol: port.app_protocol.clone(),
    })
}

/// The endpoints `svc` should have, from the pods of its namespace (upstream's rules for which
/// pods count: an address, not finished; being deleted means terminating).
pub fn desired(svc: &Service, pods: &[Arc<Pod>]) -> Option<Desired> {
    let spec = svc.spec.as_ref()?;
    let selector = spec.selector.as_ref()?;
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let ports = spec.ports.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let families = families(spec);
    // The Endpoints object's one family (upstream's `podToEndpointAddressForService`): the
    // primary one; a headless Service without ipFamilies takes each pod's `status.podIP`'s.
    let primary = declared_families(spec).first().copied();
    let mut groups: BTreeMap<String, (Ports, Vec<Backend>)> = BTreeMap::new();
    for pod in pods.iter().filter(|p| selects(selector, p)) {
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
        let ips = pod_ips(pod);
        if ips.is_empty() || matches!(phase, "Succeeded" | "Failed") {
            continue;
        }
        let pod_family = || status.and_then(|s| s.pod_ip.as_deref()).and_then(canonical).map(|ip| Family::of(&ip));
        let endpoints_family = primary.or_else(pod_family).unwrap_or(Family::IPv4);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let ready = is_ready(pod);
        let pod_spec = pod.spec.as_ref();
        let backend = Backend {
            primary: ips.iter().find(|ip| Family::of(ip) == endpoints_family).map(IpAddr::to_string),
            ips,
            pod: ObjectReference {
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                namespace: pod.metadata.namespace.clone(),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            },
            node: pod_spec.and_then(|s| s.node_name.clone()),
            // A pod's own DNS name under a headless Service that is its subdomain.
            hostname: pod_spec
                .filter(|s| s.subdomain.as_deref() == Some(name.as_str()))
                .and_then(|s| s.hostname.clone()),
            ready: publish_not_ready || (ready && !terminating),
            serving: publish_not_ready || ready,
            terminating,
        };
        let resolved: Ports = ports.iter().filter_map(|p| slice_port(p, Some(pod))).collect();
        let key = serde_json::to_string(&resolved).unwrap_or_default();
        groups.entry(key).or_insert_with(|| (resolved, Vec::new())).1.push(backend);
    }
    let mut subsets = Vec::new();
    for (ports, backends) in groups.values() {
        // Endpoints leave out terminating pods (unless every address is published) and pods
        // without an address of the primary family.
        let mut listed: Vec<(&str, &Backend)> = (backends.iter())
            .filter(|b| publish_not_ready || !b.terminating)
            .filter_map(|b| Some((b.primary.as_deref()?, b)))
            .collect();
        listed.sort_by(|a, b| a.0.cmp(b.0));
        let address = |(ip, b): &(&str, &Backend)| EndpointAddress {
            ip: ip.to_string(),
            hostname: b.hostname.clone(),
            node_name: b.node.clone(),
            target_ref: Some(b.pod.clone()),
        };
        let (ready, not_ready): (Vec<_>, Vec<_>) = listed.into_iter().partition(|(_, b)| b.ready);
        if !ready.is_empty() || !not_ready.is_empty() {
            subsets.push(EndpointSubset {
                addresses: (!ready.is_empty()).then(|| ready.iter().map(address).collect()),
                not_ready_addresses: (!not_ready.is_empty()).then(|| not_ready.iter().map(address).collect()),
                ports: (!ports.is_empty()).then(|| {
                    ports
                        .iter()
                        .map(|p| EndpointPort {
                            name: p.name.clone().filter(|n| !n.is_empty()),
                            port: p.port.unwrap_or_default(),
                            protocol: p.protocol.clone(),
                            app_protocol: p.app_protocol.clone(),
                        })
                        .collect()
                }),
            });
        }
    }
    let mut slices = Vec::new();
    for &family in &families {
        let before = slices.len();
        for (ports, backends) in groups.values() {
            // A pod without an address of this family is not in this family's slices.
            let mut endpoints: Vec<discovery::Endpoint> = backends
                .iter()
                .filter_map(|b| {
                    let addresses = b.addresses(family);
                    (!addresses.is_empty()).then(|| discovery::Endpoint {
                        addresses,
                        conditions: Some(EndpointConditions {
                            ready: Some(b.ready),
                            serving: Some(b.serving),
                            terminating: Some(b.terminating),
                        }),
                        hostname: b.hostname.clone(),
                        node_name: b.node.clone(),
                        target_ref: Some(b.pod.clone()),
                        ..Default::default()
                    })
                })
                .collect();
            endpoints.sort_by(|a, b| a.addresses.cmp(&b.addresses));
            for chunk in endpoints.chunks(PER_SLICE) {
                slices.push(DesiredSlice { address_type: family, ports: ports.clone(), endpoints: chunk.to_vec() });
            }
        }
        // A family with no endpoints still has one slice, with none (upstream's placeholder).
        if slices.len() == before {
            let ports = ports.iter().filter_map(|p| slice_port(p, None)).collect();
            slices.push(DesiredSlice { address_type: family, ports, endpoints: Vec::new() });
        }
    }
    let endpoints = Endpoints {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: svc.metadata.namespace.clone(),
            labels: svc.metadata.labels.clone(),
            ..Default::default()
        },
        subsets: (!subsets.is_empty()).then_some(subsets),
    };
    Some(Desired { endpoints, slices })
}

struct Ctx {
    /// Writes Endpoints (upstream's endpoint controller's account).
    endpoints_client: kube::Client,
    /// Writes EndpointSlices (upstream's endpointslice controller's account).
    slices_client: kube::Client,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    slices: Store<EndpointSlice>,
}

fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), svc.metadata.name.clone().unwrap_or_default());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

/// The slices of `service` this controller manages, in name order.
fn managed_slices(slices: &Store<EndpointSlice>, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
    let mut out: Vec<Arc<EndpointSlice>> = work::in_namespace(slices, namespace)
        .into_iter()
        .filter(|s| {
            let labels = s.metadata.labels.as_ref();
            labels.and_then(|l| l.get(SERVICE_NAME_LABEL)).map(String::as_str) == Some(service)
                && labels.and_then(|l| l.get(MANAGED_BY_LABEL)).map(String::as_str) == Some(MANAGED_BY)
        })
        .collect();
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    out
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, kube::Error> {
    let endpoints_api = Api::<Endpoints>::namespaced(ctx.endpoints_client.clone(), &key.namespace);
    let slices_api = Api::<EndpointSlice>::namespaced(ctx.slices_client.clone(), &key.namespace);
    let existing = managed_slices(&ctx.slices, &key.namespace, &key.name);
    let svc = ctx.services.get(&ObjectRef::new(&key.name).within(&key.namespace));
    let gone = svc.is_none();
    let wanted = svc.as_ref().and_then(|s| desired(s, &work::in_namespace(&ctx.pods, &key.namespace)));
    let (Some(svc), Some(wanted)) = (svc, wanted) else {
        // Gone, or without a selector: upstream removes the Endpoints it would have written.
        if gone {
            ignore_missing(endpoints_api.delete(&key.name, &DeleteParams::default()).await.map(drop))?;
        }
        for s in existing {
            let name = s.metadata.name.clone().unwrap_or_default();
            ignore_missing(slices_api.delete(&name, &DeleteParams::default()).await.map(drop))?;
        }
        return Ok(None);
    };

    // Endpoints, named as the Service (a stale cache makes the write fail, and the key comes
    // back a second later).
    match ctx.endpoints.get(&ObjectRef::new(&key.name).within(&key.namespace)) {
        None => drop(endpoints_api.create(&PostParams::default(), &wanted.endpoints).await?),
        Some(current)
            if current.subsets != wanted.endpoints.subsets
                || current.metadata.labels != wanted.endpoints.metadata.labels =>
        {
            let mut next = wanted.endpoints.clone();
            next.metadata.resource_version = current.metadata.resource_version.clone();
            endpoints_api.replace(&key.name, &PostParams::default(), &next).await?;
        }
        Some(_) => {}
    }

    let labels = slice_labels(&svc);
    let (pairs, unused) = pair_slices(existing, &wanted.slices);
    for (want, current) in pairs {
        let (endpoints, address_type) = (&want.endpoints, want.address_type.as_str());
        let ports = (!want.ports.is_empty()).then(|| want.ports.clone());
        let slice = EndpointSlice {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", key.name)),
                namespace: Some(key.namespace.clone()),
                labels: Some(labels.clone()),
                owner_references: Some(vec![controller_reference(svc.as_ref())]),
                ..Default::default()
            },
            address_type: address_type.into(),
            endpoints: Some(endpoints.clone()),
            ports: ports.clone(),
        };
        match current {
            None => drop(slices_api.create(&PostParams::default(), &slice).await?),
            Some(current) => {
                let same = current.endpoints.clone().unwrap_or_default() == *endpoints
                    && current.ports == slice.ports
                    && current.metadata.labels.as_ref() == Some(&labels);
                if !same {
                    let mut next = slice;
                    next.metadata.name = current.metadata.name.clone();
                    next.metadata.generate_name = None;
                    next.metadata.resource_version = current.metadata.resource_version.clone();
                    let name = current.metadata.name.clone().unwrap_or_default();
                    slices_api.replace(&name, &PostParams::default(), &next).await?;
                }
            }
        }
    }
    for s in unused {
        let name = s.metadata.name.clone().unwrap_or_default();
        tracing::debug!(slice = name, address_type = s.address_type, "deleting an EndpointSlice no longer needed");
        ignore_missing(slices_api.delete(&name, &DeleteParams::default()).await.map(drop))?;
    }
    Ok(None)
}

/// A wanted slice and the existing one it is written over (None: a new one).
type Pair<'a> = (&'a DesiredSlice, Option<Arc<EndpointSlice>>);

/// Which existing slice each wanted one reuses (None: a new one), and the existing ones left
/// over, to delete. A slice is reused only for its own family (`addressType` cannot change), one
/// with the same ports first, so the slices of a family the Service no longer has are left over.
fn pair_slices(existing: Vec<Arc<EndpointSlice>>, wanted: &[DesiredSlice]) -> (Vec<Pair<'_>>, Vec<Arc<EndpointSlice>>) {
    let mut unused = existing;
    let pairs = wanted
        .iter()
        .map(|want| {
            let ports = (!want.ports.is_empty()).then(|| want.ports.clone());
            let of_family = |s: &Arc<EndpointSlice>| s.address_type == want.address_type.as_str();
            let pick = (unused.iter().position(|s| of_family(s) && s.ports == ports))
                .or_else(|| unused.iter().position(of_family));
            (want, pick.map(|i| unused.remove(i)))
        })
        .collect();
    (pairs, unused)
}

fn ignore_missing(r: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match r {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other,
    }
}

/// Run the endpoints controller until the process stops.
pub async fn run(informers: &Informers) {
    let queue: Arc<Queue<Key>> = Queue::new();
    let q = queue.clone();
    let services = informers.watch(move |s: &Service| q.add(Key::of(s))).await;
    // A pod change may concern every Service of its namespace (its labels may have stopped
    // matching one): each looks again, which is cheap with the caches.
    let (q, all) = (queue.clone(), services.clone());
    let pods = informers
        .watch(move |p: &Pod| {
            let ns = p.metadata.namespace.as_deref().unwrap_or_default();
            for s in work::in_namespace(&all, ns) {
                q.add(Key::of(s.as_ref()));
            }
        })
        .await;
    // An Endpoints object changed by anyone else is put back (it is named as its Service).
    let q = queue.clone();
    let endpoints = informers.watch(move |e: &Endpoints| q.add(Key::of(e))).await;
    let q = queue.clone();
    let slices = informers
        .watch(move |s: &EndpointSlice| {
            if let Some(service) = s.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)) {
                q.add(Key { namespace: s.metadata.namespace.clone().unwrap_or_default(), name: service.clone() });
            }
        })
        .await;
    work::resync(queue.clone(), services.clone(), RESYNC);
    let ctx = Ctx {
        endpoints_client: informers.client_as(crate::identity::ENDPOINTS),
        slices_client: informers.client_as(crate::identity::ENDPOINT_SLICES),
        services,
        pods,
        endpoints,
        slices,
    };
    work::drive_concurrently(queue, WORKERS, "Endpoints", |key| {
        let ctx = &ctx;
        async move { reconcile(ctx, &key).await }
    })
    .await;
}

#[cfg(test)]
mod tests;
