//! The garbage collector: follows owner references across every served kind (but Events),
//! custom kinds included: a watch on the CustomResourceDefinitions adds each established one's
//! kind to the watched set, and takes it out when it goes (`watch`, `custom`).
//! - A dependent whose owners are all gone is deleted (background propagation); references to
//!   owners that are gone, while others remain, are removed.
//! - An owner deleted in the foreground (`foregroundDeletion` finalizer) keeps its finalizer
//!   until every dependent that blocks it (`blockOwnerDeletion`) is gone; those are deleted
//!   (in the foreground themselves when they have dependents of their own).
//! - An owner deleted with `orphan` has its references removed from its dependents, then the
//!   finalizer.
//!
//! Owners are looked up in the watch caches by uid; an owner missing from them is confirmed
//! with a live read before anything is deleted, so a slow cache never costs an object. A
//! reference to a kind nobody serves cannot be checked, and keeps its dependent (as upstream's
//! "unresolvable" references), unless the kind's definition was seen deleted: the API server
//! deleted its objects with it.

mod custom;
mod watch;

use crate::work::Queue;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PropagationPolicy};
use kube::core::{ApiResource, DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::{self, Store};
use serde_json::json;
use skiff_core::kinds;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";
/// Everything is looked at again this often, whatever the events.
const RESYNC: Duration = Duration::from_secs(60);
/// How long a new kind's first list is waited for before its cache counts as complete anyway
/// (upstream's GC waits for a new monitor's sync one discovery period, 30s, then goes on).
const SYNC_WAIT: Duration = Duration::from_secs(30);

/// What the collector keeps of an object: its metadata (what owner references live in), served
/// as `PartialObjectMetadata`, so the caches of every kind hold no specs or statuses.
type Meta = PartialObjectMeta<DynamicObject>;

/// One watched kind: its resource and its cache.
#[derive(Clone)]
struct Kind {
    resource: ApiResource,
    namespaced: bool,
    /// The versions an owner reference may name it by: its own, or every served version of a
    /// custom kind (one storage behind them all).
    versions: Vec<String>,
    /// Defined by a CustomResourceDefinition.
    custom: bool,
    store: Store<Meta>,
}

impl Kind {
    /// Whether an owner reference's `apiVersion` and `kind` name this kind.
    fn named_by(&self, api_version: &str, kind: &str) -> bool {
        let (group, version) = split_api_version(api_version);
        self.resource.group == group && self.resource.kind == kind && self.versions.iter().any(|v| v == version)
    }
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// An object, by its kind's id (see `State::kinds`) and its place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Item {
    kind: usize,
    namespace: Option<String>,
    name: String,
}

/// What the queue holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Work {
    /// An object to look at, as a dependent and as an owner being deleted.
    Object(Item),
    /// The object with this uid is gone: its dependents are looked at.
    OwnerGone(String),
}

/// A kind in the watched set.
struct Watched {
    kind: Kind,
    /// Its cache has listed everything once.
    synced: bool,
    /// When its watch started (how long its first list has been waited for).
    since: Instant,
}

/// What an owner reference's kind resolves to.
enum Resolved {
    Kind(Kind),
    /// A custom kind whose definition was deleted: none of its objects is left.
    Gone,
    /// A kind nobody serves (or not yet): its objects cannot be checked.
    Unknown,
}

/// The watched kinds and what their caches hold, shared by the watches and the worker.
#[derive(Default)]
struct State {
    /// Kinds by id. Ids are never reused, so an `Item` queued for a kind that stopped being
    /// watched finds nothing rather than an object of another kind.
    kinds: HashMap<usize, Watched>,
    next_id: usize,
    /// uid → where the object is, for every cached object.
    by_uid: HashMap<String, Item>,
    /// (group, kind) of custom kinds whose definition was deleted, and not defined again.
    retired: HashSet<(String, String)>,
}

