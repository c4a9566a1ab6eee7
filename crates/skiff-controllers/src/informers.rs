//! Watch caches shared by every controller and the scheduler of one process (client-go's shared
//! informers): one watch and one copy of each object per kind, however many loops read it.
//! A reader subscribes a handler that hears every change; subscribing to a cache that is
//! already filled replays each object once, as client-go's `AddEventHandler` does.

use crate::identity::{Credentials, Identity};
use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::OnceCell;

/// What a reader runs on each object added, modified or deleted.
type Handler<K> = Arc<dyn Fn(&K) + Send + Sync>;

/// The process's shared caches, one per kind, each started by its first reader.
pub struct Informers {
    /// Reads (the caches): the controller manager's own identity.
    client: kube::Client,
    /// Writes: each component's identity (None: everything as `client`).
    credentials: Option<Arc<dyn Credentials>>,
    started: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

/// One kind's cache and the handlers that hear its changes.
struct Informer<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    handlers: Mutex<Vec<Handler<K>>>,
}

impl Informers {
    /// Caches read, and components write, as `client`.
    pub fn new(client: kube::Client) -> Arc<Informers> {
        Arc::new(Informers { client, credentials: None, started: Mutex::new(HashMap::new()) })
    }

    /// Caches read as `client`; each component writes as its own identity.
    pub fn with_credentials(client: kube::Client, credentials: Arc<dyn Credentials>) -> Arc<Informers> {
        Arc::new(Informers { client, credentials: Some(credentials), started: Mutex::new(HashMap::new()) })
    }

    /// The client the caches read with (the controller manager's identity).
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// A client acting as `who`.
    pub fn client_as(&self, who: Identity) -> kube::Client {
        match &self.credentials {
            Some(c) => c.client(who),
            None => self.client.clone(),
        }
    }

    /// The shared cache of every `K` (without managedFields: no controller reads them), once it
    /// holds the first list; `changed` hears each object in it now and each change from now on.
    pub async fn watch<K>(&self, changed: impl Fn(&K) + Send + Sync + 'static) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let cell = {
            let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
            let cell =
                started.entry(TypeId::of::<K>()).or_insert_with(|| Arc::new(OnceCell::<Arc<Informer<K>>>::new()));
            Arc::clone(cell).downcast::<OnceCell<Arc<Informer<K>>>>().unwrap_or_else(|_| unreachable!("keyed by type"))
        };
        let informer = cell.get_or_init(|| Informer::start(self.client.clone())).await;
        informer.subscribe(Arc::new(changed));
        informer.store.clone()
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Watch every `K` into a new cache; returns once the first list is in it.
    async fn start(client: kube::Client) -> Arc<Informer<K>> {
        let (store, writer) = reflector::store::<K>();
        let informer = Arc::new(Informer { store, handlers: Mutex::new(Vec::new()) });
        let objects =
            watcher(Api::<K>::all(client), watcher::Config::default()).modify(|o| o.meta_mut().managed_fields = None);
        let events = reflector::reflector(writer, objects).default_backoff();
        let shared = Arc::clone(&informer);
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                match event {
                    // The reflector has applied the change to the cache before it is seen here.
                    Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o)) => {
                        let handlers = shared.handlers.lock().unwrap_or_else(PoisonError::into_inner).clone();
                        handlers.iter().for_each(|h| h(&o));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, kind = K::kind(&()).as_ref(), "watch failed; retrying"),
                }
            }
        });
        let _ = informer.store.wait_until_ready().await;
        informer
    }

    /// Add `handler`, and replay to it what the cache holds. A change applied before the
    /// snapshot is in it; one applied after is dispatched to the handler list that has this one.
    fn subscribe(&self, handler: Handler<K>) {
        let snapshot = {
            let mut handlers = self.handlers.lock().unwrap_or_else(PoisonError::into_inner);
            handlers.push(Arc::clone(&handler));
            self.store.state()
        };
        snapshot.iter().for_each(|o| handler(o));
    }
}
