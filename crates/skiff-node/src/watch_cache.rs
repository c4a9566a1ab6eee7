//! A watch cache of every object of a kind, cluster-wide, for the node's own controllers (the
//! service view, the ingress, NetworkPolicy enforcement): the objects without their
//! managedFields (never read here, and much of each object kept), and a stream with one item
//! per change (watch errors are logged and retried with back-off).

use futures::StreamExt;
use kube::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};

pub fn watch_all<K>(
    client: &kube::Client,
    config: watcher::Config,
) -> (Store<K>, impl futures::Stream<Item = ()> + Send + use<K>)
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let objects = watcher(Api::<K>::all(client.clone()), config).modify(|o| o.meta_mut().managed_fields = None);
    let events = reflector::reflector(writer, objects).default_backoff().filter_map(|e| async move {
        if let Err(e) = &e {
            tracing::warn!(error = %e, kind = K::kind(&()).as_ref(), "watching");
        }
        e.ok().map(|_| ())
    });
    (store, events)
}
