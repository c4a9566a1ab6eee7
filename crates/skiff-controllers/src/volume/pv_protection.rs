//! The PV protection controller (upstream's `pv-protection-controller`): a volume carries the
//! finalizer `kubernetes.io/pv-protection` while it lives, so deleting a volume a claim still
//! holds leaves it `Terminating`; the finalizer goes once the volume is not bound (its phase is
//! not `Bound`, or the claim its claimRef names is gone). [`decide`] is pure; [`run`] watches
//! volumes and claims.

use super::backoff::Backoff;
use super::edits::{with_finalizer, without_finalizer};
use super::{BOUND, PV_PROTECTION_FINALIZER, Protection as Decision, claim_volume, uid, volume_phase};
use crate::informers::Informers;
use crate::work::{self, Key, Queue};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::Arc;
use std::time::Duration;

const RESYNC: Duration = Duration::from_secs(300);

/// Whether a claim still holds the volume.
pub fn is_bound<C: AsRef<PersistentVolumeClaim>>(volume: &PersistentVolume, claims: &[C]) -> bool {
    let Some(r) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else { return false };
    volume_phase(volume) == BOUND
        && claims.iter().map(AsRef::as_ref).any(|c| {
            c.metadata.namespace == r.namespace
                && c.metadata.name == r.name
                && r.uid.as_deref().is_none_or(|u| u.is_empty() || u == uid(&c.metadata))
        })
}

pub fn decide<C: AsRef<PersistentVolumeClaim>>(volume: &PersistentVolume, claims: &[C]) -> Decision {
    let has = volume.metadata.finalizers.iter().flatten().any(|f| f == PV_PROTECTION_FINALIZER);
    match (volume.metadata.deletion_timestamp.is_some(), has) {
        (false, false) => Decision::AddFinalizer,
        (true, true) if !is_bound(volume, claims) => Decision::RemoveFinalizer,
        _ => Decision::Nothing,
    }
}

struct Ctx {
    client: kube::Client,
    volumes: Store<PersistentVolume>,
    claims: Store<PersistentVolumeClaim>,
    backoff: Backoff,
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<(), kube::Error> {
    let Some(volume) = ctx.volumes.get(&ObjectRef::new(&key.name)) else { return Ok(()) };
    let next = match decide(&volume, &ctx.claims.state()) {
        Decision::Nothing => None,
        Decision::AddFinalizer => with_finalizer(volume.as_ref(), PV_PROTECTION_FINALIZER),
        Decision::RemoveFinalizer => without_finalizer(volume.as_ref(), PV_PROTECTION_FINALIZER),
    };
    match next {
        Some(next) => {
            super::replace_unless_gone(&Api::<PersistentVolume>::all(ctx.client.clone()), &key.name, &next).await
        }
        None => Ok(()),
    }
}

/// Run the PV protection controller until the process stops.
pub async fn run(informers: &Informers) {
    let queue: Arc<Queue<Key>> = Queue::new();
    let q = queue.clone();
    let volumes = informers.watch(move |v: &PersistentVolume| q.add(Key::of(v))).await;
    let q = queue.clone();
    // A claim's deletion frees the volume it held.
    let claims = informers
        .watch(move |c: &PersistentVolumeClaim| {
            let volume = claim_volume(c);
            if !volume.is_empty() {
                q.add(Key { namespace: String::new(), name: volume.to_string() });
            }
        })
        .await;
    work::resync(queue.clone(), volumes.clone(), RESYNC);
    let client = informers.client_as(crate::identity::PV_PROTECTION);
    let ctx = Ctx { client, volumes, claims, backoff: Backoff::new(Duration::from_secs(30)) };
    work::drive(queue, "PV protection", |key| {
        let ctx = &ctx;
        async move { ctx.backoff.outcome("PV protection", &key, reconcile(ctx, &key).await) }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{claim, volume};
    use super::*;
    use serde_json::json;

    fn deleting(phase: &str) -> PersistentVolume {
        let mut v = volume("v", json!({"claimRef": {"namespace": "ns", "name": "c", "uid": "uid-c"}}));
        v.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        v.metadata.finalizers = Some(vec![PV_PROTECTION_FINALIZER.to_string()]);
        if let Some(s) = v.status.as_mut() {
            s.phase = Some(phase.to_string());
        }
        v
    }

    #[test]
    fn a_deleted_volume_goes_once_no_claim_holds_it() {
        let c = [Arc::new(claim("c", json!({"volumeName": "v"})))];
        assert_eq!(decide(&deleting(BOUND), &c), Decision::Nothing);
        assert_eq!(decide(&deleting("Released"), &c), Decision::RemoveFinalizer);
        // Bound, but its claim is gone (the binder has not released it yet).
        assert_eq!(decide(&deleting(BOUND), &[] as &[Arc<PersistentVolumeClaim>]), Decision::RemoveFinalizer);
        assert_eq!(decide(&volume("v", json!({})), &c), Decision::AddFinalizer);
    }
}
