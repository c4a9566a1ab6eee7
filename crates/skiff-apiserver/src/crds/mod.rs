//! The CustomResourceDefinition controllers of apiextensions-apiserver, in the API server: every
//! definition is followed from the store; its names are accepted and it is established
//! (`naming`), the [`Catalog`] then serves its kinds (and OpenAPI publishes them); a definition
//! being deleted has its objects deleted first (`cleanup`), then goes.

mod cleanup;
pub mod naming;

use crate::catalog::Catalog;
use crate::openapi::OpenApi;
use crate::registry::{ObjectRef, Registry, WriteOptions};
use futures::StreamExt;
use jiff::Timestamp;
use serde_json::Value;
use skiff_core::kinds::{self, Part, customresourcedefinition as crd};
use skiff_core::meta;
use skiff_store::{EventType, Revision, Store, WatchItem};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where definitions are kept.
const PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

/// What follows the definitions: the registry to write through, what to tell of each change.
#[derive(Clone)]
pub struct Controller {
    registry: Registry,
    catalog: Arc<Catalog>,
    /// The OpenAPI documents, given the established definitions after each change.
    openapi: OpenApi,
    /// Definitions whose objects are being deleted (one cleanup each).
    cleaning: Arc<Mutex<BTreeSet<String>>>,
}

impl Controller {
    pub fn new(registry: Registry, catalog: Arc<Catalog>, openapi: OpenApi) -> Self {
        Controller { registry, catalog, openapi, cleaning: Arc::default() }
    }

    /// List the definitions, serve the established ones before returning (a restart serves
    /// its custom resources from the first request), and follow them in the background.
    pub async fn start(self) -> Result<(), skiff_store::StoreError> {
        let (defs, revision) = list(self.registry.store().as_ref()).await?;
        self.publish(&defs);
        let me = self.clone();
        tokio::spawn(async move { me.follow(defs, revision).await });
        Ok(())
    }

    fn publish(&self, defs: &BTreeMap<String, Value>) {
        let all: Vec<Value> = defs.values().cloned().collect();
        self.catalog.set_crds(&all);
        self.openapi.publish(self.catalog.snapshot().crds());
    }

    /// Bring each definition's status where it should be; start cleanups.
    async fn reconcile(&self, defs: &BTreeMap<String, Value>) {
        let mut all: Vec<Value> = defs.values().cloned().collect();
        for i in 0..all.len() {
            let def = &all[i];
            let name = meta::name(def).to_string();
            if meta::is_deleting(def) {
                if meta::finalizers(def).iter().any(|f| f == crd::CLEANUP_FINALIZER) {
                    self.clean_later(name);
                }
                continue;
            }
            let status = naming::desired_status(def, &all, Timestamp::now());
            if def.get("status") == Some(&status) {
                continue;
            }
            let mut next = def.clone();
            next["status"] = status;
            let r = ObjectRef { kind: kinds::CUSTOM_RESOURCE_DEFINITIONS, namespace: "", name: &name };
            // The names it takes count for the definitions after it in this pass (upstream's
            // mutation cache); a conflict means a newer version is on its way through the watch.
            match self.registry.update(r, next, Part::Status, &WriteOptions::default()).await {
                Ok(written) => all[i] = written,
                Err(e) => tracing::debug!(crd = %name, error = %e, "updating a definition's status"),
            }
        }
    }

    fn clean_later(&self, name: String) {
        if !self.cleaning.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.clone()) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            cleanup::run(&me.registry, &name).await;
            me.cleaning.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&name);
        });
    }

    /// Apply the store's changes, reconciling and publishing after each burst; a watch that
    /// ends is started again from a fresh list.
    async fn follow(self, mut defs: BTreeMap<String, Value>, mut revision: Revision) {
        let store = self.registry.store().clone();
        self.reconcile(&defs).await;
        loop {
            let mut stream = match store.watch(PREFIX, revision).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "watching the CustomResourceDefinitions");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if let Ok((d, r)) = list(store.as_ref()).await {
                        (defs, revision) = (d, r);
                        self.publish(&defs);
                    }
                    continue;
                }
            };
            while let Some(item) = stream.next().await {
                let mut changed = apply(&mut defs, &mut revision, item);
                let mut ended = changed.is_none();
                while !ended && let Some(Some(item)) = futures::FutureExt::now_or_never(stream.next()) {
                    match apply(&mut defs, &mut revision, item) {
                        Some(c) => changed = Some(changed.unwrap_or(false) | c),
                        None => ended = true,
                    }
                }
                if changed == Some(true) {
                    self.publish(&defs);
                    self.reconcile(&defs).await;
                }
                if ended {
                    break;
                }
            }
            // Not at once: a watch that keeps ending must not spin.
            tokio::time::sleep(Duration::from_millis(200)).await;
            match list(store.as_ref()).await {
                Ok((d, r)) => {
                    (defs, revision) = (d, r);
                    self.publish(&defs);
                    self.reconcile(&defs).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listing the CustomResourceDefinitions");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// One watch item applied: whether a definition changed; None when the watch failed.
fn apply(
    defs: &mut BTreeMap<String, Value>,
    revision: &mut Revision,
    item: Result<WatchItem, skiff_store::StoreError>,
) -> Option<bool> {
    match item {
        Ok(WatchItem::Event(e)) => {
            *revision = (*revision).max(e.kv.mod_revision);
            match e.kind {
                EventType::Deleted => {
                    defs.remove(&e.kv.key);
                }
                _ => match crate::registry::decode(kinds::CUSTOM_RESOURCE_DEFINITIONS, &e.kv) {
                    Ok(obj) => {
                        defs.insert(e.kv.key.clone(), obj);
                    }
                    Err(err) => tracing::warn!(key = %e.kv.key, error = %err, "a definition that does not decode"),
                },
            }
            Some(true)
        }
        Ok(WatchItem::Progress(r)) => {
            *revision = (*revision).max(r);
            Some(false)
        }
        Err(e) => {
            tracing::debug!(error = %e, "the CustomResourceDefinition watch ended");
            None
        }
    }
}

async fn list(store: &dyn Store) -> Result<(BTreeMap<String, Value>, Revision), skiff_store::StoreError> {
    let (items, revision) = store.list(PREFIX).await?;
    let defs = items
        .iter()
        .filter_map(|kv| {
            let obj = crate::registry::decode(kinds::CUSTOM_RESOURCE_DEFINITIONS, kv)
                .map_err(|e| tracing::warn!(key = %kv.key, error = %e, "a definition that does not decode"))
                .ok()?;
            Some((kv.key.clone(), obj))
        })
        .collect();
    Ok((defs, revision))
}
