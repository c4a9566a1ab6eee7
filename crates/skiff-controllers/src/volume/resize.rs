//! Volume expansion of skiff's local-path volumes (upstream's expand controller with an external
//! resizer, for volumes that are directories): a bound claim asking more than it has (admission
//! lets only a class with `allowVolumeExpansion` ask) gets its volume's capacity raised, then its
//! own `status.capacity` and `allocatedResources`; a directory has no file system to grow on the
//! node, so nothing waits for a pod. Events as upstream's resizer records them: `Resizing`, then
//! `VolumeResizeSuccessful`. Volumes of other provisioners, and static ones, are not resized.
//! [`decide`] is pure; [`run`] watches claims and volumes.

use super::backoff::Backoff;
use super::{BOUND, LOCAL_PATH, Note, PROVISIONED_BY, annotation, capacity, claim_phase, claim_volume, requested, uid};
use crate::informers::Informers;
use crate::owner::object_reference;
use crate::work::{self, Key, Queue};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use skiff_client::events::Recorder;
use skiff_core::quantity::parse_milli;
use std::sync::Arc;
use std::time::Duration;

const RESYNC: Duration = Duration::from_secs(300);
const STORAGE: &str = "storage";

/// What the round does for one claim.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Nothing,
    /// Write the volume with its capacity raised to the request.
    Volume(Box<PersistentVolume>, Note),
    /// Write the claim's status: the new capacity is there.
    Claim(Box<PersistentVolumeClaim>, Note),
}

fn request(claim: &PersistentVolumeClaim) -> Option<Quantity> {
    claim.spec.as_ref()?.resources.as_ref()?.requests.as_ref()?.get(STORAGE).cloned()
}

fn has_capacity(claim: &PersistentVolumeClaim) -> i128 {
    let capacity = claim.status.as_ref().and_then(|s| s.capacity.as_ref()).and_then(|c| c.get(STORAGE));
    capacity.and_then(|q| parse_milli(&q.0)).unwrap_or(0)
}

/// Pure: the next step of expanding `claim`'s volume (`volume`, the one it is bound to).
pub fn decide(claim: &PersistentVolumeClaim, volume: Option<&PersistentVolume>) -> Step {
    let Some(volume) = volume else { return Step::Nothing };
    let Some(wanted) = request(claim) else { return Step::Nothing };
    let bound_to_it = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).and_then(|r| r.uid.as_deref())
        == Some(uid(&claim.metadata));
    let ours = annotation(&volume.metadata, PROVISIONED_BY) == Some(LOCAL_PATH);
    if claim_phase(claim) != BOUND || !bound_to_it || !ours || has_capacity(claim) >= requested(claim) {
        return Step::Nothing;
    }
    let volume_name = volume.metadata.name.clone().unwrap_or_default();
    if capacity(volume) < requested(claim) {
        let mut next = volume.clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.capacity.get_or_insert_with(Default::default).insert(STORAGE.into(), wanted);
        }
        let note = Note::normal("Resizing", format!("External resizer is resizing volume {volume_name}"));
        return Step::Volume(Box::new(next), note);
    }
    let mut next = claim.clone();
    let status = next.status.get_or_insert_with(Default::default);
    status.capacity.get_or_insert_with(Default::default).insert(STORAGE.into(), wanted.clone());
    status.allocated_resources.get_or_insert_with(Default::default).insert(STORAGE.into(), wanted);
    if let Some(statuses) = status.allocated_resource_statuses.as_mut() {
        statuses.remove(STORAGE);
    }
    status.allocated_resource_statuses = status.allocated_resource_statuses.take().filter(|s| !s.is_empty());
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != "Resizing" && c.type_ != "FileSystemResizePending");
    }
    status.conditions = status.conditions.take().filter(|c| !c.is_empty());
    Step::Claim(Box::new(next), Note::normal("VolumeResizeSuccessful", "Resize volume succeeded"))
}

struct Ctx {
    client: kube::Client,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    recorder: Recorder,
    backoff: Backoff,
}

