//! The Node authorizer's graph as the API server keeps it: every pod and PersistentVolume,
//! listed from the store at one revision and followed by a watch of each (upstream's graph
//! populator over its pod and PV informers), applied to one shared [`Graph`] as each event
//! arrives. A request only takes the read lock for a lookup; it never waits for the store.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{PersistentVolume, Pod};
use skiff_core::auth::Graph;
use skiff_store::{EventType, KeyValue, RangeRequest, Revision, Store, StoreError, WatchItem, WatchStream};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// Where every pod is kept.
const PODS: &str = "/registry/pods/";
/// Where every PersistentVolume is kept (cluster-scoped: `/registry/persistentvolumes/NAME`;
/// the slash keeps the claims under `/registry/persistentvolumeclaims/` out).
const VOLUMES: &str = "/registry/persistentvolumes/";

/// The graph, kept current in the background.
#[derive(Clone)]
pub struct NodeGraph {
    graph: Arc<RwLock<Graph>>,
}

impl NodeGraph {
    /// List the pods and volumes (so the first request is decided on them) and follow them.
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
    key.strip_prefix(PODS)?.split_once('/')
}

/// `/registry/persistentvolumes/NAME` → NAME.
fn volume_key(key: &str) -> Option<&str> {
    key.strip_prefix(VOLUMES).filter(|name| !name.is_empty() && !name.contains('/'))
}

/// Apply one stored pod or volume; one that does not decode grants nothing (and says so).
fn set(graph: &mut Graph, kv: &KeyValue) {
    if kv.key.starts_with(PODS) {
        match serde_json::from_slice::<Pod>(&kv.value) {
            Ok(pod) => graph.set_pod(&pod),
            Err(e) => {
                tracing::warn!(key = %kv.key, error = %e, "a pod that does not decode grants its node nothing");
                remove(graph, &kv.key);
            }
        }
    } else if kv.key.starts_with(VOLUMES) {
        match serde_json::from_slice::<PersistentVolume>(&kv.value) {
            Ok(pv) => graph.set_volume(&pv),
            Err(e) => {
                tracing::warn!(key = %kv.key, error = %e, "a volume that does not decode is reached by no node");
                remove(graph, &kv.key);
            }
        }
    }
}

/// Forget the pod or volume stored at `key`.
fn remove(graph: &mut Graph, key: &str) {
    if let Some((ns, name)) = pod_key(key) {
        graph.remove_pod(ns, name);
    } else if let Some(name) = volume_key(key) {
        graph.remove_volume(name);
    }
}

/// Both prefixes at one revision, so the two watches resume from the same point.
async fn list(store: &dyn Store) -> Result<(Graph, Revision), StoreError> {
    let (pods, revision) = store.list(PODS).await?;
    let volumes = store.range(RangeRequest { revision: Some(revision), ..RangeRequest::prefix(VOLUMES) }).await?;
    let mut graph = Graph::default();
    for kv in pods.iter().chain(&volumes.items) {
        set(&mut graph, kv);
    }
    Ok((graph, revision))
}

/// One watch item applied; None when the watch failed.
fn apply(shared: &NodeGraph, item: Result<WatchItem, StoreError>) -> Option<()> {
    match item {
        Ok(WatchItem::Event(e)) => {
            let mut graph = shared.write();
            match e.kind {
                EventType::Deleted => remove(&mut graph, &e.kv.key),
                _ => set(&mut graph, &e.kv),
            }
            Some(())
        }
        Ok(WatchItem::Progress(_)) => Some(()),
        Err(e) => {
            tracing::debug!(error = %e, "a node graph watch ended");
            None
        }
    }
}

async fn watch_both(store: &dyn Store, revision: Revision) -> Result<(WatchStream, WatchStream), StoreError> {
    Ok((store.watch(PODS, revision).await?, store.watch(VOLUMES, revision).await?))
}

