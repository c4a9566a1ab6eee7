//! The status of the Ingresses skiff serves (`skiff_core::ingress_class`): every node's ingress
//! answers for them, so `status.loadBalancer.ingress` lists the nodes' addresses, as a cloud
//! ingress controller lists its load balancer's. Other classes' Ingresses are left alone.

use crate::informers::Informers;
use crate::service_lb::node_addresses;
use crate::work::{self, Key, Queue};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, IngressLoadBalancerIngress};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;
use std::time::Duration;

/// Everything is looked at again this often, whatever the events.
const RESYNC: Duration = Duration::from_secs(300);

struct Ctx {
    client: kube::Client,
    ingresses: Store<Ingress>,
    classes: Store<IngressClass>,
    nodes: Store<Node>,
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<Option<Duration>, kube::Error> {
    let Some(ing) = ctx.ingresses.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return Ok(None) };
    if !skiff_core::ingress_class::serves(&ing, &ctx.classes.state()) {
        return Ok(None);
    }
    let want: Vec<IngressLoadBalancerIngress> = node_addresses(&ctx.nodes.state())
        .into_iter()
        .map(|ip| IngressLoadBalancerIngress { ip: Some(ip), ..Default::default() })
        .collect();
    let have = ing.status.as_ref().and_then(|s| s.load_balancer.as_ref()).and_then(|l| l.ingress.clone());
    if have.unwrap_or_default() == want {
        return Ok(None);
    }
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &key.namespace);
    let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": want}}});
    api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(None)
}

pub async fn run(informers: &Informers) {
    let queue: Arc<Queue<Key>> = Queue::new();
    let q = queue.clone();
    let ingresses = informers.watch(move |i: &Ingress| q.add(Key::of(i))).await;
    // A class or a node changing may concern every Ingress.
    let requeue_all = |queue: Arc<Queue<Key>>, all: Store<Ingress>| {
        move || all.state().iter().for_each(|i| queue.add(Key::of(i.as_ref())))
    };
    let again = requeue_all(queue.clone(), ingresses.clone());
    let classes = informers.watch(move |_: &IngressClass| again()).await;
    let again = requeue_all(queue.clone(), ingresses.clone());
    let nodes = informers.watch(move |_: &Node| again()).await;
    work::resync(queue.clone(), ingresses.clone(), RESYNC);
    let ctx = Ctx { client: informers.client_as(crate::identity::INGRESS_STATUS), ingresses, classes, nodes };
    work::drive(queue, "Ingress status", |key| {
        let ctx = &ctx;
        async move { reconcile(ctx, &key).await }
    })
    .await;
}
