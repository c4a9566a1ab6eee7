//! What every controller loop runs on: the shared watch caches ([`Informers`]) that call back on
//! each change, and a de-duplicating work queue of object keys, so a burst of events about one
//! object is one reconcile (client-go's informer + workqueue, in small).

use crate::informers::Informers;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::{HashSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// A namespaced object's name: what the queues hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn of<K: Resource>(obj: &K) -> Key {
        Key {
            namespace: obj.meta().namespace.clone().unwrap_or_default(),
            name: obj.meta().name.clone().unwrap_or_default(),
        }
    }
}

/// Keys waiting for a reconcile; a key already waiting is not added twice, and a key being
/// reconciled is not handed to another worker: added meanwhile, it waits until [`Queue::done`]
/// (client-go's workqueue rule, so several workers never reconcile one object at once).
pub struct Queue<T> {
    state: Mutex<QueueState<T>>,
    ready: Notify,
}

struct QueueState<T> {
    queue: VecDeque<T>,
    waiting: HashSet<T>,
    processing: HashSet<T>,
}

impl<T: Clone + Eq + Hash + Send + 'static> Queue<T> {
    pub fn new() -> Arc<Self> {
        let state = QueueState { queue: VecDeque::new(), waiting: HashSet::new(), processing: HashSet::new() };
        Arc::new(Queue { state: Mutex::new(state), ready: Notify::new() })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, QueueState<T>> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn add(&self, item: T) {
        let mut s = self.state();
        if s.waiting.insert(item.clone()) && !s.processing.contains(&item) {
            s.queue.push_back(item);
            self.ready.notify_one();
        }
    }

    /// `item`'s reconcile is over: if it was added meanwhile, it is queued now.
    pub fn done(&self, item: &T) {
        let mut s = self.state();
        s.processing.remove(item);
        if s.waiting.contains(item) {
            s.queue.push_back(item.clone());
            self.ready.notify_one();
        }
    }

    /// Add `item` after `delay` (a requeue: back-off, or a time-based condition to check).
    pub fn add_after(self: &Arc<Self>, item: T, delay: Duration) {
        let queue = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(item);
        });
    }

    /// The next key, waiting for one; the caller calls [`Queue::done`] when it has finished.
    pub async fn next(&self) -> T {
        loop {
            let notified = self.ready.notified();
            {
                let mut s = self.state();
                if let Some(item) = s.queue.pop_front() {
                    s.waiting.remove(&item);
                    s.processing.insert(item.clone());
                    return item;
                }
            }
            notified.await;
        }
    }
}

/// The caches a controller of `K` works from: every `K` (each change queues it), and every `C`
/// (each change queues the `K` that controls it), every `K` queued again each `resync` period.
pub async fn watch_owned<K, C>(informers: &Informers, resync_period: Duration) -> (Arc<Queue<Key>>, Store<K>, Store<C>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    C: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let queue: Arc<Queue<Key>> = Queue::new();
    let q = queue.clone();
    let main = informers.watch(move |o: &K| q.add(Key::of(o))).await;
    let q = queue.clone();
    let owned = informers
        .watch(move |o: &C| {
            let kind = K::kind(&());
            if let Some(owner) = crate::owner::controller_of(o.meta()).filter(|r| r.kind == kind) {
                q.add(Key { namespace: o.meta().namespace.clone().unwrap_or_default(), name: owner.name.clone() });
            }
        })
        .await;
    resync(queue.clone(), main.clone(), resync_period);
    (queue, main, owned)
}

/// Reconcile keys from `queue` one at a time, for ever: an `Ok(Some(after))` looks again after
/// that long, an error after a second (the object's controller logs nothing louder than debug:
/// a conflict or a missing object is routine).
pub async fn drive<F, Fut>(queue: Arc<Queue<Key>>, what: &'static str, reconcile: F)
where
    F: Fn(Key) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Duration>, kube::Error>>,
{
    drive_concurrently(queue, 1, what, reconcile).await
}

/// [`drive`] with `workers` reconciles in flight at once (never two of one key), as upstream's
/// `--concurrent-*-syncs`: a controller whose every reconcile waits on API writes gets through a
/// burst of keys that many times faster.
pub async fn drive_concurrently<F, Fut>(queue: Arc<Queue<Key>>, workers: usize, what: &'static str, reconcile: F)
where
    F: Fn(Key) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Duration>, kube::Error>>,
{
    let worker = || async {
        loop {
            let key = queue.next().await;
            let outcome = reconcile(key.clone()).await;
            queue.done(&key);
            match outcome {
                Ok(Some(after)) => queue.add_after(key, after),
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(error = %e, namespace = key.namespace, name = key.name, what, "reconciling");
                    queue.add_after(key, Duration::from_secs(1));
                }
            }
        }
    };
    futures::future::join_all((0..workers.max(1)).map(|_| worker())).await;
}

/// Add every object of `store` to `queue` every `period` (and once now).
pub fn resync<K>(queue: Arc<Queue<Key>>, store: Store<K>, period: Duration)
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    tokio::spawn(async move {
        loop {
            store.state().iter().for_each(|o| queue.add(Key::of(o.as_ref())));
            tokio::time::sleep(period).await;
        }
    });
}

/// Delete `names` (already gone is fine), recording `SuccessfulDelete` about `owner` for each,
/// as the workload controllers do for the pods they remove.
pub async fn delete_pods(
    api: &Api<k8s_openapi::api::core::v1::Pod>,
    names: &[String],
    recorder: &skiff_client::events::Recorder,
    owner: &k8s_openapi::api::core::v1::ObjectReference,
) -> Result<(), kube::Error> {
    for name in names {
        match api.delete(name, &kube::api::DeleteParams::background()).await {
            Ok(_) => {
                let message = format!("Deleted pod: {name}");
                recorder.object(owner.clone(), skiff_client::events::Type::Normal, "SuccessfulDelete", &message).await;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The objects of `store` in `namespace`.
pub fn in_namespace<K: Resource<DynamicType = ()> + Clone>(store: &Store<K>, namespace: &str) -> Vec<Arc<K>> {
    store.state().into_iter().filter(|o| o.namespace().as_deref() == Some(namespace)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_queued_once_until_taken() {
        let q = Queue::new();
        q.add(1);
        q.add(2);
        q.add(1);
        assert_eq!((q.next().await, q.next().await), (1, 2));
        q.done(&1);
        q.done(&2);
        q.add(1);
        assert_eq!(q.next().await, 1);
        q.done(&1);
        q.add_after(3, Duration::from_millis(10));
        assert_eq!(tokio::time::timeout(Duration::from_secs(2), q.next()).await, Ok(3));
    }

    #[tokio::test]
    async fn a_key_being_reconciled_waits_for_done() {
        let q = Queue::new();
        q.add(1);
        assert_eq!(q.next().await, 1);
        q.add(1);
        q.add(2);
        // 1 is still being reconciled: another worker gets 2, and nothing else yet.
        assert_eq!(q.next().await, 2);
        assert!(tokio::time::timeout(Duration::from_millis(50), q.next()).await.is_err());
        q.done(&1);
        assert_eq!(tokio::time::timeout(Duration::from_secs(2), q.next()).await, Ok(1));
    }
}
