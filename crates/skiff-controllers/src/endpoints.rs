//! The endpoints controller (upstream's EndpointSlice and Endpoints controllers in one): the pods
//! a Service selects become its EndpointSlices (one per port mapping, at most 100 endpoints
//! each, owned by the Service) and its Endpoints, ready, serving and terminating as the pods
//! are. The service proxy and cluster DNS read them. Services without a selector are left to
//! whoever writes their endpoints.

use crate::informers::Informers;
use crate::owner::controller_reference;
use crate::work::{self, Key, Queue};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service, ServicePort,
};
use k8s_openapi::api::discovery::v1::{self as discovery, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Upstream's `--max-endpoints-per-slice` default.
const PER_SLICE: usize = 100;
/// Everything is looked at again this often, whatever the events.
const RESYNC: Duration = Duration::from_secs(300);

/// One pod's place behind a Service: where it is and how it stands.
#[derive(Debug, Clone, PartialEq)]
struct Backend {
    ip: String,
    pod: ObjectReference,
    node: Option<String>,
    hostname: Option<String>,
    ready: bool,
    serving: bool,
    terminating: bool,
}

/// A Service's ports as one group of pods serves them (a named target port can differ by pod).
type Ports = Vec<discovery::EndpointPort>;

/// What a Service's endpoints should be: its Endpoints, and its slices' ports and endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub endpoints: Endpoints,
    pub slices: Vec<(Ports, Vec<discovery::Endpoint>)>,
}

fn is_ready(pod: &Pod) -> bool {
    pod.status.iter().flat_map(|s| s.conditions.iter().flatten()).any(|c| c.type_ == "Ready" && c.status == "True")
}

fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
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
    let mut groups: BTreeMap<String, (Ports, Vec<Backend>)> = BTreeMap::new();
    for pod in pods.iter().filter(|p| selects(selector, p)) {
        let status = pod.status.as_ref();
        let ip = status.and_then(|s| s.pod_ip.clone()).filter(|ip| !ip.is_empty());
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
        let Some(ip) = ip else { continue };
        if matches!(phase, "Succeeded" | "Failed") {
            continue;
        }
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let ready = is_ready(pod);
        let pod_spec = pod.spec.as_ref();
        let backend = Backend {
            ip,
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
    let mut slices = Vec::new();
    for (_, (ports, mut backends)) in groups {
        backends.sort_by(|a, b| a.ip.cmp(&b.ip));
        let address = |b: &Backend| EndpointAddress {
            ip: b.ip.clone(),
            hostname: b.hostname.clone(),
            node_name: b.node.clone(),
            target_ref: Some(b.pod.clone()),
        };
        // Endpoints leave terminating pods out (unless every address is published).
        let listed = backends.iter().filter(|b| publish_not_ready || !b.terminating);
        let (ready, not_ready): (Vec<&Backend>, Vec<&Backend>) = listed.partition(|b| b.ready);
        if !ready.is_empty() || !not_ready.is_empty() {
            subsets.push(EndpointSubset {
                addresses: (!ready.is_empty()).then(|| ready.iter().map(|b| address(b)).collect()),
                not_ready_addresses: (!not_ready.is_empty()).then(|| not_ready.iter().map(|b| address(b)).collect()),
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
        let endpoints: Vec<discovery::Endpoint> = backends
            .iter()
            .map(|b| discovery::Endpoint {
                addresses: vec![b.ip.clone()],
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
            .collect();
        for chunk in endpoints.chunks(PER_SLICE) {
            slices.push((ports.clone(), chunk.to_vec()));
        }
    }
    // A Service that selects nothing still has one slice, with no endpoints.
    if slices.is_empty() {
        let ports = ports.iter().filter_map(|p| slice_port(p, None)).collect();
        slices.push((ports, Vec::new()));
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
    client: kube::Client,
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
    let endpoints_api = Api::<Endpoints>::namespaced(ctx.client.clone(), &key.namespace);
    let slices_api = Api::<EndpointSlice>::namespaced(ctx.client.clone(), &key.namespace);
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

    // Slices: the existing ones are reused in order for the wanted ones (same ports first).
    let labels = slice_labels(&svc);
    let mut unused: Vec<Arc<EndpointSlice>> = existing;
    for (ports, endpoints) in &wanted.slices {
        let ports = (!ports.is_empty()).then(|| ports.clone());
        let pick = unused.iter().position(|s| s.ports == ports).or((!unused.is_empty()).then_some(0));
        let slice = EndpointSlice {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", key.name)),
                namespace: Some(key.namespace.clone()),
                labels: Some(labels.clone()),
                owner_references: Some(vec![controller_reference(svc.as_ref())]),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: Some(endpoints.clone()),
            ports: ports.clone(),
        };
        match pick.map(|i| unused.remove(i)) {
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
        ignore_missing(slices_api.delete(&name, &DeleteParams::default()).await.map(drop))?;
    }
    Ok(None)
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
    let ctx = Ctx { client: informers.client().clone(), services, pods, endpoints, slices };
    work::drive(queue, "Endpoints", |key| {
        let ctx = &ctx;
        async move { reconcile(ctx, &key).await }
    })
    .await;
}

#[cfg(test)]
mod tests;
