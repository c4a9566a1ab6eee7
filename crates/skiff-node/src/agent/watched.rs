//! Watches on the Secrets and ConfigMaps the node's pod volumes read: one watch per object
//! (a field selector on its name, as the kubelet's watch-based manager), however many pods read
//! it. A change wakes the workers of those pods, which rewrite their volumes at once, so a
//! mounted ConfigMap follows an update within moments rather than at the next resync.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// An object a pod's volumes read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Watched {
    Secret { namespace: String, name: String },
    ConfigMap { namespace: String, name: String },
}

/// The waking handles of the pods (by uid) that read one object.
type Readers = Arc<Mutex<HashMap<String, Arc<Notify>>>>;

/// The node's watches, by object, with the workers each one wakes.
pub struct Watches {
    client: kube::Client,
    objects: Mutex<HashMap<Watched, Entry>>,
}

struct Entry {
    readers: Readers,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Watches {
    pub fn new(client: kube::Client) -> Watches {
        Watches { client, objects: Mutex::default() }
    }

    /// Pod `uid` reads exactly `objects` now (none: it is gone); `wake` is notified when one
    /// changes. Watches nobody needs any more stop.
    pub fn set(&self, uid: &str, objects: &BTreeSet<Watched>, wake: &Arc<Notify>) {
        let mut all = lock(&self.objects);
        all.retain(|key, entry| {
            let mut readers = lock(&entry.readers);
            if !objects.contains(key) {
                readers.remove(uid);
            }
            !readers.is_empty()
        });
        for key in objects {
            let entry = all.entry(key.clone()).or_insert_with(|| {
                let readers = Readers::default();
                let task = tokio::spawn(watch(self.client.clone(), key.clone(), readers.clone()));
                Entry { readers, task }
            });
            lock(&entry.readers).insert(uid.to_string(), wake.clone());
        }
    }

    /// How many objects are watched.
    pub fn len(&self) -> usize {
        lock(&self.objects).len()
    }
}

/// Watch one object for as long as the task lives, waking its readers on each change.
async fn watch(client: kube::Client, key: Watched, readers: Readers) {
    let wake = move || lock(&readers).values().for_each(|w| w.notify_one());
    match key {
        Watched::Secret { namespace, name } => drive(Api::<Secret>::namespaced(client, &namespace), &name, wake).await,
        Watched::ConfigMap { namespace, name } => {
            drive(Api::<ConfigMap>::namespaced(client, &namespace), &name, wake).await
        }
    }
}

/// Drive a watch on object `name`: `wake` on each change, and once the first list is in (the
/// object may have changed since its readers read it).
async fn drive<K>(api: Api<K>, name: &str, wake: impl Fn())
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut events = std::pin::pin!(watcher(api, config).default_backoff());
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
            Ok(_) => wake(),
            Err(e) => tracing::debug!(error = %e, name, "watching a volume's object; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Watched {
        Watched::ConfigMap { namespace: "default".into(), name: name.into() }
    }

    #[tokio::test]
    async fn one_watch_per_object_kept_while_a_pod_reads_it() {
        // Never reached: the watch tasks only retry in the background.
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().expect("uri"))).expect("client");
        let w = Watches::new(client);
        let (a, b) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        w.set("pod-a", &BTreeSet::from([key("cfg"), key("only-a")]), &a);
        w.set("pod-b", &BTreeSet::from([key("cfg")]), &b);
        assert_eq!(w.len(), 2);
        w.set("pod-a", &BTreeSet::new(), &a);
        assert_eq!(w.len(), 1, "cfg is still read by pod-b");
        w.set("pod-b", &BTreeSet::new(), &b);
        assert_eq!(w.len(), 0);
    }
}
