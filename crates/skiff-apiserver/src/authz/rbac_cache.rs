//! The RBAC objects as the authorizer reads them: every Role, ClusterRole and binding, listed
//! from the store and kept current by a watch, published as a ready-to-ask [`Authorizer`] after
//! each burst of changes (a request never waits for the store to decide).

use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::de::DeserializeOwned;
use skiff_core::auth::{Authorizer, Snapshot};
use skiff_store::{EventType, KeyValue, Revision, Store, WatchItem};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Where every RBAC object is kept (one group: one prefix).
const PREFIX: &str = "/registry/rbac.authorization.k8s.io/";

/// The RBAC objects, by store key.
#[derive(Default)]
struct Objects(BTreeMap<String, Vec<u8>>);

impl Objects {
    fn authorizer(&self) -> Authorizer {
        let mut s = Snapshot::default();
        for (key, value) in &self.0 {
            let Some(rest) = key.strip_prefix(PREFIX) else { continue };
            match rest.split('/').next() {
                Some("roles") => s.roles.extend(decode::<Role>(key, value)),
                Some("clusterroles") => s.cluster_roles.extend(decode::<ClusterRole>(key, value)),
                Some("rolebindings") => s.role_bindings.extend(decode::<RoleBinding>(key, value)),
                Some("clusterrolebindings") => s.cluster_role_bindings.extend(decode::<ClusterRoleBinding>(key, value)),
                _ => {}
            }
        }
        Authorizer::new(s)
    }
}

/// An object that does not decode grants nothing (and says so once).
fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    serde_json::from_slice(value)
        .map_err(|e| tracing::warn!(key, error = %e, "an RBAC object that does not decode grants nothing"))
        .ok()
}

/// The current authorizer, kept up to date in the background.
pub struct RbacCache {
    current: watch::Receiver<Arc<Authorizer>>,
}

impl RbacCache {
    /// List the RBAC objects (so the first request is decided on them) and follow them.
    pub async fn start(store: Arc<dyn Store>) -> Result<RbacCache, skiff_store::StoreError> {
        let (objects, revision) = list(store.as_ref()).await?;
        let (tx, rx) = watch::channel(Arc::new(objects.authorizer()));
        tokio::spawn(follow(store, objects, revision, tx));
        Ok(RbacCache { current: rx })
    }

    pub fn authorizer(&self) -> Arc<Authorizer> {
        self.current.borrow().clone()
    }

    /// A receiver of each new authorizer (what the registry checks RBAC writes with).
    pub fn receiver(&self) -> watch::Receiver<Arc<Authorizer>> {
        self.current.clone()
    }
}

/// One watch item applied: whether an object changed; None when the watch failed.
fn apply(
    objects: &mut Objects,
    revision: &mut Revision,
    item: Result<WatchItem, skiff_store::StoreError>,
) -> Option<bool> {
    match item {
        Ok(WatchItem::Event(e)) => {
            *revision = (*revision).max(e.kv.mod_revision);
            match e.kind {
                EventType::Deleted => objects.0.remove(&e.kv.key),
                _ => objects.0.insert(e.kv.key.clone(), e.kv.value.clone()),
            };
            Some(true)
        }
        Ok(WatchItem::Progress(r)) => {
            *revision = (*revision).max(r);
            Some(false)
        }
        Err(e) => {
            tracing::debug!(error = %e, "the RBAC watch ended");
            None
        }
    }
}

async fn list(store: &dyn Store) -> Result<(Objects, Revision), skiff_store::StoreError> {
    let (items, revision) = store.list(PREFIX).await?;
    Ok((Objects(items.into_iter().map(|KeyValue { key, value, .. }| (key, value)).collect()), revision))
}

/// Apply the store's changes from `revision` on, publishing after each burst; a watch that ends
/// or falls behind compaction is started again from a fresh list.
async fn follow(
    store: Arc<dyn Store>,
    mut objects: Objects,
    mut revision: Revision,
    tx: watch::Sender<Arc<Authorizer>>,
) {
    loop {
        let mut stream = match store.watch(PREFIX, revision).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "watching the RBAC objects");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok((o, r)) = list(store.as_ref()).await {
                    (objects, revision) = (o, r);
                    tx.send_replace(Arc::new(objects.authorizer()));
                }
                continue;
            }
        };
        while let Some(item) = stream.next().await {
            let Some(mut changed) = apply(&mut objects, &mut revision, item) else { break };
            // The rest of a burst first: one rebuild for all of it.
            let mut ended = false;
            while let Some(Some(item)) = futures::FutureExt::now_or_never(stream.next()) {
                match apply(&mut objects, &mut revision, item) {
                    Some(c) => changed |= c,
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            if changed {
                tx.send_replace(Arc::new(objects.authorizer()));
            }
            if ended {
                break;
            }
        }
        // Ended: start over from a fresh list (a compacted revision cannot be resumed).
        match list(store.as_ref()).await {
            Ok((o, r)) => {
                (objects, revision) = (o, r);
                tx.send_replace(Arc::new(objects.authorizer()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing the RBAC objects");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
