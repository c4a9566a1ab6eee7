//! The garbage collector: follows owner references across every served kind (but Events).
//! - A dependent whose owners are all gone is deleted (background propagation); references to
//!   owners that are gone, while others remain, are removed.
//! - An owner deleted in the foreground (`foregroundDeletion` finalizer) keeps its finalizer
//!   until every dependent that blocks it (`blockOwnerDeletion`) is gone; those are deleted
//!   (in the foreground themselves when they have dependents of their own).
//! - An owner deleted with `orphan` has its references removed from its dependents, then the
//!   finalizer.
//!
//! Owners are looked up in the watch caches by uid; an owner missing from them is confirmed
//! with a live read before anything is deleted, so a slow cache never costs an object.

use crate::work::Queue;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PropagationPolicy};
use kube::core::{ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use skiff_core::kinds;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";
/// Everything is looked at again this often, whatever the events.
const RESYNC: Duration = Duration::from_secs(60);

/// What the collector keeps of an object: its metadata (what owner references live in), served
/// as `PartialObjectMetadata`, so the caches of every kind hold no specs or statuses.
type Meta = PartialObjectMeta<DynamicObject>;

/// One watched kind: its resource and its cache.
struct Kind {
    resource: ApiResource,
    namespaced: bool,
    store: Store<Meta>,
}

/// An object, by its kind's index and its place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Item {
    kind: usize,
    namespace: Option<String>,
    name: String,
}

struct Collector {
    client: kube::Client,
    kinds: Vec<Kind>,
    /// uid → where the object is, for every cached object.
    by_uid: Arc<Mutex<HashMap<String, Item>>>,
}

fn owners(obj: &Meta) -> &[OwnerReference] {
    obj.metadata.owner_references.as_deref().unwrap_or_default()
}

fn finalizers(obj: &Meta) -> Vec<String> {
    obj.metadata.finalizers.clone().unwrap_or_default()
}

