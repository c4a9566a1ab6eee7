//! The node's view of the cluster's Services and EndpointSlices, watched once and shared by
//! what needs them: the cluster DNS (its zone), pods' environments (service links) and the
//! service proxy. Readers take the latest [`Snapshot`] or wait for the next one.

use crate::watch_cache::watch_all;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use std::sync::Arc;
use tokio::sync::watch;

/// Every Service and EndpointSlice at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub services: Vec<Arc<Service>>,
    pub slices: Vec<Arc<EndpointSlice>>,
    /// Both kinds have been listed: until then the lists may miss objects.
    pub listed: bool,
}

impl Snapshot {
    /// The Services of `namespace`.
    pub fn in_namespace<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a Arc<Service>> {
        self.services.iter().filter(move |s| s.metadata.namespace.as_deref() == Some(namespace))
    }
}

pub struct ServiceView {
    latest: watch::Sender<Arc<Snapshot>>,
}

impl Default for ServiceView {
    fn default() -> Self {
        ServiceView { latest: watch::Sender::new(Arc::new(Snapshot::default())) }
    }
}

impl ServiceView {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.latest.borrow().clone()
    }

    /// The latest snapshot once it has every object, waiting up to `limit` for the first list
    /// (a node agent just started); after that, whatever it has.
    pub async fn listed(&self, limit: std::time::Duration) -> Arc<Snapshot> {
        let mut rx = self.latest.subscribe();
        match tokio::time::timeout(limit, rx.wait_for(|s| s.listed)).await {
            Ok(Ok(s)) => s.clone(),
            _ => self.snapshot(),
        }
    }

    /// Replace the snapshot (what `run` does on every change; tests set their own).
    pub fn publish(&self, snapshot: Snapshot) {
        self.latest.send_replace(Arc::new(snapshot));
    }

    /// A receiver that sees every new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.latest.subscribe()
    }

    /// Watch `client`'s cluster and publish a snapshot after each burst of changes, until the
    /// process ends.
    pub async fn run(&self, client: kube::Client) {
        let (services, service_events) = watch_all::<Service>(&client, watcher::Config::default());
        let (slices, slice_events) = watch_all::<EndpointSlice>(&client, watcher::Config::default());
        let events = futures::stream::select(service_events, slice_events);
        let mut events = std::pin::pin!(events);
        while events.next().await.is_some() {
            // Take every change already waiting, then publish once.
            while let Some(Some(_)) = events.next().now_or_never() {}
            let listed = services.wait_until_ready().now_or_never().is_some()
                && slices.wait_until_ready().now_or_never().is_some();
            self.publish(Snapshot { services: services.state(), slices: slices.state(), listed });
        }
    }
}
