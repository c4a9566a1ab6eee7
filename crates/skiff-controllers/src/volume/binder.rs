//! The PersistentVolume binder's run loop (upstream's `persistent-volume-binder`): one worker
//! for claims and one for volumes, over the shared caches, each carrying out what
//! [`claim_sync`](super::claim_sync) or [`volume_sync`](super::volume_sync) decided. Every write
//! is an update of the version read (never a blind patch), so of two claims racing for one
//! volume only the first binds; the other's write conflicts and it decides again, from a cache
//! that has caught up, after a short back-off. After its own writes the worker waits (briefly)
//! for the cache to show them, so its next decision is not made on what it just changed.

use super::backoff::Backoff;
use super::claim_sync::{ClaimAction, ClaimPlan, View, sync_claim};
use super::edits::{
    claim_bound_to, claim_handed_to, claim_with_class, claim_with_status, volume_bound_to, volume_unbound,
    volume_with_phase,
};
use super::volume_sync::{VolumeStep, sync_volume};
use super::{
    BOUND, FAILED, Note, RELEASED, claim_class, claim_has_class, claim_ref_key, claim_volume, name, uid, volume_phase,
};
use crate::informers::Informers;
use crate::owner::object_reference;
use crate::work::{self, Key, Queue};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Resource;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use skiff_client::events::Recorder;
use std::sync::Arc;
use std::time::Duration;

/// Upstream's `--pvclaimbinder-sync-period`: every claim and volume is looked at again this
/// often (how a claim waiting for its class, or a provisioner, is retried).
const RESYNC: Duration = Duration::from_secs(15);
/// How long a worker waits for the cache to show its own writes.
const SETTLE: Duration = Duration::from_secs(2);

struct Ctx {
    client: kube::Client,
    recorder: Recorder,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    nodes: Store<Node>,
    pods: Store<Pod>,
    claim_queue: Arc<Queue<Key>>,
}

impl Ctx {
    async fn record<K: Resource<DynamicType = ()>>(&self, about: &K, notes: &[Note]) {
        for n in notes {
            self.recorder.object(object_reference(about), n.kind, n.reason, &n.message).await;
        }
    }