impl Collector {
    fn api(&self, kind: usize, namespace: Option<&str>) -> Api<DynamicObject> {
        let k = &self.kinds[kind];
        match namespace.filter(|_| k.namespaced) {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &k.resource),
            None => Api::all_with(self.client.clone(), &k.resource),
        }
    }

    fn get(&self, item: &Item) -> Option<Arc<Meta>> {
        let r = reflector::ObjectRef::new_with(&item.name, self.kinds[item.kind].resource.clone());
        let r = match &item.namespace {
            Some(ns) => r.within(ns),
            None => r,
        };
        self.kinds[item.kind].store.get(&r)
    }

    /// The cached objects that name `uid` as an owner.
    fn dependents(&self, uid: &str) -> Vec<(Item, Arc<Meta>)> {
        let mut out = Vec::new();
        for (i, k) in self.kinds.iter().enumerate() {
            for obj in k.store.state() {
                if owners(&obj).iter().any(|r| r.uid == uid) {
                    let item = Item {
                        kind: i,
                        namespace: obj.metadata.namespace.clone(),
                        name: obj.metadata.name.clone().unwrap_or_default(),
                    };
                    out.push((item, obj));
                }
            }
        }
        out
    }

    /// Whether the owner `r` of an object in `namespace` exists (cache first, then the API).
    async fn owner_exists(&self, r: &OwnerReference, namespace: Option<&str>) -> bool {
        if self.by_uid.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(&r.uid) {
            return true;
        }
        let (group, version) = r.api_version.split_once('/').unwrap_or(("", r.api_version.as_str()));
        let Some(kind) = self
            .kinds
            .iter()
            .position(|k| k.resource.group == group && k.resource.version == version && k.resource.kind == r.kind)
        else {
            // A kind skiff does not serve cannot have an object: treat it as present (never
            // delete on a reference nobody can check).
            return true;
        };
        match self.api(kind, namespace).get_metadata_opt(&r.name).await {
            Ok(Some(o)) => o.metadata.uid.as_deref() == Some(r.uid.as_str()),
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(error = %e, owner = r.name, "checking an owner");
                true
            }
        }
    }

    async fn patch_owners(&self, item: &Item, obj: &Meta, keep: Vec<OwnerReference>) -> Result<(), kube::Error> {
        // An empty list is removed (null), as a Go client's omitempty leaves it out.
        let refs = if keep.is_empty() { serde_json::Value::Null } else { json!(keep) };
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": obj.metadata.resource_version}});
        self.api(item.kind, item.namespace.as_deref())
            .patch(&item.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(drop)
    }

    async fn delete(&self, item: &Item, policy: PropagationPolicy) -> Result<(), kube::Error> {
        let params = DeleteParams { propagation_policy: Some(policy), ..Default::default() };
        match self.api(item.kind, item.namespace.as_deref()).delete(&item.name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn remove_finalizer(&self, item: &Item, obj: &Meta, finalizer: &str) -> Result<(), kube::Error> {
        let rest: Vec<String> = finalizers(obj).into_iter().filter(|f| f != finalizer).collect();
        let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": obj.metadata.resource_version}});
        match self
            .api(item.kind, item.namespace.as_deref())
            .patch(&item.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One object: as a dependent (are its owners there?) and as an owner being deleted.
    /// Returns whether to look at it again soon.
    async fn process(&self, item: &Item) -> Result<bool, kube::Error> {
        let Some(obj) = self.get(item) else { return Ok(false) };
        let mut again = false;
        let refs = owners(&obj).to_vec();
        if !refs.is_empty() {
            let mut present = Vec::new();
            for r in &refs {
                if self.owner_exists(r, item.namespace.as_deref()).await {
                    present.push(r.clone());
                }
            }
            if present.is_empty() {
                let own_dependents = !self.dependents(obj.metadata.uid.as_deref().unwrap_or_default()).is_empty();
                if obj.metadata.deletion_timestamp.is_none() {
                    let policy =
                        if own_dependents { PropagationPolicy::Foreground } else { PropagationPolicy::Background };
                    self.delete(item, policy).await?;
                }
                return Ok(false);
            }
            if present.len() < refs.len() {
                self.patch_owners(item, &obj, present.clone()).await?;
            }
            // An owner being deleted in the foreground waits for this one, if it blocks it.
            for r in present.iter().filter(|r| r.block_owner_deletion == Some(true)) {
                let waiting = self
                    .by_uid
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&r.uid)
                    .cloned()
                    .and_then(|o| self.get(&o))
                    .is_some_and(|o| {
                        o.metadata.deletion_timestamp.is_some() && finalizers(&o).iter().any(|f| f == FOREGROUND)
                    });
                if waiting && obj.metadata.deletion_timestamp.is_none() {
                    let own_dependents = !self.dependents(obj.metadata.uid.as_deref().unwrap_or_default()).is_empty();
                    let policy =
                        if own_dependents { PropagationPolicy::Foreground } else { PropagationPolicy::Background };
                    self.delete(item, policy).await?;
                    break;
                }
            }
        }
        if obj.metadata.deletion_timestamp.is_some() {
            let uid = obj.metadata.uid.clone().unwrap_or_default();
            let fins = finalizers(&obj);
            if fins.iter().any(|f| f == ORPHAN) {
                for (dep, dobj) in self.dependents(&uid) {
                    let keep: Vec<OwnerReference> = owners(&dobj).iter().filter(|r| r.uid != uid).cloned().collect();
                    self.patch_owners(&dep, &dobj, keep).await?;
                }
                self.remove_finalizer(item, &obj, ORPHAN).await?;
            } else if fins.iter().any(|f| f == FOREGROUND) {
                let blocking: Vec<(Item, Arc<Meta>)> = self
                    .dependents(&uid)
                    .into_iter()
                    .filter(|(_, d)| owners(d).iter().any(|r| r.uid == uid && r.block_owner_deletion == Some(true)))
                    .collect();
                if blocking.is_empty() {
                    self.remove_finalizer(item, &obj, FOREGROUND).await?;
                } else {
                    for (dep, d) in &blocking {
                        if d.metadata.deletion_timestamp.is_none() {
                            let own = !self.dependents(d.metadata.uid.as_deref().unwrap_or_default()).is_empty();
                            let policy =
                                if own { PropagationPolicy::Foreground } else { PropagationPolicy::Background };
                            self.delete(dep, policy).await?;
                        }
                    }
                    again = true;
                }
            }
        }
        Ok(again)
    }
}

/// Watch every kind, feeding `queue` with each object that changes and, when an object goes,
/// with its dependents.
async fn watch_all(
    client: &kube::Client,
    queue: &Arc<Queue<Item>>,
    by_uid: &Arc<Mutex<HashMap<String, Item>>>,
) -> Vec<Kind> {
    let mut out = Vec::new();
    // Only what can be watched: the review kinds are create-only, and a watch on one would
    // never list (and the collector never start).
    let watchable = kinds::all().iter().filter(|k| k.info().kind != "Event" && k.info().verbs.contains(&"watch"));
    for (i, k) in watchable.enumerate() {
        let info = k.info();
        let resource = ApiResource {
            group: info.group.into(),
            version: info.version.into(),
            api_version: info.api_version(),
            kind: info.kind.into(),
            plural: info.plural.into(),
        };
        let writer = reflector::store::Writer::<Meta>::new(resource.clone());
        let store = writer.as_reader();
        // An `Api` of `PartialObjectMeta` asks for metadata only.
        let api = Api::<Meta>::all_with(client.clone(), &resource);
        let objects = watcher(api, watcher::Config::default()).modify(|o| o.metadata.managed_fields = None);
        let events = reflector::reflector(writer, objects).default_backoff();
        let (queue, by_uid) = (queue.clone(), by_uid.clone());
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            let item = |o: &Meta| Item {
                kind: i,
                namespace: o.metadata.namespace.clone(),
                name: o.metadata.name.clone().unwrap_or_default(),
            };
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                        let it = item(&o);
                        if let Some(uid) = o.metadata.uid.clone() {
                            by_uid.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(uid, it.clone());
                        }
                        let interesting = !owners(&o).is_empty()
                            || (o.metadata.deletion_timestamp.is_some()
                                && finalizers(&o).iter().any(|f| f == FOREGROUND || f == ORPHAN));
                        if interesting {
                            queue.add(it);
                        }
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        if let Some(uid) = o.metadata.uid.clone() {
                            by_uid.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&uid);
                        }
                        // Its dependents are looked at on the next pass over owner-less objects.
                        queue.add(Item {
                            kind: usize::MAX,
                            namespace: None,
                            name: o.metadata.uid.clone().unwrap_or_default(),
                        });
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "garbage collector watch failed; retrying"),
                }
            }
        });
        let _ = store.wait_until_ready().await;
        out.push(Kind { resource, namespaced: info.namespaced, store });
    }
    out
}