impl State {
    fn add(&mut self, kind: Kind) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        if kind.custom {
            self.retired.remove(&(kind.resource.group.clone(), kind.resource.kind.clone()));
        }
        self.kinds.insert(id, Watched { kind, synced: false, since: Instant::now() });
        id
    }

    /// Stop counting kind `id` (its watch is ending): returns the uids of the objects it held.
    fn remove(&mut self, id: usize) -> Vec<String> {
        self.kinds.remove(&id);
        let gone: Vec<String> =
            self.by_uid.iter().filter(|(_, it)| it.kind == id).map(|(uid, _)| uid.clone()).collect();
        for uid in &gone {
            self.by_uid.remove(uid);
        }
        gone
    }

    fn resolve(&self, api_version: &str, kind: &str) -> Resolved {
        if let Some(w) = self.kinds.values().find(|w| w.kind.named_by(api_version, kind)) {
            return Resolved::Kind(w.kind.clone());
        }
        let (group, _) = split_api_version(api_version);
        if self.retired.contains(&(group.to_owned(), kind.to_owned())) { Resolved::Gone } else { Resolved::Unknown }
    }

    /// Whether every cache is complete: listed once, or waited for long enough.
    fn synced(&self) -> bool {
        self.kinds.values().all(|w| w.synced || w.since.elapsed() >= SYNC_WAIT)
    }
}

/// The collector: its work queue, and what the watches keep for it.
struct Collector {
    client: kube::Client,
    queue: Arc<Queue<Work>>,
    state: Mutex<State>,
}

fn owners(obj: &Meta) -> &[OwnerReference] {
    obj.metadata.owner_references.as_deref().unwrap_or_default()
}

fn finalizers(obj: &Meta) -> Vec<String> {
    obj.metadata.finalizers.clone().unwrap_or_default()
}

fn item_of(kind: usize, obj: &Meta) -> Item {
    Item { kind, namespace: obj.metadata.namespace.clone(), name: obj.metadata.name.clone().unwrap_or_default() }
}

/// Whether a change to `obj` is worth a look: it has owners, or waits on its dependents.
fn interesting(obj: &Meta) -> bool {
    !owners(obj).is_empty()
        || (obj.metadata.deletion_timestamp.is_some() && finalizers(obj).iter().any(|f| f == FOREGROUND || f == ORPHAN))
}

impl Collector {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn kind(&self, id: usize) -> Option<Kind> {
        self.state().kinds.get(&id).map(|w| w.kind.clone())
    }

    fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace.filter(|_| kind.namespaced) {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &kind.resource),
            None => Api::all_with(self.client.clone(), &kind.resource),
        }
    }

    /// The API of `item`'s kind, unless that kind is no longer watched (nothing to do then).
    fn api_of(&self, item: &Item) -> Option<Api<DynamicObject>> {
        self.kind(item.kind).map(|k| self.api(&k, item.namespace.as_deref()))
    }

    fn get(&self, item: &Item) -> Option<Arc<Meta>> {
        let kind = self.kind(item.kind)?;
        let r = reflector::ObjectRef::new_with(&item.name, kind.resource.clone());
        let r = match &item.namespace {
            Some(ns) => r.within(ns),
            None => r,
        };
        kind.store.get(&r)
    }

    /// The cached objects that name `uid` as an owner, and whether the caches are complete
    /// (a kind still listing may hold more).
    fn dependents(&self, uid: &str) -> (Vec<(Item, Arc<Meta>)>, bool) {
        let (stores, complete): (Vec<(usize, Store<Meta>)>, bool) = {
            let state = self.state();
            (state.kinds.iter().map(|(id, w)| (*id, w.kind.store.clone())).collect(), state.synced())
        };
        let mut out = Vec::new();
        for (id, store) in stores {
            for obj in store.state() {
                if owners(&obj).iter().any(|r| r.uid == uid) {
                    out.push((item_of(id, &obj), obj));
                }
            }
        }
        (out, complete)
    }

    /// How to delete `obj`: in the foreground when it has dependents of its own.
    fn policy(&self, obj: &Meta) -> PropagationPolicy {
        if self.dependents(obj.metadata.uid.as_deref().unwrap_or_default()).0.is_empty() {
            PropagationPolicy::Background
        } else {
            PropagationPolicy::Foreground
        }
    }

    /// Whether the owner `r` of an object in `namespace` exists (cache first, then the API).
    async fn owner_exists(&self, r: &OwnerReference, namespace: Option<&str>) -> bool {
        let kind = {
            let state = self.state();
            if state.by_uid.contains_key(&r.uid) {
                return true;
            }
            match state.resolve(&r.api_version, &r.kind) {
                Resolved::Kind(k) => k,
                Resolved::Gone => return false,
                // Never delete on a reference nobody can check.
                Resolved::Unknown => return true,
            }
        };
        match self.api(&kind, namespace).get_metadata_opt(&r.name).await {
            Ok(Some(o)) => o.metadata.uid.as_deref() == Some(r.uid.as_str()),
            Ok(None) => false,
            Err(e) => {
                tracing::debug!(error = %e, owner = r.name, "checking an owner");
                true
            }
        }
    }

    async fn patch_owners(&self, item: &Item, obj: &Meta, keep: Vec<OwnerReference>) -> Result<(), kube::Error> {
        let Some(api) = self.api_of(item) else { return Ok(()) };
        // An empty list is removed (null), as a Go client's omitempty leaves it out.
        let refs = if keep.is_empty() { serde_json::Value::Null } else { json!(keep) };
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": obj.metadata.resource_version}});
        api.patch(&item.name, &PatchParams::default(), &Patch::Merge(patch)).await.map(drop)
    }

    async fn delete(&self, item: &Item, policy: PropagationPolicy) -> Result<(), kube::Error> {
        let Some(api) = self.api_of(item) else { return Ok(()) };
        let params = DeleteParams { propagation_policy: Some(policy), ..Default::default() };
        match api.delete(&item.name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn remove_finalizer(&self, item: &Item, obj: &Meta, finalizer: &str) -> Result<(), kube::Error> {
        let Some(api) = self.api_of(item) else { return Ok(()) };
        let rest: Vec<String> = finalizers(obj).into_iter().filter(|f| f != finalizer).collect();
        let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": obj.metadata.resource_version}});
        match api.patch(&item.name, &PatchParams::default(), &Patch::Merge(patch)).await {
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
                // Upstream deletes a dependent left without owners in the background; one
                // being deleted already (in the foreground, say) goes on to its own
                // dependents below.
                if obj.metadata.deletion_timestamp.is_none() {
                    self.delete(item, PropagationPolicy::Background).await?;
                    return Ok(false);
                }
            } else if present.len() < refs.len() {
                self.patch_owners(item, &obj, present.clone()).await?;
            }
            // An owner being deleted in the foreground waits for this one, if it blocks it.
            for r in present.iter().filter(|r| r.block_owner_deletion == Some(true)) {
                let owner = self.state().by_uid.get(&r.uid).cloned();
                let waiting = owner.and_then(|o| self.get(&o)).is_some_and(|o| {
                    o.metadata.deletion_timestamp.is_some() && finalizers(&o).iter().any(|f| f == FOREGROUND)
                });
                if waiting && obj.metadata.deletion_timestamp.is_none() {
                    self.delete(item, self.policy(&obj)).await?;
                    break;
                }
            }
        }
        if obj.metadata.deletion_timestamp.is_some() {
            let uid = obj.metadata.uid.clone().unwrap_or_default();
            let fins = finalizers(&obj);
            // A cache still listing may hold more dependents: the finalizer stays until it is done.
            if fins.iter().any(|f| f == ORPHAN) {
                let (dependents, complete) = self.dependents(&uid);
                for (dep, dobj) in dependents {
                    let keep: Vec<OwnerReference> = owners(&dobj).iter().filter(|r| r.uid != uid).cloned().collect();
                    self.patch_owners(&dep, &dobj, keep).await?;
                }
                if complete {
                    self.remove_finalizer(item, &obj, ORPHAN).await?;
                } else {
                    again = true;
                }
            } else if fins.iter().any(|f| f == FOREGROUND) {
                let (dependents, complete) = self.dependents(&uid);
                let blocking: Vec<(Item, Arc<Meta>)> = dependents
                    .into_iter()
                    .filter(|(_, d)| owners(d).iter().any(|r| r.uid == uid && r.block_owner_deletion == Some(true)))
                    .collect();
                if blocking.is_empty() && complete {
                    self.remove_finalizer(item, &obj, FOREGROUND).await?;
                } else {
                    for (dep, d) in &blocking {
                        if d.metadata.deletion_timestamp.is_none() {
                            self.delete(dep, self.policy(d)).await?;
                        }
                    }
                    again = true;
                }
            }
        }
        Ok(again)
    }
}

