//! The built-in load balancer (k3s's ServiceLB in spirit, without its per-Service pods): a
//! `type: LoadBalancer` Service is served by every node's service proxy on the node's own
//! addresses, so its `status.loadBalancer.ingress` names them (each node's ExternalIP, else its
//! InternalIP). A Service of another type, or one that asks for another `loadBalancerClass`,
//! gets no address from us.

use crate::informers::Informers;
use crate::work::{self, Key, Queue};
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Node, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
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

struct Ctx {
    client: kube::Client,
    services: Store<Service>,
    nodes: Store<Node>,
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, kube::Error> {
    let Some(svc) = ctx.services.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return Ok(None) };
    let Some(want) = ingress(&svc, &ctx.nodes.state()) else { return Ok(None) };
    let have = svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|l| l.ingress.clone());
    if have.unwrap_or_default() == want {
        return Ok(None);
    }
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": want}}});
    api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(None)
}

pub async fn run(informers: &Informers) {
    let queue: Arc<Queue<Key>> = Queue::new();
    let q = queue.clone();
    let services = informers.watch(move |s: &Service| q.add(Key::of(s))).await;
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
    let ctx = Ctx { client: informers.client().clone(), services, nodes };
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
