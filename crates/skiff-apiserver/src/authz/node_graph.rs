//! The Node authorizer's graph as the API server keeps it: every pod, listed from the store and
//! followed by a watch (upstream's graph populator over a pod informer), applied to one shared
//! [`Graph`] as each event arrives. A request only takes the read lock for a lookup; it never
//! waits for the store.

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use skiff_core::auth::Graph;
use skiff_store::{EventType, KeyValue, Revision, Store, StoreError, WatchItem};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// Where every pod is kept.
const PREFIX: &str = "/registry/pods/";

/// The graph, kept current in the background.
#[derive(Clone)]
pub struct NodeGraph {
    graph: Arc<RwLock<Graph>>,
}

impl NodeGraph {
    /// List the pods (so the first request is decided on them) and follow them.
    pub async fn start(store: Arc<dyn Store>) -> Result<NodeGraph, StoreError> {
        let (graph, revision) = list(store.as_ref()).await?;
        let shared = NodeGraph { graph: Arc::new(RwLock::new(graph)) };
        tokio::spawn(follow(store, shared.clone(), revision));
        Ok(shared)
    }

    /// The graph as it stands, for one decision.
    pub fn read(&self) -> RwLockReadGuard<'_, Graph> {
        // A panic while holding the lock leaves a graph that is still whole (every change is
        // applied under one write): keep using it.
        self.graph.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Graph> {
        self.graph.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// `/registry/pods/NS/NAME` → (NS, NAME).
fn pod_key(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix(PREFIX)?.split_once('/')
}

/// Apply one stored pod; one that does not decode grants nothing (and says so).
fn set(graph: &mut Graph, kv: &KeyValue) {
    match serde_json::from_slice::<Pod>(&kv.value) {
        Ok(pod) => graph.set_pod(&pod),
        Err(e) => {
            tracing::warn!(key = %kv.key, error = %e, "a pod that does not decode grants its node nothing");
            if let Some((ns, name)) = pod_key(&kv.key) {
                graph.remove_pod(ns, name);
            }
        }
    }
}

async fn list(store: &dyn Store) -> Result<(Graph, Revision), StoreError> {
    let (items, revision) = store.list(PREFIX).await?;
    let mut graph = Graph::default();
    for kv in &items {
        set(&mut graph, kv);
    }
    Ok((graph, revision))
}

/// One watch item applied; None when the watch failed.
fn apply(shared: &NodeGraph, revision: &mut Revision, item: Result<WatchItem, StoreError>) -> Option<()> {
    match item {
        Ok(WatchItem::Event(e)) => {
            *revision = (*revision).max(e.kv.mod_revision);
            let mut graph = shared.write();
            match e.kind {
                EventType::Deleted => {
                    if let Some((ns, name)) = pod_key(&e.kv.key) {
                        graph.remove_pod(ns, name);
                    }
                }
                _ => set(&mut graph, &e.kv),
            }
            Some(())
        }
        Ok(WatchItem::Progress(r)) => {
            *revision = (*revision).max(r);
            Some(())
        }
        Err(e) => {
            tracing::debug!(error = %e, "the node graph's pod watch ended");
            None
        }
    }
}

/// Apply the store's changes from `revision` on; a watch that ends or falls behind compaction
/// is started again from a fresh list, which replaces the graph whole.
async fn follow(store: Arc<dyn Store>, shared: NodeGraph, mut revision: Revision) {
    loop {
        match store.watch(PREFIX, revision).await {
            Ok(mut stream) => {
                while let Some(item) = stream.next().await {
                    if apply(&shared, &mut revision, item).is_none() {
                        break;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "watching pods for the node graph");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        match list(store.as_ref()).await {
            Ok((graph, r)) => {
                *shared.write() = graph;
                revision = r;
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing pods for the node graph");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_core::auth::node_graph::Vertex;

    fn pod(name: &str, node: &str, secret: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"metadata": {"namespace": "ns", "name": name, "uid": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                "volumes": [{"name": "s", "secret": {"secretName": secret}}]}}))
        .expect("json")
    }

    async fn until(graph: &NodeGraph, f: impl Fn(&Graph) -> bool) -> bool {
        for _ in 0..200 {
            if f(&graph.read()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn follows_the_pods_in_the_store() {
        let store: Arc<dyn Store> = Arc::new(skiff_store::MemoryStore::new());
        store.create("/registry/pods/ns/a", pod("a", "n1", "s1")).await.expect("create");
        store.create("/registry/podtemplates/ns/t", b"{}".to_vec()).await.expect("not a pod");
        let graph = NodeGraph::start(store.clone()).await.expect("start");
        assert!(graph.read().has_path(Vertex::Secret, "ns", "s1", "n1"), "listed before the first request");
        store.create("/registry/pods/ns/b", pod("b", "n2", "s2")).await.expect("create");
        assert!(until(&graph, |g| g.has_path(Vertex::Secret, "ns", "s2", "n2")).await);
        store.delete("/registry/pods/ns/a", None).await.expect("delete");
        assert!(until(&graph, |g| !g.has_path(Vertex::Secret, "ns", "s1", "n1")).await);
        // An object that does not decode grants nothing.
        let kv = store.get("/registry/pods/ns/b").await.expect("get").expect("b");
        store.update("/registry/pods/ns/b", b"{\"spec\": 7}".to_vec(), kv.mod_revision).await.expect("update");
        assert!(until(&graph, |g| !g.has_path(Vertex::Pod, "ns", "b", "n2")).await);
        assert_eq!(graph.read().pods(), 0);
    }
}
