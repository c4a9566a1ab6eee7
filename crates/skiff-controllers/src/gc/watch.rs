//! The collector's watches: one per kind (metadata only), feeding the queue with each object
//! that changes and, when one goes, with its dependents; and one on the
//! CustomResourceDefinitions, which starts and stops the custom kinds' watches as they come,
//! change and go.

use super::custom::{self, Definition};
use super::{Collector, Kind, Meta, Work, interesting, item_of, owners, split_api_version};
use futures::StreamExt;
use kube::api::Api;
use kube::core::{ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::task::AbortHandle;

impl Collector {
    /// Watch the objects of a kind, counted in the shared state under a new id (before its
    /// first event, which only counts while the id does). Returns the id, its cache and the
    /// watch.
    pub(super) fn watch(
        self: &Arc<Self>,
        resource: ApiResource,
        namespaced: bool,
        versions: Vec<String>,
        custom: bool,
    ) -> (usize, Store<Meta>, AbortHandle) {
        let writer = reflector::store::Writer::<Meta>::new(resource.clone());
        let store = writer.as_reader();
        let kind = Kind { resource: resource.clone(), namespaced, versions, custom, store: store.clone() };
        let id = self.state().add(kind);
        // An `Api` of `PartialObjectMeta` asks for metadata only.
        let api = Api::<Meta>::all_with(self.client.clone(), &resource);
        let objects = watcher(api, watcher::Config::default()).modify(|o| o.metadata.managed_fields = None);
        let events = reflector::reflector(writer, objects).default_backoff();
        let gc = self.clone();
        let task = tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => gc.seen(id, &o),
                    Ok(watcher::Event::Delete(o)) => gc.gone(id, &o),
                    Ok(watcher::Event::InitDone) => gc.listed(id),
                    Ok(watcher::Event::Init) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, kind = resource.kind, "garbage collector watch failed; retrying")
                    }
                }
            }
        });
        (id, store, task.abort_handle())
    }

    fn seen(&self, id: usize, obj: &Meta) {
        let item = item_of(id, obj);
        {
            let mut state = self.state();
            // A watch being stopped may still deliver an event or two.
            if !state.kinds.contains_key(&id) {
                return;
            }
            if let Some(uid) = &obj.metadata.uid {
                state.by_uid.insert(uid.clone(), item.clone());
            }
        }
        if interesting(obj) {
            self.queue.add(Work::Object(item));
        }
    }

    fn gone(&self, id: usize, obj: &Meta) {
        let Some(uid) = obj.metadata.uid.clone() else { return };
        {
            let mut state = self.state();
            if !state.kinds.contains_key(&id) {
                return;
            }
            state.by_uid.remove(&uid);
        }
        self.queue.add(Work::OwnerGone(uid));
    }

    /// Kind `id` has (re)listed: objects deleted while its watch was down left no event, so
    /// what the list lacks is gone; and on a custom kind's first list, the references to it
    /// (unresolvable until now) are looked at again.
    fn listed(&self, id: usize) {
        let (gone, kind, stores) = {
            let mut state = self.state();
            let Some(watched) = state.kinds.get_mut(&id) else { return };
            let first = !watched.synced;
            watched.synced = true;
            let kind = watched.kind.clone();
            let present: HashSet<String> = kind.store.state().iter().filter_map(|o| o.metadata.uid.clone()).collect();
            let gone: Vec<String> = state
                .by_uid
                .iter()
                .filter(|(uid, it)| it.kind == id && !present.contains(*uid))
                .map(|(uid, _)| uid.clone())
                .collect();
            for uid in &gone {
                state.by_uid.remove(uid);
            }
            let stores: Vec<(usize, Store<Meta>)> = if first && kind.custom {
                state.kinds.iter().map(|(i, w)| (*i, w.kind.store.clone())).collect()
            } else {
                Vec::new()
            };
            (gone, kind, stores)
        };
        gone.into_iter().for_each(|uid| self.queue.add(Work::OwnerGone(uid)));
        let refers = |o: &Meta| {
            owners(o)
                .iter()
                .any(|r| r.kind == kind.resource.kind && split_api_version(&r.api_version).0 == kind.resource.group)
        };
        for (i, store) in stores {
            for o in store.state().iter().filter(|o| refers(o)) {
                self.queue.add(Work::Object(item_of(i, o)));
            }
        }
    }

    /// Stop watching kind `id`: its objects leave the caches, and their dependents are looked
    /// at (collected when the kind's definition was deleted, kept while it is only no longer
    /// served).
    fn unwatch(&self, id: usize, task: &AbortHandle) {
        task.abort();
        let gone = self.state().remove(id);
        gone.into_iter().for_each(|uid| self.queue.add(Work::OwnerGone(uid)));
    }
}

/// A custom kind being watched.
struct Watching {
    id: usize,
    task: AbortHandle,
}

/// Follow the CustomResourceDefinitions until the process stops, watching the kind of each
/// established one. Definitions change rarely: each change compares them all with the last.
pub(super) async fn follow_definitions(gc: Arc<Collector>) {
    let resource = custom::definitions();
    let writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
    let store = writer.as_reader();
    let api = Api::<DynamicObject>::all_with(gc.client.clone(), &resource);
    let objects = watcher(api, watcher::Config::default()).modify(|o| o.metadata.managed_fields = None);
    let mut events = std::pin::pin!(reflector::reflector(writer, objects).default_backoff());
    let mut known: HashMap<String, Definition> = HashMap::new();
    let mut watching: HashMap<String, Watching> = HashMap::new();
    while let Some(event) = events.next().await {
        match event {
            // The store is whole after these (a relist is swapped in at `InitDone`).
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone) => {
                let now: HashMap<String, Definition> = store
                    .state()
                    .iter()
                    .map(|crd| (crd.metadata.name.clone().unwrap_or_default(), custom::definition_of(&crd.data)))
                    .collect();
                let plan = custom::plan(&known, &now);
                // Retired first, so the dependents a stop queues find their owners gone.
                gc.state().retired.extend(plan.retire);
                for name in &plan.stop {
                    if let Some(w) = watching.remove(name) {
                        gc.unwatch(w.id, &w.task);
                    }
                }
                for (name, c) in plan.start {
                    tracing::debug!(kind = c.resource.kind, version = c.resource.version, "collecting a custom kind");
                    let (id, _, task) = gc.watch(c.resource, c.namespaced, c.versions, true);
                    watching.insert(name, Watching { id, task });
                }
                known = now;
            }
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Err(e) => {
                tracing::debug!(error = %e, "garbage collector watch of CustomResourceDefinitions failed; retrying")
            }
        }
    }
}