/// Run the garbage collector until the process stops.
pub async fn run(client: kube::Client) {
    let queue: Arc<Queue<Item>> = Queue::new();
    let by_uid = Arc::new(Mutex::new(HashMap::new()));
    let kinds = watch_all(&client, &queue, &by_uid).await;
    let gc = Collector { client, kinds, by_uid };
    let resync = {
        let queue = queue.clone();
        let all: Vec<(usize, Store<Meta>)> = gc.kinds.iter().enumerate().map(|(i, k)| (i, k.store.clone())).collect();
        async move {
            loop {
                for (i, store) in &all {
                    for o in store
                        .state()
                        .iter()
                        .filter(|o| !owners(o).is_empty() || o.metadata.deletion_timestamp.is_some())
                    {
                        queue.add(Item {
                            kind: *i,
                            namespace: o.metadata.namespace.clone(),
                            name: o.metadata.name.clone().unwrap_or_default(),
                        });
                    }
                }
                tokio::time::sleep(RESYNC).await;
            }
        }
    };
    tokio::spawn(resync);
    loop {
        let item = queue.next().await;
        if item.kind == usize::MAX {
            // An owner went: its dependents (by uid) are checked now.
            let deps: HashSet<Item> = gc.dependents(&item.name).into_iter().map(|(i, _)| i).collect();
            queue.done(&item);
            deps.into_iter().for_each(|d| queue.add(d));
            continue;
        }
        let outcome = gc.process(&item).await;
        queue.done(&item);
        match outcome {
            Ok(true) => queue.add_after(item, Duration::from_millis(500)),
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(error = %e, name = item.name, "collecting garbage");
                queue.add_after(item, Duration::from_secs(1));
            }
        }
    }
}
