//! Persistent storage, as kube-controller-manager and kube-scheduler handle it: the
//! PersistentVolume [`binder`] (upstream's `persistent-volume-binder`: claims bound to volumes,
//! handed to provisioners, volumes released and reclaimed), the [`pvc_protection`] and
//! [`pv_protection`] finalizers, the expansion of local-path volumes ([`resize`]), and the
//! scheduler's volume binding ([`scheduling`]).
//! Each decision is a pure function ([`claim_sync`], [`volume_sync`], [`placement`], the object
//! [`edits`], the volume [`matching`] shared by the binder and the scheduler); the run loops only
//! carry them out, every write an update guarded by the object's resourceVersion.
//! Here: the annotations, phases and lookups they all share.

pub mod backoff;
pub mod binder;
pub mod claim_sync;
pub mod edits;
pub mod matching;
pub mod node_affinity;
pub mod placement;
pub mod pv_protection;
pub mod pvc_protection;
pub mod resize;
pub mod scheduling;
pub mod volume_sync;

#[cfg(test)]
mod fixtures;

use crate::work::Key;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_client::events::Type;
use skiff_core::quantity::parse_milli;
use std::sync::Arc;

/// On a claim: the binder has bound it once (its later losses are `Lost`, not `Pending`).
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// On a volume or claim: the binder, not the user, wrote the binding.
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// On a volume: the provisioner that made it (and deletes it).
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// On a claim: the provisioner asked to make its volume.
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// On a claim: the node its volume is to be on (the scheduler's choice, or the binder's for a
/// local volume of an `Immediate` class).
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The class annotation older objects carry instead of `storageClassName` (it wins).
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";

pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION_FINALIZER: &str = "kubernetes.io/pv-protection";

/// skiff's node-side provisioner: a directory on one node.
pub const LOCAL_PATH: &str = "skiff.dev/local-path";
/// The provisioner of classes whose volumes only an administrator makes.
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

// Phases of volumes and claims.
pub const PENDING: &str = "Pending";
pub const AVAILABLE: &str = "Available";
pub const BOUND: &str = "Bound";
pub const RELEASED: &str = "Released";
pub const FAILED: &str = "Failed";
pub const LOST: &str = "Lost";

/// An event to record about the object being synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: Type,
    pub reason: &'static str,
    pub message: String,
}

impl Note {
    pub fn normal(reason: &'static str, message: impl Into<String>) -> Note {
        Note { kind: Type::Normal, reason, message: message.into() }
    }

    pub fn warning(reason: &'static str, message: impl Into<String>) -> Note {
        Note { kind: Type::Warning, reason, message: message.into() }
    }
}

/// What a protection controller does about its finalizer on one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    Nothing,
    /// A live object without it: add it (objects made before admission added it).
    AddFinalizer,
    /// Deleted and no longer in use: let it go.
    RemoveFinalizer,
}

/// Write `next` over `name` (an update of the version read, so a stale one conflicts); an object
/// deleted meanwhile needs nothing more.
pub(crate) async fn replace_unless_gone<K>(api: &kube::Api<K>, name: &str, next: &K) -> Result<(), kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.replace(name, &kube::api::PostParams::default(), next).await {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other.map(drop),
    }
}

pub fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

pub fn has_annotation(meta: &ObjectMeta, key: &str) -> bool {
    annotation(meta, key).is_some()
}

pub fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

pub fn uid(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or_default()
}

/// The claim's class: the beta annotation, else `storageClassName`, else "" (no class).
pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    annotation(&claim.metadata, BETA_STORAGE_CLASS)
        .or_else(|| claim.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()))
        .unwrap_or_default()
}

/// Whether the claim names a class at all ("" is a choice: no class; unset is not).
pub fn claim_has_class(claim: &PersistentVolumeClaim) -> bool {
    has_annotation(&claim.metadata, BETA_STORAGE_CLASS)
        || claim.spec.as_ref().is_some_and(|s| s.storage_class_name.is_some())
}

pub fn volume_class(volume: &PersistentVolume) -> &str {
    annotation(&volume.metadata, BETA_STORAGE_CLASS)
        .or_else(|| volume.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()))
        .unwrap_or_default()
}

pub fn volume_phase(volume: &PersistentVolume) -> &str {
    volume.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

pub fn claim_phase(claim: &PersistentVolumeClaim) -> &str {
    claim.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or_default()
}

/// The volume the claim is bound to ("" when none).
pub fn claim_volume(claim: &PersistentVolumeClaim) -> &str {
    claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()).unwrap_or_default()
}

