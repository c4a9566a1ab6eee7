//! The built-in load balancer (k3s's ServiceLB in spirit, without its per-Service pods): a
//! `type: LoadBalancer` Service is served by every node's service proxy on the node's own
//! addresses, so its `status.loadBalancer.ingress` names them (each node's ExternalIP, else its
//! InternalIP). A Service of another type, or one that asks for another `loadBalancerClass`,
//! gets no address from us. A port can be served once per node: a load balancer whose port the
//! node itself listens on (the API server, the ingress) or an older load balancer holds stays
//! pending with a Warning event (its traffic would otherwise be diverted, or split), as a k3s
//! ServiceLB pod whose host port is taken stays unscheduled.

use crate::informers::Informers;
use crate::work::{self, Key, Queue};
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Node, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use skiff_client::events::{Recorder, Type};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Everything is looked at again this often, whatever the events.
const RESYNC: Duration = Duration::from_secs(300);

/// The addresses the nodes serve load balancers and Ingresses on: each one's ExternalIP, else
/// its InternalIP (IPv4), sorted.
pub fn node_addresses(nodes: &[Arc<Node>]) -> Vec<String> {
    let mut ips: Vec<String> = nodes
        .iter()
        .filter_map(|n| {
            let addresses = n.status.as_ref()?.addresses.as_ref()?;
            let of = |t: &str| addresses.iter().find(|a| a.type_ == t).map(|a| a.address.clone());
            of("ExternalIP").or_else(|| of("InternalIP"))
        })
        .filter(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// The addresses a Service's status should list; None when it is not ours to set.
pub fn ingress(svc: &Service, nodes: &[Arc<Node>]) -> Option<Vec<LoadBalancerIngress>> {
    let spec = svc.spec.as_ref()?;
    if spec.load_balancer_class.is_some() {
        return None; // Another implementation's.
    }
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return Some(vec![]);
    }
    let ips = node_addresses(nodes);
    Some(ips.into_iter().map(|ip| LoadBalancerIngress { ip: Some(ip), ..Default::default() }).collect())
}

/// A port the nodes themselves listen on, which no load balancer may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedPort {
    /// `TCP`, `UDP` or `SCTP`, as a Service port names it.
    pub protocol: String,
    pub port: i32,
    /// Who listens there, for the event: "the API server".
    pub owner: String,
}

/// Whether `svc` is a load balancer of ours.
fn ours(svc: &Service) -> bool {
    svc.spec.as_ref().is_some_and(|s| s.type_.as_deref() == Some("LoadBalancer") && s.load_balancer_class.is_none())
}

/// Each load balancer of ours that cannot have the nodes' addresses, with why: taking them in
/// creation order, each takes its ports unless one is reserved or an earlier one holds it.
pub fn conflicts(services: &[Arc<Service>], reserved: &[ReservedPort]) -> HashMap<Key, String> {
    let mut lbs: Vec<&Arc<Service>> = services.iter().filter(|s| ours(s)).collect();
    lbs.sort_by(|a, b| {
        let age = |s: &Service| s.metadata.creation_timestamp.clone().map(|t| t.0);
        (age(a), &a.metadata.namespace, &a.metadata.name).cmp(&(age(b), &b.metadata.namespace, &b.metadata.name))
    });
    let mut held: HashMap<(String, i32), String> =
        reserved.iter().map(|r| ((r.protocol.clone(), r.port), r.owner.clone())).collect();
    let mut out = HashMap::new();
    for svc in lbs {
        let ports: Vec<(String, i32)> = (svc.spec.as_ref().and_then(|s| s.ports.as_ref()).into_iter().flatten())
            .map(|p| (p.protocol.clone().unwrap_or_else(|| "TCP".into()), p.port))
            .collect();
        let taken = ports.iter().find_map(|p| held.get(p).map(|owner| (p, owner)));
        match taken {
            Some(((protocol, port), owner)) => {
                out.insert(Key::of(svc.as_ref()), format!("port {port}/{protocol} is in use on the nodes by {owner}"));
            }
            None => {
                let name = format!(
                    "the load balancer {}/{}",
                    svc.metadata.namespace.as_deref().unwrap_or_default(),
                    svc.metadata.name.as_deref().unwrap_or_default()
                );
                held.extend(ports.into_iter().map(|p| (p, name.clone())));
            }
        }
    }
    out
}

struct Ctx {
    client: kube::Client,
    recorder: Recorder,
    services: Store<Service>,
    nodes: Store<Node>,
    reserved: Vec<ReservedPort>,
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, kube::Error> {
    let Some(svc) = ctx.services.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return Ok(None) };
    let Some(mut want) = ingress(&svc, &ctx.nodes.state()) else { return Ok(None) };
    if let Some(why) = conflicts(&ctx.services.state(), &ctx.reserved).remove(key) {
        // Upstream's service controller's reason for a load balancer it could not make.
        let message = format!("Error syncing load balancer: failed to ensure load balancer: {why}");
        ctx.recorder
            .object(kube::Resource::object_ref(svc.as_ref(), &()), Type::Warning, "SyncLoadBalancerFailed", &message)
            .await;
        want.clear();
    }
    let have = svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|l| l.ingress.clone());
    if have.unwrap_or_default() == want {
        return Ok(None);
    }
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": want}}});
    api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(None)
}