/// Apply the store's changes from `revision` on; when either watch ends or falls behind
/// compaction, both are started again from fresh lists, which replace the graph whole (so the
/// graph always holds one list's revision and every event after it).
async fn follow(store: Arc<dyn Store>, shared: NodeGraph, mut revision: Revision) {
    loop {
        match watch_both(store.as_ref(), revision).await {
            Ok((mut pods, mut volumes)) => loop {
                let item = tokio::select! {
                    item = pods.next() => item,
                    item = volumes.next() => item,
                };
                if item.and_then(|item| apply(&shared, item)).is_none() {
                    break;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "watching pods and volumes for the node graph");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        // Until a list succeeds the graph stays as it was: stale, but never half rebuilt.
        revision = loop {
            match list(store.as_ref()).await {
                Ok((graph, r)) => {
                    *shared.write() = graph;
                    break r;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listing pods and volumes for the node graph");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
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

    fn claimant(name: &str, node: &str, claim: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"metadata": {"namespace": "ns", "name": name, "uid": name},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]}}))
        .expect("json")
    }

    fn volume(name: &str, claim: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "hostPath": {"path": "/data"},
                "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "ns", "name": claim}}}))
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

    #[tokio::test]
    async fn follows_the_volumes_in_the_store() {
        use Vertex::PersistentVolume as Pv;
        let store: Arc<dyn Store> = Arc::new(skiff_store::MemoryStore::new());
        store.create("/registry/pods/ns/a", claimant("a", "n1", "data")).await.expect("create");
        store.create("/registry/persistentvolumes/pv1", volume("pv1", "data")).await.expect("create");
        // A claim is not a volume, though its prefix starts like theirs.
        let claim = br#"{"metadata": {"namespace": "ns", "name": "data"}, "spec": {"volumeName": "pv1"}}"#;
        store.create("/registry/persistentvolumeclaims/ns/data", claim.to_vec()).await.expect("create");
        let graph = NodeGraph::start(store.clone()).await.expect("start");
        assert!(graph.read().has_path(Pv, "", "pv1", "n1"), "listed before the first request");
        assert_eq!(graph.read().volumes(), 1);

        store.create("/registry/persistentvolumes/pv2", volume("pv2", "logs")).await.expect("create");
        store.create("/registry/pods/ns/b", claimant("b", "n2", "logs")).await.expect("create");
        assert!(until(&graph, |g| g.has_path(Pv, "", "pv2", "n2")).await);
        assert!(!graph.read().has_path(Pv, "", "pv2", "n1"));
        // Rebound to b's claim: it moves from n1 to n2.
        let kv = store.get("/registry/persistentvolumes/pv1").await.expect("get").expect("pv1");
        store.update("/registry/persistentvolumes/pv1", volume("pv1", "logs"), kv.mod_revision).await.expect("update");
        assert!(until(&graph, |g| !g.has_path(Pv, "", "pv1", "n1") && g.has_path(Pv, "", "pv1", "n2")).await);
        store.delete("/registry/persistentvolumes/pv2", None).await.expect("delete");
        assert!(until(&graph, |g| !g.has_path(Pv, "", "pv2", "n2")).await);
        // A volume that does not decode is reached by no node.
        let kv = store.get("/registry/persistentvolumes/pv1").await.expect("get").expect("pv1");
        store
            .update("/registry/persistentvolumes/pv1", b"{\"spec\": 7}".to_vec(), kv.mod_revision)
            .await
            .expect("update");
        assert!(until(&graph, |g| !g.has_path(Pv, "", "pv1", "n2")).await);
        assert_eq!(graph.read().volumes(), 0);
        assert!(graph.read().has_path(Vertex::PersistentVolumeClaim, "ns", "logs", "n2"), "the pods stay");
    }

    /// A store whose first volume watch delivers nothing, then fails when `fail` fires.
    struct Flaky {
        inner: skiff_store::MemoryStore,
        fail: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    }

    #[async_trait::async_trait]
    impl Store for Flaky {
        async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
            self.inner.get(key).await
        }
        async fn range(&self, req: RangeRequest<'_>) -> Result<skiff_store::Page, StoreError> {
            self.inner.range(req).await
        }
        async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
            self.inner.create(key, value).await
        }
        async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue, StoreError> {
            self.inner.update(key, value, expected).await
        }
        async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
            self.inner.delete(key, expected).await
        }
        async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
            let fail = if prefix == VOLUMES { self.fail.lock().expect("lock").take() } else { None };
            match fail {
                Some(rx) => Ok(futures::stream::once(async move {
                    let _ = rx.await;
                    Err(StoreError::Compacted { requested: after, compacted: after + 1 })
                })
                .boxed()),
                None => self.inner.watch(prefix, after).await,
            }
        }
        async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
            self.inner.compact(revision).await
        }
        async fn current_revision(&self) -> Result<Revision, StoreError> {
            self.inner.current_revision().await
        }
        async fn compacted_revision(&self) -> Result<Revision, StoreError> {
            self.inner.compacted_revision().await
        }
        async fn wait_for(&self, revision: Revision, timeout: Duration) -> Result<bool, StoreError> {
            self.inner.wait_for(revision, timeout).await
        }
    }

    #[tokio::test]
    async fn a_failed_watch_rebuilds_the_graph_from_fresh_lists() {
        use Vertex::PersistentVolume as Pv;
        let (fail, rx) = tokio::sync::oneshot::channel();
        let store = Arc::new(Flaky { inner: skiff_store::MemoryStore::new(), fail: std::sync::Mutex::new(Some(rx)) });
        store.create("/registry/pods/ns/a", claimant("a", "n1", "data")).await.expect("create");
        let graph = NodeGraph::start(store.clone()).await.expect("start");
        // The pods' watch works; the volumes' sees nothing until it fails.
        store.create("/registry/persistentvolumes/pv1", volume("pv1", "data")).await.expect("create");
        store.create("/registry/pods/ns/b", pod("b", "n2", "s2")).await.expect("create");
        assert!(until(&graph, |g| g.has_path(Vertex::Secret, "ns", "s2", "n2")).await);
        assert!(!graph.read().has_path(Pv, "", "pv1", "n1"), "missed by the dud watch");
        fail.send(()).expect("send");
        assert!(until(&graph, |g| g.has_path(Pv, "", "pv1", "n1")).await, "relisted");
        assert!(graph.read().has_path(Vertex::Secret, "ns", "s2", "n2") && graph.read().pods() == 2);
        // And followed again afterwards.
        store.delete("/registry/pods/ns/a", None).await.expect("delete");
        assert!(until(&graph, |g| !g.has_path(Pv, "", "pv1", "n1")).await);
    }
}