    fn claim_api(&self, namespace: &str) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), namespace)
    }

    fn volume_api(&self) -> Api<PersistentVolume> {
        Api::all(self.client.clone())
    }

    async fn sync_claim(&self, key: &Key) -> Result<(), kube::Error> {
        let Some(claim) = self.claims.get(&ObjectRef::new(&key.name).within(&key.namespace)) else { return Ok(()) };
        let (volumes, classes, nodes, claims) =
            (self.volumes.state(), self.classes.state(), self.nodes.state(), self.claims.state());
        let pods = work::in_namespace(&self.pods, &key.namespace);
        let view = View { volumes: &volumes, classes: &classes, nodes: &nodes, claims: &claims, pods: &pods };
        let ClaimPlan { action, events } = sync_claim(&claim, &view);
        self.record(claim.as_ref(), &events).await;
        let api = self.claim_api(&key.namespace);
        let pp = PostParams::default();
        match action {
            ClaimAction::None => {}
            ClaimAction::Bind(volume) => self.bind(&volume, &claim).await?,
            ClaimAction::Phase { phase, on_change } => {
                let changes = super::claim_phase(&claim) != phase;
                // A phase that comes with an event is written only when it changes.
                if (changes || on_change.is_none())
                    && let Some(next) = claim_with_status(&claim, phase, None)
                {
                    let written = api.replace_status(&key.name, &pp, &next).await?;
                    if changes && let Some(note) = on_change {
                        self.record(&written, &[note]).await;
                    }
                }
            }
            ClaimAction::AssignClass(class) => {
                tracing::debug!(namespace = key.namespace, claim = key.name, class, "assigning the default class");
                api.replace(&key.name, &pp, &claim_with_class(&claim, &class)).await?;
            }
            ClaimAction::Provision { provisioner, node } => {
                let handed = match claim_handed_to(&claim, &provisioner, node.as_deref()) {
                    None => claim.as_ref().clone(),
                    Some(next) => match api.replace(&key.name, &pp, &next).await {
                        Ok(written) => written,
                        Err(e) => {
                            let why = format!("Error saving claim: {e}");
                            self.record(claim.as_ref(), &[Note::warning("ProvisioningFailed", why)]).await;
                            return Err(e);
                        }
                    },
                };
                let message = format!(
                    "Waiting for a volume to be created either by the external provisioner '{provisioner}' or \
                     manually by the system administrator. If volume creation is delayed, please verify that the \
                     provisioner is running and correctly registered."
                );
                self.record(&handed, &[Note::normal("ExternalProvisioning", message)]).await;
                settle(&self.claims, &handed).await;
            }
        }
        Ok(())
    }

    /// Bind volume and claim: the volume first (its claimRef, then its phase), then the claim
    /// (volumeName and annotations, then its status), each write on the previous one's result.
    async fn bind(&self, volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> Result<(), kube::Error> {
        let (volumes, claims) =
            (self.volume_api(), self.claim_api(claim.metadata.namespace.as_deref().unwrap_or_default()));
        let pp = PostParams::default();
        let mut volume = volume.clone();
        let volume_name = name(&volume.metadata).to_string();
        if let Some(next) = volume_bound_to(&volume, claim) {
            volume = volumes.replace(&volume_name, &pp, &next).await?;
        }
        if let Some(next) = volume_with_phase(&volume, BOUND, "") {
            volume = volumes.replace_status(&volume_name, &pp, &next).await?;
        }
        let mut claim = claim.clone();
        let claim_name = name(&claim.metadata).to_string();
        if let Some(next) = claim_bound_to(&claim, &volume_name) {
            claim = claims.replace(&claim_name, &pp, &next).await?;
        }
        if let Some(next) = claim_with_status(&claim, BOUND, Some(&volume)) {
            claim = claims.replace_status(&claim_name, &pp, &next).await?;
        }
        tracing::debug!(volume = volume_name, claim = claim_name, class = claim_class(&claim), "bound");
        settle(&self.volumes, &volume).await;
        settle(&self.claims, &claim).await;
        Ok(())
    }

    async fn sync_volume(&self, key: &Key) -> Result<(), kube::Error> {
        let Some(volume) = self.volumes.get(&ObjectRef::new(&key.name)) else { return Ok(()) };
        let claim = self.claim_of(&volume).await?;
        let plan = sync_volume(&volume, claim.as_ref());
        self.record(volume.as_ref(), &plan.volume_events).await;
        if let Some(claim) = &claim {
            self.record(claim, &plan.claim_events).await;
        }
        if plan.sync_claim
            && let Some(claim_key) = claim_ref_key(&volume)
        {
            self.claim_queue.add(claim_key);
        }
        let (api, pp) = (self.volume_api(), PostParams::default());
        let mut current = volume.as_ref().clone();
        for step in plan.steps {
            match step {
                VolumeStep::Phase { phase, message, on_change } => {
                    if let Some(next) = volume_with_phase(&current, phase, &message) {
                        current = api.replace_status(&key.name, &pp, &next).await?;
                        if let Some(note) = on_change {
                            self.record(&current, &[note]).await;
                        }
                    }
                }
                VolumeStep::Unbind => current = api.replace(&key.name, &pp, &volume_unbound(&current)).await?,
            }
        }
        settle(&self.volumes, &current).await;
        Ok(())
    }

    /// The claim the volume's claimRef names, if it exists with that uid. A cache without it
    /// (or with another claim of that name) is checked against the API server first: a claim
    /// made a moment ago must not get its new volume released.
    async fn claim_of(&self, volume: &PersistentVolume) -> Result<Option<PersistentVolumeClaim>, kube::Error> {
        let Some(reference) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else { return Ok(None) };
        let wanted = reference.uid.as_deref().unwrap_or_default();
        let Some(key) = claim_ref_key(volume).filter(|_| !wanted.is_empty()) else { return Ok(None) };
        let cached = self.claims.get(&ObjectRef::new(&key.name).within(&key.namespace));
        match cached {
            Some(c) if uid(&c.metadata) == wanted => return Ok(Some(c.as_ref().clone())),
            None if matches!(volume_phase(volume), RELEASED | FAILED) => return Ok(None),
            _ => {}
        }
        match self.claim_api(&key.namespace).get_opt(&key.name).await? {
            Some(c) if uid(&c.metadata) == wanted => Ok(Some(c)),
            _ => Ok(None),
        }
    }
}