/// The storage the claim asks for, in thousandths of a byte (0 when it asks none).
pub fn requested(claim: &PersistentVolumeClaim) -> i128 {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| parse_milli(&q.0))
        .unwrap_or(0)
}

/// The volume's storage capacity, in thousandths of a byte (0 when it states none).
pub fn capacity(volume: &PersistentVolume) -> i128 {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| parse_milli(&q.0))
        .unwrap_or(0)
}

pub fn find_class<'a>(classes: &'a [Arc<StorageClass>], name: &str) -> Option<&'a StorageClass> {
    classes.iter().map(Arc::as_ref).find(|c| c.metadata.name.as_deref() == Some(name))
}

/// Whether the claim's class binds only once a pod uses it (`WaitForFirstConsumer`). A class
/// that does not exist binds at once, as upstream's `IsDelayBindingMode` has it.
pub fn is_delay_binding(claim: &PersistentVolumeClaim, classes: &[Arc<StorageClass>]) -> bool {
    let class = claim_class(claim);
    !class.is_empty()
        && find_class(classes, class).is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"))
}

/// The default class (annotated so; the newest of several, then by name), as upstream's
/// `GetDefaultClass`.
pub fn default_class(classes: &[Arc<StorageClass>]) -> Option<&StorageClass> {
    let is_default = |c: &StorageClass| {
        [DEFAULT_CLASS, BETA_DEFAULT_CLASS].iter().any(|k| annotation(&c.metadata, k) == Some("true"))
    };
    classes.iter().map(Arc::as_ref).filter(|c| is_default(c)).max_by(|a, b| {
        let created = |c: &StorageClass| c.metadata.creation_timestamp.as_ref().map(|t| t.0);
        created(a).cmp(&created(b)).then_with(|| name(&b.metadata).cmp(name(&a.metadata)))
    })
}

/// The key of the claim a volume's claimRef names.
pub fn claim_ref_key(volume: &PersistentVolume) -> Option<Key> {
    let r = volume.spec.as_ref()?.claim_ref.as_ref()?;
    Some(Key { namespace: r.namespace.clone()?, name: r.name.clone()? })
}

/// The claims a pod's volumes name (`persistentVolumeClaim.claimName`).
pub fn claim_names(pod: &Pod) -> impl Iterator<Item = &str> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.as_str()))
}

/// A pod that will run no more (its containers are done).
pub fn is_terminated(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

#[cfg(test)]
mod tests {
    use super::fixtures::{claim, class};
    use super::*;
    use serde_json::json;

    #[test]
    fn classes_of_claims() {
        let c = claim("c", json!({"storageClassName": "fast"}));
        assert_eq!((claim_class(&c), claim_has_class(&c)), ("fast", true));
        let c = claim("c", json!({"storageClassName": ""}));
        assert_eq!((claim_class(&c), claim_has_class(&c)), ("", true));
        let c = claim("c", json!({}));
        assert_eq!((claim_class(&c), claim_has_class(&c)), ("", false));
        let wait = Arc::new(class("wait", "x", Some("WaitForFirstConsumer")));
        let now = Arc::new(class("now", "x", None));
        let classes = [wait, now];
        assert!(is_delay_binding(&claim("c", json!({"storageClassName": "wait"})), &classes));
        assert!(!is_delay_binding(&claim("c", json!({"storageClassName": "now"})), &classes));
        assert!(!is_delay_binding(&claim("c", json!({"storageClassName": "gone"})), &classes));
    }

    #[test]
    fn the_newest_default_class_wins() {
        let at = |name: &str, created: &str, default: bool| {
            let mut c = class(name, "x", None);
            c.metadata.creation_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(created.parse().expect("timestamp")));
            if default {
                c.metadata.annotations = Some([(DEFAULT_CLASS.to_string(), "true".to_string())].into());
            }
            Arc::new(c)
        };
        let classes = [
            at("old", "2026-01-01T00:00:00Z", true),
            at("new", "2026-02-01T00:00:00Z", true),
            at("newer", "2026-03-01T00:00:00Z", false),
        ];
        assert_eq!(default_class(&classes).map(|c| name(&c.metadata)), Some("new"));
        assert_eq!(default_class(&classes[2..]).map(|c| name(&c.metadata)), None);
    }
}
