//! The PVC protection controller (upstream's `pvc-protection-controller`): a claim carries the
//! finalizer `kubernetes.io/pvc-protection` while it lives, so deleting it leaves it
//! `Terminating` until no pod uses it; then the finalizer goes and so does the claim.
//! A pod uses a claim while it names it in a `persistentVolumeClaim` volume, is not done
//! (Succeeded or Failed) and is still in the store (being deleted included). Upstream also
//! counts done pods and leaves out pods not yet scheduled; skiff frees a claim once its pods
//! have finished. [`decide`] is pure; [`run`] watches claims and pods, and asks the API server
//! for the namespace's pods before letting a claim go (the cache may not have a pod created a
//! moment ago yet).

use super::backoff::Backoff;
use super::edits::{with_finalizer, without_finalizer};
use super::{PVC_PROTECTION_FINALIZER, Protection as Decision, claim_names, is_terminated, name};
use crate::informers::Informers;
use crate::work::{self, Key, Queue};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;
use std::time::Duration;

const RESYNC: Duration = Duration::from_secs(300);

/// Whether `pod` keeps `claim` (of its namespace) from going.
pub fn uses(pod: &Pod, claim: &str) -> bool {
    !is_terminated(pod) && claim_names(pod).any(|c| c == claim)
}

/// What the claim needs, given the pods of its namespace.
pub fn decide<P: AsRef<Pod>>(claim: &PersistentVolumeClaim, pods: &[P]) -> Decision {
    let has = claim.metadata.finalizers.iter().flatten().any(|f| f == PVC_PROTECTION_FINALIZER);
    match (claim.metadata.deletion_timestamp.is_some(), has) {
        (false, false) => Decision::AddFinalizer,
        (true, true) if !pods.iter().any(|p| uses(p.as_ref(), name(&claim.metadata))) => Decision::RemoveFinalizer,
        _ => Decision::Nothing,
    }
}

struct Ctx {
    client: kube::Client,
    claims: Store<PersistentVolumeClaim>,
    pods: Store<Pod>,
    backoff: Backoff,
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<(), kube::Error> {
    let Some(claim) = ctx.claims.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return Ok(()) };
    let api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &key.namespace);
    let next = match decide(&claim, &work::in_namespace(&ctx.pods, &key.namespace)) {
        Decision::Nothing => return Ok(()),
        Decision::AddFinalizer => with_finalizer(claim.as_ref(), PVC_PROTECTION_FINALIZER),
        Decision::RemoveFinalizer => {
            let live = Api::<Pod>::namespaced(ctx.client.clone(), &key.namespace).list(&ListParams::default()).await?;
            if decide(&claim, &live.items.into_iter().map(Arc::new).collect::<Vec<_>>()) != Decision::RemoveFinalizer {
                return Ok(()); // a pod the cache has not seen yet uses it
            }
            without_finalizer(claim.as_ref(), PVC_PROTECTION_FINALIZER)
        }
    };
    match next {
        Some(next) => super::replace_unless_gone(&api, &key.name, &next).await,
        None => Ok(()),
    }
}

/// Run the PVC protection controller until the process stops.
pub async fn run(informers: &Informers) {
    let queue: Arc<Queue<Key>> = Queue::new();
    let q = queue.clone();
    let claims = informers.watch(move |c: &PersistentVolumeClaim| q.add(Key::of(c))).await;
    let q = queue.clone();
    // A pod's change (its end, its deletion) may free the claims it names.
    let pods = informers
        .watch(move |p: &Pod| {
            let namespace = p.metadata.namespace.clone().unwrap_or_default();
            claim_names(p).for_each(|c| q.add(Key { namespace: namespace.clone(), name: c.to_string() }));
        })
        .await;
    work::resync(queue.clone(), claims.clone(), RESYNC);
    let client = informers.client_as(crate::identity::PVC_PROTECTION);
    let ctx = Ctx { client, claims, pods, backoff: Backoff::new(Duration::from_secs(30)) };
    work::drive(queue, "PVC protection", |key| {
        let ctx = &ctx;
        async move { ctx.backoff.outcome("PVC protection", &key, reconcile(ctx, &key).await) }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{claim, pod};
    use super::*;
    use serde_json::json;

    fn deleting(finalized: bool) -> PersistentVolumeClaim {
        let mut c = claim("data", json!({}));
        c.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        if finalized {
            c.metadata.finalizers = Some(vec![PVC_PROTECTION_FINALIZER.to_string()]);
        }
        c
    }

    #[test]
    fn a_deleted_claim_goes_once_no_pod_uses_it() {
        let running = Arc::new(pod("web", &["data"], "n1", "Running"));
        let pending = Arc::new(pod("new", &["data"], "", "Pending"));
        let other = Arc::new(pod("other", &["logs"], "n1", "Running"));
        let done = Arc::new(pod("job", &["data"], "n1", "Succeeded"));
        assert_eq!(decide(&deleting(true), &[running.clone(), other.clone()]), Decision::Nothing);
        assert_eq!(decide(&deleting(true), &[pending]), Decision::Nothing);
        assert_eq!(decide(&deleting(true), &[other.clone(), done]), Decision::RemoveFinalizer);
        assert_eq!(decide(&deleting(true), &[] as &[Arc<Pod>]), Decision::RemoveFinalizer);
        // A pod being deleted still uses it until it is gone from the store.
        let mut stopping = pod("web", &["data"], "n1", "Running");
        stopping.metadata.deletion_timestamp = deleting(true).metadata.deletion_timestamp;
        stopping.metadata.deletion_grace_period_seconds = Some(0);
        assert_eq!(decide(&deleting(true), &[Arc::new(stopping)]), Decision::Nothing);
        // Not ours to remove, or already gone.
        assert_eq!(decide(&deleting(false), &[other]), Decision::Nothing);
    }

    #[test]
    fn a_live_claim_gets_the_finalizer() {
        let c = claim("data", json!({}));
        assert_eq!(decide(&c, &[] as &[Arc<Pod>]), Decision::AddFinalizer);
        let mut protected = c.clone();
        protected.metadata.finalizers = Some(vec![PVC_PROTECTION_FINALIZER.to_string()]);
        assert_eq!(decide(&protected, &[] as &[Arc<Pod>]), Decision::Nothing);
    }
}