/// Run the controller; `reserved` are the ports the nodes listen on themselves.
pub async fn run(informers: &Informers, reserved: Vec<ReservedPort>) {
    let queue: Arc<Queue<Key>> = Queue::new();
    // A load balancer that comes, goes or changes its ports may free or take another's port.
    let q = queue.clone();
    let all = Arc::new(std::sync::OnceLock::<Store<Service>>::new());
    let seen = all.clone();
    let services = informers
        .watch(move |s: &Service| {
            q.add(Key::of(s));
            if ours(s)
                && let Some(services) = seen.get()
            {
                services.state().iter().filter(|o| ours(o)).for_each(|o| q.add(Key::of(o.as_ref())));
            }
        })
        .await;
    let _ = all.set(services.clone());
    // A node that comes, goes or changes address concerns every load balancer.
    let (q, all) = (queue.clone(), services.clone());
    let nodes = informers
        .watch(move |_: &Node| {
            for s in all.state() {
                if s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer") {
                    q.add(Key::of(s.as_ref()));
                }
            }
        })
        .await;
    work::resync(queue.clone(), services.clone(), RESYNC);
    let client = informers.client_as(crate::identity::SERVICE_LB);
    let recorder = Recorder::new(client.clone(), "service-controller", "");
    let ctx = Ctx { client, recorder, services, nodes, reserved };
    work::drive(queue, "load balancer", |key| {
        let ctx = &ctx;
        async move { reconcile(ctx, &key).await }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(addresses: serde_json::Value) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "n"}, "status": {"addresses": addresses}}))
                .expect("node"),
        )
    }

    fn svc(spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": "s", "namespace": "d"}, "spec": spec})).expect("svc")
    }

    fn lb(name: &str, created: &str, ports: serde_json::Value) -> Arc<Service> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "d", "creationTimestamp": created},
                "spec": {"type": "LoadBalancer", "ports": ports},
            }))
            .expect("svc"),
        )
    }

    #[test]
    fn a_port_is_the_nodes_own_or_the_oldest_load_balancers() {
        let api = ReservedPort { protocol: "TCP".into(), port: 6443, owner: "the API server".into() };
        let services = [
            lb("b", "2026-01-02T00:00:00Z", json!([{"port": 80}])),
            lb("a", "2026-01-01T00:00:00Z", json!([{"port": 80}, {"port": 53, "protocol": "UDP"}])),
            lb("api", "2026-01-01T00:00:00Z", json!([{"port": 6443}])),
            lb("dns-tcp", "2026-01-03T00:00:00Z", json!([{"port": 53, "protocol": "TCP"}])),
            // Pending itself (6443), so its port 81 stays free for the next.
            lb("c", "2026-01-01T00:00:00Z", json!([{"port": 6443}, {"port": 81}])),
            lb("d", "2026-01-04T00:00:00Z", json!([{"port": 81}])),
        ];
        let mut found: Vec<(String, String)> =
            conflicts(&services, &[api]).into_iter().map(|(k, why)| (k.name, why)).collect();
        found.sort();
        assert_eq!(
            found,
            [
                ("api".to_string(), "port 6443/TCP is in use on the nodes by the API server".to_string()),
                ("b".to_string(), "port 80/TCP is in use on the nodes by the load balancer d/a".to_string()),
                ("c".to_string(), "port 6443/TCP is in use on the nodes by the API server".to_string()),
            ]
        );
    }

    #[test]
    fn load_balancers_get_the_nodes_addresses() {
        let nodes = [
            node(json!([{"type": "InternalIP", "address": "192.0.2.10"}, {"type": "Hostname", "address": "a"}])),
            node(
                json!([{"type": "InternalIP", "address": "192.0.2.11"}, {"type": "ExternalIP", "address": "203.0.113.5"}]),
            ),
        ];
        let ips = |i: Option<Vec<LoadBalancerIngress>>| -> Option<Vec<String>> {
            i.map(|v| v.into_iter().filter_map(|x| x.ip).collect())
        };
        assert_eq!(
            ips(ingress(&svc(json!({"type": "LoadBalancer"})), &nodes)),
            Some(vec!["192.0.2.10".to_string(), "203.0.113.5".to_string()])
        );
        // Not (or no longer) a load balancer: no addresses; another class's: not ours.
        assert_eq!(ips(ingress(&svc(json!({"type": "ClusterIP"})), &nodes)), Some(vec![]));
        assert_eq!(ingress(&svc(json!({"type": "LoadBalancer", "loadBalancerClass": "example.com/lb"})), &nodes), None);
    }
}