/// Wait until the cache holds `written` (or something newer), at most [`SETTLE`].
async fn settle<K>(store: &Store<K>, written: &K)
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let Some(want) = written.meta().resource_version.as_deref().and_then(|v| v.parse::<u64>().ok()) else { return };
    let mut key = ObjectRef::new(written.meta().name.as_deref().unwrap_or_default());
    if let Some(ns) = written.meta().namespace.as_deref() {
        key = key.within(ns);
    }
    let deadline = tokio::time::Instant::now() + SETTLE;
    while tokio::time::Instant::now() < deadline {
        let seen =
            store.get(&key).and_then(|o| o.meta().resource_version.as_deref().and_then(|v| v.parse::<u64>().ok()));
        if seen.is_none_or(|s| s >= want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run the binder until the process stops.
pub async fn run(informers: &Informers) {
    let claim_queue: Arc<Queue<Key>> = Queue::new();
    let volume_queue: Arc<Queue<Key>> = Queue::new();
    let (cq, vq) = (claim_queue.clone(), volume_queue.clone());
    let claims = informers
        .watch(move |c: &PersistentVolumeClaim| {
            cq.add(Key::of(c));
            // A claim's change (its deletion above all) concerns the volume it holds.
            let volume = claim_volume(c);
            if !volume.is_empty() {
                vq.add(Key { namespace: String::new(), name: volume.to_string() });
            }
        })
        .await;
    let (cq, vq) = (claim_queue.clone(), volume_queue.clone());
    let volumes = informers
        .watch(move |v: &PersistentVolume| {
            vq.add(Key::of(v));
            // A volume made or reserved for a claim: bind it now, not at the next resync.
            if let Some(claim) = claim_ref_key(v) {
                cq.add(claim);
            }
        })
        .await;
    let (cq, all) = (claim_queue.clone(), claims.clone());
    let classes = informers
        .watch(move |class: &StorageClass| {
            // A class made or changed: the claims still waiting may go on (those of no class
            // too: it may be the new default).
            let class_name = name(&class.metadata);
            all.state()
                .iter()
                .filter(|c| claim_volume(c).is_empty() && (claim_class(c) == class_name || !claim_has_class(c)))
                .for_each(|c| cq.add(Key::of(c.as_ref())));
        })
        .await;
    let nodes = informers.watch(|_: &Node| {}).await;
    let pods = informers.watch(|_: &Pod| {}).await;
    work::resync(claim_queue.clone(), claims.clone(), RESYNC);
    work::resync(volume_queue.clone(), volumes.clone(), RESYNC);
    let client = informers.client_as(crate::identity::PERSISTENT_VOLUME_BINDER);
    let recorder = Recorder::new(client.clone(), "persistentvolume-controller", "");
    let ctx = Ctx { client, recorder, claims, volumes, classes, nodes, pods, claim_queue: claim_queue.clone() };
    let (claim_backoff, volume_backoff) = (Backoff::new(RESYNC), Backoff::new(RESYNC));
    let ctx = &ctx;
    tokio::join!(
        work::drive(claim_queue, "PersistentVolumeClaim", |key| {
            let backoff = &claim_backoff;
            async move { backoff.outcome("PersistentVolumeClaim", &key, ctx.sync_claim(&key).await) }
        }),
        work::drive(volume_queue, "PersistentVolume", |key| {
            let backoff = &volume_backoff;
            async move { backoff.outcome("PersistentVolume", &key, ctx.sync_volume(&key).await) }
        }),
    );
}