/// Run the garbage collector until the process stops.
pub async fn run(client: kube::Client) {
    let gc = Arc::new(Collector { client, queue: Queue::new(), state: Mutex::new(State::default()) });
    // Only what can be watched: the review kinds are create-only, and a watch on one would
    // never list (and the collector never start).
    let watchable = kinds::all().iter().filter(|k| k.info().kind != "Event" && k.info().verbs.contains(&"watch"));
    let stores: Vec<Store<Meta>> = watchable
        .map(|k| {
            let info = k.info();
            let resource = ApiResource {
                group: info.group.into(),
                version: info.version.into(),
                api_version: info.api_version(),
                kind: info.kind.into(),
                plural: info.plural.into(),
            };
            let (_, store, _) = gc.watch(resource, info.namespaced, vec![info.version.into()], false);
            store
        })
        .collect();
    for store in stores {
        let _ = store.wait_until_ready().await;
    }
    // Custom kinds are watched as they come; until one has listed, references to it are kept.
    tokio::spawn(watch::follow_definitions(gc.clone()));
    tokio::spawn(resync(gc.clone()));
    loop {
        let work = gc.queue.next().await;
        let item = match &work {
            Work::Object(item) => item.clone(),
            Work::OwnerGone(uid) => {
                let deps: HashSet<Item> = gc.dependents(uid).0.into_iter().map(|(i, _)| i).collect();
                gc.queue.done(&work);
                deps.into_iter().for_each(|d| gc.queue.add(Work::Object(d)));
                continue;
            }
        };
        let outcome = gc.process(&item).await;
        gc.queue.done(&work);
        match outcome {
            Ok(true) => gc.queue.add_after(work, Duration::from_millis(500)),
            Ok(false) => {}
            Err(e) => {
                tracing::debug!(error = %e, name = item.name, "collecting garbage");
                gc.queue.add_after(work, Duration::from_secs(1));
            }
        }
    }
}