async fn reconcile(ctx: &Ctx, key: &Key) -> Result<(), kube::Error> {
    let Some(claim) = ctx.claims.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return Ok(()) };
    let volume = ctx.volumes.get(&ObjectRef::new(claim_volume(&claim)));
    let (written, note) = match decide(&claim, volume.as_deref()) {
        Step::Nothing => return Ok(()),
        Step::Volume(next, note) => {
            let api = Api::<PersistentVolume>::all(ctx.client.clone());
            (super::replace_unless_gone(&api, claim_volume(&claim), &next).await, note)
        }
        Step::Claim(next, note) => {
            let api = Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &key.namespace);
            let written = match api.replace_status(&key.name, &PostParams::default(), &next).await {
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                other => other.map(drop),
            };
            (written, note)
        }
    };
    written?;
    ctx.recorder.object(object_reference(claim.as_ref()), note.kind, note.reason, &note.message).await;
    Ok(())
}

/// Run the expand controller until the process stops.
pub async fn run(informers: &Informers) {
    let queue: Arc<Queue<Key>> = Queue::new();
    let q = queue.clone();
    let claims = informers.watch(move |c: &PersistentVolumeClaim| q.add(Key::of(c))).await;
    let q = queue.clone();
    // A volume whose capacity was raised: its claim's status follows.
    let volumes = informers
        .watch(move |v: &PersistentVolume| {
            if let Some(key) = super::claim_ref_key(v) {
                q.add(key);
            }
        })
        .await;
    work::resync(queue.clone(), claims.clone(), RESYNC);
    let client = informers.client_as(crate::identity::EXPAND);
    let recorder = Recorder::new(client.clone(), "volume_expand", "");
    let ctx = Ctx { client, claims, volumes, recorder, backoff: Backoff::new(Duration::from_secs(30)) };
    work::drive(queue, "volume expansion", |key| {
        let ctx = &ctx;
        async move { ctx.backoff.outcome("volume expansion", &key, reconcile(ctx, &key).await) }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{claim, volume};
    use super::*;
    use serde_json::json;

    fn bound(size: &str, has: &str) -> PersistentVolumeClaim {
        let mut c = claim("data", json!({"volumeName": "pvc-1", "resources": {"requests": {"storage": size}}}));
        c.status = serde_json::from_value(json!({"phase": "Bound", "capacity": {"storage": has},
            "conditions": [{"type": "Resizing", "status": "True"}]}))
        .expect("status");
        c
    }

    fn provisioned(size: &str) -> PersistentVolume {
        let mut v = volume(
            "pvc-1",
            json!({"capacity": {"storage": size}, "claimRef": {"namespace": "ns", "name": "data", "uid": "uid-data"}}),
        );
        v.metadata.annotations = Some([(PROVISIONED_BY.to_string(), LOCAL_PATH.to_string())].into());
        v
    }

    #[test]
    fn the_volume_grows_then_the_claim_says_so() {
        let claim = bound("2Gi", "1Gi");
        let Step::Volume(next, note) = decide(&claim, Some(&provisioned("1Gi"))) else { panic!("volume first") };
        assert_eq!(capacity(&next), requested(&claim));
        assert_eq!(note.reason, "Resizing");
        let Step::Claim(next, note) = decide(&claim, Some(&next)) else { panic!("then the claim") };
        let status = serde_json::to_value(&next.status).expect("json");
        assert_eq!(status["capacity"], json!({"storage": "2Gi"}));
        assert_eq!(status["allocatedResources"], json!({"storage": "2Gi"}));
        assert!(status.get("conditions").is_none(), "{status}");
        assert_eq!((note.reason, note.message.as_str()), ("VolumeResizeSuccessful", "Resize volume succeeded"));
        assert_eq!(decide(&next, Some(&provisioned("2Gi"))), Step::Nothing);
    }

    #[test]
    fn only_bound_local_path_volumes_are_resized() {
        let claim = bound("2Gi", "1Gi");
        let mut foreign = provisioned("1Gi");
        foreign.metadata.annotations = None;
        assert_eq!(decide(&claim, Some(&foreign)), Step::Nothing);
        assert_eq!(decide(&claim, None), Step::Nothing);
        let mut other_claim = provisioned("1Gi");
        if let Some(r) = other_claim.spec.as_mut().and_then(|s| s.claim_ref.as_mut()) {
            r.uid = Some("someone-else".into());
        }
        assert_eq!(decide(&claim, Some(&other_claim)), Step::Nothing);
        let mut pending = bound("2Gi", "1Gi");
        pending.status.as_mut().expect("status").phase = Some("Pending".into());
        assert_eq!(decide(&pending, Some(&provisioned("1Gi"))), Step::Nothing);
    }
}
