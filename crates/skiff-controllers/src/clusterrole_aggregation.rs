//! The ClusterRole aggregation controller (upstream's `clusterrole-aggregation`): a ClusterRole
//! with an `aggregationRule` holds the rules of every ClusterRole its selectors match (`admin`
//! gathers `edit` and the `aggregate-to-admin` roles, and so on). What the rules should be is
//! `skiff_core::auth::aggregate`'s (pure); this writes them whenever a ClusterRole changes.

use crate::informers::Informers;
use crate::work::{self, Key, Queue};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;
use std::sync::Arc;
use std::time::Duration;

/// Everything is looked at again this often, whatever the events.
const RESYNC: Duration = Duration::from_secs(300);

async fn reconcile(
    client: &kube::Client,
    roles: &Store<ClusterRole>,
    key: &Key,
) -> Result<Option<Duration>, kube::Error> {
    let all: Vec<ClusterRole> = roles.state().iter().map(|r| r.as_ref().clone()).collect();
    let Some(current) = all.iter().find(|r| r.metadata.name.as_deref() == Some(key.name.as_str())) else {
        return Ok(None);
    };
    if current.aggregation_rule.is_none() {
        return Ok(None);
    }
    let aggregated = skiff_core::auth::aggregate::aggregate(all.clone());
    let Some(want) = aggregated.iter().find(|r| r.metadata.name == current.metadata.name) else { return Ok(None) };
    if want.rules == current.rules {
        return Ok(None);
    }
    let api: Api<ClusterRole> = Api::all(client.clone());
    // The rules are the controller's: replaced whole (a merge patch replaces a list).
    let patch = serde_json::json!({"rules": want.rules.clone().unwrap_or_default()});
    api.patch(&key.name, &PatchParams::default(), &Patch::Merge(patch)).await?;
    Ok(None)
}

pub async fn run(informers: &Informers) {
    let queue: Arc<Queue<Key>> = Queue::new();
    // Any ClusterRole's change may concern every aggregated one (its labels, its rules).
    // (The cache is known only once the watch starts: until then each role queues itself.)
    let q = queue.clone();
    let all: Arc<std::sync::OnceLock<Store<ClusterRole>>> = Arc::new(std::sync::OnceLock::new());
    let seen = all.clone();
    let roles = informers
        .watch(move |r: &ClusterRole| match seen.get() {
            Some(store) => {
                for role in store.state().iter().filter(|r| r.aggregation_rule.is_some()) {
                    q.add(Key::of(role.as_ref()));
                }
                q.add(Key::of(r));
            }
            None => q.add(Key::of(r)),
        })
        .await;
    let _ = all.set(roles.clone());
    work::resync(queue.clone(), roles.clone(), RESYNC);
    let client = informers.client_as(crate::identity::CLUSTERROLE_AGGREGATION);
    work::drive(queue, "ClusterRole aggregation", |key| {
        let (client, roles) = (&client, &roles);
        async move { reconcile(client, roles, &key).await }
    })
    .await;
}