/// Queue every object with owners, or being deleted, each `RESYNC`, whatever the events.
async fn resync(gc: Arc<Collector>) {
    loop {
        let stores: Vec<(usize, Store<Meta>)> =
            gc.state().kinds.iter().map(|(id, w)| (*id, w.kind.store.clone())).collect();
        for (id, store) in stores {
            for o in store.state().iter().filter(|o| !owners(o).is_empty() || o.metadata.deletion_timestamp.is_some()) {
                gc.queue.add(Work::Object(item_of(id, o)));
            }
        }
        tokio::time::sleep(RESYNC).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(api_version: &str, kind: &str, versions: &[&str], custom: bool) -> Kind {
        let (group, version) = split_api_version(api_version);
        let resource = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            plural: format!("{}s", kind.to_lowercase()),
        };
        let store = reflector::store::Writer::<Meta>::new(resource.clone()).as_reader();
        Kind { resource, namespaced: true, versions: versions.iter().map(|v| v.to_string()).collect(), custom, store }
    }

    fn resolved(state: &State, api_version: &str, k: &str) -> Option<Option<String>> {
        match state.resolve(api_version, k) {
            Resolved::Kind(k) => Some(Some(k.resource.api_version)),
            Resolved::Gone => Some(None),
            Resolved::Unknown => None,
        }
    }

    fn item(kind: usize, name: &str) -> Item {
        Item { kind, namespace: Some("default".into()), name: name.into() }
    }

    #[test]
    fn owner_references_resolve_to_the_watched_kinds() {
        let mut state = State::default();
        state.add(kind("apps/v1", "Deployment", &["v1"], false));
        state.add(kind("example.com/v1", "Widget", &["v1beta1", "v1"], true));
        assert_eq!(resolved(&state, "apps/v1", "Deployment"), Some(Some("apps/v1".into())));
        // A built-in kind is named by its one version.
        assert_eq!(resolved(&state, "apps/v1beta1", "Deployment"), None);
        // A custom kind by any version it serves: each reads the one storage.
        assert_eq!(resolved(&state, "example.com/v1beta1", "Widget"), Some(Some("example.com/v1".into())));
        assert_eq!(resolved(&state, "example.com/v2", "Widget"), None);
        assert_eq!(resolved(&state, "example.com/v1", "Gadget"), None);
        assert_eq!(resolved(&state, "other.com/v1", "Widget"), None);
    }

    #[test]
    fn a_retired_kind_resolves_to_gone_until_defined_again() {
        let mut state = State::default();
        state.retired.insert(("example.com".into(), "Widget".into()));
        assert_eq!(resolved(&state, "example.com/v1", "Widget"), Some(None));
        assert_eq!(resolved(&state, "example.com/v9", "Widget"), Some(None));
        assert_eq!(resolved(&state, "example.com/v1", "Gadget"), None);
        state.add(kind("example.com/v2", "Widget", &["v2"], true));
        assert!(state.retired.is_empty());
        assert_eq!(resolved(&state, "example.com/v1", "Widget"), None);
        assert_eq!(resolved(&state, "example.com/v2", "Widget"), Some(Some("example.com/v2".into())));
    }

    #[test]
    fn a_removed_kind_takes_its_objects_and_never_gives_its_id_again() {
        let mut state = State::default();
        let deployments = state.add(kind("apps/v1", "Deployment", &["v1"], false));
        let widgets = state.add(kind("example.com/v1", "Widget", &["v1"], true));
        state.by_uid.insert("d".into(), item(deployments, "web"));
        state.by_uid.insert("w1".into(), item(widgets, "one"));
        state.by_uid.insert("w2".into(), item(widgets, "two"));
        let mut gone = state.remove(widgets);
        gone.sort();
        assert_eq!(gone, ["w1", "w2"]);
        assert_eq!(state.by_uid.keys().collect::<Vec<_>>(), ["d"]);
        assert!(matches!(state.resolve("example.com/v1", "Widget"), Resolved::Unknown));
        let again = state.add(kind("example.com/v1", "Widget", &["v1"], true));
        assert!(again != widgets && again != deployments);
    }

    #[test]
    fn caches_are_complete_once_every_kind_has_listed() {
        let mut state = State::default();
        assert!(state.synced());
        let id = state.add(kind("example.com/v1", "Widget", &["v1"], true));
        assert!(!state.synced());
        if let Some(w) = state.kinds.get_mut(&id) {
            w.synced = true;
        }
        assert!(state.synced());
        // A kind that never lists holds the others back only so long.
        let id = state.add(kind("example.com/v1", "Gadget", &["v1"], true));
        if let Some(w) = state.kinds.get_mut(&id) {
            w.since = Instant::now().checked_sub(SYNC_WAIT).unwrap_or(w.since);
        }
        assert!(state.synced());
    }

    #[test]
    fn objects_with_owners_or_waiting_on_dependents_are_interesting() {
        let meta = |metadata| Meta { types: None, metadata, _phantom: std::marker::PhantomData };
        let mut deleted = kube::api::ObjectMeta::default();
        assert!(!interesting(&meta(deleted.clone())));
        deleted.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        assert!(!interesting(&meta(deleted.clone())));
        deleted.finalizers = Some(vec![FOREGROUND.into()]);
        assert!(interesting(&meta(deleted)));
        let owner = OwnerReference { uid: "u".into(), ..Default::default() };
        assert!(interesting(&meta(kube::api::ObjectMeta {
            owner_references: Some(vec![owner]),
            ..Default::default()
        })));
    }
}
